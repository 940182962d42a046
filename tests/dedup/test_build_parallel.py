"""`make dedup-index` hashes media in one process per core: the index file is
byte for byte the one a single process writes."""
from __future__ import annotations

import io

from dedup.build_index import build, main
from dedup.index import EvalIndex

from .conftest import DATA


def test_workers_write_the_same_bytes(eval_items, tmp_path):
    items = [it for it in eval_items if it.kind == "image" or it.item_id == "video9770"]
    one = build(items, workers=1)
    progress = io.StringIO()
    two = build(items, workers=2, progress=progress)
    assert one.to_bytes() == two.to_bytes()
    assert "hashed 4/4 media files" in progress.getvalue() and "2 processes" in progress.getvalue()
    one.save(tmp_path / "i.npz")
    back = EvalIndex.load(tmp_path / "i.npz")
    assert back.to_bytes() == one.to_bytes() and back.num_image_hashes == one.num_image_hashes > 0


def test_cli_default_uses_all_cores_same_file(eval_dirs, tmp_path, capsys):
    arg = f"coco_captions={DATA / 'evalsets' / 'coco_captions_val2014_sample.json'}:{eval_dirs / 'coco'}"
    assert main(["--eval", arg, "--allow-missing-media", "--out", str(tmp_path / "a.npz")]) == 0
    assert main(["--eval", arg, "--allow-missing-media", "--workers", "1", "--out", str(tmp_path / "b.npz")]) == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert "hashed 3/3 media files" in capsys.readouterr().err


def test_negative_crop_threshold_is_refused(tmp_path, capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        main(["--eval", "coco_captions=x.json:y", "--image-crop-threshold", "-1", "--out", str(tmp_path / "a.npz")])
    assert e.value.code == 2
    assert "--image-crop-threshold -1: expected an integer >= 0" in capsys.readouterr().err
