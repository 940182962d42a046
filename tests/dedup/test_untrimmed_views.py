"""Eval photos with a near-uniform region at an edge (a flat sky, a dark sea)
are trimmed there when hashed; a web copy's trim often stops short of it (a
letterbox bar, JPEG q30 noise or a watermark breaks the region), so the index
also holds those photos' views hashed untrimmed (fingerprints.untrimmed_views)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import EvalIndex
from pipeline.images import ImageConfig, process_image

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "data" / "dedup_photos"
IMAGES = ROOT / "tests" / "data" / "images"
# a monument under a flat sky (the top 22% trimmed), a fish over a dark sea floor
NATURAL_BORDER = ["gcompris_categorization_monument1.jpg", "gcompris_categorization_fish28.jpg"]


def load(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def stored_phash(img: Image.Image, quality: int = 90) -> str:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return process_image(buf.getvalue(), ImageConfig(min_side=16)).phash


def letterbox(img):
    w, h = img.size
    out = Image.new("RGB", (w, h + 2 * (h // 10)), (0, 0, 0))
    out.paste(img, (0, h // 10))
    return out


def watermark(img):
    img = img.convert("RGBA")
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    size = max(8, img.height // 20)
    ImageDraw.Draw(layer).text((img.width // 30, img.height - 2 * size), "photos.example",
                               fill=(255, 255, 255, 128), font=fp_font(size))
    return Image.alpha_composite(img, layer).convert("RGB")


def fp_font(size):
    from PIL import ImageFont
    return ImageFont.load_default(size=size)


def test_photos_without_natural_borders_get_no_extra_views():
    for n in ["astronaut.png", "chelsea.png", "rocket.jpg"]:
        img = load(IMAGES / n)
        assert fp.untrimmed_views(img) == []
        assert len(fp.eval_phashes(img)) == len(fp.eval_image_views(img))


def test_untrimmed_views_put_each_trimmed_side_back():
    img = load(BENCH / "gcompris_categorization_monument1.jpg")      # 320x213, sky trimmed at the top
    assert fp.border_box(np.asarray(img.convert("L"))) == (0, 48, 320, 213)
    views = dict(fp.untrimmed_views(img))
    # only the top was cut: putting it back is the whole image, listed once
    assert sorted(views) == ["flip+untrimmed", "untrimmed"]
    assert np.array_equal(np.asarray(views["untrimmed"]), np.asarray(img))
    img = load(BENCH / "gcompris_categorization_plier1.jpg")          # pliers on a white table
    w, h = img.size
    assert fp.border_box(np.asarray(img.convert("L"))) == (8, 7, w, 120)
    views = dict(fp.untrimmed_views(img))
    assert sorted(views) == ["flip+untrimmed", "untrimmed", "untrimmed-bottom", "untrimmed-left",
                             "untrimmed-top"]
    assert {k: v.size for k, v in views.items() if k.startswith("untrimmed-")} == {
        "untrimmed-left": (w, 113), "untrimmed-top": (w - 8, 120), "untrimmed-bottom": (w - 8, h - 7)}


def test_copies_whose_trim_stops_short_match_through_an_untrimmed_view():
    items = [EvalItem("t", "val", n, media=None) for n in NATURAL_BORDER]
    hashes = {n: fp.eval_phashes(load(BENCH / n)) for n in NATURAL_BORDER}
    index = EvalIndex.from_items(items, image_hashes=hashes)
    trimmed_only = EvalIndex.from_items(items, image_hashes={
        n: [(v, h) for v, h in hs if "untrimmed" not in v] for n, hs in hashes.items()})
    copies = {"gcompris_categorization_monument1.jpg": {
                  "letterbox": stored_phash(letterbox(load(BENCH / NATURAL_BORDER[0]))),
                  "jpeg q30": stored_phash(load(BENCH / NATURAL_BORDER[0]), 30)},
              "gcompris_categorization_fish28.jpg": {
                  "letterbox": stored_phash(letterbox(load(BENCH / NATURAL_BORDER[1]))),
                  "watermark": stored_phash(watermark(load(BENCH / NATURAL_BORDER[1])))}}
    for n, qs in copies.items():
        for what, q in qs.items():
            assert trimmed_only.match_image(q) == [], (n, what)     # missed without them
            got = index.match_image(q)
            assert [m.item_id for m in got] == [n], (n, what)
            assert "untrimmed" in got[0].detail, (n, what, got[0].detail)
