"""The video-text pairs job (VTP-like): web pages and url lists → videos shards.

    python -m pipeline.videos --input 'crawl/*.warc.gz' --list 'clips.csv' \
        --output out/videos [flags] [beam flags]

Graph (each step a named transform; drops counted by reason in Beam Metrics):

    ReadInputs ─┬─ pages ─ DiscoverVideos (<video src>, <source>, og:video) ─┐
                │    videos with a <track> ─ JoinTracksByURL ─ ResolveTracks   │
                │      archived → TrackCaptions;  missing → FetchTracks ───────┤
                ├─ tracks (archived text/vtt, SubRip) ─┘                       │
                └─ media (archived clips, video/ and audio/) ──────┐          │
    ReadLists ─ ListVideos (csv/tsv/parquet/jsonl: url + caption) ─┼──────────┤
                         DedupByKey ─ VideoRefs ─ JoinMediaByURL ─ ResolveVideos
                   archived → DecodeVideos;  missing → media cache / FetchByHost → DecodeVideos
                         JoinVideos ─ AssembleVideos ─ [EvalDedup] ─ AssignShards ─ WriteShards
    driver: manifest.json, stats.json, funnel.png, summary

Discovery reads the page's own markup (the m3w extractor drops <video>, and
og: tags live in <head>): a ``<video>``'s ``src`` (or its lazy-loading
``data-src``/``data-mp4src``/``data-webmsrc``) and its ``<source>`` children
(the first of a playable type: mp4, then webm/ogg, then any), and the page's
``og:video`` / ``og:video:url`` / ``og:video:secure_url`` when its declared type
is a video file (player pages, text/html, are skipped).  blob: and data: URLs
cannot be fetched and are counted (``drop_video_bad_scheme``).

Caption, first that passes pipeline.captions' filters: the ``<figcaption>`` of
the video's ``<figure>``, the text of its ``<track>`` (below), its
``aria-label``, its ``title``, then the page's ``og:description`` and
``og:title`` (those only when the page has one video).

Tracks (``caption_source: "track"``, with ``track_url`` in the sample json).
A ``<video>``'s ``<track src kind srclang label>`` children of kind
``captions``, ``subtitles`` (also a track with no kind: HTML's default) or
``descriptions`` are candidates; the one taken is, in order: in the page's
language (``<html lang>``), English, no ``srclang``, then any other language;
within that, captions/subtitles before descriptions, then the ``default`` one,
then page order.  Its URL resolves like the video's (``<base href>``, page
URL).  The file is the archived copy in an input WARC (``text/vtt``,
``text/srt``, ``application/x-subrip``; the readers pass those as media) or,
with fetching on, fetched by the same per-host fetcher (``--track-max-bytes``,
1 MB; text/vtt, text/plain, SubRip types), keyed by URL as the clips are.
WebVTT (and SubRip) are parsed by :func:`parse_captions`: header, NOTE, STYLE
and REGION blocks, cue identifiers, timings, cue settings, tags (``<c.x>``,
``<v Speaker>``, ``<b>``, ``<ruby>``/``<rt>``, karaoke timestamps) and entities
are removed, and a line repeated by the next cue (rolling captions) is kept
once.  The caption is the text of the cues that start inside the kept clip,
joined: ``--video-max-seconds`` when the candidate is made, then, once the clip
is decoded, its real kept duration (a clip shorter than its track, or cut
early by the decode bounds, loses the cues past its end; the sample key stays
the one made from the first text).  The usual caption filters then apply.  A
track that cannot be had or used falls back to the next source, counted once
per clip: ``track_not_archived`` (with --no-fetch), ``track_fetch_<reason>``,
``track_noai``, ``track_parse_error`` (not WebVTT/SubRip, undecodable),
``track_empty`` (no cue text), ``track_no_text_in_clip`` (every cue starts
after the kept seconds); a track text the filters refuse counts as the other
sources do (``drop_caption_<reason>``).

Why the track comes second: a ``<figcaption>`` is written by the page to
describe this clip, so it stays first; the track is time-aligned with the
clip (a transcript, or an audio description of what is on screen), more
specific than the ``aria-label``/``title`` (often a player label) and than the
page-level og: tags, which describe the article rather than the clip.
``--track-position`` moves it (``first``, ``after_figcaption``, ``last``) and
``--no-track-enabled`` turns tracks off.
"""
from __future__ import annotations

if __name__ == "__main__":  # flags checked before Beam is imported: --help and mistakes answer at once
    from pipeline.cli import precheck

    precheck("videos")

