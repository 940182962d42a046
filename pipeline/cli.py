"""The command lines of the three jobs (m3w, pairs, videos): parsers and the
checks every flag gets at start, all without importing Beam.

``python -m pipeline.m3w`` parses and checks its arguments here first (the job
modules call :func:`precheck` before their own imports), so ``--help`` and any
mistake answer in well under 2 s, with one line naming the option and what was
expected, exit status 2:

- an option neither the job nor Beam (for the chosen runner) defines, with the
  closest name (Beam's flags from ``beam_flags.json``, see pipeline.options);
- a number out of range (``--samples-per-shard 0``), a min above its max;
- a value not among the choices (``--image-resize-mode squash``,
  ``--dedup-action``, ``--caption-pick``, ``--track-position``);
- a language code the identifier does not know (``--languages english``,
  suggesting ``en``); caption sources; ``--split`` syntax;
- a local input glob matching nothing, a missing ``--dedup-index``.

The config dataclasses of modules that import Beam (fetch, images, lists,
video_frames, m3w, videos) are read from their source (options.light_dataclass),
so each threshold keeps its one home: its dataclass default.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from functools import lru_cache

from shards.cli import Parser, closest, fail
from shards.dropped import DEFAULT_MAX_PER_REASON

from .cache import add_cache_flags
from .captions import SOURCES, CaptionConfig
from .filters import FilterConfig
from .options import (add_dataclass_flags, light_constant, light_dataclass, unknown_beam_arg,
                      unknown_language)

PROGS = {kind: f"python -m pipeline.{kind}" for kind in ("m3w", "pairs", "videos")}
# img2dataset's ResizeMode names (pipeline.images.ImageConfig checks them too;
# tests/pipeline/test_cli.py that this list is img2dataset's).
RESIZE_MODES = ("no", "keep_ratio", "center_crop", "border", "keep_ratio_largest")
DEDUP_ACTIONS = ("drop", "tag")
CAPTION_PICKS = ("first", "all")


@lru_cache(maxsize=None)
def light(name: str):
    """A config dataclass (or constant) of a module that imports Beam, read from its source."""
    where = {"FetchConfig": "pipeline.fetch", "ImageConfig": "pipeline.images",
             "ListConfig": "pipeline.lists", "VideoConfig": "pipeline.video_frames",
             "DedupConfig": "pipeline.m3w", "TrackConfig": "pipeline.videos"}
    if name in where:
        return light_dataclass(where[name], name)
    return light_constant("pipeline.videos", name)  # VIDEO_FETCH, VIDEO_CAPTIONS, TRACK_POSITIONS


# ---------------------------------------------------------------- parsers


def add_keep_dropped_flags(ap) -> None:
    ap.add_argument("--keep-dropped", action="store_true",
                    help="also write what each filter dropped (documents, paragraphs, images, "
                         "captions, videos, with their reason) to OUTPUT/dropped/, for "
                         "`python -m shards.browse OUTPUT`")
    ap.add_argument("--keep-dropped-max", type=int, default=DEFAULT_MAX_PER_REASON,
                    metavar="N", help="victims kept per reason (the same ones on a rerun); "
                                      "0 = every one (default: %(default)s)")


def m3w_parser() -> Parser:
    ap = Parser(
        prog=PROGS["m3w"],
        description="Build M3W interleaved image-text shards from web pages. Beam's flags "
                    "(--runner, --direct_num_workers, ...) are accepted too; anything else is an error.")
    ap.add_argument("--input", action="extend", nargs="+", required=True,
                    help="globs of WARC / HTML / JSONL files (one or more, repeatable, e.g. a "
                         "shell-expanded *.warc.gz; any Beam filesystem)")
    ap.add_argument("--output", required=True, help="output directory (any Beam filesystem)")
    ap.add_argument("--samples-per-shard", type=int, default=1000, help="(default: 1000)")
    ap.add_argument("--fetch", action=argparse.BooleanOptionalAction, default=True,
                    help="fetch images not archived in the inputs (default: on)")
    ap.add_argument("--all-text", action="store_true",
                    help="keep all visible text instead of main-content scoring")
    ap.add_argument("--keep-comments", action="store_true",
                    help="keep the page's comment threads after the article (default: dropped)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    ap.add_argument("--log-file", help="where Beam's and the workers' logs go "
                    "(default: OUTPUT/m3w.log, or the temp folder for remote outputs)")
    add_dataclass_flags(ap, FilterConfig, title="filters (OBELICS defaults)")
    add_dataclass_flags(ap, light("ImageConfig"), prefix="image", title="images")
    add_dataclass_flags(ap, light("FetchConfig"), prefix="fetch", title="fetching",
                        skip=("allow_private_addresses", "allowed_networks", "ca_file"))
    add_dataclass_flags(ap, light("DedupConfig"), prefix="dedup",
                        title="dedup (eval sets: --dedup-index from make dedup-index; within the corpus)")
    ap.add_argument("--allow-private-addresses", action="store_true",
                    help="let the fetcher reach loopback/private addresses (tests and the demo only)")
    add_cache_flags(ap)
    add_keep_dropped_flags(ap)
    return ap


_M3W_ONLY = ("para_min_words", "para_max_words", "para_max_char_repetition",
             "para_char_repetition_min_count",
             "para_max_word_repetition", "para_max_special_chars", "doc_min_images",
             "doc_max_images", "doc_min_words", "doc_max_words")


def add_common_flags(ap: argparse.ArgumentParser, kind: str) -> None:
    """The flags the pairs and videos jobs share (same conventions as m3w)."""
    ap.add_argument("--input", action="extend", nargs="+", default=[],
                    help="globs of WARC / HTML / JSONL page files (one or more, repeatable; "
                         "any Beam filesystem)")
    ap.add_argument("--list", action="extend", nargs="+", default=[], dest="lists",
                    help="glob of url lists: csv, tsv, parquet, jsonl[.gz]"
                         + (", img2dataset webdataset .tar" if kind == "pairs" else "")
                         + " (one or more, repeatable)")
    ap.add_argument("--output", required=True, help="output directory (any Beam filesystem)")
    ap.add_argument("--samples-per-shard", type=int, default=1000, help="(default: 1000)")
    ap.add_argument("--fetch", action=argparse.BooleanOptionalAction, default=True,
                    help="fetch media not archived in the inputs (default: on)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    ap.add_argument("--log-file", help=f"where Beam's and the workers' logs go "
                    f"(default: OUTPUT/{kind}.log, or the temp folder for remote outputs)")
    ap.add_argument("--dedup-index", help="eval index (.npz from python -m dedup.build_index): "
                    "drop or tag samples matching an eval set")
    ap.add_argument("--dedup-action", default="drop", help="drop | tag (default: drop)")
    ap.add_argument("--allow-private-addresses", action="store_true",
                    help="let the fetcher reach loopback/private addresses (tests and the demo only)")
    add_dataclass_flags(ap, light("ListConfig"), title="list inputs (img2dataset's column flags)")
    add_cache_flags(ap)
    add_keep_dropped_flags(ap)


def pairs_parser() -> Parser:
    ap = Parser(
        prog=PROGS["pairs"],
        description="Build image-text pair shards (ALIGN/LTIP-like) from web pages and url "
                    "lists. Beam's flags (--runner, ...) are accepted too; anything else is an error.")
    add_common_flags(ap, "pairs")
    ap.add_argument("--all-text", action="store_true",
                    help="take images from the whole page instead of the main content")
    add_dataclass_flags(ap, CaptionConfig, prefix="caption", title="captions")
    ap.add_argument("--split", action="append", default=[], metavar="NAME=SOURCES",
                    help="write the pairs whose caption source is one of SOURCES to OUTPUT/NAME "
                         "(repeatable; e.g. --split align=alt --split ltip=figcaption,title,context "
                         "for ALIGN-like and LTIP-like sets in one run; 'list' for url-list rows)")
    add_dataclass_flags(ap, FilterConfig, title="image URL and language filters (as m3w)",
                        skip=_M3W_ONLY)
    add_dataclass_flags(ap, light("ImageConfig"), prefix="image", title="images")
    add_dataclass_flags(ap, light("FetchConfig"), prefix="fetch", title="fetching",
                        skip=("allow_private_addresses",))
    return ap


def videos_parser() -> Parser:
    ap = Parser(
        prog=PROGS["videos"],
        description="Build video-text shards (frames at 1 FPS as JPEGs) from web pages and "
                    "url lists. Beam's flags (--runner, ...) are accepted too; anything else is an error.")
    add_common_flags(ap, "videos")
    add_dataclass_flags(ap, light("VideoConfig"), prefix="video", title="video decoding and frames")
    add_dataclass_flags(ap, CaptionConfig, prefix="caption", title="caption filters",
                        skip=("sources", "pick", "context_max_words", "max_per_host"))
    captions = light("VIDEO_CAPTIONS")
    set_defaults(ap, caption_min_words=captions["min_words"], caption_max_words=captions["max_words"])
    add_dataclass_flags(ap, FilterConfig, title="language filters (as m3w)",
                        skip=tuple(f for f in FilterConfig.__dataclass_fields__
                                   if f not in ("languages", "min_lang_confidence")))
    add_dataclass_flags(ap, light("FetchConfig"), prefix="fetch", title="fetching",
                        skip=("allow_private_addresses",))
    add_dataclass_flags(ap, light("TrackConfig"), prefix="track",
                        title="<track> captions (position: " + "|".join(light("TRACK_POSITIONS")) + ")")
    fetch = light("VIDEO_FETCH")
    set_defaults(ap, fetch_max_bytes=fetch["max_bytes"], fetch_timeout_s=fetch["timeout_s"],
                 fetch_accept_content_types=",".join(fetch["accept_content_types"]))
    return ap


def set_defaults(ap: argparse.ArgumentParser, **defaults) -> None:
    """This job's defaults for shared config flags, with --help saying so."""
    ap.set_defaults(**defaults)
    for action in ap._actions:
        if action.dest in defaults and action.help:
            action.help = action.help.rsplit("(default:", 1)[0] + f"(default: {defaults[action.dest]})"


