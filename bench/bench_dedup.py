"""Measured quality and speed of dedup's image matching (a benchmark, not a test).

    .venv/bin/python bench/bench_dedup.py [--threshold N] [--seed S] [--n-index 1000000]

Eval set: real photos from tests/data/images, where the large photos are cut
into non-overlapping tiles that stand as distinct images (the tile replaces
its photo, so no two eval images share pixels).  The retina photo stays whole: its halves
are near mirror images of each other, so as tiles they would be "different"
images that a flip-robust matcher rightly confuses.  Excluded: motorcycle_right
(a stereo near-duplicate of motorcycle_left), the 14x25 gif, and the flat
graphics (logo, text, page) whose few strong edges make them resemble each
other's hashes less than photos would.  Positives: transformed copies of each
eval image, hashed the way the training side is (ONE phash64 of the copy after
the pipeline's resize).  A positive is recalled when it matches its own source;
every match to any other eval image is a false match.

Speed: queries per second of MultiIndexHash against N random 64-bit codes,
beside a numpy XOR+popcount full scan of the same codes in the same run, and a
check that both return the same pairs.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dedup.fingerprints import eval_phashes, phash64  # noqa: E402
from dedup.index import DEFAULT_THRESHOLDS, EvalIndex  # noqa: E402
from dedup.evalsets import EvalItem  # noqa: E402
from dedup.mih import MultiIndexHash, brute_force_pairs  # noqa: E402

IMAGES = ROOT / "tests" / "data" / "images"
WHOLE = ["astronaut.png", "camera.png", "chelsea.png", "coins.png", "brick.png", "grass.png",
         "moon.png", "horse.png", "clock_motion.png", "grace_hopper.jpg", "retina.jpg"]
# photo -> (columns, rows) of non-overlapping tiles
TILED = {"hubble_deep_field.jpg": (2, 2), "motorcycle_left.png": (2, 1),
         "china.jpg": (2, 1), "flower.jpg": (2, 1), "rocket.jpg": (2, 1), "coffee.png": (2, 1)}


def eval_images() -> dict[str, Image.Image]:
    out = {}
    for name in WHOLE:
        out[name] = Image.open(IMAGES / name).convert("RGB")
    for name, (cols, rows) in TILED.items():
        img = Image.open(IMAGES / name).convert("RGB")
        w, h = img.size
        tw, th = w // cols, h // rows
        for r in range(rows):
            for c in range(cols):
                out[f"{name}#{r}{c}"] = img.crop((c * tw, r * th, (c + 1) * tw, (r + 1) * th))
    return out


# ---------------------------------------------------------------- transforms


def jpeg(img, q):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def resize(img, f):
    w, h = img.size
    return img.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BICUBIC)


def crop(img, frac, rng):
    """Cut ``frac`` of the width and of the height, split between the two
    sides at random (so the crop is rarely centred)."""
    w, h = img.size
    cw, ch = round(w * (1 - frac)), round(h * (1 - frac))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def jitter(img, rng):
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    return img


def rotate(img, deg):
    return img.rotate(deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def overlay(img, rng):
    img = img.copy()
    d = ImageDraw.Draw(img)
    w, h = img.size
    size = max(10, h // 12)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:
        font = ImageFont.load_default()
    y = int(rng.integers(0, max(1, h - 2 * size)))
    d.text((w // 20, y), "© example.com  SALE 50%", fill=(255, 255, 255), font=font,
           stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0))
    return img


def transforms(rng):
    """name -> function(img) -> img; each run with fresh random parameters."""
    t = {
        "resize_0.5": lambda im: resize(im, 0.5),
        "resize_2": lambda im: resize(im, 2.0),
        "jpeg_30": lambda im: jpeg(im, 30),
        "jpeg_50": lambda im: jpeg(im, 50),
        "jpeg_75": lambda im: jpeg(im, 75),
        "jpeg_95": lambda im: jpeg(im, 95),
        "colour_jitter": lambda im: jitter(im, rng),
        "crop_5": lambda im: crop(im, 0.05, rng),
        "crop_10": lambda im: crop(im, 0.10, rng),
        "crop_20": lambda im: crop(im, 0.20, rng),
        "flip": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "rotate_5": lambda im: rotate(im, 5 * (1 if rng.random() < 0.5 else -1)),
        "text_overlay": lambda im: overlay(im, rng),
    }
    return t


def training_side(img: Image.Image) -> str:
    """What the pipeline stores: one phash64 of the image after its resize
    (longest side capped at 512) and JPEG encode."""
    w, h = img.size
    s = min(1.0, 512 / max(w, h))
    if s < 1.0:
        img = img.resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC)
    return phash64(jpeg(img, 90))


# ---------------------------------------------------------------- quality


def bench_quality(threshold: int | None, seed: int, repeats: int, verbose: bool = False):
    imgs = eval_images()
    names = list(imgs)
    items = [EvalItem("bench", "val", n, media=None, texts=()) for n in names]
    index = EvalIndex.from_items(items, image_hashes={n: eval_phashes(imgs[n]) for n in names},
                                 thresholds=None if threshold is None else
                                 dict(DEFAULT_THRESHOLDS, image=threshold))
    print(f"eval set: {len(names)} images ({len(WHOLE)} whole photos, "
          f"{len(names) - len(WHOLE)} tiles of {len(TILED)} large photos); "
          f"{index.num_image_hashes} indexed hashes; threshold {index.thresholds['image']}")
    rng = np.random.default_rng(seed)
    rows = []
    false_pairs = other_pairs = false_queries = total_queries = 0
    for tname, fn in transforms(rng).items():
        hit = n = 0
        dists = []
        for _ in range(repeats if tname in ("colour_jitter", "crop_5", "crop_10", "crop_20",
                                            "rotate_5", "text_overlay") else 1):
            for name in names:
                q = training_side(fn(imgs[name]))
                matches = index.match_image(q)
                ids = {m.item_id for m in matches}
                n += 1
                total_queries += 1
                if name in ids:
                    hit += 1
                    dists.append(min(m.distance for m in matches if m.item_id == name))
                wrong = ids - {name}
                false_pairs += len(wrong)
                other_pairs += len(names) - 1
                false_queries += bool(wrong)
                if wrong and verbose:
                    print(f"  false: {tname} of {name} -> "
                          + ", ".join(f"{m.item_id} d={m.distance:.0f} ({m.detail})"
                                      for m in matches if m.item_id in wrong))
        rows.append((tname, hit / n, n, np.median(dists) if dists else float("nan")))
    print(f"\n{'transform':<16}{'recall':>8}{'queries':>9}{'median d':>10}")
    for tname, rec, n, md in rows:
        print(f"{tname:<16}{rec:>8.3f}{n:>9}{md:>10.1f}")
    print(f"\nfalse matches: {false_pairs} of {other_pairs} (query, other eval image) pairs "
          f"= {false_pairs / other_pairs:.4%}; queries with any false match: "
          f"{false_queries} of {total_queries} = {false_queries / total_queries:.3%}")
    return rows, false_pairs / other_pairs


# ---------------------------------------------------------------- speed


def bench_speed(n_index: int, n_queries: int, radius: int, seed: int):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64, size=n_index, dtype=np.uint64, endpoint=False)
    t0 = time.perf_counter()
    mih = MultiIndexHash(codes)
    build_s = time.perf_counter() - t0
    # Half the queries are near-duplicates of indexed codes (1..radius bits
    # flipped), half are random: both kinds of traffic a job sees.
    base = codes[rng.integers(0, n_index, n_queries)]
    nflip = rng.integers(1, radius + 1, n_queries)
    flips = np.zeros(n_queries, dtype=np.uint64)
    for k in range(radius):
        bit = rng.integers(0, 64, n_queries).astype(np.uint64)
        flips ^= np.where(k < nflip, np.uint64(1) << bit, np.uint64(0))
    queries = base ^ flips
    queries[n_queries // 2:] = rng.integers(0, 2**64, size=n_queries - n_queries // 2,
                                            dtype=np.uint64, endpoint=False)
    mih.search_pairs(queries[:100], radius)  # warm the probe masks
    t0 = time.perf_counter()
    got = mih.search_pairs(queries, radius)
    mih_s = time.perf_counter() - t0
    n_bf = min(n_queries, 500)
    bf_queries = np.concatenate([queries[: n_bf // 2], queries[n_queries // 2: n_queries // 2 + n_bf - n_bf // 2]])
    t0 = time.perf_counter()
    want = brute_force_pairs(codes, bf_queries, radius)
    bf_s = time.perf_counter() - t0
    check = mih.search_pairs(bf_queries, radius)
    same = all(np.array_equal(a, b) for a, b in zip(check, want))
    mih_qps, bf_qps = n_queries / mih_s, n_bf / bf_s
    print(f"\nlookup, index of {n_index:,} random 64-bit hashes, radius {radius}, "
          f"{mih.num_blocks} blocks (build {build_s:.2f} s):")
    print(f"  multi-index hashing: {mih_qps:>10,.0f} queries/s ({n_queries:,} queries, "
          f"{len(got[0]):,} matches)")
    print(f"  brute force scan   : {bf_qps:>10,.0f} queries/s ({n_bf} queries)")
    print(f"  speed-up {mih_qps / bf_qps:,.0f}x; same results as the scan: {same}")
    return mih_qps, bf_qps, same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=int, default=None,
                    help="image Hamming threshold (default: the index default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=4,
                    help="random draws per image for the randomised transforms")
    ap.add_argument("--n-index", type=int, default=1_000_000)
    ap.add_argument("--n-queries", type=int, default=50_000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print every false match")
    args = ap.parse_args(argv)
    bench_quality(args.threshold, args.seed, args.repeats, args.verbose)
    if not args.skip_speed:
        radius = args.threshold if args.threshold is not None else DEFAULT_THRESHOLDS["image"]
        bench_speed(args.n_index, args.n_queries, radius, args.seed)


if __name__ == "__main__":
    main()
