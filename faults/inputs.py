"""Input kinds that used to be lost without a word, each with its exact expected
outcome (counters that must come out, and nothing else dropped):

    cases = build_input_cases(tmp_dir)      # -> [InputCase(name, path, kind, expect, note)]

Made from the real WARC and photos in tests/data with tests/helpers/archives.py:
ARC (plain and gzip per record), WARCs compressed as one gzip/bz2/xz/zstd stream,
an lz4 file under a .gz name, br/zstd and an unsupported Content-Encoding;
img2dataset-shaped tars with a 2 GiB sparse member and cut inside a member and
inside a header; a csv with a 210,000-character cell; a parquet list whose url
column is binary; a checkpoint folder whose latest file is truncated.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class InputCase:
    name: str
    path: str
    kind: str                       # records | list | checkpoint
    note: str
    expect: dict = field(default_factory=dict)   # counter -> exact value
    # counters ignored when checking that nothing else was dropped
    allow: tuple = ("records_read", "pages", "candidate_documents", "images_requested",
                    "images_ok", "list_rows", "read_files_stream_compressed")


def _tar(path, samples, cut_at=None):
    """samples: [(key, {ext: bytes})]; returns the offset of each sample's first header."""
    starts = []
    with open(path, "wb") as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for key, members in samples:
            starts.append(fh.tell())
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return starts


def build_input_cases(out_dir: str) -> list[InputCase]:
    from tests.data_paths import IMAGES, WARCS
    from tests.helpers.archives import recompress_whole, reencode_bodies, warc_to_arc

    os.makedirs(out_dir, exist_ok=True)
    j = lambda name: os.path.join(out_dir, name)  # noqa: E731
    cc = WARCS / "resiliparse-warcfile.warc.gz"    # a real CC WARC: 16 HTML responses
    cases: list[InputCase] = []
    read16 = {"records_read": 16}

    warc_to_arc(cc, j("cc.arc"))
    cases.append(InputCase("arc", j("cc.arc"), "records", "ARC v1 made from a real CC WARC",
                           dict(read16, urls_missing=0, urls_distinct=16)))
    warc_to_arc(cc, j("cc.arc.gz"))
    cases.append(InputCase("arc_gz", j("cc.arc.gz"), "records", "the same ARC, gzip per record",
                           dict(read16, urls_missing=0, urls_distinct=16)))
    for kind, suffix in (("gzip", "gz"), ("bz2", "bz2"), ("xz", "xz"), ("zstd", "zst")):
        p = j(f"cc-whole.warc.{suffix}")
        recompress_whole(cc, p, kind)
        cases.append(InputCase(f"warc_whole_{kind}", p, "records",
                               f"the WARC compressed as one {kind} stream",
                               dict(read16, read_files_stream_compressed=1)))
    lz4 = j("lz4-named.warc.gz")
    with open(lz4, "wb") as fh:
        fh.write(b"\x04\x22\x4d\x18" + os.urandom(256))
    cases.append(InputCase("warc_lz4_content", lz4, "records", "lz4 bytes under a .warc.gz name",
                           {"read_drop_unsupported_compression": 1}))
    for coding in ("br", "zstd"):
        p = j(f"cc-{coding}.warc.gz")
        reencode_bodies(cc, p, coding)
        cases.append(InputCase(f"body_{coding}", p, "records",
                               f"every page body Content-Encoding: {coding}", read16))
    p = j("cc-compress.warc.gz")
    reencode_bodies(cc, p, "compress")
    cases.append(InputCase("body_compress", p, "records", "Content-Encoding: compress (unsupported)",
                           {"read_drop_unsupported_content_encoding": 16}))

    photos = ["china.jpg", "flower.jpg", "coffee.png", "astronaut.png"]

    def sample(i, name):
        ext = name.rsplit(".", 1)[-1]
        return (f"{i:09d}", {ext: (IMAGES / name).read_bytes(), "txt": f"photo {name}".encode(),
                             "json": json.dumps({"url": f"https://img.example/{name}"}).encode()})
    full = j("shard.tar")
    starts = _tar(full, [sample(i, n) for i, n in enumerate(photos)])
    data = open(full, "rb").read()
    open(j("cut-member.tar"), "wb").write(data[: starts[3] + 512 + 1000])
    cases.append(InputCase("tar_cut_in_member", j("cut-member.tar"), "list",
                           "img2dataset tar cut inside the 4th sample's image",
                           {"list_rows": 3, "list_drop_truncated_tar": 1, "list_drop_cut_sample": 1}))
    open(j("cut-header.tar"), "wb").write(data[: starts[3] + 300])
    cases.append(InputCase("tar_cut_in_header", j("cut-header.tar"), "list",
                           "img2dataset tar cut inside a header",
                           {"list_rows": 3, "list_drop_truncated_tar": 1}))
    if shutil.which("tar"):
        d = j("sparse-members")
        os.makedirs(d, exist_ok=True)
        names = []
        for i, name in enumerate(["china.jpg", None, "flower.jpg"]):
            key = f"{i:09d}"
            if name:
                shutil.copy(IMAGES / name, os.path.join(d, f"{key}.jpg"))
            else:
                with open(os.path.join(d, f"{key}.jpg"), "wb") as fh:
                    fh.truncate(2 << 30)
            with open(os.path.join(d, f"{key}.json"), "w") as fh:
                json.dump({"url": f"https://img.example/{i}.jpg"}, fh)
            names += [f"{key}.jpg", f"{key}.json"]
        subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", j("sparse.tar"), *names],
                       cwd=d, check=True)
        cases.append(InputCase("tar_sparse_2gib_member", j("sparse.tar"), "list",
                               f"a {os.path.getsize(j('sparse.tar')) // 1024} KiB tar holding a "
                               "2 GiB sparse member",
                               {"list_rows": 2, "list_drop_member_too_large": 1}))
    import csv

    with open(j("long-cell.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "caption"])
        w.writerows([["https://e.example/1.jpg", "short"],
                     ["https://e.example/2.jpg", "a very long alt text " * 10_000],
                     ["https://e.example/3.jpg", "after the long one"]])
    cases.append(InputCase("csv_210k_char_cell", j("long-cell.csv"), "list",
                           "a 210,000-character csv cell (default limit 131,072)",
                           {"list_rows": 3, "list_rows_long_field": 1}))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"url": pa.array([b"https://e.example/1.jpg", b"https://e.example/2.jpg"]),
                             "caption": ["one", "two"]}), j("binary-url.parquet"))
    cases.append(InputCase("parquet_binary_url", j("binary-url.parquet"), "list",
                           "a parquet url column of type binary",
                           {"list_rows": 2, "list_column_cast_to_text": 1}))
    cases.append(_checkpoint_case(j("ckpts")))
    return cases


