"""A local HTTP server that follows the X (Twitter) API v2 contract, for tests and benchmarks.

Shapes come from real recorded responses (tweepy's vcrpy cassettes in
`shared/testdata/recorded/tweepy/`) and X's OpenAPI document
(`shared/testdata/specs/x-api-v2-openapi.json`):

    POST   /2/tweets                        201 {"data": {"id", "text"}}        (createPosts)
    DELETE /2/tweets/:id                    200 {"data": {"deleted": true}}  (false: none such)
    GET    /2/users/me                      200 {"data": {"id", "name", "username"}}
    GET    /2/users/:id/tweets              200 {"data": [...], "meta": {...}}  newest first
    POST   /2/media/upload                  200 {"data": {"id", "media_key", ...}}  (v2 simple)
    POST   /2/media/metadata                200 {"data": {"id", "associated_metadata"}}
    POST   /1.1/media/upload.json           200 {"media_id", "media_id_string", ...} (tweepy.API)
    POST   /1.1/media/metadata/create.json  200, empty body (alt text)

Like X it checks the OAuth 1.0a HMAC-SHA1 signature of every request (401 problem JSON when it is
wrong), counts text with twitter-text v3 weighting (400 over 280), refuses an exact duplicate of a
live tweet (403 "duplicate content"), replaces URLs in returned text with t.co links (entities.urls
carry url / expanded_url / display_url), HTML-escapes `&`, `<`, `>` in returned text, and sends
x-rate-limit-limit / -remaining / -reset (epoch seconds) on every response.

**Which URL the signature covers.** The server stands in for api.twitter.com and
upload.twitter.com. Clients reach it by rewriting `https://api.twitter.com/...` to `srv.url`
*after* requests-oauthlib has signed the request (`bot.platforms.x` does this in a transport
adapter, because tweepy 4.17 hard-codes the host), so the signature covers the ORIGINAL URL. The
server therefore rebuilds that URL from the path: `signed_upload_base` for `/1.1/media/...`,
`signed_api_base` for everything else, plus the query string exactly as received.

Fault injection, all thread-safe and counted down per matching request:

    srv.fail_next(status, count=1, body=None, headers=None, path="/2/tweets", method="POST",
                  after=0)
    srv.timeout_after_create_next(count=1, delay=2.0)   # creates the tweet, answers `delay` s late
    srv.rate_limit_next(reset_in_seconds=60, count=1, path="/2/tweets", method="POST")
    srv.revoke_token() / srv.restore_token()             # 401 on every request while revoked

**Credits (pay-per-use).** `XServer(credits="1.00")` (or `srv.credits = Decimal(...)`) gives
the app a prepaid balance: each post created costs what docs.x.com's pricing says ($0.015, or
$0.200 when its text has a URL, as twitter-text finds them), a repost $0.015 (`srv.spent` adds
them up). As X documents, the balance may go slightly negative; once it is at or below zero
every write answers 402 with X's problem JSON, title "CreditsDepleted" (nothing is created).
`credits=None` (the default): no billing.

State: `srv.tweets` (dicts: id, text, created_at, in_reply_to, media_ids), `srv.media`,
`srv.requests` (dicts: method, path, query, headers, json, status, response_headers, response).

    with XServer(consumer_key="ck", consumer_secret="cs", access_token="at",
                 access_token_secret="ats", username="TBSocialist") as srv:
        srv.url   # "http://127.0.0.1:<port>"
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import html
import itertools
import json
import re
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header, unescape
from twitter_text import extract_urls_with_indices, parse_tweet

DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401,
                "detail": "Unauthorized"}
INVALID_REQUEST_TYPE = "https://api.x.com/2/problems/invalid-request"   # spec enum
MAX_WEIGHTED_LENGTH = 280          # twitter-text config v3 maxWeightedTweetLength
ALT_TEXT_MAX = 1000                # spec: CreateMediaMetadataMetadataAltText.text maxLength
IMAGE_MAX_BYTES = 5 * 1024 * 1024  # X: images up to 5 MB through simple upload
TIMESTAMP_SKEW = 300               # seconds of oauth_timestamp drift accepted
FIRST_TWEET_ID = 1456012973835788293   # ids look like the recorded snowflakes
FIRST_MEDIA_ID = 1349010955083132928
CLIENT_FORBIDDEN_TYPE = "https://api.twitter.com/2/problems/client-forbidden"
# docs.x.com/x-api/getting-started/pricing: Content: Create / (with URL) / User Interaction
PRICE_POST, PRICE_POST_WITH_URL, PRICE_REPOST = Decimal("0.015"), Decimal("0.200"), \
    Decimal("0.015")
CREDITS_DEPLETED_TYPE = "https://api.twitter.com/2/problems/credits"
_TCO_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# (method, route) -> (x-rate-limit-limit, window seconds): X's documented per-user limits.
RATE_LIMITS: dict[tuple[str, str], tuple[int, int]] = {
    ("POST", "/2/tweets"): (200, 900),
    ("DELETE", "/2/tweets/:id"): (50, 900),
    ("GET", "/2/users/me"): (75, 900),
    ("GET", "/2/users/:id/tweets"): (900, 900),
    ("POST", "/2/users/:id/retweets"): (50, 900),
    ("POST", "/2/media/upload"): (415, 900),
    ("POST", "/2/media/metadata"): (500, 900),
    ("POST", "/1.1/media/upload.json"): (415, 900),
    ("POST", "/1.1/media/metadata/create.json"): (500, 900),
}


def problem(status: int, detail: str | None = None, *, title: str | None = None,
            type_: str = "about:blank") -> dict[str, Any]:
    """X's problem JSON: {"title", "detail", "type", "status"}."""
    phrase = HTTPStatus(status).phrase
    return {"title": title or phrase, "detail": detail or phrase, "type": type_,
            "status": status}


