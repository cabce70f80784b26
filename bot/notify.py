"""Notifications to the host through Apprise (ntfy, e-mail, Matrix, Mastodon DM, Discord, a
JSON webhook `json://host/path`, ...): the adapter. It knows nothing of crier's events; the
application (`bot.alerts`) decides what to say and to which URLs.

A notification never blocks or delays a post: `Notifier.send` only puts the message on a
bounded queue, and one background thread (started on the first message) sends it, each send
bounded by `timeout`. A message that cannot be sent (the queue is full, the service refused
it, it timed out) is logged as a warning, never retried. `flush` waits a bounded time for the
queue to empty (the end of `crier run --once`, a worker's shutdown).

Secrets: Apprise URLs carry tokens and passwords. Only `redact(url)` (Apprise's own privacy
form, without the query) is ever shown; Apprise's logger is kept out of crier's logs, and the
reasons it gives for a failure are scrubbed of every secret part of the URL before they are.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

log = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0     # seconds for one message to its URLs (Apprise's call deadline)
QUEUE_SIZE = 100        # messages waiting; more are dropped with a warning
FLUSH_TIMEOUT = 15.0    # seconds `close` waits for waiting messages before giving up
MAX_STUCK = 4           # abandoned sends still hanging; past this, no new thread is started
KINDS = ("info", "success", "warning", "failure")   # Apprise's NotifyType values
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,24})://")
_PARTS = re.compile(r"[^/:@?&=#,+;]+")


@dataclass(frozen=True)
class Message:
    """One notification: a title, a plain-text body, where it goes, how urgent it is."""
    title: str
    body: str
    urls: tuple[str, ...]
    kind: str = "warning"


@dataclass(frozen=True)
class SendResult:
    """The outcome of a message at one URL, fit to print (`url` is redacted)."""
    url: str
    ok: bool
    error: str | None = None


class Notifier(Protocol):
    """What the application needs: send (never blocks), send now (for `crier notify test`),
    flush and close (bounded waits)."""

    def send(self, message: Message) -> None: ...

    def send_now(self, message: Message) -> list[SendResult]: ...

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool: ...

    def close(self, timeout: float = FLUSH_TIMEOUT) -> bool: ...


class NullNotifier:
    """No notify URLs configured: every message goes nowhere."""

    def send(self, message: Message) -> None:
        pass

    def send_now(self, message: Message) -> list[SendResult]:
        return []

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        return True

    def close(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        return True


def quiet_apprise() -> None:
    """Apprise logs to its own logger; keep it out of crier's output (its failures are
    reported by `AppriseNotifier`, scrubbed). Its per-call capture still sees everything."""
    lg = logging.getLogger("apprise")
    if not any(isinstance(h, logging.NullHandler) for h in lg.handlers):
        lg.addHandler(logging.NullHandler())
    lg.propagate = False


def understood(url: str) -> bool:
    """Does Apprise know how to send to this URL?"""
    return _plugin(url) is not None


def scheme_of(url: str) -> str | None:
    """The URL's scheme ("discord"), safe to show, or None."""
    m = _SCHEME.match(url.strip())
    return m.group(1).lower() if m else None


def redact(url: str) -> str:
    """The URL as Apprise prints it privately (tokens and passwords masked), without its
    query string, and with any part that looks like a token masked too (a generic webhook's
    secret path: `json://host/hooks/8f3kQ...`); for a URL Apprise does not understand, only
    its scheme."""
    plugin = _plugin(url)
    if plugin is None:
        scheme = scheme_of(url)
        return f"{scheme}://…" if scheme else "(not a URL)"
    return _mask_tokens(plugin.url(privacy=True).split("?", 1)[0])


def _tokenish(part: str) -> bool:
    """A random-looking piece: long, with letters and digits (an API key, a webhook id)."""
    return len(part) >= 24 or (len(part) >= 12 and any(c.isdigit() for c in part)
                               and any(c.isalpha() for c in part))


def _mask_tokens(shown: str) -> str:
    return _PARTS.sub(lambda m: f"{m[0][0]}...{m[0][-1]}" if _tokenish(m[0]) and
                      "." not in m[0] else m[0], shown)


def secret_parts(url: str) -> set[str]:
    """The pieces of the URL that its private form hides (tokens, passwords, token-like
    path parts), as written and percent-decoded: what must never appear in a message crier
    prints."""
    plugin = _plugin(url)
    shown = _mask_tokens(plugin.url(privacy=True)) if plugin is not None else \
        scheme_of(url) or ""
    visible = set(_PARTS.findall(shown)) | set(_PARTS.findall(unquote(shown)))
    out: set[str] = set()
    for part in _PARTS.findall(url.strip()):
        for p in (part, unquote(part)):
            if len(p) >= 3 and p not in visible and p != scheme_of(url):
                out.add(p)
    return out


