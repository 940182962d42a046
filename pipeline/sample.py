"""Assemble the bundled demo corpus: a WARC of real pages with archived images.

    python -m pipeline.sample --out build/sample/sample.warc.gz

What is real and what is assembled (also in tests/data/PROVENANCE.md):
- the pages are the real saved web pages of tests/data/html/readability
  (Mozilla Readability's test pages), archived under the canonical URL each
  page declares (pages that declare none are archived under
  http://fakehost/test/NAME/, the host Readability's own tests use);
- their images were not saved with them, so for every image URL that the M3W
  extractor would keep, the WARC holds a real photo from tests/data/images
  (scikit-image / scikit-learn / matplotlib sample photos), chosen by a hash
  of the URL: real image bytes, not the page's original picture;
- the same for the images referenced by the real crawl pages in
  tests/data/warc (which the demo reads beside this WARC);
- one image URL in nine gets the first half of a real JPEG instead, so the
  demo also shows the decoder's handling of truncated downloads.

The output is deterministic (fixed record ids and dates), so the demo's
shards are too.  Browser-made archives (e.g. Webrecorder) have this shape:
pages plus the images they loaded.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .extract import ImageRef, extract_page
from .filters import FilterConfig, image_drop_reason
from .decode import decode_html
from .read import html_file_url, iter_records

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg",
          "hubble_deep_field.jpg", "motorcycle_left.png", "camera.png", "coins.png",
          "brick.png", "grass.png", "moon.png", "horse.png", "china.jpg", "flower.jpg",
          "grace_hopper.jpg", "clock_motion.png"]
WARC_DATE = "2024-05-01T00:00:00Z"


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _content_type(name: str) -> str:
    return "image/png" if name.endswith(".png") else "image/jpeg"


def _write(writer: WARCWriter, url: str, body: bytes, content_type: str) -> None:
    http = StatusAndHeaders("200 OK", [("Content-Type", content_type),
                                      ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    rid = _digest("record", url)
    rec = writer.create_warc_record(
        url, "response", payload=io.BytesIO(body), http_headers=http,
        warc_headers_dict={"WARC-Date": WARC_DATE,
                           "WARC-Record-ID": f"<urn:uuid:{rid[:8]}-{rid[8:12]}-{rid[12:16]}-"
                                             f"{rid[16:20]}-{rid[20:32]}>"})
    writer.write_record(rec)


def photo_for_url(img_url: str) -> str | None:
    """Which real photo the sample archives under ``img_url`` (None: the
    deliberately truncated JPEG)."""
    h = int(_digest("photo", img_url), 16)
    return None if h % 9 == 0 else PHOTOS[h % len(PHOTOS)]


def page_image_urls(html: str, url: str, fcfg: FilterConfig) -> list[str]:
    page = extract_page(html, url)
    out = []
    for node in page.nodes:
        if isinstance(node, ImageRef) and image_drop_reason(node.url, node.width,
                                                            node.height, fcfg) is None:
            out.append(node.url)
    return out


def build_sample(out_path: str, data_dir: Path = DATA, max_pages: int | None = None) -> dict:
    """Write the sample WARC; ``max_pages`` keeps the first N pages (for tests)."""
    fcfg = FilterConfig()
    photos = {p: (data_dir / "images" / p).read_bytes() for p in PHOTOS}
    jpeg = photos["rocket.jpg"]
    truncated = jpeg[: len(jpeg) // 2]
    pages = sorted((data_dir / "html" / "readability").glob("*/source.html.gz"))[:max_pages]
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    tmp = out_path + ".tmp"
    n_pages = n_images = n_truncated = 0
    archived: set[str] = set()
    with open(tmp, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for path in pages:
            body = gzip.decompress(path.read_bytes())
            url = html_file_url(str(path), body)
            if not url.startswith(("http://", "https://")):
                # No canonical URL saved with the page: use the host name
                # Readability's own tests give these pages.
                url = f"http://fakehost/test/{path.parent.name}/"
            _write(writer, url, body, "text/html; charset=utf-8")
            n_pages += 1
            for img_url in page_image_urls(body.decode("utf-8", "replace"), url, fcfg):
                if img_url in archived:
                    continue
                archived.add(img_url)
                name = photo_for_url(img_url)
                if name is None:
                    _write(writer, img_url, truncated, "image/jpeg")
                    n_truncated += 1
                else:
                    _write(writer, img_url, photos[name], _content_type(name))
                n_images += 1
        # The real crawl WARCs beside the sample: archive photos for the
        # images their pages reference too (the pages stay in their own files).
        for warc in sorted((data_dir / "warc").glob("*.warc*")):
            for rec in iter_records(str(warc)):
                if not rec.is_html:
                    continue
                html, _ = decode_html(rec.body, rec.charset)
                for img_url in page_image_urls(html, rec.url, fcfg):
                    if img_url not in archived:
                        archived.add(img_url)
                        name = photo_for_url(img_url) or "rocket.jpg"
                        _write(writer, img_url, photos[name], _content_type(name))
                        n_images += 1
    os.replace(tmp, out_path)
    return {"pages": n_pages, "images": n_images, "truncated_images": n_truncated,
            "bytes": os.path.getsize(out_path)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Assemble the bundled demo WARC.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-pages", type=int, help="only the first N pages (default: all)")
    args = ap.parse_args(argv)
    st = build_sample(args.out, max_pages=args.max_pages)
    print(f"sample WARC {args.out}: {st['pages']} real pages, {st['images']} archived images "
          f"({st['truncated_images']} deliberately truncated), {st['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
