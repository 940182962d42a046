"""python -m model.generate --checkpoint RUN_DIR|FILE --image a.jpg [--image b.jpg | --video c.mp4] --prompt "<image>Output:"

Prints the model's continuation of an interleaved prompt: the k-th
``<image>`` of the prompt is the k-th ``--image`` / ``--video`` given (in
the order given). Images are preprocessed as in training; a video is sampled
at 1 FPS and 8 frames evenly spread (eval.media), so one prompt holds either
images or videos. The model is rebuilt from the checkpoint's own config
(eval.checkpoints). Decoding: ``--num-beams`` (1 = greedy), at most
``--max-new-tokens``, stopping at ``<EOC>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


class _Media(argparse.Action):
    def __call__(self, parser, namespace, value, option_string=None):
        kind = "video" if option_string == "--video" else "image"
        getattr(namespace, self.dest).append((kind, value))


def parser() -> argparse.ArgumentParser:
    from shards.cli import Parser  # one-line errors, unknown options named with the closest

    ap = Parser(prog="python -m model.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="run directory or checkpoint / weights file")
    ap.add_argument("--image", dest="media", action=_Media, default=[], help="an image file (repeatable)")
    ap.add_argument("--video", dest="media", action=_Media, default=[], help="a video file, sampled at 1 FPS (repeatable)")
    ap.add_argument("--prompt", required=True, help='e.g. "<image>Output:" (one <image> per --image/--video)')
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--num-beams", type=int, default=3)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from shards.schema import IMAGE_TOKEN
    n_img = args.prompt.count(IMAGE_TOKEN)
    if n_img != len(args.media):
        raise SystemExit(f"error: --prompt has {n_img} {IMAGE_TOKEN} token(s) but {len(args.media)} "
                         f"--image/--video given")
    kinds = {k for k, _ in args.media}
    if len(kinds) > 1:
        raise SystemExit("error: one prompt holds images or videos, not both")
    for kind, path in args.media:
        if not Path(path).is_file():
            raise SystemExit(f"error: --{kind} {path}: no such file")
    if args.max_new_tokens < 1 or args.num_beams < 1:
        raise SystemExit("error: --max-new-tokens and --num-beams must be >= 1")
    if not Path(args.checkpoint).exists():  # before torch loads: answered at once
        raise SystemExit(f"error: --checkpoint {args.checkpoint}: no such file or directory")

    import torch
    from eval.checkpoints import CheckpointNotFound, load_checkpoint
    from eval.media import MediaError, MediaLoader
    from eval.scoring import generate_batch
    from train.checkpoint import CheckpointError
    try:
        model, tokenizer, _ = load_checkpoint(args.checkpoint)
    except (CheckpointNotFound, CheckpointError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    loader = MediaLoader.for_model(model)
    try:
        media = [loader.load(path, kind) for kind, path in args.media]
    except MediaError as e:
        raise SystemExit(f"error: {e}") from None
    vision = torch.stack([m[None] if m.dim() == 3 else m for m in media]) if media else None
    if vision is None:   # a text-only prompt: no pictures at all
        size = model.image_size
        vision = torch.zeros(0, 1, 3, size, size)
    text = generate_batch(model, tokenizer, [(args.prompt, vision)], args.max_new_tokens, args.num_beams)[0]
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