import argparse
import html as html_lib
import logging
import os
import re
import sys
from dataclasses import dataclass, replace
from urllib.parse import urljoin, urlsplit

import apache_beam as beam

from shards.dropped import victim as dropped_victim
from shards.schema import STAND_IN, build_video_sample, make_key

from . import dropped, media
from .captions import CaptionConfig, caption_drop_reason, normalize
from .decode import decode_html
from .documents import media_key
from .cache import cache_dir_from_args
from .fetch import FetchConfig
from .filters import FilterConfig, LangId, language_drop_reason
from .jobs import (CountingDoFn, drive, quiet_beam_logging)
from .lists import ListConfig, ReadLists
from .options import as_json, dataclass_from_args
from .pairs import eval_dedup
from .read import MEDIA_TYPES, ReadInputs, expand_globs
from .video_frames import VideoConfig, decode_video
from .write import AssignAndWriteShards

log = logging.getLogger("pipeline.videos")
NS = "videos"

VIDEO_FETCH = FetchConfig(max_bytes=200_000_000, timeout_s=60.0,
                          accept_content_types=("video/", "application/octet-stream"))
# Videos are one caption per clip: the alt/figcaption/context machinery of
# pairs does not apply, only the text filters.
VIDEO_CAPTIONS = CaptionConfig(min_words=2, max_words=64)



@dataclass(frozen=True)
class TrackConfig:
    enabled: bool = True          # use <track> captions at all
    # Where the track text goes among the caption sources: first, after_figcaption, last.
    position: str = "after_figcaption"
    max_bytes: int = 1_000_000    # a track file larger than this is not fetched
    timeout_s: float = 10.0


TRACK_POSITIONS = ("first", "after_figcaption", "last")
TRACK_CONTENT_TYPES = ("text/vtt", "text/plain", "text/srt", "application/x-subrip")
TRACK_KINDS = {"captions": 0, "subtitles": 0, "descriptions": 1}


def track_fetch_config(fetch_cfg: FetchConfig, tcfg: TrackConfig) -> FetchConfig:
    """The video fetcher's politeness and network rules, with the track limits."""
    return replace(fetch_cfg, max_bytes=tcfg.max_bytes, timeout_s=tcfg.timeout_s,
                   accept_content_types=TRACK_CONTENT_TYPES)


_LAZY_SRC = ("src", "data-src", "data-mp4src", "data-webmsrc", "data-video-src")
_TYPE_RANK = {"video/mp4": 0, "video/webm": 1, "video/ogg": 2}


def _ext_rank(url: str) -> int:
    path = urlsplit(url).path.lower()
    for ext, r in ((".mp4", 0), (".m4v", 0), (".mov", 1), (".webm", 1), (".ogv", 2)):
        if path.endswith(ext):
            return r
    return 3


def _video_src(video, base: str) -> str | None:
    cands = []
    for attr in _LAZY_SRC:
        v = (video.get(attr) or "").strip()
        if v:
            cands.append((_ext_rank(v), len(cands), v))
    for s in video.iter("source"):
        v = (s.get("src") or s.get("data-src") or "").strip()
        if v:
            typ = (s.get("type") or "").split(";")[0].strip().lower()
            cands.append((_TYPE_RANK.get(typ, _ext_rank(v)), len(cands), v))
    if not cands:
        return None
    # Fetchable first (blob:/data: only if nothing else), then the most playable type.
    cands.sort(key=lambda c: (c[2].lower().startswith(("blob:", "data:")), c[0], c[1]))
    return urljoin(base, cands[0][2])


def _meta(root, prop: str) -> str:
    for v in root.xpath(f'//meta[@property="{prop}" or @name="{prop}"]/@content'):
        if v.strip():
            return normalize(html_lib.unescape(v))  # some sites escape twice (Kotaku)
    return ""


# ---------------------------------------------------------------- tracks


class TrackParseError(ValueError):
    """Not a WebVTT (or SubRip) file."""


_TS = r"(?:(\d+):)?([0-5]?\d):([0-5]\d)[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TS}\s*-->\s*{_TS}(?:\s+.*)?$")
_RT = re.compile(r"<rt>.*?(?:</rt>|$)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>\n]*>")
_ASS = re.compile(r"\{\\[^}]*\}")  # SubRip files carry ASS overrides such as {\an8}


def _seconds(h, m, s, frac) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(frac.ljust(3, "0")) / 1000


def _cue_text(line: str) -> str:
    line = _ASS.sub("", _TAG.sub("", _RT.sub("", line)))
    return normalize(html_lib.unescape(line))


