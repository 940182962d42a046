"""Videos: frames at 1 FPS from the real clips, every broken-file case by
reason, bounded decoding, discovery on real pages, and the job end to end on
the sample WARC (archived clips) and against a loopback server (fetched)."""
import io
import json
from pathlib import Path

import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline
from PIL import Image

from pipeline.decode import decode_html
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.read import html_file_url
from pipeline.sample_videos import audio_only, build_sample, truncated, unsupported_codec
from pipeline.video_frames import VideoConfig, decode_video
from pipeline.videos import VIDEO_CAPTIONS, VIDEO_FETCH, build_videos, discover_videos
from shards.schema import decode_members, validate_sample
from shards.validate import validate_dir
from shards.writer import write_manifest

from tests.data_paths import READABILITY, VIDEOS
from tests.helpers.http_server import LoopbackServer

BBB = (VIDEOS / "bigbuckbunny.mp4").read_bytes()


@pytest.mark.parametrize("name,times,size", [
    # 5.28 s at 25 fps: sample times 0..5 s all fall inside the clip -> 6 frames.
    ("bigbuckbunny.mp4", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], (512, 288)),
    # 10.0 s: 0..9 s; there is no frame at 10 s.
    ("bikes.mp4", [float(i) for i in range(10)], (512, 218)),
    # 4.004 s at 29.97 fps: the last frame is at 3.97 s, so 4 s has none.
    ("carphone_pristine.mp4", [0.0, 1.001, 2.002, 3.003], (176, 144)),
])
def test_real_clips_give_one_frame_per_second(name, times, size):
    d = decode_video((VIDEOS / name).read_bytes())
    assert d.ok and d.reason is None
    assert d.frame_times == times and len(d.frames) == len(times)
    assert (d.frame_width, d.frame_height) == size
    for jpg, phash in zip(d.frames, d.frame_phashes):
        im = Image.open(io.BytesIO(jpg))
        assert im.format == "JPEG" and im.size == size and len(phash) == 16
    assert d.has_audio == (name == "bigbuckbunny.mp4")


def test_max_frames_and_fps_flags():
    assert decode_video(BBB, VideoConfig(max_frames=3)).frame_times == [0.0, 1.0, 2.0]
    two = decode_video(BBB, VideoConfig(fps=2.0))
    assert len(two.frames) == 11 and two.frame_times[:3] == [0.0, 0.48, 1.0]


def test_long_clip_is_cut_to_max_seconds_and_clip_stored():
    d = decode_video(BBB, VideoConfig(max_seconds=2.5, store_clip=True))
    assert d.frame_times == [0.0, 1.0, 2.0] and d.duration == 2.5 and d.truncated_to == 2.5
    assert d.original_duration == 5.28
    again = decode_video(d.clip)  # the stored clip is a playable MP4 of the first 2.5 s
    assert again.ok and again.frame_times == [0.0, 1.0, 2.0] and again.original_duration < 2.6
    full = decode_video(BBB, VideoConfig(store_clip=True))
    assert full.clip == BBB and full.truncated_to is None


def _corrupt(data):
    return bytes(b ^ 0x5A for b in data[:65536]) + data[65536:]


@pytest.mark.parametrize("make,reason", [
    (lambda: b"", "empty"),
    (lambda: _corrupt(BBB), "corrupt"),
    (lambda: truncated(BBB), "truncated"),
    (lambda: audio_only(BBB), "audio_only"),
    (lambda: unsupported_codec(BBB), "unsupported_codec"),
])
def test_broken_files_are_dropped_by_reason(make, reason):
    d = decode_video(make())
    assert not d.ok and d.reason == reason and d.frames == []


def test_decoding_is_bounded():
    # No time at all: nothing decoded, a named drop, not a hang.
    assert decode_video(BBB, VideoConfig(max_decode_s=0.0)).reason == "decode_timeout"
    few = decode_video(BBB, VideoConfig(max_packets=30))  # 30 packets = 1.2 s at 25 fps
    assert few.ok and few.frame_times == [0.0, 1.0]


def _page(name):
    import gzip

    body = gzip.decompress((READABILITY / name / "source.html.gz").read_bytes())
    html, _ = decode_html(body, None)
    return html, html_file_url(name, body)


