"""List inputs for the pairs and videos jobs: the files img2dataset users already have.

- ``.csv``, ``.tsv``, ``.parquet``, ``.jsonl`` (``.json``/``.ndjson``; ``.gz`` for the
  text formats): one row per media URL, with configurable url and caption
  columns (``--url-col``, ``--caption-col``, as in img2dataset);
- ``.tar``: webdataset shards made by img2dataset (``KEY.jpg`` + ``KEY.txt`` +
  ``KEY.json`` with the original url): the image bytes come with the row, so
  they are re-filtered, re-hashed, re-deduplicated and re-sharded without a fetch.

Each row becomes a :class:`ListItem` with its provenance (file, row number).  A
row without a url is counted (``list_drop_missing_url``); a file that lacks the
url column is counted once (``read_drop_missing_column``) and named in the log,
and the other files are still read.

Every format is streamed: text lists line by line (csv cells may be up to
``MAX_CSV_FIELD`` characters, far above Python's default 131,072, said once
per file; the file stops at a longer one, counted), parquet by record batch (a url/caption column of
another type, e.g. binary, is cast to text and said so), tars member by member
with a size cap (``--tar-max-member-bytes``): an oversized member (a 2 GiB
sparse file in a 200 KiB tar) is skipped unread and its sample counted, and a
tar cut short keeps every sample before the cut and counts the cut.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from .jobs import CountingDoFn
from .progress import Counts
from .read import expand_globs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListConfig:
    url_col: str = "url"
    caption_col: str = "caption"
    # A tar member above this is skipped unread (its sample counted): the fetch cap for images.
    tar_max_member_bytes: int = 20_000_000


# Python's csv module stops at 131,072 characters per cell by default; long
# alt texts / HTML snippets in real lists exceed that.  Raised to this; past it
# the csv parser cannot find the next row again, so the file stops there (counted).
CSV_DEFAULT_FIELD_LIMIT = 131_072
MAX_CSV_FIELD = 64 << 20


@dataclass
class ListItem:
    url: str
    caption: str
    source: str          # list file
    offset: int          # 0-based row (or sample) number in the file
    image: bytes | None = None   # the image bytes, for img2dataset shards
    extra: dict = field(default_factory=dict)


class ListFormatError(ValueError):
    """A list file that cannot be read as its format (names the file and what is wrong)."""


def list_format(path: str) -> str:
    p = path.lower()
    if p.endswith(".gz"):
        p = p[:-3]
    for ext, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".parquet", "parquet"),
                     (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"),
                     (".tar", "webdataset")):
        if p.endswith(ext):
            return fmt
    raise ListFormatError(f"{path}: cannot tell the list format from the file name "
                          "(expected .csv, .tsv, .parquet, .jsonl[.gz] or an img2dataset .tar)")


def _open_text(path: str):
    """The file as a text stream (gzip told from its first bytes), read lazily."""
    raw = FileSystems.open(path, compression_type="uncompressed")
    head = raw.read(2)
    raw.seek(0)
    binary = gzip.GzipFile(fileobj=raw, mode="rb") if head == b"\x1f\x8b" else raw
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def _text(value) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def _item(row: dict, cfg: ListConfig, path: str, n: int, counts: Counts) -> ListItem | None:
    url = _text(row.get(cfg.url_col))
    if not url or not url.strip():
        counts.inc("list_drop_missing_url")
        return None
    cap = row.get(cfg.caption_col) if cfg.caption_col else None
    cap = _text(cap) if _text(cap) is not None else ("" if cap is None else str(cap))
    return ListItem(url=url.strip(), caption=cap, source=path, offset=n)


def _need(columns, cfg: ListConfig, path: str) -> None:
    if cfg.url_col not in columns:
        raise ListFormatError(f"{path}: no url column {cfg.url_col!r} (columns: "
                              f"{', '.join(map(str, columns))}); set --url-col")


def _iter_delimited(path: str, delimiter: str, cfg: ListConfig, counts: Counts):
    if csv.field_size_limit() < MAX_CSV_FIELD:
        csv.field_size_limit(MAX_CSV_FIELD)
    with _open_text(path) as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            header = reader.fieldnames or []
        except csv.Error as e:
            raise ListFormatError(f"{path}: unreadable header row ({e})") from None
        _need(header, cfg, path)
        n = 0
        said_long = False
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # a cell over MAX_CSV_FIELD (or broken quoting)
                counts.inc("list_drop_unparsable_rest")
                log.warning("%s line %d: %s; the rest of the file is not read (%d rows read)",
                            path, reader.line_num, e, n)
                return
            longest = max((len(v) for v in row.values() if isinstance(v, str)), default=0)
            if longest > CSV_DEFAULT_FIELD_LIMIT:
                counts.inc("list_rows_long_field")
                if not said_long:
                    said_long = True
                    log.warning("%s line %d: a %d-character cell, over Python csv's default limit "
                                "of %d; read with the limit raised to %d", path, reader.line_num,
                                longest, CSV_DEFAULT_FIELD_LIMIT, MAX_CSV_FIELD)
            it = _item(row, cfg, path, n, counts)
            n += 1
            if it is not None:
                yield it


def _iter_jsonl(path: str, cfg: ListConfig, counts: Counts):
    for n, line in enumerate(_open_text(path)):  # noqa: SIM115 (closed with the generator)
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError("not an object")
        except (ValueError, TypeError) as e:
            counts.inc("list_drop_malformed_row")
            log.warning("%s line %d: malformed JSONL row (%s)", path, n + 1, e)
            continue
        it = _item(row, cfg, path, n, counts)
        if it is not None:
            yield it


def _as_text_column(batch, name: str, path: str, said: set, counts: Counts):
    """The column as strings: binary / large / dictionary / numeric columns are
    cast (and said so once per file), since a url is text whatever the writer chose."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column(name)
    if pa.types.is_string(col.type):
        return col
    try:
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        out = col if pa.types.is_string(col.type) else pc.cast(col, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise ListFormatError(f"{path}: column {name!r} of type {col.type} cannot be read as "
                              f"text ({str(e).splitlines()[0]})") from None
    if name not in said:
        said.add(name)
        counts.inc("list_column_cast_to_text")
        log.warning("%s: column %r is %s; cast to string", path, name, batch.schema.field(name).type)
    return out


def _iter_parquet(path: str, cfg: ListConfig, counts: Counts):
    import pyarrow.parquet as pq

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        pf = pq.ParquetFile(fh)
        names = pf.schema_arrow.names
        _need(names, cfg, path)
        cols = [c for c in (cfg.url_col, cfg.caption_col) if c and c in names]
        n, said = 0, set()
        for batch in pf.iter_batches(columns=cols, batch_size=8192):
            columns = {c: _as_text_column(batch, c, path, said, counts).to_pylist() for c in cols}
            for i in range(batch.num_rows):
                it = _item({c: v[i] for c, v in columns.items()}, cfg, path, n, counts)
                n += 1
                if it is not None:
                    yield it


# ---------------------------------------------------------------- img2dataset tars

_IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


class _Sample:
    """The members of one sample (consecutive members sharing a key)."""

    def __init__(self, key: str):
        self.key, self.members, self.too_large = key, {}, None


def _finish_sample(s: _Sample, path: str, n: int, counts: Counts) -> ListItem | None:
    if s.too_large is not None:
        counts.inc("list_drop_member_too_large")
        return None
    g = s.members
    image = next((g[e] for e in _IMAGE_EXTS if e in g), None)
    try:
        meta = json.loads(g["json"]) if "json" in g else {}
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    url = meta.get("url")
    caption = g["txt"].decode("utf-8", "replace") if "txt" in g else (meta.get("caption") or "")
    if not isinstance(url, str) or not url or not image:
        counts.inc("list_drop_incomplete_sample")
        log.warning("%s: sample %s lacks %s", path, s.key, "its url" if not url else "an image")
        return None
    extra = {k: meta[k] for k in ("key", "sha256", "original_width", "original_height") if k in meta}
    return ListItem(url=url, caption=caption, source=path, offset=n, image=image, extra=extra)


def _iter_webdataset(path: str, cfg: ListConfig, counts: Counts):
    """img2dataset shards, streamed: members grouped by key (everything before
    the first dot of the name, as webdataset does) and each sample yielded as
    soon as the next key starts, so memory holds one sample."""
    cap = cfg.tar_max_member_bytes
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        tar = tarfile.open(fileobj=fh, mode="r:")
        cur: _Sample | None = None
        n = 0
        member = None
        try:
            for member in tar:
                if member.isdir():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key, _, ext = base.partition(".")
                if cur is None or key != cur.key:
                    if cur is not None:
                        item = _finish_sample(cur, path, n, counts)
                        n += 1
                        if item is not None:
                            yield item
                    cur = _Sample(key)
                if not member.isfile():
                    counts.inc("list_skip_non_file_member")
                    continue
                if member.size > cap:
                    if cur.too_large is None:
                        log.warning("%s: member %s is %d bytes, over --tar-max-member-bytes %d; "
                                    "sample %s skipped", path, member.name, member.size, cap, key)
                    cur.too_large = member.name
                    continue
                if cur.too_large is None:
                    cur.members[ext.lower()] = tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError) as e:
            # cut inside a member's data: that sample is incomplete
            counts.inc("list_drop_truncated_tar")
            where = f"member {member.name}" if member is not None else "its first header"
            log.warning("%s: tar cut short in %s (%s); %d samples before the cut kept",
                        path, where, e, n)
            if cur is not None:
                counts.inc("list_drop_cut_sample")
            return
        # tarfile ends quietly at a header it cannot read: the archive must end
        # with a zero block there, or it was cut (or damaged) inside a header.
        fh.seek(tar.offset)
        end = fh.read(tarfile.BLOCKSIZE)
        if cur is not None:
            item = _finish_sample(cur, path, n, counts)
            n += 1
            if item is not None:
                yield item
        if len(end) < tarfile.BLOCKSIZE or end.count(0) != tarfile.BLOCKSIZE:
            counts.inc("list_drop_truncated_tar")
            after = f"after member {member.name}" if member is not None else "at its first header"
            log.warning("%s: tar cut short or damaged at byte %d (%s); %d samples before it kept",
                        path, tar.offset, after, n)


