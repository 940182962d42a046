"""Readers: WARC files, plain HTML files and JSONL of {url, html} → records.

Inputs are globs on any Beam filesystem (local paths; gs:// and s3:// when
Beam's extras are installed).  Every record keeps its provenance (source file
and record offset).  A truncated or malformed record is counted and skipped;
the records before and after it still come out.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from .jobs import CountingDoFn
from .progress import Counts

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
# A record body larger than this (after undoing transfer/content encodings) is
# dropped: it bounds the memory a gzip bomb inside a WARC record can take.
MAX_RECORD_BYTES = 100_000_000
MEDIA_PREFIXES = ("image/", "video/", "audio/")
# Caption tracks (WebVTT, SubRip) of <video><track>: passed through with the media.
MEDIA_TYPES = ("text/vtt", "text/srt", "application/x-subrip")


# A WARC extension field our bundled sample (pipeline/sample.py) sets on an
# archived response whose payload is NOT the resource the URL served (a real
# photo standing in for a page's missing image); the value says what it is.
# Kept in Record.headers under STAND_IN_KEY and carried into the shard json
# as ``stand_in`` (shards.schema.STAND_IN).
STAND_IN_HEADER = "WARC-Stand-In"
STAND_IN_KEY = "stand-in"


def is_media_type(media: str) -> bool:
    return media.startswith(MEDIA_PREFIXES) or media in MEDIA_TYPES


@dataclass
class Record:
    """One fetched resource as it came out of an input file."""

    url: str
    body: bytes
    content_type: str = ""        # media type without parameters, lower case
    charset: str | None = None    # from the HTTP Content-Type header, if any
    source: str = ""              # input file
    offset: int = 0               # byte offset of the record (line number for JSONL)
    headers: dict = field(default_factory=dict)
    # The record can be read again from (source, offset) without reading the
    # file from its start (plain or per-record gzip WARCs): archived media then
    # travel through the job as that pointer, not as their bytes.
    seekable: bool = False

    @property
    def is_html(self) -> bool:
        return self.content_type in HTML_TYPES or self.content_type == ""

    @property
    def is_media(self) -> bool:
        return is_media_type(self.content_type)


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    if not value:
        return "", None
    parts = [p.strip() for p in value.split(";")]
    media = parts[0].lower()
    charset = None
    for p in parts[1:]:
        if p.lower().startswith("charset="):
            charset = p.split("=", 1)[1].strip().strip("\"'") or None
    return media, charset


def expand_globs(patterns: list[str]) -> list[str]:
    """All files matching the patterns, sorted; a pattern matching nothing is an error."""
    files: list[str] = []
    for pattern in patterns:
        matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
        if not matched:
            raise FileNotFoundError(f"input pattern {pattern!r} matches no file")
        files.extend(matched)
    return sorted(set(files))


# Whole-file compressions read by streaming decompression (suffix → name), and
# the ones refused at start because no maintained reader is bundled.
STREAM_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd", ".xz": "xz"}
REFUSED_SUFFIXES = {".lz4": "lz4", ".br": "brotli", ".zip": "zip", ".7z": "7z", ".lzo": "lzo",
                    ".sz": "snappy"}


def input_format(path: str) -> str:
    """warc (WARC or ARC), jsonl or html, from the file name; raises ValueError
    (one line naming the file) for a name or compression it cannot read."""
    p = path.lower()
    for suffix, name in REFUSED_SUFFIXES.items():
        if p.endswith(suffix):
            raise ValueError(f"{path}: {name}-compressed input is not supported; decompress it "
                             "or recompress it with gzip, bz2, xz or zstd")
    for suffix in STREAM_SUFFIXES:
        if p.endswith(suffix):
            p = p[: -len(suffix)]
            break
    if p.endswith((".warc", ".arc")):
        return "warc"
    if p.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if p.endswith((".html", ".htm", ".xhtml")):
        return "html"
    raise ValueError(f"{path}: cannot tell the input format from the file name "
                     "(expected .warc, .arc, .jsonl or .html, optionally .gz/.bz2/.xz/.zst)")


def check_inputs(files: list[str]) -> None:
    """Refuse, before the job starts, every input whose name says it cannot be read."""
    for f in files:
        input_format(f)


# ---------------------------------------------------------------- WARC / ARC

_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_MAGIC = b"WARC/"
_ARC_MAGIC = b"\nhttp"  # an ARC record starts with its URL at the start of a line
# What the first bytes of an archive say about its container.
_CONTAINER_MAGIC = (
    (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x2a\x4d\x18", "zstd"),  # a skippable frame: the IIPC warc.zst dictionary
    (b"\x04\x22\x4d\x18", "lz4"), (b"PK\x03\x04", "zip"), (b"7z\xbc\xaf\x27\x1c", "7z"),
)
UNSUPPORTED_CONTAINERS = ("lz4", "zip", "7z")


class InputError(ValueError):
    """An input file that cannot be read at all; ``reason`` is the drop counter."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def sniff_container(fh) -> str:
    """``gzip-members`` (one gzip member per record, the WARC norm), ``gzip`` (the
    whole file as one stream), bz2, xz, zstd, ``plain``, or an unsupported name.
    Reads the head of ``fh`` (and for gzip its first member) and rewinds it."""
    fh.seek(0)
    head = fh.read(8)
    fh.seek(0)
    if head.startswith(_GZIP_MAGIC):
        many = _first_gzip_member_holds_more_than_one_record(fh)
        fh.seek(0)
        return "gzip" if many else "gzip-members"
    for magic, name in _CONTAINER_MAGIC:
        if head.startswith(magic):
            return name
    return "plain"


