"""Main-content scoring: which subtrees of a page hold the article.

A readability-style scorer (the idea of Arc90's / Mozilla's Readability,
written here for lxml and for speed): every paragraph-like element with at
least 25 characters of text gives points (1 + commas + one per 100 chars,
at most 3) to its parent, half to its grandparent and a sixth to the next
ancestor. A candidate's score starts from its tag and its class/id hints
(article/content/post +25, comment/sidebar/share/related/promo -25) and is
scaled by (1 - link density). The best candidate may move up to a common
ancestor of close competitors, or to a parent with a higher score, and
grows to its ancestors while each adds prose rather than links (`_grow`: a
landing page's sections, an article in table rows); its siblings with good
scores (or plain paragraphs of prose) join it. When the page names its main
content (<main>, role=main, articleBody, class main_content ...) and the
choice lies wholly outside that container, the container wins
(`_named_main`). A page where no pass finds an article (a listing: a job
board, an index of linked titles) gets its container with the most rows
(`_rows_region`). Inside the
chosen subtrees, link-heavy or form-like blocks (lists of links, share bars,
galleries without text) are cut by `clean_conditionally`.

Comment threads (class/id tokens such as comments, commentlist, disqus,
replies, respond, or schema.org Comment microdata; `is_comment`) are left
out of every pass: they are not the document's text. `keep_comments=True`
appends them after the article instead. Only a page whose text is nothing
but its thread (a forum or Q&A page) gets the thread as its content.

An element flagged unlikely by its class/id/role is not skipped when it is
on the chain of elements holding most of the page's prose inside a kept
boilerplate tag (`Prose.keep`): a page whose whole body sits inside
`<header><div class="header-inner">` (an unclosed inner div; see
pipeline.extract) is still an article.

Nothing here mutates the tree: elements judged unlikely or cut are returned
as a *skip set* that the emitter (pipeline.extract) honours. That lets a
second pass with relaxed rules run on the same tree when the first one found
too little (under 500 characters), without re-parsing.

Cost: one recursive Python walk over the body (text lengths, link lengths
and commas of every element are measured bottom-up in it), plus a handful
of C-level `iter(tag)` counts for the few elements inside the article.
"""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field

from lxml import etree


_SEP = r"[\s_-]*"


def _any_of(words) -> re.Pattern:
    """A regex whose search finds any of the literal `words` (a space in one:
    any run of whitespace, "_" and "-", _SEP), as their alternation would,
    written as a trie of their letters:
    re tries every branch of an alternation at every position of the string
    (~1.6 us for a class/id pair against UNLIKELY's 33 words), a trie only the
    branches of the letter there (~0.9 us). A word with another of the words
    as its prefix is left out: the shorter one is found wherever it is."""
    def trie(ws):
        by_first: dict = {}
        for w in ws:
            by_first.setdefault(w[0], []).append(w[1:])
        alts = []
        for ch, rests in sorted(by_first.items()):
            head = _SEP if ch == " " else re.escape(ch)
            if "" in rests:
                alts.append(head)
            elif len(rests) == 1:
                alts.append(head + "".join(_SEP if c == " " else re.escape(c) for c in rests[0]))
            else:
                alts.append(f"{head}(?:{trie(rests)})")
        return "|".join(alts)
    return re.compile(trie(sorted(set(words))))


# Class/id hints. The lists follow Readability's well-tested vocabularies.
UNLIKELY = _any_of((
    "banner", "breadcrumb", "combx", "comment", "community", "cover-wrap", "disqus", "extra",
    "foot", "header", "legends", "menu", "modal", "related", "remark", "replies", "rss",
    "shoutbox", "sidebar", "skyscraper", "social", "sponsor", "supplemental", "ad-break",
    "agegate", "pagination", "pager", "popup", "yom-remote", "newsletter", "subscribe",
    "cookie", "consent"))
MAYBE = _any_of(("and", "article", "body", "column", "content", "main", "shadow", "mathjax"))
POSITIVE = re.compile(
    r"article|body|content|entry|hentry|h-entry|main|page|pagination|post|text|"
    r"blog|story")
NEGATIVE = re.compile(
    r"hidden|^hid$| hid$| hid |^hid |banner|combx|comment|com-|contact|foot|"
    r"footer|footnote|masthead|media|meta|modal|outbrain|promo|related|scroll|"
    r"share|shoutbox|sidebar|skyscraper|sponsor|shopping|tags|tool|widget|"
    r"taboola|newsletter|subscribe")
BYLINE = re.compile(r"byline|author|dateline|writtenby|p-author")
SHARE = re.compile(r"(\b|_)(share|sharedaddy)(\b|_)")
UNLIKELY_ROLES = frozenset(
    ("menu", "menubar", "complementary", "navigation", "alert", "alertdialog",
     "dialog"))

