import io
from pathlib import Path

import pytest
from PIL import Image

from dedup.build_index import build
from dedup.evalsets import load_eval_set, parse_eval_arg

DATA = Path(__file__).resolve().parents[1] / "data"
# Real photos standing in for three COCO val2014 images of the real sample file.
COCO_STANDINS = {"391895": "astronaut.png", "522418": "chelsea.png", "184613": "coffee.png"}
MSRVTT_STANDINS = {"video9770": "carphone_pristine.mp4", "video9771": "bikes.mp4"}


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def eval_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalmedia")
    (root / "coco").mkdir()
    (root / "msrvtt").mkdir()
    for image_id, name in COCO_STANDINS.items():
        Image.open(DATA / "images" / name).convert("RGB").save(
            root / "coco" / f"COCO_val2014_{int(image_id):012d}.jpg", "JPEG", quality=95)
    for vid, name in MSRVTT_STANDINS.items():
        (root / "msrvtt" / f"{vid}.mp4").write_bytes((DATA / "videos" / name).read_bytes())
    return root


@pytest.fixture(scope="session")
def eval_items(eval_dirs):
    items = load_eval_set(parse_eval_arg(
        f"coco_captions={DATA / 'evalsets' / 'coco_captions_val2014_sample.json'}:{eval_dirs / 'coco'}"),
        require_media=False)
    items += load_eval_set(parse_eval_arg(
        f"msrvtt={DATA / 'evalsets' / 'msrvtt_1kA_test.csv'}:{eval_dirs / 'msrvtt'}"), require_media=False)
    return items


@pytest.fixture(scope="session")
def index(eval_items):
    return build(eval_items)
