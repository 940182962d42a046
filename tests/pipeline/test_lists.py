"""List inputs: the same rows as csv, tsv, parquet, jsonl and jsonl.gz with
custom column names; bad files named; and img2dataset-made webdataset shards
(made by img2dataset itself from a loopback server) re-processed by the pairs job."""
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.captions import CaptionConfig
from pipeline.extract import ExtractConfig
from pipeline.fetch import FetchConfig
from pipeline.filters import FilterConfig
from pipeline.images import ImageConfig
from pipeline.lists import ListConfig, ListFormatError, iter_list, list_format
from pipeline.pairs import build_pairs
from pipeline.progress import Counts
from shards.schema import decode_members, validate_sample

from tests.data_paths import IMAGES
from tests.helpers.http_server import LoopbackServer

ROWS = [{"URL": "https://example.org/a.jpg", "TEXT": "A cat asleep on a sofa", "n": 1},
        {"URL": "https://example.org/b.png", "TEXT": 'Quoted, "tricky"\tcaption, with commas', "n": 2},
        {"URL": "", "TEXT": "a row without its url", "n": 3},
        {"URL": "https://example.org/c.jpg", "TEXT": None, "n": 4}]
CFG = ListConfig(url_col="URL", caption_col="TEXT")
EXPECTED = [("https://example.org/a.jpg", "A cat asleep on a sofa", 0),
            ("https://example.org/b.png", 'Quoted, "tricky"\tcaption, with commas', 1),
            ("https://example.org/c.jpg", "", 3)]


def _write_all(d: Path) -> list[Path]:
    import csv

    paths = []
    for name, delim in (("rows.csv", ","), ("rows.tsv", "\t")):
        with open(d / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["URL", "TEXT", "n"], delimiter=delim)
            w.writeheader()
            w.writerows(ROWS)
        paths.append(d / name)
    pq.write_table(pa.Table.from_pylist(ROWS), d / "rows.parquet")
    lines = "".join(json.dumps(r) + "\n" for r in ROWS)
    (d / "rows.jsonl").write_text(lines)
    (d / "rows.jsonl.gz").write_bytes(gzip.compress(lines.encode()))
    return paths + [d / "rows.parquet", d / "rows.jsonl", d / "rows.jsonl.gz"]


def test_every_list_format_gives_the_same_items(tmp_path):
    paths = _write_all(tmp_path)
    assert [list_format(str(p)) for p in paths] == ["csv", "tsv", "parquet", "jsonl", "jsonl"]
    for p in paths:
        counts = Counts("pairs")
        items = list(iter_list(str(p), CFG, counts))
        assert [(i.url, i.caption, i.offset) for i in items] == EXPECTED, p.name
        assert all(i.source == str(p) and i.image is None for i in items)


def test_missing_column_and_unknown_format_are_named(tmp_path):
    p = _write_all(tmp_path)[0]
    with pytest.raises(ListFormatError, match=r"rows\.csv: no url column 'url' \(columns: URL, TEXT, n\)"):
        list(iter_list(str(p), ListConfig()))
    with pytest.raises(ListFormatError, match=r"urls\.txt: cannot tell the list format"):
        list_format(str(tmp_path / "urls.txt"))


def test_malformed_jsonl_rows_are_skipped(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"url": "https://example.org/x.jpg", "caption": "ok one two"}\n[1, 2]\n{not json\n'
                 '{"url": "https://example.org/y.jpg", "caption": "ok three four"}\n')
    items = list(iter_list(str(p)))
    assert [(i.url, i.offset) for i in items] == [("https://example.org/x.jpg", 0),
                                                  ("https://example.org/y.jpg", 3)]


I2D_ROWS = [("china.jpg", "A Chinese temple roof against a blue sky"),
            ("flower.jpg", "A pink flower in close up with green leaves"),
            ("coffee.png", "A cup of coffee on a saucer, seen from above"),
            ("copy.jpg", "A Chinese temple roof against a blue sky"),   # china.jpg again, another URL
            ("missing.jpg", "A photo that is not on the server"),
            ("rocket.jpg", "IMG_4032.JPG")]                             # a file-name caption


def _img2dataset(out_dir: Path, list_path: Path):
    os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
    from img2dataset import download

    download(url_list=str(list_path), input_format="csv", url_col="url", caption_col="caption",
             output_format="webdataset", output_folder=str(out_dir), processes_count=1,
             thread_count=4, image_size=256, resize_mode="keep_ratio", enable_wandb=False,
             distributor="multiprocessing", number_sample_per_shard=100, timeout=5)


@pytest.fixture(scope="module")
def i2d_shard(tmp_path_factory):
    d = tmp_path_factory.mktemp("i2d")
    with LoopbackServer(root=IMAGES) as srv:
        srv.route("/copy.jpg", file="china.jpg")
        srv.route("/missing.jpg", status=404)
        with open(d / "list.csv", "w") as fh:
            fh.write("url,caption\n" + "".join(f'{srv.url("/" + n)},"{c}"\n' for n, c in I2D_ROWS))
        _img2dataset(d / "out", d / "list.csv")
    tars = sorted((d / "out").glob("*.tar"))
    if not tars:
        pytest.fail("img2dataset wrote no shard")
    return tars[0]


