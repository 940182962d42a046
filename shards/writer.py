"""Shard writing: deterministic tars, written atomically, with a manifest.

A shard's bytes depend only on its samples: members are sorted by key, tar
headers carry a fixed mtime/owner/mode, json is written with sorted keys.
Each tar is written to a temporary name and renamed into place, and a
``NAME_stats.json`` sidecar is written after the rename, so a sidecar's
presence means its shard is complete.  A rerun over the same input finds the
sidecar, checks the shard's recorded digest of sample keys, and skips it.

All I/O goes through Beam's FileSystems, so output can be local, gs:// or s3://.

Tars are written by webdataset's TarWriter, loaded by :func:`_tar_writer` from
webdataset's writer.py (and the one sibling it imports, gopen.py) without running
the package's __init__: that __init__ imports its whole dataset API and through it
torch (~3 s of CPU in every Beam worker process that writes a shard), while the
writer needs only the standard library and numpy. They are loaded under a private
package name, so an ordinary ``import webdataset`` elsewhere is untouched; where
webdataset is already imported, its own TarWriter is used. Same code, same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from apache_beam.io.filesystems import FileSystems

from .modload import load_module_file
from .schema import shard_name, validate_sample

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
STATS_SUFFIX = "_stats.json"
_MTIME = 946684800  # 2000-01-01: fixed so a shard's bytes depend on content only


_WDS_PRIVATE = "shards._webdataset"


@lru_cache(maxsize=1)
def _tar_writer():
    """webdataset's TarWriter class (see the module docstring)."""
    if "webdataset" in sys.modules:
        return sys.modules["webdataset"].TarWriter
    return load_module_file(_WDS_PRIVATE + ".writer", "webdataset", "writer.py",
                            package_as=_WDS_PRIVATE).TarWriter


