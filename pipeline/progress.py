"""Counting and the terminal progress line.

Every count goes to a Beam Metrics counter (the source of truth for the
summary: it aggregates across workers on every runner).  Beam gives the
driver no live view of counters on the DirectRunner, so for the progress line
each worker process also drops its running totals, about once a second, into
a small JSON file in a progress folder; the driver sums those files.  Where the
folder is unreachable (a remote worker), the side channel quietly switches
off; the job and its final summary do not depend on it.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections import Counter

from apache_beam.metrics import Metrics

_local = Counter()
_lock = threading.Lock()
_last_flush = [0.0]


def _forget_after_fork() -> None:
    """A forked worker (pipeline/forkworkers.py) counts its own totals only."""
    global _lock
    _local.clear()
    _last_flush[0] = 0.0
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _flush(progress_dir: str, force: bool = False) -> None:
    now = time.monotonic()
    if not force and now - _last_flush[0] < 1.0:
        return
    _last_flush[0] = now
    try:
        path = os.path.join(progress_dir, f"{socket.gethostname()}-{os.getpid()}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(_local), fh)
        os.replace(tmp, path)
    except OSError:
        pass


class Counts:
    """Beam counters under one namespace, created lazily by name, mirrored to
    the progress folder when one is given."""

    def __init__(self, namespace: str, progress_dir: str | None = None):
        self.namespace = namespace
        self.progress_dir = progress_dir if progress_dir and os.path.isdir(progress_dir) else None
        self._c: dict[str, object] = {}

    def inc(self, name: str, n: int = 1) -> None:
        c = self._c.get(name)
        if c is None:
            c = self._c[name] = Metrics.counter(self.namespace, name)
        c.inc(n)
        if self.progress_dir:
            with _lock:
                _local[name] += n
                _flush(self.progress_dir)

    def flush(self) -> None:
        """Call from finish_bundle so the last counts reach the progress line."""
        if self.progress_dir:
            with _lock:
                _flush(self.progress_dir, force=True)


def read_progress(progress_dir: str) -> Counter:
    total = Counter()
    try:
        names = os.listdir(progress_dir)
    except OSError:
        return total
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(progress_dir, name)) as fh:
                total.update(json.load(fh))
        except (OSError, ValueError):
            continue
    return total


class ProgressLine:
    """Prints one updating line on stderr while the job runs."""

    def __init__(self, progress_dir: str, fields: list[tuple[str, str]], label: str,
                 stream=sys.stderr, interval: float = 1.0):
        self.progress_dir = progress_dir
        self.fields = fields
        self.label = label
        self.stream = stream
        self.interval = interval
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def line(self) -> str:
        c = read_progress(self.progress_dir)
        parts = [f"{title} {c.get(name, 0):,}" for name, title in self.fields]
        return f"[{self.label}] {time.monotonic() - self._t0:6.1f}s  " + " | ".join(parts)

    def _run(self):
        last_print = 0.0
        while not self._stop.wait(self.interval):
            if self.tty:
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
            elif time.monotonic() - last_print >= 10:
                # Not a terminal (CI, a log file): a plain line every 10 s.
                self.stream.write(self.line() + "\n")
                self.stream.flush()
                last_print = time.monotonic()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        end = "\r" + self.line() + "\x1b[K\n" if self.tty else self.line() + "\n"
        self.stream.write(end)
        self.stream.flush()


class QuietFds:
    """Send everything written to fds 1 and 2 — this process's and the Beam
    worker processes it starts, which inherit them — to a log file while a job
    runs, keeping a handle on the real terminal for the progress line.

    Beam's SDK harness logs its start-up at INFO before it has read any option,
    so a log level alone cannot keep the terminal readable."""

    def __init__(self, log_path: str):
        self.log_path = log_path
        self.terminal = None

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._log = open(self.log_path, "ab", buffering=0)
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)
        self.terminal = os.fdopen(os.dup(self._saved[1]), "w", buffering=1)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._log.close()
        self.terminal.close()
