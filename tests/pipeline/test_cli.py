"""The jobs' command lines: unknown flags, bad values and paths are one-line
errors (exit 2) found before Beam is imported; the flag tables read without
importing (config dataclasses from source, Beam's flags, the language codes)
equal what they copy."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from pipeline import cli, options

ROOT = Path(__file__).resolve().parents[2]
WARCS = "tests/data/warc/*.warc.gz"


def run(kind, *args):
    return subprocess.run([sys.executable, "-m", f"pipeline.{kind}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def error(kind, message):
    return f"python -m pipeline.{kind}: error: {message}\n"


@pytest.mark.parametrize("kind,args,message", [
    ("m3w", ["--frobnicate", "3"], "unknown option --frobnicate"),
    ("m3w", ["--samples_per_shard", "3"], "unknown option --samples_per_shard; did you mean --samples-per-shard?"),
    ("m3w", ["--fetch-retry", "3"], "unknown option --fetch-retry; did you mean --fetch-retries?"),
    ("m3w", ["--direct_num_worker=2"], "unknown option --direct_num_worker; did you mean --direct_num_workers?"),
    ("m3w", ["--dask_workers", "2"],
     "option --dask_workers is the DaskRunner's; this job runs on DirectRunner (add --runner=DaskRunner)"),
    ("m3w", ["stray"], "unexpected argument 'stray'"),
    ("m3w", ["--samples-per-shard", "0"], "--samples-per-shard 0: expected an integer >= 1"),
    ("m3w", ["--fetch-timeout-s", "0"], "--fetch-timeout-s 0: expected a number > 0"),
    ("m3w", ["--image-encode-quality", "101"], "--image-encode-quality 101: expected an integer in [1, 100]"),
    ("m3w", ["--para-max-char-repetition", "1.5"],
     "--para-max-char-repetition 1.5: expected a number in [0, 1]"),
    ("m3w", ["--doc-min-images", "5", "--doc-max-images", "2"], "--doc-min-images 5 is above --doc-max-images 2"),
    ("m3w", ["--keep-dropped-max", "-1"], "--keep-dropped-max -1: expected an integer >= 0"),
    ("m3w", ["--languages", "english"],
     "--languages: 'english' is not a language code of the identifier (py3langid: ISO 639 codes); "
     "did you mean en (English)?"),
    ("m3w", ["--image-resize-mode", "squash"],
     "--image-resize-mode 'squash': expected one of no, keep_ratio, center_crop, border, keep_ratio_largest"),
    ("m3w", ["--dedup-action", "tagg"], "--dedup-action 'tagg': expected one of drop, tag (did you mean tag?)"),
    ("m3w", ["--dedup-index", "nope.npz"], "--dedup-index nope.npz: no such file (build it with make dedup-index)"),
    ("m3w", ["--samples-per-shard", "x"], "argument --samples-per-shard: invalid int value: 'x'"),
    ("pairs", ["--caption-pick", "best"], "--caption-pick 'best': expected one of first, all"),
    ("pairs", ["--caption-sources", "alt,caption"],
     "--caption-sources: unknown caption source 'caption' (expected some of alt, figcaption, title, context)"),
    ("pairs", ["--split", "align"], "--split 'align': expected NAME=SOURCE[,SOURCE...] (e.g. align=alt)"),
    ("pairs", ["--tar-max-member-bytes", "0"], "--tar-max-member-bytes 0: expected an integer >= 1"),
    ("videos", ["--video-fps", "0"], "--video-fps 0: expected a number > 0"),
    ("videos", ["--track-position", "middle"],
     "--track-position 'middle': expected one of first, after_figcaption, last"),
])
def test_bad_arguments_are_one_line_errors(kind, args, message, tmp_path):
    r = run(kind, "--input", WARCS, "--output", str(tmp_path / "out"), *args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", error(kind, message))
    assert not (tmp_path / "out").exists()


def test_missing_inputs_and_required_flags(tmp_path):
    r = run("m3w", "--input", "nope/*.warc.gz", "--output", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, error("m3w", "--input 'nope/*.warc.gz': matches no file"))
    r = run("m3w", "--output", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, error("m3w", "the following arguments are required: --input"))
    r = run("pairs", "--output", str(tmp_path))
    assert (r.returncode, r.stderr) == (2, error("pairs", "give at least one --input or --list"))
    f = tmp_path / "file"
    f.write_text("x")
    r = run("videos", "--input", WARCS, "--output", str(f))
    assert (r.returncode, r.stderr) == (2, error("videos", f"--output {f}: is a file; expected a directory"))


def test_beam_flags_of_the_runner_are_accepted():
    ap = cli.m3w_parser()
    base = ["--input", WARCS, "--output", "o"]
    for beam in (["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode", "in_memory"],
                 ["--runner", "DaskRunner", "--dask_workers", "3", "--dask_client_address=tcp://h:1"],
                 ["--project", "P", "--region=R", "--temp_location=gs://b/t", "--save_main_session",
                  "--experiments", "a", "--experiments=b"]):
        args, rest = cli.parse("m3w", base + beam)
        assert rest == beam and args.input == [WARCS]
    assert ap.prog == "python -m pipeline.m3w"


def test_an_input_flag_takes_every_file_a_shell_glob_expands_to(monkeypatch):
    files = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(WARCS))
    assert len(files) >= 2
    monkeypatch.chdir(ROOT)
    args, rest = cli.parse("m3w", ["--input", *files[1:], "--input", files[0], "--output", "o"])
    assert (args.input, rest) == (files[1:] + files[:1], [])
    args, _ = cli.parse("pairs", ["--input", *files, "--output", "o"])
    assert args.input == files


@pytest.mark.parametrize("kind", ["m3w", "pairs", "videos"])
def test_help_and_errors_do_not_import_beam(kind):
    code = (f"import sys\nfrom pipeline import cli\ntry:\n    cli.parse({kind!r}, ['--frobnicate'])\n"
            "except SystemExit as e:\n    assert e.code == 2\n"
            f"cli.PARSERS[{kind!r}]().format_help()\n"
            "print(sorted(m for m in ('apache_beam', 'torch', 'cv2', 'transformers') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout == "[]\n", r.stderr
    r = run(kind, "--help")
    assert r.returncode == 0 and "--samples-per-shard" in r.stdout and r.stderr == ""


# ---------------------------------------------------------------- the copies are faithful


def _fields(cls):
    hints = typing.get_type_hints(cls)
    return [(f.name, hints[f.name], f.default) for f in dataclasses.fields(cls)]


def test_light_dataclasses_equal_the_real_ones():
    from pipeline.fetch import FetchConfig
    from pipeline.images import ImageConfig
    from pipeline.lists import ListConfig
    from pipeline.m3w import DedupConfig
    from pipeline.video_frames import VideoConfig
    from pipeline.videos import TRACK_POSITIONS, VIDEO_CAPTIONS, VIDEO_FETCH, TrackConfig

    for real in (FetchConfig, ImageConfig, ListConfig, DedupConfig, VideoConfig, TrackConfig):
        assert _fields(cli.light(real.__name__)) == _fields(real), real.__name__
    assert cli.light("TRACK_POSITIONS") == TRACK_POSITIONS
    fetch, captions = cli.light("VIDEO_FETCH"), cli.light("VIDEO_CAPTIONS")
    assert {k: getattr(VIDEO_FETCH, k) for k in fetch} == fetch and fetch["max_bytes"] == 200_000_000
    assert {k: getattr(VIDEO_CAPTIONS, k) for k in captions} == captions == {"min_words": 2, "max_words": 64}


def test_light_dataclass_reads_constant_arithmetic(tmp_path, monkeypatch):
    (tmp_path / "lightmod.py").write_text(
        "import apache_beam\nfrom dataclasses import dataclass\n\n@dataclass(frozen=True)\nclass C:\n"
        "    a: int = 4096 * 4096\n    b: tuple[str, ...] = ('x',)\n    c: str | None = None\n"
        "    d: float = 20 << 2\n\n    def f(self):\n        return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    C = options.light_dataclass("lightmod", "C")
    assert _fields(C) == [("a", int, 16777216), ("b", tuple[str, ...], ("x",)), ("c", str | None, None),
                          ("d", float, 80)]
    assert "lightmod" not in sys.modules


def test_resize_modes_are_img2dataset_s():
    from img2dataset.resizer import ResizeMode

    assert sorted(cli.RESIZE_MODES) == sorted(ResizeMode.__members__)


def test_beam_flag_table_is_the_pinned_beam_s():
    from importlib import metadata

    import json

    with open(options.BEAM_FLAGS_FILE, encoding="utf-8") as f:
        data = json.load(f)
    assert data["apache_beam"] == metadata.version("apache-beam")
    assert data["flags"] == options.beam_flag_table(), "run: python -m pipeline.options --write-snapshots"
    assert data["flags"]["--runner"] == {"nargs": 1, "runner": "*"}
    assert data["flags"]["--save_main_session"] == {"nargs": 0, "runner": "*"}


def test_language_codes_are_the_identifier_s():
    labels = options.read_langid_labels()
    assert labels == options.langid_label_table(), "run: python -m pipeline.options --write-snapshots"
    assert labels["en"] == "English" and labels["fr"] == "French" and len(labels) > 90
    assert options.unknown_language("en") is None
    assert options.unknown_language("French") == ("'French' is not a language code of the identifier "
                                                  "(py3langid: ISO 639 codes); did you mean fr (French)?")


def test_every_numeric_flag_has_a_range():
    """Each numeric option either has its range in cli.RANGES or must be >= 0;
    a new numeric flag shows up here, so its range is a decision, not an accident."""
    seen = {a.dest for kind in cli.PARSERS for a in cli.numeric_actions(cli.PARSERS[kind]())}
    assert set(cli.RANGES) <= seen
    at_least_zero = sorted(seen - set(cli.RANGES))
    assert at_least_zero == sorted([
        "para_min_words", "image_min_declared_side", "doc_min_images", "doc_min_words",
        "image_min_side", "fetch_retries", "fetch_backoff_s", "fetch_max_redirects", "fetch_per_host_rps",
        "fetch_max_retry_after_s", "dedup_max_docs_per_image", "keep_dropped_max",
        "caption_min_words", "caption_context_max_words", "caption_max_per_host"])
    # The defaults themselves pass.
    for kind in cli.PARSERS:
        args = ["--input", WARCS, "--output", "o"]
        cli.parse(kind, args)


def test_the_parsers_keep_the_job_modules_parser_name():
    env = dict(os.environ)
    code = ("from pipeline.m3w import parser as a\nfrom pipeline.pairs import parser as b\n"
            "from pipeline.videos import parser as c\n"
            "print(a().prog, b().prog, c().prog)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.stdout.split() == ["python", "-m", "pipeline.m3w", "python", "-m", "pipeline.pairs",
                                "python", "-m", "pipeline.videos"], r.stderr
