"""Captions for image-text (and video-text) pairs: where they come from on a
page, and the filters that drop bad ones.

Sources, per image of a page (``caption_source`` in the sample json):

- ``alt``: the ``alt`` attribute (ALIGN: the alt text as crawled);
- ``figcaption``: the ``<figcaption>`` of the image's ``<figure>`` (LTIP-like,
  the page's own description of the picture);
- ``title``: the image's ``title`` attribute;
- ``context``: the sentence(s) of the text block right after the image (or
  right before, when nothing follows), skipping the figcaption block that
  extraction also leaves in the text stream;
- ``list``: the caption column of a url list (pipeline.lists).

Filters, each a reason counted by the jobs as ``drop_caption_<reason>``:
``empty``, ``url`` (the text is a URL), ``filename`` (``IMG_1234.jpg``),
``generic`` (a single generic word such as "image"), ``markup``
(the TeX source of Wikipedia math images, ``{{templates}}``, HTML tags), ``too_few_words``,
``too_many_words``, ``language`` / ``language_confidence`` (as in m3w, with
FilterConfig's ``languages`` and ``min_lang_confidence``), and
``repeated_on_host``: the same caption on at least ``max_per_host`` distinct
images of one site (ALIGN drops alt texts shared by more than 10 images) --
that one needs a count over the whole corpus, so it is a keyed Beam count in
pipeline.pairs, and only the threshold lives here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .extract import ImageRef
from .filters import count_words, words

SOURCES = ("alt", "figcaption", "title", "context", "list")


@dataclass(frozen=True)
class CaptionConfig:
    # Which page sources to use, in order of preference.
    sources: tuple[str, ...] = ("figcaption", "alt", "title", "context")
    # all: one pair per passing (image, source); first: only the first passing source per image.
    pick: str = "first"
    min_words: int = 3        # ALIGN: fewer than 3 unigrams is too short
    max_words: int = 64       # LTIP descriptions are longer than alt texts; 64 is Flamingo's pair token budget
    context_max_words: int = 48  # sentences taken from the text next to an image
    drop_filenames: bool = True
    drop_urls: bool = True
    generic_words: tuple[str, ...] = ("image", "images", "photo", "photos", "picture", "pic",
                                      "logo", "icon", "img", "thumbnail", "thumb", "banner",
                                      "placeholder", "untitled", "graphic", "figure", "null",
                                      "undefined", "none", "spacer", "avatar", "photograph")
    max_per_host: int = 10    # same caption on >= this many distinct images of one host: boilerplate


_MEDIA_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif|mp4|webm|mov)"
_FILENAME = re.compile(
    rf"^[\w\-.()\[\] ]+\.{_MEDIA_EXT}$"                 # foo_bar-1.jpg, IMG 0001.JPG
    r"|^(?:img|dsc|dscn|dscf|pxl|dcim|photo|image|screenshot|sam|gopr|mvimg|vid)"
    r"[\s_\-]*\d{2,}[\w\-]*$",                            # IMG_1234, DSC01234, PXL_2023...
    re.IGNORECASE)
_URL = re.compile(r"^(?:[a-z][a-z0-9+.\-]*://|www\.)\S+$|^\S+\.(?:com|org|net|html?|php)(?:/\S*)?$",
                  re.IGNORECASE)
# TeX source as alt (Wikipedia's rendered-math images), template or tag leftovers.
_MARKUP = re.compile(r"\\displaystyle|^\{\\|\{\{.*\}\}|</?[a-z][a-z0-9]*[\s>/]", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def normalize(text: str) -> str:
    """Whitespace collapsed; the form captions are stored, compared and counted in."""
    return " ".join((text or "").split())


def caption_drop_reason(text: str, cfg: CaptionConfig) -> str | None:
    """The static filters (no language id, no corpus count)."""
    text = normalize(text)
    if not text:
        return "empty"
    if cfg.drop_urls and _URL.match(text):
        return "url"
    if cfg.drop_filenames and _FILENAME.match(text):
        return "filename"
    if _MARKUP.search(text):
        return "markup"
    ws = words(text)
    if len(ws) == 1 and _PUNCT.sub("", ws[0]).lower() in cfg.generic_words:
        return "generic"
    n = len(ws)
    if n < cfg.min_words:
        return "too_few_words"
    if n > cfg.max_words:
        return "too_many_words"
    return None


def leading_sentences(text: str, max_words: int) -> str:
    """Whole sentences from the start of ``text`` while they fit in ``max_words``
    (at least one sentence; a first sentence longer than that is returned whole,
    for the length filter to judge)."""
    out, n = [], 0
    for sent in _SENTENCE_END.split(normalize(text)):
        k = count_words(sent)
        if out and n + k > max_words:
            break
        out.append(sent)
        n += k
    return " ".join(out)


def _context(nodes: list, i: int, caption: str, max_words: int) -> str:
    """Text next to image ``nodes[i]``: the block after it (not its own
    figcaption, not past the next image), else the block before it."""
    for j in (i + 1, i + 2):
        if j >= len(nodes) or isinstance(nodes[j], ImageRef):
            break
        if caption and normalize(nodes[j]) == caption:
            continue
        return leading_sentences(nodes[j], max_words)
    if i > 0 and not isinstance(nodes[i - 1], ImageRef):
        prev = normalize(nodes[i - 1])
        if prev != caption:
            # The sentence closest to the image is the last one of the block before.
            sents = _SENTENCE_END.split(prev)
            return sents[-1]
    return ""


def page_captions(nodes: list, cfg: CaptionConfig) -> list[tuple[int, str, str]]:
    """(node index, source, caption) for every image of an extracted page and
    every configured source that has text, in ``cfg.sources`` order per image.
    Filtering is the caller's (so it can count each drop)."""
    out = []
    for i, node in enumerate(nodes):
        if not isinstance(node, ImageRef):
            continue
        cap = normalize(node.caption)
        for source in cfg.sources:
            if source == "alt":
                text = normalize(node.alt)
            elif source == "figcaption":
                text = cap
            elif source == "title":
                text = normalize(node.title)
            elif source == "context":
                text = _context(nodes, i, cap, cfg.context_max_words)
            else:
                raise ValueError(f"unknown caption source {source!r} (choose from {SOURCES[:4]})")
            if text:
                out.append((i, source, text))
    return out
