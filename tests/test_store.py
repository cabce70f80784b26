"""The state database: the migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.models import CommunityPost, Delivery, EpisodeRecord, Feed, Promo
from bot.store import HEAD, Store, community_posts, episodes, feeds, md, promos


def test_migrations_match_the_tables(db_url):
    store = Store(db_url)
    store.migrate()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
        diff = compare_metadata(MigrationContext.configure(conn, opts={
            "compare_type": False}), md)
    store.close()
    # (SQLite reports foreign-key ON DELETE differences as noise on some versions; none here)
    assert diff == []


def test_migrate_twice_is_a_no_op(db_url):
    store = Store(db_url)
    store.migrate()
    store.migrate()
    store.close()


@pytest.mark.parametrize(("typed", "table"), [(Feed, feeds), (Promo, promos),
                                              (EpisodeRecord, episodes),
                                              (CommunityPost, community_posts)])
def test_the_typed_rows_hold_every_column_of_their_table(typed, table):
    """A column added by a migration is added to its `bot.models` class too (from_row reads
    each field by name: a column missing from the row fails loudly)."""
    assert {f.name for f in fields(typed)} == {c.name for c in table.c}


def test_delivery_holds_every_column_the_delivery_query_selects():
    """`Store._delivery_query` reads every column of `deliveries` and some of its post's;
    `bot.models.Delivery` holds each of them, no more (a column added to either is added to
    the class, or from_row fails loudly on the missing key)."""
    selected = [c.name for c in Store._delivery_query().selected_columns]
    assert len(selected) == len(set(selected))  # no two columns by one name
    assert {f.name for f in fields(Delivery)} == set(selected)


def test_a_delivery_row_without_a_column_fails_loudly():
    row = {f.name: None for f in fields(Delivery)}
    assert Delivery.from_row({**row, "extra": 1}) == Delivery(**row)
    del row["due_at"]
    with pytest.raises(KeyError, match="due_at"):
        Delivery.from_row(row)


def test_the_store_gives_deliveries_as_typed_values(db_url):
    from datetime import UTC, datetime, timedelta

    from bot.store import deliveries
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    pid = store.add_promo(now, kind="once", text="Our book", status="active", show_id=3)
    with store.tx() as c:
        post = store.enqueue(c, kind="promo", dedupe_key="promo:1:0", episode_id=None,
                             targets=[("masto", "mastodon", "pending")], now=now, priority=2,
                             promo_id=pid, due_at=now + timedelta(hours=1), show_id=3)
    (got,) = store.deliveries_where()
    assert isinstance(got, Delivery)
    assert (got.post_id, got.account, got.platform, got.status, got.kind, got.dedupe_key,
            got.priority, got.promo_id, got.due_at, got.show_id, got.next_attempt_at,
            got.attempts, got.needs_check, got.text, got.payload) == (
        post, "masto", "mastodon", "pending", "promo", "promo:1:0", 2, pid,
        now + timedelta(hours=1), 3, now + timedelta(hours=1), 0, False, None, None)
    assert store.delivery(got.id) == got and store.delivery(got.id + 1) is None
    assert store.promo_deliveries(pid) == [got]
    assert store.due_deliveries(now) == [] and store.sent_deliveries() == []
    later = now + timedelta(hours=2)
    assert store.due_deliveries(later) == [got]
    assert store.deliveries_where(deliveries.c.account == "x") == []
    [leased] = store.lease_due_deliveries(later, "lease:t", timedelta(minutes=5))
    assert leased == replace(got, claim_token="lease:t", claimed_at=later)
    store.set_delivery_text(got.id, text="Our book", payload={"media": []}, length=8,
                            limit=500, now=later)
    assert store.claim(got.id, "tok", later, lease="lease:t")
    assert store.finish(got.id, "tok", later, status="sent", sent_at=later, remote_id="9")
    (sent,) = store.sent_deliveries(show_id=3)
    assert (sent.status, sent.text, sent.payload, sent.remote_id, sent.attempts) == (
        "sent", "Our book", {"media": []}, "9", 1)
    with pytest.raises(FrozenInstanceError):
        sent.status = "pending"  # type: ignore[misc]
    store.close()


def test_the_store_gives_feeds_as_typed_values(db_url):
    from datetime import UTC, datetime, timedelta
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    made = store.ensure_feed("https://example.com/feed.xml", now, poll_interval=600)
    assert isinstance(made, Feed)
    assert (made.url, made.created_at, made.baseline_done, made.error_count, made.active,
            made.poll_interval, made.next_poll_at) == (
        "https://example.com/feed.xml", now, False, 0, True, 600, None)
    # taken over by a show: the value returned says so, as the row does
    taken = store.ensure_feed("https://example.com/feed.xml", now, show_id=7, poll_interval=60)
    assert (taken.id, taken.show_id, taken.poll_interval) == (made.id, 7, 60)
    assert store.all_feeds() == [taken] and store.all_feeds(show_id=8) == []
    (claimed,) = store.claim_due_feeds(now, "w1", timedelta(minutes=2))
    assert claimed == replace(taken, poll_owner="w1", poll_lease_until=now + timedelta(minutes=2))
    with pytest.raises(FrozenInstanceError):
        claimed.etag = "x"  # type: ignore[misc]
    store.close()


def test_the_store_gives_promos_as_typed_values(db_url):
    from datetime import UTC, datetime, timedelta
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    pid = store.add_promo(now, kind="once", text="Our book", accounts=["masto"], status="active",
                          next_at=now + timedelta(hours=1), fit=True, show_id=3)
    got = store.promo(pid)
    assert got == Promo(kind="once", text="Our book", accounts=["masto"], status="active",
                        next_at=now + timedelta(hours=1), fit=True, id=pid, created_at=now,
                        updated_at=now, show_id=3)
    assert store.all_promos() == [got] and store.due_promos(now) == []
    assert store.due_promos(now + timedelta(hours=1)) == [got]
    with store.tx() as c:
        assert store.promo_in(c, pid) == got and store.promo_in(c, pid + 1) is None
    assert store.promo(pid + 1) is None
    store.close()


def test_the_store_gives_community_posts_as_typed_values(db_url):
    """In the table's column order (`as_dict` is `crier community list --json`)."""
    from datetime import UTC, datetime, timedelta

    from bot.community import Candidate
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    cand = Candidate(status_id="41", uri="https://o.example/s/41", url="https://o.example/@f/41",
                     author="fan@o.example", text="Loved it #Show", via="#Show",
                     created_at="2026-01-05T11:00:00Z")
    with store.tx() as c:
        pid = store.add_community(c, "masto", cand, now, "proposed", show_id=3)
        assert store.add_community(c, "masto", cand, now, "proposed", show_id=3) is None
    with store.tx() as c:
        got = store.community_post(c, pid)
        assert store.community_post(c, pid + 1) is None
    assert got == CommunityPost(id=pid, account="masto", status_id="41", uri=cand.uri,
                                url=cand.url, author=cand.author, text=cand.text, via="#Show",
                                status="proposed", found_at=now, decided_at=None, show_id=3)
    assert [f.name for f in fields(CommunityPost)] == [c.name for c in community_posts.c]
    assert got.as_dict() == {
        "id": pid, "account": "masto", "status_id": "41", "uri": cand.uri, "url": cand.url,
        "author": cand.author, "text": cand.text, "via": "#Show", "status": "proposed",
        "found_at": "2026-01-05T12:00:00+00:00", "decided_at": None, "show_id": 3}
    assert store.community() == [got] and store.community(show_id=4) == []
    with store.tx() as c:
        store.decide_community(c, pid, "approved", now + timedelta(hours=1))
    assert store.community(statuses=("proposed",)) == []
    assert store.community(statuses=("approved",)) == [
        replace(got, status="approved", decided_at=now + timedelta(hours=1))]
    with pytest.raises(FrozenInstanceError):
        got.status = "rejected"  # type: ignore[misc]
    store.close()


