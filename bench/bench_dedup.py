"""Measured quality and speed of dedup's image matching (a benchmark, not a test).

    .venv/bin/python bench/bench_dedup.py [--set photos|cutouts|all] [--photos DIR ...]
        [--repeats N] [--seed S]

Photos (``--set photos``, the default): the 340 real photos of bench/data/dedup_photos
(Debian packages; see its PROVENANCE.md) and the 17 whole photos of tests/data/images
(scikit-image, scikit-learn, matplotlib): 357 distinct real photos.  ``--set cutouts``:
the stress set of 191 cut-out objects on a plain ground (bench/data/dedup_photos/cutouts:
tuxpaint stamps, planets), measured on its own; ``--set all``: both in one index.  ``--photos DIR`` (any
number of times) uses every image under DIR instead, e.g. held-out photos.
They are split at random (``--seed``) into an eval half, which is indexed
exactly as ``make dedup-index`` does (``build_index.hash_item`` on the file),
and a clean half that is never indexed.

Queries: every transform of the table (and compositions) applied to every
photo of both halves, then passed through the real image stage
(``pipeline.images.process_image`` on a JPEG of the copy: orientation, resize
to 512, JPEG, the stored phash64), as a training copy would be.  A copy of an
eval photo is recalled when it matches its own source; any match to another
eval photo, and any match of a clean photo's copy, is a false match.

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

from dedup.build_index import hash_item  # noqa: E402
from dedup.evalsets import EvalItem  # noqa: E402
from dedup.fingerprints import DEFAULT_VIEW_SET, VIEW_SETS, normalize_image, verify_hash  # noqa: E402
from dedup.index import DEFAULT_THRESHOLDS, EvalIndex  # noqa: E402
from dedup.mih import MultiIndexHash, brute_force_pairs  # noqa: E402
from pipeline.images import ImageConfig, process_image  # noqa: E402

PHOTOS = ROOT / "bench" / "data" / "dedup_photos"
CUTOUTS = PHOTOS / "cutouts"
IMAGES = ROOT / "tests" / "data" / "images"
# The whole photos of tests/data/images (not the graphics, the gif, nor
# motorcycle_right, a stereo near-duplicate of motorcycle_left).
TEST_PHOTOS = ["astronaut.png", "camera.png", "chelsea.png", "coins.png", "brick.png", "grass.png",
               "moon.png", "horse.png", "clock_motion.png", "grace_hopper.jpg", "retina.jpg",
               "hubble_deep_field.jpg", "motorcycle_left.png", "china.jpg", "flower.jpg",
               "rocket.jpg", "coffee.png"]
EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def photo_paths(dirs: list[str] | None, which: str = "photos") -> list[Path]:
    """``which``: "photos" (the real photos), "cutouts" (the stress set of
    cut-out objects on white), or "all"."""
    if dirs:
        return sorted(p for d in dirs for p in Path(d).rglob("*") if p.suffix.lower() in EXTS)
    photos = sorted(PHOTOS.glob("*.jpg")) + [IMAGES / n for n in TEST_PHOTOS]
    cutouts = sorted(CUTOUTS.glob("*.jpg"))
    return {"photos": photos, "cutouts": cutouts, "all": photos + cutouts}[which]


# ---------------------------------------------------------------- transforms


def jpeg(img, q):
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=q)
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


def centre_crop(img, frac):
    w, h = img.size
    cw, ch = round(w * (1 - frac)), round(h * (1 - frac))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def jitter(img, rng):
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.7, 1.3))
    return img


def rotate(img, deg):
    return img.rotate(deg, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(0, 0, 0))


def pad(img, top, bottom, left, right, colour):
    w, h = img.size
    out = Image.new("RGB", (w + left + right, h + top + bottom), colour)
    out.paste(img, (left, top))
    return out


def letterbox(img, frac=0.10):
    """Black bars above and below, each ``frac`` of the height."""
    b = round(img.size[1] * frac)
    return pad(img, b, b, 0, 0, (0, 0, 0))


def pillarbox(img, frac=0.10):
    b = round(img.size[0] * frac)
    return pad(img, 0, 0, b, b, (0, 0, 0))


def padding(img, frac=0.10, colour=(255, 255, 255)):
    """A uniform border on all four sides, ``frac`` of each side's length."""
    w, h = img.size
    bx, by = round(w * frac), round(h * frac)
    return pad(img, by, by, bx, bx, colour)


