"""What the second signature costs the image stage: per stored JPEG, the
hashing step before (decode + phash64) and after (decode + phash64 + verify
hash through dedup.fingerprints.image_hashes, one grey conversion and border
trim for both), beside the naive form (phash64 and verify_hash each doing
their own), and the whole image stage (pipeline.images.process_image) for scale.

    .venv/bin/python bench/bench_image_hashes.py [--photos 100] [--repeat 5] [--stage-only]

--stage-only: just the image stage (process_image) with and without the
verify hash on the bench photos: what the jobs' image stages saved when they
stopped computing it (2026-12-04; the eval dedup step now computes it from
the stored JPEG only for an image with a crop-view candidate).

Photos: the first N of bench/data/dedup_photos (web-sized, 160-320 px: stored
as they are) and every photo of tests/data/images the stage keeps (most are
512 px or more: stored at 512), each JPEG as process_image stores it (image
size 512, keep_ratio_largest, q95).  Times: CPU time (process_time, so
other load on the machine counts less than in wall time), the best of
--repeat passes over the set, per image, one thread.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from dedup import fingerprints as fp  # noqa: E402
from pipeline.images import ImageConfig, process_image  # noqa: E402

BENCH_PHOTOS = ROOT / "bench" / "data" / "dedup_photos"
TEST_IMAGES = ROOT / "tests" / "data" / "images"


def before(jpeg: bytes):
    return fp.phash64(Image.open(io.BytesIO(jpeg)))


def after(jpeg: bytes):
    return fp.image_hashes(Image.open(io.BytesIO(jpeg)))


def naive(jpeg: bytes):
    img = Image.open(io.BytesIO(jpeg))
    return fp.phash64(img), fp.verify_hash(img)


def best_per_image(fns: dict, items, repeat: int) -> dict[str, float]:
    """Best pass of each function, per image; the passes interleaved (one of
    each per round) so a busy machine's drift hits them alike."""
    for fn in fns.values():          # warm: lazy imports (scipy.fftpack), caches
        fn(items[0])
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.process_time()
            for it in items:
                fn(it)
            best[name] = min(best[name], time.process_time() - t0)
    return {name: t / len(items) for name, t in best.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=100, help="bench photos to use (default 100)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stage-only", action="store_true",
                    help="only process_image with / without the verify hash, bench photos")
    args = ap.parse_args(argv)
    cfg = ImageConfig()
    if args.stage_only:
        data = [p.read_bytes() for p in sorted(BENCH_PHOTOS.glob("*.jpg"))[: args.photos]]
        data = [d for d in data if process_image(d, cfg).ok]
        t = best_per_image({"with": lambda d: process_image(d, cfg, verify_hash=True),
                            "without": lambda d: process_image(d, cfg, verify_hash=False)},
                           data, args.repeat)
        print(f"process_image on {len(data)} bench photos, CPU per image, best of {args.repeat}: "
              f"with the verify hash {t['with'] * 1e3:.2f} ms, without {t['without'] * 1e3:.2f} ms "
              f"({1 - t['without'] / t['with']:.0%} less)")
        return 0
    sets = {
        "bench photos": sorted(BENCH_PHOTOS.glob("*.jpg"))[: args.photos],
        "tests/data/images": sorted(p for p in TEST_IMAGES.iterdir() if p.suffix in (".jpg", ".png")),
    }
    print(f"{'set':<18} {'n':>4} {'stored px':>10} {'phash':>8} {'+verify':>8} {'naive':>8} "
          f"{'extra':>7} {'stage':>8} {'stage+':>7}")
    for name, paths in sets.items():
        data = [p.read_bytes() for p in paths]
        data = [d for d in data if process_image(d, cfg).ok]
        stored = [process_image(d, cfg).jpeg for d in data]
        for jpeg in stored:                      # the shared form is bit-identical
            img = Image.open(io.BytesIO(jpeg))
            assert after(jpeg) == (fp.phash64(img), fp.verify_hash(img))
        px = sorted(max(Image.open(io.BytesIO(j)).size) for j in stored)[len(stored) // 2]
        t = best_per_image({"before": before, "after": after, "naive": naive}, stored, args.repeat)
        t_before, t_after, t_naive = t["before"], t["after"], t["naive"]
        t_stage = best_per_image({"stage": lambda d: process_image(d, cfg)}, data, args.repeat)["stage"]
        extra = t_after - t_before
        print(f"{name:<18} {len(stored):>4} {px:>10} {t_before * 1e3:>6.2f}ms {t_after * 1e3:>6.2f}ms "
              f"{t_naive * 1e3:>6.2f}ms {extra * 1e3:>5.2f}ms {t_stage * 1e3:>6.2f}ms "
              f"{extra / (t_stage - extra):>6.1%}")
    print("phash: decode + phash64 (before); +verify: decode + image_hashes (after); naive: decode + "
          "phash64 + verify_hash; extra: after - before; stage: process_image (after); "
          "stage+: the stage's cost increase (extra / stage before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
