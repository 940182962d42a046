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
from pipeline.read import iter_warc
from pipeline.sample import _write
from pipeline.sample_videos import (CNN_TRACK_VTT, audio_only, build_sample, truncated,
                                    unsupported_codec)
from pipeline.video_frames import VideoConfig, decode_video
from pipeline.videos import (VIDEO_CAPTIONS, VIDEO_FETCH, TrackConfig, TrackParseError,
                             build_videos, cue_text, discover_videos, parse_captions, with_track)
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
    assert st["pages"] == 4 and st["clips"] == 6 and st["list_rows"] == 4 and st["tracks"] == 1
    return str(path), st["list"]


def _run(inputs, lists, out, vcfg=VideoConfig(), fetch=False, fetch_cfg=VIDEO_FETCH,
         track_cfg=TrackConfig()):
    p = TestPipeline()
    build_videos(p, inputs, lists, str(out), FilterConfig(), VIDEO_CAPTIONS, vcfg, fetch_cfg,
                 "test-run", 1000, fetch=fetch, track_cfg=track_cfg)
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
    # The caption is the hand-written track's text, its 6 s cue past the 5.28 s clip left out.
    assert cnn["txt"] == ("A big grey rabbit crawls out of his burrow under a grassy hill. "
                          "He stands up and stretches his arms wide, then gives a huge yawn.")
    assert cnn["json"]["caption_source"] == "track" and cnn["json"]["has_audio"]
    assert cnn["json"]["track_url"] == ("http://money.cnn.com/2016/02/01/news/economy/"
                                        "poverty-inequality-united-states/homeboy-industries-priest.cnnmoney_1024x576.en.vtt")
    assert "track_fallback" not in cnn["json"]
    assert cnn["json"]["page_url"].startswith("http://money.cnn.com/")
    # Kotaku's track is not archived (--no-fetch): its og:description is 70+ words,
    # too long, so og:title is taken.
    kotaku = [s for u, s in by_url.items() if u.endswith("18zqfwc3l0k28gif.mp4")][0]
    assert kotaku["json"]["caption_source"] == "og_title"
    assert kotaku["json"]["track_fallback"] == "track_not_archived"
    assert kotaku["json"]["track_url"].endswith("/18zqfwc3l0k28gif.en.vtt")
    assert counters["track_not_archived"] == 1 and counters["captions_from_track"] == 1
    assert counters["track_trimmed_to_clip"] == 1 and counters["tracks_from_warc"] == 1
    for s in samples:
        validate_sample("videos", s)
        assert s["json"]["sample_fps"] == 1.0 and s["json"]["via"] == "warc"
        assert s["mp4"] == (VIDEOS / ("bikes.mp4" if s is kotaku else "bigbuckbunny.mp4" if s is cnn
                                      else s["json"]["url"].rsplit("/", 1)[-1])).read_bytes()
    assert counters["videos"] == 4 and counters["frames_written"] == 24
    assert counters["drop_video_bad_scheme"] == 3       # blob: players on yahoo-2, bug-1255978
    assert counters["drop_video_audio_only"] == 1 and counters["drop_video_truncated"] == 1
    assert counters["drop_caption_too_many_words"] == 1
    # The reader passes the audio-only clip (audio/mp4) and the track (text/vtt) as media.
    types = {r.url.rsplit("/", 1)[-1]: r.content_type for r in iter_warc(warc) if r.is_media}
    assert types["bigbuckbunny_audio.m4a"] == "audio/mp4"
    assert types["homeboy-industries-priest.cnnmoney_1024x576.en.vtt"] == "text/vtt"
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


# ---------------------------------------------------------------- <track> captions


def test_parse_webvtt_strips_blocks_timings_settings_and_tags():
    assert parse_captions(CNN_TRACK_VTT.encode()) == [
        (0.0, 1.8, "A big grey rabbit crawls out of his burrow"),
        # rolling caption: the repeated first line is kept once
        (1.8, 3.0, "under a grassy hill."),
        (3.0, 4.6, "He stands up and stretches his arms wide,"),
        (4.6, 6.0, "then gives a huge yawn."),
        (6.0, 9.0, "A butterfly flutters past his nose.")]
    vtt = ("\ufeffWEBVTT - a title\r\n\r\nREGION\r\nid:r1 width:40%\r\n\r\n"
           "intro\r\n01:02.5 --> 01:04.250 region:r1\r\n<ruby>漢<rt>kan</rt></ruby> &amp; "
           "<i>co</i> <00:01:03.000><c>ok</c>\r\n\r\n"
           "NOTE a comment --> with an arrow\r\n\r\n"
           "not a timing line\r\nskipped cue\r\n\r\n"
           "1:00:00.000 --> 1:00:01.000\r\n<v.loud Ann>Hi</v>\r\n<v Bob>Hi</v>\r\n")
    assert parse_captions(vtt) == [(62.5, 64.25, "漢 & co ok"), (3600.0, 3601.0, "Hi")]


def test_parse_subrip_and_malformed_files():
    srt = b"1\n00:00:01,000 --> 00:00:02,500\n{\\an8}<font color=red>Good</font> morning\n\n" \
          b"2\n00:00:03,000 --> 00:00:04,000\nmorning\n"
    cues = parse_captions(srt)
    assert cues == [(1.0, 2.5, "Good morning"), (3.0, 4.0, "morning")]
    assert cue_text(cues, 3.0) == "Good morning" and cue_text(cues, None) == "Good morning morning"
    assert parse_captions(b"WEBVTT\n\nNOTE nothing else\n") == []
    for bad in (b"<html><body>404 Not Found</body></html>", b"", b"\xff\xfe\x00W\x00E",
                b"WEBVTT\n\n00:01 -> 00:02\nbroken arrow\n", "WEBVTT\n\n\x00\x01".encode()):
        with pytest.raises(TrackParseError):
            parse_captions(bad)


