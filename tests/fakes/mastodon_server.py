"""A local Mastodon that follows the documented API contract, for tests and benchmarks.

Shapes follow real recorded responses (the Mastodon.py cassettes under
shared/testdata/recorded/mastodon.py) and https://docs.joinmastodon.org/methods/ :

- statuses are counted the way Mastodon's StatusLengthValidator does: grapheme clusters of
  spoiler + text, every http(s) URL weighs `characters_reserved_per_url`, `@user@domain`
  counts as `@user`; over the limit is 422 "Validation failed: Text character limit of N
  exceeded", blank is 422 "Validation failed: Text can't be blank";
- `Idempotency-Key`: the same key from the same token returns the same status again;
- media uploads (`POST /api/v2/media`) answer 202 with `url: null`; `GET /api/v1/media/:id`
  answers 206 while processing and 200 once processed (after `media_processing_polls`
  checks); statuses refuse unprocessed media like Mastodon does;
- every response carries X-RateLimit-Limit / -Remaining / -Reset, the reset as ISO-8601.

App registration and OAuth (`POST /api/v1/apps`, `/oauth/authorize`, `/oauth/token`):
tests/fakes/mastodon_oauth.py, as `oauth`; the tokens it issues work here too.
Faults for tests: `fail_next`, `timeout_after_create_next`, `rate_limit_next`, `revoke_token`
(`restore_token`, `clear_faults`). Paths are matched without a trailing slash (Mastodon.py
asks for `/api/v2/instance/`) and recorded that way in `requests`.
State: `statuses` (created statuses: the API JSON plus "text", "idempotency_key",
"media_ids"), `media`, `requests`. Usage::

    with MastodonServer(max_characters=500, token="secret-token") as srv:
        srv.url  # "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import html
import itertools
import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import regex
from requests.structures import CaseInsensitiveDict

from tests.fakes.mastodon_oauth import OUTSIDE_SCOPES, OAuthProvider, granted, required_scope

# https://github.com/mastodon/mastodon/blob/main/app/models/account.rb (MENTION_RE)
MENTION_RE = re.compile(
    r"(?<![=/\w])@(([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?)", re.IGNORECASE)
# A simplification of twitter-text's URL extraction (protocol required, as Mastodon asks).
URL_RE = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
HASHTAG_RE = re.compile(r"(?<![=/\w])#(\w*[^\W\d]\w*)")
TRAILING_PUNCT = ".,:;!?'\"…"

SUPPORTED_MIME_TYPES = [
    "image/jpeg", "image/png", "image/gif", "image/heic", "image/heif", "image/webp",
    "image/avif", "video/webm", "video/mp4", "video/quicktime", "video/ogg", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-pn-wave", "audio/vnd.wave", "audio/ogg",
    "audio/vorbis", "audio/mpeg", "audio/mp3", "audio/webm", "audio/flac", "audio/aac",
    "audio/m4a", "audio/x-m4a", "audio/mp4", "audio/3gpp", "video/x-ms-asf"]

# Mastodon's rate limits (config/initializers/rack_attack.rb): (limit, period in seconds).
RATE_BUCKETS = {"api": (300, 300), "statuses": (300, 3 * 3600), "media": (30, 30 * 60),
                "deletes": (30, 30 * 60)}
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           410: "Gone", 422: "Unprocessable Content", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
INVALID_TOKEN = "The access token is invalid"
PRIVATE_KEYS = ("text", "idempotency_key", "media_ids")


def mastodon_length(text: str, url_weight: int = 23) -> int:
    """Length as Mastodon's StatusLengthValidator counts it.

    Every URL becomes a `url_weight`-long placeholder, `@user@domain` becomes `@user`, and
    what is left is counted in grapheme clusters.
    """
    spans = [(start, end, "x" * url_weight) for start, end in _url_spans(text)]
    for m in MENTION_RE.finditer(text):
        if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
            spans.append((m.start(), m.end(), "@" + m.group(2)))
    out, pos = [], 0
    for start, end, replacement in sorted(spans):
        out += [text[pos:start], replacement]
        pos = end
    out.append(text[pos:])
    return len(regex.findall(r"\X", "".join(out)))


def _url_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in URL_RE.finditer(text):
        url = _trim_url(m.group(0))
        if len(url) > url.index("://") + 3:
            spans.append((m.start(), m.start() + len(url)))
    return spans


def _trim_url(url: str) -> str:
    while url and (url[-1] in TRAILING_PUNCT or (url[-1] == ")" and url.count("(") <
                                                  url.count(")"))):
        url = url[:-1]
    return url


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _h(text: str) -> str:
    """Rails' html_escape."""
    return html.escape(text, quote=True).replace("&#x27;", "&#39;")


class _Reply:
    def __init__(self, status: int, body: Any = None, headers: dict | None = None,
                 delay: float = 0.0):
        self.status, self.body, self.headers, self.delay = status, body, headers or {}, delay


