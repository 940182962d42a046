"""The pairs job from a URL list against img2dataset, same list, same server, one run.

    .venv/bin/python bench/bench_pairs_list.py [--urls 2000] [--latency-ms 0] [--hosts 1]

What is served: ``--photos`` (default 1,000) distinct JPEGs, each a different crop
and size (300-1,100 px on the long side) of the real photos in tests/data/images
(scikit-image / scikit-learn / matplotlib sample photos, tests/data/PROVENANCE.md),
under ``--urls`` distinct URLs (photo = URL number mod photos), each with a distinct
real caption: the COCO caption results sample (tests/data/evalsets, BSD, tylin/
coco-caption) plus the URL number, so no caption repeats on one host. A loopback
server process (one per host, 127.0.0.1 ... 127.0.0.N with ``--hosts N``) answers
every request after ``--latency-ms``.

The photos are made once and kept in build/bench_pairs_list/.

Both tools, the project's defaults: 512 px keep_ratio_largest (resize only if
bigger), JPEG q95, min side 150, aspect <= 2, webdataset output; img2dataset 1.47
with 2 processes x 16 threads, retries 0; ours ``python -m pipeline.pairs --list
urls.parquet --fetch-per-host-rps 0 --fetch-threads 16`` with ``--direct_num_workers`` =
processes (the same 2 x 16 requests in flight to the host; no per-host cap, the
default).
Each runs as its own command and is timed whole (interpreter start to exit,
what a user waits for); peak RSS is the largest sum of RSS over the command's
process tree, sampled every 0.1 s (shared pages count once per process, so it
over-states both alike). Not the same work, said here: ours also runs caption
filters and language id, dedups by content, computes a phash, and writes a
manifest, stats and a dataset card.

Figures on a shared machine are noisy: read the ratio, measured in the same run.
``--json FILE`` also writes them as JSON (bench/bench_scale.py uses it).
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"
CAPTIONS = DATA / "evalsets" / "coco_val2014_caption_results_sample.json"
PY = sys.executable

SETTINGS = dict(image_size=512, resize_mode="keep_ratio_largest", resize_only_if_bigger=True,
                encode_quality=95, min_side=150, max_aspect_ratio=2.0)


def make_photos(n: int) -> list[bytes]:
    """``n`` distinct real-photo JPEGs: crops of the sample photos at varied sizes."""
    from PIL import Image

    from pipeline.sample import PHOTOS

    sources = []
    for name in PHOTOS:
        with Image.open(DATA / "images" / name) as im:
            im = im.convert("RGB")
            im.thumbnail((1100, 1100))  # no need to crop from more pixels than served
            sources.append(im)
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        k = i // len(sources)
        # crop 60-100 % of each side, at an offset that moves with k
        fw, fh = 0.6 + 0.4 * ((k * 37) % 11) / 10, 0.6 + 0.4 * ((k * 53) % 7) / 6
        cw, ch = max(1, int(w * fw)), max(1, int(h * fh))
        x0, y0 = ((k * 29) % 13) * (w - cw) // 12, ((k * 31) % 9) * (h - ch) // 8
        crop = src.crop((x0, y0, x0 + cw, y0 + ch))
        if max(cw, ch) / min(cw, ch) > 1.9:  # keep every photo acceptable to both tools
            crop = crop.crop((0, 0, min(cw, int(ch * 1.9)), min(ch, int(cw * 1.9))))
        long_side = 300 + (k * 97) % 801
        scale = long_side / max(crop.size)
        crop = crop.resize((max(160, round(crop.size[0] * scale)), max(160, round(crop.size[1] * scale))),
                           Image.BILINEAR)
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _serve(photos_file: str, hosts: int, latency_s: float, ports, stop, seen) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    blob = Path(photos_file).read_bytes()
    index = json.loads(Path(photos_file + ".json").read_text())
    photos = [blob[a:b] for a, b in index]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *a):
            pass

        def do_GET(self):
            try:
                n = int(self.path.rsplit("/", 1)[-1].split(".", 1)[0])
                body = photos[n % len(photos)]
            except (ValueError, IndexError):
                self.send_error(404)
                return
            now = time.time()
            with seen.get_lock():  # [first request, last request, requests] of this run
                if seen[2] == 0:
                    seen[0] = now
                seen[1] = now
                seen[2] += 1
            if latency_s:
                time.sleep(latency_s)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # 2 x 16 client threads connect at once: no SYN drops

    servers = [Server((f"127.0.0.{h + 1}", 0), Handler) for h in range(hosts)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ports.put([s.server_address[1] for s in servers])
    stop.wait()
    for s in servers:
        s.shutdown()


def write_list(path: Path, ports: list[int], n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    caps = [c["caption"].strip().rstrip(".") for c in json.loads(CAPTIONS.read_text())]
    urls = [f"http://127.0.0.{i % len(ports) + 1}:{ports[i % len(ports)]}/p/{i}.jpg" for i in range(n)]
    captions = [f"{caps[i % len(caps)]}, number {i}" for i in range(n)]
    pq.write_table(pa.table({"url": urls, "caption": captions}), path)


def run_measured(cmd: list[str], log: Path, seen=None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS of its process tree
    (with ``seen``, the server's request times: when the first and the last
    request came, from the command's start)."""
    import psutil

    if seen is not None:
        seen[0] = seen[1] = seen[2] = 0
    t_start = time.time()
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1"))
        root = psutil.Process(proc.pid)
        peak, cpu, each, names = 0, {}, {}, {}
        while proc.poll() is None:
            try:
                procs = [root] + root.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in procs:
                try:
                    r = p.memory_info().rss
                    rss += r
                    if p.pid not in names:
                        names[p.pid] = " ".join(p.cmdline()[1:4])[:70]
                    if r > each.get(p.pid, (0, ""))[0]:
                        each[p.pid] = (r, names[p.pid])
                    t = p.cpu_times()
                    # own time only: a reaped child's time also lands in its parent's
                    # children_* (counting both would count it twice)
                    cpu[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
            time.sleep(0.1)
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} ... exited {rc}; log: {log}\n" + log.read_text()[-3000:])
    biggest = sorted(each.values(), reverse=True)[:4]
    requests = {}
    if seen is not None and seen[2]:
        requests = {"first_request_s": seen[0] - t_start, "last_request_s": seen[1] - t_start,
                    "requests": int(seen[2])}
    # a process's CPU as last sampled (<= 0.1 s short)
    by_cpu = sorted(((round(c, 1), names.get(pid, "?")) for pid, c in cpu.items()), reverse=True)
    return {"wall_s": wall, "peak_rss_gb": peak / 1e9, "cpu_s": sum(cpu.values()),
            "peak_rss_by_process_gb": [(round(r / 1e9, 2), name) for r, name in biggest],
            "cpu_by_process_s": by_cpu[:4], "t_start": t_start, **requests}


