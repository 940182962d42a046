"""Node- and document-level filters, defaults from OBELICS.

Every threshold lives in :class:`FilterConfig` (each is a CLI flag of the
jobs); every check returns a drop reason or ``None`` so the job can count
drops by reason.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class FilterConfig:
    # paragraphs (OBELICS node-level text filters)
    para_min_words: int = 4
    para_max_words: int = 1000
    para_max_char_repetition: float = 0.1    # 10-gram character repetition ratio
    para_max_word_repetition: float = 0.1    # 5-gram word repetition ratio
    para_max_special_chars: float = 0.3
    # images, by URL and declared size (before any fetch)
    image_url_patterns: str = (r"logo|icon|button|avatar|spinner|loading|badge|sprite|"
                               r"banner|pixel|tracking|emoji|smiley|placeholder|blank|spacer|"
                               r"(?:^|[/_.\-])ads?(?:[/_.\-]|$)|advert|doubleclick|adserver")
    image_drop_extensions: tuple[str, ...] = ("svg", "gif", "ico", "bmp", "tif", "tiff")
    image_min_declared_side: int = 150
    # documents
    doc_min_images: int = 1
    doc_max_images: int = 30
    doc_min_words: int = 10
    doc_max_words: int = 2000
    languages: tuple[str, ...] = ()          # empty: keep every language
    min_lang_confidence: float = 0.0

    def image_pattern(self) -> re.Pattern:
        return _compiled(self.image_url_patterns)


_pattern_cache: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    p = _pattern_cache.get(pattern)
    if p is None:
        p = _pattern_cache[pattern] = re.compile(pattern, re.IGNORECASE)
    return p


# ---------------------------------------------------------------- text

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def words(text: str) -> list[str]:
    """Whitespace words; CJK characters count one word each (they use no spaces)."""
    out = []
    for w in text.split():
        if _CJK.search(w):
            out.extend(_CJK.findall(w))
            rest = _CJK.sub(" ", w).split()
            out.extend(rest)
        else:
            out.append(w)
    return out


def count_words(text: str) -> int:
    return len(words(text))


def char_repetition_ratio(text: str, n: int = 10) -> float:
    """OBELICS/BigScience: share of character n-grams taken by the most
    frequent sqrt(#distinct) n-grams that occur more than once."""
    if len(text) < n:
        return 0.0
    grams = Counter(text[i:i + n] for i in range(len(text) - n + 1))
    total = sum(grams.values())
    k = int(math.sqrt(len(grams)))
    top = sorted(grams.values(), reverse=True)[:k]
    return sum(c for c in top if c > 1) / total


def word_repetition_ratio(ws: list[str], n: int = 5) -> float:
    """Share of word n-grams that occur more than once (OBELICS)."""
    if len(ws) < n:
        return 0.0
    grams = Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))
    total = sum(grams.values())
    return sum(c for c in grams.values() if c > 1) / total


def special_char_ratio(text: str) -> float:
    """Share of non-space characters that are punctuation, symbols or digits."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 1.0
    special = sum(1 for c in chars if unicodedata.category(c)[0] in "PSN")
    return special / len(chars)


def paragraph_drop_reason(text: str, cfg: FilterConfig) -> str | None:
    ws = words(text)
    if len(ws) < cfg.para_min_words:
        return "too_few_words"
    if len(ws) > cfg.para_max_words:
        return "too_many_words"
    if special_char_ratio(text) > cfg.para_max_special_chars:
        return "special_characters"
    if char_repetition_ratio(text) > cfg.para_max_char_repetition:
        return "character_repetition"
    if word_repetition_ratio([w.lower() for w in ws]) > cfg.para_max_word_repetition:
        return "word_repetition"
    return None


# ---------------------------------------------------------------- images


def url_extension(url: str) -> str:
    path = urlsplit(url).path.lower()
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1] if "." in last else ""


def image_drop_reason(url: str, width: int | None, height: int | None,
                      cfg: FilterConfig) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "bad_scheme"
    if url_extension(url) in cfg.image_drop_extensions:
        return "extension"
    if cfg.image_pattern().search(parts.path + "?" + parts.query):
        return "url_pattern"
    for side in (width, height):
        if side is not None and side < cfg.image_min_declared_side:
            return "declared_too_small"
    return None


# ---------------------------------------------------------------- documents


def document_drop_reason(num_words: int, num_images: int, cfg: FilterConfig) -> str | None:
    if num_images < cfg.doc_min_images:
        return "too_few_images"
    if num_images > cfg.doc_max_images:
        return "too_many_images"
    if num_words < cfg.doc_min_words:
        return "too_few_words"
    if num_words > cfg.doc_max_words:
        return "too_many_words"
    return None


@dataclass
class LangId:
    """Offline language id (py3langid ships its model in the wheel)."""

    _model: object = field(default=None, repr=False)

    def load(self) -> "LangId":
        """Load the model now (call from DoFn.setup: a failure there is the
        worker's, not any one page's)."""
        if self._model is None:
            from py3langid.langid import _load_identifier

            self._model = _load_identifier(norm_probs=True)
        return self

    def __call__(self, text: str) -> tuple[str, float]:
        lang, prob = self.load()._model.classify(text[:5000])
        return lang, float(prob)


def language_drop_reason(lang: str, confidence: float, cfg: FilterConfig) -> str | None:
    if cfg.languages and lang not in cfg.languages:
        return "language"
    if confidence < cfg.min_lang_confidence:
        return "language_confidence"
    return None
