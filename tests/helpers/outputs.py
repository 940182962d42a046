"""The bundled outputs, made once per test session by the jobs' own CLIs
(driver included: manifest, stats, card, dropped/): m3w and pairs (split into
align/ltip) on the first pages of the bundled sample WARC, videos on the
bundled videos sample, each with --keep-dropped. The three jobs are
independent (each its own output folder, one Beam worker), so they run side
by side: the fixture costs the longest job, not the sum."""
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
    out["pairs"] = root / "pairs"
    jobs = [start("m3w", root, ["--input", str(warc), "--input", whirlwind, "--output", str(out["m3w"]),
                                "--no-fetch", "--quiet", "--keep-dropped", "--keep-dropped-max", "50",
                                *BEAM]),
            start("pairs", root, ["--input", str(warc), "--output", str(out["pairs"]), "--no-fetch",
                                  "--quiet", "--keep-dropped", "--split", "align=alt",
                                  "--split", "ltip=figcaption,title,context", *BEAM])]
    try:
        vwarc = root / "videos.warc.gz"
        build_videos_sample(str(vwarc))
        out["videos"] = root / "videos"
        jobs.append(start("videos", root, ["--input", str(vwarc), "--list", str(root / "videos.csv"),
                                           "--no-fetch", "--output", str(out["videos"]), "--quiet",
                                           "--keep-dropped", *BEAM]))
        for job in jobs:
            finish(job)
    finally:
        for _, p, _ in jobs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def start(job: str, root: Path, args: list[str]):
    log = root / f"{job}.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", f"pipeline.{job}", *args], cwd=ROOT,
                             stdout=f, stderr=subprocess.STDOUT)
    return job, p, log


def finish(started, timeout: float = 600) -> None:
    job, p, log = started
    rc = p.wait(timeout=timeout)
    assert rc == 0, f"pipeline.{job} failed:\n{log.read_text(errors='replace')}"



# The m3w CLI's reference run (tests/pipeline/conftest.py, m3w_reference):
# DirectRunner with two workers, archived images only, two samples per shard
# (12 pages give 10 samples in 4 shards).
REFERENCE_ARGS = ["--no-fetch", "--samples-per-shard", "2", "--quiet", "--direct_num_workers=2"]
REFERENCE_PAGES = 12


def build_reference(root: Path) -> tuple[Path, Path]:
    import os

    from pipeline.sample import build_sample

    sample = root / "sample.warc.gz"
    build_sample(str(sample), max_pages=REFERENCE_PAGES)
    out = root / "direct"
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER"}
    p = subprocess.run([sys.executable, "-m", "pipeline.m3w", "--input", str(sample), "--output", str(out),
                        *REFERENCE_ARGS], cwd=ROOT, env=dict(env, PYTHONHASHSEED="0"),
                       capture_output=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr).decode()[-3000:]
    return sample, out