PARSERS = {"m3w": m3w_parser, "pairs": pairs_parser, "videos": videos_parser}


# ---------------------------------------------------------------- checks

# Allowed range of each numeric option (dest: (low, high, low excluded)); any
# numeric option not listed must be >= 0 (tests/pipeline/test_cli.py lists them).
RANGES = {
    "samples_per_shard": (1, None, False),
    "para_max_words": (1, None, False),
    "para_max_char_repetition": (0, 1, False), "para_max_word_repetition": (0, 1, False),
    "para_char_repetition_min_count": (2, None, False),
    "para_max_special_chars": (0, 1, False),
    "doc_max_images": (1, None, False), "doc_max_words": (1, None, False),
    "min_lang_confidence": (0, 1, False),
    "image_max_aspect_ratio": (1, None, False), "image_image_size": (1, None, False),  # --image-size
    "image_encode_quality": (1, 100, False), "image_max_pixels": (1, None, False),
    "fetch_timeout_s": (0, None, True), "fetch_max_bytes": (1, None, False),
    "fetch_host_concurrency": (0, None, False), "fetch_max_queued": (1, None, False),
    "fetch_threads": (1, None, False),
    "dedup_near_dup_threshold": (0, 1, False),
    "caption_max_words": (1, None, False),
    "tar_max_member_bytes": (1, None, False),
    "video_fps": (0, None, True), "video_max_frames": (1, None, False),
    "video_max_seconds": (0, None, True), "video_frame_size": (1, None, False),
    "video_frame_quality": (1, 100, False), "video_max_packets": (1, None, False),
    "video_max_decode_s": (0, None, True), "video_max_frame_pixels": (1, None, False),
    "track_max_bytes": (1, None, False), "track_timeout_s": (0, None, True),
}
MIN_MAX = (("para_min_words", "para_max_words"), ("doc_min_images", "doc_max_images"),
           ("doc_min_words", "doc_max_words"), ("caption_min_words", "caption_max_words"))


