"""`python -m train.train`: every flag described, every bad value or path a
one-line error (exit 2) naming it, found before torch is imported."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.helpers import write_m3w
from train.config import SCALAR_FLAGS, KIND_FLAGS, parse_args

ROOT = Path(__file__).resolve().parents[2]
PROG = "python -m train.train"


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "train.train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_m3w(root / "m3w", n_docs=4, images_per_doc=1, sentences=1)
    return root / "m3w"


def yaml_file(tmp_path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_help_describes_every_flag():
    from train.config import parser

    r = run("--help")
    assert r.returncode == 0 and r.stderr == ""
    actions = [a for a in parser()._actions if a.option_strings]
    names = {s for a in actions for s in a.option_strings}
    assert {"--config", "--resume", "--no_progress", "--gradient_checkpointing", "--shards"} <= names
    assert {f"--{n}" for n in (*SCALAR_FLAGS, *KIND_FLAGS)} <= names
    for a in actions:
        assert a.help and len(a.help) > 10, a.option_strings
        assert a.option_strings[-1] in r.stdout
    text = " ".join(r.stdout.split())
    assert "--decay {cosine,linear,constant} learning-rate decay after the warm-up (default: 'cosine', or the config's)" in text
    assert "--eval_every EVAL_EVERY held-out loss every N updates (default: 100, or the config's)" in text


@pytest.mark.parametrize("args,message", [
    (["--eval_every", "0"], "--eval_every 0: expected an integer >= 1"),
    (["--log_every", "0"], "--log_every 0: expected an integer >= 1"),
    (["--ckpt_every", "0"], "--ckpt_every 0: expected an integer >= 1"),
    (["--steps", "0"], "--steps 0: expected an integer >= 1"),
    (["--lr", "0"], "--lr 0.0: expected a number > 0"),
    (["--holdout", "1"], "--holdout 1.0: expected a number in [0, 1)"),
    (["--m3w_seq_len", "1"], "--m3w_seq_len 1: expected an integer >= 2"),
    (["--decay", "cosinus"],
     "--decay 'cosinus': expected one of cosine, linear, constant (did you mean cosine?)"),
    (["--device", "gpu"], "--device 'gpu': expected one of auto, cpu, cuda"),
    (["--config", "nope.yaml"], "--config nope.yaml: no such config file"),
    (["--frobnicate", "3"], "unknown option --frobnicate"),
    (["--eval-every", "3"], "unknown option --eval-every; did you mean --eval_every?"),
    (["--steps", "x"], "argument --steps: invalid int value: 'x'"),
])
def test_bad_flags_are_one_line_errors(args, message, shards):
    r = run("--shards", str(shards), *args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"{PROG}: error: {message}\n")


def test_config_file_errors_name_the_file_and_key(tmp_path, shards):
    cases = [
        ("steps: 10\nlog_evry: 5\n", "unknown config key 'log_evry'; did you mean log_every?"),
        ("steps: [1\n", "not valid YAML (line 2): expected ',' or ']', but got '<stream end>'"),
        ("lr: 1e-3\n", "lr '1e-3': expected a number > 0 (YAML reads 1e-3 as text: write it with a dot, "
                       "e.g. 1.0e-3)"),
        ("model: {lm: /nonexistent/opt-1.3b}\n",
         "model.lm '/nonexistent/opt-1.3b': no such directory (a local folder written by save_pretrained; "
         "nothing is downloaded) or one of tiny-gpt2, tiny-opt, tiny-llama, tiny-gemma"),
        ("model: {preset: tiny, lm: tiny-gpt2, num_latens: 8}\n",
         "model: unknown field 'num_latens'; did you mean num_latents?"),
        ("datasets: [{name: m3w, kind: m3w, shards: '', weight: 1.0, batch_size: 2}]\n",
         "datasets[0] ('m3w'): shards is empty (a folder written by make m3w, a brace pattern or "
         "a list)"),
        ("datasets: [{name: m3w, kind: m3w, shards: x, weight: 0, batch_size: 2}]\n",
         "datasets: every dataset has weight 0, so nothing would train"),
        ("datasets: [{name: m3w, kind: m3w, shards: x, weight: 1, batch_size: 0}]\n",
         "datasets[0] ('m3w'): batch_size 0: expected an integer >= 1"),
        ("datasets: [{name: m3w, kind: docs, shards: x, weight: 1, batch_size: 2}]\n",
         "datasets[0] ('m3w'): kind 'docs': expected one of m3w, pairs, videos"),
        ("datasets: [{name: m3w, kind: m3w, shards: x, weight: 1, batch_size: 2, max_image: 3}]\n",
         "datasets[0] ('m3w'): unknown key 'max_image'; did you mean max_images?"),
    ]
    for text, message in cases:
        path = yaml_file(tmp_path, text)
        shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
        prefix = "" if message.startswith(("unknown config", "not valid")) else f"{shown}: "
        with pytest.raises(SystemExit) as e:
            parse_args(["--config", path])
        assert e.value.code == 2
        r = run("--config", path)
        expected = (f"--config {path}: {message}" if not prefix else f"{prefix}{message}")
        assert (r.returncode, r.stderr) == (2, f"{PROG}: error: {expected}\n"), text


def test_empty_and_missing_shard_folders(tmp_path):
    from shards.writer import write_manifest

    (tmp_path / "empty").mkdir()
    write_manifest(str(tmp_path / "empty"), "m3w", "run", {}, {})
    (tmp_path / "plain").mkdir()
    for path, message in [
        (tmp_path / "empty", f"'{tmp_path}/empty' is empty: its manifest lists no shards (the job kept no "
                             "samples; see its stats.json)"),
        (tmp_path / "plain", f"'{tmp_path}/plain' has no manifest.json (expected a folder written by the "
                             "m3w job, a .tar path or a brace pattern)"),
        (tmp_path / "nope", f"no shards at '{tmp_path}/nope'. Run `make m3w` to build them from the "
                            "bundled sample."),
    ]:
        r = run("--shards", str(path))
        assert (r.returncode, r.stderr) == (2, f"{PROG}: error: dataset 'm3w': {message}\n")


def test_warnings_for_steps_below_warmup_and_a_weight_of_zero(tmp_path, shards):
    path = yaml_file(tmp_path, f"""
