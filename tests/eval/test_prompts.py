"""Prompt strings per task kind, the zero-shot form, and demonstration selection (random, RICES)."""
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dedup.evalsets import load_coco_captions, load_hatefulmemes, load_nextqa, load_okvqa, load_visdial
from eval import prompts
from eval.demos import Rices, random_demos
from eval.media import MediaLoader
from eval.tasks import Query

DATA = Path(__file__).resolve().parents[1] / "data"
EV = DATA / "evalsets"


def _records(items):
    return [r for it in items for r in it.records]


def test_caption_prompt_two_shots_exact():
    recs = _records(load_coco_captions([EV / "dataset_coco_handmade.json"]))
    text = prompts.prompt_text("caption", recs[:2], recs[2])
    assert text == ("<image>Output:A man with a red helmet on a small moped on a dirt road.<EOC>"
                    "<image>Output:" + recs[1]["captions"][0].strip() + "<EOC>"
                    "<image>Output:")


def test_vqa_prompt_and_zero_shot_text_only_form():
    recs = _records(load_okvqa([EV / "okvqa_OpenEnded_mscoco_val2014_questions_handmade.json",
                                EV / "okvqa_mscoco_val2014_annotations_handmade.json"]))
    q0, q1 = [r for r in recs if r.get("answers")]
    q2 = next(r for r in recs if not r.get("answers"))      # a query needs its question only
    shot = prompts.prompt_text("vqa", [q0], q1)
    assert shot == (f"<image>Question:{q0['question']} Short answer:{q0['answers'][0]}<EOC>"
                    f"<image>Question:{q1['question']} Short answer:")
    assert shot.startswith("<image>Question:What sport can you use this for? Short answer:race<EOC>")
    # zero-shot as in the paper: two text-only examples (no <image>), then the query with its image
    zero = prompts.prompt_text("vqa", [], q2, text_only=[q0, q1])
    assert zero == (f"Question:{q0['question']} Short answer:{q0['answers'][0]}<EOC>"
                    f"Question:{q1['question']} Short answer:{prompts.demo_answer(q1)}<EOC>"
                    f"<image>Question:{q2['question']} Short answer:")
    assert zero.count("<image>") == 1


def test_ranked_kinds_prompts_and_candidates():
    hm = _records(load_hatefulmemes([EV / "hatefulmemes_dev_seen_handmade.jsonl"]))
    assert prompts.prompt_text("hateful", [hm[0]], hm[1]) == (
        "<image>is an image with: 'white people is this a shooting range' written on it. "
        "Is it hateful? Answer:yes<EOC>"
        f"<image>is an image with: '{hm[1]['text']}' written on it. Is it hateful? Answer:")
    assert prompts.candidates("hateful", hm[1]) == ["yes", "no"]
    nq = _records(load_nextqa([EV / "nextqa_val_handmade.csv"]))
    assert prompts.prompt_text("choice", [nq[0]], nq[1]) == (
        "<image>Question:how do the two man play the instrument Answer:roll the handle<EOC>"
        f"<image>Question:{nq[1]['question']} Answer:")
    assert prompts.candidates("choice", nq[1]) == nq[1]["candidates"]
    vd = _records(load_visdial([EV / "visdial_1.0_val_handmade.json",
                                EV / "visdial_1.0_val_dense_annotations_handmade.json"]))
    later = next(r for r in vd if r["history"])
    q, a = later["history"][0]
    assert prompts.query_text("visdial", later) == (
        f"Caption:{later['caption']}. Dialogue: Question:{q} Answer:{a}. Question:{later['question']} Answer:")
    assert prompts.candidates("classify", {}, ["tench", "goldfish"]) == ["tench", "goldfish"]
    assert prompts.prompt_text("classify", [{"class_name": "tench"}], {"class_name": "x"}) == \
        "<image>Output:tench<EOC><image>Output:"


