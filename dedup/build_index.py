"""Build the eval index file the jobs load.

    python -m dedup.build_index \\
        --eval coco_captions=annotations/captions_val2014.json:coco/val2014 \\
        --eval vqav2=v2_Questions_val.json,v2_Annotations_val.json:coco/val2014 \\
        --eval flickr30k@test=dataset_flickr30k.json:flickr30k/images \\
        --eval imagenet=imagenet/val \\
        --eval msrvtt=msrvtt_1kA_test.csv:msrvtt/videos \\
        --out eval_index.npz

``--eval NAME[@SPLIT[+SPLIT]]=FILE[,FILE...]:MEDIA_DIR``; names and files in
``dedup.evalsets``.  Every named set must be complete: missing annotation
files, media directory or media files are an error listing them
(``--allow-missing-media`` indexes what is there and reports the rest).
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from PIL import Image

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem, EvalSetError, load_eval_set, parse_eval_arg
from dedup.index import DEFAULT_THRESHOLDS, EvalIndex, item_key


def hash_item(it: EvalItem, view_set: str | None = None) -> tuple[str, list]:
    """(item key, hashes): [(view, phash, verify hash)] for an image, frame phashes for a video."""
    if it.media is None:
        return item_key(it), []
    try:
        if it.kind == "video":
            return item_key(it), fp.video_frame_phashes(it.media)
        with Image.open(it.media) as im:
            return item_key(it), fp.eval_hashes(im, view_set)
    except Exception as e:  # a corrupt eval file must not pass silently
        raise EvalSetError(f"{it.eval_set} item {it.item_id}: cannot decode {it.media}: {e}") from e


def build(items: list[EvalItem], thresholds: dict | None = None, workers: int = 1,
          progress=None) -> EvalIndex:
    """The index of ``items``; media hashed in ``workers`` processes (0: one per
    core).  The result, and the saved file's bytes, do not depend on ``workers``."""
    with_media = [it for it in items if it.media]
    workers = (os.cpu_count() or 1) if workers == 0 else workers
    workers = max(1, min(workers, len(with_media)))
    t0 = time.perf_counter()
    results = []

    def tick(done):
        if progress is not None and (done == len(with_media) or done % max(1, len(with_media) // 20) == 0):
            el = time.perf_counter() - t0
            rate = done / el if el > 0 else 0.0
            eta = (len(with_media) - done) / rate if rate else 0.0
            print(f"hashed {done}/{len(with_media)} media files ({rate:.1f}/s, {workers} processes, "
                  f"ETA {eta:.0f} s)", file=progress, flush=True)

    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for r in ex.map(hash_item, with_media, chunksize=max(1, min(16, len(with_media) // (4 * workers)))):
                results.append(r)
                tick(len(results))
    else:
        for it in with_media:
            results.append(hash_item(it))
            tick(len(results))
    image_hashes = {k: v for (k, v), it in zip(results, with_media) if it.kind == "image"}
    video_hashes = {k: v for (k, v), it in zip(results, with_media) if it.kind == "video"}
    return EvalIndex.from_items(items, image_hashes, video_hashes, thresholds)


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m dedup.build_index", description="Build the dedup eval index (.npz).")
    ap.add_argument("--eval", action="append", required=True, metavar="NAME[@SPLIT]=FILES:MEDIA_DIR")
    ap.add_argument("--out", required=True, help="index file (.npz; local or any Beam filesystem path)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes hashing media (default 0: one per core; same index either way)")
    ap.add_argument("--allow-missing-media", action="store_true")
    ap.add_argument("--image-threshold", type=int, default=DEFAULT_THRESHOLDS["image"])
    ap.add_argument("--image-crop-threshold", type=int, default=None,
                    help="smaller radius for the crop views (default: --image-threshold); "
                         "bench/bench_dedup.py --crop-threshold measures the trade")
    ap.add_argument("--image-margin", type=int, default=DEFAULT_THRESHOLDS["image_margin"],
                    help="an eval view's radius stops this many bits short of the nearest view of "
                         "another eval image (default %(default)s; -1: off)")
    ap.add_argument("--video-frame-threshold", type=int, default=DEFAULT_THRESHOLDS["video_frame"])
    ap.add_argument("--ngram", type=int, default=DEFAULT_THRESHOLDS["text_ngram"],
                    help="n of the n-gram text containment rule (GPT-3: 13)")
    args = ap.parse_args(argv)
    for option, value, low in (("--workers", args.workers, 0), ("--image-threshold", args.image_threshold, 0),
                               ("--video-frame-threshold", args.video_frame_threshold, 0),
                               ("--ngram", args.ngram, 1), ("--image-margin", args.image_margin, -1),
                               ("--image-crop-threshold", 0 if args.image_crop_threshold is None
                                else args.image_crop_threshold, 0)):
        if value < low:
            ap.error(f"{option} {value}: expected an integer >= {low}")
    try:
        items: list[EvalItem] = []
        for arg in args.eval:
            src = parse_eval_arg(arg)
            items.extend(load_eval_set(src, require_media=not args.allow_missing_media))
        index = build(items, {"image": args.image_threshold, "image_crop": args.image_crop_threshold,
                              "image_margin": None if args.image_margin < 0 else args.image_margin,
                              "video_frame": args.video_frame_threshold,
                              "text_ngram": args.ngram}, args.workers, progress=sys.stderr)
    except EvalSetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    index.save(args.out)
    print(json.dumps(index.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
