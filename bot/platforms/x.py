"""X (Twitter): a `Publisher` over tweepy's API v2 `Client`, OAuth 1.0a user context.

tweepy is imported on first use, so `crier --help` does not pay for it.

**api_base.** tweepy 4.17 hard-codes `https://api.twitter.com` for every v2 call
(`BaseClient.request`). To reach another base (a test server, a proxy) a transport adapter is
mounted on the tweepy session for that host; it rewrites the URL to `api_base` just before
sending. requests-oauthlib signs the request earlier, while preparing it, so the OAuth 1.0a
signature covers the ORIGINAL `https://api.twitter.com/...` URL; the fake server in
`tests/fakes/x_server.py` verifies it against that URL. With the default base nothing is
rewritten. The same adapter enforces `timeout` on every request (tweepy's v2
Client has no timeout option at all) and never retries: a retried POST could post twice.

**Error translation** (one table, `_translate`):

    requests ConnectTimeout, refused          -> TransientError  (nothing was sent)
    requests Timeout / ConnectionError        -> AmbiguousError on writes, TransientError on reads
    tweepy TwitterServerError (5xx)           -> AmbiguousError on writes, TransientError on reads
    tweepy TooManyRequests (429)              -> RateLimitedError(retry_at = x-rate-limit-reset)
    tweepy Unauthorized (401)                 -> AuthError
    tweepy Forbidden, app lacks permission    -> AuthError (the host must fix the app settings)
    tweepy Forbidden, "duplicate content"     -> DuplicateError
    HTTP 402 (credits depleted)               -> CreditsExhaustedError "X credits exhausted"
    tweepy Forbidden / BadRequest / other 4xx -> RejectedError with X's own message

X bills per request (bot.xcost); an app whose prepaid credits are spent gets 402 with X's
problem JSON (title "CreditsDepleted", detail "Your enrolled account ... does not have any
credits to fulfill this request."): the delivery fails, it is not retried blindly.

**Images** go to `POST /2/media/upload` (multipart, raw bytes, `media_category=tweet_image`) and
their alt text to `POST /2/media/metadata`: X retired the v1.1 upload host that tweepy's
`API.simple_upload` still calls, and tweepy's v2 `Client` has no upload method, so the upload is
one request on the Client's own session (signed, rebased and timed like every other call).

**Deleting** (`delete`, for `crier remove`): a 404, or X's `{"deleted": false}`, means the
tweet is already gone, which is what was asked; other failures translate as reads do (a
timeout or 5xx is transient, never ambiguous: deleting twice is harmless).

Messages carry X's words and the account name, never a key, secret or token.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.errors import (
    AmbiguousError,
    AuthError,
    CreditsExhaustedError,
    DuplicateError,
    NotAllowedError,
    PublishError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from bot.models import Media, Post, Published, Rules
from bot.textlen import X_RULES  # (the dry run applies these very rules)

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_API_BASE = "https://api.twitter.com"        # what tweepy 4.17 Client hard-codes
DEFAULT_TIMEOUT = 10.0
# https://docs.x.com/x-api/posts/manage-tweets (media.media_ids maxItems 4)
MAX_MEDIA = 4
# https://docs.x.com/x-api/media/upload-media; media-metadata-create (alt_text.text maxLength 1000)
UPLOAD_ROUTE = "/2/media/upload"
METADATA_ROUTE = "/2/media/metadata"
ALT_TEXT_LIMIT = 1000
# GET /2/users/:id/tweets: max_results 5..100 per page; look back at most this many pages
TIMELINE_PAGE_SIZE = 100
TIMELINE_MAX_PAGES = 5
DUPLICATE_MARKERS = ("duplicate content", "status is a duplicate")   # v2 detail, v1.1 code 187
PERMISSION_MARKERS = ("oauth1 app permissions", "client-not-enrolled",
                      "not configured with the appropriate")
_TCO = re.compile(r"https?://t\.co/[A-Za-z0-9]+")
_PLACEHOLDER = "\ue000"    # a private-use character stands in for every link when comparing

_adapter_class: type | None = None


def _rebase_adapter_class() -> type:
    """requests' HTTPAdapter subclass, built on first use (keeps requests off the import path)."""
    global _adapter_class
    if _adapter_class is None:
        from requests.adapters import HTTPAdapter
        from requests.utils import should_bypass_proxies

        class RebaseAdapter(HTTPAdapter):
            """Sends requests for one origin to another base URL, with a fixed timeout.

            Mounted for an origin such as https://api.twitter.com; the request was already
            signed for that origin, only its destination changes.
            """

            def __init__(self, origin: str, base: str, timeout: float):
                super().__init__(max_retries=0)     # never resend: a POST may have landed
                self.origin, self.base, self.timeout = origin.rstrip("/"), base.rstrip("/"), \
                    timeout

            def send(self, request: Any, stream: bool = False, timeout: Any = None,
                     verify: Any = True, cert: Any = None, proxies: Any = None) -> Any:
                url = request.url
                if self.base != self.origin and url.startswith(self.origin + "/"):
                    request.url = self.base + url[len(self.origin):]
                    if proxies and should_bypass_proxies(request.url, no_proxy=None):
                        proxies = {}
                return super().send(request, stream=stream, timeout=self.timeout,
                                    verify=verify, cert=cert, proxies=proxies)

        _adapter_class = RebaseAdapter
    return _adapter_class


