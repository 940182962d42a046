"""Pairs: captions from real pages (alt, figcaption, title, context), each
caption filter, the per-host boilerplate count on a real page, the job on the
sample WARC read back with webdataset, and one CLI run over a list."""
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.captions import CaptionConfig, caption_drop_reason, leading_sentences, page_captions
from pipeline.decode import decode_html
from pipeline.extract import ExtractConfig, extract_page
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.images import ImageConfig
from pipeline.pairs import build_pairs
from pipeline.read import html_file_url
from pipeline.sample import build_sample
from shards.schema import decode_members, validate_sample
from shards.validate import validate_dir

from tests.data_paths import IMAGES, READABILITY
from tests.helpers.http_server import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
ALL = CaptionConfig(pick="all")


def _captions(name, cfg=ALL):
    body = gzip.decompress((READABILITY / name / "source.html.gz").read_bytes())
    html, _ = decode_html(body, None)
    page = extract_page(html, html_file_url(name, body))
    return page, page_captions(page.nodes, cfg)


def test_figcaption_and_context_from_nytimes():
    page, caps = _captions("nytimes-1")
    by_source = {s: t for i, s, t in caps if i == 1}
    assert by_source["figcaption"].startswith("United Nations peacekeepers at a refugee camp in Sudan on Monday.")
    assert page.nodes[1].url.startswith("https://static01.nyt.com/images/2017/01/14/world/13SUDAN-1/")
    # The sentence after the image, not the figcaption again.
    assert by_source["context"].startswith("LONDON — After nearly 20 years of hostile relations")
    assert caption_drop_reason(by_source["figcaption"], ALL) is None


def test_alt_texts_from_guardian_and_a_file_name_alt_on_wikipedia():
    _, caps = _captions("guardian-1")
    alts = [t for _, s, t in caps if s == "alt"]
    assert "A bin of small whale bones." in alts
    assert "Squid beaks, from the stomach of a Sperm Whale." in alts
    _, caps = _captions("wikipedia")
    first = [(s, t) for i, s, t in caps if i == 1]
    assert ("alt", "Mozilla dinosaur head logo.png") in first
    assert caption_drop_reason("Mozilla dinosaur head logo.png", ALL) == "filename"
    # Wikipedia thumbnails caption in a <div class="thumbcaption">: found as context.
    assert any(s == "context" and t.startswith("Speakers from the Knight Foundation discuss")
               for _, s, t in caps)


def test_first_pick_keeps_one_caption_per_image_in_source_order():
    _, caps = _captions("nytimes-1", CaptionConfig())
    assert [s for i, s, _ in caps if i == 1] == ["figcaption", "context"]  # both offered; the job keeps the first passing


@pytest.mark.parametrize("text,reason", [
    ("IMG_1234.jpg", "filename"), ("DSC01234", "filename"), ("holiday photo 2.JPEG", "filename"),
    ("https://example.com/pics/a.jpg", "url"), ("www.example.com", "url"),
    ("image", "generic"), ("Photo.", "generic"), ("Logo", "generic"),
    ("", "empty"), ("a cat", "too_few_words"), ("word " * 65, "too_many_words"),
    ("{\\displaystyle A{\\text{ Hermitian}}\\quad \\iff \\quad A=A^{\\mathsf {H}}}", "markup"),
    ("A <b>bold</b> caption with a tag", "markup"),
    ("A brown dog runs on the beach", None), ("Fish & chips: 3 < 4 in price terms", None),
])
def test_caption_filters(text, reason):
    assert caption_drop_reason(text, CaptionConfig()) == reason


def test_caption_filter_flags_switch_filters_off():
    assert caption_drop_reason("IMG_1234.jpg", CaptionConfig(drop_filenames=False, min_words=1)) is None
    assert caption_drop_reason("a cat", CaptionConfig(min_words=2)) is None


def test_leading_sentences_stop_at_the_word_budget():
    text = "One two three. Four five six seven. Eight nine."
    assert leading_sentences(text, 7) == "One two three. Four five six seven."
    assert leading_sentences(text, 2) == "One two three."


def _run(inputs, lists, out, ccfg=CaptionConfig(), fcfg=FilterConfig(), samples_per_shard=1000):
    p = TestPipeline()
    build_pairs(p, inputs, lists, str(out), fcfg, ccfg, ExtractConfig(), ImageConfig(),
                FetchConfig(), "test-run", samples_per_shard, fetch=False)
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    tars = sorted(map(str, Path(out).glob("pairs-*.tar")))
    samples = [decode_members(s) for s in wds.WebDataset(tars, shardshuffle=False)] if tars else []
    return counters, samples


