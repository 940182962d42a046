"""Real WARCs turned into the other shapes crawls come in, for tests and `make faults`:

    warc_to_arc(src, dst)                  # ARC v1 (gzip per record if dst ends in .gz)
    recompress_whole(src, dst, "bz2")      # the whole file as one gzip/bz2/xz/zstd stream
    reencode_bodies(src, dst, "br")        # every HTML response body Content-Encoded br/zstd/gzip

Everything starts from the real records of a real WARC (read with warcio); only
the container or the HTTP content coding changes.  ARC v1 is written by hand
(warcio reads ARC but only writes WARC): a ``filedesc://`` header record, then
``URL IP DATE TYPE LENGTH`` + the HTTP response as stored, per the IA ARC spec.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def _responses(src):
    """(url, ip, 14-digit date, media type, raw HTTP response bytes) of each
    response/resource record; resource records get a minimal HTTP header."""
    with open(src, "rb") as fh:
        for rec in ArchiveIterator(fh):
            if rec.rec_type not in ("response", "resource"):
                continue
            url = rec.rec_headers.get_header("WARC-Target-URI")
            ip = rec.rec_headers.get_header("WARC-IP-Address") or "0.0.0.0"
            date = "".join(c for c in (rec.rec_headers.get_header("WARC-Date") or "") if c.isdigit())[:14]
            body = rec.raw_stream.read()
            if rec.http_headers is not None and rec.rec_type == "response":
                http = rec.http_headers.to_bytes()
                ctype = rec.http_headers.get_header("Content-Type") or "no-type"
            else:
                ctype = rec.rec_headers.get_header("Content-Type") or "application/octet-stream"
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype),
                                                   ("Content-Length", str(len(body)))],
                                        protocol="HTTP/1.0").to_bytes()
            yield url, ip, date.ljust(14, "0"), ctype.split(";")[0].strip() or "no-type", http + body


def warc_to_arc(src, dst) -> int:
    """Write the responses of WARC ``src`` as an ARC v1 file; returns the record count."""
    dst = Path(dst)
    per_record = dst.name.endswith(".gz")
    records = list(_responses(src))
    name = dst.name[:-3] if per_record else dst.name
    meta = b"1 0 flamingo-data-tests\nURL IP-address Archive-date Content-type Archive-length\n"
    first_date = records[0][2] if records else "20000101000000"
    blocks = [f"filedesc://{name} 0.0.0.0 {first_date} text/plain {len(meta)}\n".encode() + meta + b"\n"]
    for url, ip, date, ctype, payload in records:
        blocks.append(f"{url} {ip} {date} {ctype} {len(payload)}\n".encode() + payload + b"\n")
    with open(dst, "wb") as out:
        for b in blocks:
            out.write(gzip.compress(b, mtime=0) if per_record else b)
    return len(records)


def _plain_bytes(src) -> bytes:
    data = Path(src).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def recompress_whole(src, dst, kind: str) -> None:
    """The whole WARC ``src`` (decompressed first) as ONE gzip/bz2/xz/zstd stream."""
    plain = _plain_bytes(src)
    if kind == "gzip":
        data = gzip.compress(plain, mtime=0)
    elif kind == "bz2":
        data = bz2.compress(plain)
    elif kind == "xz":
        data = lzma.compress(plain)
    elif kind == "zstd":
        import zstandard

        data = zstandard.ZstdCompressor(level=10).compress(plain)
    else:
        raise ValueError(kind)
    Path(dst).write_bytes(data)


def encode(body: bytes, coding: str) -> bytes:
    if coding == "br":
        import brotli

        return brotli.compress(body)
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(body)
    if coding == "gzip":
        return gzip.compress(body, mtime=0)
    if coding == "compress":  # no LZW encoder at hand: the label alone (readers refuse it unread)
        return body
    raise ValueError(coding)


def reencode_bodies(src, dst, coding: str, only_html: bool = True) -> int:
    """Copy WARC ``src`` with each (HTML) response body decoded as stored and
    re-encoded with ``coding``, declared in Content-Encoding; returns how many."""
    n = 0
    with open(src, "rb") as fh, open(dst, "wb") as out:
        w = WARCWriter(out, gzip=True)
        for rec in ArchiveIterator(fh):
            if rec.rec_type != "response" or rec.http_headers is None:
                continue
            ctype = rec.http_headers.get_header("Content-Type") or ""
            if only_html and "html" not in ctype.lower():
                continue
            body = rec.content_stream().read()
            headers = [(k, v) for k, v in rec.http_headers.headers
                       if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")]
            payload = encode(body, coding)
            headers += [("Content-Encoding", coding), ("Content-Length", str(len(payload)))]
            http = StatusAndHeaders(rec.http_headers.statusline, headers,
                                    protocol=rec.http_headers.protocol)
            w.write_record(w.create_warc_record(rec.rec_headers.get_header("WARC-Target-URI"),
                                                "response", payload=io.BytesIO(payload),
                                                http_headers=http))
            n += 1
    return n
