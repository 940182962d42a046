"""eval.metrics against the reference implementations, on real published inputs."""
import json
from pathlib import Path

import numpy as np
import pytest

from dedup.evalsets import load_coco_captions
from eval import metrics
from tests.eval.vqa_predictions import predictions

DATA = Path(__file__).resolve().parents[1] / "data" / "evalsets"
GOLDEN = json.loads((Path(__file__).parent / "data" / "vqa_official_outputs.json").read_text())


def _vqa_sets(name):
    if name == "vqav2":
        d = json.loads((DATA / "vqav2_val2014_annotations_sample.json").read_text())
        return [(a["question_id"], [x["answer"] for x in a["answers"]], a["multiple_choice_answer"])
                for a in d["annotations"]]
    d = json.loads((DATA / "textvqa_val_sample.json").read_text())
    return [(r["question_id"], r["answers"], r["answers"][0]) for r in d["data"]]


@pytest.mark.parametrize("name", ["vqav2", "textvqa"])
def test_vqa_accuracy_equals_the_official_script(name):
    questions = _vqa_sets(name)
    n_sets = len(predictions(["x"], "x"))
    assert len(GOLDEN[name]) == n_sets
    for k in range(n_sets):
        gold = GOLDEN[name][str(k)]
        accs = []
        for qid, answers, consensus in questions:
            acc = metrics.vqa_accuracy(predictions(answers, consensus)[k], answers)
            # the script keeps per-question accuracies in percent, rounded to 2 places
            assert round(100 * acc, 2) == gold["per_question"][str(qid)], (name, k, qid)
            accs.append(acc)
        assert round(100 * sum(accs) / len(accs), 2) == gold["overall"]


def test_vqa_normalisation_steps():
    assert metrics.normalize_vqa_answer("The Two dogs.") == "2 dogs"
    assert metrics.normalize_vqa_answer("  isnt it?\n") == "isn’t it"
    assert metrics.normalize_vqa_answer("10,000") == "10000"
    assert metrics.normalize_vqa_answer("3.5") == "3.5"
    # 3 of the 10 humans said "2": every leave-one-out subset keeps >= 2 of them
    answers = ["2"] * 3 + ["3"] * 7
    assert metrics.vqa_accuracy("two", answers) == pytest.approx((7 * 1 + 3 * 2 / 3) / 10)
    assert metrics.vqa_accuracy("three", answers) == 1.0


def test_ivqa_accuracy():
    assert metrics.ivqa_accuracy("A guitar", ["guitar", "guitar", "piano", "drum", "bass"]) == 1.0
    assert metrics.ivqa_accuracy("piano", ["guitar", "guitar", "piano", "drum", "bass"]) == 0.5
    assert metrics.ivqa_accuracy("violin", ["guitar", "guitar", "piano", "drum", "bass"]) == 0.0


def _caption_case(tmp_path):
    """Real COCO val2014 captions (the sample's 57 images) and real predictions: the published
    results sample where it covers an image, else one held-out human caption."""
    gt = json.loads((DATA / "coco_captions_val2014_sample.json").read_text())
    fake = {r["image_id"]: r["caption"]
            for r in json.loads((DATA / "coco_val2014_caption_results_sample.json").read_text())}
    by_image = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    results, kept = [], []
    for iid, anns in by_image.items():
        if iid in fake:
            results.append({"image_id": iid, "caption": fake[iid]})
            kept += anns
        elif len(anns) >= 2:
            results.append({"image_id": iid, "caption": anns[0]["caption"]})
            kept += anns[1:]
    assert len(results) >= 25
    gt_file = tmp_path / "captions_val2014.json"
    gt_file.write_text(json.dumps({"images": [{"id": r["image_id"], "file_name": f"COCO_val2014_{r['image_id']:012d}.jpg"}
                                              for r in results],
                                   "annotations": kept, "info": {}, "licenses": [],
                                   "type": "captions"}))
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(results))
    return gt_file, res_file, results


def test_caption_scores_equal_the_coco_evaluation(tmp_path, monkeypatch):
    from pycocotools.coco import COCO
    import pycocoevalcap.eval as coco_eval

    gt_file, res_file, results = _caption_case(tmp_path)

    # The COCO server's flow (pycocoevalcap's COCOEvalCap on the two files). SPICE
    # needs a download at first use, and METEOR a 2 GB JVM: both are stubbed out
    # of the *reference* run only, to keep this test fast and offline.
    class Skip:
        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(gts)

        def method(self):
            return "skipped"

    monkeypatch.setattr(coco_eval, "Spice", Skip)
    monkeypatch.setattr(coco_eval, "Meteor", Skip)
    coco = COCO(str(gt_file))
    ev = coco_eval.COCOEvalCap(coco, coco.loadRes(str(res_file)))
    ev.params["image_id"] = [r["image_id"] for r in results]
    ev.evaluate()

    # Ours: the references through the project's loader, the predictions by id.
    items = load_coco_captions([gt_file])
    refs = {it.item_id: it.records[0]["captions"] for it in items}
    preds = {str(r["image_id"]): r["caption"] for r in results}
    corpus, per_item = metrics.caption_scores(preds, refs, ("cider", "bleu4", "rouge_l"))
    assert corpus["CIDEr"] == pytest.approx(ev.eval["CIDEr"], abs=1e-4)
    assert corpus["BLEU-4"] == pytest.approx(ev.eval["Bleu_4"], abs=1e-4)
    assert corpus["ROUGE-L"] == pytest.approx(ev.eval["ROUGE_L"], abs=1e-4)
    assert 0.5 < corpus["CIDEr"] < 3.0          # human captions score high, not 0
    for r in results:
        ref = ev.imgToEval[r["image_id"]]
        assert per_item[str(r["image_id"])]["CIDEr"] == pytest.approx(ref["CIDEr"], abs=1e-4)


