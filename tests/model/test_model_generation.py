"""Greedy and beam search with the KV cache, and few-shot prompts."""
from __future__ import annotations

import pytest
import torch

from model.generation import _beam, _eos_set, collate_prompts, few_shot_prompt
from shards.schema import EOC_TOKEN, IMAGE_TOKEN
from tests.model.model_helpers import TINY_LMS, encode, images, make_model


def _prompts(model, n_support=2):
    s = model.image_size
    g = torch.Generator().manual_seed(1)
    support = [(torch.randn(3, s, s, generator=g), f"caption number {i}") for i in range(n_support)]
    return few_shot_prompt(support, torch.randn(3, s, s, generator=g), "A photo of")


def test_few_shot_prompt_format():
    model, _ = make_model()
    text, vx = _prompts(model)
    assert text == (f"{IMAGE_TOKEN}caption number 0{EOC_TOKEN}{IMAGE_TOKEN}caption number 1{EOC_TOKEN}"
                    f"{IMAGE_TOKEN}A photo of")
    assert vx.shape == (3, 1, 3, model.image_size, model.image_size)
    video = torch.randn(4, 3, 8, 8)
    text, vx = few_shot_prompt([(video, "a clip")], video)
    assert vx.shape == (2, 4, 3, 8, 8)
    with pytest.raises(ValueError, match="one shape"):
        few_shot_prompt([(torch.randn(3, 8, 8), "x")], torch.randn(3, 9, 9))


def _greedy_without_cache(model, ids, mask, vx, steps):
    """The reference: re-run the whole sequence for every token, no cache."""
    eos = torch.tensor(_eos_set(model, None))
    for _ in range(steps):
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(ids, mask, vx, position_ids=pos).logits[:, -1].float()
        logits[:, model.image_token_id] = float("-inf")
        logits[:, model.tokenizer_len:] = float("-inf")
        nxt = logits.argmax(-1)
        ids = torch.cat([ids, nxt[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if torch.isin(nxt, eos).all():
            break
    return ids


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_greedy_with_cache_matches_recomputing_everything(lm_name):
    model, tok = make_model(lm_name, gates=1.0)
    text, vx = _prompts(model)
    ids, mask, vx = collate_prompts(tok, [(text, vx)])
    got = model.generate(ids, mask, vx, max_new_tokens=8)
    with torch.no_grad():
        want = _greedy_without_cache(model, ids, mask, vx, 8)
    assert torch.equal(got[:, :want.shape[1]], want)
    assert got.shape[1] <= ids.shape[1] + 8


def test_left_padded_batch_generates_what_each_prompt_does_alone():
    model, tok = make_model(gates=1.0)
    prompts = [_prompts(model, 2), _prompts(model, 0)]
    ids, mask, vx = collate_prompts(tok, prompts)
    assert mask[1, 0] == 0 and vx.shape[1] == 3  # row 1 is left-padded, its images too
    batched = model.generate(ids, mask, vx, max_new_tokens=6)
    for i, p in enumerate(prompts):
        ids1, mask1, vx1 = collate_prompts(tok, [p])
        alone = model.generate(ids1, mask1, vx1, max_new_tokens=6)[0, ids1.shape[1]:]
        row = batched[i, ids.shape[1]:][:len(alone)]
        assert torch.equal(row, alone)


def test_right_padded_prompts_are_refused():
    model, tok = make_model()
    ids, mask = encode(tok, ["<image>long prompt here", "<image>x"], side="right")
    with pytest.raises(ValueError, match="left-padded"):
        model.generate(ids, mask, images(model, 2, 1))


def test_beam_search_runs_and_one_beam_is_greedy():
    model, tok = make_model(gates=1.0)
    ids, mask, vx = collate_prompts(tok, [_prompts(model, 2), _prompts(model, 1)])
    greedy = model.generate(ids, mask, vx, max_new_tokens=7)
    eos = _eos_set(model, None)
    with torch.no_grad():
        one_beam = _beam(model.eval(), ids, mask, vx, 7, eos, model.pad_token_id, 1, 1.0)
    assert torch.equal(one_beam, greedy)
    beams = model.generate(ids, mask, vx, max_new_tokens=7, num_beams=3)
    assert beams.shape[0] == 2 and torch.equal(beams[:, :ids.shape[1]], ids)
    new = beams[:, ids.shape[1]:]
    assert 1 <= new.shape[1] <= 7
    assert not (new == model.image_token_id).any()
    assert model.training is False


def test_beam_search_finds_the_best_two_token_continuation():
    """With as many beams as the vocabulary, two steps of beam search are exhaustive."""
    model, tok = make_model(gates=1.0)
    text, vx = _prompts(model, 1)
    ids, mask, vx = collate_prompts(tok, [(text, vx)])
    v = model.tokenizer_len
    # Forbid stopping so every hypothesis has exactly two new tokens.
    got = model.generate(ids, mask, vx, max_new_tokens=2, num_beams=v, eos_token_id=[-1],
                         length_penalty=0.0)[0, ids.shape[1]:]
    with torch.no_grad():
        first = torch.log_softmax(model(ids, mask, vx).logits[0, -1], -1)
        cand = torch.arange(v)
        cand[model.image_token_id] = 0  # never generated (masked below); keeps the image count valid
        seqs = torch.cat([ids.repeat(v, 1), cand[:, None]], 1)
        second = torch.log_softmax(model(seqs, torch.ones_like(seqs), vx.repeat(v, 1, 1, 1, 1, 1))
                                   .logits[:, -1], -1)
    total = first[:v, None] + second[:, :v]
    total[model.image_token_id] = float("-inf")
    total[:, model.image_token_id] = float("-inf")
    best = divmod(int(total.argmax()), v)
    assert got.tolist() == list(best)
