"""The one definition of every sample kind written to shards.

Pipeline jobs build samples with these functions and the trainer reads them
back with them; nothing else in the project spells out a member name, a
field list or the ``<image>``/``<EOC>`` serialisation.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable, Sequence

IMAGE_TOKEN = "<image>"
EOC_TOKEN = "<EOC>"

KINDS = ("m3w", "pairs", "videos")

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class SchemaError(ValueError):
    """A sample that does not match its kind's schema."""


# ---------------------------------------------------------------- text format


def serialize_interleaved(chunks: Sequence[str | None]) -> str:
    """Serialise an interleaved document the way the Flamingo paper does.

    ``chunks`` is the document in DOM order: a ``str`` for a run of text, and
    ``None`` for an image position.  ``<EOC>`` goes before every image (it ends
    the chunk the image starts) and at the end of the document:

    >>> serialize_interleaved(["Pets!", None, "Puppy.", None, "Cat."])
    'Pets!<EOC><image>Puppy.<EOC><image>Cat.<EOC>'

    A document that opens with an image has no chunk to end before it, so it
    starts with ``<image>`` (which is also the pairs format,
    ``<image>caption<EOC>``).  Consecutive texts are joined by a blank line;
    empty texts are skipped.
    """
    out: list[str] = []
    pending: list[str] = []
    for chunk in chunks:
        if chunk is None:
            if pending:
                out.append("\n\n".join(pending))
                pending = []
            if out:
                out.append(EOC_TOKEN)
            out.append(IMAGE_TOKEN)
        else:
            text = chunk.strip()
            if IMAGE_TOKEN in text or EOC_TOKEN in text:
                # A page that literally contains our markers must not be able
                # to forge image positions; break the marker up.
                text = text.replace(IMAGE_TOKEN, "< image>").replace(EOC_TOKEN, "< EOC>")
            if text:
                pending.append(text)
    if pending:
        out.append("\n\n".join(pending))
    out.append(EOC_TOKEN)
    return "".join(out)


def serialize_pair(caption: str) -> str:
    """``<image>caption<EOC>``, the pairs (and videos) format."""
    return serialize_interleaved([None, caption])


def split_interleaved(text: str) -> list[str | None]:
    """Inverse of :func:`serialize_interleaved`: texts and ``None`` per image."""
    chunks: list[str | None] = []
    for i, part in enumerate(text.split(IMAGE_TOKEN)):
        if i > 0:
            chunks.append(None)
        part = part.replace(EOC_TOKEN, "\n\n").strip()
        if part:
            chunks.append(part)
    return chunks


def count_images(text: str) -> int:
    return text.count(IMAGE_TOKEN)


# ---------------------------------------------------------------- keys


def make_key(*parts: str | int) -> str:
    """A stable sample key from content (e.g. URL + position), never run order.

    Hex of a SHA-1 over the parts: safe as a tar member stem (no ``/``, no
    ``..``, no leading dot) and uniform, so it also drives shard assignment.
    """
    h = hashlib.sha1()
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:24]


def check_key(key: str) -> None:
    if not _KEY_RE.match(key) or key.startswith(".") or ".." in key:
        raise SchemaError(f"unsafe sample key {key!r}")


def shard_name(kind: str, index: int) -> str:
    return f"{kind}-{index:06d}.tar"


