import gzip
import json
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.read import (InputError, ReadInputs, check_inputs, input_format, iter_records,
                           plan_splits, read_record_at)

from tests.data_paths import READABILITY, WARCS
from tests.helpers.archives import recompress_whole, reencode_bodies, warc_to_arc


class Tally:
    def __init__(self):
        self.c = Counter()

    def inc(self, name, n=1):
        self.c[name] += n


def test_real_common_crawl_warc_yields_its_html_responses_with_offsets():
    t = Tally()
    recs = list(iter_records(str(WARCS / "resiliparse-warcfile.warc.gz"), t))
    assert len(recs) == 16 and not t.c
    assert recs[0].url == "http://003338.cn/l41/481397.html" and recs[0].offset == 940
    assert recs[1].charset == "windows-1251"
    assert all(r.content_type == "text/html" for r in recs)
    offsets = [r.offset for r in recs]
    assert offsets == sorted(set(offsets))


def test_uncompressed_chunked_warc():
    recs = list(iter_records(str(WARCS / "warcio-iana-chunked.warc")))
    assert [r.url for r in recs] == ["http://www.iana.org/"]
    assert b"Internet Assigned Numbers Authority" in recs[0].body  # chunking undone


def test_truncated_record_is_counted_not_emitted():
    t = Tally()
    assert list(iter_records(str(WARCS / "resiliparse-clipped.warc.gz"), t)) == []
    assert t.c == {"read_drop_truncated_record": 1}


def test_records_before_and_after_a_broken_one_still_come_out(tmp_path):
    # A real Wikipedia record, then the real truncated record, then a real CC WARC.
    mixed = tmp_path / "mixed.warc.gz"
    mixed.write_bytes((WARCS / "whirlwind.warc.gz").read_bytes()
                      + (WARCS / "resiliparse-clipped.warc.gz").read_bytes()
                      + (WARCS / "resiliparse-warcfile.warc.gz").read_bytes())
    t = Tally()
    urls = [r.url for r in iter_records(str(mixed), t)]
    assert urls[0] == "https://an.wikipedia.org/wiki/Escopete"
    assert len(urls) == 17 and urls[1] == "http://003338.cn/l41/481397.html"
    assert "houstonpress" not in " ".join(urls)
    assert sum(t.c.values()) >= 1 and set(t.c) <= {"read_drop_digest_mismatch",
                                                    "read_drop_malformed_record",
                                                    "read_drop_truncated_record"}


def test_clueweb_quirks_still_read():
    recs = list(iter_records(str(WARCS / "resiliparse-clueweb-quirk.warc.gz")))
    assert len(recs) == 29 and {r.charset for r in recs} == {"EUC-JP"}


def test_html_file_takes_its_canonical_url(tmp_path):
    recs = list(iter_records(str(READABILITY / "wikipedia" / "source.html.gz")))
    assert recs[0].url == "https://en.wikipedia.org/wiki/Mozilla"
    p = tmp_path / "bare.html"
    p.write_text("<html><body><p>hi</p></body></html>")
    assert list(iter_records(str(p)))[0].url == p.absolute().as_uri()


def test_jsonl_bad_lines_are_counted_and_skipped(tmp_path):
    p = tmp_path / "pages.jsonl.gz"
    lines = [json.dumps({"url": "https://a.example/1", "html": "<p>one</p>"}), "{not json",
             json.dumps({"url": "https://a.example/2"}),
             json.dumps({"url": "https://a.example/3", "html": "<p>three</p>"})]
    p.write_bytes(gzip.compress("\n".join(lines).encode()))
    t = Tally()
    recs = list(iter_records(str(p), t))
    assert [(r.url, r.offset) for r in recs] == [("https://a.example/1", 0), ("https://a.example/3", 3)]
    assert t.c == {"read_drop_malformed_record": 2}


def test_input_format_from_name():
    assert input_format("gs://b/x.warc.gz") == "warc"
    assert input_format("a.jsonl") == "jsonl" and input_format("a.HTML.gz") == "html"


def test_read_inputs_transform_over_globs():
    with TestPipeline() as p:
        urls = (p | ReadInputs([str(WARCS / "whirlwind.warc.gz"), str(WARCS / "*.warc")])
                | beam.Map(lambda r: (r.url, r.source.rsplit("/", 1)[-1])))
        assert_that(urls, equal_to([("https://an.wikipedia.org/wiki/Escopete", "whirlwind.warc.gz"),
                                    ("http://www.iana.org/", "warcio-iana-chunked.warc")]))


# ---------------------------------------------------------------- splits of one big WARC


