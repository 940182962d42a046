"""GATED XATTN-DENSE (Flamingo §2.2, Fig. 4).

    y = y + tanh(alpha_xattn) * xattn(q=y, kv=visual tokens)
    y = y + tanh(alpha_dense) * ffw(y)

Both alphas start at 0, so a freshly built model computes exactly what the
LM alone computes. The attention is torch's scaled_dot_product_attention with
the boolean mask from :mod:`model.masking` (fused kernels on CPU and GPU;
no [T_txt, T_img*n] float score tensor is materialised by us).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.masking import MediaMask
from model.resampler import FeedForward


class MaskedCrossAttention(nn.Module):
    """Text queries attend to visual tokens; tokens with no image output exactly 0."""

    def __init__(self, dim: int, dim_visual: int, heads: int = 8, dim_head: int = 64):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim_visual, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, y: torch.Tensor, media: torch.Tensor, mask: MediaMask) -> torch.Tensor:
        # y: [B, T, D] text; media: [B, T_img, n, Dv] visual tokens
        b, t, _ = y.shape
        h, d = self.heads, self.dim_head
        q = self.to_q(self.norm(y)).view(b, t, h, d).transpose(1, 2)        # [B, h, T, d]
        kv = self.to_kv(media.flatten(1, 2))                                 # [B, T_img n, 2hd]
        k, v = kv.view(b, -1, 2, h, d).permute(2, 0, 3, 1, 4)                # 2 x [B, h, T_img n, d]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.attn_mask)
        out = self.to_out(out.transpose(1, 2).reshape(b, t, h * d))         # [B, T, D]
        return out.masked_fill(~mask.has_image, 0.0)


class GatedCrossAttentionBlock(nn.Module):
    def __init__(self, dim: int, dim_visual: int, *, heads: int = 8, dim_head: int = 64,
                 ff_mult: int = 4):
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_visual, heads, dim_head)
        # Shape [1], not 0-d: FSDP2 shards every parameter along dim 0. Weights
        # saved with the old 0-d gates still load (see _load_from_state_dict
        # and model.state.load_trainable).
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff = FeedForward(dim, ff_mult)
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("attn_gate", "ff_gate"):
            t = state_dict.get(prefix + name)
            if t is not None and t.dim() == 0:
                state_dict[prefix + name] = t.reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, y: torch.Tensor, media: torch.Tensor | None, mask: MediaMask | None) -> torch.Tensor:
        """``media=None`` (no image in the batch): the cross-attention output is
        zero for every token, so only the dense part runs, exactly as it does
        for the tokens before the first image of a batch that has images."""
        # The block runs in its own dtype (float32 master weights) and hands
        # the LM back its dtype, so a bf16 LM's residual stream stays bf16.
        # bf16 -> float32 -> bf16 is exact, so zero gates still change nothing.
        x = y.to(self.attn_gate.dtype)
        if media is not None:
            x = x + self.attn_gate.tanh() * self.attn(x, media, mask)
        x = x + self.ff_gate.tanh() * self.ff(x)
        return x.to(y.dtype)