def dumps(obj) -> bytes:
    """The one json encoding used in shards and manifests (stable bytes)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def join(directory: str, name: str) -> str:
    return FileSystems.join(directory, name)


def _member_bytes(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return dumps(value)


def encode_sample(sample: dict) -> dict:
    """Every member as bytes (json with :func:`dumps`), for TarWriter(encoder=False)."""
    return {k: (v if k == "__key__" else _member_bytes(v)) for k, v in sample.items()}


def keys_digest(keys: Iterable[str]) -> str:
    h = hashlib.sha256()
    for k in sorted(keys):
        h.update(k.encode())
        h.update(b"\n")
    return h.hexdigest()


class _HashingWriter(io.RawIOBase):
    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self):
        return True

    def write(self, b):
        self.sha.update(b)
        self.size += len(b)
        self.raw.write(b)
        return len(b)


@dataclass
class ShardInfo:
    name: str
    count: int
    bytes: int
    sha256: str
    keys_sha256: str
    run_id: str
    skipped: bool = False

    def to_json(self) -> dict:
        return {"name": self.name, "count": self.count, "bytes": self.bytes,
                "sha256": self.sha256, "keys_sha256": self.keys_sha256, "run_id": self.run_id}


def read_stats(path: str) -> dict | None:
    try:
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            return json.loads(fh.read())
    except Exception:
        return None


def _discard(tmp: str) -> None:
    """Remove a temporary file after a failed write (readers never see it)."""
    try:
        FileSystems.delete([tmp])
    except Exception:
        pass


def write_bytes_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with FileSystems.create(tmp, compression_type="uncompressed") as fh:
            fh.write(data)
    except BaseException:
        _discard(tmp)
        raise
    FileSystems.rename([tmp], [path])


def write_shard(out_dir: str, kind: str, index: int, samples: list[dict],
                run_id: str, validate: bool = True) -> ShardInfo:
    """Write one shard (samples sorted by key) unless an identical one is there."""
    name = shard_name(kind, index)
    path = join(out_dir, name)
    stats_path = path[: -len(".tar")] + STATS_SUFFIX
    samples = sorted(samples, key=lambda s: s["__key__"])
    digest = keys_digest(s["__key__"] for s in samples)
    prior = read_stats(stats_path)
    if (prior and prior.get("keys_sha256") == digest and prior.get("run_id") == run_id
            and FileSystems.exists(path)):
        return ShardInfo(name, prior["count"], prior["bytes"], prior["sha256"], digest,
                         run_id, skipped=True)
    if validate:
        for s in samples:
            validate_sample(kind, s)
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    try:
        with FileSystems.create(tmp, compression_type="uncompressed") as raw:
            hw = _HashingWriter(raw)
            buf = io.BufferedWriter(hw, buffer_size=1 << 20)
            # webdataset's writer with a fixed mtime gives reproducible tars.
            tw = _tar_writer()(buf, encoder=False, mtime=_MTIME, mode=0o444)
            for s in samples:
                tw.write(encode_sample(s))
            tw.tarstream.close()  # TarWriter.close() would also close our stream
            buf.flush()
    except BaseException:
        _discard(tmp)
        raise
    FileSystems.rename([tmp], [path])
    info = ShardInfo(name, len(samples), hw.size, hw.sha.hexdigest(), digest, run_id)
    write_bytes_atomic(stats_path, dumps(info.to_json()))
    return info


def shard_files(out_dir: str, kind: str | None = None) -> list[str]:
    """Names of the shard tars in ``out_dir`` (``{kind}-NNNNNN.tar``; any kind if None)."""
    pat = re.compile(rf"^{re.escape(kind) if kind else '[a-z0-9]+'}-\d{{6}}\.tar$")
    names = []
    for r in FileSystems.match([join(out_dir, f"{kind or '*'}-*.tar")]):
        for m in r.metadata_list:
            name = m.path.rstrip("/").rsplit("/", 1)[-1]
            if pat.match(name):
                names.append(name)
    return sorted(names)


def write_manifest(out_dir: str, kind: str, run_id: str, options: dict, stats: dict) -> dict:
    """Collect this run's shard sidecars into ``manifest.json`` (written last,
    atomically: a manifest never lists a missing or partial shard), then remove
    the ``{kind}-*.tar`` shards it does not list (an earlier run with more
    shards left them; a ``*.tar`` glob would read them) with their sidecars."""
    pattern = join(out_dir, f"{kind}-*{STATS_SUFFIX}")
    shards = []
    for r in FileSystems.match([pattern]):
        for m in r.metadata_list:
            st = read_stats(m.path)
            if st and st.get("run_id") == run_id and FileSystems.exists(join(out_dir, st["name"])):
                shards.append(st)
    shards.sort(key=lambda s: s["name"])
    listed = {s["name"] for s in shards}
    stale = [n for n in shard_files(out_dir, kind) if n not in listed]
    manifest = {
        "kind": kind,
        "run_id": run_id,
        "shards": shards,
        "num_shards": len(shards),
        "num_samples": sum(s["count"] for s in shards),
        "bytes": sum(s["bytes"] for s in shards),
        "options": options,
        "stats": stats,
    }
    if stale:
        manifest["stale_shards_removed"] = stale
    write_bytes_atomic(join(out_dir, MANIFEST), dumps(manifest) + b"\n")
    for name in stale:  # after the manifest: a kill in between leaves them for validate to name
        paths = [join(out_dir, name), join(out_dir, name[: -len(".tar")] + STATS_SUFFIX)]
        FileSystems.delete([p for p in paths if FileSystems.exists(p)])
        log.warning("%s: removed %s, a shard of an earlier run that this run's manifest does "
                    "not list", out_dir, name)
    return manifest


def read_manifest(out_dir: str) -> dict:
    path = join(out_dir, MANIFEST)
    st = read_stats(path)
    if st is None:
        raise FileNotFoundError(f"{path}: no readable manifest")
    return st
