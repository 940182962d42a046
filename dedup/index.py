"""The eval index: every eval item's fingerprints, and matching against them.

Built once by ``python -m dedup.build_index`` and saved as one ``.npz`` file
(numpy arrays plus a JSON header; loaded with ``allow_pickle=False``, so
loading a file runs no code).  Jobs load it once per worker
(:meth:`EvalIndex.load_cached` in ``DoFn.setup``) or receive it as a side input.

Signals (thresholds in :data:`DEFAULT_THRESHOLDS`, recorded in the file and
in every report):

- image: Hamming distance between the training image's phash64 and any
  indexed view of an eval image (full, mirror, crops; see
  ``fingerprints.eval_image_views``) <= ``image``.  Searched by multi-index
  hashing, exact (``dedup.mih``).  Where eval images crowd together (objects
  on a plain ground hash alike), a view's radius is cut to ``image_margin``
  bits short of the nearest view of another eval image (computed exactly when
  the index is built, stored as ``image_nn``; not below ``image_min_radius``).
- video: each 1 FPS training frame is matched against eval frames at
  <= ``video_frame``; a clip matches an eval clip when at least
  ``video_min_frames`` of its frames, and ``video_min_fraction`` of the
  shorter clip's frames, matched frames of that clip.
- text: a normalised word ``text_ngram``-gram of an eval text occurs in the
  training text (GPT-3's 13-gram rule; over a document's whole word stream, so
  a gram that spans two paragraphs counts: :meth:`EvalIndex.match_texts`), or
  the whole normalised training text equals an eval text, or one sentence of
  it of at least ``text_sentence_min_words`` words does (exact captions, most
  shorter than 13 words, quoted inside a paragraph).
- url: canonical training image URL equals an eval image's canonical URL.
"""
from __future__ import annotations

import io
import json
import math
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from dedup import fingerprints as fp
from dedup.evalsets import EvalItem
from dedup.mih import MultiIndexHash

FORMAT = "flamingo-dedup-index/1"

DEFAULT_THRESHOLDS = {
    "image": 6,
    # crop views (``crop*`` in fingerprints.eval_image_views) match at this
    # radius; None = ``image``
    "image_crop": None,
    # the whole-image views (``full``, ``flip``: most copies, and a text
    # overlay moves their hash 8-12 bits) match at this wider radius
    "image_whole": 8,
    # Crowded regions of hash space (objects on a plain ground: a disc on
    # white hashes like every other disc on white): an eval view's radius is
    # cut to ``image_margin`` bits short of the nearest view of any *other*
    # eval image (not one within ``image_same_bits`` of it: the same photo in
    # two sets), never below ``image_min_radius``.  A training image about
    # halfway between two eval images then matches neither.  None: off.
    "image_margin": 3,
    "image_min_radius": 2,
    "image_same_bits": 4,
    # A match through a crop view is kept only when the query's verify hash
    # (fingerprints.verify_hash, 256-bit phash of the same pixels) is within
    # this many bits of the view's: two distinct photos of one object on a
    # plain ground (two hammers on white) meet at 6 bits of phash64 through a
    # crop and stay apart here.  Chosen from the distributions the bench
    # prints (2026-12-03).  A query without a verify hash is not verified.
    # None: off.
    "image_verify": 72,
    "video_frame": 6,
    "video_min_frames": 2,
    "video_min_fraction": 0.5,
    "text_ngram": 13,
    "text_exact": True,
    # A sentence inside a paragraph counts as an exact copy of an eval text
    # from this many words (COCO captions: 8-17; shorter sentences such as a
    # VQA question "what is the man doing" recur in ordinary web text).
    "text_sentence_min_words": 6,
}


@dataclass(frozen=True)
class Match:
    eval_set: str
    split: str
    item_id: str
    kind: str                  # "image" | "video" | "text" | "url"
    distance: float            # Hamming bits (image/video), 0 for text/url
    eval_ref: str | None       # eval media path or URL
    detail: str = ""           # which view / n-gram / frames matched

    def to_json(self) -> dict:
        return asdict(self)


