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

