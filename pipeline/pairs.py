"""The image-text pairs job (ALIGN/LTIP-like): web pages and url lists → pairs shards.

    python -m pipeline.pairs --input 'crawl/*.warc.gz' --list 'laion/*.parquet' \
        --output out/pairs [flags] [beam flags]

Graph (each step a named transform; drops counted by reason in Beam Metrics):

    ReadInputs ─┬─ pages ─ ExtractPairs (alt | figcaption | title | context) ─┐
                └─ media (archived images) ──────────────────────────┐        │
    ReadLists ─ ListPairs (csv/tsv/parquet/jsonl rows, img2dataset shards) ─ ┤
                    DropRepeatedOnHost (keyed count of distinct images per (host, caption))
                    DedupByKey ─┬─ ImageRefs ─ JoinMediaByURL ─ ResolveMedia ─ FetchByHost
                                └─ img2dataset bytes ───────────────────────── ProcessImages
                    JoinPairsAndImages ─ AssemblePairs ─ DedupContent (sha256 + caption)
                    [EvalDedup] ─ AssignShards ─ WriteShards
    driver: manifest.json, stats.json, funnel.png, summary

The pieces are m3w's: the same reader, HTML decode/extract, fetcher, image
processor (m3w's ResolveMedia/ProcessImages DoFns under this job's counter
namespace) and shard writer; captions and their filters live in
pipeline.captions, list inputs in pipeline.lists.
"""
from __future__ import annotations

if __name__ == "__main__":  # flags checked before Beam is imported: --help and mistakes answer at once
    from pipeline.cli import precheck

    precheck("pairs")

import argparse
import logging
import os
import sys
from dataclasses import replace
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from shards.dropped import victim as dropped_victim
from shards.schema import STAND_IN, build_pair_sample, make_key

from . import dropped, media
from .captions import SOURCES, CaptionConfig, caption_drop_reason, normalize, page_captions
from .decode import decode_html
from .documents import media_key
from .extract import ExtractConfig, ImageRef, extract_page
from .cache import cache_dir_from_args
from .fetch import FetchConfig
from .filters import FilterConfig, LangId, image_drop_reason, language_drop_reason
from .images import ImageConfig
from .jobs import (CountingDoFn, drive, quiet_beam_logging)
from .lists import ListConfig, ReadLists
from .options import as_json, dataclass_from_args
from .read import ReadInputs, expand_globs
from .write import AssignAndWriteShards

log = logging.getLogger("pipeline.pairs")
NS = "pairs"


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


class _CaptionFilter:
    """Static caption filters + language id; counts each drop as drop_caption_<reason>."""

    def __init__(self, ccfg: CaptionConfig, fcfg: FilterConfig):
        self.ccfg, self.fcfg = ccfg, fcfg
        self.langid = LangId()

    def check(self, text: str, counts, sink: list | None = None, **victim) -> tuple[str, float] | None:
        """(lang, score) of a passing caption, or None (counted; with ``sink``, a
        --keep-dropped list, the victim is appended with ``victim``'s fields)."""
        reason = caption_drop_reason(text, self.ccfg)
        lang, score = ("", 0.0)
        if reason is None:
            lang, score = self.langid(text)
            reason = language_drop_reason(lang, score, self.fcfg)
        if reason:
            counts.inc(f"drop_caption_{reason}")
            if sink is not None:
                sink.append(dropped_victim(f"caption_{reason}", what="caption", text=text,
                                           lang=lang or None, **victim))
            return None
        return lang, round(score, 4)


