"""--keep-dropped: every filter's victims reach OUTPUT/dropped/ with their
reason, capped per reason, beside exact counters; nothing is kept without it."""
import json

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.dropped import KeepDropped, WriteDropped
from pipeline.jobs import CountingDoFn
from shards.dropped import read_index, thumbnail, victim
from shards.reader import read_shard
from tests.data_paths import IMAGES


def _victims(out_dir):
    index = read_index(str(out_dir))
    got = {}
    for reason, info in index["reasons"].items():
        for name in info["files"]:
            got.setdefault(reason, []).extend(read_shard(str(out_dir / "dropped" / name)))
    return index, got


def test_m3w_victims_match_the_counters_up_to_the_cap(bundled_outputs):
    out = bundled_outputs["m3w"]
    counters = json.loads((out / "stats.json").read_text())["counters"]
    index, got = _victims(out)
    assert index["max_per_reason"] == 50
    # node_* are the extractor's own (data: URIs, the same picture twice): counted only
    dropped = {k[len("drop_"):]: v for k, v in counters.items()
               if k.startswith("drop_") and not k.startswith("drop_node_")}
    # every reason with a victim to show is there, with min(count, cap) victims
    assert set(index["reasons"]) == set(dropped)
    for reason, n in dropped.items():
        assert index["reasons"][reason]["kept"] == len(got[reason]) == min(n, 50), reason
    for reason, samples in got.items():
        for s in samples:
            rec = json.loads(s["json"])
            assert rec["reason"] == reason
            if reason.startswith("paragraph_"):
                assert rec["what"] == "paragraph" and rec["text"] and rec["page_url"]
            elif reason.startswith("image_"):
                assert rec["what"] == "image" and rec["url"].startswith("http")
            elif reason.startswith("document_"):
                assert rec["what"] == "document" and rec["url"] and "words" in rec["details"]


def test_paragraph_victims_are_really_what_the_filter_refuses(bundled_outputs):
    from pipeline.filters import FilterConfig, paragraph_drop_reason

    _, got = _victims(bundled_outputs["m3w"])
    for reason in [r for r in got if r.startswith("paragraph_")]:
        for s in got[reason]:
            rec = json.loads(s["json"])
            if "text_chars" not in rec:  # a cut text may judge differently
                assert "paragraph_" + paragraph_drop_reason(rec["text"], FilterConfig()) == reason


def test_pairs_and_videos_keep_captions_images_and_clips(bundled_outputs):
    index, got = _victims(bundled_outputs["pairs"])
    assert any(r.startswith("caption_") for r in index["reasons"])
    assert "pair_duplicate" in got and all("jpg" in s for s in got["pair_duplicate"])
    for s in got["caption_too_few_words"]:
        rec = json.loads(s["json"])
        assert rec["what"] == "caption" and rec["details"]["caption_source"] in (
            "alt", "figcaption", "title", "context")
    index, got = _victims(bundled_outputs["videos"])
    assert {"video_bad_scheme", "video_truncated", "video_audio_only"} <= set(index["reasons"])
    rec = json.loads(got["video_audio_only"][0]["json"])
    assert rec["url"].endswith("bigbuckbunny_audio.m4a") and rec["text"]


def _write(tmp_path, victims, cap):
    p = TestPipeline()
    (p | beam.Create(victims) | WriteDropped(str(tmp_path), "run", KeepDropped(cap)))
    p.run().wait_until_finish()
    return _victims(tmp_path)


def test_cap_keeps_the_smallest_keys_and_zero_keeps_all(tmp_path):
    victims = [victim("paragraph_too_few_words", "paragraph", page_url=f"http://h/{i}",
                      text=f"word {i}") for i in range(25)] + [
        victim("image_extension", "image", url="http://h/a.svg", page_url="http://h/")]
    index, got = _write(tmp_path / "a", victims, 10)
    smallest = sorted(v["__key__"] for v in victims[:25])[:10]
    assert sorted(s["__key__"] for s in got["paragraph_too_few_words"]) == smallest
    assert index["reasons"]["image_extension"]["kept"] == 1
    index, got = _write(tmp_path / "b", victims, 0)
    assert len(got["paragraph_too_few_words"]) == 25


def test_victim_text_is_capped_and_thumbnails_are_small():
    v = victim("document_too_many_words", "document", url="http://h/", text="w " * 5000)
    assert len(v["json"]["text"]) == 2000 and v["json"]["text_chars"] == 10000
    thumb = thumbnail((IMAGES / "astronaut.png").read_bytes())
    from PIL import Image
    import io
    assert max(Image.open(io.BytesIO(thumb)).size) <= 160
    assert thumbnail(b"not an image") is None


def test_nothing_is_built_without_the_flag():
    class D(CountingDoFn):
        pass

    d = D()
    d.setup()
    assert d.drop("paragraph_too_few_words", what="paragraph", text="x") == []
    d.keeping(KeepDropped())
    [out] = d.drop("paragraph_too_few_words", what="paragraph", text="x")
    assert out.tag == "dropped" and out.value["json"]["text"] == "x"
