"""Concurrent polls inside one worker (issue 14, "Workers"): `Fleet.poll` polls the due shows a
bounded number at once, at most `max_polls_per_host` to one host, asks the database only for
the due ones, and still announces every episode exactly once per account; a failing feed does
not stop the others. On SQLite and PostgreSQL, with a loopback feed server that delays its
answers and counts the requests in flight per host, and a local Mastodon server."""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from bot.deployment import load_deployment
from bot.errors import ConfigError
from bot.fleet import Fleet
from bot.store import Store, feeds
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss

TOKEN = "tok-conc"
DELAY = 0.4         # every feed answer waits this long (real sockets: a short real delay)


class Shows:
    """`n` shows on one feed server, half named by 127.0.0.1 and half by localhost (two
    "hosts"), each with its own Mastodon account on one local Mastodon server."""

    def __init__(self, stack: ExitStack, tmp, db_url: str, monkeypatch, n: int, *,
                 in_flight: int, per_host: int, clock=None, extra: str = ""):
        self.feed = stack.enter_context(FeedServer())
        self.masto = stack.enter_context(MastodonServer(token=TOKEN))
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.slugs = [f"s{i}" for i in range(n)]
        self.items = {s: [item(k, published=self.now - timedelta(days=7 * (10 - k)),
                               title=f"{s} episode {k}") for k in (1, 2)] for s in self.slugs}
        monkeypatch.setenv("DATABASE_URL", db_url)
        parts = [f"max_polls_in_flight = {in_flight}\nmax_polls_per_host = {per_host}\n"]
        for i, slug in enumerate(self.slugs):
            self.publish(slug)
            host = "127.0.0.1" if i % 2 == 0 else "localhost"
            monkeypatch.setenv(f"CRIER_M_{slug.upper()}_ACCESS_TOKEN", TOKEN)
            parts.append(f"""
[[shows]]
show = "Show {slug}"
slug = "{slug}"
feed = "http://{host}:{self.feed.port}/{slug}.xml"
{extra}[shows.promos]
min_gap = 0
[[shows.accounts]]
platform = "mastodon"
name = "m-{slug}"
instance = "{self.masto.url}"
timeout = 2
""")
        self.cfg = tmp / "crier.toml"
        self.cfg.write_text("".join(parts))
        self.store = Store(db_url)
        stack.callback(self.store.close)
        self.store.migrate()
        kw = {"clock": clock} if clock else {}
        self.fleet = Fleet(self.store, lambda: load_deployment(self.cfg), **kw)
        stack.callback(self.fleet.close)

    def publish(self, slug: str) -> None:
        self.feed.set_feed(f"/{slug}.xml", rss(self.items[slug], title=f"Show {slug}"))

    def new_episode(self, slug: str) -> str:
        k = len(self.items[slug]) + 1
        title = f"{slug} episode {k}"
        self.items[slug].append(item(k, published=datetime.now(UTC) - timedelta(minutes=5),
                                     title=title))
        self.publish(slug)
        return title

    def due_now(self, urls: list[str] | None = None) -> None:
        """Time passes for these feeds (all by default): their next poll has come."""
        q = feeds.update().values(next_poll_at=datetime.now(UTC) - timedelta(seconds=1))
        if urls is not None:
            q = q.where(feeds.c.url.in_(urls))
        with self.store.tx() as c:
            c.execute(q)

    def url(self, slug: str) -> str:
        return next(s.settings.feed for s in self.fleet.services if s.settings.slug == slug)

    def slow(self, seconds: float) -> None:
        for slug in self.slugs:
            self.feed.delay(f"/{slug}.xml", seconds)

    def posted(self) -> list[str]:
        return [s["text"] for s in self.masto.statuses]


@pytest.fixture
def make(db_url, tmp_path, monkeypatch):
    with ExitStack() as stack:
        def make(n: int, *, in_flight: int = 8, per_host: int = 2, **kw) -> Shows:
            return Shows(stack, tmp_path, db_url, monkeypatch, n, in_flight=in_flight,
                         per_host=per_host, **kw)
        yield make


def timed_poll(fleet: Fleet, **kw) -> tuple[float, list]:
    t0 = time.monotonic()
    out = fleet.poll(**kw)
    return time.monotonic() - t0, out


def test_polls_overlap_within_the_per_host_bound_and_announce_once(make):
    net = make(8, in_flight=8, per_host=2)
    net.slow(DELAY)
    took, reports = timed_poll(net.fleet)          # first run: every show, a baseline each
    assert sorted(r.result for _s, r in reports) == ["baseline"] * 8
    # 8 slow answers, 2 hosts × 2 at once: about 2 rounds, far from the 8 of one by one
    assert took < 8 * DELAY * 0.6, took
    assert net.feed.peak == {"127.0.0.1": 2, "localhost": 2}
    assert net.feed.peak_total == 4

    titles = [net.new_episode(slug) for slug in net.slugs]
    net.due_now()
    reports = net.fleet.poll()
    assert sorted(r.result for _s, r in reports) == ["new"] * 8
    net.fleet.dispatch()
    net.due_now()
    net.fleet.poll()                                 # the same feeds again: nothing new
    net.fleet.dispatch()
    posted = net.posted()
    assert len(posted) == 8
    for title in titles:
        assert sum(title in text for text in posted) == 1, (title, posted)
    assert max(net.feed.peak.values()) == 2


def test_one_host_never_gets_more_than_its_share(make):
    net = make(6, in_flight=16, per_host=1)
    net.slow(0.2)
    took, reports = timed_poll(net.fleet)
    assert len(reports) == 6
    assert net.feed.peak == {"127.0.0.1": 1, "localhost": 1}
    assert took >= 3 * 0.2                           # 3 shows per host, one at a time


