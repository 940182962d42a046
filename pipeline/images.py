"""Image stage of the M3W pipeline: bytes in, one stored JPEG (plus its sizes and
fingerprints) or a named drop reason out.

    bytes -> sniff -> Pillow open (lazy: header only) -> size checks from the header
          -> decode (first frame) -> BGR/grey array -> img2dataset resize -> JPEG
          -> sha256(JPEG bytes), phash64 + verify hash (of the stored JPEG as decoded)

Decoding: complete, plain JPEGs (RGB/greyscale, ending in the EOI marker) and PNGs
(8-bit grey/RGB/RGBA, ending in the IEND chunk, no EXIF or XMP) are decoded by cv2
straight from the original bytes (libjpeg's DCT scaling standing in for Pillow's
draft); everything else, and anything cv2 refuses, goes through Pillow as before,
so Pillow stays the judge of every drop reason.

Drop reasons: empty, corrupt, truncated, decompression_bomb, too_small,
bad_aspect_ratio, unsupported_format, resize_failed. Animated images keep their
first frame and are flagged (`animated=True`) so the job can count them.

img2dataset's resizer module is loaded on first need (`_i2d`), and only it:
`import img2dataset` runs the package's __init__, which imports img2dataset.main
and with it wandb, pyarrow and fsspec (~1.2 s of CPU), and resizer.py itself
imports albumentations (~1.3 s). Only the border and center_crop modes call its
Resizer; the other modes are its exact steps done here (see _resize_and_encode),
and the mode names are checked against pipeline.cli.RESIZE_MODES (which
tests/pipeline/test_cli.py holds equal to img2dataset's ResizeMode). So a worker
process resizing in keep_ratio_largest mode imports neither, and one that does need
the Resizer loads resizer.py from img2dataset's installed package directory without
the package __init__ (its only imports are albumentations, cv2, numpy and the
standard library), registered under its own name so a later `import img2dataset`
shares the same module.
"""
from __future__ import annotations

import importlib
import io
import logging
import os
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from dedup.fingerprints import BadOrientation, image_hashes, normalize_image, phash64, sha256_hex
from shards.modload import load_module_file

from .cli import RESIZE_MODES

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ImageConfig:
    min_side: int = 150
    max_aspect_ratio: float = 2.0
    image_size: int = 512
    resize_mode: str = "keep_ratio_largest"  # any img2dataset ResizeMode name
    resize_only_if_bigger: bool = True
    encode_quality: int = 95
    max_pixels: int = 89_478_485  # Pillow's default bomb limit, but ours, per config
    # Let libjpeg decode big JPEGs at 1/2, 1/4 or 1/8 scale (DCT scaling) when the
    # result is still at least the target size; the Resizer then does the final
    # area downscale. Several times faster on large web photos.
    jpeg_draft: bool = True

    def __post_init__(self):
        # A bad mode is a config error, not a property of some image: fail loudly.
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {self.resize_mode!r}: not one of {sorted(RESIZE_MODES)}")


@dataclass
class ProcessedImage:
    ok: bool
    reason: str | None
    jpeg: bytes | None = None
    width: int | None = None
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    sha256: str | None = None
    phash: str | None = None
    # the second signature that confirms a crop-view eval match
    # (dedup.fingerprints.verify_hash, 64 hex digits), of the same pixels
    verify_hash: str | None = None
    animated: bool = False


