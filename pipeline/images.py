"""Image stage of the M3W pipeline: bytes in, one stored JPEG (plus its sizes and
fingerprints) or a named drop reason out.

    bytes -> sniff -> Pillow open (lazy: header only) -> size checks from the header
          -> decode (first frame) -> RGB/L -> img2dataset Resizer (cv2) -> JPEG
          -> sha256(JPEG bytes), phash64(decoded JPEG)

Drop reasons: empty, corrupt, truncated, decompression_bomb, too_small,
bad_aspect_ratio, unsupported_format, resize_failed. Animated images keep their
first frame and are flagged (`animated=True`) so the job can count them.
"""
from __future__ import annotations

import io
import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network call at import

import numpy as np  # noqa: E402
from img2dataset import resizer as _i2d_resizer  # noqa: E402
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError  # noqa: E402

from dedup.fingerprints import phash64, sha256_hex  # noqa: E402

log = logging.getLogger(__name__)

WHITE = (255, 255, 255)


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
        if self.resize_mode not in _i2d_resizer.ResizeMode.__members__:
            raise ValueError(f"resize_mode {self.resize_mode!r}: not one of "
                             f"{sorted(_i2d_resizer.ResizeMode.__members__)}")


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
# hush libpng/libjpeg warnings while cv2 decodes web bytes; we hand cv2 an
# uncompressed BMP made by Pillow, which it decodes silently, so for our calls the
# swap has nothing to hush. The replacement is a no-op only on threads that are
# inside `_resize` here; every other caller keeps img2dataset's behaviour.
_OURS = threading.local()
_OriginalSuppress = _i2d_resizer.SuppressStdoutStderr


class _SuppressUnlessOurs:
    def __init__(self):
        self._inner = None if getattr(_OURS, "active", False) else _OriginalSuppress()

    def __enter__(self):
        if self._inner is not None:
            self._inner.__enter__()

    def __exit__(self, *exc):
        if self._inner is not None:
            self._inner.__exit__(*exc)


if _i2d_resizer.SuppressStdoutStderr is _OriginalSuppress:
    _i2d_resizer.SuppressStdoutStderr = _SuppressUnlessOurs


@lru_cache(maxsize=16)
def _resizer(cfg: ImageConfig) -> _i2d_resizer.Resizer:
    # Size and aspect checks happen here, on the header, before decoding; the
    # Resizer only resizes and encodes.
    return _i2d_resizer.Resizer(
        image_size=cfg.image_size,
        resize_mode=cfg.resize_mode,
        resize_only_if_bigger=cfg.resize_only_if_bigger,
        encode_quality=cfg.encode_quality,
        encode_format="jpg",
    )


def _resize(rgb: Image.Image, cfg: ImageConfig) -> tuple[bytes, int, int]:
    bmp = io.BytesIO()
    rgb.save(bmp, format="BMP")
    bmp.seek(0)
    _OURS.active = True
    try:
        jpeg, width, height, _, _, err = _resizer(cfg)(bmp)
    finally:
        _OURS.active = False
    if err is not None or not jpeg:
        raise _ImageDrop("resize_failed", str(err))
    return jpeg, width, height


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


def _to_rgb_or_l(im: Image.Image) -> Image.Image:
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


def _process(data: bytes, cfg: ImageConfig, flags: dict) -> ProcessedImage:
    if not data:
        raise _ImageDrop("empty")
    im = _open(data, cfg)
    flags["animated"] = animated = bool(getattr(im, "is_animated", False))
    ow, oh = im.size  # from the header: full size even if the JPEG is drafted
    # Geometry from the header first: cheap drops never pay for a decode.
    _check_geometry(ow, oh, cfg)
    im = _decode(im, cfg)
    decoded_size = im.size
    try:
        # Browsers honour EXIF orientation, so the stored image must be upright too.
        im = ImageOps.exif_transpose(im)
    except Exception as err:  # noqa: BLE001 - a broken EXIF block is the file's problem
        raise _ImageDrop("corrupt", f"bad EXIF: {err}") from None
    if im.size != decoded_size:  # rotated by 90 degrees: original size as displayed
        ow, oh = oh, ow
    im = _to_rgb_or_l(im)
    jpeg, width, height = _resize(im, cfg)
    return ProcessedImage(
        ok=True,
        reason=None,
        jpeg=jpeg,
        width=width,
        height=height,
        original_width=ow,
        original_height=oh,
        sha256=sha256_hex(jpeg),
        # Of the stored JPEG as decoded, so anyone can recompute it from a shard.
        phash=phash64(Image.open(io.BytesIO(jpeg))),
        animated=animated,
    )


def process_image(data: bytes, cfg: ImageConfig, source: str = "") -> ProcessedImage:
    """Validate, resize and encode one image. Never raises; `source` (the URL) only
    goes into log messages."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone in this process switched on Pillow's lenient mode; truncated
        # images would then pass as half-grey pictures. Say so once.
        _warn_lenient_once()
    flags = {"animated": False}
    try:
        return _process(data, cfg, flags)
    except _ImageDrop as drop:
        log.debug("image dropped %s: %s", source or "<bytes>", drop)
        return ProcessedImage(ok=False, reason=drop.reason, animated=flags["animated"])
    except Exception as err:  # noqa: BLE001 - the contract is: never raise
        log.warning("image dropped %s: unexpected %s: %s", source or "<bytes>", type(err).__name__, err)
        return ProcessedImage(ok=False, reason="corrupt", animated=flags["animated"])


@lru_cache(maxsize=1)
def _warn_lenient_once() -> None:
    log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images will not be detected")
