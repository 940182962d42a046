"""Applying the eval index to training samples: pure functions the jobs call.

``action``: ``"drop"`` (default) removes matched images (and, in m3w, their
``<image>`` position) and text-contaminated samples; ``"tag"`` keeps
everything and returns the matches for the job to record in the sample json.

The m3w helper works on a simple document form, ``{"nodes": [str | {"phash":
..., "verify_hash": ..., "url": ...}, ...]}`` in DOM order (a ``str`` is a text
run, a dict an image); other keys are passed through.

An image is matched by its phash and its verify hash (both of the stored JPEG,
as ``pipeline.images`` records them: ``ProcessedImage.phash`` /
``.verify_hash``): a candidate found only through a crop view of an eval image
stands only when the two verify hashes agree (``EvalIndex.match_images``).
Every caller names the verify hash: the hex digits, a function that computes
them (``stored_verify_hash``: called only when the image has a candidate that
needs verifying, which few images have, so a job need not hash every image
twice), or None (an image record from before the image stage stored it):
that image's crop-view candidates stand unverified, as all of them did
before 2026-12-04: more drops, never fewer.
"""
from __future__ import annotations

import io
from typing import Callable, Union

from dedup.index import EvalIndex, Match

# a verify hash, a function giving it (called at most once, only when needed), or None
VerifyHash = Union[str, None, Callable[[], Union[str, None]]]


def stored_verify_hash(jpeg: bytes) -> Callable[[], str]:
    """The verify hash of a stored JPEG, computed when called: the same bits the
    image stage stores (``fingerprints.image_hashes`` of the JPEG as decoded)."""
    def compute() -> str:
        from PIL import Image

        from dedup.fingerprints import verify_hash

        return verify_hash(Image.open(io.BytesIO(jpeg)))
    return compute

ACTIONS = ("drop", "tag")


def image_matches(index: EvalIndex, phash: str | None, url: str | None, *,
                  verify_hash: VerifyHash) -> list[Match]:
    """Matches of one image by its hashes (``verify_hash``: see the module
    docstring) and by its URL."""
    if callable(verify_hash):
        verify_hash = verify_hash() if phash and index.needs_verify_hash(phash) else None
    out = index.match_image(phash, verify_hash) if phash else []
    return out + (index.match_url(url) if url else [])


def filter_m3w_document(doc: dict, index: EvalIndex, action: str = "drop"
                        ) -> tuple[dict | None, list[tuple[int, Match]]]:
    """Returns (document or None, [(node position, match)]).

    drop: images matching an eval image (phash or URL) are removed; if the
    text is contaminated (n-gram over all text nodes in order, exact node or
    sentence: ``EvalIndex.match_texts``), or no image is left, the document
    is dropped (None).  tag: the document comes back unchanged.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    text_pos = [pos for pos, node in enumerate(doc["nodes"]) if isinstance(node, str)]
    text_matches = [(text_pos[k], m) for k, m in
                    index.match_texts([doc["nodes"][pos] for pos in text_pos])]
    text_hit = bool(text_matches)
    by_pos: dict[int, list[Match]] = {}
    for pos, m in text_matches:
        by_pos.setdefault(pos, []).append(m)
    matches: list[tuple[int, Match]] = []
    keep_nodes, had_images = [], False
    for pos, node in enumerate(doc["nodes"]):
        if isinstance(node, str):
            matches.extend((pos, m) for m in by_pos.get(pos, ()))
            keep_nodes.append(node)
            continue
        had_images = True
        ms = image_matches(index, node.get("phash"), node.get("url"),
                           verify_hash=node.get("verify_hash"))
        matches.extend((pos, m) for m in ms)
        if not ms:
            keep_nodes.append(node)
    if action == "tag":
        return doc, matches
    if text_hit:
        return None, matches
    if had_images and not any(isinstance(n, dict) for n in keep_nodes):
        return None, matches
    return dict(doc, nodes=keep_nodes), matches


def filter_pair(caption: str, phash: str | None, url: str | None, index: EvalIndex,
                action: str = "drop", *, verify_hash: VerifyHash) -> tuple[bool, list[Match]]:
    """(keep?, matches) for an image-text pair (``verify_hash``: the stored
    image's, see the module docstring)."""
    ms = image_matches(index, phash, url, verify_hash=verify_hash) + index.match_text(caption)
    return (action == "tag" or not ms), ms


def filter_video(caption: str, frame_phashes: list[str], index: EvalIndex,
                 action: str = "drop") -> tuple[bool, list[Match]]:
    """(keep?, matches) for a video-text pair (frames at 1 FPS)."""
    ms = index.match_video(frame_phashes) + index.match_text(caption)
    return (action == "tag" or not ms), ms


def match_record(match: Match, train_key: str, train_url: str | None = None,
                 train_image: str | None = None, train_text: str | None = None) -> dict:
    """One line of the matches jsonl that ``dedup.report`` reads.

    ``train_image``: a local path, or ``SHARD.tar#MEMBER`` for an image inside
    a written shard."""
    rec = {"train_key": train_key, "train_url": train_url, "train_image": train_image}
    if train_text is not None:
        rec["train_text"] = train_text[:500]
    rec.update(match.to_json())
    return rec
