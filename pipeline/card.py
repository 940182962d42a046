"""The dataset card: ``card.md`` + ``card.json`` (+ ``card/*.png``) beside a manifest.

Written by every job at the end of a run (pipeline.jobs.finish_run), in the
style of a Hugging Face dataset card (YAML front matter, then Dataset Summary,
Structure, Creation, Considerations, Licensing), so an output folder can be
published with its shards as it is:

- sizes (shards, samples, bytes, images / frames),
- the funnel (records -> pages -> ... -> samples written) and drops by reason,
- distributions with plots: words and images per document, image sizes and
  aspect ratios, languages, top hosts, caption sources and lengths, video
  durations and frames,
- dedup results (eval-set matches, near-duplicate and frequent-image drops),
- the job's options, and provenance: every input with its size and sha256.

Scalable by construction: the distributions are counters collected while the
job writes its shards (:func:`profile_sample` per sample, :func:`merge_profiles`
as a Beam combine in pipeline.write, stored as ``card/profile.json``), and the
input digests are computed by the job's workers (``card/inputs.json``); the
card itself never reads a shard back.  Every histogram is a counter over
bounded bins (values are rounded to a bin before counting), hosts are kept
exactly up to :data:`MAX_HOSTS` distinct and approximately beyond (the card
says so).
"""
from __future__ import annotations

import io
import json
import math
from collections import Counter
from urllib.parse import urlsplit

from shards.schema import STAND_IN

from .filters import count_words
from .report import FUNNEL

DIR = "card"
PROFILE = "profile.json"
INPUTS = "inputs.json"
MAX_HOSTS = 5000          # distinct hosts counted exactly; past it the rarest are pruned

# metric -> bin width (values are floored to a multiple of it)
BINS = {"words_per_document": 10, "images_per_document": 1, "image_width": 32,
        "image_height": 32, "image_longest_side": 32, "aspect_ratio": 0.05,
        "caption_words": 1, "video_seconds": 0.5, "frames_per_video": 1}
LABELS = {"words_per_document": "words per document", "images_per_document": "images per document",
          "image_longest_side": "image longest side, as found (px)",
          "aspect_ratio": "image aspect ratio (width / height), as found",
          "caption_words": "caption length (words)", "video_seconds": "video duration kept (s)",
          "frames_per_video": "frames per video", "languages": "languages", "hosts": "top hosts",
          "caption_sources": "caption sources", "via": "media from"}
PLOTS = {"m3w": ("words_per_document", "images_per_document", "image_longest_side",
                 "aspect_ratio", "languages", "hosts"),
         "pairs": ("caption_sources", "caption_words", "image_longest_side", "aspect_ratio",
                   "languages", "hosts"),
         "videos": ("video_seconds", "frames_per_video", "caption_sources", "caption_words",
                    "languages", "hosts")}


# ---------------------------------------------------------------- profile (during the job)


def _bin(metric: str, value: float) -> str:
    w = BINS[metric]
    v = math.floor(value / w) * w
    return f"{v:g}"


def _host(url: str | None) -> str:
    try:
        return (urlsplit(url or "").hostname or "").lower() or "(none)"
    except ValueError:
        return "(invalid)"


def _images(prof: dict, metas) -> None:
    for im in metas:
        w, h = im.get("original_width") or im["width"], im.get("original_height") or im["height"]
        prof["image_longest_side"][_bin("image_longest_side", max(w, h))] += 1
        prof["aspect_ratio"][_bin("aspect_ratio", min(w / max(1, h), 5.0))] += 1
        prof["via"][im.get("via") or "?"] += 1
        prof["counts"]["images"] += 1
        if im.get(STAND_IN):
            prof["counts"]["stand_in_images"] += 1
        if im.get("eval_matches"):
            prof["counts"]["images_eval_tagged"] += 1


def empty_profile() -> dict:
    return {k: Counter() for k in ("counts", "languages", "hosts", "caption_sources", "via",
                                   *BINS)}


