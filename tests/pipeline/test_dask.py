"""The M3W job on Beam's DaskRunner (pipeline.runners.DaskRunner, a local
dask.distributed cluster on 127.0.0.1): same shards, byte for byte, and the same
counters as the DirectRunner; a clean terminal."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.runners import DASK_RUNNER, resolve_runner_args

ROOT = Path(__file__).resolve().parents[2]


def test_runner_alias_and_scheduler_from_env(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER", "tcp://127.0.0.1:8786")
    assert resolve_runner_args(["--runner=DaskRunner"]) == [
        f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://127.0.0.1:8786"]
    assert resolve_runner_args(["--runner", "DaskRunner", "--dask_client_address=tcp://h:1"]) == [
        f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://h:1"]
    assert resolve_runner_args(["--runner=DirectRunner"]) == ["--runner=DirectRunner"]


def _cli(inp, out, *runner):
    cmd = [sys.executable, "-m", "pipeline.m3w", "--input", str(inp), "--output", str(out),
           "--no-fetch", "--samples-per-shard", "2", *runner]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER"}
    p = subprocess.run(cmd, cwd=ROOT, env=dict(env, PYTHONHASHSEED="0"), capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@pytest.mark.slow   # ~45 s; `make test` runs it with CI set (pyproject.toml markers)
def test_dask_shards_byte_identical_to_direct_and_terminal_clean(m3w_reference, tmp_path):
    # the DirectRunner's run (2 workers) of the same job on the same sample (tests/pipeline/conftest.py)
    sample, d = m3w_reference
    rc, out_k, err_k = _cli(sample, tmp_path / "dask", "--runner=DaskRunner")
    assert rc == 0, (out_k + err_k)[-3000:]
    k = tmp_path / "dask"
    tars = sorted(p.name for p in d.glob("*.tar"))
    assert len(tars) >= 3 and tars == sorted(p.name for p in k.glob("*.tar"))
    for name in tars:
        assert (d / name).read_bytes() == (k / name).read_bytes(), name
    # the counters are collected on Dask too, and equal
    assert (d / "stats.json").read_bytes() == (k / "stats.json").read_bytes()
    assert "== m3w done in" in out_k and "records read" in out_k
    terminal = out_k + err_k
    assert not re.search(r"distributed\.|Traceback|CommClosedError|[Nn]anny|WARNING|ERROR", terminal), terminal
    assert "distributed.scheduler" in (k / "m3w.log").read_text()   # the noise went to the log
