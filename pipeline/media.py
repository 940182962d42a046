"""Media resolution shared by the m3w, pairs and videos jobs: an archived
copy from the input WARCs when there is one, else the durable media cache
(pipeline/cache.py), else a fetch; then the image stage, fanned out to every
(sample, position) that uses the URL."""
from __future__ import annotations

import logging

import apache_beam as beam

from .documents import image_result
from .images import ImageConfig, process_image
from .jobs import CountingDoFn
from .read import STAND_IN_KEY

log = logging.getLogger(__name__)


def noai(headers: dict) -> bool:
    v = (headers or {}).get("x-robots-tag", "").lower()
    return "noai" in v or "noimageai" in v


class ResolveMedia(CountingDoFn):
    """One URL's references + archived copies → archived bytes, or a fetch request.

    ``label`` names the counters (``{label}_requested``, ``{label}_from_warc``):
    "images" for m3w and pairs, "videos" for clips."""

    FETCH = "fetch"

    def __init__(self, progress_dir=None, label: str = "images"):
        self.progress_dir = progress_dir
        self.label = label

    def process(self, element):
        url, grouped = element
        refs = sorted(grouped["refs"])
        if refs:  # else: archived but never referenced by a kept document
            yield from self._resolve(url, refs, grouped)

    def _resolve(self, url, refs, grouped):
        archived = sorted(grouped["archived"], key=lambda a: (len(a[0]), a[0]))
        self.counts.inc(f"{self.label}_requested")
        if archived:
            body, headers = archived[0]
            if noai(headers):
                yield url, refs, {"ok": False, "reason": "noai"}, None
            else:
                self.counts.inc(f"{self.label}_from_warc")
                if (headers or {}).get(STAND_IN_KEY):
                    self.counts.inc(f"{self.label}_stand_in")
                    yield url, refs, None, (body, "warc", True)
                else:
                    yield url, refs, None, (body, "warc")
        else:
            yield beam.pvalue.TaggedOutput(self.FETCH, (url, refs))


class ProcessImages(CountingDoFn):
    """Bytes → resized JPEG + hashes, fanned out to every (doc, index) using it.
    No verify hash here (neither job stores one since 2026-12-04): the eval
    dedup step computes it from the stored JPEG only for an image whose phash
    meets a crop view of an eval image (``dedup.apply.stored_verify_hash``)."""

    def __init__(self, icfg: ImageConfig, progress_dir=None):
        self.icfg, self.progress_dir = icfg, progress_dir

    def process(self, element):
        url, refs, failed, payload = element
        if failed is not None:
            res = failed
        else:
            data, via, stand_in = payload_parts(payload)
            processed = process_image(data, self.icfg, source=url, verify_hash=False)
            if processed.animated:
                self.counts.inc("images_animated_first_frame")
            res = image_result(processed, via, stand_in)
            if not res["ok"] and self.keep_dropped is not None:
                from shards.dropped import thumbnail

                res["thumb"] = thumbnail(data)  # the victim's picture (--keep-dropped)
        if res["ok"]:
            self.counts.inc("images_ok")
        for doc_key, index in refs:
            yield doc_key, (index, res)


def payload_parts(payload: tuple) -> tuple[bytes, str, bool]:
    """(bytes, via[, stand_in]) → (bytes, via, stand_in): only archived
    stand-ins (pipeline.read.STAND_IN_HEADER) carry the third element."""
    data, via = payload[0], payload[1]
    return data, via, bool(payload[2]) if len(payload) > 2 else False


def fetch_outcome(element):
    url, refs, fr = element
    if fr.ok:
        return url, refs, None, (fr.data, "fetch")
    return url, refs, {"ok": False, "reason": f"fetch_{fr.reason}"}, None


class LookUpCache(CountingDoFn):
    """(url, payload) → a cached fetch outcome (main output, as FetchByHost's
    (url, payload, FetchResult)) or the element for fetching (MISS).

    A hit counts ``fetch_ok`` / ``fetch_drop_<reason>`` as the fetch it stands
    for did, so a job's data counters do not depend on what the cache held;
    ``media_cache_*`` say how the run got them."""

    MISS = "miss"

    def __init__(self, cache, namespace: str, progress_dir=None):
        self.cache, self.namespace, self.progress_dir = cache, namespace, progress_dir

    def process(self, element):
        url, payload = element
        state, result = self.cache.lookup(url)
        if state == "hit":
            self.counts.inc("media_cache_hits")
            self.counts.inc("fetch_ok" if result.ok else f"fetch_drop_{result.reason}")
            yield url, payload, result
            return
        self.counts.inc("media_cache_misses")
        if state == "corrupt":
            self.counts.inc("media_cache_corrupt")
            log.warning("%s: damaged media cache entry for %s; fetching again",
                        self.cache.path(url), url)
        yield beam.pvalue.TaggedOutput(self.MISS, element)