def test_discovery_on_real_pages():
    html, url = _page("cnn")
    [v] = discover_videos(html, url)
    assert v["url"] == ("http://ht3.cdn.turner.com/money/big/news/2015/11/30/"
                        "homeboy-industries-priest.cnnmoney_1024x576.mp4")
    assert [s for s, _ in v["captions"]] == ["og_description", "og_title"]
    html, url = _page("lazy-image-2")  # Kotaku: lazy <video data-mp4src data-webmsrc>
    [v] = discover_videos(html, url)
    assert v["url"].endswith("/18zqfwc3l0k28gif.mp4")
    assert ("og_title", "The Spectacular Story Of Metroid, One Of Gaming's Richest Universes") in v["captions"]
    html, url = _page("yahoo-2")
    assert [v["url"][:5] for v in discover_videos(html, url)] == ["blob:", "blob:"]


def test_discovery_sources_and_caption_attributes():
    html = """<html><head><meta property="og:video" content="/player.html">
      <meta property="og:video:type" content="text/html"></head><body>
      <figure><video poster="p.jpg"><source src="a.webm" type="video/webm">
        <source src="a.mp4" type="video/mp4"></video>
        <figcaption>A heron lands on the river bank.</figcaption></figure>
      <video src="b.mp4" aria-label="Clouds moving over a mountain" title="clouds"></video>
      <video src="a.mp4"></video></body></html>"""
    got = discover_videos(html, "https://example.org/p/")
    assert got == [
        {"url": "https://example.org/p/a.mp4",
         "captions": [("figcaption", "A heron lands on the river bank.")]},
        {"url": "https://example.org/p/b.mp4",
         "captions": [("aria_label", "Clouds moving over a mountain"), ("title", "clouds")]}]
    og = discover_videos('<html><head><meta property="og:video:url" content="https://cdn.example.org/c.mp4">'
                         '<meta property="og:title" content="A red kite circling"></head><body></body></html>',
                         "https://example.org/")
    assert og == [{"url": "https://cdn.example.org/c.mp4", "captions": [("og_title", "A red kite circling")]}]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("vsample") / "videos.warc.gz"
    st = build_sample(str(path))
    assert st["pages"] == 4 and st["clips"] == 6 and st["list_rows"] == 4
    return str(path), st["list"]


def _run(inputs, lists, out, vcfg=VideoConfig(), fetch=False, fetch_cfg=VIDEO_FETCH):
    p = TestPipeline()
    build_videos(p, inputs, lists, str(out), FilterConfig(), VIDEO_CAPTIONS, vcfg, fetch_cfg,
                 "test-run", 1000, fetch=fetch)
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    samples = [decode_members(s) for s in
               wds.WebDataset(sorted(map(str, Path(out).glob("videos-*.tar"))), shardshuffle=False)]
    return counters, samples


def test_videos_job_on_the_sample(sample, tmp_path):
    warc, csv_list = sample
    counters, samples = _run([warc], [csv_list], tmp_path, VideoConfig(store_clip=True))
    by_url = {s["json"]["url"]: s for s in samples}
    frames = {u.rsplit("/", 1)[-1]: len(s["json"]["frame_times"]) for u, s in by_url.items()}
    assert frames == {"homeboy-industries-priest.cnnmoney_1024x576.mp4": 6,   # bigbuckbunny
                      "18zqfwc3l0k28gif.mp4": 10,                              # bikes
                      "carphone_pristine.mp4": 4, "carphone_distorted.mp4": 4}
    cnn = by_url["http://ht3.cdn.turner.com/money/big/news/2015/11/30/homeboy-industries-priest.cnnmoney_1024x576.mp4"]
    assert cnn["txt"].startswith("A recently-released report on poverty")
    assert cnn["json"]["caption_source"] == "og_description" and cnn["json"]["has_audio"]
    assert cnn["json"]["page_url"].startswith("http://money.cnn.com/")
    # Kotaku's og:description is 70+ words: too long; og:title is taken instead.
    kotaku = [s for u, s in by_url.items() if u.endswith("18zqfwc3l0k28gif.mp4")][0]
    assert kotaku["json"]["caption_source"] == "og_title"
    for s in samples:
        validate_sample("videos", s)
        assert s["json"]["sample_fps"] == 1.0 and s["json"]["via"] == "warc"
        assert s["mp4"] == (VIDEOS / ("bikes.mp4" if s is kotaku else "bigbuckbunny.mp4" if s is cnn
                                      else s["json"]["url"].rsplit("/", 1)[-1])).read_bytes()
    assert counters["videos"] == 4 and counters["frames_written"] == 24
    assert counters["drop_video_bad_scheme"] == 3       # blob: players on yahoo-2, bug-1255978
    assert counters["drop_video_audio_only"] == 1 and counters["drop_video_truncated"] == 1
    assert counters["drop_caption_too_many_words"] == 1
    write_manifest(str(tmp_path), "videos", "test-run", {}, counters)
    assert validate_dir(str(tmp_path)) == (4, [])