class ExtractPairs(CountingDoFn):
    """Page records → candidate pairs (one per image and caption source kept);
    archived images pass through tagged."""

    namespace = NS
    MEDIA = "media"

    def __init__(self, fcfg: FilterConfig, ccfg: CaptionConfig, ecfg: ExtractConfig,
                 progress_dir=None, splits: tuple = ()):
        self.fcfg, self.ccfg, self.ecfg, self.progress_dir = fcfg, ccfg, ecfg, progress_dir
        # --split: caption source -> the set it goes to; "first" picks per image AND set.
        self.split_of = {src: name for name, sources in splits for src in sources}

    def setup(self):
        super().setup()
        self.filter = _CaptionFilter(self.ccfg, self.fcfg)

    def process(self, rec):
        if rec.is_media:
            if rec.content_type.startswith("image/"):
                self.counts.inc("archived_images")
                yield beam.pvalue.TaggedOutput(self.MEDIA, (media_key(rec.url), (rec.body, rec.headers)))
            return
        self.counts.inc("pages")
        src = {"file": rec.source, "offset": rec.offset}
        if media.noai(rec.headers):
            yield from self.drop("page_noai", counter="page_drop_noai", what="page", url=rec.url,
                                 source=src)
            return
        try:
            html, _ = decode_html(rec.body, rec.charset)
            page = extract_page(html, rec.url, self.ecfg)
        except Exception as e:  # one broken page never stops the job
            log.warning("%s@%d (%s): extraction failed: %s: %s", rec.source, rec.offset,
                        rec.url, type(e).__name__, e)
            yield from self.drop("page_extract_error", counter="page_drop_extract_error",
                                 what="page", url=rec.url, source=src,
                                 error=f"{type(e).__name__}: {str(e)[:300]}")
            return
        yield from self._pairs(rec, page)

    def _pairs(self, rec, page):
        nodes = page.nodes
        src = {"file": rec.source, "offset": rec.offset}
        bad_images: set[int] = set()
        for i, node in enumerate(nodes):
            if isinstance(node, ImageRef):
                self.counts.inc("page_images")
                reason = image_drop_reason(node.url, node.width, node.height, self.fcfg)
                if reason:
                    yield from self.drop(f"image_{reason}", what="image", url=node.url,
                                         page_url=rec.url, source=src, index=i, alt=node.alt,
                                         width=node.width, height=node.height)
                    bad_images.add(i)
        done: set[int] = set()
        sink = [] if self.keep_dropped is not None else None
        for i, source, text in page_captions(nodes, self.ccfg):
            group = (i, self.split_of.get(source))
            if i in bad_images or (self.ccfg.pick == "first" and group in done):
                continue
            self.counts.inc("caption_candidates")
            ok = self.filter.check(text, self.counts, sink, url=nodes[i].url, page_url=rec.url,
                                   source=src, index=f"{i}:{source}", caption_source=source)
            if sink:
                yield from dropped.emit(sink)
                sink.clear()
            if ok is None:
                continue
            done.add(group)
            node = nodes[i]
            caption = normalize(text)
            self.counts.inc("candidate_pairs")
            yield {"key": make_key(node.url, source, caption), "url": node.url,
                   "page_url": rec.url, "host": _host(rec.url), "caption": caption,
                   "caption_source": source, "alt": node.alt, "lang": ok[0], "lang_score": ok[1],
                   "source": {"file": rec.source, "offset": rec.offset}}


class ListPairs(CountingDoFn):
    """List rows (and img2dataset samples with their image) → candidate pairs."""

    namespace = NS

    def __init__(self, fcfg: FilterConfig, ccfg: CaptionConfig, progress_dir=None):
        self.fcfg, self.ccfg, self.progress_dir = fcfg, ccfg, progress_dir

    def setup(self):
        super().setup()
        self.filter = _CaptionFilter(self.ccfg, self.fcfg)

    def process(self, item):
        self.counts.inc("caption_candidates")
        sink = [] if self.keep_dropped is not None else None
        ok = self.filter.check(item.caption, self.counts, sink, url=item.url,
                               source={"file": item.source, "offset": item.offset},
                               caption_source="list")
        yield from dropped.emit(sink or [])
        if ok is None:
            return
        caption = normalize(item.caption)
        self.counts.inc("candidate_pairs")
        cand = {"key": make_key(item.url, "list", caption), "url": item.url, "page_url": None,
                "host": _host(item.url), "caption": caption, "caption_source": "list",
                "lang": ok[0], "lang_score": ok[1],
                "source": {"file": item.source, "offset": item.offset}}
        if item.image is not None:
            cand["image"] = item.image
            cand["img2dataset"] = item.extra
        yield cand


