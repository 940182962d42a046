"""One normalisation (EXIF orientation, alpha over white) for the eval index and
the image stage: a copy and its original hash from the same pixels on both sides."""
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
CFG = ImageConfig()


def png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def orientation6(upright: Image.Image) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees left; shown turned 90 degrees right
    return exif


def stored_for_orientation6(upright: Image.Image) -> Image.Image:
    return upright.transpose(Image.Transpose.ROTATE_90)


def index_of(img_bytes: bytes) -> EvalIndex:
    item = EvalItem("bench", "val", "x", media=None, texts=())
    return EvalIndex.from_items([item], image_hashes={"x": fp.eval_phashes(Image.open(io.BytesIO(img_bytes)))})


@pytest.fixture(scope="module")
def upright():
    return Image.open(IMAGES / "chelsea.png").convert("RGB")  # 451x300, not square


def test_orientation6_png_hashes_identically_on_both_sides(upright):
    rotated = png_bytes(stored_for_orientation6(upright), exif=orientation6(upright))
    plain = png_bytes(upright)
    assert Image.open(io.BytesIO(rotated)).size == (300, 451)
    assert fp.normalize_image(Image.open(io.BytesIO(rotated))).size == (451, 300)
    # eval side: every indexed view identical
    assert fp.eval_phashes(Image.open(io.BytesIO(rotated))) == fp.eval_phashes(Image.open(io.BytesIO(plain)))
    # image stage: same stored pixels, same phash
    a, b = process_image(rotated, CFG), process_image(plain, CFG)
    assert a.ok and b.ok and (a.width, a.height) == (451, 300)
    assert a.phash == b.phash and a.jpeg == b.jpeg
    # across: the stored upright copy finds the rotated eval original by its full view
    m = index_of(rotated).match_image(b.phash)
    assert [(x.item_id, x.detail) for x in m[:1]] == [("x", "full")]
    # without the orientation the two sides are far apart (what the eval side did before)
    raw_rotated = fp.phash64(stored_for_orientation6(upright))
    assert fp.hamming(fp.phash_int(raw_rotated), fp.phash_int(b.phash)) > 6


def test_orientation6_jpeg_matches_upright_copy(upright):
    rotated = jpeg_bytes(stored_for_orientation6(upright), exif=orientation6(upright))
    stored = process_image(jpeg_bytes(upright), CFG)
    m = index_of(rotated).match_image(stored.phash)
    assert m and m[0].item_id == "x" and m[0].detail == "full" and m[0].distance <= 2
    # and the image stage turns the rotated file upright too: same phash within JPEG noise
    a = process_image(rotated, CFG)
    assert (a.width, a.height) == (451, 300)
    assert fp.hamming(fp.phash_int(a.phash), fp.phash_int(stored.phash)) <= 2


def test_transparent_png_hashes_identically_on_both_sides(upright):
    alpha = np.zeros((300, 451), np.uint8)
    alpha[:, 226:] = 255            # left half transparent
    alpha[:, 100:126] = 128         # a half-transparent band
    rgba = upright.copy()
    rgba.putalpha(Image.fromarray(alpha, "L"))
    over_white = Image.new("RGB", rgba.size, fp.WHITE)
    over_white.paste(rgba, mask=rgba.getchannel("A"))
    transparent, flat = png_bytes(rgba), png_bytes(over_white)
    assert fp.eval_phashes(Image.open(io.BytesIO(transparent))) == fp.eval_phashes(Image.open(io.BytesIO(flat)))
    a, b = process_image(transparent, CFG), process_image(flat, CFG)
    assert a.ok and a.phash == b.phash
    m = index_of(transparent).match_image(b.phash)
    assert [(x.item_id, x.detail) for x in m[:1]] == [("x", "full")]
    # dropping alpha instead (the eval side's old convert("RGB")) is far from it
    dropped = fp.phash64(rgba.convert("RGB"))
    assert fp.hamming(fp.phash_int(dropped), fp.phash_int(b.phash)) > 6


def test_palette_transparency_and_16bit_grey_normalised():
    pal = Image.open(IMAGES / "coffee.png").convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    out = fp.normalize_image(Image.open(io.BytesIO(png_bytes(pal, transparency=0))))
    assert out.mode == "RGB"
    px = np.asarray(out)[np.asarray(pal) == 0]
    assert len(px) and (px == 255).all()          # palette entry 0 shown as white
    grey16 = Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    g = fp.normalize_image(grey16)
    assert g.mode == "L" and np.asarray(g).ravel().tolist() == list(range(256))


def test_bad_orientation_is_named(upright):
    im = Image.open(io.BytesIO(png_bytes(upright)))
    im.getexif = lambda: (_ for _ in ()).throw(SyntaxError("broken IFD"))  # type: ignore[method-assign]
    with pytest.raises(fp.BadOrientation, match="bad EXIF: broken IFD"):
        fp.normalize_image(im)
