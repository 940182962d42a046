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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [(label, counters.get(name, 0)) for name, label in FUNNEL.get(kind, [])]
    top = []
    for stage, reasons in drops.items():
        for reason, n in reasons.items():
            top.append((f"{stage}: {reason}", n))
    top.sort(key=lambda kv: -kv[1])
    top = top[:12]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.2]})
    ax = axes[0]
    labels = [s[0] for s in steps][::-1]
    vals = [s[1] for s in steps][::-1]
    bars = ax.barh(labels, vals, color="#3b7dd8")
    for b, v in zip(bars, vals):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:,}", va="center", fontsize=9)
    ax.set_title(f"{kind}: funnel")
    ax.margins(x=0.25)
    ax = axes[1]
    if top:
        labels = [t[0] for t in top][::-1]
        vals = [t[1] for t in top][::-1]
        bars = ax.barh(labels, vals, color="#d8643b")
        for b, v in zip(bars, vals):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:,}", va="center", fontsize=9)
        ax.margins(x=0.25)
    ax.set_title("top drop reasons")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
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
