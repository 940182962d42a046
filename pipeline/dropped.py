"""``--keep-dropped``: carry each filter's victims to ``OUTPUT/dropped/``.

The stages already count every drop by reason; with the flag on, the DoFn
that counts a drop also emits the victim (``shards.dropped.victim``: capped
text, url, reason, a thumbnail for images) on a side output tagged
:data:`DROPPED`.  Each job flattens those outputs into :class:`WriteDropped`,
which keeps up to ``max_per_reason`` victims per reason (the smallest keys,
so reruns keep the same ones; 0 keeps every one) and writes them with the
shard writer as ``dropped/REASON-NNNNNN.tar`` plus ``dropped/index.json``.
With the flag off no victim is built and the side outputs stay empty.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import apache_beam as beam

from shards import dropped as fmt
from shards.schema import shard_index_for_key
from shards.writer import dumps, join, write_bytes_atomic, write_shard

DROPPED = "dropped"      # the side-output tag every dropping DoFn uses
PER_FILE = 1000          # victims per tar


@dataclass(frozen=True)
class KeepDropped:
    max_per_reason: int = fmt.DEFAULT_MAX_PER_REASON   # 0: every victim


def config_from_args(args) -> KeepDropped | None:
    if not args.keep_dropped:
        return None
    if args.keep_dropped_max < 0:
        raise ValueError(f"--keep-dropped-max must be >= 0, got {args.keep_dropped_max}")
    return KeepDropped(max_per_reason=args.keep_dropped_max)


def emit(victims: list[dict]):
    """Tagged outputs for victims collected by a pure function (documents.Outcome)."""
    for v in victims:
        yield beam.pvalue.TaggedOutput(DROPPED, v)


def _first_victim(victims):
    return min(victims, key=lambda v: dumps(v["json"]))


class _WriteReason(beam.DoFn):
    def __init__(self, out_dir: str, run_id: str):
        self.out_dir, self.run_id = out_dir, run_id

    def process(self, element):
        (reason, index), victims = element
        info = write_shard(join(self.out_dir, fmt.DIR), reason, index, list(victims),
                           self.run_id, validate=False)
        yield reason, info.to_json()


def _chunks(element):
    """(reason, capped victims) → ((reason, file index), victims) in key order."""
    reason, victims = element
    victims = sorted(victims, key=lambda v: v["__key__"])
    for i in range(0, len(victims), PER_FILE):
        yield (reason, i // PER_FILE), victims[i:i + PER_FILE]


def _write_index(infos, path: str, run_id: str, cfg: KeepDropped) -> None:
    reasons: dict[str, dict] = {}
    for reason, info in sorted(infos, key=lambda ri: (ri[0], ri[1]["name"])):
        r = reasons.setdefault(reason, {"kept": 0, "files": []})
        r["kept"] += info["count"]
        r["files"].append(info["name"])
    write_bytes_atomic(path, dumps({"run_id": run_id, "max_per_reason": cfg.max_per_reason,
                                    "reasons": reasons}) + b"\n")


class WriteDropped(beam.PTransform):
    """Victims (``shards.dropped.victim`` samples) → ``OUTPUT/dropped/``."""

    def __init__(self, out_dir: str, run_id: str, cfg: KeepDropped):
        super().__init__()
        self.out_dir, self.run_id, self.cfg = out_dir, run_id, cfg

    def expand(self, victims):
        # The same page read from two inputs drops the same things twice: one victim each.
        by_reason = (victims
                     | "KeyVictims" >> beam.Map(lambda v: (v["__key__"], v))
                     | "OnePerKey" >> beam.CombinePerKey(_first_victim)
                     | "KeyByReason" >> beam.Map(lambda kv: (kv[1]["json"]["reason"], kv[1])))
        if self.cfg.max_per_reason > 0:
            # Top keeps at most N per reason on every worker before the merge.
            files = (by_reason
                     | "CapPerReason" >> beam.combiners.Top.PerKey(
                         self.cfg.max_per_reason, key=lambda v: v["__key__"], reverse=True)
                     | "ChunkFiles" >> beam.FlatMap(_chunks))
        else:
            counts = (by_reason | "CountPerReason" >> beam.combiners.Count.PerKey())

            def assign(kv, n):
                reason, v = kv
                files = max(1, math.ceil(n[reason] / PER_FILE))
                return (reason, shard_index_for_key(v["__key__"], files)), v

            files = (by_reason
                     | "AssignFile" >> beam.Map(assign, n=beam.pvalue.AsDict(counts))
                     | "GroupByFile" >> beam.GroupByKey())
        return (files
                | "WriteDroppedFiles" >> beam.ParDo(_WriteReason(self.out_dir, self.run_id))
                | "GatherDropped" >> beam.combiners.ToList()
                | "WriteDroppedIndex" >> beam.Map(
                    _write_index, join(join(self.out_dir, fmt.DIR), fmt.INDEX), self.run_id,
                    self.cfg))


def write_all(p, victim_outputs: list, out_dir: str, run_id: str, cfg: KeepDropped | None):
    """Flatten the jobs' DROPPED side outputs into WriteDropped (nothing when off)."""
    if cfg is None or not victim_outputs:
        return None
    return (victim_outputs | "AllDropped" >> beam.Flatten()
            | "WriteDropped" >> WriteDropped(out_dir, run_id, cfg))
