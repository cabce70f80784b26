"""Many workers on one PostgreSQL database, each with its own engine and Service, in threads:
due deliveries and due feeds are leased (FOR UPDATE SKIP LOCKED), so no delivery is sent twice,
no feed is polled twice in one cycle, a promo fires once, and a worker that died holding a
lease frees its rows when the lease runs out (the injected clock moves past it)."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest

from bot.dispatch import SENDING_LEASE
from bot.models import DeliveryStatus
from bot.polling import POLL_LEASE
from bot.service import Service, build_publishers
from bot.store import Store, deliveries
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.world import M_TOKEN, X_KEYS, World, new_episode


@pytest.fixture
def pgworld(postgres, tmp_path):
    with FeedServer() as feed_srv, \
            MastodonServer(token=M_TOKEN, max_characters=500) as masto, \
            XServer(**X_KEYS, username="TestShow") as x:
        w = World(postgres.new_database(), feed_srv, masto, x, tmp_path)
        yield w
        w.store.close()


class Worker:
    """One more `crier run`: its own engine, publishers and poll owner; the world's clock."""

    def __init__(self, w: World, clock=None):
        self.store = Store(w.db_url)
        self.svc = Service(w.settings, self.store, clock=clock or w.clock, rng=random.Random(),
                           publishers=build_publishers(w.settings))
        self.leased: list[int] = []
        lease = self.store.lease_due_deliveries

        def spy(*a, **kw):
            rows = lease(*a, **kw)
            self.leased.extend(r.id for r in rows)
            return rows
        self.store.lease_due_deliveries = spy

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def workers(pgworld):
    made: list[Worker] = []

    def make(n: int) -> list[Worker]:
        made.extend(Worker(pgworld) for _ in range(n))
        return made[-n:]
    yield make
    for wk in made:
        wk.close()


def together(*fns):
    """Run the functions at once in threads (a barrier starts them); their results."""
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)
    failures: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fns[i]()
        except BaseException as e:  # noqa: BLE001 (reported below)
            failures.append(e)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if failures:
        raise failures[0]
    return results


def feed_gets(w: World) -> int:
    return sum(1 for m, p, _ in w.feed_srv.requests if m == "GET" and p == "/feed.xml")


def pending(w: World) -> list[dict]:
    return w.store.deliveries_where(deliveries.c.status == DeliveryStatus.PENDING.value)


def test_three_workers_send_each_delivery_once_and_lease_each_row_once(pgworld, workers):
    w = pgworld
    w.configure(max_new_per_poll=20)
    w.cycle()  # the first run: a baseline
    for n in range(6, 18):
        new_episode(w, n)
    assert w.svc.poll(force=True).result == "new"
    rows = pending(w)
    assert len(rows) == 24

    def drain(wk: Worker):
        def run():
            for _ in range(40):
                wk.svc.dispatch(limit=3, artwork_wait=0)
                if not pending(w):
                    return
        return run
    crew = workers(3)
    together(*(drain(wk) for wk in crew))

    assert len(w.masto.statuses) == 12 and len(w.x.tweets) == 12
    assert len({s["text"] for s in w.masto.statuses}) == 12
    assert {d.status for d in w.rows()} == {DeliveryStatus.SENT.value}
    leased = [i for wk in crew for i in wk.leased]
    assert sorted(leased) == sorted(d.id for d in rows)  # each row leased by one worker
    assert sum(bool(wk.leased) for wk in crew) >= 2          # and the work was shared


def test_no_feed_is_polled_twice_in_one_cycle(pgworld, workers):
    w = pgworld
    w.configure(poll_interval=60)  # unchanged polls within QUIET_WRITE: the row is not rewritten
    crew = workers(3)
    w.feed_srv.requests.clear()
    for cycle in range(4):
        reports = together(*(lambda wk=wk: wk.svc.poll() for wk in crew))
        assert sum(r.result != "waiting" for r in reports) == 1, reports
        for wk in crew:  # later in the same cycle: the feed is not due for anyone
            assert wk.svc.poll().result == "waiting"
        assert feed_gets(w) == cycle + 1
        if cycle == 2:
            new_episode(w)
        w.clock.advance(seconds=w.settings.poll_interval * 1.1 + 1)
    assert len(w.store.recent_episodes(w.store.all_feeds()[0].id, 50)) == 6


