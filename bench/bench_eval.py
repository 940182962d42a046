"""Evaluation throughput on CPU with the tiny model (a benchmark, not a test).

    .venv/bin/python bench/bench_eval.py [--queries N] [--shots K] [--threads T]

On the bundled eval sample (eval.sample: real COCO / TextVQA annotations with
stand-in photos, real photos as ImageNet-style classes), a tiny Flamingo
built in code (random weights: speed does not depend on them) runs one
trial at ``--shots`` per task kind through eval.runner, as ``python -m eval``
does. Printed per kind: queries/s, and where the time went: media loading
and preprocessing, vision encoding (vision encoder + resampler), prompt
encoding (the first forward of each prompt, without its vision part),
decoding / candidate scoring (every forward on a KV cache), metric.

Anchors, measured in the same run (the machine is shared, so absolute
numbers are noisy; the ratios are the figure): candidate ranking batched on
copies of the prompt's KV cache vs one from-scratch forward per candidate
(eval.scoring.score_one), and generation in batches of 8 vs one prompt at a time.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from eval.runner import Options, Timing, evaluate_task  # noqa: E402
from eval.sample import build  # noqa: E402
from eval.scoring import score_candidates, score_one  # noqa: E402
from eval.tasks import TASKS, load_task  # noqa: E402
from model.build import build_flamingo  # noqa: E402
from model.config import FlamingoConfig  # noqa: E402


class Stages:
    """Wraps the model's forward / encode_vision to time the stages."""

    def __init__(self, model):
        self.model = model
        self.t = {"vision": 0.0, "prompt": 0.0, "decode": 0.0}
        fwd, enc = model.forward, model.encode_vision

        def encode_vision(*a, **k):
            t0 = time.perf_counter()
            try:
                return enc(*a, **k)
            finally:
                self.t["vision"] += time.perf_counter() - t0

        def forward(*a, **k):
            before = self.t["vision"]
            t0 = time.perf_counter()
            try:
                return fwd(*a, **k)
            finally:
                spent = time.perf_counter() - t0 - (self.t["vision"] - before)
                self.t["decode" if k.get("past_key_values") is not None else "prompt"] += spent

        model.encode_vision = encode_vision
        model.forward = forward

    def reset(self):
        for k in self.t:
            self.t[k] = 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=8, help="queries per task (default 8)")
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = build_flamingo(FlamingoConfig.tiny())
    model.eval()
    stages = Stages(model)
    print(f"bench_eval: tiny Flamingo, {args.shots} shots, {args.queries} queries per task, "
          f"{args.threads} thread(s), one trial (shared machine: compare ratios, not absolute numbers)")
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        rows = []
        for name in ("coco", "textvqa", "imagenet"):
            data = load_task(TASKS[name], tmp, args.queries)
            for bs in ((8, 1) if TASKS[name].generates else (8,)):
                stages.reset()
                timing = Timing()
                opts = Options(shots=[args.shots], trials=1, batch_size=bs, progress=False)
                t0 = time.perf_counter()
                evaluate_task(model, tok, data, opts, timing=timing)
                wall = time.perf_counter() - t0
                rows.append((name, TASKS[name].kind, bs, len(data.queries), wall, timing, dict(stages.t)))
        print(f"{'task':9} {'kind':9} {'batch':>5} {'queries':>7} {'q/s':>7} | share of time: "
              f"{'media':>6} {'vision':>6} {'prompt':>6} {'decode':>6} {'metric':>6}")
        for name, kind, bs, n, wall, timing, st in rows:
            shares = [timing.media, st["vision"], st["prompt"], st["decode"], timing.metric]
            print(f"{name:9} {kind:9} {bs:>5} {n:>7} {n / wall:7.2f} | {'':14}"
                  + " ".join(f"{100 * s / wall:5.1f}%" for s in shares))
        gen = {(r[0], r[2]): r[3] / r[4] for r in rows}
        for name in ("coco", "textvqa"):
            print(f"anchor: {name} generation, batch 8 vs batch 1: {gen[(name, 8)] / gen[(name, 1)]:.2f}x queries/s")

        # Ranking anchor: the same prompt and candidates, batched on the KV cache vs from scratch.
        data = load_task(TASKS["imagenet"], tmp, 1)
        from eval.media import MediaLoader
        from eval.prompts import build_prompt
        loader = MediaLoader.for_model(model)
        q = data.queries[0]
        demos = [(loader.load(d.media, "image"), d.record) for d in data.demos[:args.shots]]
        text, vision = build_prompt("classify", demos, (loader.load(q.media, "image"), q.record))
        classes = [f"class number {i} of the benchmark" for i in range(200)]   # ImageNet-sized names
        t0 = time.perf_counter()
        batched = score_candidates(model, tok, text, vision, classes)
        t_b = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = [score_one(model, tok, text, vision, c) for c in classes[:50]]
        t_s = (time.perf_counter() - t0) * len(classes) / 50
        diff = max(abs(a - b) for a, b in zip(batched, single))
        print(f"anchor: ranking {len(classes)} candidates after a {len(tok(text)['input_ids'])}-token prompt: "
              f"batched on the KV cache {t_b:.2f} s, one forward each {t_s:.2f} s (50 timed, scaled): "
              f"{t_s / t_b:.1f}x faster; max |difference| {diff:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
