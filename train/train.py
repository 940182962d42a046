"""Train Flamingo on a mixture of shard streams.

    python -m train.train                              # tiny model on out/m3w, CPU, a few minutes
    python -m train.train --config configs/flamingo-3b-like.yaml
    torchrun --nproc_per_node=8 -m train.train --config ... [--resume]   # DDP
    torchrun --nproc_per_node=8 -m train.train --config ... --distributed fsdp   # FSDP2

Read top to bottom: set-up, then one loop. Each optimiser update takes, per
micro-step, a batch from every dataset (mixture "accumulate", the paper's
sum_m lambda_m * loss_m) or from one drawn ∝ weight ("sample"); gradients
accumulate over all of them and DDP / FSDP sync only on the last backward.
"""
from __future__ import annotations

import os

if __name__ == "__main__":
    # Flags, config values and paths are all checked before torch is imported, so
    # --help and a bad value answer at once (one line, exit status 2).
    from train.config import parse_args as _parse_args

    _PARSED = _parse_args()

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # loader workers fork after tokenising

import contextlib
import math
import sys
import time

import torch
import torch.distributed as torch_dist
from tqdm import tqdm

from model.build import build_flamingo
from model.config import FlamingoConfig
from train import checkpoint
from shards.cli import fail, warn
from train.config import PROG, ConfigError, TrainConfig, no_cuda_message, parse_args
from train.dist import (all_mean, gate_values, is_fsdp, load_trainable_state, no_sync, save_final, setup,
                        teardown, trainable_state, unwrap, wrap)
from train.log import RunLog
from train.mixture import build_evals, build_sources, choose


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine / linear decay to min_lr_ratio * lr, or constant (the paper)."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.decay == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    low = cfg.lr * cfg.min_lr_ratio
    if cfg.decay == "linear":
        return cfg.lr - (cfg.lr - low) * progress
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * progress))


def make_optimizer(model, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable weights; no weight decay on the Perceiver Resampler (the paper)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if "resampler." not in n], "weight_decay": cfg.weight_decay},
              {"params": [p for n, p in named if "resampler." in n], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=tuple(cfg.betas))


def model_config(cfg: TrainConfig) -> FlamingoConfig:
    m = dict(cfg.model)
    if m.pop("preset", None) == "tiny":
        return FlamingoConfig.tiny(**m)
    return FlamingoConfig.from_dict(m)


def check_device(device: str, name: str = "device") -> None:
    """``cuda`` on a torch built without CUDA, or with no GPU visible: one line
    saying what to install or use instead (``name``: where it was set)."""
    if device != "cuda":
        return
    if not torch.backends.cuda.is_built():
        fail(PROG, no_cuda_message(name, torch.__version__))
    if not torch.cuda.is_available():
        fail(PROG, f"{name} cuda: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU "
             f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}; check the driver "
             f"with nvidia-smi) or use --device cpu")


@torch.no_grad()
def evaluate(model, dataset, device, autocast, max_batches: int) -> float | None:
    """Token-weighted mean loss over a held-out set (every rank runs all of it);
    None when the set has no tokens."""
    model.eval()
    total, tokens = 0.0, 0
    for i, batch in enumerate(dataset):
        if max_batches and i >= max_batches:
            break
        n = int((batch["labels"][:, 1:] != -100).sum())
        with autocast():
            out = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                        batch["vision_x"].to(device), labels=batch["labels"].to(device))
        total += float(out.loss) * n
        tokens += n
    model.train()
    return total / tokens if tokens else None