def profile_sample(kind: str, sample: dict, prof: dict | None = None) -> dict:
    """Add one written sample's counters to ``prof`` (in place; a new profile
    when None) and return it."""
    prof = empty_profile() if prof is None else prof
    meta = sample["json"]
    prof["counts"]["samples"] += 1
    prof["languages"][meta.get("lang") or "?"] += 1
    prof["hosts"][_host(meta.get("page_url") or meta.get("url"))] += 1
    if kind == "m3w":
        prof["words_per_document"][_bin("words_per_document", meta.get("num_words", 0))] += 1
        prof["images_per_document"][_bin("images_per_document", len(meta["images"]))] += 1
        prof["counts"]["text_chars"] += len(meta["text"])
        if meta.get("eval_text_matches"):
            prof["counts"]["documents_eval_text_tagged"] += 1
        _images(prof, meta["images"])
    elif kind == "pairs":
        prof["caption_sources"][meta.get("caption_source") or "?"] += 1
        prof["caption_words"][_bin("caption_words", count_words(sample["txt"]))] += 1
        _images(prof, [meta])
        prof["counts"]["samples_eval_tagged"] += bool(meta.get("eval_matches"))
    else:
        prof["caption_sources"][meta.get("caption_source") or "?"] += 1
        prof["caption_words"][_bin("caption_words", count_words(sample["txt"]))] += 1
        prof["video_seconds"][_bin("video_seconds", meta.get("duration") or 0)] += 1
        prof["frames_per_video"][_bin("frames_per_video", len(meta["frame_times"]))] += 1
        prof["via"][meta.get("via") or "?"] += 1
        prof["counts"]["frames"] += len(meta["frame_times"])
        prof["counts"]["video_seconds"] += meta.get("duration") or 0
        prof["counts"]["stand_in_videos"] += bool(meta.get(STAND_IN))
        prof["counts"]["samples_eval_tagged"] += bool(meta.get("eval_matches"))
    return prof


def merge_profiles(profiles) -> dict:
    """The profiles summed into the first one (in place)."""
    profiles = iter(profiles)
    out = next(profiles, None) or empty_profile()
    for prof in profiles:
        for k, c in prof.items():
            out.setdefault(k, Counter()).update(c)
    return _bounded(out)


def _bounded(prof: dict) -> dict:
    """At most 2 x MAX_HOSTS hosts: past that the rarest are pruned (and the card says so)."""
    hosts = prof["hosts"]
    if len(hosts) > 2 * MAX_HOSTS:
        prof["hosts"] = Counter(dict(hosts.most_common(MAX_HOSTS)))
        prof["counts"]["hosts_pruned"] += 1
    return prof


def profile_json(prof: dict) -> dict:
    return {k: dict(sorted(c.items())) for k, c in sorted(prof.items())}


# ---------------------------------------------------------------- the card (after the job)


def _quantiles(hist: dict) -> dict:
    """min / p5 / median / p95 / max / mean of a binned histogram (bin lower edges)."""
    pts = sorted((float(k), n) for k, n in hist.items())
    total = sum(n for _, n in pts)
    if not total:
        return {}
    out, acc = {}, 0
    marks = [("p5", 0.05), ("median", 0.5), ("p95", 0.95)]
    for v, n in pts:
        acc += n
        while marks and acc >= marks[0][1] * total:
            out[marks.pop(0)[0]] = v
    out["min"], out["max"] = pts[0][0], pts[-1][0]
    out["mean"] = round(sum(v * n for v, n in pts) / total, 3)
    return out


def _plot(metric: str, hist: dict, top: int = 15) -> bytes:
    from .report import chart_png

    title = LABELS.get(metric, metric)
    box = (0, 0, 600, 320)
    if metric in BINS:
        pts = sorted((float(k), n) for k, n in hist.items())
        return chart_png(box[2:], [(box, title, pts, "#3b7dd8", (BINS[metric], title))], dpi=90)
    items = Counter(hist).most_common(top)
    return chart_png(box[2:], [(box, title, items, "#3b7dd8")], dpi=90)


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"


