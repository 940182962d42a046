"""The dataset mixture: one loader per dataset, its weight, and where it stands.

``accumulate`` (the paper's): every update takes a batch from each dataset
and the loss is sum_m weight_m * loss_m. ``sample``: each step draws one
dataset with probability ∝ weight, from a generator seeded by (seed, step),
so the draw is the same on every rank and after a resume.
"""
from __future__ import annotations

import random

from train.data import Processor, ShardStream, make_loader, seed_for


class Source:
    def __init__(self, spec: dict, dataset: ShardStream, num_workers: int):
        self.name, self.kind = spec["name"], spec["kind"]
        self.weight = float(spec["weight"])
        self.dataset = dataset
        self.num_workers = num_workers
        self.consumed = 0        # batches taken by the trainer
        self.skipped = 0         # corrupt samples skipped in those batches
        self.positions: dict[int, int] = {}
        self._it = None

    def next(self) -> dict:
        if self._it is None:
            self.dataset.resume_from(self.consumed, self.positions)
            self._it = iter(make_loader(self.dataset, self.num_workers))
        batch = next(self._it)
        self.consumed += 1
        self.positions[int(batch.pop("worker"))] = int(batch.pop("position"))
        self.skipped += int(batch.pop("skipped"))
        return batch

    def state_dict(self) -> dict:
        return {"consumed": self.consumed, "skipped": self.skipped, "num_workers": self.num_workers,
                "positions": {str(k): v for k, v in self.positions.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state["num_workers"] != self.num_workers:
            raise ValueError(f"dataset {self.name!r}: checkpoint was written with num_workers="
                             f"{state['num_workers']}, this run has {self.num_workers}; an exact "
                             "resume needs the same number")
        self.consumed, self.skipped = state["consumed"], state["skipped"]
        self.positions = {int(k): v for k, v in state["positions"].items()}
        self._it = None


def holdout_of(cfg, i: int) -> float:
    """The share of dataset ``i``'s keys kept out of training for its held-out
    loss: its own ``holdout``, else the config's; none when its held-out set is
    shards of their own (``eval_shards`` in the dataset, or the config's for the
    first dataset)."""
    spec = cfg.datasets[i]
    if spec.get("eval_shards") is not None or (i == 0 and cfg.eval_shards is not None):
        return 0.0
    return float(spec.get("holdout", cfg.holdout))


def build_sources(cfg, tokenizer, model, rank: int, world: int) -> list[Source]:
    out = []
    for i, spec in enumerate(cfg.datasets):
        proc = processor_for(spec, tokenizer, model)
        ds = ShardStream(spec["shards"], proc, int(spec["batch_size"]), seed=seed_for(cfg.seed, spec["name"]),
                         rank=rank, world=world, train=True, shuffle_buffer=cfg.shuffle_buffer,
                         holdout=holdout_of(cfg, i))
        out.append(Source(spec, ds, cfg.num_workers))
    return out


def build_evals(cfg, tokenizer, model) -> dict[str, ShardStream]:
    """The held-out set of every dataset that has one, by dataset name: its own
    eval shards, or the keys ``holdout`` keeps out of its training stream.
    Every rank reads all of it (it is small) in the same order."""
    out = {}
    for i, spec in enumerate(cfg.datasets):
        shards = spec.get("eval_shards", cfg.eval_shards if i == 0 else None)
        holdout = 0.0 if shards is not None else holdout_of(cfg, i)
        if shards is None and holdout <= 0:
            continue
        out[spec["name"]] = ShardStream(shards if shards is not None else spec["shards"],
                                        processor_for(spec, tokenizer, model), int(spec["batch_size"]),
                                        seed=seed_for(cfg.seed, "eval", spec["name"]), train=False,
                                        holdout=holdout)
    return out


def processor_for(spec: dict, tokenizer, model) -> Processor:
    defaults = {"m3w": 256, "pairs": 32, "videos": 32}
    return Processor(spec["kind"], tokenizer, model.image_size, model.image_mean, model.image_std,
                     seq_len=int(spec.get("seq_len", defaults.get(spec["kind"], 256))),
                     max_images=int(spec.get("max_images", 5)), frames=int(spec.get("frames", 8)))


def choose(sources: list[Source], mode: str, seed: int, step: int, micro: int = 0) -> list[Source]:
    """The datasets that feed one micro-step of an update."""
    if mode == "accumulate":
        return sources
    rng = random.Random(seed_for(seed, "mixture", step, micro))
    return rng.choices(sources, weights=[s.weight for s in sources], k=1)
