"""Main-text quality of pipeline.extract on the Readability dev set.

For each of tests/data/html/readability/NAME (89 real pages), the reference
is the visible text of expected.html (Mozilla Readability's article). Score:
bag-of-tokens F1 (lowercased \\w+ tokens, multiset overlap, as in
trafilatura's evaluation) of our text nodes joined, for
  main_content=True, main_content=False (all visible text minus boilerplate
  tags), and raw all visible text of <body>;
plus image recall/precision by resolved URL against expected.html's images
(an expected image matches any of its candidate URLs: src, srcset items,
lazy attributes; data: URIs are not counted). trafilatura is scored too when
it can be imported (never a project dependency; run this file with a Python
that has it, e.g. a throwaway venv).

    .venv/bin/python bench/extract_quality.py [-v] [NAME ...]
"""
from __future__ import annotations

import collections
import gzip
import re
import statistics
import sys
from pathlib import Path
from urllib.parse import urljoin

import lxml.html
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.extract import ExtractConfig, extract_page, parse_srcset  # noqa: E402

DATA = ROOT / "tests" / "data" / "html" / "readability"
PAGE_URL = "http://fakehost/test/page.html"  # the URL readability's tests use
_TOKEN = re.compile(r"\w+")
_INVISIBLE = ("script", "style", "noscript", "template")
_IMG_ATTRS = ("src", "data-src", "data-lazy-src", "data-original", "data-url",
              "data-hi-res-src", "data-old-src")
_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")


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
    """All text of <body> except script/style/noscript/template: the
    'raw all visible text' baseline, and the reading of expected.html."""
    root = lxml.html.fromstring(html)
    etree.strip_elements(root, *_INVISIBLE, etree.Comment, with_tail=False)
    body = root.find(".//body")
    return " ".join((body if body is not None else root).itertext())


def expected_images(html: str) -> list[set[str]]:
    root = lxml.html.fromstring(html)
    out = []
    for img in root.iter("img"):
        urls = set()
        for a in _IMG_ATTRS:
            v = (img.get(a) or "").strip()
            if v:
                urls.add(v)
        for a in _SRCSET_ATTRS:
            v = img.get(a)
            if v:
                urls.update(u for u, _, _ in parse_srcset(v))
        urls = {url_key(urljoin(PAGE_URL, u)) for u in urls if not u.startswith("data:")}
        if urls:
            out.append(urls)
    return out


def url_key(u: str) -> str:
    """Images are matched without their query string: CDNs serve one image
    at several sizes (?width=300 vs ?width=880) and srcset picks another."""
    return u.split("#")[0].split("?")[0]


def load(name: str) -> tuple[str, str]:
    d = DATA / name
    src = gzip.decompress((d / "source.html.gz").read_bytes()).decode("utf-8", "replace")
    exp = gzip.decompress((d / "expected.html.gz").read_bytes()).decode("utf-8", "replace")
    return src, exp


def page_names() -> list[str]:
    return sorted(p.parent.name for p in DATA.glob("*/source.html.gz"))


def score_page(name: str) -> dict:
    src, exp = load(name)
    ref = tokens(visible_text(exp))
    res = {}
    for mode, cfg in (("main", ExtractConfig()), ("all", ExtractConfig(main_content=False))):
        page = extract_page(src, PAGE_URL, cfg)
        text = " ".join(n for n in page.nodes if isinstance(n, str))
        res[mode] = f1(tokens(text), ref)
        if mode == "main":
            ours = [url_key(n.url) for n in page.nodes if not isinstance(n, str)]
    res["raw"] = f1(tokens(visible_text(src)), ref)
    exp_imgs = expected_images(exp)
    every = set().union(*exp_imgs) if exp_imgs else set()
    kept = set(ours)
    res["img_expected"] = len(exp_imgs)
    res["img_found"] = sum(1 for cands in exp_imgs if cands & kept)
    res["img_ours"] = len(ours)
    res["img_ours_ok"] = sum(1 for u in ours if u in every)
    try:
        import trafilatura  # optional reference, never a dependency
    except ImportError:
        pass
    else:
        text = trafilatura.extract(src, url=PAGE_URL, include_comments=False) or ""
        res["trafilatura"] = f1(tokens(text), ref)
    return res


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    names = [a for a in argv if not a.startswith("-")] or page_names()
    rows = {}
    for name in names:
        rows[name] = r = score_page(name)
        if verbose:
            extra = f" traf={r['trafilatura']:.3f}" if "trafilatura" in r else ""
            print(f"{name:34s} main={r['main']:.3f} all={r['all']:.3f} raw={r['raw']:.3f}"
                  f" img {r['img_found']}/{r['img_expected']} ours {r['img_ours_ok']}/{r['img_ours']}{extra}")
    print(f"pages: {len(rows)}")
    for mode in ("main", "all", "raw", "trafilatura"):
        vals = [r[mode] for r in rows.values() if mode in r]
        if vals:
            print(f"F1 {mode:12s} mean={statistics.mean(vals):.4f} median={statistics.median(vals):.4f}")
    exp_n = sum(r["img_expected"] for r in rows.values())
    found = sum(r["img_found"] for r in rows.values())
    ours = sum(r["img_ours"] for r in rows.values())
    ok = sum(r["img_ours_ok"] for r in rows.values())
    print(f"images (main): recall={found / max(exp_n, 1):.4f} ({found}/{exp_n})"
          f" precision={ok / max(ours, 1):.4f} ({ok}/{ours})")


if __name__ == "__main__":
    main(sys.argv[1:])