def mount_rebase(session: Any, origins: dict[str, str], timeout: float) -> None:
    """Route `session`'s requests for each origin (https://host) to its new base URL.

    Also sets `timeout` (seconds) on every request through those origins. The OAuth 1.0a
    signature stays the one computed for the original URL (see the module docstring).
    """
    adapter_class = _rebase_adapter_class()
    for origin, base in origins.items():
        session.mount(origin.rstrip("/") + "/", adapter_class(origin, base, timeout))


class XPublisher:
    """Posts to one X account. Build it cheaply; it talks to X only when asked to."""

    platform = "x"

    def __init__(self, account: str, *, consumer_key: str, consumer_secret: str,
                 access_token: str, access_token_secret: str,
                 api_base: str = DEFAULT_API_BASE, timeout: float = DEFAULT_TIMEOUT):
        self.account = account
        self._credentials = (consumer_key, consumer_secret, access_token, access_token_secret)
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client_obj: Any = None
        self._me: tuple[str, str] | None = None        # (user id, username), cached
        self.last_reply_error: PublishError | None = None   # the reply of the last publish

    def __repr__(self) -> str:   # never show the credentials
        return f"XPublisher(account={self.account!r}, api_base={self.api_base!r})"

    # -- the Publisher interface --------------------------------------------------------

    def rules(self) -> Rules:
        return X_RULES

    def publish(self, post: Post, idempotency_key: str) -> Published:
        """Create the tweet (and the reply carrying the link, when the post has one).

        X has no idempotency key: after an AmbiguousError the service must call
        `find_existing` before sending again. A failed reply is logged as a warning and kept
        in `last_reply_error`; the main tweet stands and is returned.
        """
        log.debug("x account '%s': delivery %s (X takes no idempotency key)",
                  self.account, idempotency_key)
        self.last_reply_error = None
        _, username = self._whoami()
        media_ids = self._upload_media(post.media)
        response = self._call(
            "creating the tweet", True,
            lambda c: c.create_tweet(text=post.text, media_ids=media_ids or None,
                                     user_auth=True))
        tweet_id = str(response.data["id"])
        published = Published(tweet_id, self._status_url(username, tweet_id))
        log.info("x account '%s': posted tweet %s (delivery %s)", self.account, tweet_id,
                 idempotency_key)
        if post.reply_text:
            reply_id = self._reply(tweet_id, post.reply_text, idempotency_key)
            if reply_id:
                published = Published(tweet_id, published.url, reply_id,
                                       self._status_url(username, reply_id))
        return published

    def boost(self, url: str, remote_id: str | None, *, same_instance: bool) -> Published:
        """Repost a tweet. X's Free access level cannot (403): NotAllowedError, with X's
        reason, so the delivery is skipped rather than retried or the account stopped."""
        if not remote_id:
            raise RejectedError(f"no tweet id to repost for {url}", platform=self.platform,
                                account=self.account)
        user_id, _ = self._whoami()
        try:
            self._call("reposting", True, lambda c: c.retweet(remote_id, user_auth=True))
        except (AuthError, RejectedError) as e:
            if e.status == 403:
                raise NotAllowedError(f"X does not allow this app to repost: {e.detail}",
                                      platform=self.platform, account=self.account,
                                      status=403) from None
            raise
        log.info("x account '%s': reposted %s", self.account, url)
        return Published(remote_id, url)

    def delete(self, remote_id: str) -> None:
        """DELETE /2/tweets/:id (deletePosts). A 404, or `{"deleted": false}` (X found no
        such tweet of ours to delete), means it is already gone. Reposts of it go with it;
        its link reply does not (the caller deletes that one too)."""
        try:
            response = self._call("deleting the tweet", False,
                                  lambda c: c.delete_tweet(remote_id, user_auth=True))
        except RejectedError as e:
            if e.status != 404:
                raise
            response = None
        deleted = bool(response and (response.data or {}).get("deleted"))
        log.info("x account '%s': %s tweet %s", self.account,
                 "deleted" if deleted else "no longer finds", remote_id)

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        """Our tweet created at or after `since` whose text is this post's, if any.

        X returns text with every link replaced by a t.co link (entities.urls gives the
        expanded URL) and `&`, `<`, `>` HTML-escaped, plus a trailing t.co link for attached
        media; both sides are brought to one form before comparing. Nothing older than
        `since` matches (X's `start_time` has whole seconds: its `created_at` is checked too):
        an older tweet with the same text is another post's, never this one's.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        user_id, username = self._whoami()
        wanted = _our_form(post.text)
        token: str | None = None
        for _ in range(TIMELINE_MAX_PAGES):
            page = self._call(
                "reading the account's recent tweets", False,
                lambda c, token=token: c.get_users_tweets(
                    user_id, start_time=since.astimezone(UTC),
                    max_results=TIMELINE_PAGE_SIZE, pagination_token=token,
                    tweet_fields=["created_at", "entities"], user_auth=True))
            if page.errors and not page.data:
                log.warning("x account '%s': timeline lookup answered errors: %s",
                            self.account, [e.get("detail") or e.get("message")
                                           for e in page.errors])
            for tweet in page.data or ():
                if _created_before(tweet.data, since):
                    continue
                if _same_post(wanted, _their_form(tweet.data)):
                    tweet_id = str(tweet.data["id"])
                    log.info("x account '%s': found tweet %s already posted", self.account,
                             tweet_id)
                    return Published(tweet_id, self._status_url(username, tweet_id))
            token = (page.meta or {}).get("next_token")
            if not token:
                return None
        log.warning("x account '%s': stopped looking after %d pages of tweets since %s",
                    self.account, TIMELINE_MAX_PAGES, since.isoformat())
        return None

    def verify(self) -> str:
        """Check the credentials against GET /2/users/me; return "@username"."""
        with self._lock:
            self._me = None
        return "@" + self._whoami()[1]

    # -- pieces -------------------------------------------------------------------------

    def _reply(self, tweet_id: str, text: str, idempotency_key: str) -> str | None:
        try:
            response = self._call(
                "creating the reply", True,
                lambda c: c.create_tweet(text=text, in_reply_to_tweet_id=tweet_id,
                                         user_auth=True))
        except PublishError as exc:
            self.last_reply_error = exc
            log.warning("x account '%s': tweet %s is posted but its reply was not (delivery "
                        "%s): %s", self.account, tweet_id, idempotency_key, exc.detail)
            return None
        log.info("x account '%s': posted reply %s to tweet %s", self.account,
                 response.data["id"], tweet_id)
        return str(response.data["id"])

    def _upload_media(self, media: tuple[Media, ...]) -> list[str]:
        """Upload local image files (with alt text); returns media ids. URLs are skipped."""
        if len(media) > MAX_MEDIA:
            log.warning("x account '%s': X takes %d images; dropping %d", self.account,
                        MAX_MEDIA, len(media) - MAX_MEDIA)
        ids: list[str] = []
        for item in media[:MAX_MEDIA]:
            if re.match(r"(?i)[a-z][a-z0-9+.-]*://", item.source):
                log.warning("x account '%s': skipping image %s: only local files are uploaded",
                            self.account, item.source)
                continue
            if not os.path.isfile(item.source):
                log.warning("x account '%s': skipping image %s: no such file", self.account,
                            item.source)
                continue
            try:
                with open(item.source, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                log.warning("x account '%s': skipping image %s: %s", self.account,
                            item.source, exc.strerror or exc)
                continue
            try:
                uploaded = self._call(
                    "uploading an image", False,
                    lambda c, d=data, i=item: self._upload(c, os.path.basename(i.source), d))
            except RejectedError as exc:
                log.warning("x account '%s': X refused image %s, posting without it: %s",
                            self.account, item.source, exc.detail)
                continue
            media_id = str(uploaded["id"])
            if item.alt:
                alt = item.alt
                if len(alt) > ALT_TEXT_LIMIT:
                    log.warning("x account '%s': alt text of %s cut to %d characters",
                                self.account, item.source, ALT_TEXT_LIMIT)
                    alt = alt[:ALT_TEXT_LIMIT - 1] + "…"
                body = {"id": media_id, "metadata": {"alt_text": {"text": alt}}}
                try:
                    self._call("adding alt text", False,
                               lambda c, b=body: c.request("POST", METADATA_ROUTE, json=b,
                                                           user_auth=True))
                except RejectedError as exc:
                    log.warning("x account '%s': X refused the alt text of %s, posting the "
                                "image without it: %s", self.account, item.source, exc.detail)
            ids.append(media_id)
        return ids

    def _upload(self, client: Any, filename: str, data: bytes) -> dict[str, Any]:
        """POST /2/media/upload as multipart with the raw bytes; returns the response's data.

        tweepy's Client.request sends JSON only (the image would go base64, a third larger,
        and into tweepy's debug log); this is the same request on the same session, signed
        with the same OAuth 1.0a user context, its failures raised as tweepy raises them.
        """
        import tweepy

        auth = tweepy.OAuth1UserHandler(*self._credentials).apply_auth()
        with client.session.post(
                DEFAULT_API_BASE + UPLOAD_ROUTE, auth=auth,
                headers={"User-Agent": client.user_agent},
                data={"media_category": "tweet_image"},
                files={"media": (filename, data, "application/octet-stream")}) as response:
            _raise_like_tweepy(response)
            try:
                payload = response.json()
            except ValueError:
                payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict) \
                or "id" not in payload["data"]:
            raise RejectedError(f"X answered the upload of {filename} without a media id",
                                platform=self.platform, account=self.account)
        return payload["data"]

    def _whoami(self) -> tuple[str, str]:
        with self._lock:
            if self._me is not None:
                return self._me
        response = self._call("checking the account", False,
                              lambda c: c.get_me(user_auth=True))
        if response.data is None:
            raise AuthError("X did not say which user these credentials belong to",
                            platform=self.platform, account=self.account)
        me = (str(response.data.data["id"]), str(response.data.data["username"]))
        with self._lock:
            self._me = me
        return me

    @staticmethod
    def _status_url(username: str, tweet_id: str) -> str:
        return f"https://x.com/{username}/status/{tweet_id}"

    # -- tweepy, built lazily, and its errors ---------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                import tweepy

                ck, cs, at, ats = self._credentials
                client = tweepy.Client(consumer_key=ck, consumer_secret=cs, access_token=at,
                                       access_token_secret=ats, wait_on_rate_limit=False)
                mount_rebase(client.session, {DEFAULT_API_BASE: self.api_base}, self.timeout)
                self._client_obj = client
            return self._client_obj

    def _call(self, what: str, write: bool, fn: Callable[[Any], T]) -> T:
        """Run one tweepy call; translate whatever it raises into bot.errors."""
        client = self._client()
        try:
            return fn(client)
        except Exception as exc:   # translated below, or re-raised untouched
            error = self._translate(exc, what, write)
            if error is None:
                raise
            log.debug("x account '%s': %s while %s", self.account, type(exc).__name__, what)
            raise error from None   # the library's exception holds the request; keep it out

    def _translate(self, exc: BaseException, what: str, write: bool) -> PublishError | None:
        import requests
        import tweepy

        kw: dict[str, Any] = {"platform": self.platform, "account": self.account}
        if isinstance(exc, requests.ConnectTimeout) or _refused(exc):
            return TransientError(f"could not connect to X while {what} (nothing was sent)",
                                  **kw)
        if isinstance(exc, requests.Timeout | requests.ConnectionError):
            kind = "timed out" if isinstance(exc, requests.Timeout) \
                else "lost the connection"
            if write:
                return AmbiguousError(f"{kind} while {what} after {self.timeout:g} s; the "
                                      "tweet may exist", **kw)
            return TransientError(f"{kind} while {what}", **kw)
        if not isinstance(exc, tweepy.HTTPException):
            return None
        status = getattr(exc.response, "status_code", None)
        kw["status"] = status
        raw = "; ".join(str(m) for m in exc.api_messages if m) or f"HTTP {status}"
        said = self._scrub(raw)
        lowered = raw.lower()   # classify by X's own words (a scrubbed secret could split them)
        if isinstance(exc, tweepy.TooManyRequests):
            reset = exc.reset_time
            retry_at = datetime.fromtimestamp(reset, UTC) if reset is not None else None
            when = f"; retry at {retry_at.isoformat()}" if retry_at else ""
            return RateLimitedError(f"rate limited while {what}{when}", retry_at=retry_at, **kw)
        if isinstance(exc, tweepy.TwitterServerError):
            if write:
                return AmbiguousError(f"X answered {status} while {what}; the tweet may "
                                      f"exist: {said}", **kw)
            return TransientError(f"X answered {status} while {what}: {said}", **kw)
        if isinstance(exc, tweepy.Unauthorized):
            return AuthError(f"X refused the credentials while {what}: {said}", **kw)
        if status == 402:   # pay-per-use: the app's credits are spent (docs.x.com pricing)
            return CreditsExhaustedError(f"X credits exhausted while {what}: {said}", **kw)
        if isinstance(exc, tweepy.Forbidden):
            if any(m in lowered for m in DUPLICATE_MARKERS) or 187 in exc.api_codes:
                return DuplicateError(f"X says this exact text was already posted: {said}", **kw)
            if any(m in lowered for m in PERMISSION_MARKERS):
                return AuthError(f"the X app may not do this while {what}: {said}", **kw)
        return RejectedError(f"X refused {what}: {said}", **kw)

    def _scrub(self, text: str) -> str:
        for secret in self._credentials:
            if secret:
                text = text.replace(secret, "***")
        return text


def _raise_like_tweepy(response: Any) -> None:
    """Raise for a failed response the exception tweepy's Client.request would raise."""
    import tweepy

    status = response.status_code
    if 200 <= status < 300:
        return
    if status == 429:
        reset = response.headers.get("x-rate-limit-reset", "")
        raise tweepy.TooManyRequests(response, reset_time=int(reset) if reset.isdigit() else None)
    if status >= 500:
        raise tweepy.TwitterServerError(response)
    raise {400: tweepy.BadRequest, 401: tweepy.Unauthorized, 403: tweepy.Forbidden,
           404: tweepy.NotFound}.get(status, tweepy.HTTPException)(response)