I2D = """
import sys
from img2dataset import download
download(url_list=sys.argv[1], output_folder=sys.argv[2], input_format="parquet", url_col="url",
         caption_col="caption", output_format="webdataset", processes_count=int(sys.argv[3]),
         thread_count=int(sys.argv[4]), number_sample_per_shard=1000, image_size={image_size},
         resize_mode="{resize_mode}", resize_only_if_bigger={resize_only_if_bigger},
         encode_quality={encode_quality}, min_image_size={min_side},
         max_aspect_ratio={max_aspect_ratio}, enable_wandb=False, timeout=10, retries=0,
         distributor="multiprocessing")
""".format(**SETTINGS)


def run_img2dataset(listing: Path, out: Path, processes: int, threads: int, seen=None) -> dict:
    m = run_measured([PY, "-c", I2D, str(listing), str(out), str(processes), str(threads)],
                     out.parent / "img2dataset.log", seen)
    stats = [json.loads(p.read_text()) for p in out.glob("*_stats.json")]
    m["written"] = sum(s["successes"] for s in stats)
    drops: dict[str, int] = {}
    for s in stats:
        for k, v in s.get("status_dict", {}).items():
            if k != "success":
                drops[k] = drops.get(k, 0) + v
    m["drops"] = drops
    return m