def numeric_actions(ap: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in ap._actions if a.option_strings and a.type in (int, float)]


def _range_text(lo, hi, open_low, integer) -> str:
    kind = "an integer" if integer else "a number"
    if hi is not None:
        return f"{kind} in [{lo:g}, {hi:g}]"
    return f"{kind} {'>' if open_low else '>='} {lo:g}"


def check_args(kind: str, ap: Parser, args: argparse.Namespace, beam_args: list[str]) -> None:
    """Every flag's value, the leftovers as Beam flags, local inputs: the first
    problem is a one-line error (``ap.error``, exit 2)."""
    why = unknown_beam_arg(beam_args, ap.option_names())
    if why:
        ap.error(why)
    flag = {a.dest: a.option_strings[0] for a in ap._actions if a.option_strings}
    for a in numeric_actions(ap):
        value = getattr(args, a.dest)
        lo, hi, open_low = RANGES.get(a.dest, (0, None, False))
        if value < lo or (open_low and value == lo) or (hi is not None and value > hi):
            ap.error(f"{flag[a.dest]} {value:g}: expected {_range_text(lo, hi, open_low, a.type is int)}")
    for low, high in MIN_MAX:
        if hasattr(args, low) and hasattr(args, high) and getattr(args, low) > getattr(args, high):
            ap.error(f"{flag[low]} {getattr(args, low)} is above {flag[high]} {getattr(args, high)}")
    choices = {"image_resize_mode": RESIZE_MODES, "dedup_action": DEDUP_ACTIONS,
               "caption_pick": CAPTION_PICKS}
    if kind == "videos":
        choices["track_position"] = light("TRACK_POSITIONS")
    for dest, allowed in choices.items():
        value = getattr(args, dest, None)
        if value is not None and value not in allowed:
            near = closest(value, allowed, cutoff=0.7)
            ap.error(f"{flag[dest]} {value!r}: expected one of {', '.join(allowed)}"
                     + (f" (did you mean {near}?)" if near else ""))
    for code in _split_list(getattr(args, "languages", "")):
        why = unknown_language(code)
        if why:
            ap.error(f"--languages: {why}")
    if hasattr(args, "caption_sources"):
        for src in _split_list(args.caption_sources):
            if src not in SOURCES[:4]:
                ap.error(f"--caption-sources: unknown caption source {src!r} "
                         f"(expected some of {', '.join(SOURCES[:4])})")
    for spec in getattr(args, "split", []) or []:
        _check_split(ap, spec)
    if kind != "m3w" and not args.input and not args.lists:
        ap.error("give at least one --input or --list")
    for option, patterns in (("--input", args.input or []), ("--list", getattr(args, "lists", []))):
        for pattern in patterns:
            if "://" not in pattern and not glob.glob(pattern):
                ap.error(f"{option} {pattern!r}: matches no file")
    index = getattr(args, "dedup_index", None)
    if index and "://" not in index and not os.path.isfile(index):
        ap.error(f"--dedup-index {index}: no such file (build it with make dedup-index)")
    if os.path.isfile(args.output):
        ap.error(f"--output {args.output}: is a file; expected a directory")


