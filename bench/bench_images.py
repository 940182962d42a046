"""Fetch + validate + resize + encode throughput, ours against img2dataset, on the
same URL list from the same loopback server (the real photos in tests/data/images).

    .venv/bin/python bench/bench_images.py [--requests 400] [--threads 16]

Both sides: image_size 512, keep_ratio_largest, resize only if bigger, JPEG q95,
min side 150, max aspect ratio 2, 16 download threads, one process, files written
to a temp dir. The server runs in its own process so neither side pays for it in
its own GIL. img2dataset is timed twice: end to end (what a user waits for,
including its worker process start) and from its own shard stats (start_time to
end_time inside the worker: download + resize + write only).

Not the same work, and said so in the output: ours also reads every header with
Pillow first (bombs, animation, CMYK, EXIF orientation, size drops before any
decode), decodes plain complete JPEG/PNG with cv2 and the rest with Pillow, and
computes the phash (of the stored JPEG as Pillow decodes it); img2dataset computes
sha256 of the source bytes and we of the stored JPEG.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
IMAGES = ROOT / "tests" / "data" / "images"

SETTINGS = dict(image_size=512, resize_mode="keep_ratio_largest", resize_only_if_bigger=True,
                encode_quality=95, min_side=150, max_aspect_ratio=2.0)


def _serve(root: str, port_queue, stop_event) -> None:
    from tests.helpers.http_server import LoopbackServer
    with LoopbackServer(root) as srv:
        port_queue.put(srv.port)
        stop_event.wait()


def url_list(port: int, n: int) -> list[str]:
    names = sorted(p.name for p in IMAGES.iterdir())
    # distinct URLs (the query string differs), so nothing can be served from a cache
    return [f"http://127.0.0.1:{port}/{names[i % len(names)]}?i={i}" for i in range(n)]


def run_ours(urls: list[str], threads: int, out_dir: Path) -> tuple[float, int]:
    from pipeline.fetch import FetchConfig, Fetcher
    from pipeline.images import ImageConfig, process_image

    fetcher = Fetcher(FetchConfig(allow_private_addresses=True, retries=0, timeout_s=10))
    cfg = ImageConfig(image_size=SETTINGS["image_size"], resize_mode=SETTINGS["resize_mode"],
                      resize_only_if_bigger=SETTINGS["resize_only_if_bigger"],
                      encode_quality=SETTINGS["encode_quality"], min_side=SETTINGS["min_side"],
                      max_aspect_ratio=SETTINGS["max_aspect_ratio"])

    def one(item):
        i, url = item
        fetched = fetcher.fetch(url)
        if not fetched.ok:
            return False
        img = process_image(fetched.data, cfg, source=url)
        if not img.ok:
            return False
        (out_dir / f"{i:06d}.jpg").write_bytes(img.jpeg)
        (out_dir / f"{i:06d}.json").write_text(json.dumps(
            {"url": url, "width": img.width, "height": img.height, "sha256": img.sha256, "phash": img.phash}))
        return True

    process_image((IMAGES / "china.jpg").read_bytes(), cfg)  # warm caches (Resizer, lazy imports)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        ok = sum(pool.map(one, enumerate(urls)))
    return time.perf_counter() - t0, ok


def run_img2dataset(urls: list[str], threads: int, work: Path) -> tuple[float, float, int, dict]:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from img2dataset import download

    listing = work / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    out = work / "out"
    t0 = time.perf_counter()
    download(url_list=str(listing), output_folder=str(out), input_format="txt", output_format="files",
             processes_count=1, thread_count=threads, number_sample_per_shard=len(urls),
             image_size=SETTINGS["image_size"], resize_mode=SETTINGS["resize_mode"],
             resize_only_if_bigger=SETTINGS["resize_only_if_bigger"],
             encode_quality=SETTINGS["encode_quality"], min_image_size=SETTINGS["min_side"],
             max_aspect_ratio=SETTINGS["max_aspect_ratio"], extract_exif=False,
             enable_wandb=False, timeout=10, retries=0)
    wall = time.perf_counter() - t0
    stats = json.loads(next(out.glob("*_stats.json")).read_text())
    return wall, stats["end_time"] - stats["start_time"], stats["successes"], stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are reported")
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(str(IMAGES), port_queue, stop), daemon=True)
    server.start()
    ours_runs, i2d_runs = [], []
    try:
        port = port_queue.get(timeout=30)
        urls = url_list(port, args.requests)
        # Alternate the two so that load from anything else on the machine hits both alike.
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                (tmp / "ours").mkdir()
                cpu0 = time.process_time()
                ours_runs.append((*run_ours(urls, args.threads, tmp / "ours"), time.process_time() - cpu0))
                i2d_runs.append(run_img2dataset(urls, args.threads, tmp))
    finally:
        stop.set()
        server.join(timeout=10)

    n = len(urls)
    ours_s = statistics.median(r[0] for r in ours_runs)
    ours_cpu = statistics.median(r[2] for r in ours_runs)
    i2d_wall = statistics.median(r[0] for r in i2d_runs)
    i2d_shard = statistics.median(r[1] for r in i2d_runs)
    ours_ok, i2d_ok, stats = ours_runs[-1][1], i2d_runs[-1][2], i2d_runs[-1][3]
    print(f"requests: {n} over {len(list(IMAGES.iterdir()))} photos, {args.threads} threads, 1 process, "
          f"cpus: {os.cpu_count()}, medians of {args.rounds} alternating rounds, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ours        : {n / ours_s:7.1f} images/s  ({ours_s:.2f} s, {ours_ok} stored, "
          f"{1000 * ours_cpu / n:.1f} ms CPU per request in our process)")
    print(f"img2dataset : {n / i2d_wall:7.1f} images/s end to end ({i2d_wall:.2f} s, {i2d_ok} stored)")
    print(f"img2dataset : {n / i2d_shard:7.1f} images/s inside its worker ({i2d_shard:.2f} s, from _stats.json)")
    print(f"ratio ours/img2dataset: {i2d_wall / ours_s:.2f} end to end, {i2d_shard / ours_s:.2f} worker only "
          f"(target >= 1.3)")
    print("rounds (s): ours " + ", ".join(f"{r[0]:.2f}" for r in ours_runs)
          + " | img2dataset worker " + ", ".join(f"{r[1]:.2f}" for r in i2d_runs))
    errors = {k: v for k, v in stats.get("status_dict", {}).items() if k != "success"}
    if errors:
        print(f"img2dataset drops: {errors}")

if __name__ == "__main__":
    main()