def _drop_repeated(element, max_per_host, counts_ns=NS, keep=None):
    """((host, caption), {"cands", "n"}) → the candidates, unless the caption is on
    >= max_per_host distinct images of that host (with ``keep``: their victims)."""
    (host, _), grouped = element
    n = sum(grouped["n"])
    cands = list(grouped["cands"])
    if max_per_host > 0 and n >= max_per_host:
        Metrics.counter(counts_ns, "drop_caption_repeated_on_host").inc(len(cands))
        if keep is not None:
            # One victim per (host, caption): the same text on n images.
            c = min(cands, key=lambda c: c["key"])
            yield from dropped.emit([dropped_victim(
                "caption_repeated_on_host", what="caption", url=c["url"], page_url=c["page_url"],
                text=c["caption"], source=c["source"], host=host, distinct_images=n,
                caption_source=c["caption_source"])])
        return
    yield from cands


class DropRepeatedOnHost(beam.PTransform):
    """A keyed count: distinct image URLs per (host, lower-cased caption)."""

    def __init__(self, max_per_host: int, keep=None):
        super().__init__()
        self.max_per_host, self.keep = max_per_host, keep

    def expand(self, cands):
        keyed = cands | "KeyByHostCaption" >> beam.Map(
            lambda c: ((c["host"], c["caption"].lower()), c))
        n = (keyed
             | "HostCaptionImage" >> beam.Map(lambda kv: (kv[0], media_key(kv[1]["url"])))
             | "DistinctImages" >> beam.Distinct()
             | "CountImages" >> beam.combiners.Count.PerKey())
        return ({"cands": keyed, "n": n}
                | "JoinCounts" >> beam.CoGroupByKey()
                | "DropRepeated" >> beam.FlatMap(_drop_repeated, max_per_host=self.max_per_host,
                                                keep=self.keep).with_outputs(dropped.DROPPED,
                                                                             main="cands"))


def _first_by_source(values):
    """(candidate, rows) pairs of one key -> the first by source, and how many rows
    had the key (associative: Beam may combine partial results again)."""
    values = list(values)
    first = min((c for c, _ in values), key=lambda c: (c["source"]["file"], c["source"]["offset"]))
    return first, sum(n for _, n in values)


def _count_repeats(kv):
    """The kept candidate; the other rows of its key (the same url and caption
    listed again) counted as drop_pair_repeated_row, never silently merged."""
    cand, n = kv[1]
    if n > 1:
        Metrics.counter(NS, "drop_pair_repeated_row").inc(n - 1)
    return cand


def _split_inline(cand):
    """img2dataset samples carry their bytes: straight to ProcessImages."""
    if "image" in cand:
        data = cand.pop("image")
        yield beam.pvalue.TaggedOutput("inline", (cand["url"], [(cand["key"], 0)], None,
                                                  (data, "img2dataset")))
    yield cand


class _ResolveMedia(media.ResolveMedia):
    namespace = NS


class _ProcessImages(media.ProcessImages):
    """m3w's image stage; with ``spill_root`` each stored JPEG is parked on the
    output's filesystem (appended to the bundle's media.SpillPack) and only its
    span travels on, through the joins and groupings, to the shard writer: the
    job's memory does not grow with the number of images (on the DirectRunner
    every grouping holds its whole input), and the bytes are not pickled across
    three stage boundaries.  No verify hash (media.ProcessImages): ``EvalDedup`` computes it
    from the stored JPEG for the few images whose dedup candidates need it
    (the same bits; ~1.4 ms of CPU per image saved, bench/bench_image_hashes.py)."""

    namespace = NS

    def __init__(self, icfg: ImageConfig, progress_dir=None, spill_root: str | None = None):
        super().__init__(icfg, progress_dir)
        self.spill_root = spill_root

    def start_bundle(self):
        self._pack = media.SpillPack(self.spill_root) if self.spill_root else None

    def process(self, element):
        spilled = None
        for doc_key, (index, res) in super().process(element):
            if self._pack is not None and res["ok"]:
                if spilled is None:  # spilled once, whatever uses it
                    spilled = dict(res, jpeg=self._pack.add(res["jpeg"]))
                res = spilled
            yield doc_key, (index, res)

    def finish_bundle(self):
        if self._pack is not None:
            self._pack.close()  # before Beam commits what points into it
        super().finish_bundle()


