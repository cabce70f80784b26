"""Fetching feeds (and artwork) over HTTP(S) or from local files: the network edge for feeds.

    session = new_session()
    res = fetch_feed(url, session=session, etag=..., last_modified=..., previous_hash=...)
    if res.unchanged: ...            # 304, or 200 with the same hash as last time: body is None
    else: parse_feed(bytes(res.body), url=res.final_url)   # res.body is a `Body`

Polling is cheap when nothing changed: the stored validators go out as If-None-Match /
If-Modified-Since, a 304 is never read past its headers, and a server that ignores them costs one
streamed XXH3-128 hash over 1 MiB chunks (no parsing). A body is kept as a `Body`: in memory
up to `SPOOL_MEMORY`, in an unlinked temporary file beyond, so a 12 MB feed does not cost 12 MB
of RAM; it is read back by slices. The connection goes back to the session's pool for the next
poll.

Every failure is a `FetchError(url, message, status=..., retry_after=...)` with a sentence a host
can act on: HTTP status (404, 410 "gone", 429 / 503 with Retry-After in seconds), timeouts, refused
connections, too many redirects, a body over the size cap, a scheme other than http(s) or a file,
a download over its total deadline. A URL refused by policy (see below) is a `BlockedError`, a
FetchError that no retry can cure.

Two kinds of URL (sessions from `new_session`; the checks live in `bot.netguard`):

- the host's own (the `feed` key, a path given on the command line): `fetch_feed`, and
  `fetch_bytes(..., trusted=True)`; a local path or file:// URL is read, any address is reached;
- named by a feed (artwork): `fetch_bytes(url, session=new_session(guard=True, ...))`. Only
  http(s); each connection, redirects included, goes only to a public address or a network the
  host allowed (`allow_private`, from `allow_private_networks`).

Every download has a total deadline (`FEED_DEADLINE`, `IMAGE_DEADLINE`, configurable), on top of
the per-read timeout: a server that trickles its headers or body is cut off at the deadline.
URLs in messages and logs never carry the `user:password@` part (see `redact_url`).
`status` is the HTTP status when the server answered with an error, else None.

Only `requests` is used here; deciding what to do about a failure (back off, tell the host)
belongs to `service.py`.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

import requests
import urllib3
import xxhash

from bot import __version__
from bot.errors import BlockedError, FetchError
from bot.netguard import AddressPolicy, AddressRefused, Deadline, GuardedAdapter

log = logging.getLogger(__name__)

USER_AGENT = f"crier/{__version__}"
DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # connect, read (seconds between bytes)
MAX_FEED_BYTES = 50 * 1024 * 1024  # the largest real podcast feeds are a few MB
MAX_REDIRECTS = 10
CHUNK_SIZE = 1024 * 1024     # fewer Python round trips per MB; the socket fills it as it can
SPOOL_MEMORY = 8 * 1024 * 1024  # a bigger body goes to a temporary file, not RAM
HASH_PREFIX = "xxh3:"        # body hashes are "xxh3:<128-bit hex>" (older rows: sha256 hex)
FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
               "text/xml;q=0.9, */*;q=0.8")
PERMANENT_REDIRECTS = frozenset({301, 308})  # RFC 9110 sections 15.4.2 and 15.4.9
FEED_DEADLINE = 60.0         # seconds for a whole feed download (`feed_deadline`)
IMAGE_DEADLINE = 30.0        # seconds for a whole artwork download (`image_deadline`)

Timeout = float | tuple[float, float] | None


class Body:
    """A downloaded body: in memory while it is small (up to `memory` bytes), else all of it
    in an unlinked temporary file (a body announced bigger goes there from its first byte;
    one that grows past the limit is moved there). Reads like bytes where the feed code needs
    it: `len(b)`, `b[i:j]` (a bytes copy of that range), `bytes(b)` (the whole body, for a
    full parse), `chunks()`. Close it (or use it as a context manager) to drop the file; it
    is also dropped with the object.
    """

    def __init__(self, data: bytes = b"", *, memory: int | None = None,
                 expected: int | None = None):
        memory = SPOOL_MEMORY if memory is None else memory
        self._memory = memory
        self._parts: list[bytes] = []   # in memory: the chunks, in order
        self._starts: list[int] = []    # offset of each part
        self._file = None               # on disk: everything
        self._size = 0
        if expected is not None and expected > memory:
            self._file = tempfile.TemporaryFile(prefix="crier-feed-", buffering=0)
        if data:
            self.write(data)

    def write(self, chunk: bytes) -> None:
        n = len(chunk)
        if not n:
            return
        if self._file is None and self._size + n > self._memory:
            self._file = tempfile.TemporaryFile(prefix="crier-feed-", buffering=0)
            for part in self._parts:
                self._file.write(part)
            self._parts, self._starts = [], []
        if self._file is None:
            self._starts.append(self._size)
            self._parts.append(chunk)
        else:
            self._file.write(chunk)
        self._size += n

    def __len__(self) -> int:
        return self._size

    @property
    def spilled(self) -> bool:
        """Whether the body lives in a temporary file."""
        return self._file is not None

    def __getitem__(self, key: slice) -> bytes:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("Body supports plain slices only")
        start, stop, _ = key.indices(self._size)
        if stop <= start:
            return b""
        if self._file is not None:
            return os.pread(self._file.fileno(), stop - start, start)
        i = bisect.bisect_right(self._starts, start) - 1
        out: list[bytes] = []
        pos = start
        while pos < stop:
            part, base = self._parts[i], self._starts[i]
            piece = part[pos - base:min(stop, base + len(part)) - base]
            out.append(piece)
            pos += len(piece)
            i += 1
        return out[0] if len(out) == 1 else b"".join(out)

    def __bytes__(self) -> bytes:
        return self[0:self._size]

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes | memoryview]:
        """The body in order, in pieces of at most `size` bytes (views of the in-memory
        parts, so nothing is copied; bytes read from the file)."""
        for part in self._parts:
            if len(part) <= size:
                yield part
            else:
                with memoryview(part) as view:
                    for i in range(0, len(part), size):
                        yield view[i:i + size]
        if self._file is not None:
            fd, pos = self._file.fileno(), 0
            while piece := os.pread(fd, size, pos):
                yield piece
                pos += len(piece)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts, self._starts, self._size = [], [], 0

    def __enter__(self) -> Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Body {self._size} bytes{' on disk' if self._file else ''}>"


def body_hash(data: bytes) -> str:
    """The hash `fetch_feed` gives a body (for tests and tools)."""
    return HASH_PREFIX + xxhash.xxh3_128_hexdigest(data)


@dataclass(frozen=True)
class FetchResult:
    url: str                        # what was asked
    final_url: str                  # after redirects
    status: int                     # 200 or 304 (file paths: 200)
    body: Body | None               # None when unchanged (304 or same hash)
    body_hash: str | None           # "xxh3:<hex>" of the body (kept from before on 304)
    etag: str | None
    last_modified: str | None
    unchanged: bool                 # 304, or 200 with body_hash == previous_hash
    permanent_redirect: str | None  # where a 301/308 sent us, to remember and report
    max_age: int | None             # from Cache-Control
    elapsed: float                  # seconds
    link: str | None = None         # the Link header of a 200 (a WebSub hub: bot.websub)


def new_session(*, max_redirects: int = MAX_REDIRECTS, guard: bool = False,
                allow_private: Iterable[str] = ()) -> requests.Session:
    """A session that says who we are, follows at most `max_redirects` redirects and honours
    deadlines. With `guard`, for URLs a feed named: every connection (each redirect's too)
    goes only to a public address or one in `allow_private` (CIDR strings; ValueError if bad).

    The environment is read once, here: with no proxy variables set, requests is told not to
    look at the environment on every request (a measurable share of an unchanged poll); a CA
    bundle named by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is still used. With a proxy
    variable set, requests reads the environment as usual.
    """
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = max_redirects
    policy = AddressPolicy.allowing(allow_private) if guard else None
    for prefix in ("http://", "https://"):
        session.mount(prefix, GuardedAdapter(policy))
    if not any(k.lower().endswith("_proxy") for k in os.environ):
        session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    return session


def is_guarded(session: requests.Session) -> bool:
    """Whether `session` checks the addresses it connects to (new_session(guard=True))."""
    return all(isinstance(a := session.get_adapter(u), GuardedAdapter) and a.policy is not None
               for u in ("http://example.com/", "https://example.com/"))


def fetch_feed(url: str, *, session: requests.Session, etag: str | None = None,
               last_modified: str | None = None, previous_hash: str | None = None,
               timeout: Timeout = DEFAULT_TIMEOUT, max_bytes: int = MAX_FEED_BYTES,
               deadline: float | None = FEED_DEADLINE) -> FetchResult:
    """Fetch a feed by URL or file path, conditionally when validators are given.

    `etag` and `last_modified` are the values the server sent last time; `previous_hash` is the
    `body_hash` of the last body read. `deadline`: seconds for the whole download (headers and
    body; None: no limit). Raises FetchError.
    """
    started = time.monotonic()
    shown = redact_url(url)
    path = _local_path(url, shown)
    if path is not None:
        body, digest = _read_file(path, shown, max_bytes)
        same = digest == previous_hash
        log.debug("file %s: %d bytes%s", shown, len(body), " (unchanged)" if same else "")
        if same:
            body.close()
        return FetchResult(url=url, final_url=url, status=200, body=None if same else body,
                           body_hash=digest, etag=None, last_modified=None, unchanged=same,
                           permanent_redirect=None, max_age=None,
                           elapsed=time.monotonic() - started)

    headers = {"Accept": FEED_ACCEPT}
    if (value := _header_value(etag)) is not None:
        headers["If-None-Match"] = value
    if (value := _header_value(last_modified)) is not None:
        headers["If-Modified-Since"] = value
    with Deadline(deadline) as limit:
        return _fetch_feed_http(url, shown, session, headers, timeout, max_bytes, limit,
                                started, etag, last_modified, previous_hash)


def _fetch_feed_http(url: str, shown: str, session: requests.Session, headers: dict[str, str],
                     timeout: Timeout, max_bytes: int, limit: Deadline, started: float,
                     etag: str | None, last_modified: str | None,
                     previous_hash: str | None) -> FetchResult:
    resp = _get(session, url, shown, headers, timeout, limit, "feed_deadline")
    try:
        moved = _permanent_redirect(url, resp)
        max_age = parse_max_age(resp.headers.get("Cache-Control"))
        if resp.status_code == 304:
            try:
                _drain_empty(resp)
            except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
                _check_deadline(limit, resp.url, shown, "feed_deadline")
                raise _translate(e, resp.url, shown, None, timeout) from None
            _check_deadline(limit, resp.url, shown, "feed_deadline")
            elapsed = time.monotonic() - started
            log.debug("GET %s: 304 not modified in %.3f s", shown, elapsed)
            return FetchResult(url=url, final_url=resp.url, status=304, body=None,
                               body_hash=previous_hash,
                               etag=resp.headers.get("ETag") or etag,
                               last_modified=resp.headers.get("Last-Modified") or last_modified,
                               unchanged=True, permanent_redirect=moved, max_age=max_age,
                               elapsed=elapsed)
        _raise_for_status(resp, shown, session)
        body, digest = _read_body(resp, shown, max_bytes, timeout, limit, "feed_deadline")
    finally:
        resp.close()
    same = digest == previous_hash
    if same:
        body.close()
    elapsed = time.monotonic() - started
    log.debug("GET %s: %d, %d bytes%s in %.3f s", shown, resp.status_code, len(body),
              " (same hash)" if same else "", elapsed)
    return FetchResult(url=url, final_url=resp.url, status=resp.status_code,
                       body=None if same else body, body_hash=digest,
                       etag=resp.headers.get("ETag"),
                       last_modified=resp.headers.get("Last-Modified"), unchanged=same,
                       permanent_redirect=moved, max_age=max_age, elapsed=elapsed,
                       link=resp.headers.get("Link"))


def fetch_bytes(url: str, *, session: requests.Session, timeout: Timeout = DEFAULT_TIMEOUT,
                max_bytes: int, deadline: float | None = IMAGE_DEADLINE,
                trusted: bool = False) -> bytes:
    """The body at a URL (artwork), under the same caps as feeds and a total `deadline`.

    A URL a feed named (`trusted=False`, the default) is fetched only over http(s), through a
    guarded session (`new_session(guard=True)`): a file:// URL or a path is a BlockedError, and
    so is a connection to an address the session's policy refuses. `trusted=True` is for what
    the host typed (a local path or file:// URL is then read, any address reached).
    """
    shown = redact_url(url)
    path = _local_path(url, shown)
    if path is not None:
        if not trusted:
            raise BlockedError(shown, "only http(s) addresses are fetched for a feed; a "
                                      "file: URL or local path there could publish this "
                                      "machine's files")
        with _read_file(path, shown, max_bytes)[0] as body:
            return bytes(body)
    if not trusted and not is_guarded(session):
        raise ValueError("fetch_bytes: a URL from a feed needs new_session(guard=True)")
    with Deadline(deadline) as limit:
        resp = _get(session, url, shown, {}, timeout, limit, "image_deadline")
        try:
            _raise_for_status(resp, shown, session)
            with _read_body(resp, shown, max_bytes, timeout, limit, "image_deadline")[0] as body:
                return bytes(body)
        finally:
            resp.close()


# -- pure helpers (public: the service and tests use them) -----------------------------------

def redact_url(url: str) -> str:
    """The URL without its password or user name, fit for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


_MAX_AGE = re.compile(r'(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?=,|$)', re.IGNORECASE)


def parse_max_age(cache_control: str | None) -> int | None:
    """`max-age=N` from a Cache-Control header (s-maxage is for shared caches; ignored)."""
    if not cache_control:
        return None
    m = _MAX_AGE.search(cache_control)
    return min(int(m.group(1)), 2**31 - 1) if m else None


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3).

    `now` is when the response was made (its Date header is best: no clock skew). A date in
    the past means 0; anything unreadable means None.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# -- internals --------------------------------------------------------------------------------

def _local_path(url: str, shown: str) -> Path | None:
    """The file a path or file:// URL names; None for http(s); FetchError for the rest."""
    if not url or not url.strip():
        raise FetchError(shown, "no URL or file path given")
    try:
        parts = urlsplit(url)
    except ValueError as e:
        raise FetchError(shown, f"not a valid URL ({e})") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise FetchError(shown, "not a valid URL: it has no host name")
        return None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FetchError(shown, "file URLs on other hosts are not fetched; use a local path")
        return Path(url2pathname(parts.path))
    if not scheme or (len(scheme) == 1 and os.name == "nt"):  # C:\feeds\show.xml
        return Path(url).expanduser()
    raise FetchError(shown, f"only http(s) URLs and file paths are fetched, not {scheme}:")


def _read_file(path: Path, shown: str, max_bytes: int) -> tuple[Body, str]:
    first = path.parts[0] if path.parts else ""
    looks_like_host = not path.is_absolute() and "." in first.strip(".") and "://" not in shown
    hint = " (for a URL, start it with https://)" if looks_like_host else ""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise FetchError(shown, f"the file is {_size(size)}, over the "
                                        f"{_size(max_bytes)} cap")
            return _collect(iter(lambda: f.read(CHUNK_SIZE), b""), shown, max_bytes, size)
    except FileNotFoundError:
        raise FetchError(shown, f"no such file{hint}") from None
    except IsADirectoryError:
        raise FetchError(shown, "is a directory, not a feed file") from None
    except PermissionError:
        raise FetchError(shown, "permission denied reading the file") from None
    except OSError as e:
        raise FetchError(shown, f"cannot read the file ({e.strerror or type(e).__name__})") \
            from None


def _header_value(value: str | None) -> str | None:
    """A stored validator fit to send back, or None (an empty or multi-line one is dropped)."""
    if value is None:
        return None
    value = value.strip()
    if not value or "\r" in value or "\n" in value:
        return None
    return value


def _get(session: requests.Session, url: str, shown: str, headers: dict[str, str],
         timeout: Timeout, limit: Deadline, key: str) -> requests.Response:
    ua = session.headers.get("User-Agent")
    if not ua or str(ua).startswith("python-requests/"):
        headers = {**headers, "User-Agent": USER_AGENT}
    try:
        resp = session.get(url, headers=headers, timeout=timeout, stream=True,
                           allow_redirects=True)
    except AddressRefused as e:
        raise BlockedError(shown, str(e)) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
        if limit.expired:
            raise _deadline_error(limit, _failed_url(e, url), shown, key,
                                  in_body=False) from None
        # `from None`: the library's text may repeat the URL with its credentials.
        raise _translate(e, url, shown, session, timeout) from None
    if limit.expired:  # the headers were complete just as the time ran out
        resp.close()
        raise _deadline_error(limit, resp.url, shown, key, in_body=False)
    return resp


def _read_body(resp: requests.Response, shown: str, max_bytes: int, timeout: Timeout,
               limit: Deadline, key: str) -> tuple[Body, str]:
    declared = resp.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(shown, f"the server announced {_size(int(declared))}, over the "
                                f"{_size(max_bytes)} cap; not downloaded")
    try:
        body, digest = _collect(resp.iter_content(CHUNK_SIZE), shown, max_bytes,
                                int(declared) if declared.isdigit() else None)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as e:
        if limit.expired:
            raise _deadline_error(limit, resp.url, shown, key, in_body=True) from None
        raise _translate(e, resp.url, shown, None, timeout) from None
    if limit.expired:  # a body without a length ends at EOF: the cut must not pass as whole
        body.close()
        raise _deadline_error(limit, resp.url, shown, key, in_body=True)
    return body, digest


def _check_deadline(limit: Deadline, url: str, shown: str, key: str) -> None:
    if limit.expired:
        raise _deadline_error(limit, url, shown, key, in_body=True)


def _deadline_error(limit: Deadline, url: str, shown: str, key: str, *,
                    in_body: bool) -> FetchError:
    where = _host_port(url)
    if in_body:
        progress = f"{where} was still sending the body"
    else:
        progress = f"{where} had not finished sending its response headers"
    return FetchError(shown, f"stopped after {_secs(limit.seconds)}, the limit for the whole "
                             f"download ({key}): {progress}")


def _failed_url(e: Exception, url: str) -> str:
    request = getattr(e, "request", None)  # after a redirect, the host that failed
    return getattr(request, "url", None) or url


def _collect(chunks: Iterable[bytes], shown: str, max_bytes: int,
             expected: int | None = None) -> tuple[Body, str]:
    """Read chunks, hashing as they come; stop at the cap. Returns (body, "xxh3:<hex>").
    `expected` is the announced size, if any (a big body is spooled from the start)."""
    digest = xxhash.xxh3_128()
    body = Body(expected=expected)
    try:
        for chunk in chunks:
            if len(body) + len(chunk) > max_bytes:
                raise FetchError(shown, f"larger than the {_size(max_bytes)} cap; stopped "
                                        f"reading")
            digest.update(chunk)
            body.write(chunk)
    except BaseException:
        body.close()
        raise
    return body, HASH_PREFIX + digest.hexdigest()


def _drain_empty(resp: requests.Response) -> None:
    """Finish a bodiless response (304) so its connection returns to the pool, not closed."""
    for _ in resp.iter_content(CHUNK_SIZE):
        pass


def _permanent_redirect(url: str, resp: requests.Response) -> str | None:
    """Where the leading run of 301/308 hops led: the address to use from now on.

    A permanent hop after a temporary one does not move *our* URL (it moves the temporary
    target), and a temporary hop after a permanent one is not part of the move.
    """
    urls = [r.url for r in resp.history] + [resp.url]
    hops = 0
    for r in resp.history:
        if r.status_code not in PERMANENT_REDIRECTS:
            break
        hops += 1
    target = urls[hops]
    return target if hops and target != url else None


def _raise_for_status(resp: requests.Response, shown: str,
                      session: requests.Session) -> None:
    status = resp.status_code
    if 200 <= status < 300:
        return
    retry_after = parse_retry_after(resp.headers.get("Retry-After"), now=_response_time(resp))
    label = f"HTTP {status} {_phrase(status)}".rstrip()
    if status == 404:
        message = f"not found ({label})"
    elif status == 410:
        message = f"gone ({label}): the server says the feed was removed for good"
    elif status in (401, 403, 407):
        message = f"access denied ({label}); check the address and any credentials in it"
    elif status == 429:
        message = f"rate limited ({label})"
    elif status == 503:
        message = f"temporarily unavailable ({label})"
    elif status >= 500:
        message = f"server error ({label})"
    elif status >= 400:
        message = f"refused ({label})"
    elif 300 <= status < 400:
        message = f"unexpected redirect ({label}) with no address to follow"
    else:
        message = f"unexpected response ({label})"
    if retry_after is not None:
        message += f"; retry after {retry_after:g} s"
    raise FetchError(shown, message, status=status, retry_after=retry_after)


def _response_time(resp: requests.Response) -> datetime:
    """When the server made the response (its Date header), else our clock."""
    date = resp.headers.get("Date")
    if date:
        try:
            when = parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            pass
        else:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.now(UTC)


def _translate(e: Exception, url: str, shown: str, session: requests.Session | None,
               timeout: Timeout) -> FetchError:
    """A requests/urllib3 exception as a FetchError whose text never repeats the URL."""
    connect_t, read_t = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    request = getattr(e, "request", None)  # after a redirect, the host that failed
    where = _host_port(getattr(request, "url", None) or url)
    if isinstance(e, requests.ConnectTimeout):
        message = f"timed out after {_secs(connect_t)} connecting to {where}"
    elif isinstance(e, requests.ReadTimeout) or (
            isinstance(e, requests.ConnectionError) and e.args
            and isinstance(e.args[0], urllib3.exceptions.ReadTimeoutError)):
        # (while streaming a body, requests reports a read timeout as a ConnectionError)
        message = f"timed out after {_secs(read_t)} waiting for {where} to answer"
    elif isinstance(e, requests.TooManyRedirects):
        limit = session.max_redirects if session is not None else MAX_REDIRECTS
        message = f"too many redirects (more than {limit})"
    elif isinstance(e, requests.exceptions.SSLError):
        message = f"TLS error with {where} (certificate or handshake failed)"
    elif isinstance(e, requests.exceptions.ChunkedEncodingError):
        message = f"the connection to {where} broke while reading the response"
    elif isinstance(e, requests.exceptions.ContentDecodingError):
        message = "could not decode the compressed response"
    elif isinstance(e, requests.ConnectionError):
        message = f"could not connect to {where} ({_connection_reason(e)})"
    elif isinstance(e, (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema)):
        message = "redirected to an address that is not http(s)"
    elif isinstance(e, requests.exceptions.InvalidURL):
        message = "not a valid URL (or redirected to one)"
    else:
        message = f"request failed ({type(e).__name__})"
    return FetchError(shown, message)


def _connection_reason(e: Exception) -> str:
    text = str(e)
    for needle, reason in (
            ("Connection refused", "connection refused"),
            ("NameResolutionError", "host name not found"),
            ("Name or service not known", "host name not found"),
            ("nodename nor servname", "host name not found"),
            ("getaddrinfo failed", "host name not found"),
            ("Connection reset", "connection reset by the server"),
            ("RemoteDisconnected", "the server closed the connection without answering"),
            ("Network is unreachable", "network unreachable"),
            ("No route to host", "no route to host")):
        if needle in text:
            return reason
    return "connection failed"


def _host_port(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or "the server"
        port = parts.port
    except ValueError:
        return "the server"
    return f"{host}:{port}" if port else host


def _secs(value: float | None) -> str:
    return "the limit" if value is None else f"{value:g} s"


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} bytes"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
