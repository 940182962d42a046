"""Media for the offline dedup demo (``make dedup-index`` with no EVAL).

The COCO val2014 images themselves are not available offline.  The demo
index pairs the real COCO captions sample annotation file with real photos
from tests/data/images saved under the COCO file names of three of its image
ids, so that the bundled M3W sample (whose archived images are those same
photos, see pipeline/sample.py) has genuine near-duplicates to find.  The
photos are stand-ins, not COCO images; the annotations are real.

    python -m dedup.demo_evalset --out build/dedup/coco_standins
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
STANDINS = {"391895": "chelsea.png", "522418": "coffee.png", "184613": "grace_hopper.jpg"}


def write_standins(out_dir: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for image_id, name in STANDINS.items():
        p = out / f"COCO_val2014_{int(image_id):012d}.jpg"
        Image.open(DATA / "images" / name).convert("RGB").save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m dedup.demo_evalset", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the stand-in images")
    args = ap.parse_args(argv)
    paths = write_standins(args.out)
    print(f"{len(paths)} stand-in eval images in {args.out} ({', '.join(STANDINS.values())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
