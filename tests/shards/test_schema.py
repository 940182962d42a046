import pytest

from shards.schema import (EOC_TOKEN, SchemaError, build_m3w_sample,
                           build_pair_sample, build_video_sample, check_key, count_images,
                           make_key, serialize_interleaved, serialize_pair, shard_index_for_key,
                           split_interleaved, validate_sample)


def test_serialisation_matches_the_paper_example():
    chunks = ["Cute pics of my pets!", None, "My puppy sitting in the grass.", None,
              "My cat looking very dignified."]
    assert serialize_interleaved(chunks) == (
        "Cute pics of my pets!<EOC><image>My puppy sitting in the grass.<EOC><image>"
        "My cat looking very dignified.<EOC>")


def test_document_opening_with_an_image_and_adjacent_texts():
    assert serialize_interleaved([None, "a", "b", None, None]) == \
        "<image>a\n\nb<EOC><image><EOC><image><EOC>"
    assert serialize_pair("A dog.") == "<image>A dog.<EOC>"


def test_markers_in_page_text_cannot_forge_images():
    text = serialize_interleaved(["see <image> here <EOC>", None, "x"])
    assert count_images(text) == 1
    assert text.count(EOC_TOKEN) == 2


def test_split_is_the_inverse_on_texts_and_positions():
    chunks = ["one", None, "two", None, "three"]
    assert split_interleaved(serialize_interleaved(chunks)) == chunks


def test_keys_are_stable_safe_and_spread():
    k = make_key("https://example.com/a", 3)
    assert k == make_key("https://example.com/a", 3) != make_key("https://example.com/a", 4)
    check_key(k)
    for bad in ("../x", ".hidden", "a/b", "", "a.b"):
        with pytest.raises(SchemaError):
            check_key(bad)
    counts = [0] * 4
    for i in range(400):
        counts[shard_index_for_key(make_key(i), 4)] += 1
    assert min(counts) > 60


def _img(i):
    return {"url": f"http://x/{i}.jpg", "alt": "", "sha256": "0" * 64, "phash": "0" * 16,
            "width": 200, "height": 200}


def test_m3w_sample_checks_tags_against_images():
    meta = {"text": "a<EOC><image>b<EOC>", "images": [_img(0)], "url": "u",
            "source": {"file": "f", "offset": 0}, "lang": "en"}
    s = build_m3w_sample(make_key("u"), meta, [b"jpeg"])
    assert s["json"]["images"][0]["key"] == "0" and s["0.jpg"] == b"jpeg"
    meta2 = dict(meta, images=[_img(0), _img(1)])
    with pytest.raises(SchemaError, match="1 <image> tags but 2 image entries"):
        build_m3w_sample(make_key("u"), meta2, [b"a", b"b"])
    with pytest.raises(SchemaError, match="image members"):
        build_m3w_sample(make_key("u"), meta, [])


def test_pair_and_video_samples():
    meta = {"url": "u", "caption_source": "alt", "width": 1, "height": 1, "sha256": "s",
            "phash": "p"}
    build_pair_sample("k1", "a cat", meta, b"jpg")
    with pytest.raises(SchemaError, match="empty txt"):
        build_pair_sample("k1", " ", meta, b"jpg")
    vmeta = {"url": "u", "duration": 2.0, "fps": 25.0, "frame_times": [0.0, 1.0]}
    build_video_sample("k2", "a clip", vmeta, [b"a", b"b"])
    with pytest.raises(SchemaError, match="2 frame times but 1 frames"):
        build_video_sample("k2", "a clip", vmeta, [b"a"])
    with pytest.raises(SchemaError, match="unknown kind"):
        validate_sample("audio", {"__key__": "k", "json": {}})
