"""Bytes → text: the charset from the HTTP header, else the page's <meta>,
else bs4's UnicodeDammit (which sniffs BOMs and guesses)."""
from __future__ import annotations

import codecs
import re

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
