"""Checkpoints: everything `--resume` needs to continue bit for bit, in one file.

``ckpt-{step:08d}.pt`` holds the trainable weights, the optimiser state, the
step (the learning rate is a pure function of it: there is no scheduler
object to save), the RNG states (as tensors and plain values) and the data
position of every dataset. Only tensors and builtins go in, so it loads with
``torch.load(weights_only=True)``. Written to a temporary name, fsynced and
renamed, so a kill at any moment leaves either the old set or the new file;
only the last ``keep`` are kept.
"""
from __future__ import annotations

import glob
import os
import random
import re

import numpy as np
import torch

_NAME = re.compile(r"ckpt-(\d{8})\.pt$")


def rng_state() -> dict:
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def path_for(out_dir: str, step: int) -> str:
    return os.path.join(out_dir, f"ckpt-{step:08d}.pt")


def list_checkpoints(out_dir: str) -> list[str]:
    """Complete checkpoints in out_dir, oldest first (temporary files never match)."""
    found = [p for p in glob.glob(os.path.join(out_dir, "ckpt-*.pt")) if _NAME.search(p)]
    return sorted(found)


def latest(out_dir: str) -> str | None:
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def save(out_dir: str, step: int, state: dict, keep: int) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = path_for(out_dir, step)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(out_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    for old in list_checkpoints(out_dir)[:-keep] if keep > 0 else []:
        os.remove(old)
    return path


def load(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