def _checkpoint_case(d: str) -> InputCase:
    import torch

    from train import checkpoint

    for step in (2, 4):
        checkpoint.save(d, step, {"step": step, "w": torch.full((256, 256), float(step))}, keep=3)
    p = checkpoint.path_for(d, 4)
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    return InputCase("checkpoint_truncated_latest", d, "checkpoint",
                     "latest checkpoint truncated, an intact older one beside it",
                     {"checkpoint_damaged": 1, "resumed_from_step": 2}, allow=())


# ------------------------------------------------------------------ stages per kind

def run_input_stage(case: InputCase, counts) -> None:
    """Read the case with the job's own functions, counting into ``counts``."""
    if case.kind == "records":
        from pipeline.read import InputError, iter_records

        urls = []
        try:
            for rec in iter_records(case.path, counts):
                counts.inc("records_read")
                urls.append(rec.url)
        except InputError as e:            # as the job's _ReadFile does
            counts.inc(e.reason)
        if "urls_missing" in case.expect:
            counts.inc("urls_missing", sum(1 for u in urls if not u))
            counts.inc("urls_distinct", len(set(urls)))
    elif case.kind == "list":
        from pipeline.lists import iter_list

        for _ in iter_list(case.path, counts=counts):
            counts.inc("list_rows")
    else:
        import contextlib

        from train import checkpoint

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            path, state = checkpoint.load_latest(case.path)
        counts.inc("checkpoint_damaged", err.getvalue().count("trying the previous checkpoint"))
        counts.inc("resumed_from_step", state["step"])


def check_expectations(case: InputCase, counts: dict) -> list[str]:
    """What differs from the case's exact expectation (empty: as expected)."""
    wrong = [f"{k} = {counts.get(k, 0)}, expected {v}" for k, v in case.expect.items()
             if counts.get(k, 0) != v]
    extra = [f"unexpected {k} = {v}" for k, v in counts.items()
             if k not in case.expect and k not in case.allow and v]
    return wrong + extra
