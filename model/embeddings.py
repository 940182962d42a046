"""Rows for new tokens on a frozen LM: only those rows are trainable.

Resizing the LM's embedding matrix and making it trainable would give the
optimizer (and weight decay) the whole vocabulary; instead the frozen
matrix is kept as it is and the new tokens' rows live in a small separate
parameter. A new id may lie inside the frozen matrix (many LMs pad their
vocabulary past the tokenizer's size, e.g. OPT) or past its end; both work.

For a tied LM (input embedding = output head, e.g. GPT-2, OPT) the input
and output share the new rows as they share the old ones; an untied LM
(e.g. Llama) gets separate new output rows.

Some LMs' embedding modules transform the lookup inside their forward (the
Gemma family multiplies by sqrt(hidden_size), Bart-style models by their
``embed_scale``). The new rows go through that same forward: each is looked
up by the base module itself, with its weight swapped (``functional_call``)
for a view of the new row, so whatever the module does to ``weight[id]``
(scale, buffers, dtype casts) it does to the new rows too, without copying
the frozen matrix.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _init_rows(weight: torch.Tensor, k: int) -> torch.Tensor:
    # The mean of the existing rows: a new token starts as an "average"
    # token instead of an outlier the frozen LM has never seen.
    return weight.detach().float().mean(dim=0, keepdim=True).repeat(k, 1)


class ExtendedEmbedding(nn.Module):
    def __init__(self, base: nn.Module, new_ids: Sequence[int]):
        super().__init__()
        self.base = base
        self.num_base = int(base.weight.shape[0])
        self.new_ids = [int(i) for i in new_ids]
        self.extra = nn.Parameter(_init_rows(base.weight, len(self.new_ids)))

    @property
    def weight(self) -> torch.Tensor:
        """The frozen matrix (so code that reads ``get_input_embeddings().weight`` keeps working)."""
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return max([self.num_base] + [i + 1 for i in self.new_ids])

    def new_rows(self) -> torch.Tensor:
        """The new tokens' rows as the base module's forward returns its own:
        ``base(id)`` computed with ``weight`` = the new row ([k, D])."""
        pad = getattr(self.base, "padding_idx", None)
        # F.embedding wants padding_idx < rows, and the padding row gets no
        # gradient: look up a row other than padding_idx in a stride-0 view.
        pad = None if pad is None else pad % self.num_base
        row = 1 if pad == 0 else 0
        n = max(row + 1, (pad or 0) + 1)
        ids = torch.tensor([row], device=self.extra.device)
        extra = self.extra.to(self.base.weight.dtype)  # the frozen matrix's dtype, as its rows
        rows = [torch.func.functional_call(self.base, {"weight": extra[k:k + 1].expand(n, -1)}, (ids,))
                for k in range(len(self.new_ids))]
        return torch.cat(rows, dim=0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.base(ids.clamp(max=self.num_base - 1))
        extra = self.new_rows().to(out.dtype)
        for k, tid in enumerate(self.new_ids):
            out = torch.where((ids == tid)[..., None], extra[k], out)
        return out


class ExtendedHead(nn.Module):
    """Output head with new columns; ``extra`` is shared with the input rows when tied."""

    def __init__(self, base: nn.Linear, new_ids: Sequence[int], extra: nn.Parameter | None = None):
        super().__init__()
        self.base = base
        self.num_base = int(base.weight.shape[0])
        self.new_ids = [int(i) for i in new_ids]
        self.extra = extra if extra is not None else nn.Parameter(_init_rows(base.weight, len(self.new_ids)))
        self.vocab_size = max([self.num_base] + [i + 1 for i in self.new_ids])
        appended = list(range(self.num_base, self.num_base + len(self.new_ids)))
        # Common case (ids follow the frozen vocabulary): a plain concatenation.
        self._append = self.new_ids == appended
        self.register_buffer("_ids", torch.tensor(self.new_ids, dtype=torch.long), persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.base(h)                                    # [..., V_base]
        new = F.linear(h, self.extra.to(h.dtype)).to(logits.dtype)  # [..., k]
        if self._append:
            return torch.cat([logits, new], dim=-1)
        if self.vocab_size > self.num_base:
            pad = logits.new_zeros(*logits.shape[:-1], self.vocab_size - self.num_base)
            logits = torch.cat([logits, pad], dim=-1)
        return logits.index_copy(-1, self._ids, new)


def extend_vocabulary(lm: nn.Module, new_ids: Sequence[int]) -> tuple[ExtendedEmbedding, ExtendedHead]:
    """Swap the LM's input embedding and output head for extended ones (in place)."""
    inp = lm.get_input_embeddings()
    out = lm.get_output_embeddings()
    if out is None or not isinstance(out, nn.Linear):
        raise TypeError(f"{type(lm).__name__}: expected an nn.Linear output head, got {type(out).__name__}")
    tied = out.weight is inp.weight
    emb = ExtendedEmbedding(inp, new_ids)
    head = ExtendedHead(out, new_ids, extra=emb.extra if tied else None)
    lm.set_input_embeddings(emb)
    lm.set_output_embeddings(head)
    return emb, head
