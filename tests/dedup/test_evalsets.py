"""Loaders on the real sample annotation files (and, for formats with no real
sample here, on the hand-written files in the published format; see
tests/data/PROVENANCE.md)."""
from pathlib import Path

import pytest
from PIL import Image

from dedup.evalsets import (EVAL_SETS, EvalSetError, load_eval_set, parse_eval_arg, load_coco_captions,
                            load_vqav2, load_okvqa, load_textvqa, load_textcaps, load_vizwiz, load_flickr30k,
                            load_hatefulmemes, load_visdial, load_nocaps, load_msrvtt, load_msvd, load_vatex, load_youcook2, load_nextqa, load_ivqa,
                            load_star, load_rareact, load_kinetics)

D = Path(__file__).resolve().parents[1] / "data" / "evalsets"
IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"


def by_id(items):
    return {it.item_id: it for it in items}


def test_coco_captions_real_sample():
    items = load_coco_captions([D / "coco_captions_val2014_sample.json"])
    # 100 images + the 56 other image ids that only the 100 captions name
    assert len(items) == 156
    assert sum(len(it.texts) for it in items) == 100
    it = by_id(items)["391895"]
    assert (it.eval_set, it.split, it.media) == ("coco_captions", "val2014", "COCO_val2014_000000391895.jpg")
    assert it.urls == ("http://images.cocodataset.org/val2014/COCO_val2014_000000391895.jpg",
                       "http://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg")
    cap = by_id(items)["322141"]
    assert len(cap.texts) == 5
    assert cap.texts[0] == "A room with blue walls and a white sink and door."
    assert "This is a blue and white bathroom with a wall sink and a lifesaver on the wall." in cap.texts
    assert cap.media == "COCO_val2014_000000322141.jpg"


def test_coco_results_real_sample():
    items = load_coco_captions([D / "coco_val2014_caption_results_sample.json"])
    assert len(items) == 1000
    it = by_id(items)["404464"]
    assert it.texts == ("black and white photo of a man standing in front of a building",)
    assert it.media == "COCO_val2014_000000404464.jpg" and it.split == "val2014"


def test_vqav2_annotations_real_sample():
    items = load_vqav2([D / "vqav2_val2014_annotations_sample.json"])
    assert len(items) == 19          # 100 questions on 19 images
    it = by_id(items)["262148"]
    assert (it.split, it.media, it.texts) == ("val2014", "COCO_val2014_000000262148.jpg", ())


def test_okvqa_questions_and_annotations():
    items = load_okvqa([D / "okvqa_OpenEnded_mscoco_val2014_questions_handmade.json",
                        D / "okvqa_mscoco_val2014_annotations_handmade.json"])
    assert len(items) == 2
    it = by_id(items)["297147"]
    assert it.texts == ("What sport can you use this for?", "Which country invented this sport?")
    assert it.media == "COCO_val2014_000000297147.jpg"


def test_textvqa_real_sample():
    items = load_textvqa([D / "textvqa_val_sample.json"])
    assert len(items) == 64 and sum(len(i.texts) for i in items) == 100
    it = by_id(items)["003a8ae2ef43b901"]
    assert (it.split, it.media, it.texts) == ("val", "003a8ae2ef43b901.jpg", ("what is the brand of this camera?",))
    assert it.urls == ("https://farm2.staticflickr.com/4/5566811_bc00d504a6_o.jpg",)


def test_textcaps_real_sample():
    items = load_textcaps([D / "textcaps_val_sample.json"])
    assert len(items) == 99
    it = by_id(items)["caef3d1e97c2cf15"]
    assert it.media == "caef3d1e97c2cf15.jpg"
    assert it.texts == ("A book about CEOs is sitting on top of a box.",)
    assert len(by_id(items)["81ac0221208f4892"].texts) == 2


def test_vizwiz():
    items = load_vizwiz([D / "vizwiz_val_handmade.json"])
    assert [i.item_id for i in items] == ["VizWiz_val_00000000", "VizWiz_val_00000001"]
    assert items[1].texts == ("Can you tell me what this medicine is please?",) and items[1].split == "val"


def test_flickr30k_karpathy():
    items = load_flickr30k([D / "dataset_flickr30k_handmade.json"])
    assert [(i.item_id, i.split) for i in items] == [("1000092795", "train"), ("1007129816", "test"),
                                                     ("1000268201", "val")]
    assert len(items[0].texts) == 2 and items[1].media == "1007129816.jpg"


def test_hatefulmemes():
    items = load_hatefulmemes([D / "hatefulmemes_dev_seen_handmade.jsonl"])
    assert len(items) == 3
    it = by_id(items)["46971"]
    assert (it.split, it.media, it.texts) == ("dev_seen", "img/46971.png", ("bravery at its finest",))


def test_visdial():
    items = load_visdial([D / "visdial_1.0_val_handmade.json"])
    it = by_id(items)["185565"]
    assert it.media == "VisualDialog_val2018_000000185565.jpg"
    assert it.texts == ("a man riding a skateboard down a ramp", "is the photo in color", "how many people are there")


