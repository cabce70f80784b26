"""A local HTTP server that serves podcast feeds the way real hosts do, for tests and benchmarks.

    with FeedServer() as srv:
        srv.set_feed("/feed.xml", rss_bytes, etag=True, last_modified=True,
                     cache_control="max-age=600")
        url = srv.url + "/feed.xml"          # "http://127.0.0.1:<port>/feed.xml"

What it does, per path (all setters are thread-safe and take effect on the next request):

    srv.set_feed(path, body, *, etag=True, last_modified=True, conditional=True,
                 cache_control=None, content_type=..., chunked=False, headers=None)
        200 with the body. `etag` / `last_modified`: True derives them (a hash of the body; the
        time of the call, always later than the path's previous value), a string is sent as is,
        False sends none. With `conditional` it answers If-None-Match (weak comparison, `*`) and,
        when that header is absent, If-Modified-Since with 304 (RFC 9110 section 13.2.2);
        `conditional=False` ignores both and always sends 200 with the full body, as many hosts
        do. `chunked=True` sends Transfer-Encoding: chunked without Content-Length.
    srv.remove(path)                               404 from now on
    srv.redirect(path, target, status=301)         `target` is a path here or any absolute URL
    srv.fail_next(path, status=500, count=1, headers=None, body=None, disconnect=False)
        the next `count` requests for `path` get `status` (with `headers`, e.g. Retry-After);
        `disconnect=True` closes the connection without answering. Calls queue up in order.
    srv.delay(path, seconds)                       every request for `path` waits first (0 clears)

State: `srv.requests`, a list of (method, path, headers dict) in arrival order (clear it freely);
`srv.arrivals`, (time.monotonic(), path) of every request, never cleared;
`srv.connections`, how many TCP connections were accepted (keep-alive reuse shows here);
`srv.peak`, the most requests in flight at once per Host name (the Host header without its
port: "127.0.0.1" and "localhost" reach this one server as two hosts), and `srv.peak_total`.

It speaks HTTP/1.1 with keep-alive, sends nothing to stderr, and `stop()` (or leaving the `with`
block) wakes pending delays, closes open connections and joins every thread.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHUNK = 64 * 1024
RSS_TYPE = "application/rss+xml; charset=utf-8"


@dataclass
class _Feed:
    body: bytes
    etag: str | None
    last_modified: str | None
    modified_at: int | None  # seconds since the epoch, for If-Modified-Since
    conditional: bool
    cache_control: str | None
    content_type: str
    chunked: bool
    headers: dict[str, str]


@dataclass
class _Redirect:
    target: str
    status: int


@dataclass
class _Failure:
    status: int
    count: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    disconnect: bool = False


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison of an If-None-Match list against our ETag (RFC 9110 section 8.8.3.2)."""
    ours = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == ours:
            return True
    return False


