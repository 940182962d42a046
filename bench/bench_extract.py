"""Speed of pipeline.extract.extract_page against raw lxml on the 89
Readability dev pages (one core; pages decoded to str before timing).

Raw lxml = lxml.html.fromstring + a full element walk (iter()). The target is
extract_page at >= 0.5x raw lxml's pages/s.

    .venv/bin/python bench/bench_extract.py [--repeat N]
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import lxml.html

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import main_content  # noqa: E402
from pipeline.extract import ExtractConfig, extract_page  # noqa: E402

DATA = ROOT / "tests" / "data" / "html" / "readability"
PAGE_URL = "http://fakehost/test/page.html"


def load_pages() -> list[str]:
    return [gzip.decompress(p.read_bytes()).decode("utf-8", "replace")
            for p in sorted(DATA.glob("*/source.html.gz"))]


def raw_lxml(html: str) -> int:
    n = 0
    for _ in lxml.html.fromstring(html).iter():
        n += 1
    return n


def best_times(fns: dict, pages, repeat: int) -> dict:
    """Best of `repeat` rounds of process CPU time (pages/s per core, steady
    on a shared machine where wall time is not); the contenders alternate
    within each round so that cache and frequency effects hit them alike."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            main_content.clear_caches()  # no credit for having seen these pages
            t0 = time.process_time()
            for html in pages:
                fn(html)
            best[name] = min(best[name], time.process_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5, help="best of N runs")
    args = ap.parse_args()
    pages = load_pages()
    mb = sum(len(p.encode()) for p in pages) / 1e6
    print(f"{len(pages)} pages, {mb:.1f} MB of HTML, best of {args.repeat}")
    results = best_times({
        "raw lxml (fromstring+iter)": raw_lxml,
        "extract_page main_content=True": lambda h: extract_page(h, PAGE_URL),
        "extract_page main_content=False":
            lambda h: extract_page(h, PAGE_URL, ExtractConfig(main_content=False)),
    }, pages, args.repeat)
    t_raw = results["raw lxml (fromstring+iter)"]
    for name, t in results.items():
        print(f"{name:34s} {len(pages) / t:8.1f} pages/s/core  {1000 * t / len(pages):6.2f} ms/page"
              f"  ratio to raw lxml {t_raw / t:.2f}x")


if __name__ == "__main__":
    main()