DESCRIPTIONS = {
    "m3w": "Interleaved image-text web documents (M3W-like, as in Flamingo, Alayrac et al. "
           "2022): each sample is a page's main text with its images in DOM order, serialised "
           "`text<EOC><image>text<EOC>`.",
    "pairs": "Image-text pairs (ALIGN/LTIP-like, as in Flamingo): each sample is an image and "
             "one caption from the page (alt text, figcaption, title or nearby sentences) or a "
             "url list, with the caption's source recorded.",
    "videos": "Video-text pairs (VTP-like, as in Flamingo): each sample is a clip's frames at "
              "1 FPS with one caption.",
}
TASKS = {"m3w": ["image-to-text", "text-generation"], "pairs": ["image-to-text"],
         "videos": ["video-text-to-text"]}
MEMBERS = {"m3w": "`KEY.json` (text, images, url, title, source, lang, num_words), "
                  "`KEY.0.jpg` ... in the order of the `<image>` tags",
           "pairs": "`KEY.jpg`, `KEY.txt` (caption), `KEY.json` (url, page_url, caption_source, "
                    "sizes, sha256, phash)",
           "videos": "`KEY.txt` (caption), `KEY.json` (url, duration, fps, frame_times), "
                     "`KEY.0.jpg` ... (frames at 1 FPS)"}


def dedup_counters(counters: dict) -> dict:
    return {k: v for k, v in sorted(counters.items())
            if any(w in k for w in ("eval", "near_duplicate", "too_frequent", "pair_duplicate"))}


def build_card(kind: str, manifest: dict, stats: dict, profile: dict | None,
               inputs: list[dict] | None, dropped_index: dict | None = None) -> dict:
    """Everything card.json holds (card.md is rendered from it)."""
    counters = stats.get("counters", {})
    prof = profile or {}
    counts = prof.get("counts", {})
    dists = {}
    for metric in PLOTS[kind]:
        hist = prof.get(metric) or {}
        if not hist:
            continue
        entry = {"histogram": hist, "label": LABELS.get(metric, metric)}
        if metric in BINS:
            entry["bin_width"] = BINS[metric]
            entry["summary"] = _quantiles(hist)
        else:
            entry["top"] = Counter(hist).most_common(20)
            entry["distinct"] = len(hist)
        dists[metric] = entry
    card = {
        "kind": kind,
        "run_id": manifest.get("run_id"),
        "split": (manifest.get("options") or {}).get("split"),
        "sizes": {"shards": manifest.get("num_shards", 0), "samples": manifest.get("num_samples", 0),
                  "bytes": manifest.get("bytes", 0),
                  **{k: counts[k] for k in ("images", "frames", "text_chars", "video_seconds")
                     if k in counts}},
        "funnel": [{"step": label, "counter": name, "count": counters.get(name, 0)}
                   for name, label in FUNNEL.get(kind, [])],
        "drops": stats.get("drops", {}),
        "distributions": dists,
        "media_from": prof.get("via", {}),
        "stand_ins": {k: counts[k] for k in ("stand_in_images", "stand_in_videos") if counts.get(k)},
        "dedup": {"counters": dedup_counters(counters),
                  "tagged": {k: counts[k] for k in ("images_eval_tagged", "documents_eval_text_tagged",
                                                    "samples_eval_tagged") if counts.get(k)}},
        "options": manifest.get("options", {}),
        "provenance": {"inputs": inputs or [], "run_id": manifest.get("run_id"),
                       "shards": [{k: s[k] for k in ("name", "count", "bytes", "sha256")}
                                  for s in manifest.get("shards", [])]},
    }
    if counts.get("hosts_pruned"):
        card["hosts_approximate"] = True
    if dropped_index:
        card["dropped"] = {r: v["kept"] for r, v in dropped_index.get("reasons", {}).items()}
    return card


