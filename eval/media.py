"""Images and videos of eval queries as model inputs, preprocessed as in training.

Images: train.data.load_image (shorter side to the model's size, centre
crop, the vision encoder's mean / std). Videos: pipeline.video_frames at
1 FPS (the rate the video-text pairs were built at), then ``frames`` of them
evenly spread (train.data.even_indices, as the trainer picks them), each
through load_image: [F, 3, H, W]. Decoded tensors are kept in a small LRU,
since the same demonstrations recur across queries and trials. A record with
``start`` / ``end`` (iVQA, YouCook2, STAR, RareAct) is sampled inside that window only.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import torch


class MediaError(ValueError):
    pass


class MediaLoader:
    def __init__(self, size: int, mean, std, frames: int = 8, cache_items: int = 512):
        self.size, self.mean, self.std, self.frames = size, tuple(mean), tuple(std), frames
        self._cache: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.cache_items = cache_items

    @classmethod
    def for_model(cls, model, frames: int | None = None) -> "MediaLoader":
        return cls(model.image_size, model.image_mean, model.image_std,
                   frames or min(8, model.cfg.max_frames))

    def load(self, path: str, kind: str, window: tuple[float, float] | None = None) -> torch.Tensor:
        """[3, H, W] for an image, [F, 3, H, W] for a video (kind "video"); ``window``
        (start, end) seconds: only the frames sampled in that part of the clip."""
        key = (os.path.realpath(path), kind, window)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        x = self._video(path, window) if kind == "video" else self._image(Path(path).read_bytes(), path)
        self._cache[key] = x
        if len(self._cache) > self.cache_items:
            self._cache.popitem(last=False)
        return x

    def _image(self, data: bytes, where) -> torch.Tensor:
        from train.data import load_image
        try:
            return load_image(data, self.size, self.mean, self.std)
        except Exception as e:  # PIL raises many types for broken files
            raise MediaError(f"{where}: not a readable image ({type(e).__name__}: {e})") from None

    def _video(self, path: str, window: tuple[float, float] | None) -> torch.Tensor:
        from pipeline.video_frames import VideoConfig, decode_video
        from train.data import even_indices
        cfg = VideoConfig(fps=1.0, max_frames=64) if window is None else \
            VideoConfig(fps=1.0, max_frames=int(window[1]) + 2, max_seconds=float(window[1]) + 1e-3)
        d = decode_video(Path(path).read_bytes(), cfg, source=str(path))
        if not d.ok or not d.frames:
            raise MediaError(f"{path}: video not decodable ({d.reason})")
        keep = list(range(len(d.frames)))
        if window is not None:
            keep = [i for i, t in enumerate(d.frame_times) if window[0] - 1e-3 <= t <= window[1] + 1e-3]
            if not keep:
                raise MediaError(f"{path}: no frame in the window {window[0]:g}-{window[1]:g} s "
                                 f"(the clip has frames at {d.frame_times[0]:g}-{d.frame_times[-1]:g} s)")
        frames = [self._image(d.frames[keep[i]], path) for i in even_indices(len(keep), self.frames)]
        return torch.stack(frames)
