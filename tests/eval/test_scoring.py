"""Ranking: batched KV-cache scoring equals one-at-a-time scoring; the most likely candidate wins."""
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from eval import metrics
from eval.scoring import candidate_ids, clean_generation, score_candidates, score_one
from model.build import build_flamingo
from model.config import FlamingoConfig
from model.flamingo import FlamingoOutput


@pytest.fixture(scope="module")
def model_tok():
    model, tok = build_flamingo(FlamingoConfig.tiny())
    torch.manual_seed(0)
    with torch.no_grad():   # open the gates (0 at init) so the images change the scores
        for layer in model.xattn_layers.values():
            layer.gated.attn_gate.fill_(1.0)
            layer.gated.ff_gate.fill_(1.0)
    return model.eval(), tok


def test_batched_scoring_equals_one_at_a_time(model_tok):
    model, tok = model_tok
    g = torch.Generator().manual_seed(1)
    vision = torch.randn(3, 1, 3, 32, 32, generator=g)
    text = "<image>Output:a tench<EOC><image>Output:a goldfish<EOC><image>Output:"
    cands = ["tench", "goldfish", "great white shark", "x", "English springer spaniel", "tree frog"]
    batched = score_candidates(model, tok, text, vision, cands, batch_size=4)   # two chunks, ragged lengths
    single = [score_one(model, tok, text, vision, c) for c in cands]
    assert batched == pytest.approx(single, abs=1e-4)
    # the images matter: other pictures, other scores
    other = score_candidates(model, tok, text, torch.randn(3, 1, 3, 32, 32, generator=g), cands)
    assert max(abs(a - b) for a, b in zip(other, batched)) > 1e-3


def test_video_prompt_scoring_equals_one_at_a_time(model_tok):
    model, tok = model_tok
    vision = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(2))   # 2 clips of 4 frames
    text = "<image>Question:what is he doing? Answer:cooking<EOC><image>Question:what is she doing? Answer:"
    cands = ["dancing", "cutting an onion", "no"]
    assert score_candidates(model, tok, text, vision, cands, batch_size=2) == pytest.approx(
        [score_one(model, tok, text, vision, c) for c in cands], abs=1e-4)


@dataclass
class _Cache:
    rows: int

    def repeat_interleave(self, n):
        self.rows *= n


class FixedModel(nn.Module):
    """Whatever the input, next-token log-probs are the fixed vector ``logp``."""

    def __init__(self, logp, eoc_id):
        super().__init__()
        self.logp = nn.Parameter(logp, requires_grad=False)
        self.pad_token_id, self.eoc_token_id = 0, eoc_id

    def forward(self, input_ids, attention_mask=None, vision_x=None, past_key_values=None, use_cache=False,
                position_ids=None, logits_to_keep=0):
        b, t = input_ids.shape
        logits = self.logp.expand(b, t, -1).clone()
        return FlamingoOutput(None, logits, _Cache(b) if use_cache else None)


def test_the_most_likely_candidate_wins_under_a_fixed_model(model_tok):
    _, tok = model_tok
    vocab = len(tok)
    logp = torch.full((vocab,), -20.0)
    eoc = tok.convert_tokens_to_ids("<EOC>")
    for ch, lp in {"a": -0.5, "b": -1.0, "c": -3.0}.items():
        logp[tok.convert_tokens_to_ids(ch)] = lp
    logp[eoc] = -0.1
    logp = torch.log_softmax(logp, dim=0)       # a distribution: the scorer normalises logits
    shift = float(logp[eoc]) + 0.1               # log of the normaliser (the same for every token)
    model = FixedModel(logp, eoc)
    cands = ["cc", "ab", "a", "bbb", "zebra"]
    scores = score_candidates(model, tok, "<image>Output:", None, cands, batch_size=2)
    # per token: its fixed log-prob; then <EOC>; each shifted by the normaliser
    expect = [-6.1 + 3 * shift, -1.6 + 3 * shift, -0.6 + 2 * shift, -3.1 + 4 * shift, -61.6 + 6 * shift]   # z e b r a: 3 x -20, b, a
    assert scores == pytest.approx(expect, abs=1e-5)
    assert cands[max(range(len(cands)), key=scores.__getitem__)] == "a"
    assert metrics.topk_correct(scores, cands.index("a"), 1)
    assert candidate_ids(tok, ["ab"]) == [[ord("a"), ord("b"), eoc]]


def test_clean_generation():
    assert clean_generation("vqa", " yes<EOC>Question:") == "yes"
    assert clean_generation("caption", "a dog on a bed\nOutput:a cat") == "a dog on a bed"
    assert clean_generation("vqa", "two Question: how many") == "two"