def _refused(exc: BaseException) -> bool:
    """A requests ConnectionError raised before anything was sent (refused, DNS failure)."""
    from urllib3.exceptions import NewConnectionError

    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, NewConnectionError)


# -- comparing our text with X's rendering of it (pure) ------------------------------------


def _created_before(tweet: dict[str, Any], since: datetime) -> bool:
    """Is the tweet dated before `since`? (Undated: no, X's start_time already filtered it.)"""
    stamp = tweet.get("created_at")
    if not stamp:
        return False
    try:
        created = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return False
    return created < since


def _squash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _url_key(url: str | None) -> str | None:
    """A URL reduced to what X keeps: no scheme, lower-case host, no trailing slash."""
    if url is None:
        return None
    bare = re.sub(r"(?i)^[a-z][a-z0-9+.-]*://", "", url.strip())
    host, sep, rest = bare.partition("/")
    return (host.lower().removeprefix("www.") + sep + rest).rstrip("/")


def _our_form(text: str) -> tuple[str, list[str | None]]:
    """Our text with each link (as twitter-text finds them, like X does) as a placeholder."""
    from bot.textlen import extract_urls

    out, urls, pos = "", [], 0
    for url, start, end in extract_urls(text):
        out += text[pos:start] + _PLACEHOLDER
        urls.append(_url_key(url))
        pos = end
    return _squash(out + text[pos:]), urls


