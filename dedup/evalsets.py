"""The eval-set registry: loaders for the published annotation formats.

Every loader maps its files to :class:`EvalItem` s - one per eval *image or
clip* (the unit dedup removes), carrying the texts (captions, questions) and
URLs attached to it, and its ``records``: what few-shot evaluation (eval/)
needs from the same files, one dict per query on that image or clip
(``id`` always; then by format ``captions``, ``question``, ``answers`` (every
human answer), ``candidates`` + ``answer`` (index), ``options`` + ``gt_index``
+ ``relevance``, ``label``, ``class_name``, ``text``, ``start`` / ``end``
seconds of a clip window). dedup ignores the records; eval reads nothing
else, so each published format is parsed here only.  Media files come from a local directory the user points
at; :func:`load_eval_set` resolves each item's media there and fails with the
list of what is missing.

Registered names (``EVAL_SETS``) and the files each takes, in any order:

=============  ======  ===================================================================
name           media   annotation files
=============  ======  ===================================================================
coco_captions  image   captions_*.json (COCO format), dataset_coco.json (Karpathy split) or a
                       COCO results list [{image_id, caption}]
nocaps         image   nocaps_*_captions.json (COCO format)
vqav2, okvqa   image   *questions*.json and/or *annotations*.json (VQA format)
textvqa        image   TextVQA_0.5.1_*.json
textcaps       image   TextCaps_0.1_*.json
vizwiz         image   val.json / test.json (VizWiz VQA)
flickr30k      image   dataset_flickr30k.json (Karpathy split)
hatefulmemes   image   dev_seen.jsonl, test_unseen.jsonl, ...
visdial        image   visdial_1.0_val.json [+ visdial_1.0_val_dense_annotations.json]
imagenet       image   (none: the media dir is a folder of class folders) [+ LOC_synset_mapping.txt]
msrvtt         video   MSRVTT 1k-A csv: key;vid_key;video_id;sentence
msrvtt_qa      video   MSRVTT-QA *_qa.json: [{answer, id, question, video_id}]
msvd           video   MSVD-QA *_qa.json + youtube_mapping.txt
vatex          video   vatex_*.json
youcook2       video   youcookii_annotations_trainval.json
nextqa         video   val.csv / test.csv (+ optional map_vid_vidorID.json)
ivqa           video   test.csv: video_id,start,end,question,answer1..5
star           video   STAR_val.json
rareact        video   rareact.csv
kinetics       video   kinetics csv: label,youtube_id,time_start,time_end,split
=============  ======  ===================================================================
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg"}


class EvalSetError(ValueError):
    """A bad or incomplete eval-set specification; the message says what."""


@dataclass(frozen=True)
class EvalItem:
    eval_set: str
    split: str
    item_id: str
    media: str | None            # relative path (or file stem) under the media dir
    texts: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    kind: str = "image"          # "image" | "video"
    # The queries on this image/clip, for evaluation (see the module docstring).
    records: tuple[dict, ...] = field(default=(), compare=False, hash=False, repr=False)


class _Builder:
    """Collects texts/urls/records per item id in first-seen order."""

    def __init__(self, eval_set: str, kind: str):
        self.eval_set, self.kind = eval_set, kind
        self.items: "OrderedDict[tuple[str, str], dict]" = OrderedDict()

    def add(self, split: str, item_id, media=None, texts=(), urls=()):
        key = (split, str(item_id))
        it = self.items.setdefault(key, {"media": None, "texts": [], "urls": [], "records": OrderedDict()})
        if media and not it["media"]:
            it["media"] = media
        for t in texts:
            if t and t not in it["texts"]:
                it["texts"].append(t)
        for u in urls:
            if u and u not in it["urls"]:
                it["urls"].append(u)
        return it

    def record(self, split: str, item_id, record_id, *, add_caption: str | None = None, **fields):
        """Merge ``fields`` into the item's record ``record_id`` (a question's text and
        its answers may come from two files); ``add_caption`` is appended to its captions."""
        it = self.items[(split, str(item_id))]
        rec = it["records"].setdefault(str(record_id), {"id": str(record_id)})
        rec.update(fields)
        if add_caption is not None:
            rec.setdefault("captions", []).append(add_caption)

    def build(self) -> list[EvalItem]:
        return [EvalItem(self.eval_set, split, iid, it["media"], tuple(it["texts"]),
                         tuple(it["urls"]), self.kind, tuple(it["records"].values()))
                for (split, iid), it in self.items.items()]


def _read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise EvalSetError(f"{path}: not valid JSON at line {e.lineno} col {e.colno}: {e.msg}") from None


def _read_csv(path: Path, delimiter: str | None = None) -> list[dict]:
    text = Path(path).read_text(encoding="utf-8-sig")
    if delimiter is None:
        header = text.split("\n", 1)[0]
        delimiter = ";" if header.count(";") > header.count(",") else ","
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def _need(rec: dict, keys, path: Path, where: str):
    missing = [k for k in keys if k not in rec]
    if missing:
        raise EvalSetError(f"{path}: {where} lacks field(s) {missing}")


def _split_from_name(path: Path, default: str) -> str:
    m = re.search(r"(train|val|test|dev)(20\d\d)?", path.stem.lower())
    return m.group(0) if m else default


def _coco_file_name(split: str, image_id: int) -> str:
    # COCO 2014 names carry the split; 2017 names are the bare 12-digit id.
    if re.fullmatch(r"(train|val|test)2014", split):
        return f"COCO_{split}_{int(image_id):012d}.jpg"
    return f"{int(image_id):012d}.jpg"


# ---------------------------------------------------------------- image sets


def load_coco_captions(files, eval_set="coco_captions"):
    b = _Builder(eval_set, "image")
    for path in files:
        data = _read_json(path)
        split = _split_from_name(path, "val")
        if isinstance(data, list):  # results format: [{image_id, caption}]
            for i, rec in enumerate(data):
                _need(rec, ("image_id", "caption"), path, f"record {i}")
                b.add(split, rec["image_id"], _coco_file_name(split, rec["image_id"]), [rec["caption"]])
                b.record(split, rec["image_id"], rec["image_id"], add_caption=rec["caption"])
            continue
        if isinstance(data, dict) and "images" in data and "annotations" not in data:
            _load_karpathy(b, path, data)   # dataset_coco.json: splits per image
            continue
        _need(data, ("images", "annotations"), path, "top level")
        for i, im in enumerate(data["images"]):
            _need(im, ("id", "file_name"), path, f"images[{i}]")
            b.add(split, im["id"], im["file_name"], (), (im.get("coco_url"), im.get("flickr_url")))
        for i, ann in enumerate(data["annotations"]):
            _need(ann, ("image_id", "caption"), path, f"annotations[{i}]")
            b.add(split, ann["image_id"], _coco_file_name(split, ann["image_id"]), [ann["caption"]])
            b.record(split, ann["image_id"], ann["image_id"], add_caption=ann["caption"])
    return b.build()


def load_nocaps(files):
    return load_coco_captions(files, eval_set="nocaps")


def _load_vqa(files, eval_set):
    b = _Builder(eval_set, "image")
    for path in files:
        data = _read_json(path)
        split = data.get("data_subtype") or _split_from_name(path, "val")
        if "questions" in data:
            for i, q in enumerate(data["questions"]):
                _need(q, ("image_id", "question", "question_id"), path, f"questions[{i}]")
                b.add(split, q["image_id"], _coco_file_name(split, q["image_id"]), [q["question"]])
                b.record(split, q["image_id"], q["question_id"], question=q["question"])
        elif "annotations" in data:
            for i, a in enumerate(data["annotations"]):
                _need(a, ("image_id", "question_id"), path, f"annotations[{i}]")
                b.add(split, a["image_id"], _coco_file_name(split, a["image_id"]))
                extra = {k: a[k] for k in ("answer_type", "question_type", "multiple_choice_answer") if k in a}
                b.record(split, a["image_id"], a["question_id"],
                         answers=[ans["answer"] for ans in a.get("answers", [])], **extra)
        else:
            raise EvalSetError(f"{path}: neither a VQA questions file (key 'questions') "
                               f"nor an annotations file (key 'annotations')")
    return b.build()


def load_vqav2(files):
    return _load_vqa(files, "vqav2")


def load_okvqa(files):
    return _load_vqa(files, "okvqa")


def _load_textvqa_like(files, eval_set, text_field):
    b = _Builder(eval_set, "image")
    for path in files:
        data = _read_json(path)
        _need(data, ("data",), path, "top level")
        split = data.get("dataset_type") or _split_from_name(path, "val")
        for i, rec in enumerate(data["data"]):
            _need(rec, ("image_id", text_field), path, f"data[{i}]")
            media = os.path.basename(rec.get("image_path") or f"{rec['image_id']}.jpg")
            b.add(split, rec["image_id"], media, [rec[text_field]],
                  (rec.get("flickr_original_url"), rec.get("flickr_300k_url")))
            if text_field == "question":
                b.record(split, rec["image_id"], rec.get("question_id", i), question=rec["question"],
                         answers=list(rec.get("answers", [])))
            else:
                b.record(split, rec["image_id"], rec["image_id"], add_caption=rec[text_field])
    return b.build()


def load_textvqa(files):
    return _load_textvqa_like(files, "textvqa", "question")


def load_textcaps(files):
    return _load_textvqa_like(files, "textcaps", "caption_str")


def load_vizwiz(files):
    b = _Builder("vizwiz", "image")
    for path in files:
        data = _read_json(path)
        if not isinstance(data, list):
            raise EvalSetError(f"{path}: VizWiz annotations are a JSON list of records")
        split = _split_from_name(path, "val")
        for i, rec in enumerate(data):
            _need(rec, ("image", "question"), path, f"record {i}")
            b.add(split, Path(rec["image"]).stem, rec["image"], [rec["question"]])
            b.record(split, Path(rec["image"]).stem, Path(rec["image"]).stem, question=rec["question"],
                     answers=[a["answer"] for a in rec.get("answers", [])],
                     **({"answerable": rec["answerable"]} if "answerable" in rec else {}))
    return b.build()


def _load_karpathy(b: _Builder, path: Path, data: dict) -> None:
    """Karpathy's dataset_{coco,flickr30k}.json: per image a split and its sentences."""
    _need(data, ("images",), path, "top level")
    for i, im in enumerate(data["images"]):
        _need(im, ("filename", "split", "sentences"), path, f"images[{i}]")
        sentences = [s.get("raw") or " ".join(s.get("tokens", [])) for s in im["sentences"]]
        media = f"{im['filepath']}/{im['filename']}" if im.get("filepath") else im["filename"]
        iid = im.get("cocoid", Path(im["filename"]).stem)
        b.add(im["split"], iid, media, sentences)
        for sent in sentences:
            b.record(im["split"], iid, iid, add_caption=sent)


