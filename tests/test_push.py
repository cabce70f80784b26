"""bot.push (issue 17): a push makes a feed due now and wakes the worker; the poll that follows
is the ordinary one, so a push for a changed feed announces its episode at once and a push for
an unchanged feed costs one 304. Feeds are matched by URL across http/https, a trailing slash,
the host's case and a redirect. A real fleet over a loopback feed server and the local
Mastodon server, an injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from bot import push
from bot.deployment import load_deployment
from bot.fleet import Fleet
from bot.store import Store, feeds
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss

TOKEN = "tok-push"


class Net:
    """One show (poll_interval 15 minutes) on a loopback feed server, one Mastodon account."""

    def __init__(self, stack: ExitStack, tmp, db_url: str, monkeypatch):
        self.feed = stack.enter_context(FeedServer())
        self.masto = stack.enter_context(MastodonServer(token=TOKEN))
        self.t = [datetime.now(UTC).replace(microsecond=0)]
        self.items = [item(k, published=self.t[0] - timedelta(days=7 * (10 - k)))
                      for k in (1, 2)]
        self.publish()
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("CRIER_M_ACCESS_TOKEN", TOKEN)
        self.url = f"http://127.0.0.1:{self.feed.port}/show.xml"
        cfg = tmp / "crier.toml"
        cfg.write_text(f"""show = "Pushed"
