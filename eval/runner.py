"""Evaluating one task at given shots and trials: prompts, model calls, metrics.

Queries are split across ranks (rank r takes queries r, r + world, ...);
each rank's predictions are gathered and rank 0 computes the metrics from
all of them, so a run on N ranks gives the numbers of a run on one
(demonstrations are seeded per query, not per rank).
"""
from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from eval import metrics, prompts
from eval.demos import Rices, random_demos
from eval.media import MediaError, MediaLoader
from eval.scoring import candidate_ids, clean_generation, generate_batch, score_candidates
from eval.tasks import TaskData

# Decoding as in the paper / OpenFlamingo: captions 3 beams <= 20 new tokens, VQA <= 5.
MAX_NEW_TOKENS = {"caption": 20, "vqa": 5, "ivqa": 5}
NUM_BEAMS = 3


@dataclass
class Options:
    shots: list[int]
    trials: int = 1
    seed: int = 0
    rices: bool = False
    cache_dir: str | None = None
    batch_size: int = 8
    candidate_batch: int = 64
    num_beams: int = NUM_BEAMS
    caption_metrics: tuple[str, ...] = ("cider", "bleu4")
    rank: int = 0
    world: int = 1
    progress: bool = True


@dataclass
class Timing:
    """Seconds spent per stage (for bench/bench_eval.py)."""
    media: float = 0.0            # loading + preprocessing images / videos (and RICES features)
    prompt_and_decode: float = 0.0
    metric: float = 0.0
    queries: int = 0
    extra: dict = field(default_factory=dict)


def _gather(obj, world: int):
    if world == 1:
        return [obj]
    import torch.distributed as dist
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _metric(kind: str, data: TaskData, outputs: dict, opts: Options) -> tuple[dict, dict]:
    """(metrics {name: value in percent}, per-query extras) from every query's output."""
    recs = {q.uid: q.record for q in data.queries}
    if kind == "caption":
        corpus, per = metrics.caption_scores(outputs, {u: recs[u]["captions"] for u in outputs},
                                             opts.caption_metrics)
        return {k: 100 * v for k, v in corpus.items()}, per
    if kind in ("vqa", "ivqa"):
        fn = metrics.vqa_accuracy if kind == "vqa" else metrics.ivqa_accuracy
        per = {u: fn(p, recs[u]["answers"]) for u, p in outputs.items()}
        return {"accuracy": 100 * sum(per.values()) / len(per)}, per
    if kind == "hateful":
        p_yes = {u: 1 / (1 + math.exp(s[1] - s[0])) for u, s in outputs.items()}
        labels = [int(recs[u]["label"]) for u in p_yes]
        return {"ROC-AUC": 100 * metrics.roc_auc(list(p_yes.values()), labels)}, p_yes
    if kind == "classify":
        idx = {c: i for i, c in enumerate(data.classes)}
        t1 = [metrics.topk_correct(s, idx[recs[u]["class_name"]], 1) for u, s in outputs.items()]
        t5 = [metrics.topk_correct(s, idx[recs[u]["class_name"]], 5) for u, s in outputs.items()]
        return {"top-1": 100 * sum(t1) / len(t1), "top-5": 100 * sum(t5) / len(t5)}, {}
    if kind == "choice":
        ok = {u: metrics.topk_correct(s, int(recs[u]["answer"]), 1) for u, s in outputs.items()}
        return {"accuracy": 100 * sum(ok.values()) / len(ok)}, {}
    if kind == "visdial":
        per = {u: metrics.visdial_ndcg(s, recs[u]["relevance"]) for u, s in outputs.items()}
        return {"NDCG": 100 * sum(per.values()) / len(per)}, per
    if kind == "rareact":
        cid = {recs[u]["class_name"]: int(recs[u]["class_id"]) for u in recs}
        rows = [recs[u] for u in outputs]
        scores = [{cid[c]: s for c, s in zip(data.classes, outputs[u])} for u in outputs]
        return {"mWAP": 100 * metrics.rareact_mwap(rows, scores)}, {}
    raise ValueError(kind)


