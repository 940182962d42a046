"""The bundled evaluation sample: ``make eval``'s --data folder, built offline.

    python -m eval.sample --out build/eval_sample

The annotations are real published ones from tests/data/evalsets, rewritten
into each task's published file layout with a demo split beside the query
split (which the samples lack: they hold one split each):

- coco: the COCO val2014 captions sample (57 images, their real captions) as
  a Karpathy ``dataset_coco.json``; the first 12 images are ``test``, the
  rest ``train``.
- textvqa: the TextVQA val sample (100 questions, 10 human answers each) as
  ``TextVQA_0.5.1_{train,val}.json``; the questions on the first 24 images
  are ``train``, the rest ``val``.
- msrvtt (video captioning): the first 30 clips of the MSR-VTT 1k-A test csv with their real
  sentences, the first 6 as ``test``, the rest ``train``; the clips are
  stand-ins, links to the four real videos of tests/data/videos (cycled).
- imagenet: class folders of real photos from tests/data/images named by
  what they show (cat, coffee, rocket, horse, motorcycle, astronaut); the
  ``train`` image is the photo, the ``val`` image a flipped crop of it
  (motorcycle: the left and right views of a stereo pair).

The COCO and TextVQA images themselves are not available offline: each is
a **stand-in**, a real photo (or video) from tests/data/images (cycled), so the loop
runs end to end but the numbers say nothing about the model's ability.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageOps

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png", "camera.png", "china.jpg",
          "flower.jpg", "grace_hopper.jpg", "motorcycle_left.png", "coins.png", "moon.png", "retina.jpg",
          "hubble_deep_field.jpg", "brick.png", "grass.png", "page.png", "text.png", "clock_motion.png"]
CLASSES = {"cat": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg", "horse": "horse.png",
           "astronaut": "astronaut.png", "motorcycle": ("motorcycle_left.png", "motorcycle_right.png")}
SIZE = 96   # stand-ins are saved small: the tiny model sees 32 px


def _save(src: str, dest: Path, transform=None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    im = Image.open(DATA / "images" / src).convert("RGB")
    if transform:
        im = transform(im)
    im.thumbnail((SIZE, SIZE))
    im.save(dest, "JPEG", quality=90)


def build(out: str) -> dict[str, int]:
    root = Path(out)
    counts = {}
    # coco: Karpathy layout
    gt = json.loads((DATA / "evalsets" / "coco_captions_val2014_sample.json").read_text())
    caps: dict[int, list[str]] = {}
    for ann in gt["annotations"]:
        caps.setdefault(ann["image_id"], []).append(ann["caption"])
    images = []
    for i, (iid, sentences) in enumerate(caps.items()):
        name = f"COCO_val2014_{iid:012d}.jpg"
        images.append({"filepath": "val2014", "filename": name, "cocoid": iid, "split": "test" if i < 12 else "train",
                       "sentences": [{"raw": s, "tokens": s.lower().split()} for s in sentences]})
        _save(PHOTOS[i % len(PHOTOS)], root / "coco" / "media" / "val2014" / name)
    (root / "coco").mkdir(parents=True, exist_ok=True)
    (root / "coco" / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    counts["coco"] = len(images)
    # textvqa: split by image
    tv = json.loads((DATA / "evalsets" / "textvqa_val_sample.json").read_text())
    order = list(dict.fromkeys(r["image_id"] for r in tv["data"]))
    train_ids = set(order[:24])
    for split, keep in (("train", lambda r: r["image_id"] in train_ids), ("val", lambda r: r["image_id"] not in train_ids)):
        recs = [dict(r, set_name=split) for r in tv["data"] if keep(r)]
        (root / "textvqa").mkdir(parents=True, exist_ok=True)
        (root / "textvqa" / f"TextVQA_0.5.1_{split}.json").write_text(
            json.dumps({"dataset_type": split, "dataset_name": "textvqa", "data": recs}))
    for i, iid in enumerate(order):
        _save(PHOTOS[(i + 5) % len(PHOTOS)], root / "textvqa" / "media" / f"{iid}.jpg")
    counts["textvqa"] = len(tv["data"])
    # msrvtt: 1k-A rows, stand-in clips (symbolic links: the sample is rebuilt by every make eval)
    lines = (DATA / "evalsets" / "msrvtt_1kA_test.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:31]
    videos = sorted((DATA / "videos").glob("*.mp4"))
    (root / "msrvtt" / "media").mkdir(parents=True, exist_ok=True)
    for name, part in (("msrvtt_1kA_test.csv", rows[:6]), ("msrvtt_train.csv", rows[6:])):
        (root / "msrvtt" / name).write_text("\n".join([header] + part) + "\n")
    for i, row in enumerate(rows):
        link = root / "msrvtt" / "media" / f"{row.split(';')[2]}.mp4"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(videos[i % len(videos)].resolve())
    counts["msrvtt"] = len(rows)
    # imagenet: class folders
    for cls, src in CLASSES.items():
        train_src, val_src = src if isinstance(src, tuple) else (src, src)
        _save(train_src, root / "imagenet" / "train" / cls / f"{cls}_train.jpg")
        flip = None if isinstance(src, tuple) else (
            lambda im: ImageOps.mirror(im.crop((im.width // 10, im.height // 10, im.width, im.height))))
        _save(val_src, root / "imagenet" / "val" / cls / f"{cls}_val.jpg", flip)
    counts["imagenet"] = 2 * len(CLASSES)
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    counts = build(args.out)
    print(f"eval sample in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + " (real annotations; COCO/TextVQA images are stand-in photos)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
