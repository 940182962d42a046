import gzip
import json
from collections import Counter

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.read import ReadInputs, input_format, iter_records

from tests.data_paths import READABILITY, WARCS


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
