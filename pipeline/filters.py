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


# A pattern written in lowercase letters, digits, case-free punctuation and
# escapes (\w \d \s \b \. ...), with character classes of such characters
# and no ranges, nor an inline flag group "(?-": on an ASCII text, what it
# finds with re.IGNORECASE is what it finds case-sensitively in the text
# lowercased (each letter of it matches
# that letter in either case, and nothing else of it depends on case).
# re.IGNORECASE lowercases every character it tries against every branch of
# an alternation: ~4x slower on the image URL patterns (~0.3 ms a page).
_CASE_FREE_PATTERN = re.compile(
    r"(?:[a-z0-9|()?:^$*+.{},_/=&%#@!~ ]|(?<!\(\?)-|\\[.\-/?+*()|^$wdsb\[\]_]"
    r"|\[-?(?:[a-z0-9_./]|\\[.\-/_])*-?\])*")
_searchers: dict = {}


def case_free_searcher(pattern: str):
    """``text -> re.search(pattern, text, re.IGNORECASE)`` (a match or None),
    by the lowercased text for an ASCII text when `pattern` is case-free (see
    _CASE_FREE_PATTERN; the shipped image URL patterns are), else with the flag."""
    f = _searchers.get(pattern)
    if f is None:
        ci = _compiled(pattern)
        if _CASE_FREE_PATTERN.fullmatch(pattern):
            cs = re.compile(pattern)

            def f(text, ci=ci.search, cs=cs.search):
                return cs(text.lower()) if text.isascii() else ci(text)
        else:
            f = ci.search
        _searchers[pattern] = f
    return f


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

_HAN_KANA_RANGES = ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                    (0xF900, 0xFAFF), (0xFF66, 0xFF9F), (0x20000, 0x3134F))
_SE_ASIAN_RANGES = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF))
_HAN_KANA = "".join(f"{chr(a)}-{chr(b)}" for a, b in _HAN_KANA_RANGES)
_SE_ASIAN = "".join(f"{chr(a)}-{chr(b)}" for a, b in _SE_ASIAN_RANGES)
_UNSPACED_RUN = re.compile(rf"[{_HAN_KANA}]+|[{_SE_ASIAN}]+")
_HAN_KANA_CHAR = re.compile(rf"[{_HAN_KANA}]")
CHARS_PER_WORD = {"han_kana": 1.5, "se_asian": 4.0}  # _Joined.words has them as integer formulas


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


# ---------------------------------------------------------------- a page's blocks at once
#
# The functions above are the definitions, one text at a time. A page's
# blocks are judged in one batch of vector operations instead (py-spy: the
# per-block Counters and scans were ~30% of page -> candidate): the blocks
# are joined by "\n" (whitespace: no word, run or n-gram crosses it) into one
# code-point array, each code point is classified by one table look-up
# (whitespace, P/S/N, unspaced script), and every n-gram -- character
# 10-grams, lowercased word 5-grams, character n-grams inside unspaced runs
# -- becomes a 64-bit hash keyed by its block, all sorted together once.
# Only the few keys that occur more than once come back to Python. Two
# different n-grams share a key with probability ~2^-64: the ratios are
# those of the definitions above for any real text (tests/pipeline/
# test_filters.py checks every dev block against them).

_SPACE, _PSN, _PS, _HK, _SE = 1, 2, 4, 8, 16
_MAX_SPACE = 0x3000  # the last code point str.isspace accepts (checked in the tests)


@functools.cache
def _char_classes() -> np.ndarray:
    """Code point -> bits: _SPACE (what str.split splits on), _PSN / _PS (what
    special_char_ratio counts, with / without digits), _HK / _SE (the
    unspaced scripts of _UNSPACED_RUN)."""
    t = np.zeros(0x110000, dtype=np.uint8)
    t[[c for c in range(_MAX_SPACE + 1) if chr(c).isspace()]] |= _SPACE
    t[np.fromiter(_deleting("PSN"), dtype=np.int64)] |= _PSN
    t[np.fromiter(_deleting("PS"), dtype=np.int64)] |= _PS
    for bit, ranges in ((_HK, _HAN_KANA_RANGES), (_SE, _SE_ASIAN_RANGES)):
        for lo, hi in ranges:
            t[lo:hi + 1] |= bit
    return t


