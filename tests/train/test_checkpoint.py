"""Checkpoints carry a checksum: a damaged file is a one-line error naming it,
and --resume falls back to the newest intact checkpoint with a warning."""
from __future__ import annotations

import os
import zipfile

import pytest
import torch

from tests.train.helpers import tiny_config, write_pairs
from train import checkpoint
from train.checkpoint import CheckpointError
from train.train import train


def _state(step):
    g = torch.Generator().manual_seed(step)
    return {"step": step, "weights": {"w": torch.randn(64, 64, generator=g)}, "note": "x" * 100}


def _two(tmp_path):
    d = str(tmp_path / "run")
    checkpoint.save(d, 2, _state(2), keep=3)
    checkpoint.save(d, 4, _state(4), keep=3)
    return d, checkpoint.path_for(d, 2), checkpoint.path_for(d, 4)


def _truncate(p):
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])


def _empty(p):
    open(p, "wb").close()


def _zero64(p):  # 64 bytes zeroed in the middle of the tensor data
    with open(p, "r+b") as f:
        f.seek(os.path.getsize(p) // 2)
        f.write(b"\0" * 64)


def _only_zeros(p):
    open(p, "wb").write(b"\0" * 64)


DAMAGE = {
    "truncated": (_truncate, r"ckpt-00000004\.pt: truncated or damaged checkpoint \(\d+ bytes, no checksum "
                             r"trailer, not a readable zip: .*\)"),
    "empty": (_empty, r"ckpt-00000004\.pt: empty checkpoint file \(0 bytes\)"),
    "zeroed": (_zero64, r"ckpt-00000004\.pt: sha256 [0-9a-f]{16}… does not match the stored "
                        r"[0-9a-f]{16}…: the file is damaged"),
    "64 zero bytes": (_only_zeros, r"ckpt-00000004\.pt: truncated or damaged checkpoint \(64 bytes"),
}


def test_checkpoint_round_trips_with_its_checksum(tmp_path):
    d, p2, p4 = _two(tmp_path)
    assert checkpoint.verify(p4) is True
    state = checkpoint.load(p4)
    assert state["step"] == 4 and torch.equal(state["weights"]["w"], _state(4)["weights"]["w"])
    assert zipfile.is_zipfile(p4)          # still an ordinary torch file to other tools
    assert torch.load(p4, weights_only=True)["step"] == 4


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoint_is_one_line_error_naming_the_file(tmp_path, kind):
    d, p2, p4 = _two(tmp_path)
    damage, pattern = DAMAGE[kind]
    damage(p4)
    with pytest.raises(CheckpointError, match=pattern) as e:
        checkpoint.load(p4)
    assert "\n" not in str(e.value) and str(e.value).startswith(p4)


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_latest_damaged_falls_back_to_the_newest_intact(tmp_path, capsys, kind):
    d, p2, p4 = _two(tmp_path)
    DAMAGE[kind][0](p4)
    path, state = checkpoint.load_latest(d)
    assert path == p2 and state["step"] == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith(f"warning: {p4}: ")
    assert err[0].endswith("; trying the previous checkpoint")
    assert err[1] == f"warning: resuming from {p2} instead of the damaged newer 1 checkpoint(s)"


def test_all_damaged_is_one_error_naming_each(tmp_path):
    d, p2, p4 = _two(tmp_path)
    _zero64(p2)
    _empty(p4)
    with pytest.raises(CheckpointError) as e:
        checkpoint.load_latest(d)
    msg = str(e.value)
    assert msg.startswith(f"{d}: no intact checkpoint (") and p2 in msg and p4 in msg and "\n" not in msg


def test_checkpoint_without_trailer_is_judged_by_its_zip_crcs(tmp_path, capsys):
    old = str(tmp_path / "ckpt-00000001.pt")
    torch.save(_state(1), old)             # as written before checksums were stored
    assert checkpoint.load(old)["step"] == 1
    assert "has no stored checksum" in capsys.readouterr().err
    with zipfile.ZipFile(old) as z:        # flip bytes inside a stored tensor record
        info = max(z.infolist(), key=lambda i: i.file_size)
    with open(old, "r+b") as f:
        f.seek(info.header_offset + 30 + len(info.filename) + len(info.extra) + 100)
        f.write(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=r"damaged checkpoint \(no checksum trailer; CRC-32 of member"):
        checkpoint.load(old)


def test_resume_skips_a_truncated_latest_checkpoint(tmp_path, capsys):
    write_pairs(tmp_path / "pairs", n=12)
    ds = [{"name": "pairs", "kind": "pairs", "shards": str(tmp_path / "pairs"), "weight": 1.0,
           "batch_size": 2, "seq_len": 32}]
    cfg = tiny_config(tmp_path / "run", ds, steps=4, ckpt_every=2, keep_ckpts=3)
    train(cfg)
    latest = checkpoint.path_for(str(tmp_path / "run"), 4)
    _truncate(latest)
    capsys.readouterr()
    import dataclasses

    res = train(dataclasses.replace(cfg, steps=5), resume=True)
    assert res["local_losses"][0]["step"] == 3          # continued after step 2, not 4, not 0
    err = capsys.readouterr().err
    assert f"warning: {latest}: truncated or damaged checkpoint" in err
    assert f"resuming from {checkpoint.path_for(str(tmp_path / 'run'), 2)}" in err
