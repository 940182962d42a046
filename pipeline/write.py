"""Shard writing as a Beam stage: deterministic shard ids from sample keys,
one tar per shard written by :mod:`shards.writer`."""
from __future__ import annotations

import math

import apache_beam as beam

from shards.schema import shard_index_for_key
from shards.writer import write_shard

from .jobs import CountingDoFn


class WriteShards(CountingDoFn):
    def __init__(self, out_dir: str, kind: str, run_id: str, progress_dir=None,
                 namespace: str = "m3w", load=None):
        self.out_dir, self.kind, self.run_id, self.progress_dir = out_dir, kind, run_id, progress_dir
        self.namespace = namespace
        self.load = load  # sample -> sample with its media loaded (pairs: spilled JPEGs)

    def process(self, element):
        index, samples = element
        samples = [self.load(s) for s in samples] if self.load else list(samples)
        info = write_shard(self.out_dir, self.kind, index, samples, self.run_id)
        self.counts.inc("shards_skipped_complete" if info.skipped else "shards_written")
        self.counts.inc("samples_in_shards", info.count)
        yield info.to_json()


class AssignAndWriteShards(beam.PTransform):
    """Deterministic shard ids from sample keys; the shard count from the
    total (a global count as side input), so reruns make the same shards."""

    def __init__(self, out_dir, kind, run_id, samples_per_shard, progress_dir=None,
                 namespace: str = "m3w", load=None):
        super().__init__()
        self.namespace, self.load = namespace, load
        self.out_dir, self.kind, self.run_id = out_dir, kind, run_id
        self.samples_per_shard, self.progress_dir = samples_per_shard, progress_dir

    def expand(self, samples):
        from .card import ProfileFn, write_profile

        # The dataset card's distributions, counted as the shards are written.
        (samples | "ProfileSamples" >> beam.CombineGlobally(ProfileFn.make(self.kind))
         | "WriteProfile" >> beam.Map(write_profile, self.out_dir))
        total = samples | "CountSamples" >> beam.combiners.Count.Globally()
        per = self.samples_per_shard

        def assign(sample, n):
            num_shards = max(1, math.ceil(n / per))
            return shard_index_for_key(sample["__key__"], num_shards), sample

        return (samples
                | "AssignShard" >> beam.Map(assign, n=beam.pvalue.AsSingleton(total))
                | "GroupByShard" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(WriteShards(self.out_dir, self.kind, self.run_id,
                                                     self.progress_dir, self.namespace, self.load)))