def _mixed_damaged(tmp_path):
    """Real CC records, the real truncated record, a member cut in half, more real records."""
    cc = (WARCS / "resiliparse-warcfile.warc.gz").read_bytes()
    cut = (WARCS / "whirlwind.warc.gz").read_bytes()
    path = tmp_path / "big.warc.gz"
    path.write_bytes(cc + (WARCS / "resiliparse-clipped.warc.gz").read_bytes() + cc
                     + cut[: len(cut) // 2] + cc + cut)
    return str(path)


def _read_split(path, split_bytes):
    t, recs = Tally(), []
    splits = plan_splits(path, split_bytes)
    for f, start, end in splits:
        recs += [(r.url, r.offset, r.body) for r in iter_records(f, t, start, end)]
    return splits, recs, t.c


@pytest.mark.parametrize("split_bytes", [2_000, 7_919, 20_000, 65_536, 200_000])
def test_splits_of_a_damaged_warc_give_its_records_and_drops_exactly_once(tmp_path, split_bytes):
    path = _mixed_damaged(tmp_path)
    whole = Tally()
    expected = [(r.url, r.offset, r.body) for r in iter_records(path, whole)]
    assert len(expected) >= 32 and sum(whole.c.values()) >= 3  # damage is read past, counted
    splits, got, counts = _read_split(path, split_bytes)
    assert len(splits) >= 2
    assert got == expected
    # the same drops; a member cut short right at a split boundary may be told
    # malformed (the split's first record) where the whole read says truncated
    assert sum(counts.values()) == sum(whole.c.values())
    assert counts["read_drop_digest_mismatch"] == whole.c["read_drop_digest_mismatch"]


def test_small_or_stream_compressed_files_are_not_split(tmp_path, reference):
    assert plan_splits(str(CC), 1 << 20) == [(str(CC), 0, None)]
    whole = tmp_path / "whole.warc.gz"
    recompress_whole(CC, whole, "gzip")
    assert plan_splits(str(whole), 1000) == [(str(whole), 0, None)]


def test_a_record_is_read_again_from_its_offset(reference):
    again = read_record_at(str(CC), reference[5].offset)
    assert (again.url, again.body, again.seekable) == (reference[5].url, reference[5].body, True)
    assert read_record_at(str(CC), reference[5].offset + 1) is None


# ---------------------------------------------------------------- ARC, whole-file compression, codings

CC = WARCS / "resiliparse-warcfile.warc.gz"


@pytest.fixture(scope="module")
def reference():
    return list(iter_records(str(CC)))


@pytest.mark.parametrize("name", ["cc.arc", "cc.arc.gz"])
def test_arc_records_keep_url_and_body(tmp_path, reference, name):
    path = tmp_path / name
    assert warc_to_arc(CC, path) == 16
    t = Tally()
    recs = list(iter_records(str(path), t))
    assert t.c == {}
    assert [r.url for r in recs] == [r.url for r in reference]
    assert [r.body for r in recs] == [r.body for r in reference]
    assert [r.charset for r in recs] == [r.charset for r in reference]
    assert len({r.offset for r in recs}) == 16 and all(r.url for r in recs)


def test_arc_pages_find_their_archived_images(tmp_path):
    """The bundled sample (real pages + their real photos) as ARC: every page has
    its own URL (so its own key) and its images resolve to archived copies."""
    from pipeline.documents import candidate_document, image_requests, media_key
    from pipeline.extract import ExtractConfig
    from pipeline.filters import FilterConfig, LangId
    from pipeline.sample import build_sample

    warc = tmp_path / "sample.warc.gz"
    build_sample(str(warc), max_pages=6)
    arc = tmp_path / "sample.arc.gz"
    warc_to_arc(warc, arc)
    langid = LangId().load()

    def read(path):
        recs = list(iter_records(str(path)))
        pages = [r for r in recs if r.is_html]
        docs = [candidate_document(r, FilterConfig(), ExtractConfig(), langid).value for r in pages]
        return pages, {media_key(r.url) for r in recs if r.is_media}, [d for d in docs if d]

    pages, media, docs = read(arc)
    assert len(pages) == 6 and len({r.url for r in pages}) == 6 and media
    assert len({d["key"] for d in docs}) == len(docs) >= 2
    wanted = [k for d in docs for k, _ in image_requests(d)]
    assert wanted and all(k in media for k in wanted)
    _, warc_media, warc_docs = read(warc)
    assert media == warc_media and [d["key"] for d in docs] == [d["key"] for d in warc_docs]


@pytest.mark.parametrize("kind,suffix", [("gzip", "gz"), ("bz2", "bz2"), ("xz", "xz"), ("zstd", "zst")])
def test_whole_file_compressed_warc_is_streamed(tmp_path, reference, kind, suffix):
    path = tmp_path / f"cc.warc.{suffix}"
    recompress_whole(CC, path, kind)
    t = Tally()
    recs = list(iter_records(str(path), t))
    assert t.c == {"read_files_stream_compressed": 1}
    assert [(r.url, r.body) for r in recs] == [(r.url, r.body) for r in reference]


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_damaged_record_inside_a_compressed_stream_resumes_like_plain(tmp_path, kind):
    import zlib

    def plain(name):  # the clipped file's gzip ends early: take what it holds
        data, out = (WARCS / name).read_bytes(), b""
        while data:
            d = zlib.decompressobj(31)
            out += d.decompress(data)
            data = d.unused_data
        return out
    raw = tmp_path / "mixed.warc"
    raw.write_bytes(b"".join(plain(n) for n in ("whirlwind.warc.gz", "resiliparse-clipped.warc.gz",
                                                "resiliparse-warcfile.warc.gz")))
    t_plain, t_stream = Tally(), Tally()
    ref = [r.url for r in iter_records(str(raw), t_plain)]
    packed = tmp_path / "mixed.warc.z"
    recompress_whole(raw, packed, kind)
    packed = packed.rename(tmp_path / ("mixed.warc.gz" if kind == "gzip" else "mixed.warc.zst"))
    got = [r.url for r in iter_records(str(packed), t_stream)]
    assert got == ref and len(got) == 16
    assert t_stream.c == t_plain.c + Counter({"read_files_stream_compressed": 1})
    assert t_plain.c["read_drop_malformed_record"] == 1


def test_iipc_zstd_with_dictionary_frame(tmp_path, reference):
    """warc.zst as the IIPC spec lays it out: a skippable frame with the
    dictionary, then one zstd frame per record compressed with it."""
    import gzip as gz
    import zstandard

    members, data = [], CC.read_bytes()
    import zlib
    while data:
        d = zlib.decompressobj(31)
        members.append(d.decompress(data))
        data = d.unused_data
    dict_data = zstandard.ZstdCompressionDict(members[1][:4096], dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    cctx = zstandard.ZstdCompressor(dict_data=dict_data)
    raw = dict_data.as_bytes()
    out = b"\x5d\x2a\x4d\x18" + len(raw).to_bytes(4, "little") + raw
    out += b"".join(cctx.compress(m) for m in members)
    path = tmp_path / "cc.warc.zst"
    path.write_bytes(out)
    assert gz.decompress(CC.read_bytes()) == b"".join(members)
    recs = list(iter_records(str(path)))
    assert [(r.url, r.body) for r in recs] == [(r.url, r.body) for r in reference]


def test_unreadable_compressions_are_refused_by_name_and_by_content(tmp_path):
    with pytest.raises(ValueError, match=r"x\.warc\.lz4: lz4-compressed input is not supported"):
        input_format("x.warc.lz4")
    lz4ish = tmp_path / "y.warc.gz"       # named gzip, is lz4
    lz4ish.write_bytes(b"\x04\x22\x4d\x18" + b"\0" * 100)
    with pytest.raises(InputError, match=r"y\.warc\.gz: lz4-compressed archive is not supported") as e:
        list(iter_records(str(lz4ish)))
    assert e.value.reason == "read_drop_unsupported_compression"
    bad = tmp_path / "z.warc.lz4"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="z.warc.lz4"):
        check_inputs([str(CC), str(bad)])
    with pytest.raises(ValueError, match="z.warc.lz4"):
        with TestPipeline() as p:
            p | ReadInputs([str(bad)])


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_content_encoded_bodies_are_decoded(tmp_path, reference, coding):
    path = tmp_path / f"{coding}.warc.gz"
    assert reencode_bodies(CC, path, coding) == 16
    t = Tally()
    recs = list(iter_records(str(path), t))
    assert t.c == {}
    assert [(r.url, r.body) for r in recs] == [(r.url, r.body) for r in reference]


def _one_record_warc(path, body: bytes, coding: str):
    import io

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                           ("Content-Encoding", coding)], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record("https://a.example/", "response",
                                            payload=io.BytesIO(body), http_headers=http))


