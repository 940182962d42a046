"""The DirectRunner with forked SDK workers (pipeline/forkworkers.py): real
multi-process pipelines in a fresh interpreter (forking is only taken where it
is safe, so not inside a test session that ran Beam already), exact output and
counters, a dead worker fails its run and the next run still works, the fork
server never outlives its driver, and the fallbacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import apache_beam as beam
import psutil
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline import forkworkers
from pipeline.forkworkers import FORKING_DIRECT_RUNNER
from pipeline.jobs import beam_options

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.options.pipeline_options import PipelineOptions
    from pipeline import forkworkers

    STATE = {"mark": None}   # set at run time: only a forked worker sees it

    class Tag(beam.DoFn):
        def process(self, x):
            Metrics.counter("t", "seen").inc()
            if x < 0:
                os._exit(3)   # a worker that dies mid-bundle
            model = forkworkers.preloaded("probe", lambda: {"loaded_in": os.getpid()})
            yield x * 10, STATE["mark"], os.getpid(), model["loaded_in"]

    def run(values):
        opts = PipelineOptions([f"--runner={forkworkers.FORKING_DIRECT_RUNNER}",
                                "--direct_running_mode=multi_processing",
                                "--direct_num_workers=2"])
        got = []
        p = beam.Pipeline(options=opts)
        (p | beam.Create(values) | beam.Reshuffle() | beam.ParDo(Tag())
         | beam.combiners.ToList() | beam.Map(lambda rows: open(sys.argv[2], "w").write(
             json.dumps(rows))))
        result = p.run()
        result.wait_until_finish()
        rows = json.load(open(sys.argv[2]))
        seen = [c.committed for c in result.metrics().query()["counters"]
                if c.key.metric.name == "seen"]
        return {"values": sorted(r[0] for r in rows), "marks": sorted({r[1] for r in rows}),
                "pids": len({r[2] for r in rows}), "driver": os.getpid() in {r[2] for r in rows},
                "seen": seen, "loaded_in": sorted({r[3] for r in rows}),
                "worker_pids": sorted({r[2] for r in rows})}

    STATE["mark"] = "set in the driver"
    forkworkers.preload("probe", lambda: {"loaded_in": os.getpid()})
    out = {"first": run(list(range(40)))}
    server = forkworkers._SERVER.pid
    out["server"] = server
    try:
        run([1, 2, -1, 3])
        out["dead"] = "no error"
    except Exception as e:
        out["dead"] = type(e).__name__
    out["after"] = run([5, 6])
    out["same_server"] = forkworkers._SERVER.pid == server
    print(json.dumps(out))
""")


def test_forked_workers_exact_output_counters_and_a_dead_worker(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), str(tmp_path / "rows.json")],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    first = out["first"]
    # the preloaded object was loaded once, in the fork server, before it forked
    # the workers: both workers got that copy, none loaded its own
    assert first.pop("loaded_in") == [out["server"]]
    assert out["server"] not in first.pop("worker_pids")
    assert first == {"values": [10 * i for i in range(40)],
                     "marks": ["set in the driver"], "pids": 2, "driver": False,
                     "seen": [40]}
    assert out["dead"] == "RuntimeError"      # Beam's: "Channel closed prematurely"
    assert out["after"]["values"] == [50, 60] and out["after"]["marks"] == ["set in the driver"]
    assert out["after"]["seen"] == [2] and out["same_server"] is True


def test_the_fork_server_exits_when_its_driver_dies():
    script = textwrap.dedent("""
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from pipeline.forkworkers import ForkServer
        s = ForkServer().start()
        print(s.pid, s.dir, flush=True)
        os._exit(0)   # no close(): the pipe's EOF must end the fork server
    """)
    out = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    pid, folder = int(out.split()[0]), out.split()[1]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"fork server {pid} still running after its driver exited")
    deadline = time.monotonic() + 5
    while os.path.exists(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(folder)   # its socket folder went with it


class _Times10(beam.DoFn):
    def process(self, x):
        yield x * 10


def test_other_running_modes_and_unsafe_forks_use_beams_direct_runner(monkeypatch):
    def refuse():
        raise AssertionError("no fork server outside multi-processing mode")

    monkeypatch.setattr(forkworkers, "fork_server", refuse)
    p = beam.Pipeline(options=PipelineOptions([f"--runner={FORKING_DIRECT_RUNNER}",
                                               "--direct_running_mode=in_memory"]))
    assert_that(p | beam.Create([1, 2]) | beam.ParDo(_Times10()), equal_to([10, 20]))
    p.run().wait_until_finish()

    monkeypatch.undo()
    monkeypatch.setattr(forkworkers, "_SERVER", None)
    monkeypatch.setattr(forkworkers, "fork_is_safe", lambda: False)
    assert forkworkers.fork_server() is None


def test_fork_is_unsafe_once_an_epoll_set_is_open():
    import select

    ep = select.epoll()
    try:
        assert forkworkers.fork_is_safe() is False
    finally:
        ep.close()


def test_jobs_run_the_direct_runner_with_forked_workers():
    def runner(args):
        return beam_options(args).get_all_options()["runner"]

    assert runner([]) == FORKING_DIRECT_RUNNER
    assert runner(["--runner=DirectRunner", "--direct_running_mode=in_memory"]) == \
        FORKING_DIRECT_RUNNER   # which then runs Beam's DirectRunner as it is
    assert runner(["--runner=DaskRunner"]) == "pipeline.runners.DaskRunner"


def test_a_forked_worker_counts_its_own_progress_totals_only(tmp_path):
    from pipeline import progress

    progress.Counts("m3w", str(tmp_path)).inc("pages", 5)   # the driver's own (in-memory) counting
    assert progress._local["pages"] == 5
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not progress._local and not progress._lock.locked() else 7)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert progress._local["pages"] == 5   # the driver keeps its own
    progress._local.clear()


