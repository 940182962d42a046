"""The durable media cache: outcomes stored atomically by URL, verified on
lookup, keyed by what changes the outcome; a job killed mid-fetch and rerun
does not fetch again what it already fetched, and another job reuses it."""
import json

from apache_beam.testing.test_pipeline import TestPipeline

from faults import kills
from pipeline.cache import MediaCache, cacheable, default_cache_dir
from pipeline.fetch import FetchConfig, Fetcher, FetchResult

from tests.data_paths import IMAGES
from tests.helpers.http_server import LoopbackServer

LOOPBACK = FetchConfig(allowed_networks=("127.0.0.1/32",), retries=0, timeout_s=5)
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"]


def test_real_fetch_outcomes_round_trip_and_damage_is_a_miss(tmp_path):
    cache = MediaCache(str(tmp_path / "c"), LOOPBACK)
    with LoopbackServer(root=IMAGES) as srv:
        srv.route("/gone.jpg", status=404)
        srv.route("/busy.jpg", status=503)
        fetcher = Fetcher(LOOPBACK)
        ok, gone, busy = (fetcher.fetch(srv.url(p)) for p in ("/coffee.png", "/gone.jpg", "/busy.jpg"))
    assert ok.ok and gone.reason == "http_404" and busy.reason == "http_503"
    assert cache.put(ok.url, ok) and cache.put(gone.url, gone)
    assert not cache.put(busy.url, busy)                       # transient: a rerun retries it
    assert not cacheable(FetchResult("x", False, "ssrf_blocked"))  # refused before any request
    state, hit = cache.lookup(ok.url)
    assert state == "hit" and hit.data == (IMAGES / "coffee.png").read_bytes()
    assert (hit.ok, hit.content_type, hit.status, hit.requests) == (True, "image/png", 200, 0)
    state, hit = cache.lookup(gone.url)
    assert state == "hit" and (hit.ok, hit.reason, hit.data) == (False, "http_404", None)
    assert cache.lookup(busy.url) == ("miss", None)
    # the scope: a smaller byte cap could change the outcome, so it is another key
    other = MediaCache(str(tmp_path / "c"), FetchConfig(max_bytes=1000))
    assert other.lookup(ok.url) == ("miss", None)
    assert MediaCache(str(tmp_path / "c"), FetchConfig(timeout_s=99, retries=7)).key(ok.url) == \
        MediaCache(str(tmp_path / "c"), FetchConfig()).key(ok.url)
    # a damaged entry (cut short) is never served
    path = cache.path(ok.url)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-100])
    assert cache.lookup(ok.url) == ("corrupt", None)
    assert not [p for p in (tmp_path / "c").rglob("*") if ".tmp-" in p.name]


def test_default_cache_dir_is_beside_the_output():
    assert default_cache_dir("out/m3w") == "out/media-cache"
    assert default_cache_dir("/data/runs/pairs/") == "/data/runs/media-cache"
    assert default_cache_dir("gs://bucket/crawl/m3w") == "gs://bucket/crawl/media-cache"
    assert default_cache_dir("gs://bucket") == "gs://bucket/media-cache"


def _pages(tmp_path, srv):
    para = ("The photograph was taken on a long journey across the mountains and shows the "
            "valley below in the early light of a summer morning. ")
    pages = [{"url": f"https://blog.example/{i}",
              "html": f"<article><p>{para}</p><img src='{srv.url('/' + name)}'><p>{para}</p></article>"}
             for i, name in enumerate(PHOTOS)]
    jl = tmp_path / "pages.jsonl"
    jl.write_text("\n".join(json.dumps(p) for p in pages))
    return jl


def test_killed_mid_fetch_rerun_fetches_nothing_twice_and_pairs_reuse_it(tmp_path):
    from pipeline.captions import CaptionConfig
    from pipeline.extract import ExtractConfig
    from pipeline.filters import FilterConfig
    from pipeline.images import ImageConfig
    from pipeline.pairs import build_pairs

    with LoopbackServer(root=IMAGES) as srv:
        for name in PHOTOS:   # one at a time (rps 0 = no pause), each slow enough to kill between
            srv.route("/" + name, file=name, delay_s=0.5)
        jl = _pages(tmp_path, srv)
        extra = ["--allow-private-addresses", "--fetch-retries", "0", "--fetch-per-host-rps", "0",
                 "--fetch-host-concurrency", "1", "--dedup-near-dup-threshold", "0"]
        out = tmp_path / "m3w"
        proc = kills.cli(out, [jl], extra)
        assert kills.kill_at(proc, lambda p: srv.hits() >= 3), "the job ended before the kill"
        first = {n: srv.hits("/" + n) for n in PHOTOS}
        cache_dir = tmp_path / "media-cache"
        stored = sorted(cache_dir.rglob("*.bin"))
        assert len(stored) >= 2                        # each fetch stored as it arrived
        rc, log = kills.run(out, [jl], extra)
        assert rc == 0, log[-3000:]
        total = {n: srv.hits("/" + n) for n in PHOTOS}
        refetched = [n for n in PHOTOS if total[n] > 1]
        assert len(refetched) <= 1                     # at most the one in flight at the kill
        assert sum(total.values()) == len(PHOTOS) + len(refetched)
        hits = len(PHOTOS) - sum(total[n] - first[n] for n in PHOTOS)
        assert f"media cache: {hits} hits of {len(PHOTOS)} lookups" in log
        stats = json.loads((out / "stats.json").read_text())
        assert stats["counters"]["fetch_ok"] == len(PHOTOS)   # data counters as without a cache
        assert "media_cache_hits" not in stats["counters"]
        # the pairs job, writing beside it, takes every image from the cache
        before = srv.hits()
        p = TestPipeline()
        build_pairs(p, [str(jl)], [], str(tmp_path / "pairs"), FilterConfig(),
                    CaptionConfig(pick="all", min_words=1), ExtractConfig(main_content=False),
                    ImageConfig(), LOOPBACK, "t", 10, media_cache=str(cache_dir))
        result = p.run()
        result.wait_until_finish()
        assert srv.hits() == before
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["media_cache_hits"] == len(PHOTOS) and "media_cache_misses" not in counters
    assert counters["images_ok"] == len(PHOTOS)


def test_cache_flags_choose_the_folder_or_none():
    from pipeline.cache import cache_dir_from_args
    from pipeline.m3w import parser

    args, _ = parser().parse_known_args(["--input", "x", "--output", "runs/a/m3w"])
    assert cache_dir_from_args(args) == "runs/a/media-cache"
    args, _ = parser().parse_known_args(["--input", "x", "--output", "o", "--no-media-cache"])
    assert cache_dir_from_args(args) is None
    args, _ = parser().parse_known_args(["--input", "x", "--output", "o", "--media-cache", "gs://b/c"])
    assert cache_dir_from_args(args) == "gs://b/c"
