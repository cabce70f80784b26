"""Threads: a `Publisher` over Meta's Threads API (plain HTTP through `requests`).

https://developers.facebook.com/docs/threads/posts : a post is made in two steps, a media
container (`POST /{user-id}/threads`: media_type TEXT | IMAGE | CAROUSEL, text, image_url,
alt_text, link_attachment) and its publication (`POST /{user-id}/threads_publish?creation_id=`).

**Exactly once.** The container is created once per delivery: its id is stored through
`checkpoints.set_checkpoint(idempotency_key, {"container": id, ...})` BEFORE it is published.
A later attempt of the same delivery asks the container's status (`GET /{container-id}?fields=
status,error_message`) instead of creating another one:

    FINISHED     -> publish that container (a failed or lost publish is simply repeated)
    IN_PROGRESS  -> wait (bounded, `status_wait`), then publish it; still busy: TransientError
    PUBLISHED    -> the post exists: find it in the profile's threads and return it
    EXPIRED/ERROR-> make a new container (nothing was posted from the old one)

Without `checkpoints` every attempt makes a new container (find_existing still guards retries).

**Tokens.** `access_token` is the long-lived user token; `token_store` (optional) is how the
application keeps a refreshed one (bot.threads_tokens): `token_store.get() -> str | None` gives
the current token (None: the one given here) and `token_store.save(token, expires_in)` keeps a
new one. `refresh_token()` calls `GET /refresh_access_token?grant_type=th_refresh_token`.
The token travels as the `access_token` form or query parameter, as documented; it is never
logged, and every message is scrubbed of it.

**Error translation** (Graph API errors {"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}; graph-api/guides/error-handling):

    connect timeout, refused                -> TransientError (nothing was sent)
    timeout / connection lost               -> AmbiguousError publishing, TransientError else
    code 190 / 102 (token expired, revoked) -> AuthError
    code 10, 200-299 (permission)           -> AuthError (the app lacks a permission)
    code 4, 17, 32, 613 (throttled)         -> RateLimitedError (retry_at from
                                               x-business-use-case-usage, when given)
    code 1, 2 or HTTP 5xx                   -> AmbiguousError publishing, TransientError else
    anything else                           -> RejectedError with Meta's own words
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.errors import (
    AmbiguousError,
    AuthError,
    PublishError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from bot.models import Post, Published, Rules

try:  # CORE adds THREADS_RULES (and its "threads" counter) to bot/textlen.py
    from bot.textlen import THREADS_RULES
except ImportError:  # until then: 500, links at their length, alt text up to 1,000
    THREADS_RULES = Rules("threads", 500, "mastodon", None, alt_text_limit=1000)

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://graph.threads.net"
API_VERSION = "v1.0"              # the documented examples' version
DEFAULT_TIMEOUT = 10.0
ALT_TEXT_LIMIT = 1000             # reference/publishing: alt_text
LINK_LIMIT = 5                    # create-posts/text-attachments: more fail at container creation
CAROUSEL_MAX = 20                 # posts/carousel-posts: 2 to 20 items
# troubleshooting: "query a container's status once per minute, for no more than 5 minutes";
# a worker waits far less and leaves a busy container for the next attempt (it is kept).
STATUS_WAIT = 30.0
STATUS_POLL = 3.0
LIST_PAGE = 100                   # GET /{user-id}/threads: limit up to 100
LIST_MAX_PAGES = 5
RATE_CODES = frozenset({4, 17, 32, 613})
AUTH_CODES = frozenset({102, 190})
TEMPORARY_CODES = frozenset({1, 2})
_URL = re.compile(r"(?i)^https?://")


class TokenStore(Protocol):
    """Where the application keeps the account's current token (bot.threads_tokens)."""

    def get(self) -> str | None: ...

    def save(self, token: str, expires_in: int | None) -> None: ...


class Checkpoints(Protocol):   # bot.store.Store has both
    def checkpoint(self, key: str) -> dict | None: ...
    def set_checkpoint(self, key: str, data: dict) -> None: ...