def _first_record_end(head: bytes) -> int | None:
    """Where the first WARC or ARC record of ``head`` ends, from its length field."""
    if head.startswith(_WARC_MAGIC):
        i = head.find(b"\r\n\r\n")
        if i < 0:
            return None
        for line in head[:i].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    return i + 4 + int(value.strip())
                except ValueError:
                    return None
        return None
    i = head.find(b"\n")
    if i < 0:
        return None
    try:  # ARC: "URL IP DATE TYPE LENGTH"; the length counts what follows the line
        return i + 1 + int(head[:i].rsplit(b" ", 1)[-1])
    except ValueError:
        return None


def _first_gzip_member_holds_more_than_one_record(fh, head_cap: int = 1 << 16) -> bool:
    """True for a WARC gzipped as one stream: its first gzip member goes on past
    the end of the first record.  Decompresses only the first member, keeping
    at most ``head_cap`` bytes of it."""
    d = zlib.decompressobj(31)
    head = bytearray()
    total, end = 0, None
    while not d.eof:
        block = fh.read(1 << 16)
        if not block:
            return False  # a damaged first member: the reader counts it
        try:
            out = d.decompress(block)
        except zlib.error:
            return False
        if len(head) < head_cap:
            head += out[: head_cap - len(head)]
        total += len(out)
        if end is None:
            end = _first_record_end(bytes(head))
            if end is None and len(head) >= head_cap:
                return False
        if end is not None and total > end + 8:  # 8: room for the record's trailing CRLFs
            return True
    return False


class _ReopeningReader(io.RawIOBase):
    """A seekable view of a decompressed stream that only reads forward: seeking
    back reopens and decompresses again (only after a broken record)."""

    def __init__(self, reopen):
        self._reopen = reopen
        self._fh = reopen()
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def readinto(self, b):
        data = self._fh.read(len(b))
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a compressed stream")
        if offset < self._pos:
            self._fh.close()
            self._fh, self._pos = self._reopen(), 0
        while self._pos < offset:
            skipped = self._fh.read(min(1 << 20, offset - self._pos))
            if not skipped:
                break
            self._pos += len(skipped)
        return self._pos

    def close(self):
        self._fh.close()
        super().close()


def _zstd_reader(raw):
    """A zstd stream across frames; a leading skippable frame holding a dictionary
    (the IIPC warc.zst layout, optionally itself zstd-compressed) is used as one."""
    import zstandard

    raw.seek(0)
    head = raw.read(8)
    dict_data = None
    if head[:4] == b"\x5d\x2a\x4d\x18":
        size = int.from_bytes(head[4:8], "little")
        blob = raw.read(size)
        if blob[:4] == b"\x28\xb5\x2f\xfd":
            blob = zstandard.ZstdDecompressor().decompress(blob, max_output_size=1 << 27)
        dict_data = zstandard.ZstdCompressionDict(blob)
    else:
        raw.seek(0)
    dctx = zstandard.ZstdDecompressor(dict_data=dict_data) if dict_data else zstandard.ZstdDecompressor()
    return dctx.stream_reader(raw, read_across_frames=True, closefd=False)


