"""The M3W job: web pages → interleaved image-text documents → webdataset shards.

    python -m pipeline.m3w --input 'crawl/*.warc.gz' --output out/m3w [flags] [beam flags]

Graph (each step a named transform; drops counted by reason in Beam Metrics):

    ReadInputs (files → byte-range splits of big per-record gzip WARCs, spread
    over the workers; each split read where it lands, fused with ExtractDocuments)
      ─┬─ pages ─ ExtractDocuments ─ DedupByKey ─ DropNearDuplicates ─┬──────── docs ─┐
       └─ media: (URL, where the record is), not its bytes ┐          └ ImageRequests ┐ │
                                   JoinMediaByURL ─ ResolveMedia ──────────────────────┤ │
           archived → ArchivedBytes (read again) → ProcessImages;                      │ │
           missing → media cache / FetchByHost → ProcessImages                         │ │
                                                     image results ─ JoinDocsAndImages ┘
                                   AssembleSamples ─ AssignShards ─ WriteShards
    driver: manifest.json, stats.json, funnel.png, summary

Page HTML never leaves the stage that reads it; what crosses a shuffle is the
candidate document (text and image references), media pointers and image
results.  DropNearDuplicates hashes each distinct text once (exact duplicates
are grouped first) and runs MinHash only on the first document of each text.
"""
from __future__ import annotations

if __name__ == "__main__":  # flags checked before Beam is imported: --help and mistakes answer at once
    from pipeline.cli import precheck

    precheck("m3w")

import argparse
import hashlib
import json
import logging
import os
import sys
import zlib
from dataclasses import dataclass

import apache_beam as beam

from apache_beam.io.filesystems import FileSystems

from dedup.apply import match_record
from dedup.corpus import FrequentImages, NearDupDocs
from dedup.index import EvalIndex
from shards.schema import STAND_IN
from shards.writer import write_bytes_atomic

from . import dropped
from .documents import (assemble_sample, candidate_document, eval_matches, image_requests,
                        media_key)
from .extract import ExtractConfig
from .cache import cache_dir_from_args
from .fetch import FetchConfig
from .filters import FilterConfig, LangId
from .images import ImageConfig
from .options import as_json, dataclass_from_args
from .media import FetchMedia, ProcessImages, ResolveMedia, fetch_outcome, noai
from .jobs import (CountingDoFn, drive, quiet_beam_logging)
from .read import ReadInputs, expand_globs, read_record_at
from .write import AssignAndWriteShards

log = logging.getLogger("pipeline.m3w")
NS = "m3w"


class ExtractDocuments(CountingDoFn):
    """Page records → candidate documents; archived media pass through tagged."""

    MEDIA = "media"

    def __init__(self, fcfg: FilterConfig, ecfg: ExtractConfig, progress_dir=None):
        self.fcfg, self.ecfg, self.progress_dir = fcfg, ecfg, progress_dir

    def setup(self):
        from .forkworkers import preloaded

        super().setup()
        # loaded once in the fork server and shared by its workers (build_m3w)
        self.langid = preloaded(LANGID, load_langid)

    def process(self, rec):
        if rec.is_media:
            if rec.content_type.startswith("image/"):
                self.counts.inc("archived_images")
                yield beam.pvalue.TaggedOutput(self.MEDIA, (media_key(rec.url),
                                                            (archived_ref(rec), rec.headers)))
            return
        self.counts.inc("pages")
        src = {"file": rec.source, "offset": rec.offset}
        if noai(rec.headers):
            yield from self.drop("page_noai", counter="page_drop_noai", what="page", url=rec.url,
                                 source=src, x_robots_tag=rec.headers.get("x-robots-tag"))
            return
        try:
            out = candidate_document(rec, self.fcfg, self.ecfg, self.langid,
                                     keep=self.keep_dropped is not None)
        except (OSError, MemoryError):
            raise  # the machine's problem (disk, memory), not the page's: fail loudly
        except Exception as e:  # one broken page never stops the job
            log.warning("%s@%d (%s): extraction failed: %s: %s", rec.source, rec.offset,
                        rec.url, type(e).__name__, e)
            yield from self.drop("page_extract_error", counter="page_drop_extract_error",
                                 what="page", url=rec.url, source=src,
                                 error=f"{type(e).__name__}: {str(e)[:300]}")
            return
        for reason, n in out.drops.items():
            self.counts.inc(f"drop_{reason}", n)
        yield from dropped.emit(out.victims)
        if out.extra_parts:  # a page over doc_max_words gives several
            self.counts.inc("document_split_extra_parts", out.extra_parts)
        for doc in out.values():
            self.counts.inc("candidate_documents")
            yield doc


