"""pipeline/fetch.py against a real HTTP server on 127.0.0.1 serving tests/data/images."""
from __future__ import annotations

import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline import fetch as fetch_mod
from pipeline.fetch import FetchByHost, FetchConfig, Fetcher, url_refusal
from tests.helpers.http_server import LoopbackServer, Route

IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"
CHINA = (IMAGES / "china.jpg").read_bytes()

# Loopback allowed: the only server tests can reach. Short timeouts and backoffs
# keep the whole module to a few seconds.
LOCAL = FetchConfig(allow_private_addresses=True, timeout_s=2.0, retries=2, backoff_s=0.05)


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(IMAGES) as srv:
        srv.route("/gone.jpg", status=404)
        srv.route("/broken.jpg", status=500)
        srv.route("/slow.jpg", file="china.jpg", delay_s=30)
        srv.route("/trickle.jpg", file="china.jpg", trickle_bps=1)
        srv.redirect_chain("/hop", 3, "/china.jpg")
        srv.redirect_chain("/five", 5, "/china.jpg")
        srv.redirect_chain("/six", 6, "/china.jpg")
        srv.redirect_loop("/loop-a", "/loop-b")
        srv.redirect("/to-absolute", "/nested/../china.jpg", status=301)
        srv.route("/html-not-image.jpg", file="china.jpg", content_type="text/html; charset=utf-8")
        srv.route("/noai.jpg", file="china.jpg", headers={"X-Robots-Tag": "noai"})
        srv.route("/noimageai.jpg", file="china.jpg", headers={"X-Robots-Tag": ["noindex", "NoImageAI, nofollow"]})
        srv.route("/ours-noai.jpg", file="china.jpg", headers={"X-Robots-Tag": "flamingo-data: noai"})
        srv.route("/otherbot-noai.jpg", file="china.jpg", headers={"X-Robots-Tag": "otherbot: noai"})
        srv.route("/empty.jpg", body=b"", content_type="image/jpeg")
        srv.route("/redirect-no-location", status=302)
        srv.redirect("/to-metadata", "http://169.254.169.254/latest/meta-data/")
        srv.redirect("/to-file", "file:///etc/passwd")
        yield srv


@pytest.fixture
def connects(monkeypatch):
    """Every address the fetcher connects to (the spy passes the call through)."""
    seen = []
    original = fetch_mod._DeadlineSocket.connect

    def spy(sock, address):
        seen.append(address[:2])
        return original(sock, address)

    monkeypatch.setattr(fetch_mod._DeadlineSocket, "connect", spy)
    return seen


def hits_during(server, fn):
    before = server.hits()
    result = fn()
    return result, server.hits() - before


@pytest.mark.parametrize("name,ctype", [("china.jpg", "image/jpeg"), ("astronaut.png", "image/png"),
                                        ("no_time_for_that_tiny.gif", "image/gif")])
def test_ok_returns_the_file_bytes(server, name, ctype):
    r = Fetcher(LOCAL).fetch(server.url(f"/{name}"))
    assert (r.ok, r.reason, r.status, r.content_type) == (True, None, 200, ctype)
    assert r.data == (IMAGES / name).read_bytes()
    assert r.final_url == server.url(f"/{name}") and r.requests == 1


def test_404_is_not_retried(server):
    r, hits = hits_during(server, lambda: Fetcher(LOCAL).fetch(server.url("/gone.jpg")))
    assert (r.ok, r.reason, r.status, r.data) == (False, "http_404", 404, None)
    assert hits == 1 and r.requests == 1


def test_500_is_retried_with_backoff_then_dropped(server):
    t0 = time.monotonic()
    r, hits = hits_during(server, lambda: Fetcher(LOCAL).fetch(server.url("/broken.jpg")))
    assert (r.reason, r.status) == ("http_500", 500)
    assert hits == 3 and r.requests == 3  # retries=2
    assert time.monotonic() - t0 >= 0.05 + 0.10  # backoff 0.05, then doubled