def iter_list(path: str, cfg: ListConfig = ListConfig(), counts: Counts | None = None
              ) -> Iterator[ListItem]:
    counts = counts if counts is not None else Counts("pairs")
    fmt = list_format(path)
    if fmt == "csv":
        yield from _iter_delimited(path, ",", cfg, counts)
    elif fmt == "tsv":
        yield from _iter_delimited(path, "\t", cfg, counts)
    elif fmt == "jsonl":
        yield from _iter_jsonl(path, cfg, counts)
    elif fmt == "parquet":
        yield from _iter_parquet(path, cfg, counts)
    else:
        yield from _iter_webdataset(path, cfg, counts)


class _ReadList(CountingDoFn):
    def __init__(self, cfg: ListConfig, namespace: str, progress_dir: str | None):
        self.cfg, self.namespace, self.progress_dir = cfg, namespace, progress_dir

    def process(self, path: str):
        n = 0
        try:
            for item in iter_list(path, self.cfg, self.counts):
                n += 1
                self.counts.inc("list_rows")
                yield item
        except ListFormatError as e:
            self.counts.inc("read_drop_missing_column")
            log.warning("%s", e)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError,
                UnicodeDecodeError, csv.Error, ValueError) as e:
            self.counts.inc("read_drop_unreadable_file")
            log.warning("%s: stopped reading after %d rows (%s: %s)", path, n, type(e).__name__, e)


class ReadLists(beam.PTransform):
    """List file globs → ListItems, files spread across workers."""

    def __init__(self, patterns: list[str], cfg: ListConfig = ListConfig(), namespace: str = "pairs",
                 progress_dir: str | None = None):
        super().__init__()
        self.patterns, self.cfg = list(patterns), cfg
        self.namespace, self.progress_dir = namespace, progress_dir

    def expand(self, pbegin):
        files = expand_globs(self.patterns)
        for f in files:
            list_format(f)  # a file of unknown format is an error before the job starts
        return (pbegin
                | "ListListFiles" >> beam.Create(files)
                | "SpreadListFiles" >> beam.Reshuffle()
                | "ReadListRows" >> beam.ParDo(_ReadList(self.cfg, self.namespace, self.progress_dir)))
