"""FlamingoConfig: every knob of the model in one plain dataclass.

The defaults are the paper's / OpenFlamingo's sizes (64 latents, a 6-layer
resampler, 8 heads of 64); :meth:`FlamingoConfig.tiny` shrinks them for the
``tiny-*`` language models used by tests, the demo and the CPU benchmark.
The config is saved next to the trainable weights, so it holds only JSON
values.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

TINY_LMS = ("tiny-gpt2", "tiny-opt", "tiny-llama", "tiny-gemma")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class FlamingoConfig:
    # What to build on: a tiny-* name (random weights built in code) or a
    # local directory holding a transformers causal LM and its tokenizer.
    lm: str = "tiny-gpt2"
    # "tiny" (a small random CLIP-style ViT) or a local CLIP directory.
    vision: str = "tiny"
    # A GATED XATTN-DENSE block goes before decoder layer i when
    # (i + 1) % n == 0 (OpenFlamingo's convention); 1 = before every layer.
    cross_attn_every_n_layers: int = 1
    # Perceiver Resampler.
    num_latents: int = 64
    resampler_depth: int = 6
    resampler_heads: int = 8
    resampler_dim_head: int = 64
    resampler_ff_mult: int = 4
    max_frames: int = 8  # size of the learned temporal embedding table
    # Gated cross-attention blocks.
    xattn_heads: int = 8
    xattn_dim_head: int = 64
    xattn_ff_mult: int = 4
    # Masking: True = each token sees only the latest image before it (the
    # paper); False = all previous images (the ablation).
    only_attend_latest_image: bool = True
    freeze_lm: bool = True
    freeze_vision: bool = True
    # Recompute LM layers and gated blocks in the backward pass.
    gradient_checkpointing: bool = False
    # Which vision layer's patch tokens feed the resampler (-1 = last); the
    # CLS token is dropped.
    vision_feature_layer: int = -1
    # dtype of the frozen LM / vision weights; trainable weights stay float32
    # (run under torch.autocast for mixed precision).
    frozen_dtype: str = "float32"
    # Seeds the random init of every built part (tiny LM / vision weights,
    # resampler, blocks), so a config rebuilds the same frozen weights.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cross_attn_every_n_layers < 1:
            raise ValueError(f"cross_attn_every_n_layers must be >= 1, got {self.cross_attn_every_n_layers}")
        if self.num_latents < 1 or self.resampler_depth < 1:
            raise ValueError("num_latents and resampler_depth must be >= 1")
        if self.frozen_dtype not in DTYPES:
            raise ValueError(f"frozen_dtype must be one of {DTYPES}, got {self.frozen_dtype!r}")

    @classmethod
    def tiny(cls, lm: str = "tiny-gpt2", **overrides) -> "FlamingoConfig":
        """Sizes for the tiny LMs: a CPU train step takes a few tens of ms."""
        small = dict(lm=lm, vision="tiny", resampler_depth=2, resampler_heads=4,
                     resampler_dim_head=16, xattn_heads=4, xattn_dim_head=16,
                     xattn_ff_mult=2, resampler_ff_mult=2)
        small.update(overrides)
        return cls(**small)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "FlamingoConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FlamingoConfig fields: {sorted(unknown)}")
        return cls(**d)
