"""The shard streams: M3W windows keep images with their tags, pairs/videos batches, corrupt samples, resume."""
from __future__ import annotations

import random

import pytest
import torch

from model.tokenizer import add_flamingo_tokens, tiny_tokenizer
from shards.schema import IMAGE_TOKEN, decode_members, serialize_pair
from shards.reader import read_shard
from tests.train.helpers import m3w_doc, write_m3w, write_pairs, write_videos
from train.data import (WINDOW_CHARS_PER_TOKEN, Processor, ShardStream, even_indices, load_image,
                        make_loader, snap_to_boundary)

SIZE, MEAN, STD = 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


@pytest.fixture(scope="module")
def tok():
    t = tiny_tokenizer()
    add_flamingo_tokens(t)
    return t


def proc(tok, kind, **kw):
    return Processor(kind, tok, SIZE, MEAN, STD, **kw)


def test_m3w_window_keeps_every_image_tag_with_its_own_image_over_many_seeds(tok):
    # Two long texts, then 8 short ones between 9 photos: 64-token windows see 0 to 7 tags.
    texts = ["a long opening text " * 5, "then some more words " * 5] + [f"x{j}." for j in range(8)]
    doc = decode_members(m3w_doc("doc1", texts, list(range(9))))
    members = [doc[f"{k}.jpg"] for k in range(9)]
    expected_pix = [load_image(m, SIZE, MEAN, STD) for m in members]
    p = proc(tok, "m3w", seq_len=64, max_images=5)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    full = p.tokens(doc["json"]["text"])
    seen_counts = set()
    for seed in range(300):
        ex = p(doc, random.Random(seed))
        n_tags = sum(1 for t in ex.input_ids if t == image_id)
        assert n_tags == ex.images.shape[0] <= 5
        assert len(ex.input_ids) <= 64
        seen_counts.add(n_tags)
        if n_tags == 0:
            continue
        # Locate the window in the document: the k-th tag in it is document image first + k.
        starts = [s for s in range(len(full)) if full[s:s + len(ex.input_ids)] == ex.input_ids]
        assert starts, "the window is not a contiguous subsequence of the document"
        first = sum(1 for t in full[:starts[0]] if t == image_id)
        for k in range(n_tags):
            assert torch.equal(ex.images[k, 0], expected_pix[first + k])
    assert {0, 1, 5} <= seen_counts  # the test exercised no-image, one-image and truncated windows


def test_long_documents_use_a_character_window_with_the_same_guarantees(tok):
    # ~2,400 characters (> 2 x 64 x WINDOW_CHARS_PER_TOKEN): the window is cut from
    # a random character instead of tokenising the whole document.
    texts = [f"paragraph {j} tells a long story about picture {j} in many plain words " * 4
             for j in range(9)]
    doc = decode_members(m3w_doc("doc3", texts, list(range(8))))
    assert len(doc["json"]["text"]) > 2 * 64 * WINDOW_CHARS_PER_TOKEN
    members = [doc[f"{k}.jpg"] for k in range(8)]
    expected_pix = [load_image(m, SIZE, MEAN, STD) for m in members]
    p = proc(tok, "m3w", seq_len=64, max_images=5)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    full = p.tokens(doc["json"]["text"])
    seen = set()
    for seed in range(300):
        ex = p(doc, random.Random(seed))
        n_tags = sum(1 for t in ex.input_ids if t == image_id)
        assert n_tags == ex.images.shape[0] and len(ex.input_ids) <= 64
        window = tok.decode(ex.input_ids)
        assert "<image" not in window.replace(IMAGE_TOKEN, "") and "EOC>" not in window.replace("<EOC>", "")
        seen.add(n_tags)
        starts = [s for s in range(len(full)) if full[s:s + len(ex.input_ids)] == ex.input_ids]
        assert starts
        first = sum(1 for t in full[:starts[0]] if t == image_id)
        for k in range(n_tags):
            assert torch.equal(ex.images[k, 0], expected_pix[first + k])
    assert {0, 1} <= seen


def test_snap_to_boundary_never_cuts_a_marker_or_word():
    text = "one two<EOC><image>three four"
    assert snap_to_boundary(text, 1) == 4                 # mid-word → next word
    assert snap_to_boundary(text, 9) == 7                 # inside <EOC> → its start
    assert snap_to_boundary(text, 14) == 12               # inside <image> → its start
    assert snap_to_boundary(text, 12) == 12 and snap_to_boundary(text, 0) == 0


