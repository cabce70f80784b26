"""bot.fetch against a real loopback server (tests/fakes/feed_server.py): no mocks."""

from __future__ import annotations

import os
import random
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest
import requests

import bot.fetch
from bot import __version__
from bot.errors import FeedError, FetchError
from bot.fetch import (
    MAX_REDIRECTS,
    USER_AGENT,
    Body,
    body_hash,
    fetch_bytes,
    fetch_feed,
    new_session,
    parse_max_age,
    parse_retry_after,
    redact_url,
)
from tests.fakes.feed_server import FeedServer
from tests.feedgen import item, rss

BODY = rss([item(n) for n in range(1, 4)])
SHA = body_hash(BODY)


@pytest.fixture
def srv():
    with FeedServer() as server:
        server.set_feed("/feed.xml", BODY)
        yield server


@pytest.fixture
def session():
    with new_session() as s:
        yield s


def feed_url(srv: FeedServer, path: str = "/feed.xml") -> str:
    return srv.url + path


def fetch_error(url: str, session: requests.Session, **kw) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch_feed(url, session=session, **kw)
    return info.value


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the plain and the conditional GET -------------------------------------------------------

def test_first_fetch_returns_body_hash_and_validators(srv, session):
    res = fetch_feed(feed_url(srv), session=session)
    assert res.status == 200 and bytes(res.body) == BODY and res.body_hash == SHA
    assert res.etag and res.etag.startswith('"') and res.last_modified.endswith("GMT")
    assert not res.unchanged and res.permanent_redirect is None and res.max_age is None
    assert res.url == res.final_url == feed_url(srv)
    assert 0 < res.elapsed < 5
    (method, path, headers), = srv.requests
    assert (method, path) == ("GET", "/feed.xml")
    assert "If-None-Match" not in headers and "If-Modified-Since" not in headers
    assert "application/rss+xml" in headers["Accept"]


def test_304_sends_validators_and_reads_no_body(srv, session):
    first = fetch_feed(feed_url(srv), session=session)
    srv.requests.clear()
    res = fetch_feed(feed_url(srv), session=session, etag=first.etag,
                     last_modified=first.last_modified, previous_hash=first.body_hash)
    (_, _, headers), = srv.requests
    assert headers["If-None-Match"] == first.etag
    assert headers["If-Modified-Since"] == first.last_modified
    assert res.status == 304 and res.unchanged and res.body is None
    assert res.body_hash == first.body_hash  # kept from before
    assert (res.etag, res.last_modified) == (first.etag, first.last_modified)


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_either_validator_alone_earns_a_304(srv, session, validator):
    srv.set_feed("/feed.xml", BODY, etag=validator == "etag",
                 last_modified=validator == "last_modified")
    first = fetch_feed(feed_url(srv), session=session)
    assert (first.etag is None) == (validator != "etag")
    res = fetch_feed(feed_url(srv), session=session, etag=first.etag,
                     last_modified=first.last_modified, previous_hash=first.body_hash)
    assert res.status == 304 and res.unchanged
    # the server sent no ETag on the 304 either way: what we knew is kept
    assert (res.etag, res.last_modified) == (first.etag, first.last_modified)


def test_server_ignoring_validators_is_unchanged_by_hash(srv, session):
    srv.set_feed("/feed.xml", BODY, conditional=False)
    first = fetch_feed(feed_url(srv), session=session)
    res = fetch_feed(feed_url(srv), session=session, etag=first.etag,
                     last_modified=first.last_modified, previous_hash=first.body_hash)
    assert res.status == 200 and res.unchanged and res.body is None
    assert res.body_hash == SHA and res.etag == first.etag


def test_changed_body_is_news(srv, session):
    first = fetch_feed(feed_url(srv), session=session)
    new_body = rss([item(n) for n in range(1, 5)])
    srv.set_feed("/feed.xml", new_body)
    res = fetch_feed(feed_url(srv), session=session, etag=first.etag,
                     last_modified=first.last_modified, previous_hash=first.body_hash)
    assert res.status == 200 and not res.unchanged and bytes(res.body) == new_body
    assert res.body_hash == body_hash(new_body)
    assert res.etag != first.etag and res.last_modified != first.last_modified


def test_last_modified_alone_sees_a_change_made_in_the_same_second(srv, session):
    srv.set_feed("/feed.xml", BODY, etag=False)
    first = fetch_feed(feed_url(srv), session=session)
    srv.set_feed("/feed.xml", BODY + b"\n", etag=False)
    res = fetch_feed(feed_url(srv), session=session, last_modified=first.last_modified,
                     previous_hash=first.body_hash)
    assert res.status == 200 and not res.unchanged


def test_unchanged_polls_reuse_one_connection(srv, session):
    first = fetch_feed(feed_url(srv), session=session)
    for _ in range(20):
        res = fetch_feed(feed_url(srv), session=session, etag=first.etag,
                         previous_hash=first.body_hash)
        assert res.status == 304
    srv.set_feed("/feed.xml", BODY, conditional=False)
    for _ in range(5):
        assert fetch_feed(feed_url(srv), session=session, previous_hash=SHA).unchanged
    assert srv.connections == 1 and len(srv.requests) == 26


def test_a_broken_stored_validator_is_not_sent(srv, session):
    res = fetch_feed(feed_url(srv), session=session, etag='"a"\r\nX-Evil: 1', last_modified="")
    assert res.status == 200
    (_, _, headers), = srv.requests
    assert "If-None-Match" not in headers and "X-Evil" not in headers


def test_cache_control_max_age(srv, session):
    srv.set_feed("/feed.xml", BODY, cache_control="public, max-age=600")
    first = fetch_feed(feed_url(srv), session=session)
    assert first.max_age == 600
    again = fetch_feed(feed_url(srv), session=session, etag=first.etag)
    assert again.status == 304 and again.max_age == 600


@pytest.mark.parametrize("header, expected", [
    ("max-age=600", 600), ("public, max-age=60, must-revalidate", 60), ('max-age="30"', 30),
    ("MAX-AGE=5", 5), ("s-maxage=100", None), ("no-cache", None), ("max-age=abc", None),
    ("", None), (None, None), ("s-maxage=100, max-age=7", 7),
])
def test_parse_max_age(header, expected):
    assert parse_max_age(header) == expected


def test_user_agent_is_crier_and_version(srv, session):
    assert USER_AGENT == f"crier/{__version__}"
    fetch_feed(feed_url(srv), session=session)
    with requests.Session() as plain:  # a caller's own session still says who we are
        fetch_feed(feed_url(srv), session=plain)
    assert [h["User-Agent"] for _, _, h in srv.requests] == [f"crier/{__version__}"] * 2
    assert session.max_redirects == MAX_REDIRECTS


# -- redirects -------------------------------------------------------------------------------

@pytest.mark.parametrize("status, permanent", [(301, True), (308, True), (302, False),
                                               (303, False), (307, False)])
def test_redirects_and_which_are_permanent(srv, session, status, permanent):
    srv.redirect("/old.xml", "/feed.xml", status=status)
    res = fetch_feed(feed_url(srv, "/old.xml"), session=session)
    assert bytes(res.body) == BODY and res.final_url == feed_url(srv)
    assert res.url == feed_url(srv, "/old.xml")
    assert res.permanent_redirect == (feed_url(srv) if permanent else None)


def test_permanent_then_temporary_remembers_the_permanent_target(srv, session):
    srv.redirect("/old.xml", "/new.xml", status=301)
    srv.redirect("/new.xml", "/cdn.xml", status=302)
    srv.set_feed("/cdn.xml", BODY)
    res = fetch_feed(feed_url(srv, "/old.xml"), session=session)
    assert res.final_url == feed_url(srv, "/cdn.xml")
    assert res.permanent_redirect == feed_url(srv, "/new.xml")


def test_temporary_then_permanent_does_not_move_the_feed(srv, session):
    srv.redirect("/old.xml", "/tmp.xml", status=307)
    srv.redirect("/tmp.xml", "/feed.xml", status=308)
    res = fetch_feed(feed_url(srv, "/old.xml"), session=session)
    assert res.final_url == feed_url(srv) and res.permanent_redirect is None


