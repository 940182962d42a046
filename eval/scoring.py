"""Running the model on prompts: generation (beam / greedy) and candidate ranking.

Ranking scores each candidate continuation ``{candidate}<EOC>`` by its summed
log-likelihood after the prompt. The prompt (its images and text) runs once
with the KV cache on; its cache and visual tokens are then copied to a batch
of candidates (right-padded, positions continuing the prompt's), and one
forward over that batch gives every candidate's token log-probabilities: not
one forward per candidate from scratch. :func:`score_one` is the
from-scratch reference the tests hold it to.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch

from shards.schema import EOC_TOKEN, IMAGE_TOKEN


def _ids(tokenizer, text: str, special: bool = True) -> list[int]:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def candidate_ids(tokenizer, candidates: Sequence[str]) -> list[list[int]]:
    return [_ids(tokenizer, c + EOC_TOKEN, special=False) for c in candidates]


@torch.no_grad()
def score_candidates(model, tokenizer, text: str, vision_x: torch.Tensor | None, candidates: Sequence[str],
                     batch_size: int = 64, cand_ids: list[list[int]] | None = None) -> list[float]:
    """Summed log p(candidate + <EOC> | prompt) for each candidate; ``vision_x`` [T_img, F, C, H, W]."""
    device = next(model.parameters()).device
    prompt = torch.tensor([_ids(tokenizer, text)], device=device)
    t = prompt.shape[1]
    pos = torch.arange(t, device=device)[None]
    vx = vision_x[None].to(device) if vision_x is not None else None
    out = model(prompt, torch.ones_like(prompt), vx, use_cache=True, position_ids=pos, logits_to_keep=1)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)                 # [V]
    cands = cand_ids if cand_ids is not None else candidate_ids(tokenizer, candidates)
    pad = model.pad_token_id if model.pad_token_id is not None else 0
    scores: list[float] = []
    for s in range(0, len(cands), batch_size):
        chunk = cands[s:s + batch_size]
        n, longest = len(chunk), max(len(c) for c in chunk)
        ids = torch.full((n, longest), pad, dtype=torch.long, device=device)
        cmask = torch.zeros(n, longest, dtype=torch.long, device=device)
        for i, c in enumerate(chunk):
            ids[i, :len(c)] = torch.tensor(c, device=device)
            cmask[i, :len(c)] = 1
        logp = first[ids[:, 0]]                                                    # [n]
        if longest > 1:
            cache = copy.deepcopy(out.past_key_values)
            cache.repeat_interleave(n)
            mask = torch.cat([torch.ones(n, t, dtype=torch.long, device=device), cmask], dim=1)
            cpos = (t + torch.arange(longest - 1, device=device))[None].expand(n, -1)
            o = model(ids[:, :-1], mask[:, :-1], past_key_values=cache, use_cache=True, position_ids=cpos)
            lp = torch.log_softmax(o.logits.float(), dim=-1)                       # [n, L-1, V]
            tok = lp.gather(-1, ids[:, 1:, None])[..., 0] * cmask[:, 1:]
            logp = logp + tok.sum(1)
        scores += logp.tolist()
    return scores


@torch.no_grad()
def score_one(model, tokenizer, text: str, vision_x: torch.Tensor | None, candidate: str) -> float:
    """The same score from one forward over prompt + candidate, no cache (the reference)."""
    device = next(model.parameters()).device
    p = _ids(tokenizer, text)
    c = candidate_ids(tokenizer, [candidate])[0]
    ids = torch.tensor([p + c], device=device)
    vx = vision_x[None].to(device) if vision_x is not None else None
    logits = model(ids, torch.ones_like(ids), vx).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return float(sum(lp[len(p) - 1 + j, tok] for j, tok in enumerate(c)))


def clean_generation(kind: str, text: str) -> str:
    """The answer part of a generation: up to the next prompt marker or line break."""
    for stop in (EOC_TOKEN, IMAGE_TOKEN, "\n", "Output:", "Question:", "Short answer:", "Answer:"):
        text = text.split(stop)[0]
    return text.strip()


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: Sequence[tuple[str, torch.Tensor]], max_new_tokens: int,
                   num_beams: int) -> list[str]:
    """Continue a batch of (text, vision_x row) prompts; the raw decoded continuations."""
    from model.generation import collate_prompts
    device = next(model.parameters()).device
    ids, mask, vx = collate_prompts(tokenizer, list(prompts))
    vx = vx.to(device) if vx.shape[1] else None      # text-only prompts: no pictures
    out = model.generate(ids.to(device), mask.to(device), vx, max_new_tokens=max_new_tokens,
                         num_beams=num_beams)
    new = out[:, ids.shape[1]:].tolist()
    texts = []
    for row in new:
        if model.eoc_token_id in row:
            row = row[:row.index(model.eoc_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts
