"""The extraction dev set: real pages with the text a reader calls the page's
content, grouped by kind of page (see tests/data/PROVENANCE.md).

- ``news``: tests/data/html/readability/NAME (Mozilla Readability's test
  pages; the reference is the visible text of expected.html);
- every other set under tests/data/html/SET/NAME holds ``meta.json`` (url,
  kind, lang, charset, origin, licence, note), ``expected.txt`` (the content,
  one block a line, written by hand) and either ``source.html.gz`` (the page's
  bytes as served) or, for pages that live in a bundled WARC, ``warc`` +
  ``record`` naming the record in tests/data/warc (one copy of each page).

``load_pages()`` returns them all as :class:`DevPage` (bytes + the HTTP
charset, so a caller can run the job's own decoding); ``f1`` is the score
every report uses: bag-of-tokens F1 where a token is a lowercased run of word
characters, except that characters of scripts written without spaces (Han,
kana, Thai, Lao, Khmer, Myanmar) are one token each, so a Chinese page is not
scored as a handful of sentence-long "words".
"""
from __future__ import annotations

import collections
import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "tests" / "data" / "html"
WARCS = ROOT / "tests" / "data" / "warc"
READABILITY_URL = "http://fakehost/test/page.html"  # the URL readability's tests use

_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
             "\u4e00-\u9fff\uf900-\ufaff")
_TOKEN = re.compile(rf"[{_UNSPACED}]|(?:(?![{_UNSPACED}])\w)+")
_INVISIBLE = ("script", "style", "noscript", "template")


@dataclass
class DevPage:
    set: str
    name: str
    kind: str
    lang: str
    url: str
    body: bytes
    charset: str | None
    expected: str  # the reference text
    expected_html: str | None = None  # readability's expected.html (images are scored on it)


def tokens(text: str) -> collections.Counter:
    return collections.Counter(_TOKEN.findall(text.lower()))


def f1(pred: collections.Counter, ref: collections.Counter) -> float:
    if not pred and not ref:
        return 1.0
    overlap = sum((pred & ref).values())
    if not overlap:
        return 0.0
    p = overlap / sum(pred.values())
    r = overlap / sum(ref.values())
    return 2 * p * r / (p + r)


def visible_text(html: str | bytes) -> str:
    """All text of <body> except script/style/noscript/template."""
    import lxml.html
    from lxml import etree

    root = lxml.html.fromstring(html)
    etree.strip_elements(root, *_INVISIBLE, etree.Comment, with_tail=False)
    body = root.find(".//body")
    return " ".join((body if body is not None else root).itertext())


@lru_cache(maxsize=None)
def _warc_bodies(name: str) -> dict[str, bytes]:
    from warcio.archiveiterator import ArchiveIterator

    out = {}
    with open(WARCS / name, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type == "response":
                out[rec.rec_headers.get_header("WARC-Record-ID")] = rec.content_stream().read()
    return out


def _readability() -> list[DevPage]:
    out = []
    for d in sorted((HTML / "readability").glob("*/source.html.gz")):
        d = d.parent
        exp = gzip.decompress((d / "expected.html.gz").read_bytes()).decode("utf-8", "replace")
        out.append(DevPage("readability", d.name, "news", "", READABILITY_URL,
                           gzip.decompress((d / "source.html.gz").read_bytes()), None,
                           visible_text(exp), exp))
    return out


def _annotated(set_dir: Path) -> list[DevPage]:
    out = []
    for meta_path in sorted(set_dir.glob("*/meta.json")):
        d = meta_path.parent
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if "warc" in meta:
            body = _warc_bodies(meta["warc"])[meta["record"]]
        else:
            body = gzip.decompress((d / "source.html.gz").read_bytes())
        out.append(DevPage(set_dir.name, d.name, meta["kind"], meta.get("lang", ""), meta["url"],
                           body, meta.get("charset"), (d / "expected.txt").read_text(encoding="utf-8")))
    return out


def set_names() -> list[str]:
    return sorted(p.name for p in HTML.iterdir() if p.is_dir())


def add_sets_flag(ap) -> None:
    """The benchmarks' --sets flag (an argparse parser's)."""
    ap.add_argument("--sets", default="", help=f"comma-separated subset of {','.join(set_names())}")


def pages_of_flag(ap, value: str) -> list[DevPage]:
    """The dev pages --sets names (all when empty); an unknown name is the parser's error."""
    sets = [s for s in value.split(",") if s] or None
    unknown = set(sets or []) - set(set_names())
    if unknown:
        ap.error(f"--sets: unknown set(s) {', '.join(sorted(unknown))}; choose from {', '.join(set_names())}")
    return load_pages(sets)


def load_pages(sets: list[str] | None = None) -> list[DevPage]:
    """Every dev page of ``sets`` (default: all), readability first."""
    out = []
    for name in sets or set_names():
        out.extend(_readability() if name == "readability" else _annotated(HTML / name))
    return out