def test_permanent_redirect_is_reported_on_a_304_too(srv, session):
    first = fetch_feed(feed_url(srv), session=session)
    srv.redirect("/old.xml", "/feed.xml", status=301)
    res = fetch_feed(feed_url(srv, "/old.xml"), session=session, etag=first.etag)
    assert res.status == 304 and res.permanent_redirect == feed_url(srv)


def test_redirect_loop_stops(srv, session):
    srv.redirect("/a", "/b", status=302)
    srv.redirect("/b", "/a", status=302)
    e = fetch_error(feed_url(srv, "/a"), session)
    assert "too many redirects" in str(e) and e.status is None
    assert len(srv.requests) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd"])
def test_redirect_to_another_scheme_is_refused(srv, session, target):
    srv.redirect("/old.xml", target, status=301)
    e = fetch_error(feed_url(srv, "/old.xml"), session)
    assert "not http(s)" in str(e)


# -- HTTP errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("status, words", [
    (404, "not found"), (410, "gone"), (500, "server error"), (502, "server error"),
    (403, "access denied"), (401, "access denied"), (400, "refused"),
    (429, "rate limited"), (503, "unavailable"),
])
def test_http_errors(srv, session, status, words):
    srv.fail_next("/feed.xml", status=status)
    e = fetch_error(feed_url(srv), session)
    assert isinstance(e, FeedError)
    assert e.status == status and e.retry_after is None
    assert words in str(e) and f"HTTP {status}" in str(e)
    assert str(e).startswith(f"feed {feed_url(srv)}: ")


def test_missing_path_is_404(srv, session):
    e = fetch_error(feed_url(srv, "/nope.xml"), session)
    assert e.status == 404 and "not found" in str(e)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(srv, session, status):
    srv.fail_next("/feed.xml", status=status, headers={"Retry-After": "30"})
    e = fetch_error(feed_url(srv), session)
    assert e.status == status and e.retry_after == 30
    assert "retry after 30 s" in str(e)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_as_http_date(srv, session, status):
    srv.fail_next("/feed.xml", status=status,
                  headers={"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    e = fetch_error(feed_url(srv), session)
    assert e.status == status and 118 <= e.retry_after <= 121  # seconds resolution


def test_retry_after_in_the_past_is_zero(srv, session):
    srv.fail_next("/feed.xml", status=503, headers={"Retry-After": formatdate(0, usegmt=True)})
    assert fetch_error(feed_url(srv), session).retry_after == 0


def test_parse_retry_after():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    later = now + timedelta(minutes=5)
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after(" 7 ", now=now) == 7
    assert parse_retry_after("Thu, 01 Jan 2026 12:05:00 GMT", now=now) == 300
    assert parse_retry_after(later.strftime("%A, %d-%b-%y %H:%M:%S GMT"), now=now) == 300
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("-5", now=now) == 0
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk, now=now) is None


def test_failures_count_down_then_the_feed_comes_back(srv, session):
    srv.fail_next("/feed.xml", status=500, count=2)
    for _ in range(2):
        assert fetch_error(feed_url(srv), session).status == 500
    assert bytes(fetch_feed(feed_url(srv), session=session).body) == BODY


# -- timeouts and broken connections ---------------------------------------------------------

def test_read_timeout(srv, session):
    srv.delay("/feed.xml", 2.0)
    started = time.monotonic()
    e = fetch_error(feed_url(srv), session, timeout=(2.0, 0.3))
    assert time.monotonic() - started < 1.5
    assert "timed out after 0.3 s" in str(e) and e.status is None


def test_a_plain_number_timeout(srv, session):
    srv.delay("/feed.xml", 2.0)
    assert "timed out after 0.25 s" in str(fetch_error(feed_url(srv), session, timeout=0.25))


def test_connection_refused(session):
    url = f"http://127.0.0.1:{closed_port()}/feed.xml"
    e = fetch_error(url, session, timeout=(1.0, 1.0))
    assert "could not connect" in str(e) and "refused" in str(e) and e.status is None


def test_server_hanging_up_without_an_answer(srv, session):
    srv.fail_next("/feed.xml", disconnect=True)
    e = fetch_error(feed_url(srv), session)
    assert "could not connect" in str(e) and e.status is None
    assert bytes(fetch_feed(feed_url(srv), session=session).body) == BODY  # the pool recovers


# -- size caps -------------------------------------------------------------------------------

def test_size_cap_from_content_length(srv, session):
    srv.set_feed("/big.xml", b"x" * 300_000)
    e = fetch_error(feed_url(srv, "/big.xml"), session, max_bytes=100_000)
    assert "announced" in str(e) and "cap" in str(e) and "not downloaded" in str(e)


def test_size_cap_while_streaming_without_content_length(srv, session):
    srv.set_feed("/big.xml", b"x" * 300_000, chunked=True)
    with session.get(feed_url(srv, "/big.xml"), stream=True) as raw:
        assert "Content-Length" not in raw.headers
        assert raw.headers["Transfer-Encoding"] == "chunked"
    e = fetch_error(feed_url(srv, "/big.xml"), session, max_bytes=100_000)
    assert "stopped reading" in str(e) and "cap" in str(e)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_exactly_at_the_cap_is_fine(srv, session, chunked):
    srv.set_feed("/big.xml", b"y" * 200_000, chunked=chunked)
    res = fetch_feed(feed_url(srv, "/big.xml"), session=session, max_bytes=200_000)
    assert len(res.body) == 200_000


# -- schemes and files -----------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/feed.xml", "javascript:alert(1)", "data:text/xml,<rss/>",
    "gopher://127.0.0.1/", "mailto:host@example.com", "file://otherhost/feed.xml",
])
def test_other_schemes_are_refused(session, url):
    e = fetch_error(url, session)
    assert "only http(s) URLs and file paths are fetched" in str(e) or "other hosts" in str(e)
    with pytest.raises(FetchError):
        fetch_bytes(url, session=session, max_bytes=1000)


