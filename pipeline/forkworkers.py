"""The DirectRunner with SDK workers forked from a process that has already
imported the job (``--direct_running_mode=multi_processing``, the jobs' default).

Beam's multi-processing DirectRunner starts every SDK worker as
``python -m apache_beam.runners.worker.sdk_worker_main``: a fresh interpreter
that imports Beam again (pandas, pyarrow, avro, ... through
apache_beam.typehints and apache_beam.io) and then, unpickling the job's
DoFns, the job's modules (lxml, bs4, datasketch and scipy, ...).  py-spy over
``make bench-scale`` (2026-12-03): that is ~2.5 s of CPU per worker before its
first element, 44% of the CPU of a small job's run and ~12% of a 1,000-page one.

Here, at the process's first run, before the runner starts (no gRPC server or
channel exists yet), the driver forks one *fork server*: a copy of the driver
with every module it imported, plus Beam's worker harness; later runs of the
same process reuse it.  Each worker Beam starts is a ``fork()``
of the fork server.  Beam still launches a command per worker (its
``SubprocessSDKEnvironment``, as in multi-processing mode): a few lines of
stdlib Python (``python -I -S``) that hand the fork server the worker's
environment (control/logging endpoints, pipeline options, worker id) and its
stdin/stdout/stderr (SCM_RIGHTS), and exit with the worker's exit status, as
the worker subprocess did.  The FnApiRunner, its stages, bundles, gRPC data
plane and counters are Beam's, unchanged; only how a worker process comes to
exist differs.  Without ``os.fork`` (not POSIX) or in another running mode the
job runs on Beam's own DirectRunner; so does a run in a process whose gRPC
state a fork would share (:func:`fork_is_safe`: a Beam run before the first).

What the workers load once each (the language-id model: ~1.1 s of CPU and
~150 MB) can be loaded once in the fork server instead (:func:`preload`,
:func:`preloaded`): every worker forked from it then shares those pages
copy-on-write instead of holding its own copy.

glibc gives each thread that allocates under contention an arena of its own,
up to 8 per core, and an arena keeps the high-water mark of what it once held;
a worker runs its bundles on a pool of threads (and gRPC its own), so its
resident memory climbed with the number of bundles it had run (1 WARC of
6,000 pages: workers at 781-857 MB RSS).  :func:`limit_malloc_arenas` (every
job's driver calls it first, and its workers inherit it) caps them at
``MALLOC_ARENA_MAX`` (default 2); :func:`release_free_memory` (the reader
calls it after each split) hands the heap's free pages back.

Lifetimes: the fork server exits when the driver closes its pipe (at the
driver's exit, or its death: EOF); a worker ends when the runner closes its
control stream, as before; a worker that dies makes its client exit non-zero,
which fails the run as a dead worker subprocess did.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import shlex
import signal
import socket
import struct
import sys
import tempfile
import threading

from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.runner import PipelineRunner

FORKING_DIRECT_RUNNER = "pipeline.forkworkers.ForkingDirectRunner"

# The command Beam runs per worker: connect, hand over the environment and the
# standard fds, wait for the worker's exit status.  Stdlib only, no site.
_CLIENT = r"""
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
env = json.dumps(dict(os.environ)).encode()
socket.send_fds(s, [struct.pack(">Q", len(env))], [0, 1, 2])
s.sendall(env)
got = b""
while True:
    chunk = s.recv(64)
    if not chunk:
        break
    got += chunk
if not got.strip():
    sys.stderr.write("forked SDK worker ended without an exit status (killed?)\n")
