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

from .decode import decode_html
from .extract import ExtractConfig, ImageRef, extract_page
from .filters import (FilterConfig, LangId, count_words, document_drop_reason,
                      image_drop_reason, language_drop_reason, paragraph_drop_reason)
from .read import Record

log = logging.getLogger(__name__)


def media_key(url: str) -> str:
    """The key an image is joined on (archived copy ↔ reference): URL sans fragment."""
    return urldefrag(url)[0]


@dataclass
class Outcome:
    """What one step produced, and every drop it made, by reason; with
    ``keep`` (--keep-dropped) also the victims (shards.dropped.victim)."""

    value: object = None
    drops: dict = field(default_factory=dict)
    keep: bool = False
    victims: list = field(default_factory=list)

    def drop(self, reason: str, n: int = 1, **victim) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n
        if self.keep and victim:
            from shards.dropped import victim as make_victim

            self.victims.append(make_victim(reason, **victim))


def _doc_text(nodes: list[dict]) -> str:
    return "\n\n".join(n["text"] for n in nodes if "text" in n)


def candidate_document(rec: Record, fcfg: FilterConfig, ecfg: ExtractConfig,
                       langid: LangId, keep: bool = False) -> Outcome:
    """Decode, extract and filter one page; ``value`` is the candidate or None;
    ``keep``: also collect the victims (--keep-dropped)."""
    out = Outcome(keep=keep)
    src = {"file": rec.source, "offset": rec.offset}
    html, _how = decode_html(rec.body, rec.charset)
    page = extract_page(html, rec.url, ecfg)
    for reason, n in page.dropped.items():
        out.drop(f"node_{reason}", n)
    nodes: list[dict] = []
    seen_images: set[str] = set()
    texts: list[str] = []
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
            n_images += 1
        else:
            reason = paragraph_drop_reason(node, fcfg)
            if reason:
                out.drop(f"paragraph_{reason}", what="paragraph", page_url=rec.url, text=node,
                         source=src, index=pos, words=count_words(node) if keep else None)
                continue
            nodes.append({"text": node})
            texts.append(node)
    text = "\n".join(texts)
    num_words = count_words(text)
    # The minimum image count is checked again after fetching; the maximum is
    # checked here so a page with 10,000 images never triggers 10,000 fetches.
    reason = document_drop_reason(num_words, n_images, fcfg)
    if reason:
        out.drop(f"document_{reason}", what="document", url=rec.url, text=_doc_text(nodes),
                 source=src, title=page.title, words=num_words, images=n_images)
        return out
    lang, score = langid(text)
    reason = language_drop_reason(lang, score, fcfg)
    if reason:
        out.drop(f"document_{reason}", what="document", url=rec.url, text=_doc_text(nodes),
                 source=src, title=page.title, words=num_words, images=n_images, lang=lang,
                 lang_score=round(score, 4))
        return out
    out.value = {
        "key": make_key(rec.url),
        "url": rec.url,
        "title": page.title,
        "lang": lang,
        "lang_score": round(score, 4),
        "source": {"file": rec.source, "offset": rec.offset},
        "nodes": nodes,
        "num_words": num_words,
    }
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
    "original_height", "sha256", "phash", "via"}`` or ``{"ok": False, "reason"}``.
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


def eval_matches(doc: dict, images: dict[int, dict], index) -> tuple[dict, list]:
    """Matches of a document against the eval index: ({image index: [Match]},
    [(text, Match)]).  Images are matched by the stored phash and by URL."""
    from dedup.apply import image_matches

    by_image: dict[int, list] = {}
    # n-grams over all text nodes in order (a gram may span two paragraphs)
    text_nodes = [node["text"] for node in doc["nodes"] if "text" in node]
    texts: list = [(text_nodes[pos], m) for pos, m in index.match_texts(text_nodes)]
    for node in doc["nodes"]:
        if "text" in node:
            continue
        res = images.get(node["image"])
        if res and res["ok"]:
            ms = image_matches(index, res["phash"], node["url"])
            if ms:
                by_image[node["image"]] = ms
    return by_image, texts
