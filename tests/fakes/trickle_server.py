"""A loopback HTTP server that answers slowly on purpose: one byte at a time, or never.

    with TrickleServer(body, phase="body", interval=1.0) as srv:
        srv.url + "/art.png"     # "http://127.0.0.1:<port>/art.png"

Every request on every path gets the same answer (HTTP/1.1 200, keep-alive):

- `phase="headers"`: the status line and headers arrive one byte per `interval`;
- `phase="body"`: the headers at once, then the body one byte per `interval`
  (`length=False`: no Content-Length, the body ends when the connection closes);
- `phase="silent"`: nothing at all, the connection is held open.

`fast_first=N` answers the first N requests of each connection at once (a kept-alive
connection that turns slow). `srv.connections` counts accepted connections, `srv.requests`
the requests read. `stop()` (or leaving the `with` block) wakes every handler, closes every
connection and joins every thread.
"""

from __future__ import annotations

import socket
import threading


class TrickleServer:
    def __init__(self, body: bytes = b"x" * 1000, *, phase: str = "body", interval: float = 1.0,
                 length: bool = True, fast_first: int = 0,
                 content_type: str = "application/octet-stream") -> None:
        if phase not in ("headers", "body", "silent"):
            raise ValueError(phase)
        self.body, self.phase, self.interval = body, phase, interval
        self.length, self.fast_first, self.content_type = length, fast_first, content_type
        self.connections = 0
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TrickleServer:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for s in self._socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in list(self._threads):
            t.join(5)
        self._listener.close()

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.add(conn)
            self._spawn(self._serve, conn)

    def _answer(self) -> tuple[bytes, bytes]:
        head = [b"HTTP/1.1 200 OK", b"Content-Type: " + self.content_type.encode()]
        head.append(b"Content-Length: %d" % len(self.body) if self.length
                    else b"Connection: close")
        return b"\r\n".join(head) + b"\r\n\r\n", self.body

    def _serve(self, conn: socket.socket) -> None:
        served = 0
        try:
            with conn:
                buf = b""
                while not self._stop.is_set():
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    buf = buf.split(b"\r\n\r\n", 1)[1]  # GET: no request body
                    with self._lock:
                        self.requests += 1
                    head, body = self._answer()
                    served += 1
                    if served <= self.fast_first:
                        conn.sendall(head + body)
                        continue
                    if self.phase == "silent":
                        self._stop.wait()
                        return
                    if self.phase == "body":
                        conn.sendall(head)
                        self._trickle(conn, body)
                    else:
                        self._trickle(conn, head + body)
                    if not self.length:
                        return
        except OSError:
            return
        finally:
            with self._lock:
                self._socks.discard(conn)

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self._stop.wait(self.interval):
                return
            conn.sendall(data[i:i + 1])