def test_503_then_ok_honours_retry_after(server):
    server.script("/flaky.jpg", [Route(status=503, headers={"Retry-After": "1"}), Route(file="china.jpg")])
    start = len(server.requests)
    r = Fetcher(LOCAL).fetch(server.url("/flaky.jpg"))
    assert r.ok and r.data == CHINA and r.requests == 2
    first, second = server.requests[start:start + 2]
    assert second.time - first.time >= 0.95


def test_retry_after_is_capped(server):
    server.script("/busy.jpg", [Route(status=429, headers={"Retry-After": "3600"}), Route(file="china.jpg")])
    t0 = time.monotonic()
    r = Fetcher(FetchConfig(allow_private_addresses=True, backoff_s=0.05, max_retry_after_s=0.3)).fetch(
        server.url("/busy.jpg"))
    assert r.ok and r.requests == 2
    assert 0.3 <= time.monotonic() - t0 < 2.0


def test_slow_server_times_out_in_bounded_time(server):
    cfg = FetchConfig(allow_private_addresses=True, timeout_s=0.5, retries=1, backoff_s=0.05)
    t0 = time.monotonic()
    r = Fetcher(cfg).fetch(server.url("/slow.jpg"))
    elapsed = time.monotonic() - t0
    assert (r.ok, r.reason, r.requests) == (False, "timeout", 2)
    assert 1.0 <= elapsed < 2.0  # two attempts of 0.5 s plus one backoff


def test_trickle_is_cut_at_the_total_deadline(server):
    # 1 byte/s: every single read succeeds well within any per-read timeout, so only a
    # deadline on the whole response ends it.
    cfg = FetchConfig(allow_private_addresses=True, timeout_s=1.5, retries=0)
    t0 = time.monotonic()
    r = Fetcher(cfg).fetch(server.url("/trickle.jpg"))
    elapsed = time.monotonic() - t0
    assert (r.ok, r.reason, r.data) == (False, "timeout", None)
    assert 1.4 <= elapsed < 2.5


def test_redirect_chain_within_cap(server):
    r = Fetcher(LOCAL).fetch(server.url("/hop0"))
    assert r.ok and r.data == CHINA
    assert r.final_url == server.url("/china.jpg") and r.requests == 4
    r5 = Fetcher(LOCAL).fetch(server.url("/five0"))  # exactly max_redirects=5
    assert r5.ok and r5.requests == 6
    r_rel = Fetcher(LOCAL).fetch(server.url("/to-absolute"))
    assert r_rel.ok and r_rel.final_url == server.url("/china.jpg")


def test_redirects_past_the_cap(server):
    r, hits = hits_during(server, lambda: Fetcher(LOCAL).fetch(server.url("/six0")))
    assert (r.ok, r.reason) == (False, "too_many_redirects")
    assert hits == 6  # the first request and 5 redirects, never the 7th


def test_redirect_loop(server):
    r, hits = hits_during(server, lambda: Fetcher(LOCAL).fetch(server.url("/loop-a")))
    assert (r.reason, r.status) == ("too_many_redirects", 302)
    assert hits == LOCAL.max_redirects + 1  # not retried either


def test_redirect_without_location_is_an_http_error(server):
    r = Fetcher(LOCAL).fetch(server.url("/redirect-no-location"))
    assert (r.ok, r.reason, r.data) == (False, "http_302", None)


@pytest.mark.parametrize("route", [
    {"send_length": True},  # refused from Content-Length, before reading
    {"send_length": False},  # body ends at close: stopped while streaming
    {"chunked": True},
])
def test_byte_cap(server, route):
    cap = 100_000
    cfg = FetchConfig(allow_private_addresses=True, max_bytes=cap, retries=0)
    server.route("/exact.bin", body_size=cap, content_type="image/jpeg", **route)
    server.route("/over.bin", body_size=cap + 1, content_type="image/jpeg", **route)
    exact = Fetcher(cfg).fetch(server.url("/exact.bin"))
    over = Fetcher(cfg).fetch(server.url("/over.bin"))
    assert exact.ok and len(exact.data) == cap
    assert (over.ok, over.reason, over.data) == (False, "too_large", None)