def _md_table(rows, header) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def render_markdown(card: dict, plots: dict[str, str]) -> str:
    kind = card["kind"]
    sizes = card["sizes"]
    langs = [k for k, _ in Counter((card["distributions"].get("languages") or {})
                                   .get("histogram", {})).most_common(10) if k != "?"]
    front = ["---", f"pretty_name: flamingo-data {kind}" + (f" ({card['split']})" if card["split"] else ""),
             "license: other", "license_details: \"Texts and media belong to their web sites; "
             "see Licensing below\"", "language:"] + [f"- {x}" for x in langs] + [
             "task_categories:"] + [f"- {t}" for t in TASKS[kind]] + [
             "size_categories:", f"- {_size_category(sizes['samples'])}",
             "tags:", "- flamingo", f"- {kind}", "- webdataset", "---", ""]
    md = front + [f"# flamingo-data {kind}" + (f": {card['split']}" if card["split"] else ""), "",
                  "## Dataset Summary", "", DESCRIPTIONS[kind], "",
                  f"{sizes['samples']:,} samples in {sizes['shards']} webdataset shards "
                  f"({sizes['bytes'] / 1e6:.1f} MB)" +
                  (f", {sizes['images']:,} images" if "images" in sizes else "") +
                  (f", {sizes['frames']:,} frames" if "frames" in sizes else "") + ".", ""]
    if card["stand_ins"]:
        n = sum(card["stand_ins"].values())
        md += [f"**Stand-in media: {n:,}** of the stored "
               f"{'images' if 'stand_in_images' in card['stand_ins'] else 'videos'} are NOT what "
               "their URL served but real media archived under that URL to stand in for media "
               "the source pages were saved without (`\"stand_in\": true` in the json); do not "
               "read image-text alignment into them.", ""]
    md += ["## Dataset Structure", "", f"Shards `{kind}-NNNNNN.tar` (webdataset); per sample: "
           f"{MEMBERS[kind]}. `manifest.json` lists every shard with its count, bytes and sha256; "
           "the schema is `shards/schema.py`.", ""]
    md += ["## Dataset Creation", "", "### Funnel", ""]
    md += _md_table([(f["step"], f"{f['count']:,}") for f in card["funnel"]], ["step", "count"])
    if card["drops"]:
        md += ["", "### Drops by stage and reason", ""]
        md += _md_table([(st, r, f"{n:,}") for st, rs in card["drops"].items() for r, n in rs.items()],
                        ["stage", "reason", "count"])
    if card.get("dropped"):
        md += ["", f"Victims kept in `dropped/` (--keep-dropped; `python -m shards.browse` shows "
               f"them): " + ", ".join(f"{r} {n:,}" for r, n in card["dropped"].items()) + "."]
    md += ["", "### Distributions", ""]
    for metric, d in card["distributions"].items():
        md += [f"**{d['label']}**" + (" (approximate: rarest hosts pruned)" if metric == "hosts"
                                       and card.get("hosts_approximate") else ""), ""]
        if "summary" in d:
            s = d["summary"]
            md += [", ".join(f"{k} {s[k]:g}" for k in ("min", "p5", "median", "p95", "max", "mean")
                             if k in s) + f" (bins of {d['bin_width']:g})", ""]
        else:
            md += [", ".join(f"{k} {n:,}" for k, n in d["top"][:10]) +
                   (f" ({d['distinct']:,} distinct)" if d["distinct"] > 10 else ""), ""]
        if metric in plots:
            md += [f"![{d['label']}]({plots[metric]})", ""]
    if card["media_from"]:
        md += ["Media from: " + ", ".join(f"{k} {n:,}" for k, n in card["media_from"].items()), ""]
    md += ["### Deduplication", ""]
    dd = card["dedup"]
    if dd["counters"] or dd["tagged"]:
        md += _md_table([(k, f"{v:,}") for k, v in {**dd["counters"], **dd["tagged"]}.items()],
                        ["counter", "count"])
    else:
        md += ["No sample matched an eval set or was a near-duplicate."]
    opts = card["options"]
    md += ["", "### Options", "", "```json", json.dumps(opts, indent=1, sort_keys=True), "```", "",
           "### Source Data (provenance)", ""]
    if card["provenance"]["inputs"]:
        md += _md_table([(i["name"], f"{i['bytes']:,}", i.get("sha256") or i.get("error", ""))
                         for i in card["provenance"]["inputs"]], ["input", "bytes", "sha256"])
    md += ["", f"Run id `{card['run_id']}`; shard digests in `manifest.json`.", "",
           "## Considerations for Using the Data", "",
           "Web text and media reflect their sources' biases and may contain personal "
           "information; filters are heuristics (see the drops above). Eval-set dedup is only as "
           "complete as the eval index the job was given.", "",
           "## Licensing Information", "",
           "The texts, images and videos belong to the web sites they were taken from and keep "
           "those sites' licences; this card and the shard format are the project's. Check the "
           "inputs' own licences before publishing.", ""]
    return "\n".join(md)