def evaluate_all(model, heldout: dict, device, autocast, max_batches: int, warned: set,
                 report: bool = True) -> dict:
    """{dataset name: held-out loss}; a dataset whose held-out set is empty is
    named once on stderr (a tiny dataset's keys may all fall outside ``holdout``)."""
    out = {}
    for name, dataset in heldout.items():
        value = evaluate(model, dataset, device, autocast, max_batches)
        if value is None:
            if report and name not in warned:
                warned.add(name)
                print(f"warning: dataset {name!r}: its held-out set is empty, so it has no "
                      "held-out loss (raise its holdout, or give it eval_shards)", file=sys.stderr)
            continue
        out[name] = value
    return out


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Run the configured training; returns the log records and this rank's per-step losses."""
    try:
        cfg.check()
    except ConfigError as e:
        raise SystemExit(str(e)) from None
    check_device(cfg.device)
    dist = setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = dist.device
    use_autocast = device.type == "cuda" and cfg.dtype != "float32"
    autocast = ((lambda: torch.autocast("cuda", dtype=getattr(torch, cfg.dtype))) if use_autocast
                else contextlib.nullcontext)

    # ---- model, data, optimiser
    mcfg = model_config(cfg)
    try:
        model, tokenizer = build_flamingo(mcfg)
    except (OSError, ValueError) as e:  # a folder that holds no model, a config it cannot read
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        fail(PROG, f"model (lm {mcfg.lm!r}, vision {mcfg.vision!r}): cannot build it: "
             f"{type(e).__name__}: {first}", status=1)
    model.to(device).train()
    sources = build_sources(cfg, tokenizer, model, dist.rank, dist.world)
    heldout = build_evals(cfg, tokenizer, model)
    warned: set = set()
    fsdp_dtype = (getattr(torch, cfg.dtype) if cfg.fsdp_mixed_precision and device.type == "cuda"
                  and cfg.dtype != "float32" else None)
    wrapped = wrap(model, dist, cfg.distributed, cfg.find_unused_parameters, param_dtype=fsdp_dtype)
    optimizer = make_optimizer(wrapped, cfg)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]

    # ---- resume
    start = 0
    if resume:
        try:
            path, state = checkpoint.load_latest(cfg.out_dir)
        except checkpoint.CheckpointError as e:
            raise SystemExit(f"--resume: {e}") from None
        if path is None:
            if dist.main:
                print(f"--resume: no checkpoint in {cfg.out_dir}, starting from step 0", file=sys.stderr)
        else:
            if state["world"] != dist.world:
                raise SystemExit(f"{path} was written by {state['world']} processes, this run has "
                                 f"{dist.world}; an exact resume needs the same number")
            load_trainable_state(wrapped, optimizer, state["weights"], state["optimizer"])
            for src in sources:
                src.load_state_dict(state["data"][dist.rank][src.name])
            checkpoint.set_rng_state(state["rng"])
            start = state["step"]
    log = RunLog(cfg.out_dir, resume_step=start if start else None, enabled=dist.main)
    if dist.main and start == 0:
        log.write({"kind": "config", "step": 0, "config": cfg.to_dict(), "model": mcfg.to_dict(),
                   "world": dist.world, "device": str(device),
                   "trainable_params": sum(p.numel() for p in unwrap(model).trainable_parameters())})

    if heldout and start == 0:  # the held-out loss of every dataset before any update
        log.write({"kind": "eval", "step": 0, "eval_loss": evaluate_all(
            wrapped, heldout, device, autocast, cfg.eval_batches, warned, dist.main)})

    # ---- the loop: `step` counts optimiser updates
    bar = tqdm(total=cfg.steps, initial=start, desc="train", dynamic_ncols=True,
               disable=not (dist.main and cfg.progress))
    sums = {s.name: [0.0, 0] for s in sources}
    samples = tokens = 0
    t0 = time.perf_counter()
    local_losses: list[dict] = []
    weights = None
    for step in range(start, cfg.steps):
        lr = lr_at(step, cfg)
        for g in optimizer.param_groups:
            g["lr"] = lr
        micro = [src for m in range(cfg.grad_accum)
                 for src in choose(sources, cfg.mixture, cfg.seed, step, m)]
        step_losses = {}
        for i, src in enumerate(micro):
            batch = {k: v.to(device, non_blocking=True) for k, v in src.next().items()}
            sync = i == len(micro) - 1
            with no_sync(wrapped, dist) if not sync else contextlib.nullcontext():
                with autocast():
                    out = wrapped(batch["input_ids"], batch["attention_mask"], batch["vision_x"],
                                  labels=batch["labels"])
                scale = src.weight if cfg.mixture == "accumulate" else 1.0
                (out.loss * scale / cfg.grad_accum).backward()
            loss = float(out.loss.detach())
            sums[src.name][0] += loss
            sums[src.name][1] += 1
            step_losses.setdefault(src.name, []).append(loss)
            samples += batch["input_ids"].shape[0]
            tokens += int(batch["attention_mask"].sum())
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        local_losses.append({"step": done, "loss": {k: sum(v) / len(v) for k, v in step_losses.items()}})
        bar.update(1)

        if done % cfg.log_every == 0 or done == cfg.steps:
            names = [n for n, (_, c) in sums.items() if c]
            means = all_mean([sums[n][0] / sums[n][1] for n in names], dist)
            skipped = all_mean([float(s.skipped) for s in sources], dist)
            elapsed = time.perf_counter() - t0
            losses = dict(zip(names, means))
            record = {"kind": "train", "step": done, "lr": lr, "loss": losses,
                      "gates": gate_values(wrapped),
                      "samples_per_s": samples * dist.world / elapsed,
                      "tokens_per_s": tokens * dist.world / elapsed,
                      "skipped": {s.name: round(v * dist.world) for s, v in zip(sources, skipped)}}
            if cfg.mixture == "accumulate":
                record["loss_weighted"] = sum(s.weight * losses[s.name] for s in sources if s.name in losses)
            log.write(record)
            bar.set_postfix_str(" ".join(f"{n}={v:.3f}" for n, v in losses.items()) + f" lr={lr:.2e}")
            sums = {s.name: [0.0, 0] for s in sources}
            samples = tokens = 0
            t0 = time.perf_counter()

        if heldout and (done % cfg.eval_every == 0 or done == cfg.steps):
            log.write({"kind": "eval", "step": done, "eval_loss": evaluate_all(
                wrapped, heldout, device, autocast, cfg.eval_batches, warned, dist.main)})
            log.plot()

        weights = None
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            weights, optim_state = trainable_state(wrapped, optimizer)  # (gathered under FSDP)
            data = {s.name: s.state_dict() for s in sources}
            if dist.enabled:
                gathered = [None] * dist.world
                torch_dist.all_gather_object(gathered, data)
            else:
                gathered = [data]
            if dist.main:
                checkpoint.save(cfg.out_dir, done, {
                    "step": done, "weights": weights, "optimizer": optim_state,
                    "rng": checkpoint.rng_state(), "data": gathered, "world": dist.world,
                    "config": cfg.to_dict(), "model_config": mcfg.to_dict()}, keep=cfg.keep_ckpts)
    bar.close()

    if dist.main:
        log.plot()
    if weights is None and is_fsdp(wrapped):  # (the last step always checkpoints; a resume past the end not)
        weights, _ = trainable_state(wrapped, optimizer)
    save_final(wrapped, os.path.join(cfg.out_dir, "final.safetensors"), dist, weights)
    log.close()
    result = {"records": log.records, "local_losses": local_losses, "model": unwrap(wrapped),
              "skipped": {s.name: s.skipped for s in sources}, "consumed": {s.name: s.consumed for s in sources}}
    teardown(dist)
    return result


def main(argv=None, parsed=None) -> None:
    cfg, args, warnings = parsed or parse_args(argv)
    if os.environ.get("RANK", "0") == "0":
        for w in warnings:
            warn(PROG, w)
    check_device(cfg.device, "--device" if args.device else f"{os.path.relpath(args.config)}: device")
    result = train(cfg, resume=args.resume)
    train_recs = [r for r in result["records"] if r["kind"] == "train"]
    if train_recs:
        first, last = train_recs[0]["loss"], train_recs[-1]["loss"]
        print("loss " + ", ".join(f"{n}: {first[n]:.3f} -> {last.get(n, float('nan')):.3f}" for n in first)
              + f"  (run dir {cfg.out_dir})")


if __name__ == "__main__":
    main(parsed=_PARSED)
