"""A run SIGKILLed after a checkpoint and resumed logs the same per-step losses as one never stopped."""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time

import pytest

from tests.train.helpers import tiny_config, write_m3w, write_pairs
from train import checkpoint
from train.log import read_log
from train.train import train

STEPS = 18


def run_to_completion(cfg, resume: bool = False) -> None:
    train(cfg, resume=resume)


def per_step_losses(out_dir) -> list[tuple[int, dict]]:
    return [(r["step"], r["loss"]) for r in read_log(os.path.join(out_dir, "log.jsonl")) if r["kind"] == "train"]


@pytest.mark.slow   # ~27 s; `make test` runs it with CI set (pyproject.toml markers)
def test_sigkill_then_resume_gives_identical_losses(tmp_path):
    write_m3w(tmp_path / "m3w", n_docs=10, images_per_doc=2, sentences=2)
    write_pairs(tmp_path / "pairs", n=12, corrupt={5})
    datasets = [{"name": "m3w", "kind": "m3w", "shards": str(tmp_path / "m3w"), "weight": 2.0,
                 "batch_size": 2, "seq_len": 64},
                {"name": "pairs", "kind": "pairs", "shards": str(tmp_path / "pairs"), "weight": 1.0,
                 "batch_size": 2, "seq_len": 32}]
    # Two workers per dataset and the sample mixture: resuming must restore which
    # worker's batch comes next and each worker's place in its shuffled stream.
    cfg = tiny_config(tmp_path / "killed", datasets, steps=STEPS, mixture="sample", num_workers=2,
                      ckpt_every=3, keep_ckpts=2, eval_every=6,
                      eval_shards=str(tmp_path / "pairs"))
    # The run to kill is a spawned child (a fork of a process whose OpenMP pool
    # is running can hang).
    proc = multiprocessing.get_context("spawn").Process(target=run_to_completion, args=(cfg,))
    proc.start()
    target = checkpoint.path_for(str(tmp_path / "killed"), 6)
    deadline = time.monotonic() + 90
    try:
        while not os.path.exists(target):
            assert proc.exitcode is None, f"training child died with {proc.exitcode}"
            assert time.monotonic() < deadline, "no checkpoint at step 6 within 90 s"
            time.sleep(0.01)
    finally:
        if proc.exitcode is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    assert proc.exitcode == -signal.SIGKILL
    resumed_from = int(checkpoint.latest(str(tmp_path / "killed"))[-11:-3])
    assert 6 <= resumed_from < STEPS  # killed mid-run, not after the end
    assert max(s for s, _ in per_step_losses(tmp_path / "killed")) < STEPS

    resumed = train(cfg, resume=True)
    assert resumed["local_losses"][0]["step"] == resumed_from + 1  # it continued, it did not restart
    train(dataclasses.replace(cfg, out_dir=str(tmp_path / "ref")))

    got, want = per_step_losses(tmp_path / "killed"), per_step_losses(tmp_path / "ref")
    assert [s for s, _ in want] == list(range(1, STEPS + 1))
    assert got == want  # exact float equality, every step
    assert {n for _, loss in want for n in loss} == {"m3w", "pairs"}
    evals = lambda d: [(r["step"], r["eval_loss"]) for r in read_log(str(d / "log.jsonl")) if r["kind"] == "eval"]
    assert evals(tmp_path / "killed") == evals(tmp_path / "ref") != []