feed = "{self.url}"
poll_interval = "15m"
[promos]
min_gap = 0
[[accounts]]
platform = "mastodon"
name = "m"
instance = "{self.masto.url}"
timeout = 2
""")
        self.store = Store(db_url)
        stack.callback(self.store.close)
        self.store.migrate()
        self.fleet = Fleet(self.store, lambda: load_deployment(cfg), clock=lambda: self.t[0])
        stack.callback(self.fleet.close)

    def publish(self) -> None:
        self.feed.set_feed("/show.xml", rss(self.items, title="Pushed"))

    def new_episode(self) -> str:
        k = len(self.items) + 1
        self.items.append(item(k, published=self.t[0] - timedelta(minutes=1),
                               title=f"Episode {k} pushed"))
        self.publish()
        return f"Episode {k} pushed"

    def row(self):
        return self.store.all_feeds()[0]


@pytest.fixture
def net(db_url, tmp_path, monkeypatch):
    with ExitStack() as stack:
        yield Net(stack, tmp_path, db_url, monkeypatch)
    push.set_waker(None)


def test_a_push_makes_the_feed_due_and_its_new_episode_goes_out_at_once(net):
    net.fleet.poll()                                   # first run: the baseline
    net.fleet.dispatch()
    assert net.masto.statuses == []
    net.t[0] += timedelta(minutes=1)
    title = net.new_episode()
    net.feed.requests.clear()
    assert net.fleet.poll() == []                      # not due for another ~13 minutes
    assert net.feed.requests == []
    woken = []
    push.set_waker(lambda: woken.append(1))
    fid = net.row().id
    assert push.poll_now(net.store, [fid], via="websub", now=net.t[0]) == [fid]
    assert woken == [1]
    row = net.row()
    assert row.next_poll_at == net.t[0]
    assert row.last_push_at == net.t[0] and row.last_push_via == "websub"
    [(_ref, report)] = net.fleet.poll()
    assert report.result == "new" and len(report.announced) == 1
    net.fleet.dispatch()
    assert [s["text"] for s in net.masto.statuses if title in s["text"]]
    assert len(net.masto.statuses) == 1
    # the next poll is a whole interval away again, not "now"
    assert net.row().next_poll_at > net.t[0] + timedelta(minutes=10)


def test_a_push_for_an_unchanged_feed_costs_one_304_and_posts_nothing(net):
    net.fleet.poll()
    net.t[0] += timedelta(minutes=1)
    fid = net.row().id
    net.feed.requests.clear()
    for _ in range(3):            # repeated while still due: the feed is due once
        push.poll_now(net.store, [fid], via="podping", now=net.t[0])
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
    assert [(m, p) for m, p, _h in net.feed.requests] == [("GET", "/show.xml")]
    assert "If-None-Match" in net.feed.requests[0][2] or \
        "if-none-match" in {k.lower() for k in net.feed.requests[0][2]}
    net.fleet.dispatch()
    assert net.masto.statuses == []


def test_poll_now_brings_forward_never_back_and_skips_parked_feeds(net):
    now = net.t[0]
    fid = net.store.ensure_feed(net.url, now).id
    other = net.store.ensure_feed("https://example.org/other.xml", now).id
    parked = net.store.ensure_feed("https://example.org/parked.xml", now).id
    early = now - timedelta(minutes=3)
    net.store.update_feed(fid, next_poll_at=now + timedelta(hours=1))
    net.store.update_feed(other, next_poll_at=early)
    with net.store.tx() as c:
        Store.park_feeds(c, [parked])
    assert push.poll_now(net.store, [fid, other, parked, 999_999], via="websub",
                         now=now) == [fid, other]
    rows = {r.id: r for r in net.store.all_feeds()}
    assert rows[fid].next_poll_at == now                 # brought forward
    assert rows[other].next_poll_at == early             # already earlier: left
    assert rows[parked].last_push_at is None             # parked: untouched
    new = net.store.ensure_feed("https://example.org/new.xml", now).id
    push.poll_now(net.store, [new], via="websub", now=now)
    assert {r.id: r for r in net.store.all_feeds()}[new].next_poll_at is None  # due, first run
    woken = []
    push.set_waker(lambda: woken.append(1))
    assert push.poll_now(net.store, [parked], via="websub", now=now) == []
    assert push.poll_now(net.store, [], via="websub", now=now) == []
    assert woken == []                                   # nothing made due: nobody woken


def test_a_waker_that_fails_leaves_the_feed_due(net, caplog):
    fid = net.store.ensure_feed(net.url, net.t[0]).id
    net.store.update_feed(fid, next_poll_at=net.t[0] + timedelta(hours=1))

    def broken():
        raise RuntimeError("scheduler gone")
    push.set_waker(broken)
    assert push.poll_now(net.store, [fid], via="websub", now=net.t[0]) == [fid]
    assert net.row().next_poll_at == net.t[0]
    assert "could not wake the poll job" in caplog.text
    push.set_waker(None)
    assert push.wake() is False


def test_feeds_by_url_matches_spellings_and_redirects(net):
    now = net.t[0]
    a = net.store.ensure_feed("https://Feeds.Example.com/show/rss", now).id
    b = net.store.ensure_feed("http://old.example.net/b.xml", now).id
    net.store.update_feed(b, redirect_url="https://new.example.net/b.xml")
    c = net.store.ensure_feed("https://example.org/c.xml?id=7", now).id
    gone = net.store.ensure_feed("https://example.org/gone.xml", now).id
    with net.store.tx() as conn:
        Store.park_feeds(conn, [gone])
    got = push.feeds_by_url(net.store, [
        "http://feeds.example.com/show/rss/",          # scheme, case, trailing slash
        "https://feeds.example.com:443/show/rss",      # default port
        "https://new.example.net/b.xml",               # where b moved
        "http://old.example.net/b.xml#x",              # b's own URL, a fragment
        "https://example.org/c.xml?id=7",
        "https://example.org/c.xml?id=8",              # another query: another feed
        "https://example.org/gone.xml",                # parked: not followed
        "https://unknown.example/feed", "", "not a url"])
    assert got == {"http://feeds.example.com/show/rss/": a,
                   "https://feeds.example.com:443/show/rss": a,
                   "https://new.example.net/b.xml": b,
                   "http://old.example.net/b.xml#x": b,
                   "https://example.org/c.xml?id=7": c}


def test_url_key():
    assert push.url_key("HTTPS://A.example/x/") == push.url_key("http://a.example/x")
    assert push.url_key("https://a.example:8443/x") != push.url_key("https://a.example/x")
    assert push.url_key("/srv/feed.xml") == "/srv/feed.xml"


def test_push_feeds_is_one_statement_on_the_feeds_table(net):
    """Store.push_feeds writes only the push columns and next_poll_at."""
    now = net.t[0]
    fid = net.store.ensure_feed(net.url, now).id
    net.store.update_feed(fid, etag='"v1"', next_poll_at=now + timedelta(hours=2))
    assert net.store.push_feeds([fid], "websub", now) == [fid]
    with net.store.tx() as c:
        row = c.execute(feeds.select().where(feeds.c.id == fid)).mappings().one()
    assert row["etag"] == '"v1"' and row["last_push_via"] == "websub"


def test_a_push_during_the_poll_of_its_feed_is_not_lost(net):
    """The poll in flight may have read the feed before the change: its release moves the
    next poll an interval on, and the push (made while it ran) brings it back."""
    net.fleet.poll()
    net.t[0] += timedelta(minutes=20)                   # due by polling
    fid = net.row().id
    net.feed.delay("/show.xml", 0.5)
    started = threading.Event()
    pushed_at = net.t[0] + timedelta(seconds=1)

    def push_while_polling():
        for _ in range(500):
            if net.feed.requests:
                break
            started.wait(0.01)
        push.poll_now(net.store, [fid], via="websub", now=pushed_at)
        started.set()
    helper = threading.Thread(target=push_while_polling)
    net.feed.requests.clear()
    helper.start()
    [(_ref, report)] = net.fleet.poll()
    helper.join()
    assert started.is_set() and report.result == "unchanged"
    assert net.row().next_poll_at == pushed_at          # not an interval on: due again
    net.feed.delay("/show.xml", 0)
    net.t[0] = pushed_at
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
    assert net.row().next_poll_at > pushed_at + timedelta(minutes=10)


def test_keep_pushes_only_for_pushes_after_the_claim(net):
    now = net.t[0]
    fid = net.store.ensure_feed(net.url, now).id
    net.store.update_feed(fid, next_poll_at=now + timedelta(minutes=15),
                          last_push_at=now - timedelta(seconds=1))
    assert net.store.keep_pushes([fid], now) == 0        # an older push: already handled
    net.store.update_feed(fid, last_push_at=now + timedelta(seconds=2))
    assert net.store.keep_pushes([fid], now) == 1
    assert net.row().next_poll_at == now + timedelta(seconds=2)
    assert net.store.keep_pushes([], now) == 0