sys.exit(int(got) if got.strip() else 1)
"""


def _recv_exactly(conn, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            raise EOFError("fork-server client went away")
        buf += chunk
    return bytes(buf)


class ForkServer:
    """A forked copy of the driver that forks SDK workers on request."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="beam-forkserver-")
        self.path = os.path.join(self.dir, "sock")
        self.pid = None
        self._pipe_w = None

    def start(self) -> "ForkServer":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(64)
        r, w = os.pipe()
        for stream in (sys.stdout, sys.stderr):   # nothing buffered is written twice
            try:
                stream.flush()
            except Exception:
                pass
        pid = os.fork()
        if pid == 0:   # the fork server
            code = 0
            try:
                os.close(w)
                _serve(listener, r)
            except BaseException:
                code = 1
            finally:
                self._remove_files()   # also when the driver died without close()
                os._exit(code)
        os.close(r)
        listener.close()
        self.pid, self._pipe_w = pid, w
        return self

    def command(self) -> str:
        return " ".join(shlex.quote(a) for a in (sys.executable, "-I", "-S", "-c", _CLIENT,
                                                 self.path))

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def close(self) -> None:
        if self._pipe_w is not None:
            os.close(self._pipe_w)   # EOF: the fork server exits
            self._pipe_w = None
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None
        self._remove_files()

    def _remove_files(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


# name -> loader of what the fork server loads before its first worker
# (preload), and name -> what it loaded (preloaded; inherited by the workers).
_PRELOADS: dict = {}
_PRELOADED: dict = {}


def preload(name: str, load) -> None:
    """Have the fork server (started after this call) run ``load()`` once
    before forking any worker; workers get the result from
    :func:`preloaded` (shared pages) instead of loading it each."""
    _PRELOADS.setdefault(name, load)


def preloaded(name: str, load):
    """What the fork server preloaded under ``name`` (this process is one of
    its workers), else ``load()``: the same object either way, loaded here when
    the process was not forked from a fork server that preloaded it (Beam's own
    workers, Dask, a run in this process)."""
    if name in _PRELOADED:
        return _PRELOADED[name]
    return load()


def _run_preloads() -> None:
    import logging

    for name, load in list(_PRELOADS.items()):
        try:
            _PRELOADED[name] = load()
        except Exception:  # noqa: BLE001 - each worker then loads it and reports the failure
            logging.getLogger(__name__).warning("fork server: preloading %s failed", name,
                                                exc_info=True)


def _serve(listener, pipe_r) -> None:
    """The fork server's loop: one forked worker per connection, until the
    driver's pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the driver handles Ctrl-C
    # the worker harness, imported once here rather than once per worker
    from apache_beam.runners.worker import sdk_worker_main  # noqa: F401

    _run_preloads()

    workers = set()
    while True:
        ready, _, _ = select.select([listener, pipe_r], [], [], 1.0)
        _reap(workers, block=False)
        if pipe_r in ready:
            # the run is over (its workers were told to stop): wait for them, so
            # their CPU time adds up in the driver's children's (getrusage)
            _reap(workers, block=True)
            return
        if listener not in ready:
            continue
        conn, _ = listener.accept()
        fds = []
        try:
            head, fds, _, _ = socket.recv_fds(conn, 8, 3)
            if len(head) < 8:
                head += _recv_exactly(conn, 8 - len(head))
            env = json.loads(_recv_exactly(conn, struct.unpack(">Q", head)[0]))
        except Exception:
            for fd in fds:
                os.close(fd)
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(pipe_r)
            _run_worker(conn, fds, env)   # never returns
        workers.add(pid)
        conn.close()
        for fd in fds:
            os.close(fd)


def _reap(workers: set, block: bool, grace: float = 10.0) -> None:
    """Reap the workers that ended; ``block``: all of them, killing those still
    running after ``grace`` seconds (a run that failed may leave one behind)."""
    import time

    deadline = time.monotonic() + grace
    while True:
        for pid in list(workers):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                workers.discard(pid)
        if not block or not workers:
            return
        if time.monotonic() > deadline:
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            deadline = float("inf")
        time.sleep(0.02)


def _run_worker(conn, fds, env) -> None:
    """In a forked worker: the client's stdio and environment, then Beam's
    worker harness; the exit status goes back to the client."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for i, fd in enumerate(fds):
            os.dup2(fd, i)
            os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        import logging

        root = logging.getLogger()
        for h in list(root.handlers):   # the driver's handlers; the harness adds its own
            root.removeHandler(h)
        from apache_beam.runners.worker import sdk_worker_main

        try:
            sdk_worker_main.main([])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
    finally:
        try:
            conn.sendall(str(code).encode())
            conn.close()
        except Exception:
            pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


class _FnApiRunnerOn(fn_runner.FnApiRunner):
    """Beam's FnApiRunner with a fixed worker environment (multi-processing
    mode would replace it with ``python -m ...sdk_worker_main``)."""

    def __init__(self, environment, **kw):
        self._fixed_environment = environment
        super().__init__(**kw)

    @property
    def _default_environment(self):
        return self._fixed_environment

    @_default_environment.setter
    def _default_environment(self, value):
        pass   # the running mode's environment is ours


class ForkingDirectRunner(PipelineRunner):
    """``--runner=DirectRunner`` in multi-processing mode, with forked workers
    (module docstring); in any other mode, Beam's DirectRunner as it is."""

    def run_pipeline(self, pipeline, options):
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle
        from apache_beam.transforms import environments

        mode = options.view_as(DirectOptions).direct_running_mode
        server = fork_server() if mode == "multi_processing" else None
        FORK_DONE.set()
        if server is None:
            return SwitchingDirectRunner().run_pipeline(pipeline, options)
        # as Beam's DirectRunner builds it for the FnApiRunner
        provision_info = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(
                pipeline_options=JobServiceHandle.encode_pipeline_options(
                    options.get_all_options())))
        env = environments.SubprocessSDKEnvironment.from_command_string(server.command())
        return _FnApiRunnerOn(env, provision_info=provision_info).run_pipeline(pipeline, options)


