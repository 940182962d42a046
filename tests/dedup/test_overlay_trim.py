"""A watermark inside the plain ground around a photo (a site name in a
corner, as bench/bench_dedup.py's watermark transform draws it) must not stop
the border trim short of the photo (fingerprints.BORDER_GAP_FRAC): the copy is
then trimmed, and hashed, like its original.  Before, the trim stopped at the
text and the copy missed its source by 8-10 bits (bench seed 1: fish18 and
buffetset, watermark recall 0.983)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import EvalIndex
from pipeline.images import ImageConfig, process_image

PHOTOS = Path(__file__).resolve().parents[2] / "bench" / "data" / "dedup_photos"
FISH = "gcompris_categorization_fish18.jpg"          # a fish on black, 320x238
CUP = "gcompris_categorization_buffetset.jpg"        # a cup on grey, 320x247
OTHER_FISH = "gcompris_categorization_fish28.jpg"    # another fish on a dark ground, never indexed


def load(name: str) -> Image.Image:
    return fp.normalize_image(Image.open(PHOTOS / name)).convert("RGB")


def watermark(img: Image.Image, right: bool = True) -> Image.Image:
    """bench_dedup.watermark with its corner fixed."""
    img = img.convert("RGBA")
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    w, h = img.size
    size = max(8, h // 20)
    x = int(w * 0.62) if right else w // 30
    ImageDraw.Draw(layer).text((x, h - 2 * size), "photos.example", fill=(255, 255, 255, 128),
                               font=ImageFont.load_default(size=size))
    return Image.alpha_composite(img, layer).convert("RGB")


def stored(img: Image.Image) -> tuple[str, str]:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    r = process_image(buf.getvalue(), ImageConfig(min_side=16))
    assert r.ok
    return r.phash, fp.verify_hash(Image.open(io.BytesIO(r.jpeg)))


def box(img: Image.Image) -> tuple[int, int, int, int]:
    return fp.border_box(np.asarray(img.convert("L")))


def test_trim_goes_past_a_watermark_in_the_border():
    fish, cup = load(FISH), load(CUP)
    assert box(fish) == (17, 25, 302, 197)
    assert box(cup) == (54, 93, 304, 221)
    for right in (True, False):
        # the text sits 12-18 lines above the bottom edge, inside the 41 / 26 lines of ground
        assert box(watermark(fish, right)) == box(fish)
        assert box(watermark(cup, right)) == box(cup)


def test_trim_still_stops_at_the_photo():
    # the lines past the band must be border again: content reached from the
    # ground (the fish's fins, 0.75-0.98 ground pixels per line) is not a band
    fish = np.asarray(load(FISH).convert("L")).astype(np.int16)
    bottom_run, _ = fp._border_run(fish[::-1], None)
    assert bottom_run == 238 - 197
    # a band taller than BORDER_GAP_FRAC of the side, with ground beyond it, stays
    grey = np.full((200, 300), 250, np.uint8)
    grey[60:140, 40:260] = 30                      # the photo
    grey[170:190, 200:280:2] = 0                   # a 20-line band (10%) in one corner
    assert fp.border_box(grey)[3] == 190
    grey[178:190, 200:280:2] = 250                 # 8 lines (4%): bridged, trimmed to the photo
    assert fp.border_box(grey)[3] == 140
    # 8 lines of specks across the whole width (a textured ground, not one overlay) stay
    grey[170:178] = 250
    grey[170:178, ::8] = 0
    assert fp.border_box(grey)[3] == 178
    # 8 lines whose ground drifts just past the tolerance at one edge (a
    # vignette, a sky's gradient: off by 13-20 levels) are not a mark either
    grey[170:178] = 250
    grey[170:178, :60] = 235
    assert fp.border_box(grey)[3] == 178
    grey[170:178, :60] = 200                       # a mark: 50 levels off
    assert fp.border_box(grey)[3] == 140


def test_watermarked_copies_match_their_source_and_a_distinct_photo_does_not():
    items = [EvalItem("t", "val", n, media=None) for n in (FISH, CUP)]
    index = EvalIndex.from_items(items, image_hashes={n: fp.eval_hashes(load(n)) for n in (FISH, CUP)})
    for n in (FISH, CUP):
        got = index.match_image(*stored(watermark(load(n))))
        assert [(m.item_id, m.distance) for m in got] == [(n, 0.0)], n
    assert index.match_image(*stored(watermark(load(OTHER_FISH)))) == []
    assert index.match_image(*stored(load(OTHER_FISH))) == []
