"""Text quality and speed of the M3W text path on the dev set, in one run.

On every dev page (bench/devset.py: Readability's news pages and the wider
set of other kinds and scripts) this prints

- pages/s of (a) the extractor (``extract_page`` on the decoded page), (b) the
  whole page -> candidate document step with default filters
  (``documents.candidate_document``: decoding, extraction, paragraph, image
  and document filters, language id), (c) trafilatura (``extract``, no
  comments), (d) a raw lxml parse (``lxml.html.fromstring`` + a walk of every
  element, as bench/bench_extract.py), with the ratios. Best of N rounds of
  process CPU time, contenders alternating within a round;
- token F1 against the hand-checked reference of (a), (b) and trafilatura,
  per kind of page (news = Readability's pages), with the page mean and the
  mean over kinds of the wider set. (b) is the text that reaches the shards:
  the kept text nodes of the candidate document, and nothing when the
  candidate is dropped. Its image-count rule (``doc_min_images``) is an M3W
  requirement, not a text judgement, so (b) is scored with it off
  (``--doc-min-images`` sets it); every other filter is at its default;
- image recall / precision of the extractor on the Readability pages
  (expected.html's images; an expected image matches any of its candidate
  URLs; data: URIs not counted);
- with ``--drops``: gold tokens lost by the filters, by reason.

trafilatura is optional (requirements-dev.txt pins it; without it the
trafilatura columns are left out).

    .venv/bin/python bench/extract_quality.py [-v] [--drops] [--repeat N] [--sets news,warc,...]
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import lxml.html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.devset import add_sets_flag, f1, pages_of_flag, tokens, visible_text  # noqa: E402,F401 (tests import these from here)
from pipeline import main_content  # noqa: E402
from pipeline.decode import decode_html  # noqa: E402
from pipeline.documents import candidate_document  # noqa: E402
from pipeline.extract import ExtractConfig, extract_page, parse_srcset  # noqa: E402
from pipeline.filters import (FilterConfig, LangId, paragraph_drop_reason, split_block,  # noqa: E402
                              text_drop_reasons)
from pipeline.read import Record  # noqa: E402

_IMG_ATTRS = ("src", "data-src", "data-lazy-src", "data-original", "data-url",
              "data-hi-res-src", "data-old-src")
_SRCSET_ATTRS = ("srcset", "data-srcset", "data-lazy-srcset")


def expected_images(html: str, page_url: str) -> list[set[str]]:
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
        urls = {url_key(urljoin(page_url, u)) for u in urls if not u.startswith("data:")}
        if urls:
            out.append(urls)
    return out


def url_key(u: str) -> str:
    """Images are matched without their query string: CDNs serve one image
    at several sizes (?width=300 vs ?width=880) and srcset picks another."""
    return u.split("#")[0].split("?")[0]


def raw_lxml(html: str) -> int:
    n = 0
    for _ in lxml.html.fromstring(html).iter():
        n += 1
    return n


def _trafilatura():
    try:
        import trafilatura  # optional reference
    except ImportError:
        return None
    return trafilatura


def doc_text(docs: list[dict]) -> str:
    """The kept text of a page's candidates (several when it was split at
    doc_max_words), nothing when all were dropped."""
    return "\n".join(n["text"] for doc in docs for n in doc["nodes"] if "text" in n)


def score(pages, fcfg: FilterConfig, langid: LangId, with_drops: bool) -> list[dict]:
    traf = _trafilatura()
    rows = []
    for p in pages:
        html, _ = decode_html(p.body, p.charset)
        ref = tokens(p.expected)
        page = extract_page(html, p.url)
        text_a = " ".join(n for n in page.nodes if isinstance(n, str))
        out = candidate_document(Record(url=p.url, body=p.body, charset=p.charset), fcfg,
                                 ExtractConfig(), langid)
        row = {"page": p, "a": f1(tokens(text_a), ref), "b": f1(tokens(doc_text(out.values())), ref),
               "doc_drop": (next((r for r in out.drops if r.startswith("document_")), None)
                            if not out.values() else None)}
        if traf is not None:
            row["traf"] = f1(tokens(traf.extract(html, url=p.url, include_comments=False) or ""), ref)
        if p.expected_html is not None:
            exp = expected_images(p.expected_html, p.url)
            ours = [url_key(n.url) for n in page.nodes if not isinstance(n, str)]
            every = set().union(*exp) if exp else set()
            row["img"] = (len(exp), sum(1 for c in exp if c & set(ours)),
                          len(ours), sum(1 for u in ours if u in every))
        if with_drops:
            row["lost"] = lost_by_reason(page.nodes, out, ref)
            row["rules"] = by_rule(page, ref, fcfg)
        rows.append(row)
    return rows


def lost_by_reason(nodes, out, ref: collections.Counter) -> collections.Counter:
    """Gold tokens in the extractor's text that the candidate lost, charged to
    the paragraph drop reasons recorded for that page (all of them to the
    document reason when the whole candidate was dropped)."""
    have = tokens(" ".join(n for n in nodes if isinstance(n, str))) & ref
    kept = tokens(doc_text(out.values())) & ref
    lost = sum((have - kept).values())
    reasons = {r: n for r, n in out.drops.items() if r.startswith(("paragraph_", "document_"))}
    c = collections.Counter()
    if lost and reasons:
        doc = [r for r in reasons if r.startswith("document_")]
        if doc:
            c[doc[0]] += lost
        else:
            total = sum(reasons.values())
            for r, n in reasons.items():
                c[r] += lost * n / total
    return c


def by_rule(page, ref: collections.Counter, fcfg: FilterConfig) -> dict:
    """What each of our departures from OBELICS' block-by-block filters does
    on one page: for the blocks OBELICS drops (``paragraph_drop_reason`` on
    each block alone, with OBELICS' repetition count of 2) that we keep, the
    rule that kept them -- "split" (a block over para_max_words, cut to
    size), "table/list" (judged as one block), "heading" (kept with its
    section), "pre (length only)" (code), "said twice" (its 10-grams repeat,
    but none 3 times) -- with
    their tokens and how many of those are in the reference; and "still
    dropped": the blocks both drop. Rule -> [blocks, tokens, tokens in the
    reference]."""
    obelics = dataclasses.replace(fcfg, para_char_repetition_min_count=2)
    texts, roles, whole = [], [], []
    for node, role in zip(page.nodes, page.roles):
        if isinstance(node, str):
            old = paragraph_drop_reason(node, obelics)
            for piece in split_block(node, fcfg.para_max_words):
                texts.append(piece)
                roles.append(role)
                whole.append(old)
    new = text_drop_reasons(texts, roles, fcfg)
    out: dict = collections.defaultdict(lambda: [0, 0, 0])
    left = collections.Counter(ref)
    for text, role, old, now in zip(texts, roles, whole, new):
        if old is None:
            continue
        if now is not None:
            rule = "still dropped"
        elif old == "too_many_words":
            rule = "split"
        elif role is not None and role[0] == "pre":
            rule = "pre (length only)"
        elif role is not None and role[1] is not None and old != "character_repetition":
            rule = "table/list"
        elif old == "character_repetition":
            rule = "said twice"
        else:
            rule = "heading"
        t = tokens(text)
        hit = t & left
        left -= hit
        r = out[rule]
        r[0] += 1
        r[1] += sum(t.values())
        r[2] += sum(hit.values())
    return out


def timings(pages, fcfg: FilterConfig, langid: LangId, repeat: int) -> dict:
    htmls = [decode_html(p.body, p.charset)[0] for p in pages]
    recs = [Record(url=p.url, body=p.body, charset=p.charset) for p in pages]
    urls = [p.url for p in pages]
    ecfg = ExtractConfig()
    fns = {
        "(d) raw lxml parse": lambda i: raw_lxml(htmls[i]),
        "(a) extractor": lambda i: extract_page(htmls[i], urls[i]),
        "(b) page -> candidate document": lambda i: candidate_document(recs[i], fcfg, ecfg, langid),
    }
    traf = _trafilatura()
    if traf is not None:
        fns["(c) trafilatura"] = lambda i: traf.extract(htmls[i], url=urls[i], include_comments=False)
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            main_content.clear_caches()
            t0 = time.process_time()
            for i in range(len(pages)):
                fn(i)
            best[name] = min(best[name], time.process_time() - t0)
    return {name: len(pages) / t for name, t in best.items()}


def mean(vals):
    return statistics.mean(vals) if vals else float("nan")


def report(rows: list[dict], speeds: dict, verbose: bool, drops: bool) -> None:
    has_traf = "traf" in rows[0]
    cols = ["a", "b"] + (["traf"] if has_traf else [])
    names = {"a": "(a) extractor", "b": "(b) to shards", "traf": "trafilatura"}
    if verbose:
        for r in rows:
            p = r["page"]
            extra = f" traf={r['traf']:.3f}" if has_traf else ""
            print(f"{p.set + '/' + p.name:58s} {p.kind:10s} a={r['a']:.3f} b={r['b']:.3f}{extra}"
                  + (f"  [{r['doc_drop']}]" if r["doc_drop"] else ""))
    kinds = collections.defaultdict(list)
    for r in rows:
        kinds[r["page"].kind].append(r)
    print(f"\ntoken F1 by kind of page ({len(rows)} pages)")
    print(f"{'kind':14s} {'pages':>5s} " + " ".join(f"{names[c]:>15s}" for c in cols)
          + ("   b - traf" if has_traf else ""))

    def line(label, rs_or_means):
        if isinstance(rs_or_means, dict):
            vals, n = rs_or_means, "-"
        else:
            vals = {c: mean([r[c] for r in rs_or_means]) for c in cols}
            n = str(len(rs_or_means))
        s = f"{label:14s} {n:>5s} " + " ".join(f"{vals[c]:15.4f}" for c in cols)
        if has_traf:
            s += f"   {vals['b'] - vals['traf']:+.4f}"
        print(s)

    order = ["news"] + sorted(k for k in kinds if k != "news")
    for k in order:
        if k in kinds:
            line(k, kinds[k])
    wider = [r for r in rows if r["page"].kind != "news"]
    if wider:
        line("wider (pages)", wider)
        wk = [k for k in order if k != "news" and k in kinds]
        line("wider (kinds)", {c: mean([mean([r[c] for r in kinds[k]]) for k in wk]) for c in cols})
    dropped = collections.Counter(r["doc_drop"] for r in rows if r["doc_drop"])
    if dropped:
        print("candidates dropped whole: " + ", ".join(f"{k} {v}" for k, v in dropped.most_common()))
    imgs = [r["img"] for r in rows if "img" in r]
    if imgs:
        e, f, o, ok = (sum(x[i] for x in imgs) for i in range(4))
        print(f"images (news, extractor): recall={f / max(e, 1):.4f} ({f}/{e})"
              f" precision={ok / max(o, 1):.4f} ({ok}/{o})")
    if drops:
        for label, rs in (("news", kinds.get("news", [])), ("wider", wider)):
            lost = sum((r["lost"] for r in rs), collections.Counter())
            gold = sum(sum(tokens(r["page"].expected).values()) for r in rs)
            if gold:
                print(f"gold tokens lost by the filters ({label}, {gold} gold tokens): "
                      + ", ".join(f"{k} {v / gold:.2%}" for k, v in lost.most_common()))
            rules: dict = collections.defaultdict(lambda: [0, 0, 0])
            for r in rs:
                for k, v in r["rules"].items():
                    rules[k] = [a + b for a, b in zip(rules[k], v)]
            if rules:
                print(f"  blocks OBELICS drops, by what we do ({label}): " + "; ".join(
                    f"{k} {b} blocks {t} tokens, {g / max(t, 1):.0%} in the reference"
                    for k, (b, t, g) in sorted(rules.items())))
    if speeds:
        print("\npages/s per core (best of rounds, process CPU time)")
        base_t = speeds.get("(c) trafilatura")
        base_l = speeds["(d) raw lxml parse"]
        for name, v in speeds.items():
            rt = f"  {v / base_t:6.2f}x trafilatura" if base_t else ""
            print(f"{name:32s} {v:9.1f}{rt}  {v / base_l:5.2f}x raw lxml")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per page")
    ap.add_argument("--drops", action="store_true", help="gold tokens lost by filter reason")
    ap.add_argument("--repeat", type=int, default=3, help="timing rounds (best of); 0 = no timing")
    add_sets_flag(ap)
    ap.add_argument("--doc-min-images", type=int, default=0,
                    help="doc_min_images for (b) (the job's default is 1)")
    args = ap.parse_args(argv)
    pages = pages_of_flag(ap, args.sets)
    fcfg = FilterConfig(doc_min_images=args.doc_min_images)
    langid = LangId().load()
    mb = sum(len(p.body) for p in pages) / 1e6
    print(f"{len(pages)} pages ({mb:.1f} MB of HTML); trafilatura "
          f"{'yes' if _trafilatura() else 'not installed'}")
    rows = score(pages, fcfg, langid, args.drops)
    speeds = timings(pages, fcfg, langid, args.repeat) if args.repeat else {}
    report(rows, speeds, args.verbose, args.drops)


if __name__ == "__main__":
    main(sys.argv[1:])
