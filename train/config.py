"""The trainer's configuration: a handful of plain values, a YAML file, a few flags.

Precedence: dataclass defaults < ``--config FILE.yaml`` (configs/tiny.yaml,
the tiny built-in run, when none is given) < command-line flags. Everything here is a JSON value, so the whole config
goes into every checkpoint and the log.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shards.cli import Parser, closest


def _tiny_datasets() -> list[dict]:
    return [{"name": "m3w", "kind": "m3w", "shards": "out/m3w", "weight": 1.0, "batch_size": 8,
             "seq_len": 256, "max_images": 5}]


def _f(default, help: str, **kw):
    """A config field with its --help text (each knob described once, here)."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    out_dir: str = _f("runs/tiny", "run folder: log.jsonl, loss.png, checkpoints, final.safetensors")
    # FlamingoConfig fields; preset "tiny" = FlamingoConfig.tiny(lm, **rest).
    model: dict = _f(lambda: {"preset": "tiny", "lm": "tiny-gpt2"},
                     "FlamingoConfig fields (lm, vision: tiny-* names or local directories)")
    # Each: name, kind (m3w|pairs|videos), shards (dir with manifest.json, brace
    # pattern or list), weight, batch_size, seq_len; m3w: max_images; videos: frames.
    datasets: list = _f(_tiny_datasets, "name, kind, shards, weight, batch_size, seq_len, ...")
    mixture: str = _f("accumulate", "accumulate: a batch of every dataset per update, loss = sum of "
                      "weight x loss (the paper); sample: one dataset per step, drawn by weight",
                      choices=("accumulate", "sample"))
    # Held-out loss: shards of their own, or (eval_shards null) the keys of the
    # first dataset that `holdout` (a fraction, by key hash) keeps out of training.
    eval_shards: str | list | None = _f(None, "held-out shards of the first dataset")
    holdout: float = _f(0.1, "share of each dataset's keys (by hash) kept out of training as its "
                        "held-out set, unless it has eval_shards", min=0.0, max=1.0, below_max=True)
    eval_every: int = _f(100, "held-out loss every N updates", min=1)
    eval_batches: int = _f(0, "batches per held-out loss (0 = the whole held-out set)", min=0)
    steps: int = _f(300, "optimiser updates to run", min=1)
    grad_accum: int = _f(1, "micro-steps per update (each takes a batch of every dataset)", min=1)
    lr: float = _f(1e-3, "peak learning rate", min=0.0, above_min=True)
    min_lr_ratio: float = _f(0.1, "the decay ends at min_lr_ratio x lr", min=0.0, max=1.0)
    warmup: int = _f(30, "linear warm-up, in updates", min=0)
    decay: str = _f("cosine", "learning-rate decay after the warm-up",
                    choices=("cosine", "linear", "constant"))
    weight_decay: float = _f(0.1, "AdamW weight decay (none on the Perceiver Resampler, as in the paper)",
                             min=0.0)
    betas: list = _f(lambda: [0.9, 0.999], "AdamW betas")
    grad_clip: float = _f(1.0, "global gradient-norm clipping (0 = off)", min=0.0)
    seed: int = _f(0, "seeds the model's random parts, the data order and the mixture draw", min=0)
    num_workers: int = _f(1, "data-loader worker processes per dataset (0 = in the main process)", min=0)
    shuffle_buffer: int = _f(64, "samples held in each stream's shuffle buffer (0 or 1 = no shuffle)",
                             min=0)
    log_every: int = _f(10, "a training-log record every N updates", min=1)
    ckpt_every: int = _f(100, "a checkpoint every N updates (and at the end)", min=1)
    keep_ckpts: int = _f(3, "checkpoints kept (the newest)", min=1)
    device: str = _f("auto", "auto: cuda when available, else cpu", choices=("auto", "cpu", "cuda"))
    threads: int = _f(0, "torch CPU threads (0 = torch's default)", min=0)
    dtype: str = _f("bfloat16", "autocast dtype on GPU (float32 = none); CPU runs float32",
                    choices=("float32", "bfloat16", "float16"))
    distributed: str = _f("ddp", "under torchrun: ddp (replicas) or fsdp (FSDP2, the LM sharded by "
                          "decoder layer)", choices=("ddp", "fsdp"))
    fsdp_mixed_precision: bool = _f(True, "fsdp on CUDA with dtype != float32: params gathered in "
                                    "dtype, grads reduced in float32")
    find_unused_parameters: bool = _f(True, "DDP: a batch without images leaves the resampler unused")
    progress: bool = _f(True, "a progress bar")

    @classmethod
    def from_yaml(cls, path: str) -> "TrainConfig":
        try:
            with open(path, encoding="utf-8") as f:
                raw = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read it: {e}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
        raw = raw or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys, got {type(raw).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if key not in known:
                near = closest(str(key), known)
                raise ConfigError(f"{path}: unknown config key {key!r}"
                                  + (f"; did you mean {near}?" if near else ""))
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self, origin: dict | None = None, inputs: bool = True) -> list[str]:
        """Raise :class:`ConfigError` (one line, naming the option) at the first
        bad value; return warnings (a run that would work, but not as meant).
        ``origin``: field name -> where it was set (``--steps`` or the YAML
        file), for the message; ``inputs``: also check the shard and model paths."""
        origin = origin or {}
        fields = {f.name: f for f in dataclasses.fields(self)}

        def name(key: str) -> str:
            where = origin.get(key)
            return where if where and where.startswith("--") else (f"{where}: {key}" if where else key)

        for key, f in fields.items():
            _check_value(name(key), getattr(self, key), f.type, f.metadata)
        if (not isinstance(self.betas, (list, tuple)) or len(self.betas) != 2
                or not all(_number(b) and 0 <= b < 1 for b in self.betas)):
            raise ConfigError(f"{name('betas')} {self.betas!r}: expected two numbers in [0, 1)")
        warnings = []
        if self.steps < self.warmup:
            warnings.append(
                f"{name('steps')} {self.steps} is below the warm-up ({name('warmup')} {self.warmup}): "
                f"the learning rate only reaches {self.lr * self.steps / self.warmup:.3g} of its peak "
                f"{self.lr:g} (lower the warm-up, or train longer)")
        warnings += check_datasets(self.datasets, name("datasets"), self.mixture)
        check_model(self.model, name("model"), inputs)
        if inputs:
            for spec in self.datasets:
                check_shards(spec, name("datasets"))
        return warnings


