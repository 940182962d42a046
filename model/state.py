"""Saving and loading only the trainable weights, plus the config that built the rest.

Two formats, chosen by the file name: ``*.safetensors`` (the config goes in
the header's metadata) or anything else via ``torch.save`` of a dict of
plain tensors and JSON values, read back with ``weights_only=True``. Nothing
is ever unpickled beyond tensors and builtins.

The frozen weights are not saved: a tiny/random part is rebuilt bit for bit
from the config's seed, a pretrained one from its local path.
"""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, save_file

from model.config import FlamingoConfig

FORMAT = "flamingo-trainable-v1"


def _is_safetensors(path: str) -> bool:
    return str(path).endswith(".safetensors")


def save_trainable(model, path: str) -> None:
    """Write the trainable parameters and ``model.cfg`` to ``path`` (atomically)."""
    tensors = {name: p.detach().cpu().contiguous() for name, p in model.named_trainable_parameters()}
    tmp = f"{path}.tmp"
    if _is_safetensors(path):
        save_file(tensors, tmp, metadata={"format": FORMAT, "flamingo_config": model.cfg.to_json()})
    else:
        torch.save({"format": FORMAT, "flamingo_config": model.cfg.to_dict(), "state_dict": tensors}, tmp)
    os.replace(tmp, path)


def read_trainable(path: str) -> tuple[FlamingoConfig, dict[str, torch.Tensor]]:
    """(config, tensors) from a file written by :func:`save_trainable`."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if _is_safetensors(path):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a Flamingo trainable-weights file (format={meta.get('format')!r})")
        cfg = FlamingoConfig.from_dict(json.loads(meta["flamingo_config"]))
        return cfg, load_file(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path}: not a Flamingo trainable-weights file")
    return FlamingoConfig.from_dict(blob["flamingo_config"]), blob["state_dict"]


def load_trainable(model, path: str) -> FlamingoConfig:
    """Copy saved trainable weights into ``model``; every name and shape must match."""
    cfg, tensors = read_trainable(path)
    params = dict(model.named_trainable_parameters())
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing or unexpected:
        raise ValueError(f"{path}: trainable weights do not match the model: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    with torch.no_grad():
        for name, p in params.items():
            t = tensors[name]
            if t.dim() == 0 and tuple(p.shape) == (1,):
                t = t.reshape(1)  # a gate saved when gates were 0-d
            if t.shape != p.shape:
                raise ValueError(f"{path}: {name} has shape {tuple(t.shape)}, the model {tuple(p.shape)}")
            p.copy_(t.to(p.dtype))
    return cfg


def load_flamingo(path: str):
    """Rebuild the model from the saved config and load its trainable weights: (model, tokenizer)."""
    from model.build import build_flamingo
    cfg, _ = read_trainable(path)
    model, tokenizer = build_flamingo(cfg)
    load_trainable(model, path)
    return model, tokenizer