def test_build_prompt_matches_text_and_stacks_images():
    recs = _records(load_coco_captions([EV / "dataset_coco_handmade.json"]))
    imgs = [torch.full((3, 4, 4), float(i)) for i in range(3)]
    text, vision = prompts.build_prompt("caption", [(imgs[0], recs[0]), (imgs[1], recs[1])], (imgs[2], recs[2]),
                                        text_only=[])
    assert text == prompts.prompt_text("caption", recs[:2], recs[2])
    assert vision.shape == (3, 1, 3, 4, 4) and vision[:, 0, 0, 0, 0].tolist() == [0.0, 1.0, 2.0]
    text, vision = prompts.build_prompt("caption", [], (imgs[2], recs[2]), text_only=recs[:2])
    assert text == prompts.prompt_text("caption", [], recs[2], recs[:2]) and vision.shape[0] == 1


def test_random_demos_are_seeded_per_query():
    pool = list(range(50))
    a = random_demos(pool, 4, seed=0, uid="q1")
    assert a == random_demos(pool, 4, seed=0, uid="q1")
    assert a != random_demos(pool, 4, seed=1, uid="q1")
    assert len(set(a)) == 4
    with pytest.raises(ValueError, match="demo pool has 50"):
        random_demos(pool, 51, seed=0, uid="q1")


@pytest.fixture(scope="module")
def tiny_model():
    from model.build import build_flamingo
    from model.config import FlamingoConfig
    model, _ = build_flamingo(FlamingoConfig.tiny())
    return model.eval()


def test_rices_finds_the_resized_copy_and_caches(tmp_path, tiny_model):
    photos = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "horse.png", "camera.png",
              "china.jpg", "flower.jpg", "grace_hopper.jpg", "motorcycle_left.png", "coins.png", "moon.png"]
    pool = [Query(name, str(DATA / "images" / name), {}, "train") for name in photos]
    loader = MediaLoader.for_model(tiny_model)
    load = lambda p, record=None: loader.load(p, "image")  # noqa: E731
    rices = Rices(tiny_model, pool, load, tmp_path, "photos")
    assert not rices.cache_hit and rices.cache_path.is_file()
    for name in ("chelsea.png", "rocket.jpg", "grace_hopper.jpg"):
        im = Image.open(DATA / "images" / name).convert("RGB")
        small = im.resize((im.width // 3, im.height // 3), Image.BILINEAR)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=85)
        q = tmp_path / f"small-{name}.jpg"
        q.write_bytes(buf.getvalue())
        got = rices.nearest(load(str(q)), 3)
        assert got[-1].uid == name           # the most similar goes last, next to the query
        assert len({g.uid for g in got}) == 3
    again = Rices(tiny_model, pool, load, tmp_path, "photos")
    assert again.cache_hit and (again.features == rices.features).all()
    other = Rices(tiny_model, pool[:-1], load, tmp_path, "photos")   # another pool: not the cached file
    assert not other.cache_hit


def test_rices_on_videos_uses_the_clip_window(tmp_path, tiny_model):
    clip = str(DATA / "videos" / "bikes.mp4")                       # 10 s, frames at 0..9 s
    pool = [Query("early", clip, {"start": 0.0, "end": 3.0}, "train"),
            Query("late", clip, {"start": 6.0, "end": 9.0}, "train")]
    loader = MediaLoader.for_model(tiny_model)
    load = lambda p, record=None: loader.load(  # noqa: E731
        p, "video", (record["start"], record["end"]) if record and "start" in record else None)
    rices = Rices(tiny_model, pool, load, tmp_path, "clips")
    assert not np.allclose(rices.features[0], rices.features[1])   # one video, two windows, two features
    query = loader.load(clip, "video", (6.0, 9.0))
    assert [q.uid for q in rices.nearest(query, 1)] == ["late"]
    assert [q.uid for q in rices.nearest(loader.load(clip, "video", (0.0, 3.0)), 1)] == ["early"]
