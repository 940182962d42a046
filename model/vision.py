"""Vision encoders: pixels in, patch features out.

Every encoder is a :class:`VisionEncoder`: ``forward(pixels [N, C, H, W]) ->
[N, P, D]`` patch features, plus what the trainer needs to preprocess images
(``image_size``, ``image_mean``, ``image_std``). :func:`encode_media` lifts
that to the model's media layout ``[B, T_img, F, C, H, W] -> [B, T_img, F, P, D]``
(an image is a one-frame video).

One adapter, :class:`CLIPVisionEncoder`, wraps a transformers CLIP vision
tower. It serves both a real CLIP loaded from a local directory and the
``"tiny"`` encoder (the same architecture at 32 px with random weights), so
the loading code that runs in production is the code the tests run.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

# CLIP's preprocessing constants (openai/clip), used when a checkpoint does
# not ship a preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionEncoder(nn.Module):
    """Interface: ``forward(pixels [N, C, H, W]) -> patch features [N, P, D]``."""

    image_size: int
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]
    feature_dim: int
    num_patches: int


class CLIPVisionEncoder(VisionEncoder):
    """A transformers ``CLIPVisionModel``; features are one layer's patch tokens (CLS dropped)."""

    def __init__(self, model: CLIPVisionModel, *, feature_layer: int = -1,
                 image_mean: Sequence[float] = CLIP_MEAN, image_std: Sequence[float] = CLIP_STD):
        super().__init__()
        self.model = model
        cfg = model.config
        self.feature_layer = feature_layer
        self.image_size = int(cfg.image_size)
        self.image_mean = tuple(float(x) for x in image_mean)
        self.image_std = tuple(float(x) for x in image_std)
        self.feature_dim = int(cfg.hidden_size)
        self.num_patches = (self.image_size // int(cfg.patch_size)) ** 2
        n_layers = int(cfg.num_hidden_layers)
        if not -n_layers <= feature_layer < n_layers:
            raise ValueError(f"vision_feature_layer {feature_layer} out of range for {n_layers} layers")

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # [N, C, H, W] -> [N, 1 + P, D]
        pixels = pixels.to(self.model.dtype)
        if self.feature_layer == -1:
            tokens = self.model(pixel_values=pixels).last_hidden_state
        else:
            out = self.model(pixel_values=pixels, output_hidden_states=True)
            # hidden_states[0] is the embedding output; layer i is index i + 1.
            tokens = out.hidden_states[1:][self.feature_layer]
        return tokens[:, 1:]  # drop CLS: [N, P, D]


def tiny_clip_config() -> CLIPVisionConfig:
    """A ViT small enough for CPU tests: 32 px, 8 px patches (16 patches), width 64, 2 layers."""
    return CLIPVisionConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=64,
                            intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                            projection_dim=64)


def load_clip_vision(path: str, *, feature_layer: int = -1,
                     dtype: torch.dtype = torch.float32) -> CLIPVisionEncoder:
    """Load the vision tower of a CLIP checkpoint from a local directory (never downloads).

    The directory is what ``save_pretrained`` writes for a ``CLIPModel`` or a
    ``CLIPVisionModel``; the preprocessing constants come from its
    ``preprocessor_config.json`` when it has one.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"vision encoder {path!r}: no such directory. Models are never downloaded at run "
            "time: pass a local directory with a CLIP config.json and weights, or 'tiny'.")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise FileNotFoundError(f"vision encoder {path!r}: no config.json in that directory")
    model = CLIPVisionModel.from_pretrained(path, local_files_only=True, dtype=dtype)
    mean, std = CLIP_MEAN, CLIP_STD
    pp = os.path.join(path, "preprocessor_config.json")
    if os.path.isfile(pp):
        with open(pp, encoding="utf-8") as f:
            meta = json.load(f)
        mean = meta.get("image_mean", mean)
        std = meta.get("image_std", std)
    return CLIPVisionEncoder(model, feature_layer=feature_layer, image_mean=mean, image_std=std)


def build_vision_encoder(name: str, *, feature_layer: int = -1,
                         dtype: torch.dtype = torch.float32) -> CLIPVisionEncoder:
    """``"tiny"`` (random weights, built in code) or a local CLIP directory."""
    if name == "tiny":
        model = CLIPVisionModel(tiny_clip_config()).to(dtype)
        return CLIPVisionEncoder(model, feature_layer=feature_layer)
    return load_clip_vision(name, feature_layer=feature_layer, dtype=dtype)


def encode_media(encoder: VisionEncoder, vision_x: torch.Tensor) -> torch.Tensor:
    """[B, T_img, F, C, H, W] pixels -> [B, T_img, F, P, D] patch features."""
    if vision_x.dim() != 6:
        raise ValueError(f"vision_x must be [B, T_img, F, C, H, W], got shape {tuple(vision_x.shape)}")
    b, t, f = vision_x.shape[:3]
    feats = encoder(vision_x.flatten(0, 2))  # [(B T F), P, D]
    return feats.unflatten(0, (b, t, f))