class FetchMedia(beam.PTransform):
    """(url, payload) → (url, payload, FetchResult): FetchByHost, behind the
    durable media cache (pipeline.cache) when ``cache_dir`` is given."""

    def __init__(self, fetch_cfg, namespace: str, cache_dir: str | None = None, progress_dir=None,
                 then=None):
        """``then(pcoll, label)``: applied to the hits and to the fetched before they
        are flattened, so that the raw bytes are used where they arrive (fused with
        the fetch) instead of crossing a stage boundary (the DirectRunner holds a
        flattened PCollection whole)."""
        super().__init__()
        self.fetch_cfg, self.namespace = fetch_cfg, namespace
        self.cache_dir, self.progress_dir = cache_dir, progress_dir
        self.then = then or (lambda pcoll, label: pcoll)

    def expand(self, pcoll):
        from .cache import MediaCache
        from .fetch import FetchByHost

        if not self.cache_dir:
            return self.then(pcoll | "Fetch" >> FetchByHost(
                self.fetch_cfg, metrics_namespace=self.namespace), "Fetched")
        cache = MediaCache(self.cache_dir, self.fetch_cfg)
        looked = pcoll | "LookUpCache" >> beam.ParDo(
            LookUpCache(cache, self.namespace, self.progress_dir)).with_outputs(
                LookUpCache.MISS, main="hits")
        fetched = looked[LookUpCache.MISS] | "Fetch" >> FetchByHost(
            self.fetch_cfg, metrics_namespace=self.namespace, cache=cache)
        return ((self.then(looked.hits, "Cached"), self.then(fetched, "Fetched"))
                | "CachedOrFetched" >> beam.Flatten())


# ------------------------------------------------------------------ spilled images

class Spilled(str):
    """A processed JPEG parked on the output's filesystem: ``PACK#OFFSET:LENGTH``
    (a span of a :class:`SpillPack` file) stands for the bytes in a sample's
    ``jpg`` member until the shard writer loads it."""

    __slots__ = ()

    def span(self) -> tuple[str, int, int]:
        path, _, span = self.rpartition("#")
        offset, _, length = span.partition(":")
        return path, int(offset), int(length)


def spill_dir(out_dir: str, run_id: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(out_dir, SPILL_DIRNAME, run_id)


SPILL_DIRNAME = ".spill"


class SpillPack:
    """One bundle's spilled JPEGs, appended to one file ROOT/<random>.pack.

    One file per bundle, not per image: a file per image cost each image an
    open, a rename and (at the end of the run, in the driver, serially) an
    unlink, ~1 s per 1,000 images on a loaded machine. The name is new for every
    bundle attempt, so a retried bundle never writes into a file a committed one
    points to; :meth:`close` (at finish_bundle, before Beam commits the bundle's
    outputs) makes the spans readable. Files of failed attempts are left for
    :func:`remove_spill`."""

    def __init__(self, root: str):
        self.root, self.path, self._fh, self._pos = root, None, None, 0

    def add(self, jpeg: bytes) -> Spilled:
        if self._fh is None:
            import uuid

            from apache_beam.io.filesystems import FileSystems

            self.path = FileSystems.join(self.root, f"{uuid.uuid4().hex}.pack")
            if "://" not in self.path:  # local: the cheap path (no Beam filesystem round trip)
                import os

                os.makedirs(self.root, exist_ok=True)
                self._fh = open(self.path, "wb")
            else:
                self._fh = FileSystems.create(self.path, compression_type="uncompressed")
        self._fh.write(jpeg)
        spilled = Spilled(f"{self.path}#{self._pos}:{len(jpeg)}")
        self._pos += len(jpeg)
        return spilled

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh, self._pos = None, 0


def load_spilled(data) -> bytes:
    """The bytes of a ``jpg`` member: itself, or what a :class:`Spilled` points to."""
    if not isinstance(data, Spilled):
        return data
    path, offset, length = data.span()
    if "://" not in path:
        with open(path, "rb") as fh:
            fh.seek(offset)
            out = fh.read(length)
    else:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path, compression_type="uncompressed") as fh:
            fh.seek(offset)
            out = fh.read(length)
    if len(out) != length:
        raise OSError(f"{path}: spilled image at {offset} cut short ({len(out)} of {length} bytes)")
    return out


def unspill_sample(sample: dict) -> dict:
    """The sample with its spilled image member(s) loaded (the shard writer's hook)."""
    if not any(isinstance(v, Spilled) for v in sample.values()):
        return sample
    return {k: load_spilled(v) for k, v in sample.items()}


def remove_spill(out_dir: str) -> None:
    """Drop OUTPUT/.spill after a finished run (its shards hold the images now)."""
    from apache_beam.io.filesystems import FileSystems

    root = FileSystems.join(out_dir, SPILL_DIRNAME)
    try:
        if FileSystems.exists(root):
            FileSystems.delete([root])
    except Exception as e:  # noqa: BLE001 - leftovers are harmless; say so
        log.warning("%s: could not remove the spilled images (%s); safe to delete", root, e)