def shard_index_for_key(key: str, num_shards: int) -> int:
    """Deterministic shard assignment from the sample key."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) % max(1, num_shards)


# ---------------------------------------------------------------- samples


M3W_IMAGE_FIELDS = ("key", "url", "alt", "sha256", "phash", "width", "height")
# Not required: ``verify_hash`` (the 256-bit phash of the stored JPEG,
# dedup.fingerprints.verify_hash), on m3w image entries and pairs json of
# shards written on 2026-12-04 before the jobs stopped storing it (they now
# compute it from the stored JPEG only at the eval dedup step, where needed).
# Optional, on an m3w image entry, a pairs json or a videos json: ``true`` when
# the stored picture is NOT what its URL served but a stand-in (the bundled demo
# archives real photos under the URLs of images its saved pages never kept).
# Absent means the media is the resource as archived or fetched.
STAND_IN = "stand_in"
M3W_REQUIRED = ("text", "images", "url", "source", "lang")
PAIR_REQUIRED = ("url", "caption_source", "width", "height", "sha256", "phash")
VIDEO_REQUIRED = ("url", "duration", "fps", "frame_times")


def m3w_image_suffix(i: int) -> str:
    return f"{i}.jpg"


def frame_suffix(i: int) -> str:
    return f"{i}.jpg"


def build_m3w_sample(key: str, meta: dict, images: Sequence[bytes]) -> dict:
    """A webdataset sample dict for an M3W document.

    ``meta`` carries the json fields; ``images`` the JPEG bytes in the order of
    the ``<image>`` tags in ``meta['text']``.
    """
    meta = dict(meta)
    meta["images"] = [dict(im, key=str(i)) for i, im in enumerate(meta["images"])]
    sample = {"__key__": key, "json": meta}
    for i, data in enumerate(images):
        sample[m3w_image_suffix(i)] = data
    validate_sample("m3w", sample)
    return sample


def build_pair_sample(key: str, caption: str, meta: dict, image: bytes) -> dict:
    sample = {"__key__": key, "jpg": image, "txt": caption, "json": dict(meta)}
    validate_sample("pairs", sample)
    return sample


def build_video_sample(key: str, caption: str, meta: dict, frames: Sequence[bytes],
                       clip: bytes | None = None) -> dict:
    meta = dict(meta)
    meta.setdefault("num_frames", len(frames))
    sample = {"__key__": key, "txt": caption, "json": meta}
    for i, data in enumerate(frames):
        sample[frame_suffix(i)] = data
    if clip is not None:
        sample["mp4"] = clip
    validate_sample("videos", sample)
    return sample


def _numbered(sample: dict) -> list[int]:
    idx = []
    for k in sample:
        if k.endswith(".jpg") and k[:-4].isdigit():
            idx.append(int(k[:-4]))
    return sorted(idx)


def validate_sample(kind: str, sample: dict) -> None:
    """Raise :class:`SchemaError` naming the key and the problem."""
    key = sample.get("__key__", "")
    try:
        check_key(key)
        meta = sample.get("json")
        if not isinstance(meta, dict):
            raise SchemaError("missing or non-object json member")
        if kind == "m3w":
            for f in M3W_REQUIRED:
                if f not in meta:
                    raise SchemaError(f"json lacks field {f!r}")
            n_tags = count_images(meta["text"])
            if n_tags != len(meta["images"]):
                raise SchemaError(f"{n_tags} <image> tags but {len(meta['images'])} image entries")
            if not meta["text"].endswith(EOC_TOKEN):
                raise SchemaError("text does not end with <EOC>")
            for i, im in enumerate(meta["images"]):
                missing = [f for f in M3W_IMAGE_FIELDS if f not in im]
                if missing:
                    raise SchemaError(f"image {i} lacks {missing}")
                if im["key"] != str(i):
                    raise SchemaError(f"image {i} has key {im['key']!r}")
            if _numbered(sample) != list(range(len(meta["images"]))):
                raise SchemaError(
                    f"image members {_numbered(sample)} do not match {len(meta['images'])} images")
        elif kind == "pairs":
            for f in PAIR_REQUIRED:
                if f not in meta:
                    raise SchemaError(f"json lacks field {f!r}")
            if "jpg" not in sample or not sample["jpg"]:
                raise SchemaError("missing jpg member")
            if not isinstance(sample.get("txt"), str) or not sample["txt"].strip():
                raise SchemaError("missing or empty txt member")
        elif kind == "videos":
            for f in VIDEO_REQUIRED:
                if f not in meta:
                    raise SchemaError(f"json lacks field {f!r}")
            frames = _numbered(sample)
            if not frames or frames != list(range(len(frames))):
                raise SchemaError(f"frame members {frames} are not 0..n-1")
            if len(meta["frame_times"]) != len(frames):
                raise SchemaError(
                    f"{len(meta['frame_times'])} frame times but {len(frames)} frames")
        else:
            raise SchemaError(f"unknown kind {kind!r}")
    except SchemaError as e:
        raise SchemaError(f"{kind} sample {key!r}: {e}") from None


def decode_members(raw: dict) -> dict:
    """Turn a raw webdataset sample (bytes per member) into typed fields."""
    import json

    out = {}
    for k, v in raw.items():
        if k in ("json",) and isinstance(v, (bytes, bytearray)):
            out[k] = json.loads(v)
        elif k == "txt" and isinstance(v, (bytes, bytearray)):
            out[k] = v.decode("utf-8")
        else:
            out[k] = v
    return out


def iter_image_members(sample: dict) -> Iterable[tuple[int, bytes]]:
    for i in _numbered(sample):
        yield i, sample[f"{i}.jpg"]
