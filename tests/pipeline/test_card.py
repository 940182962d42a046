"""The dataset card every job writes: its numbers agree with the shards,
the manifest, the stats and the inputs themselves."""
import hashlib
import json
import re

from shards.reader import read_shard


def _samples(out_dir):
    manifest = json.loads((out_dir / "manifest.json").read_text())
    return manifest, [s for sh in manifest["shards"] for s in read_shard(str(out_dir / sh["name"]))]


def test_m3w_card_numbers_come_from_the_written_shards(bundled_outputs):
    out = bundled_outputs["m3w"]
    manifest, samples = _samples(out)
    metas = [json.loads(s["json"]) for s in samples]
    card = json.loads((out / "card.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    assert card["sizes"]["samples"] == manifest["num_samples"] == len(samples)
    assert card["sizes"]["bytes"] == manifest["bytes"]
    assert card["sizes"]["images"] == sum(len(m["images"]) for m in metas)
    d = card["distributions"]
    langs = {}
    for m in metas:
        langs[m["lang"]] = langs.get(m["lang"], 0) + 1
    assert d["languages"]["histogram"] == dict(sorted(langs.items()))
    assert sum(d["words_per_document"]["histogram"].values()) == len(metas)
    per_doc = {}
    for m in metas:
        per_doc[str(len(m["images"]))] = per_doc.get(str(len(m["images"])), 0) + 1
    assert d["images_per_document"]["histogram"] == dict(sorted(per_doc.items()))
    assert d["images_per_document"]["summary"]["max"] == max(len(m["images"]) for m in metas)
    assert sum(d["aspect_ratio"]["histogram"].values()) == card["sizes"]["images"]
    assert card["stand_ins"]["stand_in_images"] == sum(
        bool(im.get("stand_in")) for m in metas for im in m["images"])
    assert [f["count"] for f in card["funnel"]] == [stats["counters"].get(f["counter"], 0)
                                                     for f in card["funnel"]]
    assert card["drops"] == stats["drops"]
    assert card["options"] == manifest["options"]
    for inp in card["provenance"]["inputs"]:
        path = next(p for p in (bundled_outputs["sample"], ) if p.name == inp["name"]) \
            if inp["name"] == "sample.warc.gz" else None
        if path:
            assert inp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {i["name"] for i in card["provenance"]["inputs"]} == {"sample.warc.gz", "whirlwind.warc.gz"}
    md = (out / "card.md").read_text()
    assert md.startswith("---\npretty_name: flamingo-data m3w\n")
    for plot in card["plots"].values():
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in md
    assert re.search(rf"{len(samples)} samples in {manifest['num_shards']} webdataset shards", md)
    assert "Stand-in media" in md


def test_pairs_split_cards_describe_each_set(bundled_outputs):
    for name, sources in (("align", {"alt"}), ("ltip", {"figcaption", "title", "context"})):
        out = bundled_outputs["pairs"] / name
        manifest, samples = _samples(out)
        card = json.loads((out / "card.json").read_text())
        assert card["split"] == name and card["sizes"]["samples"] == len(samples) > 0
        got = card["distributions"]["caption_sources"]["histogram"]
        assert set(got) <= sources and sum(got.values()) == len(samples)
        assert {json.loads(s["json"])["caption_source"] for s in samples} == set(got)


def test_videos_card_durations(bundled_outputs):
    out = bundled_outputs["videos"]
    manifest, samples = _samples(out)
    metas = [json.loads(s["json"]) for s in samples]
    card = json.loads((out / "card.json").read_text())
    assert card["sizes"]["frames"] == sum(len(m["frame_times"]) for m in metas)
    s = card["distributions"]["video_seconds"]["summary"]
    assert s["max"] == max(int(m["duration"] * 2) / 2 for m in metas)
    assert "video_seconds" in card["plots"]
