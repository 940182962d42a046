"""Bytes → text: the charset from the HTTP header, else the page's <meta>,
else bs4's UnicodeDammit (which sniffs BOMs and guesses)."""
from __future__ import annotations

import codecs
import io
import re
import zlib

from bs4.dammit import UnicodeDammit

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_XML_DECL = re.compile(rb"""^<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:\-]+)""")

# Labels that browsers treat as a superset (WHATWG encoding standard): pages
# that say latin-1 are decoded as windows-1252, as every browser does.
_ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252",
            "ascii": "cp1252", "us-ascii": "cp1252", "x-sjis": "shift_jis",
            "shift-jis": "shift_jis", "sjis": "shift_jis", "gb2312": "gb18030",
            "gbk": "gb18030", "euc-kr": "cp949", "x-euc-jp": "euc_jp"}


def normalise_charset(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def meta_charset(head: bytes) -> str | None:
    m = _XML_DECL.search(head) or _META_CHARSET.search(head)
    return normalise_charset(m.group(1).decode("ascii", "ignore")) if m else None


# The `how`s of decode_html whose text is the body decoded strictly as UTF-8:
# the body is the text's UTF-8 encoding, byte for byte (pipeline.extract
# parses it as it is).
UTF8_AS_IS = frozenset(("header:utf-8", "meta:utf-8", "utf-8"))


def decode_html(body: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """Decode a page; returns (text, how) where ``how`` names the source of the
    charset (``header:<cs>``, ``meta:<cs>``, ``bom``, ``dammit:<cs>``)."""
    if body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        d = UnicodeDammit(body, is_html=True)
        return d.unicode_markup or "", "bom"
    for how, cs in (("header", normalise_charset(header_charset)),
                    ("meta", meta_charset(body[:4096]))):
        if cs:
            try:
                return body.decode(cs), f"{how}:{cs}"
            except UnicodeDecodeError:
                continue  # a wrong declaration is common; try the next source
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    d = UnicodeDammit(body, is_html=True)
    if d.unicode_markup is None:
        return body.decode("utf-8", "replace"), "replace"
    return d.unicode_markup, f"dammit:{d.original_encoding}"


# ---------------------------------------------------------------- Content-Encoding
#
# HTTP bodies in WARCs are stored as sent: gzip/deflate, and today often br or
# zstd.  warcio undoes gzip/deflate inside content_stream() with no bound on
# what one block inflates to and cannot do zstd, so the reader hands the raw
# (de-chunked) body here.  Every decoder runs incrementally with an output cap,
# so a bomb costs at most ``limit`` bytes of memory.

_BLOCK = 1 << 16


class ContentEncodingError(ValueError):
    """A body that cannot be decoded; ``reason`` is the drop counter suffix."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def content_codings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding header in the order they were applied."""
    return [c.strip().lower() for c in (header or "").split(",")
            if c.strip() and c.strip().lower() != "identity"]


def _zlib_decode(body: bytes, wbits: int, limit: int) -> bytes:
    """zlib/gzip/raw deflate (by ``wbits``); gzip members may follow one another.
    A stream that stops early gives what it decoded (crawlers cut long bodies)."""
    out = bytearray()
    data = body
    while data and len(out) <= limit:
        d = zlib.decompressobj(wbits)
        out += d.decompress(data, limit + 1 - len(out))
        while d.unconsumed_tail and len(out) <= limit:
            out += d.decompress(d.unconsumed_tail, limit + 1 - len(out))
        if not d.eof:
            break
        data = d.unused_data.lstrip(b"\0") if wbits == 31 else b""
    return bytes(out)


def _gzip(body: bytes, limit: int) -> bytes:
    return _zlib_decode(body, 31, limit)


def _deflate(body: bytes, limit: int) -> bytes:
    try:
        return _zlib_decode(body, 15, limit)       # RFC 9110 "deflate" = zlib format
    except zlib.error:
        return _zlib_decode(body, -15, limit)      # ... but many servers send raw deflate


def _brotli(body: bytes, limit: int) -> bytes:
    import brotli

    d = brotli.Decompressor()
    out = bytearray()
    for i in range(0, len(body), _BLOCK):
        out += d.process(body[i:i + _BLOCK], output_buffer_limit=limit + 1 - len(out))
        while len(out) <= limit and not d.can_accept_more_data():
            out += d.process(b"", output_buffer_limit=limit + 1 - len(out))
        if len(out) > limit or d.is_finished():
            break
    return bytes(out)  # a stream cut short gives what it decoded, as gzip does


def _zstd(body: bytes, limit: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body), read_across_frames=True)
    out = bytearray()
    while len(out) <= limit:
        chunk = reader.read(min(_BLOCK * 16, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


DECODERS = {"gzip": _gzip, "x-gzip": _gzip, "deflate": _deflate, "br": _brotli, "zstd": _zstd}
# How a stream of each coding starts: a body that does not is taken as stored
# already decoded (some archivers keep the header but save the decoded body).
_MAGIC = {"gzip": (b"\x1f\x8b",), "x-gzip": (b"\x1f\x8b",), "zstd": (b"\x28\xb5\x2f\xfd",)}


def decode_content_encoding(body: bytes, header: str | None, limit: int) -> tuple[bytes, bool]:
    """Undo the Content-Encoding codings of a body (last applied, first undone).

    Returns (decoded body, mislabelled) where ``mislabelled`` says the body was
    not in the declared coding and is returned as stored.  Raises
    :class:`ContentEncodingError` with reason ``unsupported_content_encoding``
    (e.g. ``compress``, ``sdch``), ``bad_content_encoding`` (a corrupt stream)
    or ``body_too_large`` (more than ``limit`` bytes once decoded).
    """
    codings = content_codings(header)
    mislabelled = False
    for coding in reversed(codings):
        decoder = DECODERS.get(coding)
        if decoder is None:
            raise ContentEncodingError("unsupported_content_encoding",
                                       f"Content-Encoding {coding!r} is not supported")
        magic = _MAGIC.get(coding)
        if magic and not body.startswith(magic):
            mislabelled = True
            continue
        try:
            decoded = decoder(body, limit)
        except Exception as e:  # zlib.error, brotli.error, zstandard.ZstdError, ...
            if coding == "br" and not mislabelled and _looks_like_text(body):
                mislabelled = True  # br has no magic number: plain HTML under a br label
                continue
            raise ContentEncodingError("bad_content_encoding",
                                       f"corrupt {coding} body ({type(e).__name__}: {e})") from None
        if len(decoded) > limit:
            raise ContentEncodingError("body_too_large",
                                       f"body exceeds {limit} bytes once {coding}-decoded")
        body = decoded
    return body, mislabelled


def _looks_like_text(body: bytes) -> bool:
    head = body[:512].lstrip()
    return head[:1] == b"<" or head[:3] == codecs.BOM_UTF8
