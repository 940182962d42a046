"""The bundled outputs, made once per test session by the jobs' own CLIs
(driver included: manifest, stats, card, dropped/): m3w and pairs (split into
align/ltip) on the first pages of the bundled sample WARC, videos on the
bundled videos sample, each with --keep-dropped."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.data_paths import WARCS

ROOT = Path(__file__).resolve().parents[2]

BEAM = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
SAMPLE_PAGES = 30


def build_outputs(root: Path) -> dict:
    from pipeline.sample import build_sample
    from pipeline.sample_videos import build_sample as build_videos_sample

    warc = root / "sample.warc.gz"
    build_sample(str(warc), max_pages=SAMPLE_PAGES, own_image_pages=True)
    whirlwind = str(WARCS / "whirlwind.warc.gz")
    out = {"sample": warc}
    out["m3w"] = root / "m3w"
    run("m3w", ["--input", str(warc), "--input", whirlwind, "--output", str(out["m3w"]),
                     "--no-fetch", "--quiet", "--keep-dropped", "--keep-dropped-max", "50",
                     *BEAM])
    out["pairs"] = root / "pairs"
    run("pairs", ["--input", str(warc), "--output", str(out["pairs"]), "--no-fetch", "--quiet",
                       "--keep-dropped", "--split", "align=alt",
                       "--split", "ltip=figcaption,title,context", *BEAM])
    vwarc = root / "videos.warc.gz"
    build_videos_sample(str(vwarc))
    out["videos"] = root / "videos"
    run("videos", ["--input", str(vwarc), "--list", str(root / "videos.csv"), "--no-fetch",
                        "--output", str(out["videos"]), "--quiet", "--keep-dropped", *BEAM])
    return out


def run(job: str, args: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", f"pipeline.{job}", *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"pipeline.{job} failed:\n{r.stdout}\n{r.stderr}"
