"""pipeline.report: counters grouped into stats.json's drops by stage and reason."""
from __future__ import annotations

from pipeline.report import drops_by_stage


def test_every_drop_counter_lands_under_its_stage():
    # The counters of the pairs-from-list accounting run (tests/pipeline/test_pairs.py),
    # plus the read/page prefixes: each *_drop_* counter is a stage's reason.
    counters = {"list_drop_missing_url": 1, "list_drop_truncated_tar": 2, "drop_caption_generic": 2,
                "drop_pair_repeated_row": 1, "drop_image_fetch_http_404": 3, "drop_image_too_small": 2,
                "fetch_drop_http_404": 3, "read_drop_not_html": 4, "page_drop_too_large": 1,
                "fetch_ok": 35, "list_rows": 36}
    assert drops_by_stage(counters) == {
        "caption": {"generic": 2},
        "fetch": {"http_404": 3},
        "image": {"fetch_http_404": 3, "too_small": 2},
        "list": {"truncated_tar": 2, "missing_url": 1},
        "page": {"too_large": 1},
        "pair": {"repeated_row": 1},
        "read": {"not_html": 4},
    }



def _bar_lengths(png: bytes, colour: tuple, x_range: tuple) -> list[int]:
    """Rows of ``colour`` pixels in the image's columns ``x_range``: the length
    of each horizontal bar drawn there, top to bottom."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    px = img.load()
    lengths, prev = [], 0
    for y in range(h):
        n = sum(px[x, y] == colour for x in range(*x_range))
        if n and not prev:
            lengths.append(n)
        elif n:
            lengths[-1] = max(lengths[-1], n)
        prev = n
    return lengths


def test_the_funnel_picture_draws_each_count_to_scale_and_the_same_bytes_each_time():
    from pipeline.report import funnel_png

    counters = {"records_read": 400, "pages": 300, "candidate_documents": 200, "documents": 100,
                "images_requested": 0, "images_ok": 0, "images_kept": 0}
    drops = {"page": {"noai": 50}, "document": {"near_duplicate": 25}}
    png = funnel_png("m3w", counters, drops)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == funnel_png("m3w", counters, drops)
    funnel = _bar_lengths(png, (0x3b, 0x7d, 0xd8), (0, 560))     # left panel, blue
    reasons = _bar_lengths(png, (0xd8, 0x64, 0x3b), (560, 1300))  # right panel, orange
    # 4 bars (the zero counts draw none), each length proportional to its count
    assert len(funnel) == 4 and len(reasons) == 2
    assert [round(4 * n / funnel[0], 1) for n in funnel] == [4.0, 3.0, 2.0, 1.0]
    assert round(reasons[1] / reasons[0], 2) == 0.5