class _ImageDrop(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


# --- img2dataset's Resizer without its process-wide stdout/stderr swap ------------
# Resizer.__call__ wraps every call in SuppressStdoutStderr, which dup2()s /dev/null
# over fds 1 and 2 of the whole process. Under threads (Beam workers, our fetch pool)
# that is a race: two overlapping calls can leave stdout pointing at /dev/null for
# good, and while any call runs every other thread's log lines are lost. It exists to
# hush libpng/libjpeg warnings while cv2 decodes web bytes; where we call the Resizer
# (border and center_crop modes, below) we hand it an uncompressed BMP, which cv2
# decodes silently, so for our calls the swap has nothing to hush. The replacement is
# a no-op only on threads that are inside `_resize_with_resizer` here; every other
# caller keeps img2dataset's behaviour.
_OURS = threading.local()
_I2D_RESIZER = "img2dataset.resizer"
# Beam's threads race on the first call: one loads and patches, the others wait.
_I2D_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _i2d():
    """img2dataset.resizer (see the module docstring), its stdout swap replaced."""
    with _I2D_LOCK:
        return _patched_i2d()


def _patched_i2d():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network call at import
    if "img2dataset" in sys.modules:   # the package imported normally: its own resizer
        mod = importlib.import_module(_I2D_RESIZER)
    else:
        mod = load_module_file(_I2D_RESIZER, "img2dataset", "resizer.py")
    if not isinstance(mod.SuppressStdoutStderr, type) or not issubclass(
            mod.SuppressStdoutStderr, _SuppressUnlessOurs):
        mod.SuppressStdoutStderr = type("SuppressStdoutStderr", (_SuppressUnlessOurs,),
                                        {"original": mod.SuppressStdoutStderr})
    return mod


class _SuppressUnlessOurs:
    original = None  # img2dataset's SuppressStdoutStderr, set by _i2d

    def __init__(self):
        self._inner = None if getattr(_OURS, "active", False) else self.original()

    def __enter__(self):
        if self._inner is not None:
            self._inner.__enter__()

    def __exit__(self, *exc):
        if self._inner is not None:
            self._inner.__exit__(*exc)



@lru_cache(maxsize=16)
def _resizer(cfg: ImageConfig):
    # Size and aspect checks happen here, on the header, before decoding; the
    # Resizer only resizes and encodes.
    return _i2d().Resizer(
        image_size=cfg.image_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_quality=cfg.encode_quality,
        encode_format="jpg",
    )


def _resize_with_resizer(arr: np.ndarray, cfg: ImageConfig) -> tuple[bytes, int, int]:
    """img2dataset's Resizer itself, on a lossless BMP of `arr` (BGR or grey)."""
    ok, bmp = cv2.imencode(".bmp", arr)
    if not ok:
        raise _ImageDrop("resize_failed", "BMP encode failed")
    _OURS.active = True
    try:
        jpeg, width, height, _, _, err = _resizer(cfg)(io.BytesIO(bmp.tobytes()))
    finally:
        _OURS.active = False
    if err is not None or not jpeg:
        raise _ImageDrop("resize_failed", str(err))
    return jpeg, width, height


def _resize_and_encode(arr: np.ndarray, cfg: ImageConfig) -> tuple[bytes, int, int]:
    """img2dataset's Resizer (1.47) for one already decoded, alpha-free image.

    keep_ratio_largest, keep_ratio and no are its exact steps: the same size check,
    the same scale and rounding as albumentations' LongestMaxSize/SmallestMaxSize
    (max(1, round(side * image_size / longest or shortest side))), the same cv2.resize
    interpolation (area down, lanczos up), no resize when the size would not change,
    and the same cv2.imencode call; skipping the BMP round trip and building no
    albumentations transform per image. border and center_crop (pad/crop on top of
    that) go through the Resizer itself. tests/pipeline/test_images.py checks both
    against img2dataset's Resizer byte for byte.
    """
    cv2.setNumThreads(1)  # as the Resizer does: our parallelism is the fetch threads
    mode = cfg.resize_mode
    if mode in ("border", "center_crop"):
        return _resize_with_resizer(arr, cfg)
    h, w = arr.shape[:2]
    if mode != "no":
        side = max(w, h) if mode == "keep_ratio_largest" else min(w, h)
        downscale = side > cfg.image_size
        if not cfg.resize_only_if_bigger or downscale:
            scale = cfg.image_size / side
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
            if (nh, nw) != (h, w):
                inter = cv2.INTER_AREA if downscale else cv2.INTER_LANCZOS4
                arr = cv2.resize(arr, (nw, nh), interpolation=inter)
    ok, buf = cv2.imencode(".jpg", arr, params=[int(cv2.IMWRITE_JPEG_QUALITY), cfg.encode_quality])
    if not ok:
        raise _ImageDrop("resize_failed", "JPEG encode failed")
    return buf.tobytes(), arr.shape[1], arr.shape[0]


def _resize(arr: np.ndarray, cfg: ImageConfig) -> tuple[bytes, int, int]:
    try:
        return _resize_and_encode(arr, cfg)
    except _ImageDrop:
        raise
    except Exception as err:  # noqa: BLE001 - the Resizer turns any error into err, so do we
        raise _ImageDrop("resize_failed", f"{type(err).__name__}: {err}") from None


# --- decode -------------------------------------------------------------------------

def _looks_like_markup(data: bytes) -> bool:
    """SVG, HTML error pages, JSON: text where a raster image was expected."""
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"<", b"{", b"[") or b"<svg" in head.lower()