def test_wrong_content_type(server):
    r = Fetcher(LOCAL).fetch(server.url("/html-not-image.jpg"))
    assert (r.ok, r.reason, r.content_type) == (False, "bad_content_type", "text/html; charset=utf-8")
    videos = FetchConfig(allow_private_addresses=True, accept_content_types=("video/", "application/octet-stream"))
    assert Fetcher(videos).fetch(server.url("/china.jpg")).reason == "bad_content_type"


@pytest.mark.parametrize("path,reason", [("/noai.jpg", "noai"), ("/noimageai.jpg", "noai"),
                                         ("/ours-noai.jpg", "noai"), ("/otherbot-noai.jpg", None)])
def test_x_robots_tag(server, path, reason):
    r = Fetcher(LOCAL).fetch(server.url(path))
    assert r.reason == reason
    assert r.data == (None if reason else CHINA)


def test_noai_can_be_switched_off(server):
    cfg = FetchConfig(allow_private_addresses=True, honour_noai=False)
    assert Fetcher(cfg).fetch(server.url("/noai.jpg")).data == CHINA


def test_empty_body(server):
    assert Fetcher(LOCAL).fetch(server.url("/empty.jpg")).reason == "empty_body"


def test_ssrf_guard_refuses_before_connecting(server, connects):
    port = server.port
    cases = {
        f"http://127.0.0.1:{port}/china.jpg": "ssrf_blocked",
        f"http://localhost:{port}/china.jpg": "ssrf_blocked",
        f"http://[::1]:{port}/china.jpg": "ssrf_blocked",
        f"http://2130706433:{port}/china.jpg": "ssrf_blocked",  # 127.0.0.1 as one decimal number
        f"http://[::ffff:127.0.0.1]:{port}/china.jpg": "ssrf_blocked",
        f"http://0.0.0.0:{port}/china.jpg": "ssrf_blocked",
        "http://10.0.0.1/a.jpg": "ssrf_blocked",
        "http://192.168.1.1/a.jpg": "ssrf_blocked",
        "http://169.254.169.254/latest/meta-data/": "ssrf_blocked",
        "https://224.0.0.1/a.jpg": "ssrf_blocked",
        "http://[64:ff9b::a9fe:a9fe]/latest/": "ssrf_blocked",  # 169.254.169.254 via NAT64
        "file:///etc/passwd": "bad_scheme",
        "javascript:alert(1)": "bad_scheme",
        f"ftp://127.0.0.1:{port}/china.jpg": "bad_scheme",
        "data:image/png;base64,iVBORw0KGgo=": "bad_scheme",
        f"http://user:pass@127.0.0.1:{port}/china.jpg": "credentials_in_url",
        f"http://user@127.0.0.1:{port}/china.jpg": "credentials_in_url",
        "http:///no-host.jpg": "bad_url",
        "http://example.com:99999/a.jpg": "bad_url",
        "http://exa mple.com/a.jpg": "bad_url",
    }
    before = server.hits()
    strict = Fetcher(FetchConfig(retries=2, backoff_s=0.05))
    for url, reason in cases.items():
        assert url_refusal(url, allow_private=False) == reason, url
        r = strict.fetch(url)
        assert (r.ok, r.reason, r.requests, r.data) == (False, reason, 0, None), url
    assert server.hits() == before
    assert connects == []
    # the same loopback URL is fine once private addresses are allowed
    assert url_refusal(f"http://127.0.0.1:{port}/china.jpg", allow_private=True) is None
    assert url_refusal(f"http://user:pass@127.0.0.1:{port}/x", allow_private=True) == "credentials_in_url"


def test_allowed_networks_admit_only_what_they_name(server, connects):
    only_loopback4 = FetchConfig(allowed_networks=("127.0.0.1/32",), retries=0)
    r = Fetcher(only_loopback4).fetch(server.url("/china.jpg"))
    assert r.ok and r.data == CHINA
    assert url_refusal("http://10.0.0.1/", False, ("127.0.0.1/32",)) == "ssrf_blocked"
    assert connects == [("127.0.0.1", server.port)]


