"""List inputs: the same rows as csv, tsv, parquet, jsonl and jsonl.gz with
custom column names; bad files named; and img2dataset-made webdataset shards
(made by img2dataset itself from a loopback server) re-processed by the pairs job."""
import gzip
import hashlib
import json
import os
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