def test_img2dataset_shards_are_read_with_their_images(i2d_shard):
    items = list(iter_list(str(i2d_shard)))
    names = sorted(i.url.rsplit("/", 1)[-1] for i in items)
    assert names == ["china.jpg", "coffee.png", "copy.jpg", "flower.jpg", "rocket.jpg"]  # no 404
    for i in items:
        assert i.image[:3] == b"\xff\xd8\xff"
        # img2dataset hashes the bytes it downloaded, before its resize.
        served = "china.jpg" if i.url.endswith("/copy.jpg") else i.url.rsplit("/", 1)[-1]
        assert i.extra["sha256"] == hashlib.sha256((IMAGES / served).read_bytes()).hexdigest()


def test_pairs_job_refilters_rehashes_dedups_and_reshards_img2dataset_shards(i2d_shard, tmp_path):
    p = TestPipeline()
    # An eval set holding flower.jpg: its pair is dropped after the content dedup.
    from PIL import Image

    from dedup.evalsets import EvalItem
    from dedup.fingerprints import eval_phashes
    from dedup.index import EvalIndex

    index = EvalIndex.from_items(
        [EvalItem("coco_captions", "val", "1", "flower.jpg", ("an unrelated caption",))],
        image_hashes={"1": eval_phashes(Image.open(IMAGES / "flower.jpg"))})
    index.save(tmp_path / "eval.npz")
    build_pairs(p, [], [str(i2d_shard)], str(tmp_path), FilterConfig(), CaptionConfig(),
                ExtractConfig(), ImageConfig(image_size=200), FetchConfig(), "test-run", 2,
                fetch=False, dedup_index=str(tmp_path / "eval.npz"))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    tars = sorted(map(str, tmp_path.glob("pairs-*.tar")))
    samples = [decode_members(s) for s in wds.WebDataset(tars, shardshuffle=False)]
    # china.jpg and copy.jpg are the same picture with the same caption: one pair kept.
    assert sorted(s["json"]["url"].rsplit("/", 1)[-1] for s in samples) in (
        ["china.jpg", "coffee.png"], ["coffee.png", "copy.jpg"])
    assert counters["drop_pair_duplicate"] == 1 and counters["drop_caption_filename"] == 1
    assert counters["drop_pair_eval_match"] == 1 and counters["pairs_unique"] == 3
    # Re-sharded: this job's shard names and count (ceil(2 / 2) = 1 shard id).
    assert counters["samples_in_shards"] == 2
    assert [Path(t).name for t in tars] == ["pairs-000000.tar"]
    for s in samples:
        validate_sample("pairs", s)
        m = s["json"]
        assert m["caption_source"] == "list" and m["via"] == "img2dataset"
        assert m["sha256"] == hashlib.sha256(s["jpg"]).hexdigest() != m["img2dataset"]["sha256"]
        assert max(m["width"], m["height"]) == 200    # re-processed with this job's ImageConfig


# ---------------------------------------------------------------- tars streamed, cut, oversized; long cells; casts

REAL = ["china.jpg", "flower.jpg", "coffee.png", "astronaut.png"]


class _Tally(Counter):
    def inc(self, name, n=1):
        self[name] += n


def _wds_tar(path: Path, names=REAL) -> list[int]:
    """An img2dataset-shaped tar of real images (KEY.jpg|png, KEY.txt, KEY.json,
    consecutive per sample); returns the byte offset of each sample's first header."""
    starts = []
    with open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i, name in enumerate(names):
            starts.append(fh.tell())
            key, ext = f"{i:09d}", name.rsplit(".", 1)[-1]
            meta = json.dumps({"url": f"https://img.example/{name}", "key": key}).encode()
            for member, data in ((f"{key}.{ext}", (IMAGES / name).read_bytes()),
                                 (f"{key}.json", meta), (f"{key}.txt", f"caption of {name}".encode())):
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return starts


def test_tar_samples_stream_and_carry_their_bytes(tmp_path):
    p = tmp_path / "shard.tar"
    _wds_tar(p)
    t = _Tally()
    items = list(iter_list(str(p), counts=t))
    assert [i.url.rsplit("/", 1)[-1] for i in items] == REAL and not t
    assert [i.image for i in items] == [(IMAGES / n).read_bytes() for n in REAL]


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse member")
def test_oversized_sparse_member_is_skipped_unread_and_counted(tmp_path, caplog):
    import tracemalloc

    d = tmp_path / "members"
    d.mkdir()
    for i, name in enumerate(["china.jpg", None, "flower.jpg"]):
        key = f"{i:09d}"
        if name:
            shutil.copy(IMAGES / name, d / f"{key}.jpg")
        else:
            with open(d / f"{key}.jpg", "wb") as fh:   # 2 GiB, all holes: ~0 bytes on disk
                fh.truncate(2 << 30)
        (d / f"{key}.json").write_text(json.dumps({"url": f"https://img.example/{i}.jpg"}))
    p = tmp_path / "sparse.tar"
    files = sorted(x.name for x in d.iterdir())
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(p), *files], cwd=d, check=True)
    assert p.stat().st_size < 400_000
    t = _Tally()
    tracemalloc.start()
    with caplog.at_level(logging.WARNING):
        items = list(iter_list(str(p), counts=t))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [i.url for i in items] == ["https://img.example/0.jpg", "https://img.example/2.jpg"]
    assert t == {"list_drop_member_too_large": 1}
    assert peak < 50_000_000
    assert (f"{p}: member 000000001.jpg is 2147483648 bytes, over --tar-max-member-bytes "
            "20000000; sample 000000001 skipped") in caplog.text


