"""A loopback HTTP server receiving notifications (Apprise's `json://`), for tests.

Records every POST (`received`: path, headers, parsed JSON body). Faults: `fail_with(status)`
answers every request with that status; `hang()` holds every request open until `release()`
(or the server stops), like a webhook that never answers; `latency` delays each request;
`trickling` answers with a body sent a byte a second until the server stops (so a read
timeout never fires). Usage::

    with WebhookServer() as hook:
        hook.url("/hook")  # "json://127.0.0.1:<port>/hook"
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        self.latency = 0.0          # seconds before a request is read (a slow network)
        self.trickling = False      # answer 200 with a body sent one byte a second, forever
        self._released = threading.Event()
        self._released.set()
        self._arrived = threading.Condition()
        self._stopped = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/hook", *, userinfo: str = "") -> str:
        return f"json://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}{path}"

    def fail_with(self, status: int) -> None:
        self.status = status

    def hang(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def messages(self) -> list[dict]:
        """The JSON bodies received (Apprise's json:// sends title, message, type)."""
        return [r["json"] for r in self.received]

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until `n` requests have arrived (a hung one counts when it arrives)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.received) >= n, timeout=timeout)

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                if srv.latency:
                    time.sleep(srv.latency)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    data = json.loads(body or b"null")
                except ValueError:
                    data = None
                with srv._arrived:
                    srv.received.append({"path": self.path, "headers": dict(self.headers),
                                         "json": data})
                    srv._arrived.notify_all()
                srv._released.wait(timeout=30)
                if srv.trickling:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    while not srv._stopped.wait(1.0):
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.send_response(srv.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        return Handler

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