def test_every_redirect_target_is_vetted(server, connects):
    cfg = FetchConfig(allowed_networks=("127.0.0.1/32",), retries=2, backoff_s=0.05)
    r, hits = hits_during(server, lambda: Fetcher(cfg).fetch(server.url("/to-metadata")))
    assert (r.ok, r.reason, r.status) == (False, "ssrf_blocked", 302)
    assert r.final_url == "http://169.254.169.254/latest/meta-data/"
    assert hits == 1 and r.requests == 1  # refusals are not retried
    assert connects == [("127.0.0.1", server.port)]  # never a connection attempt to 169.254.169.254
    r_file = Fetcher(cfg).fetch(server.url("/to-file"))
    assert (r_file.reason, r_file.final_url) == ("bad_scheme", "file:///etc/passwd")


def test_fetch_by_host_in_beam(server):
    a, b = "127.0.0.1", "localhost"  # two hosts (one server): grouped and paced separately
    items = [
        (server.url("/china.jpg", a), "doc1#0"),
        (server.url("/china.jpg", a), "doc2#3"),  # same URL twice: one fetch
        (server.url("/gone.jpg", a), "doc1#1"),
        (server.url("/flower.jpg", a), "doc3#0"),
        (server.url("/rocket.jpg", b), "doc4#0"),
        (server.url("/coffee.png", b), "doc4#1"),
        (server.url("/html-not-image.jpg", b), "doc5#0"),
        ("javascript:alert(1)", "doc6#0"),
    ]
    expected = [
        (items[0][0], "doc1#0", None, len(CHINA)),
        (items[1][0], "doc2#3", None, len(CHINA)),
        (items[2][0], "doc1#1", "http_404", 0),
        (items[3][0], "doc3#0", None, (IMAGES / "flower.jpg").stat().st_size),
        (items[4][0], "doc4#0", None, (IMAGES / "rocket.jpg").stat().st_size),
        (items[5][0], "doc4#1", None, (IMAGES / "coffee.png").stat().st_size),
        (items[6][0], "doc5#0", "bad_content_type", 0),
        ("javascript:alert(1)", "doc6#0", "bad_scheme", 0),
    ]
    rps = 4.0
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=rps, timeout_s=2.0, retries=0)
    start = len(server.requests)
    p = TestPipeline()
    out = (p
           | beam.Create(items)
           | FetchByHost(cfg, metrics_namespace="test_fetch")
           | beam.Map(lambda t: (t[0], t[1], t[2].reason, len(t[2].data or b""))))
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()

    seen = server.requests[start:]
    assert sorted(r.path for r in seen) == sorted(
        ["/china.jpg", "/gone.jpg", "/flower.jpg", "/rocket.jpg", "/coffee.png", "/html-not-image.jpg"])
    for host in (a, b):
        times = sorted(r.time for r in seen if r.headers["Host"].startswith(host + ":"))
        assert len(times) == 3
        assert all(t2 - t1 >= 1 / rps - 0.02 for t1, t2 in zip(times, times[1:])), (host, times)
    first = {h: min(r.time for r in seen if r.headers["Host"].startswith(h + ":")) for h in (a, b)}
    assert abs(first[a] - first[b]) < 1 / rps  # concurrently: one after the other would be >= 2/rps apart

    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace("test_fetch"))["counters"]}
    assert counters == {"fetch_ok": 4, "fetch_drop_http_404": 1, "fetch_drop_bad_content_type": 1,
                        "fetch_drop_bad_scheme": 1}


def test_fetcher_is_thread_safe(server):
    names = ["china.jpg", "astronaut.png", "coffee.png", "rocket.jpg"] * 6
    fetcher = Fetcher(LOCAL)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: fetcher.fetch(server.url(f"/{n}?t")), names))
    assert [r.data for r in results] == [(IMAGES / n).read_bytes() for n in names]


def test_non_ascii_path_is_percent_encoded(server):
    server.route("/caf%C3%A9.jpg", file="china.jpg")
    r = Fetcher(LOCAL).fetch(server.url("/café.jpg"))
    assert r.ok and r.data == CHINA
    assert server.requests[-1].path == "/caf%C3%A9.jpg"


