"""A loopback HTTP proxy in front of the real local PDS: counts the XRPC calls that pass and
can lose an answer, so tests see what a flaky network does to a real server's writes.

    proxy = XrpcProxy(pds.url).start()
    proxy.url                              # give this to the publisher as its service
    proxy.count("com.atproto.server.createSession")
    proxy.fail("com.atproto.repo.createRecord", "drop")   # the next one reaches the PDS,
                                                          # its answer never comes back
    proxy.fail("com.atproto.repo.createRecord", "502")    # reaches the PDS, answered 502
    proxy.fail("com.atproto.repo.createRecord", "502-before")  # 502, the PDS never sees it
    seen = proxy.hold("com.atproto.repo.createRecord")    # the next one is passed on and its
    seen.wait(30)                                         # answer held until stop(): the
                                                          # moment to kill the client
    proxy.hold("com.atproto.repo.createRecord", forward=False)  # held before the PDS sees it
    proxy.stop()

Nothing is changed on the way: the request and the PDS's answer pass byte for byte (minus
hop-by-hop headers). Only the faults asked for happen, each once.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
       "content-encoding"}


class XrpcProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.calls: Counter[str] = Counter()
        self.seen: list[str] = []               # nsids in order
        self._faults: dict[str, list[str]] = {}
        self._holds: dict[str, list[tuple[threading.Event, bool]]] = {}
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._client = httpx.Client(timeout=30.0)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def count(self, nsid: str) -> int:
        with self._lock:
            return self.calls[nsid]

    def fail(self, nsid: str, mode: str) -> None:
        assert mode in ("drop", "502", "502-before"), mode
        with self._lock:
            self._faults.setdefault(nsid, []).append(mode)

    def hold(self, nsid: str, *, forward: bool = True) -> threading.Event:
        """Hold the next `nsid` call until `stop()`: passed on to the PDS first (`forward`) or
        not. The event is set once the PDS has answered it (or, not forwarded, on arrival)."""
        reached = threading.Event()
        with self._lock:
            self._holds.setdefault(nsid, []).append((reached, forward))
        return reached

    def start(self) -> XrpcProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            def do_POST(self) -> None:
                proxy._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._client.close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        nsid = h.path.split("?", 1)[0].removeprefix("/xrpc/")
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.calls[nsid] += 1
            self.seen.append(nsid)
            queue = self._faults.get(nsid) or []
            fault = queue.pop(0) if queue else None
            holds = self._holds.get(nsid) or []
            held = holds.pop(0) if holds else None
        if held is not None:
            reached, forward = held
            if forward:
                headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
                self._client.request(h.command, self.upstream + h.path, headers=headers,
                                     content=body)
            reached.set()
            self._released.wait()          # the client hears nothing until stop()
            h.close_connection = True
            return
        if fault == "502-before":
            self._answer(h, 502, {"Content-Type": "application/json"},
                         b'{"error":"UpstreamFailure","message":"proxy: bad gateway"}')
            return
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        answer = self._client.request(h.command, self.upstream + h.path, headers=headers,
                                      content=body)
        if fault == "drop":
            h.close_connection = True
            h.connection.shutdown(2)        # the PDS did it; the client never hears
            return
        if fault == "502":
            self._answer(h, 502, {"Content-Type": "text/plain"}, b"proxy: bad gateway")
            return
        self._answer(h, answer.status_code,
                     {k: v for k, v in answer.headers.items() if k.lower() not in HOP},
                     answer.content)

    @staticmethod
    def _answer(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
                body: bytes) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
