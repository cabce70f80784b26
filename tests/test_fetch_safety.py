"""What a URL from a feed may reach, and for how long (bot.netguard through bot.fetch).

Real loopback servers (FeedServer, TrickleServer); addresses that must never be reached
(169.254.169.254) are refused before any connection: an audit hook on `socket.connect`
proves no packet left.
"""

from __future__ import annotations

import ipaddress
import time

import pytest

from bot.errors import BlockedError, FetchError
from bot.fetch import FEED_DEADLINE, IMAGE_DEADLINE, fetch_bytes, fetch_feed, new_session
from bot.netguard import AddressPolicy, why_not_public
from tests import netaudit
from tests.fakes.feed_server import FeedServer
from tests.fakes.trickle_server import TrickleServer
from tests.feedgen import item, rss


@pytest.fixture
def srv():
    with FeedServer() as server:
        server.set_feed("/art.png", b"\x89PNG fake artwork", content_type="image/png")
        yield server


@pytest.fixture
def connects() -> list[tuple]:
    """Where every socket.connect of this test went (tests/netaudit.py)."""
    return netaudit.recording()


def guarded(*allow: str):
    return new_session(guard=True, allow_private=allow)


# -- which addresses are private ---------------------------------------------------------

@pytest.mark.parametrize("address, says", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "metadata"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"),
    ("100.64.0.1", "carrier-grade NAT"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("ff0e::1", "multicast"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
    ("fec0::1", "site-local"), ("192.0.2.1", "private"),
    ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1: a loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254: the link-local cloud metadata"),
    ("64:ff9b::7f00:1", "NAT64 127.0.0.1"), ("64:ff9b::a00:1", "NAT64 10.0.0.1"),
    ("2002:7f00:1::1", "6to4 127.0.0.1"), ("::7f00:1", "IPv4-compatible 127.0.0.1"),
])
def test_private_addresses_are_named_with_their_kind(address, says):
    reason = why_not_public(ipaddress.ip_address(address))
    assert reason is not None and says in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "151.101.1.140",
                                     "2606:4700:4700::1111", "2a00:1450:4001::200e",
                                     "::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_public_addresses_pass(address):
    assert why_not_public(ipaddress.ip_address(address)) is None


def test_the_host_allows_networks_by_cidr():
    policy = AddressPolicy.allowing(["127.0.0.0/8", "fd00::/8", "10.1.2.3"])
    ip = ipaddress.ip_address
    assert policy.refusal(ip("127.0.0.1")) is None and policy.refusal(ip("::ffff:127.0.0.1")) \
        is None and policy.refusal(ip("fd00::5")) is None and policy.refusal(ip("10.1.2.3")) \
        is None
    assert "private" in policy.refusal(ip("10.1.2.4"))
    assert "metadata" in policy.refusal(ip("169.254.169.254"))
    with pytest.raises(ValueError):
        AddressPolicy.allowing(["10.0.0.0/33"])


# -- refused before connecting -------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam/",
                                 "https://169.254.169.254/computeMetadata/v1/",
                                 "http://[::ffff:169.254.169.254]/latest/meta-data/"])
def test_cloud_metadata_is_refused_before_any_connection(url, connects):
    with pytest.raises(BlockedError) as info:
        fetch_bytes(url, session=guarded(), max_bytes=10_000)
    message = str(info.value)
    assert "metadata" in message and "allow_private_networks" in message
    assert "169.254.169.254/32" in message
    assert connects == []   # not even a SYN


def test_loopback_artwork_is_refused_by_default_and_fetched_once_allowed(srv, connects):
    url = srv.url + "/art.png"
    with pytest.raises(BlockedError, match=r"127\.0\.0\.1: a loopback address \(this machine\)"):
        fetch_bytes(url, session=guarded(), max_bytes=10_000)
    assert srv.requests == [] and connects == []
    assert fetch_bytes(url, session=guarded("127.0.0.0/8"), max_bytes=10_000).startswith(b"\x89")
    assert len(srv.requests) == 1


def test_a_name_is_checked_by_what_it_resolves_to(srv, connects):
    url = f"http://localhost:{srv.port}/art.png"   # /etc/hosts: no DNS server needed
    with pytest.raises(BlockedError, match=r"localhost \((127\.0\.0\.1|::1)\): a loopback"):
        fetch_bytes(url, session=guarded(), max_bytes=10_000)
    assert srv.requests == [] and connects == []
    # allowed: only the allowed of its addresses (127.0.0.1, never ::1) is connected to
    assert fetch_bytes(url, session=guarded("127.0.0.0/8"), max_bytes=10_000)
    assert [a[0] for a in connects] == ["127.0.0.1"]


