"""Crowded hash space: discs on a plain ground hash alike (the phash is mostly
the silhouette), so an eval view's radius stops image_margin bits short of the
nearest view of another eval image (dedup.index.other_image_distance)."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import NN_NONE, EvalIndex, other_image_distance
from dedup.mih import brute_force_pairs
from pipeline.images import ImageConfig, process_image

CUTOUTS = Path(__file__).resolve().parents[2] / "bench" / "data" / "dedup_photos" / "cutouts"
EVAL = ["tuxpaint_4_mars.jpg", "tuxpaint_cymbal_crash.jpg"]     # a planet, a cymbal: two discs


def load(name: str) -> Image.Image:
    return Image.open(CUTOUTS / name).convert("RGB")


def stored_phash(img: Image.Image, quality: int = 90) -> str:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return process_image(buf.getvalue(), ImageConfig(min_side=16)).phash


@lru_cache(maxsize=None)
def eval_hashes(name: str) -> list:
    return fp.eval_phashes(load(name))


def build(thresholds=None, sets=("a",)):
    items = [EvalItem(s, "val", n, media=None) for s in sets for n in EVAL]
    hashes = {f"{s}/val/{n}": eval_hashes(n) for s in sets for n in EVAL}
    return EvalIndex.from_items(items, image_hashes=hashes, thresholds=thresholds)


def test_a_third_disc_between_two_eval_discs_matches_neither():
    neptune = stored_phash(load("gcompris_solar_system_neptune.jpg"))   # never indexed
    assert sorted(m.item_id for m in build({"image_margin": None}).match_image(neptune)) == EVAL
    assert build().match_image(neptune) == []


def test_the_eval_discs_own_copies_still_match():
    index = build()
    for n in EVAL:
        img = load(n)
        for copy in (img, img.resize((img.width // 2, img.height // 2), Image.Resampling.BICUBIC)):
            for q in (90, 50):
                assert [m.item_id for m in index.match_image(stored_phash(copy, q))] == [n], (n, q)


def test_one_photo_in_two_eval_sets_is_not_its_own_neighbour():
    """COCO val2014 images are in coco_captions, vqav2, okvqa...: the copies of
    one photo must not shrink each other's radius."""
    two = build(sets=("coco_captions", "vqav2"))
    one = build(sets=("coco_captions",))
    assert np.array_equal(two.arrays["image_nn"][: len(one.arrays["image_nn"])], one.arrays["image_nn"])
    q = stored_phash(load(EVAL[0]), 50)
    assert sorted((m.eval_set, m.item_id) for m in two.match_image(q)) == [
        ("coco_captions", EVAL[0]), ("vqav2", EVAL[0])]


def test_other_image_distance_is_the_exact_nearest_other_item():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    # 40 items x 5 views, views of an item a few bits apart, every fourth item near the one before it
    codes, items, full = [], [], []
    for i, b in enumerate(base):
        b = base[i - 1] ^ np.uint64(0b111 << (i % 50)) if i % 4 == 1 else b
        for v in range(5):
            codes.append(b ^ np.uint64(1 << int(rng.integers(0, 64))))
            items.append(i)
            full.append(v == 0)
    codes, items, full = np.array(codes, np.uint64), np.array(items, np.int32), np.array(full)
    got = other_image_distance(codes, items, full, radius=8, same_bits=0)
    qi, ci, d = brute_force_pairs(codes, codes, 8)
    want = np.full(len(codes), NN_NONE)
    for a, c, dist in zip(qi, ci, d):
        if items[a] != items[c]:
            want[a] = min(want[a], dist)
    assert np.array_equal(got, want)
    assert (got < NN_NONE).sum() > 0 and (got == NN_NONE).sum() > 0
