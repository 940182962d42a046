"""Verification of crop-view matches by a second signature (the 256-bit
verify hash, fingerprints.verify_hash): two distinct photos of hammers on
white meet at 6 bits of phash64 through a crop view of one of them; their
verify hashes are far apart, a genuine crop copy's are close."""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.index import DEFAULT_THRESHOLDS, EvalIndex
from pipeline.images import ImageConfig, process_image

PHOTOS = Path(__file__).resolve().parents[2] / "bench" / "data" / "dedup_photos"
HAMMER2 = PHOTOS / "gcompris_categorization_hammer2.jpg"    # indexed
HAMMER5 = PHOTOS / "gcompris_categorization_hammer5.jpg"    # another photo, never indexed
# a 10% crop of hammer5 (320x192) that meets hammer2's view crop0.85@0.333,0.167 at 6 bits
HAMMER5_CROP = (28, 12, 316, 185)


def load(path: Path) -> Image.Image:
    return fp.normalize_image(Image.open(path)).convert("RGB")


def stored(img: Image.Image) -> tuple[str, str]:
    """(phash64, verify hash) of what the image stage stores for ``img``."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    r = process_image(buf.getvalue(), ImageConfig(min_side=16))
    assert r.ok
    # the image stage's own record: both signatures of the stored JPEG as decoded
    assert r.verify_hash == fp.verify_hash(Image.open(io.BytesIO(r.jpeg)))
    return r.phash, r.verify_hash


@lru_cache(maxsize=None)
def hammer2_hashes() -> tuple:
    return tuple(fp.eval_hashes(Image.open(HAMMER2)))


def index(hashes=None, **thresholds) -> EvalIndex:
    return EvalIndex.from_items([EvalItem("bench", "val", "hammer2", media=str(HAMMER2))],
                                image_hashes={"hammer2": list(hashes or hammer2_hashes())},
                                thresholds=thresholds)


def test_eval_hashes_verify_only_crop_views():
    hashes = hammer2_hashes()
    assert [(v, h) for v, h, _ in hashes] == fp.eval_phashes(Image.open(HAMMER2))
    for view, _, vh in hashes:
        assert (len(vh) == 64) == view.startswith("crop")
        assert vh == "" or vh != "f" * 64


def test_distinct_hammer_photo_rejected_by_verification():
    ph, vh = stored(load(HAMMER5).crop(HAMMER5_CROP))
    idx = index()
    unverified = idx.match_image(ph)
    assert [(m.item_id, m.distance, m.detail) for m in unverified] == [
        ("hammer2", 6.0, "crop0.85@0.333,0.167")]
    dist = idx.verify_distances(ph, vh)
    assert list(dist) == [0] and dist[0] > DEFAULT_THRESHOLDS["image_verify"]
    assert idx.match_image(ph, vh) == []
    # off: the phash match stands
    assert [m.item_id for m in index(image_verify=None).match_image(ph, vh)] == ["hammer2"]


@pytest.mark.parametrize("at", [(0.0, 0.0), (1.0, 1.0), (0.3, 0.7), (0.8, 0.2)])
def test_genuine_crop_copy_still_matched(at):
    img = load(HAMMER2)
    w, h = img.size
    cw, ch = round(w * 0.9), round(h * 0.9)            # 10% cut, placed at ``at`` of the slack
    x0, y0 = round((w - cw) * at[0]), round((h - ch) * at[1])
    copy = img.crop((x0, y0, x0 + cw, y0 + ch))
    ph, vh = stored(copy.resize((cw * 3 // 4, ch * 3 // 4), Image.Resampling.BICUBIC))
    idx = index()
    dist = idx.verify_distances(ph, vh)
    assert 0 in dist
    assert dist[0] is not None and dist[0] <= DEFAULT_THRESHOLDS["image_verify"]   # verified
    assert [m.item_id for m in idx.match_image(ph, vh)] == ["hammer2"]


def test_whole_copy_matched_without_verification():
    ph, vh = stored(load(HAMMER2))
    idx = index()
    assert idx.verify_distances(ph, vh) == {0: None}     # met through the full view
    assert [m.detail for m in idx.match_image(ph, vh)] == ["full"]


def test_verify_hashes_survive_save_and_load(tmp_path):
    idx = index()
    idx.save(tmp_path / "i.npz")
    back = EvalIndex.load(tmp_path / "i.npz")
    assert np.array_equal(back.arrays["image_verify"], idx.arrays["image_verify"])
    ph, vh = stored(load(HAMMER5).crop(HAMMER5_CROP))
    assert back.match_image(ph, vh) == [] and back.match_image(ph) != []


def test_index_without_verify_hashes_does_not_verify():
    ph, vh = stored(load(HAMMER5).crop(HAMMER5_CROP))
    idx = index(hashes=fp.eval_phashes(Image.open(HAMMER2)))
    assert idx.arrays["image_verify"].shape == (0, 4)
    assert [m.item_id for m in idx.match_image(ph, vh)] == ["hammer2"]


def test_verify_hash_computed_only_when_a_candidate_needs_it():
    """dedup.apply takes a function for the verify hash (the pairs job's, from
    the stored JPEG) and calls it only for an image met through a crop view."""
    from dedup.apply import image_matches, stored_verify_hash

    idx = index()
    calls = []

    def lazy(jpeg):
        def compute():
            calls.append(1)
            return stored_verify_hash(jpeg)()
        return compute

    def stored_jpeg(img):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        return process_image(buf.getvalue(), ImageConfig(min_side=16), verify_hash=False)

    impostor = stored_jpeg(load(HAMMER5).crop(HAMMER5_CROP))
    assert impostor.verify_hash is None
    assert stored_verify_hash(impostor.jpeg)() == fp.verify_hash(Image.open(io.BytesIO(impostor.jpeg)))
    assert idx.needs_verify_hash(impostor.phash)
    assert image_matches(idx, impostor.phash, None, verify_hash=lazy(impostor.jpeg)) == []
    assert len(calls) == 1                       # rejected by the verify hash, as if stored
    # a whole copy meets crop views too (which one is nearest can depend on it)
    whole = stored_jpeg(load(HAMMER2))
    assert idx.needs_verify_hash(whole.phash)
    assert [m.detail for m in image_matches(idx, whole.phash, None, verify_hash=lazy(whole.jpeg))] == ["full"]
    assert len(calls) == 2
    other = stored_jpeg(load(PHOTOS / "gcompris_categorization_eiffelTower.jpg"))   # no candidate
    assert not idx.needs_verify_hash(other.phash)
    assert image_matches(idx, other.phash, None, verify_hash=lazy(other.jpeg)) == []
    assert len(calls) == 2
    # verification off: never computed, the crop-view match stands
    off = index(image_verify=None)
    assert not off.needs_verify_hash(impostor.phash)
    assert [m.item_id for m in image_matches(off, impostor.phash, None,
                                             verify_hash=lazy(impostor.jpeg))] == ["hammer2"]
    assert len(calls) == 2


def test_bad_verify_hash_is_a_clear_error():
    ph, _ = stored(load(HAMMER5).crop(HAMMER5_CROP))
    with pytest.raises(ValueError, match="verify hash must be 64 hex digits"):
        index().match_image(ph, "abc")


@pytest.mark.parametrize("name", ["gcompris_categorization_hammer2.jpg", "gcompris_clickgame_sea1.jpg",
                                  "opencv_scenetext01.jpg", "gcompris_categorization_fish1.jpg"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_image_hashes_are_phash64_and_verify_hash_bit_for_bit(name, mode):
    img = Image.open(PHOTOS / name).convert(mode)
    for trim in (True, False):
        both = fp.image_hashes(img, trim=trim)
        assert both == (fp.phash64(img, trim=trim), fp.verify_hash(img, trim=trim))
        assert len(both[0]) == 16 and len(both[1]) == 64
    # a bordered copy: the trim is shared (both signatures of the trimmed pixels)
    framed = Image.new(mode, (img.width + 40, img.height + 40), 0 if mode == "L" else (0, 0, 0))
    framed.paste(img, (20, 20))
    assert fp.image_hashes(framed) == fp.image_hashes(img) != fp.image_hashes(framed, trim=False)


def test_eval_views_listed_once_for_both_hash_lists():
    img = Image.open(PHOTOS / "gcompris_categorization_monument1.jpg")   # sky trimmed: untrimmed views
    views = fp.indexed_views(img)
    assert any(not trim for _, _, trim in views)
    assert [n for n, _ in fp.eval_phashes(img)] == [n for n, _, _ in fp.eval_hashes(img)] == [
        n for n, _, _ in views]
    for (name, view, trim), (_, ph, vh) in zip(views, fp.eval_hashes(img)):
        assert ph == fp.phash64(view, trim=trim)
        assert vh == (fp.verify_hash(view) if name.startswith("crop") else "")
