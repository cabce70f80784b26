"""The state database: the migrations build exactly the schema the code's tables describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.store import HEAD, Store, md


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