def frame(img, rng):
    """A 5% border of a random colour, with JPEG noise on it afterwards."""
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    return padding(img, 0.05, colour)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def overlay(img, rng):
    img = img.copy()
    d = ImageDraw.Draw(img)
    w, h = img.size
    size = max(10, h // 12)
    y = int(rng.integers(0, max(1, h - 2 * size)))
    d.text((w // 20, y), "\u00a9 example.com  SALE 50%", fill=(255, 255, 255), font=_font(size),
           stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0))
    return img


def watermark(img, rng):
    """A half-transparent site name in a corner, as stock and news sites add."""
    img = img.convert("RGBA")
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    w, h = img.size
    size = max(8, h // 20)
    x = int(w * 0.62) if rng.random() < 0.5 else w // 30
    d.text((x, h - 2 * size), "photos.example", fill=(255, 255, 255, 128), font=_font(size))
    return Image.alpha_composite(img, layer).convert("RGB")


def grayscale(img):
    return img.convert("L").convert("RGB")


def sign(rng):
    return 1 if rng.random() < 0.5 else -1


# name -> (goal recall, randomised?, function(img, rng) -> img)
TRANSFORMS = {
    "resize_0.5": (0.99, False, lambda im, r: resize(im, 0.5)),
    "resize_2": (0.99, False, lambda im, r: resize(im, 2.0)),
    "jpeg_30": (0.99, False, lambda im, r: jpeg(im, 30)),
    "jpeg_50": (0.99, False, lambda im, r: jpeg(im, 50)),
    "jpeg_90": (0.99, False, lambda im, r: jpeg(im, 90)),
    "grayscale": (0.99, False, lambda im, r: grayscale(im)),
    "colour_jitter": (0.99, True, jitter),
    "watermark": (0.99, True, watermark),
    "centre_crop_5": (0.99, False, lambda im, r: centre_crop(im, 0.05)),
    "centre_crop_10": (0.99, False, lambda im, r: centre_crop(im, 0.10)),
    "centre_crop_20": (0.99, False, lambda im, r: centre_crop(im, 0.20)),
    "flip": (0.99, False, lambda im, r: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "rotate_5": (0.99, True, lambda im, r: rotate(im, 5 * sign(r))),
    "letterbox_10": (0.95, False, lambda im, r: letterbox(im)),
    "pillarbox_10": (0.95, False, lambda im, r: pillarbox(im)),
    "white_padding_10": (0.95, False, lambda im, r: padding(im)),
    "black_padding_5": (0.95, False, lambda im, r: padding(im, 0.05, (0, 0, 0))),
    "colour_frame_5": (0.95, True, frame),
    "crop_10_random": (0.95, True, lambda im, r: crop(im, 0.10, r)),
    "crop_15_random": (0.95, True, lambda im, r: crop(im, 0.15, r)),
    "crop_20_random": (0.95, True, lambda im, r: crop(im, 0.20, r)),
    "rotate_10": (0.95, True, lambda im, r: rotate(im, 10 * sign(r))),
    "centre_crop_30": (0.80, False, lambda im, r: centre_crop(im, 0.30)),
    "text_overlay": (0.80, True, overlay),
    # compositions
    "crop15+resize0.5+jpeg50": (None, True, lambda im, r: jpeg(resize(crop(im, 0.15, r), 0.5), 50)),
    "letterbox+crop10+jpeg75": (None, True, lambda im, r: jpeg(letterbox(crop(im, 0.10, r)), 75)),
    "flip+rotate5+jpeg75": (None, True, lambda im, r: jpeg(rotate(
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 5 * sign(r)), 75)),
    "grey+crop10+resize0.7": (None, True, lambda im, r: resize(grayscale(crop(im, 0.10, r)), 0.7)),
}

# The image stage as configured by default, except that it keeps small and
# elongated copies (it would drop a 120 px stamp or a pillarboxed panorama
# before dedup sees it; those drops are not what this measures).
CFG = ImageConfig(min_side=16, max_aspect_ratio=8.0)


def training_side(img: Image.Image) -> tuple[str, str] | None:
    """What the pipeline stores for a web copy: the image stage's phash64 of a
    JPEG (q90) of it, and the verify hash of the stored JPEG (None when the
    stage drops the copy, e.g. too small)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=90)
    r = process_image(buf.getvalue(), CFG)
    if not r.ok:
        return None
    return r.phash, verify_hash(Image.open(io.BytesIO(r.jpeg)))


# ---------------------------------------------------------------- quality


def nearest_view(index: EvalIndex, item_id: str, phash: str) -> tuple[int, str]:
    """(distance, view) of the eval photo's indexed view nearest to ``phash``."""
    i = next(k for k, it in enumerate(index.items) if it["item_id"] == item_id)
    rows = np.flatnonzero(index.arrays["image_item"] == i)
    d = np.bitwise_count(index.arrays["image_codes"][rows] ^ np.uint64(int(phash, 16)))
    j = int(np.argmin(d))
    return int(d[j]), index.views[int(index.arrays["image_view"][rows[j]])]


def bench_quality(paths: list[Path], threshold: int | None, seed: int, repeats: int,
                  verbose: bool = False, only: list[str] | None = None, views: str | None = None,
                  crop_threshold: int | None = None, margin: int | None = None,
                  verify: int | None = None):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))
    eval_paths = [paths[i] for i in order[: len(paths) // 2]]
    clean_paths = [paths[i] for i in order[len(paths) // 2:]]
    items = [EvalItem("bench", "val", p.name, media=str(p), texts=()) for p in eval_paths]
    t0 = time.perf_counter()
    hashes = dict(hash_item(it, views) for it in items)
    index_s = time.perf_counter() - t0
    thresholds = dict(DEFAULT_THRESHOLDS)
    if threshold is not None:
        thresholds["image"] = threshold
    if crop_threshold is not None:
        thresholds["image_crop"] = crop_threshold
    if margin is not None:
        thresholds["image_margin"] = None if margin < 0 else margin
    if verify is not None:
        thresholds["image_verify"] = None if verify < 0 else verify
    index = EvalIndex.from_items(items, image_hashes=hashes, thresholds=thresholds)
    print(f"photos: {len(paths)} ({len(eval_paths)} eval, indexed; {len(clean_paths)} clean, "
          f"never indexed); {index.num_image_hashes} indexed hashes "
          f"({index.num_image_hashes / len(items):.0f} per photo, {index_s:.1f} s); "
          f"view set {views or DEFAULT_VIEW_SET!r}; threshold {index.thresholds['image']} bits"
          + (f", crop views {index.thresholds['image_crop']}" if index.thresholds.get("image_crop") is not None else "")
          + (f"; margin {index.thresholds['image_margin']} bits to other eval photos (radius >= "
             f"{index.thresholds['image_min_radius']})" if index.thresholds.get("image_margin") is not None
             else "; no margin")
          + (f"; crop matches verified at <= {index.thresholds['image_verify']} bits of the 256-bit verify hash"
             if index.thresholds.get("image_verify") is not None else "; no verification"))
    # verify-hash distance of each (query, eval photo) candidate met only through
    # verified (crop) views: genuine copies vs distinct photos
    vdist = {"genuine": [], "distinct": []}
    imgs = {p.name: normalize_image(Image.open(p)).convert("RGB") for p in paths}
    rows = []
    false_pairs = pairs = false_queries = queries = dropped = 0
    t_start = time.perf_counter()
    names = [n for n in TRANSFORMS if not only or n in only]
    for k, tname in enumerate(names):
        goal, randomised, fn = TRANSFORMS[tname]
        hit = n = 0
        dists = []
        for _ in range(repeats if randomised else 1):
            for group, plist in (("eval", eval_paths), ("clean", clean_paths)):
                for p in plist:
                    q = training_side(fn(imgs[p.name], rng))
                    if q is None:
                        dropped += 1
                        continue
                    ids = {m.item_id: m for m in index.match_image(*q)}
                    queries += 1
                    own = p.name if group == "eval" else None
                    for i, vd in index.verify_distances(*q).items():
                        if vd is not None:
                            vdist["genuine" if index.items[i]["item_id"] == own else "distinct"].append(vd)
                    if own is not None:
                        n += 1
                        if own in ids:
                            hit += 1
                            dists.append(ids[own].distance)
                        elif verbose:
                            d, view = nearest_view(index, own, q[0])
                            print(f"  miss: {tname} of {own}: nearest own view {view} at {d} bits")
                    wrong = set(ids) - {own}
                    false_pairs += len(wrong)
                    pairs += len(items) - (own is not None)
                    false_queries += bool(wrong)
                    if wrong and verbose:
                        print(f"  false: {tname} of {group} {p.name} -> "
                              + ", ".join(f"{i} d={ids[i].distance:.0f} ({ids[i].detail})" for i in wrong))
        rows.append((tname, goal, hit / max(n, 1), n, float(np.median(dists)) if dists else float("nan")))
        el = time.perf_counter() - t_start
        print(f"  [{k + 1}/{len(names)}] {tname}: {hit}/{n}; {queries / el:.0f} queries/s, "
              f"ETA {el / (k + 1) * (len(names) - k - 1):.0f} s", file=sys.stderr)
    print(f"\n{'training copy of an eval photo':<28}{'recall':>8}{'goal':>7}{'':>3}{'copies':>8}{'median d':>10}")
    for tname, goal, rec, n, md in rows:
        mark = "" if goal is None else ("ok" if rec >= goal else "MISS")
        g = "" if goal is None else f"{goal:.2f}"
        print(f"{tname:<28}{rec:>8.3f}{g:>7}{mark:>5}{n:>6}{md:>10.1f}")
    print(f"\nfalse matches: {false_queries} of {queries} queries ({false_queries / queries:.1e} per query; "
          f"{queries - sum(r[3] for r in rows)} of them copies of clean photos); "
          f"{false_pairs} of {pairs:,} (query, other eval photo) pairs ({false_pairs / pairs:.1e} per pair)"
          + (f"; {dropped} copies dropped by the image stage" if dropped else ""))
    print("verify-hash distance of candidates met only through crop views (256 bits; "
          f"threshold {index.thresholds.get('image_verify')}):")
    for kind, ds in vdist.items():
        if ds:
            a = np.array(ds)
            pct = ", ".join(f"p{q:g} {np.percentile(a, q):.0f}" for q in (1, 50, 99, 99.9))
            print(f"  {kind:<9}: {len(a)} candidates; min {a.min()}, {pct}, max {a.max()}")
        else:
            print(f"  {kind:<9}: none")
    return rows, false_queries / queries


# ---------------------------------------------------------------- speed


def bench_speed(n_index: int, n_queries: int, radius: int, seed: int, whole_radius: int = 0,
                whole_fraction: float = 2 / 191):
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
    if whole_radius > radius:
        # The whole-image views (2 of the ~191 views of an eval photo) are also
        # searched at the wider radius in their own index: a lookup is both
        # searches; the scan it replaces is the same one full scan.
        whole = codes[: max(1, round(n_index * whole_fraction))]
        wmih = MultiIndexHash(whole)
        wmih.search_pairs(queries[:100], whole_radius)
        t0 = time.perf_counter()
        wmih.search_pairs(queries, whole_radius)
        w_s = time.perf_counter() - t0
        wsame = all(np.array_equal(a, b) for a, b in zip(
            wmih.search_pairs(bf_queries, whole_radius), brute_force_pairs(whole, bf_queries, whole_radius)))
        both_qps = n_queries / (mih_s + w_s)
        print(f"  + whole-image views ({len(whole):,} codes) at radius {whole_radius}: "
              f"{n_queries / w_s:,.0f} queries/s; both searches {both_qps:,.0f} queries/s = "
              f"{both_qps / bf_qps:,.0f}x the scan; same results as a scan: {wsame}")
        same = same and wsame
        mih_qps = both_qps
        mih_s += w_s
    # Verification: each candidate pair's 256-bit verify hashes compared (as
    # EvalIndex.match_images does; every candidate counted, whole views too)
    vcodes = rng.integers(0, 2**64, size=(n_index, 4), dtype=np.uint64, endpoint=False)
    vq = rng.integers(0, 2**64, size=(n_queries, 4), dtype=np.uint64, endpoint=False)
    qi, ci, _ = got
    t0 = time.perf_counter()
    _ = np.bitwise_count(vq[qi] ^ vcodes[ci]).sum(axis=1) <= DEFAULT_THRESHOLDS["image_verify"]
    v_s = time.perf_counter() - t0
    all_qps = n_queries / (mih_s + v_s)
    print(f"  + verifying the {len(qi):,} candidates' verify hashes (random ones: this times the "
          f"comparison, not its outcome): {v_s * 1e3:.1f} ms; "
          f"search + verification {all_qps:,.0f} queries/s = {all_qps / bf_qps:,.0f}x the scan")
    return all_qps, bf_qps, same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", action="append", metavar="DIR",
                    help="use every image under DIR (repeatable) instead of the bundled photos")
    ap.add_argument("--threshold", type=int, default=None,
                    help="image Hamming threshold (default: the index default)")
    ap.add_argument("--crop-threshold", type=int, default=None,
                    help="radius for the crop views (default: the index default)")
    ap.add_argument("--set", dest="which", choices=("photos", "cutouts", "all"), default="photos",
                    help="bundled images: the real photos (default), the stress set of cut-out "
                         "objects on white (bench/data/dedup_photos/cutouts), or both in one index")
    ap.add_argument("--margin", type=int, default=None,
                    help="image_margin of the index (default: the index default; -1: off)")
    ap.add_argument("--verify", type=int, default=None,
                    help="image_verify of the index (default: the index default; -1: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1,
                    help="random draws per photo for the randomised transforms")
    ap.add_argument("--views", choices=sorted(VIEW_SETS), default=None,
                    help=f"eval-side view set (default {DEFAULT_VIEW_SET})")
    ap.add_argument("--only", action="append", metavar="TRANSFORM", help="run only these transforms (one random stream runs through the randomised "
                         "transforms in table order: to redraw a full run's copies of one, also name "
                         "the randomised ones before it, e.g. --only colour_jitter --only watermark)")
    ap.add_argument("--n-index", type=int, default=1_000_000)
    ap.add_argument("--n-queries", type=int, default=50_000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="print every false match and every miss")
    args = ap.parse_args(argv)
    paths = photo_paths(args.photos, args.which)
    if len(paths) < 4:
        ap.error(f"need at least 4 photos, found {len(paths)} under {args.photos}")
    bench_quality(paths, args.threshold, args.seed, args.repeats, args.verbose, args.only, args.views,
                  args.crop_threshold, args.margin, args.verify)
    if not args.skip_speed:
        radius = args.threshold if args.threshold is not None else DEFAULT_THRESHOLDS["image"]
        whole = DEFAULT_THRESHOLDS.get("image_whole") or radius
        bench_speed(args.n_index, args.n_queries, radius, args.seed, whole)


if __name__ == "__main__":
    main()
