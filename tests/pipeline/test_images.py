"""pipeline/images.py on the real photos in tests/data/images and broken variants of them."""
from __future__ import annotations

import gzip
import io
import itertools
import os
import struct
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dedup.fingerprints import hamming, phash64, phash_int, sha256_hex
from pipeline.images import ImageConfig, process_image
from tests.helpers.threads import race_first_call

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGES = DATA / "images"
CFG = ImageConfig()


def raw(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def decoded(jpeg: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(jpeg))
    assert im.format == "JPEG"
    im.load()
    return im


# Source size -> stored size with the defaults (keep_ratio_largest, 512, only if
# bigger): the longest side becomes 512, the other round(side * 512 / longest).
EXPECTED = {
    "astronaut.png": ((512, 512), (512, 512), "RGB"),  # exactly 512: untouched
    "brick.png": ((512, 512), (512, 512), "L"),  # greyscale stays single-channel
    "camera.png": ((512, 512), (512, 512), "L"),
    "chelsea.png": ((451, 300), (451, 300), "RGB"),  # smaller: never upscaled
    "china.jpg": ((640, 427), (512, 342), "RGB"),  # 427 * 0.8 = 341.6
    "clock_motion.png": ((400, 300), (400, 300), "L"),
    "coffee.png": ((600, 400), (512, 341), "RGB"),  # 400 * 512/600 = 341.33
    "coins.png": ((384, 303), (384, 303), "L"),
    "flower.jpg": ((640, 427), (512, 342), "RGB"),
    "grace_hopper.jpg": ((512, 600), (437, 512), "RGB"),  # 512 * 512/600 = 436.9
    "grass.png": ((512, 512), (512, 512), "L"),
    "horse.png": ((400, 328), (400, 328), "RGB"),  # RGBA over white
    "hubble_deep_field.jpg": ((1000, 872), (512, 446), "RGB"),  # 872 * 0.512 = 446.46
    "logo.png": ((500, 500), (500, 500), "RGB"),  # RGBA over white
    "moon.png": ((512, 512), (512, 512), "L"),
    "motorcycle_left.png": ((741, 500), (512, 345), "RGB"),  # 500 * 512/741 = 345.48
    "motorcycle_right.png": ((741, 500), (512, 345), "RGB"),
    "retina.jpg": ((1411, 1411), (512, 512), "RGB"),  # drafted to 706, then 512
    "rocket.jpg": ((640, 427), (512, 342), "RGB"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_photos(name):
    (ow, oh), (w, h), mode = EXPECTED[name]
    r = process_image(raw(name), CFG, source=name)
    assert (r.ok, r.reason, r.animated) == (True, None, False)
    assert (r.original_width, r.original_height, r.width, r.height) == (ow, oh, w, h)
    im = decoded(r.jpeg)
    assert (im.size, im.mode) == ((w, h), mode)
    assert r.sha256 == sha256_hex(r.jpeg)
    assert r.phash == phash64(im) and len(r.phash) == 16


def test_every_test_photo_is_covered():
    names = {p.name for p in IMAGES.iterdir()}
    dropped = {"page.png", "text.png", "no_time_for_that_tiny.gif"}  # tested below
    assert names == set(EXPECTED) | dropped


@pytest.mark.parametrize("name,size", [("page.png", (384, 191)), ("text.png", (448, 172))])
def test_bad_aspect_ratio_real_images(name, size):
    assert max(size) / min(size) > 2.0
    assert process_image(raw(name), CFG).reason == "bad_aspect_ratio"
    loose = process_image(raw(name), ImageConfig(max_aspect_ratio=3.0))
    assert loose.ok and (loose.width, loose.height) == size


def test_too_small():
    assert process_image(raw("chelsea.png"), ImageConfig(min_side=301)).reason == "too_small"
    assert process_image(raw("chelsea.png"), ImageConfig(min_side=300)).ok


def test_animated_gif_keeps_first_frame():
    data = raw("no_time_for_that_tiny.gif")
    src = Image.open(io.BytesIO(data))
    assert src.n_frames == 24 and src.size == (14, 25)
    small = process_image(data, CFG)  # 14 px: too small by default, still flagged as animated
    assert (small.ok, small.reason, small.animated) == (False, "too_small", True)

    r = process_image(data, ImageConfig(min_side=10))
    assert r.ok and r.animated and (r.width, r.height) == (14, 25)
    first = src.convert("RGBA")  # frame 0, composited over white as the stage does
    white = Image.new("RGBA", first.size, (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, first).convert("RGB"), dtype=np.int16)
    got = np.asarray(decoded(r.jpeg), dtype=np.int16)
    src.seek(12)
    later = np.asarray(src.convert("RGB"), dtype=np.int16)
    err_first = np.abs(got - expected).mean()
    assert err_first < 12  # JPEG q95 on a 14x25 graphic
    assert err_first < np.abs(got - later).mean()


def test_alpha_is_composited_over_white():
    cat = Image.open(IMAGES / "chelsea.png")  # 451x300 RGB
    alpha = np.zeros((300, 451), np.uint8)
    alpha[:, 226:] = 255  # left half fully transparent, right half opaque
    alpha[:, 100:126] = 128  # a half-transparent band
    rgba = cat.copy()
    rgba.putalpha(Image.fromarray(alpha, "L"))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    got = np.asarray(decoded(process_image(buf.getvalue(), CFG).jpeg), np.float64)
    src = np.asarray(cat, np.float64)
    assert got.shape == (300, 451, 3)
    assert got[:, :90].mean() > 252  # white (black would be ~0), up to JPEG noise
    assert np.abs(got[:, 240:] - src[:, 240:]).mean() < 3
    band = src[:, 105:121] * (128 / 255) + 255 * (1 - 128 / 255)
    assert np.abs(got[:, 105:121] - band).mean() < 3


def test_cmyk_becomes_rgb():
    rgb = Image.open(IMAGES / "china.jpg")
    buf = io.BytesIO()
    rgb.convert("CMYK").save(buf, "JPEG", quality=95)
    r = process_image(buf.getvalue(), CFG)
    ref = process_image(raw("china.jpg"), CFG)
    im = decoded(r.jpeg)
    assert (im.mode, im.size) == ("RGB", (512, 342))
    diff = np.abs(np.asarray(im, np.int16) - np.asarray(decoded(ref.jpeg), np.int16)).mean()
    assert diff < 6


def test_exif_orientation_is_applied():
    im = Image.open(IMAGES / "chelsea.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif)
    r = process_image(buf.getvalue(), CFG)
    assert (r.original_width, r.original_height, r.width, r.height) == (300, 451, 300, 451)
    expected = np.asarray(im.transpose(Image.Transpose.ROTATE_270), np.int16)
    assert np.abs(np.asarray(decoded(r.jpeg), np.int16) - expected).mean() < 4


def test_quality_flag():
    q95 = process_image(raw("hubble_deep_field.jpg"), CFG)
    q50 = process_image(raw("hubble_deep_field.jpg"), ImageConfig(encode_quality=50))
    assert len(q50.jpeg) < 0.7 * len(q95.jpeg)
    assert (q50.width, q50.height) == (q95.width, q95.height)


def test_other_resize_modes():
    keep_ratio = process_image(raw("hubble_deep_field.jpg"), ImageConfig(resize_mode="keep_ratio", image_size=256))
    assert (keep_ratio.width, keep_ratio.height) == (294, 256)  # shortest side 256: 1000 * 256/872 = 293.6
    crop = process_image(raw("hubble_deep_field.jpg"), ImageConfig(resize_mode="center_crop", image_size=256))
    assert (crop.width, crop.height) == (256, 256)
    border = process_image(raw("chelsea.png"), ImageConfig(resize_mode="border", resize_only_if_bigger=False))
    assert (border.width, border.height) == (512, 512)


def test_empty():
    assert process_image(b"", CFG).reason == "empty"


def test_truncated_jpeg_and_png():
    china, astro = raw("china.jpg"), raw("astronaut.png")
    assert process_image(china[: len(china) // 2], CFG).reason == "truncated"
    assert process_image(china[:1000], CFG).reason == "truncated"
    assert process_image(astro[: len(astro) // 2], CFG).reason == "truncated"


def test_corrupt():
    gz_html = (DATA / "html" / "readability" / "aclu" / "source.html.gz").read_bytes()
    assert process_image(gz_html, CFG).reason == "corrupt"  # binary, but no image
    png = bytearray(raw("astronaut.png"))
    png[29] ^= 0xFF  # inside the IHDR CRC
    assert process_image(bytes(png), CFG).reason == "corrupt"
    jpeg = bytearray(raw("china.jpg"))
    jpeg[2:400] = b"\x00" * 398  # markers after SOI wiped
    assert process_image(bytes(jpeg), CFG).reason == "corrupt"


def test_markup_is_unsupported_format():
    html = gzip.decompress((DATA / "html" / "readability" / "aclu" / "source.html.gz").read_bytes())
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"></svg>'
    assert process_image(html, CFG).reason == "unsupported_format"
    assert process_image(svg, CFG).reason == "unsupported_format"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB and has no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_rejected_before_decoding():
    limit_before = Image.MAX_IMAGE_PIXELS
    bomb = png_header_only(100_000, 100_000)  # 30 GB of RGB if decoded
    tracemalloc.start()
    t0 = time.perf_counter()
    r = process_image(bomb, CFG)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (r.ok, r.reason) == (False, "decompression_bomb")
    assert elapsed < 0.5 and peak < 1_000_000  # decoding would take minutes and 30 GB
    # Between Pillow's warning (1x) and error (2x) thresholds: only our check stops it.
    assert process_image(png_header_only(10_000, 10_000), CFG).reason == "decompression_bomb"
    assert Image.MAX_IMAGE_PIXELS == limit_before  # never changed globally


def test_max_pixels_comes_from_the_config():
    astro = raw("astronaut.png")  # 512 x 512 = 262,144 pixels
    assert process_image(astro, ImageConfig(max_pixels=262_143)).reason == "decompression_bomb"
    assert process_image(astro, ImageConfig(max_pixels=262_144)).ok


def test_phash_stable_and_discriminative():
    loose = ImageConfig(min_side=1, max_aspect_ratio=10)
    hashes = {name: process_image(raw(name), loose).phash for name in sorted(EXPECTED)}
    again = {name: process_image(raw(name), loose).phash for name in sorted(EXPECTED)}
    assert hashes == again
    # the same photo stored as PNG instead of JPEG: same picture, near-identical hash
    buf = io.BytesIO()
    Image.open(IMAGES / "china.jpg").save(buf, "PNG")
    assert hamming(phash_int(process_image(buf.getvalue(), loose).phash), phash_int(hashes["china.jpg"])) <= 2
    # the stereo pair is a real near-duplicate; all other pairs are different photos
    for a, b in itertools.combinations(hashes, 2):
        d = hamming(phash_int(hashes[a]), phash_int(hashes[b]))
        if {a, b} == {"motorcycle_left.png", "motorcycle_right.png"}:
            assert d <= 8
        else:
            assert d >= 16, (a, b, d)


def test_never_raises_on_garbage():
    samples = [b"\x00", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x00\x00\x00\x00WEBP", b"BM"]
    for data in samples:
        r = process_image(data, CFG)
        assert not r.ok and r.reason in {"corrupt", "truncated"}, (data, r.reason)


def test_threads_give_the_same_results_and_leave_stdout_alone(monkeypatch):
    """img2dataset's Resizer dup2()s /dev/null over fds 1 and 2 around every call,
    process-wide; under threads that races. Our calls must not touch the fds."""
    swaps = []
    real_dup2 = os.dup2
    monkeypatch.setattr(os, "dup2", lambda *a, **k: (swaps.append(a), real_dup2(*a, **k))[1])
    names = sorted(EXPECTED)
    sequential = [process_image(raw(n), CFG).sha256 for n in names]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda n: process_image(raw(n), CFG).sha256, names * 3))
    assert threaded == sequential * 3
    assert swaps == []
    # img2dataset's own callers keep its behaviour
    from img2dataset.resizer import Resizer
    Resizer(512, "keep_ratio_largest", True)(io.BytesIO(raw("china.jpg")))
    assert len(swaps) == 4


def test_resize_failed_when_the_encoder_refuses():
    # 70000 px wide: Pillow decodes it, but JPEG (and so the Resizer's cv2 encoder) stops at 65500.
    row = np.asarray(Image.open(IMAGES / "camera.png"))[256]
    strip = np.tile(row, (2, 140))[:, :70_000]
    buf = io.BytesIO()
    Image.fromarray(strip, "L").save(buf, "PNG")
    loose = ImageConfig(min_side=1, max_aspect_ratio=1e6, image_size=100_000)
    assert process_image(buf.getvalue(), loose).reason == "resize_failed"
    ok = process_image(buf.getvalue(), ImageConfig(min_side=1, max_aspect_ratio=1e6, image_size=60_000))
    assert ok.ok and (ok.width, ok.height) == (60_000, 2)


def test_unknown_resize_mode_is_a_config_error():
    with pytest.raises(ValueError, match="resize_mode"):
        ImageConfig(resize_mode="keep_ratio_smallest")


def test_jpeg_draft_decodes_big_photos_smaller_with_the_same_result():
    big = Image.open(IMAGES / "hubble_deep_field.jpg").resize((3000, 2616), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=95)
    drafted = process_image(buf.getvalue(), CFG)  # libjpeg decodes at 1/4: 750x654, then area to 512
    full = process_image(buf.getvalue(), ImageConfig(jpeg_draft=False))
    assert (drafted.width, drafted.height) == (full.width, full.height) == (512, 446)
    assert (drafted.original_width, drafted.original_height) == (3000, 2616)
    diff = np.abs(np.asarray(decoded(drafted.jpeg), np.int16) - np.asarray(decoded(full.jpeg), np.int16))
    assert diff.mean() < 3
    assert hamming(phash_int(drafted.phash), phash_int(full.phash)) <= 4


# --- the cv2 fast path: same pixels, same sizes, same hashes as the Pillow path ------

import cv2  # noqa: E402
from img2dataset.resizer import Resizer  # noqa: E402

import pipeline.images as images_mod  # noqa: E402

LOOSE = ImageConfig(min_side=1, max_aspect_ratio=10)
PHOTOS = sorted(EXPECTED) + ["page.png", "text.png"]


def pillow_path(monkeypatch):
    """Force every image through Pillow's decode (the reference path)."""
    monkeypatch.setattr(images_mod, "_fast_decode", lambda *a, **k: None)


@pytest.mark.parametrize("name", PHOTOS)
def test_fast_decode_gives_pillows_pixels(name):
    data = raw(name)
    im = images_mod._open(data, LOOSE)
    fast = images_mod._fast_decode(data, im, LOOSE)
    assert fast is not None, "plain JPEG/PNG photos take the cv2 path"
    arr, orientation = fast
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = images_mod._over_white(arr)
    ref, swapped = images_mod._pillow_decode(images_mod._open(data, LOOSE), LOOSE)
    assert (orientation, swapped) == (1, False)
    assert arr.dtype == ref.dtype and arr.shape == ref.shape
    assert np.array_equal(arr, ref)  # retina.jpg: both drafted to 1/2 by libjpeg


@pytest.mark.parametrize("name", PHOTOS)
def test_fast_path_output_equals_pillow_path(name, monkeypatch):
    fast = process_image(raw(name), LOOSE)
    pillow_path(monkeypatch)
    ref = process_image(raw(name), LOOSE)
    assert fast == ref  # every field, the JPEG bytes included


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_fast_path_equals_exif_transpose(orientation, monkeypatch):
    im = Image.open(IMAGES / "coffee.png")  # 600x400: downscaled after the rotation
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=exif)
    data = buf.getvalue()
    assert images_mod._fast_decode(data, images_mod._open(data, CFG), CFG)[1] == orientation
    fast = process_image(data, CFG)
    pillow_path(monkeypatch)
    assert fast == process_image(data, CFG)
    assert (fast.original_width, fast.original_height) == ((400, 600) if orientation >= 5 else (600, 400))


def test_png_exif_after_the_image_data_keeps_the_pillow_path():
    im = Image.open(IMAGES / "chelsea.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "PNG", exif=exif)
    data = buf.getvalue()
    # Pillow writes eXIf before IDAT: read from the header, the fast path rotates
    assert images_mod._fast_decode(data, images_mod._open(data, CFG), CFG)[1] == 6
    r = process_image(data, CFG)
    assert (r.width, r.height) == (300, 451)
    # the same chunk moved behind the image data: only Pillow's load sees it
    start = data.index(b"eXIf") - 4
    length = int.from_bytes(data[start:start + 4], "big")
    chunk = data[start:start + 12 + length]
    late = data[:start] + data[start + len(chunk):-12] + chunk + data[-12:]
    assert images_mod._fast_decode(late, images_mod._open(late, CFG), CFG) is None
    r = process_image(late, CFG)
    assert r.ok and (r.width, r.height) == (300, 451)


def test_incomplete_or_odd_files_keep_the_pillow_path(monkeypatch):
    china, astro = raw("china.jpg"), raw("astronaut.png")
    # complete files with junk after the end marker: Pillow's path, same result as clean
    for data, clean in ((china + b"\x00" * 16, china), (astro + b"trailing", astro)):
        assert images_mod._fast_decode(data, images_mod._open(data, CFG), CFG) is None
        assert process_image(data, CFG) == process_image(clean, CFG)
    # Cut anywhere, then given an end marker (EOI / IEND) so the cheap check passes:
    # whatever cv2 makes of it (it refuses most; a JPEG cut inside the scan it grey-fills,
    # and so does Pillow), the result equals the Pillow path's, drop reason included.
    buf = io.BytesIO()
    Image.open(IMAGES / "china.jpg").save(buf, "JPEG", quality=90, progressive=True)
    cuts = [data[: len(data) * k // 20] + tail
            for data, tail in ((china, b"\xff\xd9"), (buf.getvalue(), b"\xff\xd9"), (astro, images_mod._PNG_IEND))
            for k in range(1, 20)]
    fast = [process_image(d, LOOSE) for d in cuts]
    pillow_path(monkeypatch)
    assert fast == [process_image(d, LOOSE) for d in cuts]
    assert {r.reason for r in fast} >= {"truncated", None}


@pytest.mark.parametrize("mode", ["keep_ratio_largest", "keep_ratio", "center_crop", "border", "no"])
@pytest.mark.parametrize("size,only_bigger", [(512, True), (256, True), (700, False), (300, False)])
def test_resize_is_img2dataset_resizer_byte_for_byte(mode, size, only_bigger):
    """Our resize+encode against img2dataset's Resizer fed a lossless BMP of the same
    decoded pixels: identical JPEG bytes, so identical sizes and pixels."""
    cfg = ImageConfig(image_size=size, resize_mode=mode, resize_only_if_bigger=only_bigger,
                      min_side=1, max_aspect_ratio=10)
    resizer = Resizer(size, mode, only_bigger, encode_quality=cfg.encode_quality)
    for name in PHOTOS:
        data = raw(name)
        arr, _ = images_mod._pillow_decode(images_mod._open(data, cfg), cfg)
        jpeg, width, height = images_mod._resize(arr, cfg)
        ok, bmp = cv2.imencode(".bmp", arr)
        ref, w, h, _, _, err = resizer(io.BytesIO(bmp.tobytes()))
        assert err is None, (name, err)
        assert (width, height) == (w, h), name
        assert jpeg == ref, name


@pytest.mark.parametrize("mode", ["keep_ratio_largest", "keep_ratio", "center_crop", "border", "no"])
def test_output_sizes_equal_img2dataset_resizer_on_the_original_bytes(mode):
    """End to end, on the photos' own bytes (Resizer decodes them itself)."""
    for size, only_bigger in ((512, True), (256, False)):
        cfg = ImageConfig(image_size=size, resize_mode=mode, resize_only_if_bigger=only_bigger,
                          min_side=1, max_aspect_ratio=10)
        resizer = Resizer(size, mode, only_bigger, encode_quality=cfg.encode_quality)
        for name in PHOTOS:
            ours = process_image(raw(name), cfg)
            _, w, h, ow, oh, err = resizer(io.BytesIO(raw(name)))
            assert err is None
            assert (ours.width, ours.height) == (w, h), (name, size, mode)
            assert (ours.original_width, ours.original_height) == (ow, oh), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_phash_within_one_bit_of_the_decoded_stored_jpeg(name):
    for cfg in (CFG, ImageConfig(image_size=256, resize_mode="keep_ratio")):
        r = process_image(raw(name), cfg)
        full = phash64(decoded(r.jpeg))  # what anyone recomputes from a shard
        assert hamming(phash_int(r.phash), phash_int(full)) <= 1, (name, cfg.image_size)


@pytest.mark.parametrize("size", [(3000, 2616), (1500, 1308), (2616, 3000)])
def test_drafted_fast_decode_equals_pillows_draft(size, monkeypatch):
    """libjpeg's DCT scaling through cv2 (1/2, 1/4, 1/8) picks the scale Pillow's
    draft() would: same pixels, same stored JPEG."""
    big = Image.open(IMAGES / "hubble_deep_field.jpg").resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    for cfg in (CFG, ImageConfig(image_size=200), ImageConfig(resize_mode="center_crop", image_size=300)):
        fast = process_image(buf.getvalue(), cfg)
        with monkeypatch.context() as m:
            pillow_path(m)
            assert fast == process_image(buf.getvalue(), cfg)
        assert fast.ok and (fast.original_width, fast.original_height) == size


_FRESH = r"""
import hashlib, json, sys
from pathlib import Path
from pipeline.images import ImageConfig, process_image
data = Path(sys.argv[1]).read_bytes()
seen = {}
for mode in ("keep_ratio_largest", "border", "center_crop"):
    r = process_image(data, ImageConfig(resize_mode=mode))
    seen[mode] = [r.sha256, sorted(m for m in ("img2dataset", "img2dataset.resizer",
                                               "albumentations", "wandb") if m in sys.modules)]
print(json.dumps(seen))
"""


def test_a_fresh_process_loads_img2dataset_s_resizer_only_when_a_mode_needs_it():
    """keep_ratio_largest imports neither img2dataset's package (wandb) nor its
    resizer (albumentations); border/center_crop load resizer.py alone, and give the
    same bytes as img2dataset's Resizer imported the ordinary way (this process)."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _FRESH, str(IMAGES / "chelsea.png")], cwd=root,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)}).stdout
    seen = json.loads(out.splitlines()[-1])
    assert seen["keep_ratio_largest"][1] == []
    assert seen["border"][1] == seen["center_crop"][1] == ["albumentations", "img2dataset.resizer"]
    for mode in seen:
        assert seen[mode][0] == process_image(raw("chelsea.png"), ImageConfig(resize_mode=mode)).sha256


def test_threads_racing_on_the_first_resize_all_get_img2dataset_s_resizer():
    """Beam's threads race on the first border/center_crop resize; none may see the
    half-loaded resizer module."""
    for _ in range(2):
        assert race_first_call("pipeline.images", "_i2d", "Resizer") == ["Resizer"]