def _split_list(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [x.strip() for x in (value or "").split(",") if x.strip()]


def _check_split(ap: Parser, spec: str) -> None:
    name, sep, sources = spec.partition("=")
    srcs = _split_list(sources)
    if not sep or not name or not srcs:
        ap.error(f"--split {spec!r}: expected NAME=SOURCE[,SOURCE...] (e.g. align=alt)")
    for src in srcs:
        if src not in SOURCES:
            ap.error(f"--split {spec!r}: unknown caption source {src!r} (expected some of "
                     f"{', '.join(SOURCES)})")


def parse(kind: str, argv=None) -> tuple[argparse.Namespace, list[str]]:
    """The job's flags, every one checked; the rest are Beam's (checked too)."""
    from .options import read_beam_flags

    ap = PARSERS[kind]()
    ap.reject_unknown(sys.argv[1:] if argv is None else argv, read_beam_flags())
    args, beam_args = ap.parse_known_args(argv)
    check_args(kind, ap, args, beam_args)
    return args, beam_args


def precheck(kind: str) -> None:
    """Called by ``python -m pipeline.KIND`` before it imports Beam: --help and
    any bad argument end here, at once."""
    parse(kind)


__all__ = ["parse", "precheck", "m3w_parser", "pairs_parser", "videos_parser", "fail"]
