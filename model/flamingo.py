"""FlamingoModel: frozen vision encoder -> Perceiver Resampler -> LM with gated blocks.

    vision_x [B, T_img, F, C, H, W]
      -> vision encoder (frozen)          [B, T_img, F, P, D_v]
      -> Perceiver Resampler              [B, T_img, n, D_v]   (n = num_latents)
      -> every gated block: text tokens cross-attend to the visual tokens of
         their latest <image> (model.masking)
    input_ids [B, T] -> LM (frozen, with the blocks spliced in) -> logits [B, T, V]

The k-th ``<image>`` token of a row uses ``vision_x[row, k]``. Rows with
fewer images are padded in vision_x; padding images are not even encoded.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from model.config import FlamingoConfig
from model.embeddings import ExtendedEmbedding, ExtendedHead, extend_vocabulary
from model.lm import FlamingoLayer, insert_gated_blocks
from model.masking import image_index, media_mask
from model.resampler import PerceiverResampler
from model.vision import VisionEncoder, encode_media


@dataclass
class FlamingoCache:
    """Decoding state: the LM's KV cache plus what cross-attention needs later.

    ``media`` are the visual tokens of the prompt's images, computed once;
    ``image_count`` [B] is how many ``<image>`` tokens each row has consumed,
    so a token generated later still attends to the latest image before it.
    """

    lm_cache: Any
    media: torch.Tensor | None
    image_count: torch.Tensor

    def reorder(self, index: torch.Tensor) -> None:
        """Select / reorder rows (beam search)."""
        self.lm_cache.reorder_cache(index)
        if self.media is not None:
            self.media = self.media.index_select(0, index)
        self.image_count = self.image_count.index_select(0, index)

    def repeat_interleave(self, n: int) -> None:
        """Each row n times in a row (expanding prompts to beams)."""
        self.reorder(torch.arange(self.image_count.shape[0], device=self.image_count.device)
                     .repeat_interleave(n))


@dataclass
class FlamingoOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor
    past_key_values: FlamingoCache | None = None


class FlamingoModel(nn.Module):
    def __init__(self, cfg: FlamingoConfig, lm: nn.Module, vision: VisionEncoder, *,
                 image_token_id: int, eoc_token_id: int, eos_token_id: int | None = None,
                 pad_token_id: int | None = None, tokenizer_len: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.image_token_id = int(image_token_id)
        self.eoc_token_id = int(eoc_token_id)
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id if pad_token_id is not None else eos_token_id
        self.tokenizer_len = tokenizer_len
        self.vision = vision
        self.resampler = PerceiverResampler(
            vision.feature_dim, depth=cfg.resampler_depth, heads=cfg.resampler_heads,
            dim_head=cfg.resampler_dim_head, num_latents=cfg.num_latents, max_frames=cfg.max_frames,
            ff_mult=cfg.resampler_ff_mult)
        self.lm = lm
        self.xattn_layers = insert_gated_blocks(
            lm, dim_visual=vision.feature_dim, every_n=cfg.cross_attn_every_n_layers,
            heads=cfg.xattn_heads, dim_head=cfg.xattn_dim_head, ff_mult=cfg.xattn_ff_mult)
        # Kept in a tuple so they stay registered only inside the LM (one name per weight).
        self._vocab = extend_vocabulary(lm, [self.image_token_id, self.eoc_token_id])
        params = inspect.signature(lm.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._freeze()
        # Under FSDP every rank must run the same modules in every step, or the
        # ranks' all-gathers / reduce-scatters get out of step. With this set, a
        # forward with no image to encode (vision_x None, or only padding
        # images) still runs the vision encoder, the resampler and every
        # block's cross-attention, on one all-zero image that no token attends
        # to: the cross-attention output stays exactly 0 (masked), so outputs
        # and the other gradients are unchanged; the unused weights get zero
        # gradients instead of none. Set by train.dist for FSDP; off otherwise.
        self.uniform_compute = False
        if cfg.gradient_checkpointing:
            kw = {"use_reentrant": False}
            if hasattr(self.lm, "activation_checkpointing_enable"):  # transformers >= 5.x name
                self.lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kw)
            else:
                self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kw)
            for layer in self.xattn_layers.values():
                layer.checkpoint = True

    # ------------------------------------------------------------ parameters

    @property
    def embed(self) -> ExtendedEmbedding:
        return self._vocab[0]

    @property
    def head(self) -> ExtendedHead:
        return self._vocab[1]

    def _freeze(self) -> None:
        if self.cfg.freeze_vision:
            self.vision.requires_grad_(False)
            self.vision.eval()
        if self.cfg.freeze_lm:
            self.lm.requires_grad_(False)
            for layer in self.xattn_layers.values():
                layer.gated.requires_grad_(True)
            self.embed.extra.requires_grad_(True)
            self.head.extra.requires_grad_(True)

    def train(self, mode: bool = True) -> "FlamingoModel":
        super().train(mode)
        if self.cfg.freeze_vision:
            self.vision.eval()  # frozen: no dropout, fixed norms
        return self

    def named_trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable_parameters()]

    def gate_values(self) -> dict[str, float]:
        """tanh of every gate, keyed "<decoder layer>.attn" / "<decoder layer>.ff", for logging."""
        out = {}
        for i, layer in self.xattn_layers.items():
            out[f"{i}.attn"] = float(layer.gated.attn_gate.detach().tanh())
            out[f"{i}.ff"] = float(layer.gated.ff_gate.detach().tanh())
        return out

    # ------------------------------------------------------------ preprocessing facts

    @property
    def image_size(self) -> int:
        return self.vision.image_size

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return self.vision.image_mean

    @property
    def image_std(self) -> tuple[float, float, float]:
        return self.vision.image_std

    @property
    def vocab_size(self) -> int:
        return self.head.vocab_size

    # ------------------------------------------------------------ forward

    def encode_vision(self, vision_x: torch.Tensor, num_used: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T_img, F, C, H, W] -> visual tokens [B, T_img, n, D].

        With ``num_used`` [B], images k >= num_used[b] (batch padding) are
        skipped and their tokens left zero; nothing attends to them.
        """
        if vision_x.dim() != 6:
            raise ValueError(f"vision_x must be [B, T_img, F, C, H, W], got shape {tuple(vision_x.shape)}")
        b, t = vision_x.shape[:2]
        frozen = not any(p.requires_grad for p in self.vision.parameters())
        dtype = self.resampler.latents.dtype
        if num_used is not None:
            used = torch.arange(t, device=vision_x.device)[None, :] < num_used.to(vision_x.device)[:, None]
            if not bool(used.any()):
                if self.uniform_compute:
                    return self._unattended_media(b, t, vision_x)
                n, d = self.resampler.num_latents, self.vision.feature_dim
                return vision_x.new_zeros(b, t, n, d, dtype=dtype)
            if not bool(used.all()):
                with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
                    feats = encode_media(self.vision, vision_x[used][None])[0]   # [M, F, P, D]
                tokens = self.resampler(feats[None].to(dtype))[0]                # [M, n, D]
                out = tokens.new_zeros(b, t, *tokens.shape[1:])
                return out.index_put((used,), tokens)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            feats = encode_media(self.vision, vision_x)                          # [B, T, F, P, D]
        return self.resampler(feats.to(dtype))

    def _unattended_media(self, b: int, t: int, like: torch.Tensor) -> torch.Tensor:
        """Visual tokens [b, t, n, D] of one all-zero image, for ``uniform_compute``.

        Only for batches in which no token has an image index > 0, so nothing
        attends to them; they exist so that the vision encoder and resampler
        run (and get gradients) on every rank.
        """
        size = self.vision.image_size
        zeros = torch.zeros(1, 1, 1, 3, size, size, dtype=like.dtype if like.is_floating_point()
                            else torch.float32, device=like.device)
        return self.encode_vision(zeros).expand(b, t, -1, -1)

    def _condition(self, active: bool, media: torch.Tensor | None = None,
                   idx: torch.Tensor | None = None) -> None:
        mask = None
        if media is not None:
            mask = media_mask(idx, media.shape[1], media.shape[2], self.cfg.only_attend_latest_image)
        for layer in self.xattn_layers.values():
            layer.condition(active, media, mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                vision_x: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                past_key_values: FlamingoCache | None = None, use_cache: bool = False,
                position_ids: torch.Tensor | None = None, logits_to_keep: int = 0) -> FlamingoOutput:
        """Logits (and the mean next-token loss over labels != -100).

        ``vision_x=None``: no pictures (``<image>`` tokens then carry none);
        the blocks' dense part still runs, as for text before a first image.
        With ``past_key_values`` (a :class:`FlamingoCache` from an earlier
        call with ``use_cache=True``) the cached visual tokens are reused and
        ``vision_x`` must be None; with ``use_cache=True`` every image in
        vision_x is encoded, since later tokens may bring more ``<image>``s.
        """
        prior = past_key_values.image_count if past_key_values is not None else None
        idx = image_index(input_ids, self.image_token_id, prior)       # [B, T]
        count = idx[:, -1] if idx.shape[1] else (prior if prior is not None
                                                 else idx.new_zeros(idx.shape[0]))
        if past_key_values is not None:
            if vision_x is not None:
                raise ValueError("pass vision_x with the prompt only; later calls reuse the cached visual tokens")
            media = past_key_values.media
        elif vision_x is not None:
            if vision_x.shape[0] != input_ids.shape[0]:
                raise ValueError(f"vision_x has {vision_x.shape[0]} rows, input_ids {input_ids.shape[0]}")
            media = self.encode_vision(vision_x, None if use_cache else count)
        else:
            media = None
        if media is not None:
            most = int(count.max())
            if most > media.shape[1]:
                raise ValueError(f"a row has {most} <image> tokens but vision_x holds {media.shape[1]} images per row")

        kwargs = {self._cache_kwarg: past_key_values.lm_cache if past_key_values is not None else None}
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        if logits_to_keep:
            kwargs["logits_to_keep"] = logits_to_keep
        cond_media, cond_idx = media, idx
        if media is None and self.uniform_compute:
            # No pictures: the blocks' cross-attention still runs, on visual
            # tokens nobody may attend to (every image index 0), so its output
            # is exactly 0, as when it is skipped. The cache keeps media=None.
            cond_media = self._unattended_media(input_ids.shape[0], 1, input_ids)
            cond_idx = torch.zeros_like(idx)
        self._condition(True, cond_media, cond_idx)
        try:
            out = self.lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache,
                          **kwargs)
        finally:
            self._condition(False)
        logits = out.logits

        loss = None
        if labels is not None:
            if logits_to_keep:
                raise ValueError("labels need the logits of every position (logits_to_keep=0)")
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(),
                                   labels[:, 1:].flatten().to(logits.device), ignore_index=-100)
        cache = None
        if use_cache:
            # (transformers 5 calls it "cache"; earlier releases "past_key_values".
            # A Cache is falsy while empty, so test for None, not truth.)
            lm_cache = getattr(out, "cache", None)
            if lm_cache is None:
                lm_cache = getattr(out, "past_key_values", None)
            cache = FlamingoCache(lm_cache, media, count)
        return FlamingoOutput(loss=loss, logits=logits, past_key_values=cache)

    # ------------------------------------------------------------ conveniences

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 vision_x: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        """Greedy (num_beams=1) or beam search; see :func:`model.generation.generate`."""
        from model.generation import generate
        return generate(self, input_ids, attention_mask, vision_x, **kwargs)

    def save_trainable(self, path: str) -> None:
        from model.state import save_trainable
        save_trainable(self, path)

    def load_trainable(self, path: str) -> "FlamingoModel":
        """Load weights saved by save_trainable into this model (in place)."""
        from model.state import load_trainable
        load_trainable(self, path)
        return self


__all__ = ["FlamingoCache", "FlamingoModel", "FlamingoOutput", "FlamingoLayer", "ExtendedEmbedding",
           "ExtendedHead"]