class EvalIndex:
    def __init__(self, items: list[dict], thresholds: dict, arrays: dict[str, np.ndarray],
                 url_keys: list[str], views: list[str]):
        self.items = items                      # [{eval_set, split, item_id, kind, media, urls}]
        self.thresholds = dict(thresholds)
        self.arrays = arrays
        self.views = views
        self.url_keys = list(url_keys)
        self._url = defaultdict(list)
        for key, item in zip(url_keys, arrays["url_item"].tolist()):
            self._url[key].append(item)
        self._image_mih = MultiIndexHash(arrays["image_codes"])
        r = int(self.thresholds["image"])
        r_crop = self.thresholds.get("image_crop")
        r_crop = r if r_crop is None else min(r, int(r_crop))
        r_whole = self.thresholds.get("image_whole")
        r_whole = r if r_whole is None else max(r, int(r_whole))
        view_radius = np.array([r_whole if v in WHOLE_VIEWS else r_crop if v.startswith("crop") else r
                                for v in views] or [r], dtype=np.int64)
        self._code_radius = view_radius[arrays["image_view"].astype(np.int64)]
        # the whole-image views, searched at the wider radius in an index of their own
        # (2 codes per eval image), so the search over all views stays at ``image``
        self._r_whole = r_whole
        self._whole_ids = np.flatnonzero(self._code_radius > r) if r_whole > r else np.zeros(0, np.int64)
        self._whole_mih = MultiIndexHash(arrays["image_codes"][self._whole_ids]) if len(self._whole_ids) else None
        margin = self.thresholds.get("image_margin")
        if margin is not None and "image_nn" in arrays:
            cap = np.maximum(arrays["image_nn"].astype(np.int64) - int(margin),
                             int(self.thresholds.get("image_min_radius") or 0))
            self._code_radius = np.minimum(self._code_radius, cap)
        self._verify = arrays.get("image_verify")
        if self._verify is not None and not len(self._verify):
            self._verify = None
        self._frame_mih = MultiIndexHash(arrays["frame_codes"])
        self._ngram_sorted = arrays["ngram_codes"]       # sorted
        self._exact_sorted = arrays["exact_codes"]       # sorted
        counts = np.bincount(arrays["frame_item"], minlength=len(items)) if len(items) else np.zeros(0)
        self._clip_frames = counts

    # ------------------------------------------------------------ building

    @classmethod
    def from_items(cls, items: Iterable[EvalItem], image_hashes: dict[str, list] | None = None,
                   video_hashes: dict[str, list[str]] | None = None,
                   thresholds: dict | None = None) -> "EvalIndex":
        """``image_hashes``: item_id -> [(view, phash hex)] (fingerprints.eval_phashes)
        or [(view, phash hex, verify hex or "")] (fingerprints.eval_hashes);
        ``video_hashes``: item_id -> 1 FPS frame phashes.  Keyed by
        ``item_id`` within one eval set; use :func:`item_key` across sets."""
        thresholds = dict(DEFAULT_THRESHOLDS, **(thresholds or {}))
        n = thresholds["text_ngram"]
        image_hashes = image_hashes or {}
        video_hashes = video_hashes or {}
        metas, views = [], []
        view_id: dict[str, int] = {}
        img_codes, img_item, img_view, img_verify = [], [], [], []
        fr_codes, fr_item, fr_pos = [], [], []
        ng_codes, ng_item, ex_codes, ex_item = [], [], [], []
        url_keys, url_item = [], []
        for i, it in enumerate(items):
            metas.append({"eval_set": it.eval_set, "split": it.split, "item_id": it.item_id,
                          "kind": it.kind, "media": it.media, "urls": list(it.urls)})
            key = item_key(it)
            for view, h, *vh in image_hashes.get(key, image_hashes.get(it.item_id, ())) if it.kind == "image" else ():
                if vh and vh[0]:
                    img_verify.append(_words256(vh[0]))
                else:
                    img_verify.append(UNVERIFIED)
                if view not in view_id:
                    view_id[view] = len(views)
                    views.append(view)
                img_codes.append(int(h, 16))
                img_item.append(i)
                img_view.append(view_id[view])
            for j, h in enumerate(video_hashes.get(key, video_hashes.get(it.item_id, ()))
                                  if it.kind == "video" else ()):
                fr_codes.append(int(h, 16))
                fr_item.append(i)
                fr_pos.append(j)
            for t in it.texts:
                words = fp.normalize_words(t)
                if not words:
                    continue
                for h in set(fp.ngram_hashes(words, n)):
                    ng_codes.append(h)
                    ng_item.append(i)
                ex_codes.append(fp.text_hash64(t))
                ex_item.append(i)
            for u in it.urls:
                url_keys.append(fp.canonical_url(u))
                url_item.append(i)

        def sort_pair(codes, owners):
            c = np.array(codes, dtype=np.uint64)
            o = np.array(owners, dtype=np.int32)
            order = np.lexsort((o, c))
            return c[order], o[order]

        img_codes_a = np.array(img_codes, dtype=np.uint64)
        img_item_a = np.array(img_item, dtype=np.int32)
        full_view = view_id.get("full")
        img_nn = np.full(len(img_codes), NN_NONE, dtype=np.uint8) if thresholds.get("image_margin") is None \
            else other_image_distance(
            img_codes_a, img_item_a,
            (np.array(img_view) == full_view) if full_view is not None else np.zeros(len(img_codes), bool),
            # a neighbour further than radius + margin - 1 bits leaves the radius as it is
            max(int(thresholds["image"]), int(thresholds.get("image_whole") or 0))
            + max(int(thresholds.get("image_margin") or 0) - 1, 0),
            int(thresholds.get("image_same_bits") or 0))
        ng_c, ng_i = sort_pair(ng_codes, ng_item)
        ex_c, ex_i = sort_pair(ex_codes, ex_item)
        arrays = {
            "image_codes": img_codes_a,
            "image_item": img_item_a,
            "image_view": np.array(img_view, dtype=np.int16),
            "image_nn": img_nn,
            # (n, 4) uint64: each view's verify hash, UNVERIFIED for the views
            # not verified; empty when no view has one (eval_phashes input)
            "image_verify": (np.array(img_verify, dtype=np.uint64).reshape(-1, 4)
                             if any(v is not UNVERIFIED for v in img_verify) else np.zeros((0, 4), np.uint64)),
            "frame_codes": np.array(fr_codes, dtype=np.uint64),
            "frame_item": np.array(fr_item, dtype=np.int32),
            "frame_pos": np.array(fr_pos, dtype=np.int32),
            "ngram_codes": ng_c, "ngram_item": ng_i,
            "exact_codes": ex_c, "exact_item": ex_i,
            "url_item": np.array(url_item, dtype=np.int32),
        }
        return cls(metas, thresholds, arrays, url_keys, views)

    # ------------------------------------------------------------ file

    def save(self, path) -> None:
        _write_bytes(str(path), self.to_bytes())

    def to_bytes(self) -> bytes:
        """The ``.npz`` file: a zip of ``.npy`` arrays, as ``np.savez_compressed``
        writes it but with fixed member dates, so one index is one byte string."""
        header = {"format": FORMAT, "thresholds": self.thresholds, "items": self.items,
                  "views": self.views, "url_keys": self.url_keys}
        arrays = {"header": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8),
                  **self.arrays}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with z.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
        return buf.getvalue()

    @classmethod
    def load(cls, path) -> "EvalIndex":
        data = _read_bytes(str(path))
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes().decode("utf-8"))
            if header.get("format") != FORMAT:
                raise ValueError(f"{path}: not a dedup index (format {header.get('format')!r}, "
                                 f"want {FORMAT!r})")
            arrays = {k: z[k] for k in z.files if k != "header"}
        return cls(header["items"], header["thresholds"], arrays, header["url_keys"], header["views"])

    _cache: dict[str, "EvalIndex"] = {}

    @classmethod
    def load_cached(cls, path) -> "EvalIndex":
        """One load per process and path: call from ``DoFn.setup``."""
        key = str(path)
        if key not in cls._cache:
            cls._cache[key] = cls.load(key)
        return cls._cache[key]

    # ------------------------------------------------------------ stats

    @property
    def num_image_hashes(self) -> int:
        return len(self.arrays["image_codes"])

    def summary(self) -> dict:
        per = defaultdict(lambda: defaultdict(int))
        for it in self.items:
            per[it["eval_set"]][it["split"]] += 1
        return {"items": {k: dict(v) for k, v in per.items()},
                "image_hashes": self.num_image_hashes,
                "video_frames": len(self.arrays["frame_codes"]),
                "text_ngrams": len(self.arrays["ngram_codes"]),
                "exact_texts": len(self.arrays["exact_codes"]),
                "urls": len(self.arrays["url_item"]),
                "thresholds": self.thresholds}

    # ------------------------------------------------------------ matching

    def _match(self, i: int, kind: str, distance: float, detail: str = "", ref: str | None = None) -> Match:
        it = self.items[i]
        return Match(it["eval_set"], it["split"], it["item_id"], kind, float(distance),
                     ref if ref is not None else it["media"], detail)

    def match_images(self, phash_hexes: list[str], verify_hexes: list[str | None] | None = None
                     ) -> list[list[Match]]:
        """Batch form of :meth:`match_image` (vectorised; use it in jobs).
        ``verify_hexes``: each query's ``fingerprints.verify_hash`` (of the
        stored JPEG, as its phash); a candidate found through a verified
        (crop) view is kept only when the two are within ``image_verify``
        bits.  None (or a None entry): not verified."""
        qi, ci, d = self._image_candidates(phash_hexes)
        limit = self.thresholds.get("image_verify")
        if limit is not None and verify_hexes is not None:
            checked, vd = self._verify_distances(qi, ci, verify_hexes)
            keep = ~checked | (vd <= int(limit))
            qi, ci, d = qi[keep], ci[keep], d[keep]
        best: list[dict[int, tuple[int, int]]] = [dict() for _ in phash_hexes]
        items = self.arrays["image_item"][ci]
        for a, item, dist, c in zip(qi.tolist(), items.tolist(), d.tolist(), ci.tolist()):
            if item not in best[a] or dist < best[a][item][0]:
                best[a][item] = (dist, c)
        out = []
        for b in best:
            ms = [self._match(item, "image", dist, self.views[int(self.arrays["image_view"][c])])
                  for item, (dist, c) in b.items()]
            out.append(sorted(ms, key=lambda m: (m.distance, m.eval_set, m.item_id)))
        return out

    def needs_verify_hash(self, phash_hex: str) -> bool:
        """Whether :meth:`match_image`'s answer for ``phash_hex`` can depend on
        the query's verify hash: verification is on and some candidate comes
        through a verified (crop) view.  Lets a caller compute the verify hash
        only then (most images have no candidate at all)."""
        if self.thresholds.get("image_verify") is None or self._verify is None:
            return False
        _, ci, _ = self._image_candidates([phash_hex])
        return bool((self._verify[ci][:, 0] != UNVERIFIED[0]).any()) if len(ci) else False

    def verify_distances(self, phash_hex: str, verify_hex: str) -> dict[int, int | None]:
        """For each eval item (index into ``items``) that ``phash_hex`` meets
        within the view radii: the smallest verify-hash distance over its
        verified candidate views, or None when an unverified view (whole
        image, untrimmed) is among them (the match stands unverified).  For
        measuring the verification threshold (bench/bench_dedup.py)."""
        qi, ci, d = self._image_candidates([phash_hex])
        checked, vd = self._verify_distances(qi, ci, [verify_hex])
        out: dict[int, int | None] = {}
        for item, c, v in zip(self.arrays["image_item"][ci].tolist(), checked.tolist(), vd.tolist()):
            if not c or out.get(item, 0) is None:
                out[item] = None
            else:
                out[item] = min(v, out.get(item, v))
        return out

    def _verify_distances(self, qi, ci, verify_hexes) -> tuple[np.ndarray, np.ndarray]:
        """(checked, distance) per candidate pair: whether the pair is verified
        (a verified view and a query with a verify hash), and the distance."""
        if self._verify is None:
            return np.zeros(len(qi), bool), np.zeros(len(qi), np.int64)
        has = np.array([v is not None for v in verify_hexes], dtype=bool)
        qv = np.array([_words256(v) if v is not None else UNVERIFIED for v in verify_hexes],
                      dtype=np.uint64).reshape(-1, 4)
        ev = self._verify[ci]
        checked = has[qi] & (ev[:, 0] != UNVERIFIED[0])
        return checked, np.bitwise_count(qv[qi] ^ ev).sum(axis=1).astype(np.int64)

    def _image_candidates(self, phash_hexes: list[str]):
        """(query, code, distance) of every indexed view within its radius."""
        q = np.array([int(h, 16) for h in phash_hexes], dtype=np.uint64)
        qi, ci, d = self._image_mih.search_pairs(q, int(self.thresholds["image"]))
        if self._whole_mih is not None:
            wq, wc, wd = self._whole_mih.search_pairs(q, self._r_whole)
            far = wd > int(self.thresholds["image"])      # the nearer ones were found above
            qi = np.concatenate([qi, wq[far]])
            ci = np.concatenate([ci, self._whole_ids[wc[far]]])
            d = np.concatenate([d, wd[far]])
        keep = d <= self._code_radius[ci]
        return qi[keep], ci[keep], d[keep]

    def match_image(self, phash_hex: str, verify_hex: str | None = None) -> list[Match]:
        return self.match_images([phash_hex], [verify_hex])[0]

    def match_video(self, frame_phashes: list[str]) -> list[Match]:
        if not frame_phashes or not len(self.arrays["frame_codes"]):
            return []
        q = np.array([int(h, 16) for h in frame_phashes], dtype=np.uint64)
        qi, ci, d = self._frame_mih.search_pairs(q, int(self.thresholds["video_frame"]))
        # per eval clip: best distance for each query frame that matched it
        per_clip: dict[int, dict[int, int]] = defaultdict(dict)
        for a, item, dist in zip(qi.tolist(), self.arrays["frame_item"][ci].tolist(), d.tolist()):
            prev = per_clip[item].get(a)
            if prev is None or dist < prev:
                per_clip[item][a] = dist
        out = []
        for item, frames in per_clip.items():
            shorter = min(len(frame_phashes), int(self._clip_frames[item]))
            need = max(int(self.thresholds["video_min_frames"]),
                       math.ceil(float(self.thresholds["video_min_fraction"]) * shorter))
            need = min(need, shorter)  # a 1-frame clip can still match a 1-frame clip
            if len(frames) >= need:
                dists = sorted(frames.values())
                out.append(self._match(item, "video", float(np.median(dists)),
                                       f"{len(frames)}/{len(frame_phashes)} frames"))
        return sorted(out, key=lambda m: (m.distance, m.eval_set, m.item_id))

    def match_text(self, text: str) -> list[Match]:
        """Matches of one text (a caption, an alt text, one document)."""
        return [m for _, m in self.match_texts([text])]

    def match_texts(self, texts: list[str]) -> list[tuple[int, Match]]:
        """Matches of a document's text nodes, as (node position, match), one
        per (node, eval item).  n-grams run over the words of all nodes joined
        in order (a gram that spans a paragraph break is found, and credited to
        the node it starts in); exact matches are per node: the whole node, or
        one of its sentences of >= ``text_sentence_min_words`` words."""
        words_per = [fp.normalize_words(t) for t in texts]
        found: dict[tuple[int, int], str] = {}
        exact_q: list[int] = []
        exact_pos: list[tuple[int, str]] = []
        if self.thresholds.get("text_exact", True) and len(self._exact_sorted):
            min_words = int(self.thresholds.get("text_sentence_min_words", 6))
            for pos, (text, words) in enumerate(zip(texts, words_per)):
                if not words:
                    continue
                whole = " ".join(words)
                exact_q.append(fp._h64(whole))
                exact_pos.append((pos, "exact"))
                for sent in fp.sentences(text):
                    sw = fp.normalize_words(sent)
                    if len(sw) >= min_words and len(sw) < len(words):
                        exact_q.append(fp._h64(" ".join(sw)))
                        exact_pos.append((pos, "exact sentence"))
        if exact_q:
            q = np.array(exact_q, dtype=np.uint64)
            for a, i in _lookup_pairs(self._exact_sorted, self.arrays["exact_item"], q):
                pos, how = exact_pos[a]
                found.setdefault((pos, i), how)
        n = int(self.thresholds["text_ngram"])
        stream = [w for words in words_per for w in words]
        owner = np.repeat(np.arange(len(texts)), [len(w) for w in words_per])
        grams = fp.ngram_hashes(stream, n)
        if grams and len(self._ngram_sorted):
            hs = np.array(grams, dtype=np.uint64)
            for a, i in _lookup_pairs(self._ngram_sorted, self.arrays["ngram_item"], hs):
                pos = int(owner[a])
                across = owner[a + n - 1] != pos
                found.setdefault((pos, i), f"{n}-gram" + (" across paragraphs" if across else ""))
        return sorted(((pos, self._match(i, "text", 0, how)) for (pos, i), how in found.items()),
                      key=lambda pm: (pm[0], pm[1].eval_set, pm[1].split, pm[1].item_id))

    def match_url(self, url: str) -> list[Match]:
        if not url:
            return []
        key = fp.canonical_url(url)
        return [self._match(i, "url", 0, key, ref=_first_url(self.items[i], key))
                for i in sorted(set(self._url.get(key, ())))]