class ConfigError(ValueError):
    """A bad configuration value or path; its message is one line naming it."""


KINDS = ("m3w", "pairs", "videos")
DATASET_KEYS = {"name": str, "kind": str, "shards": (str, list), "weight": "number",
                "batch_size": "int>=1", "seq_len": "int>=2", "max_images": "int>=1",
                "frames": "int>=1", "holdout": "fraction", "eval_shards": (str, list, type(None))}


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(name: str, value, typ, meta) -> None:
    typ = str(typ)
    if typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{name} {value!r}: expected an integer{_range(meta)}")
    elif typ == "float":
        if not _number(value):
            hint = (f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-3)"
                    if isinstance(value, str) and "e" in value.lower() else "")
            raise ConfigError(f"{name} {value!r}: expected a number{_range(meta)}{hint}")
    elif typ == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} {value!r}: expected true or false")
    elif typ == "str" and not isinstance(value, str):
        raise ConfigError(f"{name} {value!r}: expected a string")
    if "choices" in meta and value not in meta["choices"]:
        near = closest(str(value), meta["choices"], cutoff=0.7)  # not gpu -> cpu
        raise ConfigError(f"{name} {value!r}: expected one of {', '.join(meta['choices'])}"
                          + (f" (did you mean {near}?)" if near else ""))
    lo, hi = meta.get("min"), meta.get("max")
    if _number(value) and ((lo is not None and (value < lo or (meta.get("above_min") and value == lo)))
                           or (hi is not None and (value > hi or (meta.get("below_max") and value == hi)))):
        raise ConfigError(f"{name} {value!r}: expected {'an integer' if typ == 'int' else 'a number'}"
                          f"{_range(meta)}")


def _range(meta) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f" in {'(' if meta.get('above_min') else '['}{lo:g}, {hi:g}{')' if meta.get('below_max') else ']'}"
    if lo is not None:
        return f" {'>' if meta.get('above_min') else '>='} {lo:g}"
    return ""