LANGID = "m3w.langid"


def load_langid() -> LangId:
    return LangId().load()


def archived_ref(rec) -> tuple:
    """What travels through the media join for an archived image: where to read
    it again (seekable WARCs: no image bytes held by the join), or the bytes
    (whole-file-compressed inputs); size and crc32 check the re-read."""
    size, crc = len(rec.body), zlib.crc32(rec.body)
    if rec.seekable:
        return ("at", size, crc, rec.source, rec.offset)
    return ("bytes", size, crc, rec.body)


class ArchivedBytes(CountingDoFn):
    """ResolveMedia's archived payloads, the image bytes read again from their
    WARC record (:func:`archived_ref`); a record that cannot be read back as it
    was is a failed image (``archived_unreadable``), counted."""

    def __init__(self, progress_dir=None):
        self.progress_dir = progress_dir

    def process(self, element):
        url, refs, failed, payload = element
        if payload is None:
            yield element
            return
        ref = payload[0]
        body = ref[3] if ref[0] == "bytes" else _read_again(ref)
        if body is None or len(body) != ref[1] or zlib.crc32(body) != ref[2]:
            self.counts.inc("images_archived_unreadable")
            log.warning("%s: archived image at %s@%s could not be read again", url, ref[3],
                        ref[4] if len(ref) > 4 else "")
            yield url, refs, {"ok": False, "reason": "archived_unreadable"}, None
            return
        yield url, refs, None, (body, *payload[1:])


def _read_again(ref) -> bytes | None:
    _, _, _, source, offset = ref
    try:
        rec = read_record_at(source, offset)
    except Exception as e:  # the file went away or changed under the job
        log.warning("%s@%d: %s: %s", source, offset, type(e).__name__, e)
        return None
    return None if rec is None else rec.body


def _first_by_source(docs):
    """Same URL read twice (two crawls, two inputs): keep the earliest source."""
    return min(docs, key=lambda d: (d["source"]["file"], d["source"]["offset"]))


@dataclass(frozen=True)
class DedupConfig:
    index: str = ""                  # eval index file (make dedup-index); empty: no eval dedup
    action: str = "drop"             # drop | tag
    max_docs_per_image: int = 10     # OBELICS: drop images in more documents; 0: off
    near_dup_threshold: float = 0.8  # MinHash LSH Jaccard for near-duplicate documents; 0: off


class AssembleSamples(CountingDoFn):
    """Document + its image results → sample; eval-set and within-corpus dedup
    decisions are applied here, where image hashes and text are both known."""

    MATCHES = "matches"

    def __init__(self, fcfg: FilterConfig, dcfg: "DedupConfig", out_dir: str, progress_dir=None):
        self.fcfg, self.dcfg, self.out_dir, self.progress_dir = fcfg, dcfg, out_dir, progress_dir

    def process(self, element, index=None, frequent=()):
        key, grouped = element
        docs = list(grouped["doc"])
        if not docs:
            return
        doc = docs[0]
        images = dict(grouped["images"])
        drop, tags = set(), {}
        if index is not None:
            by_image, text_hits = eval_matches(
                doc, images, index, lambda i: self.counts.inc("images_eval_verify_hashed"))
            for i, ms in sorted(by_image.items()):
                thumb = self._thumbnail(key, i, images[i]["jpeg"])
                url = next(n["url"] for n in doc["nodes"] if n.get("image") == i)
                for m in ms:
                    yield beam.pvalue.TaggedOutput(self.MATCHES, match_record(m, key, url, thumb))
            for text, m in text_hits:
                yield beam.pvalue.TaggedOutput(self.MATCHES, match_record(
                    m, key, doc["url"], train_text=text))
            if self.dcfg.action == "drop":
                if text_hits:
                    yield from self.drop(
                        "document_eval_text_contamination", what="document", url=doc["url"],
                        text=text_hits[0][0], source=doc["source"], title=doc["title"],
                        matches=[m.to_json() for _, m in text_hits][:5])
                    return
                drop = set(by_image)
            else:
                tags = {i: [m.to_json() for m in ms] for i, ms in by_image.items()}
                if text_hits:
                    doc = dict(doc, eval_text_matches=[m.to_json() for _, m in text_hits])
        out = assemble_sample(doc, images, self.fcfg, dedup_drop=drop, dedup_tags=tags,
                              frequent=self._frequent_set(frequent),
                              keep=self.keep_dropped is not None)
        for reason, n in out.drops.items():
            self.counts.inc(f"drop_{reason}", n)
        yield from dropped.emit(out.victims)
        if out.value is not None:
            if doc.get("eval_text_matches"):
                out.value["json"]["eval_text_matches"] = doc["eval_text_matches"]
            self.counts.inc("documents")
            self.counts.inc("images_kept", len(out.value["json"]["images"]))
            yield out.value

    def _frequent_set(self, frequent) -> frozenset:
        """The side input as a set, built once per side-input object, not per document."""
        if getattr(self, "_frequent_src", None) is not frequent:
            self._frequent_src, self._frequent = frequent, frozenset(frequent)
        return self._frequent

    def _thumbnail(self, key: str, i: int, jpeg: bytes) -> str:
        """Matched training images may leave the corpus; keep a copy for the report."""
        from apache_beam.io.filesystems import FileSystems

        path = FileSystems.join(self.out_dir, "dedup_thumbs", f"{key}.{i}.jpg")
        write_bytes_atomic(path, jpeg)
        return path


