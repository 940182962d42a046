"""An adversarial input corpus, generated into a directory (never committed).

Each case is one small input file (a WARC, so it goes through the real reader),
plus fetch cases that need the loopback server (tests/helpers/http_server.py):

    cases = build_corpus(tmp_dir)           # -> [Case(name, path, kind, note)]
    fetch = fetch_cases(server)             # -> [FetchCase(name, url, expect)]

Every page carries enough ordinary prose to pass the paragraph filters, so the
hostile part is what the stages actually see.
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from dataclasses import dataclass

PROSE = ("The harbour at dawn was quiet, and the fishing boats rocked slowly while the "
         "gulls circled over the nets that the crew had left to dry on the wooden pier. ")


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    note: str


@dataclass(frozen=True)
class FetchCase:
    name: str
    url: str
    expect: str          # the drop reason the fetcher must give
    max_seconds: float   # bound on the fetch's wall time


def _warc(path: str, records: list[tuple[str, str, bytes, dict]]) -> None:
    """records: (url, content_type, http_body, extra_http_headers)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for url, ctype, body, *more in records:
            extra = more[0] if more else {}
            headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
            headers += list(extra.items())
            http = StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1")
            rec = w.create_warc_record(url, "response", payload=io.BytesIO(body),
                                       http_headers=http)
            w.write_record(rec)


def _page(body_html: str, title: str = "case") -> bytes:
    return (f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"{body_html}</body></html>").encode("utf-8")