def open_archive(raw, container: str):
    """The archive bytes of ``raw`` (an open, seekable file) as a seekable stream:
    ``raw`` itself for plain files and per-record gzip (warcio reads the members),
    a streaming decompressor for whole-file gzip, bz2, xz and zstd."""
    import bz2
    import lzma

    if container in ("plain", "gzip-members"):
        return raw
    if container == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if container == "bz2":
        return bz2.BZ2File(raw, mode="rb")
    if container == "xz":
        return lzma.LZMAFile(raw, mode="rb")
    if container == "zstd":
        return io.BufferedReader(_ReopeningReader(lambda: _zstd_reader(raw)), 1 << 20)
    raise InputError("read_drop_unsupported_compression",
                     f"{container}-compressed archive is not supported; decompress it "
                     "or recompress it with gzip, bz2, xz or zstd")


def _next_member(fh, start: int, magic: bytes, limit: int = 1 << 30) -> int | None:
    """Offset of the next ``magic`` at or after ``start``: where to resume after
    a broken record.  Scans in blocks so a damaged 1 GB file is not read whole."""
    fh.seek(start)
    pos, tail, scanned = start, b"", 0
    while scanned < limit:
        block = fh.read(1 << 20)
        if not block:
            return None
        buf = tail + block
        i = buf.find(magic)
        if i >= 0:
            return pos - len(tail) + i
        tail = buf[-(len(magic) - 1):]
        pos += len(block)
        scanned += len(block)
    return None


def _resume_magic(container: str, fh) -> tuple[bytes, int]:
    """(what the next record starts with, how many of its bytes precede the record)."""
    if container == "gzip-members":
        return _GZIP_MAGIC, 0
    fh.seek(0)
    head = fh.read(16)
    fh.seek(0)
    if head.startswith(_WARC_MAGIC) or not head:
        return _WARC_MAGIC, 0
    return _ARC_MAGIC, 1


def iter_warc(path: str, counts: Counts | None = None, start: int = 0,
              end: int | None = None) -> Iterator[Record]:
    """HTML and media responses from one WARC or ARC file.

    The container is told from the file's first bytes, not its name: gzip per
    record (the norm), or the whole file as one gzip, bz2, xz or zstd stream
    (read by streaming decompression; offsets are then positions in the
    decompressed stream).  ARC records are converted to WARC ones by warcio, so
    they keep their URL.  Only ``response`` (and ``resource``) records are kept.
    A record that fails to parse or ends early is counted as
    ``read_drop_malformed_record`` / ``read_drop_truncated_record`` and reading
    resumes at the next record.

    ``start``/``end``: one split of a per-record gzip file (:func:`plan_splits`):
    the records from the first gzip member at or after ``start`` up to, not
    including, the first one at or after ``end``; the splits of a file together
    give its records exactly once.
    """
    counts = counts if counts is not None else Counts("m3w")
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        container = sniff_container(raw)
        if container in UNSUPPORTED_CONTAINERS:
            raise InputError("read_drop_unsupported_compression",
                             f"{path}: {container}-compressed archive is not supported; "
                             "decompress it or recompress it with gzip, bz2, xz or zstd")
        if (start or end is not None) and container != "gzip-members":
            raise ValueError(f"{path}: only per-record gzip WARCs are read in splits")
        fh = open_archive(raw, container)
        if container not in ("plain", "gzip-members"):
            counts.inc("read_files_stream_compressed")
            log.info("%s: whole file %s-compressed; reading it as one stream", path, container)
        if start:
            start = sync_member(fh, start)
            if start is None:
                return
        stop = None if end is None else _Boundary(fh, end)
        yield from _iter_archive(fh, path, container, counts, start, stop)


# ---------------------------------------------------------------- splits

# Per-record gzip WARCs larger than this are read in splits of about this
# many bytes, so the pages of one big file spread over all workers.
SPLIT_BYTES = 16 << 20


