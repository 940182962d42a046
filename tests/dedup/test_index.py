import io

import numpy as np
from PIL import Image

from dedup.evalsets import EvalItem
from dedup.fingerprints import canonical_url, phash64, video_frame_phashes
from dedup.index import EvalIndex
from dedup.mih import MultiIndexHash, brute_force_pairs

from .conftest import DATA, jpeg_bytes


def photo(name):
    return Image.open(DATA / "images" / name).convert("RGB")


def stored_phash(img, scale=1.0, quality=90):
    """What the pipeline stores for a training copy: phash64 of the re-encoded,
    resized image."""
    w, h = img.size
    img = img.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
    return phash64(Image.open(io.BytesIO(jpeg_bytes(img, quality))))


def test_index_contents(index):
    s = index.summary()
    assert s["items"] == {"coco_captions": {"val2014": 156}, "msrvtt": {"test": 1000}}
    assert s["image_hashes"] == 3 * 190         # 3 images with media, 190 views each
    assert s["video_frames"] == 4 + 10          # carphone 4 s, bikes 10 s at 1 FPS


def test_resized_reencoded_copy_matches_its_eval_item(index):
    for image_id, name, scale, q in [("522418", "chelsea.png", 0.5, 40), ("391895", "astronaut.png", 0.7, 60),
                                     ("184613", "coffee.png", 2.0, 85)]:
        ms = index.match_image(stored_phash(photo(name), scale, q))
        assert [(m.eval_set, m.split, m.item_id, m.kind) for m in ms] == [
            ("coco_captions", "val2014", image_id, "image")]
        assert ms[0].distance <= index.thresholds["image"]
        assert ms[0].eval_ref.endswith(f"COCO_val2014_{int(image_id):012d}.jpg")


def test_cropped_and_flipped_copies_match(index):
    img = photo("astronaut.png")
    w, h = img.size
    crop = img.crop((int(0.07 * w), int(0.03 * h), int(0.97 * w), int(0.93 * h)))  # 10% off each side
    assert [m.item_id for m in index.match_image(stored_phash(crop))] == ["391895"]
    flip = photo("chelsea.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    ms = index.match_image(stored_phash(flip))
    assert [(m.item_id, m.detail) for m in ms] == [("522418", "flip")]


def test_different_photos_do_not_match(index):
    for name in ("rocket.jpg", "grace_hopper.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
                 "camera.png", "china.jpg", "flower.jpg"):
        assert index.match_image(stored_phash(photo(name))) == [], name


def test_text_contamination_13gram_but_not_12(index):
    cap = "This is a blue and white bathroom with a wall sink and a lifesaver on the wall."
    words = cap.rstrip(".").split()
    thirteen, twelve = " ".join(words[2:15]), " ".join(words[2:14])
    para = "Renovation diary, day three. {} Next we tile the floor, which took ages!"
    ms = index.match_text(para.format(thirteen.upper()))
    assert [(m.item_id, m.kind, m.detail) for m in ms] == [("322141", "text", "13-gram")]
    assert index.match_text(para.format(twelve)) == []


def test_exact_short_caption_match(index):
    # "a little girl does gymnastics" (MSR-VTT video9771) is 5 words: only exact matching can catch it
    ms = index.match_text("A little girl does Gymnastics!")
    assert [(m.eval_set, m.item_id, m.detail) for m in ms] == [("msrvtt", "video9771", "exact")]
    assert index.match_text("a little girl does gymnastics at school") == []


def test_url_match_canonicalised(index):
    assert canonical_url("http://example.com/a.jpg?x=1&y=2#f") == canonical_url("HTTPS://www.Example.com:443/a.jpg?y=2&x=1")
    ms = index.match_url("https://images.cocodataset.org/val2014/COCO_val2014_000000391895.jpg?utm_source=x#top")
    assert [(m.item_id, m.kind) for m in ms] == [("391895", "url")]
    # the same Flickr photo from another farm host and size
    ms = index.match_url("https://c1.staticflickr.com/8/8186/8119368305_9f0a1b2c3d_b.jpg")
    assert [m.item_id for m in ms] == ["391895"]
    assert index.match_url("http://images.cocodataset.org/val2014/COCO_val2014_000000391896.jpg") == []


def test_video_near_duplicate(index):
    distorted = video_frame_phashes(DATA / "videos" / "carphone_distorted.mp4")
    ms = index.match_video(distorted)
    assert [(m.eval_set, m.item_id, m.kind, m.detail) for m in ms] == [("msrvtt", "video9770", "video", "4/4 frames")]
    assert index.match_video(video_frame_phashes(DATA / "videos" / "bigbuckbunny.mp4")) == []


def test_round_trip_identical_matches(index, tmp_path):
    path = tmp_path / "index.npz"
    index.save(path)
    loaded = EvalIndex.load(path)
    assert loaded.thresholds == index.thresholds
    assert loaded.summary() == index.summary()
    queries = [stored_phash(photo(n), 0.5, 50) for n in ("chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg")]
    assert [loaded.match_image(q) for q in queries] == [index.match_image(q) for q in queries]
    t = "we saw this is a blue and white bathroom with a wall sink and a lifesaver on it"
    assert loaded.match_text(t) == index.match_text(t) != []
    u = "https://farm9.staticflickr.com/8186/8119368305_4e622c8349_z.jpg"
    assert loaded.match_url(u) == index.match_url(u) != []
    frames = video_frame_phashes(DATA / "videos" / "carphone_distorted.mp4")
    assert loaded.match_video(frames) == index.match_video(frames) != []
    with np.load(path, allow_pickle=False) as z:   # a plain npz, no pickled objects
        assert "header" in z.files


def test_mih_equals_brute_force():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2**64, size=20000, dtype=np.uint64)
    near = codes[:300] ^ (np.uint64(1) << rng.integers(0, 64, 300).astype(np.uint64))
    queries = np.concatenate([near, codes[300:310] ^ np.uint64(0xFF), rng.integers(0, 2**64, 200, dtype=np.uint64)])
    for blocks in (3, 4):
        mih = MultiIndexHash(codes, blocks)
        for r in (0, 3, 6, 8, 9):
            got = mih.search_pairs(queries, r, batch=128)
            want = brute_force_pairs(codes, queries, r)
            assert all(np.array_equal(a, b) for a, b in zip(got, want)), (blocks, r)
    assert len(brute_force_pairs(codes, queries, 8)[0]) >= 310


def test_items_without_media_only_match_text():
    idx = EvalIndex.from_items([EvalItem("x", "val", "1", None, ("a cat on a mat",))])
    assert idx.match_image("0" * 16) == [] and [m.item_id for m in idx.match_text("A cat on a mat.")] == ["1"]