def parse_captions(data: bytes | str) -> list[tuple[float, float, str]]:
    """WebVTT (or SubRip) → [(start, end, text)] in file order; the text of a
    cue is its lines, cleaned, joined by spaces.  Cues with a broken timing
    line are skipped; a file with no WebVTT signature and no SubRip cue raises
    TrackParseError."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise TrackParseError(f"not UTF-8 ({e.reason} at byte {e.start})") from None
    else:
        text = data.lstrip("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise TrackParseError("binary data")
    blocks = [b for b in re.split(r"\n[ \t]*\n", text) if b.strip()]
    vtt = bool(blocks) and re.match(r"WEBVTT(?:[ \t]|$)", blocks[0].lstrip("\n")) is not None
    if vtt:
        blocks = blocks[1:]  # the header block (WEBVTT line, Kind:, Language: ...)
    cues, bad = [], 0
    for block in blocks:
        lines = block.strip("\n").split("\n")
        first = lines[0].strip()
        if vtt and re.match(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)", first):
            continue
        i = 0 if "-->" in lines[0] else 1  # an identifier line may come first
        m = _TIMING.match(lines[i]) if i < len(lines) else None
        if m is None:
            bad += 1
            continue
        g = m.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        cues.append((start, end, [t for t in (_cue_text(x) for x in lines[i + 1:]) if t]))
    if not vtt and not cues:
        raise TrackParseError("no WEBVTT signature and no SubRip cue")
    if bad and not cues:
        raise TrackParseError(f"{bad} blocks and none has a cue timing line")
    # A line the next cue repeats (rolling captions) is kept once.
    out, prev = [], None
    for start, end, lines in cues:
        kept = []
        for ln in lines:
            if ln != prev:
                kept.append(ln)
            prev = ln
        out.append((start, end, " ".join(kept)))
    return out


def cue_text(cues, window: float | None) -> str:
    """The text of the cues that start before ``window`` seconds, joined."""
    return normalize(" ".join(t for start, _, t in cues if t and (window is None or start < window)))


def _lang(tag: str) -> str:
    return (tag or "").strip().lower().replace("_", "-").split("-")[0]


def page_language(root) -> str:
    """Primary language subtag of the page: <html lang>, else Content-Language meta."""
    vals = [root.get("lang"), root.get("xml:lang")]
    for m in root.iter("meta"):
        if (m.get("http-equiv") or "").lower() == "content-language":
            vals.append(m.get("content"))
    return next((_lang(v) for v in vals if _lang(v)), "")


def _video_track(video, base: str, page_lang: str) -> dict | None:
    """The <track> to caption ``video`` from (see the module docstring), or None."""
    cands = []
    for i, t in enumerate(video.iter("track")):
        src = (t.get("src") or "").strip()
        kind = (t.get("kind") or "subtitles").strip().lower()
        if not src or kind not in TRACK_KINDS:
            continue
        lang = _lang(t.get("srclang"))
        lrank = 0 if page_lang and lang == page_lang else 1 if lang == "en" else 2 if not lang else 3
        cands.append(((lrank == 3, TRACK_KINDS[kind], lrank, t.get("default") is None, i),
                      {"url": urljoin(base, src), "kind": kind, "srclang": lang or None,
                       "label": normalize(t.get("label")) or None}))
    return min(cands, key=lambda c: c[0])[1] if cands else None


def with_track(captions, text: str, position: str):
    """``captions`` with ("track", text) at ``position``."""
    item = [("track", text)]
    if position == "first":
        return item + list(captions)
    if position == "last":
        return list(captions) + item
    if position == "after_figcaption":
        n = 1 if captions and captions[0][0] == "figcaption" else 0
        return list(captions[:n]) + item + list(captions[n:])
    raise ValueError(f"unknown track position {position!r} (choose from {TRACK_POSITIONS})")


def discover_videos(html: str, url: str) -> list[dict]:
    """[{"url", "captions": [(source, text), ...]}] for the videos of a page, in
    page order (og:video last), one entry per distinct URL; a <video> with a
    usable <track> also has "track": {"url", "kind", "srclang", "label"}."""
    from lxml import html as lh

    try:
        root = lh.document_fromstring(html)
    except Exception:  # noqa: BLE001 - empty or unparsable page
        return []
    bases = root.xpath("//base/@href")
    base = urljoin(url, bases[0].strip()) if bases else url
    page_lang = page_language(root)
    out, seen = [], set()
    for video in root.iter("video"):
        src = _video_src(video, base)
        if src is None or src in seen:
            continue
        seen.add(src)
        caps = []
        fig = next((a for a in video.iterancestors("figure")), None)
        if fig is not None:
            fc = next(fig.iter("figcaption"), None)
            if fc is not None:
                caps.append(("figcaption", normalize(fc.text_content())))
        for attr, name in (("aria-label", "aria_label"), ("title", "title")):
            if video.get(attr):
                caps.append((name, normalize(video.get(attr))))
        entry = {"url": src, "captions": caps}
        track = _video_track(video, base, page_lang)
        if track is not None:
            entry["track"] = track
        out.append(entry)
    typ = _meta(root, "og:video:type").lower()
    if not typ or typ.startswith("video/"):
        for prop in ("og:video:secure_url", "og:video:url", "og:video"):
            v = _meta(root, prop)
            if v:
                src = urljoin(base, v)
                if src not in seen:
                    seen.add(src)
                    out.append({"url": src, "captions": []})
                break
    if len(out) == 1:
        for prop in ("og:description", "og:title"):
            v = _meta(root, prop)
            if v:
                out[0]["captions"].append((prop.replace(":", "_"), v))
    return [dict(v, captions=[c for c in v["captions"] if c[1]]) for v in out]


class _CaptionPicker:
    def __init__(self, ccfg: CaptionConfig, fcfg: FilterConfig):
        self.ccfg, self.fcfg, self.langid = ccfg, fcfg, LangId()

    def pick(self, captions, counts, sink: list | None = None, **victim):
        """First passing (source, caption, lang, score); each failure counted
        (and, with ``sink``, a --keep-dropped list, kept with ``victim``'s fields)."""
        for source, text in captions:
            reason = caption_drop_reason(text, self.ccfg)
            if reason is None:
                lang, score = self.langid(text)
                reason = language_drop_reason(lang, score, self.fcfg)
                if reason is None:
                    return source, normalize(text), lang, round(score, 4)
            counts.inc(f"drop_caption_{reason}")
            if sink is not None:
                sink.append(dropped_victim(f"caption_{reason}", what="caption", text=text,
                                           caption_source=source, index=source, **victim))
        return None


class DiscoverVideos(CountingDoFn):
    """Pages → candidate videos with a caption (or, when the video has a
    <track>, a pending video waiting for its track); archived clips and
    tracks pass through tagged."""

    namespace = NS
    MEDIA = "media"
    TRACKS = "tracks"
    TRACK_MEDIA = "track_media"

    def __init__(self, fcfg, ccfg, progress_dir=None, tcfg: TrackConfig = TrackConfig()):
        self.fcfg, self.ccfg, self.progress_dir, self.tcfg = fcfg, ccfg, progress_dir, tcfg

    def setup(self):
        super().setup()
        self.picker = _CaptionPicker(self.ccfg, self.fcfg)

    def process(self, rec):
        if rec.is_media:
            # audio/: a clip with no picture (decoding says audio_only) is still a clip.
            if rec.content_type.startswith(("video/", "audio/")):
                self.counts.inc("archived_videos")
                yield beam.pvalue.TaggedOutput(self.MEDIA, (media_key(rec.url), (rec.body, rec.headers)))
            elif rec.content_type in MEDIA_TYPES:
                self.counts.inc("archived_tracks")
                yield beam.pvalue.TaggedOutput(self.TRACK_MEDIA,
                                               (media_key(rec.url), (rec.body, rec.headers)))
            return
        self.counts.inc("pages")
        src = {"file": rec.source, "offset": rec.offset}
        if media.noai(rec.headers):
            yield from self.drop("page_noai", counter="page_drop_noai", what="page", url=rec.url,
                                 source=src)
            return
        try:
            html, _ = decode_html(rec.body, rec.charset)
            found = discover_videos(html, rec.url)
        except Exception as e:  # one broken page never stops the job
            self.counts.inc("page_drop_extract_error")
            log.warning("%s@%d (%s): video discovery failed: %s: %s", rec.source, rec.offset,
                        rec.url, type(e).__name__, e)
            return
        for v in found:
            self.counts.inc("video_candidates")
            if urlsplit(v["url"]).scheme not in ("http", "https"):
                yield from self.drop("video_bad_scheme", what="video", url=v["url"][:300],
                                     page_url=rec.url, source=src)
                continue
            track = v.get("track") if self.tcfg.enabled else None
            if track is not None and urlsplit(track["url"]).scheme not in ("http", "https"):
                self.counts.inc("track_bad_scheme")  # data:/blob: tracks: caption from the rest
                track = None
            if track is not None:
                self.counts.inc("videos_with_track")
                yield beam.pvalue.TaggedOutput(self.TRACKS, (media_key(track["url"]), {
                    "url": v["url"], "captions": v["captions"], "track": track,
                    "page_url": rec.url, "source": {"file": rec.source, "offset": rec.offset}}))
                continue
            if not v["captions"]:
                yield from self.drop("caption_none", what="video", url=v["url"], page_url=rec.url,
                                     source=src)
                continue
            sink = [] if self.keep_dropped is not None else None
            picked = self.picker.pick(v["captions"], self.counts, sink, url=v["url"],
                                      page_url=rec.url, source=src)
            yield from dropped.emit(sink or [])
            if picked is None:
                continue
            yield _candidate(v["url"], picked, rec.url, rec.source, rec.offset)
            self.counts.inc("candidate_videos")


def _candidate(url, picked, page_url, source, offset):
    cap_source, caption, lang, score = picked
    return {"key": make_key(url, caption), "url": url, "page_url": page_url, "caption": caption,
            "caption_source": cap_source, "lang": lang, "lang_score": score,
            "source": {"file": source, "offset": offset}}


class ResolveTracks(CountingDoFn):
    """One track URL's pending videos + archived copies → the track bytes, a
    failure reason, or a fetch request."""

    namespace = NS
    FETCH = "fetch"

    def __init__(self, progress_dir=None):
        self.progress_dir = progress_dir

    def process(self, element):
        url, grouped = element
        refs = sorted(grouped["refs"], key=lambda r: (r["source"]["file"], r["source"]["offset"],
                                                      r["url"]))
        if not refs:
            return
        self.counts.inc("tracks_requested")
        archived = sorted(grouped["archived"], key=lambda a: (len(a[0]), a[0]))
        if not archived:
            yield beam.pvalue.TaggedOutput(self.FETCH, (url, refs))
            return
        body, headers = archived[0]
        if media.noai(headers):
            yield url, refs, "noai", None
            return
        self.counts.inc("tracks_from_warc")
        yield url, refs, None, body


def track_fetch_outcome(element):
    url, refs, fr = element
    if fr.ok:
        return url, refs, None, fr.data
    return url, refs, f"fetch_{fr.reason}", None


class TrackCaptions(CountingDoFn):
    """A track (or why there is none) + the videos using it → their candidates,
    the track text among their caption sources at ``position``."""

    namespace = NS

    def __init__(self, fcfg, ccfg, tcfg: TrackConfig, max_seconds: float, progress_dir=None):
        self.fcfg, self.ccfg, self.tcfg = fcfg, ccfg, tcfg
        self.max_seconds, self.progress_dir = max_seconds, progress_dir

    def setup(self):
        super().setup()
        self.picker = _CaptionPicker(self.ccfg, self.fcfg)

    def _read(self, url, body):
        """(cues kept, text, None) or (None, None, reason)."""
        try:
            cues = parse_captions(body)
        except Exception as e:  # TrackParseError, and anything a bad file provokes
            log.warning("%s: caption track not parsed: %s: %s", url, type(e).__name__, e)
            return None, None, "parse_error"
        if not cue_text(cues, None):
            return None, None, "empty"
        kept = [c for c in cues if c[2] and c[0] < self.max_seconds]
        if not kept:
            return None, None, "no_text_in_clip"
        return kept, cue_text(kept, None), None

    def process(self, element):
        url, refs, reason, body = element
        cues = text = None
        if reason is None:
            cues, text, reason = self._read(url, body)
        for ref in refs:
            caps = ref["captions"]
            if reason is not None:
                self.counts.inc(f"track_{reason}")
            else:
                caps = with_track(caps, text, self.tcfg.position)
            if not caps:
                yield from self.drop("caption_none", what="video", url=ref["url"],
                                     page_url=ref["page_url"], source=ref["source"])
                continue
            sink = [] if self.keep_dropped is not None else None
            picked = self.picker.pick(caps, self.counts, sink, url=ref["url"],
                                      page_url=ref["page_url"], source=ref["source"])
            yield from dropped.emit(sink or [])
            if picked is None:
                continue
            c = _candidate(ref["url"], picked, ref["page_url"], ref["source"]["file"],
                           ref["source"]["offset"])
            c["track_url"] = ref["track"]["url"]
            if picked[0] == "track":
                self.counts.inc("captions_from_track")
                c["track_cues"] = [list(cue) for cue in cues]
                i = [s for s, _ in caps].index("track")
                c["fallback_captions"] = [list(x) for x in caps[i + 1:]]
            else:
                c["track_fallback"] = f"track_{reason}" if reason else "track_caption_filtered"
            self.counts.inc("candidate_videos")
            yield c


class ListVideos(CountingDoFn):
    namespace = NS

    def __init__(self, fcfg, ccfg, progress_dir=None):
        self.fcfg, self.ccfg, self.progress_dir = fcfg, ccfg, progress_dir

    def setup(self):
        super().setup()
        self.picker = _CaptionPicker(self.ccfg, self.fcfg)

    def process(self, item):
        self.counts.inc("video_candidates")
        if item.image is not None:
            self.counts.inc("drop_video_not_a_video_list")  # an img2dataset shard given to videos
            return
        sink = [] if self.keep_dropped is not None else None
        picked = self.picker.pick([("list", item.caption)], self.counts, sink, url=item.url,
                                  source={"file": item.source, "offset": item.offset})
        yield from dropped.emit(sink or [])
        if picked is None:
            return
        self.counts.inc("candidate_videos")
        yield _candidate(item.url, picked, None, item.source, item.offset)


class ResolveVideos(media.ResolveMedia):
    namespace = NS

    def __init__(self, progress_dir=None):
        super().__init__(progress_dir, label="videos")


class DecodeVideos(CountingDoFn):
    """Clip bytes → frames (bounded decode), fanned out to every candidate using the URL."""

    namespace = NS

    def __init__(self, vcfg: VideoConfig, progress_dir=None):
        self.vcfg, self.progress_dir = vcfg, progress_dir

    def process(self, element):
        url, refs, failed, payload = element
        if failed is not None:
            res = failed
        else:
            data, via, stand_in = media.payload_parts(payload)
            d = decode_video(data, self.vcfg, source=url)
            if d.ok:
                self.counts.inc("videos_decoded")
                self.counts.inc("frames_decoded", len(d.frames))
                res = {"ok": True, "via": via, "video": d}
                if stand_in:
                    res[STAND_IN] = True
            else:
                res = {"ok": False, "reason": d.reason}
        for key, _ in refs:
            yield key, res


class AssembleVideos(CountingDoFn):
    namespace = NS

    def __init__(self, sample_fps: float, progress_dir=None, fcfg=None, ccfg=None):
        self.sample_fps, self.progress_dir = sample_fps, progress_dir
        self.fcfg, self.ccfg = fcfg or FilterConfig(), ccfg or VIDEO_CAPTIONS

    def setup(self):
        super().setup()
        self.picker = None  # language id loaded only when a track caption needs re-picking

    def _clip_caption(self, c, d):
        """The caption for the decoded clip: a track caption keeps only the cues
        that start inside the clip's kept duration; if that changes the text,
        it is filtered again (falling back to the next source).  None: dropped."""
        picked = (c["caption_source"], c["caption"], c["lang"], c["lang_score"])
        if not c.get("track_cues") or d.duration is None:
            return picked
        text = cue_text(c["track_cues"], d.duration)
        if text == c["caption"]:
            return picked
        self.counts.inc("track_trimmed_to_clip")
        if self.picker is None:
            self.picker = _CaptionPicker(self.ccfg, self.fcfg)
        caps = ([("track", text)] if text else []) + [tuple(x) for x in c.get("fallback_captions", [])]
        if not text:
            self.counts.inc("track_no_text_in_clip")
        got = self.picker.pick(caps, self.counts)
        if got is None and not caps:
            self.counts.inc("drop_caption_none")
        return got

    def process(self, element):
        key, grouped = element
        cands, results = list(grouped["cand"]), list(grouped["video"])
        if not cands or not results:
            return
        c, res = cands[0], results[0]
        if not res["ok"]:
            yield from self.drop(f"video_{res['reason']}", what="video", url=c["url"],
                                 page_url=c["page_url"], text=c["caption"], source=c["source"],
                                 caption_source=c["caption_source"])
            return
        d = res["video"]
        picked = self._clip_caption(c, d)
        if picked is None:
            return
        cap_source, caption, lang, score = picked
        meta = {"url": c["url"], "page_url": c["page_url"], "caption_source": cap_source,
                "lang": lang, "lang_score": score, "source": c["source"],
                "via": res["via"], "duration": d.duration, "original_duration": d.original_duration,
                "fps": d.fps, "sample_fps": self.sample_fps, "frame_times": d.frame_times,
                "frame_sha256": d.frame_sha256, "frame_phashes": d.frame_phashes,
                "width": d.width, "height": d.height, "frame_width": d.frame_width,
                "frame_height": d.frame_height, "codec": d.codec, "has_audio": d.has_audio,
                "truncated_to": d.truncated_to}
        if res.get(STAND_IN):
            meta[STAND_IN] = True
        if c.get("track_url"):
            meta["track_url"] = c["track_url"]
            if cap_source != "track":
                meta["track_fallback"] = c.get("track_fallback", "track_caption_filtered")
        self.counts.inc("videos")
        self.counts.inc("frames_written", len(d.frames))
        yield build_video_sample(key, caption, meta, d.frames, d.clip)


def build_videos(p, inputs, lists, out_dir, fcfg, ccfg, vcfg, fetch_cfg, run_id,
                 samples_per_shard, fetch=True, list_cfg=ListConfig(), dedup_index=None,
                 dedup_action="drop", progress_dir=None, track_cfg=TrackConfig(), media_cache=None,
                 keep=None):
    """Add the videos graph to pipeline ``p``; returns the PCollection of shard infos.
    ``keep`` (--keep-dropped): also write the victims to OUTPUT/dropped/."""
    if track_cfg.position not in TRACK_POSITIONS:
        raise ValueError(f"track position {track_cfg.position!r}: choose from {TRACK_POSITIONS}")
    branches, archived, victims = [], [], []
    if inputs:
        found = (p | "ReadInputs" >> ReadInputs(inputs, NS, progress_dir)
                 | "DiscoverVideos" >> beam.ParDo(
                     DiscoverVideos(fcfg, ccfg, progress_dir, track_cfg).keeping(keep))
                 .with_outputs(DiscoverVideos.MEDIA, DiscoverVideos.TRACKS,
                               DiscoverVideos.TRACK_MEDIA, dropped.DROPPED, main="videos"))
        branches.append(found.videos)
        victims.append(found[dropped.DROPPED])
        archived.append(found[DiscoverVideos.MEDIA])
        tracks = ({"refs": found[DiscoverVideos.TRACKS], "archived": found[DiscoverVideos.TRACK_MEDIA]}
                  | "JoinTracksByURL" >> beam.CoGroupByKey()
                  | "ResolveTracks" >> beam.ParDo(ResolveTracks(progress_dir)).with_outputs(
                      ResolveTracks.FETCH, main="ready"))
        track_files = [tracks.ready]
        if fetch:
            # Own metrics namespace: the fetcher's fetch_ok/fetch_drop_* stay the clips'.
            track_files.append(tracks[ResolveTracks.FETCH]
                               | "FetchTracks" >> media.FetchMedia(
                                   track_fetch_config(fetch_cfg, track_cfg), NS + "_tracks",
                                   media_cache, progress_dir)
                               | "TrackFetchOutcome" >> beam.Map(track_fetch_outcome))
        else:
            track_files.append(tracks[ResolveTracks.FETCH] | "TracksNotArchived" >> beam.Map(
                lambda e: (e[0], e[1], "not_archived", None)))
        tracked = (track_files | "AllTracks" >> beam.Flatten()
                   | "TrackCaptions" >> beam.ParDo(
                       TrackCaptions(fcfg, ccfg, track_cfg, vcfg.max_seconds, progress_dir)
                       .keeping(keep)).with_outputs(dropped.DROPPED, main="videos"))
        branches.append(tracked.videos)
        victims.append(tracked[dropped.DROPPED])
    if lists:
        listed = (p | "ReadLists" >> ReadLists(lists, list_cfg, NS, progress_dir)
                  | "ListVideos" >> beam.ParDo(ListVideos(fcfg, ccfg, progress_dir).keeping(keep))
                  .with_outputs(dropped.DROPPED, main="videos"))
        branches.append(listed.videos)
        victims.append(listed[dropped.DROPPED])
    cands = (branches | "AllCandidates" >> beam.Flatten()
             | "KeyVideos" >> beam.Map(lambda c: (c["key"], c))
             | "DedupByKey" >> beam.CombinePerKey(
                 lambda cs: min(cs, key=lambda c: (c["source"]["file"], c["source"]["offset"]))))
    refs = cands | "VideoRefs" >> beam.Map(lambda kv: (media_key(kv[1]["url"]), (kv[0], 0)))
    archived_media = (archived | "AllArchived" >> beam.Flatten()) if archived else (
        p | "NoArchived" >> beam.Create([]))
    resolved = ({"refs": refs, "archived": archived_media}
                | "JoinMediaByURL" >> beam.CoGroupByKey()
                | "ResolveVideos" >> beam.ParDo(ResolveVideos(progress_dir)).with_outputs(
                    ResolveVideos.FETCH, main="ready"))
    to_decode = [resolved.ready]
    if fetch:
        to_decode.append(resolved[ResolveVideos.FETCH]
                         | "FetchByHost" >> media.FetchMedia(fetch_cfg, NS, media_cache, progress_dir)
                         | "FetchOutcome" >> beam.Map(media.fetch_outcome))
    else:
        to_decode.append(resolved[ResolveVideos.FETCH] | "NotArchived" >> beam.Map(
            lambda e: (e[0], e[1], {"ok": False, "reason": "not_archived"}, None)))
    assembled = ({"cand": cands,
                  "video": to_decode | "AllClips" >> beam.Flatten()
                  | "DecodeVideos" >> beam.ParDo(DecodeVideos(vcfg, progress_dir))}
                 | "JoinVideos" >> beam.CoGroupByKey()
                 | "AssembleVideos" >> beam.ParDo(
                     AssembleVideos(vcfg.fps, progress_dir, fcfg, ccfg).keeping(keep))
                 .with_outputs(dropped.DROPPED, main="samples"))
    victims.append(assembled[dropped.DROPPED])
    samples = eval_dedup(assembled.samples, dedup_index, dedup_action, "video", progress_dir, keep,
                         victims)
    dropped.write_all(p, victims, out_dir, run_id, keep)
    return samples | "WriteShards" >> AssignAndWriteShards(out_dir, "videos", run_id,
                                                           samples_per_shard, progress_dir, NS)


# ---------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    from .cli import videos_parser  # the flags live in pipeline/cli.py (checked before Beam loads)

    return videos_parser()


PROGRESS_FIELDS = [("records_read", "records"), ("pages", "pages"), ("list_rows", "rows"),
                   ("video_candidates", "found"), ("videos_requested", "clips"),
                   ("videos_decoded", "decoded"), ("frames_decoded", "frames"),
                   ("samples_in_shards", "in shards")]


def main(argv=None) -> int:
    from .pairs import fetch_config_from_args

    from .cli import parse

    ap = parser()
    args, beam_args = parse("videos", argv)
    if not args.input and not args.lists:
        ap.error("give at least one --input or --list")
    quiet_beam_logging()
    fcfg = dataclass_from_args(FilterConfig, args)
    ccfg = dataclass_from_args(CaptionConfig, args, "caption")
    vcfg = dataclass_from_args(VideoConfig, args, "video")
    list_cfg = dataclass_from_args(ListConfig, args)
    fetch_cfg = fetch_config_from_args(args)
    track_cfg = dataclass_from_args(TrackConfig, args, "track")
    if track_cfg.position not in TRACK_POSITIONS:
        ap.error(f"--track-position must be one of {', '.join(TRACK_POSITIONS)}")
    try:
        keep = dropped.config_from_args(args)
    except ValueError as e:
        ap.error(str(e))
    try:
        files = expand_globs(args.input) if args.input else []
        list_files = expand_globs(args.lists) if args.lists else []
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = {"video": as_json(vcfg), "captions": as_json(ccfg),
               "filters": {"languages": list(fcfg.languages),
                           "min_lang_confidence": fcfg.min_lang_confidence},
               "fetch": as_json(fetch_cfg), "lists": as_json(list_cfg), "tracks": as_json(track_cfg),
               "samples_per_shard": args.samples_per_shard, "fetch_enabled": args.fetch,
               "dedup_index": os.path.basename(args.dedup_index) if args.dedup_index else None,
               "dedup_action": args.dedup_action,
               "inputs": [os.path.basename(f) for f in files + list_files]}
    return drive("videos", NS, args.output, files + list_files, options, beam_args,
                 lambda p, run_id, progress_dir: build_videos(
                     p, files, list_files, args.output, fcfg, ccfg, vcfg, fetch_cfg, run_id,
                     args.samples_per_shard, fetch=args.fetch, list_cfg=list_cfg,
                     dedup_index=args.dedup_index, dedup_action=args.dedup_action,
                     progress_dir=progress_dir, track_cfg=track_cfg,
                     media_cache=cache_dir_from_args(args), keep=keep),
                 PROGRESS_FIELDS, args.quiet, args.log_file)


if __name__ == "__main__":
    sys.exit(main())
