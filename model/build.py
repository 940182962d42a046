"""build_flamingo: a FlamingoConfig in, a ready model and its tokenizer out."""
from __future__ import annotations

import torch
from transformers import PreTrainedTokenizerBase

from model.config import FlamingoConfig
from model.flamingo import FlamingoModel
from model.lm import build_lm
from model.tokenizer import add_flamingo_tokens
from model.vision import build_vision_encoder


def build_flamingo(cfg: FlamingoConfig) -> tuple[FlamingoModel, PreTrainedTokenizerBase]:
    """Build on CPU, deterministically from ``cfg.seed``; move it with ``.to(device)`` after.

    The same config always rebuilds the same weights (random tiny parts
    included), which is what lets :func:`model.state.load_flamingo` restore
    a model from its trainable weights alone. The global RNG is left as it was.
    """
    dtype = getattr(torch, cfg.frozen_dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        lm, tokenizer = build_lm(cfg.lm, dtype=dtype)
        vision = build_vision_encoder(cfg.vision, feature_layer=cfg.vision_feature_layer, dtype=dtype)
        image_id, eoc_id = add_flamingo_tokens(tokenizer)
        model = FlamingoModel(cfg, lm, vision, image_token_id=image_id, eoc_token_id=eoc_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                              tokenizer_len=len(tokenizer))
    return model, tokenizer
