"""Choosing the demonstrations of each query: random, or RICES.

Random: ``shots`` records of the task's demo split, drawn with a seed made
of (trial seed, query id), so a query gets the same demonstrations however
the queries are split across ranks.

RICES (Yang et al. 2022, as in the Flamingo paper and OpenFlamingo): the
``shots`` demo-split examples whose image features are nearest the query's
by cosine similarity, the most similar placed last (next to the query).
Features are the model's own frozen vision encoder, patch tokens averaged
(over frames too for videos: the frames of the record's clip window when it
has one, as the query's are) and L2-normalised, computed once per split and
cached on disk (``--cache-dir``, an .npz per task and split named by the
vision encoder's config and the media list, so a changed split or encoder
never reuses stale features).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from train.data import seed_for


def random_demos(pool: Sequence, shots: int, seed: int, uid: str) -> list:
    if shots > len(pool):
        raise ValueError(f"{shots} shots asked, the demo pool has {len(pool)} examples")
    rng = random.Random(seed_for("demos", seed, uid))
    return rng.sample(list(pool), shots)


@torch.no_grad()
def image_features(model, media: Sequence[torch.Tensor], batch_size: int = 32) -> np.ndarray:
    """[N, D] L2-normalised mean patch features of preprocessed images ([C,H,W]) or videos ([F,C,H,W])."""
    out = []
    for i in range(0, len(media), batch_size):
        chunk = [m[None] if m.dim() == 3 else m for m in media[i:i + batch_size]]
        sizes = [c.shape[0] for c in chunk]
        frames = torch.cat(chunk).to(next(model.vision.parameters()).device)
        feats = model.vision(frames.to(next(model.vision.parameters()).dtype)).float().mean(1)   # [sum F, D]
        per = torch.stack([f.mean(0) for f in feats.split(sizes)])
        out.append(torch.nn.functional.normalize(per, dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _vision_key(model) -> dict:
    cfg = model.cfg
    key = {"vision": cfg.vision, "layer": cfg.vision_feature_layer, "dtype": cfg.frozen_dtype,
           "size": model.image_size}
    if cfg.vision == "tiny" or not cfg.freeze_vision:
        # random (seeded) or trained weights: the weights themselves name the features
        h = hashlib.sha256()
        for name, t in sorted(model.vision.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
        key["weights"] = h.hexdigest()[:16]
    return key


class Rices:
    """Nearest demonstrations by vision features, with the pool's features cached on disk."""

    def __init__(self, model, pool: Sequence, load, cache_dir: str | os.PathLike | None, name: str):
        """``pool``: objects with ``.uid``, ``.media`` (path) and ``.record``; ``load(path, record) -> tensor``
        (the record's ``start`` / ``end``, if any, choose the clip window)."""
        self.model, self.pool, self.load = model, list(pool), load
        self.cache_hit = False
        key = json.dumps({"v": _vision_key(model), "pool": [
            (q.uid, str(q.media), q.record.get("start"), q.record.get("end")) for q in self.pool]}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"rices-{name}-{digest}.npz" if cache_dir else None
        if path is not None and path.is_file():
            with np.load(path) as z:
                if list(z["uids"]) == [q.uid for q in self.pool]:
                    self.features = z["features"]
                    self.cache_hit = True
        if not self.cache_hit:
            self.features = image_features(model, [load(q.media, q.record) for q in self.pool])
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, uids=np.array([q.uid for q in self.pool]), features=self.features)
                os.replace(tmp, path)
        self.cache_path = path

    def nearest(self, query_media: torch.Tensor, shots: int) -> list:
        """The ``shots`` nearest pool entries, least similar first, most similar last."""
        if shots > len(self.pool):
            raise ValueError(f"{shots} shots asked, the demo pool has {len(self.pool)} examples")
        if shots == 0:
            return []
        q = image_features(self.model, [query_media])[0]
        sims = self.features @ q
        order = np.argsort(-sims, kind="stable")[:shots]
        return [self.pool[i] for i in order[::-1]]
