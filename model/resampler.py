"""Perceiver Resampler: any number of patch features -> a fixed number of visual tokens.

Flamingo's §2.1: learned latents cross-attend to the flattened features of
all frames of one image/video; the latents' own keys/values are concatenated
to the features' so they also attend to each other. Learned temporal
embeddings are added per frame (no spatial ones: the vision encoder already
encodes position). Output: ``num_latents`` tokens per image/video.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FeedForward(nn.Sequential):
    """Pre-norm MLP: LayerNorm -> Linear -> GELU -> Linear (no biases, like the paper's code)."""

    def __init__(self, dim: int, mult: int = 4):
        inner = dim * mult
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(),
                         nn.Linear(inner, dim, bias=False))


class PerceiverAttention(nn.Module):
    """Latents (queries) attend to [features; latents] (keys/values)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        # x: [b, m, D] features of one image/video per row; latents: [b, n, D]
        b, n, _ = latents.shape
        h, d = self.heads, self.dim_head
        x = self.norm_media(x)
        latents = self.norm_latents(latents)
        q = self.to_q(latents).view(b, n, h, d).transpose(1, 2)               # [b, h, n, d]
        kv = self.to_kv(torch.cat([x, latents], dim=1))                        # [b, m + n, 2hd]
        k, v = kv.view(b, -1, 2, h, d).permute(2, 0, 3, 1, 4)                  # 2 x [b, h, m + n, d]
        out = F.scaled_dot_product_attention(q, k, v)                          # [b, h, n, d]
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class PerceiverResampler(nn.Module):
    def __init__(self, dim: int, *, depth: int = 6, heads: int = 8, dim_head: int = 64,
                 num_latents: int = 64, max_frames: int = 8, ff_mult: int = 4):
        super().__init__()
        self.num_latents = num_latents
        self.max_frames = max_frames
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        # Small init: added to the (unnormalised) vision features.
        self.temporal_embeddings = nn.Parameter(0.02 * torch.randn(max_frames, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, heads, dim_head), FeedForward(dim, ff_mult)])
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T_img, F, P, D] patch features -> [B, T_img, num_latents, D] visual tokens."""
        if x.dim() != 5:
            raise ValueError(f"resampler input must be [B, T_img, F, P, D], got {tuple(x.shape)}")
        b, t, f, p, d = x.shape
        if f > self.max_frames:
            raise ValueError(f"{f} frames per video, but the temporal embeddings cover {self.max_frames} "
                             "(raise FlamingoConfig.max_frames)")
        x = x + self.temporal_embeddings[:f, None, :].to(x.dtype)  # [B, T, F, P, D]
        x = x.reshape(b * t, f * p, d)                             # one row per image/video
        latents = self.latents.to(x.dtype).expand(b * t, -1, -1)
        for attn, ff in self.layers:
            latents = latents + attn(x, latents)
            latents = latents + ff(latents)
        return self.norm(latents).view(b, t, self.num_latents, d)
