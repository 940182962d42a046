"""Trainer throughput: the M3W loader vs bare JPEG decode+resize, and tiny-config train steps/s.

    .venv/bin/python bench/bench_train.py [--shards out/m3w] [--batches 40] [--steps 20]

1. Bare rate: every image of the shards decoded and resized with train.data.load_image
   (the loader's own transform), in this process: images/s.
2. Loader rate: the M3W ShardStream through a WebLoader with 1 worker, the
   same shards: images/s and samples/s per worker. Target: >= 0.8 x the bare rate
   (the loader adds tar reading, tokenising, windowing and collation on top).
3. Train steps/s of the tiny config (configs/tiny.yaml: batch 8 x 256 tokens), CPU.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from model.build import build_flamingo  # noqa: E402
from shards.schema import iter_image_members  # noqa: E402
from train.config import DEFAULT_CONFIG, TrainConfig  # noqa: E402
from train.data import ShardStream, list_shards, load_image, make_loader, read_tar  # noqa: E402
from train.mixture import processor_for  # noqa: E402
from train.train import make_optimizer, model_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", default="out/m3w")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    if not os.path.exists(args.shards):
        raise SystemExit(f"{args.shards}: no shards; run `make m3w` first")
    torch.set_num_threads(1)
    cfg = TrainConfig.from_yaml(str(DEFAULT_CONFIG))
    model, tok = build_flamingo(model_config(cfg))
    spec = dict(cfg.datasets[0], shards=args.shards)
    proc = processor_for(spec, tok, model)
    size, mean, std = model.image_size, model.image_mean, model.image_std

    # 1. bare decode + resize of the same images
    docs = [[data for _, data in iter_image_members(s)] for path in list_shards(args.shards)
            for s in read_tar(path)]
    t = time.perf_counter()
    for doc in docs:
        for data in doc:
            load_image(data, size, mean, std)
    dt = time.perf_counter() - t
    n_images = sum(len(d) for d in docs)
    bare, bare_docs = n_images / dt, len(docs) / dt
    print(f"bare JPEG decode+resize to {size}px: {bare:,.0f} images/s = {bare_docs:,.1f} samples/s "
          f"with every image of a sample decoded ({len(docs)} samples, {n_images} images)")

    # 2. the loader, 1 worker (per-worker rate)
    ds = ShardStream(args.shards, proc, int(spec["batch_size"]), seed=0, shuffle_buffer=cfg.shuffle_buffer)
    it = iter(make_loader(ds, num_workers=1))
    next(it)  # worker start-up is not throughput
    n_img = n_samples = 0
    t = time.perf_counter()
    for _ in range(args.batches):
        b = next(it)
        n_img += int(b["num_images"].sum())
        n_samples += b["input_ids"].shape[0]
    dt = time.perf_counter() - t
    # The loader decodes only the images inside each 256-token window (so it also
    # reports images/s), but reads, tokenises and windows every whole document.
    rate = n_samples / dt
    print(f"loader (1 worker): {rate:,.1f} samples/s per worker ({n_img / dt:,.0f} images/s) "
          f"= {rate / bare_docs:.2f}x the bare decode rate in samples/s (target >= 0.8x)")

    # 3. tiny train steps/s (same batch shapes as `python -m train.train`)
    model.train()
    opt = make_optimizer(model, cfg)
    batches = [next(it) for _ in range(4)]
    for i in range(args.steps + 3):
        if i == 3:
            t = time.perf_counter()
        b = batches[i % len(batches)]
        out = model(b["input_ids"], b["attention_mask"], b["vision_x"], labels=b["labels"])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sps = args.steps / (time.perf_counter() - t)
    print(f"tiny config train: {sps:.2f} steps/s ({sps * 8 * 256:,.0f} tokens/s incl. padding), 1 CPU thread")


if __name__ == "__main__":
    main()
