"""The benchmarks: which published files, splits, prompt form and metric each one uses.

A task reads its annotations with the loaders of :mod:`dedup.evalsets` (the
one parser of each published format) from ``DATA/<task>/`` and its images or
videos from ``DATA/<task>/media/``:

==============  =========  ==============================================  ==========  ==========
task            kind       annotation files under DATA/<task>/             query       demos
==============  =========  ==============================================  ==========  ==========
coco            caption    dataset_coco.json (Karpathy)                    test        train+restval
flickr30k       caption    dataset_flickr30k.json (Karpathy)               test        train
nocaps          caption    nocaps_val_4500_captions.json (+ COCO demos)    val         (coco train)
textcaps        caption    TextCaps_0.1_{train,val}.json                   val         train
vatex           caption    vatex_{training,validation}_v1.0.json           val         training
youcook2        caption    youcookii_annotations_trainval.json             validation  training
msrvtt          caption    MSRVTT 1k-A csv(s) with a split in the name     test        train
vqav2           vqa        v2_OpenEnded_mscoco_{train,val}2014_questions.json + v2_mscoco_*_annotations.json  val2014  train2014
okvqa           vqa        OpenEnded_mscoco_{train,val}2014_questions.json + mscoco_*_annotations.json        val2014  train2014
textvqa         vqa        TextVQA_0.5.1_{train,val}.json                  val         train
vizwiz          vqa        train.json, val.json                            val         train
msrvtt_qa       vqa        {train,test}_qa.json                            test        train
msvd_qa         vqa        {train,test}_qa.json + youtube_mapping.txt      test        train
ivqa            ivqa       {train,test}.csv                                test        train
hatefulmemes    hateful    train.jsonl, dev_seen.jsonl                     dev_seen    train
imagenet        classify   DATA/imagenet/{train,val}/ class folders (+ LOC_synset_mapping.txt)  val  train
kinetics        classify   {train,validate}.csv                            validate    train
nextqa          choice     {train,val}.csv (+ map_vid_vidorID.json)        val         train
star            choice     STAR_{train,val}.json                           val         train
visdial         visdial    visdial_1.0_{train,val}.json + *dense_annotations*.json  val2018  train
rareact         rareact    rareact.csv                                     test        (none)
==============  =========  ==============================================  ==========  ==========

The query split is what is scored; demonstrations come only from the demo
split (never the query split). A task whose folder, annotation files or
media folder is missing fails with one line naming the task and the path.
Queries whose media file is absent are dropped and counted (reason
``no media file``), as are records that lack what the task needs (``no
question``, ``no answers``, ...). RareAct has a test split only: it runs
zero-shot, without the two text-only examples (there is no split to take
them from); its classes are its (verb, noun) pairs, ``"{verb} {noun}"``, in
class-id order, and every clip ranks all of them (mWAP needs each positive
clip's score for every class).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dedup.evalsets import EVAL_SETS, EvalSetError, EvalSource, load_eval_set

KINDS = ("caption", "vqa", "ivqa", "hateful", "classify", "choice", "visdial", "rareact")


class TaskError(ValueError):
    """A task that cannot be run; the message names the task and the path."""


@dataclass(frozen=True)
class Task:
    name: str
    eval_set: str                 # the dedup.evalsets registry name of its format
    kind: str
    query_split: str
    demo_split: str               # "a+b" for several; "" for none (zero-shot only)
    paper_name: str               # column heading in results.md
    demo_task: str | None = None  # take demonstrations from another task (NoCaps: COCO)

    @property
    def media(self) -> str:
        return EVAL_SETS[self.eval_set].kind

    @property
    def generates(self) -> bool:
        return self.kind in ("caption", "vqa", "ivqa")


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("coco", "coco_captions", "caption", "test", "train+restval", "COCO"),
    Task("flickr30k", "flickr30k", "caption", "test", "train", "Flickr30K"),
    Task("nocaps", "nocaps", "caption", "val", "train+restval", "NoCaps", demo_task="coco"),
    Task("textcaps", "textcaps", "caption", "val", "train", "TextCaps"),
    Task("vatex", "vatex", "caption", "val", "training", "VATEX"),
    Task("youcook2", "youcook2", "caption", "validation", "training", "YouCook2"),
    Task("msrvtt", "msrvtt", "caption", "test", "train", "MSRVTT"),
    Task("vqav2", "vqav2", "vqa", "val2014", "train2014", "VQAv2"),
    Task("okvqa", "okvqa", "vqa", "val2014", "train2014", "OKVQA"),
    Task("textvqa", "textvqa", "vqa", "val", "train", "TextVQA"),
    Task("vizwiz", "vizwiz", "vqa", "val", "train", "VizWiz"),
    Task("msrvtt_qa", "msrvtt_qa", "vqa", "test", "train", "MSRVTTQA"),
    Task("msvd_qa", "msvd", "vqa", "test", "train", "MSVDQA"),
    Task("ivqa", "ivqa", "ivqa", "test", "train", "iVQA"),
    Task("hatefulmemes", "hatefulmemes", "hateful", "dev_seen", "train", "HatefulMemes"),
    Task("imagenet", "imagenet", "classify", "val", "train", "ImageNet"),
    Task("kinetics", "kinetics", "classify", "validate", "train", "Kinetics700"),
    Task("nextqa", "nextqa", "choice", "val", "train", "NextQA"),
    Task("star", "star", "choice", "val", "train", "STAR"),
    Task("visdial", "visdial", "visdial", "val2018", "train", "VisDial"),
    Task("rareact", "rareact", "rareact", "test", "", "RareAct"),
]}


@dataclass
class Query:
    """One scored unit: a record (question, caption set, ...) on one image or clip."""

    uid: str                      # unique within the task
    media: str                    # resolved path
    record: dict
    split: str


@dataclass
class TaskData:
    task: Task
    queries: list[Query]
    demos: list[Query]            # the demonstration pool (demo split only)
    classes: list[str] = field(default_factory=list)   # classify: every class name, sorted; rareact: by id
    dropped: Counter = field(default_factory=Counter)


# What each kind needs in a record to be a query (or a demonstration).
_NEEDS = {"caption": ("captions",), "vqa": ("question", "answers"), "ivqa": ("question", "answers"),
          "hateful": ("text", "label"), "classify": ("class_name",), "choice": ("question", "candidates", "answer"),
          "visdial": ("question", "options"), "rareact": ("class_id", "annotation")}


def parse_tasks(arg: str) -> list[Task]:
    names = [n.strip() for n in arg.split(",") if n.strip()]
    unknown = [n for n in names if n not in TASKS]
    if unknown or not names:
        raise TaskError(f"--tasks {arg!r}: unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    return [TASKS[n] for n in names]


def _files(task: Task, folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise TaskError(f"task {task.name}: data folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file()
                   and p.suffix.lower() in (".json", ".jsonl", ".csv", ".txt"))
    if not files and EVAL_SETS[task.eval_set].needs_files:
        raise TaskError(f"task {task.name}: no annotation file in {folder} "
                        f"(it takes {EVAL_SETS[task.eval_set].files})")
    return files


def _load_items(task: Task, data_dir: Path, splits: set[str]):
    folder = Path(data_dir) / task.name
    files = _files(task, folder)
    if task.eval_set == "imagenet":
        out = []
        for split in sorted(splits):
            media = folder / split
            if not media.is_dir():
                raise TaskError(f"task {task.name}: image folder not found: {media}")
            out += load_eval_set(EvalSource("imagenet", files, media, split), require_media=False)
        return out
    media = folder / "media"
    if not media.is_dir():
        raise TaskError(f"task {task.name}: media folder not found: {media}")
    try:
        items = load_eval_set(EvalSource(task.eval_set, files, media), require_media=False)
    except EvalSetError as e:
        raise TaskError(f"task {task.name}: {e}") from None
    return [it for it in items if it.split in splits]


def _queries(task: Task, items, dropped: Counter) -> list[Query]:
    out = []
    for it in items:
        for rec in it.records:
            if it.media is None or not Path(it.media).is_file():
                dropped["no media file"] += 1
                continue
            lacking = [k for k in _NEEDS[task.kind] if not rec.get(k) and rec.get(k) != 0]
            if lacking:
                dropped[f"no {lacking[0]}"] += 1
                continue
            if task.kind == "visdial" and "relevance" not in rec and it.split == task.query_split:
                dropped["no dense relevance"] += 1
                continue
            out.append(Query(f"{it.item_id}/{rec['id']}" if str(rec["id"]) != str(it.item_id) else str(it.item_id),
                             it.media, rec, it.split))
    return out


def load_task(task: Task, data_dir: str | Path, limit: int | None = None) -> TaskData:
    """The task's queries (its query split, the first ``limit``) and demonstration pool."""
    dropped: Counter = Counter()
    qsplits = {task.query_split}
    dsplits = set(task.demo_split.split("+")) if task.demo_split else set()
    demo_task = TASKS[task.demo_task] if task.demo_task else task
    if demo_task is task:
        items = _load_items(task, data_dir, qsplits | dsplits)
        q_items = [it for it in items if it.split in qsplits]
        d_items = [it for it in items if it.split in dsplits]
    else:
        q_items = _load_items(task, data_dir, qsplits)
        d_items = _load_items(demo_task, data_dir, dsplits)
    queries = _queries(task, q_items, dropped)
    if not queries:
        raise TaskError(f"task {task.name}: no queries in split {task.query_split!r} under "
                        f"{Path(data_dir) / task.name} (dropped: {dict(dropped) or 'none'})")
    classes = []
    if task.kind == "rareact":     # class id order; from every row, before any --limit
        names = {int(q.record["class_id"]): q.record["class_name"] for q in queries}
        classes = [names[c] for c in sorted(names)]
    if limit:
        queries = queries[:limit]
    demo_dropped: Counter = Counter()
    demos = _queries(demo_task, d_items, demo_dropped)
    for reason, n in demo_dropped.items():
        dropped[f"demo pool: {reason}"] += n
    if task.kind == "classify":
        classes = sorted({q.record["class_name"] for q in queries + demos})
    return TaskData(task, queries, demos, classes, dropped)