def build_m3w(p, inputs, out_dir, fcfg, ecfg, icfg, fetch_cfg, run_id, samples_per_shard,
              fetch=True, progress_dir=None, dcfg: DedupConfig = DedupConfig(),
              media_cache: str | None = None, keep: dropped.KeepDropped | None = None):
    """Add the M3W graph to pipeline ``p``; returns the PCollection of shard infos.
    ``keep`` (--keep-dropped): also write the victims to OUTPUT/dropped/."""
    from .forkworkers import preload

    preload(LANGID, load_langid)   # once in the fork server, not once per worker
    records = p | "ReadInputs" >> ReadInputs(inputs, NS, progress_dir)
    extracted = records | "ExtractDocuments" >> beam.ParDo(
        ExtractDocuments(fcfg, ecfg, progress_dir).keeping(keep)).with_outputs(
            ExtractDocuments.MEDIA, dropped.DROPPED, main="docs")
    victims = [extracted[dropped.DROPPED]]
    keyed = extracted.docs | "KeyDocs" >> beam.Map(lambda d: (d["key"], d))
    if dcfg.near_dup_threshold > 0:
        # one shuffle of the documents for both: same URL twice, near-duplicates
        docs, near_dups = keyed | "DedupByKeyAndText" >> DropNearDuplicateDocs(
            dcfg.near_dup_threshold, progress_dir, keep)
        victims.append(near_dups)
    else:
        docs = keyed | "DedupByKey" >> beam.CombinePerKey(_first_by_source)
    refs = docs | "ImageRequests" >> beam.FlatMap(lambda kv: image_requests(kv[1]))
    resolved = ({"refs": refs, "archived": extracted[ExtractDocuments.MEDIA]}
                | "JoinMediaByURL" >> beam.CoGroupByKey()
                | "ResolveMedia" >> beam.ParDo(ResolveMedia(progress_dir)).with_outputs(
                    ResolveMedia.FETCH, main="ready"))
    # Image bytes are decoded where they arrive (fused with the read-again or the
    # fetch); only the results are flattened (the DirectRunner holds a
    # flattened PCollection whole).
    def process(pcoll, label):
        return pcoll | f"ProcessImages{label}" >> beam.ParDo(
            ProcessImages(icfg, progress_dir).keeping(keep))

    results = [process(resolved.ready
                       | "ArchivedBytes" >> beam.ParDo(ArchivedBytes(progress_dir)), "Archived")]
    if fetch:
        results.append(resolved[ResolveMedia.FETCH]
                       | "FetchByHost" >> FetchMedia(
                           fetch_cfg, NS, media_cache, progress_dir,
                           then=lambda pc, label: process(
                               pc | f"FetchOutcome{label}" >> beam.Map(fetch_outcome), label)))
    else:
        results.append(process(resolved[ResolveMedia.FETCH]
                               | "NotArchived" >> beam.Map(
                                   lambda e: (e[0], e[1], {"ok": False, "reason": "not_archived"},
                                              None)), "Offline"))
    image_results = results | "AllImages" >> beam.Flatten()
    side = {}
    if dcfg.max_docs_per_image > 0:
        # A marked stand-in (the bundled sample's photo in place of a page's
        # lost image) is not counted: its hash is the stand-in's, and the
        # sample reuses 23 photos across 89 pages.
        frequent = (image_results
                    | "ImageHashDocs" >> beam.FlatMap(
                        lambda kv: [(kv[1][1]["phash"], kv[0])]
                        if kv[1][1]["ok"] and not kv[1][1].get(STAND_IN) else [])
                    | "FrequentImages" >> FrequentImages(dcfg.max_docs_per_image))
        side["frequent"] = beam.pvalue.AsList(frequent)
    if dcfg.index:
        # The eval index travels to the workers as a side input (loaded once).
        index = (p | "EvalIndexPath" >> beam.Create([dcfg.index])
                 | "LoadEvalIndex" >> beam.Map(EvalIndex.load))
        side["index"] = beam.pvalue.AsSingleton(index)
    assembled = ({"doc": docs, "images": image_results}
                 | "JoinDocsAndImages" >> beam.CoGroupByKey()
                 | "AssembleSamples" >> beam.ParDo(
                     AssembleSamples(fcfg, dcfg, out_dir, progress_dir).keeping(keep),
                     **side).with_outputs(AssembleSamples.MATCHES, dropped.DROPPED, main="samples"))
    victims.append(assembled[dropped.DROPPED])
    dropped.write_all(p, victims, out_dir, run_id, keep)
    if dcfg.index:
        (assembled[AssembleSamples.MATCHES]
         | "GatherMatches" >> beam.combiners.ToList()
         | "WriteMatches" >> beam.Map(write_matches, FileSystems.join(out_dir, MATCHES_FILE)))
    return assembled.samples | "WriteShards" >> AssignAndWriteShards(
        out_dir, "m3w", run_id, samples_per_shard, progress_dir)