def test_m3w_window_cut_before_the_sixth_image(tok):
    texts = ["a"] * 8
    doc = decode_members(m3w_doc("doc2", texts, list(range(7))))
    p = proc(tok, "m3w", seq_len=256, max_images=5)
    ex = p(doc, random.Random(0))
    text = tok.decode(ex.input_ids)
    assert text.count(IMAGE_TOKEN) == 5 == ex.images.shape[0]
    assert doc["json"]["text"].startswith(text)
    assert doc["json"]["text"][len(text):].startswith(IMAGE_TOKEN)  # cut right before image 6


def test_pairs_batches_and_labels(tmp_path, tok):
    samples = write_pairs(tmp_path, n=6)
    ds = ShardStream(str(tmp_path), proc(tok, "pairs", seq_len=32), 3, train=False)
    batches = list(ds)
    assert [b["input_ids"].shape for b in batches] == [(3, 32), (3, 32)]
    b = batches[0]
    assert b["vision_x"].shape == (3, 1, 1, 3, SIZE, SIZE)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert (b["input_ids"][:, 0] == image_id).all()
    assert ((b["labels"] == -100) == ((b["attention_mask"] == 0) | (b["input_ids"] == image_id))).all()
    # Rows are the shard's samples in order (sorted by key), serialised as <image>caption<EOC>.
    by_key = sorted(samples, key=lambda s: s["__key__"])
    for row in range(3):
        ids = b["input_ids"][row][b["attention_mask"][row] == 1].tolist()
        assert ids == tok(serialize_pair(by_key[row]["txt"]), add_special_tokens=False)["input_ids"][:32]
        assert torch.equal(b["vision_x"][row, 0, 0], load_image(by_key[row]["jpg"], SIZE, MEAN, STD))


@pytest.mark.parametrize("stored", [12, 5])
def test_videos_take_frames_evenly(tmp_path, tok, stored):
    write_videos(tmp_path, n=2, frames=stored)
    raw = [decode_members(s) for s in read_shard(str(tmp_path / "videos-000000.tar"))]
    ds = ShardStream(str(tmp_path), proc(tok, "videos", seq_len=32, frames=8), 2, train=False)
    (b,) = list(ds)
    assert b["vision_x"].shape == (2, 1, 8, 3, SIZE, SIZE)
    picks = even_indices(stored, 8)
    assert picks[0] == 0 and picks[-1] == stored - 1 and len(picks) == 8
    for row, s in enumerate(raw):
        for f, i in enumerate(picks):
            assert torch.equal(b["vision_x"][row, 0, f], load_image(s[f"{i}.jpg"], SIZE, MEAN, STD))


def test_corrupt_samples_are_skipped_and_counted(tmp_path, tok):
    write_pairs(tmp_path / "p", n=8, corrupt={3})
    ds = ShardStream(str(tmp_path / "p"), proc(tok, "pairs", seq_len=32), 8, train=False)
    (b,) = list(ds)
    assert b["input_ids"].shape[0] == 7 and b["skipped"] == 1
    # An M3W document whose only image is not a JPEG: its window always holds the tag.
    write_m3w(tmp_path / "m", n_docs=4, images_per_doc=1, sentences=1, corrupt_docs={2})
    ds = ShardStream(str(tmp_path / "m"), proc(tok, "m3w", seq_len=256), 4, train=False)
    (b,) = list(ds)
    assert b["input_ids"].shape[0] == 3 and b["skipped"] == 1


def test_train_stream_resumes_exactly_with_workers(tmp_path, tok):
    """Batches after a resume from (batches consumed, positions) equal the uninterrupted stream's."""
    write_pairs(tmp_path, n=10, corrupt={4})
    def stream():
        return ShardStream(str(tmp_path), proc(tok, "pairs", seq_len=32), 3, seed=5, shuffle_buffer=4)
    it = iter(make_loader(stream(), num_workers=2))
    ref = [next(it) for _ in range(9)]
    consumed = 5
    positions = {}
    for b in ref[:consumed]:
        positions[b["worker"]] = b["position"]
    ds = stream()
    ds.resume_from(consumed, positions)
    it = iter(make_loader(ds, num_workers=2))
    for want in ref[consumed:]:
        got = next(it)
        assert got["worker"] == want["worker"] and got["position"] == want["position"]
        assert torch.equal(got["input_ids"], want["input_ids"])
        assert torch.equal(got["vision_x"], want["vision_x"])
    assert sum(b["skipped"] for b in ref) >= 1  # the corrupt sample was met (and skipped) on the way

