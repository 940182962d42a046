"""A durable media cache: what the fetcher got for a URL, kept beside the output.

A crawl killed after hours used to fetch every image again on the rerun (only
complete shards are skipped).  Now each fetch outcome is written here the moment
it arrives, and every job (m3w, pairs, videos, and reruns of each) looks a URL up
here before fetching it.

What is cached, and why: the *raw fetch outcome* (the bytes, content type, final
URL and status; or a permanent refusal such as http_404 or too_large), not the
processed image.  Fetching is the slow, impolite and non-repeatable part;
decoding and resizing are deterministic CPU work that depends on options the
jobs do not share (m3w and pairs resize differently, videos decode frames), so
raw bytes are the one thing every job and every rerun with changed image
options can reuse.  Transient failures (timeouts, connection errors, 5xx, 429)
and refusals made before any request (bad URL, SSRF guard) are not cached: a
rerun tries them again.

The key is sha256(scope + URL), where the scope is a digest of the fetch
options that change the outcome (byte cap, accepted content types, noai
honouring, redirect cap, user agent); options that only change timing or
retries of transient failures are not in it.  Entries are one file each,
``ROOT/ab/<key>.bin`` = a JSON header line (URL, outcome, length, sha256) +
the body, written to a temporary name and renamed (any Beam filesystem); a
lookup verifies length and sha256, and a damaged entry counts as a miss
(``media_cache_corrupt``) and is overwritten by the refetch.
"""
from __future__ import annotations

import hashlib
import json
import posixpath

CACHE_DIRNAME = "media-cache"
_VERSION = 1
# Fetch options that change what a URL's fetch gives (anything else only
# changes how long a transient failure takes).
SCOPE_FIELDS = ("max_bytes", "accept_content_types", "honour_noai", "max_redirects", "user_agent")
# Permanent outcomes, worth remembering; every other failure is retried by a rerun.
CACHED_FAILURES = ("too_large", "bad_content_type", "noai", "empty_body", "too_many_redirects")
_TRANSIENT_HTTP = (408, 425, 429)


def default_cache_dir(output: str) -> str:
    """``media-cache`` beside the output folder (its parent), so the m3w, pairs
    and videos jobs writing to sibling folders share it; inside the output when
    it has no parent (a bucket root)."""
    scheme, sep, rest = output.rstrip("/").rpartition("://")
    parent = posixpath.dirname(rest)
    if not parent or (sep and "/" not in rest):
        return f"{output.rstrip('/')}/{CACHE_DIRNAME}"
    return f"{scheme}{sep}{parent}/{CACHE_DIRNAME}"


def cacheable(result) -> bool:
    if result.ok:
        return result.data is not None
    reason = result.reason or ""
    if result.requests == 0:
        return False
    if reason.startswith("http_"):
        try:
            code = int(reason[5:])
        except ValueError:
            return False
        return 400 <= code < 500 and code not in _TRANSIENT_HTTP
    return reason in CACHED_FAILURES


def scope_of(fetch_cfg) -> str:
    values = {f: getattr(fetch_cfg, f) for f in SCOPE_FIELDS}
    values["accept_content_types"] = list(values["accept_content_types"])
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


class MediaCache:
    """get/put of fetch outcomes by URL under ``root`` (any Beam filesystem).
    Picklable: it holds only the root and the scope."""

    def __init__(self, root: str, fetch_cfg):
        self.root = root.rstrip("/")
        self.scope = scope_of(fetch_cfg)

    def key(self, url: str) -> str:
        return hashlib.sha256(f"{self.scope}\n{url}".encode()).hexdigest()

    def path(self, url: str) -> str:
        from apache_beam.io.filesystems import FileSystems

        k = self.key(url)
        return FileSystems.join(self.root, k[:2], f"{k}.bin")

    def lookup(self, url: str):
        """("hit", FetchResult) | ("miss", None) | ("corrupt", None)."""
        from apache_beam.io.filesystems import FileSystems

        from .fetch import FetchResult

        path = self.path(url)
        try:
            with FileSystems.open(path, compression_type="uncompressed") as fh:
                blob = fh.read()
        except Exception:  # BeamIOError / OSError: not there (or unreadable): fetch it
            return "miss", None
        head, nl, body = blob.partition(b"\n")
        try:
            meta = json.loads(head)
            intact = (nl and meta["v"] == _VERSION and meta["url"] == url
                      and len(body) == meta["bytes"]
                      and hashlib.sha256(body).hexdigest() == meta["sha256"])
        except (ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            return "corrupt", None
        return "hit", FetchResult(url, meta["ok"], meta["reason"], data=body if meta["ok"] else None,
                                  content_type=meta["content_type"], final_url=meta["final_url"],
                                  status=meta["status"], requests=0)

    def put(self, url: str, result) -> bool:
        """Store a cacheable outcome atomically; False when it is not cacheable.
        A write error (disk full, permissions) is raised: the job fails clearly."""
        if not cacheable(result):
            return False
        from shards.writer import write_bytes_atomic

        body = result.data if result.ok else b""
        meta = {"v": _VERSION, "url": url, "ok": result.ok, "reason": result.reason,
                "content_type": result.content_type, "final_url": result.final_url,
                "status": result.status, "bytes": len(body),
                "sha256": hashlib.sha256(body).hexdigest()}
        write_bytes_atomic(self.path(url), json.dumps(meta, sort_keys=True).encode() + b"\n" + body)
        return True


# ---------------------------------------------------------------- the jobs' flags

def add_cache_flags(ap) -> None:
    ap.add_argument("--media-cache", metavar="DIR",
                    help="durable cache of fetched media, reused by reruns and by the other jobs "
                         f"(default: {CACHE_DIRNAME}/ beside OUTPUT; any Beam filesystem)")
    ap.add_argument("--no-media-cache", action="store_true",
                    help="neither read nor write the media cache")


def cache_dir_from_args(args) -> str | None:
    if args.no_media_cache:
        return None
    return args.media_cache or default_cache_dir(args.output)
