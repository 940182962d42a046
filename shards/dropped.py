"""What the filters removed: the one definition of ``OUTPUT/dropped/``.

With ``--keep-dropped`` the jobs keep, beside their shards, the victims of
every filter (datatrove's exclusion writer), so a threshold can be judged by
looking at what it removes (``python -m shards.browse OUTPUT`` shows them per
reason)::

    OUTPUT/dropped/index.json                  {"reasons": {REASON: {"kept", "files"}}, "run_id",
                                                "max_per_reason"}
    OUTPUT/dropped/REASON-000000.tar           webdataset tars, one series per reason
        KEY.json   a victim record (below)
        KEY.jpg    a thumbnail (<= THUMB_SIDE px) when the victim is an image we had bytes of

``REASON`` is the counter's name without ``drop_`` (``paragraph_too_few_words``,
``image_url_pattern``, ``document_too_few_images``, ``caption_generic`` ...), so
the browser can put each victim beside its count in ``stats.json``.

A victim record: ``{"reason", "what": document|paragraph|image|caption|pair|video|page,
"url", "page_url", "text" (at most MAX_TEXT characters; ``text_chars`` gives the
full length when cut), "source": {"file", "offset"}, "details": {...}}`` (what the
filter looked at: declared sizes, alt, word counts, language, the fetch or
decode failure).  Records are small by construction (capped text, thumbnails
not images), so carrying them through a job costs little; with the flag off
they are never built.
"""
from __future__ import annotations

import io

from .schema import make_key

DIR = "dropped"
INDEX = "index.json"
MAX_TEXT = 2000           # characters of a victim's text kept
THUMB_SIDE = 160          # longest side of a victim thumbnail
THUMB_MAX_PIXELS = 50_000_000  # no thumbnail of a decompression bomb
DEFAULT_MAX_PER_REASON = 1000
WHATS = ("document", "paragraph", "image", "caption", "pair", "video", "page")


def victim(reason: str, what: str, url: str | None = None, page_url: str | None = None,
           text: str | None = None, source: dict | None = None, thumb: bytes | None = None,
           index: int | str = "", **details) -> dict:
    """A victim as a webdataset sample (``__key__``, ``json``, optional ``jpg``).

    The key is derived from the content (reason, page, url, index, text), so a
    rerun keeps the same victims under the same keys."""
    if what not in WHATS:
        raise ValueError(f"victim kind {what!r}: choose from {WHATS}")
    rec = {"reason": reason, "what": what, "url": url, "page_url": page_url,
           "details": {k: v for k, v in details.items() if v is not None}}
    if source:
        rec["source"] = source
    if text is not None:
        rec["text"] = text[:MAX_TEXT]
        if len(text) > MAX_TEXT:
            rec["text_chars"] = len(text)
    key = make_key(reason, page_url or "", url or "", index, (text or "")[:200])
    sample = {"__key__": key, "json": rec}
    if thumb:
        sample["jpg"] = thumb
    return sample


def thumbnail(data: bytes, side: int = THUMB_SIDE) -> bytes | None:
    """A small JPEG of any image Pillow can open, or None (undecodable,
    truncated, a bomb): a victim's picture is a courtesy, never a failure."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > THUMB_MAX_PIXELS:
                return None
            im.draft("RGB", (side, side))
            # (not LOAD_TRUNCATED_IMAGES: a process-wide switch the image stage relies on)
            im.load()
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=80)
            return buf.getvalue()
    except Exception:
        return None


def file_name(reason: str, index: int) -> str:
    from .schema import shard_name

    return shard_name(reason, index)


def read_index(out_dir: str) -> dict | None:
    """``OUTPUT/dropped/index.json``, or None when the job kept no victims."""
    from .writer import join, read_stats

    return read_stats(join(join(out_dir, DIR), INDEX))
