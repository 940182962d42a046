"""What a run tells its user: counters → stats.json, a funnel picture, a summary."""
from __future__ import annotations

import io

from apache_beam.metrics.metric import MetricsFilter

from shards.writer import dumps, join, write_bytes_atomic

# Counters that describe this particular execution rather than the data
# (a rerun skips shards it finds complete); they go to the terminal only, so
# manifest.json and stats.json are identical for identical input.
RUN_ONLY = ("shards_written", "shards_skipped_complete", "media_cache_hits", "media_cache_misses",
            "media_cache_corrupt")

FUNNEL = {
    "m3w": [("records_read", "records read"), ("pages", "HTML pages"),
            ("candidate_documents", "candidate documents"), ("documents", "documents written"),
            ("images_requested", "distinct images referenced"),
            ("images_ok", "distinct images decoded"), ("images_kept", "image slots written")],
    "pairs": [("records_read", "records read"), ("pages", "HTML pages"),
              ("list_rows", "list rows"), ("caption_candidates", "captions seen"),
              ("candidate_pairs", "captions kept"), ("images_requested", "distinct images referenced"),
              ("images_ok", "distinct images decoded"), ("pairs_unique", "unique pairs"),
              ("samples_in_shards", "pairs written")],
    "videos": [("records_read", "records read"), ("pages", "HTML pages"),
               ("list_rows", "list rows"), ("video_candidates", "videos found"),
               ("candidate_videos", "captions kept"), ("videos_requested", "clips referenced"),
               ("videos_decoded", "clips decoded"), ("videos", "videos with frames"),
               ("samples_in_shards", "videos written")],
}


def counters_from_result(result, namespace: str) -> dict:
    q = result.metrics().query(MetricsFilter().with_namespace(namespace))
    out: dict[str, int] = {}
    for c in q["counters"]:
        v = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(v or 0)
    return dict(sorted(out.items()))


def data_counters(counters: dict) -> dict:
    return {k: v for k, v in counters.items() if k not in RUN_ONLY}


def drops_by_stage(counters: dict) -> dict:
    """{"paragraph": {"too_few_words": n, ...}, "image": {...}, ...}.

    ``drop_<stage>_<reason>`` names its stage; ``read_drop_``, ``page_drop_``,
    ``fetch_drop_`` and ``list_drop_`` counters are the read/page/fetch/list stages'."""
    stages: dict[str, dict] = {}
    for name, v in counters.items():
        for prefix in ("drop_", "read_drop_", "page_drop_", "fetch_drop_", "list_drop_"):
            if name.startswith(prefix):
                rest = name[len(prefix):]
                if prefix == "drop_":
                    stage, _, reason = rest.partition("_")
                else:
                    stage, reason = prefix[:-6] or "read", rest
                stages.setdefault(stage, {})[reason] = stages.setdefault(stage, {}).get(reason, 0) + v
                break
    return {s: dict(sorted(r.items(), key=lambda kv: -kv[1])) for s, r in sorted(stages.items())}


def funnel_png(kind: str, counters: dict, drops: dict) -> bytes:
    steps = [(label, counters.get(name, 0)) for name, label in FUNNEL.get(kind, [])]
    top = []
    for stage, reasons in drops.items():
        for reason, n in reasons.items():
            top.append((f"{stage}: {reason}", n))
    top.sort(key=lambda kv: -kv[1])
    return chart_png((1300, 480), [
        ((0, 0, 560, 480), f"{kind}: funnel", steps, "#3b7dd8"),
        ((560, 0, 1300, 480), "top drop reasons", top[:12], "#d8643b")])


# ---------------------------------------------------------------- charts
# Bar charts drawn with Pillow (the jobs already load it for images): a few
# tens of ms each, where matplotlib took ~1 s to import and ~0.3 s a chart,
# i.e. ~3 s of a job's fixed CPU (funnel.png and the card's six plots).


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size)


def _fmt(v) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    return f"{int(v):,}"


def _hbars(draw, box, items, colour, font) -> None:
    """Horizontal bars, the first item on top; labels left, values at the bar ends."""
    x0, y0, x1, y1 = box
    if not items:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "(none)", font=font, fill="#666", anchor="mm")
        return
    width = x1 - x0
    label_w = min(max(draw.textlength(str(k), font=font) for k, _ in items), 0.45 * width)
    value_w = max(draw.textlength(_fmt(v), font=font) for _, v in items) + 8
    left, right = x0 + label_w + 8, x1 - value_w
    top = max(v for _, v in items) or 1
    row = (y1 - y0) / len(items)
    for i, (label, v) in enumerate(items):
        yc = y0 + (i + 0.5) * row
        label = str(label)
        while label and draw.textlength(label, font=font) > label_w:
            label = label[:-2] + "…" if len(label) > 2 else ""
        draw.text((left - 6, yc), label, font=font, fill="#222", anchor="rm")
        end = left + (right - left) * v / top
        h = max(1.0, min(row * 0.7, 26))
        if v:
            draw.rectangle([left, yc - h / 2, max(left + 1, end), yc + h / 2], fill=colour)
        draw.text((end + 4, yc), _fmt(v), font=font, fill="#222", anchor="lm")
    draw.line([left, y0, left, y1], fill="#444")


