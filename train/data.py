"""Streaming datasets over webdataset shards, one per sample kind.

    shard list (manifest / pattern / list)
      -> shards per (seed, epoch, rank, worker): resampled, or split by node and worker
      -> tar stream -> raw samples (bytes per member, webdataset's grouping)
      -> [held-out filter by key] -> shuffle buffer (seeded)
      -> decode + validate (shards.schema) -> tokens / image tensors   (corrupt: skipped, counted)
      -> fixed-size batches, each tagged with its worker and stream position

Exact resume: everything a worker yields is a deterministic function of
(seed, rank, logical worker, position in its raw stream). A batch carries the
position reached after it; the trainer stores the last position per worker
and the number of batches consumed, and on resume each worker replays its raw
stream (tar reads and the shuffle buffer, no decoding) up to its position.
Random choices per sample (the M3W window) are seeded by that position, not
drawn from a shared generator.
"""
from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, tar_file_iterator

from shards.schema import (EOC_TOKEN, IMAGE_TOKEN, KINDS, SchemaError, decode_members, iter_image_members,
                           serialize_pair, shard_index_for_key, validate_sample)

HOLDOUT_BUCKETS = 1000


def seed_for(*parts) -> int:
    """A 64-bit seed from any tuple of plain values (stable across processes and runs)."""
    return int.from_bytes(hashlib.sha1(repr(parts).encode()).digest()[:8], "little")


# ---------------------------------------------------------------- shard lists


def list_shards(spec) -> list[str]:
    """Shard paths from a directory with a manifest.json, a brace pattern, or a list of either."""
    from apache_beam.io.filesystems import FileSystems
    from webdataset.shardlists import expand_urls

    from shards.writer import join, read_manifest

    if isinstance(spec, (list, tuple)):
        return [p for s in spec for p in list_shards(s)]
    spec = str(spec)
    if spec.endswith(".tar") or "{" in spec:
        return list(expand_urls(spec))
    try:
        manifest = read_manifest(spec)
    except FileNotFoundError:
        if not FileSystems.exists(spec):
            raise FileNotFoundError(f"{spec}: no such shard directory") from None
        raise
    paths = [join(spec, s["name"]) for s in manifest["shards"]]
    if not paths:
        raise ValueError(f"{spec}: manifest lists no shards")
    return paths


