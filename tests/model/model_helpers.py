"""Shared builders for the model tests: tiny models, batches, a probe on cross-attention."""
from __future__ import annotations

import torch

from model.build import build_flamingo
from model.config import TINY_LMS, FlamingoConfig  # TINY_LMS: every tiny architecture, Gemma included


def make_model(lm: str = "tiny-gpt2", gates: float | None = None, **overrides):
    """A tiny model; ``gates`` sets every alpha (0 = as built) so blocks have an effect."""
    model, tok = build_flamingo(FlamingoConfig.tiny(lm, **overrides))
    if gates is not None:
        with torch.no_grad():
            for layer in model.xattn_layers.values():
                layer.gated.attn_gate.fill_(gates)
                layer.gated.ff_gate.fill_(gates)
    model.eval()
    return model, tok


def encode(tok, texts, side="right"):
    tok.padding_side = side
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def images(model, b, t, frames=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    return torch.randn(b, t, frames, 3, s, s, generator=g)


def capture_xattn(model):
    """Record the output of the first gated block's cross-attention (before its gate).

    Returns (list the outputs are appended to, hook handle to remove).
    """
    first = min(model.xattn_layers)
    seen = []
    handle = model.xattn_layers[first].gated.attn.register_forward_hook(
        lambda mod, args, out: seen.append(out.detach().clone()))
    return seen, handle