def scrub(text: str, secrets: set[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        text = text.replace(s, "****")
    return text


def _plugin(url: str, asset=None):
    import apprise
    quiet_apprise()
    try:
        return apprise.Apprise.instantiate(url.strip(), asset=asset)
    except Exception:  # Apprise suppresses plugin errors; anything else is "not understood"
        return None


class AppriseNotifier:
    """Sends messages with Apprise from one background thread (see the module docstring)."""

    def __init__(self, urls: Sequence[str] = (), *, timeout: float = SEND_TIMEOUT,
                 queue_size: int = QUEUE_SIZE):
        self.timeout = timeout
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Condition()
        self._waiting = 0           # messages put and not yet finished
        self._thread: threading.Thread | None = None
        self._plugins: dict[str, object] = {}
        self._stuck = 0             # sends given up on whose thread still runs
        for url in urls:  # Apprise's plugins load now, not in the sending thread mid-dispatch
            self._plugin_for(url)

    def _plugin_for(self, url: str):
        import apprise
        if url not in self._plugins:
            # service_timeout=0: Apprise sends in the calling thread (ours), no executor
            self._plugins[url] = _plugin(url, apprise.AppriseAsset(service_timeout=0))
        return self._plugins[url]

    # -- the application's side --------------------------------------------------------------
    def send(self, message: Message) -> None:
        """Queue the message; returns at once. Dropped (with a warning) if the queue is
        full."""
        if not message.urls:
            return
        with self._lock:
            self._start()
            try:
                self._queue.put_nowait(message)
            except queue.Full:
                log.warning("notification dropped, %d already waiting to be sent: %s",
                            self._queue.maxsize, message.title)
                return
            self._waiting += 1

    def send_now(self, message: Message) -> list[SendResult]:
        """Send in this thread, one result per URL (each URL on its own, so one's failure
        is told apart from another's)."""
        return [self._send_one(message, url) for url in dict.fromkeys(message.urls)]

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Wait up to `timeout` seconds for every queued message to be sent (or given up)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._waiting == 0, timeout=timeout)

    def close(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Flush (bounded), then stop the thread. False if messages were left unsent."""
        done = self.flush(timeout)
        if not done:
            log.warning("%d notification(s) not sent within %.0f s; giving up on them",
                        self._waiting, timeout)
        with self._lock:
            if self._thread is not None:
                try:
                    self._queue.put_nowait(None)
                except queue.Full:
                    pass  # the thread is a daemon: it ends with the process
                self._thread = None
        return done

    # -- the sending thread ------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="crier-notify",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            try:
                for url in dict.fromkeys(message.urls):
                    result = self._send_one(message, url)
                    if not result.ok:
                        log.warning("notification %r to %s not sent: %s", message.title,
                                    result.url, result.error)
            except Exception:  # never let one message stop the thread
                log.exception("notification %r: unexpected error", message.title)
            finally:
                with self._lock:
                    self._waiting -= 1
                    self._lock.notify_all()

    def _send_one(self, message: Message, url: str) -> SendResult:
        """One message to one URL, in a daemon thread given `timeout` seconds. One that does
        not finish is abandoned (a daemon never holds the process at exit; Apprise's own
        deadline would leave a worker thread that does, e.g. on a webhook trickling bytes)."""
        import apprise
        plugin = self._plugin_for(url)
        if plugin is None:
            return SendResult(redact(url), False, "not a URL Apprise understands")
        shown = _mask_tokens(plugin.url(privacy=True).split("?", 1)[0])  # as redact() shows it
        secrets = secret_parts(url)
        with self._lock:
            if self._stuck >= MAX_STUCK:
                return SendResult(shown, False, f"{self._stuck} earlier notifications are "
                                                "still hanging; not trying another")
        a = apprise.Apprise()
        a.add(plugin)
        box: dict = {}

        def work() -> None:
            try:
                box["result"] = a.notify(
                    body=message.body, title=message.title, body_format="text",
                    notify_type=message.kind if message.kind in KINDS else "info")
            except Exception as e:  # a plugin's bug: reported like a refusal
                box["error"] = f"{type(e).__name__}: {e}"
            finally:
                with self._lock:
                    if box.get("abandoned"):
                        self._stuck -= 1

        t = threading.Thread(target=work, name="crier-notify-send", daemon=True)
        t.start()
        t.join(self.timeout)
        with self._lock:
            if t.is_alive():
                box["abandoned"] = True
                self._stuck += 1
                return SendResult(shown, False, f"no answer within {self.timeout:g} s; "
                                                "given up")
        if "error" in box:
            return SendResult(shown, False, scrub(box["error"], secrets))
        result = box["result"]
        if result:
            return SendResult(shown, True)
        reasons = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        why = "; ".join(dict.fromkeys(reasons)) or f"refused ({result.status.name.lower()})"
        return SendResult(shown, False, scrub(why, secrets))


def build_notifier(urls: Sequence[str], **kw) -> Notifier:
    """A real notifier when any URL is configured, else the null one."""
    return AppriseNotifier(urls, **kw) if any(urls) else NullNotifier()
