import pytest
from PIL import Image

from dedup.apply import filter_m3w_document, filter_pair, filter_video, match_record
from dedup.fingerprints import phash64, video_frame_phashes

from .conftest import DATA

def ph(name, scale=0.5):
    img = Image.open(DATA / "images" / name).convert("RGB")
    return phash64(img.resize((int(img.width * scale), int(img.height * scale))))


def test_m3w_drop_removes_matched_image_keeps_rest(index):
    doc = {"url": "https://blog.example/pets", "nodes": [
        "My cat this morning.", {"phash": ph("chelsea.png"), "url": "https://blog.example/cat.jpg"},
        "And a rocket launch.", {"phash": ph("rocket.jpg"), "url": "https://blog.example/rocket.jpg"}]}
    new, matches = filter_m3w_document(doc, index, "drop")
    assert new["nodes"] == ["My cat this morning.", "And a rocket launch.", doc["nodes"][3]]
    assert new["url"] == doc["url"]
    assert [(pos, m.item_id, m.kind) for pos, m in matches] == [(1, "522418", "image")]
    same, tagged = filter_m3w_document(doc, index, "tag")
    assert same is doc and [(p, m.item_id) for p, m in tagged] == [(1, "522418")]


def test_m3w_document_dropped_when_no_image_left_or_text_contaminated(index):
    only = {"nodes": ["Look:", {"phash": ph("astronaut.png"), "url": None}]}
    assert filter_m3w_document(only, index)[0] is None
    by_url = {"nodes": ["x", {"phash": ph("rocket.jpg"),
                              "url": "https://images.cocodataset.org/val2014/COCO_val2014_000000184613.jpg"}]}
    new, ms = filter_m3w_document(by_url, index)
    assert new is None and [m.kind for _, m in ms] == ["url"]
    text = {"nodes": ["a woman sitting on a bench and a woman standing behind the bench at a bus stop today",
                      {"phash": ph("rocket.jpg"), "url": None}]}
    new, ms = filter_m3w_document(text, index)
    assert new is None and [(m.item_id, m.kind) for _, m in ms] == [("517069", "text")]
    with pytest.raises(ValueError):
        filter_m3w_document(text, index, "delete")


def test_pairs_and_videos(index):
    keep, ms = filter_pair("a nice cat", ph("chelsea.png"), None, index, verify_hash=None)
    assert not keep and [m.item_id for m in ms] == ["522418"]
    assert filter_pair("a rocket", ph("rocket.jpg"), None, index, verify_hash=None) == (True, [])
    keep, ms = filter_video("a car ride", video_frame_phashes(DATA / "videos" / "carphone_distorted.mp4"), index)
    assert not keep and [m.item_id for m in ms] == ["video9770"]
    rec = match_record(ms[0], "k1", "http://v.example/x.mp4")
    assert rec["train_key"] == "k1" and rec["eval_set"] == "msrvtt" and rec["kind"] == "video"
