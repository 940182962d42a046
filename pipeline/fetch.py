"""Media fetch stage: HTTP(S) GET of image (and later video) URLs that the input
WARCs did not archive, made safe and polite.

One fetch = up to `retries + 1` attempts; one attempt = a request plus at most
`max_redirects` redirects, all inside one `timeout_s` deadline. Every URL, the
first and each redirect target, is vetted before any connection:

    scheme http/https -> no user:pass@ -> DNS -> every address public
    (or allowed) -> connect to exactly those vetted addresses

so a name that resolves differently on a second lookup (DNS rebinding) cannot
steer the connection elsewhere: we never look it up again. TLS still uses the
hostname for SNI and certificate checks.

Why http.client and not urllib3: this stage must own the socket. It connects to
the address it vetted, wraps TLS itself with the hostname, and enforces one total
deadline on every read, including the status line and headers, which
http.client parses through `recv_into` calls we control. urllib3 re-resolves names
inside its pools and its timeouts apply per socket operation, so a server that
trickles a byte a second would hold a worker for hours; bending it to do both
means reaching into private connection internals. http.client is stdlib, and
with the socket handed to it, it only does HTTP framing (incl. chunked).

Drop reasons (FetchResult.reason): bad_url, bad_scheme, credentials_in_url,
ssrf_blocked, dns_error, connection_error, tls_error, timeout, http_<code>,
too_many_redirects, too_large, bad_content_type, noai, empty_body.
"""
from __future__ import annotations

import email.utils
import heapq
import http.client
import ipaddress
import logging
import math
import queue
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_URL_SAFE = "/%:@!$&'()*+,;=?~-._"  # reserved characters and existing escapes stay as they are
_CHUNK = 256 * 1024  # one recv can return this much on fast links; fewer loop turns


@dataclass(frozen=True)
class FetchConfig:
    timeout_s: float = 10.0  # whole attempt: connect, TLS, headers, body, redirects
    retries: int = 2
    backoff_s: float = 0.5  # doubles per retry
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    per_host_rps: float = 2.0  # request starts per second to one host; 0: no limit
    # requests in flight to one host at once, all workers together; 0: no cap but
    # the workers' threads (politeness is the rate, per_host_rps, not serialisation)
    host_concurrency: int = 0
    threads: int = 32  # requests in flight per worker, all hosts together
    max_queued: int = 2048  # URLs a worker holds waiting or in flight (bounds its memory)
    allow_private_addresses: bool = False  # tests and the demo only
    user_agent: str = "flamingo-data/0.1 (+https://github.com/)"
    accept_content_types: tuple[str, ...] = ("image/",)  # prefix match
    honour_noai: bool = True
    max_retry_after_s: float = 10.0  # cap on a server's Retry-After
    # Networks exempt from the SSRF block although allow_private_addresses is off,
    # e.g. ("127.0.0.1/32",) to reach one loopback test server while every other
    # private, link-local... address stays refused.
    allowed_networks: tuple[str, ...] = ()
    ca_file: str | None = None  # CA bundle trusted instead of the system store (tests, private mirrors)


@dataclass
class FetchResult:
    url: str
    ok: bool
    reason: str | None  # short snake_case drop reason when not ok
    data: bytes | None = None
    content_type: str | None = None
    final_url: str | None = None
    status: int | None = None
    requests: int = 0  # HTTP requests sent (attempts x redirects); 0 = refused before any


# --- URL vetting (SSRF guard) ------------------------------------------------------

class _Refused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class _Target:
    """A vetted URL: where to connect (the checked addresses) and what to ask for."""
    scheme: str
    host: str  # ASCII (IDNA) hostname, for the Host header, SNI and certificate
    port: int
    path: str
    addrs: tuple  # ((family, sockaddr), ...) exactly as checked


_NETS_CACHE: dict[tuple[str, ...], tuple] = {}


def _networks(spec: tuple[str, ...]) -> tuple:
    nets = _NETS_CACHE.get(spec)
    if nets is None:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in spec)
        _NETS_CACHE[spec] = nets
    return nets


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 behind a NAT64 gateway