def test_a_worker_that_died_holding_a_delivery_lease_frees_it_after_the_lease(pgworld, workers):
    w = pgworld
    w.cycle()
    new_episode(w)
    w.svc.poll(force=True)
    assert len(pending(w)) == 2
    dead = w.store.lease_due_deliveries(w.clock.now, "lease:dead", SENDING_LEASE)
    assert len(dead) == 2  # leased, then the worker was killed before it claimed any
    (alive,) = workers(1)
    assert alive.svc.dispatch(artwork_wait=0) == []
    w.clock.advance(seconds=SENDING_LEASE.total_seconds() - 1)
    assert alive.svc.dispatch(artwork_wait=0) == []
    assert not w.masto.statuses and not w.x.tweets
    w.clock.advance(seconds=2)
    assert {o.status for o in alive.svc.dispatch(artwork_wait=0)} == {"sent"}
    assert len(w.masto.statuses) == 1 and len(w.x.tweets) == 1
    # the dead worker's claim, were it to wake up, finds its lease gone
    assert not w.store.claim(dead[0].id, "zombie", w.clock.now, lease="lease:dead")
    assert alive.svc.dispatch(artwork_wait=0) == []
    assert len(w.masto.statuses) == 1 and len(w.x.tweets) == 1


def test_a_worker_that_died_polling_frees_the_feed_after_the_lease(pgworld, workers):
    w = pgworld
    w.cycle()
    feed = w.store.all_feeds()[0]
    w.clock.advance(seconds=w.settings.poll_interval * 1.1 + 1)
    assert w.store.claim_due_feeds(w.clock.now, "dead", POLL_LEASE)  # then killed
    w.feed_srv.requests.clear()
    (alive,) = workers(1)
    assert alive.svc.poll(force=True).result == "waiting"
    w.clock.advance(seconds=POLL_LEASE.total_seconds() - 1)
    assert alive.svc.poll().result == "waiting"
    assert feed_gets(w) == 0
    w.clock.advance(seconds=2)
    assert alive.svc.poll().result == "unchanged"
    assert feed_gets(w) == 1
    assert not w.store.release_feed(feed.id, "dead")  # its lease is gone
    assert w.store.all_feeds()[0].poll_owner is None


def test_a_promo_fires_once_with_three_workers(pgworld, workers):
    w = pgworld
    w.configure(min_gap=0)
    w.cycle()
    w.drain()
    w.svc.queue.add("Book link: https://example.com/book", at="in 1m")
    w.clock.advance(minutes=2)
    crew = workers(3)
    together(*(lambda wk=wk: [wk.svc.dispatch(artwork_wait=0) for _ in range(3)]
               for wk in crew))
    assert [s["text"] for s in w.masto.statuses].count(
        "Book link: https://example.com/book") == 1
    assert [t["text"] for t in w.x.tweets].count("Book link: https://example.com/book") == 1


def test_a_community_scan_by_three_workers_proposes_and_boosts_each_post_once(pgworld,
                                                                              workers):
    import dataclasses
    w = pgworld
    w.settings = dataclasses.replace(
        w.settings, community=True, community_account="masto",
        community_hashtags=("TestShow",), community_allow=("friend@other.example",))
    w.start()
    posts = [w.masto.add_post(f"fan{i}@other.example", f"Loved #TestShow {i}",
                              tags=("TestShow",)) for i in range(20)]
    friend = w.masto.add_post("friend@other.example", "New #TestShow!", tags=("TestShow",))
    crew = workers(3)
    found = together(*(lambda wk=wk: wk.svc.community_scan() for wk in crew))
    uris = sorted(r.uri for r in w.svc.community_list(all_=True))
    assert uris == sorted(p["uri"] for p in [*posts, friend])
    assert sum(len(f) for f in found) == 21  # each proposed by one worker
    together(*(lambda wk=wk: [wk.svc.dispatch(artwork_wait=0) for _ in range(3)]
               for wk in crew))
    assert [r["reblog"]["uri"] for r in w.masto.reblogs] == [friend["uri"]]


