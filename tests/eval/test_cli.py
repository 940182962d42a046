"""End to end: python -m eval on the bundled sample with a tiny checkpoint; two ranks == one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval import __main__ as eval_cli
from eval.sample import build
from model.build import build_flamingo
from model.config import FlamingoConfig
from train import checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    build(str(tmp / "data"))
    cfg = FlamingoConfig.tiny()
    model, _ = build_flamingo(cfg)
    run = tmp / "run"
    # a trainer checkpoint in a run directory, as `make train` leaves it
    checkpoint.save(str(run), 100, {"step": 100, "model_config": cfg.to_dict(),
                                    "weights": {n: p.detach().clone() for n, p in model.named_trainable_parameters()}},
                    keep=2)
    return tmp


def _run(args, env_extra=None, torchrun=0):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.update(env_extra or {})
    head = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"] \
        if torchrun else [sys.executable]
    return subprocess.run(head + ["-m", "eval", "--no-progress", "--threads", "1"] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


ARGS = ["--tasks", "textvqa,imagenet", "--shots", "0,1", "--limit", "3", "--batch-size", "1"]


def test_two_tasks_write_both_files_and_two_ranks_agree(setup):
    one = setup / "one"
    r = _run(["--checkpoint", str(setup / "run"), "--data", str(setup / "data"), "--out", str(one),
              "--trials", "2"] + ARGS)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((one / "results.json").read_text())
    md = (one / "results.md").read_text()
    assert res["checkpoint"].endswith("ckpt-00000100.pt")
    assert list(res["tasks"]) == ["textvqa", "imagenet"]
    tv = res["tasks"]["textvqa"]
    assert tv["queries"] == 3 and tv["shots"]["1"]["summary"]["accuracy"]["n"] == 2
    trial = tv["shots"]["0"]["trials"][0]
    assert trial["n"] == 3 and len(trial["predictions"]) == 3
    # zero-shot: two text-only demonstrations from the train split; 1-shot: one
    assert all(len(p["demos"]) == 2 for p in trial["predictions"].values())
    assert all(len(p["demos"]) == 1 for p in tv["shots"]["1"]["trials"][0]["predictions"].values())
    assert all(isinstance(p["output"], str) for p in trial["predictions"].values())
    inet = res["tasks"]["imagenet"]["shots"]["1"]["trials"][0]
    assert all(len(p["output"]) == 6 for p in inet["predictions"].values())   # a score per class
    assert "| shots | TextVQA (accuracy) | ImageNet (top-1) |" in md
    assert md.count("\n| 0 | ") == 1 and md.count("\n| 1 | ") == 1

    two = setup / "two"
    r2 = _run(["--checkpoint", str(setup / "run"), "--data", str(setup / "data"), "--out", str(two),
               "--trials", "2"] + ARGS, torchrun=2)
    assert r2.returncode == 0, r2.stderr[-3000:]
    res2 = json.loads((two / "results.json").read_text())
    assert res2["options"]["world"] == 2
    for task in ("textvqa", "imagenet"):
        for k in ("0", "1"):
            a, b = res["tasks"][task]["shots"][k], res2["tasks"][task]["shots"][k]
            for ta, tb in zip(a["trials"], b["trials"]):
                assert ta["metrics"] == pytest.approx(tb["metrics"])
                assert list(ta["predictions"]) == list(tb["predictions"])
                for u in ta["predictions"]:
                    pa, pb = ta["predictions"][u]["output"], tb["predictions"][u]["output"]
                    assert pa == pb if isinstance(pa, str) else pa == pytest.approx(pb, abs=1e-4)


def test_rices_demos_from_the_train_split_and_the_feature_cache(setup):
    out = setup / "rices"
    args = ["--checkpoint", str(setup / "run"), "--data", str(setup / "data"), "--out", str(out), "--no-progress",
            "--tasks", "imagenet", "--shots", "2", "--trials", "2", "--rices", "--limit", "3", "--threads", "1"]
    assert eval_cli.main(args) == 0
    cached = sorted((out / "cache").glob("rices-imagenet-train-*.npz"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    res = json.loads((out / "results.json").read_text())
    assert res["options"]["demos"] == "RICES"
    t0, t1 = res["tasks"]["imagenet"]["shots"]["2"]["trials"]
    for u, p in t0["predictions"].items():
        assert len(p["demos"]) == 2 and all(d.endswith("_train") for d in p["demos"])   # never the query split
        assert p["demos"] == t1["predictions"][u]["demos"]          # nearest neighbours: the same every trial
    assert eval_cli.main(args) == 0
    assert cached[0].stat().st_mtime_ns == stamp                    # the second run read the cached features
    again = json.loads((out / "results.json").read_text())["tasks"]["imagenet"]["shots"]["2"]["trials"][0]
    assert {u: p["demos"] for u, p in again["predictions"].items()} == {u: p["demos"] for u, p in t0["predictions"].items()}


def _error(args):
    with pytest.raises(SystemExit) as e:
        eval_cli.main(args)
    return str(e.value)


def test_missing_paths_are_one_line_errors(setup, tmp_path):
    run = str(setup / "run")
    assert _error(["--checkpoint", run, "--data", str(tmp_path), "--tasks", "coco"]) == \
        f"error: task coco: data folder not found: {tmp_path / 'coco'}"
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "dataset_coco.json").write_text('{"images": []}')
    assert _error(["--checkpoint", run, "--data", str(tmp_path), "--tasks", "coco"]) == \
        f"error: task coco: media folder not found: {tmp_path / 'coco' / 'media'}"
    assert _error(["--checkpoint", str(tmp_path / "nothing"), "--data", str(setup / "data"), "--tasks", "coco",
                   "--limit", "1"]) == f"error: --checkpoint {tmp_path / 'nothing'}: no such file or directory"
    assert "unknown task(s) ['nope']" in _error(["--checkpoint", run, "--data", str(setup / "data"),
                                                 "--tasks", "coco,nope"])
    assert _error(["--checkpoint", run, "--data", str(setup / "data"), "--tasks", "coco", "--shots", "4,x"]) == \
        "--shots '4,x': expected comma-separated integers"
