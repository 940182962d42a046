"""The language model side: building a causal LM, and splicing gated blocks into it.

Any ``transformers`` AutoModelForCausalLM works. Its decoder layers are found
generically (:func:`find_decoder_layers`: the ModuleList of
``num_hidden_layers`` same-class modules), not from a table of model names,
and chosen layers are replaced by a :class:`FlamingoLayer` that runs a
GATED XATTN-DENSE block on the hidden states and then the original layer,
unchanged. The LM's own forward (masks, positions, KV cache) is untouched.
"""
from __future__ import annotations

import os

import torch
import torch.utils.checkpoint
from torch import nn
from transformers import (AutoModelForCausalLM, AutoTokenizer, GemmaConfig, GPT2Config, LlamaConfig,
                          OPTConfig, PreTrainedModel, PreTrainedTokenizerBase)

from model.config import TINY_LMS
from model.masking import MediaMask
from model.tokenizer import tiny_tokenizer
from model.xattn import GatedCrossAttentionBlock


def _tiny_lm_config(name: str, vocab_size: int, eos: int, pad: int):
    common = dict(bos_token_id=eos, eos_token_id=eos, pad_token_id=pad)
    if name == "tiny-gpt2":
        return GPT2Config(vocab_size=vocab_size, n_positions=512, n_embd=64, n_layer=4, n_head=4,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
    if name == "tiny-opt":
        # Like the real OPT, the embedding has spare rows past the tokenizer's
        # vocabulary (rounded up to a multiple of 16).
        return OPTConfig(vocab_size=(vocab_size + 15) // 16 * 16, hidden_size=64, ffn_dim=256,
                         num_hidden_layers=4, num_attention_heads=4, max_position_embeddings=512,
                         word_embed_proj_dim=64, dropout=0.0, attention_dropout=0.0,
                         activation_dropout=0.0, **common)
    if name == "tiny-llama":
        return LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=176,
                           num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=512, tie_word_embeddings=False, **common)
    if name == "tiny-gemma":
        # Gemma's embedding module scales its lookup by sqrt(hidden_size) in
        # its forward (GemmaTextScaledWordEmbedding); input and head tied.
        return GemmaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=176,
                           num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                           head_dim=16, max_position_embeddings=512, **common)
    raise ValueError(f"unknown tiny LM {name!r}; expected one of {', '.join(TINY_LMS)}")


def build_lm(name: str, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A ``tiny-*`` LM with random weights and :func:`tiny_tokenizer`, or a local checkpoint.

    A local directory must hold what ``save_pretrained`` writes for the model
    and its tokenizer; nothing is downloaded.
    """
    if name.startswith("tiny-"):
        tok = tiny_tokenizer()
        cfg = _tiny_lm_config(name, len(tok), tok.eos_token_id, tok.pad_token_id)
        lm = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa").to(dtype)
        return lm, tok
    if not os.path.isdir(name):
        raise FileNotFoundError(
            f"language model {name!r}: no such directory. Models are never downloaded at run time: "
            "pass a local directory written by save_pretrained, or tiny-gpt2 / tiny-opt / tiny-llama.")
    lm = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, dtype=dtype)
    tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
    return lm, tok


def text_config(lm: PreTrainedModel):
    cfg = lm.config
    return cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg


def find_decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The ModuleList holding the decoder layers, found by shape not by name.

    It is the list of ``num_hidden_layers`` modules of one class (GPT-2's
    ``transformer.h``, OPT's ``model.decoder.layers``, Llama's
    ``model.layers``, ...). Without a config, the longest homogeneous list.
    """
    n = getattr(text_config(lm), "num_hidden_layers", None) if hasattr(lm, "config") else None
    candidates = []
    for name, mod in lm.named_modules():
        if isinstance(mod, nn.ModuleList) and len(mod) > 0:
            base = [m.decoder_layer if isinstance(m, FlamingoLayer) else m for m in mod]
            if len({type(m) for m in base}) == 1:
                candidates.append((name, mod))
    if n is not None:
        exact = [(name, mod) for name, mod in candidates if len(mod) == n]
        if exact:
            # Prefer the shallowest match (the layer stack, not a list inside a layer).
            return min(exact, key=lambda c: c[0].count("."))[1]
    if not candidates:
        raise ValueError(f"{type(lm).__name__}: found no list of decoder layers")
    return max(candidates, key=lambda c: len(c[1]))[1]


class FlamingoLayer(nn.Module):
    """A ``gated`` block, then the original decoder layer.

    The visual tokens and mask of the current forward pass are set with
    :meth:`condition` by FlamingoModel before it calls the LM, and cleared
    after; outside a FlamingoModel forward (``model.lm(...)`` called directly)
    the layer is the bare decoder layer, which is how the LM alone is run. The block runs outside the decoder layer's own gradient
    checkpointing and, when checkpointed, gets its inputs as arguments, so a
    recompute never reads state that may be gone by the backward pass.
    """

    def __init__(self, decoder_layer: nn.Module, gated: GatedCrossAttentionBlock):
        super().__init__()
        self.decoder_layer = decoder_layer
        self.gated = gated
        self.checkpoint = False
        self._active = False
        self._media: torch.Tensor | None = None
        self._mask: MediaMask | None = None

    def __getattr__(self, name: str):
        # Some LMs read attributes of their layers (e.g. attention_type).
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("decoder_layer"), name)

    def condition(self, active: bool, media: torch.Tensor | None = None,
                  mask: MediaMask | None = None) -> None:
        self._active, self._media, self._mask = active, media, mask

    def forward(self, *args, **kwargs):
        if self._active:
            if args:
                hidden, args = args[0], args[1:]
            else:
                hidden = kwargs.pop("hidden_states")
            if self.checkpoint and self.training and torch.is_grad_enabled():
                hidden = torch.utils.checkpoint.checkpoint(
                    self.gated, hidden, self._media, self._mask, use_reentrant=False)
            else:
                hidden = self.gated(hidden, self._media, self._mask)
            args = (hidden,) + args
        return self.decoder_layer(*args, **kwargs)


def insert_gated_blocks(lm: PreTrainedModel, *, dim_visual: int, every_n: int, heads: int,
                        dim_head: int, ff_mult: int) -> dict[int, FlamingoLayer]:
    """Put a block before decoder layer i when (i + 1) % every_n == 0 (in place).

    Returns {layer index: FlamingoLayer}.
    """
    layers = find_decoder_layers(lm)
    if any(isinstance(layer, FlamingoLayer) for layer in layers):
        raise ValueError("this LM already has gated cross-attention blocks")
    dim = int(text_config(lm).hidden_size)
    wrapped = {}
    for i in range(len(layers)):
        if (i + 1) % every_n == 0:
            gated = GatedCrossAttentionBlock(dim, dim_visual, heads=heads, dim_head=dim_head,
                                             ff_mult=ff_mult)
            layers[i] = wrapped[i] = FlamingoLayer(layers[i], gated)
    if not wrapped:
        raise ValueError(f"cross_attn_every_n_layers={every_n} leaves no block in {len(layers)} layers")
    return wrapped