def invalid_request(message: str, parameter: str, value: Any) -> dict[str, Any]:
    """X's 400 shape: InvalidRequestProblem plus the per-parameter `errors` list."""
    return {"errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID_REQUEST_TYPE}


def _route(method: str, path: str) -> str:
    if re.fullmatch(r"/2/tweets/[^/]+", path):
        return "/2/tweets/:id"
    if re.fullmatch(r"/2/users/[^/]+/tweets", path):
        return "/2/users/:id/tweets"
    if re.fullmatch(r"/2/users/[^/]+/retweets", path):
        return "/2/users/:id/retweets"
    return path


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _tco(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "https://t.co/" + "".join(_TCO_ALPHABET[b % 62] for b in digest[:10])


def _display_url(url: str) -> str:
    shown = re.sub(r"^https?://", "", url)
    return shown if len(shown) <= 26 else shown[:25] + "…"


def _image_info(data: bytes) -> dict[str, Any]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return {"image_type": "image/png", "w": w, "h": h}
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return {"image_type": "image/gif", "w": w, "h": h}
    if data[:3] == b"\xff\xd8\xff":
        return {"image_type": "image/jpeg"}
    return {"image_type": "application/octet-stream"}


class _Fault:
    def __init__(self, kind: str, count: int, *, path: str | None, method: str | None,
                 after: int = 0, **extra: Any):
        self.kind, self.count, self.path, self.after = kind, count, path, after
        self.method = method.upper() if method else None
        self.extra = extra

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and \
            (self.method is None or self.method == method)


class XServer:
    """A fake X API on 127.0.0.1:<free port>, run in a background thread."""

    def __init__(self, *, consumer_key: str = "ck", consumer_secret: str = "cs",
                 access_token: str = "at", access_token_secret: str = "ats",
                 username: str = "TBSocialist", name: str | None = None,
                 user_id: str = "1072250532645998596",
                 signed_api_base: str = "https://api.twitter.com",
                 signed_upload_base: str = "https://upload.twitter.com",
                 enforce_rate_limits: bool = False, timeline_delay: float = 0.0,
                 clock: Callable[[], datetime] | None = None, allow_retweets: bool = False,
                 credits: Decimal | str | None = None):
        self.consumer_key, self.consumer_secret = consumer_key, consumer_secret
        self.credits = None if credits is None else Decimal(credits)   # None: not billed
        self.spent = Decimal(0)
        # X's Free tier may post but not repost: POST /2/users/:id/retweets answers 403
        self.allow_retweets = allow_retweets
        self.retweets: list[str] = []
        self.chaos = None  # a tests.fakes.chaos.Chaos: random faults on POST /2/tweets
        self.access_token, self.access_token_secret = access_token, access_token_secret
        self.username, self.name, self.user_id = username, name or username, user_id
        self.signed_api_base = signed_api_base.rstrip("/")
        self.signed_upload_base = signed_upload_base.rstrip("/")
        self.enforce_rate_limits = enforce_rate_limits
        self.timeline_delay = timeline_delay   # seconds before a new tweet shows in timelines
        self.clock = clock or (lambda: datetime.now(UTC))

        self.tweets: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._revoked = False
        self._nonces: set[str] = set()
        self._buckets: dict[tuple[str, str], list[int]] = {}   # route -> [remaining, reset]
        self._ids = itertools.count(FIRST_TWEET_ID, 7)
        self._media_ids = itertools.count(FIRST_MEDIA_ID, 11)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("XServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> XServer:
        server = self

        class Handler(_Handler):
            srv = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="x-fake-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()          # wakes handlers sleeping in timeout_after_create_next
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> XServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection -------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, body: Any = None,
                  headers: dict[str, str] | None = None, path: str | None = "/2/tweets",
                  method: str | None = "POST", *, after: int = 0) -> None:
        """Answer the next `count` matching requests with `status` (nothing is created).

        `body` is a dict (sent as JSON), str/bytes (sent raw) or None (X's problem JSON for the
        status). `path` / `method` None match any. `after` lets that many matching requests
        through first (e.g. after=1 fails the reply, not the main tweet).
        """
        with self.lock:
            self._faults.append(_Fault("fail", count, path=path, method=method, after=after,
                                       status=status, body=body, headers=headers or {}))

    def timeout_after_create_next(self, count: int = 1, delay: float = 2.0) -> None:
        """The next `count` POST /2/tweets CREATE the tweet, then answer only after `delay` s.

        Pick a delay longer than the client's timeout: the client sees a timeout although the
        tweet exists, which is exactly the ambiguous case `find_existing` is for.
        """
        with self.lock:
            self._faults.append(_Fault("timeout_after_create", count, path="/2/tweets",
                                       method="POST", delay=delay))

    def rate_limit_next(self, reset_in_seconds: int = 60, count: int = 1,
                        path: str | None = "/2/tweets", method: str | None = "POST") -> None:
        """Answer the next `count` matching requests 429, x-rate-limit-reset = now + reset_in."""
        with self.lock:
            self._faults.append(_Fault("rate_limit", count, path=path, method=method,
                                       reset_in=reset_in_seconds))

    def revoke_token(self) -> None:
        """The user revoked the app: every request is 401 until `restore_token()`."""
        with self.lock:
            self._revoked = True

    def restore_token(self) -> None:
        with self.lock:
            self._revoked = False

    # -- state helpers -----------------------------------------------------------------------

    def add_tweet(self, text: str, *, created_at: datetime | None = None,
                  in_reply_to: str | None = None, media_ids: list[str] | None = None) -> dict:
        """Seed a tweet as if posted earlier (no checks)."""
        with self.lock:
            tweet = {"id": str(next(self._ids)), "text": text,
                     "created_at": created_at or self.clock(), "in_reply_to": in_reply_to,
                     "media_ids": list(media_ids or [])}
            self.tweets.append(tweet)
            return tweet

    def render(self, tweet: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """The tweet's text as X returns it, and its entities.urls.

        Every URL twitter-text finds becomes a t.co link; attached media add a trailing t.co
        link whose entity carries `media_key`; `&`, `<`, `>` are HTML-escaped. Indices are code
        points of the returned text.
        """
        text, out, urls, pos = tweet["text"], "", [], 0
        spans = [(u["indices"][0], u["indices"][1], u["url"])
                 for u in extract_urls_with_indices(text)]
        for n, (start, end, url) in enumerate(spans):
            out += html.escape(text[pos:start], quote=False)
            tco = _tco(f"{tweet['id']}:{n}:{url}")
            expanded = url if re.match(r"(?i)https?://", url) else "http://" + url
            urls.append({"start": len(out), "end": len(out) + len(tco), "url": tco,
                         "expanded_url": expanded, "display_url": _display_url(expanded)})
            out += tco
            pos = end
        out += html.escape(text[pos:], quote=False)
        if tweet["media_ids"]:
            tco = _tco(f"{tweet['id']}:media")
            out = (out + " " if out else "") + tco
            urls.append({"start": len(out) - len(tco), "end": len(out), "url": tco,
                         "expanded_url": f"https://x.com/{self.username}/status/"
                                         f"{tweet['id']}/photo/1",
                         "display_url": "pic.x.com/" + tco.rsplit("/", 1)[1],
                         "media_key": f"3_{tweet['media_ids'][0]}"})
        return out, urls

    # -- request handling (called from handler threads) ----------------------------------------

    def _take_fault(self, method: str, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.count > 0 and fault.matches(method, path):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _rate_headers(self, method: str, path: str, *, exhausted: int | None = None
                      ) -> tuple[dict[str, str], bool]:
        """x-rate-limit-* for this route; True when the (enforced) window is used up."""
        key = (method, _route(method, path))
        limit, window = RATE_LIMITS.get(key, (900, 900))
        now = int(time.time())      # real epoch: clients compare it with their own clock
        with self.lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket[1] <= now:
                bucket = self._buckets[key] = [limit, now + window]
            over = bucket[0] <= 0
            if not over:
                bucket[0] -= 1
            remaining, reset = bucket
        if exhausted is not None:
            remaining, reset = 0, now + exhausted
        return ({"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(remaining),
                 "x-rate-limit-reset": str(reset)}, over and self.enforce_rate_limits)

    def _signed_url(self, path: str) -> str:
        base = self.signed_upload_base if path.startswith("/1.1/media/") else self.signed_api_base
        return base + path

    def _authorized(self, method: str, path: str, query: str, headers: dict[str, str],
                    body: bytes) -> bool:
        """Verify OAuth 1.0a HMAC-SHA1 over the ORIGINAL (api.twitter.com) URL."""
        header = headers.get("authorization", "")
        try:
            oauth = {k: unescape(v) for k, v in parse_authorization_header(header)}
        except ValueError:
            return False
        if (oauth.get("oauth_consumer_key") != self.consumer_key
                or oauth.get("oauth_token") != self.access_token
                or oauth.get("oauth_signature_method") != "HMAC-SHA1"
                or "oauth_signature" not in oauth):
            return False
        try:
            if abs(int(oauth.get("oauth_timestamp", "0")) - time.time()) > TIMESTAMP_SKEW:
                return False
        except ValueError:
            return False
        form = None
        if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
            form = body.decode("utf-8", "replace")
        params = oauth_signature.collect_parameters(
            uri_query=query, body=form, headers={"Authorization": header},
            exclude_oauth_signature=True)
        base_string = oauth_signature.signature_base_string(
            method, oauth_signature.base_string_uri(self._signed_url(path)),
            oauth_signature.normalize_parameters(params))
        expected = oauth_signature.sign_hmac_sha1_with_client(base_string, SimpleNamespace(
            client_secret=self.consumer_secret, resource_owner_secret=self.access_token_secret))
        if not safe_string_equals(expected, oauth["oauth_signature"]):
            return False
        with self.lock:
            nonce = oauth.get("oauth_nonce", "")
            if nonce in self._nonces:          # a replayed request
                return False
            self._nonces.add(nonce)
        return True

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], Any]:
        """Decide the answer: (status, headers, body: dict | str | bytes | None)."""
        split = urlsplit(target)
        path, query = split.path, split.query
        v1 = path.startswith("/1.1/")

        fault = self._take_fault(method, path, ("fail", "rate_limit"))
        if fault is not None and fault.kind == "fail":
            status = fault.extra["status"]
            rate, _ = self._rate_headers(method, path)
            body_out = fault.extra["body"]
            if body_out is None:
                body_out = UNAUTHORIZED if status == 401 else problem(status)
            return status, {**rate, **fault.extra["headers"]}, body_out
        if fault is not None and fault.kind == "rate_limit":
            rate, _ = self._rate_headers(method, path, exhausted=fault.extra["reset_in"])
            return 429, rate, problem(429)

        rate, over = self._rate_headers(method, path)
        with self.lock:
            revoked = self._revoked
        if revoked or not self._authorized(method, path, query, headers, body):
            if v1:
                return 401, rate, {"errors": [{"code": 32,
                                               "message": "Could not authenticate you."}]}
            return 401, rate, UNAUTHORIZED
        if over:
            return 429, rate, problem(429)

        params = dict(parse_qsl(query, keep_blank_values=True))
        route = _route(method, path)
        try:
            if (method, route) == ("POST", "/2/tweets"):
                return self._create_tweet(body, rate)
            if (method, route) == ("DELETE", "/2/tweets/:id"):
                return self._delete_tweet(path.rsplit("/", 1)[1], rate)
            if (method, route) == ("GET", "/2/users/me"):
                return 200, rate, {"data": {"id": self.user_id, "name": self.name,
                                            "username": self.username}}
            if (method, route) == ("GET", "/2/users/:id/tweets"):
                return self._users_tweets(path.split("/")[3], params, rate)
            if (method, route) == ("POST", "/2/users/:id/retweets"):
                return self._retweet(path.split("/")[3], body, rate)
            if (method, path) == ("POST", "/1.1/media/upload.json"):
                return self._upload(body, headers, rate, v2=False)
            if (method, path) == ("POST", "/2/media/upload"):
                return self._upload(body, headers, rate, v2=True)
            if (method, path) == ("POST", "/1.1/media/metadata/create.json"):
                return self._metadata(body, rate, v2=False)
            if (method, path) == ("POST", "/2/media/metadata"):
                return self._metadata(body, rate, v2=True)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, rate, problem(400, f"Malformed request: {exc}",
                                      title="Invalid Request", type_=INVALID_REQUEST_TYPE)
        if v1:
            return 404, rate, {"errors": [{"code": 34,
                                           "message": "Sorry, that page does not exist."}]}
        return 404, rate, problem(404, f"Unknown endpoint {method} {path}",
                                  type_="https://api.x.com/2/problems/resource-not-found")

    def _create_tweet(self, body: bytes, rate: dict[str, str]
                      ) -> tuple[int, dict[str, str], Any]:
        payload = json.loads(body or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
        allowed = {"text", "reply", "media", "quote_tweet_id", "reply_settings", "poll", "geo",
                   "for_super_followers_only", "direct_message_deep_link", "community_id",
                   "nullcast", "card_uri", "made_with_ai", "paid_partnership"}
        extra = set(payload) - allowed
        if extra:
            return 400, rate, invalid_request(f"Unknown field(s): {sorted(extra)}",
                                              sorted(extra)[0], None)
        text = payload.get("text", "")
        media_ids = [str(m) for m in (payload.get("media") or {}).get("media_ids", [])]
        reply_to = (payload.get("reply") or {}).get("in_reply_to_tweet_id")
        if not text and not media_ids:
            return 400, rate, invalid_request("Tweet text is empty.", "text", text)
        counted = parse_tweet(text)
        if counted.weightedLength > MAX_WEIGHTED_LENGTH or not counted.valid:
            return 400, rate, invalid_request(
                f"Tweet text is too long: weighted length {counted.weightedLength} is over "
                f"{MAX_WEIGHTED_LENGTH}.", "text", text)
        with self.lock:
            unknown = [m for m in media_ids if m not in self.media]
            if len(media_ids) > 4 or unknown:
                return 400, rate, invalid_request("Your media IDs are invalid.",
                                                  "media.media_ids", media_ids)
            if reply_to is not None and not any(t["id"] == str(reply_to) for t in self.tweets):
                return 403, rate, problem(403, "You attempted to reply to a Tweet that is "
                                               "deleted or not visible to you.")
            if text and any(t["text"] == text for t in self.tweets):
                return 403, rate, problem(403, DUPLICATE_DETAIL)
            price = PRICE_POST_WITH_URL if extract_urls_with_indices(text) else PRICE_POST
            if not self._charge(price):
                return 402, rate, self.credits_depleted()
            tweet = self.add_tweet(text, in_reply_to=str(reply_to) if reply_to else None,
                                   media_ids=media_ids)
        shown, _ = self.render(tweet)
        fault = self._take_fault("POST", "/2/tweets", ("timeout_after_create",))
        if fault is not None:
            self._stopping.wait(fault.extra["delay"])
        data = {"id": tweet["id"], "text": shown}
        if "community_id" in payload:
            data["community_id"] = str(payload["community_id"])
        return 201, {**rate, "location": f"{self.signed_api_base}/2/tweets/{tweet['id']}"}, \
            {"data": data}

    def _charge(self, price: Decimal) -> bool:
        """Take `price` from the balance; False (nothing taken) once it is spent."""
        with self.lock:
            if self.credits is None:
                return True
            if self.credits <= 0:
                return False
            self.credits -= price
            self.spent += price
            return True

    def credits_depleted(self) -> dict[str, Any]:
        """The 402 X answers an app whose prepaid credits are spent (problem JSON)."""
        return problem(402, f"Your enrolled account [{self.user_id}] does not have any credits "
                            "to fulfill this request.", title="CreditsDepleted",
                       type_=CREDITS_DEPLETED_TYPE)

    def _delete_tweet(self, tweet_id: str, rate: dict[str, str]
                      ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            before = len(self.tweets)
            self.tweets[:] = [t for t in self.tweets if t["id"] != tweet_id]
            deleted = len(self.tweets) < before
        return 200, rate, {"data": {"deleted": deleted}}

    def _retweet(self, user_id: str, body: bytes, rate: dict[str, str]
                 ) -> tuple[int, dict[str, str], Any]:
        """POST /2/users/:id/retweets {"tweet_id"} → {"data": {"retweeted", "rest_id"}}
        (repostPost); reposting twice is not an error. Without `allow_retweets`, the 403 X
        gives an app whose access level lacks the endpoint."""
        if user_id != self.user_id:
            return 403, rate, problem(403, "You are not allowed to repost on behalf of "
                                           "another user.")
        if not self.allow_retweets:
            return 403, rate, {
                "title": "Client Forbidden", "type": CLIENT_FORBIDDEN_TYPE,
                "reason": "client-not-enrolled", "status": 403,
                "detail": "You currently have access to a subset of X API V2 endpoints and "
                          "limited v1.1 endpoints (e.g. media post, oauth) only. If you need "
                          "access to this endpoint, you may need a different access level."}
        tweet_id = str(json.loads(body or b"{}")["tweet_id"])
        with self.lock:
            if not self._charge(PRICE_REPOST):
                return 402, rate, self.credits_depleted()
            if tweet_id not in self.retweets:
                self.retweets.append(tweet_id)
        return 200, rate, {"data": {"retweeted": True, "rest_id": tweet_id}}

    def _users_tweets(self, user_id: str, params: dict[str, str], rate: dict[str, str]
                      ) -> tuple[int, dict[str, str], Any]:
        max_results = int(params.get("max_results", "10"))
        if not 5 <= max_results <= 100:
            return 400, rate, invalid_request(
                f"The `max_results` query parameter value [{max_results}] is not between 5 "
                "and 100", "max_results", str(max_results))
        fields = set(filter(None, (params.get("tweet.fields") or params.get("post.fields")
                                   or "").split(",")))
        if user_id != self.user_id:
            return 200, rate, {"meta": {"result_count": 0}}
        now = self.clock()
        with self.lock:
            tweets = [t for t in self.tweets
                      if (now - t["created_at"]).total_seconds() >= self.timeline_delay]
        if "start_time" in params:
            start = _parse_time(params["start_time"])
            tweets = [t for t in tweets if t["created_at"] >= start]
        if "end_time" in params:
            end = _parse_time(params["end_time"])
            tweets = [t for t in tweets if t["created_at"] < end]
        if "since_id" in params:
            tweets = [t for t in tweets if int(t["id"]) > int(params["since_id"])]
        tweets.sort(key=lambda t: int(t["id"]), reverse=True)
        offset = int(params.get("pagination_token", "0") or "0", 16) \
            if params.get("pagination_token") else 0
        page = tweets[offset:offset + max_results]
        meta: dict[str, Any] = {"result_count": len(page)}
        if not page:
            return 200, rate, {"meta": meta}
        data = []
        for tweet in page:
            shown, urls = self.render(tweet)
            item: dict[str, Any] = {"id": tweet["id"], "text": shown,
                                    "edit_history_tweet_ids": [tweet["id"]]}
            if "created_at" in fields:
                item["created_at"] = _iso(tweet["created_at"])
            if "entities" in fields and urls:
                item["entities"] = {"urls": urls}
            if "in_reply_to_user_id" in fields and tweet["in_reply_to"]:
                item["in_reply_to_user_id"] = self.user_id
            data.append(item)
        meta.update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if offset + max_results < len(tweets):
            meta["next_token"] = format(offset + max_results, "x")
        return 200, rate, {"data": data, "meta": meta}

    def _upload(self, body: bytes, headers: dict[str, str], rate: dict[str, str], *, v2: bool
                ) -> tuple[int, dict[str, str], Any]:
        content_type = headers.get("content-type", "")
        fields: dict[str, bytes] = {}
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[str(name)] = part.get_payload(decode=True) or b""
        elif "json" in content_type:
            fields = {k: str(v).encode() for k, v in json.loads(body).items()}
        else:
            fields = {k: v.encode() for k, v in parse_qsl(body.decode())}
        data = fields.get("media")
        if data is None and "media_data" in fields:
            data = base64.b64decode(fields["media_data"])
        elif data is not None and "json" in content_type:
            data = base64.b64decode(data)
        if not data:
            return 400, rate, self._upload_error(v2, "media parameter is missing.", 38)
        if len(data) > IMAGE_MAX_BYTES:
            return 400, rate, self._upload_error(
                v2, f"File size exceeds {IMAGE_MAX_BYTES} bytes.", 324)
        with self.lock:
            media_id = str(next(self._media_ids))
            self.media[media_id] = {"size": len(data), "alt_text": None,
                                    "media_category": fields.get("media_category", b"").decode()}
        info = {"size": len(data), "expires_after_secs": 86400, "image": _image_info(data)}
        if v2:
            return 200, rate, {"data": {"id": media_id, "media_key": f"3_{media_id}", **info}}
        return 200, rate, {"media_id": int(media_id), "media_id_string": media_id, **info}

    @staticmethod
    def _upload_error(v2: bool, message: str, code: int) -> dict[str, Any]:
        if v2:
            return invalid_request(message, "media", None)
        return {"errors": [{"code": code, "message": message}]}

    def _metadata(self, body: bytes, rate: dict[str, str], *, v2: bool
                  ) -> tuple[int, dict[str, str], Any]:
        payload = json.loads(body)
        if v2:
            media_id = str(payload["id"])
            alt = payload.get("metadata", {}).get("alt_text", {}).get("text", "")
        else:
            media_id = str(payload["media_id"])
            alt = payload.get("alt_text", {}).get("text", "")
        with self.lock:
            if media_id not in self.media:
                return 400, rate, self._upload_error(v2, "Invalid media id.", 324)
            if len(alt) > ALT_TEXT_MAX:
                return 400, rate, self._upload_error(
                    v2, f"Alt text is longer than {ALT_TEXT_MAX} characters.", 44)
            self.media[media_id]["alt_text"] = alt
        if v2:
            return 200, rate, {"data": {"id": media_id,
                                        "associated_metadata": {"alt_text": {"text": alt}}}}
        return 200, rate, None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass   # clients that time out and hang up are expected here


class _Handler(BaseHTTPRequestHandler):
    srv: XServer
    protocol_version = "HTTP/1.1"
    wbufsize = -1    # headers and body leave in one write (no delayed-ACK stall)

    def version_string(self) -> str:
        return "tsa_b"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = json.loads(body) if "json" in headers.get("content-type", "") else None
        except ValueError:
            payload = None
        record: dict[str, Any] = {"method": self.command, "path": urlsplit(self.path).path,
                                  "query": dict(parse_qsl(urlsplit(self.path).query)),
                                  "headers": headers, "json": payload, "status": None}
        with self.srv.lock:
            self.srv.requests.append(record)
        chaos = self.srv.chaos
        kind = chaos.pick() if chaos is not None and self.command == "POST" \
            and record["path"] == "/2/tweets" else None
        if kind == "reset_before":
            self.close_connection = True
            return
        if kind in ("500", "502", "503", "slow"):
            code = 503 if kind == "slow" else int(kind)
            if kind == "slow":
                time.sleep(chaos.delay)
            status, out_headers, out = code, {}, problem(code)
        elif kind == "429":
            reset = int(self.srv.clock().timestamp() + chaos._rng.uniform(1, 3))
            status, out_headers, out = 429, {"x-rate-limit-limit": "200",
                                             "x-rate-limit-remaining": "0",
                                             "x-rate-limit-reset": str(reset)}, problem(429)
        else:
            status, out_headers, out = self.srv.handle(self.command, self.path, headers,
                                                       body)
            if kind == "reset_after":
                self.close_connection = True
                return
            if kind == "created_timeout":
                time.sleep(chaos.delay)
        problem_json = isinstance(out, dict) and status >= 400 and "title" in out
        if out is None:
            raw = b""
        elif isinstance(out, bytes):
            raw = out
        elif isinstance(out, str):
            raw = out.encode()
        else:
            raw = json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode()
        content_type = ("application/problem+json" if problem_json else "application/json") \
            + "; charset=utf-8"
        out_headers = {"content-type": content_type, "api-version": "2.150",
                       "cache-control": "no-cache, no-store, max-age=0",
                       "x-access-level": "read-write", **out_headers}
        with self.srv.lock:
            record.update(status=status, response_headers=out_headers, response=out)
        try:
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(raw)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = _serve