# Word n-grams and run n-grams share one Counter in word_repetition_ratio (a
# tuple never equals a str): the run n-grams' hashes are offset by a constant
# (mod 2^64; numpy wraps uint64 arrays silently, only scalar overflow warns).
_WORD, _RUN = 2, 3
_K_MIX = np.uint64(0x9E3779B97F4A7C15)
_K_DOMAIN = {d: np.uint64(d * 0xC2B2AE3D27D4EB4F % 2 ** 64) for d in (_WORD, _RUN)}


@functools.cache
def _power(p: int) -> np.uint64:
    return np.uint64(pow(int(_HASH_BASE), p, 2 ** 64))


_powers_of_base: list = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]
_INVERSE_BASE = np.uint64(pow(int(_HASH_BASE), -1, 2 ** 64))


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_HASH_BASE ** i and its inverse ** i mod 2^64 for i < n (grown by
    doubling and kept; a new pair replaces the old one whole)."""
    pw, inv = _powers_of_base
    if len(pw) < n:
        size = max(n, 2 * len(pw))
        pw = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, _HASH_BASE, dtype=np.uint64)])
        inv = np.cumprod(np.r_[np.uint64(1), np.full(size - 1, _INVERSE_BASE, dtype=np.uint64)])
        _powers_of_base[:] = [pw, inv]
    return pw, inv


def _span_hashes(cp: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each string cp[starts[i]:ends[i]] (the words, without
    making them): sum((cp + 1) * B ** k) over its code points by prefix sums,
    then splitmix64's finaliser (the word n-grams combine these linearly)."""
    pw, inv = _powers(len(cp) + 1)
    prefix = np.zeros(len(cp) + 1, dtype=np.uint64)
    np.cumsum((cp.astype(np.uint64) + np.uint64(1)) * pw[:len(cp)], out=prefix[1:])
    h = (prefix[ends] - prefix[starts]) * inv[starts]
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def _rolling(x: np.ndarray, n: int) -> np.ndarray:
    """sum(x[i + j] * _HASH_BASE ** (n - 1 - j) for j < n) mod 2^64 for every
    i: the n-gram hashes, by doubling (log2(n) steps, not n)."""
    out, have = None, 0  # out: hashes of the first `have` items
    span, p = x, 1       # span: hashes of windows of p items
    while True:
        if n & p:
            if out is None:
                out, have = span, p
            else:
                m = min(len(out), len(span) - have)
                out = out[:m] * _power(p) + span[have:have + m]
                have += p
        if 2 * p > n:
            break
        m = len(span) - p
        span = span[:m] * _power(p) + span[p:p + m]
        p *= 2
    return out[:max(len(x) - n + 1, 0)]