datasets:
  - {{name: m3w, kind: m3w, shards: {shards}, weight: 1.0, batch_size: 2}}
  - {{name: spare, kind: m3w, shards: {shards}, weight: 0, batch_size: 2}}
warmup: 20
lr: 1.0e-3
""")
    shown = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    cfg, _, warnings = parse_args(["--config", path, "--steps", "5"])
    assert cfg.steps == 5
    assert warnings == [
        f"--steps 5 is below the warm-up ({shown}: warmup 20): the learning rate only reaches 0.00025 "
        "of its peak 0.001 (lower the warm-up, or train longer)",
        f"{shown}: datasets[1] ('spare') has weight 0: its loss is computed every update but trains nothing "
        "(give it a weight > 0, or remove it)"]
    _, _, warnings = parse_args(["--config", path, "--mixture", "sample"])
    assert warnings == [f"{shown}: datasets[1] ('spare') has weight 0: it is never drawn (give it a "
                        "weight > 0, or remove it)"]


def test_device_cuda_without_a_cuda_build_is_one_line(shards):
    import torch

    if torch.backends.cuda.is_built():
        pytest.skip("this torch is built with CUDA")
    message = (f"--device cuda: this torch ({torch.__version__}) is built without CUDA; install the CUDA "
               "build of the same version (make venv TORCH=cu128, see README: GPUs) or use --device cpu")
    r = run("--shards", str(shards), "--device", "cuda")
    assert (r.returncode, r.stderr) == (2, f"{PROG}: error: {message}\n")
    # The same check at run time (train() called directly), from torch itself.
    from train.train import check_device

    with pytest.raises(SystemExit) as e:
        check_device("cuda", "--device")
    assert e.value.code == 2


def test_arguments_are_checked_without_importing_torch(shards):
    code = ("import sys\nfrom train.config import parse_args\n"
            "try:\n    parse_args(['--eval_every', '0'])\nexcept SystemExit:\n    pass\n"
            f"parse_args(['--shards', {str(shards)!r}])\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'apache_beam') if m in sys.modules)\n"
            "print(heavy)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout == "[]\n", r.stderr
