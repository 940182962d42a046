"""Node- and document-level filters, defaults from OBELICS.

Every threshold lives in :class:`FilterConfig` (each is a CLI flag of the
jobs); every check returns a drop reason or ``None`` so the job can count
drops by reason.
"""
from __future__ import annotations

import functools
import heapq
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np


@dataclass(frozen=True)
class FilterConfig:
    # paragraphs (OBELICS node-level text filters)
    para_min_words: int = 4
    para_max_words: int = 1000
    para_max_char_repetition: float = 0.1    # 10-gram character repetition ratio
    # ... counting the 10-grams that occur at least this often. OBELICS: 2.
    # But a phrase said twice is not repetition: on the dev pages 2 drops 169
    # blocks, every one the article's (a credit line "Getty Images News/Getty
    # Images", a paragraph naming its subject twice); 3 drops 23 of them and
    # still every "click here click here ..." or repeated menu.
    para_char_repetition_min_count: int = 3
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
#
# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer,
# Myanmar) have no whitespace words to count: a Chinese sentence is one
# "word" to str.split and a Japanese product line of 60 characters is not 60
# words either. Runs of these scripts are counted in word equivalents: their
# characters divided by the script's mean word length (Chinese and Japanese
# words average about 1.5 characters in segmented corpora, Thai, Lao, Khmer
# and Myanmar words about 4 letters with their marks), rounded up per run.
# Hangul is written with spaces and counts like any spaced script. The
# repetition ratios use the same idea: word n-grams become character
# n-grams of n word lengths inside such runs.

_HAN_KANA = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
             "\uff66-\uff9f\U00020000-\U0003134f")
_SE_ASIAN = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_UNSPACED_RUN = re.compile(rf"[{_HAN_KANA}]+|[{_SE_ASIAN}]+")
_HAN_KANA_CHAR = re.compile(rf"[{_HAN_KANA}]")
CHARS_PER_WORD = {"han_kana": 1.5, "se_asian": 4.0}


_FIRST_UNSPACED = "\u0e00"  # every unspaced script above sorts after this


def _split_scripts(text: str) -> tuple[list[str], list[str]]:
    """(whitespace words outside unspaced runs, the unspaced runs)."""
    if not text or max(text) < _FIRST_UNSPACED:  # C-level scan: most text has none
        return text.split(), []
    runs = _UNSPACED_RUN.findall(text)
    if not runs:
        return text.split(), []
    return _UNSPACED_RUN.sub(" ", text).split(), runs


def _cpw(run: str) -> float:
    return CHARS_PER_WORD["han_kana" if _HAN_KANA_CHAR.match(run) else "se_asian"]