def _repeated(keys: np.ndarray, mask: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """The keys that occur at least twice: (their block, ``key & mask``, and
    how often)."""
    s = np.sort(keys)
    same = (s[1:] == s[:-1]).nonzero()[0]  # s[i] == s[i + 1]: usually few
    if not len(same):
        return same, same
    step = np.empty(len(same), dtype=bool)  # a run of consecutive i starts here
    step[0] = True
    step[1:] = same[1:] != same[:-1] + 1
    first = step.nonzero()[0]
    counts = np.empty(len(first), dtype=np.int64)
    counts[:-1] = first[1:] - first[:-1]
    counts[-1] = len(same) - first[-1]
    counts += 1
    return (s[same[first]] & mask).astype(np.int64), counts


class _Joined:
    """Texts joined by "\n": code points, their classes, and for each position
    its block and offset in that block."""

    def __init__(self, texts: list[str]):
        self.sizes = sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        self.text = "\n".join(texts)
        self.cp = np.frombuffer(self.text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        self.cls = _char_classes()[self.cp]
        self.starts = (sizes + 1).cumsum() - (sizes + 1)
        self.bid = np.arange(len(texts)).repeat(sizes + 1)[:len(self.cp)]
        self.off = np.arange(len(self.cp)) - self.starts[self.bid]

    def per_block(self, flags: np.ndarray) -> list[int]:
        """How many positions of each block are flagged (blocks are
        contiguous: differences of one running count)."""
        run = np.zeros(len(flags) + 1, dtype=np.int64)
        np.cumsum(flags, out=run[1:])
        return (run[self.starts + self.sizes] - run[self.starts]).tolist()

    @functools.cached_property
    def _in_word(self) -> np.ndarray:
        return (self.cls & (_SPACE | _HK | _SE)) == 0

    @functools.cached_property
    def word_starts(self) -> np.ndarray:
        """Positions where a whitespace word of the text with its unspaced runs
        blanked begins (the words of `_split_scripts`)."""
        w = self._in_word
        edge = w.copy()
        edge[1:] &= ~w[:-1]
        return edge.nonzero()[0]

    @functools.cached_property
    def word_ends(self) -> np.ndarray:
        """One past the last position of each of those words."""
        w = self._in_word
        edge = w.copy()
        edge[:-1] &= ~w[1:]
        return edge.nonzero()[0] + 1

    @functools.cached_property
    def runs(self):
        """The unspaced runs (maximal runs of one unspaced script, as
        _UNSPACED_RUN finds them): (first positions, lengths, script bits)."""
        u = self.cls & (_HK | _SE)
        if not u.any():
            none = np.zeros(0, dtype=np.int64)
            return none, none, none
        edge = u != 0
        edge[1:] &= u[1:] != u[:-1]
        first = edge.nonzero()[0]
        inside = u.nonzero()[0]
        lengths = np.bincount(np.searchsorted(first, inside, side="right") - 1,
                              minlength=len(first))
        return first, lengths, u[first]

    def words(self) -> np.ndarray:
        """`count_words` of each block: its spaced words, plus each unspaced
        run's characters divided by its script's mean word length, rounded up
        (ceil(len / 1.5) = (2 len + 2) // 3 and ceil(len / 4) exactly)."""
        words = np.bincount(self.bid[self.word_starts], minlength=len(self.sizes))
        first, lengths, script = self.runs
        if len(first):
            per_run = np.where(script == _HK, (2 * lengths + 2) // 3, (lengths + 3) // 4)
            words = words + np.bincount(self.bid[first], weights=per_run,
                                        minlength=len(self.sizes)).astype(np.int64)
        return words

    def grams(self, n: int, where: np.ndarray | None = None):
        """64-bit polynomial hashes of the character n-grams starting at
        ``where`` (default: every n-gram inside one block), and their blocks."""
        m = len(self.cp) - n + 1
        if m <= 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        h = _rolling(self.cp.astype(np.uint64), n)
        if where is None:
            where = (self.off[:m] <= self.sizes[self.bid[:m]] - n).nonzero()[0]
        return h[where], self.bid[where]


def _word_grams(texts: list[str], j: _Joined, n: int):
    """Keys of the lowercased word n-grams (and the n-grams of n mean word
    lengths inside unspaced runs) of `word_repetition_ratio`, with blocks
    (``j``: the texts joined)."""
    # "\n" is neither cased nor case-ignorable: lowercasing the joined text
    # (its final sigmas included) is lowercasing each text (checked in the tests)
    joined = j.text.lower()
    if len(joined) != len(j.text):  # a character lowercased to two (İ): its own positions
        j = _Joined([t.lower() for t in texts])
        lower_cp = j.cp
    else:  # same positions, and lowercasing keeps every character's class and
        # the unspaced scripts' characters as they are (checked in the tests)
        lower_cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts = j.word_starts
    wbid = j.bid[starts]
    nw = np.bincount(wbid, minlength=len(texts))
    first = nw.cumsum() - nw
    keys, bids = [], []
    m = len(starts) - n + 1
    if m > 0:
        g = _rolling(_span_hashes(lower_cp, starts, j.word_ends), n)
        ok = (np.arange(m) - first[wbid[:m]] <= nw[wbid[:m]] - n).nonzero()[0]
        keys.append(g[ok] + _K_DOMAIN[_WORD])
        bids.append(wbid[ok])
    first_pos, lengths, script = j.runs
    for bit, cpw in ((_HK, CHARS_PER_WORD["han_kana"]), (_SE, CHARS_PER_WORD["se_asian"])):
        sel = script == bit
        if not sel.any():
            continue
        k = round(n * cpw)
        rf, rl = first_pos[sel], lengths[sel]
        rl = np.maximum(rl - k + 1, 0)  # n-grams per run
        if not rl.sum():
            continue
        where = np.repeat(rf, rl) + (np.arange(rl.sum()) - np.repeat(np.cumsum(rl) - rl, rl))
        h, b = j.grams(k, where)
        keys.append(h + _K_DOMAIN[_RUN])
        bids.append(b)
    return keys, bids


@dataclass
class BlockStats:
    """What the paragraph filters measure, for each of a page's blocks."""

    words: list[int] | None       # count_words (None: not asked for)
    special: list[float]          # special_char_ratio (digits counted; digits=False: not)
    char_repetition: list[float]  # char_repetition_ratio(min_count=...)
    word_repetition: list[float]  # word_repetition_ratio


def block_stats(texts: list[str], char_min_count: int = 2, char_n: int = 10,
                word_n: int = 5, digits: bool = True, words: bool = True) -> BlockStats:
    """`count_words` (``words``), `special_char_ratio` (``digits``),
    `char_repetition_ratio` and `word_repetition_ratio` of every text, in one
    batch (see above)."""
    nb = len(texts)
    if not nb:
        return BlockStats([] if words else None, [], [], [])
    j = _Joined(texts)
    counts = j.words().tolist() if words else None
    # special characters among the non-space characters
    nonspace = j.per_block((j.cls & _SPACE) == 0)
    psn = j.per_block((j.cls & (_PSN if digits else _PS)) != 0)
    special = [p / c if c else 1.0 for p, c in zip(psn, nonspace)]
    # the n-grams' keys: the top bits of the hash times an odd constant (the
    # low bits of a polynomial hash are its last character's), the block's
    # number in the low bits; sorted, equal neighbours are one n-gram of one
    # block. Two n-grams of one block share a key with probability
    # 2^-(64 - bits) (2^-58 for a page of 64 blocks)
    bits = max(1, (nb - 1).bit_length())
    mask = np.uint64(2 ** bits - 1)
    ch, cb = j.grams(char_n)
    wk, wb = _word_grams(texts, j, word_n)
    char_total = np.maximum(j.sizes - char_n + 1, 0).tolist()
    word_total = np.bincount(np.concatenate(wb), minlength=nb).tolist() if wb else [0] * nb
    char_rep = [0.0] * nb
    word_rep = [0.0] * nb
    for keys, bids, word in ((ch, cb, False), (np.concatenate(wk) if wk else ch[:0],
                                              np.concatenate(wb) if wb else cb[:0], True)):
        dbid, dcount = _repeated((keys * _K_MIX & ~mask) | bids.astype(np.uint64), mask)
        if not len(dbid):
            continue
        if word:  # share of the n-grams that occur more than once
            rep = np.bincount(dbid, weights=dcount, minlength=nb).astype(np.int64).tolist()
            word_rep = [r / t if r else 0.0 for r, t in zip(rep, word_total)]
            continue
        # share of the n-grams taken by the sqrt(#distinct) most frequent that
        # occur at least char_min_count times: all of those when they are
        # that few (the usual case), else the largest of them
        merged = np.bincount(dbid, weights=dcount - 1, minlength=nb).astype(np.int64)
        big = dcount >= char_min_count
        big_sum = np.bincount(dbid[big], weights=dcount[big], minlength=nb).astype(np.int64).tolist()
        big_n = np.bincount(dbid[big], minlength=nb).tolist()
        distinct = (np.maximum(j.sizes - char_n + 1, 0) - merged).tolist()
        for i in np.flatnonzero(big_n).tolist():
            k = int(math.sqrt(distinct[i]))
            if big_n[i] <= k:
                char_rep[i] = big_sum[i] / char_total[i]
            else:
                cs = dcount[big & (dbid == i)].tolist()
                char_rep[i] = sum(heapq.nlargest(k, cs)) / char_total[i]
    return BlockStats(counts, special, char_rep, word_rep)


def char_repetition_ratios(texts: list[str], n: int = 10, min_count: int = 2) -> list[float]:
    """`char_repetition_ratio` of every text, in one batch (`block_stats`)."""
    return block_stats(texts, char_min_count=min_count, char_n=n).char_repetition


def count_words_many(texts: list[str]) -> list[int]:
    """`count_words` of every text, in one batch."""
    return _Joined(texts).words().tolist() if texts else []


def paragraph_drop_reasons(texts: list[str], cfg: FilterConfig,
                           counts: list[int] | None = None,
                           data: bool = False) -> list[str | None]:
    """`paragraph_drop_reason` (``max_words=False``, ``data``) of every block,
    every measure computed in one batch (`block_stats`)."""
    st = block_stats(texts, char_min_count=cfg.para_char_repetition_min_count, digits=not data,
                     words=counts is None and not data)
    if counts is None:
        counts = count_words_many([_DIGITS.sub("", t) for t in texts]) if data else st.words
    return _paragraph_reasons(st, counts, cfg)


def _paragraph_reasons(st: BlockStats, counts: list[int], cfg: FilterConfig) -> list[str | None]:
    reasons: list = [None] * len(counts)
    for i, n in enumerate(counts):
        if n < cfg.para_min_words:
            reasons[i] = "too_few_words"
        elif st.special[i] > cfg.para_max_special_chars:
            reasons[i] = "special_characters"
        elif st.char_repetition[i] > cfg.para_max_char_repetition:
            reasons[i] = "character_repetition"
        elif st.word_repetition[i] > cfg.para_max_word_repetition:
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
    """The paragraph filters on a page's text blocks, in context (see
    `judge_blocks`, which also gives their word counts); ``counts``: the
    blocks' word counts, when the caller has them."""
    if counts is None:
        return judge_blocks(texts, roles, cfg)[0]
    return _in_context(texts, roles, cfg, paragraph_drop_reasons(texts, cfg, counts), counts)


def judge_blocks(texts: list[str], roles: list, cfg: FilterConfig) -> tuple[list, list[int]]:
    """The paragraph filters on a page's text blocks, in context, and the
    blocks' word counts (`count_words`), from one batch.

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

    Every other check (special characters, repetition) is OBELICS' as is."""
    st = block_stats(texts, char_min_count=cfg.para_char_repetition_min_count)
    return _in_context(texts, roles, cfg, _paragraph_reasons(st, st.words, cfg), st.words), st.words


def _in_context(texts: list[str], roles: list, cfg: FilterConfig, reasons: list,
                counts: list[int]) -> list[str | None]:
    for i, role in enumerate(roles):
        if role is not None and role[0] == "pre" and reasons[i] in _RATIOS:
            reasons[i] = None
    groups: dict = {}
    for i, role in enumerate(roles):
        if role is not None and role[1] is not None:
            groups.setdefault(role[1], []).append(i)
    judged = [m for m in groups.values()
              if len(m) >= GROUP_MIN_ITEMS and any(reasons[i] is not None for i in m)]
    wholes = ["\n".join(texts[i] for i in m) for m in judged]
    n_data = count_words_many([_DIGITS.sub("", w) for w in wholes])
    asked = [k for k, n in enumerate(n_data) if n >= 3 * cfg.para_min_words]
    whole_reasons = paragraph_drop_reasons([wholes[k] for k in asked], cfg,
                                           [n_data[k] for k in asked], data=True)
    for k, reason in zip(asked, whole_reasons):
        if reason is None:
            for i in judged[k]:
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
    last = parts.path.lower().rsplit("/", 1)[-1]  # url_extension, without a second split
    if (last.rsplit(".", 1)[-1] if "." in last else "") in cfg.image_drop_extensions:
        return "extension"
    if case_free_searcher(cfg.image_url_patterns)(parts.path + "?" + parts.query):
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


def _dfa_features(nextmove: np.ndarray, rowbase: np.ndarray, output: np.ndarray,
                  depth: int, data: bytes) -> np.ndarray:
    """The features py3langid's DFA emits walking ``data``, in order, without
    the walk: the DFA is an Aho-Corasick automaton of byte n-grams, so its
    state after byte i is the longest suffix of data[:i + 1] that is a prefix
    of a feature -- at most ``depth`` bytes long, hence the state reached
    from the start state on the last ``depth`` bytes alone. All positions
    take those ``depth`` steps at once, as vector look-ups."""
    x = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    n = len(x)
    state = np.zeros(n, dtype=np.int64)
    for back in range(depth - 1, -1, -1):  # the byte `back` places before each position
        if back < n:
            state[back:] = nextmove[rowbase[state[back:]] + x[:n - back]]
    f = output[state]
    return f[f >= 0]


def _fast_identifier():
    """py3langid's identifier with its per-byte Python DFA walk
    (visit_counts, ~60% of a classify) replaced by `_dfa_features`: the same
    features, counted in the same order (first occurrence, as its Counter),
    so the same scores to the bit."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    class Identifier(LanguageIdentifier):
        __slots__ = ("_np_dfa", "_table32")

        def _raw_score(self, text):
            feats = _dfa_features(*self._np_dfa, text)
            if not len(feats):
                return super()._raw_score(b"")  # py3langid's answer for no features
            # The model's float16 table, as float32 once (+57 MB): the rows a
            # page needs are gathered at twice the speed and float32 @ float32
            # is what float32 @ float16 computes, to the bit. The features are
            # counted as visit_counts counts them (a Counter: first-occurrence
            # order, hence the same sum).
            src, table = getattr(self, "_table32", (None, None))
            if src is not self.nb_ptc:  # first call, or set_languages changed it
                src, table = self.nb_ptc, self.nb_ptc.astype(np.float32)
                self._table32 = (src, table)
            return self._sparse_score(Counter(feats.tolist()), table)

    model = Identifier.from_model_file(MODEL_FILE, norm_probs=True)
    nextmove = np.frombuffer(model.tk_nextmove, dtype=np.uint32) if not isinstance(
        model.tk_nextmove, np.ndarray) else model.tk_nextmove
    rowbase = np.asarray(model.tk_row, dtype=np.int64) << 8
    # the automaton's depth: breadth-first from the start state
    seen = np.zeros(len(rowbase), dtype=bool)
    seen[0] = True
    frontier, depth = np.array([0]), 0
    every_byte = np.arange(256)
    while True:
        reached = np.zeros(len(rowbase), dtype=bool)
        reached[nextmove[(rowbase[frontier][:, None] + every_byte).ravel()]] = True
        frontier = np.flatnonzero(reached & ~seen)
        if not len(frontier):
            break
        seen[frontier] = True
        depth += 1
    model._np_dfa = (nextmove, rowbase, np.asarray(model.tk_output, dtype=np.int64), depth)
    model._table32 = (model.nb_ptc, model.nb_ptc.astype(np.float32))  # at load, not on a page
    return model


@dataclass
class LangId:
    """Offline language id (py3langid ships its model in the wheel; its DFA
    walk vectorised, `_fast_identifier`)."""

    _model: object = field(default=None, repr=False)

    def load(self) -> "LangId":
        """Load the model now (call from DoFn.setup: a failure there is the
        worker's, not any one page's)."""
        if self._model is None:
            self._model = _fast_identifier()
        return self

    # The cost is the length. On the dev pages the first 2,000 characters
    # give every page's language as the first 5,000 do (156 of 156) in 60% of
    # the time.
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
