"""The model benchmark's code paths run (tiny sizes; the figures are not checked)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_model.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_model", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_openflamingo_reimplementation_computes_what_ours_does(bench, capsys):
    # bench_modules exits if the two implementations' outputs differ.
    bench.bench_modules("tiny", reps=1)
    out = capsys.readouterr().out
    assert out.count("outputs equal") == 2 and "speed-up ours vs" in out


def test_tiny_step_and_gpu_code_path_run_on_cpu(bench, capsys):
    bench.bench_tiny(reps=1)
    bench.bench_large("cpu", reps=1, smoke=True)
    out = capsys.readouterr().out
    assert "ratio flamingo / LM alone" in out and "tokens/s" in out
