"""Dispatch across shows costs what is due (issue 14): `due_show_ids` names exactly the shows
whose dispatch has something to do — a due delivery, one stuck in `sending`, a due promo, a
scheduled episode whose date has come — and no other; `recover_stale` runs once for every
show and `dispatch(recover=False)` leaves it to the caller. Five shows made through the real
paths (a loopback feed server, the promo queue, a claim left behind by a dead worker), an
injected clock, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.config import Account, Secret, Settings
from bot.dispatch import SENDING_LEASE, due_show_ids, recover_stale
from bot.models import Delivery, DeliveryStatus
from bot.service import Service, build_publishers
from bot.shows import remove_show
from bot.store import Store, deliveries
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss
from tests.world import M_TOKEN, Clock

SLUGS = ("alpha", "bravo", "charlie", "delta", "quiet")


class Shows:
    """Five shows on one store, each its own Service over its own feed path and account."""

    def __init__(self, db_url: str, feed: FeedServer, masto: MastodonServer, tmp: Path):
        self.feed, self.clock = feed, Clock()
        self.store = Store(db_url)
        self.store.migrate()
        self.items = {s: [item(n, published=self.clock.now - timedelta(days=7 * (10 - n)),
                               title=f"{s} episode {n}") for n in range(1, 4)] for s in SLUGS}
        self.svc: dict[str, Service] = {}
        for slug in SLUGS:
            self.publish(slug)
            settings = Settings(
                path=tmp / f"{slug}.toml", show=f"{slug.title()} Show", slug=slug,
                feed=f"{feed.url}/{slug}.xml", poll_interval=900, min_gap=0,
                accounts=(Account(name=f"m-{slug}", platform="mastodon", instance=masto.url,
                                  timeout=2.0, secrets={"access_token": Secret(M_TOKEN)}),),
                database_url=db_url)
            self.svc[slug] = Service(settings, self.store, clock=self.clock,
                                     rng=random.Random(7),
                                     publishers=build_publishers(settings))
        for svc in self.svc.values():
            assert svc.poll(force=True).result == "baseline"

    def publish(self, slug: str) -> None:
        self.feed.set_feed(f"/{slug}.xml", rss(self.items[slug], title=f"{slug} show"))

    def add_item(self, slug: str, n: int, **published) -> None:
        self.items[slug].append(item(n, published=self.clock.now + timedelta(**published),
                                     title=f"{slug} episode {n}"))
        self.publish(slug)

    def due(self) -> set[str | None]:
        """`due_show_ids` at the clock's now, as slugs (None kept)."""
        ids = {svc.show_id: slug for slug, svc in self.svc.items()}
        return {ids.get(sid, sid) for sid in due_show_ids(self.store, self.clock())}

    def rows(self, slug: str, status: str | None = None) -> list[Delivery]:
        svc = self.svc[slug]
        conds = [deliveries.c.status == status] if status else []
        return svc.store.deliveries_where(*conds)


@pytest.fixture
def five(db_url, tmp_path):
    with FeedServer() as feed, MastodonServer(token=M_TOKEN, max_characters=500) as masto:
        shows = Shows(db_url, feed, masto, tmp_path)
        shows.masto = masto
        yield shows
        shows.store.close()


def test_exactly_the_shows_with_something_due_at_each_moment(five):
    s = five
    assert s.due() == set()                      # baselines only: nothing to send
    s.add_item("alpha", 4, minutes=-5)           # a new episode: its announcement is due now
    assert s.svc["alpha"].poll(force=True).result == "new"
    s.svc["bravo"].queue.add("Our book: https://example.com/book", at="in 1h")
    s.add_item("charlie", 4, hours=2)            # dated in two hours: scheduled
    assert s.svc["charlie"].poll(force=True).scheduled
    s.add_item("delta", 4, minutes=-5)
    assert s.svc["delta"].poll(force=True).result == "new"
    [d] = s.rows("delta", DeliveryStatus.PENDING.value)
    assert s.due() == {"alpha", "delta"}
    # a worker claims delta's delivery and dies before it is sent: not due while its claim
    # may still be at work, due once SENDING_LEASE has passed
    assert s.store.claim(d.id, uuid.uuid4().hex, s.clock())
    assert s.due() == {"alpha"}

    assert [o.status for o in s.svc["alpha"].dispatch(recover=False)] == ["sent"]
    assert s.due() == set()                      # the promo, the date, the lease: all later

    s.clock.advance(seconds=SENDING_LEASE.total_seconds() - 1)
    assert s.due() == set()
    s.clock.advance(seconds=2)
    assert s.due() == {"delta"}                  # stuck in `sending` past the lease
    assert recover_stale(s.store, s.clock()) == [d.id]
    assert s.due() == {"delta"}                  # back to pending, to be checked first
    [o] = s.svc["delta"].dispatch(recover=False)
    assert o.status == "sent" and s.due() == set()

    s.clock.advance(hours=1)
    assert s.due() == {"bravo"}                  # the promo's time has come
    assert [o.status for o in s.svc["bravo"].dispatch(recover=False)] == ["sent"]
    assert s.due() == set()

    s.clock.advance(hours=1)
    assert s.due() == {"charlie"}                # the scheduled episode's date has come
    assert [o.status for o in s.svc["charlie"].dispatch(recover=False)] == ["sent"]
    assert s.due() == set()

    texts = [st["text"] for st in s.masto.statuses]
    assert len(texts) == 4 and any("Our book" in t for t in texts)
    assert not s.rows("quiet")                   # never due, never touched


