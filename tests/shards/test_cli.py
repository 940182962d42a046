"""Every `python -m` entry point: a mistake is one line naming the option or path
(exit 2), answered before Beam, torch or transformers are imported."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shards.cli import Parser, closest_option, unknown_option

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("apache_beam", "torch", "transformers", "cv2", "webdataset")


def run(module, *args, importtime=False):
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)


def imported(stderr: str) -> set[str]:
    """Top-level packages in python -X importtime's report."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in stderr.splitlines() if line.startswith("import time:") and "|" in line}


def last_line(stderr: str) -> str:
    lines = [x for x in stderr.splitlines() if not x.startswith("import time:")]
    assert len(lines) == 1, lines
    return lines[0]


CASES = [
    ("shards.validate", ["nope"], "nope: no such directory (an output folder of make m3w / pairs / videos)"),
    ("shards.validate", ["out", "--kinds", "m3w"], "unknown option --kinds; did you mean --kind?"),
    ("dedup.report", ["--matches", "nope.jsonl", "--out", "r"], "--matches nope.jsonl: no such file"),
    ("dedup.build_index", ["--eval", "x=y", "--out", "o", "--workers", "-1"], "--workers -1: expected an integer >= 0"),
    ("dedup.demo_evalset", ["--out", "o", "--frob"], "unknown option --frob"),
    ("faults", ["--no-kill"], "unknown option --no-kill; did you mean --no-kills?"),
    ("pipeline.sample", ["--out", "o", "--max-pages", "0"], "--max-pages 0: expected an integer >= 1"),
    ("pipeline.sample_videos", ["--frob"], "unknown option --frob"),  # before "--out is required"
    ("pipeline.m3w", ["--fetch-retry", "3"], "unknown option --fetch-retry; did you mean --fetch-retries?"),
    ("pipeline.m3w", ["--input", "tests/data/warc/*.warc.gz", "--output", "o", "--samples-per-shard", "0"],
     "--samples-per-shard 0: expected an integer >= 1"),
    ("pipeline.pairs", ["--list", "nope.csv", "--output", "o"], "--list 'nope.csv': matches no file"),
    ("pipeline.videos", ["--input", "tests/data/warc/*.warc.gz", "--output", "o", "--video-max-frames", "0"],
     "--video-max-frames 0: expected an integer >= 1"),
    ("train.train", ["--eval_every", "0"], "--eval_every 0: expected an integer >= 1"),
]


@pytest.mark.parametrize("module,args,message", CASES, ids=[f"{c[0]}:{c[2][:30]}" for c in CASES])
def test_argument_errors_are_one_line_and_import_nothing_heavy(module, args, message):
    r = run(module, *args, importtime=True)
    assert r.returncode == 2 and r.stdout == ""
    assert last_line(r.stderr) == f"python -m {module}: error: {message}"
    assert not imported(r.stderr) & set(HEAVY), sorted(imported(r.stderr) & set(HEAVY))


@pytest.mark.parametrize("module", ["shards.validate", "shards.browse", "dedup.report", "dedup.build_index",
                                    "dedup.demo_evalset", "faults", "pipeline.sample", "pipeline.sample_videos",
                                    "pipeline.m3w", "pipeline.pairs", "pipeline.videos", "train.train"])
def test_help_imports_nothing_heavy(module):
    r = run(module, "--help", importtime=True)
    assert r.returncode == 0 and "usage: " in r.stdout
    assert not imported(r.stderr) & set(HEAVY), sorted(imported(r.stderr) & set(HEAVY))


def test_parser_errors_are_one_line(capsys):
    ap = Parser(prog="prog")
    ap.add_argument("--alpha", type=int, required=True)
    with pytest.raises(SystemExit) as e:
        ap.parse_args(["--alpha", "1", "--alpah", "2"])
    assert e.value.code == 2
    assert capsys.readouterr().err == "prog: error: unknown option --alpah; did you mean --alpha?\n"
    with pytest.raises(SystemExit):
        ap.parse_args(["--alph", "1"])  # no abbreviations: a prefix is not the flag
    assert capsys.readouterr().err == "prog: error: unknown option --alph; did you mean --alpha?\n"
    with pytest.raises(SystemExit):
        ap.parse_args([])
    assert capsys.readouterr().err == "prog: error: the following arguments are required: --alpha\n"
    assert unknown_option(["x"], ["--alpha"]) == "unexpected argument 'x'"
    assert closest_option("--dedup_index", ["--dedup-index", "--index"]) == "--dedup-index"
    assert closest_option("--frobnicate", ["--job_name", "--fetch"]) is None
