"""The M3W job end to end: TestPipeline runs on real pages and real photos,
the CLI's output read back with webdataset, the fetch path against a loopback
server, and the kill-and-rerun identity."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.extract import ExtractConfig
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.images import ImageConfig
from pipeline.m3w import build_m3w
from pipeline.sample import build_sample
from shards.schema import count_images, decode_members, validate_sample
from shards.validate import validate_dir
from shards.writer import write_manifest

from tests.data_paths import IMAGES, READABILITY
from tests.helpers.http_server import LoopbackServer
from tests.helpers.outputs import REFERENCE_ARGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample_warc(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "sample.warc.gz"
    stats = build_sample(str(path), max_pages=40)
    assert stats["pages"] == 40 and stats["images"] > 100
    return str(path)


def _run(inputs, out_dir, fetch=False, fetch_cfg=FetchConfig(), samples_per_shard=1000):
    p = TestPipeline()
    build_m3w(p, inputs, str(out_dir), FilterConfig(), ExtractConfig(), ImageConfig(),
                      fetch_cfg, "test-run", samples_per_shard, fetch=fetch)
    result = p.run()
    result.wait_until_finish()
    return result


def _tars(out_dir):
    return sorted(str(p) for p in Path(out_dir).glob("m3w-*.tar"))


def test_sample_warc_to_shards_read_back_with_webdataset(sample_warc, tmp_path):
    result = _run([sample_warc], tmp_path, samples_per_shard=7)
    tars = _tars(tmp_path)
    assert len(tars) >= 2
    ds = wds.WebDataset(tars, shardshuffle=False)
    samples = [decode_members(s) for s in ds]
    assert len(samples) >= 10
    for s in samples:
        validate_sample("m3w", s)
        meta = s["json"]
        n = count_images(meta["text"])
        assert n == len(meta["images"]) >= 1
        assert meta["text"].endswith("<EOC>")
        assert meta["source"]["file"] == sample_warc and meta["source"]["offset"] >= 0
        for i, im in enumerate(meta["images"]):
            assert im["via"] == "warc" and len(im["phash"]) == 16
            assert hashlib.sha256(s[f"{i}.jpg"]).hexdigest() == im["sha256"]
            assert max(im["width"], im["height"]) <= 512 and min(im["width"], im["height"]) >= 150 // 2
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["documents"] == len(samples)
    assert counters["drop_image_truncated"] >= 1   # the sample's deliberately cut JPEGs
    assert counters["images_kept"] == sum(len(s["json"]["images"]) for s in samples)
    manifest = write_manifest(str(tmp_path), "m3w", "test-run", {}, counters)
    assert manifest["num_samples"] == len(samples)
    assert validate_dir(str(tmp_path)) == (len(samples), [])


def test_article_images_keep_their_dom_order(sample_warc, tmp_path):
    # guardian-1: a real Guardian article with many photos.
    import gzip
    from urllib.parse import urljoin

    from lxml import html as lh

    _run([sample_warc], tmp_path)
    docs = {d["json"]["url"]: d for d in map(decode_members, wds.WebDataset(_tars(tmp_path), shardshuffle=False))}
    [url] = [u for u in docs if u.startswith("https://www.theguardian.com/environment/2019/jan/03/")]
    doc = docs[url]["json"]
    got = [im["url"] for im in doc["images"]]
    assert len(got) >= 5
    root = lh.document_fromstring(gzip.decompress((READABILITY / "guardian-1" / "source.html.gz").read_bytes()))
    order = []
    for img in root.iter("img"):
        for attr in ("src", "data-src", "srcset"):
            if img.get(attr):
                for cand in img.get(attr).split(","):
                    order.append(urljoin(url, cand.strip().split(" ")[0]))
    for source in root.iter("source"):
        for cand in (source.get("srcset") or "").split(","):
            if cand.strip():
                order.append(urljoin(url, cand.strip().split(" ")[0]))
    order_index = {}
    for i, u in enumerate(order):
        order_index.setdefault(u, i)
    positions = [order_index[u] for u in got]
    assert len(got) >= 5 and positions == sorted(positions)


@pytest.fixture()
def image_server():
    with LoopbackServer(root=IMAGES) as srv:
        srv.route("/missing.jpg", status=404)
        yield srv


def test_fetch_path_against_a_loopback_server(image_server, tmp_path):
    base = image_server.url("/")
    para = ("The astronaut photograph was taken aboard the shuttle during a long mission "
            "and shows the crew member in full equipment. ")
    pages = [
        {"url": "https://blog.example/one",
         "html": f"<html><body><article><p>{para}</p><img src='{base}astronaut.png' alt='Eileen Collins'>"
                 f"<p>{para}</p><img src='{base}missing.jpg'><p>{para}</p></article></body></html>"},
        {"url": "https://blog.example/two",
         "html": "<html><body><article><p>A different story about a picture that never loads "
                 f"from the server, told in enough words.</p><img src='{base}missing.jpg'></article></body></html>"},
    ]
    jl = tmp_path / "pages.jsonl"
    jl.write_text("\n".join(json.dumps(p) for p in pages))
    out = tmp_path / "out"
    cfg = FetchConfig(allow_private_addresses=True, retries=0, timeout_s=5)
    result = _run([str(jl)], out, fetch=True, fetch_cfg=cfg)
    samples = [decode_members(s) for s in wds.WebDataset(_tars(out), shardshuffle=False)]
    assert [s["json"]["url"] for s in samples] == ["https://blog.example/one"]
    meta = samples[0]["json"]
    assert [im["url"] for im in meta["images"]] == [base + "astronaut.png"]
    assert meta["images"][0]["alt"] == "Eileen Collins" and meta["images"][0]["via"] == "fetch"
    assert meta["text"].count("<EOC>") == 2 and meta["text"].startswith("The astronaut")
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["drop_image_fetch_http_404"] == 2
    assert counters["drop_document_no_images_left"] == 1
    assert image_server.hits("/missing.jpg") == 1   # one fetch per URL, shared by both pages


def test_fetch_refuses_loopback_without_the_flag(image_server, tmp_path):
    para = "A long enough paragraph about a photograph that we would like to keep here. "
    jl = tmp_path / "pages.jsonl"
    jl.write_text(json.dumps({"url": "https://blog.example/x",
                              "html": f"<article><p>{para}</p><img src='{image_server.url('/astronaut.png')}'></article>"}))
    result = _run([str(jl)], tmp_path / "out", fetch=True, fetch_cfg=FetchConfig())
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["drop_image_fetch_ssrf_blocked"] == 1
    assert image_server.hits() == 0


def _cli(out, sample, extra=(), **kw):
    cmd = [sys.executable, "-m", "pipeline.m3w", "--input", sample, "--output", str(out),
           *REFERENCE_ARGS, *extra]
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def _snapshot(out):
    return {p.name: p.read_bytes() for p in sorted(Path(out).iterdir())
            if p.suffix == ".tar" or p.name in ("manifest.json", "stats.json")}


def test_kill_and_rerun_gives_byte_identical_output(m3w_reference, tmp_path):
    # the clean run: the same CLI and flags (REFERENCE_ARGS) on the same sample (tests/pipeline/conftest.py)
    sample, clean = m3w_reference
    sample_warc = str(sample)
    expected = _snapshot(clean)
    assert len([n for n in expected if n.endswith(".tar")]) >= 3

    killed = tmp_path / "killed"
    proc = _cli(killed, sample_warc, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(killed.glob("m3w-*_stats.json")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)   # the driver and its Beam workers
    proc.wait()
    assert not (killed / "manifest.json").exists()
    partial = list(killed.glob("m3w-*.tar"))
    assert len(partial) < len([n for n in expected if n.endswith(".tar")]) + 1

    proc = _cli(killed, sample_warc)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert _snapshot(killed) == expected
    assert validate_dir(str(killed))[1] == []


def test_bundled_default_sample_gives_at_least_30_documents(tmp_path):
    # What `make m3w` runs: the whole assembled sample plus the real crawl WARCs.
    from tests.data_paths import WARCS

    warc = tmp_path / "sample.warc.gz"
    build_sample(str(warc))
    result = _run([str(warc), str(WARCS / "*.warc*")], tmp_path / "out")
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    n = sum(1 for _ in wds.WebDataset(_tars(tmp_path / "out"), shardshuffle=False))
    assert n == counters["documents"] >= 30
    assert counters["read_drop_truncated_record"] == 1   # resiliparse-clipped.warc.gz
