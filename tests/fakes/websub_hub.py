"""A small WebSub hub on loopback (W3C WebSub, Recommendation 2018-01-23), for tests and the
latency benchmark.

    with WebSubHub() as hub:                     # hub.url: "http://127.0.0.1:<port>/"
        ...crier subscribes (POST hub.url, form-encoded)...
        hub.wait_verified(topic)                 # intent verification done (an event, no sleep)
        hub.publish(topic)                       # "topic changed": fetch it, POST it to every
                                                 # verified subscriber, signed with its secret

What the spec asks of a hub, and this one does (section numbers of the spec):
- 5.1 Subscriber sends a subscription request: a form POST with hub.callback, hub.mode
  (subscribe | unsubscribe), hub.topic, optional hub.lease_seconds and hub.secret (under 200
  bytes). Answered 202 Accepted; a malformed request 400 with a text body. `refuse(status,
  count)` answers the next requests with that status instead (a hub that refuses).
- 5.2 Subscription validation: `deny(topic, reason)` makes the hub refuse that topic: it sends
  GET callback?hub.mode=denied&hub.topic=...&hub.reason=... and keeps no subscription.
- 5.3 Hub verifies intent: asynchronously (after the 202), GET callback with hub.mode,
  hub.topic, hub.challenge (random) and, for subscribe, hub.lease_seconds (the hub's choice:
  what was asked, within [min_lease, max_lease], default `default_lease`). The subscription
  is active only if the answer is 2xx with exactly the challenge as its body; an unsubscribe
  takes effect only then too. A subscribe for a (callback, topic) already active replaces it
  (a renewal: new secret, new lease).
- 7 Content distribution: POST to each active, unexpired subscription's callback the topic's
  content with its Content-Type, `Link: <hub>; rel="hub", <topic>; rel="self"`, and, when the
  subscription has a secret, `X-Hub-Signature: <method>=<hex HMAC of the body>` (8: sha1,
  sha256, sha384 or sha512; `algorithm`). The subscriber answers 2xx; its answer is recorded
  (`deliveries`).
- Publishing is outside the spec; as in PubSubHubbub 0.4 a publisher POSTs hub.mode=publish&
  hub.url=<topic> (answered 204; distribution follows in the background), or a test calls
  `publish(topic, body=None)` (the hub fetches the topic itself unless given the body) and
  gets each callback's status back.

Faults for tests: `publish(..., signature="bad" | "none" | "sha1")` (a wrong HMAC, none, another
method), `replay()` (the last delivery sent again, byte for byte), `lease_override` (the hub
grants another lease than asked), `refuse`, `deny`, and `stop()` (a hub that is down).
State: `requests` (every subscription request's form), `verifications` (callback, params,
answer status, answer body), `deliveries` (callback, headers, body, status), `subscriptions`
((callback, topic) -> Subscription).
"""

from __future__ import annotations

import hmac
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