def run_ours(listing: Path, out: Path, processes: int, extra: list[str], profile: str | None = None,
             seen=None, threads: int = 16) -> dict:
    # the same requests in flight to the one host as img2dataset's processes x threads
    cmd = [PY, "-m", "pipeline.pairs", "--list", str(listing), "--output", str(out),
           "--fetch-per-host-rps", "0", "--fetch-threads", str(threads),
           "--allow-private-addresses", "--no-media-cache", "--quiet",
           f"--direct_num_workers={processes}", *extra]
    spy = [str(Path(PY).parent / "py-spy"), "record", "--subprocesses", "-r", "50", "-f", "raw",
           "-o", profile, "--"] if profile else []
    m = run_measured(spy + cmd, out.parent / "ours.log", seen)
    manifest = json.loads((out / "manifest.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    m["written"] = manifest["num_samples"]
    m["drops"] = {k: v for k, v in stats.get("drops", {}).items() if v} if isinstance(
        stats.get("drops"), dict) else stats.get("drops")
    m["command"] = " ".join(cmd)
    # when the outputs were finished, from the command's start: the job's tail
    m["output_times_s"] = {p.name: round(p.stat().st_mtime - m["t_start"], 1) for p in sorted(
        out.iterdir(), key=lambda p: p.stat().st_mtime) if p.is_file()}
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--urls", type=int, default=2000, help="distinct URLs in the list (e.g. 10000)")
    ap.add_argument("--photos", type=int, default=1000, help="distinct photos served")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="server latency per request")
    ap.add_argument("--hosts", type=int, default=1, help="loopback hosts 127.0.0.1..N, URLs round-robin")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=16, help="img2dataset threads per process")
    ap.add_argument("--skip-img2dataset", action="store_true")
    ap.add_argument("--ours-args", default="", help="extra flags for python -m pipeline.pairs")
    ap.add_argument("--py-spy", metavar="FILE", help="run ours under py-spy record (collapsed "
                    "stacks of every process to FILE; slows it, so figures are not comparable)")
    ap.add_argument("--keep", help="keep the list and both outputs in this folder")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-pairs-list-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cache = ROOT / "build" / "bench_pairs_list" / f"photos-{args.photos}.bin"
    if not cache.exists() or not Path(str(cache) + ".json").exists():
        photos = make_photos(args.photos)
        offsets, pos = [], 0
        for b in photos:
            offsets.append((pos, pos + len(b)))
            pos += len(b)
        cache.parent.mkdir(parents=True, exist_ok=True)
        Path(str(cache) + ".json").write_text(json.dumps(offsets))
        cache.write_bytes(b"".join(photos))
        print(f"{len(photos)} photos made ({pos / len(photos) / 1e3:.0f} kB mean) in "
              f"{time.perf_counter() - t0:.1f} s -> {cache}", flush=True)
    ctx = mp.get_context("spawn")
    ports_q, stop, seen = ctx.Queue(), ctx.Event(), ctx.Array("d", 3)
    server = ctx.Process(target=_serve, args=(str(cache), args.hosts, args.latency_ms / 1000,
                                              ports_q, stop, seen), daemon=True)
    server.start()
    results = {}
    try:
        ports = ports_q.get(timeout=60)
        listing = work / "urls.parquet"
        write_list(listing, ports, args.urls)
        if not args.skip_img2dataset:
            results["img2dataset"] = run_img2dataset(listing, work / "i2d", args.processes, args.threads,
                                                     seen)
            print(f"img2dataset done: {results['img2dataset']['wall_s']:.1f} s", flush=True)
        results["ours"] = run_ours(listing, work / "ours", args.processes, args.ours_args.split(),
                                   args.py_spy, seen, args.threads)
    finally:
        stop.set()
        server.join(timeout=10)

    n = args.urls
    print(f"\n{n:,} URLs over {args.hosts} host(s), {args.photos} photos, server latency "
          f"{args.latency_ms:g} ms, {args.processes} processes, cpus {os.cpu_count()}, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (shared machine: read the ratio)")
    print(f"{'':12} {'img/s':>8} {'wall s':>8} {'CPU s':>8} {'written':>8} {'peak RSS GB':>12}")
    for name, r in results.items():
        r["img_per_s"] = r["written"] / r["wall_s"]
        print(f"{name:12} {r['img_per_s']:8.1f} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} "
              f"{r['written']:8,} {r['peak_rss_gb']:12.2f}")
    if "img2dataset" in results:
        ratio = results["ours"]["img_per_s"] / results["img2dataset"]["img_per_s"]
        results["ratio"] = ratio
        print(f"ratio ours/img2dataset img/s: {ratio:.2f}x (target >= 1.3)")
    for name, r in results.items():
        if isinstance(r, dict) and "peak_rss_by_process_gb" in r:
            print(f"{name} peak RSS by process (GB): " + "; ".join(
                f"{g} {cmd}" for g, cmd in r["peak_rss_by_process_gb"]))
    for name, r in results.items():
        if isinstance(r, dict) and "first_request_s" in r:
            print(f"{name}: first request at {r['first_request_s']:.1f} s, last at "
                  f"{r['last_request_s']:.1f} s, exit at {r['wall_s']:.1f} s ({r['requests']:,} "
                  f"requests): start-up, fetching, tail")
    print("ours outputs finished at (s): " + ", ".join(
        f"{k} {v}" for k, v in results["ours"]["output_times_s"].items()))
    for name, r in results.items():
        if isinstance(r, dict) and "cpu_by_process_s" in r:
            print(f"{name} CPU by process (s): " + "; ".join(
                f"{c} {cmd}" for c, cmd in r["cpu_by_process_s"]))
    for name, r in results.items():
        if isinstance(r, dict) and r.get("drops"):
            print(f"{name} drops: {r['drops']}")
    missing = n - results["ours"]["written"]
    print(f"ours: {results['ours']['written']:,} written of {n:,}; {missing:,} not written "
          f"(see the drops above)")
    print(f"ours command: {results['ours']['command']}")
    results["config"] = vars(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