def test_track_discovery_and_preference():
    html = """<html lang="de-AT"><head><base href="https://cdn.example.org/v/"></head><body>
      <video src="a.mp4"><track kind="chapters" src="a.chapters.vtt" srclang="de">
        <track kind="descriptions" src="a.de.desc.vtt" srclang="de">
        <track kind="subtitles" src="a.fr.vtt" srclang="fr">
        <track kind="captions" src="a.en.vtt" srclang="en">
        <track kind="captions" src="a.de.vtt" srclang="de" label=" Deutsch "></video>
      <video src="b.mp4" title="Two kites over a beach"><track src="b.vtt" srclang="fr">
        <track kind="descriptions" src="b.en.vtt" srclang="EN" default></video>
      <video src="c.mp4"><track kind="metadata" src="c.json"></video></body></html>"""
    a, b, c = discover_videos(html, "https://example.org/page")
    assert a["track"] == {"url": "https://cdn.example.org/v/a.de.vtt", "kind": "captions",
                          "srclang": "de", "label": "Deutsch"}
    # Another language's subtitles lose to English descriptions.
    assert b["track"] == {"url": "https://cdn.example.org/v/b.en.vtt", "kind": "descriptions",
                          "srclang": "en", "label": None}
    assert "track" not in c
    caps = [("figcaption", "f"), ("title", "t")]
    assert with_track(caps, "x", "after_figcaption") == [("figcaption", "f"), ("track", "x"), ("title", "t")]
    assert with_track(caps[1:], "x", "after_figcaption") == [("track", "x"), ("title", "t")]
    assert with_track(caps, "x", "first")[0] == ("track", "x")
    assert with_track(caps, "x", "last")[-1] == ("track", "x")


def test_track_captions_fetched_broken_and_missing(tmp_path):
    """One page, four archived clips with tracks: archived but malformed, empty,
    fetched and 404 on the loopback server; the job cuts clips to 2.5 s."""
    srt = (b"1\n00:00:00,500 --> 00:00:02,000\nA man talks on the phone\n\n"
           b"2\n00:00:02,000 --> 00:00:03,000\nwhile the car drives on.\n\n"
           b"3\n00:00:03,000 --> 00:00:04,000\nThis cue is after the cut.\n")
    with LoopbackServer(root=VIDEOS) as srv:
        srv.route("/t/pristine.srt", body=srt, content_type="application/x-subrip")
        srv.route("/t/gone.vtt", status=404)
        base = srv.url("/")
        page = f"""<html lang="en"><body>
          <video src="{base}c/bikes.mp4" aria-label="Cyclists riding down a city street">
            <track kind="captions" srclang="en" src="t/bikes.vtt"></video>
          <video src="{base}c/bbb.mp4" aria-label="A rabbit stretching in a meadow">
            <track kind="captions" srclang="en" src="t/empty.vtt"></video>
          <video src="{base}c/pristine.mp4" title="Car phone clip, clean copy">
            <track kind="captions" srclang="en" src="t/pristine.srt"></video>
          <video src="{base}c/distorted.mp4" title="Car phone clip, compressed copy">
            <track kind="captions" srclang="en" src="t/gone.vtt"></video></body></html>"""
        warc = tmp_path / "t.warc.gz"
        from warcio.warcwriter import WARCWriter

        with open(warc, "wb") as fh:
            w = WARCWriter(fh, gzip=True)
            _write(w, base + "page.html", page.encode(), "text/html; charset=utf-8")
            for name, f in (("bikes", "bikes.mp4"), ("bbb", "bigbuckbunny.mp4"),
                            ("pristine", "carphone_pristine.mp4"),
                            ("distorted", "carphone_distorted.mp4")):
                _write(w, f"{base}c/{name}.mp4", (VIDEOS / f).read_bytes(), "video/mp4")
            _write(w, base + "t/bikes.vtt", b"<html><body>Error 500</body></html>", "text/vtt")
            _write(w, base + "t/empty.vtt", b"WEBVTT\n\nNOTE no cues yet\n", "text/vtt")
        cfg = FetchConfig(timeout_s=2.0, retries=0, allowed_networks=("127.0.0.1/32",),
                          per_host_rps=50.0)
        counters, samples = _run([str(warc)], [], tmp_path / "out", VideoConfig(max_seconds=2.5),
                                 fetch=True, fetch_cfg=cfg)
    got = {s["json"]["url"].rsplit("/", 1)[-1]: (s["txt"], s["json"]["caption_source"],
                                                 s["json"].get("track_fallback")) for s in samples}
    assert got == {
        "bikes.mp4": ("Cyclists riding down a city street", "aria_label", "track_parse_error"),
        "bbb.mp4": ("A rabbit stretching in a meadow", "aria_label", "track_empty"),
        "pristine.mp4": ("A man talks on the phone while the car drives on.", "track", None),
        "distorted.mp4": ("Car phone clip, compressed copy", "title", "track_fetch_http_404")}
    assert {s["json"]["url"].rsplit("/", 1)[-1]: s["json"]["track_url"] for s in samples}[
        "pristine.mp4"] == base + "t/pristine.srt"
    assert counters["track_parse_error"] == 1 and counters["track_empty"] == 1
    assert counters["track_fetch_http_404"] == 1 and counters["captions_from_track"] == 1
    assert counters["videos"] == 4 and counters["tracks_requested"] == 4
