from pipeline.decode import decode_html, meta_charset
from pipeline.read import iter_records

from tests.data_paths import WARCS


def test_header_charset_wins_for_real_cyrillic_page():
    rec = list(iter_records(str(WARCS / "resiliparse-warcfile.warc.gz")))[1]
    text, how = decode_html(rec.body, rec.charset)
    assert how == "header:cp1251"
    assert "О компании - Стратегия пожарной безопасности" in text


def test_real_euc_jp_clueweb_pages_decode():
    rec = list(iter_records(str(WARCS / "resiliparse-clueweb-quirk.warc.gz")))[0]
    text, how = decode_html(rec.body, rec.charset)
    assert how == "header:euc_jp" and "ヘッドポーター" in text


def test_meta_charset_when_header_is_silent():
    body = '<html><head><meta charset="windows-1252"></head><body>caf\xe9 \x93q\x94</body>'.encode("latin-1")
    text, how = decode_html(body, None)
    assert how == "meta:cp1252" and "café “q”" in text
    assert meta_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">') == "shift_jis"


def test_wrong_declaration_falls_back():
    body = "<p>naïve – ok</p>".encode("utf-8")
    text, how = decode_html(body, "ascii-but-bogus")
    assert text == "<p>naïve – ok</p>" and how == "utf-8"
    sjis = "<p>日本語のテキストです。これは長めの文です。</p>".encode("shift_jis")
    text, how = decode_html(sjis, None)
    assert "日本語" in text and how.startswith("dammit:")


def test_content_encodings_bounded_and_named():
    import gzip
    import zlib

    import brotli
    import pytest
    import zstandard

    from pipeline.decode import ContentEncodingError, decode_content_encoding

    page = list(iter_records(str(WARCS / "resiliparse-warcfile.warc.gz")))[0].body
    for coding, data in (("br", brotli.compress(page)), ("zstd", zstandard.ZstdCompressor().compress(page)),
                         ("gzip", gzip.compress(page)), ("deflate", zlib.compress(page)),
                         ("deflate", zlib.compress(page)[2:-4]),  # raw deflate, as many servers send
                         ("gzip, br", brotli.compress(gzip.compress(page)))):
        assert decode_content_encoding(data, coding, 10_000_000) == (page, False), coding
    # 1 GiB of zeros in a 1.6 KB brotli body: refused at the cap, not inflated
    bomb = brotli.compress(b"\0" * (1 << 30), quality=1)
    with pytest.raises(ContentEncodingError, match="exceeds 1000000 bytes once br-decoded") as e:
        decode_content_encoding(bomb, "br", 1_000_000)
    assert e.value.reason == "body_too_large"
    with pytest.raises(ContentEncodingError, match="'compress' is not supported"):
        decode_content_encoding(page, "compress", 10_000_000)
    # a gzip body cut short (crawlers truncate long payloads) gives what it holds
    cut, _ = decode_content_encoding(gzip.compress(page)[:2000], "gzip", 10_000_000)
    assert 0 < len(cut) < len(page) and page.startswith(cut)
