"""Video frames extracted per second, on the real clips in tests/data/videos.

    .venv/bin/python bench/bench_videos.py [--repeats 3] [--fps 1] [--frame-size 512]

Times pipeline.video_frames.decode_video on each clip (open from memory, decode
in order, pick the frames at --fps, resize + JPEG-encode + sha256/phash each
stored frame), one thread, best of --repeats.  Reports stored frames per
second (what the job writes) and decoded source frames per second (what FFmpeg
had to decode to get them: every frame up to the last sample time).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.video_frames import VideoConfig, decode_video  # noqa: E402

VIDEOS = ROOT / "tests" / "data" / "videos"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--frame-size", type=int, default=512)
    args = ap.parse_args(argv)
    cfg = VideoConfig(fps=args.fps, frame_size=args.frame_size)
    tot_frames = tot_src = 0
    tot_s = 0.0
    print(f"fps {args.fps}, frames resized to max side {args.frame_size}, best of {args.repeats}")
    for path in sorted(VIDEOS.glob("*.mp4")):
        data = path.read_bytes()
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            d = decode_video(data, cfg)
            best = min(best, time.perf_counter() - t0)
        assert d.ok, (path.name, d.reason)
        src = int(round(d.frame_times[-1] * d.fps)) + 1  # frames decoded up to the last sample
        tot_frames += len(d.frames)
        tot_src += src
        tot_s += best
        print(f"{path.name:<24} {d.width}x{d.height} {d.fps:6.2f} fps {d.original_duration:5.2f} s: "
              f"{len(d.frames):2d} frames in {best * 1000:6.1f} ms = {len(d.frames) / best:6.1f} frames/s "
              f"({src / best:7.1f} source frames/s decoded)")
    print(f"total: {tot_frames} frames in {tot_s:.3f} s = {tot_frames / tot_s:.1f} stored frames/s, "
          f"{tot_src / tot_s:.1f} source frames/s decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