def _png_header_bomb(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring width x height, one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def _png_real_bomb(side: int) -> bytes:
    """A PNG that really decodes to side x side grey pixels (highly compressible)."""
    raw = (b"\0" + b"\0" * side) * side            # filter byte + one grey byte per pixel
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _gzip_bomb(n_bytes: int) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        block = b"\0" * (1 << 20)
        for _ in range(n_bytes >> 20):
            gz.write(block)
    return buf.getvalue()


GZIP_BOMB_BYTES = 1 << 30          # 1 GiB of zeros inside a ~1 MB record
SINGLE_LINE_BYTES = 50_000_000     # the 50 MB single-line page
DEEP_LEVELS = 100_000
MANY_IMAGES = 10_000


def build_corpus(out_dir: str) -> list[Case]:
    os.makedirs(out_dir, exist_ok=True)
    cases: list[Case] = []

    def add(name, records, note):
        path = os.path.join(out_dir, f"{name}.warc.gz")
        _warc(path, records)
        cases.append(Case(name, path, note))

    img = "<img src='https://img.example/photo-{i}.jpg' width='400' height='300' alt='boat {i}'>"
    add("deep_nesting",
        [("https://adv.example/deep", "text/html; charset=utf-8",
          _page(f"<p>{PROSE}</p>" + "<div>" * DEEP_LEVELS + f"<p>{PROSE}</p>"
                + img.format(i=0) + "</div>" * DEEP_LEVELS))],
        f"{DEEP_LEVELS:,} nested <div>s")
    line = (PROSE.strip() + " ") * (SINGLE_LINE_BYTES // len(PROSE))
    add("single_line_50mb",
        [("https://adv.example/line", "text/html; charset=utf-8",
          _page(f"<p>{line}</p>{img.format(i=1)}<p>{PROSE}</p>").replace(b"\n", b" "))],
        "one 50 MB line")
    bad = (b"\xff\xfe\xc0\xaf\xed\xa0\x80\xf8\x88\x80\x80\x80" * 2000)
    add("invalid_bytes",
        [("https://adv.example/bytes", "text/html; charset=utf-8",
          b"<html><body><p>" + PROSE.encode() + bad + b"</p>" + img.format(i=2).encode()
          + b"<p>" + bad + PROSE.encode() + b"\x00\x00</p></body></html>")],
        "overlong / surrogate / truncated UTF-8, NULs, under a utf-8 label")
    add("gzip_bomb",
        [("https://adv.example/bomb", "text/html", _gzip_bomb(GZIP_BOMB_BYTES),
          {"Content-Encoding": "gzip"})],
        f"{GZIP_BOMB_BYTES >> 20} MiB of zeros gzip'd into the HTTP body of one record")
    add("image_bombs",
        [("https://adv.example/bombs", "text/html; charset=utf-8",
          _page(f"<p>{PROSE}</p><img src='https://img.example/header-bomb.png' width=400 height=300>"
                f"<p>{PROSE}</p><img src='https://img.example/real-bomb.png' width=400 height=300>"
                f"<p>{PROSE}</p>")),
         ("https://img.example/header-bomb.png", "image/png", _png_header_bomb(60000, 60000), {}),
         ("https://img.example/real-bomb.png", "image/png", _png_real_bomb(12000), {})],
        "PNG declaring 60000x60000; PNG that really inflates to 12000x12000 (144 Mpx)")
    add("many_images",
        [("https://adv.example/many", "text/html; charset=utf-8",
          _page("".join((f"<p>{PROSE}</p>" if i % 500 == 0 else "") + img.format(i=i)
                        for i in range(MANY_IMAGES))))],
        f"{MANY_IMAGES:,} <img> tags")
    add("hostile_urls",
        [("https://adv.example/urls", "text/html; charset=utf-8",
          _page(f"<p>{PROSE}</p><img src='javascript:alert(1)' width=400 height=300>"
                f"<p>{PROSE}</p><img src='http://user:secret@img.example/cred.jpg' width=400 height=300>"
                f"<p>{PROSE}</p><img src='https://bücher.example/bild.jpg' width=400 height=300>"
                f"<p>{PROSE}</p><img src='http://169.254.169.254/latest/meta-data/' width=400 height=300>"
                f"<p>{PROSE}</p><a href='javascript:void(0)'>x</a>"
                f"<img src='data:image/png;base64,AAAA' width=400 height=300><p>{PROSE}</p>"))],
        "javascript:, credentials, IDN host, link-local metadata address, data: URI")
    add("idn_page_url",
        [("https://例え.テスト/ページ", "text/html; charset=utf-8",
          _page(f"<p>{PROSE}</p>{img.format(i=3)}<p>{PROSE}</p>"))],
        "an IDN page URL")
    return cases


def fetch_cases(server) -> list[FetchCase]:
    """Routes on a LoopbackServer (127.0.0.1) for the fetcher; only IP literals,
    so no case needs DNS. Use FetchConfig(allowed_networks=("127.0.0.1/32",))."""
    server.route("/trickle.jpg", body=b"\xff\xd8" + b"\0" * 200, content_type="image/jpeg",
                 trickle_bps=1.0)
    server.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
    server.redirect("/to-private", "http://10.0.0.1/x.jpg")
    server.route("/huge.jpg", body_size=50_000_000, content_type="image/jpeg")
    server.redirect_loop("/loop-a", "/loop-b")
    return [
        FetchCase("trickle_1_byte_per_s", server.url("/trickle.jpg"), "timeout", 8.0),
        FetchCase("redirect_to_169.254.169.254", server.url("/to-metadata"), "ssrf_blocked", 3.0),
        FetchCase("redirect_to_10.0.0.1", server.url("/to-private"), "ssrf_blocked", 3.0),
        FetchCase("direct_169.254.169.254", "http://169.254.169.254/latest/meta-data/",
                  "ssrf_blocked", 1.0),
        FetchCase("javascript_url", "javascript:alert(1)", "bad_scheme", 1.0),
        FetchCase("credentials_in_url",
                  f"http://user:secret@127.0.0.1:{server.port}/trickle.jpg",
                  "credentials_in_url", 1.0),
        FetchCase("body_over_cap", server.url("/huge.jpg"), "too_large", 8.0),
        FetchCase("redirect_loop", server.url("/loop-a"), "too_many_redirects", 5.0),
    ]