def test_videos_fetched_from_a_loopback_server(tmp_path):
    with LoopbackServer(root=VIDEOS) as srv:
        srv.route("/gone.mp4", status=404)
        srv.route("/stall.mp4", file="bikes.mp4", delay_s=5)
        srv.route("/audio.mp4", body=audio_only(BBB), content_type="video/mp4")
        rows = [("/bikes.mp4", "Cyclists ride along a city street."),
                ("/carphone_pristine.mp4", "A man on the phone in a car."),
                ("/gone.mp4", "A clip that is no longer there."),
                ("/stall.mp4", "A server that never answers in time."),
                ("/audio.mp4", "Only the soundtrack of a short film.")]
        lst = tmp_path / "clips.jsonl"
        lst.write_text("".join(json.dumps({"url": srv.url(u), "caption": c}) + "\n" for u, c in rows))
        cfg = FetchConfig(max_bytes=VIDEO_FETCH.max_bytes, timeout_s=1.0, retries=0,
                          accept_content_types=VIDEO_FETCH.accept_content_types,
                          allowed_networks=("127.0.0.1/32",), per_host_rps=50.0)
        counters, samples = _run([], [str(lst)], tmp_path / "out", fetch=True, fetch_cfg=cfg)
    assert sorted((s["json"]["url"].rsplit("/", 1)[-1], len(s["json"]["frame_times"]), s["json"]["via"])
                  for s in samples) == [("bikes.mp4", 10, "fetch"), ("carphone_pristine.mp4", 4, "fetch")]
    assert counters["drop_video_fetch_http_404"] == 1
    assert counters["drop_video_fetch_timeout"] == 1
    assert counters["drop_video_audio_only"] == 1


def test_eval_dedup_with_the_sample(sample, tmp_path):
    from dedup.evalsets import EvalItem
    from dedup.fingerprints import video_frame_phashes
    from dedup.index import EvalIndex

    warc, csv_list = sample
    item = EvalItem("msrvtt", "test", "video7020", "video7020", ("an unrelated sentence",), (), "video")
    index = EvalIndex.from_items([item], video_hashes={
        "video7020": video_frame_phashes(VIDEOS / "carphone_pristine.mp4")})
    path = tmp_path / "eval.npz"
    index.save(path)
    p = TestPipeline()
    out = tmp_path / "out"
    build_videos(p, [warc], [csv_list], str(out), FilterConfig(), VIDEO_CAPTIONS, VideoConfig(),
                 VIDEO_FETCH, "test-run", 1000, fetch=False, dedup_index=str(path), dedup_action="drop")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    samples = [decode_members(s) for s in wds.WebDataset(sorted(map(str, out.glob("videos-*.tar"))),
                                                         shardshuffle=False)]
    # The pristine clip and its heavily compressed copy both match the eval clip.
    assert counters["drop_video_eval_match"] == 2 and counters["videos_eval_matched"] == 2
    assert sorted(s["json"]["url"].rsplit("/", 1)[-1] for s in samples) == [
        "18zqfwc3l0k28gif.mp4", "homeboy-industries-priest.cnnmoney_1024x576.mp4"]
    # tag: the same DoFn keeps the sample and records the match in its json.
    from pipeline.pairs import EvalDedup

    d = decode_video((VIDEOS / "carphone_distorted.mp4").read_bytes())
    sample = {"__key__": "k", "txt": "a clip", "json": {"url": "u", "frame_phashes": d.frame_phashes}}
    fn = EvalDedup(str(path), "tag", "video")
    fn.setup()
    [tagged] = list(fn.process(sample))
    assert [m["eval_set"] for m in tagged["json"]["eval_matches"]] == ["msrvtt"]
    fn = EvalDedup(str(path), "drop", "video")
    fn.setup()
    assert list(fn.process(sample)) == []
