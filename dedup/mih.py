"""Exact Hamming-radius search over 64-bit hashes by multi-index hashing.

Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index
Hashing" (CVPR 2012): split each 64-bit code into ``m`` disjoint blocks.  If
two codes are within distance ``r``, then by the pigeonhole principle at least
one block differs in at most ``r // m`` bits.  So a query probes, in each
block's table, every block value within ``r // m`` bits of its own, and only
those candidates get their full distance computed.  The answer is exact: the
same set a full scan returns.

Each block table is a CSR layout (``offsets`` into an ``ids`` array sorted by
block value), so a probe is two array reads; everything is vectorised over a
batch of queries.  With N = 1M codes, m = 3 blocks of ~21 bits keeps buckets
near-empty (N / 2^21 ~ 0.5), which is the paper's m ~ 64 / log2(N) rule.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np


def hex_to_u64(hashes) -> np.ndarray:
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


def popcount64(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def _block_bounds(num_blocks: int) -> list[tuple[int, int]]:
    base, extra = divmod(64, num_blocks)
    bounds, lo = [], 0
    for i in range(num_blocks):
        # Spare bits go to the LAST blocks: the first blocks are probed at the
        # larger radius (see block_radii), and narrower blocks mean fewer probes.
        width = base + (1 if i >= num_blocks - extra else 0)
        bounds.append((lo, width))
        lo += width
    return bounds


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for k in range(1, radius + 1):
        for bits in combinations(range(width), k):
            m = 0
            for b in bits:
                m |= 1 << b
            masks.append(m)
    return np.array(masks, dtype=np.int32)


class MultiIndexHash:
    """Immutable index of uint64 codes answering "all codes within r"."""

    def __init__(self, codes: np.ndarray, num_blocks: int | None = None):
        """``num_blocks`` defaults to 4 (16-bit tables) below 2^18 codes and
        3 (21-22 bits) above, the paper's m ~ 64 / log2(N)."""
        self.codes = np.ascontiguousarray(codes, dtype=np.uint64)
        n = len(self.codes)
        if num_blocks is None:
            num_blocks = 4 if n < 2**18 else 3
        self.num_blocks = num_blocks
        self.bounds = _block_bounds(num_blocks)
        self.tables: list[tuple[np.ndarray, np.ndarray]] = []
        self.occupied: list[np.ndarray] = []
        for lo, width in self.bounds:
            vals = ((self.codes >> np.uint64(lo)) & np.uint64((1 << width) - 1)).astype(np.int64)
            order = np.argsort(vals, kind="stable")
            counts = np.bincount(vals, minlength=1 << width)
            offsets = np.zeros((1 << width) + 1, dtype=np.int32 if n < 2**31 else np.int64)
            np.cumsum(counts, out=offsets[1:])
            self.tables.append((offsets, order.astype(offsets.dtype)))
            # A 1-byte-per-bucket occupancy map small enough to stay in cache:
            # most probes land in empty buckets and stop here.
            self.occupied.append(counts > 0)
        self._masks: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.codes)

    def _masks_for(self, width: int, radius: int) -> np.ndarray:
        key = (width, radius)
        if key not in self._masks:
            self._masks[key] = _flip_masks(width, radius)
        return self._masks[key]

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query, (ids, distances) of all codes within ``radius``,
        ids ascending."""
        q_idx, ids, dist = self.search_pairs(queries, radius)
        out = []
        bounds = np.searchsorted(q_idx, np.arange(len(queries) + 1))
        for i in range(len(queries)):
            a, b = bounds[i], bounds[i + 1]
            out.append((ids[a:b], dist[a:b]))
        return out

    def block_radii(self, radius: int) -> list[int]:
        """Per-block probe radius.  With r = s*m + a (0 <= a < m), a code
        within r has a block among the first a+1 within s bits, or one of
        the rest within s-1 bits (Norouzi et al., Prop. 1): fewer probes
        than searching every block at s."""
        s, a = divmod(radius, self.num_blocks)
        return [s if i <= a else s - 1 for i in range(self.num_blocks)]

    def search_pairs(self, queries: np.ndarray, radius: int, batch: int = 2048):
        """All (query index, code id, distance) with distance <= radius, as
        three arrays sorted by (query index, code id)."""
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        parts = [self._search_batch(queries[i:i + batch], radius, i)
                 for i in range(0, len(queries), batch)]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        return tuple(np.concatenate(x) for x in zip(*parts))

    def _search_batch(self, queries: np.ndarray, radius: int, q_offset: int):
        nq = len(queries)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if nq == 0 or len(self.codes) == 0:
            return empty
        q_parts, c_parts = [], []
        for (lo, width), (offsets, order), occupied, sub_r in zip(
                self.bounds, self.tables, self.occupied, self.block_radii(radius)):
            if sub_r < 0:
                continue
            masks = self._masks_for(width, sub_r)
            qv = ((queries >> np.uint64(lo)) & np.uint64((1 << width) - 1)).astype(np.int32)
            probes = (qv[:, None] ^ masks[None, :]).ravel()            # (nq * P,)
            hit = np.flatnonzero(occupied[probes])
            if len(hit) == 0:
                continue
            bucket = probes[hit]
            start = offsets[bucket].astype(np.int64)
            counts = offsets[bucket + 1].astype(np.int64) - start
            total = int(counts.sum())
            # Expand every [start, start + count) range into positions, vectorised.
            ends = np.cumsum(counts)
            pos = np.arange(total, dtype=np.int64) + np.repeat(start - (ends - counts), counts)
            q_parts.append(np.repeat(hit // len(masks), counts))
            c_parts.append(order[pos])
        if not q_parts:
            return empty
        qi = np.concatenate(q_parts)
        ci = np.concatenate(c_parts).astype(np.int64)
        d = popcount64(queries[qi] ^ self.codes[ci]).astype(np.int64)
        keep = d <= radius
        qi, ci, d = qi[keep], ci[keep], d[keep]
        # A code can be found through several blocks: keep one of each pair.
        key, first_idx = np.unique(qi * len(self.codes) + ci, return_index=True)
        return qi[first_idx] + q_offset, ci[first_idx], d[first_idx]


def brute_force_pairs(codes: np.ndarray, queries: np.ndarray, radius: int):
    """The full scan MultiIndexHash must agree with (used by tests and bench)."""
    q_parts, c_parts, d_parts = [], [], []
    for i, q in enumerate(np.asarray(queries, dtype=np.uint64)):
        d = popcount64(codes ^ q)
        hit = np.nonzero(d <= radius)[0]
        q_parts.append(np.full(len(hit), i, dtype=np.int64))
        c_parts.append(hit.astype(np.int64))
        d_parts.append(d[hit].astype(np.int64))
    if not q_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(q_parts), np.concatenate(c_parts), np.concatenate(d_parts)
