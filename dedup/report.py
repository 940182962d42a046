"""Report what dedup matched: ``dedup_report.json`` and a self-contained
``dedup_report.html`` (thumbnails inlined as data: URIs; opens with no server).

    python -m dedup.report --matches MATCHES.jsonl [--index eval_index.npz] --out DIR

Each line of MATCHES.jsonl is one match as ``dedup.apply.match_record``
writes it: train_key, train_url, train_image (a path, or ``SHARD.tar#MEMBER``),
eval_set, split, item_id, kind, distance, eval_ref.  Counts are of distinct
training images / documents / texts per eval set and split, not of pairs.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import sys
import tarfile
from collections import Counter, defaultdict
from pathlib import Path

from PIL import Image

THUMB = 128


def read_matches(path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {e.msg}") from None
            missing = [k for k in ("train_key", "eval_set", "split", "item_id", "kind") if k not in rec]
            if missing:
                raise ValueError(f"{path}:{lineno}: match lacks {missing}")
            out.append(rec)
    return out


def _image_id(rec: dict) -> str:
    return rec.get("train_image") or rec.get("train_url") or rec["train_key"]


def summarise(matches: list[dict], thresholds: dict | None) -> dict:
    per: dict[tuple[str, str], dict[str, set]] = defaultdict(lambda: defaultdict(set))
    hist: dict[str, Counter] = defaultdict(Counter)
    for m in matches:
        s = per[(m["eval_set"], m["split"])]
        s["documents"].add(m["train_key"])
        if m["kind"] in ("image", "url"):
            s["images"].add(_image_id(m))
            s["images_by_" + m["kind"]].add(_image_id(m))
        elif m["kind"] == "video":
            s["videos"].add(m["train_key"])
        elif m["kind"] == "text":
            s["texts"].add(m["train_key"])
        if m["kind"] in ("image", "video"):
            hist[m["kind"]][int(round(float(m.get("distance", 0))))] += 1
    sets = []
    for (name, split), s in sorted(per.items()):
        sets.append({"eval_set": name, "split": split,
                     **{k: len(s.get(k, ())) for k in ("images", "images_by_image", "images_by_url",
                                                        "videos", "texts", "documents")},
                     "eval_items": len({m["item_id"] for m in matches
                                        if m["eval_set"] == name and m["split"] == split})})
    return {"thresholds": thresholds, "num_match_records": len(matches), "per_eval_set": sets,
            "distance_histogram": {k: {str(d): c for d, c in sorted(v.items())} for k, v in hist.items()},
            "totals": {"images": len({_image_id(m) for m in matches if m["kind"] in ("image", "url")}),
                       "documents": len({m["train_key"] for m in matches})}}


# ---------------------------------------------------------------- thumbnails


def _open_media(ref: str | None) -> Image.Image | None:
    if not ref:
        return None
    try:
        if "#" in ref and ref.split("#", 1)[0].endswith(".tar"):
            tar_path, member = ref.split("#", 1)
            with tarfile.open(tar_path) as tf:
                data = tf.extractfile(member).read()
            return Image.open(io.BytesIO(data))
        p = Path(ref)
        if not p.is_file():
            return None
        if p.suffix.lower() in {".mp4", ".avi", ".webm", ".mkv", ".mov"}:
            import av
            with av.open(str(p)) as c:
                for frame in c.decode(video=0):
                    return frame.to_image()
            return None
        return Image.open(p)
    except Exception:
        return None  # a thumbnail we cannot make is shown as missing, not fatal


def thumbnail_uri(ref: str | None) -> str | None:
    img = _open_media(ref)
    if img is None:
        return None
    img = img.convert("RGB")
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gallery_rows(matches: list[dict], limit: int) -> list[dict]:
    seen, rows = set(), []
    for m in sorted(matches, key=lambda m: (float(m.get("distance", 0)), m["eval_set"], str(m["item_id"]))):
        if m["kind"] not in ("image", "video", "url"):
            continue
        key = (_image_id(m), m["eval_set"], m["split"], str(m["item_id"]))
        if key in seen:
            continue
        seen.add(key)
        rows.append(m)
        if len(rows) >= limit:
            break
    return rows


# ---------------------------------------------------------------- html


def render_html(summary: dict, rows: list[dict]) -> str:
    e = html.escape
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>dedup report</title><style>",
           "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:4px 8px}.bar{background:#47a;height:12px}"
           ".pair img{max-width:128px;max-height:128px}.missing{color:#a00}</style></head><body>",
           "<h1>Dedup report</h1>",
           f"<h2>Thresholds</h2><pre>{e(json.dumps(summary['thresholds'], indent=1))}</pre>",
           "<h2>Matches per eval set and split</h2><table><tr><th>eval set</th><th>split</th>"
           "<th>training images</th><th>by phash</th><th>by URL</th><th>videos</th><th>texts</th>"
           "<th>documents</th><th>eval items hit</th></tr>"]
    for s in summary["per_eval_set"]:
        out.append("<tr>" + "".join(f"<td>{e(str(s[k]))}</td>" for k in (
            "eval_set", "split", "images", "images_by_image", "images_by_url", "videos", "texts",
            "documents", "eval_items")) + "</tr>")
    out.append("</table><h2>Match distances</h2>")
    for kind, h in summary["distance_histogram"].items():
        top = max(h.values()) if h else 1
        out.append(f"<h3>{e(kind)}</h3><table><tr><th>Hamming distance</th><th>matches</th><th></th></tr>")
        for d, c in h.items():
            out.append(f"<tr><td>{e(d)}</td><td>{c}</td><td><div class='bar' "
                       f"style='width:{max(2, int(300 * c / top))}px'></div></td></tr>")
        out.append("</table>")
    out.append(f"<h2>Matched pairs ({len(rows)} shown)</h2><table class='pair'><tr><th>training</th>"
               "<th>eval</th><th>distance</th><th>eval item</th><th>training URL / key</th></tr>")
    for m in rows:
        cells = []
        for ref in (m.get("train_image"), m.get("eval_ref")):
            uri = thumbnail_uri(ref)
            cells.append(f"<img src='{uri}' alt='{e(str(ref))}'>" if uri
                         else f"<span class='missing'>no thumbnail ({e(str(ref))})</span>")
        url = m.get("train_url") or ""
        link = f"<a href='{e(url)}'>{e(url)}</a>" if url else ""
        out.append(f"<tr><td>{cells[0]}</td><td>{cells[1]}</td><td>{e(str(m.get('distance')))} "
                   f"({e(m['kind'])})</td><td>{e(m['eval_set'])}/{e(m['split'])}/{e(str(m['item_id']))}</td>"
                   f"<td>{link}<br><small>{e(m['train_key'])}</small></td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out)


def write_report(matches: list[dict], out_dir, thresholds: dict | None = None,
                 gallery_limit: int = 500) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(matches, thresholds)
    rows = gallery_rows(matches, gallery_limit)
    summary["gallery"] = [{k: m.get(k) for k in ("train_key", "train_url", "train_image", "eval_set",
                                                  "split", "item_id", "kind", "distance", "eval_ref")}
                          for m in rows]
    (out / "dedup_report.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    (out / "dedup_report.html").write_text(render_html(summary, rows), encoding="utf-8")
    return summary


def main(argv=None) -> int:
    from shards.cli import Parser

    ap = Parser(prog="python -m dedup.report", description=__doc__.splitlines()[0])
    ap.add_argument("--matches", required=True, help="OUTPUT/dedup_matches.jsonl of a job run with --dedup-index")
    ap.add_argument("--out", required=True, help="report path prefix (writes PREFIX/dedup_report.{json,html})")
    ap.add_argument("--index", help="the eval index the job used (for its thresholds)")
    ap.add_argument("--gallery-limit", type=int, default=500, help="matches shown in the gallery (default: 500)")
    args = ap.parse_args(argv)
    for option, path in (("--matches", args.matches), ("--index", args.index)):
        if path and not os.path.isfile(path):
            ap.error(f"{option} {path}: no such file")
    if args.gallery_limit < 0:
        ap.error(f"--gallery-limit {args.gallery_limit}: expected an integer >= 0")
    thresholds = None
    if args.index:
        from dedup.index import EvalIndex
        thresholds = EvalIndex.load(args.index).thresholds
    try:
        matches = read_matches(args.matches)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    s = write_report(matches, args.out, thresholds, args.gallery_limit)
    print(json.dumps({"per_eval_set": s["per_eval_set"], "out": args.out}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