def test_only_due_shows_are_polled(make):
    net = make(4)
    net.fleet.poll()
    net.feed.requests.clear()
    assert net.fleet.poll() == []                    # nothing due: no request at all
    assert net.feed.requests == []
    assert net.fleet.due() == []
    net.due_now([net.url("s1")])
    assert net.fleet.due() == [net.url("s1")]
    reports = net.fleet.poll()
    assert [(s.slug, r.result) for s, r in reports] == [("s1", "unchanged")]
    assert [p for _m, p, _h in net.feed.requests] == ["/s1.xml"]


def test_an_unchanged_feed_is_polled_from_its_row_alone(make):
    """A healthy show's unchanged feed needs no Service: its validators and interval are on
    its row, and the new poll times are written with the lease's release."""
    t = [datetime.now(UTC)]
    net = make(3, clock=lambda: t[0], extra="poll_interval = 60\n")
    assert len(net.fleet.poll()) == 3                 # baseline: each show's Service
    assert net.fleet.loaded == 3
    net.fleet.reload()                                # the cache starts empty again
    assert net.fleet.loaded == 0
    t[0] += timedelta(minutes=10)
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"] * 3
    assert net.fleet.loaded == 0                      # no show was loaded
    for row in net.store.all_feeds():
        assert row.last_poll_at == t[0] and row.last_result == "unchanged"
        # 10 minutes late: counted from now, within the interval less the tick (3 s at 60 s)
        assert timedelta(seconds=51) <= row.next_poll_at - t[0] <= timedelta(seconds=57)
        assert row.poll_owner is None and row.poll_lease_until is None
    t[0] += timedelta(seconds=30)
    assert net.fleet.due() == []
    net.feed.requests.clear()
    assert net.fleet.poll() == []
    assert net.feed.requests == []
    t[0] += timedelta(seconds=40)                     # 70 s: every feed is due again
    assert len(net.fleet.due()) == 3
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"] * 3
    assert len(net.feed.requests) == 3
    # polled a little after it was due: the next poll is counted from the due time
    due = t[0] + timedelta(seconds=55)
    with net.store.tx() as c:
        c.execute(feeds.update().values(next_poll_at=due))
    t[0] = due + timedelta(seconds=4)
    assert len(net.fleet.poll()) == 3
    for row in net.store.all_feeds():
        assert timedelta(seconds=51) <= row.next_poll_at - due <= timedelta(seconds=57)


def test_a_removed_show_or_a_moved_feed_is_not_polled(make):
    """Show s1 leaves the config and s2's feed moves: the old feed rows are parked (their
    history kept), no worker polls them; the new feed gets its first run."""
    net = make(3)
    net.fleet.poll()
    head, *blocks = net.cfg.read_text().split("\n[[shows]]")
    blocks = [b for b in blocks if 'slug = "s1"' not in b]
    text = "\n[[shows]]".join([head, *blocks]).replace("/s2.xml", "/s2-new.xml")
    net.cfg.write_text(text)
    net.feed.set_feed("/s2-new.xml", rss(net.items["s2"], title="Show s2"))
    report = net.fleet.reload()
    assert report.removed == ["s1"] and report.changed == ["s2"]
    net.due_now()
    net.feed.requests.clear()
    reports = net.fleet.poll()
    assert sorted((s.slug, r.result) for s, r in reports) == [
        ("s0", "unchanged"), ("s2", "baseline")]
    assert sorted(p for _m, p, _h in net.feed.requests) == ["/s0.xml", "/s2-new.xml"]
    with net.store.tx() as c:
        active = {r.url.rsplit("/", 1)[1]: r.active for r in c.execute(feeds.select())}
    assert active == {"s0.xml": True, "s1.xml": False, "s2.xml": False, "s2-new.xml": True}


def test_a_failing_feed_does_not_stop_the_others(make):
    net = make(6, in_flight=6, per_host=3)
    net.fleet.poll()
    titles = {slug: net.new_episode(slug) for slug in net.slugs}
    net.feed.fail_next("/s0.xml", 500)
    net.feed.set_feed("/s3.xml", b"<html>not a feed</html>")
    net.feed.fail_next("/s4.xml", disconnect=True)
    net.due_now()
    reports = dict((s.slug, r) for s, r in net.fleet.poll())
    assert {slug: r.result for slug, r in reports.items()} == {
        "s0": "error", "s1": "new", "s2": "new", "s3": "error", "s4": "error", "s5": "new"}
    net.fleet.dispatch()
    posted = net.posted()
    for slug in ("s1", "s2", "s5"):
        assert sum(titles[slug] in text for text in posted) == 1
    assert len(posted) == 3
    # the feeds come back: their episodes go out too, once
    net.publish("s3")
    net.due_now()
    net.fleet.poll()
    net.fleet.dispatch()
    posted = net.posted()
    assert len(posted) == 6
    for title in titles.values():
        assert sum(title in text for text in posted) == 1


@pytest.mark.parametrize("key", ["max_polls_in_flight", "max_polls_per_host"])
def test_the_bounds_are_checked(tmp_path, key):
    cfg = tmp_path / "crier.toml"
    cfg.write_text(f'{key} = 0\n[[shows]]\nshow = "A"\nfeed = "https://example.org/f.xml"\n')
    with pytest.raises(ConfigError) as e:
        load_deployment(cfg)
    assert key in str(e.value) and "≥ 1" in str(e.value)
