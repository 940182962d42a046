"""HTML → interleaved document (step 3 of the M3W job).

`extract_page(html, url)` parses a page with lxml and returns its text blocks
and images in DOM order, the form M3W keeps (Flamingo: images stay where the
page put them). The steps, cheapest first:

1. parse with libxml2 (comments and PIs dropped by the parser; no huge_tree,
   so nesting is capped at 256 levels and a text node at 10 MB: deeply nested
   or giant inputs cannot blow the stack or the memory of a worker);
2. C-level strips: script/style/noscript/template/svg/iframe/form controls,
   and the boilerplate tags nav/header/footer/aside/menu/dialog and forms
   (an <article>'s own <header> stays: title, dek, hero image) -- unless
   the element holds most of the page's prose (`_clean`: libxml2's tree is
   not the browser's where an inner <div> is left open; ASP.NET pages and
   shops put the content inside a <form>); lazy-loading placeholders give
   way to the real <img> in their <noscript>;
3. main-content selection (pipeline.main_content), unless
   `ExtractConfig(main_content=False)`. Its one walk over the body also
   finds the hidden elements (hidden, aria-hidden=true, display:none,
   visibility:hidden), the comment threads (dropped unless
   `ExtractConfig(keep_comments=True)`, which puts them after the article)
   and the class/id/role-flagged furniture; plus a hero image just before
   the chosen subtree (`_lead_images`);
4. one recursive walk of the kept subtrees emitting text blocks (p, headings,
   li, td, blockquote, pre, dd, figcaption, ... — whitespace-normalised) and
   `ImageRef`s (with main_content=False this walk drops hidden elements).

Figcaptions: the caption of a `<figure>` is stored on each image of that
figure (`ImageRef.caption`) AND stays in `nodes` as the text block where the
page has it (usually right after the image). For M3W that is the text a
reader sees next to the image, the best-aligned text of the page, so it is
kept in the stream; the pairs job reads `caption` instead. A serialiser must
not add `caption` to the text a second time.

Images: URL from srcset-like attributes (largest w, else largest x), then
lazy-loading attributes (data-src and friends), then src; `<picture>`
sources join the srcset candidates. Relative URLs resolve against `<base
href>` (itself resolved against the page URL). data: URIs, 1x1 images and
known tracking pixels are dropped and counted in `Page.dropped`; a URL
already emitted on the page is not emitted twice ("duplicate_image").
"""
from __future__ import annotations

import collections
import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree

from pipeline import main_content
from pipeline.filters import case_free_searcher
from pipeline.main_content import HIDING_ATTRS as _HIDING_ATTRS, is_hidden


@dataclass
class ImageRef:
    url: str
    alt: str = ""
    title: str = ""
    caption: str = ""  # text of the <figcaption> of the image's <figure>
    width: int | None = None  # as declared in the attributes
    height: int | None = None


@dataclass
class Page:
    url: str  # base URL used for resolution (after <base href>)
    title: str
    lang: str | None
    nodes: list  # DOM order: str (one text block) or ImageRef
    dropped: collections.Counter = field(default_factory=collections.Counter)
    # Parallel to nodes: for a text block (tag of the block element that holds
    # it, id of the table or list it is a cell or item of, or None); None for
    # an image. The paragraph filters judge cells, items and headings in
    # this context (pipeline.filters.text_drop_reasons).
    roles: list = field(default_factory=list)


@dataclass(frozen=True)
class ExtractConfig:
    main_content: bool = True  # False: all visible text minus boilerplate tags
    keep_comments: bool = False  # comment threads follow the article (main_content only)


# --- parsing -----------------------------------------------------------------

_local = threading.local()


def _parser(forced_utf8: bool) -> etree.HTMLParser:
    """libxml2 parsers are not thread-safe; one pair per thread."""
    ps = getattr(_local, "parsers", None)
    if ps is None:
        kw = dict(remove_comments=True, remove_pis=True, no_network=True,
                  recover=True, huge_tree=False, collect_ids=False)
        ps = _local.parsers = (etree.HTMLParser(**kw),
                               etree.HTMLParser(encoding="utf-8", **kw))
    return ps[1] if forced_utf8 else ps[0]


