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


def input_format(path: str) -> str:
    p = path.lower()
    for suffix in (".gz", ".bz2", ".zst"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    if p.endswith((".warc", ".arc")):
        return "warc"
    if p.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if p.endswith((".html", ".htm", ".xhtml")):
        return "html"
    raise ValueError(f"{path}: cannot tell the input format from the file name "
                     "(expected .warc[.gz], .jsonl[.gz] or .html[.gz])")


# ---------------------------------------------------------------- WARC

_GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_MAGIC = b"WARC/"


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


def iter_warc(path: str, counts: Counts | None = None) -> Iterator[Record]:
    """HTML and media responses from one WARC (gzip per record, or plain).

    Only ``response`` (and ``resource``) records are kept.  A record that fails
    to parse or ends early is counted as ``read_drop_malformed_record`` /
    ``read_drop_truncated_record`` and reading resumes at the next record.
    """
    from warcio.archiveiterator import ArchiveIterator

    counts = counts if counts is not None else Counts("m3w")
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        head = fh.read(3)
        magic = _GZIP_MAGIC if head == _GZIP_MAGIC else _WARC_MAGIC
        start = 0
        while start is not None:
            fh.seek(start)
            it = ArchiveIterator(fh, check_digests=True)
            it.INC_RECORD = ""  # warcio prints its own warning to stderr; we count instead
            last = start
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
                    rtype = rec.rec_type
                    keep = rtype in ("response", "resource")
                    body = b""
                    if keep:
                        # content_stream undoes chunked and gzip transfer encodings.
                        body = rec.content_stream().read(MAX_RECORD_BYTES + 1)
                    truncated = getattr(rec.raw_stream, "limit", 0) > 0
                    offset = it.get_record_offset() + start
                    last = offset
                    if not keep:
                        continue
                    url = rec.rec_headers.get_header("WARC-Target-URI") or ""
                    if len(body) > MAX_RECORD_BYTES:
                        counts.inc("read_drop_body_too_large")
                        log.warning("%s@%d: record body for %s exceeds %d bytes once decoded; skipped",
                                    path, offset, url, MAX_RECORD_BYTES)
                        continue
                    if truncated:
                        counts.inc("read_drop_truncated_record")
                        log.warning("%s@%d: truncated WARC record for %s skipped", path, offset, url)
                        continue
                    # Only the block digest: some crawls (ClueWeb) write the block
                    # digest into WARC-Payload-Digest too, which then never matches.
                    checker = getattr(rec, "digest_checker", None)
                    if checker is not None and any(
                            str(p).startswith("block digest failed") for p in checker.problems):
                        counts.inc("read_drop_digest_mismatch")
                        log.warning("%s@%d: WARC digest mismatch for %s; skipped", path, offset, url)
                        continue
                    pending = _to_record(rec, body, path, offset, counts)
                done = release()
                if done is not None:
                    yield done
                start = None
            except Exception as e:  # warcio raises many types on damaged input
                if pending is not None:
                    errs = -1  # the record before a parse failure is not trusted
                    release()
                counts.inc("read_drop_malformed_record")
                log.warning("%s@%d: malformed WARC record (%s: %s); resuming at the next record",
                            path, last, type(e).__name__, str(e)[:200])
                start = _next_member(fh, last + 1, magic)


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


def iter_records(path: str, counts: Counts | None = None) -> Iterator[Record]:
    fmt = input_format(path)
    if fmt == "warc":
        yield from iter_warc(path, counts)
    elif fmt == "jsonl":
        yield from iter_jsonl(path, counts)
    else:
        yield from iter_html_file(path, counts)


class _ReadFile(CountingDoFn):
    def __init__(self, namespace: str, progress_dir: str | None):
        self.namespace = namespace
        self.progress_dir = progress_dir

    def process(self, path: str):
        n = 0
        try:
            for rec in iter_records(path, self.counts):
                n += 1
                self.counts.inc("records_read")
                yield rec
        except Exception as e:  # one unreadable file never stops the job
            self.counts.inc("read_drop_unreadable_file")
            log.warning("%s: stopped reading after %d records (%s: %s)", path, n, type(e).__name__, e)


class ReadInputs(beam.PTransform):
    """Globs → Records (HTML pages and archived media), spread across workers."""

    def __init__(self, patterns: list[str], namespace: str = "m3w",
                 progress_dir: str | None = None):
        super().__init__()
        self.patterns = list(patterns)
        self.namespace = namespace
        self.progress_dir = progress_dir

    def expand(self, pbegin):
        files = expand_globs(self.patterns)
        return (pbegin
                | "ListFiles" >> beam.Create(files)
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadRecords" >> beam.ParDo(_ReadFile(self.namespace, self.progress_dir)))