def _their_form(tweet: dict[str, Any]) -> tuple[str, list[str | None]]:
    """X's text with t.co links as placeholders (media links dropped), HTML unescaped."""
    text = tweet.get("text", "")
    entities = (tweet.get("entities") or {}).get("urls") or []
    expanded: dict[str, list[str | None]] = {}
    media_links = set()
    for entity in entities:
        url = entity.get("url")
        if not url:
            continue
        display = entity.get("display_url") or ""
        if entity.get("media_key") or display.startswith(("pic.x.com", "pic.twitter.com")):
            media_links.add(url)
        else:
            expanded.setdefault(url, []).append(entity.get("expanded_url"))
    urls: list[str | None] = []

    def replace(match: re.Match[str]) -> str:
        link = match.group(0)
        if link in media_links:
            return ""
        queue = expanded.get(link)
        urls.append(_url_key(queue.pop(0)) if queue else None)   # None: unknown, any URL
        return _PLACEHOLDER

    text = _TCO.sub(replace, text)
    return _squash(html.unescape(text)), urls


def _same_post(ours: tuple[str, list[str | None]], theirs: tuple[str, list[str | None]]) -> bool:
    if ours[0] != theirs[0] or len(ours[1]) != len(theirs[1]):
        return False
    return all(t is None or o == t for o, t in zip(ours[1], theirs[1], strict=True))