def load_flickr30k(files):
    b = _Builder("flickr30k", "image")
    for path in files:
        _load_karpathy(b, path, _read_json(path))
    return b.build()


def load_hatefulmemes(files):
    b = _Builder("hatefulmemes", "image")
    for path in files:
        m = re.search(r"(train|dev_seen|dev_unseen|test_seen|test_unseen|dev|test)", Path(path).stem)
        split = m.group(0) if m else Path(path).stem
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise EvalSetError(f"{path}:{lineno}: not valid JSON: {e.msg}") from None
                _need(rec, ("id", "img"), path, f"line {lineno}")
                b.add(split, rec["id"], rec["img"], [rec.get("text", "")])
                b.record(split, rec["id"], rec["id"], text=rec.get("text", ""), label=rec.get("label"))
    return b.build()


def load_visdial(files):
    """VisDial v1.0 dialogs; a ``*dense_annotations*.json`` list adds each round's
    100 graded relevances (what NDCG is computed from)."""
    b = _Builder("visdial", "image")
    dense_files = [p for p in files if "dense" in Path(p).stem]
    for path in [p for p in files if p not in dense_files]:
        data = _read_json(path)
        _need(data, ("split", "data"), path, "top level")
        split = data["split"]
        d = data["data"]
        _need(d, ("dialogs", "questions"), path, "data")
        answers = d.get("answers", [])
        for i, dlg in enumerate(d["dialogs"]):
            _need(dlg, ("image_id", "dialog"), path, f"data.dialogs[{i}]")
            qs = [d["questions"][turn["question"]] for turn in dlg["dialog"] if "question" in turn]
            b.add(split, dlg["image_id"], f"VisualDialog_{split}_{int(dlg['image_id']):012d}.jpg",
                  [dlg.get("caption", "")] + qs)
            history = []
            for r, turn in enumerate(dlg["dialog"], 1):
                if "question" not in turn:
                    continue
                q = d["questions"][turn["question"]]
                a = answers[turn["answer"]] if "answer" in turn and turn["answer"] < len(answers) else None
                rec = {"caption": dlg.get("caption", ""), "round": r, "history": list(history), "question": q}
                if "answer_options" in turn:
                    rec["options"] = [answers[k] for k in turn["answer_options"]]
                if "gt_index" in turn:
                    rec["gt_index"] = turn["gt_index"]
                b.record(split, dlg["image_id"], f"{dlg['image_id']}_{r}", **rec)
                history.append((q, a))
    for path in dense_files:
        data = _read_json(path)
        if not isinstance(data, list):
            raise EvalSetError(f"{path}: VisDial dense annotations are a JSON list of records")
        by_image = {iid: key for key in b.items for iid in [key[1]]}
        for i, rec in enumerate(data):
            _need(rec, ("image_id", "round_id", "gt_relevance"), path, f"record {i}")
            key = by_image.get(str(rec["image_id"]))
            if key is None:
                raise EvalSetError(f"{path}: record {i}: image_id {rec['image_id']} is in no dialog file given")
            b.record(key[0], key[1], f"{rec['image_id']}_{rec['round_id']}",
                     relevance=[float(x) for x in rec["gt_relevance"]])
    return b.build()