MATCHES_FILE = "dedup_matches.jsonl"


def write_matches(matches: list[dict], path: str) -> int:
    """All eval matches of the run, sorted, as one jsonl (dedup.report reads it)."""
    lines = sorted(json.dumps(m, sort_keys=True) for m in matches)
    write_bytes_atomic(path, ("\n".join(lines) + ("\n" if lines else "")).encode())
    return len(lines)


class DropNearDuplicateDocs(beam.PTransform):
    """(key, doc), a key possibly more than once (the same URL read twice) →
    (key, its earliest doc by source), minus documents whose text is a
    near-duplicate (MinHash LSH, datasketch) of a document with a smaller key;
    and their victims.  Only the texts travel to the dedup steps; the
    documents cross one shuffle (JoinDupMarks)."""

    def __init__(self, threshold: float, progress_dir=None, keep=None):
        super().__init__()
        self.threshold, self.progress_dir, self.keep = threshold, progress_dir, keep

    def expand(self, docs):
        # Exact duplicates first: of the documents with one text only the smallest
        # key needs MinHash; the others are near-duplicates of it by definition
        # (Jaccard 1 with identical signatures), so the keys marked are the same.
        split = (docs
                 | "DocText" >> beam.Map(lambda kv: (kv[0], (
                     kv[1]["source"]["file"], kv[1]["source"]["offset"], "\n".join(
                         n["text"] for n in kv[1]["nodes"] if "text" in n))))
                 | "FirstByKey" >> beam.CombinePerKey(min)   # as _first_by_source picks
                 | "KeyText" >> beam.Map(lambda kv: (kv[0], kv[1][2]))
                 | "TextHash" >> beam.Map(lambda kt: (hashlib.sha1(kt[1].encode()).digest(), kt))
                 | "GroupByText" >> beam.GroupByKey()
                 | "ExactDuplicates" >> beam.FlatMap(_split_exact_duplicates).with_outputs(
                     "exact", main="first"))
        near = split.first | "NearDupDocs" >> NearDupDocs(threshold=self.threshold)
        dups = ((split.exact, near) | "AllDups" >> beam.Flatten()
                | "MarkDup" >> beam.Map(lambda k: (k, True)))
        kept = ({"doc": docs, "dup": dups}
                | "JoinDupMarks" >> beam.CoGroupByKey()
                | "KeepFirst" >> beam.ParDo(_KeepUnmarked(self.progress_dir).keeping(self.keep))
                .with_outputs(dropped.DROPPED, main="docs"))
        return kept.docs, kept[dropped.DROPPED]


