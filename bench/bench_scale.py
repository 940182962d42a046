"""The M3W job at scale, as a user runs it, beside the per-page step alone and
datatrove's FineWeb-style pipeline on the same WARCs (issue #15).

    .venv/bin/python bench/bench_scale.py [--pages 5000] [--warcs 4] [--workers 2]
        [--runner DirectRunner|DaskRunner] [--profile] [--no-datatrove] [--no-pairs]
        [--no-stages] [--memory 1000,3000,6000 [--memory-warcs 1]]
    make bench-scale BENCH_SCALE_ARGS='--pages 20000'

Input (built once per size under build/bench-scale/, deterministic): every
real page of the bundled sample (build/sample/sample.warc.gz: the Readability
pages and the scikit-image pages) and of tests/data/warc (real crawl pages),
each copied under distinct URLs (``?copy=N`` on the page's own URL, so its
relative image URLs resolve as before) until ``--pages`` pages, and every
archived image of the sample once, spread round-robin over ``--warcs`` WARC
files with one gzip member per record, as Common Crawl writes them.

Measured, in one run:
- the M3W job, ``python -m pipeline.m3w --no-fetch`` with its defaults and
  ``--direct_num_workers=W`` (or the Dask runner with W workers): wall, CPU
  of the whole process tree (user+sys), cores busy (CPU / wall), pages/s, peak
  RSS (the process tree's RSS summed, sampled every 0.2 s), and with
  ``--profile`` the job's CPU by stage from py-spy samples of every process;
- the same job's stages alone, one process, on the same pages: read, the
  per-page step (decode -> extract -> filters -> langid) and the image stage
  (each archived image once); job overhead = job CPU per page over the sum;
- datatrove 0.10.1 (WarcReader -> Trafilatura -> GopherRepetitionFilter ->
  GopherQualityFilter -> JsonlWriter, LocalPipelineExecutor, one task per
  WARC, W workers), installed from PyPI into build/bench-venv-datatrove (kept);
- bench/bench_pairs_list.py (the pairs-from-URL-lists comparison), when present.

Printed, not asserted: the machine is shared, so absolute figures are noisy;
the ratios against datatrove and the per-page step come from the same run.
"""
from __future__ import annotations

import argparse
import glob
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUILD = ROOT / "build" / "bench-scale"
SAMPLE = ROOT / "build" / "sample" / "sample.warc.gz"
DT_VENV = ROOT / "build" / "bench-venv-datatrove"
DT_REQUIREMENTS = ["datatrove[io,processing]==0.10.1", "spacy==3.8.7", "lxml_html_clean==0.4.6"]
PY = sys.executable


# ---------------------------------------------------------------- the input

def _sources() -> list[str]:
    if not SAMPLE.exists():
        subprocess.run([PY, "-m", "pipeline.sample", "--out", str(SAMPLE)], cwd=ROOT, check=True)
    return [str(SAMPLE)] + sorted(glob.glob(str(ROOT / "tests" / "data" / "warc" / "*.warc*")))


def _response(writer, url: str, body: bytes, content_type: str, rid: str, extra: dict):
    from warcio.statusandheaders import StatusAndHeaders

    http = StatusAndHeaders("200 OK", [("Content-Type", content_type),
                                      ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
    headers = {"WARC-Date": "2024-05-01T00:00:00Z",
               "WARC-Record-ID": f"<urn:uuid:{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:32]}>",
               **extra}
    writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                  http_headers=http, warc_headers_dict=headers))