def test_a_slow_pass_stops_while_its_lease_surely_holds_and_gives_the_rest_back(pgworld):
    w = pgworld
    w.configure(max_new_per_poll=20)
    w.cycle()
    for n in range(6, 12):
        new_episode(w, n)
    w.svc.poll(force=True)
    assert len(pending(w)) == 12

    def slow():  # every look at the clock costs ten seconds
        w.clock.advance(seconds=10)
        return w.clock.now
    slowpoke = Worker(w, clock=slow)
    try:
        sent = [o for o in slowpoke.svc.dispatch(artwork_wait=0) if o.status == "sent"]
    finally:
        slowpoke.close()
    assert 0 < len(sent) < 12
    left = pending(w)
    assert len(left) == 12 - len(sent)
    assert all(d.claim_token is None for d in left)  # given back, not waiting for a lease
    w.drain()
    assert len(w.masto.statuses) + len(w.x.tweets) == 12
    assert {d.status for d in w.rows()} == {DeliveryStatus.SENT.value}


def test_a_scheduled_episode_released_by_three_workers_at_once_is_announced_once(pgworld,
                                                                                 workers):
    from tests.feedgen import item
    w = pgworld
    w.cycle()
    w.items.append(item(6, published=w.clock.now + timedelta(hours=1)))
    w.publish_feed()
    report = w.svc.poll(force=True)
    assert report.scheduled and not pending(w)
    w.clock.advance(hours=2)
    crew = workers(3)
    for wk in crew:
        wk.store.all_feeds()  # connected: the three start at the same moment
    released = together(*(lambda wk=wk: wk.svc.release_scheduled() for wk in crew))
    assert sum(bool(r) for r in released) >= 1
    assert len(pending(w)) == 2  # one announcement, one delivery per account
    together(*(lambda wk=wk: wk.svc.dispatch(artwork_wait=0) for wk in crew))
    assert len(w.masto.statuses) == 1 and len(w.x.tweets) == 1


def test_the_leases_themselves_on_both_databases(world):
    """The store's claims work on SQLite too (one worker there, but the same queries)."""
    w, now = world, world.clock.now
    w.cycle()
    (feed,) = w.store.all_feeds()
    w.clock.advance(hours=1)
    now = w.clock.now
    assert [f.id for f in w.store.claim_due_feeds(now, "a", POLL_LEASE)] == [feed.id]
    assert w.store.claim_due_feeds(now, "b", POLL_LEASE, force=True) == []  # a holds it
    assert not w.store.release_feed(feed.id, "b")
    assert w.store.release_feed(feed.id, "a", next_poll_at=now + timedelta(hours=1))
    assert w.store.claim_due_feeds(now, "b", POLL_LEASE) == []                # not due
    assert len(w.store.claim_due_feeds(now, "b", POLL_LEASE, ids=[feed.id], force=True)) == 1
    assert w.store.release_feed(feed.id, "b")
    new_episode(w)
    w.svc.poll(force=True)
    assert len(w.store.lease_due_deliveries(now, "lease:a", SENDING_LEASE)) == 2
    assert w.store.lease_due_deliveries(now, "lease:b", SENDING_LEASE) == []
    assert w.store.release_deliveries("lease:a") == 2
    rows = w.store.lease_due_deliveries(now, "lease:b", SENDING_LEASE, limit=1)
    assert len(rows) == 1 and rows[0].kind == "announcement"
    assert not w.store.claim(rows[0].id, "t", now, lease="lease:a")
    assert w.store.claim(rows[0].id, "t", now, lease="lease:b")
