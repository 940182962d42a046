"""Checkpoints: everything `--resume` needs to continue bit for bit, in one file.

``ckpt-{step:08d}.pt`` holds the trainable weights, the optimiser state, the
step (the learning rate is a pure function of it: there is no scheduler
object to save), the RNG states (as tensors and plain values) and the data
position of every dataset. Only tensors and builtins go in, so it loads with
``torch.load(weights_only=True)``. Written to a temporary name, fsynced and
renamed, so a kill at any moment leaves either the old set or the new file;
only the last ``keep`` are kept.

Each file ends with a 48-byte trailer: ``FLCKSUM1``, the sha256 of everything
before it, and that length.  torch's zip reader finds its directory from the
end and ignores the trailer.  :func:`load` verifies it before unpickling, so a
truncated, emptied or partly zeroed file is a one-line :class:`CheckpointError`
naming the file, never torch's RuntimeError or a silent load; a file without a
trailer (written before checksums) is accepted only if the zip's own CRC-32s
all match.  :func:`load_latest` is what ``--resume`` (and evaluation) use: the
newest checkpoint that verifies, with a warning naming each damaged newer one.
"""
from __future__ import annotations

import glob
import hashlib
import os
import random
import re
import sys
import zipfile

import numpy as np
import torch

_NAME = re.compile(r"ckpt-(\d{8})\.pt$")
_TRAILER_MAGIC = b"FLCKSUM1"
_TRAILER_LEN = len(_TRAILER_MAGIC) + 32 + 8


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used; the message names the file."""


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


class _HashingFile:
    """Write-through file wrapper that hashes and counts what torch.save writes."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, b):
        self.sha.update(b)
        self.size += len(b)
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def save(out_dir: str, step: int, state: dict, keep: int) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = path_for(out_dir, step)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        hf = _HashingFile(f)
        torch.save(state, hf)
        f.write(_TRAILER_MAGIC + hf.sha.digest() + hf.size.to_bytes(8, "little"))
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


def verify(path: str) -> bool:
    """Raise CheckpointError (one line, naming ``path``) unless the file is intact.
    Returns True when a stored checksum matched, False for a trailer-less file
    whose zip CRC-32s matched (written before checksums were stored)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None
    if size == 0:
        raise CheckpointError(f"{path}: empty checkpoint file (0 bytes)")
    with open(path, "rb") as f:
        if size >= _TRAILER_LEN:
            f.seek(size - _TRAILER_LEN)
            trailer = f.read(_TRAILER_LEN)
        else:
            trailer = b""
        if trailer.startswith(_TRAILER_MAGIC):
            want, length = trailer[8:40], int.from_bytes(trailer[40:], "little")
            if length != size - _TRAILER_LEN:
                raise CheckpointError(f"{path}: {size - _TRAILER_LEN} bytes before the checksum, "
                                      f"the checkpoint recorded {length}: truncated or damaged")
            f.seek(0)
            sha, left = hashlib.sha256(), length
            while left:
                block = f.read(min(left, 1 << 24))
                if not block:
                    raise CheckpointError(f"{path}: ends early while verifying: truncated")
                sha.update(block)
                left -= len(block)
            if sha.digest() != want:
                raise CheckpointError(f"{path}: sha256 {sha.hexdigest()[:16]}… does not match the "
                                      f"stored {want.hex()[:16]}…: the file is damaged")
            return True
    # No trailer: cut short (the trailer is the last thing written), damaged, or
    # written before checksums were stored; only the zip's own CRCs can tell.
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({size} bytes, no "
                              f"checksum trailer, not a readable zip: {e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (no checksum trailer; CRC-32 of "
                              f"member {bad} does not match)")
    return False


def load(path: str) -> dict:
    """The state in ``path``, verified first (CheckpointError names the file)."""
    if not verify(path):
        print(f"warning: {path} has no stored checksum (written by an older version); "
              "its zip CRC-32s match, loading it", file=sys.stderr)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # verified bytes that torch still cannot unpickle
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a loadable checkpoint ({type(e).__name__}: "
                              f"{first[:200]})") from None


def load_latest(out_dir: str) -> tuple[str | None, dict | None]:
    """(path, state) of the newest checkpoint in ``out_dir`` that verifies and
    loads, with a warning on stderr naming each damaged newer one; (None, None)
    when there is none at all; CheckpointError (naming every file) when all
    are damaged."""
    found = list_checkpoints(out_dir)
    bad: list[str] = []
    for path in reversed(found):
        try:
            state = load(path)
        except CheckpointError as e:
            bad.append(str(e))
            print(f"warning: {e}; trying the previous checkpoint", file=sys.stderr)
            continue
        if bad:
            print(f"warning: resuming from {path} instead of the damaged newer "
                  f"{len(bad)} checkpoint(s)", file=sys.stderr)
        return path, state
    if bad:
        raise CheckpointError(f"{out_dir}: no intact checkpoint ({'; '.join(bad)})")
    return None, None
