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
    raw = FileSystems.open(path, compression_type="uncompressed").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode("utf-8-sig"))


def _item(row: dict, cfg: ListConfig, path: str, n: int, counts: Counts) -> ListItem | None:
    url = row.get(cfg.url_col)
    if not isinstance(url, str) or not url.strip():
        counts.inc("list_drop_missing_url")
        return None
    cap = row.get(cfg.caption_col) if cfg.caption_col else None
    cap = cap if isinstance(cap, str) else ("" if cap is None else str(cap))
    return ListItem(url=url.strip(), caption=cap, source=path, offset=n)


def _need(columns, cfg: ListConfig, path: str) -> None:
    if cfg.url_col not in columns:
        raise ListFormatError(f"{path}: no url column {cfg.url_col!r} (columns: "
                              f"{', '.join(map(str, columns))}); set --url-col")


def _iter_delimited(path: str, delimiter: str, cfg: ListConfig, counts: Counts):
    reader = csv.DictReader(_open_text(path), delimiter=delimiter)
    _need(reader.fieldnames or [], cfg, path)
    for n, row in enumerate(reader):
        it = _item(row, cfg, path, n, counts)
        if it is not None:
            yield it


def _iter_jsonl(path: str, cfg: ListConfig, counts: Counts):
    for n, line in enumerate(_open_text(path)):
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


def _iter_parquet(path: str, cfg: ListConfig, counts: Counts):
    import pyarrow.parquet as pq

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        pf = pq.ParquetFile(io.BytesIO(fh.read()))
    names = pf.schema_arrow.names
    _need(names, cfg, path)
    cols = [c for c in (cfg.url_col, cfg.caption_col) if c and c in names]
    n = 0
    for batch in pf.iter_batches(columns=cols, batch_size=8192):
        for row in batch.to_pylist():
            it = _item(row, cfg, path, n, counts)
            n += 1
            if it is not None:
                yield it


def _iter_webdataset(path: str, counts: Counts):
    """img2dataset shards: members grouped by key (everything before the first dot)."""
    with FileSystems.open(path, compression_type="uncompressed") as fh:
        data = fh.read()
    groups: dict[str, dict] = {}
    order: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            if not m.isfile():
                continue
            base = m.name.rsplit("/", 1)[-1]
            key, _, ext = base.partition(".")
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][ext] = tar.extractfile(m).read()
    for n, key in enumerate(order):
        g = groups[key]
        image = g.get("jpg") or g.get("jpeg") or g.get("png") or g.get("webp")
        try:
            meta = json.loads(g["json"]) if "json" in g else {}
        except ValueError:
            meta = {}
        url = meta.get("url") if isinstance(meta, dict) else None
        caption = g["txt"].decode("utf-8", "replace") if "txt" in g else (meta.get("caption") or "")
        if not url or not image:
            counts.inc("list_drop_incomplete_sample")
            log.warning("%s: sample %s lacks %s", path, key, "its url" if not url else "an image")
            continue
        extra = {k: meta[k] for k in ("key", "sha256", "original_width", "original_height")
                 if k in meta}
        yield ListItem(url=url, caption=caption, source=path, offset=n, image=image, extra=extra)


def iter_list(path: str, cfg: ListConfig = ListConfig(), counts: Counts | None = None
              ) -> Iterator[ListItem]:
    counts = counts or Counts("pairs")
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
        yield from _iter_webdataset(path, counts)


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
