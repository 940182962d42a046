"""The crop-view verification inside the jobs: neither image stage computes
the verify hash; the m3w and pairs jobs compute it from the stored JPEG where
a candidate needs it and hand it to dedup.apply, so a photo that meets an eval image only through a crop view
and whose finer layout differs (another hammer on white, bench photo set)
stays in the corpus, while a genuine crop copy of the eval image is still
dropped.  Real photos, the real jobs (build_m3w on a WARC, build_pairs on an
img2dataset-shaped list), an eval index built as make dedup-index builds it."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline
from PIL import Image
from warcio.warcwriter import WARCWriter

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import EvalIndex
from pipeline.captions import CaptionConfig
from pipeline.extract import ExtractConfig
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.images import ImageConfig
from pipeline.m3w import DedupConfig, build_m3w
from pipeline.pairs import build_pairs
from pipeline.read import html_file_url
from pipeline.sample import _write, page_image_urls
from shards.schema import decode_members

from tests.data_paths import READABILITY

PHOTOS = Path(__file__).resolve().parents[2] / "bench" / "data" / "dedup_photos"
HAMMER2 = PHOTOS / "gcompris_categorization_hammer2.jpg"    # the eval image
HAMMER5 = PHOTOS / "gcompris_categorization_hammer5.jpg"    # another hammer photo
OTHER = PHOTOS / "gcompris_categorization_eiffelTower.jpg"  # unrelated


def _load(path: Path) -> Image.Image:
    return fp.normalize_image(Image.open(path)).convert("RGB")


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _genuine_crop() -> Image.Image:
    """hammer2 cut by 10%, placed off the index's crop grid (0.3, 0.7)."""
    img = _load(HAMMER2)
    w, h = img.size
    cw, ch = round(w * 0.9), round(h * 0.9)
    x0, y0 = round((w - cw) * 0.3), round((h - ch) * 0.7)
    return img.crop((x0, y0, x0 + cw, y0 + ch))


# what each test image is; hammer5's 10% crop meets hammer2's view
# crop0.85@0.333,0.167 at 6 bits of phash64 (tests/dedup/test_verify.py)
IMAGES = {
    "impostor": lambda: _load(HAMMER5).crop((28, 12, 316, 185)),
    "genuine": _genuine_crop,
    "other": lambda: _load(OTHER),
}


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    """{verified, unverified}: hammer2 indexed as build_index does (its crop
    views carry verify hashes); the second with verification switched off."""
    root = tmp_path_factory.mktemp("verify_index")
    hashes = fp.eval_hashes(Image.open(HAMMER2))
    out = {}
    for name, thresholds in (("verified", None), ("unverified", {"image_verify": None})):
        idx = EvalIndex.from_items([EvalItem("bench", "val", "hammer2", media=str(HAMMER2))],
                                   image_hashes={"hammer2": hashes}, thresholds=thresholds)
        idx.save(root / f"{name}.npz")
        out[name] = str(root / f"{name}.npz")
    return out


def _counters(result) -> dict:
    return {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}


def _samples(out: Path, kind: str) -> list[dict]:
    tars = sorted(str(t) for t in out.glob(f"{kind}-*.tar"))
    return [decode_members(s) for s in wds.WebDataset(tars, shardshuffle=False)]


# ---------------------------------------------------------------- m3w

@pytest.fixture(scope="module")
def m3w_warc(tmp_path_factory):
    """A real page (Readability's bbc-1) whose three images are archived as
    the impostor, the genuine crop and the unrelated photo; returns (WARC, {url: what})."""
    page = READABILITY / "bbc-1" / "source.html.gz"
    body = gzip.decompress(page.read_bytes())
    url = html_file_url(str(page), body)
    urls = page_image_urls(body.decode("utf-8", "replace"), url, FilterConfig())
    assert len(urls) == 3
    path = tmp_path_factory.mktemp("verify_m3w") / "page.warc.gz"
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        _write(writer, url, body, "text/html; charset=utf-8")
        for img_url, what in zip(urls, IMAGES):
            _write(writer, img_url, _jpeg(IMAGES[what]()), "image/jpeg")
    return str(path), dict(zip(urls, IMAGES))


def _run_m3w(warc, what: dict, out: Path, index: str):
    """(what the kept images are, the document, counters)."""
    p = TestPipeline()
    build_m3w(p, [warc], str(out), FilterConfig(), ExtractConfig(), ImageConfig(), FetchConfig(),
              "verify", 100, fetch=False, dcfg=DedupConfig(index=index, max_docs_per_image=0))
    result = p.run()
    result.wait_until_finish()
    [doc] = _samples(out, "m3w")
    return {what[im["url"]] for im in doc["json"]["images"]}, doc, _counters(result)