def _open(data: bytes, cfg: ImageConfig) -> Image.Image:
    try:
        # Pillow's own check (its global MAX_IMAGE_PIXELS, which we never change:
        # other code in the process relies on it) raises above 2x that global and
        # warns above 1x; the limit that decides here is cfg.max_pixels, below.
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise _ImageDrop("decompression_bomb", str(err)) from None
    except UnidentifiedImageError:
        if _looks_like_markup(data):
            raise _ImageDrop("unsupported_format", "markup or text, not a raster image") from None
        raise _ImageDrop("corrupt", "not a recognised image format") from None
    except Exception as err:  # noqa: BLE001 - any parser error on open means a broken header
        reason = "truncated" if "truncated" in str(err).lower() else "corrupt"
        raise _ImageDrop(reason, f"{type(err).__name__}: {err}") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        raise _ImageDrop("corrupt", f"declared size {width}x{height}")
    if width * height > cfg.max_pixels:
        raise _ImageDrop("decompression_bomb", f"declared {width}x{height} > {cfg.max_pixels} pixels")
    return im


def _check_geometry(width: int, height: int, cfg: ImageConfig) -> None:
    if min(width, height) < cfg.min_side:
        raise _ImageDrop("too_small", f"{width}x{height}, min side {cfg.min_side}")
    if max(width, height) / min(width, height) > cfg.max_aspect_ratio:
        raise _ImageDrop("bad_aspect_ratio", f"{width}x{height} > {cfg.max_aspect_ratio}")


def _draft_size(width: int, height: int, cfg: ImageConfig) -> tuple[int, int] | None:
    """Smallest size the Resizer can start from and still give the same output size."""
    mode = cfg.resize_mode
    if mode in ("keep_ratio_largest", "border"):
        scale = cfg.image_size / max(width, height)
    elif mode in ("keep_ratio", "center_crop"):
        scale = cfg.image_size / min(width, height)
    else:
        return None
    if scale >= 0.5:  # libjpeg's smallest step is 1/2: nothing to gain
        return None
    return (int(width * scale) + 1, int(height * scale) + 1)


def _decode(im: Image.Image, cfg: ImageConfig) -> Image.Image:
    if cfg.jpeg_draft and im.format == "JPEG" and im.mode in ("RGB", "L"):
        target = _draft_size(*im.size, cfg)
        if target is not None:
            im.draft(im.mode, target)
    try:
        im.load()  # first frame only; later frames of animations are never decoded
    except Image.DecompressionBombError as err:
        raise _ImageDrop("decompression_bomb", str(err)) from None
    except (OSError, EOFError) as err:
        msg = str(err)
        if isinstance(err, EOFError) or "truncated" in msg.lower() or "end of file" in msg.lower():
            raise _ImageDrop("truncated", msg) from None
        raise _ImageDrop("corrupt", msg) from None
    except Exception as err:  # noqa: BLE001 - decoders raise SyntaxError, ValueError, struct.error...
        raise _ImageDrop("corrupt", f"{type(err).__name__}: {err}") from None
    return im


# --- cv2 decode of the original bytes --------------------------------------------------
# Only where Pillow's verdict cannot differ: the header (already parsed by Pillow,
# lazily) says a plain, single-frame JPEG or PNG, and the file visibly ends where such
# a file ends (JPEG EOI marker; PNG IEND chunk), which is how a truncated download
# shows. cv2 returns None for anything it cannot decode fully; those bytes then go
# through Pillow, which names the reason (truncated or corrupt) as it always has.