class AssemblePairs(CountingDoFn):
    namespace = NS

    def __init__(self, progress_dir=None):
        self.progress_dir = progress_dir

    def process(self, element):
        key, grouped = element
        cands = list(grouped["pair"])
        results = [r for _, r in grouped["image"]]
        if not cands:  # an image result no candidate asked for: nothing to write, but counted
            self.counts.inc("image_result_unclaimed", len(results))
            return
        c = cands[0]
        if not results:  # never silent: a candidate whose image never came back is counted
            yield from self.drop("image_result_missing", what="pair", url=c["url"],
                                 page_url=c["page_url"], text=c["caption"], source=c["source"],
                                 caption_source=c["caption_source"])
            return
        res = results[0]
        if not res["ok"]:
            yield from self.drop(f"image_{res['reason']}", what="pair", url=c["url"],
                                 page_url=c["page_url"], text=c["caption"], source=c["source"],
                                 thumb=res.get("thumb"), caption_source=c["caption_source"])
            return
        meta = {"url": c["url"], "page_url": c["page_url"], "caption_source": c["caption_source"],
                "lang": c["lang"], "lang_score": c["lang_score"], "source": c["source"],
                **{k: res[k] for k in ("width", "height", "original_width", "original_height",
                                       "sha256", "phash", "via")}}
        if res.get(STAND_IN):
            meta[STAND_IN] = True
        if c.get("alt") is not None and c["caption_source"] != "alt":
            meta["alt"] = c["alt"]
        if "img2dataset" in c:
            meta["img2dataset"] = c["img2dataset"]
        yield build_pair_sample(key, c["caption"], meta, res["jpeg"])


class DedupContent(CountingDoFn):
    """Same stored image (sha256) with the same caption: keep the smallest key."""

    namespace = NS

    def __init__(self, progress_dir=None):
        self.progress_dir = progress_dir

    def process(self, element):
        _, samples = element
        samples = sorted(samples, key=lambda s: s["__key__"])
        if len(samples) > 1:
            self.counts.inc("drop_pair_duplicate", len(samples) - 1)
            if self.keep_dropped is not None:
                from shards.dropped import thumbnail

                for s in samples[1:]:
                    yield beam.pvalue.TaggedOutput(dropped.DROPPED, dropped_victim(
                        "pair_duplicate", what="pair", url=s["json"]["url"],
                        page_url=s["json"]["page_url"], text=s["txt"], source=s["json"]["source"],
                        thumb=thumbnail(media.load_spilled(s["jpg"])), kept_key=samples[0]["__key__"]))
        self.counts.inc("pairs_unique")
        yield samples[0]


class EvalDedup(CountingDoFn):
    """Drop (or tag) pairs whose image or caption matches the eval index (dedup/)."""

    namespace = NS

    def __init__(self, index_path: str, action: str, kind: str = "pair", progress_dir=None):
        self.index_path, self.action, self.kind, self.progress_dir = index_path, action, kind, progress_dir

    def setup(self):
        super().setup()
        from dedup.index import EvalIndex

        self.index = EvalIndex.load_cached(self.index_path)

    def process(self, sample):
        from dedup.apply import filter_pair, filter_video, stored_verify_hash

        meta = sample["json"]
        if self.kind == "pair":
            def verify():   # only for a pair with a crop-view candidate (dedup.apply)
                self.counts.inc("pairs_eval_verify_hashed")
                return stored_verify_hash(media.load_spilled(sample["jpg"]))()

            keep, ms = filter_pair(sample["txt"], meta["phash"], meta["url"], self.index, self.action,
                                   verify_hash=verify)
        else:
            keep, ms = filter_video(sample["txt"], meta["frame_phashes"], self.index, self.action)
        if ms:
            self.counts.inc(f"{self.kind}s_eval_matched")
        if not keep:
            thumb = None
            if self.keep_dropped is not None:
                from shards.dropped import thumbnail

                thumb = thumbnail(media.load_spilled(sample.get("jpg") or sample.get("0.jpg") or b""))
            yield from self.drop(f"{self.kind}_eval_match", what=self.kind, url=meta["url"],
                                 page_url=meta.get("page_url"), text=sample["txt"],
                                 source=meta.get("source"), thumb=thumb,
                                 matches=[m.to_json() for m in ms][:5])
            return
        if ms:
            sample = dict(sample, json=dict(meta, eval_matches=[m.to_json() for m in ms]))
        yield sample


