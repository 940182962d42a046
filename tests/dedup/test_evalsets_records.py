"""The evaluation side of the loaders: each item's ``records`` (questions, every
human answer, candidates, labels, class names, clip windows), parsed once in
dedup/evalsets.py for dedup and eval alike. Real samples where they exist,
hand-written files in the published format otherwise (tests/data/PROVENANCE.md)."""
import json
from pathlib import Path

from PIL import Image

from dedup.evalsets import (load_coco_captions, load_eval_set, load_flickr30k, load_hatefulmemes, load_ivqa,
                            load_kinetics, load_msrvtt, load_msrvtt_qa, load_msvd, load_nextqa, load_okvqa,
                            load_rareact, load_star, load_textcaps, load_textvqa, load_vatex, load_visdial, load_vizwiz,
                            load_vqav2, load_youcook2, parse_eval_arg)

D = Path(__file__).resolve().parents[1] / "data" / "evalsets"
IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"


def recs(items):
    return {r["id"]: (it, r) for it in items for r in it.records}


def test_coco_captions_records_keep_every_caption():
    items = load_coco_captions([D / "coco_captions_val2014_sample.json"])
    raw = json.loads((D / "coco_captions_val2014_sample.json").read_text())
    by_img = {}
    for a in raw["annotations"]:
        by_img.setdefault(str(a["image_id"]), []).append(a["caption"])
    got = {it.item_id: it.records[0]["captions"] for it in items if it.records}
    assert got == by_img and sum(map(len, got.values())) == 100


def test_coco_karpathy_split_file():
    items = {it.item_id: it for it in load_coco_captions([D / "dataset_coco_handmade.json"])}
    assert {k: (v.split, v.media) for k, v in items.items()} == {
        "391895": ("test", "val2014/COCO_val2014_000000391895.jpg"),
        "57870": ("train", "train2014/COCO_train2014_000000057870.jpg"),
        "522418": ("restval", "val2014/COCO_val2014_000000522418.jpg")}
    assert items["391895"].records[0]["captions"] == [
        "A man with a red helmet on a small moped on a dirt road. ",
        "Man riding a motor bike on a dirt road on the countryside."]


def test_vqav2_records_hold_all_ten_answers():
    items = load_vqav2([D / "vqav2_val2014_annotations_sample.json"])
    r = recs(items)
    assert len(r) == 100
    it, rec = r["262148000"]
    assert it.item_id == "262148" and len(rec["answers"]) == 10
    assert rec["multiple_choice_answer"] == "down" and rec["answers"][0] == "down"
    assert rec["answer_type"] == "other"


def test_okvqa_question_and_answers_from_two_files_merge():
    r = recs(load_okvqa([D / "okvqa_OpenEnded_mscoco_val2014_questions_handmade.json",
                         D / "okvqa_mscoco_val2014_annotations_handmade.json"]))
    assert r["2971475"][1] == {"id": "2971475", "question": "What sport can you use this for?",
                               "answers": ["race"], "answer_type": "other", "question_type": "four"}
    assert "answers" not in r["2971476"][1]   # a question with no annotation stays unanswered


def test_textvqa_textcaps_vizwiz_records():
    tv = recs(load_textvqa([D / "textvqa_val_sample.json"]))
    assert len(tv) == 100
    it, rec = tv["34602"]
    assert rec["question"] == "what is the brand of this camera?" and len(rec["answers"]) == 10
    assert rec["answers"][:2] == ["nous les gosses", "dakota"]
    tc = {it.item_id: it for it in load_textcaps([D / "textcaps_val_sample.json"])}
    assert tc["81ac0221208f4892"].records[0]["captions"] == list(tc["81ac0221208f4892"].texts)
    vw = recs(load_vizwiz([D / "vizwiz_val_handmade.json"]))
    assert vw["VizWiz_val_00000000"][1]["answers"] == ["unanswerable"]
    assert vw["VizWiz_val_00000000"][1]["answerable"] == 0


