"""Eval-set dedup inside the M3W job, end to end: real photos planted as COCO
val2014 images are found and removed from real pages; a COCO caption pasted
into a page contaminates it; the report lists exactly the planted matches."""
import json
from pathlib import Path

import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline
from PIL import Image

from dedup import build_index, report
from pipeline.extract import ExtractConfig
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.images import ImageConfig
from pipeline.m3w import MATCHES_FILE, DedupConfig, build_m3w
from pipeline.sample import build_sample, photo_for_url
from shards.schema import count_images, decode_members

from tests.data_paths import EVALSETS, IMAGES

# Real photos standing in for three COCO val2014 images of the real annotation sample.
PLANTED = {"391895": "chelsea.png", "522418": "coffee.png", "184613": "grace_hopper.jpg"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("dedup_e2e")
    warc = root / "sample.warc.gz"
    build_sample(str(warc), max_pages=20)
    media = root / "coco"
    media.mkdir()
    for image_id, name in PLANTED.items():
        Image.open(IMAGES / name).convert("RGB").save(
            media / f"COCO_val2014_{int(image_id):012d}.jpg", "JPEG", quality=90)
    ann = EVALSETS / "coco_captions_val2014_sample.json"
    index = root / "eval_index.npz"
    assert build_index.main(["--eval", f"coco_captions={ann}:{media}", "--out", str(index),
                             "--allow-missing-media"]) == 0
    caption = json.loads(ann.read_text())["annotations"][0]["caption"]
    # COCO captions are shorter than 13 words: the exact-caption rule catches them.
    para = "Here is what we saw on the trip, described at length for the readers of this blog."
    page = root / "pages.jsonl"
    page.write_text(json.dumps({"url": "https://blog.example/contaminated", "html":
        f"<article><p>{para}</p><p>{caption}</p><img src='https://blog.example/a.jpg'></article>"}))
    return {"warc": str(warc), "index": str(index), "page": str(page), "root": root}


def _run(inputs, out, dcfg):
    p = TestPipeline()
    build_m3w(p, inputs, str(out), FilterConfig(), ExtractConfig(), ImageConfig(), FetchConfig(),
              "r", 1000, fetch=False, dcfg=dcfg)
    res = p.run()
    res.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in res.metrics().query()["counters"]}
    docs = {s["__key__"]: s for s in map(decode_members, wds.WebDataset(
        sorted(str(x) for x in Path(out).glob("m3w-*.tar")), shardshuffle=False))}
    return docs, counters


def test_planted_duplicates_removed_and_reported(corpus, tmp_path):
    base, _ = _run([corpus["warc"]], tmp_path / "base", DedupConfig())
    planted = {(k, im["url"]) for k, d in base.items() for im in d["json"]["images"]
               if photo_for_url(im["url"]) in PLANTED.values()}
    assert len(planted) >= 2
    docs, counters = _run([corpus["warc"], corpus["page"]], tmp_path / "dedup",
                          DedupConfig(index=corpus["index"]))
    assert counters["drop_image_eval_duplicate"] == len(planted)
    kept = {(k, im["url"]) for k, d in docs.items() for im in d["json"]["images"]}
    assert not kept & planted
    before = {(k, im["url"]) for k, d in base.items() for im in d["json"]["images"]}
    assert kept == before - planted - {(k, u) for k, u in before if k not in docs}
    # Documents left with no image are dropped; the others lost only the <image> tags.
    gone_docs = {k for k in base if k not in docs}
    assert counters.get("drop_document_no_images_left", 0) >= len(gone_docs) > 0 or not gone_docs
    for k, d in docs.items():
        assert count_images(d["json"]["text"]) == len(d["json"]["images"])
        lost = len(base[k]["json"]["images"]) - len(d["json"]["images"])
        assert lost == len({u for kk, u in planted if kk == k})
    assert counters["drop_document_eval_text_contamination"] == 1

    matches = report.read_matches(tmp_path / "dedup" / MATCHES_FILE)
    image_hits = {(m["train_key"], m["train_url"]) for m in matches if m["kind"] == "image"}
    assert image_hits == planted
    assert {m["item_id"] for m in matches if m["kind"] == "image"} <= set(PLANTED)
    text_hits = [m for m in matches if m["kind"] == "text"]
    assert [m["train_url"] for m in text_hits] == ["https://blog.example/contaminated"]
    assert report.main(["--matches", str(tmp_path / "dedup" / MATCHES_FILE),
                        "--index", corpus["index"], "--out", str(tmp_path / "rep")]) == 0
    rep = json.loads((tmp_path / "rep" / "dedup_report.json").read_text())
    [coco] = rep["per_eval_set"]
    assert (coco["eval_set"], coco["images"], coco["texts"]) == ("coco_captions", len(planted), 1)
    assert rep["totals"]["images"] == len(planted)
    html = (tmp_path / "rep" / "dedup_report.html").read_text()
    assert html.count("data:image/jpeg;base64") >= 2 * len(planted)


def test_tag_action_keeps_and_marks(corpus, tmp_path):
    docs, counters = _run([corpus["warc"]], tmp_path / "tag",
                          DedupConfig(index=corpus["index"], action="tag"))
    tagged = [im for d in docs.values() for im in d["json"]["images"] if im.get("eval_matches")]
    assert tagged and all(photo_for_url(im["url"]) in PLANTED.values() for im in tagged)
    assert "drop_image_eval_duplicate" not in counters