def test_the_driver_warm_up_waits_until_no_worker_forks_from_it(monkeypatch):
    """pipeline.jobs.warm_up_after_fork: the warm-up import runs on a thread only
    once FORK_DONE is set (set by the runner after its fork server started, or
    when it runs Beam's own workers), never while a fork may still copy it."""
    import threading

    from pipeline.jobs import warm_up_after_fork

    event = threading.Event()
    monkeypatch.setattr(forkworkers, "FORK_DONE", event)
    ran = threading.Event()
    warm_up_after_fork(ran.set)
    assert not ran.wait(0.3)  # the fork has not happened: nothing imported yet
    event.set()
    assert ran.wait(5)


def test_the_runner_says_when_forking_is_done(monkeypatch):
    """Beam's own DirectRunner path (another running mode) sets FORK_DONE too."""
    import threading

    event = threading.Event()
    monkeypatch.setattr(forkworkers, "FORK_DONE", event)
    p = beam.Pipeline(options=PipelineOptions([f"--runner={FORKING_DIRECT_RUNNER}",
                                               "--direct_running_mode=in_memory"]))
    assert_that(p | beam.Create([1, 2]) | beam.Map(lambda x: x * 3), equal_to([3, 6]))
    p.run().wait_until_finish()
    assert event.is_set()


ARENAS = textwrap.dedent("""
    import ctypes, json, os, re, sys, tempfile, threading
    sys.path.insert(0, sys.argv[1])
    from pipeline.forkworkers import limit_malloc_arenas

    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p

    def heaps_after_threads():
        # 8 threads allocating at once (above pymalloc's sizes: glibc's malloc),
        # then glibc's own count of its arenas
        keep, bar = [], threading.Barrier(8)
        def work():
            bar.wait()
            for _ in range(200):
                keep.append(bytearray(50_000))
        ts = [threading.Thread(target=work) for _ in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        fd, path = tempfile.mkstemp()
        os.close(fd)
        f = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(f))
        libc.fclose(ctypes.c_void_p(f))
        n = len(re.findall(r'<heap nr="[0-9]+">', open(path).read()))
        os.unlink(path)
        return n

    cap = limit_malloc_arenas() if sys.argv[2] == "cap" else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # a forked worker inherits the cap
        os.write(w, str(heaps_after_threads()).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    print(json.dumps({"cap": cap, "env": os.environ.get("MALLOC_ARENA_MAX"),
                      "forked": int(os.read(r, 32))}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_info")
def test_malloc_arenas_are_capped_in_the_driver_and_its_forked_workers():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}

    def run(mode):
        out = subprocess.run([sys.executable, "-c", ARENAS, str(ROOT), mode], env=env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    free = run("free")
    assert free["cap"] is None and free["env"] is None
    assert free["forked"] > 2   # glibc's default: an arena per contending thread
    capped = run("cap")
    # the cap holds in a process forked after it, and exec'd children get it too
    assert capped == {"cap": 2, "env": "2", "forked": 2}


TRIM = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from pipeline.forkworkers import release_free_memory

    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # 200 MB in heap-sized blocks, then all but every 50th freed: the survivors
    # pin the heap, so glibc cannot give the free pages back by shrinking its top
    blocks = [bytearray(b"x" * 60_000) for _ in range(3_400)]
    keep = blocks[::50]
    del blocks
    before = rss()
    ok = release_free_memory()
    print(json.dumps({"ok": ok, "before": before, "after": rss(), "kept": len(keep)}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_gives_freed_heap_pages_back():
    out = subprocess.run([sys.executable, "-c", TRIM, str(ROOT)], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["ok"] is True
    # ~196 MB of the 204 MB written were free but resident; most of it goes back
    assert r["before"] - r["after"] > 150 * 2**20, r
