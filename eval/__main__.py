"""python -m eval --checkpoint RUN_DIR|FILE --tasks coco,vqav2 --shots 0,4,8 --trials 3 --data DIR

Few-shot evaluation as in the Flamingo paper; writes OUT/results.json (per
task x shots x trial, with every prediction) and OUT/results.md. Under
torchrun the queries are split across ranks and gathered; rank 0 writes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m eval", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="run directory (final.safetensors or newest ckpt-*.pt) or a file")
    ap.add_argument("--tasks", required=True, help="comma-separated task names (see eval/tasks.py)")
    ap.add_argument("--data", required=True, help="folder with one sub-folder per task (DATA/<task>/, DATA/<task>/media/)")
    ap.add_argument("--shots", default="0,4,8,16,32", help="comma-separated shot counts (default 0,4,8,16,32)")
    ap.add_argument("--trials", type=int, default=3, help="trials (seeds) per shot count (default 3)")
    ap.add_argument("--seed", type=int, default=0, help="first trial's seed")
    ap.add_argument("--rices", action="store_true", help="choose demonstrations by vision-feature similarity (RICES)")
    ap.add_argument("--cache-dir", default=None, help="where RICES features are cached (default OUT/cache)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries of each task")
    ap.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch")
    ap.add_argument("--candidate-batch", type=int, default=64, help="candidates scored per forward")
    ap.add_argument("--num-beams", type=int, default=3)
    ap.add_argument("--caption-metrics", default="cider,bleu4",
                    help="of cider,bleu4,meteor,rouge_l (METEOR starts a 2 GB JVM)")
    ap.add_argument("--out", default="out/eval", help="output folder (default out/eval)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def _ints(arg: str, flag: str) -> list[int]:
    try:
        vals = [int(x) for x in arg.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"{flag} {arg!r}: expected comma-separated integers") from None
    if not vals or any(v < 0 for v in vals):
        raise SystemExit(f"{flag} {arg!r}: expected non-negative integers")
    return vals


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    shots = _ints(args.shots, "--shots")
    if args.trials < 1:
        raise SystemExit(f"--trials {args.trials}: must be >= 1")
    from eval.metrics import CAPTION_METRICS
    cap_metrics = tuple(m for m in args.caption_metrics.split(",") if m)
    if not cap_metrics or any(m not in CAPTION_METRICS for m in cap_metrics):
        raise SystemExit(f"--caption-metrics {args.caption_metrics!r}: choose from {', '.join(CAPTION_METRICS)}")

    from eval.tasks import TaskError, load_task, parse_tasks
    try:
        tasks = parse_tasks(args.tasks)
        # Every task's files are checked before the model is built: a wrong path fails in a second.
        datas = [load_task(t, args.data, args.limit) for t in tasks]
    except TaskError as e:
        raise SystemExit(f"error: {e}") from None

    if not os.path.exists(args.checkpoint):  # before torch loads: answered at once
        raise SystemExit(f"error: --checkpoint {args.checkpoint}: no such file or directory")
    import torch
    from eval.checkpoints import CheckpointNotFound, load_checkpoint
    from eval.report import write_json, write_markdown
    from eval.runner import Options, Timing, evaluate_task
    from train import dist as tdist
    from train.checkpoint import CheckpointError

    if args.threads:
        torch.set_num_threads(args.threads)
    d = tdist.setup("auto")
    try:
        model, tokenizer, loaded = load_checkpoint(args.checkpoint)
    except (CheckpointNotFound, CheckpointError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    model.to(d.device)
    opts = Options(shots=shots, trials=args.trials, seed=args.seed, rices=args.rices,
                   cache_dir=args.cache_dir or os.path.join(args.out, "cache"), batch_size=args.batch_size,
                   candidate_batch=args.candidate_batch, num_beams=args.num_beams, caption_metrics=cap_metrics,
                   rank=d.rank, world=d.world, progress=not args.no_progress)
    results = {"checkpoint": loaded, "model_config": model.cfg.to_dict(),
               "options": {"tasks": [t.name for t in tasks], "shots": shots, "trials": args.trials,
                           "seed": args.seed, "demos": "RICES" if args.rices else "random", "limit": args.limit,
                           "num_beams": args.num_beams, "world": d.world, "data": args.data},
               "tasks": {}}
    t_all = time.perf_counter()
    for data in datas:
        timing = Timing()
        t0 = time.perf_counter()
        try:
            res = evaluate_task(model, tokenizer, data, opts, timing=timing)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        res.update(kind=data.task.kind, queries=len(data.queries), demo_pool=len(data.demos),
                   seconds=round(time.perf_counter() - t0, 2))
        results["tasks"][data.task.name] = res
        if d.main:
            head = ", ".join(f"{k}-shot " + " ".join(f"{m}={s['mean']:.2f}" for m, s in c["summary"].items())
                             for k, c in res["shots"].items())
            print(f"{data.task.name}: {len(data.queries)} queries ({res['seconds']} s): {head}", file=sys.stderr)
            for k, why in res.get("skipped_shots", {}).items():
                print(f"{data.task.name}: {k} shots not run: {why}", file=sys.stderr)
            if res["dropped"]:
                print(f"{data.task.name}: dropped {json.dumps(res['dropped'])}", file=sys.stderr)
    results["seconds"] = round(time.perf_counter() - t_all, 2)
    if d.main:
        print(f"wrote {write_json(results, args.out)} and {write_markdown(results, args.out)}")
    tdist.teardown(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