def _address_blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and _address_blocked(embedded):
            return True
    # is_global is False for private, loopback, link-local, shared (100.64/10),
    # documentation and reserved ranges; multicast needs its own test.
    return (not ip.is_global or ip.is_multicast or ip.is_loopback or ip.is_link_local
            or ip.is_private or ip.is_reserved or ip.is_unspecified)


def _vet(url: str, allow_private: bool, allowed_networks: tuple[str, ...] = ()) -> _Target:
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise _Refused("bad_url", "empty or contains whitespace/control characters")
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise _Refused("bad_url", str(err)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _Refused("bad_scheme", scheme or "<none>")
    if "@" in parts.netloc:
        raise _Refused("credentials_in_url")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as err:
        raise _Refused("bad_url", str(err)) from None
    host = parts.hostname
    if not host:
        raise _Refused("bad_url", "no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as err:
        raise _Refused("bad_url", f"host {host!r}: {err}") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as err:
        raise _Refused("dns_error", f"{host}: {err}") from None
    addrs = []
    allowed = _networks(tuple(allowed_networks))
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not allow_private and _address_blocked(ip) and not any(ip in net for net in allowed):
            # One bad answer refuses the name: mixed answers are how rebinding starts.
            raise _Refused("ssrf_blocked", f"{host} -> {ip}")
        if (family, sockaddr) not in addrs:
            addrs.append((family, sockaddr))
    if not addrs:
        raise _Refused("dns_error", f"{host}: no IPv4/IPv6 address")
    # Web pages link non-ASCII paths (/café.jpg) that browsers percent-encode; so do we.
    path = quote(parts.path or "/", safe=_URL_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_URL_SAFE)
    return _Target(scheme, host, port, path, tuple(addrs))


def url_refusal(url: str, allow_private: bool, allowed_networks: tuple[str, ...] = ()) -> str | None:
    """None if `url` may be fetched, else the drop reason. Resolves the name (DNS)
    and refuses it if any of its addresses is loopback, private, link-local,
    multicast, reserved or unspecified, unless allow_private (or the address is in
    allowed_networks). Never connects."""
    try:
        _vet(url, allow_private, allowed_networks)
    except _Refused as refusal:
        return refusal.reason
    return None


# --- sockets with one deadline for the whole attempt ----------------------------------

class _DeadlineMixin:
    """Every read gets only what is left of the attempt's deadline, so a server
    trickling one byte per second is cut off at the deadline, even mid-headers."""
    deadline: float = math.inf

    def _arm(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("fetch deadline passed")
        self.settimeout(remaining)

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        self._arm()
        return super().recv(bufsize, flags)

    def sendall(self, data, flags=0):
        self._arm()
        return super().sendall(data, flags)


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    pass


class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):
    pass


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)  # certificate and hostname checks on
    ctx.sslsocket_class = _DeadlineSSLSocket
    return ctx


def _connect(target: _Target, deadline: float, tls: ssl.SSLContext) -> socket.socket:
    last_err: Exception | None = None
    for family, sockaddr in target.addrs:  # only the vetted addresses, never a new lookup
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("fetch deadline passed while connecting")
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(remaining)
            sock.connect(sockaddr)
        except OSError as err:
            sock.close()
            last_err = err
            continue
        sock.deadline = deadline
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.scheme == "https":
            try:
                ssock = tls.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
            except Exception:
                sock.close()
                raise
            ssock.deadline = deadline
            try:
                ssock._arm()
                ssock.do_handshake()  # CPython bounds the whole handshake by the timeout
            except Exception:
                ssock.close()
                raise
            return ssock
        return sock
    assert last_err is not None
    raise last_err


# --- one fetch ----------------------------------------------------------------------

NOAI_DIRECTIVES = frozenset({"noai", "noimageai"})


def _noai(header_values: list[str], ua_token: str) -> bool:
    """X-Robots-Tag `noai` / `noimageai`, for every agent or addressed to ours
    (`flamingo-data: noai`); parsed the way img2dataset parses it."""
    for value in header_values:
        parts = value.split(":", 1)
        agent = parts[0].strip().lower() if len(parts) == 2 else None
        directives = {d.strip().lower() for d in parts[-1].split(",")}
        if (agent is None or agent == ua_token) and directives & NOAI_DIRECTIVES:
            return True
    return False


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retryable(reason: str | None) -> bool:
    if reason in ("timeout", "connection_error", "http_429"):
        return True
    return bool(reason and reason.startswith("http_5"))


class Fetcher:
    """Fetches one URL at a time per call; thread-safe (no shared mutable state
    besides the TLS context). Never raises for network or HTTP problems."""

    def __init__(self, cfg: FetchConfig):
        self.cfg = cfg
        self._tls = _tls_context(cfg.ca_file)
        self._ua_token = cfg.user_agent.split("/", 1)[0].strip().lower()
        accept = [p + "*" for p in cfg.accept_content_types if p.endswith("/")]
        self._headers = {
            "User-Agent": cfg.user_agent,
            "Accept": ",".join(accept + ["*/*;q=0.8"]),
            "Accept-Encoding": "identity",  # images are compressed already; no gzip to undo
            "Connection": "close",
        }

    def fetch(self, url: str) -> FetchResult:
        cfg = self.cfg
        requests = 0
        for attempt in range(cfg.retries + 1):
            result, retry_after = self._attempt(url)
            requests += result.requests
            result.requests = requests
            if result.ok or not _retryable(result.reason) or attempt == cfg.retries:
                return result
            wait = cfg.backoff_s * (2 ** attempt)
            if retry_after is not None:
                wait = max(wait, min(retry_after, cfg.max_retry_after_s))
            log.debug("retry %d for %s after %s, in %.2fs", attempt + 1, url, result.reason, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(self, url: str) -> tuple[FetchResult, float | None]:
        cfg = self.cfg
        deadline = time.monotonic() + cfg.timeout_s
        current, status, requests = url, None, 0
        for _ in range(cfg.max_redirects + 1):
            try:
                target = _vet(current, cfg.allow_private_addresses, cfg.allowed_networks)
            except _Refused as refusal:
                log.debug("refused %s (from %s): %s", current, url, refusal)
                return FetchResult(url, False, refusal.reason, final_url=current, status=status,
                                   requests=requests), None
            requests += 1
            try:
                outcome = self._request(target, deadline)
            except TimeoutError:
                return FetchResult(url, False, "timeout", final_url=current, requests=requests), None
            except ssl.SSLError as err:
                # Certificate and protocol failures will not fix themselves: not retried.
                if isinstance(err, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                    reason = "connection_error"
                else:
                    reason = "tls_error"
                log.debug("%s for %s: %s", reason, current, err)
                return FetchResult(url, False, reason, final_url=current, requests=requests), None
            except (OSError, http.client.HTTPException) as err:
                log.debug("connection_error for %s: %s", current, err)
                return FetchResult(url, False, "connection_error", final_url=current,
                                   requests=requests), None
            except Exception as err:  # noqa: BLE001 - the contract is: never raise
                log.warning("unexpected %s fetching %s: %s", type(err).__name__, current, err)
                return FetchResult(url, False, "connection_error", final_url=current,
                                   requests=requests), None
            status, headers, body, reason = outcome
            if status in REDIRECT_STATUSES and headers.get("Location"):
                current = urljoin(current, headers["Location"].strip())
                continue
            result = FetchResult(url, reason is None, reason, data=body,
                                 content_type=headers.get("Content-Type"), final_url=current,
                                 status=status, requests=requests)
            return result, _retry_after(headers.get("Retry-After")) if _retryable(reason) else None
        return FetchResult(url, False, "too_many_redirects", final_url=current, status=status,
                           requests=requests), None

    def _request(self, target: _Target, deadline: float):
        """(status, headers, body or None, reason or None) for one HTTP exchange."""
        cfg = self.cfg
        sock = _connect(target, deadline, self._tls)
        conn_cls = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(target.host, target.port)
        conn.sock = sock  # ours, connected to the vetted address; http.client only frames
        try:
            conn.request("GET", target.path, headers=self._headers)
            resp = conn.getresponse()
            status, headers = resp.status, resp.headers
            if status in REDIRECT_STATUSES and headers.get("Location"):
                return status, headers, None, None  # the caller vets and follows it
            if not 200 <= status < 300:
                return status, headers, None, f"http_{status}"
            if cfg.honour_noai and _noai(headers.get_all("X-Robots-Tag") or [], self._ua_token):
                return status, headers, None, "noai"
            content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if not any(content_type.startswith(p.lower()) for p in cfg.accept_content_types):
                return status, headers, None, "bad_content_type"
            declared = headers.get("Content-Length")
            if declared and declared.strip().isdigit() and int(declared) > cfg.max_bytes:
                return status, headers, None, "too_large"
            chunks, size = [], 0
            while True:
                chunk = resp.read1(_CHUNK)  # returns after one recv: the deadline is checked per read
                if not chunk:
                    break
                size += len(chunk)
                if size > cfg.max_bytes:
                    return status, headers, None, "too_large"
                chunks.append(chunk)
            if size == 0:
                return status, headers, None, "empty_body"
            return status, headers, b"".join(chunks), None
        finally:
            conn.close()
            sock.close()


# --- Beam: fetch keyed by host --------------------------------------------------------

def host_key(url: str) -> str:
    """The politeness key: the lowercased hostname (ports share a host's budget)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


# Unlimited rate (per_host_rps 0): a host's URLs are spread over this many keys
# (min(host_concurrency, this) with a cap; by a stable hash of the URL), each key
# with its share of host_concurrency, so that a hot host's fetching and image
# work use every worker while the host never has more than host_concurrency
# requests in flight. A worker pools the shares of the keys of one host it holds
# (keys are disjoint across workers, so the sum stays within the cap). With a
# rate, a host is one key so the rate holds across workers.
UNLIMITED_HOST_SPREAD = 64
_RECENT = 256  # results remembered per bundle for a repeated URL (fetched once)

_IDLE, _RUNNABLE, _SLEEPING, _CAPPED = range(4)


class _Host:
    """One host's waiting URLs and its politeness state (token bucket, burst 1)."""

    __slots__ = ("queue", "in_flight", "cap", "keys", "next_start", "state", "lock", "last_start")

    def __init__(self):
        self.queue: deque = deque()
        self.in_flight = 0
        self.cap = 0  # in flight allowed: the shares of this host's keys held by the bundle
        self.keys: set = set()
        self.next_start = 0.0  # the scheduler's: no submission before this
        self.state = _IDLE
        # The fetch threads': the start of the latest request, so that a thread
        # woken late cannot start closer than the interval to the one before.
        self.lock = threading.Lock()
        self.last_start = -math.inf


class _FetchHostsFn(beam.DoFn):
    """(host key, iterable of (url, payload)) -> (url, payload, FetchResult) for each input.

    A scheduler on the Beam thread: URLs wait in per-host queues (at most
    ``max_queued`` per worker, queued or in flight: memory does not grow with the
    list) and go to a pool of ``threads`` fetch threads, round-robin over hosts,
    each host with at most ``host_concurrency`` requests in flight (0: up to
    ``threads``; with spread keys, the shares of the host's keys this bundle
    holds, pooled) and a start
    every ``1/per_host_rps`` s (a token bucket of one: requests overlap whenever the
    server takes longer than the interval; redirects and retries spend slots too).
    Results are emitted from the Beam thread (Beam metrics are thread-local to
    it) as they arrive; a URL given twice while the first is waiting, in flight
    or among the last few done is fetched once."""

    def __init__(self, cfg: FetchConfig, metrics_namespace: str, cache=None, spread: int = 1):
        self._cfg = cfg
        self._ns = metrics_namespace
        self._cache = cache  # pipeline.cache.MediaCache: each outcome stored as it arrives
        self._spread = spread  # keys per host (see _host_spread)

    def setup(self):
        cfg = self._cfg
        self._fetcher = Fetcher(cfg)
        self._threads = max(1, cfg.threads)
        # per key: the host's whole budget, or its share when spread over keys;
        # no cap (host_concurrency 0): a key may use every thread
        self._key_share = (max(1, cfg.host_concurrency // max(1, self._spread))
                           if cfg.host_concurrency > 0 else self._threads)
        self._max_queued = max(self._threads, cfg.max_queued)
        self._interval = 1.0 / cfg.per_host_rps if cfg.per_host_rps > 0 else 0.0
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="fetch")
        self._ok = Metrics.counter(self._ns, "fetch_ok")
        self._drops: dict[str, object] = {}

    def start_bundle(self):
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._hosts: dict[str, _Host] = {}
        self._runnable: deque = deque()
        self._sleeping: list = []  # heap of (next_start, seq, host name)
        self._seq = 0
        self._waiting: dict[str, list] = {}  # url -> [(payload, ts, window), ...], queued or in flight
        self._recent: OrderedDict = OrderedDict()  # url -> FetchResult, the last _RECENT done
        self._queued = 0  # distinct URLs queued or in flight
        self._in_flight = 0

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        key, items = element  # the key: a host, or one of a host's spread keys
        name = key.rpartition("#")[0] if self._spread > 1 else key  # the host
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host()
        if key not in host.keys:  # its share joins the host's pool in this worker
            host.keys.add(key)
            host.cap += self._key_share
        for url, payload in items:  # lazily: a group is never held whole
            done = self._recent.get(url)
            if done is not None:
                yield WindowedValue((url, payload, done), timestamp, (window,))
                continue
            waiters = self._waiting.get(url)
            if waiters is not None:
                waiters.append((payload, timestamp, window))
                continue
            self._waiting[url] = [(payload, timestamp, window)]
            host.queue.append(url)
            self._queued += 1
            if host.state == _IDLE:
                host.state = _RUNNABLE
                self._runnable.append(name)
            yield from self._pump(final=False)

    def finish_bundle(self):
        yield from self._pump(final=True)
        self._hosts.clear()
        self._recent.clear()

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- scheduling (Beam thread only) ------------------------------------------------
    def _pump(self, final: bool):
        """Start what may start, emit what is done; block while the worker holds
        max_queued URLs (or, when ``final``, until everything is done).

        Finished fetches are settled (their slots freed) and the freed slots
        refilled *before* their results go downstream: what is fused after the
        fetch (the image stage) runs on this thread, and while it works on one
        result the next requests are already in flight, so server latency and
        image work overlap instead of alternating. At most ``threads`` results
        wait settled (bytes in memory, not yet emitted): the fetching runs that
        far ahead of the work downstream, no further."""
        pending: deque = deque()  # settled results not yet emitted
        while True:
            while len(pending) < self._threads:
                try:
                    item = self._done.get_nowait()
                except queue.Empty:
                    break
                pending.append(self._settle(item))
            wake = self._start_ready()
            if pending:
                yield from pending.popleft()
                continue
            if not (self._queued > 0 if final else self._queued >= self._max_queued):
                return
            if wake is None and not self._in_flight:
                raise RuntimeError("fetch scheduler stalled: URLs queued, none in flight or due")
            timeout = None if wake is None else max(0.0, wake - time.monotonic())
            try:
                item = self._done.get(timeout=timeout)
            except queue.Empty:
                continue
            pending.append(self._settle(item))

    def _start_ready(self) -> float | None:
        """Submit fetches while threads are free; the next time a sleeping host may start."""
        now = time.monotonic()
        while self._sleeping and self._sleeping[0][0] <= now:
            _, _, name = heapq.heappop(self._sleeping)
            host = self._hosts[name]
            host.state = _RUNNABLE
            self._runnable.append(name)
        while self._runnable and self._in_flight < self._threads:
            name = self._runnable.popleft()
            host = self._hosts[name]
            if not host.queue:
                host.state = _IDLE
                continue
            if host.in_flight >= host.cap:
                host.state = _CAPPED  # runnable again when one of its requests ends
                continue
            if host.next_start > now:
                self._sleep(name, host)
                continue
            url = host.queue.popleft()
            host.in_flight += 1
            host.next_start = max(host.next_start, now) + self._interval
            self._in_flight += 1
            self._pool.submit(self._work, name, host, url)
            if host.queue:
                self._runnable.append(name)  # round-robin: behind the other hosts
            else:
                host.state = _IDLE
        return self._sleeping[0][0] if self._sleeping else None

    def _sleep(self, name: str, host: _Host) -> None:
        host.state = _SLEEPING
        self._seq += 1
        heapq.heappush(self._sleeping, (host.next_start, self._seq, name))

    def _settle(self, item) -> list:
        """One finished fetch: its slot freed, counted; the outputs it owes."""
        name, url, result, err = item
        if err is not None:
            raise err
        host = self._hosts[name]
        host.in_flight -= 1
        self._in_flight -= 1
        self._queued -= 1
        # Each request (redirects and retries too) spends one slot of the budget.
        host.next_start += self._interval * max(0, result.requests - 1)
        if host.state == _CAPPED:
            host.state = _RUNNABLE
            self._runnable.append(name)
        elif host.state == _IDLE and host.queue:  # not expected; keeps the host moving
            host.state = _RUNNABLE
            self._runnable.append(name)
        self._count(result)
        self._recent[url] = result
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        return [WindowedValue((url, payload, result), timestamp, (window,))
                for payload, timestamp, window in self._waiting.pop(url)]

    def _count(self, result: FetchResult) -> None:
        if result.ok:
            self._ok.inc()
            return
        counter = self._drops.get(result.reason)
        if counter is None:
            counter = self._drops[result.reason] = Metrics.counter(self._ns, f"fetch_drop_{result.reason}")
        counter.inc()

    # -- fetch threads --------------------------------------------------------------
    def _work(self, name: str, host: _Host, url: str) -> None:
        try:
            if self._interval:
                with host.lock:  # the host's starts, in line, >= interval apart
                    wait = host.last_start + self._interval - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    host.last_start = time.monotonic()
            result = self._fetcher.fetch(url)
            if self._interval and result.requests > 1:
                with host.lock:
                    host.last_start = max(host.last_start, time.monotonic()) + self._interval * (
                        result.requests - 2)
            if self._cache is not None:  # here, not downstream: a kill loses no fetch
                self._cache.put(url, result)
            self._done.put((name, url, result, None))
        except BaseException as err:  # noqa: BLE001 - re-raised on the Beam thread
            self._done.put((name, url, None, err))


def _host_spread(cfg: FetchConfig) -> int:
    if cfg.per_host_rps > 0:
        return 1
    if cfg.host_concurrency <= 0:
        return UNLIMITED_HOST_SPREAD
    return max(1, min(UNLIMITED_HOST_SPREAD, cfg.host_concurrency))


def _fetch_key(url: str, spread: int) -> str:
    host = host_key(url)
    if spread <= 1:
        return host
    return f"{host}#{zlib.crc32(url.encode('utf-8', 'surrogatepass')) % spread}"


class FetchByHost(beam.PTransform):
    """PCollection[(url, payload)] -> PCollection[(url, payload, FetchResult)].

    Keys by host (beam.GroupByKey on the host, so the per-host rate holds across
    workers) and fetches with _FetchHostsFn: many hosts and many requests per host
    concurrently, each host's request starts at <= per_host_rps (politeness is a
    rate, not one request at a time). With per_host_rps 0 (no rate to hold) a
    host's URLs are spread over up to UNLIMITED_HOST_SPREAD keys so a hot host uses
    every worker, its host_concurrency (if any; 0: none but the threads) shared
    among them. Same URL twice -> fetched once. Increments Beam Metrics counters
    'fetch_ok' and 'fetch_drop_<reason>' (namespace 'm3w' by default), once per
    distinct URL fetched. With a ``cache`` (pipeline.cache.MediaCache) every
    outcome is stored as it arrives."""

    def __init__(self, cfg: FetchConfig, metrics_namespace: str = "m3w", cache=None):
        super().__init__()
        self._cfg = cfg
        self._ns = metrics_namespace
        self._cache = cache

    def expand(self, pcoll):
        spread = _host_spread(self._cfg)
        return (
            pcoll
            | "KeyByHost" >> beam.Map(lambda item: (_fetch_key(item[0], spread), (item[0], item[1])))
            | "GroupByHost" >> beam.GroupByKey()
            | "FetchHosts" >> beam.ParDo(_FetchHostsFn(self._cfg, self._ns, self._cache, spread))
        )
