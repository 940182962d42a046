"""The whole-image views (full, flip) match at the wider ``image_whole``
radius, in an index of their own: a text overlay moves a photo's hash 8 bits,
beyond the radius of the other views."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import EvalIndex
from dedup.mih import brute_force_pairs
from pipeline.images import ImageConfig, process_image

IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"
PHOTOS = ["retina.jpg", "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "china.jpg"]


def load(name: str) -> Image.Image:
    return Image.open(IMAGES / name).convert("RGB")


def stored_phash(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return process_image(buf.getvalue(), ImageConfig(min_side=16)).phash


def overlay(img: Image.Image, y_frac: float) -> Image.Image:
    """The benchmark's text overlay: a white caption with a black outline."""
    img = img.copy()
    w, h = img.size
    size = max(10, h // 12)
    ImageDraw.Draw(img).text((w // 20, int(h * y_frac)), "\u00a9 example.com  SALE 50%", fill=(255, 255, 255),
                             font=ImageFont.load_default(size=size), stroke_width=max(1, size // 10),
                             stroke_fill=(0, 0, 0))
    return img


@lru_cache(maxsize=None)
def hashes() -> dict:
    return {n: fp.eval_phashes(load(n)) for n in PHOTOS}


def build(**thresholds) -> EvalIndex:
    items = [EvalItem("t", "val", n, media=None) for n in PHOTOS]
    return EvalIndex.from_items(items, image_hashes=hashes(), thresholds=thresholds)


def test_a_text_overlay_copy_matches_through_the_whole_view_at_8_bits():
    q = stored_phash(overlay(load("retina.jpg"), 0.1))
    assert build(image_whole=None).match_image(q) == []
    got = build().match_image(q)
    assert [(m.item_id, m.distance, m.detail) for m in got] == [("retina.jpg", 8.0, "full")]


def test_two_searches_return_exactly_what_a_scan_with_per_view_radii_returns():
    index = build()
    codes = index.arrays["image_codes"]
    rng = np.random.default_rng(0)
    # queries near indexed codes (0-10 bits flipped) and random ones
    base = codes[rng.integers(0, len(codes), 300)]
    flips = np.zeros(300, np.uint64)
    for k in range(10):
        bit = rng.integers(0, 64, 300).astype(np.uint64)
        flips ^= np.where(rng.random(300) < 0.5, np.uint64(1) << bit, np.uint64(0))
    queries = np.concatenate([base ^ flips, rng.integers(0, 2**64, 100, dtype=np.uint64)])
    got = index.match_images(["%016x" % int(q) for q in queries])
    qi, ci, d = brute_force_pairs(codes, queries, 8)
    want = [set() for _ in queries]
    for a, c, dist in zip(qi.tolist(), ci.tolist(), d.tolist()):
        if dist <= index._code_radius[c]:
            want[a].add(index.items[int(index.arrays["image_item"][c])]["item_id"])
    assert [{m.item_id for m in ms} for ms in got] == want
    assert sum(map(len, want)) > 50
    views = np.array(index.views)[index.arrays["image_view"]]
    assert set(index._code_radius[np.isin(views, ["full", "flip"])].tolist()) <= {8, 6, 5, 4, 3, 2}
    assert set(index._code_radius[~np.isin(views, ["full", "flip"])].tolist()) <= {6, 5, 4, 3, 2}