WHOLE_VIEWS = ("full", "flip")   # matched at ``image_whole``
# image_verify row of a view that is not verified.  A real verify hash is a
# median-threshold phash with exactly 128 one bits, so it is never all ones.
UNVERIFIED = (np.uint64(2**64 - 1),) * 4


def _words256(hex_hash: str) -> tuple[int, int, int, int]:
    """A 256-bit hash (64 hex digits) as 4 uint64 words."""
    if len(hex_hash) != 64:
        raise ValueError(f"verify hash must be 64 hex digits, got {hex_hash!r}")
    return tuple(int(hex_hash[k:k + 16], 16) for k in range(0, 64, 16))
NN_NONE = 255   # image_nn: no view of another eval image within the search radius


def other_image_distance(codes: np.ndarray, items: np.ndarray, is_full: np.ndarray, radius: int,
                         same_bits: int, batch: int = 1024) -> np.ndarray:
    """For each indexed view: the Hamming distance to the nearest view of
    another eval image, when within ``radius`` (else NN_NONE), as uint8.  Two
    items whose ``full`` views are within ``same_bits`` are the same photo
    (one image in two eval sets, or a set's own duplicate) and do not count
    as each other's neighbours.  Exact (multi-index hashing), batched so that
    memory stays bounded by a batch's candidate pairs."""
    n = len(codes)
    out = np.full(n, NN_NONE, dtype=np.uint8)
    if n == 0:
        return out
    # group = the photo: union of items whose full views are within same_bits
    n_items = int(items.max()) + 1
    parent = np.arange(n_items)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    full_idx = np.flatnonzero(is_full)
    if len(full_idx) and same_bits > 0:
        fmih = MultiIndexHash(codes[full_idx])
        qi, ci, _ = fmih.search_pairs(codes[full_idx], same_bits)
        for a, b in zip(items[full_idx[qi]].tolist(), items[full_idx[ci]].tolist()):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    group = np.array([find(i) for i in range(n_items)])[items]
    mih = MultiIndexHash(codes)
    for lo in range(0, n, batch):
        qi, ci, d = mih.search_pairs(codes[lo:lo + batch], radius)
        other = group[qi + lo] != group[ci]
        qi, d = qi[other] + lo, d[other]
        if len(qi):
            np.minimum.at(out, qi, d.astype(np.uint8))
    return out


def item_key(it: EvalItem) -> str:
    """The key :meth:`EvalIndex.from_items` looks hashes up by."""
    return f"{it.eval_set}/{it.split}/{it.item_id}"


def _first_url(item: dict, key: str) -> str | None:
    for u in item["urls"]:
        if fp.canonical_url(u) == key:
            return u
    return item["media"]


def _lookup_pairs(sorted_codes: np.ndarray, owners: np.ndarray, queries: np.ndarray
                  ) -> list[tuple[int, int]]:
    """(query index, owner) for every query code present, sorted."""
    lo = np.searchsorted(sorted_codes, queries, "left")
    hi = np.searchsorted(sorted_codes, queries, "right")
    out: set[tuple[int, int]] = set()
    for q in np.flatnonzero(hi > lo).tolist():
        out.update((q, o) for o in owners[lo[q]:hi[q]].tolist())
    return sorted(out)


def _write_bytes(path: str, data: bytes) -> None:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.create(path) as f:
            f.write(data)
        return
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(p)


def _read_bytes(path: str) -> bytes:
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.open(path) as f:
            return f.read()
    return Path(path).read_bytes()