def test_caption_scores_empty_prediction_and_mismatch():
    refs = {"1": ["a cat on a mat", "a cat sits on the mat"], "2": ["two dogs in a park"]}
    corpus, per_item = metrics.caption_scores({"1": "a cat on a mat", "2": ""}, refs)
    assert per_item["2"]["CIDEr"] == 0.0 and per_item["1"]["CIDEr"] > 0
    with pytest.raises(ValueError, match="different items"):
        metrics.caption_scores({"1": "x"}, refs)


def test_roc_auc_ndcg_topk():
    # Mann-Whitney by hand: positives 0.9, 0.4; negatives 0.4, 0.1 -> (1 + 1 + 0.5 + 1) / 4
    assert metrics.roc_auc([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0]) == pytest.approx(0.875)
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc([0.1, 0.2], [1, 1])
    assert metrics.topk_correct([0.1, 0.5, 0.3], 2, 1) is False
    assert metrics.topk_correct([0.1, 0.5, 0.3], 2, 2) is True
    rel = [0.0, 1.0, 0.5, 0.0]
    assert metrics.visdial_ndcg([0.0, 0.9, 0.8, 0.1], rel) == pytest.approx(1.0)
    # ranked 2, 3 -> relevance 0.5, 0 in the top k=2: 0.5 / (1 + 0.5 / log2(3))
    got = metrics.visdial_ndcg([0.0, 0.1, 0.9, 0.8], rel)
    assert got == pytest.approx(0.5 / (1 + 0.5 / np.log2(3)))
    assert metrics.mean_and_spread([1.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 2}


def test_caption_scores_without_java_is_one_clear_error(monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="need Java for the COCO PTB tokeniser"):
        metrics.caption_scores({"1": "a cat"}, {"1": ["a cat on a mat"]})


def _rareact_rows():
    from dedup.evalsets import load_rareact
    items = load_rareact([DATA / "rareact_sample.csv"])
    return [r for it in items for r in it.records]


def test_rareact_mwap_hand_computed_on_real_rows():
    rows = _rareact_rows()
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    assert [r["id"] for r in rows] == ["84", "111", "117", "144", "166", "210", "256", "257", "258"]
    assert rows[by_id["144"]] == {"id": "144", "video_id": "lOwPbeRakQM", "verb": "shake", "noun": "hair",
                                   "class_name": "shake hair", "start": 0.0, "end": 10.0,
                                   "class_id": 36, "annotation": 1}
    # Classes with a positive: shake table (19: row 117), shake hair (36: row 144), shake clothe
    # (62: rows 256-258, one video, so each weighs 1/3). Every other class's positive shares the
    # verb, so it is a hard negative; the 0-labelled rows belong to classes without positives.
    col = {19: {"117": 0.5, "144": 0.9, "256": 0.8, "257": 0.1, "258": 0.1},
           36: {"144": 0.9, "117": 0.2, "256": 0.3, "257": 0.3, "258": 0.3},
           62: {"256": 0.9, "117": 0.8, "257": 0.7, "144": 0.6, "258": 0.5}}
    scores = [{c: col.get(c, {}).get(r["id"], 0.0) for c in {19, 36, 62, r["class_id"]}} for r in rows]
    # shake table: hard negatives 144 (weight 1) and 256 (1/3) above the positive: AP = 1 / (1 + 1 + 1/3) = 3/7.
    # shake hair: AP 1. shake clothe, in score order 256+ 117- 257+ 144- 258+ (positives 1/3 each):
    # 1/3 * 1 + 1/3 * (2/3) / (5/3) + 1/3 * 1 / 3 = 26/45 (unweighted it would be 0.7556).
    assert metrics.rareact_mwap(rows, scores) == pytest.approx((3 / 7 + 1 + 26 / 45) / 3, abs=1e-12)
    # A hard negative of shake hair by its label (2: only the verb is right) scored above 144: AP 1/2.
    extra = {"id": "x", "video_id": "new", "verb": "shake", "noun": "hair", "class_id": 36, "annotation": 2}
    assert metrics.rareact_mwap(rows + [extra], scores + [{36: 0.95}]) == \
        pytest.approx((3 / 7 + 1 / 2 + 26 / 45) / 3, abs=1e-12)
    with pytest.raises(ValueError, match="no score for class 19"):
        metrics.rareact_mwap(rows, [{r["class_id"]: 0.0} for r in rows])