NAMED_MIN_CHARS = 50
# Containers a page names as its main content (trafilatura's BODY_XPATH has
# the same idea and a longer list): <main>, role=main, schema.org
# articleBody / mainContentOfPage, or a class/id token such as main_content,
# content-main, article-body, post-content, entry-content, page-content.
_MAIN_NAME = (r"(?:^|\s)(?:main[-_]?content|content[-_]?main|main[-_]?body|article[-_]?body|"
              r"article[-_]?content|post[-_]?(?:content|body|entry)|entry[-_]?content|"
              r"page[-_]?content|story[-_]?body)(?:$|\s)")
_MAIN_NAME_RE = re.compile(_MAIN_NAME)

# Tags whose text is scored as a paragraph; a div counts too when it has no
# block-level child (sites that write paragraphs as divs).
SCORE_TAGS = frozenset(("p", "td", "pre", "section", "h2", "h3", "h4", "h5", "h6"))
BLOCK_CHILD = frozenset(
    ("a", "blockquote", "dl", "div", "img", "ol", "p", "pre", "table", "ul",
     "select", "section", "article", "figure", "h1", "h2", "h3", "h4", "h5",
     "h6", "picture"))
LOOSE_TAGS = frozenset(("span", "font", "b", "strong", "i", "em", "small", "big",
                        "u", "label", "cite", "q", "abbr", "time", "mark", "sub", "sup"))
TAG_SCORE = {"div": 5, "article": 5, "main": 5, "pre": 3, "td": 3,
             "blockquote": 3, "address": -3, "ol": -3, "ul": -3, "dl": -3,
             "dd": -3, "dt": -3, "li": -3, "form": -3, "h1": -5, "h2": -5,
             "h3": -5, "h4": -5, "h5": -5, "h6": -5, "th": -5}
_COUNTED = ("p", "li", "input", "object", "embed", "iframe")  # images: Measure.stats
CONDITIONAL_TAGS = ("form", "fieldset", "table", "ul", "div", "section", "aside")
MIN_ARTICLE_CHARS = 500
N_TOP = 5


@dataclass
class Measure:
    """Bottom-up text statistics of one walk: element -> (chars, link chars,
    commas, images), and the raw paragraph points each ancestor collected."""
    stats: dict = field(default_factory=dict)
    points: dict = field(default_factory=dict)
    hidden: set = field(default_factory=set)
    unlikely: set = field(default_factory=set)
    comments: dict = field(default_factory=dict)  # DOM order (outermost first)
    named: list = field(default_factory=list)  # containers named main content (_named_main)


# The patterns are case-sensitive and applied to lowercased strings: re.I
# makes these alternations ~10x slower. Class names also repeat across a page
# and the pages of a site, so results are memoised per string.
_CACHE_MAX = 200_000
_weight_cache: dict = {}
_unlikely_cache: dict = {}  # (class, id) -> hint bits


def _hint_weight(s: str) -> int:
    w = _weight_cache.get(s)
    if w is None:
        low = s.lower()
        w = (-25 if NEGATIVE.search(low) else 0) + (25 if POSITIVE.search(low) else 0)
        if len(_weight_cache) > _CACHE_MAX:
            _weight_cache.clear()
        _weight_cache[s] = w
    return w


def clear_caches() -> None:
    _weight_cache.clear()
    _unlikely_cache.clear()
    _hiding_style_cache.clear()


def class_weight(el) -> int:
    w = 0
    cls = el.get("class")
    if cls:
        w += _hint_weight(cls)
    ident = el.get("id")
    if ident:
        w += _hint_weight(ident)
    return w


HIDING_ATTRS = frozenset(("style", "hidden", "aria-hidden"))
HINT_ATTRS = frozenset(("class", "id", "role", "itemtype", "itemprop", "aria-label"))

# Comment threads, told by the words of their class/id tokens (split at
# spaces, "-" and "_"). A word that names a state or a counter ("has-comments",
# "comments-open", "comment-count") marks the article, not a thread, and
# "commentary" is an article genre.
_COMMENT_WORDS = frozenset((
    "comment", "comments", "commentlist", "commentslist", "commentlists",
    "commentthread", "commentsection", "replies", "respond", "disqus", "dsq",
    "livefyre", "wpdiscuz", "comentarios", "comentario", "kommentare",
    "kommentar", "commentaires", "commentaire", "commenti", "reacties",
    "yorumlar", "komentarze", "komentar", "pinglun"))
_STATE_WORDS = frozenset((
    "has", "no", "is", "with", "allow", "allowed", "open", "opened", "closed",
    "enabled", "disabled", "on", "off", "count", "counter", "num", "number"))
