"""Start-up of every command: wall time to ``--help`` and to an argument error.

    python bench/bench_cli.py [--repeat 3]

Target (#13): under 2 s for both, on every entry point: arguments are parsed
and checked before Beam, torch or transformers are imported. Each figure is
the median of ``--repeat`` runs of a fresh interpreter; the anchors, measured
in the same run, are a bare interpreter and ``import apache_beam`` / ``import
torch`` alone (what every command used to pay first), so the ratios hold on a
loaded machine where the absolute numbers do not.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARCS = "tests/data/warc/*.warc.gz"
# (module, arguments that are a mistake: each exits 2 with one line)
CASES = [
    ("pipeline.m3w", ["--input", WARCS, "--output", "/tmp/bench-cli", "--samples-per-shard", "0"]),
    ("pipeline.pairs", ["--input", WARCS, "--output", "/tmp/bench-cli", "--frobnicate", "3"]),
    ("pipeline.videos", ["--input", WARCS, "--output", "/tmp/bench-cli", "--video-fps", "0"]),
    ("train.train", ["--eval_every", "0"]),
    ("shards.validate", ["/nonexistent"]),
    ("shards.browse", ["/nonexistent"]),
    ("pipeline.sample", ["--out", "/tmp/bench-cli.warc.gz", "--max-pages", "0"]),
    ("dedup.build_index", ["--eval", "x=y", "--out", "o", "--workers", "-1"]),
    ("dedup.report", ["--matches", "/nonexistent", "--out", "o"]),
    ("faults", ["--frobnicate"]),
]


def wall(cmd: list[str], repeat: int, expect: int | None = None) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if expect is not None and r.returncode != expect:
            raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}, expected {expect}: {r.stderr[-300:]}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    py = sys.executable
    bare = wall([py, "-c", "pass"], args.repeat)
    beam = wall([py, "-c", "import apache_beam"], args.repeat)
    torch = wall([py, "-c", "import torch"], args.repeat)
    print(f"anchors: bare interpreter {bare:.2f} s, import apache_beam {beam:.2f} s, import torch {torch:.2f} s")
    print(f"{'command':<22} {'--help':>8} {'error':>8}  {'help/beam':>9} {'error/beam':>10}")
    worst = 0.0
    for module, bad in CASES:
        h = wall([py, "-m", module, "--help"], args.repeat, expect=0)
        e = wall([py, "-m", module, *bad], args.repeat, expect=2)
        worst = max(worst, h, e)
        print(f"{module:<22} {h:>7.2f}s {e:>7.2f}s  {h / beam:>9.2f} {e / beam:>10.2f}")
    print(f"slowest: {worst:.2f} s (target < 2 s){'' if worst < 2 else '  ** over target **'}")


if __name__ == "__main__":
    main()
