"""Tokenizer, vision encoder and resampler on their own."""
from __future__ import annotations

import torch

from model.resampler import PerceiverResampler
from model.tokenizer import add_flamingo_tokens, flamingo_token_ids, tiny_tokenizer
from model.vision import build_vision_encoder, encode_media
from shards.schema import EOC_TOKEN, IMAGE_TOKEN, serialize_interleaved


def test_tiny_tokenizer_is_byte_level_and_deterministic():
    a, b = tiny_tokenizer(), tiny_tokenizer()
    text = "Héllo, wörld! 🐈"
    ids = a(text)["input_ids"]
    assert ids == b(text)["input_ids"] == list(text.encode("utf-8"))
    assert a.decode(ids) == text
    assert a.pad_token_id is not None and a.eos_token_id is not None
    assert a.pad_token_id != a.eos_token_id


def test_flamingo_tokens_are_single_special_tokens():
    tok = tiny_tokenizer()
    n = len(tok)
    image_id, eoc_id = add_flamingo_tokens(tok)
    assert add_flamingo_tokens(tok) == (image_id, eoc_id) and len(tok) == n + 2
    assert flamingo_token_ids(tok) == (image_id, eoc_id)
    text = serialize_interleaved(["Pets!", None, "Puppy.", None, "Cat."])
    ids = tok(text)["input_ids"]
    assert ids.count(image_id) == 2 and ids.count(eoc_id) == 3
    assert tok.decode(ids) == text
    assert tok.convert_ids_to_tokens([image_id, eoc_id]) == [IMAGE_TOKEN, EOC_TOKEN]


def test_vision_encoder_returns_patch_features_per_frame():
    enc = build_vision_encoder("tiny").eval()
    x = torch.randn(2, 3, 4, 3, enc.image_size, enc.image_size)  # B=2, T_img=3, F=4
    feats = encode_media(enc, x)
    assert feats.shape == (2, 3, 4, enc.num_patches, enc.feature_dim)
    # Each frame is encoded on its own.
    torch.testing.assert_close(feats[1, 2, 3], enc(x[1, 2, 3:4])[0])


def test_resampler_outputs_num_latents_tokens_whatever_the_input_size():
    r = PerceiverResampler(32, depth=2, heads=2, dim_head=8, num_latents=5, max_frames=4)
    for f, p in ((1, 16), (4, 7)):
        out = r(torch.randn(2, 3, f, p, 32))
        assert out.shape == (2, 3, 5, 32)
    # Images in a batch are resampled independently.
    x = torch.randn(2, 3, 1, 16, 32)
    y = x.clone()
    y[0, 1] += 1
    a, b = r(x), r(y)
    changed = (a - b).abs().amax(dim=(-1, -2)) > 0
    assert changed.tolist() == [[False, True, False], [False, False, False]]
