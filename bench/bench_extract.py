"""Speed of the M3W text path on the dev pages, against trafilatura and a raw
lxml parse measured in the same run (one core; best of N rounds of process
CPU time, the contenders alternating within each round).

- raw lxml: ``lxml.html.fromstring`` + a walk of every element (``iter()``);
- extractor: ``pipeline.extract.extract_page`` on the decoded page (with and
  without main-content selection);
- page -> candidate: ``pipeline.documents.candidate_document``, the text that
  is written to shards: decoding, extraction, paragraph / image / document
  filters and language id, every filter at its default except
  ``doc_min_images=0``, so that every page goes through language id too (with
  the job's default of 1, pages without an image skip it: a kinder figure);
- trafilatura: ``trafilatura.extract(html, url, include_comments=False)``
  (optional: requirements-dev.txt pins it; without it its column is left out).

Targets (issue #11): page -> candidate at >= 10x trafilatura's pages/s, about
0.75x raw lxml's. Pages: bench/devset.py (Readability's news pages and the
wider set; --sets picks some).

    .venv/bin/python bench/bench_extract.py [--repeat N] [--sets news,warc,...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import lxml.html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.devset import add_sets_flag, pages_of_flag  # noqa: E402
from pipeline import main_content  # noqa: E402
from pipeline.decode import decode_html  # noqa: E402
from pipeline.documents import candidate_document  # noqa: E402
from pipeline.extract import ExtractConfig, extract_page  # noqa: E402
from pipeline.filters import FilterConfig, LangId  # noqa: E402
from pipeline.read import Record  # noqa: E402

TARGET_VS_TRAFILATURA = 10.0
TARGET_VS_RAW_LXML = 0.75


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
    import logging

    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)  # "empty HTML tree" on a PDF-like page
    return trafilatura


def best_times(fns: dict, n: int, repeat: int) -> dict:
    """Best of `repeat` rounds of process CPU time (pages/s per core, steady
    on a shared machine where wall time is not); the contenders alternate
    within each round so that cache and frequency effects hit them alike."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            main_content.clear_caches()  # no credit for having seen these pages
            t0 = time.process_time()
            for i in range(n):
                fn(i)
            best[name] = min(best[name], time.process_time() - t0)
    return best


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="best of N rounds")
    add_sets_flag(ap)
    args = ap.parse_args(argv)
    pages = pages_of_flag(ap, args.sets)
    htmls = [decode_html(p.body, p.charset)[0] for p in pages]
    recs = [Record(url=p.url, body=p.body, charset=p.charset) for p in pages]
    urls = [p.url for p in pages]
    fcfg, ecfg, plain = FilterConfig(doc_min_images=0), ExtractConfig(), ExtractConfig(main_content=False)
    langid = LangId().load()
    fns = {
        "raw lxml (fromstring+iter)": lambda i: raw_lxml(htmls[i]),
        "extractor": lambda i: extract_page(htmls[i], urls[i], ecfg),
        "extractor main_content=False": lambda i: extract_page(htmls[i], urls[i], plain),
        "page -> candidate (to shards)": lambda i: candidate_document(recs[i], fcfg, ecfg, langid),
    }
    traf = _trafilatura()
    if traf is not None:
        fns["trafilatura"] = lambda i: traf.extract(htmls[i], url=urls[i], include_comments=False)
    mb = sum(len(p.body) for p in pages) / 1e6
    print(f"{len(pages)} pages ({mb:.1f} MB of HTML), best of {args.repeat} rounds of process CPU time;"
          f" trafilatura {'yes' if traf else 'not installed'}")
    best = best_times(fns, len(pages), args.repeat)
    t_raw, t_traf = best["raw lxml (fromstring+iter)"], best.get("trafilatura")
    for name, t in best.items():
        vs_traf = f"  {t_traf / t:6.2f}x trafilatura" if t_traf else ""
        print(f"{name:32s} {len(pages) / t:8.1f} pages/s/core  {1000 * t / len(pages):6.2f} ms/page"
              f"{vs_traf}  {t_raw / t:5.2f}x raw lxml")
    t_b = best["page -> candidate (to shards)"]
    print(f"target: page -> candidate >= {TARGET_VS_TRAFILATURA:g}x trafilatura"
          + (f" ({t_traf / t_b:.2f}x: {'met' if t_traf / t_b >= TARGET_VS_TRAFILATURA else 'NOT met'})"
             if t_traf else "")
          + f", ~{TARGET_VS_RAW_LXML:g}x raw lxml ({t_raw / t_b:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
