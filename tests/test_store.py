"""The state database: the migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.models import Feed, Promo
from bot.store import HEAD, Store, feeds, md, promos


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


@pytest.mark.parametrize(("typed", "table"), [(Feed, feeds), (Promo, promos)])
def test_the_typed_rows_hold_every_column_of_their_table(typed, table):
    """A column added by a migration is added to its `bot.models` class too (from_row reads
    each field by name: a column missing from the row fails loudly)."""
    assert {f.name for f in fields(typed)} == {c.name for c in table.c}


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