def test_undecodable_bodies_are_counted_by_their_own_reason(tmp_path, reference):
    from tests.helpers.archives import encode

    page = reference[0].body
    cases = {"compress": (page, "read_drop_unsupported_content_encoding"),
             "br": (encode(page, "br")[:40] + b"\xff" * 200, "read_drop_bad_content_encoding"),
             "zstd": (b"\x28\xb5\x2f\xfd" + b"\xff" * 200, "read_drop_bad_content_encoding")}
    for coding, (body, reason) in cases.items():
        path = tmp_path / f"{coding}.warc.gz"
        _one_record_warc(path, body, coding)
        t = Tally()
        assert list(iter_records(str(path), t)) == []
        assert t.c == {reason: 1}, coding
    # stored decoded under a br label (some archivers do): read as it is, and counted
    path = tmp_path / "mislabelled.warc.gz"
    _one_record_warc(path, page, "br")
    t = Tally()
    assert [r.body for r in iter_records(str(path), t)] == [page]
    assert t.c == {"read_content_encoding_not_applied": 1}


def test_each_split_read_hands_its_freed_memory_back(tmp_path, monkeypatch):
    # ReadRecords calls release_free_memory (glibc's malloc_trim) once per split,
    # after the split's records went through the fused stages: a worker's heap
    # does not keep the high-water mark of every split it read
    from pipeline import forkworkers

    calls = []
    monkeypatch.setattr(forkworkers, "release_free_memory", lambda: calls.append(1) or True)
    path = _mixed_damaged(tmp_path)
    splits = plan_splits(path, 20_000)
    with TestPipeline() as p:
        n = (p | ReadInputs([path], split_bytes=20_000) | beam.combiners.Count.Globally())
        assert_that(n, equal_to([len(list(iter_records(path)))]))
    assert len(splits) >= 2 and len(calls) == len(splits)
