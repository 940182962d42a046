"""The trainer's configuration: a handful of plain values, a YAML file, a few flags.

Precedence: dataclass defaults < ``--config FILE.yaml`` (configs/tiny.yaml,
the tiny built-in run, when none is given) < command-line flags. Everything here is a JSON value, so the whole config
goes into every checkpoint and the log.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def _tiny_datasets() -> list[dict]:
    return [{"name": "m3w", "kind": "m3w", "shards": "out/m3w", "weight": 1.0, "batch_size": 8,
             "seq_len": 256, "max_images": 5}]


@dataclass
class TrainConfig:
    out_dir: str = "runs/tiny"
    # FlamingoConfig fields; preset "tiny" = FlamingoConfig.tiny(lm, **rest).
    model: dict = field(default_factory=lambda: {"preset": "tiny", "lm": "tiny-gpt2"})
    # Each: name, kind (m3w|pairs|videos), shards (dir with manifest.json, brace
    # pattern or list), weight, batch_size, seq_len; m3w: max_images; videos: frames.
    datasets: list = field(default_factory=_tiny_datasets)
    mixture: str = "accumulate"   # accumulate (the paper): every dataset each update | sample: one ∝ weight
    # Held-out loss: shards of their own, or (eval_shards null) the keys of the
    # first dataset that `holdout` (a fraction, by key hash) keeps out of training.
    eval_shards: str | list | None = None
    holdout: float = 0.1
    eval_every: int = 100
    eval_batches: int = 0         # 0 = the whole held-out set
    steps: int = 300              # optimiser updates
    grad_accum: int = 1           # micro-steps per update (each takes a batch of every dataset)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 30
    decay: str = "cosine"         # cosine | linear | constant
    weight_decay: float = 0.1     # not on the Perceiver Resampler (as in the paper)
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    seed: int = 0
    num_workers: int = 1          # loader workers per dataset
    shuffle_buffer: int = 64
    log_every: int = 10
    ckpt_every: int = 100
    keep_ckpts: int = 3
    device: str = "auto"          # auto | cpu | cuda
    threads: int = 0              # torch CPU threads (0 = torch's default)
    dtype: str = "bfloat16"       # autocast dtype on GPU (float32 = none); CPU runs float32
    distributed: str = "ddp"      # under torchrun: ddp (replicas) | fsdp (FSDP2, LM sharded by decoder layer)
    fsdp_mixed_precision: bool = True  # fsdp on CUDA with dtype != float32: params gathered in dtype, grads reduced in float32
    find_unused_parameters: bool = True  # a batch without images leaves the resampler unused
    progress: bool = True

    @classmethod
    def from_yaml(cls, path: str) -> "TrainConfig":
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> None:
        if self.mixture not in ("accumulate", "sample"):
            raise ValueError(f"mixture must be accumulate or sample, got {self.mixture!r}")
        if self.distributed not in ("ddp", "fsdp"):
            raise ValueError(f"distributed must be ddp or fsdp, got {self.distributed!r}")
        if self.decay not in ("cosine", "linear", "constant"):
            raise ValueError(f"decay must be cosine, linear or constant, got {self.decay!r}")
        if not self.datasets:
            raise ValueError("config lists no datasets")
        names = [d["name"] for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique, got {names}")
        for d in self.datasets:
            missing = [k for k in ("name", "kind", "shards", "weight", "batch_size") if k not in d]
            if missing:
                raise ValueError(f"dataset {d.get('name', d)!r} lacks {missing}")


# The run `python -m train.train` does with no --config.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml"

# Flags that override one value of every dataset of a kind (the paper's knobs).
KIND_FLAGS = {"m3w_seq_len": ("m3w", "seq_len"), "m3w_max_images": ("m3w", "max_images"),
              "pairs_seq_len": ("pairs", "seq_len"), "video_frames": ("videos", "frames"),
              "video_seq_len": ("videos", "seq_len")}
SCALAR_FLAGS = ("out_dir", "steps", "lr", "warmup", "decay", "seed", "num_workers", "log_every",
                "eval_every", "ckpt_every", "keep_ckpts", "mixture", "device", "grad_accum",
                "distributed", "shuffle_buffer", "holdout", "eval_batches", "threads")


def parse_args(argv=None) -> tuple[TrainConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m train.train", description="Train Flamingo on shards.")
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="YAML file (default: configs/tiny.yaml, the tiny CPU run)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in out_dir")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--gradient_checkpointing", action="store_true")
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    conv = {"int": int, "float": float, "str": str}
    for name in SCALAR_FLAGS:
        p.add_argument(f"--{name}", type=conv.get(str(types[name]), str), default=None)
    for name in KIND_FLAGS:
        p.add_argument(f"--{name}", type=int, default=None)
    p.add_argument("--shards", default=None, help="shards of the first dataset (overrides the config)")
    args = p.parse_args(argv)
    cfg = TrainConfig.from_yaml(args.config)
    for name in SCALAR_FLAGS:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    for name, (kind, key) in KIND_FLAGS.items():
        if getattr(args, name) is not None:
            for d in cfg.datasets:
                if d["kind"] == kind:
                    d[key] = getattr(args, name)
    if args.shards:
        cfg.datasets[0]["shards"] = args.shards
    if args.no_progress:
        cfg.progress = False
    if args.gradient_checkpointing:
        cfg.model["gradient_checkpointing"] = True
    cfg.check()
    return cfg, args