def build_input(n_pages: int, n_warcs: int) -> tuple[list[str], dict]:
    """The WARCs (cached by size) and what they hold."""
    import hashlib

    from warcio.warcwriter import WARCWriter

    from pipeline.read import STAND_IN_HEADER, STAND_IN_KEY, iter_records

    out = BUILD / f"p{n_pages}-w{n_warcs}-v2"
    stamp = out / "input.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        return [str(out / f) for f in info["files"]], info
    pages, media, seen = [], [], set()
    for src in _sources():
        for rec in iter_records(src):
            if rec.url in seen:
                continue
            seen.add(rec.url)
            (media if rec.is_media else pages if rec.is_html else []).append(rec)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = [f"bench-{i:05d}.warc.gz" for i in range(n_warcs)]
    fhs = [open(out / n, "wb") for n in names]
    writers = [WARCWriter(fh, gzip=True) for fh in fhs]
    # Pages in order, each archived image once, spaced evenly between them (as a
    # crawl that saves a page's images beside it), round-robin over the files:
    # every byte range of a file holds its share of pages.
    order = [("p", i) for i in range(n_pages)]
    for j, rec in enumerate(media):
        order.insert(min(len(order), (j * (n_pages + j)) // max(1, len(media))), ("m", rec))
    for k, (kind, item) in enumerate(order):
        w = writers[k % n_warcs]
        if kind == "m":
            rec = item
            extra = {STAND_IN_HEADER: rec.headers[STAND_IN_KEY]} if rec.headers.get(STAND_IN_KEY) else {}
            _response(w, rec.url, rec.body, rec.content_type,
                      hashlib.sha1(f"m\0{rec.url}".encode()).hexdigest(), extra)
            continue
        rec = pages[item % len(pages)]
        copy = item // len(pages)
        url = rec.url if copy == 0 else rec.url + ("&" if "?" in rec.url else "?") + f"copy={copy}"
        ctype = rec.content_type + (f"; charset={rec.charset}" if rec.charset else "")
        _response(w, url, rec.body, ctype, hashlib.sha1(f"p\0{url}".encode()).hexdigest(), {})
    for fh in fhs:
        fh.close()
    info = {"files": names, "pages": n_pages, "distinct_pages": len(pages),
            "archived_images": len(media),
            "bytes": sum((out / n).stat().st_size for n in names)}
    stamp.write_text(json.dumps(info, indent=1))
    return [str(out / n) for n in names], info


# ---------------------------------------------------------------- measuring

class TreeMonitor:
    """CPU (user+sys) and summed RSS of a process and all its descendants,
    sampled every ``every`` seconds; processes that ended keep their last CPU."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self.root = psutil.Process(pid)
        self.every = every
        self.cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.peak_pss = 0   # proportional: pages shared by forked workers counted once
        self.peak_procs = 0
        self.peak_by_pid: dict[int, int] = {}   # each process's own peak RSS
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def _loop(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.Error:
                break
            rss = pss = 0
            for p in procs:
                try:
                    t = p.cpu_times()
                    self.cpu[p.pid] = t.user + t.system  # children's own samples count theirs
                    m = p.memory_full_info()
                    rss += m.rss
                    pss += getattr(m, "pss", m.rss)
                    self.peak_by_pid[p.pid] = max(self.peak_by_pid.get(p.pid, 0), m.rss)
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            self._stop.wait(self.every)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return sum(self.cpu.values())


def run_measured(cmd: list[str], env=None, cwd=ROOT, log=None) -> dict:
    """Run ``cmd``; wall, CPU of its process tree, cores busy, peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(log or os.devnull, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        mon = TreeMonitor(proc.pid)
        rc = proc.wait()
    wall = time.monotonic() - t0
    sampled = mon.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # rusage counts every descendant that was waited for (all of them, for a job
    # that ends cleanly); the samples cover any that were not, less their last 0.2 s
    cpu = max(sampled, waited)
    others = [v for pid, v in mon.peak_by_pid.items() if pid != proc.pid]
    return {"rc": rc, "wall": wall, "cpu": cpu, "cores": cpu / wall if wall else 0.0,
            "peak_rss": mon.peak_rss, "peak_pss": mon.peak_pss, "procs": mon.peak_procs,
            "driver_rss": mon.peak_by_pid.get(proc.pid, 0),
            "largest_other_rss": max(others, default=0)}


# ---------------------------------------------------------------- the M3W job

def m3w_cmd(files, out_dir, workers, runner):
    cmd = [PY, "-m", "pipeline.m3w", *sum((["--input", f] for f in files), []),
           "--output", out_dir, "--no-fetch", "--quiet"]
    if runner == "DaskRunner":
        return cmd + ["--runner=DaskRunner", f"--dask_workers={workers}"]
    return cmd + [f"--direct_num_workers={workers}"]


def run_m3w(files, workers, runner, work: Path) -> dict:
    out = work / "m3w-out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    r = run_measured(m3w_cmd(files, str(out), workers, runner), env=env, log=work / "m3w.stdout")
    if r["rc"] != 0:
        print((work / "m3w.stdout").read_text()[-3000:])
        raise SystemExit(f"the m3w job failed (rc {r['rc']}); its output is above")
    stats = json.loads((out / "stats.json").read_text())
    r["counters"] = stats.get("counters", stats)
    return r


# Frames of a py-spy stack → the stage its sample is charged to (innermost
# match wins, so the extractor inside ExtractDocuments counts as "per-page step").
STAGES = [
    ("read", ("pipeline/read.py", "warcio/")),
    ("per-page step", ("pipeline/documents.py:candidate_document", "pipeline/extract.py",
                       "pipeline/main_content.py", "pipeline/filters.py", "pipeline/decode.py",
                       "py3langid", "lxml/")),
    ("images", ("pipeline/images.py", "PIL/")),
    ("near-dup MinHash", ("dedup/corpus.py", "datasketch/")),
    ("assemble + write", ("pipeline/documents.py:assemble_sample", "shards/", "pipeline/write.py",
                          "pipeline/card.py")),
    ("coders/pickling", ("apache_beam/coders/", "pickle", "dill/", "cloudpickle")),
]


# Leaf frames of a thread that waits (py-spy samples some idle threads too).
IDLE = ("threading.py:Condition.wait", "threading.py:Event.wait", "channel_spin",
        "grpc/_server.py:_serve", "selectors.py", "_common.py:_wait_once",
        "subprocess.py:Popen._try_wait", "time.sleep")


def stage_of(frames: list[str]) -> str | None:
    """The stage a sample's stack is charged to; None for a waiting thread."""
    if not frames or any(i in frames[-1] for i in IDLE):
        return None
    if any("importlib._bootstrap" in f or "<frozen importlib" in f for f in frames):
        return "imports (process start-up)"
    for frame in reversed(frames):  # innermost first
        for name, needles in STAGES:
            if any(n in frame for n in needles):
                return name
    return "runner + other"


def _frame_key(frame: str) -> str:
    # py-spy raw frames: "func (path/file.py:line)"
    func, _, rest = frame.partition(" (")
    path = rest.rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{func}"


def profile_stages(raw: Path) -> tuple[dict, int]:
    """py-spy's raw (collapsed) stacks → samples by stage (idle samples left out)."""
    by: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        parts = stack.split(";")
        frames = [_frame_key(f) for f in parts[1:] if not f.startswith("process ")]
        s = stage_of(frames)
        if s is None:
            continue
        # py-spy --subprocesses names the process chain first: the driver, or a worker under it
        who = "workers" if sum(f.startswith("process ") for f in parts) > 1 else "driver"
        total += int(n)
        by[s] = by.get(s, 0) + int(n)
        by[f"{who}: {s}"] = by.get(f"{who}: {s}", 0) + int(n)
    return by, total


def run_m3w_profiled(files, workers, runner, work: Path) -> dict:
    out = work / "m3w-prof-out"
    raw = work / "m3w.pyspy.txt"
    env = dict(os.environ, PYTHONHASHSEED="0")
    pyspy = str(Path(PY).parent / "py-spy")
    cmd = [pyspy, "record", "-r", "50", "-f", "raw", "--subprocesses", "-o", str(raw), "--",
           *m3w_cmd(files, str(out), workers, runner)]
    r = run_measured(cmd, env=env, log=work / "m3w-prof.stdout")
    if r["rc"] != 0 or not raw.exists():
        return {}
    by, total = profile_stages(raw)
    return {"by": by, "total": total, "raw": str(raw)}


# ---------------------------------------------------------------- stages alone

def stages_alone(files) -> dict:
    """Each stage of the job in this one process on the same input: CPU seconds."""
    from pipeline.documents import candidate_document
    from pipeline.extract import ExtractConfig
    from pipeline.filters import FilterConfig, LangId
    from pipeline.images import ImageConfig, process_image
    from pipeline.read import iter_records

    t0 = time.process_time()
    recs = [r for f in files for r in iter_records(f)]
    read = time.process_time() - t0
    fcfg, ecfg, icfg = FilterConfig(), ExtractConfig(), ImageConfig()
    langid = LangId().load()
    pages = [r for r in recs if not r.is_media]
    media = [r for r in recs if r.is_media and r.content_type.startswith("image/")]
    t0 = time.process_time()
    candidates = 0
    for r in pages:
        try:
            candidates += candidate_document(r, fcfg, ecfg, langid).value is not None
        except Exception:
            pass
    step = time.process_time() - t0
    t0 = time.process_time()
    for r in media:
        process_image(r.body, icfg, source=r.url)
    images = time.process_time() - t0
    return {"read": read, "step": step, "images": images, "pages": len(pages),
            "media": len(media), "candidates": candidates}


# ---------------------------------------------------------------- datatrove

DT_SCRIPT = r'''
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import GopherRepetitionFilter, GopherQualityFilter
from datatrove.pipeline.writers import JsonlWriter

if __name__ == "__main__":  # the executor's worker processes import this file
    data_dir, out_dir, logs, tasks, workers = sys.argv[1:6]
    LocalPipelineExecutor(
        pipeline=[WarcReader(data_dir, glob_pattern="*.warc.gz"),
                  Trafilatura(favour_precision=True, timeout=600.0),
                  GopherRepetitionFilter(),
                  GopherQualityFilter(),
                  JsonlWriter(out_dir)],
        tasks=int(tasks), workers=int(workers), logging_dir=logs,
    ).run()
'''


def ensure_datatrove() -> str | None:
    py = DT_VENV / "bin" / "python"
    stamp = DT_VENV / ".installed"
    want = "\n".join(DT_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == want:
        return str(py)
    print(f"installing datatrove into {DT_VENV} (once) ...", flush=True)
    try:
        if not py.exists():
            subprocess.run(["python3.11", "-m", "venv", str(DT_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *DT_REQUIREMENTS], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"datatrove not installed ({e}); its row is left out")
        return None
    stamp.write_text(want)
    return str(py)


def run_datatrove(files, workers, work: Path) -> dict:
    py = ensure_datatrove()
    if py is None:
        return {}
    script = work / "datatrove_fineweb.py"
    script.write_text(DT_SCRIPT)
    data_dir = str(Path(files[0]).parent)
    out, logs = work / "dt-out", work / "dt-logs"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    r = run_measured([py, str(script), data_dir, str(out), str(logs), str(len(files)),
                      str(workers)], env=env, log=work / "datatrove.stdout")
    if r["rc"] != 0:
        print((work / "datatrove.stdout").read_text()[-3000:])
        print(f"datatrove failed (rc {r['rc']}); its row is left out")
        return {}
    kept = 0
    for f in glob.glob(str(out / "*.jsonl*")):
        import gzip

        with (gzip.open(f, "rt") if f.endswith(".gz") else open(f)) as fh:
            kept += sum(1 for _ in fh)
    r["kept"] = kept
    return r


# ---------------------------------------------------------------- report

def _row(name, r, pages, note=""):
    return (f"{name:<34} {r['wall']:8.1f} {r['cpu']:8.1f} {r['cores']:6.2f} "
            f"{pages / r['wall']:9.1f} {pages / r['cpu']:9.1f} {r['peak_rss'] / 2**20:9.0f}  {note}")


def memory_table(sizes: list[int], args, work: Path) -> None:
    """Peak memory of the job by input size: each size as each of
    ``--memory-warcs`` WARC counts (default 1 and 4)."""
    counts = [int(x) for x in args.memory_warcs.split(",") if x.strip()]
    print(f"\npeak memory by input ({args.runner}, {args.workers} workers; RSS and PSS summed "
          "over the process tree; driver and largest other process: their own peak RSS):")
    print(f"  {'pages':>7} {'WARCs':>5} {'input MB':>9} {'wall s':>7} {'CPU s':>7} "
          f"{'RSS MB':>7} {'PSS MB':>7} {'driver':>7} {'largest':>7} {'procs':>5}")
    cpu: dict[int, list[float]] = {}
    for n in sizes:
        for w in counts:
            files, info = build_input(n, w)
            (work / f"mem-{n}-{w}").mkdir()
            r = run_m3w(files, args.workers, args.runner, work / f"mem-{n}-{w}")
            cpu.setdefault(n, []).append(r["cpu"])
            print(f"  {n:7,} {w:5} {info['bytes'] / 1e6:9.0f} {r['wall']:7.1f} {r['cpu']:7.1f} "
                  f"{r['peak_rss'] / 2**20:7.0f} {r['peak_pss'] / 2**20:7.0f} "
                  f"{r['driver_rss'] / 2**20:7.0f} {r['largest_other_rss'] / 2**20:7.0f} "
                  f"{r['procs']:5}",
                  flush=True)
    ns = sorted(cpu)
    for a, b in zip(ns, ns[1:]):
        # every size holds the same archived images: the difference is pages only
        per = (sum(cpu[b]) / len(cpu[b]) - sum(cpu[a]) / len(cpu[a])) / (b - a)
        print(f"  job CPU per extra page, {a:,} -> {b:,} pages (mean over the WARC counts): "
              f"{1000 * per:.2f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=5000, help="pages in the input (default 5000)")
    ap.add_argument("--warcs", type=int, default=4, help="WARC files (default 4)")
    ap.add_argument("--workers", type=int, default=2, help="workers for both jobs (default 2)")
    ap.add_argument("--runner", default="DirectRunner", choices=["DirectRunner", "DaskRunner"])
    ap.add_argument("--profile", action="store_true",
                    help="also run the job under py-spy and print its CPU by stage")
    ap.add_argument("--no-datatrove", action="store_true", help="leave the datatrove anchor out")
    ap.add_argument("--no-pairs", action="store_true", help="leave bench_pairs_list.py out")
    ap.add_argument("--no-stages", action="store_true", help="leave the stages-alone run out")
    ap.add_argument("--memory", default="", metavar="PAGES,PAGES",
                    help="also run the job alone on 1 and on 4 WARCs of each of these sizes "
                         "(pages) and print peak memory per input size, e.g. --memory 1000,4000")
    ap.add_argument("--memory-warcs", default="1,4", metavar="N,N",
                    help="WARC counts each --memory size is built as (default 1,4)")
    args = ap.parse_args(argv)

    files, info = build_input(args.pages, args.warcs)
    print(f"input: {len(files)} WARCs, {info['bytes'] / 1e6:.0f} MB, {info['pages']:,} pages "
          f"({info['distinct_pages']} distinct real pages under distinct URLs), "
          f"{info['archived_images']} archived images; per-record gzip; {os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        job = run_m3w(files, args.workers, args.runner, work)
        c = job["counters"]
        pages = c.get("pages", info["pages"])
        alone = None if args.no_stages else stages_alone(files)
        dt = {} if args.no_datatrove else run_datatrove(files, args.workers, work)
        prof = run_m3w_profiled(files, args.workers, args.runner, work) if args.profile else {}

        print(f"\n{'':<34} {'wall s':>8} {'CPU s':>8} {'cores':>6} {'pages/s':>9} "
              f"{'pg/CPU-s':>9} {'RSS MB':>9}")
        print(_row(f"m3w job ({args.runner}, {args.workers} workers)", job, pages,
                   f"{c.get('documents', 0):,} docs, {c.get('images_kept', 0):,} images"))
        if dt:
            print(_row(f"datatrove FineWeb-style ({args.workers} w)", dt, pages,
                       f"{dt['kept']:,} docs kept"))
        if alone:
            step = alone["step"]
            print(f"{'per-page step alone (1 process)':<34} {'':>8} {step:8.1f} {1:6.2f} "
                  f"{'':>9} {alone['pages'] / step:9.1f}")
            print("\nstages alone, one process, CPU s (same input):")
            other = job["cpu"] - alone["read"] - alone["step"] - alone["images"]
            for name, v in (("read (warcio + content decoding)", alone["read"]),
                            ("per-page step (decode, extract, filters, langid)", step),
                            (f"images ({alone['media']} archived, decode+resize+hash)",
                             alone["images"])):
                print(f"  {name:<52} {v:7.1f}  {1000 * v / alone['pages']:6.2f} ms/page")
            print(f"  {'job CPU - the above (shuffles, coders, runner, write)':<52} {other:7.1f}  "
                  f"{1000 * other / alone['pages']:6.2f} ms/page")
            print(f"\njob CPU per page {1000 * job['cpu'] / pages:.2f} ms; per-page step alone "
                  f"{1000 * step / alone['pages']:.2f} ms -> job overhead "
                  f"{100 * (job['cpu'] / pages / (step / alone['pages']) - 1):+.0f}% over the step "
                  f"(goal <= +20%); cores busy {job['cores']:.2f} of {args.workers}")
        print(f"m3w pages/s {pages / job['wall']:.1f} (goal >= 333 on 2 cores)", end="")
        if dt:
            print(f"; vs datatrove {dt['wall'] / job['wall']:.2f}x (wall), "
                  f"{dt['cpu'] / job['cpu']:.2f}x (CPU)", end="")
        print(f"\npeak RSS {job['peak_rss'] / 2**20:.0f} MB (PSS {job['peak_pss'] / 2**20:.0f} MB) "
              f"for {info['bytes'] / 1e6:.0f} MB of WARCs ({job['procs']} processes; summed over "
              "the job's process tree; PSS counts the pages forked workers share once)")
        if prof:
            print(f"\njob CPU by stage (py-spy, {prof['total']:,} samples at 50 Hz, all processes):")
            for name, n in sorted(prof["by"].items(), key=lambda kv: -kv[1]):
                if ": " not in name:
                    print(f"  {name:<28} {100 * n / prof['total']:5.1f}%")
            print("  by process:")
            for name, n in sorted(prof["by"].items(), key=lambda kv: -kv[1]):
                if ": " in name and n >= 0.005 * prof["total"]:
                    print(f"    {name:<40} {100 * n / prof['total']:5.1f}%")
        if args.memory:
            memory_table([int(x) for x in args.memory.split(",") if x.strip()], args, work)
    finally:
        if os.environ.get("BENCH_SCALE_KEEP"):
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    pairs = ROOT / "bench" / "bench_pairs_list.py"
    if not args.no_pairs and pairs.exists():
        print(f"\n== {pairs.relative_to(ROOT)}", flush=True)
        rc = subprocess.run([PY, str(pairs)], cwd=ROOT).returncode
        if rc:
            print(f"bench_pairs_list.py exited {rc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
