"""Decoding from interleaved prompts: greedy and beam search, and few-shot prompts.

The prompt (its images and text) runs through the model once; its visual
tokens and the LM's KV cache are kept in a :class:`FlamingoCache`, and every
new token is one cached step. Prompts in a batch must be left-padded so that
all rows end at the same position; positions are taken from the attention
mask so padding does not shift them.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from shards.schema import IMAGE_TOKEN, serialize_pair


def _positions(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _eos_set(model, eos_token_id) -> list[int]:
    if eos_token_id is None:
        ids = [model.eoc_token_id] + ([model.eos_token_id] if model.eos_token_id is not None else [])
    elif isinstance(eos_token_id, int):
        ids = [eos_token_id]
    else:
        ids = list(eos_token_id)
    return sorted(set(ids))


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
             vision_x: torch.Tensor | None = None, *, max_new_tokens: int = 20, num_beams: int = 1,
             eos_token_id: int | Iterable[int] | None = None, length_penalty: float = 1.0,
             pad_token_id: int | None = None) -> torch.Tensor:
    """Continue each prompt; returns [B, T + L]: the prompt, then L <= max_new_tokens tokens.

    Stops a row at any of ``eos_token_id`` (default: ``<EOC>`` and the
    tokenizer's EOS), which is kept; finished rows are padded with
    ``pad_token_id``. ``<image>`` is never generated (there is no picture for
    it), nor an id past the tokenizer's vocabulary. ``num_beams > 1`` runs beam search with the score
    ``sum log p / generated_length ** length_penalty``.
    """
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    if not bool(attention_mask[:, -1].all()):
        raise ValueError("prompts must be left-padded (the last position of every row must be a real token)")
    eos = _eos_set(model, eos_token_id)
    pad = pad_token_id if pad_token_id is not None else model.pad_token_id
    if pad is None:
        pad = eos[0]
    was_training = model.training
    model.eval()
    try:
        if num_beams == 1:
            return _greedy(model, input_ids, attention_mask, vision_x, max_new_tokens, eos, pad)
        return _beam(model, input_ids, attention_mask, vision_x, max_new_tokens, eos, pad, num_beams,
                     length_penalty)
    finally:
        model.train(was_training)


def _next_logprobs(model, logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits.float(), dim=-1)
    logp[:, model.image_token_id] = float("-inf")
    if model.tokenizer_len is not None:
        logp[:, model.tokenizer_len:] = float("-inf")  # spare embedding rows no tokenizer can decode
    return logp


def _greedy(model, input_ids, attention_mask, vision_x, max_new_tokens, eos, pad):
    eos_t = torch.tensor(eos, device=input_ids.device)
    pos = _positions(attention_mask)
    out = model(input_ids, attention_mask, vision_x, use_cache=True, position_ids=pos, logits_to_keep=1)
    seqs, mask = input_ids, attention_mask
    done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    for step in range(max_new_tokens):
        nxt = _next_logprobs(model, out.logits[:, -1]).argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
        seqs = torch.cat([seqs, nxt[:, None]], dim=1)
        done = done | torch.isin(nxt, eos_t)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos[:, -1:] + 1
        out = model(nxt[:, None], mask, past_key_values=out.past_key_values, use_cache=True,
                    position_ids=pos)
    return seqs


def _beam(model, input_ids, attention_mask, vision_x, max_new_tokens, eos, pad, k, length_penalty):
    b, t = input_ids.shape
    device = input_ids.device
    pos = _positions(attention_mask)
    out = model(input_ids, attention_mask, vision_x, use_cache=True, position_ids=pos, logits_to_keep=1)
    cache = out.past_key_values
    cache.repeat_interleave(k)  # the prompt was encoded once; each beam gets a copy of its state
    logp = _next_logprobs(model, out.logits[:, -1]).repeat_interleave(k, dim=0)   # [B k, V]
    mask = attention_mask.repeat_interleave(k, dim=0)
    pos = pos.repeat_interleave(k, dim=0)[:, -1:]
    # Only beam 0 of each prompt is live at the start, or the k beams would be copies.
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    tokens = torch.empty(b * k, 0, dtype=torch.long, device=device)   # generated so far, per beam
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    closed = [False] * b
    vocab = logp.shape[-1]
    eos_set = set(eos)

    for step in range(max_new_tokens):
        cand = (scores.view(-1, 1) + logp).view(b, k * vocab)                  # [B, k V]
        top_s, top_i = cand.topk(2 * k, dim=1)
        next_beam = torch.zeros(b, k, dtype=torch.long, device=device)
        next_tok = torch.full((b, k), pad, dtype=torch.long, device=device)
        next_score = torch.full((b, k), float("-inf"), device=device)
        top_s_l, top_i_l = top_s.tolist(), top_i.tolist()
        gen_len = step + 1
        for i in range(b):
            if closed[i]:
                continue
            n = 0
            for rank, (s, flat) in enumerate(zip(top_s_l[i], top_i_l[i])):
                if s == float("-inf"):
                    break
                beam, tok = divmod(flat, vocab)
                if tok in eos_set:
                    if rank < k:
                        seq = tokens[i * k + beam].tolist() + [tok]
                        finished[i].append((s / gen_len ** length_penalty, seq))
                    continue
                next_beam[i, n], next_tok[i, n], next_score[i, n] = beam, tok, s
                n += 1
                if n == k:
                    break
            finished[i].sort(key=lambda h: -h[0])
            del finished[i][k:]
            # Done when k hypotheses are in and no live beam can beat the worst.
            best_live = next_score[i, 0].item() / gen_len ** length_penalty
            if n == 0 or (len(finished[i]) == k and best_live <= finished[i][-1][0]):
                closed[i] = True
        if all(closed):
            break
        rows = (torch.arange(b, device=device)[:, None] * k + next_beam).view(-1)   # [B k]
        tokens = torch.cat([tokens.index_select(0, rows), next_tok.view(-1, 1)], dim=1)
        scores = next_score
        if step == max_new_tokens - 1:
            break
        cache.reorder(rows)
        mask = torch.cat([mask.index_select(0, rows), torch.ones_like(mask[:, :1])], dim=1)
        pos = pos + 1
        out = model(next_tok.view(-1, 1), mask, past_key_values=cache, use_cache=True, position_ids=pos)
        cache = out.past_key_values
        logp = _next_logprobs(model, out.logits[:, -1])

    results = []
    for i in range(b):
        hyps = list(finished[i])
        if not closed[i] or not hyps:
            gen_len = tokens.shape[1]
            for j in range(k):
                s = scores[i, j].item()
                if s != float("-inf"):
                    hyps.append((s / max(gen_len, 1) ** length_penalty, tokens[i * k + j].tolist()))
        best = max(hyps, key=lambda h: h[0])[1] if hyps else []
        results.append(best)
    longest = max(len(r) for r in results)
    new = torch.full((b, longest), pad, dtype=torch.long, device=device)
    for i, r in enumerate(results):
        new[i, :len(r)] = torch.tensor(r, dtype=torch.long, device=device)
    return torch.cat([input_ids, new], dim=1)


# ---------------------------------------------------------------- prompts


def few_shot_prompt(support: Sequence[tuple[torch.Tensor, str]], query_image: torch.Tensor,
                    query_text: str = "") -> tuple[str, torch.Tensor]:
    """An in-context prompt: ``<image>text<EOC>`` per support example, then ``<image>query_text``.

    Images are preprocessed tensors, [C, H, W] for an image or [F, C, H, W]
    for a video (all the same shape). Returns the text and its
    ``vision_x`` row, [T_img, F, C, H, W], in the order of the ``<image>``
    tokens. The support serialisation is the pairs format from
    shards.schema, so prompts look like the training data.
    """
    images = [img for img, _ in support] + [query_image]
    frames = [img[None] if img.dim() == 3 else img for img in images]
    if len({tuple(f.shape) for f in frames}) != 1:
        raise ValueError(f"all prompt images must have one shape, got {sorted({tuple(f.shape) for f in frames})}")
    text = "".join(serialize_pair(caption) for _, caption in support) + IMAGE_TOKEN + query_text
    return text, torch.stack(frames)


def collate_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[tuple[str, torch.Tensor]]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pad a batch of (text, vision_x row) prompts for :func:`generate`.

    Returns input_ids [B, T], attention_mask [B, T] and vision_x
    [B, max T_img, F, C, H, W] (rows with fewer images padded with zeros).
    """
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer([text for text, _ in prompts], return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    most = max(v.shape[0] for _, v in prompts)
    first = prompts[0][1]
    vision_x = first.new_zeros(len(prompts), most, *first.shape[1:])
    for i, (_, v) in enumerate(prompts):
        vision_x[i, :v.shape[0]] = v
    return enc["input_ids"], enc["attention_mask"], vision_x