def check_datasets(datasets, where: str, mixture: str) -> list[str]:
    """Each dataset's keys and values; warnings for weights of 0."""
    if not isinstance(datasets, list) or not datasets:
        raise ConfigError(f"{where}: the config lists no datasets")
    names, warnings = [], []
    for i, d in enumerate(datasets):
        if not isinstance(d, dict):
            raise ConfigError(f"{where}[{i}]: expected a mapping (name, kind, shards, ...), got {d!r}")
        label = f"{where}[{i}]" + (f" ({d['name']!r})" if isinstance(d.get("name"), str) else "")
        missing = [k for k in ("name", "kind", "shards", "weight", "batch_size") if k not in d]
        if missing:
            raise ConfigError(f"{label} lacks {', '.join(missing)}")
        for key, value in d.items():
            rule = DATASET_KEYS.get(key)
            if rule is None:
                near = closest(str(key), DATASET_KEYS)
                raise ConfigError(f"{label}: unknown key {key!r}"
                                  + (f"; did you mean {near}?" if near else ""))
            _check_dataset_value(f"{label}: {key}", value, rule)
        if d["kind"] not in KINDS:
            raise ConfigError(f"{label}: kind {d['kind']!r}: expected one of {', '.join(KINDS)}")
        if d["shards"] in ("", []):
            raise ConfigError(f"{label}: shards is empty (a folder written by make "
                              f"{d['kind']}, a brace pattern or a list)")
        if d["weight"] == 0:
            warnings.append(f"{label} has weight 0: "
                            + ("it is never drawn" if mixture == "sample" else
                               "its loss is computed every update but trains nothing")
                            + " (give it a weight > 0, or remove it)")
        names.append(d["name"])
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: dataset names must be unique, got {names}")
    if all(d["weight"] == 0 for d in datasets):
        raise ConfigError(f"{where}: every dataset has weight 0, so nothing would train")
    return warnings


def _check_dataset_value(name: str, value, rule) -> None:
    if rule == "number":
        if not _number(value) or value < 0:
            raise ConfigError(f"{name} {value!r}: expected a number >= 0")
    elif rule in ("int>=1", "int>=2"):
        lo = int(rule[-1])
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ConfigError(f"{name} {value!r}: expected an integer >= {lo}")
    elif rule == "fraction":
        if not _number(value) or not 0 <= value < 1:
            raise ConfigError(f"{name} {value!r}: expected a number in [0, 1)")
    elif not isinstance(value, rule):
        raise ConfigError(f"{name} {value!r}: expected "
                          + ("a string" if rule is str else "a string or a list of strings"))


def check_shards(spec: dict, where: str) -> None:
    """A local shard folder must exist and list shards (remote ones and brace
    patterns are read as they are)."""
    paths = spec["shards"] if isinstance(spec["shards"], list) else [spec["shards"]]
    label = f"dataset {spec['name']!r}"
    for path in paths:
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{label}: shards {path!r}: expected a folder, a .tar path or a brace pattern")
        if "://" in path or "{" in path:
            continue
        hint = f" Run `make {spec['kind']}` to build them from the bundled sample." if spec["kind"] in KINDS else ""
        if not os.path.exists(path):
            raise ConfigError(f"{label}: no shards at {path!r}.{hint}")
        if path.endswith(".tar"):
            continue
        manifest = os.path.join(path, "manifest.json")
        if not os.path.isfile(manifest):
            raise ConfigError(f"{label}: {path!r} has no manifest.json (expected a folder written by "
                              f"the {spec['kind']} job, a .tar path or a brace pattern)")
        try:
            with open(manifest, encoding="utf-8") as f:
                listed = json.load(f).get("shards") or []
        except (OSError, ValueError, AttributeError) as e:
            raise ConfigError(f"{label}: {manifest}: unreadable manifest ({e})") from None
        if not listed:
            raise ConfigError(f"{label}: {path!r} is empty: its manifest lists no shards (the job "
                              f"kept no samples; see its stats.json)")


def check_model(model, where: str, inputs: bool = True):
    """The model section as a FlamingoConfig; its LM / vision paths must be local directories."""
    from model.config import TINY_LMS, FlamingoConfig

    if not isinstance(model, dict):
        raise ConfigError(f"{where}: expected a mapping of FlamingoConfig fields")
    m = dict(model)
    preset = m.pop("preset", None)
    if preset not in (None, "tiny"):
        raise ConfigError(f"{where}: preset {preset!r}: expected tiny (or no preset)")
    known = [f.name for f in dataclasses.fields(FlamingoConfig)]
    for key in m:
        if key not in known:
            near = closest(str(key), known)
            raise ConfigError(f"{where}: unknown field {key!r}" + (f"; did you mean {near}?" if near else ""))
    try:
        cfg = FlamingoConfig.tiny(**m) if preset == "tiny" else FlamingoConfig.from_dict(m)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None
    if inputs:
        if not cfg.lm.startswith("tiny-") and not os.path.isdir(cfg.lm):
            raise ConfigError(f"{where}.lm {cfg.lm!r}: no such directory (a local folder written by "
                              f"save_pretrained; nothing is downloaded) or one of {', '.join(TINY_LMS)}")
        if cfg.lm.startswith("tiny-") and cfg.lm not in TINY_LMS:
            raise ConfigError(f"{where}.lm {cfg.lm!r}: unknown tiny LM; expected one of {', '.join(TINY_LMS)}")
        if cfg.vision != "tiny" and not os.path.isdir(cfg.vision):
            raise ConfigError(f"{where}.vision {cfg.vision!r}: no such directory (a local CLIP folder "
                              "written by save_pretrained) or tiny")
    return cfg


# The run `python -m train.train` does with no --config.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "tiny.yaml"

# Flags that override one value of every dataset of a kind (the paper's knobs).
KIND_FLAGS = {"m3w_seq_len": ("m3w", "seq_len", 2, "tokens per M3W window"),
              "m3w_max_images": ("m3w", "max_images", 1, "images per M3W window"),
              "pairs_seq_len": ("pairs", "seq_len", 2, "tokens per image-text pair"),
              "video_frames": ("videos", "frames", 1, "frames per video"),
              "video_seq_len": ("videos", "seq_len", 2, "tokens per video caption")}
SCALAR_FLAGS = ("out_dir", "steps", "lr", "warmup", "decay", "seed", "num_workers", "log_every",
                "eval_every", "ckpt_every", "keep_ckpts", "mixture", "device", "grad_accum",
                "distributed", "shuffle_buffer", "holdout", "eval_batches", "threads", "dtype",
                "min_lr_ratio", "weight_decay", "grad_clip")
PROG = "python -m train.train"


def parser() -> Parser:
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    p = Parser(prog=PROG, description="Train Flamingo on webdataset shards (m3w, pairs, videos). "
               "Values come from the dataclass defaults, then --config FILE.yaml, then these flags.")
    p.add_argument("--config", default=str(DEFAULT_CONFIG), metavar="FILE.yaml",
                   help="YAML file of config keys (default: configs/tiny.yaml, the tiny CPU run)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint in out_dir")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--gradient_checkpointing", action="store_true",
                   help="recompute LM layers and gated blocks in the backward pass (less memory)")
    conv = {"int": int, "float": float}
    for name in SCALAR_FLAGS:
        f = fields[name]
        choices = f.metadata.get("choices")
        p.add_argument(f"--{name}", type=conv.get(str(f.type), str), default=None,
                       metavar="{" + ",".join(choices) + "}" if choices else name.upper(),
                       help=f"{f.metadata['help']} (default: {f.default!r}, or the config's)")
    for name, (kind, key, lo, what) in KIND_FLAGS.items():
        p.add_argument(f"--{name}", type=int, default=None, metavar="N",
                       help=f"{what}: sets {key} of every {kind} dataset (integer >= {lo})")
    p.add_argument("--shards", default=None, metavar="DIR",
                   help="shards of the first dataset (overrides the config)")
    return p


def parse_args(argv=None) -> tuple[TrainConfig, argparse.Namespace, list[str]]:
    """Flags and config, every value and path checked (one-line error, exit 2)
    without importing torch; returns (config, flags, warnings)."""
    p = parser()
    args = p.parse_args(argv)
    try:
        cfg = TrainConfig.from_yaml(args.config)
    except ConfigError as e:
        p.error(f"--config {e}" if str(e).startswith(args.config) else str(e))
    shown = os.path.relpath(args.config) if not os.path.relpath(args.config).startswith("..") else args.config
    origin = {f.name: shown for f in dataclasses.fields(TrainConfig)}
    for name in SCALAR_FLAGS:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
            origin[name] = f"--{name}"
    for name, (kind, key, lo, _) in KIND_FLAGS.items():
        value = getattr(args, name)
        if value is not None:
            if value < lo:
                p.error(f"--{name} {value}: expected an integer >= {lo}")
            for d in cfg.datasets:
                if isinstance(d, dict) and d.get("kind") == kind:
                    d[key] = value
    if args.shards is not None:
        if not isinstance(cfg.datasets, list) or not cfg.datasets:
            p.error(f"--shards: {args.config} lists no datasets to give them to")
        cfg.datasets[0]["shards"] = args.shards
    if args.no_progress:
        cfg.progress = False
    if args.gradient_checkpointing and isinstance(cfg.model, dict):
        cfg.model["gradient_checkpointing"] = True
    try:
        warnings = cfg.check(origin)
    except ConfigError as e:
        p.error(str(e))
    if cfg.device == "cuda" and torch_without_cuda():
        p.error(no_cuda_message("--device" if args.device else f"{args.config}: device",
                                torch_without_cuda()))
    return cfg, args, warnings


def torch_without_cuda() -> str | None:
    """The installed torch's version when it is a CPU-only build (``2.13.0+cpu``),
    read from its package metadata (no import); None otherwise."""
    from importlib import metadata

    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None
    return version if version.endswith("+cpu") else None


def no_cuda_message(name: str, version: str) -> str:
    return (f"{name} cuda: this torch ({version}) is built without CUDA; install the CUDA build of "
            f"the same version (make venv TORCH=cu128, see README: GPUs) or use --device cpu")