def eval_dedup(samples, dedup_index, dedup_action, kind, progress_dir, keep, victims: list):
    """``samples`` minus (or tagged with) their eval-set matches (EvalDedup);
    its victims are appended to ``victims``."""
    if not dedup_index:
        return samples
    matched = samples | "EvalDedup" >> beam.ParDo(
        EvalDedup(dedup_index, dedup_action, kind, progress_dir).keeping(keep)).with_outputs(
            dropped.DROPPED, main="samples")
    victims.append(matched[dropped.DROPPED])
    return matched.samples


def parse_split(spec: str) -> tuple[str, tuple[str, ...]]:
    """``align=alt`` → ("align", ("alt",)): a set of pairs, by caption source,
    written to OUTPUT/NAME (``--split``, repeatable)."""
    import re

    name, sep, sources = spec.partition("=")
    srcs = tuple(x.strip() for x in sources.split(",") if x.strip())
    if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not srcs:
        raise ValueError(f"--split {spec!r}: expected NAME=SOURCE[,SOURCE...] (e.g. align=alt)")
    unknown = [x for x in srcs if x not in SOURCES]
    if unknown:
        raise ValueError(f"--split {spec!r}: unknown caption source {unknown[0]!r} "
                         f"(choose from {', '.join(SOURCES)})")
    return name, srcs


def check_splits(splits: list[tuple[str, tuple[str, ...]]]) -> None:
    names = [n for n, _ in splits]
    if len(set(names)) != len(names):
        raise ValueError(f"--split names must differ, got {names}")
    seen: dict[str, str] = {}
    for name, srcs in splits:
        for src in srcs:
            if src in seen:
                raise ValueError(f"--split: caption source {src!r} is in both {seen[src]!r} and {name!r}")
            seen[src] = name