# Furniture that sits inside or beside the article in every layout and is
# never its text: breadcrumb trails, related-story feeds and recommendation
# widgets, newsletter/subscription and sponsored promos. Single words, and
# word pairs (matched on the words joined: "more-stories" -> "morestories").
_FURNITURE_WORDS = frozenset((
    "breadcrumb", "breadcrumbs", "crumbs", "related", "relatedposts",
    "relatedarticles", "relatedstories", "relatedcontent", "relatedlinks",
    "recirc", "recirculation", "outbrain", "taboola", "zergnet", "newsletter",
    "newsletters", "subscribe", "subscription", "promo", "promos", "sponsored",
    "morestories", "mostpopular", "mostread", "alsoread", "readalso",
    "youmaylike", "recommended", "recommendations", "trending", "popularposts",
    "editsection"))
_NOT_COMMENT = ("commentary", "commented", "commentable", "commentator")
_WORD_SPLIT = re.compile(r"[\s_-]+")


def _furniture_words(s: str) -> bool:
    words = [w for w in _WORD_SPLIT.split(s.lower()) if w]
    if not _STATE_WORDS.isdisjoint(words):
        return False
    if not _FURNITURE_WORDS.isdisjoint(words):
        return True
    return any(a + b in _FURNITURE_WORDS for a, b in zip(words, words[1:]))


def _comment_words(s: str) -> bool:
    words = _WORD_SPLIT.split(s.lower())
    if not _STATE_WORDS.isdisjoint(words):
        return False
    for w in words:
        if w in _COMMENT_WORDS or w.endswith("comments") or (
                w.startswith("comment") and not w.startswith(_NOT_COMMENT)):
            return True  # also camelCase ids: commentList, userComments
    return False


_TEXT_LEN = etree.XPath("string-length(.)")
_NONLINK_LEN = etree.XPath(
    "string-length(normalize-space(.)) - string-length(normalize-space(str:concat(.//a)))",
    namespaces={"str": "http://exslt.org/strings"})
PROSE_SHARE = 0.6  # of the page's non-link text: "most of the page's prose"
PROSE_MIN_CHARS = 200
# ... and of its raw text (links, whitespace): a cheap first bound. An element
# holding most of the prose but under a quarter of the raw text would need a
# page whose text is over 60% links outside it.
PROSE_RAW_SHARE = 0.25


class Prose:
    """Does an element hold most of the page's prose (non-link text)? Then it
    is not boilerplate, whatever its tag or class says: a whole-page <form>,
    or a <header> that swallowed the article because an inner <div> was left
    open. Measured with C-level XPath string lengths, the page's total once
    and lazily; an element's raw text length bounds its non-link text, so
    most elements cost one cheap call."""

    __slots__ = ("body", "_page", "_raw", "kept")

    def __init__(self, body):
        self.body = body
        self._page = None
        self._raw = None
        self.kept: set = set()  # see keep()

    def page(self) -> float:
        if self._page is None:
            self._page = _NONLINK_LEN(self.body)
        return self._page

    def holds_most(self, el) -> bool:
        raw = _TEXT_LEN(el)
        if raw < PROSE_MIN_CHARS:
            return False
        if self._raw is None:
            self._raw = _TEXT_LEN(self.body)
        if raw < PROSE_RAW_SHARE * self._raw:
            return False  # the common case, without the costlier link count
        need = max(PROSE_MIN_CHARS, PROSE_SHARE * self.page())
        return raw >= need and _NONLINK_LEN(el) >= need

    def keep(self, el) -> None:
        """`el` (a boilerplate tag) holds most of the prose: it and the chain
        of its descendants that do too (the inner <div> left open, with a
        class such as "header-inner") are exempt from the unlikely flags.
        Only this chain: an element with an unlikely class that holds most
        of the prose on its own right (a gallery's captions) stays unlikely."""
        while el is not None:
            self.kept.add(el)
            nxt = None
            for ch in el:
                if ch.tag.__class__ is str and self.holds_most(ch):
                    nxt = ch
                    break
            el = nxt
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


_hiding_style_cache: dict = {}  # style attribute -> does it hide (styles repeat on a page)


def is_hidden(el, keys=None) -> bool:
    """hidden attribute, aria-hidden=true, or an inline display:none /
    visibility:hidden style. ``keys``: ``el.keys()`` when the caller has
    them (the walks do): an attribute the element lacks is not looked up."""
    if keys is None:
        keys = el.keys()
    if "hidden" in keys:
        return True
    if "aria-hidden" in keys and (el.get("aria-hidden") or "").strip().lower() == "true":
        # Rendered-math fallback images (Wikipedia) are visible despite it.
        return not (el.tag == "img" and "fallback-image" in (el.get("class") or ""))
    if "style" not in keys:
        return False
    style = el.get("style")
    if not style:
        return False
    h = _hiding_style_cache.get(style)
    if h is None:
        h = bool(_HIDDEN_STYLE.search(style))
        if len(_hiding_style_cache) > _CACHE_MAX:
            _hiding_style_cache.clear()
        _hiding_style_cache[style] = h
    return h


COMMENT, UNLIKELY_HINT, FURNITURE, NAMED = 1, 2, 4, 8
_RARE_HINTS = frozenset(("role", "itemtype", "itemprop", "aria-label"))


