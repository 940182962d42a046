"""Page records → candidate M3W documents, and candidates + processed images →
samples.  Pure functions (no Beam) so they are tested directly; the Beam job
in :mod:`pipeline.m3w` wires them up.

A candidate document is a plain dict::

    {"key", "url", "title", "lang", "lang_score", "source": {"file", "offset"},
     "nodes": [{"text": ...} | {"image": i, "url", "alt", "title", "caption"}]}

where ``i`` numbers the document's candidate images in DOM order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urldefrag

from shards.schema import STAND_IN, build_m3w_sample, make_key, serialize_interleaved

from .decode import UTF8_AS_IS, decode_html
from .extract import ExtractConfig, ImageRef, extract_page
from .filters import (FilterConfig, LangId, count_words, document_drop_reason,
                      image_drop_reason, judge_blocks, language_drop_reason, split_block)
from .read import Record

log = logging.getLogger(__name__)


def media_key(url: str) -> str:
    """The key an image is joined on (archived copy ↔ reference): URL sans fragment."""
    return urldefrag(url)[0]


@dataclass
class Outcome:
    """What one step produced, and every drop it made, by reason; with
    ``keep`` (--keep-dropped) also the victims (shards.dropped.victim).
    ``more``: further values of the step (the later parts of a document
    split at ``doc_max_words``); `values()` gives them all. ``extra_parts``:
    how many more parts than one the page was cut into, kept or dropped (so
    pages + extra parts = candidates + documents dropped)."""

    value: object = None
    drops: dict = field(default_factory=dict)
    keep: bool = False
    victims: list = field(default_factory=list)
    more: list = field(default_factory=list)
    extra_parts: int = 0

    def drop(self, reason: str, n: int = 1, **victim) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n
        if self.keep and victim:
            from shards.dropped import victim as make_victim

            self.victims.append(make_victim(reason, **victim))

    def values(self) -> list:
        return ([] if self.value is None else [self.value]) + self.more


def _doc_text(nodes: list[dict]) -> str:
    return "\n\n".join(n["text"] for n in nodes if "text" in n)


GALLERY_WORDS_PER_IMAGE = 5


def split_document(nodes: list[dict], counts: list[int], max_words: int,
                   max_images: int, min_images: int = 0) -> list[list[dict]]:
    """A document over ``max_words`` words or ``max_images`` images cut,
    between nodes, into the fewest consecutive parts within both, of about
    equal size; text and images stay in the order the page has them.
    ``counts[i]`` is the word count of ``nodes[i]`` (None for an image).
    OBELICS drops such a document whole; a long or richly illustrated
    article is the best a page has. Each part then meets the document
    filters on its own, and a kept part never asks for more than
    ``max_images`` fetches. A gallery (fewer than GALLERY_WORDS_PER_IMAGE
    words per image) is not split for its images: OBELICS' maximum is meant
    for it, and it stays whole (and is dropped as too_many_images).

    With ``min_images`` (M3W: 1) a part with fewer images is dropped by the
    document filters; when the balanced cut leaves such a part, the cut
    points are chosen again to keep the most words in parts that have their
    images (`_image_aware_split`): an article of 5,000 words and three
    pictures keeps three parts around its pictures, not one part and two
    dropped."""
    words = sum(c for c in counts if c)
    images = sum(1 for c in counts if c is None)
    by_images = (-(-images // max_images)
                 if max_images > 0 and words >= GALLERY_WORDS_PER_IMAGE * images else 1)
    by_words = -(-words // max_words) if max_words > 0 else 1
    k = max(by_words, by_images, 1)
    if k == 1:
        return [nodes]
    # parts of about equal size in what forced the split
    size = (lambda n, m: n / words) if by_words >= by_images else (lambda n, m: m / images)
    parts, cur, n, m = [], [], 0, 0
    for node, c in zip(nodes, counts):
        w, i = (0, 1) if c is None else (c, 0)
        if cur and (w or i):
            full = n + w > max_words or (by_images > 1 and m + i > max_images)
            if full or (size(n, m) >= 1 / k and len(parts) < k - 1):
                parts.append(cur)
                cur, n, m = [], 0, 0
        cur.append(node)
        n += w
        m += i
    parts.append(cur)
    if min_images > 0:
        is_image = {id(node): c is None for node, c in zip(nodes, counts)}
        if any(sum(is_image[id(x)] for x in p) < min_images for p in parts):
            better = _image_aware_split(counts, max_words,
                                        max_images if by_images > 1 else 0, min_images)
            if better is not None:
                return [nodes[i:j] for i, j in better]
    return parts


def _image_aware_split(counts: list, max_words: int, max_images: int,
                       min_images: int) -> list[tuple[int, int]] | None:
    """Node ranges [i, j) cutting a document so that the most words are in
    parts with at least ``min_images`` images, every part within
    ``max_words`` words (and ``max_images`` images when non-zero; a single
    node over them is a part of its own); ties go to fewer parts. Dynamic
    programming over the cut positions: the nodes times the nodes of one
    part, and only for a long page whose balanced cut left a part without
    its images. None when no part can keep any words."""
    n = len(counts)
    words = [0] * (n + 1)
    imgs = [0] * (n + 1)
    for i, c in enumerate(counts):
        words[i + 1] = words[i] + (c or 0)
        imgs[i + 1] = imgs[i] + (c is None)
    none = (-1, 0)
    best = [none] * (n + 1)  # (words kept, -parts) of the best cut of the first j nodes
    back = [0] * (n + 1)
    best[0] = (0, 0)
    for j in range(1, n + 1):
        bj, bi = none, 0
        i = j - 1
        while i >= 0:
            w = words[j] - words[i]
            k = imgs[j] - imgs[i]
            if j - i > 1 and (w > max_words or (max_images and k > max_images)):
                break
            if best[i] != none:
                cand = (best[i][0] + (w if k >= min_images else 0), best[i][1] - 1)
                if cand > bj:
                    bj, bi = cand, i
            i -= 1
        best[j], back[j] = bj, bi
    if best[n][0] <= 0:
        return None
    cuts, j = [], n
    while j > 0:
        cuts.append((back[j], j))
        j = back[j]
    return cuts[::-1]


def candidate_document(rec: Record, fcfg: FilterConfig, ecfg: ExtractConfig,
                       langid: LangId, keep: bool = False) -> Outcome:
    """Decode, extract and filter one page; ``value`` is the candidate or None
    (a page over ``doc_max_words`` or ``doc_max_images`` gives several:
    ``value`` and ``more``, each judged by the document filters on its own); ``keep``: also collect the
    victims (--keep-dropped)."""
    out = Outcome(keep=keep)
    src = {"file": rec.source, "offset": rec.offset}
    html, how = decode_html(rec.body, rec.charset)
    page = extract_page(html, rec.url, ecfg,
                        utf8=rec.body if how in UTF8_AS_IS and isinstance(rec.body, bytes) else None)
    for reason, n in page.dropped.items():
        out.drop(f"node_{reason}", n)
    roles = page.roles or [None] * len(page.nodes)
    # Text blocks, over-long ones cut to size, with their context.
    # (A block has at most as many words as characters: only a long one is counted first.)
    blocks: list[tuple[int, str]] = []
    block_roles: list = []
    for pos, (node, role) in enumerate(zip(page.nodes, roles)):
        if isinstance(node, str):
            pieces = ([node] if len(node) <= fcfg.para_max_words
                      or count_words(node) <= fcfg.para_max_words
                      else split_block(node, fcfg.para_max_words))
            for piece in pieces:
                blocks.append((pos, piece))
                block_roles.append(role)
    reasons, block_words = judge_blocks([t for _, t in blocks], block_roles, fcfg)
    judged: dict[int, list] = {}
    for (pos, text), reason, n in zip(blocks, reasons, block_words):
        judged.setdefault(pos, []).append((text, reason, n))
    nodes: list[dict] = []
    counts: list[int] = []
    seen_images: set[str] = set()
    n_images = 0
    for pos, node in enumerate(page.nodes):
        if isinstance(node, ImageRef):
            reason = image_drop_reason(node.url, node.width, node.height, fcfg)
            if reason is None and media_key(node.url) in seen_images:
                reason = "duplicate_in_document"
            if reason:
                out.drop(f"image_{reason}", what="image", url=node.url, page_url=rec.url,
                         source=src, index=pos, alt=node.alt, width=node.width,
                         height=node.height)
                continue
            seen_images.add(media_key(node.url))
            nodes.append({"image": n_images, "url": node.url, "alt": node.alt,
                          "title": node.title, "caption": node.caption})
            counts.append(None)
            n_images += 1
            continue
        for text, reason, n in judged[pos]:
            if reason:
                out.drop(f"paragraph_{reason}", what="paragraph", page_url=rec.url, text=text,
                         source=src, index=pos, words=n if keep else None)
            else:
                nodes.append({"text": text})
                counts.append(n)
    text = "\n".join(n["text"] for n in nodes if "text" in n)
    parts = split_document(nodes, counts, fcfg.doc_max_words, fcfg.doc_max_images,
                           fcfg.doc_min_images)
    out.extra_parts = len(parts) - 1
    lang = score = None
    words_of = {id(node): c for node, c in zip(nodes, counts)}
    for i, part in enumerate(parts):
        num_words = sum(words_of[id(n)] for n in part if "text" in n)
        n_img = sum(1 for n in part if "image" in n)
        # The minimum image count is checked again after fetching; the maximum
        # is checked here (a part of a gallery page without text is dropped
        # here, before it asks for any fetch).
        reason = document_drop_reason(num_words, n_img, fcfg)
        if reason:
            out.drop(f"document_{reason}", what="document", url=rec.url, text=_doc_text(part),
                     source=src, title=page.title, words=num_words, images=n_img)
            continue
        if lang is None:  # once per page: every part is in the page's language
            lang, score = langid(text)
        reason = language_drop_reason(lang, score, fcfg)
        if reason:
            out.drop(f"document_{reason}", what="document", url=rec.url, text=_doc_text(part),
                     source=src, title=page.title, words=num_words, images=n_img, lang=lang,
                     lang_score=round(score, 4))
            continue
        if n_img != n_images:  # a part numbers its images from 0
            first = next((n["image"] for n in part if "image" in n), 0)
            part = [dict(n, image=n["image"] - first) if "image" in n else n for n in part]
        doc = {
            "key": make_key(rec.url) if i == 0 else make_key(rec.url, i),
            "url": rec.url,
            "title": page.title,
            "lang": lang,
            "lang_score": round(score, 4),
            "source": {"file": rec.source, "offset": rec.offset},
            "nodes": part,
            "num_words": num_words,
        }
        if len(parts) > 1:
            doc["part"] = [i, len(parts)]
        if out.value is None:
            out.value = doc
        else:
            out.more.append(doc)
    return out


def image_requests(doc: dict):
    """(media_key(url), (doc key, image index)) for every candidate image."""
    for node in doc["nodes"]:
        if "image" in node:
            yield media_key(node["url"]), (doc["key"], node["image"])


def assemble_sample(doc: dict, images: dict[int, dict], fcfg: FilterConfig,
                    dedup_drop: set[int] = frozenset(), dedup_tags: dict | None = None,
                    frequent: set[str] = frozenset(), keep: bool = False) -> Outcome:
    """Candidate + processed images (index → result dict) → webdataset sample.

    A result dict is ``{"ok": True, "jpeg", "width", "height", "original_width",
    "original_height", "sha256", "phash", "via"}`` or ``{"ok": False,
    "reason"}``.
    Failed images lose their ``<image>`` tag; a document left with fewer than
    ``doc_min_images`` images is dropped.  ``dedup_drop`` names image indices
    that matched the eval index (dropped like failures); ``dedup_tags`` maps an
    index to match records kept in its json instead (``--dedup-action tag``);
    ``frequent`` holds image hashes seen in too many documents (OBELICS' rule).
    ``keep``: also collect the victims (a failed image's ``thumb``, set by the
    image stage under --keep-dropped, becomes its thumbnail).
    """
    out = Outcome(keep=keep)

    def image_victim(node, res, jpeg=None):
        if not keep:
            return {}
        from shards.dropped import thumbnail

        details = {k: res.get(k) for k in ("width", "height", "original_width",
                                            "original_height", "via")}
        return dict(what="image", url=node["url"], page_url=doc["url"], source=doc["source"],
                    index=node["image"], alt=node["alt"], caption=node["caption"],
                    thumb=thumbnail(jpeg) if jpeg else res.get("thumb"), **details)

    chunks: list[str | None] = []
    metas: list[dict] = []
    blobs: list[bytes] = []
    for node in doc["nodes"]:
        if "text" in node:
            chunks.append(node["text"])
            continue
        i = node["image"]
        res = images.get(i)
        if res is None:
            out.drop("image_missing_result")
            continue
        if not res["ok"]:
            out.drop(f"image_{res['reason']}", **image_victim(node, res))
            continue
        if i in dedup_drop:
            out.drop("image_eval_duplicate", **image_victim(node, res, res["jpeg"]))
            continue
        if res["phash"] in frequent:
            out.drop("image_too_frequent", **image_victim(node, res, res["jpeg"]))
            continue
        chunks.append(None)
        meta = {"url": node["url"], "alt": node["alt"], "title": node["title"],
                "caption": node["caption"], "sha256": res["sha256"], "phash": res["phash"],
                "width": res["width"], "height": res["height"],
                "original_width": res["original_width"],
                "original_height": res["original_height"], "via": res["via"]}
        if res.get(STAND_IN):
            meta[STAND_IN] = True
        if dedup_tags and i in dedup_tags:
            meta["eval_matches"] = dedup_tags[i]
        metas.append(meta)
        blobs.append(res["jpeg"])
    if len(metas) < fcfg.doc_min_images:
        out.drop("document_no_images_left", **(dict(
            what="document", url=doc["url"], text=_doc_text(doc["nodes"]), source=doc["source"],
            title=doc["title"], words=doc["num_words"], lang=doc["lang"],
            images=sum(1 for n in doc["nodes"] if "image" in n)) if keep else {}))
        return out
    meta = {
        "text": serialize_interleaved(chunks),
        "images": metas,
        "url": doc["url"],
        "title": doc["title"],
        "source": doc["source"],
        "lang": doc["lang"],
        "lang_score": doc["lang_score"],
        "num_words": doc["num_words"],
    }
    out.value = build_m3w_sample(doc["key"], meta, blobs)
    return out


def image_result(processed, via: str, stand_in: bool = False) -> dict:
    """A ProcessedImage as the small dict carried through the job."""
    if not processed.ok:
        return {"ok": False, "reason": processed.reason}
    res = {"ok": True, "jpeg": processed.jpeg, "width": processed.width,
           "height": processed.height, "original_width": processed.original_width,
           "original_height": processed.original_height, "sha256": processed.sha256,
           "phash": processed.phash, "via": via}
    if stand_in:
        res[STAND_IN] = True
    return res


def eval_matches(doc: dict, images: dict[int, dict], index,
                 on_verify_hash=None) -> tuple[dict, list]:
    """Matches of a document against the eval index: ({image index: [Match]},
    [(text, Match)]).  Images are matched by the stored phash and by URL; a
    crop-view candidate stands only if confirmed by the verify hash, computed
    from the stored JPEG only for an image that has such a candidate
    (``dedup.apply.stored_verify_hash``; ``on_verify_hash(image index)`` is
    called each time: the job's counter)."""
    from dedup.apply import image_matches, stored_verify_hash

    def lazy(i, jpeg):
        def compute():
            if on_verify_hash is not None:
                on_verify_hash(i)
            return stored_verify_hash(jpeg)()
        return compute

    by_image: dict[int, list] = {}
    # n-grams over all text nodes in order (a gram may span two paragraphs)
    text_nodes = [node["text"] for node in doc["nodes"] if "text" in node]
    texts: list = [(text_nodes[pos], m) for pos, m in index.match_texts(text_nodes)]
    for node in doc["nodes"]:
        if "text" in node:
            continue
        res = images.get(node["image"])
        if res and res["ok"]:
            ms = image_matches(index, res["phash"], node["url"], verify_hash=lazy(node["image"], res["jpeg"]))
            if ms:
                by_image[node["image"]] = ms
    return by_image, texts