def test_flickr_hatefulmemes_visdial_records(tmp_path):
    fl = {it.item_id: it for it in load_flickr30k([D / "dataset_flickr30k_handmade.json"])}
    assert fl["1000092795"].records[0]["captions"][1] == "Two young, White males are outside near many bushes."
    hm = recs(load_hatefulmemes([D / "hatefulmemes_dev_seen_handmade.jsonl"]))
    assert hm["46971"][1] == {"id": "46971", "text": "bravery at its finest", "label": 1}
    vd = recs(load_visdial([D / "visdial_1.0_val_handmade.json", D / "visdial_1.0_val_dense_annotations_handmade.json"]))
    rec = vd["185565_2"][1]
    assert rec["question"] == "how many people are there" and rec["history"] == [("is the photo in color", "yes")]
    assert rec["options"] == ["yes", "2", "no"] and rec["gt_index"] == 1 and "relevance" not in rec
    assert vd["185565_1"][1]["relevance"] == [1.0, 0.0, 0.5]
    assert vd["185565_1"][1]["caption"] == "a man riding a skateboard down a ramp"


def test_imagenet_class_names_from_synset_mapping(tmp_path):
    for cls in ("n01440764", "n02102040"):
        (tmp_path / cls).mkdir()
        Image.open(IMAGES / "coffee.png").convert("RGB").save(tmp_path / cls / f"{cls}_1.JPEG", "JPEG")
    items = load_eval_set(parse_eval_arg(f"imagenet={D / 'imagenet_LOC_synset_mapping_handmade.txt'}:{tmp_path}"))
    assert sorted((it.records[0]["label"], it.records[0]["class_name"]) for it in items) == [
        ("n01440764", "tench"), ("n02102040", "English springer")]
    plain = load_eval_set(parse_eval_arg(f"imagenet={tmp_path}"))
    assert sorted(it.records[0]["class_name"] for it in plain) == ["n01440764", "n02102040"]


def test_video_records():
    assert load_msrvtt([D / "msrvtt_1kA_test.csv"])[0].records[0]["captions"] == [
        "a person is connecting something to system"]
    qa = recs(load_msrvtt_qa([D / "msrvtt_qa_test_handmade.json"]))
    assert qa["158582"][0].item_id == "video9771" and qa["158582"][1]["answers"] == ["gymnastics"]
    msvd = recs(load_msvd([D / "msvd_test_qa_handmade.json", D / "msvd_youtube_mapping_handmade.txt"]))
    assert msvd["2"][1] == {"id": "2", "question": "what is the woman slicing?", "answers": ["tomato"]}
    assert len(load_vatex([D / "vatex_validation_handmade.json"])[0].records[0]["captions"]) == 2
    yc = recs(load_youcook2([D / "youcookii_annotations_handmade.json"]))
    assert yc["GLd3aX16zBg_1"][1] == {"id": "GLd3aX16zBg_1", "captions": ["place a slice of cheese on the bread"],
                                      "start": 114.0, "end": 127.0}
    nq = recs(load_nextqa([D / "nextqa_val_handmade.csv"]))
    assert nq["4010069381_9"][1]["candidates"] == ["to sing", "dancing", "lead the band", "take picture", "waiting"]
    assert nq["4010069381_9"][1]["answer"] == 2
    iv = recs(load_ivqa([D / "ivqa_test_handmade.csv"]))["ZaA3qmcESkc_24_36"][1]
    assert iv["answers"] == ["onion", "onion", "onions", "onion", "onion"] and (iv["start"], iv["end"]) == (24, 36)
    st = recs(load_star([D / "star_val_handmade.json"]))["Interaction_T1_13"][1]
    assert st["candidates"] == ["The closet/cabinet.", "The blanket."] and st["answer"] == 0
    assert (st["start"], st["end"]) == (11.1, 19.6)
    k = load_kinetics([D / "kinetics700_validate_handmade.csv"])
    assert [it.records[0]["class_name"] for it in k] == ["abseiling", "air drumming"]


def test_rareact_records_one_per_row():
    items = load_rareact([D / "rareact_sample.csv"])
    assert [it.item_id for it in items][:2] == ["5hhk_fUC8h0", "mds1TtfMEyA"] and len(items) == 7
    clothe = next(it for it in items if it.item_id == "muo-CLmYN10")
    assert [r["id"] for r in clothe.records] == ["256", "257", "258"]      # three labelled rows, one clip
    assert clothe.records[0] == {"id": "256", "video_id": "muo-CLmYN10", "verb": "shake", "noun": "clothe",
                                 "class_name": "shake clothe", "start": 0.0, "end": 10.0,
                                 "class_id": 62, "annotation": 1}
    hm = recs(load_rareact([D / "rareact_handmade.csv"]))
    assert hm["0"][1]["annotation"] == 2 and hm["2"][1]["class_name"] == "drill egg"
