"""Media resolution shared by the m3w, pairs and videos jobs: an archived
copy from the input WARCs when there is one, else a fetch request; then the
image stage, fanned out to every (sample, position) that uses the URL."""
from __future__ import annotations

import apache_beam as beam

from .documents import image_result
from .images import ImageConfig, process_image
from .jobs import CountingDoFn


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
                yield url, refs, None, (body, "warc")
        else:
            yield beam.pvalue.TaggedOutput(self.FETCH, (url, refs))


class ProcessImages(CountingDoFn):
    """Bytes → resized JPEG + hashes, fanned out to every (doc, index) using it."""

    def __init__(self, icfg: ImageConfig, progress_dir=None):
        self.icfg, self.progress_dir = icfg, progress_dir

    def process(self, element):
        url, refs, failed, payload = element
        if failed is not None:
            res = failed
        else:
            data, via = payload
            processed = process_image(data, self.icfg, source=url)
            if processed.animated:
                self.counts.inc("images_animated_first_frame")
            res = image_result(processed, via)
        if res["ok"]:
            self.counts.inc("images_ok")
        for doc_key, index in refs:
            yield doc_key, (index, res)


def fetch_outcome(element):
    url, refs, fr = element
    if fr.ok:
        return url, refs, None, (fr.data, "fetch")
    return url, refs, {"ok": False, "reason": f"fetch_{fr.reason}"}, None
