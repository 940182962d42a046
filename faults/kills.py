"""Killing the job (or one Dask worker) at chosen points, and comparing output.

The kill points are observed, not timed: *reading* = a process of the job's
process group has the input file open; *fetching* = the loopback image server
has received a request; *writing* = a shard's temporary file exists.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(out, inputs, extra=(), env=None, preexec_fn=None, runner_args=None):
    cmd = [sys.executable, "-m", "pipeline.m3w", *sum((["--input", str(i)] for i in inputs), []),
           "--output", str(out), "--samples-per-shard", "2", "--quiet", *extra,
           *(runner_args if runner_args is not None
             else ["--direct_running_mode=in_memory"])]
    e = dict(os.environ, PYTHONHASHSEED="0", **(env or {}))
    return subprocess.Popen(cmd, cwd=ROOT, env=e, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=preexec_fn)


def run(out, inputs, extra=(), timeout=300, **kw) -> tuple[int, str]:
    p = cli(out, inputs, extra, **kw)
    try:
        o, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        o, _ = p.communicate()
        return -9, o.decode(errors="replace")
    return p.returncode, o.decode(errors="replace")


def snapshot(out) -> dict:
    """The bytes a reader relies on: the shards, manifest.json, stats.json."""
    return {p.name: p.read_bytes() for p in sorted(Path(out).iterdir())
            if p.suffix == ".tar" or p.name in ("manifest.json", "stats.json")}


def shard_keys(out) -> list[str]:
    """Every sample key in every visible shard (duplicates kept)."""
    import tarfile

    keys = []
    for t in sorted(Path(out).glob("*.tar")):
        with tarfile.open(t) as tf:
            keys += sorted({m.name.split(".", 1)[0] for m in tf.getmembers()})
    return keys


def lost_and_duplicated(clean_out, out) -> tuple[int, int]:
    ref, got = shard_keys(clean_out), shard_keys(out)
    return len(set(ref) - set(got)), len(got) - len(set(got))


def visible_state_ok(out) -> list[str]:
    """What a reader could trip over after a kill: a visible shard that is not
    complete (no sidecar, or bytes/sha256 differ from it), or a manifest listing
    a missing or different shard."""
    import hashlib

    problems = []
    out = Path(out)
    for t in out.glob("*.tar"):
        side = t.with_name(t.stem + "_stats.json")
        if not side.exists():
            # a tar renamed into place just before the kill, sidecar not yet
            # written: complete bytes, which the rerun checks and rewrites
            continue
        st = json.loads(side.read_text())
        data = t.read_bytes()
        if st["bytes"] != len(data) or st["sha256"] != hashlib.sha256(data).hexdigest():
            problems.append(f"{t.name}: differs from its sidecar")
    m = out / "manifest.json"
    if m.exists():
        for s in json.loads(m.read_text())["shards"]:
            p = out / s["name"]
            if not p.exists():
                problems.append(f"manifest lists missing {s['name']}")
            elif hashlib.sha256(p.read_bytes()).hexdigest() != s["sha256"]:
                problems.append(f"manifest lists partial {s['name']}")
    return problems


def _group_has_open(pgid: int, path: str) -> bool:
    target = os.path.realpath(path)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            fd_dir = f"/proc/{pid}/fd"
            for fd in os.listdir(fd_dir):
                if os.path.realpath(os.path.join(fd_dir, fd)) == target:
                    return True
        except (OSError, ProcessLookupError):
            continue
    return False


def when_reading(path):
    return lambda proc: _group_has_open(proc.pid, path)


def when_writing(out):
    return lambda proc: bool(list(Path(out).glob("*.tar.tmp-*"))
                             or list(Path(out).glob("*_stats.json")))


def when_fetching(server):
    return lambda proc: server.hits() > 0


def kill_at(proc, predicate, timeout=300, poll=0.01) -> bool:
    """SIGKILL the whole process group once predicate(proc) holds; False if the
    job ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate(proc):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(poll)
    proc.wait()
    return False


def fsize_limit(limit_bytes: int):
    """preexec_fn: files this process writes may not grow past limit_bytes, and
    going past it is an EFBIG error, not the default SIGXFSZ death."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def dask_worker_kill_run(out, inputs, task_prefix="beam_ExtractDocuments", timeout=300):
    """Run the job on a local Dask cluster (via $DASK_SCHEDULER) and SIGKILL the
    worker process that is executing a task whose key starts with task_prefix.
    Returns (returncode, output, killed_pid or None)."""
    import logging

    from distributed import Client

    from pipeline.runners import start_local_cluster

    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.CRITICAL)   # the kill is the point; no noise
    cluster = start_local_cluster(2, 1)
    client = Client(cluster.scheduler_address, set_as_default=False)
    killed = None
    try:
        p = cli(out, inputs, env={"DASK_SCHEDULER": cluster.scheduler_address},
                runner_args=["--runner=DaskRunner"])
        deadline = time.monotonic() + timeout
        while killed is None and p.poll() is None and time.monotonic() < deadline:
            try:
                processing = client.processing()
            except Exception:
                processing = {}
            for addr, keys in processing.items():
                if any(task_prefix in str(k) for k in keys):
                    pids = client.run(os.getpid, workers=[addr])
                    killed = pids.get(addr)
                    if killed:
                        os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.02)
        try:
            o, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            o, _ = p.communicate()
        return p.returncode, o.decode(errors="replace"), killed
    finally:
        client.close()
        cluster.close()