# A superset of what _comment_words / _furniture_words accept (each of their
# words, stems or word pairs holds one of these substrings): one C-level search
# of the lowercased class and id rules both out for nearly every element (279
# of the 9,344 distinct class/id pairs of the dev pages pass it), where the
# word splits cost ~6 us a pair. The exact word tests run only on a hit.
_COMMENT_OR_FURNITURE = _any_of((
    "comment", "replies", "respond", "disqus", "dsq", "livefyre", "wpdiscuz", "comentario",
    "kommentar", "reacties", "yorumlar", "komentar", "pinglun", "crumb", "related", "recirc",
    "outbrain", "taboola", "zergnet", "newsletter", "subscri", "promo", "sponsored",
    "recommend", "trending", "more stories", "most popular", "most read", "also read",
    "read also", "you may like", "popular posts", "edit section"))


def _class_id_flags(cls: str | None, ident: str | None) -> int:
    f = 0
    low = f"{cls or ''} {ident or ''}".lower()
    if _COMMENT_OR_FURNITURE.search(low):
        if (cls and _comment_words(cls)) or (ident and _comment_words(ident)):
            f |= COMMENT
        elif (cls and _furniture_words(cls)) or (ident and _furniture_words(ident)):
            f |= FURNITURE
    if cls or ident:
        if UNLIKELY.search(low) and not MAYBE.search(low):
            f |= UNLIKELY_HINT
        if ("content" in low or "body" in low or "main" in low or "entry" in low) \
                and _MAIN_NAME_RE.search(low):
            f |= NAMED
    return f


def hint_flags(el, keys=None) -> int:
    """COMMENT | UNLIKELY_HINT bits from the element's attributes.
    COMMENT: a comment thread or one comment (class/id words such as
    comments, commentlist, disqus_thread, replies, respond; schema.org
    Comment microdata). UNLIKELY_HINT: class/id/role mark page furniture
    (menus, share bars, sidebars...). Memoised on class and id, which
    repeat across a page and a site; role/itemtype/itemprop are rare."""
    cls = el.get("class")
    ident = el.get("id")
    key = (cls, ident)
    f = _unlikely_cache.get(key)
    if f is None:
        f = _class_id_flags(cls, ident)
        if len(_unlikely_cache) > _CACHE_MAX:
            _unlikely_cache.clear()
        _unlikely_cache[key] = f
    if not _RARE_HINTS.isdisjoint(keys if keys is not None else el.keys()):
        role = el.get("role")
        if role and role.strip().lower() in UNLIKELY_ROLES:
            f |= UNLIKELY_HINT
        itemtype = el.get("itemtype") or ""
        itemprop = (el.get("itemprop") or "").strip().lower()
        if "schema.org/Comment" in itemtype or "UserComments" in itemtype or \
                itemprop in ("comment", "comments"):
            f |= COMMENT
        elif "BreadcrumbList" in itemtype or itemprop == "breadcrumb" or \
                "breadcrumb" in (el.get("aria-label") or "").lower():
            f |= FURNITURE
        if itemprop in ("articlebody", "maincontentofpage") or \
                (role and role.strip().lower() == "main"):
            f |= NAMED
    return f if el.tag not in _NEVER_UNLIKELY else 0


def is_comment(el) -> bool:
    return bool(hint_flags(el) & COMMENT)


def is_unlikely(el) -> bool:
    return bool(hint_flags(el) & UNLIKELY_HINT)


_NEVER_UNLIKELY = frozenset(("a", "body", "html"))