def test_the_store_gives_episodes_as_typed_values(db_url):
    from datetime import UTC, datetime, timedelta
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    feed = store.ensure_feed("https://example.com/feed.xml", now, show_id=3)
    other = store.ensure_feed("https://example.com/other.xml", now, show_id=4)
    with store.tx() as c:
        old = store.add_episode(c, feed.id, title="Old", guid="g-old", link=None,
                                published_at=now - timedelta(days=30), status="baseline",
                                now=now, data={"title": "Old", "n": 1}, keys=["guid:g-old"])
        new = store.add_episode(c, feed.id, title="New", guid="g-new", link="https://e/new",
                                published_at=now, status="held", now=now,
                                data={"title": "New", "boilerplate": ["#tag"]},
                                keys=["guid:g-new"])
        store.add_episode(c, other.id, title="Elsewhere", guid="g-new", link=None,
                          published_at=now, status="held", now=now, data={}, keys=["guid:x"])
    got = store.get_episode(new)
    assert got == EpisodeRecord(id=new, feed_id=feed.id, title="New", status="held",
                                first_seen_at=now, data={"title": "New", "boilerplate": ["#tag"]},
                                guid="g-new", link="https://e/new", published_at=now)
    assert store.get_episode(new + 100) is None
    assert store.latest_episode(feed.id) == got
    assert store.episode_by_guid("g-new", show_id=3) == got
    assert store.episode_by_guid("nope") is None
    assert [e.id for e in store.episodes_with_status("held", show_id=3)] == [new]
    assert [e.title for e in store.episodes_with_status("held")] == ["New", "Elsewhere"]
    (promotable,) = store.episodes_for_promotion(feed.id)
    assert isinstance(promotable, EpisodeRecord) and (promotable.id, promotable.status,
                                                      promotable.data) == (
        old, "baseline", {"title": "Old", "n": 1})
    with pytest.raises(FrozenInstanceError):
        got.status = "announced"  # type: ignore[misc]
    store.close()


def test_publish_checkpoints_are_kept_and_replaced(db_url):
    """A publisher's state between steps (a container id, a record key) is committed when
    `set_checkpoint` returns: another Store on the same database (a restarted worker) reads it."""
    store = Store(db_url)
    store.migrate()
    key = "0f" * 32   # a delivery's idempotency key fills the 64 characters
    assert store.checkpoint(key) is None
    store.set_checkpoint(key, {"container_id": "1789", "step": "created"})
    store.set_checkpoint("other", {"rkey": "3l4k5j6h7g2aa"})
    again = Store(db_url)
    assert again.checkpoint(key) == {"container_id": "1789", "step": "created"}
    again.set_checkpoint(key, {"container_id": "1789", "step": "published", "n": [1, "é"]})
    assert store.checkpoint(key) == {"container_id": "1789", "step": "published", "n": [1, "é"]}
    assert store.checkpoint("other") == {"rkey": "3l4k5j6h7g2aa"}
    again.close()
    store.close()
