"""A local HTTP server that follows Meta's documented Threads API contract, for tests.

The documented example answers it is checked against are in `tests/data/threads/` (each with
the page it comes from); `tests/test_threads_contract.py` compares shapes.

    POST   /v1.0/{user-id}/threads              {"id": container}    media_type TEXT|IMAGE|
                                                 CAROUSEL, text, image_url, alt_text,
                                                 link_attachment, is_carousel_item, children
    POST   /v1.0/{user-id}/threads_publish      {"id": media}        creation_id=
    GET    /v1.0/{container-id}?fields=status,error_message   {"status", "id"[, error_message]}
    GET    /v1.0/{media-id}?fields=id,text,permalink,...       one post
    GET    /v1.0/me?fields=id,username          (or /{user-id})
    GET    /v1.0/{user-id}/threads?fields=...&since=&until=&limit=&after=   newest first,
                                                 {"data": [...], "paging": {"cursors": ...}}
    DELETE /v1.0/{media-id}                     {"success": true, "deleted_id": id}
    GET    /v1.0/{user-id}/threads_publishing_limit?fields=quota_usage,config
    GET    /refresh_access_token?grant_type=th_refresh_token&access_token=   (unversioned,
                                                 as documented; a version prefix works too)

As documented: text up to 500 characters, emoji counted as their UTF-8 bytes (the publishing
reference); at most 5 distinct links per post, counting link_attachment when it differs
(THREADS_API__LINK_LIMIT_EXCEEDED at container creation); alt_text up to 1,000 characters;
link_attachment only on TEXT posts; a container expires 24 hours after creation (EXPIRED); a
profile publishes at most 250 posts in a moving 24 hours (enforced on threads_publish);
long-lived tokens last 60 days and refresh only when at least 24 hours old and unexpired.
Errors have the Graph API shape {"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}; every answer carries `x-app-usage` ({"call_count", "total_cputime",
"total_time"}, percentages) and `x-fb-trace-id`; a throttled answer adds
`x-business-use-case-usage` with `estimated_time_to_regain_access` (minutes).

The token comes as the `access_token` query or form parameter (as documented) or as an
`Authorization: Bearer` header. Times follow the injected `clock`.

Fault injection (thread-safe, counted down per matching request; routes: "create", "publish",
"status", "media", "me", "list", "delete", "refresh", "limit"):

    srv.fail_next(route, status=500, count=1, error=None, headers=None)  # nothing happens
    srv.commit_then_fail_next(route="publish", status=500)   # it happens, then the error
    srv.timeout_after_commit_next(route="publish", delay=2.0) # it happens, answered late
    srv.rate_limit_next(route, code=4, minutes=15)
    srv.processing_polls = 2      # new IMAGE/CAROUSEL containers answer IN_PROGRESS twice
    srv.error_next_container("UNKNOWN")   # the next container ends in ERROR
    srv.revoke(token) / srv.issue_token(token, issued_at=, expires_in=)

State: srv.containers (id -> dict), srv.posts (list, oldest first), srv.tokens,
srv.requests (method, route, path, params, status, response).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEXT_LIMIT = 500                 # developers.facebook.com/docs/threads/create-posts
ALT_TEXT_LIMIT = 1000            # reference/publishing: alt_text maximum length
LINK_LIMIT = 5                   # create-posts/text-attachments: THREADS_API__LINK_LIMIT_EXCEEDED
CAROUSEL_MIN, CAROUSEL_MAX = 2, 20
QUOTA_TOTAL, QUOTA_DURATION = 250, 86400   # overview#rate-limiting, threads_publishing_limit
TOKEN_LIFETIME = timedelta(days=60)        # get-started/long-lived-tokens
REFRESH_MIN_AGE = timedelta(hours=24)
CONTAINER_TTL = timedelta(hours=24)        # troubleshooting: EXPIRED after 24 hours
FIRST_ID = 17889615691921648               # the documented container id's shape
_URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*"
                  r"\.(?:com|net|org|io|fm|app|dev|social|co|uk|de)\b(?:/[^\s<>\"]*)?")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D"
                    "\U000E0020-\U000E007F]")


def threads_length(text: str) -> int:
    """Characters as the publishing reference counts them: emoji count their UTF-8 bytes."""
    return sum(len(ch.encode()) if _EMOJI.match(ch) else 1 for ch in text)


def links_in(text: str, attachment: str | None) -> set[str]:
    """The distinct links of a post as the text-attachments page counts them."""
    found = {m.group(0).rstrip(".,;:!?)").lower() for m in _URL.finditer(text or "")}
    if attachment:
        found.add(attachment.rstrip("/").lower())
    return {u.removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
            for u in found}


def graph_error(message: str, code: int, *, type_: str = "OAuthException",
                subcode: int | None = None, user_msg: str | None = None) -> dict[str, Any]:
    """The Graph API error body (graph-api/guides/error-handling)."""
    err: dict[str, Any] = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if user_msg:
        err["error_user_msg"] = user_msg
    err["fbtrace_id"] = "A" + format(abs(hash((message, time.monotonic()))) % 10**10, "010d")
    return {"error": err}


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class _Fault:
    def __init__(self, kind: str, route: str, count: int, **extra: Any):
        self.kind, self.route, self.count, self.extra = kind, route, count, extra


class ThreadsServer:
    """A fake graph.threads.net on 127.0.0.1:<free port>, served from a background thread."""

    def __init__(self, *, access_token: str = "THREADS-TOKEN", user_id: str = "1234567",
                 username: str = "tbsocialist", name: str = "The Socialist Program",
                 clock: Callable[[], datetime] | None = None,
                 token_issued_at: datetime | None = None, processing_polls: int = 0):
        self.user_id, self.username, self.name = user_id, username, name
        self.clock = clock or (lambda: datetime.now(UTC))
        self.processing_polls = processing_polls
        self.lock = threading.RLock()
        self.tokens: dict[str, dict[str, Any]] = {}
        self.containers: dict[str, dict[str, Any]] = {}
        self.posts: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.calls = 0
        self._faults: list[_Fault] = []
        self._error_next: str | None = None
        self._ids = itertools.count(FIRST_ID, 7919)
        self._refreshes = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.issue_token(access_token, issued_at=token_issued_at)

    # -- lifecycle -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ThreadsServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ThreadsServer:
        server = self

        class Handler(_Handler):
            srv = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="threads-fake-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ThreadsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- tokens and faults ---------------------------------------------------------------------
    def issue_token(self, token: str, *, issued_at: datetime | None = None,
                    expires_in: timedelta = TOKEN_LIFETIME) -> None:
        at = issued_at or self.clock()
        with self.lock:
            self.tokens[token] = {"issued_at": at, "expires_at": at + expires_in,
                                  "revoked": False}

    def revoke(self, token: str) -> None:
        with self.lock:
            self.tokens[token]["revoked"] = True

    def fail_next(self, route: str, status: int = 500, count: int = 1,
                  error: dict | None = None, headers: dict[str, str] | None = None) -> None:
        """The next `count` requests to `route` get `status` and do nothing."""
        with self.lock:
            self._faults.append(_Fault("fail", route, count, status=status, error=error,
                                       headers=headers or {}))

    def commit_then_fail_next(self, route: str = "publish", status: int = 500,
                              count: int = 1) -> None:
        """The next `count` requests to `route` take effect, then answer `status`."""
        with self.lock:
            self._faults.append(_Fault("commit_fail", route, count, status=status))

    def timeout_after_commit_next(self, route: str = "publish", delay: float = 2.0,
                                  count: int = 1) -> None:
        """The next `count` requests to `route` take effect; the answer comes `delay` s late
        (longer than the client's timeout: the client cannot know it happened)."""
        with self.lock:
            self._faults.append(_Fault("late", route, count, delay=delay))

    def rate_limit_next(self, route: str, *, code: int = 4, minutes: int = 15,
                        count: int = 1) -> None:
        with self.lock:
            self._faults.append(_Fault("rate", route, count, code=code, minutes=minutes))

    def error_next_container(self, message: str = "UNKNOWN") -> None:
        with self.lock:
            self._error_next = message

    def _take(self, route: str) -> _Fault | None:
        with self.lock:
            for f in self._faults:
                if f.route == route and f.count > 0:
                    f.count -= 1
                    if f.count == 0:
                        self._faults.remove(f)
                    return f
        return None

    def quota_usage(self) -> int:
        since = self.clock() - timedelta(seconds=QUOTA_DURATION)
        with self.lock:
            return sum(1 for p in self.posts if p["published_at"] > since)

    # -- request handling ----------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any, float]:
        """(status, headers, body, delay before answering)."""
        split = urlsplit(target)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        if body and "application/x-www-form-urlencoded" in headers.get("content-type", ""):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif body and "json" in headers.get("content-type", ""):
            try:
                params.update({k: v if isinstance(v, str) else json.dumps(v)
                               for k, v in json.loads(body).items()})
            except (ValueError, AttributeError):
                pass
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", split.path).rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        route = self._route(method, parts)
        with self.lock:
            self.calls += 1
            usage = min(100, self.calls)
        rate = {"x-app-usage": json.dumps({"call_count": usage, "total_cputime": usage // 2,
                                           "total_time": usage // 2}),
                "x-fb-trace-id": f"T{self.calls:09d}"}
        record = {"method": method, "route": route, "path": split.path,
                  "params": {k: ("***" if k == "access_token" else v)
                             for k, v in params.items()}, "status": None}
        with self.lock:
            self.requests.append(record)
        fault = self._take(route)
        if fault is not None and fault.kind == "fail":
            status = fault.extra["status"]
            err = fault.extra["error"] or graph_error(
                "An unexpected error has occurred. Please retry your request later.", 2,
                type_="OAuthException")
            return self._done(record, status, {**rate, **fault.extra["headers"]}, err)
        if fault is not None and fault.kind == "rate":
            buc = {self.user_id: [{"type": "threads", "call_count": 100, "total_cputime": 40,
                                   "total_time": 40,
                                   "estimated_time_to_regain_access": fault.extra["minutes"]}]}
            rate = {**rate, "x-app-usage": json.dumps({"call_count": 100, "total_cputime": 40,
                                                       "total_time": 40}),
                    "x-business-use-case-usage": json.dumps(buc)}
            return self._done(record, 400, rate, graph_error(
                "Application request limit reached", fault.extra["code"]))
        token = params.pop("access_token", None)
        auth = headers.get("authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        problem = self._check_token(token)
        if problem is not None:
            return self._done(record, 400 if token else 400, rate, problem)
        try:
            status, out = self._dispatch(route, method, parts, params, token)
        except (KeyError, ValueError) as e:
            status, out = 400, graph_error(f"Invalid parameter: {e}", 100)
        delay = 0.0
        if fault is not None and fault.kind == "commit_fail" and status < 400:
            status, out = fault.extra["status"], graph_error(
                "An unexpected error has occurred. Please retry your request later.", 2)
        if fault is not None and fault.kind == "late":
            delay = fault.extra["delay"]
        return self._done(record, status, rate, out, delay)

    def _done(self, record: dict, status: int, headers: dict[str, str], out: Any,
              delay: float = 0.0) -> tuple[int, dict[str, str], Any, float]:
        with self.lock:
            record.update(status=status, response=out)
        return status, headers, out, delay

    def _route(self, method: str, parts: list[str]) -> str:
        if parts == ["refresh_access_token"]:
            return "refresh"
        if len(parts) == 2 and parts[1] == "threads":
            return "create" if method == "POST" else "list"
        if len(parts) == 2 and parts[1] == "threads_publish":
            return "publish"
        if len(parts) == 2 and parts[1] == "threads_publishing_limit":
            return "limit"
        if len(parts) == 1:
            if method == "DELETE":
                return "delete"
            if parts[0] in ("me", self.user_id):
                return "me"
            return "status" if parts[0] in self.containers else "media"
        return "unknown"

    def _check_token(self, token: str | None) -> dict | None:
        with self.lock:
            info = self.tokens.get(token or "")
        if info is None:
            return graph_error("Invalid OAuth access token - Cannot parse access token", 190)
        if info["revoked"]:
            return graph_error("Error validating access token: The user has not authorized "
                               "application.", 190, subcode=458)
        if self.clock() >= info["expires_at"]:
            return graph_error(f"Error validating access token: Session has expired on "
                               f"{info['expires_at']:%A, %d-%b-%y %H:%M:%S} UTC.", 190,
                               subcode=463)
        return None

    def _user_ok(self, uid: str) -> bool:
        return uid in ("me", self.user_id)

    def _dispatch(self, route: str, method: str, parts: list[str], params: dict[str, str],
                  token: str | None) -> tuple[int, Any]:
        if route == "me" and method == "GET":
            fields = (params.get("fields") or "id").split(",")
            me = {"id": self.user_id, "username": self.username, "name": self.name}
            return 200, {k: me[k] for k in fields if k in me} | {"id": self.user_id}
        if route == "refresh":
            return self._refresh(params, token)
        if route in ("create", "list", "publish", "limit") and not self._user_ok(parts[0]):
            return 400, graph_error(f"Unsupported request: object '{parts[0]}' does not "
                                    "exist or cannot be loaded", 100, type_="GraphMethodException",
                                    subcode=33)
        if route == "create":
            return self._create(params)
        if route == "publish":
            return self._publish(params)
        if route == "status":
            return self._status(parts[0], params)
        if route == "media":
            return self._media(parts[0], params)
        if route == "list":
            return self._list(params)
        if route == "delete":
            return self._delete(parts[0])
        if route == "limit":
            return 200, {"data": [{"quota_usage": self.quota_usage(),
                                   "config": {"quota_total": QUOTA_TOTAL,
                                              "quota_duration": QUOTA_DURATION}}]}
        return 400, graph_error("Unknown path components", 2500)

    def _invalid(self, message: str, user_msg: str | None = None, subcode: int | None = None
                 ) -> tuple[int, Any]:
        return 400, graph_error(message, 100, subcode=subcode, user_msg=user_msg)

    def _create(self, p: dict[str, str]) -> tuple[int, Any]:
        kind = p.get("media_type", "")
        if kind not in ("TEXT", "IMAGE", "CAROUSEL", "VIDEO"):
            return self._invalid("Invalid parameter", "media_type must be TEXT, IMAGE, VIDEO "
                                 "or CAROUSEL")
        text = p.get("text", "")
        if kind == "TEXT" and not text:
            return self._invalid("Invalid parameter", "text is required for a text post")
        if threads_length(text) > TEXT_LIMIT:
            return self._invalid("Invalid parameter", f"The post text is longer than "
                                 f"{TEXT_LIMIT} characters.", subcode=4279009)
        attachment = p.get("link_attachment")
        if attachment and kind != "TEXT":
            return self._invalid("Invalid parameter", "link_attachment is only available "
                                 "for text posts")
        if len(links_in(text, attachment)) > LINK_LIMIT:
            return 400, graph_error("THREADS_API__LINK_LIMIT_EXCEEDED", 100,
                                    user_msg=f"A post may contain at most {LINK_LIMIT} links.")
        if len(p.get("alt_text", "")) > ALT_TEXT_LIMIT:
            return self._invalid("Invalid parameter", f"alt_text is longer than "
                                 f"{ALT_TEXT_LIMIT} characters")
        if kind == "IMAGE" and not re.match(r"https?://", p.get("image_url", "")):
            return self._invalid("Invalid parameter", "image_url must be a public URL")
        children: list[str] = []
        if kind == "CAROUSEL":
            children = [c for c in p.get("children", "").split(",") if c]
            if not CAROUSEL_MIN <= len(children) <= CAROUSEL_MAX:
                return self._invalid("Invalid parameter", "a carousel has 2 to 20 children")
            with self.lock:
                bad = [c for c in children if not self.containers.get(c, {}).get("item")]
            if bad:
                return self._invalid("Invalid parameter", f"not carousel items: {bad}")
        with self.lock:
            cid = str(next(self._ids))
            error, self._error_next = self._error_next, None
            slow = self.processing_polls if kind in ("IMAGE", "CAROUSEL", "VIDEO") else 0
            self.containers[cid] = {
                "id": cid, "media_type": kind, "text": text, "image_url": p.get("image_url"),
                "alt_text": p.get("alt_text"), "link_attachment": attachment,
                "children": children, "item": p.get("is_carousel_item") == "true",
                "created_at": self.clock(), "polls_left": slow, "error": error,
                "status": "IN_PROGRESS", "media_id": None}
        return 200, {"id": cid}

    def _state(self, c: dict[str, Any]) -> str:
        """The container's status now (advancing IN_PROGRESS; EXPIRED after 24 h)."""
        if c["status"] == "PUBLISHED":
            return "PUBLISHED"
        if self.clock() - c["created_at"] >= CONTAINER_TTL:
            c["status"] = "EXPIRED"
        elif c["error"]:
            c["status"] = "ERROR"
        elif c["polls_left"] <= 0:
            c["status"] = "FINISHED"
        return c["status"]

    def _status(self, cid: str, params: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            c = self.containers[cid]
            status = self._state(c)
            if status == "IN_PROGRESS":
                c["polls_left"] -= 1
            out = {"status": status, "id": cid}
            if status == "ERROR":
                out["error_message"] = c["error"]
        fields = (params.get("fields") or "id").split(",")
        return 200, {k: v for k, v in out.items() if k in fields or k == "id"}

    def _publish(self, p: dict[str, str]) -> tuple[int, Any]:
        cid = p.get("creation_id", "")
        with self.lock:
            c = self.containers.get(cid)
            if c is None or c["item"]:
                return 400, graph_error("Media Not Found", 24, subcode=4279009,
                                        type_="GraphMethodException")
            status = self._state(c)
            if status == "PUBLISHED":
                return 400, graph_error("The media has already been published", 100,
                                        subcode=4279009,
                                        user_msg="This container was already published.")
            if status != "FINISHED":
                return 400, graph_error("Media Not Ready For Publishing", 9007,
                                        subcode=2207027, user_msg=f"The container is "
                                        f"{status}.")
            if self.quota_usage() >= QUOTA_TOTAL:
                return 400, graph_error("Application request limit reached", 4,
                                        user_msg=f"The profile published {QUOTA_TOTAL} posts "
                                                 "in the last 24 hours.")
            mid = str(next(self._ids))
            now = self.clock()
            kind = {"TEXT": "TEXT_POST", "CAROUSEL": "CAROUSEL_ALBUM"}.get(c["media_type"],
                                                                        c["media_type"])
            post = {"id": mid, "media_product_type": "THREADS", "media_type": kind,
                    "text": c["text"], "timestamp": _ts(now), "published_at": now,
                    "shortcode": f"C{mid[-8:]}", "owner": {"id": self.user_id},
                    "username": self.username, "is_quote_post": False,
                    "permalink": f"https://www.threads.net/@{self.username}/post/C{mid[-8:]}",
                    "container": cid}
            if c["media_type"] == "IMAGE":
                post["media_url"] = c["image_url"]
                if c["alt_text"]:
                    post["alt_text"] = c["alt_text"]
            if c["link_attachment"]:
                post["link_attachment_url"] = c["link_attachment"]
            if c["children"]:
                post["children"] = {"data": [{"id": ch} for ch in c["children"]]}
                post["child_alt_texts"] = [self.containers[ch]["alt_text"]
                                           for ch in c["children"]]
            self.posts.append(post)
            c.update(status="PUBLISHED", media_id=mid)
        return 200, {"id": mid}

    @staticmethod
    def _public(post: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        return {k: v for k, v in post.items() if k in fields or k == "id"}

    def _media(self, mid: str, params: dict[str, str]) -> tuple[int, Any]:
        with self.lock:
            post = next((p for p in self.posts if p["id"] == mid), None)
        if post is None:
            return 400, graph_error(f"Unsupported get request. Object with ID '{mid}' does "
                                    "not exist", 100, type_="GraphMethodException", subcode=33)
        return 200, self._public(post, (params.get("fields") or "id").split(","))

    def _list(self, params: dict[str, str]) -> tuple[int, Any]:
        fields = (params.get("fields") or "id").split(",")
        limit = min(int(params.get("limit") or 25), 100)
        since = int(params["since"]) if params.get("since") else None
        until = int(params["until"]) if params.get("until") else None
        start = int(params.get("after") or 0)
        with self.lock:
            posts = [p for p in reversed(self.posts)
                     if (since is None or p["published_at"].timestamp() >= since)
                     and (until is None or p["published_at"].timestamp() <= until)]
        page = posts[start:start + limit]
        out: dict[str, Any] = {"data": [self._public(p, fields) for p in page]}
        if page:
            out["paging"] = {"cursors": {"before": str(start), "after": str(start + limit)}}
            if start + limit >= len(posts):
                out["paging"]["cursors"].pop("after")
        return 200, out

    def _delete(self, mid: str) -> tuple[int, Any]:
        with self.lock:
            post = next((p for p in self.posts if p["id"] == mid), None)
            if post is None:
                return 400, graph_error(f"Unsupported delete request. Object with ID '{mid}' "
                                        "does not exist", 100, type_="GraphMethodException",
                                        subcode=33)
            self.posts.remove(post)
            self.deleted.append(mid)
        return 200, {"success": True, "deleted_id": mid}

    def _refresh(self, params: dict[str, str], token: str | None) -> tuple[int, Any]:
        if params.get("grant_type") != "th_refresh_token":
            return self._invalid("Invalid parameter", "grant_type must be th_refresh_token")
        with self.lock:
            info = self.tokens[token or ""]
            if self.clock() - info["issued_at"] < REFRESH_MIN_AGE:
                return 400, graph_error("Session key invalid. This token is not old enough "
                                        "to be refreshed (at least 24 hours).", 100,
                                        subcode=1349174)
            new = f"{token}-r{next(self._refreshes)}"
            self.issue_token(new)
            left = self.tokens[new]["expires_at"] - self.clock()
        return 200, {"access_token": new, "token_type": "bearer",
                     "expires_in": int(left.total_seconds())}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    srv: ThreadsServer
    protocol_version = "HTTP/1.1"
    wbufsize = -1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, out, delay = self.srv.handle(self.command, self.path, headers, body)
        if delay:
            self.srv._stopping.wait(delay)
        raw = json.dumps(out, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            for key, value in {"content-type": "application/json; charset=UTF-8",
                               **out_headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _serve