def words(text: str) -> list[str]:
    """Words of ``text``: whitespace words, and each run of an unspaced script
    cut into pieces of its mean word length (word equivalents, for counting;
    the repetition ratios look at the runs' characters instead)."""
    spaced, runs = _split_scripts(text)
    for run in runs:
        n, k = math.ceil(len(run) / _cpw(run)), len(run)
        spaced.extend(run[i * k // n:(i + 1) * k // n] for i in range(n))
    return spaced


def count_words(text: str) -> int:
    """Script-aware word count (see above); every filter counts with this."""
    spaced, runs = _split_scripts(text)
    return len(spaced) + sum(math.ceil(len(r) / _cpw(r)) for r in runs)


_VECTOR_MIN_CHARS = 200
_HASH_BASE = np.uint64(1_000_003)


def char_repetition_ratio(text: str, n: int = 10, min_count: int = 2) -> float:
    """OBELICS/BigScience: share of character n-grams taken by the most
    frequent sqrt(#distinct) n-grams that occur at least ``min_count`` times
    (theirs: 2; the paragraph filter's is FilterConfig.para_char_repetition_min_count)."""
    size = len(text)
    if size < n:
        return 0.0
    total = size - n + 1
    if size < _VECTOR_MIN_CHARS:
        # the n-grams sliced and counted in C (map over slices), not a genexpr
        counts = list(Counter(map(text.__getitem__,
                                  map(slice, range(total), range(n, size + 1)))).values())
        if len(counts) == total:  # no n-gram occurs twice
            return 0.0
        k = int(math.sqrt(len(counts)))
        return sum(c for c in heapq.nlargest(k, counts) if c >= min_count) / total
    # Long blocks: each n-gram as a 64-bit polynomial hash of its code points
    # (n vector operations), counted by sorting. Two different n-grams share a
    # hash with probability ~2^-64: the ratio is OBELICS' for any real text.
    cp = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    h = np.zeros(total, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h *= _HASH_BASE
            h += cp[j:j + total]
    h.sort()
    starts = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    counts = np.diff(np.r_[starts, total])
    if len(counts) == total:
        return 0.0
    k = int(math.sqrt(len(counts)))
    top = np.partition(counts, len(counts) - k)[len(counts) - k:]
    return int(top[top >= min_count].sum()) / total


def word_repetition_ratio(text: str, n: int = 5) -> float:
    """Share of word n-grams that occur more than once (OBELICS), words
    lowercased; inside runs of an unspaced script the n-grams are character
    n-grams of n mean word lengths (a Japanese line is not "repetitive"
    because its particles recur as one-character "words")."""
    spaced, runs = _split_scripts(text.lower())
    grams: Counter = Counter()
    if len(spaced) >= n:
        grams.update(zip(*(spaced[i:] for i in range(n))))  # the n-grams, built in C
    for run in runs:
        m = round(n * _cpw(run))
        if len(run) >= m:
            grams.update(run[i:i + m] for i in range(len(run) - m + 1))
    total = sum(grams.values())
    if not total:
        return 0.0
    return sum(c for c in grams.values() if c > 1) / total


@functools.cache
def _deleting(cats: str) -> dict:
    """A str.translate table deleting every character of the Unicode
    categories ``cats`` (built on first use from the first two planes)."""
    return {cp: None for cp in range(0x20000) if unicodedata.category(chr(cp))[0] in cats}


def special_char_ratio(text: str, digits: bool = True) -> float:
    """Share of non-space characters that are punctuation, symbols or (with
    ``digits``) numbers (Unicode categories P, S, N), counted in C: the
    length lost to str.translate deleting them."""
    chars = sum(map(len, text.split()))
    if not chars:
        return 1.0
    return (len(text) - len(text.translate(_deleting("PSN" if digits else "PS")))) / chars


_DIGITS = re.compile(r"\d")


def paragraph_drop_reason(text: str, cfg: FilterConfig, max_words: bool = True,
                          data: bool = False, n: int | None = None) -> str | None:
    """OBELICS' paragraph filters on one text block (``max_words=False``: the
    block was already cut to size by `split_block`; ``data``: the block is a
    whole table or list, where numbers are the content: they are neither
    words nor special characters); ``n``: its word count, when the caller has it."""
    if n is None or data:
        n = count_words(_DIGITS.sub("", text) if data else text)
    if n < cfg.para_min_words:
        return "too_few_words"
    if max_words and n > cfg.para_max_words:
        return "too_many_words"
    if special_char_ratio(text, digits=not data) > cfg.para_max_special_chars:
        return "special_characters"
    if (char_repetition_ratio(text, min_count=cfg.para_char_repetition_min_count)
            > cfg.para_max_char_repetition):
        return "character_repetition"
    if word_repetition_ratio(text) > cfg.para_max_word_repetition:
        return "word_repetition"
    return None


def char_repetition_ratios(texts: list[str], n: int = 10, min_count: int = 2) -> list[float]:
    """`char_repetition_ratio` of every text, in one batch of vector
    operations over all their n-grams (a page's blocks: one sort instead of
    a Counter per block). The n-grams are 64-bit polynomial hashes of their
    code points; two different n-grams share one with probability ~2^-64."""
    sizes = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    grams = np.maximum(sizes - n + 1, 0)
    if not grams.sum():
        return [0.0] * len(texts)
    cp = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    m = len(cp) - n + 1
    h = np.zeros(max(m, 0), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h *= _HASH_BASE
            h += cp[j:j + m]
    # the n-grams that start and end inside one text, with that text's index
    bid = np.repeat(np.arange(len(texts)), grams)
    pos = np.repeat(starts, grams) + (np.arange(grams.sum()) - np.repeat(np.cumsum(grams) - grams, grams))
    h = h[pos]
    order = np.lexsort((h, bid))
    h, bid = h[order], bid[order]
    new = np.r_[True, (h[1:] != h[:-1]) | (bid[1:] != bid[:-1])]
    run_start = np.flatnonzero(new)
    run_count = np.diff(np.r_[run_start, len(h)])
    run_bid = bid[run_start]
    distinct = np.bincount(run_bid, minlength=len(texts))
    k = np.sqrt(distinct).astype(np.int64)  # int(sqrt(#distinct)) per text
    # per text: its runs by count, largest first; keep the top k that repeat
    order = np.lexsort((-run_count, run_bid))
    run_count, run_bid = run_count[order], run_bid[order]
    first = np.r_[0, np.cumsum(distinct)[:-1]]
    rank = np.arange(len(run_bid)) - first[run_bid]
    take = (rank < k[run_bid]) & (run_count >= min_count)
    rep = np.bincount(run_bid[take], weights=run_count[take], minlength=len(texts))
    return [float(r) / g if g else 0.0 for r, g in zip(rep.tolist(), grams.tolist())]


def paragraph_drop_reasons(texts: list[str], cfg: FilterConfig,
                           counts: list[int] | None = None) -> list[str | None]:
    """`paragraph_drop_reason` (``max_words=False``) of every block, the
    character repetition of those still in question computed in one batch."""
    if counts is None:
        counts = [count_words(t) for t in texts]
    reasons: list = [None] * len(texts)
    ask = []
    for i, (t, n) in enumerate(zip(texts, counts)):
        if n < cfg.para_min_words:
            reasons[i] = "too_few_words"
        elif special_char_ratio(t) > cfg.para_max_special_chars:
            reasons[i] = "special_characters"
        else:
            ask.append(i)
    if ask:
        ratios = char_repetition_ratios([texts[i] for i in ask],
                                        min_count=cfg.para_char_repetition_min_count)
        for i, r in zip(ask, ratios):
            if r > cfg.para_max_char_repetition:
                reasons[i] = "character_repetition"
            elif word_repetition_ratio(texts[i]) > cfg.para_max_word_repetition:
                reasons[i] = "word_repetition"
    return reasons


_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？；])\s+|(?<=[。！？])")


def split_block(text: str, max_words: int) -> list[str]:
    """A block over ``max_words`` cut into consecutive pieces of at most that
    many words, at sentence ends where it has them (else at word boundaries):
    an article that is one long block (text in one <div> of <br>s) is split,
    not dropped. Each piece is then judged as a paragraph."""
    if count_words(text) <= max_words:
        return [text]
    pieces, cur, n = [], [], 0
    for sent in _SENTENCE_END.split(text):
        k = count_words(sent)
        if k > max_words:  # no sentence ends: cut at words
            ws = sent.split() if not _UNSPACED_RUN.search(sent) else list(sent)
            step = max(1, len(ws) * max_words // max(k, 1))
            subs = [ws[i:i + step] for i in range(0, len(ws), step)]
            sep = " " if not _UNSPACED_RUN.search(sent) else ""
            for sub in subs:
                if cur:
                    pieces.append(cur)
                    cur, n = [], 0
                pieces.append([sep.join(sub)])
            continue
        if cur and n + k > max_words:
            pieces.append(cur)
            cur, n = [], 0
        cur.append(sent)
        n += k
    if cur:
        pieces.append(cur)
    return [" ".join(p).strip() for p in pieces if " ".join(p).strip()]


HEADINGS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_RATIOS = frozenset(("special_characters", "character_repetition", "word_repetition"))
GROUP_MIN_ITEMS = 3


def text_drop_reasons(texts: list[str], roles: list, cfg: FilterConfig,
                      counts: list[int] | None = None) -> list[str | None]:
    """The paragraph filters on a page's text blocks, in context.

    ``roles[i]`` is ``(tag, group)`` for ``texts[i]`` (pipeline.extract:
    the block's tag, and the id of the table or list it is a cell or item of,
    or None). OBELICS judges each block alone; two kinds of block are judged
    with their context instead, because alone they are short by nature:

    - the cells of a table and the items of a list (standings, spec sheets,
      ingredient lists) are judged as one block, their text joined: when the
      whole passes (at least GROUP_MIN_ITEMS items and 3 x para_min_words
      words, and every ratio; numbers are data here, neither words nor
      special characters), every item stays; when it fails, each item is
      judged alone as before. A share bar or a short menu ("Share", "Tweet",
      "Email") is too short as a whole and still goes;
    - a heading shorter than para_min_words stays when the block after it
      (its section's first block) is kept and is not itself a heading;
    - a <pre> block (code, a shell session, a poem laid out by hand) is
      judged by its length only: the character and repetition ratios are
      written for prose, and code is punctuation and repeated names by
      nature (on the dev pages they dropped SQL, shell and JavaScript
      listings that are the articles' text).

    Every other check (special characters, repetition) is OBELICS' as is.
    ``counts``: the blocks' word counts, when the caller has them."""
    if counts is None:
        counts = [count_words(t) for t in texts]
    reasons = paragraph_drop_reasons(texts, cfg, counts)
    for i, role in enumerate(roles):
        if role is not None and role[0] == "pre" and reasons[i] in _RATIOS:
            reasons[i] = None
    groups: dict = {}
    for i, role in enumerate(roles):
        if role is not None and role[1] is not None:
            groups.setdefault(role[1], []).append(i)
    for members in groups.values():
        if len(members) < GROUP_MIN_ITEMS or all(reasons[i] is None for i in members):
            continue
        whole = "\n".join(texts[i] for i in members)
        if count_words(_DIGITS.sub("", whole)) < 3 * cfg.para_min_words:
            continue
        if paragraph_drop_reason(whole, cfg, max_words=False, data=True) is None:
            for i in members:
                reasons[i] = None
    for i in range(len(texts) - 2, -1, -1):
        role = roles[i]
        if (reasons[i] == "too_few_words" and role is not None and role[0] in HEADINGS
                and counts[i] > 0 and reasons[i + 1] is None
                and (roles[i + 1] is None or roles[i + 1][0] not in HEADINGS)):
            reasons[i] = None
    return reasons


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

    # py3langid walks its DFA over the UTF-8 bytes in Python: the cost is the
    # length. On the dev pages the first 2,000 characters give every page's
    # language as the first 5,000 do (156 of 156) in 60% of the time.
    MAX_CHARS = 2000

    def __call__(self, text: str) -> tuple[str, float]:
        lang, prob = self.load()._model.classify(text[:self.MAX_CHARS])
        return lang, float(prob)


def language_drop_reason(lang: str, confidence: float, cfg: FilterConfig) -> str | None:
    if cfg.languages and lang not in cfg.languages:
        return "language"
    if confidence < cfg.min_lang_confidence:
        return "language_confidence"
    return None