def _http_time(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError):
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FeedServer/1.0"
    sys_version = ""
    timeout = 10  # an idle keep-alive connection is dropped after this many seconds
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.server.owner._handle(self, head=False)

    def do_HEAD(self) -> None:
        self.server.owner._handle(self, head=True)

    def do_POST(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads
    owner: FeedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-body (size caps, timeouts) is expected here


class FeedServer:
    """A threaded loopback feed host with validators, redirects, failures and delays."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._feeds: dict[str, _Feed] = {}
        self._redirects: dict[str, _Redirect] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, float] = {}
        self._open: set[socket.socket] = set()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.arrivals: list[tuple[float, str]] = []  # (time.monotonic(), path), never cleared
        self.connections = 0
        self._in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self._httpd = _HTTPServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FeedServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.01},
                                        name=f"FeedServer:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a delay
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        with self._lock:
            conns = list(self._open)
        for conn in conns:  # wake handlers waiting on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration ---------------------------------------------------------------------
    def set_feed(self, path: str, body: bytes | str, *, etag: bool | str = True,
                 last_modified: bool | str = True, conditional: bool = True,
                 cache_control: str | None = None, content_type: str = RSS_TYPE,
                 chunked: bool = False, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else bytes(body)
        with self._lock:
            old = self._feeds.get(path)
            if etag is True:
                tag: str | None = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
            else:
                tag = etag or None
            if last_modified is True:
                when = int(time.time())
                if old is not None and old.modified_at is not None and old.body != data:
                    when = max(when, old.modified_at + 1)  # a change is always "later"
                elif old is not None and old.modified_at is not None:
                    when = old.modified_at
                lm: str | None = formatdate(when, usegmt=True)
                modified_at: int | None = when
            elif last_modified:
                lm, modified_at = last_modified, _http_time(last_modified)
            else:
                lm, modified_at = None, None
            self._redirects.pop(path, None)
            self._feeds[path] = _Feed(data, tag, lm, modified_at, conditional, cache_control,
                                      content_type, chunked, dict(headers or {}))

    def remove(self, path: str) -> None:
        with self._lock:
            self._feeds.pop(path, None)
            self._redirects.pop(path, None)

    def redirect(self, path: str, target: str, status: int = 301) -> None:
        with self._lock:
            self._feeds.pop(path, None)
            self._redirects[path] = _Redirect(target, status)

    def fail_next(self, path: str, status: int = 500, count: int = 1,
                  headers: dict[str, str] | None = None, body: bytes | str | None = None,
                  disconnect: bool = False) -> None:
        if body is None:
            body = f"{status} {_phrase(status)}\n"
        data = body.encode() if isinstance(body, str) else bytes(body)
        with self._lock:
            self._failures.setdefault(path, deque()).append(
                _Failure(status, count, dict(headers or {}), data, disconnect))

    def delay(self, path: str, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self._delays[path] = seconds
            else:
                self._delays.pop(path, None)

    # -- serving ---------------------------------------------------------------------------
    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)
            self.connections += 1

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def _handle(self, h: _Handler, *, head: bool) -> None:
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        with self._lock:
            self._in_flight[host] = self._in_flight.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self._in_flight[host])
            self.peak_total = max(self.peak_total, sum(self._in_flight.values()))
        try:
            self._answer(h, head=head)
        finally:
            with self._lock:
                self._in_flight[host] -= 1

    def _answer(self, h: _Handler, *, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append((h.command, h.path, dict(h.headers.items())))
            self.arrivals.append((time.monotonic(), path))
            wait = self._delays.get(path, 0.0)
        if wait and self._stopping.wait(wait):
            h.close_connection = True
            return
        with self._lock:
            failure = self._next_failure(path)
            redirect = self._redirects.get(path)
            feed = self._feeds.get(path)
        if failure is not None:
            if failure.disconnect:
                h.close_connection = True
                return
            self._send(h, failure.status, failure.body, failure.headers, head=head)
        elif redirect is not None:
            target = redirect.target
            if target.startswith("/"):
                target = self.url + target
            self._send(h, redirect.status, f"Moved to {target}\n".encode(),
                       {"Location": target}, head=head)
        elif feed is None:
            self._send(h, 404, b"404 Not Found\n", {}, head=head)
        else:
            self._serve_feed(h, feed, head=head)

    def _next_failure(self, path: str) -> _Failure | None:
        queue = self._failures.get(path)
        if not queue:
            return None
        failure = queue[0]
        failure.count -= 1
        if failure.count <= 0:
            queue.popleft()
        return failure

    def _serve_feed(self, h: _Handler, feed: _Feed, *, head: bool) -> None:
        headers = {"Content-Type": feed.content_type}
        if feed.etag:
            headers["ETag"] = feed.etag
        if feed.last_modified:
            headers["Last-Modified"] = feed.last_modified
        if feed.cache_control:
            headers["Cache-Control"] = feed.cache_control
        headers.update(feed.headers)
        if feed.conditional and self._not_modified(h, feed):
            headers.pop("Content-Type", None)  # a 304 has no body to describe
            h.send_response(304)
            for name, value in headers.items():
                h.send_header(name, value)
            h.end_headers()
            return
        if feed.chunked:
            h.send_response(200)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            if head:
                return
            body = memoryview(feed.body)
            for start in range(0, len(body), CHUNK):
                piece = body[start:start + CHUNK]
                h.wfile.write(b"%X\r\n" % len(piece) + piece + b"\r\n")
            h.wfile.write(b"0\r\n\r\n")
            return
        self._send(h, 200, feed.body, headers, head=head)

    @staticmethod
    def _not_modified(h: _Handler, feed: _Feed) -> bool:
        inm = h.headers.get("If-None-Match")
        if inm is not None:
            return feed.etag is not None and _etag_matches(inm, feed.etag)
        ims = h.headers.get("If-Modified-Since")
        if ims is not None and feed.modified_at is not None:
            since = _http_time(ims)
            return since is not None and feed.modified_at <= since
        return False

    @staticmethod
    def _send(h: _Handler, status: int, body: bytes, headers: dict[str, str], *,
              head: bool) -> None:
        h.send_response(status)
        lower = {name.lower() for name in headers}
        if "content-type" not in lower:
            h.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head and body:
            h.wfile.write(body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
