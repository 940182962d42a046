"""Small real shards for the trainer tests, written with shards.writer.write_shard.

Images are the real photos of tests/data/images (re-encoded as small JPEGs so
the shards stay tiny); texts are real COCO captions from tests/data/evalsets.
"""
from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache

from PIL import Image

from shards.schema import build_m3w_sample, build_pair_sample, build_video_sample, make_key, \
    serialize_interleaved
from shards.writer import write_manifest, write_shard
from tests.data_paths import EVALSETS, IMAGES

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "china.jpg", "flower.jpg",
          "grace_hopper.jpg", "horse.png", "motorcycle_left.png", "camera.png", "coins.png", "moon.png")


@lru_cache(maxsize=None)
def photo(i: int, size: int = 64) -> bytes:
    """JPEG bytes of real photo i (cycled), shorter side ``size``."""
    im = Image.open(IMAGES / PHOTOS[i % len(PHOTOS)]).convert("RGB")
    im.thumbnail((size * 2, size * 2))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@lru_cache(maxsize=None)
def captions() -> tuple[str, ...]:
    data = json.loads((EVALSETS / "coco_captions_val2014_sample.json").read_text())
    return tuple(a["caption"].strip() for a in data["annotations"])


def image_meta(data: bytes, i: int) -> dict:
    im = Image.open(io.BytesIO(data))
    return {"url": f"http://example.com/{i}.jpg", "alt": "", "sha256": hashlib.sha256(data).hexdigest(),
            "phash": "0" * 16, "width": im.width, "height": im.height}


def m3w_doc(key: str, texts: list[str], image_ids: list[int], order: list[str | None] | None = None,
            corrupt: set[int] = frozenset()) -> dict:
    """A document alternating text and images: text0, img0, text1, img1, ... (or ``order``)."""
    chunks: list[str | None] = []
    for j, t in enumerate(texts):
        chunks.append(t)
        if j < len(image_ids):
            chunks.append(None)
    images = [b"\xff\xd8 not a jpeg" if k in corrupt else photo(i) for k, i in enumerate(image_ids)]
    meta = {"text": serialize_interleaved(order or chunks), "url": f"http://example.com/{key}",
            "source": "test.warc.gz:0", "lang": "en",
            "images": [image_meta(photo(i), i) for i in image_ids]}
    return build_m3w_sample(key, meta, images)


def write_m3w(out_dir, n_docs: int = 12, images_per_doc: int = 3, sentences: int = 4, shard: int = 0,
              corrupt_docs: set[int] = frozenset(), start: int = 0) -> list[dict]:
    caps = captions()
    docs = []
    for d in range(start, start + n_docs):
        texts = [" ".join(caps[(d * 7 + j * sentences + s) % len(caps)] for s in range(sentences))
                 for j in range(images_per_doc + 1)]
        ids = [(d + k) % len(PHOTOS) for k in range(images_per_doc)]
        docs.append(m3w_doc(make_key("doc", d), texts, ids, corrupt={0} if d in corrupt_docs else set()))
    write_shard(str(out_dir), "m3w", shard, docs, run_id="test", validate=False)
    write_manifest(str(out_dir), "m3w", "test", {}, {})
    return docs


def write_pairs(out_dir, n: int = 16, corrupt: set[int] = frozenset()) -> list[dict]:
    caps = captions()
    samples = []
    for i in range(n):
        data = b"\xff\xd8\xff garbage" if i in corrupt else photo(i)
        meta = dict(image_meta(photo(i), i), caption_source="alt")
        samples.append(build_pair_sample(make_key("pair", i), caps[i % len(caps)], meta, data))
    write_shard(str(out_dir), "pairs", 0, samples, run_id="test")
    write_manifest(str(out_dir), "pairs", "test", {}, {})
    return samples


def write_videos(out_dir, n: int = 6, frames: int = 12) -> list[dict]:
    caps = captions()
    samples = []
    for i in range(n):
        fr = [photo(i + f) for f in range(frames)]
        meta = {"url": f"http://example.com/{i}.mp4", "duration": float(frames), "fps": 1.0,
                "frame_times": [float(f) for f in range(frames)]}
        samples.append(build_video_sample(make_key("video", i), caps[i % len(caps)], meta, fr))
    write_shard(str(out_dir), "videos", 0, samples, run_id="test")
    write_manifest(str(out_dir), "videos", "test", {}, {})
    return samples


def tiny_config(out_dir, datasets: list[dict], **overrides):
    """A fast deterministic TrainConfig for CPU tests."""
    from train.config import TrainConfig

    values = dict(out_dir=str(out_dir), datasets=datasets, steps=10, lr=3e-3, warmup=2, log_every=1,
                  eval_every=1000, ckpt_every=1000, keep_ckpts=2, num_workers=0, shuffle_buffer=8,
                  holdout=0.0, progress=False, device="cpu", threads=1)
    values.update(overrides)
    return TrainConfig(**values)


def _rank_entry(target, args, dump_after: float) -> None:
    """A spawned rank: if it is still running after ``dump_after`` s, every thread's
    Python stack goes to stderr and the rank exits (so a hang shows where it is)."""
    import faulthandler
    faulthandler.dump_traceback_later(dump_after, exit=True)
    target(*args)
    faulthandler.cancel_dump_traceback_later()


def run_ranks(target, rank_args: list[tuple], timeout: float = 300) -> list[int]:
    """Start one spawned process per entry of ``rank_args`` (target(*args)), wait for all
    of them together up to ``timeout`` s, kill any left; returns the exit codes.

    Spawned, not forked: a fork of a process whose OpenMP pool is running can hang in GEMM.
    """
    import multiprocessing
    import time
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_rank_entry, args=(target, args, timeout - 20)) for args in rank_args]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:   # a rank left waiting on a dead peer must not outlive the test
        if p.exitcode is None:
            p.kill()
            p.join()
    return [p.exitcode for p in procs]