def plan_splits(path: str, split_bytes: int = SPLIT_BYTES) -> list[tuple[str, int, int | None]]:
    """``(path, start, end)`` byte ranges that :func:`iter_records` reads; one
    range (0, None) for a file that is small, not a WARC, or not gzipped per
    record (a whole-file stream cannot be entered in the middle)."""
    whole = [(path, 0, None)]
    try:
        if split_bytes <= 0 or input_format(path) != "warc":
            return whole
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if size <= split_bytes * 1.5:
            return whole
        with FileSystems.open(path, compression_type="uncompressed") as raw:
            if sniff_container(raw) != "gzip-members":
                return whole
    except Exception:  # the reader reports an unreadable file, by reason
        return whole
    n = max(1, round(size / split_bytes))
    step = -(-size // n)
    return [(path, i * step, (i + 1) * step if i < n - 1 else None) for i in range(n)]


def _is_record_member(fh, pos: int, cap: int = 1 << 27) -> bool:
    """Whether a whole gzip member (CRC checked) holding a WARC record starts at ``pos``."""
    fh.seek(pos)
    d = zlib.decompressobj(31)
    head, total = b"", 0
    while not d.eof:
        block = fh.read(1 << 16)
        if not block:
            return False
        try:
            out = d.decompress(block)
        except zlib.error:
            return False
        if len(head) < 8:
            head += out[:8]
            if len(head) >= 5 and not head.startswith(_WARC_MAGIC[:len(head)]):
                return False
        total += len(out)
        if total > cap:
            return head.startswith(_WARC_MAGIC)
    return head.startswith(_WARC_MAGIC)


def sync_member(fh, pos: int) -> int | None:
    """The first offset at or after ``pos`` where a gzip member holding a
    whole WARC record starts (None: none before the end of the file)."""
    while True:
        m = _next_member(fh, pos, _GZIP_MAGIC)
        if m is None:
            return None
        if _is_record_member(fh, m):
            return m
        pos = m + 1


class _Boundary:
    """Where a split ends: the first record member at or after ``end``
    (found once, when reading first gets there)."""

    def __init__(self, fh, end: int):
        self.fh, self.end = fh, end
        self._at = ...

    def reached(self, offset: int) -> bool:
        if offset < self.end:
            return False
        if self._at is ...:
            here = self.fh.tell()
            self._at = sync_member(self.fh, self.end)
            self.fh.seek(here)
        return self._at is None or offset >= self._at


def _iter_archive(fh, path: str, container: str, counts: Counts, start: int = 0,
                  stop: _Boundary | None = None) -> Iterator[Record]:
    from warcio.archiveiterator import ArchiveIterator

    magic, lead = _resume_magic(container, fh)
    while start is not None:
        if stop is not None and stop.reached(start):
            return
        fh.seek(start)
        # arc2warc: ARC headers become WARC ones (WARC-Target-URI, WARC-Date, ...)
        it = ArchiveIterator(fh, check_digests=True, arc2warc=True)
        it.INC_RECORD = ""  # warcio prints its own warning to stderr; we count instead
        last, last_end = start, None
        pending: Record | None = None  # held back until the next record proves it whole
        errs = 0

        def release():
            # warcio notices a record whose Content-Length overran its real
            # end only when it reads the next one (err_count goes up).
            nonlocal pending
            rec_, pending = pending, None
            if rec_ is None:
                return None
            if it.err_count != errs:
                counts.inc("read_drop_truncated_record")
                log.warning("%s@%d: WARC record for %s ends early; skipped",
                            path, rec_.offset, rec_.url)
                return None
            return rec_

        try:
            for rec in it:
                done = release()
                if done is not None:
                    yield done
                errs = it.err_count
                keep = rec.rec_type in ("response", "resource")
                body = _raw_body(rec) if keep else b""  # before the offset: that reads to the end
                truncated = getattr(rec.raw_stream, "limit", 0) > 0
                offset = it.get_record_offset()  # absolute: warcio starts from fh.tell()
                if stop is not None and stop.reached(offset):
                    return  # the next split's first record
                last, last_end = offset, offset + it.get_record_length()
                if keep:
                    pending = _kept_record(rec, body, truncated, path, offset, counts)
                    if pending is not None:
                        pending.seekable = container in ("plain", "gzip-members")
            done = release()
            if done is not None:
                yield done
            # warcio ends early at a gzip member cut short in the middle of the
            # file: go on at the next whole record member, if there is one
            start = sync_member(fh, last + 1) if container == "gzip-members" else None
        except Exception as e:  # warcio raises many types on damaged input
            if pending is not None:
                errs = -1  # the record before a parse failure is not trusted
                release()
            if stop is not None and last_end is not None and stop.reached(last_end):
                return  # the broken record is the next split's first: it counts it
            counts.inc("read_drop_malformed_record")
            log.warning("%s@%d: malformed WARC record (%s: %s); resuming at the next record",
                        path, last, type(e).__name__, str(e)[:200])
            # per-record gzip: the next whole record member, as a split starts at
            # (a gzip magic inside damaged data is not taken for a record)
            nxt = (sync_member(fh, last + 1) if container == "gzip-members"
                   else _next_member(fh, last + 1, magic))
            start = None if nxt is None else nxt + lead


def _raw_body(rec) -> bytes:
    """The record's payload with chunked transfer coding undone but the content
    coding left as it is (pipeline.decode undoes that with a bound)."""
    from warcio.bufferedreaders import ChunkedDataReader

    stream = rec.raw_stream
    if rec.http_headers is not None and (
            (rec.http_headers.get_header("Transfer-Encoding") or "").lower() == "chunked"):
        stream = ChunkedDataReader(stream)
    return stream.read(MAX_RECORD_BYTES + 1)


def _kept_record(rec, body: bytes, truncated: bool, path: str, offset: int,
                 counts: Counts) -> Record | None:
    """A response/resource record (its raw body read) as a Record, or None with
    the reason counted."""
    from .decode import ContentEncodingError, decode_content_encoding

    url = rec.rec_headers.get_header("WARC-Target-URI") or ""
    if len(body) > MAX_RECORD_BYTES:
        counts.inc("read_drop_body_too_large")
        log.warning("%s@%d: record body for %s exceeds %d bytes; skipped",
                    path, offset, url, MAX_RECORD_BYTES)
        return None
    if truncated:
        counts.inc("read_drop_truncated_record")
        log.warning("%s@%d: truncated WARC record for %s skipped", path, offset, url)
        return None
    # Only the block digest: some crawls (ClueWeb) write the block
    # digest into WARC-Payload-Digest too, which then never matches.
    checker = getattr(rec, "digest_checker", None)
    if checker is not None and any(
            str(p).startswith("block digest failed") for p in checker.problems):
        counts.inc("read_drop_digest_mismatch")
        log.warning("%s@%d: WARC digest mismatch for %s; skipped", path, offset, url)
        return None
    if rec.http_headers is not None:
        try:
            body, mislabelled = decode_content_encoding(
                body, rec.http_headers.get_header("Content-Encoding"), MAX_RECORD_BYTES)
        except ContentEncodingError as e:
            counts.inc(f"read_drop_{e.reason}")
            log.warning("%s@%d: %s: %s; skipped", path, offset, url, e)
            return None
        if mislabelled:
            counts.inc("read_content_encoding_not_applied")
    return _to_record(rec, body, path, offset, counts)


def _to_record(rec, body: bytes, path: str, offset: int, counts: Counts) -> Record | None:
    """A kept WARC record as a Record, or None (counted) if it is not HTML/media."""
    status = None
    if rec.http_headers is not None and rec.rec_type == "response":
        try:
            status = int(rec.http_headers.get_statuscode() or 0)
        except ValueError:
            status = 0
        ctype = rec.http_headers.get_header("Content-Type")
    else:
        ctype = rec.rec_headers.get_header("Content-Type")
    media, charset = parse_content_type(ctype)
    if status is not None and status != 200:
        counts.inc(f"read_skip_http_{status}")
        return None
    if not (media in HTML_TYPES or is_media_type(media)):
        counts.inc("read_skip_other_type")
        return None
    headers = {}
    if rec.http_headers is not None:
        for k in ("X-Robots-Tag", "Content-Type", "Content-Language"):
            v = rec.http_headers.get_header(k)
            if v:
                headers[k.lower()] = v
    stand_in = rec.rec_headers.get_header(STAND_IN_HEADER)
    if stand_in:
        headers[STAND_IN_KEY] = stand_in
    url = rec.rec_headers.get_header("WARC-Target-URI") or ""
    return Record(url=url, body=body, content_type=media, charset=charset,
                  source=path, offset=offset, headers=headers)


# ---------------------------------------------------------------- HTML / JSONL


def _read_all(path: str) -> bytes:
    with FileSystems.open(path) as fh:  # compression inferred from the suffix
        return fh.read()


def html_file_url(path: str, body: bytes) -> str:
    """The page URL for a bare HTML file: its canonical/og:url link if it
    declares one (so relative image URLs resolve as on the web), else the
    file's own URI."""
    from lxml import html as lh

    try:
        root = lh.document_fromstring(body[:200_000])
        for xp in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
            v = root.xpath(xp)
            if v and v[0].strip().lower().startswith(("http://", "https://")):
                return v[0].strip()
    except Exception:
        pass
    if "://" in path:
        return path
    import pathlib

    return pathlib.Path(path).absolute().as_uri()


def iter_html_file(path: str, counts: Counts | None = None) -> Iterator[Record]:
    counts = counts if counts is not None else Counts("m3w")
    try:
        body = _read_all(path)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        counts.inc("read_drop_unreadable_file")
        log.warning("%s: unreadable HTML file (%s)", path, e)
        return
    yield Record(url=html_file_url(path, body), body=body, content_type="text/html",
                 source=path, offset=0)


def iter_jsonl(path: str, counts: Counts | None = None) -> Iterator[Record]:
    """Lines of {"url": ..., "html": ...}; offset is the 0-based line number."""
    counts = counts if counts is not None else Counts("m3w")
    try:
        data = _read_all(path)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        counts.inc("read_drop_unreadable_file")
        log.warning("%s: unreadable JSONL file (%s)", path, e)
        return
    for lineno, line in enumerate(io.BytesIO(data)):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            url, html = obj["url"], obj["html"]
            if not isinstance(url, str) or not isinstance(html, str):
                raise TypeError("url and html must be strings")
        except (ValueError, KeyError, TypeError) as e:
            counts.inc("read_drop_malformed_record")
            log.warning("%s line %d: malformed JSONL record (%s)", path, lineno + 1, e)
            continue
        yield Record(url=url, body=html.encode("utf-8"), content_type="text/html",
                     charset="utf-8", source=path, offset=lineno)


def iter_records(path: str, counts: Counts | None = None, start: int = 0,
                 end: int | None = None) -> Iterator[Record]:
    """The records of one input file, or of one split of it (:func:`plan_splits`)."""
    fmt = input_format(path)
    if fmt == "warc":
        yield from iter_warc(path, counts, start, end)
    elif fmt == "jsonl":
        yield from iter_jsonl(path, counts)
    else:
        yield from iter_html_file(path, counts)


def read_record_at(path: str, offset: int) -> Record | None:
    """The record at ``offset`` of a plain or per-record gzip WARC (a
    :attr:`Record.seekable` record read again: archived media are carried
    through the job as ``(source, offset)``); None if it is not there any more."""
    counts = Counts("unused")
    with FileSystems.open(path, compression_type="uncompressed") as raw:
        container = sniff_container(raw)
        if container not in ("plain", "gzip-members"):
            return None
        for rec in _iter_archive(raw, path, container, counts, offset, _OneRecord(offset)):
            return rec if rec.offset == offset else None
    return None


class _OneRecord(_Boundary):
    """Stop right after the record at ``offset``."""

    def __init__(self, offset: int):
        self.offset = offset

    def reached(self, offset: int) -> bool:
        return offset > self.offset


class _ReadFile(CountingDoFn):
    """(path, start, end) → the records of that split of the file."""

    def __init__(self, namespace: str, progress_dir: str | None):
        self.namespace = namespace
        self.progress_dir = progress_dir

    def process(self, split):
        path, start, end = split
        n = 0
        try:
            for rec in iter_records(path, self.counts, start, end):
                n += 1
                self.counts.inc("records_read")
                yield rec
        except InputError as e:
            self.counts.inc(e.reason)
            log.warning("%s", e)
        except Exception as e:  # one unreadable file never stops the job
            self.counts.inc("read_drop_unreadable_file")
            log.warning("%s: stopped reading after %d records (%s: %s)", path, n, type(e).__name__, e)
        from .forkworkers import release_free_memory

        release_free_memory()   # the split's pages are processed (fused): their memory is free


class ReadInputs(beam.PTransform):
    """Globs → Records (HTML pages and archived media), spread across workers:
    each big per-record gzip WARC is read in byte-range splits (plan_splits),
    so even a single input file keeps every worker busy; the records are not
    shuffled (the pages are processed where they are read)."""

    def __init__(self, patterns: list[str], namespace: str = "m3w",
                 progress_dir: str | None = None, split_bytes: int = SPLIT_BYTES):
        super().__init__()
        self.patterns = list(patterns)
        self.namespace = namespace
        self.progress_dir = progress_dir
        self.split_bytes = split_bytes

    def expand(self, pbegin):
        files = expand_globs(self.patterns)
        check_inputs(files)  # an input it cannot read is an error before the job starts
        split_bytes = self.split_bytes
        return (pbegin
                | "ListFiles" >> beam.Create(files)
                | "SpreadFiles" >> beam.Reshuffle()
                | "PlanSplits" >> beam.FlatMap(plan_splits, split_bytes)
                | "SpreadSplits" >> beam.Reshuffle()
                | "ReadRecords" >> beam.ParDo(_ReadFile(self.namespace, self.progress_dir)))
