"""Content fingerprints shared by the pipeline (which stores them) and dedup
(which matches them): one definition, so both sides always agree."""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import imagehash
import numpy as np
from PIL import Image, ImageOps

WHITE = (255, 255, 255)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the pixels both sides see


class BadOrientation(ValueError):
    """The image's EXIF/XMP orientation block cannot be read."""


def to_rgb_or_l(im: Image.Image) -> Image.Image:
    """RGB for colour, L for greyscale; alpha composited over white."""
    if im.mode in ("RGB", "L"):
        return im
    if im.mode == "1":
        return im.convert("L")
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit greyscale, float
        arr = np.asarray(im, dtype=np.float64)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0 if arr.max() <= 65535 else arr * (255.0 / arr.max())
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode == "P" and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        out = Image.new("RGB", im.size, WHITE)
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    return im.convert("RGB")  # CMYK, P, YCbCr, LAB, HSV


def normalize_image(im: Image.Image) -> Image.Image:
    """The pixels an image stands for, as a browser shows them: EXIF/XMP
    orientation applied (``ImageOps.exif_transpose``), alpha composited over
    white, RGB or L.  The image stage (``pipeline.images``, whose cv2 fast path
    reproduces this exactly) and the eval index both start from it, so a copy
    and its original are hashed from the same pixels.  Raises
    :class:`BadOrientation` for an unreadable orientation block."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for broken EXIF
        raise BadOrientation(f"bad EXIF: {err}") from None
    return to_rgb_or_l(im)


# Borders: a copy on the web is often letterboxed, padded or framed.  Both
# sides hash the image with its near-uniform borders cut off, so such a copy
# hashes like its original.  A side is trimmed when at least BORDER_MIN_FRAC of
# its lines are border (98% of their pixels within BORDER_TOLERANCE grey
# levels of the outermost line's median): a one-pixel line or a thin frame is
# left alone, so the JPEG noise of a natural edge cannot move the crop.
BORDER_TOLERANCE = 12
BORDER_MIN_FRAC = 0.02
BORDER_MAX_FRAC = 0.45    # per side; an almost blank image is not trimmed to a sliver
# A small overlay inside a border (a site's watermark or a logo in the corner of
# a photo on a plain ground) must not stop the trim short of the photo: a band
# of at most BORDER_GAP_FRAC of the side's lines, each still BORDER_GAP_MIN
# border pixels, whose other pixels lie within BORDER_GAP_SPAN of the side's
# width (one overlay, not the noise of a textured ground) and mostly differ
# from the ground by 2 * BORDER_TOLERANCE or more (a mark on the ground, not
# the ground's level drifting: a vignette, a sky's gradient), followed by
# BORDER_MIN_FRAC of the side in clean border lines, is part of the border.
# Content reached from a border is not such a band: the lines beyond it are
# not border again.
BORDER_GAP_FRAC = 0.06
BORDER_GAP_MIN = 0.75
BORDER_GAP_SPAN = 0.5


def _border_run(lines: np.ndarray, prev_ref: float | None) -> tuple[int, float]:
    """(how many leading lines of ``lines`` are border, counted up to just past
    BORDER_MAX_FRAC of them; the border's grey level).  After a first border
    (``prev_ref``), only a border of a clearly different level counts: a
    nested frame, not the next band of a gradient sky."""
    ref = float(np.median(lines[0]))
    if prev_ref is not None and abs(ref - prev_ref) <= 3 * BORDER_TOLERANCE:
        return 0, ref
    if (np.abs(lines[0] - ref) <= BORDER_TOLERANCE).mean() < 0.98:   # most photos: stop here
        return 0, ref
    off = np.abs(lines[: int(BORDER_MAX_FRAC * len(lines)) + 2] - ref) > BORDER_TOLERANCE
    frac = 1.0 - off.mean(axis=1)
    near = frac >= 0.98
    if near.all():
        return len(near), ref
    run = int(np.argmin(near))
    # bridge overlay bands (see BORDER_GAP_FRAC)
    max_gap = math.ceil(BORDER_GAP_FRAC * len(lines))
    resume = max(3, math.ceil(BORDER_MIN_FRAC * len(lines)))
    clean = np.convolve(near, np.ones(resume), "valid") == resume   # clean[j]: near[j:j + resume]
    while run < len(clean):
        ends = np.flatnonzero(clean[run + 1: run + max_gap + 1])
        if not len(ends):
            break
        end = run + 1 + int(ends[0])
        if frac[run:end].min() < BORDER_GAP_MIN:
            break
        marks = np.abs(lines[run:end] - ref)[off[run:end]]
        if np.percentile(marks, 90) < 2 * BORDER_TOLERANCE:    # the ground drifting, not a mark on it
            break
        lo, hi = np.percentile(np.nonzero(off[run:end])[1], (5, 95))
        if hi - lo > BORDER_GAP_SPAN * off.shape[1]:
            break
        past = end + (int(np.argmin(near[end:])) if not near[end:].all() else len(near) - end)
        if past > BORDER_MAX_FRAC * len(lines):      # a blank side: keep the first border
            break
        run = past
    return run, ref


BORDER_PASSES = 3         # a border inside a border (a photo on white, framed in black)


def border_box(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of ``grey`` (HxW) without its uniform borders,
    nested ones of a different level included (up to BORDER_PASSES)."""
    left, top, right, bottom = 0, 0, grey.shape[1], grey.shape[0]
    refs: dict[str, float] = {}
    for _ in range(BORDER_PASSES):
        l, t, r, b = _border_box_once(grey[top:bottom, left:right], refs)
        if (l, t, r, b) == (0, 0, right - left, bottom - top):
            break
        left, top, right, bottom = left + l, top + t, left + r, top + b
    return left, top, right, bottom


def _border_box_once(grey: np.ndarray, refs: dict[str, float]) -> tuple[int, int, int, int]:
    """One pass over the four sides; ``refs``: the level of each side's border
    trimmed so far (updated)."""
    h, w = grey.shape
    top, bottom, left, right = 0, h, 0, w
    if h < 16 or w < 16:
        return left, top, right, bottom
    g = grey.astype(np.int16)

    def cut(side: str, lines: np.ndarray, length: int) -> int:
        run, ref = _border_run(lines, refs.get(side))
        if BORDER_MIN_FRAC * length <= run <= BORDER_MAX_FRAC * length:
            refs[side] = ref
            return run
        return 0

    top = cut("top", g, h)
    bottom = h - cut("bottom", g[::-1], h)
    rows = g[top:bottom]
    left = cut("left", rows.T, w)
    right = w - cut("right", rows[:, ::-1].T, w)
    return left, top, right, bottom


def trim_borders(img: Image.Image) -> Image.Image:
    """The image without near-uniform borders (see :func:`border_box`)."""
    box = border_box(np.asarray(img if img.mode == "L" else img.convert("L")))
    return img if box == (0, 0) + img.size else img.crop(box)


def _hash_pixels(img: Image.Image, trim: bool = True) -> Image.Image:
    """The grey pixels both signatures hash: ``img`` in L, its uniform borders
    trimmed (:func:`trim_borders`) unless ``trim=False``."""
    grey = img if img.mode == "L" else img.convert("L")
    return trim_borders(grey) if trim else grey


def image_hashes(img: Image.Image, trim: bool = True) -> tuple[str, str]:
    """(:func:`phash64`, :func:`verify_hash`) of ``img``, the grey conversion
    and the border trim done once for both (the image stage stores both for
    every image; bit-identical to calling the two)."""
    pixels = _hash_pixels(img, trim)
    return (str(imagehash.phash(pixels, hash_size=8)),
            str(imagehash.phash(pixels, hash_size=16)))


def phash64(img: Image.Image, trim: bool = True) -> str:
    """64-bit DCT perceptual hash (imagehash.phash, 8x8) of the image's grey
    pixels with uniform borders trimmed (:func:`trim_borders`), as 16 hex digits.
    ``trim=False`` hashes the pixels as they are (eval-side views only: what
    the pipeline stores is always trimmed)."""
    return str(imagehash.phash(_hash_pixels(img, trim), hash_size=8))


def phash_int(hex_hash: str) -> int:
    return int(hex_hash, 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# ---------------------------------------------------------------- eval-side image variants
#
# The training side stores exactly one phash64 per image.  Robustness to crops
# and flips therefore has to come from the eval side: each eval image is
# indexed under the phash of several views of it (the ones a web copy is
# likely to be: the whole image, a mirror, and crops at several scales and
# positions).  A training copy cropped by ~10% lands close to one of them.

# A view set: rotations (degrees) of the image and of its mirror, centred
# crops (scale), and crops at a scale on an n x n grid of positions (a
# position is the crop's offset as a fraction of the slack: 0 = left/top,
# 0.5 = centred, 1 = right/bottom).  Measured with bench/bench_dedup.py.
VIEW_SETS = {
    # 79 views: what the index held until 2026-12-03
    "grid79": {"rotations": (-5, 5), "flip_rotations": (), "centre": (),
               "grid": {0.95: 5, 0.9: 5, 0.8: 5}},
    # off-grid crops to 20%, rotations to 10 degrees, centre crops to 30%
    "dense": {"rotations": (-10, -5, 5, 10), "flip_rotations": (-5, 5), "centre": (0.75, 0.7),
              "grid": {0.95: 5, 0.9: 5, 0.85: 7, 0.8: 9}},
}
DEFAULT_VIEW_SET = "dense"


def _crop(img: Image.Image, scale: float, px: float, py: float) -> Image.Image:
    w, h = img.size
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    x0, y0 = round((w - cw) * px), round((h - ch) * py)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def _rotate(img: Image.Image, deg: float) -> Image.Image:
    return img.rotate(deg, resample=Image.Resampling.BICUBIC)


def eval_image_views(img: Image.Image, view_set: str | None = None) -> list[tuple[str, Image.Image]]:
    """The views of an eval image that get indexed, named for the report
    (of the image as :func:`normalize_image` makes it); ``view_set`` names
    an entry of :data:`VIEW_SETS` (default :data:`DEFAULT_VIEW_SET`)."""
    spec = VIEW_SETS[view_set or DEFAULT_VIEW_SET]
    img = normalize_image(img).convert("RGB")
    mirror = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    views = [("full", img), ("flip", mirror)]
    views += [(f"rot{deg:+d}", _rotate(img, deg)) for deg in spec["rotations"]]
    views += [(f"flip+rot{deg:+d}", _rotate(mirror, deg)) for deg in spec["flip_rotations"]]
    views += [(f"crop{s}", _crop(img, s, 0.5, 0.5)) for s in spec["centre"]]
    for s, n in spec["grid"].items():
        pos = [round(i / (n - 1), 3) for i in range(n)]
        for py in pos:
            for px in pos:
                views.append((f"crop{s}@{px},{py}", _crop(img, s, px, py)))
    return views


def untrimmed_views(img: Image.Image) -> list[tuple[str, Image.Image]]:
    """Views of an eval image whose own edges are near-uniform (a sky, a
    studio backdrop, a dark sea), to be hashed *without* trimming: the image
    with each trimmed side put back, one side at a time, and with all of them
    (and its mirror).  A copy's trim can stop short of the original's where a
    letterbox bar, a frame, JPEG noise or a watermark in that region breaks
    the near-uniformity; the copy then hashes like one of these.  None for an
    image that is not trimmed (most photos)."""
    img = normalize_image(img).convert("RGB")
    w, h = img.size
    box = border_box(np.asarray(img.convert("L")))
    if box == (0, 0, w, h):
        return []
    left, top, right, bottom = box
    views = [("untrimmed", img), ("flip+untrimmed", img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    for side, part in (("left", (0, top, right, bottom)), ("top", (left, 0, right, bottom)),
                       ("right", (left, top, w, bottom)), ("bottom", (left, top, right, h))):
        if part != (0, 0, w, h) and part != box:
            views.append((f"untrimmed-{side}", img.crop(part)))
    return views


def indexed_views(img: Image.Image, view_set: str | None = None
                  ) -> list[tuple[str, Image.Image, bool]]:
    """(view name, view, trim?) for every indexed view of an eval image, the
    one list :func:`eval_phashes` and :func:`eval_hashes` hash: those of
    :func:`eval_image_views` (trimmed, as the pipeline hashes) and those of
    :func:`untrimmed_views` (not trimmed)."""
    return ([(name, v, True) for name, v in eval_image_views(img, view_set)]
            + [(name, v, False) for name, v in untrimmed_views(img)])


def eval_phashes(img: Image.Image, view_set: str | None = None) -> list[tuple[str, str]]:
    """(view name, phash64) for every indexed view of an eval image
    (:func:`indexed_views`)."""
    return [(name, phash64(v, trim=trim)) for name, v, trim in indexed_views(img, view_set)]


def verify_hash(img: Image.Image, trim: bool = True) -> str:
    """The second, independent signature that confirms a crop-view match:
    a 256-bit DCT perceptual hash (imagehash.phash, 16x16: the 8x8 phash64
    plus the next frequencies, i.e. the finer layout) of the same grey,
    trimmed pixels, as 64 hex digits.  Two distinct photos of one kind of
    object on a plain ground (two hammers on white) can agree on phash64's
    64 lowest frequencies through a crop view and still differ here; a
    genuine copy agrees on both (bench/bench_dedup.py prints both
    distributions).  A training image's signature is computed from its
    stored JPEG, as its phash64 is (:func:`image_hashes` computes both)."""
    return str(imagehash.phash(_hash_pixels(img, trim), hash_size=16))


def is_verified_view(view: str) -> bool:
    """The views whose matches are verified by :func:`verify_hash`: the crops
    (a crop of one object on a plain ground looks like many others)."""
    return view.startswith("crop")


def eval_hashes(img: Image.Image, view_set: str | None = None) -> list[tuple[str, str, str]]:
    """(view name, phash64, verify hash or "") for every indexed view of an
    eval image (:func:`indexed_views`, as :func:`eval_phashes` names them);
    the verify hash (:func:`verify_hash`) only for the views of
    :func:`is_verified_view`."""
    out = []
    for name, v, trim in indexed_views(img, view_set):
        if is_verified_view(name):
            out.append((name, *image_hashes(v, trim=trim)))
        else:
            out.append((name, phash64(v, trim=trim), ""))
    return out


# ---------------------------------------------------------------- video


def video_frame_phashes(path, fps: float = 1.0, max_frames: int | None = None) -> list[str]:
    """phash64 of frames sampled at ``fps`` (default 1 FPS, as the videos job).

    Decodes with PyAV and keeps the first frame at or after each sampling
    time t = 0, 1/fps, 2/fps, ...
    """
    import av

    out: list[str] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_t = 0.0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base)
            if t + 1e-6 < next_t:
                continue
            out.append(phash64(frame.to_image()))
            next_t += 1.0 / fps
            while next_t <= t:
                next_t += 1.0 / fps
            if max_frames is not None and len(out) >= max_frames:
                break
    return out


# ---------------------------------------------------------------- text

_WORD_RE = re.compile(r"\w+", re.UNICODE)


def normalize_words(text: str) -> list[str]:
    """Lower-cased NFKC word tokens, punctuation and whitespace dropped (the
    normalisation of GPT-3's contamination check)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _WORD_RE.findall(text)


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))


# A sentence ends at . ! ? (or their CJK forms, or an ellipsis) followed by
# space, or at a line break.  A plain rule on purpose: it only has to cut a
# caption quoted in a paragraph out of its neighbours, and a missed split
# (an abbreviation) only makes a sentence longer than the caption.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f])[\"'\u201d\u2019)\]]*\s+|\n+")


def sentences(text: str) -> list[str]:
    """The sentences of a paragraph (stripped, empty ones dropped)."""
    return [s.strip() for s in _SENTENCE_END_RE.split(text) if s.strip()]


def _h64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def text_hash64(text: str) -> int:
    """64-bit hash of the normalised text (for exact-caption matching)."""
    return _h64(normalize_text(text))


def ngram_hashes(words: list[str], n: int) -> list[int]:
    """64-bit hashes of every word n-gram (none when the text is shorter)."""
    return [_h64(" ".join(words[i:i + n])) for i in range(len(words) - n + 1)]


# ---------------------------------------------------------------- URLs

# Flickr serves one photo from many hosts (farmN., cN., live.) and sizes
# (_z, _b, _o, ...); the photo id identifies it.
_FLICKR_RE = re.compile(r"(?:^|\.)staticflickr\.com$|^(?:farm\d+\.)?static\.flickr\.com$")
_FLICKR_PATH_RE = re.compile(r"/(\d+)_[0-9a-f]+(?:_[a-z0-9]{1,2})?\.\w+$")
_TRACKING = ("utm_", "fbclid", "gclid")


def canonical_url(url: str) -> str:
    """A canonical form of an image URL for matching copies of the same URL.

    Scheme-less (http/https alike), host lower-cased without ``www.`` and the
    default port, fragment and tracking parameters dropped, the query sorted,
    percent-escapes decoded; Flickr static URLs become ``flickr:PHOTO_ID``.
    """
    u = urlsplit(url.strip())
    host = (u.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    port = u.port
    if port and not ((u.scheme == "http" and port == 80) or (u.scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = unquote(u.path) or "/"
    if _FLICKR_RE.search(host):
        m = _FLICKR_PATH_RE.search(path)
        if m:
            return f"flickr:{m.group(1)}"
    query = sorted((k, v) for k, v in parse_qsl(u.query, keep_blank_values=True)
                   if not k.lower().startswith(_TRACKING))
    q = urlencode(query)
    return f"{host}{path}" + (f"?{q}" if q else "")