_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# After the image data, metadata that Pillow only reads once it has decoded and that
# can carry an orientation exif_transpose applies (an eXIf chunk; a text chunk keyed
# as EXIF or XMP): such PNGs keep the Pillow path. Other late text (ImageMagick's
# dates, say) is harmless.
_PNG_TEXT_CHUNKS = frozenset((b"tEXt", b"zTXt", b"iTXt"))
_PNG_ORIENTATION_KEYS = frozenset((b"Raw profile type exif", b"XML:com.adobe.xmp"))
_PNG_COLOUR_TYPES = {0: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_COLOR, 6: cv2.IMREAD_UNCHANGED}
_JPEG_REDUCED = {
    ("RGB", 1): cv2.IMREAD_COLOR, ("RGB", 2): cv2.IMREAD_REDUCED_COLOR_2,
    ("RGB", 4): cv2.IMREAD_REDUCED_COLOR_4, ("RGB", 8): cv2.IMREAD_REDUCED_COLOR_8,
    ("L", 1): cv2.IMREAD_GRAYSCALE, ("L", 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    ("L", 4): cv2.IMREAD_REDUCED_GRAYSCALE_4, ("L", 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
# Pillow's Image.transpose methods of exif_transpose, as array operations (HxWxC).
_ORIENT = {
    2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
    3: lambda a: a[::-1, ::-1],  # ROTATE_180
    4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
    5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
    6: lambda a: a.swapaxes(0, 1)[:, ::-1],  # ROTATE_270 (90 clockwise)
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],  # TRANSVERSE
    8: lambda a: a.swapaxes(0, 1)[::-1],  # ROTATE_90 (90 counter-clockwise)
}


def _draft_scale(im: Image.Image, cfg: ImageConfig) -> int:
    """The DCT scale denominator Pillow's draft() would pick (1 if none)."""
    if not cfg.jpeg_draft or len(im.tile) != 1:
        return 1
    target = _draft_size(*im.size, cfg)
    if target is None:
        return 1
    scale = min(im.size[0] // target[0], im.size[1] // target[1])
    for s in (8, 4, 2, 1):
        if scale >= s:
            return s
    return 1


def _png_metadata_in_header(data: bytes) -> bool:
    """Walk the chunk list: True when it is well formed, ends in IEND at the end of
    the bytes, and no metadata chunk follows the first IDAT."""
    pos, end, seen_idat = 8, len(data), False
    while pos + 12 <= end:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IEND":
            return pos + 12 == end
        if kind == b"IDAT":
            seen_idat = True
        elif seen_idat:
            if kind == b"eXIf":
                return False
            if kind in _PNG_TEXT_CHUNKS:
                body = data[pos + 8:pos + 8 + min(length, 80)]
                if body.split(b"\0", 1)[0] in _PNG_ORIENTATION_KEYS:
                    return False
        pos += 12 + length
    return False


def _fast_decode(data: bytes, im: Image.Image, cfg: ImageConfig) -> tuple[np.ndarray, int] | None:
    """(BGR, BGRA or grey array as stored in the file, EXIF orientation) or None."""
    scale = 1
    if im.format == "JPEG":
        if im.mode not in ("RGB", "L") or not data.endswith(b"\xff\xd9"):
            return None
        scale = _draft_scale(im, cfg)
        flag = _JPEG_REDUCED[im.mode, scale] | cv2.IMREAD_IGNORE_ORIENTATION
        try:
            # the same orientation exif_transpose would read (EXIF, else XMP): all of
            # a JPEG's metadata segments precede the scan, so the header has them
            orientation = im.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - broken EXIF: let the Pillow path name it
            return None
        channels = 3 if im.mode == "RGB" else 1
    elif im.format == "PNG":
        if len(data) < 33 or data[24] != 8 or not data.endswith(_PNG_IEND) or "transparency" in im.info:
            return None
        flag = _PNG_COLOUR_TYPES.get(data[25])
        if flag is None or not _png_metadata_in_header(data):
            return None
        if flag != cv2.IMREAD_UNCHANGED:  # UNCHANGED ignores orientation anyway
            flag |= cv2.IMREAD_IGNORE_ORIENTATION
        try:
            # Everything Pillow's getexif reads (eXIf, "Raw profile type exif", XMP)
            # is already in im.info: the base method, which does not decode.
            orientation = Image.Image.getexif(im).get(0x0112, 1)
        except Exception:  # noqa: BLE001 - broken EXIF: let the Pillow path name it
            return None
        channels = {0: 1, 2: 3, 6: 4}[data[25]]
    else:
        return None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if arr is None:
        return None
    w, h = im.size
    shape = ((h + scale - 1) // scale, (w + scale - 1) // scale)
    if arr.shape[:2] != shape or (arr.shape[2] if arr.ndim == 3 else 1) != channels:
        return None  # not what Pillow read from the header: let Pillow decide
    return arr, orientation


def _over_white(bgra: np.ndarray) -> np.ndarray:
    """Alpha over white, rounded exactly as Pillow's paste(mask=alpha) does:
    round(c * a / 255) + 255 - a."""
    if bgra[..., 3].min() == 255:
        return bgra[..., :3].copy()
    a = bgra[..., 3:4].astype(np.uint16)
    t = bgra[..., :3] * a
    t += 128
    t += t >> 8
    t >>= 8
    t += 255
    t -= a
    return t.astype(np.uint8)


def _pillow_decode(im: Image.Image, cfg: ImageConfig) -> tuple[np.ndarray, bool]:
    """Pillow's decode, EXIF orientation and colour handling: (BGR or grey array,
    whether the orientation swapped width and height)."""
    im = _decode(im, cfg)
    decoded_size = im.size
    try:
        # Browsers honour EXIF orientation, so the stored image must be upright too;
        # the eval index normalises its images with the same function.
        im = normalize_image(im)
    except BadOrientation as err:  # a broken EXIF block is the file's problem
        raise _ImageDrop("corrupt", str(err)) from None
    swapped = im.size != decoded_size
    arr = np.asarray(im)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    return arr, swapped


def _hashes_of(jpeg: bytes, verify: bool = True) -> tuple[str, str | None]:
    """(phash64, verify hash) of the stored JPEG as decoded (by Pillow), so anyone
    can recompute them from a shard and get the same bits: one decode, one grey
    conversion and border trim for both (dedup.fingerprints.image_hashes).

    Cheaper stand-ins were measured and rejected: hashing the resized pixels before
    JPEG coding is 2 bits off on the textured greyscale photos (brick, moon, text);
    decoding only the JPEG's luma plane is 2 bits off on retina.jpg at 256 px.
    ``verify=False``: (phash64, None), for callers that never match crop views
    (video frames); the verify hash costs ~1 ms of CPU per image (its own 64x64
    Lanczos resize; bench/bench_image_hashes.py).
    """
    img = Image.open(io.BytesIO(jpeg))
    return image_hashes(img) if verify else (phash64(img), None)


def _process(data: bytes, cfg: ImageConfig, flags: dict, verify: bool) -> ProcessedImage:
    if not data:
        raise _ImageDrop("empty")
    im = _open(data, cfg)
    flags["animated"] = animated = bool(getattr(im, "is_animated", False))
    ow, oh = im.size  # from the header: full size even if the JPEG is drafted
    # Geometry from the header first: cheap drops never pay for a decode.
    _check_geometry(ow, oh, cfg)
    fast = None if animated else _fast_decode(data, im, cfg)
    if fast is not None:
        arr, orientation = fast
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = _over_white(arr)
        if orientation in _ORIENT:
            arr = np.ascontiguousarray(_ORIENT[orientation](arr))
            if orientation >= 5:  # rotated by 90 degrees: original size as displayed
                ow, oh = oh, ow
    else:
        arr, swapped = _pillow_decode(im, cfg)
        if swapped:
            ow, oh = oh, ow
    jpeg, width, height = _resize(arr, cfg)
    # Of the stored JPEG as decoded, so anyone can recompute them from a shard.
    phash, verify_hex = _hashes_of(jpeg, verify)
    return ProcessedImage(
        ok=True,
        reason=None,
        jpeg=jpeg,
        width=width,
        height=height,
        original_width=ow,
        original_height=oh,
        sha256=sha256_hex(jpeg),
        phash=phash,
        verify_hash=verify_hex,
        animated=animated,
    )


def process_image(data: bytes, cfg: ImageConfig, source: str = "",
                  verify_hash: bool = True) -> ProcessedImage:
    """Validate, resize and encode one image. Never raises; `source` (the URL) only
    goes into log messages. `verify_hash=False` leaves `ProcessedImage.verify_hash`
    None (video frames: matched by their phashes only)."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone in this process switched on Pillow's lenient mode; truncated
        # images would then pass as half-grey pictures. Say so once.
        _warn_lenient_once()
    flags = {"animated": False}
    try:
        return _process(data, cfg, flags, verify_hash)
    except _ImageDrop as drop:
        log.debug("image dropped %s: %s", source or "<bytes>", drop)
        return ProcessedImage(ok=False, reason=drop.reason, animated=flags["animated"])
    except Exception as err:  # noqa: BLE001 - the contract is: never raise
        log.warning("image dropped %s: unexpected %s: %s", source or "<bytes>", type(err).__name__, err)
        return ProcessedImage(ok=False, reason="corrupt", animated=flags["animated"])


@lru_cache(maxsize=1)
def _warn_lenient_once() -> None:
    log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images will not be detected")