def test_tar_cut_inside_a_member_keeps_every_sample_before_it(tmp_path, caplog):
    full = tmp_path / "full.tar"
    starts = _wds_tar(full)
    data = full.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: starts[3] + 512 + 1000])      # inside the 4th sample's image bytes
    t = _Tally()
    with caplog.at_level(logging.WARNING):
        items = list(iter_list(str(cut), counts=t))
    assert [i.url.rsplit("/", 1)[-1] for i in items] == REAL[:3]
    assert t == {"list_drop_truncated_tar": 1, "list_drop_cut_sample": 1}
    assert f"{cut}: tar cut short in member 000000003.png" in caplog.text


def test_tar_cut_inside_a_header_keeps_every_sample_before_it(tmp_path, caplog):
    full = tmp_path / "full.tar"
    starts = _wds_tar(full)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full.read_bytes()[: starts[3] + 300])  # mid-way through a 512-byte header
    t = _Tally()
    with caplog.at_level(logging.WARNING):
        items = list(iter_list(str(cut), counts=t))
    assert [i.url.rsplit("/", 1)[-1] for i in items] == REAL[:3]
    assert t == {"list_drop_truncated_tar": 1}
    msg = f"{cut}: tar cut short or damaged at byte {starts[3]} (after member 000000002.txt)"
    assert msg + "; 3 samples before it kept" in caplog.text


def test_csv_cell_over_the_default_limit_is_read_and_said(tmp_path, caplog):
    import csv

    long = "a very long alt text " * 10_000        # 210,000 characters
    p = tmp_path / "long.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        w.writerows([["https://e.example/1.jpg", "short"], ["https://e.example/2.jpg", long],
                     ["https://e.example/3.jpg", "after the long one"]])
    t = _Tally()
    with caplog.at_level(logging.WARNING):
        items = list(iter_list(str(p), counts=t))
    got = [(i.url[-5:], len(i.caption)) for i in items]
    assert got == [("1.jpg", 5), ("2.jpg", len(long)), ("3.jpg", 18)]
    assert t == {"list_rows_long_field": 1}
    assert (f"{p} line 3: a {len(long)}-character cell, over Python csv's default limit of "
            "131072; read with the limit raised to 67108864") in caplog.text


@pytest.mark.parametrize("typ", ["binary", "large_string", "dictionary", "large_binary"])
def test_parquet_url_column_of_another_type_is_cast(tmp_path, caplog, typ):
    urls = ["https://e.example/1.jpg", "https://e.example/2.jpg"]
    raw = [u.encode() for u in urls]
    if typ == "binary":
        arr = pa.array(raw, pa.binary())
    elif typ == "large_binary":
        arr = pa.array(raw, pa.large_binary())
    elif typ == "large_string":
        arr = pa.array(urls, pa.large_string())
    else:
        arr = pa.array(urls).dictionary_encode()
    p = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"url": arr, "caption": pa.array([b"one cap", b"two cap"])}), p)
    t = _Tally()
    with caplog.at_level(logging.WARNING):
        items = list(iter_list(str(p), counts=t))
    assert [(i.url, i.caption) for i in items] == [(urls[0], "one cap"), (urls[1], "two cap")]
    assert t == {"list_column_cast_to_text": 2}      # url and the binary caption column
    assert f"{p}: column 'url' is " in caplog.text
    assert f"{p}: column 'caption' is binary; cast to string" in caplog.text


def test_read_lists_transform_streams_cut_tars(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.lists import ReadLists

    full = tmp_path / "full.tar"
    starts = _wds_tar(full)
    (tmp_path / "cut.tar").write_bytes(full.read_bytes()[: starts[2] + 700])
    p = TestPipeline()
    urls = p | ReadLists([str(tmp_path / "*.tar")]) | beam.Map(lambda i: (i.url, Path(i.source).name))
    assert_that(urls, equal_to([(f"https://img.example/{n}", "full.tar") for n in REAL]
                               + [(f"https://img.example/{n}", "cut.tar") for n in REAL[:2]]))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["list_rows"] == 6 and counters["list_drop_truncated_tar"] == 1
    assert counters["list_drop_cut_sample"] == 1