def evaluate_task(model, tokenizer, data: TaskData, opts: Options, loader: MediaLoader | None = None,
                  timing: Timing | None = None) -> dict:
    """{"shots": {k: {"trials": [...], "summary": {metric: mean/std/n}}}, "dropped": {...}}."""
    task = data.task
    kind = task.kind
    loader = loader or MediaLoader.for_model(model)
    timing = timing or Timing()
    dropped: Counter = Counter(data.dropped)

    def load(path, record=None):
        t0 = time.perf_counter()
        window = (float(record["start"]), float(record["end"])) \
            if task.media == "video" and record and "start" in record and "end" in record else None
        x = loader.load(path, task.media, window)
        timing.media += time.perf_counter() - t0
        return x

    pool = data.demos
    out = {"shots": {}, "dropped": {}}
    shot_list = list(opts.shots)
    if not task.demo_split:       # no train split (RareAct): zero-shot only, no text-only examples
        out["skipped_shots"] = {str(s): f"{task.paper_name} has no train split: zero-shot only"
                                for s in shot_list if s > 0}
        shot_list = [s for s in shot_list if s == 0]
        if not shot_list:
            raise ValueError(f"task {task.name}: {task.paper_name} has no train split, so it runs "
                             f"zero-shot only: --shots must include 0 (got {opts.shots})")
    rices = None
    if opts.rices and any(s > 0 for s in shot_list):
        t0 = time.perf_counter()
        rices = Rices(model, pool, load, opts.cache_dir, f"{task.name}-{task.demo_split}")
        timing.media += time.perf_counter() - t0
    mine = data.queries[opts.rank::opts.world]
    cand_cache = {}
    if kind in ("classify", "rareact"):
        cand_cache["classes"] = candidate_ids(tokenizer, data.classes)
    total = len(shot_list) * opts.trials * len(mine)
    bar = tqdm(total=total, desc=task.name, dynamic_ncols=True, disable=not opts.progress or opts.rank != 0,
               unit="q")
    for shots in shot_list:
        need = shots if shots else (prompts.ZERO_SHOT_TEXT_EXAMPLES if task.demo_split else 0)
        if need > len(pool):
            raise ValueError(f"task {task.name}: {shots} shots need {need} demonstrations, "
                             f"the demo split {task.demo_split!r} has {len(pool)}")
        trials = []
        for trial in range(opts.trials):
            seed = opts.seed + trial
            outputs: dict = {}
            shown: dict = {}          # uid -> the demonstrations' uids (text-only ones for 0 shots)
            bad: Counter = Counter()
            batch: list = []

            def flush():
                if not batch:
                    return
                t0 = time.perf_counter()
                texts = generate_batch(model, tokenizer, [(t, v) for _, t, v in batch],
                                       MAX_NEW_TOKENS[kind], opts.num_beams)
                timing.prompt_and_decode += time.perf_counter() - t0
                for (uid, _, _), raw in zip(batch, texts):
                    outputs[uid] = clean_generation(kind, raw)
                batch.clear()

            for q in mine:
                try:
                    qimg = load(q.media, q.record)
                except MediaError:
                    bad["unreadable media"] += 1
                    bar.update(1)
                    continue
                if shots == 0:
                    chosen = random_demos(pool, need, seed, q.uid)
                    demos, text_only = [], [d.record for d in chosen]
                else:
                    chosen = rices.nearest(qimg, shots) if rices else random_demos(pool, shots, seed, q.uid)
                    try:
                        demos, text_only = [(load(d.media, d.record), d.record) for d in chosen], []
                    except MediaError:
                        bad["unreadable demonstration media"] += 1
                        bar.update(1)
                        continue
                shown[q.uid] = [d.uid for d in chosen]
                text, vision = prompts.build_prompt(kind, demos, (qimg, q.record), text_only)
                if task.generates:
                    batch.append((q.uid, text, vision))
                    if len(batch) >= opts.batch_size:
                        flush()
                else:
                    t0 = time.perf_counter()
                    cands = prompts.candidates(kind, q.record, data.classes)
                    outputs[q.uid] = score_candidates(model, tokenizer, text, vision, cands, opts.candidate_batch,
                                                      cand_cache.get("classes"))
                    timing.prompt_and_decode += time.perf_counter() - t0
                timing.queries += 1
                bar.update(1)
            flush()
            every: dict = {}
            demo_ids: dict = {}
            parts = _gather((outputs, shown, dict(bad)), opts.world)
            bad = Counter()
            for o, sh, b in parts:
                every.update(o)
                demo_ids.update(sh)
                bad.update(b)
            if not every:
                raise ValueError(f"task {task.name}: no query could be evaluated ({dict(bad)})")
            t0 = time.perf_counter()
            # Rank 0 scores (and writes); the others would only start N more PTB tokenisers.
            scores, per = _metric(kind, data, {u: every[u] for u in sorted(every)}, opts) \
                if opts.rank == 0 else ({}, {})
            timing.metric += time.perf_counter() - t0
            trials.append({"seed": seed, "metrics": scores, "n": len(every), "dropped": dict(bad),
                           "predictions": {u: {"output": every[u], **({"score": per[u]} if u in per else {}),
                                               "demos": demo_ids[u]} for u in sorted(every)}})
        names = list(trials[0]["metrics"])
        out["shots"][str(shots)] = {
            "trials": trials,
            "summary": {m: metrics.mean_and_spread([t["metrics"][m] for t in trials]) for m in names}}
    bar.close()
    out["dropped"] = dict(dropped)
    return out