@pytest.mark.parametrize("url", ["", "http://", "https:///feed.xml"])
def test_urls_without_a_host_are_refused(session, url):
    assert fetch_error(url, session).status is None


def test_file_path_and_file_url(tmp_path, session):
    path = tmp_path / "show feed.xml"
    path.write_bytes(BODY)
    for url in (str(path), path.as_uri()):
        res = fetch_feed(url, session=session)
        assert res.status == 200 and bytes(res.body) == BODY and res.body_hash == SHA
        assert not res.unchanged and res.final_url == url and res.etag is None
        again = fetch_feed(url, session=session, previous_hash=res.body_hash)
        assert again.unchanged and again.body is None and again.body_hash == SHA
    path.write_bytes(BODY + b" ")
    assert not fetch_feed(str(path), session=session, previous_hash=SHA).unchanged


def test_file_errors(tmp_path, session):
    e = fetch_error(str(tmp_path / "missing.xml"), session)
    assert "no such file" in str(e) and "https://" not in str(e)
    assert "start it with https://" in str(fetch_error("example.com/feed.xml", session))
    assert "directory" in str(fetch_error(str(tmp_path), session))
    big = tmp_path / "big.xml"
    big.write_bytes(b"z" * 5000)
    assert "cap" in str(fetch_error(str(big), session, max_bytes=4999))


# -- fetch_bytes (artwork) -------------------------------------------------------------------

def test_fetch_bytes(srv, tmp_path):
    session = new_session(guard=True, allow_private=["127.0.0.0/8"])
    image = bytes(range(256)) * 100
    srv.set_feed("/cover.jpg", image, content_type="image/jpeg")
    assert fetch_bytes(feed_url(srv, "/cover.jpg"), session=session, max_bytes=50_000) == image
    path = tmp_path / "cover.jpg"
    path.write_bytes(image)
    assert fetch_bytes(str(path), session=session, max_bytes=50_000, trusted=True) == image
    with pytest.raises(FetchError, match="cap"):
        fetch_bytes(feed_url(srv, "/cover.jpg"), session=session, max_bytes=1000)
    with pytest.raises(FetchError) as info:
        fetch_bytes(feed_url(srv, "/missing.jpg"), session=session, max_bytes=1000)
    assert info.value.status == 404
    (_, _, headers), *_ = srv.requests
    assert "If-None-Match" not in headers and headers["User-Agent"] == USER_AGENT