def measure(body, skip: set, unlikely: bool = False, comments: bool = True,
            prose: Prose | None = None) -> Measure:
    """One recursive walk: text/link/comma/image counts for every element, and
    the readability points of each paragraph given to its three nearest
    ancestors (passed down as arguments: cheaper than a stack). Depth is
    bounded by the parser (libxml2 caps HTML nesting at 256 without
    huge_tree), well under Python's recursion limit.

    The same walk finds the hidden elements (into m.hidden), the comment
    threads (m.comments, unless comments=False) and, with unlikely=True, the
    class/id/role-flagged furniture (m.unlikely; not the chain `prose.kept`
    that holds the page's prose inside a boilerplate tag), and leaves them
    out. That saves
    separate passes over the tree. `skip` says what else to leave out."""
    m = Measure()
    hidden = m.hidden
    flagged = m.unlikely
    found_comments = m.comments if comments else None
    named = m.named
    hint_unlikely = unlikely
    hiding_attrs = HIDING_ATTRS
    hint_attrs = HINT_ATTRS
    kept = prose.kept if prose is not None else ()
    stats = m.stats
    points = m.points
    score_tags = SCORE_TAGS
    block_child = BLOCK_CHILD
    pget = points.get
    loose_tags = LOOSE_TAGS
    never_unlikely = _NEVER_UNLIKELY

    def walk(el, tag, p1, p2, p3):  # tag: el.tag, which the caller has read
        t = el.text
        tl = cm = 0
        if t:
            t = t.strip()
            if t:
                tl = len(t)
                cm = t.count(",")
        dtl = tl  # the element's own (direct) text
        dcm = cm
        ll = 0
        ni = 1 if tag == "img" else 0
        has_block = False
        for ch in el:
            ctag = ch.tag
            if ctag.__class__ is str:
                keys = ch.keys()
                if keys:
                    if not hiding_attrs.isdisjoint(keys) and is_hidden(ch, keys):
                        hidden.add(ch)
                        ctag = None
                    elif ctag not in never_unlikely and not hint_attrs.isdisjoint(keys):
                        # (hint_flags is 0 for links: no call for each <a class>)
                        f = hint_flags(ch, keys)
                        if f:
                            if f & NAMED:
                                named.append(ch)
                            if f & COMMENT:
                                if found_comments is not None:
                                    found_comments[ch] = None
                                    ctag = None
                            elif kept and ch in kept:
                                pass
                            elif f & FURNITURE:
                                hidden.add(ch)  # in every pass, like a hidden element
                                ctag = None
                            elif hint_unlikely and f & UNLIKELY_HINT:
                                flagged.add(ch)
                                ctag = None
                if ctag == "main":
                    named.append(ch)
            if ctag.__class__ is str and not (skip and ch in skip):
                ctl, cll, ccm, cni = walk(ch, ctag, el, p1, p2)
                tl += ctl
                ll += cll
                cm += ccm
                ni += cni
                if ctag in block_child:
                    has_block = True
                elif ctag in loose_tags:
                    # Phrasing content (<span>, <font>, <b> ...) between the
                    # blocks of a div is loose text too: ASP.NET labels,
                    # <span id="lblBody">text<br>text</span>.
                    dtl += ctl - cll
                    dcm += ccm
            tail = ch.tail
            if tail:
                tail = tail.strip()
                if tail:
                    n = len(tail)
                    c = tail.count(",")
                    tl += n
                    cm += c
                    dtl += n
                    dcm += c
        if tag == "a":
            ll = tl
        r = stats[el] = (tl, ll, cm, ni)
        if tag in score_tags or (tag == "div" and not has_block):
            if tl >= 25 and p1 is not None:
                score = 2 + cm + min(tl // 100, 3)
                points[p1] = pget(p1, 0.0) + score
                if p2 is not None:
                    points[p2] = pget(p2, 0.0) + score / 2
                    if p3 is not None:
                        points[p3] = pget(p3, 0.0) + score / 6
        elif tag == "div" and dtl >= 25:
            # Loose text between the blocks of a div scores as a paragraph
            # whose parent is the div itself.
            score = 2 + dcm + min(dtl // 100, 3)
            points[el] = pget(el, 0.0) + score
            if p1 is not None:
                points[p1] = pget(p1, 0.0) + score / 2
                if p2 is not None:
                    points[p2] = pget(p2, 0.0) + score / 6
        return r

    try:
        walk(body, body.tag, None, None, None)
    finally:
        # `walk` calls itself through its closure: a reference cycle that
        # holds every element's proxy (stats, points) and so the page's whole
        # tree until the cyclic GC runs: about ten pages' trees alive at a
        # time, freed in the GC's pauses. Without it the tree goes by
        # reference counting when the page is done.
        walk = None
    return m


@dataclass
class Selection:
    parts: list          # article subtrees, DOM order
    top: object          # the top candidate element
    skip: set            # elements the emitter must leave out (hidden ones too)
    chars: int           # text characters in parts (after skips, approximate)
    measure: Measure = None


def _score(el, m: Measure, weigh: bool) -> float:
    tl, ll = m.stats.get(el, _NO_STATS)[:2]
    s = m.points.get(el, 0.0) + TAG_SCORE.get(el.tag, 0)
    if weigh:
        s += class_weight(el)
    return s * (1.0 - (ll / tl if tl else 0.0))


def _ancestors(el, stop):
    out = []
    p = el.getparent()
    while p is not None and p is not stop:
        out.append(p)
        p = p.getparent()
    return out


def select(body, m: Measure, skip: set, weigh=True, clean=True) -> Selection:
    """One sieve pass over the statistics of one walk; `skip` (a fresh set,
    extended here by the conditional cleaning) is what the walk left out."""
    scores = {el: _score(el, m, weigh) for el in m.points}
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:N_TOP]
    if not ranked or ranked[0] is body:
        top = body
    else:
        top = ranked[0]
        top_score = scores[top] or 1e-9
        # Several close competitors under one ancestor: the article is split
        # in blocks (e.g. one div per section); take their common ancestor.
        alts = [set(_ancestors(c, body)) for c in ranked[1:]
                if scores[c] / top_score >= 0.75]
        if len(alts) >= 3:
            p = top.getparent()
            while p is not None and p is not body:
                if sum(p in a for a in alts) >= 3:
                    top = p
                    break
                p = p.getparent()
        # A parent scoring higher than its child is a better container.
        p = top.getparent()
        last = scores.get(top, 0.0)
        threshold = last / 3
        while p is not None and p is not body:
            if p not in scores:
                p = p.getparent()
                continue
            ps = scores[p]
            if ps < threshold:
                break
            if ps > last:
                top = p
                break
            last = ps
            p = p.getparent()
        # An only child: its parent lets the sibling pass see more.
        p = top.getparent()
        while p is not None and p is not body and len(p) == 1:
            top = p
            p = top.getparent()
        top = _grow(top, body, m)
    if top is body:
        parts = [body]
    else:
        parts = _siblings(top, scores, m, skip)
    chars = sum(m.stats.get(p, _NO_STATS)[0] for p in parts)
    if clean:
        before = set(skip)
        for part in parts:
            clean_conditionally(part, m, scores, skip, weigh)
        cut = skip - before
        for el in cut:
            p = el.getparent()
            while p is not None and p not in cut:
                p = p.getparent()
            if p is None:  # outermost cut: its text leaves the article
                chars -= m.stats.get(el, _NO_STATS)[0]
    return Selection(parts, top, skip, chars, m)


# The region grows to its parent while the parent adds prose: at least
# GROW_SHARE of the region's own non-link text more, of which at most
# GROW_MAX_LINK_DENSITY is links. A landing or corporate page, or an article
# laid out in table rows or in sections of one column, is one region whose
# blocks score apart; a sidebar, a link list or a teaser feed adds links or
# little text and stops the growth.
GROW_SHARE = 0.5
GROW_MAX_LINK_DENSITY = 0.25


def _grow(top, body, m: Measure):
    """The largest ancestor of `top` below <body> reached by steps that each
    add enough prose (see GROW_SHARE); wrappers that add no text are passed
    through but not chosen (their siblings are not the article's)."""
    stats = m.stats
    best = cur = top
    while True:
        p = cur.getparent()
        if p is None or p is body:
            return best
        ptl, pll = stats.get(p, _NO_STATS)[:2]
        ttl, tll = stats.get(cur, _NO_STATS)[:2]
        extra, extra_links = ptl - ttl, pll - tll
        if extra > 0:
            if (extra - extra_links < GROW_SHARE * (ttl - tll)
                    or extra_links > GROW_MAX_LINK_DENSITY * extra):
                return best
            best = p
        cur = p


def _siblings(top, scores, m: Measure, skip):
    parent = top.getparent()
    top_score = scores.get(top, 0.0)
    threshold = max(10.0, top_score * 0.2)
    top_cls = top.get("class") or ""
    parts = []
    for sib in parent:
        if sib is top:
            parts.append(sib)
            continue
        if sib in skip or not isinstance(sib.tag, str):
            continue
        same = top_cls and sib.get("class") == top_cls and sib.tag == top.tag
        bonus = top_score * 0.2 if same else 0.0
        if sib in scores and scores[sib] + bonus >= threshold:
            parts.append(sib)
        elif same and _is_prose_block(sib, m):
            # Another section of the same template (a landing page's
            # sections, an article cut in same-class blocks) holding prose
            # that scores little: headings, list items and short divs.
            parts.append(sib)
        elif sib.tag == "p":
            tl, ll = m.stats.get(sib, _NO_STATS)[:2]
            ld = ll / tl if tl else 0.0
            if tl > 80 and ld < 0.25:
                parts.append(sib)
            elif 0 < tl <= 80 and ll == 0 and _ends_sentence(sib):
                parts.append(sib)
    return parts


SAME_CLASS_MIN_CHARS = 80
SAME_CLASS_MAX_LINK_DENSITY = 0.25


def _is_prose_block(el, m: Measure) -> bool:
    tl, ll = m.stats.get(el, _NO_STATS)[:2]
    return tl >= SAME_CLASS_MIN_CHARS and ll <= SAME_CLASS_MAX_LINK_DENSITY * tl


_SENTENCE = re.compile(r"\.( |$)")


def _ends_sentence(el) -> bool:
    return bool(_SENTENCE.search(" ".join("".join(el.itertext()).split())))


def _count(el, tag) -> int:
    n = 0
    for _ in el.iter(tag):
        n += 1
    return n


def _has_ancestor(el, tag, stop, depth=3) -> bool:
    p = el.getparent()
    while p is not None and p is not stop and depth:
        if p.tag == tag:
            return True
        p = p.getparent()
        depth -= 1
    return False


KEY_VALUE_MIN_ROWS = 5
_CELLS = ("td", "th")


def is_key_value_table(t) -> bool:
    """An infobox or a spec sheet: at least KEY_VALUE_MIN_ROWS rows, and half
    of all, of a short label cell (under 40 characters) and a value cell --
    data even with a table nested in it (Wikipedia's infobox holds its map
    and coat of arms in one)."""
    rows = pairs = 0
    for tr in t.iter("tr"):
        rows += 1
        cells = [c for c in tr if c.tag in _CELLS]
        if len(cells) == 2 and len(" ".join("".join(cells[0].itertext()).split())) < 40:
            pairs += 1
    return pairs >= KEY_VALUE_MIN_ROWS and 2 * pairs >= rows


def _is_data_table(t) -> bool:
    if t.get("role") == "presentation" or t.get("datatable") == "0":
        return False
    if t.get("summary") or t.find(".//caption") is not None:
        return True
    for tag in ("th", "thead", "tfoot", "colgroup", "col"):
        if next(t.iter(tag), None) is not None:
            return True
    if is_key_value_table(t):
        return True
    if _count(t, "table") > 1:
        return False  # nested tables are layout
    rows = _count(t, "tr")
    cols = max((len(tr) for tr in t.iter("tr")), default=0)
    return rows >= 10 or cols > 4 or rows * cols > 10


def _holds_data_table(el, skip) -> bool:
    """A block holding a data table is not cut for its links or its lack of
    <p>s (Readability: "keep element if it has a data table"): a table of
    linked names in a scrolling frame <div> is the page's data."""
    return any(t not in skip and _is_data_table(t) for t in el.iter("table"))


def clean_conditionally(part, m: Measure, scores, skip: set, weigh: bool):
    """Mark for skipping the blocks inside an article part that look like
    furniture: negative score, more images/list items/inputs than prose, or
    link-heavy. Short bylines, share widgets and negatively-hinted h1/h2 go too.
    Deepest elements are judged first, as their removal is what a reader sees.
    Data tables and anything inside a table or <code> are kept."""
    stats = m.stats
    for el in reversed([e for e in part.iter(*CONDITIONAL_TAGS, "h1", "h2") if e is not part]):
        if el in skip:
            continue
        tl, ll, cm, nimg = stats.get(el, _NO_STATS)
        if not tl and not nimg:
            continue  # nothing a reader would see either way
        tag = el.tag
        w = class_weight(el) if weigh else 0
        if tag == "h1" or tag == "h2":
            if w < 0:
                skip.add(el)
            continue
        cls_id = f"{el.get('class') or ''} {el.get('id') or ''}".lower()
        if tl < 500 and SHARE.search(cls_id) or tl < 100 and BYLINE.search(cls_id):
            skip.add(el)
            continue
        if w + scores.get(el, 0.0) < 0:
            cut = True
        elif nimg == 1 and tl < 300 and w >= 0 and ll * 2 <= tl:
            # One image with at most a caption (e.g. Wikipedia's thumb divs):
            # a figure in all but name, the unit M3W wants most. (A linked
            # headline under a thumbnail is a teaser, not a caption.)
            cut = False
        elif cm >= 10:
            cut = False
        else:
            p = li = inputs = embeds = 0  # one C-level iter, counted in place
            for e in el.iter(*_COUNTED):
                t = e.tag
                if t == "p":
                    p += 1
                elif t == "li":
                    li += 1
                elif t == "input":
                    inputs += 1
                else:
                    embeds += 1
            li -= 100
            ld = ll / tl if tl else 0.0
            is_list = tag == "ul" or tag == "ol"
            cut = ((not is_list and li > p)
                   or inputs > p // 3
                   or (not is_list and w < 25 and ld > 0.2)
                   or (w >= 25 and ld > 0.5)
                   or (embeds == 1 and tl < 75) or embeds > 1)
            if not cut and ((nimg > 1 and p / nimg < 0.5)
                            or (not is_list and tl < 25 and (nimg == 0 or nimg > 2))):
                cut = not _has_ancestor(el, "figure", part, depth=-1)
        if cut and not (tag == "table" and _is_data_table(el)
                        or _has_ancestor(el, "table", part)
                        or _has_ancestor(el, "code", part)
                        or (tag != "table" and _holds_data_table(el, skip))):
            skip.add(el)


_NO_STATS = (0, 0, 0, 0)


FORUM_MAX_CHARS = 100  # under this (a title), a page is its comment thread (forum, Q&A)
# (strip unlikely, class weights, conditional cleaning): Readability's sieve.
PASSES = ((True, True, True), (False, True, True), (False, False, True),
          (False, False, False))


def find_main_content(body, keep_comments: bool = False, prose: Prose | None = None) -> Selection:
    """Readability's sieve: strict rules first; if the article is too short,
    retry without removing unlikely candidates, then without class weights,
    then without conditional cleaning; keep the first long enough result, or
    the longest one. Hidden elements and comment threads are left out of
    every pass; the relaxed passes share one walk. A page with (almost)
    nothing but a thread gets the thread. keep_comments: the threads outside
    the article follow it, in page order."""
    prose = prose if prose is not None else Prose(body)
    strict = measure(body, set(), unlikely=True, prose=prose)
    relaxed = None
    best = None
    for strip_unlikely, weigh, clean in PASSES:
        if strip_unlikely:
            m = strict
            skip = strict.hidden | strict.unlikely | strict.comments.keys()
        else:
            if relaxed is None:
                # Unlikely subtrees come back: find the hidden elements and
                # threads inside them.
                relaxed = measure(body, set(strict.comments))
                relaxed.comments = {**strict.comments, **relaxed.comments}
            m = relaxed
            skip = relaxed.hidden | relaxed.comments.keys()
        sel = select(body, m, skip, weigh, clean)
        if best is None or sel.chars > best.chars:
            best = sel
        if sel.chars >= MIN_ARTICLE_CHARS:
            break
    named = _named_main(body, best, best.measure)
    if named is not None:
        best = named
    if best.chars < MIN_ARTICLE_CHARS:
        rows = _rows_region(best, best.measure)
        if rows is not None:
            best = rows
    threads = (relaxed or strict).comments
    if best.chars < FORUM_MAX_CHARS and threads:
        m = measure(body, set(), comments=False)
        sel = select(body, m, set(m.hidden), weigh=False)  # "comment" weighs -25
        if sel.chars > best.chars:
            return sel
    if keep_comments and threads:
        _add_threads(best, threads)
    return best


def _inside(el, container) -> bool:
    while el is not None:
        if el is container:
            return True
        el = el.getparent()
    return False


def _named_main(body, best: Selection, m: Measure) -> Selection | None:
    """The page names its main content, and the scorer's choice lies wholly
    outside it (a sidebar of forum teasers or a login box outscored a short
    template page): the named container wins when it holds at least
    NAMED_MIN_CHARS of non-link text after the sieve, which is run inside it
    (its own best candidate and siblings, conditionally cleaned). When the
    choice is inside the named container, or contains it, it stands."""
    top = best.top
    if top is body:
        return None
    named = [el for el in dict.fromkeys(m.named) if el not in best.skip and el in m.stats]
    if any(_inside(top, el) or _inside(el, top) for el in named):
        return None
    for el in named:
        tl, ll = m.stats[el][:2]
        if tl - ll < NAMED_MIN_CHARS:
            continue
        inner = {e: v for e, v in m.points.items() if _inside(e, el)}
        sub = Measure(stats=m.stats, points=inner, hidden=m.hidden, unlikely=m.unlikely,
                      comments=m.comments)
        sel = select(el, sub, set(best.skip), True, True)
        if sel.chars >= NAMED_MIN_CHARS:
            return sel
    return None


# A page that is a listing -- a job board, a price list, an index of linked
# titles with dates -- has no prose to score and no pass reaches
# MIN_ARTICLE_CHARS. Its content is the container with the most rows:
# children of one tag and class (at least ROWS_MIN of them and ROWS_SHARE of
# its children), each with at least two elements (cells: a title link and a
# date, a <li> per column) and ROWS_MIN_ROW_CHARS of text. It replaces the
# weak choice when it holds ROWS_OVER times its text.
ROWS_MIN = 5
ROWS_SHARE = 0.6
ROWS_MIN_CELLS = 2
ROWS_MIN_ROW_CHARS = 15
ROWS_OVER = 2.0


def _rows_region(best: Selection, m: Measure) -> Selection | None:
    """The listing's container (see ROWS_MIN), or None: the walked element
    with the most rows, then the most text, holding ROWS_OVER times the
    weak choice's text. Runs only when no pass found an article."""
    stats = m.stats
    skip = best.skip
    need = ROWS_OVER * max(best.chars, 1)
    found, found_key = None, (0, 0)
    for el, st in stats.items():
        tl = st[0]
        if tl < need or len(el) < ROWS_MIN:
            continue
        sig = collections.Counter()
        n = 0
        for ch in el:
            if ch.tag.__class__ is str and ch not in skip:
                n += 1
                if len(ch) >= ROWS_MIN_CELLS and stats.get(ch, _NO_STATS)[0] >= ROWS_MIN_ROW_CHARS:
                    sig[(ch.tag, ch.get("class"))] += 1
        if not sig:
            continue
        c = sig.most_common(1)[0][1]
        if c >= ROWS_MIN and c >= ROWS_SHARE * n and (c, tl) > found_key:
            found, found_key = el, (c, tl)
    if found is None:
        return None
    return Selection([found], found, set(skip), stats[found][0], m)


def _add_threads(sel: Selection, threads: dict) -> None:
    """The comment threads come back (without their reply forms): those
    inside the article where they are, the others (outermost only) after
    the article in page order."""
    sel.skip.difference_update(threads)
    parts = set(sel.parts)
    for el in threads:
        sel.skip.update(el.iter("form"))  # "Leave a reply": not the thread's text
        p = el.getparent()
        while p is not None and p not in parts and p not in threads:
            p = p.getparent()
        if p is None:
            sel.parts.append(el)