def write_card(out_dir: str, kind: str, manifest: dict, stats: dict,
               inputs: list[dict] | None) -> dict:
    """card.md, card.json and card/*.png in ``out_dir`` (reads card/profile.json and
    dropped/index.json when the job wrote them)."""
    from shards.dropped import read_index
    from shards.writer import dumps, join, read_stats, write_bytes_atomic

    profile = read_stats(join(join(out_dir, DIR), PROFILE))
    card = build_card(kind, manifest, stats, profile, inputs, read_index(out_dir))
    plots = {}
    for metric, d in card["distributions"].items():
        name = f"{DIR}/{metric}.png"
        write_bytes_atomic(join(out_dir, name), _plot(metric, d["histogram"]))
        plots[metric] = name
    card["plots"] = plots
    write_bytes_atomic(join(out_dir, "card.json"), dumps(card) + b"\n")
    write_bytes_atomic(join(out_dir, "card.md"), render_markdown(card, plots).encode("utf-8"))
    return card


# ---------------------------------------------------------------- inputs (during the job)


def digest_input(path: str) -> dict:
    """Name, size and sha256 of one input file, read in blocks (run on a worker)."""
    import hashlib

    from apache_beam.io.filesystems import FileSystems

    import os

    h, n = hashlib.sha256(), 0
    try:
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            while True:
                block = fh.read(1 << 20)
                if not block:
                    break
                h.update(block)
                n += len(block)
    except OSError as e:
        return {"name": os.path.basename(path), "bytes": n, "error": f"unreadable: {e}"}
    return {"name": os.path.basename(path), "bytes": n, "sha256": h.hexdigest()}


def write_inputs(digests: list[dict], out_dir: str) -> None:
    from shards.writer import dumps, join, write_bytes_atomic

    rows = sorted(digests, key=lambda d: d["name"])
    write_bytes_atomic(join(join(out_dir, DIR), INPUTS), dumps(rows) + b"\n")


def read_inputs(out_dir: str) -> list[dict] | None:
    from shards.writer import join, read_stats

    return read_stats(join(join(out_dir, DIR), INPUTS))


class ProfileFn:
    """A Beam CombineFn (built lazily so this module imports without Beam's
    pipeline machinery): written samples → their output's profile."""

    @staticmethod
    def make(kind: str):
        import apache_beam as beam

        class _Profile(beam.CombineFn):
            def create_accumulator(self):
                return empty_profile()

            def add_input(self, acc, sample):
                return _bounded(profile_sample(kind, sample, acc))

            def merge_accumulators(self, accs):
                return merge_profiles(accs)

            def extract_output(self, acc):
                return profile_json(acc)

        return _Profile()


def write_profile(profile: dict, out_dir: str) -> None:
    from shards.writer import dumps, join, write_bytes_atomic

    write_bytes_atomic(join(join(out_dir, DIR), PROFILE), dumps(profile) + b"\n")