def build_pairs(p, inputs, lists, out_dir, fcfg, ccfg, ecfg, icfg, fetch_cfg, run_id,
                samples_per_shard, fetch=True, list_cfg=ListConfig(), dedup_index=None,
                dedup_action="drop", progress_dir=None, media_cache=None, keep=None, splits=()):
    """Add the pairs graph to pipeline ``p``; returns the PCollection of shard infos.

    ``splits`` ((name, caption sources), ...): the pairs are written per set to
    OUTPUT/NAME instead of OUTPUT (ALIGN-like alt texts and LTIP-like
    descriptions in one run); ``ccfg.sources`` must hold their sources.
    ``keep`` (--keep-dropped): also write the victims to OUTPUT/dropped/."""
    branches, archived, victims = [], [], []
    if inputs:
        records = p | "ReadInputs" >> ReadInputs(inputs, NS, progress_dir)
        extracted = records | "ExtractPairs" >> beam.ParDo(
            ExtractPairs(fcfg, ccfg, ecfg, progress_dir, tuple(splits)).keeping(keep)).with_outputs(
                ExtractPairs.MEDIA, dropped.DROPPED, main="pairs")
        branches.append(extracted.pairs)
        archived.append(extracted[ExtractPairs.MEDIA])
        victims.append(extracted[dropped.DROPPED])
    if lists:
        items = p | "ReadLists" >> ReadLists(lists, list_cfg, NS, progress_dir)
        listed = items | "ListPairs" >> beam.ParDo(
            ListPairs(fcfg, ccfg, progress_dir).keeping(keep)).with_outputs(dropped.DROPPED,
                                                                            main="pairs")
        branches.append(listed.pairs)
        victims.append(listed[dropped.DROPPED])
    repeated = (branches | "AllCandidates" >> beam.Flatten()
                | "DropRepeatedOnHost" >> DropRepeatedOnHost(ccfg.max_per_host, keep))
    victims.append(repeated[dropped.DROPPED])
    cands = (repeated.cands
             | "KeyPairs" >> beam.Map(lambda c: (c["key"], (c, 1)))
             | "DedupByKey" >> beam.CombinePerKey(_first_by_source)
             | "CountRepeats" >> beam.Map(_count_repeats)
             | "SplitInline" >> beam.FlatMap(_split_inline).with_outputs("inline", main="pairs"))
    refs = cands.pairs | "ImageRefs" >> beam.FlatMap(
        lambda c: [] if "img2dataset" in c else [(media_key(c["url"]), (c["key"], 0))])
    archived_media = (archived | "AllArchived" >> beam.Flatten()) if archived else (
        p | "NoArchived" >> beam.Create([]))
    resolved = ({"refs": refs, "archived": archived_media}
                | "JoinMediaByURL" >> beam.CoGroupByKey()
                | "ResolveMedia" >> beam.ParDo(_ResolveMedia(progress_dir)).with_outputs(
                    media.ResolveMedia.FETCH, main="ready"))
    spill = media.spill_dir(out_dir, run_id)

    def process_images(pcoll, label):
        # One image stage per branch, fused with what produced the bytes: raw
        # bytes never cross a stage boundary, only the (spilled) results do.
        return pcoll | f"ProcessImages{label}" >> beam.ParDo(
            _ProcessImages(icfg, progress_dir, spill).keeping(keep))

    processed = [process_images(resolved.ready, "Archived"),
                 process_images(cands.inline, "Inline")]
    if fetch:
        processed.append(resolved[media.ResolveMedia.FETCH]
                         | "FetchByHost" >> media.FetchMedia(
                             fetch_cfg, NS, media_cache, progress_dir,
                             then=lambda pc, label: process_images(
                                 pc | f"FetchOutcome{label}" >> beam.Map(media.fetch_outcome), label)))
    else:
        processed.append(process_images(resolved[media.ResolveMedia.FETCH] | "NotArchived" >> beam.Map(
            lambda e: (e[0], e[1], {"ok": False, "reason": "not_archived"}, None)), "NotArchived"))
    images = processed | "AllImages" >> beam.Flatten()
    assembled = ({"pair": cands.pairs | "KeyCandidates" >> beam.Map(lambda c: (c["key"], c)),
                  "image": images}
                 | "JoinPairsAndImages" >> beam.CoGroupByKey()
                 | "AssemblePairs" >> beam.ParDo(AssemblePairs(progress_dir).keeping(keep))
                 .with_outputs(dropped.DROPPED, main="samples"))
    victims.append(assembled[dropped.DROPPED])
    unique = (assembled.samples
              | "KeyByContent" >> beam.Map(lambda s: ((s["json"]["sha256"], s["txt"].lower()), s))
              | "GroupByContent" >> beam.GroupByKey()
              | "DedupContent" >> beam.ParDo(DedupContent(progress_dir).keeping(keep))
              .with_outputs(dropped.DROPPED, main="samples"))
    victims.append(unique[dropped.DROPPED])
    samples = eval_dedup(unique.samples, dedup_index, dedup_action, "pair", progress_dir, keep,
                         victims)
    dropped.write_all(p, victims, out_dir, run_id, keep)
    if not splits:
        return samples | "WriteShards" >> AssignAndWriteShards(
            out_dir, "pairs", run_id, samples_per_shard, progress_dir, NS, media.unspill_sample)
    split_of = {src: i for i, (_, srcs) in enumerate(splits) for src in srcs}
    parts = samples | "SplitBySource" >> beam.Partition(
        lambda s, n: split_of[s["json"]["caption_source"]], len(splits))
    written = []
    for (name, _), part in zip(splits, parts):
        written.append(part | f"WriteShards_{name}" >> AssignAndWriteShards(
            FileSystems.join(out_dir, name), "pairs", run_id, samples_per_shard, progress_dir, NS,
            media.unspill_sample))
    return written | "AllShards" >> beam.Flatten()