def test_a_delivery_waiting_for_its_retry_is_due_when_its_time_comes(five):
    s = five
    s.add_item("bravo", 4, minutes=-5)
    s.svc["bravo"].poll(force=True)
    [d] = s.rows("bravo", DeliveryStatus.PENDING.value)
    later = s.clock() + timedelta(minutes=3)
    s.store.update_delivery(d.id, s.clock(), next_attempt_at=later)
    assert s.due() == set()
    s.clock.now = later
    assert s.due() == {"bravo"}


def test_a_leased_delivery_is_not_due_until_the_lease_runs_out(five):
    """PostgreSQL: another worker's batch lease (lease_due_deliveries) holds the row; SQLite
    has one worker, which does not lease (its dispatcher ignores the token, so must this)."""
    s = five
    s.add_item("charlie", 4, minutes=-5)
    s.svc["charlie"].poll(force=True)
    [d] = s.svc["charlie"].store.lease_due_deliveries(s.clock(), "lease:other", SENDING_LEASE)
    assert s.due() == (set() if s.store.many_workers else {"charlie"})
    s.clock.advance(seconds=SENDING_LEASE.total_seconds() + 1)
    assert s.due() == {"charlie"}
    s.store.release_deliveries("lease:other")
    assert s.due() == {"charlie"}


def test_removed_shows_are_left_out_and_rows_without_a_show_come_back_as_none(five):
    s = five
    s.svc["quiet"].queue.add("Quiet news: https://example.com/q", at="in 1h")
    s.svc["alpha"].queue.add("Alpha news: https://example.com/a", at="in 1h")
    s.store.add_promo(s.clock(), kind="once", text="From before the registry",
                      next_at=s.clock() + timedelta(hours=1), status="active")
    s.clock.advance(hours=1)
    assert s.due() == {"quiet", "alpha", None}
    remove_show(s.store, "quiet", s.clock())
    assert s.due() == {"alpha", None}


def test_recover_stale_once_for_every_show_and_dispatch_can_leave_it_out(five):
    s = five
    stuck = {}
    for slug in ("alpha", "bravo"):
        s.add_item(slug, 4, minutes=-5)
        s.svc[slug].poll(force=True)
        [d] = s.rows(slug, DeliveryStatus.PENDING.value)
        assert s.store.claim(d.id, uuid.uuid4().hex, s.clock())
        stuck[slug] = d.id
    s.clock.advance(minutes=5)
    assert s.due() == {"alpha", "bravo"}
    assert s.svc["alpha"].dispatch(recover=False) == []      # left to the caller
    assert {d.status for d in s.rows("alpha")} == {DeliveryStatus.SENDING.value}
    assert sorted(recover_stale(s.store, s.clock())) == sorted(stuck.values())
    for slug in ("alpha", "bravo"):
        [d] = s.rows(slug)
        assert d.status == DeliveryStatus.PENDING.value and d.needs_check
    assert recover_stale(s.store, s.clock()) == []


def test_a_show_dispatch_alone_still_recovers_what_a_dead_worker_left(five):
    """`Service.dispatch()` as the CLI and one-show tests call it: recovery included."""
    s = five
    s.add_item("delta", 4, minutes=-5)
    s.svc["delta"].poll(force=True)
    [d] = s.rows("delta", DeliveryStatus.PENDING.value)
    assert s.store.claim(d.id, uuid.uuid4().hex, s.clock())
    s.clock.advance(minutes=5)
    [o] = s.svc["delta"].dispatch()
    assert o.status == "sent" and s.due() == set()
    assert len(s.masto.statuses) == 1


def _statements(store: Store) -> list[str]:
    """Every SQL statement the store's engine runs from now on (first word, upper-case)."""
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cur, stmt, *a: seen.append(stmt.split(None, 1)[0].upper()))
    return seen


def test_a_show_with_nothing_due_costs_a_few_reads_and_no_write(five):
    """Per-show dispatch on a show with nothing due (its promo and its scheduled episode
    later): no UPDATE (before, every pass released its empty batch lease by reading every
    delivery), and reads only of what is due."""
    s = five
    s.svc["quiet"].queue.add("Later: https://example.com/later", at="in 1h")
    s.add_item("quiet", 4, hours=2)
    s.svc["quiet"].poll(force=True)
    seen = _statements(s.store)
    assert s.svc["quiet"].dispatch(recover=False) == []
    assert seen and set(seen) == {"SELECT"}, seen
    assert len(seen) <= 4


def test_release_deliveries_by_ids_frees_only_the_rows_given(five):
    s = five
    for slug in ("alpha", "bravo"):
        s.add_item(slug, 4, minutes=-5)
        s.svc[slug].poll(force=True)
    rows = s.store.lease_due_deliveries(s.clock(), "lease:mine", SENDING_LEASE)
    assert len(rows) == 2
    first, second = (r.id for r in rows)
    assert s.store.release_deliveries("lease:mine", []) == 0
    assert s.store.release_deliveries("lease:other", [first]) == 0
    assert s.store.release_deliveries("lease:mine", [first]) == 1
    assert s.store.delivery(first).claim_token is None
    assert s.store.delivery(second).claim_token == "lease:mine"
    assert s.store.release_deliveries("lease:mine") == 1
