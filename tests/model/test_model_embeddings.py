"""The new token rows (<image>, <EOC>) go through the LM's own embedding forward.

Gemma's embedding module multiplies its lookup by sqrt(hidden_size) inside its
forward; the new rows must come out scaled the same way, on every tiny
architecture the model tests cover (GPT-2, OPT, Llama: no transform; Gemma: x8
at hidden size 64).
"""
from __future__ import annotations

import math

import pytest
import torch

from model.tokenizer import flamingo_token_ids
from tests.model.model_helpers import TINY_LMS, make_model


def _embedding(model):
    return model.lm.get_input_embeddings()


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_new_rows_go_through_the_base_embedding_forward(lm_name):
    model, tok = make_model(lm_name)
    emb = _embedding(model)
    image_id, eoc_id = flamingo_token_ids(tok)
    old = tok("a")["input_ids"][-1]
    with torch.no_grad():
        # A new row equal to an old token's raw row must embed exactly like that token.
        emb.extra[0].copy_(emb.base.weight[old])
        emb.extra[1].copy_(emb.base.weight[old] * 2)
        ids = torch.tensor([[old, image_id, eoc_id]])
        out = emb(ids)
    torch.testing.assert_close(out[0, 1], out[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(out[0, 2], 2 * out[0, 0])


def test_gemma_new_rows_are_scaled_by_sqrt_hidden_size():
    model, tok = make_model("tiny-gemma")
    emb = _embedding(model)
    assert type(emb.base).__name__ == "GemmaTextScaledWordEmbedding"
    d = model.lm.config.hidden_size
    image_id, eoc_id = flamingo_token_ids(tok)
    with torch.no_grad():
        out = emb(torch.tensor([[image_id, eoc_id]]))
    torch.testing.assert_close(out[0], emb.extra * math.sqrt(d))
    assert math.sqrt(d) == 8.0


@pytest.mark.parametrize("lm_name", [n for n in TINY_LMS if n != "tiny-gemma"])
def test_untransformed_embeddings_return_the_new_rows_as_they_are(lm_name):
    model, tok = make_model(lm_name)
    emb = _embedding(model)
    with torch.no_grad():
        out = emb(torch.tensor([list(flamingo_token_ids(tok))]))
    torch.testing.assert_close(out[0], emb.extra, rtol=0, atol=0)


@pytest.mark.parametrize("lm_name", TINY_LMS)
def test_gradient_reaches_the_new_rows_through_the_transform(lm_name):
    model, tok = make_model(lm_name)
    emb = _embedding(model)
    image_id, eoc_id = flamingo_token_ids(tok)
    scale = math.sqrt(model.lm.config.hidden_size) if lm_name == "tiny-gemma" else 1.0
    emb(torch.tensor([[image_id, image_id, eoc_id]])).sum().backward()
    d = emb.extra.shape[1]
    torch.testing.assert_close(emb.extra.grad, torch.tensor([[2 * scale] * d, [scale] * d]))
    assert emb.base.weight.grad is None
