"""Border trimming: letterboxed, padded and framed copies of real photos hash
like their originals on both sides, and trimming never costs identity matches."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import EvalIndex
from pipeline.images import ImageConfig, process_image

IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"
# moon and coins lie on black, the camera man under a flat sky: trimming must
# not cost them their identity matches
PHOTOS = ["astronaut.png", "chelsea.png", "rocket.jpg", "moon.png", "camera.png", "coins.png"]


def load(name: str) -> Image.Image:
    return Image.open(IMAGES / name).convert("RGB")


def pad(img, top, bottom, left, right, colour):
    w, h = img.size
    out = Image.new("RGB", (w + left + right, h + top + bottom), colour)
    out.paste(img, (left, top))
    return out


def stored_phash(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return process_image(buf.getvalue(), ImageConfig(min_side=16)).phash


def bits(a: str, b: str) -> int:
    return fp.hamming(fp.phash_int(a), fp.phash_int(b))


@pytest.mark.parametrize("name", ["astronaut.png", "chelsea.png", "rocket.jpg", "grace_hopper.jpg"])
def test_lossless_borders_hash_exactly_like_the_original(name):
    img = load(name)
    w, h = img.size
    assert fp.border_box(np.asarray(img.convert("L"))) == (0, 0, w, h)
    copies = {"letterbox": pad(img, h // 10, h // 10, 0, 0, (0, 0, 0)),
              "pillarbox": pad(img, 0, 0, w // 8, w // 8, (0, 0, 0)),
              "white padding": pad(img, h // 10, h // 10, w // 10, w // 10, (255, 255, 255)),
              "red frame": pad(img, h // 20, h // 20, w // 20, w // 20, (200, 30, 30)),
              "one side": pad(img, 0, h // 6, 0, 0, (128, 128, 128))}
    for what, c in copies.items():
        assert fp.phash64(c) == fp.phash64(img), what


@pytest.fixture(scope="module")
def index():
    items = [EvalItem("t", "val", n, media=None) for n in PHOTOS]
    return EvalIndex.from_items(items, image_hashes={n: fp.eval_phashes(load(n)) for n in PHOTOS})


def test_stored_copies_with_borders_match_their_eval_original(index):
    for n in PHOTOS:
        img = load(n)
        w, h = img.size
        for what, c in {"letterbox": pad(img, h // 10, h // 10, 0, 0, (0, 0, 0)),
                        "white padding": pad(img, h // 10, h // 10, w // 10, w // 10, (255,) * 3)}.items():
            got = [m.item_id for m in index.match_image(stored_phash(c))]
            assert got == [n], (n, what, got)


def test_trimming_keeps_identity_matches(index):
    """Photos with naturally uniform areas still match their re-encoded and
    resized copies."""
    for n in PHOTOS:
        img = load(n)
        for c in (img, img.resize((img.width // 2, img.height // 2), Image.Resampling.BICUBIC)):
            for q in (75, 30):
                buf = io.BytesIO()
                c.save(buf, "JPEG", quality=q)
                got = [m.item_id for m in index.match_image(
                    process_image(buf.getvalue(), ImageConfig(min_side=16)).phash)]
                assert got == [n], (n, c.size, q, got)


def test_thin_lines_and_blank_images_are_left_alone():
    img = load("chelsea.png")
    w, h = img.size
    framed = pad(img, 2, 2, 2, 2, (0, 0, 0))              # under 2% of each side: a drawn line
    assert fp.border_box(np.asarray(framed.convert("L"))) == (0, 0, w + 4, h + 4)
    blank = pad(img.resize((40, 30)), 200, 200, 200, 200, (255, 255, 255))   # mostly white
    box = fp.border_box(np.asarray(blank.convert("L")))
    assert box == (0, 0, 440, 430)   # trimming would leave under 10% of each side: kept whole
    # a border is trimmed on each side independently
    one = pad(img, 30, 0, 0, 0, (255, 255, 255))
    assert fp.border_box(np.asarray(one.convert("L"))) == (0, 30, w, h + 30)


def test_nested_borders_are_trimmed():
    """A cut-out photo on white, framed in black: both borders go."""
    img = load("chelsea.png")
    w, h = img.size
    on_white = pad(img, 40, 40, 60, 60, (255, 255, 255))
    framed = pad(on_white, 20, 20, 20, 20, (0, 0, 0))
    assert fp.border_box(np.asarray(framed.convert("L"))) == (80, 60, 80 + w, 60 + h)
    assert fp.phash64(framed) == fp.phash64(on_white) == fp.phash64(img)