def test_boilerplate_alt_repeated_on_one_host_is_counted_and_dropped(tmp_path):
    # Kotaku (lazy-image-2) gives 56 different images one alt text:
    # "Illustration for article titled The Spectacular Story Of Metroid...".
    page = READABILITY / "lazy-image-2" / "source.html.gz"
    counters, samples = _run([str(page)], [], tmp_path / "a")
    assert counters["drop_caption_repeated_on_host"] == 56
    assert counters["candidate_pairs"] == 56 and samples == []
    assert "images_requested" not in counters        # dropped before any fetch

    # Above 56 the same page keeps them: a bare page archives no image, so all 56
    # are then requested and found missing (with the job run offline).
    counters, _ = _run([str(page)], [], tmp_path / "b", ccfg=CaptionConfig(max_per_host=57))
    assert "drop_caption_repeated_on_host" not in counters
    assert counters["images_requested"] == counters["drop_image_not_archived"] == 56


@pytest.fixture(scope="module")
def sample_warc(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.warc.gz"
    build_sample(str(path), max_pages=30)
    return str(path)


def test_pairs_job_on_the_sample_warc(sample_warc, tmp_path):
    counters, samples = _run([sample_warc], [], tmp_path, samples_per_shard=20)
    assert len(samples) == counters["pairs_unique"] == counters["samples_in_shards"] >= 40
    seen = set()
    for s in samples:
        validate_sample("pairs", s)
        m = s["json"]
        assert m["caption_source"] in ("alt", "figcaption", "title", "context")
        assert hashlib.sha256(s["jpg"]).hexdigest() == m["sha256"] and m["via"] == "warc"
        assert caption_drop_reason(s["txt"], CaptionConfig()) is None
        assert m["source"]["file"] == sample_warc and m["page_url"].startswith("http")
        assert (m["sha256"], s["txt"].lower()) not in seen
        seen.add((m["sha256"], s["txt"].lower()))
    guardian = {s["txt"]: s["json"] for s in samples if s["json"]["page_url"].startswith("https://www.theguardian.com/")}
    assert guardian["A bin of small whale bones."]["caption_source"] == "alt"
    assert counters["drop_image_truncated"] >= 1          # the sample's deliberately cut JPEGs
    assert counters["drop_caption_filename"] >= 1
    assert counters["candidate_pairs"] == counters["caption_candidates"] - sum(
        v for k, v in counters.items() if k.startswith("drop_caption_") and k != "drop_caption_repeated_on_host")


def test_cli_fetches_a_tsv_list_from_a_loopback_server(tmp_path):
    with LoopbackServer(root=IMAGES) as srv:
        srv.route("/gone.jpg", status=404)
        lst = tmp_path / "list.tsv"
        lst.write_text("link\ttext\n"
                       f"{srv.url('/china.jpg')}\tA Chinese temple roof against a blue sky\n"
                       f"{srv.url('/grace_hopper.jpg')}\tPortrait of Grace Hopper in uniform\n"
                       f"{srv.url('/gone.jpg')}\tAn image that is gone now\n"
                       f"{srv.url('/coffee.png')}\tphoto\n")
        out = tmp_path / "out"
        r = subprocess.run([sys.executable, "-m", "pipeline.pairs", "--list", str(lst),
                            "--output", str(out), "--url-col", "link", "--caption-col", "text",
                            "--fetch-allowed-networks", "127.0.0.1/32", "--fetch-retries", "0",
                            "--fetch-timeout-s", "60",
                            "--quiet", "--direct_running_mode=in_memory", "--direct_num_workers=1"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "== pairs done" in r.stdout and "pairs written" in r.stdout
    stats = json.loads((out / "stats.json").read_text())
    assert stats["num_samples"] == 2
    assert stats["drops"]["caption"] == {"generic": 1}
    assert stats["drops"]["image"] == {"fetch_http_404": 1}
    assert validate_dir(str(out)) == (2, [])
    assert (out / "funnel.png").read_bytes()[:4] == b"\x89PNG"


COCO = json.loads((ROOT / "tests" / "data" / "evalsets" /
                   "coco_val2014_caption_results_sample.json").read_text())
GOOD = ["china.jpg", "flower.jpg", "grace_hopper.jpg", "rocket.jpg", "coffee.png", "chelsea.png"]


def _accounting_list(srv, path):
    """39 rows: 24 good photos under distinct URLs (one repeated row), and
    one or more rows for each way a row can fail."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [(srv.url(f"/{GOOD[i % len(GOOD)]}?i={i}"), f"{COCO[i]['caption']} ({i})") for i in range(24)]
    rows.append(rows[5])                                                # the same row twice
    rows += [(srv.url(f"/gone.jpg?i={i}"), COCO[30 + i]["caption"]) for i in range(3)]       # 404
    rows += [(srv.url(f"/no_time_for_that_tiny.gif?i={i}"), COCO[40 + i]["caption"]) for i in range(2)]
    rows += [(srv.url(f"/text.png?i={i}"), COCO[50 + i]["caption"]) for i in range(2)]       # aspect 2.6
    rows += [(srv.url(f"/page.html?i={i}"), COCO[60 + i]["caption"]) for i in range(2)]      # text/html
    rows += [(srv.url(f"/china.jpg?g={i}"), "photo") for i in range(2)]                      # generic
    rows += [("", COCO[70]["caption"])]                                                     # no url
    rows += [(srv.url("/grace_hopper.jpg?cut"), COCO[80]["caption"])]                        # truncated
    rows += [(srv.url("/coffee.png?dup"), rows[4][1])]  # another URL, same bytes+caption as row 4
    assert len(rows) == 39
    pq.write_table(pa.table({"url": [u for u, _ in rows], "caption": [c for _, c in rows]}), path)
    return rows


def test_every_list_row_is_written_or_counted_and_reruns_write_the_same(tmp_path):
    """The pairs job from a URL list, as the benchmark runs it (2 worker processes,
    one host, no rate): every row ends in a shard or under a counted reason, and
    a rerun (in one process) writes byte-identical shards."""
    grace = (IMAGES / "grace_hopper.jpg").read_bytes()
    with LoopbackServer(root=IMAGES) as srv:
        srv.route("/gone.jpg", status=404)
        srv.route("/page.html", body=b"<html>not an image</html>", content_type="text/html")
        srv.route("/grace_hopper.jpg?cut", body=grace[: len(grace) // 3], content_type="image/jpeg")
        srv.route("/coffee.png?dup", file="coffee.png")
        lst = tmp_path / "urls.parquet"
        rows = _accounting_list(srv, lst)
        outs = []
        # the benchmark's way (2 worker processes), then in one process
        for run, mode in (("a", "--direct_num_workers=2"), ("b", "--direct_running_mode=in_memory")):
            out = tmp_path / run
            r = subprocess.run([sys.executable, "-m", "pipeline.pairs", "--list", str(lst),
                                "--output", str(out), "--fetch-per-host-rps", "0",
                                "--fetch-allowed-networks", "127.0.0.1/32", "--no-media-cache",
                                "--fetch-retries", "0", "--quiet", mode],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr + r.stdout
            outs.append(out)
    stats = json.loads((outs[0] / "stats.json").read_text())
    c = stats["counters"]
    assert stats["num_samples"] == 24
    row_drops = {k: v for k, v in c.items() if k.startswith(("drop_", "list_drop_"))}
    assert row_drops == {
        "list_drop_missing_url": 1, "drop_caption_generic": 2, "drop_pair_repeated_row": 1,
        "drop_image_fetch_http_404": 3, "drop_image_fetch_bad_content_type": 2,
        "drop_image_too_small": 2, "drop_image_bad_aspect_ratio": 2, "drop_image_truncated": 1,
        "drop_pair_duplicate": 1}
    # each row once: in a shard, or under exactly one reason
    assert stats["num_samples"] + sum(row_drops.values()) == len(rows)
    assert c["fetch_ok"] + c["fetch_drop_http_404"] + c["fetch_drop_bad_content_type"] == 35
    assert validate_dir(str(outs[0])) == (24, [])
    assert not (outs[0] / ".spill").exists()  # the parked images are gone with the run
    tars = [sorted(p.name for p in o.glob("pairs-*.tar")) for o in outs]
    assert tars[0] == tars[1] and tars[0]
    for name in tars[0]:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_spill_pack_spans_read_back_each_image_and_a_cut_pack_is_an_error(tmp_path):
    """The bundle's pack: each spilled JPEG read back whole from its span (a '#'
    in the folder name included); a pack cut short says so instead of giving
    half an image."""
    from pipeline.media import Spilled, SpillPack, load_spilled

    jpegs = [(IMAGES / n).read_bytes() for n in ("china.jpg", "coffee.png", "china.jpg")]
    pack = SpillPack(str(tmp_path / "run#1"))
    spans = [pack.add(j) for j in jpegs]
    pack.close()
    assert all(isinstance(s, Spilled) for s in spans)
    assert [load_spilled(s) for s in spans] == jpegs
    assert len(list((tmp_path / "run#1").iterdir())) == 1  # one file for the bundle
    path, offset, length = spans[2].span()
    Path(path).write_bytes(Path(path).read_bytes()[:offset + length - 1])
    with pytest.raises(OSError, match="cut short"):
        load_spilled(spans[2])
    assert load_spilled(b"raw") == b"raw"
