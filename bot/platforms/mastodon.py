"""Mastodon: post statuses through Mastodon.py and translate its errors into `bot.errors`.

The instance says its own limits (`GET /api/v2/instance`), so nothing here hard-codes 500
except as a last resort. Posts carry the delivery's Idempotency-Key, so a retry after a
timeout returns the status the first attempt created instead of a second one.
Mastodon.py (and requests) are imported on first use, so `crier --help` never pays for them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from bot import errors
from bot.models import Media, Post, Published, Rules

if TYPE_CHECKING:
    import requests
    from mastodon import Mastodon

log = logging.getLogger(__name__)

# https://docs.joinmastodon.org/user/posting/#text : the default when an instance won't say.
DEFAULT_LIMIT = 500
# https://docs.joinmastodon.org/user/posting/#links : every URL counts as 23 characters.
DEFAULT_URL_WEIGHT = 23
# https://docs.joinmastodon.org/user/posting/#media : alt text up to 1500, 4 attachments.
DEFAULT_ALT_TEXT_LIMIT = 1500
DEFAULT_MAX_MEDIA = 4
# https://docs.joinmastodon.org/methods/accounts/#statuses : at most 40 statuses a page.
PAGE_SIZE, MAX_PAGES = 40, 5
# https://docs.joinmastodon.org/methods/media/#v2 : 202 means "still processing", poll it.
MEDIA_WAIT = 60.0

# https://github.com/mastodon/mastodon/blob/main/app/models/account.rb (MENTION_RE):
# Mastodon renders "@user@domain" as "@user", so both sides compare in that form.
_MENTION = re.compile(r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w.-]+\w",
                      re.IGNORECASE)
# 403s that are about the account or token, not this one post.
_AUTH_403 = re.compile(r"outside the authorized scopes|login is (currently disabled|missing a "
                       r"confirmed|currently pending approval)|suspended", re.IGNORECASE)


class MastodonPublisher:
    platform = "mastodon"

    def __init__(self, account: str, instance: str, access_token: str, *,
                 timeout: float = 10.0, visibility: str = "public",
                 session: requests.Session | None = None, media_poll_interval: float = 1.0):
        self.account, self.instance = account, instance
        self.timeout, self.visibility = timeout, visibility
        self.media_poll_interval = media_poll_interval
        self._token = access_token
        self._session = session
        self._api: Mastodon | None = None
        self._rules: Rules | None = None
        self._max_media = DEFAULT_MAX_MEDIA
        self._account_id: str | None = None
        self._seen = threading.local()  # the last HTTP response in this thread

    def __repr__(self) -> str:
        return f"MastodonPublisher(account={self.account!r}, instance={self.instance!r})"

    # -- Publisher -------------------------------------------------------------------------------
    def rules(self) -> Rules:
        """The instance's limits, asked once: v2 instance, else v1, else 500 with a warning."""
        if self._rules is None:
            self._rules = self._fetch_rules()
        return self._rules

    def publish(self, post: Post, idempotency_key: str) -> Published:
        api = self._client()
        media = [m for m in post.media if self._local_path(m)]
        if len(media) > self._max_media:
            log.warning("%s: %d images, the instance takes %d; dropping the rest",
                        self.account, len(media), self._max_media)
            media = media[:self._max_media]
        media_ids = []
        for m in media:
            try:
                media_ids.append(self._upload(api, m))
            except errors.RejectedError as e:  # as on X: the post matters more than its image
                log.warning("%s: the instance refused image %s (%s); posting without it",
                            self.account, m.source, e.detail)
        try:
            status = api.status_post(post.text, idempotency_key=idempotency_key,
                                     visibility=post.visibility or self.visibility,
                                     language=post.language, spoiler_text=post.spoiler or None,
                                     media_ids=media_ids or None)
        except Exception as exc:  # the request may have reached the instance
            raise self._translate(exc, ambiguous=True) from exc
        log.info("%s: posted status %s (idempotency key %s)", self.account, status["id"],
                 idempotency_key)
        return Published(remote_id=str(status["id"]), url=status.get("url"))

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        """Our own status created at/after `since` whose text is `post.text` (HTML → text)."""
        api = self._client()
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        since = since.replace(microsecond=since.microsecond // 1000 * 1000)  # API has ms
        wanted = _normalize(post.text)
        max_id = None
        try:
            me = self._me(api)
            for _ in range(MAX_PAGES):
                page = api.account_statuses(me, limit=PAGE_SIZE, max_id=max_id,
                                            exclude_reblogs=True)
                for status in page:
                    if status["created_at"] < since:
                        return None  # newest first: everything after this is older
                    if not status.get("reblog") and _normalize(
                            _plain_text(status.get("content") or "")) == wanted:
                        log.info("%s: found existing status %s", self.account, status["id"])
                        return Published(remote_id=str(status["id"]), url=status.get("url"))
                if len(page) < PAGE_SIZE:
                    return None
                max_id = page[-1]["id"]
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        log.warning("%s: stopped looking for an existing status after %d pages", self.account,
                    MAX_PAGES)
        return None

    def boost(self, url: str, remote_id: str | None, *, same_instance: bool) -> Published:
        """Reblog a status: by its id on our own instance, else after resolving its URL here
        (search with resolve=true fetches it by ActivityPub). Reblogging twice is a no-op on
        Mastodon, so a retry after any failure is safe."""
        api = self._client()
        try:
            status_id = remote_id if same_instance and remote_id else None
            if status_id is None:
                found = api.search_v2(url, resolve=True, result_type="statuses")
                statuses = found.get("statuses") or []
                if not statuses:
                    raise errors.TransientError(
                        f"{self.instance} could not resolve {url} yet (federation lag?)",
                        platform=self.platform, account=self.account)
                status_id = statuses[0]["id"]
            reblog = api.status_reblog(status_id)
        except errors.PublishError:
            raise
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        log.info("%s: boosted %s", self.account, url)
        return Published(remote_id=str(reblog["id"]), url=url)

    def delete(self, remote_id: str) -> None:
        """DELETE /api/v1/statuses/:id (https://docs.joinmastodon.org/methods/statuses/#delete).
        A 404 "Record not found" means it is already gone (deleted by hand, or by an earlier
        attempt whose answer was lost): that is what was asked. Reblogs of it go with it."""
        from mastodon import MastodonNotFoundError

        api = self._client()
        try:
            api.status_delete(remote_id)
        except MastodonNotFoundError:
            log.info("%s: status %s was already gone", self.account, remote_id)
            return
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        log.info("%s: deleted status %s", self.account, remote_id)

    def watch(self, hashtags: list[str], *, mentions: bool = True, limit: int = 40) -> dict:
        """What the community posted lately: the hashtags' public timelines and the posts
        mentioning us, with our account id and the ids we block or mute."""
        api = self._client()
        try:
            me = self._me(api)
            found: list[tuple[dict, str]] = []
            for tag in hashtags:
                found += [(s, f"#{tag}") for s in api.timeline_hashtag(tag.lstrip("#"),
                                                                        limit=limit)]
            if mentions:
                found += [(n["status"], "mention") for n in
                          api.notifications(types=["mention"], limit=limit) if n.get("status")]
            blocked = [str(a["id"]) for a in api.blocks()] + [a["acct"] for a in api.blocks()]
            muted = [str(a["id"]) for a in api.mutes()] + [a["acct"] for a in api.mutes()]
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        return {"me": me, "found": [(dict(s), via) for s, via in found],
                "blocked": blocked, "muted": muted}

    def verify(self) -> str:
        """The account's handle, "@user@instance-host"; AuthError if the token is refused."""
        api = self._client()
        try:
            me = api.account_verify_credentials()
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        self._account_id = str(me["id"])
        return f"@{me['username']}@{urlsplit(api.api_base_url).hostname}"

    # -- internals -------------------------------------------------------------------------------
    def _client(self) -> Mastodon:
        if self._api is None:
            import requests
            from mastodon import Mastodon

            session = self._session or requests.Session()
            session.hooks["response"].append(self._remember)
            self._api = Mastodon(access_token=self._token, api_base_url=self.instance,
                                 ratelimit_method="throw", request_timeout=self.timeout,
                                 session=session, version_check_mode="none")
        return self._api

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._seen.response = response

    def _me(self, api: Mastodon) -> str:
        if self._account_id is None:
            self._account_id = str(api.account_verify_credentials()["id"])
        return self._account_id

    def _fetch_rules(self) -> Rules:
        from mastodon import MastodonNotFoundError

        api = self._client()
        config: dict = {}
        try:
            try:
                config = api.instance_v2().get("configuration") or {}
            except MastodonNotFoundError:
                log.info("%s: no v2 instance API, asking v1", self.account)
            limit = (config.get("statuses") or {}).get("max_characters")
            if not limit:
                v1 = api.instance_v1()
                config = v1.get("configuration") or config
                limit = (config.get("statuses") or {}).get("max_characters") \
                    or v1.get("max_toot_chars")
        except MastodonNotFoundError:
            limit = None
        except Exception as exc:
            raise self._translate(exc, ambiguous=False) from exc
        if not limit:
            log.warning("%s: the instance does not state a character limit; assuming %d",
                        self.account, DEFAULT_LIMIT)
            limit = DEFAULT_LIMIT
        statuses = config.get("statuses") or {}
        media = config.get("media_attachments") or {}
        self._max_media = statuses.get("max_media_attachments") or DEFAULT_MAX_MEDIA
        extra = {"image_max_bytes": media["image_size_limit"]} \
            if media.get("image_size_limit") else {}
        return Rules(platform="mastodon", limit=int(limit), counter="mastodon",
                     url_weight=statuses.get("characters_reserved_per_url") or DEFAULT_URL_WEIGHT,
                     alt_text_limit=media.get("description_limit") or DEFAULT_ALT_TEXT_LIMIT,
                     **extra)

    def _local_path(self, media: Media) -> str | None:
        source = media.source
        if source.startswith("file://"):
            return url2pathname(urlsplit(source).path)
        if "://" in source:
            log.warning("%s: skipping media %s: not a local file", self.account, source)
            return None
        return source

    def _upload(self, api: Mastodon, media: Media) -> str:
        """Upload one image with its alt text and wait until the instance has processed it.

        Not Mastodon.py's `synchronous=True`: that sleeps 5 s after every check (even the
        last), never gives up, and turns a 401 or 429 while waiting into a generic error.
        """
        path = self._local_path(media)
        try:
            attachment = api.media_post(path, mime_type=media.mime_type,
                                        description=media.alt or None)
            deadline, delay = time.monotonic() + MEDIA_WAIT, self.media_poll_interval
            while attachment.get("url") is None:
                if time.monotonic() > deadline:
                    raise errors.TransientError(
                        f"media {attachment['id']} still processing after {MEDIA_WAIT:.0f} s",
                        platform=self.platform, account=self.account)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                attachment = api.media(attachment["id"])
        except errors.PublishError:
            raise
        except Exception as exc:  # nothing is posted yet: plain transient, not ambiguous
            raise self._translate(exc, ambiguous=False) from exc
        log.info("%s: uploaded %s as media %s", self.account, path, attachment["id"])
        return str(attachment["id"])

    def _translate(self, exc: BaseException, *, ambiguous: bool) -> errors.PublishError:
        """Mastodon.py's exception → ours. `ambiguous`: the request may have been applied."""
        import mastodon as m

        status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        detail = exc.args[3] if len(exc.args) > 3 and exc.args[3] else None
        if detail is None and status is not None:
            detail = f"HTTP {status} {exc.args[2] if len(exc.args) > 2 else ''}".strip()
        message = self._scrub(str(detail or exc))
        kw: dict[str, Any] = {"platform": self.platform, "account": self.account,
                              "status": status}
        transient = errors.AmbiguousError if ambiguous else errors.TransientError
        response = getattr(self._seen, "response", None)
        if isinstance(exc, m.MastodonRatelimitError):
            if response is not None and response.status_code == 429:
                return errors.RateLimitedError(f"rate limited: {message}",
                                               retry_at=self._retry_at(response),
                                               **{**kw, "status": 429})
            # Mastodon.py also raises this when it can't read a reset header of a response
            # that may well have been a success.
            return transient(message, **kw)
        if isinstance(exc, m.MastodonUnauthorizedError) or status == 401:
            return errors.AuthError(f"access token refused: {message}", **kw)
        if isinstance(exc, m.MastodonNetworkError):
            return transient(f"network error: {message}", **kw)
        if isinstance(exc, m.MastodonServerError) or (status and status >= 500):
            return transient(f"server error {status}: {message}", **kw)
        if status == 403 and _AUTH_403.search(message):
            return errors.AuthError(message, **kw)
        if status and 400 <= status < 500:
            return errors.RejectedError(message, **kw)
        if isinstance(exc, (m.MastodonIOError, m.MastodonVersionError, ValueError)):
            return errors.RejectedError(message, **kw)  # a bad file, mime type or argument
        return transient(message, **kw)  # e.g. a 200 whose body wasn't JSON

    def _retry_at(self, response: requests.Response) -> datetime | None:
        """X-RateLimit-Reset: ISO-8601 from Mastodon, epoch seconds from some others."""
        value = response.headers.get("X-RateLimit-Reset", "").strip()
        try:
            if re.fullmatch(r"\d+(\.\d+)?", value):
                return datetime.fromtimestamp(float(value), UTC)
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
        except ValueError:
            reset = self._api.ratelimit_reset if self._api else None  # already epoch
            return datetime.fromtimestamp(reset, UTC) if reset else None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


class _TextExtractor(HTMLParser):
    """Status HTML → the text that was posted: links as their href, mentions and hashtags
    as written, <br> as a newline, paragraphs separated by a blank line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._in_link = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            a = dict(attrs)
            classes = (a.get("class") or "").split()
            if "mention" in classes or "hashtag" in classes or not a.get("href"):
                return  # their text is what was written ("@user", "#tag")
            self.parts.append(a["href"] or "")
            self._in_link += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append("\n\n")
        elif tag == "a" and self._in_link:
            self._in_link -= 1

    def handle_data(self, data: str) -> None:
        if not self._in_link:
            self.parts.append(data)


def _plain_text(content: str) -> str:
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts)


def _normalize(text: str) -> str:
    return " ".join(_MENTION.sub(r"@\1", text).split())