def _columns(draw, box, pts, bin_width, colour, font, xlabel) -> None:
    """A histogram: (bin start, count) as columns over a numeric axis."""
    x0, y0, x1, y1 = box
    if not pts:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "(none)", font=font, fill="#666", anchor="mm")
        return
    top = max(n for _, n in pts) or 1
    lo, hi = pts[0][0], pts[-1][0] + bin_width
    label_w = draw.textlength(_fmt(top), font=font) + 8
    left, bottom, plot_top = x0 + label_w, y1 - 34, y0 + 4
    span = (hi - lo) or 1

    def x_of(v):
        return left + (x1 - 6 - left) * (v - lo) / span

    for v, n in pts:
        a, b = x_of(v), x_of(v + bin_width * 0.9)
        draw.rectangle([a, bottom - (bottom - plot_top) * n / top, max(a + 1, b), bottom],
                       fill=colour)
    draw.line([left, bottom, x1 - 6, bottom], fill="#444")
    draw.line([left, plot_top, left, bottom], fill="#444")
    draw.text((left - 4, plot_top), _fmt(top), font=font, fill="#222", anchor="rt")
    draw.text((left - 4, bottom), "0", font=font, fill="#222", anchor="rb")
    for i in range(5):
        v = lo + span * i / 4
        draw.line([x_of(v), bottom, x_of(v), bottom + 3], fill="#444")
        draw.text((x_of(v), bottom + 4), _fmt(round(v, 2)), font=font, fill="#222",
                  anchor="ma" if 0 < i < 4 else ("la" if i == 0 else "ra"))
    draw.text(((left + x1) / 2, y1 - 2), f"{xlabel} (count per bin)", font=font, fill="#222",
              anchor="md")


def chart_png(size: tuple[int, int], panels: list, dpi: int = 100) -> bytes:
    """A PNG of bar-chart panels, each ``(box, title, items, colour)`` with
    ``items`` a list of (label, value) drawn as horizontal bars, or
    ``(box, title, items, colour, (bin width, x label))`` for a histogram of
    (bin start, count).  The same input gives the same bytes."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font, title_font = _font(12), _font(15)
    for box, title, items, colour, *hist in panels:
        x0, y0, x1, y1 = box
        draw.text(((x0 + x1) / 2, y0 + 10), title, font=title_font, fill="#111", anchor="mt")
        inner = (x0 + 14, y0 + 36, x1 - 14, y1 - 12)
        if hist:
            _columns(draw, inner, items, hist[0][0], colour, font, hist[0][1])
        else:
            _hbars(draw, inner, items, colour, font)
    buf = io.BytesIO()
    img.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def write_run_report(out_dir: str, kind: str, counters: dict, manifest: dict,
                     inputs: list[str]) -> dict:
    data = data_counters(counters)
    drops = drops_by_stage(data)
    stats = {
        "kind": kind,
        "inputs": len(inputs),
        "counters": data,
        "drops": drops,
        "num_shards": manifest["num_shards"],
        "num_samples": manifest["num_samples"],
        "bytes": manifest["bytes"],
    }
    write_bytes_atomic(join(out_dir, "stats.json"), dumps(stats) + b"\n")
    write_bytes_atomic(join(out_dir, "funnel.png"), funnel_png(kind, data, drops))
    stats["run"] = {k: counters.get(k, 0) for k in RUN_ONLY}
    stats["run"]["stale_shards_removed"] = manifest.get("stale_shards_removed", [])
    return stats


def summary_text(kind: str, stats: dict, out_dir: str, seconds: float) -> str:
    c = stats["counters"]
    lines = [f"== {kind} done in {seconds:.1f}s: {stats['num_samples']:,} samples in "
             f"{stats['num_shards']} shards ({stats['bytes'] / 1e6:.1f} MB) → {out_dir}"]
    for name, label in FUNNEL.get(kind, []):
        lines.append(f"   {label:<22} {c.get(name, 0):>10,}")
    run = stats.get("run", {})
    lines.append(f"   shards written {run.get('shards_written', 0)}, "
                 f"already complete {run.get('shards_skipped_complete', 0)}")
    looked = run.get("media_cache_hits", 0) + run.get("media_cache_misses", 0)
    if looked:
        lines.append(f"   media cache: {run.get('media_cache_hits', 0):,} hits of {looked:,} "
                     f"lookups ({100 * run.get('media_cache_hits', 0) / looked:.0f}%)"
                     + (f", {run['media_cache_corrupt']} damaged entries refetched"
                        if run.get("media_cache_corrupt") else ""))
    if run.get("stale_shards_removed"):
        gone = run["stale_shards_removed"]
        lines.append(f"   removed {len(gone)} stale shard(s) of an earlier run not in this manifest: "
                     f"{', '.join(gone[:5])}" + (" …" if len(gone) > 5 else ""))
    if stats["drops"]:
        lines.append("   drops by stage and reason:")
        for stage, reasons in stats["drops"].items():
            shown = ", ".join(f"{r} {n:,}" for r, n in list(reasons.items())[:8])
            more = len(reasons) - 8
            lines.append(f"     {stage:<10} {shown}" + (f" (+{more} more)" if more > 0 else ""))
    manifests = [join(join(out_dir, d), "manifest.json") for d in stats.get("sets", ())] or [
        join(out_dir, "manifest.json")]
    lines.append(f"   see {join(out_dir, 'stats.json')}, {join(out_dir, 'funnel.png')}, "
                 + ", ".join(manifests))
    return "\n".join(lines)
