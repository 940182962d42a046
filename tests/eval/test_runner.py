"""eval.runner on the ranked kinds (HatefulMemes, NextQA, STAR, VisDial, Kinetics, RareAct) and a video QA task.

The data folders are the handmade annotation files of tests/data/evalsets in
their published layout; the images and clips are stand-ins (real photos and
videos of tests/data). The samples have one split each, so the demo split is
a copy under the train file name (here only: a test of the mechanics).
"""
import json
import shutil
from pathlib import Path

import pytest
import torch

from eval import metrics
from eval.report import markdown
from eval.runner import Options, evaluate_task
from eval.tasks import TASKS, load_task
from model.build import build_flamingo
from model.config import FlamingoConfig

DATA = Path(__file__).resolve().parents[1] / "data"
EV = DATA / "evalsets"


@pytest.fixture(scope="module")
def model_tok():
    model, tok = build_flamingo(FlamingoConfig.tiny())
    with torch.no_grad():
        for layer in model.xattn_layers.values():
            layer.gated.attn_gate.fill_(1.0)
            layer.gated.ff_gate.fill_(1.0)
    return model.eval(), tok


def _copy(src, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    # HatefulMemes: the three handmade (hateful) memes plus two benign texts (COCO captions) labelled 0
    hm = [json.loads(line) for line in (EV / "hatefulmemes_dev_seen_handmade.jsonl").read_text().splitlines()]
    hm += [{"id": 90001, "img": "img/90001.png", "label": 0, "text": "a man riding a motor bike on a dirt road"},
           {"id": 90002, "img": "img/90002.png", "label": 0, "text": "a cat sitting on a wooden bench"}]
    (root / "hatefulmemes").mkdir()
    for name in ("train.jsonl", "dev_seen.jsonl"):
        (root / "hatefulmemes" / name).write_text("\n".join(json.dumps(r) for r in hm) + "\n")
    for rec, photo in zip(hm, ["chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png", "horse.png"]):
        _copy(DATA / "images" / photo, root / "hatefulmemes" / "media" / rec["img"])
    # NextQA (videos named through the vidor map)
    for name in ("train.csv", "val.csv"):
        _copy(EV / "nextqa_val_handmade.csv", root / "nextqa" / name)
    _copy(EV / "nextqa_map_vid_vidorID_handmade.json", root / "nextqa" / "map_vid_vidorID.json")
    _copy(DATA / "videos" / "bikes.mp4", root / "nextqa" / "media" / "1004" / "4010069381.mp4")
    _copy(DATA / "videos" / "carphone_pristine.mp4", root / "nextqa" / "media" / "0012" / "2435100235.mp4")
    # STAR: clip windows 11.1-19.6 s and 3.0-10.2 s; the 10 s stand-in clip has no frame in the first
    for name in ("STAR_train.json", "STAR_val.json"):
        _copy(EV / "star_val_handmade.json", root / "star" / name)
    _copy(DATA / "videos" / "bikes.mp4", root / "star" / "media" / "6H78U.mp4")
    _copy(DATA / "videos" / "bikes.mp4", root / "star" / "media" / "YSKX3.mp4")
    # VisDial: val with dense relevance; the same dialogs as the train split
    val = json.loads((EV / "visdial_1.0_val_handmade.json").read_text())
    (root / "visdial").mkdir()
    (root / "visdial" / "visdial_1.0_val.json").write_text(json.dumps(val))
    (root / "visdial" / "visdial_1.0_train.json").write_text(json.dumps(dict(val, split="train")))
    _copy(EV / "visdial_1.0_val_dense_annotations_handmade.json",
          root / "visdial" / "visdial_1.0_val_dense_annotations.json")
    for split in ("val2018", "train"):
        for iid, photo in ((185565, "rocket.jpg"), (284024, "coffee.png")):
            _copy(DATA / "images" / photo, root / "visdial" / "media" / f"VisualDialog_{split}_{iid:012d}.jpg")
    # MSRVTT-QA (video vqa)
    for name in ("train_qa.json", "test_qa.json"):
        _copy(EV / "msrvtt_qa_test_handmade.json", root / "msrvtt_qa" / name)
    _copy(DATA / "videos" / "bigbuckbunny.mp4", root / "msrvtt_qa" / "media" / "video9770.mp4")
    _copy(DATA / "videos" / "carphone_distorted.mp4", root / "msrvtt_qa" / "media" / "video9771.mp4")
    # Kinetics-700: the handmade validate.csv; its rows relabelled "train" are the demo split
    kin = (EV / "kinetics700_validate_handmade.csv").read_text()
    (root / "kinetics").mkdir()
    (root / "kinetics" / "validate.csv").write_text(kin)
    (root / "kinetics" / "train.csv").write_text(kin.replace(",validate", ",train"))
    for clip, video in (("0wR5jVB-WPk_000417_000427", "bikes.mp4"), ("--nQbRBEz2s_000104_000114", "carphone_pristine.mp4")):
        _copy(DATA / "videos" / video, root / "kinetics" / "media" / f"{clip}.mp4")
    # RareAct: the real rows (0-10 s windows), one stand-in clip per video
    _copy(EV / "rareact_sample.csv", root / "rareact" / "rareact.csv")
    vids = sorted({line.split(",")[1] for line in (EV / "rareact_sample.csv").read_text().splitlines()[1:]})
    for i, vid in enumerate(vids):
        clip = ("carphone_pristine.mp4", "carphone_distorted.mp4")[i % 2]
        _copy(DATA / "videos" / clip, root / "rareact" / "media" / f"{vid}.mp4")
    return root


OPTS = dict(shots=[0, 1], trials=1, progress=False, candidate_batch=2)


def _trial(res, shots):
    return res["shots"][str(shots)]["trials"][0]


def test_hatefulmemes_roc_auc_from_p_yes(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["hatefulmemes"], data_dir)
    res = evaluate_task(model, tok, data, Options(**OPTS))
    for k in (0, 1):
        t = _trial(res, k)
        assert t["n"] == 5
        labels = {str(r.record["id"]): r.record["label"] for r in data.queries}
        p = {u: v["score"] for u, v in t["predictions"].items()}
        for u, v in t["predictions"].items():   # P(yes) from the two candidates' log-likelihoods
            assert v["score"] == pytest.approx(1 / (1 + torch.tensor(v["output"][1] - v["output"][0]).exp().item()))
        assert t["metrics"]["ROC-AUC"] == pytest.approx(
            100 * metrics.roc_auc(list(p.values()), [labels[u] for u in p]))


def test_multiple_choice_and_clip_windows(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["nextqa"], data_dir)
    res = evaluate_task(model, tok, data, Options(**OPTS))
    t = _trial(res, 1)
    recs = {q.uid: q.record for q in data.queries}
    assert t["n"] == 3 and all(len(v["output"]) == 5 for v in t["predictions"].values())
    right = [max(range(5), key=v["output"].__getitem__) == recs[u]["answer"] for u, v in t["predictions"].items()]
    assert t["metrics"]["accuracy"] == pytest.approx(100 * sum(right) / 3)
    star = evaluate_task(model, tok, load_task(TASKS["star"], data_dir), Options(**OPTS))
    t = _trial(star, 0)
    assert t["n"] == 1 and t["dropped"] == {"unreadable media": 1}   # the window after the clip's end


def test_visdial_ndcg_over_dense_rounds(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["visdial"], data_dir)
    assert data.dropped == {"no dense relevance": 1}      # round 2 of the first dialog has none
    res = evaluate_task(model, tok, data, Options(**OPTS))
    t = _trial(res, 1)
    rel = {q.uid: q.record["relevance"] for q in data.queries}
    assert t["n"] == 2
    assert t["metrics"]["NDCG"] == pytest.approx(
        100 * sum(metrics.visdial_ndcg(v["output"], rel[u]) for u, v in t["predictions"].items()) / 2)


def test_video_vqa(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["msrvtt_qa"], data_dir)
    res = evaluate_task(model, tok, data, Options(**OPTS, num_beams=1))
    t = _trial(res, 1)
    assert t["n"] == 3 and all(isinstance(v["output"], str) for v in t["predictions"].values())
    recs = {q.uid: q.record for q in data.queries}
    assert t["metrics"]["accuracy"] == pytest.approx(
        100 * sum(metrics.vqa_accuracy(v["output"], recs[u]["answers"]) for u, v in t["predictions"].items()) / 3)


def test_kinetics_class_names_ranked(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["kinetics"], data_dir)
    assert data.classes == ["abseiling", "air drumming"] and len(data.queries) == len(data.demos) == 2
    assert {q.split for q in data.queries} == {"validate"} and {d.split for d in data.demos} == {"train"}
    res = evaluate_task(model, tok, data, Options(**OPTS))
    for k in (0, 1):
        t = _trial(res, k)
        assert t["n"] == 2 and all(len(v["output"]) == 2 for v in t["predictions"].values())
        recs = {q.uid: q.record for q in data.queries}
        right = [data.classes[max(range(2), key=v["output"].__getitem__)] == recs[u]["class_name"]
                 for u, v in t["predictions"].items()]
        assert t["metrics"] == {"top-1": pytest.approx(100 * sum(right) / 2), "top-5": 100.0}
    shown = _trial(res, 1)["predictions"]["0wR5jVB-WPk_000417_000427"]["demos"]
    assert len(shown) == 1 and shown[0] in {d.uid for d in data.demos}


def test_rareact_mwap_zero_shot_only(model_tok, data_dir):
    model, tok = model_tok
    data = load_task(TASKS["rareact"], data_dir)
    assert data.demos == [] and data.classes == ["shake tree", "shake table", "shake potato", "shake hair",
                                                 "shake lemon", "measure hair", "shake clothe"]   # ids 18..62
    res = evaluate_task(model, tok, data, Options(**dict(OPTS, candidate_batch=64)))
    assert list(res["shots"]) == ["0"] and res["skipped_shots"] == {"1": "RareAct has no train split: zero-shot only"}
    t = _trial(res, 0)
    out = {u: v["output"] for u, v in t["predictions"].items()}
    assert t["n"] == 9 and all(len(s) == 7 for s in out.values())
    assert out["muo-CLmYN10/256"] == out["muo-CLmYN10/257"] == out["muo-CLmYN10/258"]   # the same clip
    recs = {q.uid: q.record for q in data.queries}
    ids = [18, 19, 27, 36, 46, 52, 62]
    assert t["metrics"]["mWAP"] == pytest.approx(100 * metrics.rareact_mwap(
        [recs[u] for u in out], [dict(zip(ids, s)) for s in out.values()]))
    md = markdown({"checkpoint": "ckpt", "options": {"demos": "random", "trials": 1}, "tasks": {"rareact": res}})
    assert f"| 0 | {t['metrics']['mWAP']:.1f} |" in md and "| shots | RareAct (mWAP) |" in md
    assert "- rareact: 1 shots: RareAct has no train split: zero-shot only" in md
    with pytest.raises(ValueError, match="rareact: RareAct has no train split, so it runs zero-shot only"):
        evaluate_task(model, tok, data, Options(**dict(OPTS, shots=[4])))


def test_clip_window_frames():
    from eval.media import MediaError, MediaLoader
    loader = MediaLoader(32, (0.5,) * 3, (0.5,) * 3, frames=4)
    clip = str(DATA / "videos" / "bikes.mp4")                  # 10 s: frames at 0..9 s at 1 FPS
    whole, part = loader.load(clip, "video"), loader.load(clip, "video", (6.0, 9.0))
    assert whole.shape == part.shape == (4, 3, 32, 32)
    assert torch.equal(whole[-1], part[-1])                    # both end on the 9 s frame
    assert torch.equal(part[0], loader.load(clip, "video", (6.0, 6.0))[0])   # the window starts at 6 s
    with pytest.raises(MediaError, match="no frame in the window 20-30 s"):
        loader.load(clip, "video", (20.0, 30.0))