def test_nocaps():
    items = load_nocaps([D / "nocaps_val_handmade.json"])
    assert len(items) == 2 and items[0].eval_set == "nocaps"
    assert items[0].media == "0013ea2087020901.jpg" and len(items[0].texts) == 2


def test_imagenet_folder(tmp_path):
    for cls, names in {"n01440764": ["ILSVRC2012_val_00000293.JPEG"],
                       "n02102040": ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG"]}.items():
        (tmp_path / cls).mkdir()
        for n in names:
            Image.open(IMAGES / "coffee.png").convert("RGB").save(tmp_path / cls / n, "JPEG")
    items = load_eval_set(parse_eval_arg(f"imagenet={tmp_path}"))
    assert len(items) == 3
    it = by_id(items)["ILSVRC2012_val_00000293"]
    assert it.media == str(tmp_path / "n01440764" / "ILSVRC2012_val_00000293.JPEG") and it.split == "val"


def test_msrvtt_real_sample():
    items = load_msrvtt([D / "msrvtt_1kA_test.csv"])
    assert len(items) == 1000
    it = by_id(items)["video9770"]
    assert (it.kind, it.split, it.media, it.texts) == ("video", "test", "video9770",
                                                       ("a person is connecting something to system",))


def test_video_sets():
    msvd = load_msvd([D / "msvd_test_qa_handmade.json", D / "msvd_youtube_mapping_handmade.txt"])
    assert [(i.item_id, len(i.texts)) for i in msvd] == [("-4wsuPCjDBc_5_15", 1), ("-7KMZQEsJW4_205_208", 2)]
    vatex = load_vatex([D / "vatex_validation_handmade.json"])
    assert vatex[0].item_id == "Ptf_2VRj-V0_000122_000132" and len(vatex[0].texts) == 2
    yc = by_id(load_youcook2([D / "youcookii_annotations_handmade.json"]))
    assert yc["xHr8X2Wpmno"].split == "validation" and yc["GLd3aX16zBg"].split == "training"
    assert yc["xHr8X2Wpmno"].urls == ("https://www.youtube.com/watch?v=xHr8X2Wpmno",)
    nq = by_id(load_nextqa([D / "nextqa_val_handmade.csv", D / "nextqa_map_vid_vidorID_handmade.json"]))
    assert nq["4010069381"].media == "1004/4010069381" and len(nq["4010069381"].texts) == 2
    iv = load_ivqa([D / "ivqa_test_handmade.csv"])
    assert iv[0].item_id == "ZaA3qmcESkc_24_36" and iv[0].texts == ("What is the man cutting?",)
    star = load_star([D / "star_val_handmade.json"])
    assert [i.item_id for i in star] == ["6H78U", "YSKX3"] and star[0].split == "val"
    ra = load_rareact([D / "rareact_handmade.csv"])
    assert [i.item_id for i in ra] == ["--yhG6Nz7BE", "0TcF3Rp1BIY"]
    k = load_kinetics([D / "kinetics700_validate_handmade.csv"])
    assert k[0].item_id == "0wR5jVB-WPk_000417_000427" and k[0].split == "validate"


def test_every_registered_set_has_a_loader_test():
    assert set(EVAL_SETS) == {"coco_captions", "nocaps", "vqav2", "okvqa", "textvqa", "textcaps", "vizwiz",
                              "flickr30k", "hatefulmemes", "visdial", "imagenet", "msrvtt", "msrvtt_qa", "msvd", "vatex",
                              "youcook2", "nextqa", "ivqa", "star", "rareact", "kinetics"}


def test_missing_files_are_a_clear_error(tmp_path):
    with pytest.raises(EvalSetError, match=r"annotation file\(s\) not found: .*nope.json.*media directory not found"):
        load_eval_set(parse_eval_arg(f"coco_captions={tmp_path}/nope.json:{tmp_path}/noimages"))
    with pytest.raises(EvalSetError, match="no media directory"):
        load_eval_set(parse_eval_arg(f"textvqa={D / 'textvqa_val_sample.json'}"))
    # media dir present but images absent: the error names them
    with pytest.raises(EvalSetError, match=r"64 of 64 media files not found .*003a8ae2ef43b901 \(003a8ae2ef43b901.jpg\)"):
        load_eval_set(parse_eval_arg(f"textvqa={D / 'textvqa_val_sample.json'}:{tmp_path}"))
    with pytest.raises(EvalSetError, match="unknown eval set 'cocoo'"):
        parse_eval_arg("cocoo=x.json:dir")


def test_split_filter_and_media_resolution(tmp_path):
    Image.open(IMAGES / "chelsea.png").save(tmp_path / "1007129816.jpg", "JPEG")
    items = load_eval_set(parse_eval_arg(f"flickr30k@test={D / 'dataset_flickr30k_handmade.json'}:{tmp_path}"))
    assert [(i.item_id, i.media) for i in items] == [("1007129816", str(tmp_path / "1007129816.jpg"))]
