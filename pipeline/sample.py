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
  demo also shows the decoder's handling of truncated downloads;
- every such record carries a ``WARC-Stand-In`` header naming what its
  payload really is (pipeline.read.STAND_IN_HEADER), so the jobs mark those
  images ``"stand_in": true`` in the shard json and the browser flags them;
- beside them, real pages archived WITH their own images: 20 scikit-image
  gallery pages (tests/data/html/skimage-docs, BSD-3-Clause, from Debian's
  python-skimage-doc) under the URLs upstream publishes them at, each image
  the very file the page shows (no stand-in header).

The output is deterministic (fixed record ids and dates), so the demo's
shards are too.  Browser-made archives (e.g. Webrecorder) have this shape:
pages plus the images they loaded.
"""
from __future__ import annotations

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

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "retina.jpg",
          "hubble_deep_field.jpg", "motorcycle_left.png", "camera.png", "coins.png",
          "brick.png", "grass.png", "moon.png", "horse.png", "china.jpg", "flower.jpg",
          "grace_hopper.jpg", "clock_motion.png"]
WARC_DATE = "2024-05-01T00:00:00Z"
# Real pages with their own images, and where they are published.
OWN_IMAGES = "html/skimage-docs"
OWN_IMAGES_BASE = "https://scikit-image.org/docs/0.19.x/"


def _digest(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _content_type(name: str) -> str:
    return "image/png" if name.endswith(".png") else "image/jpeg"


def _write(writer: WARCWriter, url: str, body: bytes, content_type: str,
           stand_in: str | None = None) -> None:
    """One response record; ``stand_in`` (what the payload really is) marks a
    payload that is not the resource ``url`` served (pipeline.read.STAND_IN_HEADER)."""
    from .read import STAND_IN_HEADER  # (pipeline.read imports Beam: not before --help)

    http = StatusAndHeaders("200 OK", [("Content-Type", content_type),
                                      ("Content-Length", str(len(body)))],
                            protocol="HTTP/1.1")
    rid = _digest("record", url)
    warc_headers = {"WARC-Date": WARC_DATE,
                    "WARC-Record-ID": f"<urn:uuid:{rid[:8]}-{rid[8:12]}-{rid[12:16]}-"
                                      f"{rid[16:20]}-{rid[20:32]}>"}
    if stand_in:
        warc_headers[STAND_IN_HEADER] = stand_in
    rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                    warc_headers_dict=warc_headers)
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


def build_sample(out_path: str, data_dir: Path = DATA, max_pages: int | None = None,
                 own_image_pages: bool | None = None) -> dict:
    """Write the sample WARC; ``max_pages`` keeps the first N Readability pages
    (for tests); ``own_image_pages``: add the pages saved with their own images
    (default: when all pages are taken)."""
    from .read import html_file_url, iter_records  # (imports Beam: not before --help)

    if own_image_pages is None:
        own_image_pages = max_pages is None
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
                    _write(writer, img_url, truncated, "image/jpeg",
                           stand_in="first half of tests/data/images/rocket.jpg")
                    n_truncated += 1
                else:
                    _write(writer, img_url, photos[name], _content_type(name),
                           stand_in=f"tests/data/images/{name}")
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
                        _write(writer, img_url, photos[name], _content_type(name),
                               stand_in=f"tests/data/images/{name}")
                        n_images += 1
        own_pages, own_images = (_write_own_image_pages(writer, data_dir / OWN_IMAGES, fcfg,
                                                         archived) if own_image_pages else (0, 0))
    os.replace(tmp, out_path)
    return {"pages": n_pages + own_pages, "images": n_images + own_images,
            "truncated_images": n_truncated, "stand_in_images": n_images,
            "own_image_pages": own_pages, "own_images": own_images,
            "bytes": os.path.getsize(out_path)}


def _write_own_image_pages(writer, root: Path, fcfg: FilterConfig, archived: set) -> tuple[int, int]:
    """The real pages saved with their images, at their published URLs: every
    image a page references that was saved with it is archived as it is."""
    n_pages = n_images = 0
    for path in sorted(root.glob("**/*.html.gz")):
        rel = path.relative_to(root).as_posix()[: -len(".gz")]
        url = OWN_IMAGES_BASE + rel
        body = gzip.decompress(path.read_bytes())
        _write(writer, url, body, "text/html; charset=utf-8")
        n_pages += 1
        for img_url in page_image_urls(body.decode("utf-8"), url, fcfg):
            local = root / img_url[len(OWN_IMAGES_BASE):] if img_url.startswith(OWN_IMAGES_BASE) else None
            if img_url in archived or local is None or not local.is_file():
                continue  # not saved with the page: the job counts it as not archived
            archived.add(img_url)
            _write(writer, img_url, local.read_bytes(), _content_type(local.name))
            n_images += 1
    return n_pages, n_images


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m pipeline.sample", description="Assemble the bundled demo WARC.")
    ap.add_argument("--out", required=True, help="the WARC to write (e.g. build/sample/sample.warc.gz)")
    ap.add_argument("--max-pages", type=int, help="only the first N pages (default: all)")
    args = ap.parse_args(argv)
    if args.max_pages is not None and args.max_pages < 1:
        ap.error(f"--max-pages {args.max_pages}: expected an integer >= 1")
    st = build_sample(args.out, max_pages=args.max_pages)
    print(f"sample WARC {args.out}: {st['pages']} real pages, {st['images']} archived images: "
          f"{st['own_images']} the pages' own ({st['own_image_pages']} pages), "
          f"{st['stand_in_images']} stand-ins ({st['truncated_images']} deliberately truncated); "
          f"{st['bytes'] / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
