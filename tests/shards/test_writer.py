import hashlib
import json
import os

import webdataset as wds

from shards.reader import read_shard
from shards.schema import build_m3w_sample, make_key
from shards.validate import validate_dir
from shards.writer import read_manifest, write_manifest, write_shard

from tests.data_paths import IMAGES
from tests.helpers.threads import race_first_call


def _samples(n):
    jpg = (IMAGES / "rocket.jpg").read_bytes()
    out = []
    for i in range(n):
        url = f"https://example.org/{i}"
        meta = {"text": f"Text {i}<EOC><image>more<EOC>", "url": url,
                "source": {"file": "x.warc.gz", "offset": i}, "lang": "en",
                "images": [{"url": url + ".jpg", "alt": "a", "sha256": hashlib.sha256(jpg).hexdigest(),
                            "phash": "0" * 16, "width": 10, "height": 10}]}
        out.append(build_m3w_sample(make_key(url), meta, [jpg]))
    return out


def test_shard_bytes_depend_only_on_samples(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    s = _samples(5)
    ia = write_shard(str(a), "m3w", 0, s, run_id="r")
    ib = write_shard(str(b), "m3w", 0, list(reversed(s)), run_id="r")
    assert (a / "m3w-000000.tar").read_bytes() == (b / "m3w-000000.tar").read_bytes()
    assert ia.sha256 == ib.sha256 == hashlib.sha256((a / "m3w-000000.tar").read_bytes()).hexdigest()
    assert not [p for p in os.listdir(a) if ".tmp" in p]


def test_rerun_skips_a_complete_shard_and_rewrites_a_changed_one(tmp_path):
    s = _samples(4)
    first = write_shard(str(tmp_path), "m3w", 3, s, run_id="r")
    again = write_shard(str(tmp_path), "m3w", 3, s, run_id="r")
    assert not first.skipped and again.skipped and again.sha256 == first.sha256
    changed = write_shard(str(tmp_path), "m3w", 3, s[:3], run_id="r")
    assert not changed.skipped and changed.count == 3


def test_written_shards_read_back_with_webdataset_and_validate(tmp_path):
    s = _samples(6)
    write_shard(str(tmp_path), "m3w", 0, s[:3], run_id="r")
    write_shard(str(tmp_path), "m3w", 1, s[3:], run_id="r")
    write_shard(str(tmp_path), "m3w", 2, s[:1], run_id="other-run")  # stale
    m = write_manifest(str(tmp_path), "m3w", "r", {"opt": 1}, {"documents": 6})
    assert [x["name"] for x in m["shards"]] == ["m3w-000000.tar", "m3w-000001.tar"]
    assert m["num_samples"] == 6 and m["stale_shards_removed"] == ["m3w-000002.tar"]
    assert sorted(p.name for p in tmp_path.glob("m3w-*")) == [
        "m3w-000000.tar", "m3w-000000_stats.json", "m3w-000001.tar", "m3w-000001_stats.json"]
    assert read_manifest(str(tmp_path)) == m
    ds = wds.WebDataset([str(tmp_path / "m3w-000000.tar"), str(tmp_path / "m3w-000001.tar")],
                        shardshuffle=False).decode()
    got = sorted(x["__key__"] for x in ds)
    assert got == sorted(x["__key__"] for x in s)
    rec = read_shard(str(tmp_path / "m3w-000000.tar"))[0]
    assert json.loads(rec["json"])["images"][0]["key"] == "0"
    n, problems = validate_dir(str(tmp_path))
    assert (n, problems) == (6, [])


def test_validate_names_the_broken_shard(tmp_path):
    write_shard(str(tmp_path), "m3w", 0, _samples(2), run_id="r")
    write_manifest(str(tmp_path), "m3w", "r", {}, {})
    p = tmp_path / "m3w-000000.tar"
    data = bytearray(p.read_bytes())
    data[600] ^= 0xFF
    p.write_bytes(bytes(data))
    n, problems = validate_dir(str(tmp_path))
    assert any(x.startswith("m3w-000000.tar: sha256 differs") for x in problems)


def test_rerun_with_fewer_shards_removes_the_old_ones_and_validate_names_leftovers(tmp_path):
    s = _samples(6)
    for i in range(3):                                   # an earlier run: 3 shards
        write_shard(str(tmp_path), "m3w", i, s[2 * i: 2 * i + 2], run_id="big")
    write_manifest(str(tmp_path), "m3w", "big", {}, {})
    write_shard(str(tmp_path), "m3w", 0, s, run_id="small")  # the rerun: 1 shard
    m = write_manifest(str(tmp_path), "m3w", "small", {}, {})
    assert m["stale_shards_removed"] == ["m3w-000001.tar", "m3w-000002.tar"]
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == ["m3w-000000.tar"]
    assert validate_dir(str(tmp_path)) == (6, [])
    # a tar the manifest does not list (a copy, or a kill before the removal) is reported
    (tmp_path / "m3w-000007.tar").write_bytes((tmp_path / "m3w-000000.tar").read_bytes())
    n, problems = validate_dir(str(tmp_path))
    assert problems == ["m3w-000007.tar: not listed in manifest.json (a stale shard from an "
                        "earlier run? a *.tar glob would read it)"]
    from shards.validate import main

    assert main([str(tmp_path)]) == 1


_FRESH = r"""
import json, pickle, sys
from shards.writer import write_shard
with open(sys.argv[2], "rb") as f:
    samples = pickle.load(f)
info = write_shard(sys.argv[1], "m3w", 0, samples, run_id="r")
print(json.dumps([info.sha256, sorted(m for m in ("webdataset", "torch") if m in sys.modules)]))
"""


def test_a_fresh_process_writes_the_same_bytes_without_importing_webdataset_or_torch(tmp_path):
    """shards.writer loads webdataset's writer.py alone: no package __init__, no torch;
    the tar is byte for byte what webdataset's own TarWriter (imported here) writes."""
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    fresh, here = tmp_path / "fresh", tmp_path / "here"
    fresh.mkdir(), here.mkdir()
    (tmp_path / "samples.pkl").write_bytes(pickle.dumps(_samples(5)))
    out = subprocess.run([sys.executable, "-c", _FRESH, str(fresh), str(tmp_path / "samples.pkl")], cwd=root, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(root)}).stdout
    sha, imported = json.loads(out.splitlines()[-1])
    assert imported == []
    assert "webdataset" in sys.modules  # so this process wrote with webdataset's own TarWriter
    assert sha == write_shard(str(here), "m3w", 0, _samples(5), run_id="r").sha256
    assert (fresh / "m3w-000000.tar").read_bytes() == (here / "m3w-000000.tar").read_bytes()


def test_threads_racing_on_the_first_shard_all_get_the_writer():
    """Beam runs bundles on several threads: the first write_shard calls race to load
    webdataset's writer.py, and none may see the half-loaded module (AttributeError
    'TarWriter' on the faults suite's clean run)."""
    for _ in range(3):
        assert race_first_call("shards.writer", "_tar_writer") == ["TarWriter"]