def load_synset_mapping(path: Path) -> dict[str, str]:
    """ImageNet's LOC_synset_mapping.txt: ``n01440764 tench, Tinca tinca`` -> {wnid: "tench"}
    (the first of the comma-separated names, as CLIP / OpenFlamingo prompts use)."""
    out = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not re.fullmatch(r"n\d{8}", wnid) or not names:
            raise EvalSetError(f"{path}:{lineno}: expected 'nXXXXXXXX name[, name...]'")
        out[wnid] = names.split(",")[0].strip()
    return out


def load_imagenet_folder(media_dir: Path, split: str = "val",
                         class_names: dict[str, str] | None = None) -> list[EvalItem]:
    """A folder of class folders (``val/n01440764/ILSVRC2012_val_00000293.JPEG``); the
    class name is ``class_names[folder]`` (from :func:`load_synset_mapping`) or the folder name."""
    b = _Builder("imagenet", "image")
    classes = sorted(p for p in Path(media_dir).iterdir() if p.is_dir())
    if not classes:
        raise EvalSetError(f"{media_dir}: expected a folder of class folders, found none")
    for cdir in classes:
        name = (class_names or {}).get(cdir.name, cdir.name.replace("_", " "))
        for f in sorted(cdir.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS:
                b.add(split, f.stem, f"{cdir.name}/{f.name}", [])
                b.record(split, f.stem, f.stem, label=cdir.name, class_name=name)
    return b.build()


# ---------------------------------------------------------------- video sets


def load_msrvtt(files):
    b = _Builder("msrvtt", "video")
    for path in files:
        split = "test" if "test" in path.stem.lower() else _split_from_name(path, "test")
        for i, row in enumerate(_read_csv(path)):
            _need(row, ("video_id", "sentence"), path, f"row {i + 2}")
            b.add(split, row["video_id"], row["video_id"], [row["sentence"]])
            b.record(split, row["video_id"], row["video_id"], add_caption=row["sentence"])
    return b.build()


def load_msrvtt_qa(files):
    """MSRVTT-QA (Xu et al. 2017) {train,val,test}_qa.json; video_id N is clip ``videoN``."""
    b = _Builder("msrvtt_qa", "video")
    for path in files:
        split = _split_from_name(path, "test")
        data = _read_json(path)
        if not isinstance(data, list):
            raise EvalSetError(f"{path}: MSRVTT-QA annotations are a JSON list of records")
        for i, rec in enumerate(data):
            _need(rec, ("video_id", "question", "answer"), path, f"record {i}")
            vid = f"video{rec['video_id']}"
            b.add(split, vid, vid, [rec["question"]])
            b.record(split, vid, rec.get("id", i), question=rec["question"], answers=[rec["answer"]])
    return b.build()


def load_msvd(files):
    qa_files = [p for p in files if p.suffix == ".json"]
    maps = [p for p in files if p.suffix == ".txt"]
    if not qa_files or not maps:
        raise EvalSetError("msvd takes an MSVD-QA *_qa.json and youtube_mapping.txt; got "
                           + ", ".join(map(str, files)))
    vid2clip = {}
    for mp in maps:
        for lineno, line in enumerate(Path(mp).read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                parts = line.split()
                if len(parts) != 2:
                    raise EvalSetError(f"{mp}:{lineno}: expected 'YOUTUBE_CLIP vidN'")
                vid2clip[parts[1]] = parts[0]
    b = _Builder("msvd", "video")
    for path in qa_files:
        split = _split_from_name(path, "test")
        for i, rec in enumerate(_read_json(path)):
            _need(rec, ("video_id", "question"), path, f"record {i}")
            vid = f"vid{rec['video_id']}"
            if vid not in vid2clip:
                raise EvalSetError(f"{path}: record {i}: video_id {rec['video_id']} not in the mapping")
            clip = vid2clip[vid]
            b.add(split, clip, clip, [rec["question"]])
            if "answer" in rec:
                b.record(split, clip, rec.get("id", i), question=rec["question"], answers=[rec["answer"]])
    return b.build()


def load_vatex(files):
    b = _Builder("vatex", "video")
    for path in files:
        split = "public_test" if "public_test" in path.stem else _split_from_name(path, "val")
        for i, rec in enumerate(_read_json(path)):
            _need(rec, ("videoID",), path, f"record {i}")
            b.add(split, rec["videoID"], rec["videoID"], rec.get("enCap", []))
            for cap in rec.get("enCap", []):
                b.record(split, rec["videoID"], rec["videoID"], add_caption=cap)
    return b.build()


def load_youcook2(files):
    b = _Builder("youcook2", "video")
    for path in files:
        data = _read_json(path)
        _need(data, ("database",), path, "top level")
        for vid, rec in data["database"].items():
            _need(rec, ("subset", "annotations"), path, f"database[{vid!r}]")
            b.add(rec["subset"], vid, vid, [a["sentence"] for a in rec["annotations"]],
                  [rec.get("video_url")])
            for a in rec["annotations"]:   # one captioning query per annotated segment
                start, end = a["segment"]
                b.record(rec["subset"], vid, f"{vid}_{a.get('id')}", add_caption=a["sentence"],
                         start=float(start), end=float(end))
    return b.build()


def load_nextqa(files):
    csvs = [p for p in files if p.suffix == ".csv"]
    maps = [p for p in files if p.suffix == ".json"]
    vid_map = {}
    for mp in maps:
        vid_map.update({str(k): v for k, v in _read_json(mp).items()})
    b = _Builder("nextqa", "video")
    for path in csvs:
        split = _split_from_name(path, "val")
        for i, row in enumerate(_read_csv(path, ",")):
            _need(row, ("video", "question", "qid"), path, f"row {i + 2}")
            b.add(split, row["video"], vid_map.get(row["video"], row["video"]), [row["question"]])
            cands = [row[f"a{k}"] for k in range(5) if row.get(f"a{k}") not in (None, "")]
            rec = {"question": row["question"], "candidates": cands}
            if row.get("answer", "") != "":
                rec["answer"] = int(row["answer"])
            if row.get("type"):
                rec["type"] = row["type"]
            b.record(split, row["video"], f"{row['video']}_{row['qid']}", **rec)
    return b.build()


def load_ivqa(files):
    b = _Builder("ivqa", "video")
    for path in files:
        split = _split_from_name(path, "test")
        for i, row in enumerate(_read_csv(path, ",")):
            _need(row, ("video_id", "start", "end", "question"), path, f"row {i + 2}")
            iid = f"{row['video_id']}_{row['start']}_{row['end']}"
            b.add(split, iid, row["video_id"], [row["question"]])
            b.record(split, iid, iid, question=row["question"], start=float(row["start"]), end=float(row["end"]),
                     answers=[row[f"answer{k}"] for k in range(1, 6) if row.get(f"answer{k}")])
    return b.build()


def load_star(files):
    b = _Builder("star", "video")
    for path in files:
        split = _split_from_name(path, "val")
        for i, rec in enumerate(_read_json(path)):
            _need(rec, ("question_id", "question", "video_id"), path, f"record {i}")
            b.add(split, rec["video_id"], rec["video_id"], [rec["question"]])
            cands = [c["choice"] for c in rec.get("choices", [])]
            out = {"question": rec["question"], "candidates": cands}
            if "answer" in rec and rec["answer"] in cands:
                out["answer"] = cands.index(rec["answer"])
            if "start" in rec and "end" in rec:
                out.update(start=float(rec["start"]), end=float(rec["end"]))
            b.record(split, rec["video_id"], rec["question_id"], **out)
    return b.build()


def load_rareact(files):
    b = _Builder("rareact", "video")
    for path in files:
        for i, row in enumerate(_read_csv(path, ",")):
            _need(row, ("video_id", "start", "end", "verb", "noun"), path, f"row {i + 2}")
            b.add("test", row["video_id"], row["video_id"])
            # One record per row (a clip window scored for one (verb, noun) class); eval's mWAP
            # needs the class id and the label (0 negative, 1 positive, 2-4 hard negatives).
            rec = {"video_id": row["video_id"], "verb": row["verb"], "noun": row["noun"],
                   "class_name": f"{row['verb']} {row['noun']}",
                   "start": float(row["start"]), "end": float(row["end"])}
            for k in ("class_id", "annotation"):
                if row.get(k, "") != "":
                    try:
                        rec[k] = int(row[k])
                    except ValueError:
                        raise EvalSetError(f"{path}: row {i + 2}: {k} {row[k]!r} is not an integer") from None
            b.record("test", row["video_id"], row.get("id") or f"row{i + 2}", **rec)
    return b.build()


def load_kinetics(files):
    b = _Builder("kinetics", "video")
    for path in files:
        for i, row in enumerate(_read_csv(path, ",")):
            _need(row, ("youtube_id", "time_start", "time_end"), path, f"row {i + 2}")
            clip = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
            split = row.get("split") or _split_from_name(path, "val")
            b.add(split, clip, clip)
            if row.get("label"):
                b.record(split, clip, clip, label=row["label"], class_name=row["label"])
    return b.build()


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class EvalSetSpec:
    loader: Callable[[list[Path]], list[EvalItem]] | None
    kind: str
    files: str                      # what files it takes, for error messages
    needs_files: bool = True


EVAL_SETS: dict[str, EvalSetSpec] = {
    "coco_captions": EvalSetSpec(load_coco_captions, "image", "captions_val2014.json (COCO format) or a results list"),
    "nocaps": EvalSetSpec(load_nocaps, "image", "nocaps_val_4500_captions.json"),
    "vqav2": EvalSetSpec(load_vqav2, "image", "v2_OpenEnded_mscoco_val2014_questions.json and/or v2_mscoco_val2014_annotations.json"),
    "okvqa": EvalSetSpec(load_okvqa, "image", "OpenEnded_mscoco_val2014_questions.json and/or mscoco_val2014_annotations.json"),
    "textvqa": EvalSetSpec(load_textvqa, "image", "TextVQA_0.5.1_val.json"),
    "textcaps": EvalSetSpec(load_textcaps, "image", "TextCaps_0.1_val.json"),
    "vizwiz": EvalSetSpec(load_vizwiz, "image", "val.json"),
    "flickr30k": EvalSetSpec(load_flickr30k, "image", "dataset_flickr30k.json (Karpathy)"),
    "hatefulmemes": EvalSetSpec(load_hatefulmemes, "image", "dev_seen.jsonl / test_unseen.jsonl"),
    "visdial": EvalSetSpec(load_visdial, "image", "visdial_1.0_val.json [+ visdial_1.0_val_dense_annotations.json]"),
    "imagenet": EvalSetSpec(None, "image", "no annotation file: a folder of class folders", needs_files=False),
    "msrvtt": EvalSetSpec(load_msrvtt, "video", "MSRVTT 1k-A test csv"),
    "msrvtt_qa": EvalSetSpec(load_msrvtt_qa, "video", "MSRVTT-QA test_qa.json"),
    "msvd": EvalSetSpec(load_msvd, "video", "MSVD-QA test_qa.json and youtube_mapping.txt"),
    "vatex": EvalSetSpec(load_vatex, "video", "vatex_validation_v1.0.json"),
    "youcook2": EvalSetSpec(load_youcook2, "video", "youcookii_annotations_trainval.json"),
    "nextqa": EvalSetSpec(load_nextqa, "video", "val.csv [+ map_vid_vidorID.json]"),
    "ivqa": EvalSetSpec(load_ivqa, "video", "test.csv"),
    "star": EvalSetSpec(load_star, "video", "STAR_val.json"),
    "rareact": EvalSetSpec(load_rareact, "video", "rareact.csv"),
    "kinetics": EvalSetSpec(load_kinetics, "video", "validate.csv"),
}


@dataclass
class EvalSource:
    """One ``--eval`` argument: ``NAME[@SPLIT]=FILE[,FILE...][:MEDIA_DIR]``."""

    name: str
    files: list[Path]
    media_dir: Path | None
    split: str | None = None
    items: list[EvalItem] = field(default_factory=list)


def parse_eval_arg(arg: str) -> EvalSource:
    if "=" not in arg:
        raise EvalSetError(f"--eval {arg!r}: expected NAME[@SPLIT]=FILE[,FILE...][:MEDIA_DIR]")
    head, rest = arg.split("=", 1)
    name, _, split = head.partition("@")
    if name not in EVAL_SETS:
        raise EvalSetError(f"--eval {arg!r}: unknown eval set {name!r}; known: {', '.join(EVAL_SETS)}")
    # The media dir follows the last ':' (Windows drive letters are not a concern here).
    files_part, sep, media = rest.rpartition(":")
    if not sep:
        files_part, media = rest, ""
    if not EVAL_SETS[name].needs_files and not sep:   # imagenet=DIR; imagenet=MAPPING.txt:DIR
        files_part, media = "", files_part
    files = [Path(f) for f in files_part.split(",") if f]
    return EvalSource(name, files, Path(media) if media else None, split or None)


def _index_media_dir(media_dir: Path) -> dict[str, str]:
    """file stem and name -> relative path, for media named by id only
    (videos of unknown extension, nested folders)."""
    out: dict[str, str] = {}
    for root, _dirs, names in os.walk(media_dir):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), media_dir)
            out.setdefault(n, rel)
            out.setdefault(os.path.splitext(n)[0], rel)
    return out


