"""A real HTTP(S) server on 127.0.0.1 for tests: serves a directory of real files and
scripted routes (status codes, slow or trickling responses, redirect chains and
loops, custom headers, oversized or chunked bodies), and records every request
(and, over TLS, every SNI name).

    with LoopbackServer("tests/data/images") as srv:
        srv.route("/gone", status=404)
        srv.route("/slow.jpg", file="china.jpg", delay_s=5)
        srv.redirect_chain("/hop", 3, "/china.jpg")      # /hop0 -> /hop1 -> /hop2 -> /china.jpg
        srv.script("/flaky.jpg", [Route(status=500), Route(file="china.jpg")])
        url = srv.url("/china.jpg")                       # http://127.0.0.1:PORT/china.jpg
        url2 = srv.url("/china.jpg", host="localhost")    # same server, another "host"
        ...
        assert srv.hits("/flaky.jpg") == 2

Shutting down never waits for a slow handler: handlers sleep on a stop event.
"""
from __future__ import annotations

import mimetypes
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    file: str | None = None  # a file under the server's root, used as the body
    content_type: str | None = None  # None: guessed from `file`, else application/octet-stream
    headers: dict[str, str | list[str]] = field(default_factory=dict)  # list = header repeated
    delay_s: float = 0.0  # wait before the status line
    trickle_bps: float | None = None  # send the body one byte at a time at this rate
    body_size: int | None = None  # a generated body of this many bytes (b"\0" * n)
    send_length: bool = True  # False: no Content-Length, body ends at close
    chunked: bool = False  # Transfer-Encoding: chunked


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    time: float


class LoopbackServer:
    def __init__(self, root: str | Path | None = None, bind: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None):
        """tls: a server-side context with a certificate loaded: serve HTTPS, and
        record the SNI names clients send in `self.sni`."""
        self.root = Path(root).resolve() if root is not None else None
        self._bind = bind
        self._tls = tls
        self.sni: list[str | None] = []
        self._routes: dict[str, list[Route]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[RecordedRequest] = []
        # requests being answered now, and the most at once since reset_in_flight()
        self.in_flight = 0
        self.max_in_flight = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------
    def route(self, path: str, **kwargs) -> LoopbackServer:
        """Always answer `path` with Route(**kwargs)."""
        return self.script(path, [Route(**kwargs)])

    def script(self, path: str, responses: list[Route]) -> LoopbackServer:
        """Answer successive requests to `path` with successive responses; the last repeats."""
        with self._lock:
            self._routes[path] = list(responses)
        return self

    def redirect(self, path: str, location: str, status: int = 302) -> LoopbackServer:
        return self.route(path, status=status, headers={"Location": location})

    def redirect_chain(self, prefix: str, hops: int, final: str, status: int = 302) -> LoopbackServer:
        """prefix0 -> prefix1 -> ... -> prefix{hops-1} -> final: `hops` redirects."""
        for i in range(hops):
            self.redirect(f"{prefix}{i}", f"{prefix}{i + 1}" if i + 1 < hops else final, status)
        return self

    def redirect_loop(self, a: str, b: str) -> LoopbackServer:
        return self.redirect(a, b).redirect(b, a)

    # -- inspection ----------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str = "/", host: str | None = None) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host or self._bind}:{self.port}{path}"

    def hits(self, path: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if path is None or urlsplit(r.path).path == path)

    def reset_in_flight(self) -> None:
        with self._lock:
            self.max_in_flight = self.in_flight

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LoopbackServer:
        handler = type("_Handler", (_Handler,), {"server_ref": self})
        self._httpd = _Server((self._bind, 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        if self._tls is not None:
            self._tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)
            # handshake in the handler thread, so one bad client cannot stall accept()
            self._httpd.socket = self._tls.wrap_socket(self._httpd.socket, server_side=True,
                                                       do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="loopback-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- used by the handler -------------------------------------------------------------
    def _next_route(self, path: str) -> Route | None:
        with self._lock:
            responses = self._routes.get(path) or self._routes.get(urlsplit(path).path)
            if not responses:
                return None
            return responses.pop(0) if len(responses) > 1 else responses[0]

    def _record(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(handler.command, handler.path,
                                                 dict(handler.headers.items()), time.monotonic()))

    def _file(self, name: str) -> Path | None:
        if self.root is None:
            return None
        candidate = (self.root / name.lstrip("/")).resolve()
        if self.root not in candidate.parents or not candidate.is_file():
            return None
        return candidate


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a sixth simultaneous connect is
    # dropped and the client's SYN retried a second later; concurrent fetch tests need more.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked; every response still closes
    server_ref: LoopbackServer

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass  # a client that refused our certificate: what TLS tests check

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server_ref
        srv._record(self)
        self.close_connection = True
        route = srv._next_route(self.path)
        if route is None:
            path = srv._file(urlsplit(self.path).path)
            route = Route(file=str(path.relative_to(srv.root))) if path else Route(status=404, body=b"not found")
        with srv._lock:
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            self._respond(route)
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError):
            pass  # the client gave up: exactly what slow routes test
        finally:
            with srv._lock:
                srv.in_flight -= 1

    def _respond(self, route: Route) -> None:
        srv = self.server_ref
        if route.delay_s and srv._stop.wait(route.delay_s):
            return
        body = route.body
        content_type = route.content_type
        if route.file is not None:
            path = srv._file(route.file)
            assert path is not None, f"no file {route.file!r} under {srv.root}"
            body = path.read_bytes()
            content_type = content_type or mimetypes.guess_type(path.name)[0]
        if route.body_size is not None:
            body = b"\0" * route.body_size
        self.send_response(route.status)
        self.send_header("Content-Type", content_type or "application/octet-stream")
        for name, value in route.headers.items():
            for v in value if isinstance(value, list) else [value]:
                self.send_header(name, v)
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif route.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if route.trickle_bps:
            for i in range(len(body)):
                self._write(body[i:i + 1], route.chunked)
                if srv._stop.wait(1.0 / route.trickle_bps):
                    return
        else:
            step = 256 * 1024
            for i in range(0, len(body), step):
                self._write(body[i:i + step], route.chunked)
        if route.chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write(self, data: bytes, chunked: bool) -> None:
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.wfile.write(data)
        self.wfile.flush()