class MastodonServer:
    """A Mastodon instance with one account, on 127.0.0.1, in a background thread."""

    def __init__(self, *, max_characters: int = 500, characters_reserved_per_url: int = 23,
                 max_media_attachments: int = 4, description_limit: int = 1500,
                 image_size_limit: int = 16 * 1024 * 1024, token: str = "secret-token",
                 username: str = "crier", domain: str | None = None,
                 version: str = "4.6.4", instance_v2: bool = True,
                 v1_configuration: bool = True, max_toot_chars: int | None = None,
                 media_processing_polls: int = 1,
                 clock: Callable[[], datetime] | None = None):
        self.max_characters = max_characters
        self.characters_reserved_per_url = characters_reserved_per_url
        self.max_media_attachments = max_media_attachments
        self.description_limit = description_limit
        self.image_size_limit = image_size_limit
        self.token, self.username, self.version = token, username, version
        self.instance_v2, self.v1_configuration = instance_v2, v1_configuration
        self.max_toot_chars = max_toot_chars
        self.media_processing_polls = media_processing_polls
        self.clock = clock or (lambda: datetime.now(UTC))
        self._domain = domain
        self.account_id = "110000000000000001"
        # POST /api/v1/apps and the OAuth code flow (tests/fakes/mastodon_oauth.py); the
        # tokens it issues are accepted besides `token`, within their scopes
        self.oauth = OAuthProvider(lambda: self.clock())

        self.statuses: list[dict] = []
        self.reblogs: list[dict] = []
        # federation, simulated: a search with resolve=true for a status URL of a peer
        # instance copies it here under a local id, as Mastodon fetches a remote status
        self.peers: list[MastodonServer] = []
        self.remote: list[dict] = []
        # other people's posts (`add_post`), what they mention us in, whom we block or mute
        self.others: list[dict] = []
        self.notifications: list[dict] = []
        self.blocked: list[dict] = []
        self.muted: list[dict] = []
        self.chaos = None  # a tests.fakes.chaos.Chaos: random faults on status writes
        self.media: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._faults: list[dict] = []
        self._timeouts: list[float] = []
        self._revoked = False
        self._idempotency: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._rate_counts: dict[tuple[str, str, int], int] = {}
        self._last_id = 0
        self._seq = itertools.count()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> MastodonServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # quiet
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers sleeping in timeout_after_create_next
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> MastodonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def domain(self) -> str:
        return self._domain or urlsplit(self.url).netloc

    @property
    def public_base(self) -> str:
        """Where statuses and profiles live: https://<domain> if one was given, else self.url."""
        return f"https://{self._domain}" if self._domain else self.url

    # -- fault injection ---------------------------------------------------------------------
    def fail_next(self, status: int, count: int = 1, body: Any = None,
                  headers: dict | None = None, path_prefix: str | None = "/api/v1/statuses",
                  method: str | None = "POST") -> None:
        """Answer the next `count` matching requests with `status` (nothing is created).

        `body` may be a dict (sent as JSON), str or bytes; the default is Mastodon's
        {"error": ...}. `path_prefix` / `method` None match any request.
        """
        if body is None:
            body = {"error": INVALID_TOKEN if status == 401 else REASONS.get(status, "Error")}
        with self._lock:
            self._faults.append({"status": status, "count": count, "body": body,
                                 "headers": dict(headers or {}), "path_prefix": path_prefix,
                                 "method": method})

    def rate_limit_next(self, reset_in_seconds: float = 60, count: int = 1, *,
                        path_prefix: str | None = "/api/v1/statuses",
                        method: str | None = "POST") -> None:
        """429 for the next `count` matching requests: X-RateLimit-Remaining 0 and
        X-RateLimit-Reset = now + `reset_in_seconds` as ISO-8601. Matches status POSTs unless
        told otherwise; `path_prefix` / `method` None match any request."""
        with self._lock:
            self._faults.append({"status": 429, "count": count,
                                 "body": {"error": "Too many requests"}, "headers": {},
                                 "path_prefix": path_prefix, "method": method,
                                 "reset_in": reset_in_seconds})

    def timeout_after_create_next(self, count: int = 1, delay: float = 5.0) -> None:
        """The next `count` status POSTs create the status, then wait `delay` s to answer."""
        with self._lock:
            self._timeouts.extend([delay] * count)

    def revoke_token(self) -> None:
        """Every authenticated request is refused with 401 from now on."""
        with self._lock:
            self._revoked = True

    def restore_token(self) -> None:
        with self._lock:
            self._revoked = False

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._timeouts.clear()

    # -- request handling --------------------------------------------------------------------
    def _handle(self, req: _Handler) -> None:
        split = urlsplit(req.path)
        path = split.path.rstrip("/") or "/"
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        headers = CaseInsensitiveDict(req.headers.items())
        query = parse_qs(split.query, keep_blank_values=True)
        kind = self.chaos.pick() if self.chaos is not None and req.command == "POST" \
            and path.startswith("/api/v1/statuses") else None
        if kind == "reset_before":
            req.close_connection = True
            return  # the connection drops; nothing was made
        with self._lock:
            self.requests.append({"method": req.command, "path": path, "query": query,
                                  "headers": headers, "body": body})
            auth = headers.get("Authorization", "")
            caller = auth[7:] if auth.startswith("Bearer ") else ""
            reply = self._injected(req.command, path)
            if kind in ("500", "502", "503", "slow"):
                reply = _Reply(503 if kind == "slow" else int(kind),
                               {"error": REASONS.get(503 if kind == "slow" else int(kind),
                                                     "Error")},
                               delay=self.chaos.delay if kind == "slow" else 0.0)
            elif kind == "429":
                reply = _Reply(429, {"error": "Too many requests"},
                               {"_reset_in": self.chaos._rng.uniform(1, 3)})
            if reply is None:
                try:
                    reply = self._route(req.command, path, query, headers, body, caller)
                except _Fail as fail:
                    reply = fail.reply
            reply.headers = {**self._rate_headers(req.command, path, caller,
                                                  reply.headers.pop("_reset_in", None)),
                             **reply.headers}
        if kind == "created_timeout":
            reply.delay = max(reply.delay, self.chaos.delay)
        if kind == "reset_after":
            req.close_connection = True
            return  # made, then the connection drops before the answer
        if reply.delay and self._stop.wait(reply.delay):
            return  # shutting down: the client gave up long ago
        req.send(reply)

    def _injected(self, method: str, path: str) -> _Reply | None:
        for fault in self._faults:
            if (fault["method"] in (None, method)
                    and (fault["path_prefix"] is None or path.startswith(fault["path_prefix"]))):
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self._faults.remove(fault)
                headers = dict(fault["headers"])
                if "reset_in" in fault:
                    headers["_reset_in"] = fault["reset_in"]
                elif fault["status"] == 401:
                    headers.setdefault("WWW-Authenticate", _www_authenticate())
                return _Reply(fault["status"], fault["body"], headers)
        return None

    def _rate_headers(self, method: str, path: str, caller: str,
                      reset_in: float | None) -> dict[str, str]:
        now = self.clock()
        if reset_in is not None:  # an injected 429
            return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": _iso_us(now + timedelta(seconds=reset_in))}
        if method == "POST" and path == "/api/v1/statuses":
            bucket = "statuses"
        elif path.startswith(("/api/v1/media", "/api/v2/media")) and method == "POST":
            bucket = "media"
        elif method == "DELETE" and path.startswith("/api/v1/statuses/"):
            bucket = "deletes"
        else:
            bucket = "api"
        limit, period = RATE_BUCKETS[bucket]
        epoch = now.timestamp()
        window = int(epoch) // period
        key = (caller, bucket, window)
        self._rate_counts[key] = self._rate_counts.get(key, 0) + 1
        reset = now + timedelta(seconds=period - int(epoch) % period)
        return {"X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(limit - self._rate_counts[key], 0)),
                "X-RateLimit-Reset": _iso_us(reset)}

    def _route(self, method: str, path: str, query: dict, headers: CaseInsensitiveDict,
               body: bytes, caller: str) -> _Reply:
        if method == "GET" and path == "/api/v2/instance":
            if not self.instance_v2:
                raise _Fail(404, "Not Found")
            return _Reply(200, self._instance_v2())
        if method == "GET" and path == "/api/v1/instance":
            return _Reply(200, self._instance_v1())
        form = _parse_body(headers.get("Content-Type", ""), body)
        answered = self.oauth.handle(method, path, query, form, headers)
        if answered is not None:
            return _Reply(*answered)
        scopes = self.oauth.token_scopes(caller) if caller != self.token else None
        if (caller != self.token and scopes is None) or self._revoked:
            raise _Fail(401, INVALID_TOKEN, {"WWW-Authenticate": _www_authenticate()})
        parts = path.strip("/").split("/")
        if scopes is not None and (need := required_scope(method, parts)) \
                and not granted(scopes, need):
            raise _Fail(403, OUTSIDE_SCOPES)
        match (method, parts):
            case ("GET", ["api", "v1", "accounts", "verify_credentials"]):
                return _Reply(200, self._account(credentials=True))
            case ("GET", ["api", "v1", "accounts", account_id, "statuses"]):
                return self._account_statuses(account_id, query)
            case ("POST", ["api", "v1", "statuses"]):
                return self._create_status(form, headers, caller)
            case ("GET", ["api", "v1", "statuses", status_id]):
                return _Reply(200, _public(self._find(status_id)))
            case ("DELETE", ["api", "v1", "statuses", status_id]):
                return self._delete(status_id)
            case ("POST", ["api", "v1", "statuses", status_id, "reblog"]):
                return self._reblog(status_id, form)
            case ("POST", ["api", ("v1" | "v2") as version, "media"]):
                return self._upload(form, synchronous=version == "v1")
            case ("GET", ["api", "v1", "media", media_id]):
                return self._media_status(media_id)
            case ("PUT", ["api", "v1", "media", media_id]):
                return self._media_update(media_id, form)
            case ("GET", ["api", "v2", "search"]):
                return self._search(query)
            case ("GET", ["api", "v1", "timelines", "tag", tag]):
                return self._tag_timeline(tag, query)
            case ("GET", ["api", "v1", "notifications"]):
                return self._notifications(query)
            case ("GET", ["api", "v1", ("blocks" | "mutes") as which]):
                return _Reply(200, list(self.blocked if which == "blocks" else self.muted))
        raise _Fail(404, "Not Found")

    # -- statuses ----------------------------------------------------------------------------
    def _create_status(self, form: dict, headers: CaseInsensitiveDict, caller: str) -> _Reply:
        key = headers.get("Idempotency-Key")
        if key and (caller, key) in self._idempotency:
            status_id, at = self._idempotency[(caller, key)]
            if self.clock() - at < timedelta(hours=1):  # Mastodon keeps keys for an hour
                return _Reply(200, _public(self._find(status_id)), delay=self._next_timeout())
        text = str(_one(form, "status") or "").strip()
        spoiler = str(_one(form, "spoiler_text") or "").strip()
        visibility = str(_one(form, "visibility") or "public")
        language = _one(form, "language")
        media_ids = [str(m) for m in _many(form, "media_ids")]
        if visibility not in ("public", "unlisted", "private", "direct"):
            raise _Fail(422, f"'{visibility}' is not a valid visibility")
        if len(media_ids) > self.max_media_attachments:
            raise _Fail(422, f"Cannot attach more than {self.max_media_attachments} files")
        media = []
        for media_id in media_ids:
            item = self.media.get(media_id)
            if item is None or item["_status_id"] is not None:
                raise _Fail(422, f"Media {media_id} not found or already attached to "
                                 "another post")
            if item["url"] is None:
                raise _Fail(422, "Cannot attach files that have not finished processing. "
                                 "Try again in a moment!")
            media.append(item)
        if not text and not media:
            raise _Fail(422, "Validation failed: Text can't be blank")
        if mastodon_length(spoiler + text, self.characters_reserved_per_url) \
                > self.max_characters:
            raise _Fail(422, f"Validation failed: Text character limit of "
                             f"{self.max_characters} exceeded")
        now = self.clock()
        status_id = self._new_id(now)
        content, mentions, tags = self._render(text)
        sensitive = _truthy(_one(form, "sensitive")) or bool(spoiler)
        for item in media:
            item["_status_id"] = status_id
        status = {
            "id": status_id, "created_at": _iso(now), "in_reply_to_id": None,
            "in_reply_to_account_id": None, "sensitive": sensitive, "spoiler_text": spoiler,
            "visibility": visibility,
            "language": language if isinstance(language, str) and language else "en",
            "uri": f"{self.public_base}/ap/users/{self.account_id}/statuses/{status_id}",
            "url": f"{self.public_base}/@{self.username}/{status_id}",
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
            "quotes_count": 0, "edited_at": None, "favourited": False, "reblogged": False,
            "muted": False, "bookmarked": False, "pinned": False, "content": content,
            "filtered": [], "reblog": None,
            "application": {"name": "crier", "website": None},
            "account": self._account(), "media_attachments": [_public(m) for m in media],
            "mentions": mentions, "tags": tags, "emojis": [], "tagged_collections": [],
            "quote": None, "card": None, "poll": None,
            "quote_approval": {"automatic": ["public"], "manual": [],
                               "current_user": "automatic"},
            "text": text, "idempotency_key": key, "media_ids": media_ids,
        }
        self.statuses.append(status)
        if key:
            self._idempotency[(caller, key)] = (status_id, now)
        return _Reply(200, _public(status), delay=self._next_timeout())

    def _next_timeout(self) -> float:
        return self._timeouts.pop(0) if self._timeouts else 0.0

    def _find(self, status_id: str) -> dict:
        for status in itertools.chain(self.statuses, self.reblogs, self.remote, self.others):
            if status["id"] == status_id:
                return status
        raise _Fail(404, "Record not found")

    def _delete(self, status_id: str) -> _Reply:
        """DELETE /api/v1/statuses/:id: only our own statuses and reblogs (Mastodon looks the
        id up in `current_account.statuses`, so anyone else's is a 404 "Record not found",
        as is one already deleted); the reblogs of a deleted status go with it."""
        status = next((s for s in itertools.chain(self.statuses, self.reblogs)
                       if s["id"] == status_id), None)
        if status is None:
            raise _Fail(404, "Record not found")
        (self.statuses if status in self.statuses else self.reblogs).remove(status)
        self.reblogs[:] = [r for r in self.reblogs
                           if (r.get("reblog") or {}).get("id") != status_id]
        out = _public(status)
        del out["content"]  # Mastodon answers a delete with the source text, for redrafting
        out["text"] = status.get("text", "")
        return _Reply(200, out)

    def _reblog(self, status_id: str, form: dict) -> _Reply:
        original = self._find(status_id)
        if original.get("reblog"):
            original = self._find(original["reblog"]["id"])
        for existing in self.reblogs:  # Mastodon's ReblogService: boosting twice is a no-op
            if existing["reblog"]["id"] == original["id"]:
                return _Reply(200, existing)
        original["reblogged"] = True
        original["reblogs_count"] += 1
        now = self.clock()
        reblog_id = self._new_id(now)
        reblog = {**_public(original), "id": reblog_id, "created_at": _iso(now),
                  "uri": f"{self.public_base}/ap/users/{self.account_id}/statuses/"
                         f"{reblog_id}/activity",
                  "url": None, "content": "", "media_attachments": [], "mentions": [],
                  "tags": [], "visibility": str(_one(form, "visibility") or "public"),
                  "reblog": _public(original), "reblogged": True}
        self.reblogs.append(reblog)
        return _Reply(200, reblog)

    # -- other people (community tests) -------------------------------------------------------
    def other_account(self, acct: str) -> dict:
        """An account of someone else, "user" (local) or "user@host" (remote)."""
        user, _, host = acct.partition("@")
        host = host or urlsplit(self.public_base).hostname
        aid = str(200000 + sum(map(ord, acct)) * 7 % 99991)
        return {"id": aid, "username": user, "acct": acct, "display_name": user,
                "url": f"https://{host}/@{user}", "uri": f"https://{host}/users/{user}",
                "bot": False, "locked": False, "group": False, "note": "", "fields": [],
                "emojis": [], "followers_count": 0, "following_count": 0,
                "statuses_count": 1, "created_at": "2024-01-01T00:00:00.000Z",
                "avatar": "", "avatar_static": "", "header": "", "header_static": ""}

    def add_post(self, acct: str, text: str, *, tags: tuple[str, ...] = (),
                 mention: bool = False, sensitive: bool = False, spoiler: str = "",
                 visibility: str = "public", in_reply_to: str | None = None,
                 reply_to_account: str | None = None) -> dict:
        """Someone else's status on this instance's federated view: tagged, or mentioning
        our account (then also a mention notification)."""
        with self._lock:
            now = self.clock()
            sid = self._new_id(now)
            account = self.other_account(acct)
            host = urlsplit(account["url"]).hostname
            status = {
                "id": sid, "created_at": _iso(now), "in_reply_to_id": in_reply_to,
                "in_reply_to_account_id": reply_to_account, "sensitive": sensitive,
                "spoiler_text": spoiler, "visibility": visibility, "language": "en",
                "uri": f"https://{host}/users/{account['username']}/statuses/{sid}",
                "url": f"https://{host}/@{account['username']}/{sid}",
                "replies_count": 0, "reblogs_count": 0, "favourites_count": 0,
                "content": f"<p>{html.escape(text)}</p>", "reblog": None,
                "account": account, "media_attachments": [],
                "mentions": ([{"id": self.account_id, "username": self.username,
                               "acct": self.username, "url": f"{self.public_base}/@"
                                                             f"{self.username}"}]
                             if mention else []),
                "tags": [{"name": t.lower(), "url": f"{self.public_base}/tags/{t.lower()}"}
                         for t in tags],
                "emojis": [], "card": None, "poll": None, "reblogged": False,
                "favourited": False, "bookmarked": False, "muted": False, "pinned": False}
            self.others.append(status)
            if mention:
                self.notifications.append({"id": self._new_id(now), "type": "mention",
                                           "created_at": _iso(now), "account": account,
                                           "status": status})
            return status

    def block(self, acct: str) -> None:
        self.blocked.append(self.other_account(acct))

    def mute(self, acct: str) -> None:
        self.muted.append(self.other_account(acct))

    def _tag_timeline(self, tag: str, query: dict) -> _Reply:
        wanted = tag.lower()
        items = [s for s in self.others + self.statuses
                 if s["visibility"] == "public"
                 and any(t["name"] == wanted for t in s.get("tags") or [])]
        return _Reply(200, self._page(items, query))

    def _notifications(self, query: dict) -> _Reply:
        types = query.get("types[]") or query.get("types") or []
        items = [n for n in self.notifications if not types or n["type"] in types]
        return _Reply(200, self._page(items, query))

    @staticmethod
    def _page(items: list[dict], query: dict) -> list[dict]:
        items = sorted(items, key=lambda s: int(s["id"]), reverse=True)
        since = _q(query, "since_id") or _q(query, "min_id")
        if since:
            items = [s for s in items if int(s["id"]) > int(since)]
        return [_public(s) for s in items[:min(int(_q(query, "limit") or 20), 40)]]

    def _fetch_remote(self, url: str) -> list[dict]:
        for peer in self.peers:
            for status in list(peer.statuses):
                if url in (status["url"], status["uri"]):
                    copy = {**status, "id": self._new_id(self.clock()), "reblogs_count": 0,
                            "reblogged": False}
                    self.remote.append(copy)
                    return [copy]
        return []

    def _account_statuses(self, account_id: str, query: dict) -> _Reply:
        if account_id != self.account_id:
            raise _Fail(404, "Record not found")
        items = list(self.statuses)
        if _truthy(_q(query, "exclude_reblogs")) is not True:
            items += self.reblogs
        if _truthy(_q(query, "only_media")):
            items = [s for s in items if s["media_attachments"]]
        items.sort(key=lambda s: int(s["id"]), reverse=True)
        for name, keep in (("max_id", lambda i, v: i < v), ("since_id", lambda i, v: i > v),
                           ("min_id", lambda i, v: i > v)):
            value = _q(query, name)
            if value:
                items = [s for s in items if keep(int(s["id"]), int(value))]
        limit = min(int(_q(query, "limit") or 20), 40)
        if _q(query, "min_id"):  # min_id pages upwards from the given id
            items = items[-limit:]
        page = items[:limit]
        headers = {}
        if page:
            base = f"{self.url}/api/v1/accounts/{account_id}/statuses?limit={limit}"
            headers["Link"] = (f'<{base}&max_id={page[-1]["id"]}>; rel="next", '
                               f'<{base}&min_id={page[0]["id"]}>; rel="prev"')
        return _Reply(200, [_public(s) for s in page], headers)

    def _search(self, query: dict) -> _Reply:
        q = (_q(query, "q") or "").strip()
        found = []
        if _truthy(_q(query, "resolve")) and re.match(r"https?://", q):
            found = [_public(s) for s in itertools.chain(self.statuses, self.reblogs,
                                                         self.remote)
                     if q in (s["url"], s["uri"])]
            if not found:
                found = [_public(s) for s in self._fetch_remote(q)]
        kind = _q(query, "type")
        return _Reply(200, {"accounts": [], "statuses": found if kind in (None, "statuses")
                            else [], "hashtags": []})

    def _render(self, text: str) -> tuple[str, list[dict], list[dict]]:
        """Mastodon's TextFormatter: escaped text, links, mentions, hashtags, <p> and <br />."""
        entities: list[tuple[int, int, str]] = []
        mentions, tags = [], []
        for start, end in _url_spans(text):
            entities.append((start, end, _link_html(text[start:end])))

        def free(a: int, b: int) -> bool:
            return all(b <= s or a >= e for s, e, _ in entities)

        for m in MENTION_RE.finditer(text):
            if free(m.start(), m.end()):
                user, _, host = m.group(1).partition("@")
                local = not host or host == self.domain
                href = f"{self.public_base}/@{user}" if local else f"https://{host}/@{user}"
                entities.append((m.start(), m.end(),
                                 f'<span class="h-card" translate="no"><a href="{_h(href)}" '
                                 f'class="u-url mention">@<span>{_h(user)}</span></a></span>'))
                mentions.append({"id": str(100 + len(mentions)), "username": user,
                                 "url": href, "acct": user if local else m.group(1)})
        for m in HASHTAG_RE.finditer(text):
            if free(m.start(), m.end()):
                href = f"{self.public_base}/tags/{m.group(1)}"
                entities.append((m.start(), m.end(),
                                 f'<a href="{_h(href)}" class="mention hashtag" rel="tag">'
                                 f'#<span>{_h(m.group(1))}</span></a>'))
                tags.append({"name": m.group(1).lower(), "url": href})
        out, pos = [], 0
        for start, end, markup in sorted(entities):
            out += [_h(text[pos:start]), markup]
            pos = end
        out.append(_h(text[pos:]))
        paragraphs = re.split(r"\n\n+", "".join(out).replace("\r\n", "\n"))
        content = "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs)
        return content, mentions, tags

    # -- media -------------------------------------------------------------------------------
    def _upload(self, form: dict, *, synchronous: bool) -> _Reply:
        file = form.get("file")
        if not isinstance(file, _File):
            raise _Fail(422, "Validation failed: File can't be blank")
        if file.content_type not in SUPPORTED_MIME_TYPES:
            raise _Fail(422, "Validation failed: File content type is invalid, File is invalid")
        kind = file.content_type.split("/")[0]
        if kind == "image" and len(file.data) > self.image_size_limit:
            raise _Fail(422, "Validation failed: File file size must be less than "
                             f"{self.image_size_limit // (1024 * 1024)} MB")
        description = _one(form, "description")
        self._check_description(description)
        size = _image_size(file.data, file.content_type)
        if kind == "image" and size is None:
            raise _Fail(422, "Validation failed: File has contents that are not what they "
                             "are reported to be")
        media_id = self._new_id(self.clock())
        base = f"{self.public_base}/system/media_attachments/files/{media_id}"
        ext = file.content_type.split("/")[1]
        meta: dict[str, Any] = {}
        if size:
            w, h = size
            meta = {"original": {"width": w, "height": h, "size": f"{w}x{h}",
                                 "aspect": w / h if h else 1.0},
                    "small": {"width": w, "height": h, "size": f"{w}x{h}",
                              "aspect": w / h if h else 1.0}}
        focus = _one(form, "focus")
        if focus:
            x, _, y = str(focus).partition(",")
            meta["focus"] = {"x": float(x), "y": float(y or 0)}
        item = {"id": media_id, "type": {"image": "image", "video": "video",
                                         "audio": "audio"}.get(kind, "unknown"),
                "url": None, "preview_url": f"{base}/small/{media_id}.{ext}",
                "remote_url": None, "preview_remote_url": None, "text_url": None,
                "meta": meta, "description": description or None,
                "blurhash": "UGC~-#M{0JfkNFofR%M{IURj%Mt7E0oM%MR*",
                "_url": f"{base}/original/{media_id}.{ext}", "_data": file.data,
                "_polls_left": 0 if synchronous else self.media_processing_polls,
                "_status_id": None}
        self.media[media_id] = item
        if item["_polls_left"] <= 0:
            item["url"] = item["_url"]
            return _Reply(200, _public(item))
        return _Reply(202, _public(item))

    def _check_description(self, description: Any) -> None:
        if description and len(str(description)) > self.description_limit:
            raise _Fail(422, "Validation failed: Description is too long (maximum is "
                             f"{self.description_limit} characters)")

    def _unattached(self, media_id: str) -> dict:
        item = self.media.get(media_id)
        if item is None or item["_status_id"] is not None:
            raise _Fail(404, "Record not found")
        return item

    def _media_status(self, media_id: str) -> _Reply:
        item = self._unattached(media_id)
        if item["url"] is None:
            item["_polls_left"] -= 1
            if item["_polls_left"] >= 0:
                return _Reply(206, _public(item))
            item["url"] = item["_url"]
        return _Reply(200, _public(item))

    def _media_update(self, media_id: str, form: dict) -> _Reply:
        item = self._unattached(media_id)
        if "description" in form:
            self._check_description(_one(form, "description"))
            item["description"] = _one(form, "description") or None
        return _Reply(200, _public(item))

    # -- documents ---------------------------------------------------------------------------
    def _new_id(self, now: datetime) -> str:
        """A Mastodon snowflake: milliseconds << 16, plus a sequence; always increasing."""
        candidate = (int(now.timestamp() * 1000) << 16) + next(self._seq) % 65536
        self._last_id = max(candidate, self._last_id + 1)
        return str(self._last_id)

    def _account(self, *, credentials: bool = False) -> dict:
        base = self.public_base
        account = {
            "id": self.account_id, "username": self.username, "acct": self.username,
            "display_name": "crier test", "locked": False, "bot": True, "discoverable": None,
            "indexable": False, "group": False, "created_at": "2026-01-01T00:00:00.000Z",
            "note": "", "url": f"{base}/@{self.username}",
            "uri": f"{base}/ap/users/{self.account_id}",
            "avatar": f"{base}/avatars/original/missing.png",
            "avatar_static": f"{base}/avatars/original/missing.png",
            "avatar_description": "", "header": f"{base}/headers/original/missing.png",
            "header_static": f"{base}/headers/original/missing.png",
            "header_description": "", "followers_count": 0, "following_count": 0,
            "statuses_count": len(self.statuses), "last_status_at": None,
            "hide_collections": None, "show_media": True, "show_media_replies": True,
            "show_featured": True, "noindex": False,
            "feature_approval": {"automatic": [], "manual": [], "current_user": "denied"},
            "emojis": [], "roles": [], "fields": []}
        if self.statuses:
            account["last_status_at"] = self.statuses[-1]["created_at"][:10]
        if credentials:
            account["source"] = {
                "privacy": "public", "sensitive": False, "language": None, "note": "",
                "fields": [], "follow_requests_count": 0, "hide_collections": None,
                "discoverable": None, "indexable": False, "attribution_domains": [],
                "quote_policy": "public"}
            account["role"] = {"id": "-99", "name": "", "permissions": "65536", "color": "",
                               "highlighted": False, "collection_limit": 10}
        return account

    def _media_limits(self) -> dict:
        return {"supported_mime_types": SUPPORTED_MIME_TYPES,
                "image_size_limit": self.image_size_limit, "image_matrix_limit": 33177600,
                "video_size_limit": 103809024, "video_frame_rate_limit": 120,
                "video_matrix_limit": 8294400}

    def _polls(self) -> dict:
        return {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
                "max_expiration": 2629746}

    def _statuses_config(self) -> dict:
        return {"max_characters": self.max_characters,
                "max_media_attachments": self.max_media_attachments,
                "characters_reserved_per_url": self.characters_reserved_per_url}

    def _instance_v2(self) -> dict:
        base = self.url
        return {
            "domain": self.domain, "title": "crier test instance", "version": self.version,
            "source_url": "https://github.com/mastodon/mastodon", "description": "",
            "usage": {"users": {"active_month": 1}},
            "thumbnail": {"url": f"{base}/packs/images/preview.png", "description": ""},
            "icon": [], "languages": ["en"],
            "configuration": {
                "urls": {"streaming": f"ws://{urlsplit(base).netloc}", "status": None,
                         "about": f"{base}/about", "privacy_policy": f"{base}/privacy-policy",
                         "terms_of_service": None},
                "vapid": {"public_key": "BAhxXyHfAoMqrZECjRI56F5QrE4ynVlkZFMdKSpTIsWRNoWUVgut"
                                        "-Bnz2xsMSwiN4AF0b4I7ixF24OwiicOJivw="},
                "accounts": {"max_display_name_length": 40, "max_note_length": 500,
                             "max_avatar_description_length": 150,
                             "max_header_description_length": 150, "max_featured_tags": 10,
                             "max_pinned_statuses": 5, "max_profile_fields": 4,
                             "profile_field_name_limit": 255,
                             "profile_field_value_limit": 255},
                "statuses": self._statuses_config(),
                "media_attachments": {"description_limit": self.description_limit,
                                      **self._media_limits()},
                "polls": self._polls(), "translation": {"enabled": False},
                "timelines_access": {
                    k: {"local": "public", "remote": "public"}
                    for k in ("live_feeds", "hashtag_feeds", "trending_link_feeds")},
                "limited_federation": False},
            "registrations": {"enabled": False, "approval_required": False,
                              "reason_required": False, "message": None, "min_age": None,
                              "url": None},
            "api_versions": {"mastodon": 11}, "wrapstodon": None,
            "contact": {"email": "", "account": None}, "rules": []}

    def _instance_v1(self) -> dict:
        base = self.url
        doc: dict[str, Any] = {
            "uri": self.domain, "title": "crier test instance", "short_description": "",
            "description": "", "email": "", "version": self.version,
            "urls": {"streaming_api": f"ws://{urlsplit(base).netloc}"},
            "stats": {"user_count": 1, "status_count": len(self.statuses), "domain_count": 1},
            "thumbnail": f"{base}/packs/images/preview.png", "languages": ["en"],
            "registrations": False, "approval_required": False, "invites_enabled": False,
            "configuration": {"accounts": {"max_featured_tags": 10},
                              "statuses": self._statuses_config(),
                              "media_attachments": self._media_limits(),
                              "polls": self._polls()},
            "contact_account": None, "rules": []}
        if not self.v1_configuration:
            del doc["configuration"]
        if self.max_toot_chars is not None:  # Pleroma and glitch-soc style
            doc["max_toot_chars"] = self.max_toot_chars
        return doc


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: MastodonServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle + delayed ACK cost
        # 40 ms on every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.server_state._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def send(self, reply: _Reply) -> None:
        body = reply.body
        content_type = "application/json; charset=utf-8"
        if isinstance(body, str):
            body, content_type = body.encode(), "text/html; charset=utf-8"
        elif not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(reply.status, REASONS.get(reply.status))
            headers = {"Content-Type": content_type, "Cache-Control": "private, no-store",
                       "Vary": "Authorization, Origin", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client timed out and went away
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.reply = _Reply(status, {"error": message}, headers)


class _File:
    def __init__(self, filename: str, content_type: str, data: bytes):
        self.filename, self.content_type, self.data = filename, content_type, data


def _parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Form, JSON or multipart bodies to {name: [values]} (files as _File)."""
    if not body:
        return {}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        return {k: v if isinstance(v, list) else [v] for k, v in data.items()}
    if content_type.startswith("multipart/form-data"):
        boundary = re.search(r'boundary="?([^";]+)"?', content_type)
        return _parse_multipart(body, boundary.group(1).encode()) if boundary else {}
    return parse_qs(body.decode(), keep_blank_values=True)


def _parse_multipart(body: bytes, boundary: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        head_text = head.decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', head_text)
        if not name:
            continue
        filename = re.search(r'filename="([^"]*)"', head_text)
        if filename:
            ctype = re.search(r"Content-Type:\s*([^\r\n;]+)", head_text, re.IGNORECASE)
            out[name.group(1)] = _File(filename.group(1),
                                       ctype.group(1).strip() if ctype else "", data)
        else:
            out.setdefault(name.group(1), []).append(data.decode())
    return out


def _one(form: dict, name: str) -> Any:
    value = form.get(name)
    return value[0] if isinstance(value, list) and value else value


def _many(form: dict, name: str) -> list:
    value = form.get(name + "[]", form.get(name)) or []
    return value if isinstance(value, list) else [value]


def _q(query: dict, name: str) -> str | None:
    values = query.get(name) or query.get(name + "[]")
    return values[0] if values else None


def _truthy(value: Any) -> bool | None:
    if value is None:
        return None
    return str(value).lower() in ("1", "true", "yes", "on")


def _public(doc: dict) -> dict:
    """The API view of a stored status or media: without the server's private keys."""
    return {k: v for k, v in doc.items() if k not in PRIVATE_KEYS and not k.startswith("_")}


def _link_html(url: str) -> str:
    """Mastodon's TextFormatter.shortened_link."""
    prefix = re.match(r"https?://(?:www\.)?", url).group(0)
    rest = url[len(prefix):]
    display, suffix = rest[:30], rest[30:]
    return (f'<a href="{_h(url)}" target="_blank" rel="nofollow noopener" translate="no">'
            f'<span class="invisible">{_h(prefix)}</span>'
            f'<span class="{"ellipsis" if suffix else ""}">{_h(display)}</span>'
            f'<span class="invisible">{_h(suffix)}</span></a>')


def _image_size(data: bytes, content_type: str) -> tuple[int, int] | None:
    if content_type == "image/png":
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    if not content_type.startswith("image/"):
        return None
    try:
        import io

        from PIL import Image
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _iso_us(dt: datetime) -> str:
    """Rate-limit resets carry microseconds, like Mastodon's: 2026-08-01T15:00:00.627625Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _www_authenticate() -> str:
    return (f'Bearer realm="Doorkeeper", error="invalid_token", '
            f'error_description="{INVALID_TOKEN}"')
