"""Which text tokens see which image: the mask alone, then through the whole model."""
from __future__ import annotations

import pytest
import torch

from model.masking import image_index, media_mask
from tests.model.model_helpers import capture_xattn, encode, images, make_model

IMG = 9


def test_image_index_counts_image_tokens_inclusively():
    ids = torch.tensor([[1, 2, IMG, 3, 4, IMG, 5], [IMG, 1, 1, 1, 1, 1, 1]])
    assert image_index(ids, IMG).tolist() == [[0, 0, 1, 1, 1, 2, 2], [1, 1, 1, 1, 1, 1, 1]]
    # With a cached prefix that already had images.
    assert image_index(ids[:, 3:], IMG, torch.tensor([1, 1])).tolist() == [[1, 1, 2, 2], [1, 1, 1, 1]]


def test_media_mask_latest_and_all_previous():
    idx = torch.tensor([[0, 1, 2]])
    latest = media_mask(idx, num_images=2, tokens_per_image=2, only_latest=True)
    assert latest.attn_mask.shape == (1, 1, 3, 4)
    # Token 0 has no image: left all-True (finite softmax) and zeroed by has_image.
    assert latest.attn_mask[0, 0].tolist() == [[True] * 4, [True, True, False, False],
                                              [False, False, True, True]]
    assert latest.has_image[0, :, 0].tolist() == [False, True, True]
    every = media_mask(idx, num_images=2, tokens_per_image=2, only_latest=False)
    assert every.attn_mask[0, 0, 2].tolist() == [True] * 4


TEXT = "before <image>first image text<EOC><image>second one<EOC> more"


def _segments(tok, ids):
    idx = image_index(ids, tok.convert_tokens_to_ids("<image>"))[0]
    return idx


def test_perturbing_image_k_changes_only_tokens_whose_latest_image_is_k():
    model, tok = make_model()
    ids, mask = encode(tok, [TEXT])
    vx = images(model, 1, 2)
    seen, handle = capture_xattn(model)
    with torch.no_grad():
        model(ids, mask, vx)
        for k in (0, 1):
            bumped = vx.clone()
            bumped[0, k] += 1.0
            model(ids, mask, bumped)
    handle.remove()
    base, outs = seen[0], seen[1:]
    idx = _segments(tok, ids)
    for k, out in enumerate(outs):
        changed = (out - base).abs().amax(-1)[0] > 0
        assert torch.equal(changed, idx == k + 1), f"image {k}: changed {changed.tolist()}, idx {idx.tolist()}"
    # Tokens before the first image get exactly zero cross-attention output.
    assert torch.count_nonzero(base[0, idx == 0]) == 0


def test_attend_all_previous_images_option():
    model, tok = make_model(only_attend_latest_image=False)
    ids, mask = encode(tok, [TEXT])
    vx = images(model, 1, 2)
    seen, handle = capture_xattn(model)
    with torch.no_grad():
        model(ids, mask, vx)
        bumped = vx.clone()
        bumped[0, 0] += 1.0
        model(ids, mask, bumped)
    handle.remove()
    idx = _segments(tok, ids)
    changed = (seen[1] - seen[0]).abs().amax(-1)[0] > 0
    assert torch.equal(changed, idx >= 1)  # image 1 now reaches the second segment too


def test_tokens_before_first_image_are_unaffected_by_any_image():
    model, tok = make_model(gates=0.7)
    ids, mask = encode(tok, [TEXT])
    idx = _segments(tok, ids)
    vx = images(model, 1, 2)
    with torch.no_grad():
        a = model(ids, mask, vx).logits
        b = model(ids, mask, images(model, 1, 2, seed=5)).logits
        none = model(ids, mask, None).logits
    before = idx == 0
    assert torch.equal(a[0, before], b[0, before])
    assert torch.equal(a[0, before], none[0, before])
    assert not torch.allclose(a[0, ~before], b[0, ~before])


def test_padding_images_are_never_attended():
    model, tok = make_model(gates=0.7)
    ids, mask = encode(tok, ["<image>one image<EOC>", "<image>a<EOC><image>b<EOC>"])
    vx = images(model, 2, 2)
    with torch.no_grad():
        a = model(ids, mask, vx).logits
        vx2 = vx.clone()
        vx2[0, 1] = 123.0  # row 0 has one <image>: its second image is padding
        b = model(ids, mask, vx2).logits
    assert torch.equal(a, b)


def test_more_image_tokens_than_images_is_an_error():
    model, tok = make_model()
    ids, mask = encode(tok, ["<image>a<EOC><image>b<EOC>"])
    with pytest.raises(ValueError, match="2 <image> tokens"):
        model(ids, mask, images(model, 1, 1))
