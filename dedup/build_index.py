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

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor

from PIL import Image

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem, EvalSetError, load_eval_set, parse_eval_arg
from dedup.index import DEFAULT_THRESHOLDS, EvalIndex, item_key


def hash_item(it: EvalItem) -> tuple[str, list]:
    """(item key, hashes): [(view, phash)] for an image, frame phashes for a video."""
    if it.media is None:
        return item_key(it), []
    try:
        if it.kind == "video":
            return item_key(it), fp.video_frame_phashes(it.media)
        with Image.open(it.media) as im:
            return item_key(it), fp.eval_phashes(im)
    except Exception as e:  # a corrupt eval file must not pass silently
        raise EvalSetError(f"{it.eval_set} item {it.item_id}: cannot decode {it.media}: {e}") from e


def build(items: list[EvalItem], thresholds: dict | None = None, workers: int = 1) -> EvalIndex:
    with_media = [it for it in items if it.media]
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            results = list(ex.map(hash_item, with_media, chunksize=16))
    else:
        results = [hash_item(it) for it in with_media]
    image_hashes = {k: v for (k, v), it in zip(results, with_media) if it.kind == "image"}
    video_hashes = {k: v for (k, v), it in zip(results, with_media) if it.kind == "video"}
    return EvalIndex.from_items(items, image_hashes, video_hashes, thresholds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dedup.build_index",
                                 description="Build the dedup eval index (.npz).")
    ap.add_argument("--eval", action="append", required=True, metavar="NAME[@SPLIT]=FILES:MEDIA_DIR")
    ap.add_argument("--out", required=True, help="index file (.npz; local or any Beam filesystem path)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--allow-missing-media", action="store_true")
    ap.add_argument("--image-threshold", type=int, default=DEFAULT_THRESHOLDS["image"])
    ap.add_argument("--video-frame-threshold", type=int, default=DEFAULT_THRESHOLDS["video_frame"])
    ap.add_argument("--ngram", type=int, default=DEFAULT_THRESHOLDS["text_ngram"],
                    help="n of the n-gram text containment rule (GPT-3: 13)")
    args = ap.parse_args(argv)
    try:
        items: list[EvalItem] = []
        for arg in args.eval:
            src = parse_eval_arg(arg)
            items.extend(load_eval_set(src, require_media=not args.allow_missing_media))
        index = build(items, {"image": args.image_threshold, "video_frame": args.video_frame_threshold,
                              "text_ngram": args.ngram}, args.workers)
    except EvalSetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    index.save(args.out)
    print(json.dumps(index.summary(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
