"""Within-corpus dedup: over-frequent images and near-duplicate documents.

Beam-friendly pieces (the m3w job wires them in):

- :class:`ImageFrequency`, a ``CombineFn`` over doc keys per image hash.  Use
  ``pairs | beam.CombinePerKey(ImageFrequency(max_docs))`` on a PCollection of
  ``(phash, doc_key)``; each output value is ``(num_docs, doc_keys)`` with
  ``num_docs`` capped at ``max_docs + 1`` (enough to decide, bounded memory).
  :func:`is_too_frequent` says whether to drop: images in more than K
  documents (K = 10, as OBELICS) are logos, buttons and stock banners.
  :class:`FrequentImages` wraps both: ``(phash, doc_key)`` -> phashes to drop.
- :class:`NearDupDocs`: MinHash (datasketch) over word 5-gram shingles, LSH
  banding done as a Beam ``GroupByKey`` on (band, band hash) buckets; every
  candidate pair in a bucket is verified with the MinHash Jaccard estimate
  and the doc with the larger key of each verified pair is dropped.  Output:
  the keys to drop.  The same rule in memory: :func:`near_duplicate_keys`
  (datasketch ``MinHashLSH``), which tests and small runs use.
"""
from __future__ import annotations

import hashlib
from typing import Iterable

import apache_beam as beam
import numpy as np
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from dedup.fingerprints import normalize_words

DEFAULT_MAX_DOCS = 10
NUM_PERM = 128
SHINGLE = 5
JACCARD = 0.8


# ---------------------------------------------------------------- image frequency


class ImageFrequency(beam.CombineFn):
    """Distinct doc keys per image hash, kept up to ``max_docs + 1``."""

    def __init__(self, max_docs: int = DEFAULT_MAX_DOCS):
        self.cap = max_docs + 1

    def create_accumulator(self):
        return set()

    def add_input(self, acc, doc_key):
        if len(acc) < self.cap:
            acc.add(doc_key)
        return acc

    def merge_accumulators(self, accs):
        out = set()
        for a in accs:
            for k in a:
                if len(out) >= self.cap:
                    return out
                out.add(k)
        return out

    def extract_output(self, acc):
        return len(acc), sorted(acc)


def is_too_frequent(count: int, max_docs: int = DEFAULT_MAX_DOCS) -> bool:
    return count > max_docs


class FrequentImages(beam.PTransform):
    """``(phash, doc_key)`` -> ``phash`` of every image in more than
    ``max_docs`` distinct documents."""

    def __init__(self, max_docs: int = DEFAULT_MAX_DOCS):
        super().__init__()
        self.max_docs = max_docs

    def expand(self, pcoll):
        max_docs = self.max_docs
        return (pcoll
                | "CountDocsPerImage" >> beam.CombinePerKey(ImageFrequency(max_docs))
                | "KeepTooFrequent" >> beam.Filter(lambda kv: is_too_frequent(kv[1][0], max_docs))
                | "Hash" >> beam.Keys())


# ---------------------------------------------------------------- near-duplicate documents


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    words = normalize_words(text)
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def minhash(text: str, num_perm: int = NUM_PERM) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode("utf-8") for s in shingles(text)])
    return m


def lsh_params(threshold: float = JACCARD, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) as datasketch's MinHashLSH picks them."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def near_duplicate_keys(docs: Iterable[tuple[str, str]], threshold: float = JACCARD) -> set[str]:
    """Keys to drop from ``(key, text)`` docs: every doc that has a near-duplicate
    (estimated Jaccard >= threshold) with a smaller key."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sigs = {}
    for key, text in sorted(docs):
        m = minhash(text)
        if m.is_empty():
            continue
        sigs[key] = m
        lsh.insert(key, m)
    drop = set()
    for key, m in sigs.items():
        for other in lsh.query(m):
            if other < key and sigs[other].jaccard(m) >= threshold:
                drop.add(key)
                break
    return drop


class NearDupDocs(beam.PTransform):
    """``(doc_key, text)`` -> doc keys to drop (near-duplicates of a doc with
    a smaller key).  Buckets are LSH bands, so each worker sees only docs
    that share a band; a pathological giant bucket is capped at
    ``max_bucket`` docs (the rest are compared against its first docs only)."""

    def __init__(self, threshold: float = JACCARD, max_bucket: int = 10_000):
        super().__init__()
        self.threshold = threshold
        self.max_bucket = max_bucket

    def expand(self, pcoll):
        bands, rows = lsh_params(self.threshold)
        threshold, max_bucket = self.threshold, self.max_bucket

        def signature(kv):
            key, text = kv
            m = minhash(text)
            if not m.is_empty():
                yield key, m.hashvalues.astype(np.uint64).tolist()

        def band_keys(kv):
            key, hv = kv
            for b in range(bands):
                band = np.array(hv[b * rows:(b + 1) * rows], dtype=np.uint64).tobytes()
                yield f"{b}:{hashlib.sha1(band).hexdigest()[:16]}", (key, hv)

        def pairs_in_bucket(kv):
            _, members = kv
            members = sorted(members)[:max_bucket]
            for i, (ka, ha) in enumerate(members):
                a = np.array(ha, dtype=np.uint64)
                for kb, hb in members[i + 1:]:
                    if kb != ka and np.mean(a == np.array(hb, dtype=np.uint64)) >= threshold:
                        yield max(ka, kb)

        return (pcoll
                | "MinHash" >> beam.FlatMap(signature)
                | "LshBands" >> beam.FlatMap(band_keys)
                | "GroupByBand" >> beam.GroupByKey()
                | "VerifyPairs" >> beam.FlatMap(pairs_in_bucket)
                | "Distinct" >> beam.Distinct())
