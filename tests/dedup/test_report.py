import json
import tarfile

from PIL import Image

from dedup.apply import match_record
from dedup.build_index import main as build_main
from dedup.fingerprints import phash64
from dedup.index import EvalIndex
from dedup.report import main as report_main

from .conftest import DATA, jpeg_bytes


def test_report_lists_exactly_the_planted_matches(index, tmp_path):
    # Plant: two training copies of chelsea (one a file, one inside a shard), one of astronaut,
    # a contaminated text and a negative; the matches jsonl is what a job writes.
    cat = Image.open(DATA / "images" / "chelsea.png").convert("RGB").resize((225, 150))
    (tmp_path / "cat.jpg").write_bytes(jpeg_bytes(cat, 50))
    shard = tmp_path / "m3w-000000.tar"
    astro = jpeg_bytes(Image.open(DATA / "images" / "astronaut.png").resize((256, 256)), 70)
    with tarfile.open(shard, "w") as tf:
        import io
        ti = tarfile.TarInfo("docB.0.jpg")
        ti.size = len(astro)
        tf.addfile(ti, io.BytesIO(astro))
    train = [("docA", "http://a.example/cat.jpg", str(tmp_path / "cat.jpg"), cat),
             ("docA2", "http://mirror.example/cat.jpg", str(tmp_path / "cat.jpg"), cat),
             ("docB", "http://b.example/astro.jpg", f"{shard}#docB.0.jpg",
              Image.open(DATA / "images" / "astronaut.png").resize((256, 256))),
             ("docN", "http://n.example/rocket.jpg", "none", Image.open(DATA / "images" / "rocket.jpg"))]
    lines = []
    for key, url, ref, img in train:
        for m in index.match_image(phash64(img)):
            lines.append(match_record(m, key, url, ref))
    text = "They wrote: a woman sitting on a bench and a woman standing behind the bench at a bus stop"
    lines += [match_record(m, "docT", None, None, text) for m in index.match_text(text)]
    mpath = tmp_path / "matches.jsonl"
    mpath.write_text("".join(json.dumps(r) + "\n" for r in lines))
    ipath = tmp_path / "index.npz"
    index.save(ipath)
    out = tmp_path / "report"
    assert report_main(["--matches", str(mpath), "--index", str(ipath), "--out", str(out)]) == 0
    rep = json.loads((out / "dedup_report.json").read_text())
    assert rep["thresholds"] == index.thresholds
    assert rep["per_eval_set"] == [{"eval_set": "coco_captions", "split": "val2014", "images": 2,
                                    "images_by_image": 2, "images_by_url": 0, "videos": 0, "texts": 1,
                                    "documents": 4, "eval_items": 3}]
    assert sorted((g["train_key"], g["item_id"]) for g in rep["gallery"]) == [
        ("docA", "522418"), ("docB", "391895")]          # docA2 is the same image file as docA
    assert sum(rep["distance_histogram"]["image"].values()) == 3
    html = (out / "dedup_report.html").read_text()
    assert html.count("src='data:image/jpeg;base64,") == 4   # 2 pairs x (training, eval)
    assert "http://a.example/cat.jpg" in html and "522418" in html and "no thumbnail" not in html


def test_build_index_cli(eval_dirs, tmp_path, capsys):
    out = tmp_path / "idx.npz"
    ev = DATA / "evalsets"
    rc = build_main(["--eval", f"coco_captions={ev / 'coco_captions_val2014_sample.json'}:{eval_dirs / 'coco'}",
                     "--allow-missing-media", "--ngram", "8", "--out", str(out)])
    assert rc == 0
    idx = EvalIndex.load(out)
    assert idx.thresholds["text_ngram"] == 8 and idx.num_image_hashes == 3 * 190
    # 8 words of a 9+-word caption now count
    assert [m.item_id for m in idx.match_text("see: bicycle replica with a clock as the front wheel")] == ["203564"]
    rc = build_main(["--eval", f"coco_captions={ev / 'coco_captions_val2014_sample.json'}:{eval_dirs / 'coco'}",
                     "--out", str(out)])
    assert rc == 2 and "153 of 156 media files not found" in capsys.readouterr().err