def _split_exact_duplicates(element):
    """(text hash, [(key, text)]) → (key, text) of the smallest key of each text
    (main), the other keys (``exact``).  Texts without words are passed on
    whole: MinHash skips them, so they are nobody's duplicate."""
    from dedup.fingerprints import normalize_words

    by_text: dict[str, list[str]] = {}
    for key, text in element[1]:
        by_text.setdefault(text, []).append(key)
    for text, keys in sorted(by_text.items()):
        keys.sort()
        if len(keys) == 1 or not normalize_words(text):
            for k in keys:
                yield k, text
            continue
        yield keys[0], text
        for k in keys[1:]:
            yield beam.pvalue.TaggedOutput("exact", k)


class _KeepUnmarked(CountingDoFn):
    def __init__(self, progress_dir=None):
        self.progress_dir = progress_dir

    def process(self, element):
        key, grouped = element
        docs = list(grouped["doc"])
        if not docs:
            return
        doc = _first_by_source(docs)
        if list(grouped["dup"]):
            yield from self.drop("document_near_duplicate", what="document", url=doc["url"],
                                 text="\n\n".join(n["text"] for n in doc["nodes"] if "text" in n),
                                 source=doc["source"], title=doc["title"])
            return
        yield key, doc


# ---------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    from .cli import m3w_parser  # the flags live in pipeline/cli.py (checked before Beam loads)

    return m3w_parser()


PROGRESS_FIELDS = [("records_read", "records"), ("pages", "pages"),
                   ("candidate_documents", "candidates"), ("images_requested", "images"),
                   ("images_ok", "images ok"), ("documents", "docs"),
                   ("samples_in_shards", "in shards")]


def main(argv=None) -> int:
    from .cli import parse

    ap = parser()
    args, beam_args = parse("m3w", argv)
    quiet_beam_logging()
    fcfg = dataclass_from_args(FilterConfig, args)
    icfg = dataclass_from_args(ImageConfig, args, "image")
    fetch_cfg = dataclass_from_args(FetchConfig, args, "fetch")
    fetch_cfg = type(fetch_cfg)(**{**as_json(fetch_cfg),
                                   "accept_content_types": fetch_cfg.accept_content_types,
                                   "allow_private_addresses": args.allow_private_addresses})
    ecfg = ExtractConfig(main_content=not args.all_text, keep_comments=args.keep_comments)
    dcfg = dataclass_from_args(DedupConfig, args, "dedup")
    if dcfg.action not in ("drop", "tag"):
        ap.error(f"--dedup-action must be drop or tag, not {dcfg.action!r}")
    if dcfg.index:
        from apache_beam.io.filesystems import FileSystems as _fs

        if not _fs.exists(dcfg.index):
            ap.error(f"--dedup-index {dcfg.index}: no such file (build it with make dedup-index)")
    try:
        keep = dropped.config_from_args(args)
    except ValueError as e:
        ap.error(str(e))
    try:
        files = expand_globs(args.input)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = {"filters": as_json(fcfg), "images": as_json(icfg), "fetch": as_json(fetch_cfg),
               "extract": as_json(ecfg), "dedup": as_json(dcfg), "samples_per_shard": args.samples_per_shard,
               "fetch_enabled": args.fetch, "inputs": [os.path.basename(f) for f in files]}
    return drive("m3w", NS, args.output, files, options, beam_args,
                 lambda p, run_id, progress_dir: build_m3w(
                     p, files, args.output, fcfg, ecfg, icfg, fetch_cfg, run_id,
                     args.samples_per_shard, fetch=args.fetch, progress_dir=progress_dir,
                     dcfg=dcfg, media_cache=cache_dir_from_args(args), keep=keep),
                 PROGRESS_FIELDS, args.quiet, args.log_file)


if __name__ == "__main__":
    sys.exit(main())
