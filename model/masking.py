"""Which visual tokens each text token may attend to.

The k-th ``<image>`` token of a row (1-based) marks where image k enters the
text. A token's *image index* is the number of ``<image>`` tokens at or
before it: the ``<image>`` token itself and the text after it see image k,
until the next ``<image>``. Index 0 means "before any image": such tokens
get no visual input at all (their cross-attention output is exactly zero).

With ``only_latest=True`` (the paper) a token with index k attends to the
visual tokens of image k only; earlier images reach it through the LM's
self-attention. With ``only_latest=False`` (the ablation) it attends to
images 1..k.

Images beyond a row's count of ``<image>`` tokens (batch padding) are never
attended, because no token has their index.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def image_index(input_ids: torch.Tensor, image_token_id: int,
                prior_count: torch.Tensor | None = None) -> torch.Tensor:
    """[B, T] ids -> [B, T] image index (0 = no image yet).

    ``prior_count`` [B] is the number of ``<image>`` tokens already consumed
    (the cached prefix when decoding with a KV cache).
    """
    idx = (input_ids == image_token_id).cumsum(dim=1)
    if prior_count is not None:
        idx = idx + prior_count.to(idx.device)[:, None]
    return idx


@dataclass
class MediaMask:
    """What every gated block of one forward pass shares.

    ``attn_mask``: [B, 1, T_txt, T_img * n] bool for scaled_dot_product_attention
    (True = may attend). Rows with no image are left fully True so the softmax
    stays finite; ``has_image`` [B, T_txt, 1] then zeroes their output.
    """

    attn_mask: torch.Tensor
    has_image: torch.Tensor


def media_mask(idx: torch.Tensor, num_images: int, tokens_per_image: int,
               only_latest: bool = True) -> MediaMask:
    """Build the cross-attention mask from image indices [B, T] for T_img images of n tokens."""
    key_image = torch.arange(1, num_images + 1, device=idx.device).repeat_interleave(tokens_per_image)
    q = idx[:, :, None]                      # [B, T, 1]
    k = key_image[None, None, :]             # [1, 1, T_img * n]
    allowed = (k == q) if only_latest else (k <= q)
    has_image = idx > 0
    allowed = allowed | ~has_image[:, :, None]
    return MediaMask(attn_mask=allowed[:, None], has_image=has_image[:, :, None])
