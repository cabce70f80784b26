"""A PostgreSQL Store recovers from connections the server dropped, without a ping per
transaction (bot.store._PoolHealth instead of SQLAlchemy's pool_pre_ping).

PostgreSQL only: a SQLite file has no connection a server could drop. The server is the real
one of tests/pg.py; a second connection kills the Store's pooled backends with
pg_terminate_backend, as a restart or an idle-session timeout would.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.store import IDLE_PING, Store

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
BACKEND = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
def pg_store(postgres):
    url = postgres.new_database()
    store = Store(url)
    store.migrate()
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    yield store, admin
    store.close()
    admin.dispose()


def _pool_pids(store: Store, n: int) -> set[int]:
    """Open n transactions at once (n pooled connections), return their backends."""
    with ExitStack() as stack:
        conns = [stack.enter_context(store.tx()) for _ in range(n)]
        return {c.execute(BACKEND).scalar() for c in conns}


def _kill(admin, pids: set[int]) -> None:
    """Terminate these backends and wait (bounded) until the server has let them go."""
    with admin.connect() as c:
        killed = [c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": p}).scalar()
                  for p in pids]
        assert all(killed)
        deadline = time.monotonic() + 10
        while c.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:p)"),
                        {"p": list(pids)}).scalar():
            assert time.monotonic() < deadline, "the server did not end the backends"
            time.sleep(0.02)  # waiting for the server's processes, not for a clock


def test_calls_after_the_server_killed_every_pooled_connection_just_work(pg_store):
    store, admin = pg_store
    old = _pool_pids(store, 3)
    assert len(old) == 3
    _kill(admin, old)
    # each of the next calls gets a dead connection from the pool: found at checkout
    # (its socket holds the server's goodbye), replaced, and the call succeeds
    for i in range(5):
        store.ensure_feed(f"https://feeds.example.net/{i}.rss", NOW)
    assert len(store.all_feeds()) == 5
    new = _pool_pids(store, 3)
    assert not new & old
    assert store.pool_health.pings == 3  # one per dead connection, none for healthy ones


def test_no_round_trip_per_transaction_only_after_idle(pg_store):
    store, _admin = pg_store
    clock = [1000.0]
    store.pool_health.clock = lambda: clock[0]
    for _ in range(20):
        store.all_feeds()
    assert store.pool_health.pings == 0
    clock[0] += IDLE_PING + 1  # the pooled connection sat unused: pinged once before use
    store.all_feeds()
    store.all_feeds()
    assert store.pool_health.pings == 1


def test_a_connection_lost_mid_transaction_is_one_clear_store_error(pg_store):
    store, admin = pg_store
    with pytest.raises(StoreError, match="lost the connection to the database") as e:
        with store.tx() as c:
            pid = c.execute(BACKEND).scalar()
            _kill(admin, {pid})
            c.execute(sa.text("SELECT 1"))
    assert "did not complete" in str(e.value)
    store.ensure_feed("https://feeds.example.net/after.rss", NOW)  # the next one reconnects
    assert [f.url for f in store.all_feeds()] == ["https://feeds.example.net/after.rss"]