# -- credentials stay out of messages --------------------------------------------------------

def test_redact_url():
    assert redact_url("https://alice:s3cret@host.example/f?x=1") == "https://***@host.example/f?x=1"
    assert redact_url("https://token@host.example:8443/f") == "https://***@host.example:8443/f"
    assert redact_url("https://host.example/f") == "https://host.example/f"
    assert redact_url("/tmp/feed.xml") == "/tmp/feed.xml"


@pytest.mark.parametrize("case", ["404", "410", "503", "timeout", "too-large", "refused",
                                  "bad-scheme", "loop", "disconnect"])
def test_credentials_never_appear_in_errors(srv, session, case, caplog):
    caplog.set_level("DEBUG", logger="bot.fetch")
    base = f"http://alice:s3cret@127.0.0.1:{srv.port}"
    url = base + "/feed.xml"
    kw: dict = {}
    if case in ("404", "410", "503"):
        srv.fail_next("/feed.xml", status=int(case), headers={"Retry-After": "5"})
    elif case == "timeout":
        srv.delay("/feed.xml", 2.0)
        kw["timeout"] = (1.0, 0.2)
    elif case == "too-large":
        kw["max_bytes"] = 10
    elif case == "refused":
        url = f"http://alice:s3cret@127.0.0.1:{closed_port()}/feed.xml"
    elif case == "bad-scheme":
        url = "ftp://alice:s3cret@127.0.0.1/feed.xml"
    elif case == "loop":
        srv.redirect("/a", "/b", status=302)
        srv.redirect("/b", "/a", status=302)
        url = base + "/a"
    elif case == "disconnect":
        srv.fail_next("/feed.xml", disconnect=True)
    e = fetch_error(url, session, **kw)
    for text in (str(e), e.url, e.detail, repr(e), caplog.text):
        assert "s3cret" not in text and "alice" not in text
    assert "***@" in e.url
    # no library exception (whose text may hold the URL) is chained on
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)


def test_credentials_in_the_url_are_sent_as_basic_auth(srv, session):
    res = fetch_feed(f"http://alice:s3cret@127.0.0.1:{srv.port}/feed.xml", session=session)
    assert bytes(res.body) == BODY
    (_, _, headers), = srv.requests
    assert headers["Authorization"].startswith("Basic ")


# -- Body: small bodies in memory, big ones in a temporary file -----------------------------

@pytest.mark.parametrize("memory", [0, 1, 100, 10_000])
@pytest.mark.parametrize("announced", [False, True])
def test_body_reads_back_what_was_written(memory, announced):
    rng = random.Random(memory)
    data = bytes(rng.randrange(256) for _ in range(5000))
    body = Body(memory=memory, expected=len(data) if announced else None)
    pos = 0
    while pos < len(data):
        n = rng.randrange(1, 700)
        body.write(data[pos:pos + n])
        pos += n
    assert body.spilled == (len(data) > memory)
    assert len(body) == len(data) and bytes(body) == data
    assert b"".join(bytes(c) for c in body.chunks(333)) == data
    for _ in range(200):
        i, j = rng.randrange(-20, 5020), rng.randrange(-20, 5020)
        assert body[i:j] == data[i:j]
    body.close()
    assert len(body) == 0


def test_a_big_feed_is_spooled_to_disk_not_kept_in_memory(srv, session, monkeypatch):
    monkeypatch.setattr(bot.fetch, "SPOOL_MEMORY", 64 * 1024)
    big = BODY.replace(b"</channel>", b"<!-- " + b"x" * 300_000 + b" --></channel>")
    srv.set_feed("/feed.xml", big)
    res = fetch_feed(feed_url(srv), session=session)
    assert res.body.spilled and bytes(res.body) == big and res.body_hash == body_hash(big)
    srv.set_feed("/feed.xml", BODY)
    assert not fetch_feed(feed_url(srv), session=session).body.spilled


def test_sessions_read_the_environment_once(monkeypatch):
    for k in list(os.environ):
        if k.lower().endswith("_proxy"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom.pem")
    s = new_session()
    assert s.trust_env is False and s.verify == "/etc/ssl/custom.pem"
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert new_session().trust_env is True
