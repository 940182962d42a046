"""results.json and results.md (the paper's table layout: benchmarks as columns, shots as rows)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from eval.tasks import TASKS

# The headline metric of each kind, as the paper's table reports it.
HEADLINE = {"caption": "CIDEr", "vqa": "accuracy", "ivqa": "accuracy", "hateful": "ROC-AUC",
            "classify": "top-1", "choice": "accuracy", "visdial": "NDCG",
            "rareact": "mWAP"}


def write_json(results: dict, out_dir: str) -> str:
    path = Path(out_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=False))
    os.replace(tmp, path)
    return str(path)


def _cell(summary: dict, metric: str) -> str:
    s = summary.get(metric)
    if s is None:
        return "–"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["n"] > 1 else f"{s['mean']:.1f}"


def markdown(results: dict) -> str:
    tasks = list(results["tasks"])
    shots = sorted({int(k) for t in tasks for k in results["tasks"][t]["shots"]})
    head = [f"{TASKS[t].paper_name} ({HEADLINE[TASKS[t].kind]})" for t in tasks]
    lines = [f"# Few-shot evaluation of `{results['checkpoint']}`", "",
             f"Demonstrations: {results['options']['demos']}; trials per cell: {results['options']['trials']} "
             f"(mean ± std over trials); numbers in percent (CIDEr ×100).", "",
             "| shots | " + " | ".join(head) + " |", "|---|" + "---|" * len(tasks)]
    for k in shots:
        cells = [_cell(results["tasks"][t]["shots"].get(str(k), {}).get("summary", {}),
                       HEADLINE[TASKS[t].kind]) for t in tasks]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "All metrics:", "", "| task | shots | metric | mean | std | trials | queries |",
              "|---|---|---|---|---|---|---|"]
    for t in tasks:
        r = results["tasks"][t]
        for k, cell in r["shots"].items():
            n = cell["trials"][0]["n"]
            for m, s in cell["summary"].items():
                lines.append(f"| {t} | {k} | {m} | {s['mean']:.2f} | {s['std']:.2f} | {s['n']} | {n} |")
    skipped = [(t, k, why) for t in tasks for k, why in results["tasks"][t].get("skipped_shots", {}).items()]
    if skipped:
        lines += ["", "Not run:", ""] + [f"- {t}: {k} shots: {why}" for t, k, why in skipped]
    drops = [(t, reason, n) for t in tasks for reason, n in results["tasks"][t]["dropped"].items()]
    if drops:
        lines += ["", "Dropped while loading:", ""] + [f"- {t}: {reason}: {n}" for t, reason, n in drops]
    return "\n".join(lines) + "\n"


def write_markdown(results: dict, out_dir: str) -> str:
    path = Path(out_dir) / "results.md"
    path.write_text(markdown(results))
    return str(path)