def load_eval_set(src: EvalSource, require_media: bool = True) -> list[EvalItem]:
    """Load one eval set and resolve its media; errors list what is missing."""
    spec = EVAL_SETS[src.name]
    missing_files = [str(p) for p in src.files if not p.is_file()]
    problems = []
    if spec.needs_files and not src.files:
        problems.append(f"no annotation file given (it takes {spec.files})")
    if missing_files:
        problems.append("annotation file(s) not found: " + ", ".join(missing_files))
    if require_media and src.media_dir is None:
        problems.append("no media directory given (append :DIR)")
    elif src.media_dir is not None and not src.media_dir.is_dir():
        problems.append(f"media directory not found: {src.media_dir}")
    if problems:
        raise EvalSetError(f"eval set {src.name!r}: " + "; ".join(problems))
    if spec.loader is None:
        names = {}
        for f in src.files:   # optional LOC_synset_mapping.txt
            names.update(load_synset_mapping(f))
        items = load_imagenet_folder(src.media_dir, src.split or "val", names or None)
    else:
        items = spec.loader(src.files)
    if src.split:
        wanted = set(src.split.split("+"))
        items = [it for it in items if it.split in wanted]
        if not items:
            raise EvalSetError(f"eval set {src.name!r}: no items in split(s) {sorted(wanted)}")
    if src.media_dir is not None:
        items = resolve_media(items, src.media_dir, strict=require_media)
    return items


def resolve_media(items: list[EvalItem], media_dir: Path, strict: bool = True) -> list[EvalItem]:
    """Rewrite each item's media to a path under ``media_dir``; with
    ``strict``, any item whose media is absent is an error naming them."""
    lookup = None
    out, missing = [], []
    for it in items:
        if it.media is None:
            out.append(it)
            continue
        p = media_dir / it.media
        if not p.is_file():
            if lookup is None:
                lookup = _index_media_dir(media_dir)
            rel = lookup.get(os.path.basename(it.media)) or lookup.get(Path(it.media).name) \
                or lookup.get(Path(it.media).stem if Path(it.media).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS
                              else it.media)
            if rel is None:
                missing.append(it)
                out.append(replace(it, media=None))
                continue
            p = media_dir / rel
        out.append(replace(it, media=str(p)))
    if missing and strict:
        shown = ", ".join(f"{m.item_id} ({m.media})" for m in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise EvalSetError(f"eval set {items[0].eval_set!r}: {len(missing)} of {len(items)} media "
                           f"files not found under {media_dir}: {shown}{more} "
                           f"(pass --allow-missing-media to index the rest)")
    return out
