"""Reading shards back: raw member dicts per sample, as webdataset groups them."""
from __future__ import annotations

import io
import tarfile
from typing import Iterator

from webdataset.tariterators import group_by_keys


def _tar_members(data: bytes, name: str) -> Iterator[dict]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            fh = tar.extractfile(ti)
            yield {"fname": ti.name, "data": fh.read(), "__url__": name}


def iter_tar_samples(data: bytes, name: str = "") -> Iterator[dict]:
    """Samples of one tar's bytes, grouped by key with webdataset's own rule
    (the key is the member name up to its first dot)."""
    for sample in group_by_keys(_tar_members(data, name)):
        sample.pop("__url__", None)
        sample.pop("__local_path__", None)
        yield sample


def read_shard(path: str) -> list[dict]:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        return list(iter_tar_samples(fh.read(), path))