def shards_for_worker(shards: list[str], *, seed: int, epoch: int, rank: int, world: int,
                      worker: int, num_workers: int, resample: bool) -> list[str]:
    """The shards one worker reads in one epoch.

    ``resample``: draw with replacement (as many as an even split would give,
    at least one), seeded per (seed, epoch, rank, worker), so any number of
    workers works on any number of shards. Otherwise: a per-epoch permutation
    (the same on every rank) split by node and worker.
    """
    total = world * num_workers
    gid = rank * num_workers + worker
    if resample:
        rng = random.Random(seed_for(seed, "shards", epoch, rank, worker))
        return [rng.choice(shards) for _ in range(max(1, len(shards) // total))]
    order = list(shards)
    random.Random(seed_for(seed, "order", epoch)).shuffle(order)
    return order[gid::total]


def read_tar(path: str) -> Iterator[dict]:
    """Raw samples ({"__key__", member suffix: bytes}) of one shard, streamed."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        members = (dict(m, __url__=path) for m in tar_file_iterator(fh))
        for sample in group_by_keys(members):
            sample.pop("__url__", None)
            sample.pop("__local_path__", None)
            yield sample


def in_holdout(key: str, fraction: float) -> bool:
    return shard_index_for_key(key, HOLDOUT_BUCKETS) < round(fraction * HOLDOUT_BUCKETS)


def shuffled(samples: Iterator[dict], size: int, rng: random.Random) -> Iterator[dict]:
    """A shuffle buffer: once ``size`` samples are held, each new one evicts a random one."""
    if size <= 1:
        yield from samples
        return
    buf: list[dict] = []
    for s in samples:
        if len(buf) < size:
            buf.append(s)
            continue
        i = rng.randrange(size)
        yield buf[i]
        buf[i] = s
    rng.shuffle(buf)
    yield from buf


# ---------------------------------------------------------------- images


def load_image(data: bytes, size: int, mean, std) -> torch.Tensor:
    """JPEG bytes -> [3, size, size] normalised: shorter side to ``size`` (bicubic), centre crop.

    ``draft`` lets the JPEG decoder do most of the downscaling (DCT scaling),
    always to at least ``size`` on both sides.
    """
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (size, size))
    im = im.convert("RGB")
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    im = im.crop((left, top, left + size, top + size))
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(size, size, 3)
    x = x.permute(2, 0, 1).float().div_(255.0)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def even_indices(n: int, k: int) -> list[int]:
    """k indices evenly spread over 0..n-1 (repeats when n < k)."""
    return [int(round(x)) for x in np.linspace(0, n - 1, k)]


# ---------------------------------------------------------------- samples -> model inputs


@dataclass
class Example:
    input_ids: list[int]
    images: torch.Tensor  # [n_images, F, 3, H, W]


@dataclass
class Processor:
    """Turns one decoded sample of a kind into token ids and image tensors."""

    kind: str
    tokenizer: object
    image_size: int
    image_mean: tuple
    image_std: tuple
    seq_len: int = 256          # m3w 256; pairs / videos 32 or 64
    max_images: int = 5         # m3w: up to the first N images in the window
    frames: int = 8             # videos
    image_token_id: int = field(init=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown dataset kind {self.kind!r}; expected one of {KINDS}")
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def image(self, data: bytes) -> torch.Tensor:
        return load_image(data, self.image_size, self.image_mean, self.image_std)

    def __call__(self, sample: dict, rng: random.Random) -> Example:
        if self.kind == "m3w":
            return self.m3w(sample, rng)
        if self.kind == "pairs":
            ids = self.tokens(serialize_pair(sample["txt"]))[: self.seq_len]
            return Example(ids, self.image(sample["jpg"])[None, None])
        frames = [data for _, data in iter_image_members(sample)]
        chosen = [self.image(frames[i]) for i in even_indices(len(frames), self.frames)]
        ids = self.tokens(serialize_pair(sample["txt"]))[: self.seq_len]
        return Example(ids, torch.stack(chosen)[None])

    def m3w(self, sample: dict, rng: random.Random) -> Example:
        """A random ``seq_len`` window of the document and the images of its ``<image>`` tokens.

        The k-th ``<image>`` of the window is image (images before the window + k)
        of the document. The window is cut just before its (max_images+1)-th
        ``<image>``, so every ``<image>`` kept has its picture and no text is
        conditioned on an image that was dropped.

        Long documents are not tokenised whole (that was most of the loader's
        time): the window starts at a random character, snapped to a word or
        marker boundary, and only the next ``seq_len * WINDOW_CHARS_PER_TOKEN``
        characters are tokenised.
        """
        text = sample["json"]["text"]
        budget = self.seq_len * WINDOW_CHARS_PER_TOKEN
        if len(text) <= 2 * budget:
            ids = self.tokens(text)
            start = rng.randint(0, max(0, len(ids) - self.seq_len))
            window = ids[start:start + self.seq_len]
            first = sum(1 for t in ids[:start] if t == self.image_token_id)
        else:
            cs = snap_to_boundary(text, rng.randint(0, len(text) - budget))
            first = text.count(IMAGE_TOKEN, 0, cs)
            window = self.tokens(text[cs:cs + budget])[: self.seq_len]
        at = [i for i, t in enumerate(window) if t == self.image_token_id]
        if len(at) > self.max_images:
            window = window[: at[self.max_images]]
            at = at[: self.max_images]
        members = dict(iter_image_members(sample))
        images = [self.image(members[first + k]) for k in range(len(at))]
        size = self.image_size
        pix = torch.stack(images)[:, None] if images else torch.zeros(0, 1, 3, size, size)
        return Example(window, pix)


# Characters tokenised per window token for long documents: byte-level
# tokenizers need 1, BPE on web text ~4-5; 6 leaves a margin.
WINDOW_CHARS_PER_TOKEN = 6
_MARKERS = (IMAGE_TOKEN, EOC_TOKEN)


def snap_to_boundary(text: str, pos: int) -> int:
    """A start position at or after ``pos`` that cuts neither a marker nor a word."""
    # Inside a marker: back up to its start (the marker is then kept whole).
    j = text.rfind("<", max(0, pos - max(map(len, _MARKERS))), pos + 1)
    if j >= 0:
        for m in _MARKERS:
            if text.startswith(m, j) and j < pos < j + len(m):
                return j
    # Inside a word: move to the next whitespace or marker, whichever is first.
    if pos == 0 or text[pos - 1].isspace() or text.startswith(_MARKERS, pos):
        return pos
    candidates = [k for k in (text.find(" ", pos), text.find("\n", pos), text.find("<", pos)) if k >= 0]
    k = min(candidates) if candidates else pos
    if k < len(text) and text[k].isspace():
        k += 1
    return k


def collate(examples: list[Example], seq_len: int, pad_id: int, image_token_id: int) -> dict:
    """Right-padded [B, seq_len] ids, labels (-100 on padding and ``<image>``), vision_x [B, T_img, F, C, H, W]."""
    b = len(examples)
    ids = torch.full((b, seq_len), pad_id, dtype=torch.long)
    mask = torch.zeros(b, seq_len, dtype=torch.long)
    for i, ex in enumerate(examples):
        n = len(ex.input_ids)
        ids[i, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
        mask[i, :n] = 1
    labels = ids.masked_fill((mask == 0) | (ids == image_token_id), -100)
    t_img = max(1, max(ex.images.shape[0] for ex in examples))
    f, c, h, w = examples[0].images.shape[1:]
    f = max(ex.images.shape[1] for ex in examples)
    vision_x = torch.zeros(b, t_img, f, c, h, w)
    for i, ex in enumerate(examples):
        vision_x[i, : ex.images.shape[0]] = ex.images
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "vision_x": vision_x,
            "num_images": torch.tensor([ex.images.shape[0] for ex in examples])}


# ---------------------------------------------------------------- the dataset


class ShardStream(IterableDataset):
    """Batches of one kind from webdataset shards; see the module docstring.

    ``train=True``: endless (epochs of resampled shards), shuffled, excluding
    the held-out keys. ``train=False``: one pass, in order, only the held-out
    keys when ``holdout`` > 0 (all samples otherwise) — the eval set.
    """

    def __init__(self, shards, processor: Processor, batch_size: int, *, seed: int = 0,
                 rank: int = 0, world: int = 1, train: bool = True, resample: bool = True,
                 shuffle_buffer: int = 100, holdout: float = 0.0):
        super().__init__()
        self.shards = list_shards(shards)
        self.proc = processor
        self.batch_size = batch_size
        self.seed, self.rank, self.world = seed, rank, world
        self.train, self.resample = train, resample and train
        self.shuffle_buffer = shuffle_buffer if train else 0
        self.holdout = holdout
        self.pad_id = processor.tokenizer.pad_token_id
        # Where to resume: batches consumed so far, last position per logical worker.
        self.batches_consumed = 0
        self.positions: dict[int, int] = {}

    def resume_from(self, batches_consumed: int, positions: dict[int, int]) -> None:
        self.batches_consumed = int(batches_consumed)
        self.positions = {int(k): int(v) for k, v in positions.items()}

    def _raw(self, worker: int, num_workers: int) -> Iterator[dict]:
        epoch = 0
        while True:
            n = 0
            for path in shards_for_worker(self.shards, seed=self.seed, epoch=epoch, rank=self.rank,
                                          world=self.world, worker=worker, num_workers=num_workers,
                                          resample=self.resample):
                for s in read_tar(path):
                    if self.holdout > 0 and in_holdout(s["__key__"], self.holdout) == self.train:
                        continue
                    n += 1
                    yield s
            if not self.train:
                return
            if n == 0:
                raise ValueError(f"worker {worker} of rank {self.rank} got no samples from "
                                 f"{len(self.shards)} shards (all held out, or fewer shards than workers)")
            epoch += 1

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        num_workers, physical = (info.num_workers, info.id) if info else (1, 0)
        # The DataLoader takes batches round-robin from its workers; batch C
        # (the next one after a resume) came from worker C % W in the first run.
        worker = (physical + self.batches_consumed) % num_workers
        skip = self.positions.get(worker, 0)
        rng = random.Random(seed_for(self.seed, "shuffle", self.rank, worker))
        stream = shuffled(self._raw(worker, num_workers), self.shuffle_buffer, rng)
        batch: list[Example] = []
        skipped = 0
        pos = 0
        for raw in stream:
            pos += 1
            if pos <= skip:
                continue  # fast-forward: replay the raw stream, decode nothing
            try:
                sample = decode_members(raw)
                validate_sample(self.proc.kind, sample)
                ex = self.proc(sample, random.Random(seed_for(self.seed, "sample", self.rank, worker, pos)))
                if not ex.input_ids:
                    raise SchemaError("no tokens")
            except Exception:  # corrupt image / json / schema: skip and count
                skipped += 1
                continue
            batch.append(ex)
            if len(batch) == self.batch_size:
                yield self._emit(batch, worker, pos, skipped)
                batch, skipped = [], 0
        if batch and not self.train:
            yield self._emit(batch, worker, pos, skipped)

    def _emit(self, batch, worker, pos, skipped) -> dict:
        out = collate(batch, self.proc.seq_len, self.pad_id, self.proc.image_token_id)
        out.update(worker=worker, position=pos, skipped=skipped)
        return out


def make_loader(dataset: ShardStream, num_workers: int):
    """A webdataset WebLoader (a DataLoader) over already-batched samples.

    Its own generator: starting the workers then draws no number from the
    global RNG, so when the loader starts (first step, or after a resume)
    cannot change the training RNG stream.
    """
    import webdataset as wds

    return wds.WebLoader(dataset, batch_size=None, num_workers=num_workers,
                         prefetch_factor=4 if num_workers else None, persistent_workers=False,
                         generator=torch.Generator().manual_seed(dataset.seed % (1 << 63)))