@dataclass
class Subscription:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int
    expires_at: float          # time.time()
    verified_at: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.hub._lock:
            self.server.hub._conns.add(self.connection)

    def finish(self) -> None:
        with self.server.hub._lock:
            self.server.hub._conns.discard(self.connection)
        super().finish()

    def _answer(self, status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        status, body = self.server.hub._request(form, dict(self.headers))
        self._answer(status, body.encode())

    def do_GET(self) -> None:
        self._answer(405, b"POST subscription requests here")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: WebSubHub


class WebSubHub:
    """See the module docstring."""

    def __init__(self, *, algorithm: str = "sha256", default_lease: int = 3600,
                 min_lease: int = 60, max_lease: int = 864000, host: str = "127.0.0.1"):
        if algorithm not in ALGORITHMS:
            raise ValueError(algorithm)
        self.algorithm = algorithm
        self.default_lease, self.min_lease, self.max_lease = default_lease, min_lease, max_lease
        self.lease_override: int | None = None
        self.requests: list[dict] = []
        self.verifications: list[tuple[str, dict, int, str]] = []
        self.deliveries: list[tuple[str, dict, bytes, int]] = []
        self.subscriptions: dict[tuple[str, str], Subscription] = {}
        self.errors: list[str] = []          # publish requests whose topic could not be read
        self._denied: dict[str, str] = {}
        self._refuse: list[int] = []
        self._last: tuple[str, dict, bytes] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.hub = self
        self._serving: threading.Thread | None = None

    # -- the server -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> WebSubHub:
        self._serving = threading.Thread(target=self._httpd.serve_forever,
                                         name=f"WebSubHub:{self.port}", daemon=True)
        self._serving.start()
        return self

    def stop(self) -> None:
        """The hub goes down: it answers nothing from now on (connections are refused)."""
        if self._serving is not None:
            self._httpd.shutdown()
            self._serving.join(5)
            self._serving = None
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:            # keep-alive connections too: the hub is gone
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.settle()

    def __enter__(self) -> WebSubHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls ---------------------------------------------------------------------------
    def refuse(self, status: int = 503, count: int = 1) -> None:
        """The next `count` subscription requests are answered `status` (nothing verified)."""
        with self._lock:
            self._refuse.extend([status] * count)

    def deny(self, topic: str, reason: str = "not allowed") -> None:
        """Subscriptions to `topic` are denied (5.2: a hub.mode=denied GET to the callback)."""
        with self._lock:
            self._denied[topic] = reason

    def active(self, topic: str | None = None) -> list[Subscription]:
        now = time.time()
        with self._lock:
            return [s for s in self.subscriptions.values()
                    if (topic is None or s.topic == topic) and s.expires_at > now]

    def wait_verified(self, topic: str, timeout: float = 10.0) -> Subscription:
        """Until a subscription to `topic` is active (an event: returns as soon as it is)."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                got = [s for s in self.subscriptions.values() if s.topic == topic]
                if got:
                    return got[0]
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no verified subscription to {topic} "
                                         f"(verifications: {self.verifications})")
                self._changed.wait(left)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait for every verification and distribution in flight (joins their threads)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(timeout)

    # -- 5.1: subscription requests -----------------------------------------------------------
    def _request(self, form: dict, headers: dict) -> tuple[int, str]:
        with self._lock:
            self.requests.append(dict(form))
            refused = self._refuse.pop(0) if self._refuse else None
        mode = form.get("hub.mode", "")
        if mode == "publish":
            topic = form.get("hub.url") or form.get("hub.topic") or ""
            if not topic.startswith(("http://", "https://")):
                return 400, "hub.url: expected the topic's http(s) URL"
            self._background(self._publish_logged, topic)
            return 204, ""
        if refused is not None:
            return refused, "refused by the test"
        callback, topic = form.get("hub.callback", ""), form.get("hub.topic", "")
        if mode not in ("subscribe", "unsubscribe"):
            return 400, "hub.mode: expected subscribe or unsubscribe"
        for name, value in (("hub.callback", callback), ("hub.topic", topic)):
            if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
                return 400, f"{name}: expected an http(s) URL"
        secret = form.get("hub.secret")
        if secret is not None and (not secret or len(secret.encode()) >= 200):
            return 400, "hub.secret: must be 1-199 bytes"
        lease = None
        if form.get("hub.lease_seconds"):
            try:
                lease = int(form["hub.lease_seconds"])
            except ValueError:
                return 400, "hub.lease_seconds: expected a whole number"
        self._background(self._verify, mode, callback, topic, secret, lease)
        return 202, ""

    def _background(self, fn, *args) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    # -- 5.2 / 5.3: validation and intent verification -----------------------------------------
    def _verify(self, mode: str, callback: str, topic: str, secret: str | None,
                asked: int | None) -> None:
        with self._lock:
            reason = self._denied.get(topic)
        if reason is not None and mode == "subscribe":
            self._get(callback, {"hub.mode": "denied", "hub.topic": topic, "hub.reason": reason})
            return
        challenge = secrets.token_urlsafe(24)
        params = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        lease = 0
        if mode == "subscribe":
            lease = self.lease_override or min(max(asked or self.default_lease, self.min_lease),
                                               self.max_lease)
            params["hub.lease_seconds"] = str(lease)
        status, body = self._get(callback, params)
        if not (200 <= status < 300 and body == challenge):
            return                                   # not confirmed: nothing changes
        with self._changed:
            if mode == "subscribe":
                now = time.time()
                self.subscriptions[(callback, topic)] = Subscription(
                    callback, topic, secret, lease, now + lease, now)
            else:
                self.subscriptions.pop((callback, topic), None)
            self._changed.notify_all()

    def _get(self, callback: str, params: dict) -> tuple[int, str]:
        sep = "&" if urlsplit(callback).query else "?"
        url = callback + sep + urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                status, body = r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode("utf-8", "replace")
        except OSError as e:
            status, body = 0, str(e)
        with self._changed:
            self.verifications.append((callback, params, status, body))
            self._changed.notify_all()
        return status, body

    # -- 7 / 8: content distribution -------------------------------------------------------------
    def publish(self, topic: str, body: bytes | None = None,
                content_type: str = "application/rss+xml", *,
                signature: str | None = None) -> list[int]:
        """The topic changed: its content (fetched from the topic URL unless given) goes to
        every active subscriber; each callback's status. `signature`: None signs as the hub
        does; "bad" sends a wrong HMAC, "none" no header, an algorithm name signs with it."""
        if body is None:
            with urllib.request.urlopen(topic, timeout=10) as r:
                body = r.read()
                content_type = r.headers.get("Content-Type", content_type)
        out = []
        for sub in self.active(topic):
            headers = {"Content-Type": content_type,
                       "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"'}
            if sub.secret and signature != "none":
                algo = signature if signature in ALGORITHMS else self.algorithm
                digest = hmac.new(sub.secret.encode(), body, algo).hexdigest()
                if signature == "bad":
                    digest = hmac.new(b"not-the-secret", body, algo).hexdigest()
                headers["X-Hub-Signature"] = f"{algo}={digest}"
            out.append(self._post(sub.callback, headers, body))
        return out

    def _publish_logged(self, topic: str) -> None:
        try:
            self.publish(topic)
        except OSError as e:      # the topic could not be fetched: recorded, not raised
            with self._lock:
                self.errors.append(f"{topic}: {e}")

    def replay(self) -> int:
        """The last delivery sent again, byte for byte (a replay an attacker could make)."""
        if self._last is None:
            raise AssertionError("nothing was delivered yet")
        return self._post(*self._last)

    def _post(self, callback: str, headers: dict, body: bytes) -> int:
        req = urllib.request.Request(callback, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status = r.status
                r.read()
        except urllib.error.HTTPError as e:
            status = e.code
        except OSError:
            status = 0
        with self._changed:
            self._last = (callback, headers, body)
            self.deliveries.append((callback, headers, body, status))
            self._changed.notify_all()
        return status

    @staticmethod
    def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
        """The X-Hub-Signature value for `body` (what a hub sends)."""
        return f"{algorithm}={hmac.new(secret.encode(), body, algorithm).hexdigest()}"