def test_every_redirect_is_checked(srv, connects):
    srv.redirect("/meta", "http://169.254.169.254/latest/meta-data/", status=302)
    srv.redirect("/other", f"http://127.0.0.2:{srv.port}/art.png", status=301)
    session = guarded("127.0.0.1/32")   # the first hop is allowed, not where it leads
    with pytest.raises(BlockedError, match="metadata"):
        fetch_bytes(srv.url + "/meta", session=session, max_bytes=10_000)
    with pytest.raises(BlockedError, match=r"127\.0\.0\.2: a loopback"):
        fetch_bytes(srv.url + "/other", session=session, max_bytes=10_000)
    assert [p for _, p, _ in srv.requests] == ["/meta", "/other"]
    assert all(addr[0] == "127.0.0.1" for addr in connects)   # never 169.254 or 127.0.0.2


def test_a_feed_url_never_reads_local_files(tmp_path, srv):
    secret = tmp_path / "id_ed25519"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    for url in (secret.as_uri(), str(secret), f"file://localhost{secret}"):
        with pytest.raises(BlockedError, match="only http"):
            fetch_bytes(url, session=guarded(), max_bytes=10_000)
    # what the host typed (crier queue add --image) is read
    assert fetch_bytes(str(secret), session=new_session(), max_bytes=10_000, trusted=True) \
        == secret.read_bytes()
    srv.redirect("/to-file", secret.as_uri(), status=302)   # requests never follows file:
    with pytest.raises(FetchError, match="not http"):
        fetch_bytes(srv.url + "/to-file", session=guarded("127.0.0.0/8"), max_bytes=10_000)


def test_a_feed_url_needs_a_guarded_session(srv):
    with pytest.raises(ValueError, match="guard"):
        fetch_bytes(srv.url + "/art.png", session=new_session(), max_bytes=10_000)


def test_the_hosts_own_feed_may_be_anywhere(srv):
    srv.set_feed("/feed.xml", rss([item(1)]))
    res = fetch_feed(srv.url + "/feed.xml", session=new_session())   # no allow list needed
    assert res.status == 200


# -- deadlines ----------------------------------------------------------------------------

def test_default_deadlines():
    assert (FEED_DEADLINE, IMAGE_DEADLINE) == (60.0, 30.0)


def timed(fn):
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fn()
    return info.value, time.monotonic() - started


def test_a_feed_trickling_its_headers_is_cut_off_at_the_deadline():
    with TrickleServer(rss([item(1)]), phase="headers", interval=1.0) as slow:
        e, took = timed(lambda: fetch_feed(slow.url + "/feed.xml", session=new_session(),
                                           deadline=1.5))
    assert 1.4 < took < 3.0   # the per-read timeout (30 s) never fired: a byte came each second
    assert "stopped after 1.5 s" in str(e) and "feed_deadline" in str(e)
    assert "had not finished sending its response headers" in str(e)


@pytest.mark.parametrize("length", [True, False])
def test_a_feed_trickling_its_body_is_cut_off_and_never_taken_as_whole(length):
    with TrickleServer(rss([item(1)]), phase="body", interval=1.0, length=length) as slow:
        e, took = timed(lambda: fetch_feed(slow.url + "/feed.xml", session=new_session(),
                                           deadline=1.5))
    assert 1.4 < took < 3.0
    assert "feed_deadline" in str(e) and "was still sending the body" in str(e)


def test_artwork_trickling_or_silent_is_cut_off_at_its_deadline():
    for phase in ("body", "silent"):
        with TrickleServer(b"\x89PNG" + b"\0" * 100, phase=phase, interval=1.0) as slow:
            e, took = timed(lambda: fetch_bytes(slow.url + "/art.png",
                                                session=guarded("127.0.0.0/8"),
                                                max_bytes=10_000, deadline=1.2))
        assert 1.1 < took < 2.5, phase
        assert "stopped after 1.2 s" in str(e) and "image_deadline" in str(e)


def test_a_kept_alive_connection_that_turns_slow_is_cut_off_too():
    with TrickleServer(b"x" * 50, phase="body", interval=1.0, fast_first=1) as slow:
        session = new_session()
        assert bytes(fetch_feed(slow.url + "/f", session=session, deadline=1.0).body) == b"x" * 50
        e, took = timed(lambda: fetch_feed(slow.url + "/f", session=session, deadline=1.0))
        assert slow.connections == 1   # the same connection, watched under the new deadline
    assert 0.9 < took < 2.5 and "feed_deadline" in str(e)


def test_through_a_proxy_the_target_is_checked_and_the_proxy_may_be_private(srv, connects):
    session = guarded()
    session.proxies = {"http": srv.url}   # the host's proxy, on a private address
    with pytest.raises(BlockedError, match="metadata"):
        fetch_bytes("http://169.254.169.254/latest/meta-data/", session=session,
                    max_bytes=10_000)
    assert connects == [] and srv.requests == []
    srv.set_feed("http://8.8.8.8/art.png", b"via the proxy", content_type="image/png")
    assert fetch_bytes("http://8.8.8.8/art.png", session=session, max_bytes=10_000) \
        == b"via the proxy"                # (the loopback "proxy" answered for 8.8.8.8)
    assert [a[0] for a in connects] == ["127.0.0.1"]