# glibc's mallopt() parameter number for the arena cap (malloc.h)
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas(default: int = MALLOC_ARENAS) -> int | None:
    """Cap glibc's malloc arenas for this process and every process it starts
    or forks from now on (``$MALLOC_ARENA_MAX`` when set, else ``default``);
    the cap applied, or None where there is no glibc."""
    import ctypes
    import ctypes.util

    try:
        n = int(os.environ.get("MALLOC_ARENA_MAX") or default)
    except ValueError:
        n = default
    if n <= 0:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None   # not glibc (macOS, musl): nothing to cap
    if not mallopt(_M_ARENA_MAX, n):
        return None
    os.environ["MALLOC_ARENA_MAX"] = str(n)   # processes exec'd later read it at start
    return n


_TRIM = []


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim):
    what a split's pages freed stops counting as resident. False where there
    is no glibc."""
    if not _TRIM:
        import ctypes
        import ctypes.util

        try:
            _TRIM.append(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    if _TRIM[0] is None:
        return False
    _TRIM[0](0)
    return True


_SERVER: ForkServer | None = None
# Set once this process's workers no longer fork from it: its fork server is
# started (workers fork from that copy), or the run went to Beam's own
# DirectRunner (workers exec'd). From then on a driver thread cannot be caught
# by a fork in the middle of an import: see pipeline.jobs.warm_up_after_fork.
FORK_DONE = threading.Event()


def fork_server() -> ForkServer | None:
    """This process's fork server, started at its first run while forking is
    safe (:func:`fork_is_safe`) and kept for later runs (closed at exit); None
    where it cannot be had (the run then starts Beam's own workers)."""
    global _SERVER
    if _SERVER is not None and _SERVER.alive():
        return _SERVER
    if not fork_is_safe():
        return None
    _SERVER = ForkServer().start()
    atexit.register(_SERVER.close)
    return _SERVER


def fork_is_safe() -> bool:
    """Whether a fork of this process can run gRPC afresh: POSIX fork, and no
    epoll instance open yet.  After a first Beam run (gRPC servers, channels)
    the process keeps gRPC's epoll sets, which a forked child would share with
    it (workers then hang); Linux's /proc says whether there is one, elsewhere
    it is not known, and the answer is no."""
    if not hasattr(os, "fork"):
        return False
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]":
                return False
        except OSError:
            pass
    return True