def _ca_and_leaf(tmp_path):
    """A throwaway CA and a leaf certificate for DNS:localhost only, in PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject, issuer, key, signer, ca, san=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(hours=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
            b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
            b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                                critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flamingo test CA")])
    ca = cert(ca_name, ca_name, ca_key, ca_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, leaf_key, ca_key,
                False, [x509.DNSName("localhost")])
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem) + leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem")


def test_https_checks_certificate_and_hostname(tmp_path):
    ca_file, leaf = _ca_and_leaf(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(leaf)
    with LoopbackServer(IMAGES, tls=server_ctx) as srv:
        trusting = FetchConfig(allow_private_addresses=True, ca_file=ca_file, retries=2, backoff_s=0.05)
        r = Fetcher(trusting).fetch(srv.url("/china.jpg", host="localhost"))
        assert r.ok and r.data == CHINA and r.final_url.startswith("https://localhost:")
        assert srv.sni == ["localhost"]  # SNI is the hostname, though we connected to a vetted IP
        # the certificate names localhost, not 127.0.0.1: refused, and not retried
        wrong_name = Fetcher(trusting).fetch(srv.url("/china.jpg", host="127.0.0.1"))
        assert (wrong_name.ok, wrong_name.reason, wrong_name.requests) == (False, "tls_error", 1)
        # the system store does not know our test CA
        untrusted = Fetcher(FetchConfig(allow_private_addresses=True)).fetch(srv.url("/china.jpg", host="localhost"))
        assert untrusted.reason == "tls_error"
        assert srv.hits() == 1  # only the trusted, matching connection got to send a request


def _fetch_in_beam(items, cfg, namespace="test_fetch_conc"):
    """Run FetchByHost on ``items``; (url, payload, reason, size) outputs and counters."""
    p = TestPipeline()
    out = (p
           | beam.Create(items)
           | FetchByHost(cfg, metrics_namespace=namespace)
           | beam.Map(lambda t: (t[0], t[1], t[2].reason, len(t[2].data or b""))))
    expected = [(u, pl, None, len(CHINA)) for u, pl in items]
    assert_that(out, equal_to(expected))
    result = p.run()
    result.wait_until_finish()
    return {c.key.metric.name: c.committed
            for c in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]}


@pytest.fixture(scope="module")
def lagging():
    """A server that answers /lag.jpg (any query) after 1 s."""
    with LoopbackServer(IMAGES) as srv:
        srv.route("/lag.jpg", file="china.jpg", delay_s=1.0)
        yield srv


def test_one_host_is_fetched_concurrently_without_a_rate(lagging):
    """per_host_rps 0: no serialisation; 8 requests to one host are all in flight
    before the first answer (1 s) comes back."""
    items = [(lagging.url(f"/lag.jpg?i={i}"), f"doc{i}") for i in range(8)]
    start = len(lagging.requests)
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=0, timeout_s=5.0, retries=0)
    counters = _fetch_in_beam(items, cfg)
    assert counters == {"fetch_ok": 8}
    times = sorted(r.time for r in lagging.requests[start:])
    assert len(times) == 8
    assert times[-1] - times[0] < 1.0, times  # one at a time would take >= 7 s


def test_host_concurrency_caps_requests_in_flight(lagging):
    items = [(lagging.url(f"/lag.jpg?c={i}"), f"doc{i}") for i in range(6)]
    start = len(lagging.requests)
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=0, timeout_s=5.0, retries=0,
                      host_concurrency=2)
    # without a rate the host is spread over keys (workers): the cap is shared among them
    assert _fetch_in_beam(items, cfg) == {"fetch_ok": 6}
    times = sorted(r.time for r in lagging.requests[start:])
    # in flight never above 2: each arrival is >= 1 s after the one two before it
    assert all(t2 - t0 >= 1.0 - 0.05 for t0, t2 in zip(times, times[2:])), times


def test_default_has_no_per_host_cap_but_the_threads(lagging):
    """per_host_rps 0 and no --fetch-host-concurrency (the default 0): one host
    gets every fetch thread; 40 requests (0.3 s each) to it with 24 threads: the
    server sees 24 at once (the old default cap, 16, spread over keys of one
    request each, gave one in flight per key the worker held)."""
    lagging.route("/lag3.jpg", file="china.jpg", delay_s=0.3)
    items = [(lagging.url(f"/lag3.jpg?d={i}"), f"doc{i}") for i in range(40)]
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=0, timeout_s=5.0, retries=0,
                      threads=24)
    assert cfg.host_concurrency == 0
    lagging.reset_in_flight()
    assert _fetch_in_beam(items, cfg, "test_fetch_nocap") == {"fetch_ok": 40}
    assert lagging.max_in_flight == 24


def test_an_explicit_host_cap_is_pooled_over_the_keys_a_worker_holds(lagging):
    """host_concurrency 6 without a rate: the host is spread over 6 keys of one
    request each; one worker holding them all runs 6 at once, never more."""
    lagging.route("/lag3.jpg", file="china.jpg", delay_s=0.3)
    items = [(lagging.url(f"/lag3.jpg?p={i}"), f"doc{i}") for i in range(30)]
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=0, timeout_s=5.0, retries=0,
                      threads=24, host_concurrency=6)
    lagging.reset_in_flight()
    assert _fetch_in_beam(items, cfg, "test_fetch_pooled") == {"fetch_ok": 30}
    assert lagging.max_in_flight == 6


def test_politeness_is_a_rate_not_one_request_at_a_time(lagging):
    """4 rps to a server taking 1 s: starts are >= 0.25 s apart, yet overlap."""
    rps = 4.0
    items = [(lagging.url(f"/lag.jpg?r={i}"), f"doc{i}") for i in range(4)]
    start = len(lagging.requests)
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=rps, timeout_s=5.0, retries=0)
    assert _fetch_in_beam(items, cfg) == {"fetch_ok": 4}
    times = sorted(r.time for r in lagging.requests[start:])
    assert all(t2 - t1 >= 1 / rps - 0.02 for t1, t2 in zip(times, times[1:])), times
    assert times[-1] - times[0] < 1.0, times  # all four started before the first answer


def test_a_bounded_queue_still_gives_every_result_once(server):
    """max_queued below the list: the scheduler blocks and drains, losing nothing;
    a URL repeated later (after its fetch is done) is still one fetch."""
    urls = [server.url(f"/china.jpg?q={i}") for i in range(40)]
    items = [(u, f"doc{i}") for i, u in enumerate(urls)] + [(urls[3], "again")]
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=50, timeout_s=5.0, retries=0,
                      threads=3, max_queued=4)
    start = len(server.requests)
    assert _fetch_in_beam(items, cfg, "test_fetch_bounded") == {"fetch_ok": 40}
    assert sorted(r.path for r in server.requests[start:]) == sorted(
        f"/china.jpg?q={i}" for i in range(40))


def test_next_request_is_in_flight_while_the_work_downstream_runs(lagging):
    """The image stage is fused after the fetch, on the same thread: with one
    request allowed in flight, the next starts as the previous one's answer
    comes (1 s apart), not after the 0.8 s of work on it (1.8 s apart)."""
    items = [(lagging.url(f"/lag.jpg?w={i}"), f"doc{i}") for i in range(3)]
    start = len(lagging.requests)
    cfg = FetchConfig(allow_private_addresses=True, per_host_rps=0, timeout_s=5.0, retries=0,
                      host_concurrency=1)
    p = TestPipeline()
    out = (p | beam.Create(items) | FetchByHost(cfg, metrics_namespace="test_fetch_overlap")
           | beam.Map(lambda t: (time.sleep(0.8), (t[1], t[2].ok))[1]))
    assert_that(out, equal_to([(pl, True) for _, pl in items]))
    p.run().wait_until_finish()
    times = sorted(r.time for r in lagging.requests[start:])
    assert len(times) == 3
    assert all(t1 - t0 < 1.4 for t0, t1 in zip(times, times[1:])), times