def _parse(html: str | bytes, dropped: collections.Counter, utf8: bytes | None = None):
    if utf8 is not None and isinstance(html, str):
        data = utf8  # html's UTF-8 encoding already (see extract_page)
        parser = _parser(True)
    elif isinstance(html, str):
        # Encode ourselves: a lone surrogate becomes "?" instead of silently
        # emptying its element, and an <?xml encoding?> prolog is harmless.
        data = html.encode("utf-8", "replace")
        parser = _parser(True)
    elif isinstance(html, (bytes, bytearray, memoryview)):
        data = bytes(html)  # libxml2 sniffs BOM/<meta charset>
        parser = _parser(False)
    else:
        dropped["bad_input_type"] += 1
        return None
    if not data.strip():
        dropped["empty_document"] += 1
        return None
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError, TypeError):  # recover=True rarely raises
        dropped["parse_error"] += 1
        return None
    if root is None:
        dropped["empty_document"] += 1
        return None
    return root


# --- cleaning ----------------------------------------------------------------

# Never visible as text, or not content.
_STRIP_TAGS = ("script", "style", "noscript", "template", "svg", "canvas",
               "iframe", "object", "embed", "select", "button", "input",
               "textarea", "head", "link", "meta", "audio", "video", "map")
_BOILERPLATE_TAGS = ("nav", "header", "footer", "aside", "menu", "dialog")
def _remove(el) -> None:
    """Remove an element, keeping its tail text in the document."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail and tail.strip():
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def _unwrap_noscript_images(noscripts) -> None:
    """Lazy-loading pages put the real <img> in a <noscript> next to a
    placeholder. Keep the noscript image, drop the placeholder(s) before it."""
    for ns in noscripts:
        imgs = list(ns.iter("img"))
        if len(imgs) != 1:
            continue
        parent = ns.getparent()
        if parent is None:
            continue
        placeholders = []
        sib = ns.getprevious()
        looked = 0
        while sib is not None and looked < 3:
            if isinstance(sib.tag, str):
                looked += 1
                if sib.tag == "img":
                    placeholders.append(sib)
                else:
                    found = list(sib.iter("img"))
                    if len(found) != 1 or "".join(sib.itertext()).strip():
                        break  # real content, not a placeholder wrapper
                    placeholders.extend(found)
            sib = sib.getprevious()
        if not placeholders:
            continue
        for ph in placeholders:
            _remove(ph)
        img = imgs[0]
        img.tail = None
        ns.addprevious(img)


def _clean(root, body, forms_to_scorer: bool = False) -> main_content.Prose:
    """Strip what is never article text (C-level, whole subtrees). Hidden
    elements are left to the walks, which test each element anyway.

    A boilerplate element (nav/header/footer/aside/menu/dialog) or a <form>
    is kept when it holds most of the page's prose. libxml2 does not build
    the tree a browser does: `<header><div>logo</header><main>...` leaves the
    div open, ignores `</header>`, and the whole article lands inside the
    header (an HTML5 parser closes both). ASP.NET pages wrap the whole body
    in one <form>, shops put the product's description inside the order
    form. With `forms_to_scorer` (main-content scoring on) forms stay for the
    scorer, as in Readability: one outside the article goes with the rest of
    the page, one inside it is judged by its text and links like any block
    (a share of the page's prose is a fragile test for a form that holds a
    product's description next to a menu of links). Returns the page's
    `Prose` measure for the main-content scorer."""
    found = {"noscript": [], "article": [], "form": []}
    boiler = []
    for el in root.iter("noscript", "article", "form", *_BOILERPLATE_TAGS):  # one C-level pass
        lst = found.get(el.tag)
        if lst is None:
            boiler.append(el)
        else:
            lst.append(el)
    _unwrap_noscript_images(found["noscript"])
    etree.strip_elements(root, *_STRIP_TAGS, with_tail=False)
    # An article's own <header> holds its title, byline and hero image; the
    # page's <header> is the site banner. Keep the former (as a plain div).
    for art in found["article"]:
        for h in art.iter("header"):
            h.tag = "div"
    prose = main_content.Prose(body)
    # Outermost first: an element inside a removed one goes with it; one
    # inside a kept one is judged on its own.
    for el in boiler + ([] if forms_to_scorer else found["form"]):
        if el.tag in _BOILERPLATE_TAGS or el.tag == "form":
            if prose.holds_most(el):
                prose.keep(el)
            else:
                _remove(el)
    return prose


# --- metadata ----------------------------------------------------------------

_LANG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_].*)?$")


def _norm(s: str | None) -> str:
    return " ".join(s.split()) if s else ""


def _title(root) -> str:
    t = root.find(".//title")
    if t is not None:
        s = _norm("".join(t.itertext()))
        if s:
            return s
    for el in root.iter("h1"):
        s = _norm("".join(el.itertext()))
        if s:
            return s
    return ""


def _lang(root, html=None) -> str | None:
    html = root if html is None else html
    cands = [html.get("lang"), html.get("{http://www.w3.org/XML/1998/namespace}lang"),
             html.get("xml:lang")]
    for meta in root.iter("meta"):
        if (meta.get("http-equiv") or "").lower() == "content-language":
            cands.append(meta.get("content"))
    for c in cands:
        if c:
            m = _LANG.match(c.strip().split(",")[0].strip())
            if m:
                return m.group(1).lower()
    return None


def _base_url(root, url: str) -> str:
    for base in root.iter("base"):
        href = (base.get("href") or "").strip()
        if href and not href.lower().startswith(("javascript:", "data:")):
            try:
                resolved = urljoin(url, href)
            except ValueError:
                return url
            if urlsplit(resolved).scheme in ("http", "https"):
                return resolved
        break
    return url


# --- images ------------------------------------------------------------------

_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset", "data-src-set",
                 "data-original-set", "data-lazy-src-set")
_LAZY_ATTRS = ("data-src", "data-lazy-src", "data-original", "data-url",
               "data-hi-res-src", "data-full-src", "data-large-src",
               "data-original-src", "data-lazy", "data-echo", "data-img-src",
               "data-image", "data-actualsrc", "data-orig-src", "data-src-large",
               "data-fallback-src", "data-defer-src", "original-src", "data-cfsrc")
_SRCSET_ITEM = re.compile(r"(\S+)(?:\s+([^,]*))?")
_DIM = re.compile(r"^\s*(\d+)(?:\.\d*)?\s*(?:px)?\s*$", re.I)
_PIXEL_URL = re.compile(
    r"(?:facebook\.com/tr|google-analytics\.com|googletagmanager\.com|"
    r"doubleclick\.net|scorecardresearch\.com|quantserve\.com|/b/ss/|"
    r"pixel\.wp\.com|stats\.wp\.com|analytics\.|bat\.bing\.com|"
    r"(?:^|[/_.-])(?:pixel|spacer|blank|transparent|clear|1x1|beacon|tracking)"
    r"(?:[-_.]\w+)*\.(?:gif|png)(?:$|\?))", re.I)


_pixel_url = case_free_searcher(_PIXEL_URL.pattern)  # _PIXEL_URL.search, faster


def _dim(v: str | None) -> int | None:
    if not v:
        return None
    m = _DIM.match(v)
    return int(m.group(1)) if m else None


def parse_srcset(srcset: str) -> list[tuple[str, float, str]]:
    """[(url, size, unit)] with unit 'w' or 'x' (a bare URL is 1x). URLs may
    contain commas (image CDNs do), so items split at ', ' after a descriptor."""
    out = []
    pos = 0
    n = len(srcset)
    while pos < n:
        while pos < n and (srcset[pos].isspace() or srcset[pos] == ","):
            pos += 1
        m = _SRCSET_ITEM.match(srcset, pos)
        if not m:
            break
        url, desc = m.group(1), m.group(2)
        pos = m.end() + 1
        if url.endswith(",") and not desc:
            url = url.rstrip(",")
        size, unit = 1.0, "x"
        for d in (desc or "").split():
            try:
                if d[-1] in "wW":
                    size, unit = float(d[:-1]), "w"
                elif d[-1] in "xX":
                    size, unit = float(d[:-1]), "x"
            except ValueError:
                pass
        if url:
            out.append((url, size, unit))
    return out


def _largest(cands: list[tuple[str, float, str]]) -> str | None:
    if not cands:
        return None
    ws = [c for c in cands if c[2] == "w"]
    pool = ws or cands
    return max(pool, key=lambda c: c[1])[0]


def _is_usable(u: str | None) -> bool:
    return bool(u) and not u.startswith(("data:", "#", "about:", "javascript:"))


def image_url(img) -> tuple[str | None, str | None]:
    """(raw URL, None) or (None, drop reason) for an <img>-like element."""
    cands = []
    saw_data = False
    for a in _SRCSET_ATTRS:
        v = img.get(a)
        if v:
            cands.extend(c for c in parse_srcset(v) if _is_usable(c[0]))
    parent = img.getparent()
    if parent is not None and parent.tag == "picture":
        for src in parent.iter("source"):
            for a in _SRCSET_ATTRS + ("src", "data-src"):
                v = src.get(a)
                if v:
                    cands.extend(c for c in parse_srcset(v) if _is_usable(c[0]))
    best = _largest(cands)
    if best:
        return best, None
    for a in _LAZY_ATTRS:
        v = img.get(a)
        if v:
            v = v.strip()
            if v.startswith("{"):
                v = _url_from_json(v)  # MSN: data-src='{"default": "/img..."}'
            if _is_usable(v):
                return v, None
            saw_data = saw_data or (v or "").startswith("data:")
    src = (img.get("src") or "").strip()
    if _is_usable(src):
        return src, None
    if src.startswith("data:") or saw_data:
        return None, "data_uri"
    return None, "no_src"


def _url_from_json(v: str) -> str | None:
    """The image URL in a JSON attribute value: the first string under a
    src/url/default-like key, searched breadth-first."""
    try:
        queue = [json.loads(v)]
    except ValueError:
        return None
    for obj in queue[:50]:
        if isinstance(obj, dict):
            for key in ("src", "url", "default", "large", "original"):
                val = obj.get(key)
                if isinstance(val, str):
                    return val.strip()
            queue.extend(obj.values())
        elif isinstance(obj, list):
            queue.extend(obj)
    return None


_BAD_URL_CHARS = re.compile(r"[\s{}<>\"]")


def _is_tracking(url: str, w: int | None, h: int | None) -> bool:
    if (w is not None and w <= 1 and (h is None or h <= 1)) or \
            (h is not None and h <= 1 and w is None):
        return True
    return bool(_pixel_url(url))


# --- emission ----------------------------------------------------------------

_BLOCK = frozenset(
    ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td",
     "th", "dd", "dt", "figcaption", "div", "section", "article", "main", "ul",
     "ol", "dl", "table", "tr", "tbody", "thead", "tfoot", "figure", "address",
     "caption", "hr", "details", "summary", "center", "fieldset", "legend",
     "form", "body", "html", "header", "footer", "nav", "aside", "picture"))
_IMG_TAGS = frozenset(("img", "amp-img"))
_GROUP_TAGS = frozenset(("table", "ul", "ol", "dl"))
# A table or list holding any of these is layout (a page or a column laid out
# in cells), not one block of data: its blocks are judged one by one.
_NOT_IN_GROUP = ("table", "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
                 "pre", "form", "article", "section", "main")


# A <br> in the text buffer (never in parsed text: libxml2 drops NUL).
_BR = "\x00"
LINES_MIN = 4  # verse: at least this many <br>-separated lines ...
REFRAIN_MIN = 2  # ... and this many of them said again


def _has_refrain(lines: list[str]) -> bool:
    """At least REFRAIN_MIN distinct lines of four or more words occur twice
    or more: a chorus, not one repeated label."""
    seen: dict = {}
    for ln in lines:
        if ln.count(" ") >= 3:
            seen[ln] = seen.get(ln, 0) + 1
    return sum(1 for n in seen.values() if n > 1) >= REFRAIN_MIN


def _is_group(el) -> bool:
    for _ in el.iterdescendants(*_NOT_IN_GROUP):
        return False
    return True


class _Emitter:
    __slots__ = ("nodes", "roles", "buf", "skip", "base", "dropped", "seen", "captions",
                 "check_hidden", "block", "group", "n_groups")

    def __init__(self, base: str, skip: set, dropped: collections.Counter,
                 check_hidden: bool = False):
        self.check_hidden = check_hidden  # when no scorer walk found them
        self.nodes: list = []
        self.roles: list = []
        self.block = "body"  # tag of the innermost block being walked
        self.group = None  # id of the table/list being walked
        self.n_groups = 0
        self.buf: list = []
        self.skip = skip
        self.base = base
        self.dropped = dropped
        self.seen: set = set()
        self.captions: list = []

    def flush(self):
        if self.buf:
            raw = "".join(self.buf)
            self.buf = []
            if self.block != "pre" and raw.count(_BR) >= LINES_MIN - 1:
                lines = [s for s in (" ".join(ln.split()) for ln in raw.split(_BR)) if s]
                if len(lines) >= LINES_MIN and _has_refrain(lines):
                    # Verse (a song, a poem): lines broken by <br>, some of
                    # them said again (a chorus). Its lines are the items of
                    # one group, judged as a whole first and line by line
                    # when the whole fails (pipeline.filters.text_drop_reasons),
                    # as OBELICS judges the same lines written as <p>s: a
                    # chorus is the form of a song, not boilerplate repeated.
                    group = self.group
                    if group is None:
                        group = self.n_groups
                        self.n_groups += 1
                    role = (self.block, group)
                    self.nodes.extend(lines)
                    self.roles.extend([role] * len(lines))
                    return
            s = " ".join(raw.replace(_BR, " ").split())
            if s:
                self.nodes.append(s)
                self.roles.append((self.block, self.group))

    def text(self, s: str, tag: str = "figcaption") -> None:
        """A text block emitted out of the walk (a lead figure's caption)."""
        self.nodes.append(s)
        self.roles.append((tag, None))

    def image(self, img):
        raw, why = image_url(img)
        if raw is None:
            self.dropped[why] += 1
            return
        try:
            url = urljoin(self.base, raw)
            scheme = urlsplit(url).scheme
        except ValueError:
            self.dropped["bad_url"] += 1
            return
        if scheme not in ("http", "https") or _BAD_URL_CHARS.search(url):
            self.dropped["bad_url"] += 1
            return
        w, h = _dim(img.get("width")), _dim(img.get("height"))
        if _is_tracking(url, w, h):
            self.dropped["tracking_pixel"] += 1
            return
        if url in self.seen:
            self.dropped["duplicate_image"] += 1
            return
        self.seen.add(url)
        self.flush()
        self.nodes.append(ImageRef(
            url=url, alt=_norm(img.get("alt")), title=_norm(img.get("title")),
            caption=self.captions[-1] if self.captions else "", width=w, height=h))
        self.roles.append(None)

    def walk(self, el, tag=None):
        if tag is None:
            tag = el.tag
        if tag in _IMG_TAGS:
            self.image(el)
            return
        if tag == "br":
            self.buf.append(_BR)
            return
        block = tag in _BLOCK
        if block:
            if self.buf:
                self.flush()
            outer = self.block
            self.block = tag
            opened = (tag in _GROUP_TAGS and self.group is None
                      and (_is_group(el) or tag == "table"
                           and main_content.is_key_value_table(el)))
            if opened:
                self.group = self.n_groups
                self.n_groups += 1
        figure = tag == "figure"
        if figure:
            cap = next(el.iter("figcaption"), None)
            self.captions.append(_norm("".join(cap.itertext())) if cap is not None else "")
        buf = self.buf
        t = el.text
        if t:
            buf.append(t)
        skip = self.skip
        check_hidden = self.check_hidden
        for ch in el:
            ctag = ch.tag
            if ctag.__class__ is str and not (skip and ch in skip):
                if check_hidden:
                    keys = ch.keys()
                    if keys and not _HIDING_ATTRS.isdisjoint(keys) and is_hidden(ch, keys):
                        skip.add(ch)
                        tail = ch.tail
                        if tail:
                            buf.append(tail)
                        continue
                self.walk(ch, ctag)
                buf = self.buf  # flush() replaced it
            tail = ch.tail
            if tail:
                buf.append(tail)
        if figure:
            self.captions.pop()
        if block:
            if self.buf:
                self.flush()
            self.block = outer
            if opened:
                self.group = None


_LEAD_HINT = re.compile(r"hero|lead|featured|feature-image|main-image|top-image|post-image|cover|"
                        r"article-image", re.I)
_lead_hint = case_free_searcher(_LEAD_HINT.pattern)  # _LEAD_HINT.search, faster


def _lead_images(parts, body, em: _Emitter) -> None:
    """A hero figure just before the article body (a previous sibling of the
    main content or of one of its two nearest ancestors, with no prose in
    between) belongs to the article: emit its large images first."""
    node = parts[0]
    for _ in range(3):
        if node is None or node is body:
            return
        sib = node.getprevious()
        looked = 0
        while sib is not None and looked < 3:
            if isinstance(sib.tag, str) and sib not in em.skip:
                looked += 1
                text_len = len(_norm("".join(sib.itertext())))
                imgs = [i for i in sib.iter("img", "amp-img")
                        if _looks_lead(i, sib) and not _skipped(i, sib, em.skip)]
                if imgs:
                    if text_len < 400:  # a figure, not a list of teasers
                        for img in imgs:
                            fig = _figure_of(img, sib)
                            cap = ""
                            if fig is not None:
                                fc = next(fig.iter("figcaption"), None)
                                cap = _norm("".join(fc.itertext())) if fc is not None else ""
                            em.captions.append(cap)
                            em.image(img)
                            em.captions.pop()
                            if cap:
                                em.text(cap)
                    return
                if text_len > 200:
                    return  # prose in between: whatever is above is not the lead
            sib = sib.getprevious()
        node = node.getparent()


def _skipped(el, stop, skip) -> bool:
    while el is not None:
        if el in skip:
            return True
        if el is stop:
            return False
        el = el.getparent()
    return False


def _figure_of(img, stop):
    p = img
    while p is not None:
        if p.tag == "figure":
            return p
        if p is stop:
            return None
        p = p.getparent()
    return None


def _looks_lead(img, container) -> bool:
    w, h = _dim(img.get("width")), _dim(img.get("height"))
    if w is not None or h is not None:
        return (w is None or w >= 300) and (h is None or h >= 150)
    p = img
    while p is not None:
        if p.tag in ("figure", "picture"):
            return True
        hint = f"{p.get('class') or ''} {p.get('id') or ''}"
        if _lead_hint(hint):
            return True
        if p is container:
            return False
        p = p.getparent()
    return False


def extract_page(html: str | bytes, url: str, cfg: ExtractConfig = ExtractConfig(),
                 utf8: bytes | None = None) -> Page:
    """Parse `html` (a decoded str, or bytes for libxml2 to sniff) and return
    its interleaved document. Never raises on bad input: an unusable page
    comes back with nodes=[] and the reason counted in `dropped`.

    utf8: the body `html` was decoded from when that was a strict UTF-8
    decode (pipeline.decode.UTF8_AS_IS), i.e. `html.encode("utf-8")` byte for
    byte: parsed as it is, without encoding the text again (~2% of a page's
    way to a candidate)."""
    dropped: collections.Counter = collections.Counter()
    root = _parse(html, dropped, utf8)
    if root is None:
        return Page(url=url, title="", lang=None, nodes=[], dropped=dropped)
    try:
        return _extract(root, url, cfg, dropped)
    except RecursionError:
        dropped["too_deep"] += 1
    except Exception:  # noqa: BLE001 - a worker must survive any one page
        dropped["extract_error"] += 1
    return Page(url=url, title="", lang=None, nodes=[], dropped=dropped)


def _extract(root, url: str, cfg: ExtractConfig, dropped) -> Page:
    head = root.find("head")
    meta = head if head is not None else root  # <title>/<base>/<meta> live in <head>
    base = _base_url(meta, url)
    title = _title(meta) or _title(root)
    lang = _lang(meta, root)
    body = root.find("body")
    if body is None:
        body = root
    prose = _clean(root, body, forms_to_scorer=cfg.main_content)
    skip: set = set()
    parts = [body]
    top = body
    if cfg.main_content:
        sel = main_content.find_main_content(body, cfg.keep_comments, prose)
        parts, skip, top = sel.parts, sel.skip, sel.top
    # Threads were not walked by the scorer: the emitter finds their hidden parts.
    em = _Emitter(base, skip, dropped,
                  check_hidden=not cfg.main_content or cfg.keep_comments)
    if cfg.main_content and top is not body:
        _lead_images(parts, body, em)
    for part in parts:
        em.walk(part)
    em.flush()
    if not em.nodes:
        dropped["no_content"] += 1
    return Page(url=base, title=title, lang=lang, nodes=em.nodes, dropped=dropped,
                roles=em.roles)