class ThreadsPublisher:
    """Posts to one Threads profile. Cheap to build; it talks to Meta only when asked to."""

    platform = "threads"

    def __init__(self, account: str, *, access_token: str,
                 api_base: str = DEFAULT_API_BASE, user_id: str = "me",
                 checkpoints: Checkpoints | None = None, timeout: float = DEFAULT_TIMEOUT,
                 token_store: TokenStore | None = None, session: Any = None,
                 api_version: str = API_VERSION, status_wait: float = STATUS_WAIT,
                 status_poll: float = STATUS_POLL,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.account = account
        self._token = access_token
        self.api_base = (api_base or DEFAULT_API_BASE).rstrip("/")
        self.user_id = user_id or "me"
        self.checkpoints, self.token_store = checkpoints, token_store
        self.timeout, self.api_version = timeout, api_version.strip("/")
        self.status_wait, self.status_poll = status_wait, status_poll
        self.sleep, self.clock = sleep, clock
        self._session = session
        self._lock = threading.Lock()
        self._username: str | None = None
        self.last_usage: dict | None = None     # the last x-app-usage Meta sent

    def __repr__(self) -> str:   # never the token
        return f"ThreadsPublisher(account={self.account!r}, api_base={self.api_base!r})"

    # -- the Publisher interface -----------------------------------------------------------
    def rules(self) -> Rules:
        return THREADS_RULES

    def publish(self, post: Post, idempotency_key: str) -> Published:
        saved = self._checkpoint(idempotency_key)
        container = saved.get("container")
        if container:
            status, message = self._status(container, missing="EXPIRED")
            if status == "PUBLISHED":
                found = self._published(saved, post)
                if found is not None:
                    return found
                raise TransientError(f"container {container} is published but the post does "
                                     "not show in the profile's threads yet", **self._who())
            if status in ("EXPIRED", "ERROR"):
                log.warning("threads account '%s': container %s of delivery %s is %s%s; "
                            "making a new one", self.account, container, idempotency_key,
                            status, f" ({message})" if message else "")
                container = None
            else:
                log.info("threads account '%s': delivery %s goes on with its container %s "
                         "(%s)", self.account, idempotency_key, container, status)
        if not container:
            container = self._create(post)
            saved = {"container": container, "created_at": self.clock().isoformat()}
            if self.checkpoints is not None:
                self.checkpoints.set_checkpoint(idempotency_key, saved)
        if self._wait_ready(container) == "PUBLISHED":   # another attempt got there first
            found = self._published(saved, post)
            if found is not None:
                return found
        answer = self._request("POST", f"{self.user_id}/threads_publish", "publishing the post",
                               write=True, data={"creation_id": container})
        media_id = str(answer["id"])
        if self.checkpoints is not None:
            self.checkpoints.set_checkpoint(idempotency_key, {**saved, "media": media_id})
        log.info("threads account '%s': published post %s from container %s (delivery %s)",
                 self.account, media_id, container, idempotency_key)
        return Published(media_id, self._permalink(media_id))

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        """Our post published at or after `since` with this text, from the profile's threads
        (`GET /{user-id}/threads?fields=id,text,timestamp,permalink&since=`)."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        wanted = _squash(post.text)
        floor = since.replace(microsecond=0)     # Meta's timestamps have whole seconds
        for item in self._threads(floor):
            stamp = _parse_time(item.get("timestamp"))
            if stamp is not None and stamp < floor:
                continue
            if _squash(item.get("text") or "") == wanted:
                log.info("threads account '%s': found post %s already published",
                         self.account, item["id"])
                return Published(str(item["id"]), item.get("permalink"))
        return None

    def verify(self) -> str:
        """`GET /me?fields=id,username`; returns "@username". Raises AuthError."""
        me = self._request("GET", self.user_id, "checking the account", params={
            "fields": "id,username"})
        if not me.get("username"):
            raise AuthError("Threads did not say which profile this token belongs to",
                            **self._who())
        self._username = str(me["username"])
        return "@" + self._username

    def delete(self, remote_id: str) -> None:
        """`DELETE /{media-id}`; a post that is not there (404, or Graph's "does not exist",
        code 100 subcode 33) is already gone."""
        try:
            self._request("DELETE", remote_id, "deleting the post")
        except RejectedError as e:
            if not _gone(e):
                raise
            log.info("threads account '%s': post %s is already gone", self.account, remote_id)
            return
        log.info("threads account '%s': deleted post %s", self.account, remote_id)

    def boost(self, url: str, remote_id: str | None, *, same_instance: bool) -> Published:
        """Threads reposts need the threads_manage_... permission crier does not ask for."""
        from bot.errors import NotAllowedError
        raise NotAllowedError("crier does not repost on Threads", **self._who())

    # -- the token -----------------------------------------------------------------------------
    def token(self) -> str:
        """The token in use: the store's current one, else the one given."""
        if self.token_store is not None:
            stored = self.token_store.get()
            if stored:
                return stored
        return self._token

    def refresh_token(self) -> tuple[str, int | None]:
        """`GET /refresh_access_token?grant_type=th_refresh_token`: a new long-lived token
        (60 days). Kept in memory and given to `token_store.save`. Returns (token,
        expires_in seconds or None)."""
        answer = self._request("GET", "refresh_access_token", "refreshing the token",
                               params={"grant_type": "th_refresh_token"}, versioned=False)
        new = answer.get("access_token")
        if not isinstance(new, str) or not new:
            raise RejectedError("Threads answered the refresh without a token", **self._who())
        expires_in = answer.get("expires_in")
        expires_in = int(expires_in) if isinstance(expires_in, int | float) else None
        self._token = new
        if self.token_store is not None:
            self.token_store.save(new, expires_in)
        log.info("threads account '%s': token refreshed (%s)", self.account,
                 f"valid {expires_in // 86400} days" if expires_in else "validity not given")
        return new, expires_in

    def publishing_limit(self) -> dict:
        """`GET /{user-id}/threads_publishing_limit?fields=quota_usage,config`."""
        answer = self._request("GET", f"{self.user_id}/threads_publishing_limit",
                               "reading the publishing limit",
                               params={"fields": "quota_usage,config"})
        data = answer.get("data") or [{}]
        return data[0]

    # -- pieces --------------------------------------------------------------------------------
    def _checkpoint(self, key: str) -> dict:
        if self.checkpoints is None:
            return {}
        return dict(self.checkpoints.checkpoint(key) or {})

    def _who(self) -> dict[str, str]:
        return {"platform": self.platform, "account": self.account}

    def _create(self, post: Post) -> str:
        """The post's media container (children first for a carousel); its id."""
        card = getattr(post, "card", None)
        images = [(self._image_url(m), m.alt or "") for m in post.media[:CAROUSEL_MAX]]
        if len(post.media) > CAROUSEL_MAX:
            log.warning("threads account '%s': a post takes %d images; dropping %d",
                        self.account, CAROUSEL_MAX, len(post.media) - CAROUSEL_MAX)
        attachment = card.uri if card is not None and not images else None
        self._check_links(post.text, attachment)
        data: dict[str, str] = {"text": post.text}
        if len(images) == 1:
            data.update(media_type="IMAGE", image_url=images[0][0])
            if images[0][1]:
                data["alt_text"] = self._alt(images[0][1])
        elif images:
            children = []
            for url, alt in images:
                child = {"media_type": "IMAGE", "image_url": url, "is_carousel_item": "true"}
                if alt:
                    child["alt_text"] = self._alt(alt)
                answer = self._request("POST", f"{self.user_id}/threads",
                                       "creating a carousel item", data=child)
                children.append(str(answer["id"]))
            data.update(media_type="CAROUSEL", children=",".join(children))
        else:
            data["media_type"] = "TEXT"
            if attachment:
                data["link_attachment"] = attachment
        answer = self._request("POST", f"{self.user_id}/threads", "creating the container",
                               data=data)
        container = str(answer["id"])
        log.info("threads account '%s': container %s created (%s)", self.account, container,
                 data["media_type"])
        return container

    def _image_url(self, media: Any) -> str:
        url = getattr(media, "url", None) or (media.source if _URL.match(media.source) else None)
        if not url or not _URL.match(url):
            raise RejectedError(f"Threads needs a public image URL (Meta fetches the image "
                                f"itself) and {media.source} has none", **self._who())
        return url

    def _alt(self, alt: str) -> str:
        if len(alt) <= ALT_TEXT_LIMIT:
            return alt
        log.warning("threads account '%s': alt text cut to %d characters", self.account,
                    ALT_TEXT_LIMIT)
        return alt[:ALT_TEXT_LIMIT - 1] + "…"

    def _check_links(self, text: str, attachment: str | None) -> None:
        from bot.textlen import extract_urls
        links = {_link_key(u) for u, _s, _e in extract_urls(text)}
        if attachment:
            links.add(_link_key(attachment))
        if len(links) > LINK_LIMIT:
            raise RejectedError(f"Threads takes at most {LINK_LIMIT} links in a post; this one "
                                f"has {len(links)}", **self._who())

    def _status(self, container: str, missing: str | None = None) -> tuple[str, str | None]:
        """The container's status and error message; a container Meta no longer knows is
        `missing` (when given: EXPIRED, so a new one is made) or a RejectedError."""
        try:
            answer = self._request("GET", container, "reading the container's status",
                                   params={"fields": "status,error_message"})
        except RejectedError as e:
            if missing is None or not _gone(e):
                raise
            return missing, f"Meta no longer knows it: {e.detail}"
        return str(answer.get("status") or ""), answer.get("error_message")

    def _wait_ready(self, container: str) -> str:
        """Until the container is FINISHED (bounded); ERROR/EXPIRED: RejectedError. Returns
        its status (FINISHED, or PUBLISHED when it already was)."""
        waited = 0.0
        while True:
            status, message = self._status(container)
            if status in ("FINISHED", "PUBLISHED"):
                return status
            if status in ("ERROR", "EXPIRED"):
                raise RejectedError(f"Threads could not prepare the post (container "
                                    f"{container} is {status}: {message or 'no reason given'})",
                                    **self._who())
            if waited >= self.status_wait:
                raise TransientError(f"container {container} is still {status or 'unknown'} "
                                     f"after {waited:g} s; it is kept and published on the "
                                     "next attempt", **self._who())
            self.sleep(self.status_poll)
            waited += self.status_poll

    def _published(self, saved: dict, post: Post) -> Published | None:
        """The post a PUBLISHED container became (known id, else looked up by its text)."""
        if saved.get("media"):
            return Published(str(saved["media"]), self._permalink(str(saved["media"])))
        since = _parse_time(saved.get("created_at")) or self.clock() - timedelta(days=1)
        return self.find_existing(post, since)

    def _permalink(self, media_id: str) -> str | None:
        try:
            answer = self._request("GET", media_id, "reading the post's link",
                                   params={"fields": "id,permalink"})
        except PublishError as e:   # the post is there; its link is a nicety
            log.warning("threads account '%s': no permalink for post %s: %s", self.account,
                        media_id, e.detail)
            return None
        return answer.get("permalink")

    def _threads(self, since: datetime):
        after = None
        for _ in range(LIST_MAX_PAGES):
            params = {"fields": "id,text,timestamp,permalink", "limit": str(LIST_PAGE),
                      "since": str(int(since.timestamp()))}
            if after:
                params["after"] = after
            page = self._request("GET", f"{self.user_id}/threads",
                                 "reading the profile's threads", params=params)
            yield from page.get("data") or ()
            after = ((page.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not page.get("data"):
                return
        log.warning("threads account '%s': stopped looking after %d pages of threads",
                    self.account, LIST_MAX_PAGES)

    # -- HTTP and Meta's errors ----------------------------------------------------------------
    def _http(self):
        with self._lock:
            if self._session is None:
                import requests

                from bot.platforms.base import quiet_leaky_loggers
                quiet_leaky_loggers()   # urllib3 would log URLs holding the token at DEBUG
                self._session = requests.Session()
            return self._session

    def _request(self, method: str, path: str, what: str, *, write: bool = False,
                 params: dict | None = None, data: dict | None = None,
                 versioned: bool = True) -> dict:
        import requests
        base = f"{self.api_base}/{self.api_version}" if versioned else self.api_base
        url = f"{base}/{path.lstrip('/')}"
        token = self.token()
        params = dict(params or {})
        if method == "POST":
            data = {**(data or {}), "access_token": token}
        else:
            params["access_token"] = token
        try:
            r = self._http().request(method, url, params=params, data=data,
                                     timeout=self.timeout, allow_redirects=False)
        except requests.ConnectTimeout:
            raise TransientError(f"could not connect to Threads while {what} (nothing was "
                                 "sent)", **self._who()) from None
        except (requests.Timeout, requests.ConnectionError) as e:
            if _refused(e):
                raise TransientError(f"could not connect to Threads while {what} (nothing "
                                     "was sent)", **self._who()) from None
            kind = "timed out" if isinstance(e, requests.Timeout) else "lost the connection"
            if write:
                raise AmbiguousError(f"{kind} while {what} after {self.timeout:g} s; the post "
                                     "may exist", **self._who()) from None
            raise TransientError(f"{kind} while {what}", **self._who()) from None
        self._usage(r)
        try:
            body = r.json()
        except ValueError:
            body = None
        if 200 <= r.status_code < 300 and isinstance(body, dict) and "error" not in body:
            return body
        raise self._translate(r, body, what, write)

    def _usage(self, r: Any) -> None:
        raw = r.headers.get("x-app-usage")
        if not raw:
            return
        try:
            self.last_usage = json.loads(raw)
        except ValueError:
            return
        top = max((v for v in self.last_usage.values() if isinstance(v, int | float)),
                  default=0)
        if top >= 80:
            log.warning("threads account '%s': Meta says %d%% of the app's call budget is "
                        "used", self.account, top)

    def _translate(self, r: Any, body: Any, what: str, write: bool) -> PublishError:
        status = r.status_code
        err = body.get("error") if isinstance(body, dict) else None
        err = err if isinstance(err, dict) else {}
        code, subcode = err.get("code"), err.get("error_subcode")
        said = self._scrub(str(err.get("error_user_msg") or err.get("message")
                               or f"HTTP {status}"))
        if err.get("error_user_msg") and err.get("message") and \
                err["message"] not in said:
            said = self._scrub(f"{err['message']}: {err['error_user_msg']}")
        kw: dict[str, Any] = {**self._who(), "status": status}
        if code in AUTH_CODES or status == 401:
            return AuthError(f"Threads refused the token while {what}: {said}", **kw)
        if code in RATE_CODES or status == 429:
            retry_at = self._regain(r)
            when = f"; retry at {retry_at.isoformat()}" if retry_at else ""
            return RateLimitedError(f"rate limited while {what}{when}: {said}",
                                    retry_at=retry_at, **kw)
        if code == 10 or (isinstance(code, int) and 200 <= code <= 299):
            return AuthError(f"the Threads app lacks a permission for {what}: {said}", **kw)
        if status >= 500 or code in TEMPORARY_CODES:
            if write:
                return AmbiguousError(f"Threads answered {status} while {what}; the post may "
                                      f"exist: {said}", **kw)
            return TransientError(f"Threads answered {status} while {what}: {said}", **kw)
        error = RejectedError(f"Threads refused {what}: {said}", **kw)
        error.graph_code, error.graph_subcode = code, subcode   # type: ignore[attr-defined]
        return error

    def _regain(self, r: Any) -> datetime | None:
        """When access comes back: x-business-use-case-usage's estimated_time_to_regain_access
        (minutes), the largest one given."""
        raw = r.headers.get("x-business-use-case-usage")
        try:
            usage = json.loads(raw) if raw else {}
        except ValueError:
            return None
        minutes = [e.get("estimated_time_to_regain_access") for v in usage.values()
                   if isinstance(v, list) for e in v if isinstance(e, dict)]
        minutes = [m for m in minutes if isinstance(m, int | float) and m > 0]
        return self.clock() + timedelta(minutes=max(minutes)) if minutes else None

    def _scrub(self, text: str) -> str:
        for secret in {self._token, self.token()}:
            if secret:
                text = text.replace(secret, "***")
        return text


def _refused(exc: BaseException) -> bool:
    from urllib3.exceptions import NewConnectionError
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _link_key(url: str) -> str:
    bare = re.sub(r"(?i)^[a-z][a-z0-9+.-]*://", "", url.strip())
    return bare.lower().removeprefix("www.").rstrip("/")


def _gone(e: RejectedError) -> bool:
    """Meta does not know the object: 404, Graph's "does not exist" (code 100, subcode 33),
    or "Media Not Found" (code 24)."""
    return e.status == 404 or getattr(e, "graph_subcode", None) == 33 \
        or getattr(e, "graph_code", None) == 24


def _parse_time(value: Any) -> datetime | None:
    """Meta's "2023-10-17T05:42:03+0000", or an ISO time of ours; None if neither."""
    try:
        parsed = datetime.fromisoformat(re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", str(value)))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