def test_m3w_keeps_the_crop_view_impostor_and_drops_the_genuine_crop(m3w_warc, indexes, tmp_path):
    warc, what = m3w_warc
    kept, doc, counters = _run_m3w(warc, what, tmp_path / "verified", indexes["verified"])
    assert kept == {"impostor", "other"}
    assert counters["drop_image_eval_duplicate"] == 1
    # the verify hash is computed from the stored JPEG only for the two images
    # with a crop-view candidate (the impostor, the genuine crop), not stored
    assert counters["images_eval_verify_hashed"] == 2
    for im in doc["json"]["images"]:     # the stored signature is the stored JPEG's
        jpeg = Image.open(io.BytesIO(doc[f"{im['key']}.jpg"]))
        assert im["phash"] == fp.phash64(jpeg) and "verify_hash" not in im
    matches = [json.loads(line) for line in (tmp_path / "verified" / "dedup_matches.jsonl").open()]
    assert [(what[m["train_url"]], m["detail"]) for m in matches] == [("genuine", "crop0.9@0.25,0.75")]
    # without the verification the impostor goes too (what the job did before)
    kept, _, counters = _run_m3w(warc, what, tmp_path / "unverified", indexes["unverified"])
    assert kept == {"other"} and counters["drop_image_eval_duplicate"] == 2
    assert "images_eval_verify_hashed" not in counters    # nothing to verify: never hashed


def test_m3w_computes_the_verify_hash_only_for_images_that_need_it(indexes):
    """The m3w job's eval step (documents.eval_matches, what AssembleSamples
    runs) on the image stage's results: the verify hash is computed, from the
    stored JPEG, for the impostor and the genuine crop (phash met through a
    crop view of hammer2), not for the unrelated photo; the same bits the
    image stage would have computed; never with verification off."""
    from pipeline.documents import eval_matches, image_result
    from pipeline.images import process_image

    results = {i: image_result(process_image(_jpeg(IMAGES[what]()), ImageConfig(), verify_hash=False),
                               "warc") for i, what in enumerate(IMAGES)}
    assert all(r["ok"] and "verify_hash" not in r for r in results.values())
    doc = {"nodes": [{"text": "Hammers and a tower."}]
           + [{"image": i, "url": f"https://img.example/{what}.jpg"} for i, what in enumerate(IMAGES)]}
    for name, hashed, matched in (("verified", [0, 1], [1]), ("unverified", [], [0, 1])):
        calls = []
        by_image, texts = eval_matches(doc, results, EvalIndex.load(indexes[name]), calls.append)
        assert calls == hashed and sorted(by_image) == matched and texts == []
    # what the image stage used to store gives the same decisions
    full = {i: process_image(_jpeg(IMAGES[what]()), ImageConfig()) for i, what in enumerate(IMAGES)}
    idx = EvalIndex.load(indexes["verified"])
    assert [bool(idx.match_image(full[i].phash, full[i].verify_hash)) for i in results] == [False, True, False]


# ---------------------------------------------------------------- pairs

CAPTIONS = {"impostor": "A claw hammer lying on a white workbench",
            "genuine": "An old hammer with a wooden handle",
            "other": "The Eiffel Tower seen from the river"}


@pytest.fixture(scope="module")
def pairs_list(tmp_path_factory):
    """An img2dataset-shaped webdataset tar of the three images, a caption each."""
    path = tmp_path_factory.mktemp("verify_pairs") / "list.tar"
    with open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, what in enumerate(IMAGES):
            key = f"{i:09d}"
            meta = json.dumps({"url": f"https://img.example/{what}.jpg", "key": key}).encode()
            for member, data in ((f"{key}.jpg", _jpeg(IMAGES[what]())), (f"{key}.json", meta),
                                 (f"{key}.txt", CAPTIONS[what].encode())):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def _run_pairs(lst, out: Path, index: str):
    p = TestPipeline()
    build_pairs(p, [], [lst], str(out), FilterConfig(), CaptionConfig(), ExtractConfig(),
                ImageConfig(), FetchConfig(), "verify", 10, fetch=False, dedup_index=index)
    result = p.run()
    result.wait_until_finish()
    samples = _samples(out, "pairs")
    return {s["json"]["url"].rsplit("/", 1)[-1][:-4]: s for s in samples}, _counters(result)


def test_pairs_keep_the_crop_view_impostor_and_drop_the_genuine_crop(pairs_list, indexes, tmp_path):
    kept, counters = _run_pairs(pairs_list, tmp_path / "verified", indexes["verified"])
    assert sorted(kept) == ["impostor", "other"]
    assert counters["drop_pair_eval_match"] == 1 and counters["pairs_eval_matched"] == 1
    # the verify hash is computed from the stored JPEG only for the two pairs
    # with a crop-view candidate (the impostor, the genuine crop), not stored
    assert counters["pairs_eval_verify_hashed"] == 2
    for s in kept.values():
        jpeg = Image.open(io.BytesIO(s["jpg"]))
        assert s["json"]["phash"] == fp.phash64(jpeg)
        assert "verify_hash" not in s["json"] and "eval_matches" not in s["json"]
    kept, counters = _run_pairs(pairs_list, tmp_path / "unverified", indexes["unverified"])
    assert sorted(kept) == ["other"] and counters["drop_pair_eval_match"] == 2
    assert "pairs_eval_verify_hashed" not in counters     # nothing to verify: never hashed