# ---------------------------------------------------------------- CLI

# FilterConfig's paragraph and document thresholds are m3w's; pairs use its
# image and language ones.
def fetch_config_from_args(args, prefix="fetch") -> FetchConfig:
    cfg = dataclass_from_args(FetchConfig, args, prefix)
    return replace(cfg, allow_private_addresses=args.allow_private_addresses)


def parser() -> argparse.ArgumentParser:
    from .cli import pairs_parser  # the flags live in pipeline/cli.py (checked before Beam loads)

    return pairs_parser()


PROGRESS_FIELDS = [("records_read", "records"), ("pages", "pages"), ("list_rows", "rows"),
                   ("candidate_pairs", "candidates"), ("images_requested", "images"),
                   ("images_ok", "images ok"), ("samples_in_shards", "in shards")]


def main(argv=None) -> int:
    from .cli import parse

    ap = parser()
    args, beam_args = parse("pairs", argv)
    if not args.input and not args.lists:
        ap.error("give at least one --input or --list")
    quiet_beam_logging()
    fcfg = dataclass_from_args(FilterConfig, args)
    ccfg = dataclass_from_args(CaptionConfig, args, "caption")
    if ccfg.pick not in ("first", "all"):
        ap.error("--caption-pick must be first or all")
    icfg = dataclass_from_args(ImageConfig, args, "image")
    list_cfg = dataclass_from_args(ListConfig, args)
    fetch_cfg = fetch_config_from_args(args)
    ecfg = ExtractConfig(main_content=not args.all_text)
    try:
        keep = dropped.config_from_args(args)
        splits = [parse_split(x) for x in args.split]
        check_splits(splits)
    except ValueError as e:
        ap.error(str(e))
    if splits:
        if args.lists and not any("list" in srcs for _, srcs in splits):
            ap.error("--list rows have caption source 'list': name it in a --split (e.g. "
                     "--split ltip=figcaption,list)")
        wanted = [x for _, srcs in splits for x in srcs if x != "list"]
        # the configured preference order first, then any split source it lacks
        ccfg = replace(ccfg, sources=tuple([x for x in ccfg.sources if x in wanted]
                                           + [x for x in wanted if x not in ccfg.sources]))
    try:
        files = expand_globs(args.input) if args.input else []
        list_files = expand_globs(args.lists) if args.lists else []
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = {"captions": as_json(ccfg), "filters": as_json(fcfg), "images": as_json(icfg),
               "fetch": as_json(fetch_cfg), "extract": as_json(ecfg), "lists": as_json(list_cfg),
               "samples_per_shard": args.samples_per_shard, "fetch_enabled": args.fetch,
               "dedup_index": os.path.basename(args.dedup_index) if args.dedup_index else None,
               "dedup_action": args.dedup_action,
               "inputs": [os.path.basename(f) for f in files + list_files]}
    if splits:
        options["splits"] = {name: list(srcs) for name, srcs in splits}
    rc = drive("pairs", NS, args.output, files + list_files, options, beam_args,
               lambda p, run_id, progress_dir: build_pairs(
                   p, files, list_files, args.output, fcfg, ccfg, ecfg, icfg, fetch_cfg, run_id,
                   args.samples_per_shard, fetch=args.fetch, list_cfg=list_cfg,
                   dedup_index=args.dedup_index, dedup_action=args.dedup_action,
                   progress_dir=progress_dir, media_cache=cache_dir_from_args(args),
                   keep=keep, splits=splits),
               PROGRESS_FIELDS, args.quiet, args.log_file,
               subdirs=[name for name, _ in splits])
    if rc == 0:  # the shards hold the images now; a failed run keeps them for its rerun
        media.remove_spill(args.output)
    return rc


if __name__ == "__main__":
    sys.exit(main())
