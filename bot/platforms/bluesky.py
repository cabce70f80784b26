"""Bluesky: a `Publisher` that writes records to the account's PDS over XRPC (AT Protocol).

The `atproto` SDK (imported on first use, so `crier --help` does not pay for it) carries the
requests: its `Client` holds the session, refreshes it, and raises typed errors. Records are
sent as plain JSON (`invoke_procedure` with a dict), so what is stored is exactly what crier
built (`bot.platforms.bluesky_rich` builds the facets, record keys and images).

**Session.** `bot.platforms.bluesky_session`: one createSession per process and account,
shared by every publisher built for it, renewed with refreshSession; never a profile fetch.

**Exactly once.** A post's record key is a TID chosen once per delivery and stored through
`checkpoints.set_checkpoint(idempotency_key, {"rkey": ...})` before `createRecord`; a later
attempt for the same delivery first asks `getRecord` for that key and returns the record when
it is there. A create that fails ambiguously (timeout, 5xx, the server saying the key is
taken) is followed at once by one `getRecord`. Reposts do the same under a key made from the
amplifier's DID and the reposted post's URI.

**Error translation** (`_translate`):

    connect refused / connect timeout          -> TransientError (nothing was sent)
    timeout, connection lost, 5xx              -> AmbiguousError on writes, TransientError on reads
    429                                        -> RateLimitedError(retry_at = ratelimit-reset)
    401 / 403, InvalidToken, AuthMissing,
      bad handle or app password               -> AuthError
    400 InvalidRequest (lexicon validation...) -> RejectedError with the server's message
    400 ExpiredToken / InvalidToken            -> refreshSession (createSession when the refresh
                                                  token is refused), the call once more; refused
                                                  again -> AuthError

**Deleting** (`delete`): `deleteRecord` is a no-op for a record that is not there, so a
missing post counts as deleted. Messages name the account, never the password or a token.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from bot.errors import (
    AmbiguousError,
    AuthError,
    PublishError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from bot.models import Media, Post, Published, Rules
from bot.platforms import bluesky_rich as rich
from bot.platforms.bluesky_session import drop_session, shared_session, xrpc_error
from bot.textlen import BLUESKY_RULES, fits

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "https://bsky.social"
DEFAULT_TIMEOUT = 10.0
POST, REPOST = "app.bsky.feed.post", "app.bsky.feed.repost"
# lexicons app.bsky.embed.external (thumb) and app.bsky.embed.images: blobs of at most
# 1,000,000 bytes (images: 2,000,000 in newer lexicons; the smaller holds for every server)
BLOB_MAX_BYTES = 1_000_000
MAX_IMAGES = 4
PAGE_SIZE, MAX_PAGES = 100, 5
FIND_SLACK = timedelta(minutes=10)   # records dated a little before `since` are still read
AUTH_ERRORS = ("InvalidToken", "AuthMissing", "AuthenticationRequired", "AccountTakedown",
               "AccountDeactivated", "AccountNotFound")
_AT_URI = re.compile(r"^at://([^/]+)/([^/]+)/([^/]+)$")
_BSKY_URL = re.compile(r"^https://bsky\.app/profile/([^/]+)/post/([^/?#]+)")


class BlueskyPublisher:
    """Posts to one Bluesky account. Build it cheaply; it talks to the PDS only when asked."""

    platform = "bluesky"

    def __init__(self, account: str, *, handle: str, service: str = DEFAULT_SERVICE,
                 app_password: str, checkpoints: Any = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.account = account
        self.handle = handle.lstrip("@")
        self.service = (service or DEFAULT_SERVICE).rstrip("/")
        self.checkpoints, self.timeout = checkpoints, timeout
        self._password = app_password
        self._session = shared_session(self.service, self.handle, app_password, timeout)

    def __repr__(self) -> str:   # never the password
        return f"BlueskyPublisher(account={self.account!r}, handle={self.handle!r}, " \
               f"service={self.service!r})"

    # -- the Publisher interface ----------------------------------------------------------

    def rules(self) -> Rules:
        return BLUESKY_RULES

    def verify(self) -> str:
        """Log in (or reuse this process's session) and ask getSession; "@handle"."""
        info = self._call("checking the session", False,
                          lambda c: c.invoke_query("com.atproto.server.getSession"))
        return "@" + str(info.get("handle") or self.handle)

    def login_scope(self) -> str | None:
        """After `verify`: the session's scope ("com.atproto.appPass" for an app password,
        "com.atproto.access" for the main password), so a main password can be refused."""
        return self._session.scope()

    def forget(self) -> None:
        """Drop this process's session for these credentials (refused for crier's use)."""
        drop_session(self.service, self.handle, self._password)

    def publish(self, post: Post, idempotency_key: str) -> Published:
        did = self._did()
        rkey, resumed = self._rkey(idempotency_key)
        if resumed and self._get_record(did, POST, rkey) is not None:
            log.info("bluesky account '%s': delivery %s was already posted as %s",
                     self.account, idempotency_key, rkey)
            return self._published(did, rkey)
        text, dids = self._final_text(post)
        record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _now_iso()}
        if facets := rich.facets(text, links=getattr(post, "links", ()), dids=dids):
            record["facets"] = facets
        if langs := rich.langs(post.language):
            record["langs"] = langs
        if embed := self._embed(post):
            record["embed"] = embed
        self._create(did, POST, rkey, record, "creating the post")
        log.info("bluesky account '%s': posted %s (delivery %s)", self.account, rkey,
                 idempotency_key)
        return self._published(did, rkey)

    def boost(self, url: str, remote_id: str | None, *, same_instance: bool) -> Published:
        """Repost the official post (`remote_id`, its at:// URI; else found from its bsky.app
        `url`), once: the repost's record key is kept like a post's."""
        did = self._did()
        subject = remote_id or self._uri_from_url(url)
        if not subject or not _AT_URI.match(subject):
            raise RejectedError(f"no Bluesky post to repost for {url}", platform=self.platform,
                                account=self.account)
        key = "bsky-repost:" + hashlib.sha256(f"{did} {subject}".encode()).hexdigest()[:48]
        rkey, resumed = self._rkey(key)
        if not (resumed and self._get_record(did, REPOST, rkey) is not None):
            s_did, s_coll, s_rkey = _AT_URI.match(subject).groups()
            target = self._get_record(s_did, s_coll, s_rkey, full=True)
            if target is None:
                raise RejectedError(f"the post to repost is gone: {subject}",
                                    platform=self.platform, account=self.account)
            record = {"$type": REPOST, "createdAt": _now_iso(),
                      "subject": {"uri": target["uri"], "cid": target["cid"]}}
            self._create(did, REPOST, rkey, record, "reposting")
            log.info("bluesky account '%s': reposted %s", self.account, subject)
        return Published(f"at://{did}/{REPOST}/{rkey}", url)

    def delete(self, remote_id: str) -> None:
        """deleteRecord of our post (or repost) `remote_id`; already gone counts as deleted."""
        match = _AT_URI.match(remote_id or "")
        if not match:
            raise RejectedError(f"not a Bluesky record: {remote_id!r}", platform=self.platform,
                                account=self.account)
        repo, collection, rkey = match.groups()
        did = self._did()
        if repo != did:
            raise RejectedError(f"{remote_id} is not a record of {self.handle}",
                                platform=self.platform, account=self.account)
        body = {"repo": did, "collection": collection, "rkey": rkey}
        self._call("deleting the post", False,
                   lambda c: c.invoke_procedure("com.atproto.repo.deleteRecord",
                                                data=_dot(body),
                                                input_encoding="application/json"))
        log.info("bluesky account '%s': deleted %s (or it was already gone)", self.account,
                 remote_id)

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        """Our post dated at or after `since` whose text is this post's (with or without
        unlinkable mentions written as names), newest first; None if there is none."""
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        did = self._did()
        names = dict(getattr(post, "mentions", ()))
        wanted = {_squash(post.text), _squash(rich.write_names(post.text, names))}
        cursor = None
        for _ in range(MAX_PAGES):
            params = {"repo": did, "collection": POST, "limit": PAGE_SIZE}
            if cursor:
                params["cursor"] = cursor
            page = self._call("reading the account's recent posts", False,
                              lambda c, p=params: c.invoke_query(
                                  "com.atproto.repo.listRecords", params=_dot(p)))
            for item in page.get("records") or ():
                value = item.get("value") or {}
                created = _parse_time(value.get("createdAt"))
                if created is not None and created < since - FIND_SLACK:
                    return None     # newest first: the rest is older
                if created is not None and created >= since \
                        and _squash(value.get("text") or "") in wanted:
                    rkey = item["uri"].rsplit("/", 1)[-1]
                    log.info("bluesky account '%s': found %s already posted", self.account,
                             rkey)
                    return self._published(did, rkey)
            cursor = page.get("cursor")
            if not cursor or not page.get("records"):
                return None
        log.warning("bluesky account '%s': stopped looking after %d pages", self.account,
                    MAX_PAGES)
        return None

    # -- pieces ---------------------------------------------------------------------------

    def _did(self) -> str:
        client = self._call("logging in", False, lambda c: c)
        return client._session.did

    def _published(self, did: str, rkey: str) -> Published:
        session = self._session.client._session
        handle = session.handle if session else self.handle
        return Published(f"at://{did}/{POST}/{rkey}",
                         f"https://bsky.app/profile/{handle}/post/{rkey}")

    def _rkey(self, key: str) -> tuple[str, bool]:
        """The record key for delivery `key`: (the stored one, True) or (a new TID stored
        before anything is written, False). Without checkpoints, always a new one."""
        if self.checkpoints is not None:
            saved = self.checkpoints.checkpoint(key)
            if saved and saved.get("rkey"):
                return str(saved["rkey"]), True
        rkey = rich.make_tid(time.time_ns() // 1000, random.randrange(1024))
        if self.checkpoints is not None:
            self.checkpoints.set_checkpoint(key, {"rkey": rkey})
        return rkey, False

    def _get_record(self, repo: str, collection: str, rkey: str, *,
                    full: bool = False) -> dict[str, Any] | None:
        """getRecord: the record's value (`full`: the answer with uri and cid), None if absent."""
        from atproto_client.exceptions import BadRequestError, RequestException

        params = {"repo": repo, "collection": collection, "rkey": rkey}
        try:
            answer = self._call("reading a record", False, lambda c: c.invoke_query(
                "com.atproto.repo.getRecord", params=_dot(params)), passthrough=(
                    BadRequestError, RequestException))
        except (BadRequestError, RequestException) as e:
            if xrpc_error(e) == "RecordNotFound" or _status(e) == 404:
                return None
            raise self._translate(e, "reading a record", False) from None
        return answer if full else answer.get("value")

    def _create(self, did: str, collection: str, rkey: str, record: dict[str, Any],
                what: str) -> None:
        body = {"repo": did, "collection": collection, "rkey": rkey, "record": record}
        try:
            self._call(what, True, lambda c: c.invoke_procedure(
                "com.atproto.repo.createRecord", data=_dot(body),
                input_encoding="application/json"))
        except (AmbiguousError, RejectedError) as e:
            if isinstance(e, RejectedError) and not re.search(r"already|exists", e.detail,
                                                                re.IGNORECASE):
                raise
            try:   # the record may be there: the key says which one
                found = self._get_record(did, collection, rkey)
            except PublishError:
                found = None
            if found is None:
                raise
            log.info("bluesky account '%s': %s (%s) but record %s is there", self.account,
                     what, e.detail, rkey)

    def _final_text(self, post: Post) -> tuple[str, dict[str, str]]:
        """The text to post and the DIDs of its mentions; a handle that does not resolve is
        written as the person's name (when known and it still fits), else left as text."""
        names = {h.lstrip("@").lower(): n for h, n in getattr(post, "mentions", ()) if n}
        dids: dict[str, str] = {}
        unresolved: dict[str, str] = {}
        for handle in rich.handles_in(post.text, [f"@{h}" for h in names]):
            did = self._resolve(handle)
            if did:
                dids[handle] = did
            elif handle in names:
                unresolved[handle] = names[handle]
        text = post.text
        if unresolved:
            named = rich.write_names(text, unresolved)
            if fits(named, BLUESKY_RULES):
                text = named
            else:
                log.warning("bluesky account '%s': names instead of unresolved handles would "
                            "not fit; leaving the handles as text", self.account)
        return text, dids

    def _resolve(self, handle: str) -> str | None:
        params = {"handle": handle}
        try:
            answer = self._call("resolving a handle", False, lambda c: c.invoke_query(
                "com.atproto.identity.resolveHandle", params=_dot(params)))
        except (TransientError, RejectedError) as e:
            log.info("bluesky account '%s': @%s not linked: %s", self.account, handle,
                     e.detail)
            return None
        did = answer.get("did")
        return did if isinstance(did, str) and did.startswith("did:") else None

    def _uri_from_url(self, url: str) -> str | None:
        match = _BSKY_URL.match(url or "")
        if not match:
            return None
        actor, rkey = match.groups()
        did = actor if actor.startswith("did:") else self._resolve(actor)
        return f"at://{did}/{POST}/{rkey}" if did else None

    def _embed(self, post: Post) -> dict[str, Any] | None:
        card = getattr(post, "card", None)
        if card is not None:
            external: dict[str, Any] = {"uri": card.uri, "title": card.title or "",
                                        "description": card.description or ""}
            if card.thumb is not None and (blob := self._blob(card.thumb, "card thumbnail")):
                external["thumb"] = blob[0]
            return {"$type": "app.bsky.embed.external", "external": external}
        images = []
        if len(post.media) > MAX_IMAGES:
            log.warning("bluesky account '%s': Bluesky takes %d images; dropping %d",
                        self.account, MAX_IMAGES, len(post.media) - MAX_IMAGES)
        for media in post.media[:MAX_IMAGES]:
            if uploaded := self._blob(media, "image"):
                blob, (width, height) = uploaded
                images.append({"image": blob, "alt": media.alt or "",
                               "aspectRatio": {"width": width, "height": height}})
        return {"$type": "app.bsky.embed.images", "images": images} if images else None

    def _blob(self, media: Media, what: str) -> tuple[dict[str, Any], tuple[int, int]] | None:
        """Upload a local image, fitted to the blob limit: (blob ref, (width, height)), or
        None (with a warning) when it cannot be used: the post goes without it."""
        path = _local_path(media.source)
        if path is None:
            log.warning("bluesky account '%s': skipping %s %s: not a local file", self.account,
                        what, media.source)
            return None
        try:
            with open(path, "rb") as handle:
                fitted = rich.fit_image(handle.read(), BLOB_MAX_BYTES)
        except (OSError, ValueError) as e:
            log.warning("bluesky account '%s': skipping %s %s: %s", self.account, what,
                        media.source, getattr(e, "strerror", None) or e)
            return None
        try:
            answer = self._call(f"uploading the {what}", False, lambda c: c.invoke_procedure(
                "com.atproto.repo.uploadBlob", content=fitted.data,
                headers={"Content-Type": fitted.mime_type}))
        except RejectedError as e:
            log.warning("bluesky account '%s': the server refused %s %s, posting without it: "
                        "%s", self.account, what, media.source, e.detail)
            return None
        return answer["blob"], (fitted.width, fitted.height)

    # -- the SDK and its errors -------------------------------------------------------------

    def _call(self, what: str, write: bool, fn: Callable[[Any], Any], *,
              passthrough: tuple[type[BaseException], ...] = ()) -> Any:
        """Run `fn(client)` with a session; the answer's JSON (a dict) or what fn returned.
        An expired access token is renewed and the call made once more."""
        for attempt in (1, 2):
            stale = None    # the access token this call was sent with
            try:
                client = self._session.ready()
                stale = self._session.token()
                response = fn(client)
                return response.content if hasattr(response, "content") else response
            except Exception as exc:
                if attempt == 1 and stale is not None \
                        and xrpc_error(exc) in ("ExpiredToken", "InvalidToken"):
                    try:
                        self._session.renew(stale)
                        continue
                    except Exception as again:   # translated below
                        exc = again
                if passthrough and isinstance(exc, passthrough):
                    raise
                error = self._translate(exc, what, write)
                if error is None:
                    raise
                raise error from None   # the SDK's exception holds the request: keep it out
        raise AssertionError("unreachable")

    def _translate(self, exc: BaseException, what: str, write: bool) -> PublishError | None:
        import httpx
        from atproto_client import exceptions as x

        kw: dict[str, Any] = {"platform": self.platform, "account": self.account,
                              "status": _status(exc)}
        if isinstance(exc, x.LoginRequiredError):
            return AuthError(f"not logged in to {self.service} while {what}", **kw)
        if isinstance(exc, httpx.TransportError):   # the SDK passes some through unwrapped
            wrapped = x.InvokeTimeoutError() if isinstance(exc, httpx.TimeoutException) \
                else x.NetworkError()
            wrapped.__cause__, exc = exc, wrapped
        if not isinstance(exc, x.RequestErrorBase):
            return None
        said = self._scrub(_said(exc))
        if exc.response is None:   # nothing came back
            cause = exc.__cause__
            if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout):
                return TransientError(f"could not connect to {self.service} while {what} "
                                      "(nothing was sent)", **kw)
            kind = "timed out" if isinstance(exc, x.InvokeTimeoutError) else \
                "lost the connection"
            if write:
                return AmbiguousError(f"{kind} while {what} after {self.timeout:g} s; the "
                                      "record may exist", **kw)
            return TransientError(f"{kind} while {what}", **kw)
        status, error = kw["status"], xrpc_error(exc)
        if status == 429:
            reset = str(exc.response.headers.get("ratelimit-reset") or "")
            retry_at = datetime.fromtimestamp(int(reset), UTC) if reset.isdigit() else None
            when = f"; retry at {retry_at.isoformat()}" if retry_at else ""
            return RateLimitedError(f"rate limited while {what}{when}", retry_at=retry_at, **kw)
        if status in (401, 403) or error in AUTH_ERRORS:
            hint = ""
            if what == "logging in" or "password" in said.lower():
                hint = (f" (check the handle '{self.handle}' and the app password in "
                        f"CRIER_{re.sub(r'[^A-Z0-9]', '_', self.account.upper())}_APP_PASSWORD)")
            return AuthError(f"{self.service} refused the credentials while {what}: "
                             f"{said}{hint}", **kw)
        if status is not None and status >= 500:
            if write:
                return AmbiguousError(f"the server answered {status} while {what}; the "
                                      f"record may exist: {said}", **kw)
            return TransientError(f"the server answered {status} while {what}: {said}", **kw)
        return RejectedError(f"the server refused {what}: {said}", **kw)

    def _scrub(self, text: str) -> str:
        for secret in self._session.secrets():
            if secret:
                text = text.replace(secret, "***")
        return text

def _dot(data: dict[str, Any]) -> Any:
    from atproto_client.models.dot_dict import DotDict

    return DotDict(data)


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)

def _said(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    message = getattr(content, "message", None)
    error = getattr(content, "error", None)
    if message or error:
        return f"{error}: {message}" if error and message else str(message or error)
    return f"HTTP {getattr(response, 'status_code', '?')}"


def _local_path(source: str) -> str | None:
    if source.startswith("file://"):
        return url2pathname(urlsplit(source).path)
    if re.match(r"(?i)[a-z][a-z0-9+.-]*://", source):
        return None
    return source


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(stamp: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())
