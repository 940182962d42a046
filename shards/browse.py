"""Look at a corpus: a shard browser for m3w, pairs and videos outputs.

    python -m shards.browse OUT_DIR [--out FILE.html]        # one self-contained page
    python -m shards.browse OUT_DIR --serve [--port 8000]     # a local server (large sets)
    make browse OUTPUT=out/m3w

OUT_DIR is a job's output folder (``manifest.json``), or a folder of such
folders (``make pairs`` writes ``align/`` and ``ltip/``).  The page shows

- m3w documents as the trainer sees them: the text chunks with their
  ``<image>`` and ``<EOC>`` tokens in place and each image inline at its tag,
  with url, title, language, word count, and per image alt / caption / size /
  where it came from; stand-in images and eval-set matches (``--dedup-action
  tag``) are flagged;
- pairs as a grid of image + caption + caption source; videos as a strip of
  their 1 FPS frames with the caption;
- paging, search by URL or text, a random sample, filters by language,
  caption source and subset;
- the victims the job kept with ``--keep-dropped`` (``OUT_DIR/dropped/``), per
  reason, beside each reason's count.

``--out`` writes everything (media as ``data:`` URIs) into one HTML file with
no external reference, so it can be mailed or archived; ``--max-samples``
caps it (the page says so).  ``--serve`` indexes the tars (member offsets,
no media read) and serves the page, a small JSON API and the media on
demand, bound to 127.0.0.1 only.

Tar members are read by offset from our own index rather than through
webdataset's streaming iterator, because the server needs random access;
members are grouped by key with webdataset's rule (the name up to its first
dot), so the two agree on every tar.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

APP = Path(__file__).with_name("browse_app.html")
DEFAULT_MAX_SAMPLES = 2000
PAGE_SIZES = (10, 20, 50, 100)


# ---------------------------------------------------------------- reading an output folder


@dataclass
class Member:
    shard: int           # index into Corpus.shards
    offset: int          # of the data in the tar file
    size: int


@dataclass
class Sample:
    set: str
    key: str
    shard: int
    members: dict = field(default_factory=dict)   # suffix -> Member
    meta: dict = field(default_factory=dict)      # the json member
    txt: str | None = None


def _index_tar(path: str, shard: int) -> list[tuple[str, dict]]:
    """(key, {suffix: Member}) for each sample of a tar, in tar order; only headers read."""
    groups: dict[str, dict] = {}
    order: list[str] = []
    with tarfile.open(path, mode="r:") as tar:
        for ti in tar:
            if not ti.isfile():
                continue
            base = os.path.basename(ti.name)
            key, _, suffix = base.partition(".")
            if key not in groups:
                groups[key] = {}
                order.append(key)
            groups[key][suffix] = Member(shard, ti.offset_data, ti.size)
    return [(k, groups[k]) for k in order]


def _datasets(root: str) -> list[tuple[str, str]]:
    """(subset name, folder) for a job output, or for a folder of job outputs."""
    if os.path.exists(os.path.join(root, "manifest.json")):
        return [("", root)]
    subs = sorted(d for d in os.listdir(root)
                  if os.path.exists(os.path.join(root, d, "manifest.json")))
    return [(d, os.path.join(root, d)) for d in subs]


class Corpus:
    """The samples of one output folder (and its subsets), their media by offset,
    and the victims of --keep-dropped."""

    def __init__(self, root: str):
        if "://" in root:
            raise ValueError(f"{root}: browse reads local folders; copy the output here first")
        if not os.path.isdir(root):
            raise ValueError(f"{root}: no such folder")
        self.root = root
        self.sets = _datasets(root)
        if not self.sets:
            raise ValueError(f"{root}: no manifest.json here or in its subfolders "
                             "(is it a job's output folder?)")
        self.shards: list[str] = []
        self.samples: list[Sample] = []
        kinds = set()
        self.manifest_samples = 0
        for name, folder in self.sets:
            with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            kinds.add(manifest["kind"])
            self.manifest_samples += manifest["num_samples"]
            for shard in manifest["shards"]:
                path = os.path.join(folder, shard["name"])
                if not os.path.exists(path):
                    raise ValueError(f"{path}: listed in {folder}/manifest.json but missing")
                i = len(self.shards)
                self.shards.append(path)
                for key, members in _index_tar(path, i):
                    self.samples.append(Sample(name, key, i, members))
        if len(kinds) != 1:
            raise ValueError(f"{root}: mixes kinds {sorted(kinds)}")
        self.kind = kinds.pop()
        self.stats = self._json(os.path.join(root, "stats.json")) or self._json(
            os.path.join(self.sets[0][1], "stats.json")) or {}
        self.dropped = self._dropped()
        self._handles: dict[int, object] = {}
        for s in self.samples:
            s.meta = json.loads(self.read(s.members["json"]))
            if "txt" in s.members:
                s.txt = self.read(s.members["txt"]).decode("utf-8")

    @staticmethod
    def _json(path: str):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _dropped(self) -> dict:
        """{"reasons": [{reason, count, kept}], "victims": [Sample]} from OUT_DIR/dropped."""
        from .dropped import DIR, INDEX

        folder = os.path.join(self.root, DIR)
        index = self._json(os.path.join(folder, INDEX))
        counters = self.stats.get("counters", {})
        if not index:
            return {"reasons": [], "victims": []}
        reasons, victims = [], []
        for reason, info in sorted(index["reasons"].items()):
            count = counters.get(f"drop_{reason}")
            if count is None and reason.startswith("page_"):
                count = counters.get("page_drop_" + reason[len("page_"):])
            reasons.append({"reason": reason, "count": count if count is not None else info["kept"],
                            "kept": info["kept"]})
            for name in info["files"]:
                path = os.path.join(folder, name)
                if not os.path.exists(path):
                    continue
                i = len(self.shards)
                self.shards.append(path)
                for key, members in _index_tar(path, i):
                    victims.append(Sample("dropped", key, i, members))
        return {"reasons": reasons, "victims": victims, "max_per_reason": index.get("max_per_reason")}

    def read(self, m: Member) -> bytes:
        fh = self._handles.get(m.shard)
        if fh is None:
            fh = self._handles[m.shard] = open(self.shards[m.shard], "rb")
        fh.seek(m.offset)
        return fh.read(m.size)

    def load_victims(self) -> None:
        for v in self.dropped["victims"]:
            if not v.meta:
                v.meta = json.loads(self.read(v.members["json"]))

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()

    # ------------------------------------------------------------ what the page gets

    def summary(self) -> dict:
        langs, sources = {}, {}
        n_images = 0
        for s in self.samples:
            langs[s.meta.get("lang") or "?"] = langs.get(s.meta.get("lang") or "?", 0) + 1
            src = s.meta.get("caption_source")
            if src:
                sources[src] = sources.get(src, 0) + 1
            n_images += _n_images(self.kind, s)
        return {"kind": self.kind, "root": os.path.basename(os.path.abspath(self.root)),
                "sets": [n for n, _ in self.sets if n], "total": len(self.samples),
                "images": n_images, "languages": dict(sorted(langs.items(), key=lambda kv: -kv[1])),
                "caption_sources": dict(sorted(sources.items(), key=lambda kv: -kv[1])),
                "dropped": self.dropped["reasons"],
                "dropped_max_per_reason": self.dropped.get("max_per_reason"),
                "page_sizes": PAGE_SIZES}

    def record(self, i: int, media) -> dict:
        """Sample ``i`` as the page renders it; ``media(member) -> src`` for each picture."""
        s = self.samples[i]
        m = s.meta
        rec = {"i": i, "set": s.set, "key": s.key, "shard": os.path.basename(self.shards[s.shard]),
               "url": m.get("url"), "lang": m.get("lang"), "lang_score": m.get("lang_score"),
               "source": m.get("source")}
        if self.kind == "m3w":
            rec.update(title=m.get("title"), text=m["text"], num_words=m.get("num_words"),
                       eval_text_matches=m.get("eval_text_matches"),
                       images=[dict(im, src=media(s.members.get(f"{j}.jpg")))
                               for j, im in enumerate(m["images"])])
        elif self.kind == "pairs":
            rec.update(caption=s.txt, meta=m, src=media(s.members.get("jpg")))
        else:
            frames = []
            for j, t in enumerate(m.get("frame_times", [])):
                frames.append({"t": t, "src": media(s.members.get(f"{j}.jpg"))})
            rec.update(caption=s.txt, meta={k: v for k, v in m.items()
                                            if k not in ("frame_sha256", "frame_phashes")},
                       frames=frames)
        return rec

    def victim(self, j: int, media) -> dict:
        v = self.dropped["victims"][j]
        return dict(v.meta, key=v.key, thumb=media(v.members.get("jpg")))

    def matching(self, q: str = "", lang: str = "", source: str = "", subset: str = "") -> list[int]:
        """Indices of the samples passing the page's filters (the page's own
        JavaScript applies the same rules to an embedded corpus)."""
        q = q.lower().strip()
        out = []
        for i, s in enumerate(self.samples):
            m = s.meta
            if lang and (m.get("lang") or "?") != lang:
                continue
            if source and m.get("caption_source") != source:
                continue
            if subset and s.set != subset:
                continue
            if q and q not in _haystack(self.kind, s):
                continue
            out.append(i)
        return out


def _n_images(kind: str, s: Sample) -> int:
    if kind == "m3w":
        return len(s.meta["images"])
    if kind == "pairs":
        return 1
    return len(s.meta.get("frame_times", []))


def _haystack(kind: str, s: Sample) -> str:
    m = s.meta
    parts = [m.get("url") or "", m.get("page_url") or "", m.get("title") or ""]
    parts.append(m["text"] if kind == "m3w" else (s.txt or ""))
    return "\n".join(parts).lower()


# ---------------------------------------------------------------- the page


def _data_uri(data: bytes | None) -> str | None:
    if data is None:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _script_json(obj) -> str:
    """JSON safe inside <script>: no '</' or '<!--' can end or confuse the element."""
    return (json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def render_page(boot: dict) -> str:
    html = APP.read_text(encoding="utf-8")
    return html.replace("/*BOOT*/null", _script_json(boot), 1)


def static_page(corpus: Corpus, max_samples: int) -> tuple[str, dict]:
    """The self-contained page: every sample (up to ``max_samples``) and victim,
    with media as data: URIs."""
    media = (lambda m: _data_uri(corpus.read(m)) if m is not None else None)
    n = len(corpus.samples) if max_samples <= 0 else min(max_samples, len(corpus.samples))
    corpus.load_victims()
    summary = corpus.summary()
    boot = {"mode": "static", "summary": summary,
            "samples": [corpus.record(i, media) for i in range(n)],
            "victims": [corpus.victim(j, media) for j in range(len(corpus.dropped["victims"]))],
            "omitted": len(corpus.samples) - n}
    return render_page(boot), {"samples": n, "omitted": boot["omitted"],
                               "victims": len(boot["victims"]), "images": summary["images"]}


# ---------------------------------------------------------------- the server


def make_server(corpus: Corpus, port: int = 0):
    """A ThreadingHTTPServer on 127.0.0.1 serving the page, /api/* and /media/*."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Lock
    from urllib.parse import parse_qs, urlsplit

    lock = Lock()  # Corpus.read shares file handles
    corpus.load_victims()
    summary = corpus.summary()

    def media_url(kind: str, index: int):
        def src(m):
            return None if m is None else f"/media/{kind}/{index}/{m.shard}/{m.offset}/{m.size}"
        return src

    # Only members of the corpus are served (a request cannot read arbitrary bytes).
    members = {(m.shard, m.offset, m.size) for s in [*corpus.samples, *corpus.dropped["victims"]]
               for m in s.members.values()}

    def allowed(shard: int, offset: int, size: int) -> bool:
        return (shard, offset, size) in members

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the terminal shows the URL, not every request
            pass

        def _send(self, status: int, body: bytes, ctype: str):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj):
            self._send(200, json.dumps(obj, ensure_ascii=False).encode("utf-8"),
                       "application/json; charset=utf-8")

        def do_GET(self):
            parts = urlsplit(self.path)
            qs = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                if parts.path == "/":
                    page = render_page({"mode": "serve", "summary": summary})
                    return self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
                if parts.path == "/api/samples":
                    return self._json(self._samples(qs))
                if parts.path == "/api/dropped":
                    return self._json(self._victims(qs))
                if parts.path.startswith("/media/"):
                    _, _, kind, index, shard, offset, size = parts.path.split("/")
                    shard, offset, size = int(shard), int(offset), int(size)
                    if not allowed(shard, offset, size):
                        return self._send(404, b"not a member", "text/plain")
                    with lock:
                        data = corpus.read(Member(shard, offset, size))
                    return self._send(200, data, "image/jpeg")
                return self._send(404, b"not found", "text/plain")
            except (ValueError, KeyError, IndexError) as e:
                return self._send(400, f"bad request: {e}".encode(), "text/plain")

        def _page(self, qs, total_ids):
            offset = max(0, int(qs.get("offset", 0)))
            limit = min(200, max(1, int(qs.get("limit", 20))))
            return offset, limit

        def _samples(self, qs):
            with lock:
                ids = corpus.matching(qs.get("q", ""), qs.get("lang", ""), qs.get("source", ""),
                                      qs.get("set", ""))
            offset, limit = self._page(qs, ids)
            if qs.get("random"):
                rng = random.Random(int(qs["random"]))
                ids = rng.sample(ids, min(limit, len(ids)))
                offset = 0
            with lock:
                items = [corpus.record(i, media_url("s", i)) for i in ids[offset:offset + limit]]
            return {"total": len(ids), "offset": offset, "items": items,
                    "images": sum(_n_images(corpus.kind, corpus.samples[i]) for i in ids)}

        def _victims(self, qs):
            reason = qs.get("reason", "")
            ids = [j for j, v in enumerate(corpus.dropped["victims"])
                   if not reason or v.meta.get("reason") == reason]
            offset, limit = self._page(qs, ids)
            with lock:
                items = [corpus.victim(j, media_url("d", j)) for j in ids[offset:offset + limit]]
            return {"total": len(ids), "offset": offset, "items": items}

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


# ---------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m shards.browse", allow_abbrev=False,
        description="Browse a job's output: m3w documents with their images inline, pairs, "
                    "video frames, and the victims of --keep-dropped, in a web page.")
    ap.add_argument("out_dir", help="a job's output folder (with manifest.json), or a folder of them")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--out", help="write one self-contained HTML file "
                                    "(default: OUT_DIR/browse.html)")
    mode.add_argument("--serve", action="store_true",
                      help="serve the page from a local server on 127.0.0.1 (large sets)")
    ap.add_argument("--port", type=int, default=8000, help="--serve port (0: any free one)")
    ap.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES,
                    help="samples put in the --out page (0: all; default %(default)s)")
    return ap


def parse_args(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """parse_args, with an unknown option named beside the closest valid one."""
    import difflib

    args, unknown = ap.parse_known_args(argv)
    for u in unknown:
        if u.startswith("-"):
            opts = [o for a in ap._actions for o in a.option_strings]
            near = difflib.get_close_matches(u.split("=", 1)[0], opts, n=1)
            ap.error(f"unknown option {u!r}" + (f"; did you mean {near[0]}?" if near else ""))
        ap.error(f"unexpected argument {u!r}")
    return args


def main(argv=None) -> int:
    ap = parser()
    args = parse_args(ap, argv)
    if not 0 <= args.port <= 65535:
        ap.error(f"--port {args.port}: not a port number")
    if args.max_samples < 0:
        ap.error("--max-samples must be >= 0")
    try:
        corpus = Corpus(args.out_dir)
    except (ValueError, OSError, tarfile.TarError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.serve:
        try:
            server = make_server(corpus, args.port)
        except OSError as e:
            print(f"error: --port {args.port}: {e}", file=sys.stderr)
            return 2
        host, port = server.server_address[:2]
        print(f"{corpus.kind}: {len(corpus.samples):,} samples, "
              f"{len(corpus.dropped['victims']):,} victims; serving http://{host}:{port}/ "
              "(Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            corpus.close()
        return 0
    out = args.out or os.path.join(args.out_dir, "browse.html")
    page, st = static_page(corpus, args.max_samples)
    corpus.close()
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out)
    more = (f"; {st['omitted']:,} more not included (--max-samples 0 for all, or --serve)"
            if st["omitted"] else "")
    print(f"{out}: {corpus.kind}, {st['samples']:,} samples, {st['victims']:,} victims, "
          f"{len(page) / 1e6:.1f} MB{more}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
