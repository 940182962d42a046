"""Rebuilding the model from a checkpoint's own config.

``--checkpoint`` is a run directory (its ``final.safetensors``, else the newest
intact ``ckpt-*.pt``, via train.checkpoint.load_latest), a trainer checkpoint
file ``ckpt-*.pt`` (weights + ``model_config``), or a file written by
model.state.save_trainable (``*.safetensors`` or torch.save).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch


class CheckpointNotFound(FileNotFoundError):
    pass


def _from_trainer_state(state: dict, where: str):
    from model.build import build_flamingo
    from model.config import FlamingoConfig
    if "weights" not in state or "model_config" not in state:
        raise CheckpointNotFound(f"{where}: not a trainer checkpoint (no weights / model_config)")
    model, tok = build_flamingo(FlamingoConfig.from_dict(state["model_config"]))
    params = dict(model.named_trainable_parameters())
    weights = state["weights"]
    missing, unexpected = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
    if missing or unexpected:
        raise ValueError(f"{where}: weights do not match the model built from its config: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(weights[n].reshape(p.shape).to(p.dtype))
    return model, tok


def load_checkpoint(path: str):
    """(model in eval mode, tokenizer, the file actually loaded)."""
    from model.state import load_flamingo
    from train import checkpoint
    p = Path(path)
    if p.is_dir():
        final = p / "final.safetensors"
        if final.is_file():
            model, tok = load_flamingo(str(final))
            return model.eval(), tok, str(final)
        found, state = checkpoint.load_latest(str(p))
        if found is None:
            raise CheckpointNotFound(f"--checkpoint {path}: no final.safetensors and no ckpt-*.pt in it "
                                     "(run `make train` first)")
        model, tok = _from_trainer_state(state, found)
        return model.eval(), tok, found
    if not p.is_file():
        raise CheckpointNotFound(f"--checkpoint {path}: no such file or directory")
    if re.fullmatch(r"ckpt-\d{8}\.pt", p.name):
        model, tok = _from_trainer_state(checkpoint.load(str(p)), str(p))
        return model.eval(), tok, str(p)
    model, tok = load_flamingo(str(p))
    return model.eval(), tok, str(p)
