"""The state database: SQLAlchemy Core tables and the queries crier needs.

SQLite by default (a file under `data/`, owner-only permissions), PostgreSQL (psycopg 3) by
`DATABASE_URL` (`postgres://` and `postgresql://`, as Heroku sets them, mean psycopg). The
schema is created and upgraded by Alembic migrations in `bot/migrations/`, applied by
`Store.migrate()` on start; concurrent starts on a fresh database take turns (an advisory
lock on PostgreSQL, an exclusive transaction on SQLite), so the loser waits and finds the
schema done. Every state change is its own short transaction; a
delivery is claimed with a conditional UPDATE so two processes can never send the same row.
On PostgreSQL many workers share one database: due feeds and due deliveries are leased to one
of them at a time (see "claims": SELECT … FOR UPDATE SKIP LOCKED, leases that run out).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.errors import StoreError
from bot.models import CommunityPost, Delivery, DeliveryStatus, EpisodeRecord, Feed, Promo

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0011"
MAX_KEY = 300
MIGRATE_WAIT = 60.0          # seconds a migration retries a locked SQLite file
MIGRATION_LOCK = 0x63726965  # "crie": the PostgreSQL advisory lock taken while migrating


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


md = sa.MetaData()
TS = UTCDateTime
feeds = sa.Table(
    "feeds", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False, unique=True),
    sa.Column("title", sa.Text), sa.Column("etag", sa.Text), sa.Column("last_modified", sa.Text),
    sa.Column("body_hash", sa.String(64)), sa.Column("redirect_url", sa.String(2048)),
    sa.Column("baseline_done", sa.Boolean, nullable=False, default=False),
    sa.Column("last_poll_at", TS), sa.Column("last_ok_at", TS),
    sa.Column("last_result", sa.String(32)), sa.Column("last_error", sa.Text),
    sa.Column("error_count", sa.Integer, nullable=False, default=0),
    sa.Column("next_poll_at", TS), sa.Column("created_at", TS, nullable=False),
    sa.Column("show_id", sa.Integer, index=True),            # migration 0006
    sa.Column("poll_owner", sa.String(128)), sa.Column("poll_lease_until", TS),  # 0007
    sa.Index("ix_feeds_next_poll", "next_poll_at"),
    sa.Column("poll_interval", sa.Integer),                   # 0008: the show's, in seconds
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),  # 0008
    sa.Index("ix_feeds_new", "id", postgresql_where=sa.text("active AND next_poll_at IS NULL"),
             sqlite_where=sa.text("active AND next_poll_at IS NULL")),          # 0008
    sa.Index("ix_feeds_due", "next_poll_at", "id",                              # 0008
             postgresql_where=sa.text("active"), sqlite_where=sa.text("active")),
    sa.Column("update_hint", sa.Integer),      # 0011: seconds the feed says it updates every
    sa.Column("release_hours", sa.JSON),       # 0011: hours of the week the show publishes
    sa.Column("last_push_at", TS), sa.Column("last_push_via", sa.String(16)),  # 0011
)
episodes = sa.Table(
    "episodes", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
    sa.Column("title", sa.Text, nullable=False), sa.Column("guid", sa.Text),
    sa.Column("link", sa.Text), sa.Column("published_at", TS),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("first_seen_at", TS, nullable=False), sa.Column("announced_at", TS),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_episodes_feed_status", "feed_id", "status"),
    sa.Index("ix_episodes_feed_published", "feed_id", "published_at"),
    sa.Index("ix_episodes_due", "status", "published_at"),   # 0008
)
episode_keys = sa.Table(
    "episode_keys", md,
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), primary_key=True),
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), nullable=False),
)
promos = sa.Table(  # the host's queue (migration 0003)
    "promos", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),        # once | recurring | evergreen
    sa.Column("text", sa.Text),                               # a template; evergreen: optional
    sa.Column("accounts", sa.JSON),                           # names; None: every account
    sa.Column("image_path", sa.Text), sa.Column("alt", sa.Text),
    sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id")),
    sa.Column("rule", sa.Text),                               # bot.schedule Rule.text
    sa.Column("until", TS), sa.Column("next_at", TS),        # next_at: the next occurrence
    sa.Column("status", sa.String(16), nullable=False),      # active | paused | cancelled | done
    sa.Column("fit", sa.Boolean, nullable=False, default=False),
    sa.Column("pick", sa.String(16)), sa.Column("cooldown_days", sa.Integer),
    sa.Column("fired", sa.Integer, nullable=False, default=0),
    sa.Column("missed", sa.Integer, nullable=False, default=0),
    sa.Column("last_fired_at", TS), sa.Column("note", sa.Text),
    sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_promos_due", "status", "next_at"),
    sa.Column("show_id", sa.Integer, index=True),
)
posts = sa.Table(
    "posts", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id")),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("promo_id", sa.Integer, sa.ForeignKey("promos.id", name="fk_posts_promo")),
    sa.Column("due_at", TS),                                  # a promo's occurrence
    sa.Index("ix_posts_promo", "promo_id"),
    sa.Column("show_id", sa.Integer, index=True),
)
deliveries = sa.Table(
    "deliveries", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id"), nullable=False),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("text", sa.Text), sa.Column("payload", sa.JSON),
    sa.Column("length", sa.Integer), sa.Column("limit", sa.Integer),
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("needs_check", sa.Boolean, nullable=False, default=False),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("first_attempt_at", TS), sa.Column("claimed_at", TS),
    sa.Column("claim_token", sa.String(64)),
    sa.Column("last_error", sa.Text), sa.Column("error_kind", sa.String(16)),
    sa.Column("remote_id", sa.String(100)), sa.Column("remote_url", sa.Text),
    sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.UniqueConstraint("post_id", "account", name="uq_delivery_post_account"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Column("show_id", sa.Integer, index=True),
)
item_caches = sa.Table(  # each feed's `bot.feed.ItemCache`, packed (migration 0002)
    "item_caches", md,
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
community_posts = sa.Table(  # proposed for a boost (migration 0004)
    "community_posts", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account", sa.String(100), nullable=False),     # the official account
    sa.Column("status_id", sa.String(100), nullable=False),   # on that account's instance
    sa.Column("uri", sa.String(2048), nullable=False),
    sa.Column("url", sa.Text), sa.Column("author", sa.String(400), nullable=False),
    sa.Column("text", sa.Text), sa.Column("via", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),  # proposed|approved|rejected
    sa.Column("found_at", TS, nullable=False), sa.Column("decided_at", TS),
    sa.UniqueConstraint("account", "uri", name="uq_community_account_uri"),
    sa.Column("show_id", sa.Integer, index=True),
)
notices = sa.Table(  # what the host was already told (migration 0005; bot/alerts.py)
    "notices", md,
    sa.Column("key", sa.String(200), primary_key=True),      # "auth:ACCOUNT", "feed:ID"
    sa.Column("since", TS, nullable=False),                   # when the condition began
    sa.Column("sent_at", TS),                                 # when the host was told
)
shows = sa.Table(  # the show registry (migration 0006; bot/shows.py)
    "shows", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),      # config | import
    sa.Column("path", sa.Text), sa.Column("content_hash", sa.String(64)),
    sa.Column("config", sa.Text),                             # import: the file's TOML
    sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False),
    sa.Column("removed_at", TS),
    sa.Index("ix_shows_updated", "updated_at"),              # 0008
)
# -- the web control room (migration 0009; bot/users.py, bot/connect.py) --------------------
users = sa.Table(
    "users", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),        # argon2
    sa.Column("role", sa.String(16), nullable=False),           # host | cohost
    sa.Column("created_at", TS, nullable=False),
)
user_shows = sa.Table(  # the shows a user may see (none: every show)
    "user_shows", md,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("show_id", sa.Integer, primary_key=True),
)
api_tokens = sa.Table(
    "api_tokens", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("label", sa.String(200)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of it
    sa.Column("created_at", TS, nullable=False), sa.Column("last_used_at", TS),
    sa.Column("revoked_at", TS),
)
web_sessions = sa.Table(
    "web_sessions", md,
    sa.Column("id_hash", sa.String(64), primary_key=True),      # sha256 of the cookie
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", TS, nullable=False), sa.Column("expires_at", TS, nullable=False),
)
login_attempts = sa.Table(  # failed logins, by "user:NAME" and "addr:IP"
    "login_attempts", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_login_attempts_key_at", "key", "at"),
)
connected_accounts = sa.Table(  # secrets connected in the web app, Fernet-encrypted
    "connected_accounts", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("show_id", sa.Integer, index=True),
    sa.Column("account", sa.String(100), nullable=False, unique=True),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("instance", sa.Text), sa.Column("username", sa.Text),
    sa.Column("secret_enc", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(100)),
    sa.Column("created_at", TS, nullable=False), sa.Column("verified_at", TS),
)
oauth_apps = sa.Table(  # crier registered on a Mastodon instance (POST /api/v1/apps)
    "oauth_apps", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("instance", sa.String(400), nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("client_id", sa.Text, nullable=False),
    sa.Column("client_secret_enc", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("instance", "redirect_uri", name="uq_oauth_apps_instance_redirect"),
)
oauth_pending = sa.Table(  # an OAuth authorization under way (state, PKCE verifier)
    "oauth_pending", md,
    sa.Column("state_hash", sa.String(64), primary_key=True),
    sa.Column("show_id", sa.Integer),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("instance", sa.String(400), nullable=False),
    sa.Column("verifier_enc", sa.Text, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("created_at", TS, nullable=False),
)
publish_checkpoints = sa.Table(  # a publisher's state between steps (migration 0010)
    "publish_checkpoints", md,
    sa.Column("idempotency_key", sa.String(64), primary_key=True),  # the delivery's
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
websub_subscriptions = sa.Table(  # a feed's WebSub subscription (migration 0011)
    "websub_subscriptions", md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, nullable=False, unique=True),
    sa.Column("hub", sa.String(2048), nullable=False),
    sa.Column("topic", sa.String(2048), nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("lease_seconds", sa.Integer), sa.Column("expires_at", TS),
    sa.Column("requested_at", TS), sa.Column("verified_at", TS),
    sa.Column("last_notified_at", TS), sa.Column("last_error", sa.Text),
    sa.Column("updated_at", TS, nullable=False),
)
push_cursors = sa.Table(  # where a push watcher stopped, e.g. podping's Hive block (0011)
    "push_cursors", md,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("data", sa.JSON),
    sa.Column("updated_at", TS, nullable=False),
)
locks = sa.Table(
    "locks", md,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("expires_at", TS, nullable=False),
)


def storage_key(key: str) -> str:
    """Identity keys longer than the column are stored as their kind plus a sha256."""
    if len(key) <= MAX_KEY:
        return key
    kind = key.split(":", 1)[0]
    return f"{kind}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _redact(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


# Connections opened beyond the pool's 5 kept ones when a worker's concurrent polls
# (bot.fleet, max_polls_in_flight) need them at once; closed again when given back.
POOL_OVERFLOW = 20
# PostgreSQL connections that went bad while pooled are found without a round trip per
# transaction (`_PoolHealth`); one idle longer than IDLE_PING seconds is pinged before use, and
# none is used past POOL_RECYCLE seconds of age.
IDLE_PING = 30.0
POOL_RECYCLE = 3600


class Store:
    def __init__(self, url: str):
        self.url = url
        try:
            sa_url = sa.engine.make_url(url)
        except sa.exc.ArgumentError:
            raise StoreError(f"DATABASE_URL is not a valid SQLAlchemy URL: {url!r}") from None
        if sa_url.drivername in ("postgres", "postgresql"):  # Heroku & co: psycopg 3
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        self.dialect = sa_url.get_backend_name()
        # JSON columns without the blanks json.dumps puts after "," and ":" by default
        kw: dict[str, Any] = {"future": True, "json_serializer": _compact_json}
        self.sqlite_path: Path | None = None
        if self.dialect == "sqlite":
            db = sa_url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                self.sqlite_path = Path(db)
                _prepare_sqlite_file(self.sqlite_path)
                kw["max_overflow"] = POOL_OVERFLOW
            kw["connect_args"] = {"timeout": 30}
        elif self.dialect == "postgresql":
            kw["max_overflow"] = POOL_OVERFLOW
            kw["pool_recycle"] = POOL_RECYCLE
        try:
            self.engine: Engine = sa.create_engine(sa_url, **kw)
        except Exception as e:  # missing driver, bad options
            raise StoreError(f"cannot open database {_redact(url)}: {e}") from None
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:  # short queries only: JIT compiling one the planner overestimates costs 50-120 ms
            sa.event.listen(self.engine, "connect", _postgres_session)
        self.pool_health = _PoolHealth(self.engine) if self.dialect == "postgresql" else None
        # PostgreSQL: any number of workers, coordinating by leases on rows (see "claims");
        # SQLite: one worker, kept alone by the lease in `locks` (bot/locks.py).
        self.many_workers = self.dialect == "postgresql"
        self._write_lock = threading.RLock() if self.dialect == "sqlite" else None

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest revision (cheap when it already is). Processes
        starting together on a fresh database take turns: the first migrates, the others
        wait for it and then find the schema at HEAD. SQLite can refuse a waiting process
        at once ("database is locked": two connections switching a new file to WAL, where
        its busy handler is not used); that is retried for up to MIGRATE_WAIT seconds."""
        deadline = time.monotonic() + MIGRATE_WAIT
        attempt = 0
        while True:
            try:
                return self._migrate_once()
            except sa.exc.OperationalError as e:
                locked = "locked" in str(e.orig or e).lower()
                if self.dialect != "sqlite" or not locked or time.monotonic() > deadline:
                    raise self._unusable(e) from None
                attempt += 1
                log.info("database is locked (another process migrating?); retry %d", attempt)
                self.engine.dispose()
                time.sleep(min(0.05 * attempt, 0.5))

    def _migrate_once(self) -> None:
        with self.engine.connect() as conn:
            if self._revision(conn) == HEAD:
                return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            self._lock_for_migration(conn)
            if self._revision(conn) == HEAD:  # another process did it while we waited
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        log.info("database schema upgraded to %s", HEAD)

    @staticmethod
    def _revision(conn) -> str | None:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def _lock_for_migration(self, conn) -> None:
        """Serialize migrations: held until this transaction ends."""
        if self.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        elif self.dialect == "sqlite":
            # pysqlite runs DDL outside any transaction unless one is begun explicitly; an
            # exclusive one makes a second migrator wait (busy timeout) instead of racing.
            conn.exec_driver_sql("BEGIN EXCLUSIVE")

    def _unusable(self, e: sa.exc.OperationalError) -> StoreError:
        detail = str(e.orig).strip() if e.orig else str(e)
        if self.sqlite_path is not None and "locked" in detail.lower():
            return StoreError(f"cannot use the database file {self.sqlite_path}: {detail} "
                              "(another process holds it)")
        if self.sqlite_path is not None:
            return StoreError(f"cannot use the database file {self.sqlite_path}: {detail} "
                              f"(its folder {self.sqlite_path.parent} must be writable; or set "
                              "DATABASE_URL / data_dir)")
        return StoreError(f"cannot reach database {_redact(self.url)}: {detail}")

    @contextmanager
    def tx(self):
        """One transaction. On SQLite (one writer per file) the threads of a worker take
        turns: a write transaction that began as a read cannot wait for another writer
        (SQLITE_BUSY at once, busy_timeout or not), so this process serializes its own."""
        if self._write_lock is None:
            try:
                with self.engine.begin() as c:
                    yield c
            except sa.exc.DBAPIError as e:
                if not e.connection_invalidated:
                    raise
                raise StoreError(f"lost the connection to the database {_redact(self.url)} "
                                 f"during a transaction ({str(e.orig or e).strip()}); it did not"
                                 " complete, the next one reconnects") from e
            return
        with self._write_lock, self.engine.begin() as c:
            yield c

    # -- feeds ----------------------------------------------------------------------------
    def ensure_feed(self, url: str, now: datetime, show_id: int | None = None,
                    poll_interval: int | None = None) -> Feed:
        """The feed's row, made (never polled: due at once) when there is none; taken over
        by `show_id` and made active again when it was another show's or parked."""
        with self.tx() as c:
            row = c.execute(sa.select(feeds).where(feeds.c.url == url)).mappings().first()
            if row and (show_id is None or row["show_id"] == show_id) and row["active"] \
                    and (poll_interval is None or row["poll_interval"] == poll_interval):
                return Feed.from_row(row)
            if row:  # a show's feed (before 0006: none), another show's URL taken over, parked
                values = {"show_id": show_id if show_id is not None else row["show_id"],
                          "active": True}
                if poll_interval is not None:
                    values["poll_interval"] = poll_interval
                c.execute(feeds.update().where(feeds.c.id == row["id"]).values(**values))
                return Feed.from_row({**row, **values})
            try:
                c.execute(feeds.insert().values(url=url, created_at=now, baseline_done=False,
                                                error_count=0, show_id=show_id,
                                                poll_interval=poll_interval,
                                                active=True))
            except sa.exc.IntegrityError:
                pass
        with self.tx() as c:
            return Feed.from_row(c.execute(sa.select(feeds).where(
                feeds.c.url == url)).mappings().one())

    @classmethod
    def ensure_feeds(cls, c, wanted: Sequence[tuple[int, str, int]], now: datetime, *,
                     chunk: int = 2000) -> int:
        """In `c`'s transaction: each (show_id, url, poll_interval) gets its feed row (new
        ones never polled: due at once), active and stamped with the show and interval; any
        other feed of these shows is parked (`active` false: a feed URL changed). Rows
        written, in a few statements per `chunk` shows."""
        written = 0
        cols = (feeds.c.id, feeds.c.url, feeds.c.show_id, feeds.c.poll_interval, feeds.c.active)
        snap: dict[str, list] | None = None    # many: url -> [id, show_id, interval, active]
        by_show: dict[int, set[str]] = {}
        if len(wanted) > chunk and len({u for _s, u, _i in wanted}) == len(
                {s for s, _u, _i in wanted}) == len(wanted):
            # one read of the table beats many statements with long IN lists; kept up to date
            snap = {r.url: list(r[:1] + r[2:]) for r in c.execute(sa.select(*cols))}
            for u, r in snap.items():
                by_show.setdefault(r[1], set()).add(u)
        for i in range(0, len(wanted), chunk):
            part = wanted[i:i + chunk]
            urls = {u: (sid, iv) for sid, u, iv in part}
            sids = {sid for sid, _u, _iv in part}
            if snap is None:
                have = {r.url: tuple(r[:1] + r[2:]) for r in c.execute(sa.select(*cols).where(
                    sa.or_(feeds.c.url.in_(list(urls)), feeds.c.show_id.in_(list(sids)))))}
            else:
                have = {u: tuple(snap[u]) for sid in sids for u in by_show.get(sid, ())}
                have.update((u, tuple(snap[u])) for u in urls if u in snap)
            new = [{"url": u, "show_id": sid, "poll_interval": iv, "created_at": now,
                    "next_poll_at": None, "baseline_done": False, "error_count": 0,
                    "active": True} for u, (sid, iv) in urls.items() if u not in have]
            if new:
                c.execute(feeds.insert(), new)
            changed = [u for u, r in have.items() if u in urls and r[1:] != (*urls[u], True)]
            if changed:
                c.execute(feeds.update().where(feeds.c.id == sa.bindparam("_id")).values(
                    show_id=sa.bindparam("_sid"), poll_interval=sa.bindparam("_iv"),
                    active=True), [{"_id": have[u][0], "_sid": urls[u][0], "_iv": urls[u][1]}
                                   for u in changed])
            parked = [u for u, r in have.items() if u not in urls and r[3]]
            if parked:
                cls.park_feeds(c, [have[u][0] for u in parked])
            for u in changed if snap is not None else ():
                by_show[snap[u][1]].discard(u)
                by_show.setdefault(urls[u][0], set()).add(u)
                snap[u][1:] = [*urls[u], True]
            for u in parked if snap is not None else ():
                snap[u][3] = False
            written += len(new) + len(changed) + len(parked)
        return written

    @staticmethod
    def park_feeds(c, feed_ids: Sequence[int] | None = None, *,
                   show_id: int | None = None) -> int:
        """No worker polls these feeds (or every feed of `show_id`) any more; their history
        stays. `ensure_feed(s)` makes one active again."""
        q = feeds.update().values(active=False)
        q = q.where(feeds.c.id.in_(list(feed_ids))) if feed_ids is not None else \
            q.where(feeds.c.show_id == show_id)
        return c.execute(q).rowcount

    def update_feed(self, feed_id: int, **values: Any) -> None:
        with self.tx() as c:
            c.execute(feeds.update().where(feeds.c.id == feed_id).values(**values))

    def push_feeds(self, feed_ids: Sequence[int], via: str, now: datetime) -> list[int]:
        """A push (WebSub, podping) says these feeds changed: the active ones are due now
        (`next_poll_at` brought forward to `now`, never pushed back; a never-polled one stays
        due) and stamped with `last_push_at`/`last_push_via`. One statement; the ids made due."""
        if not feed_ids:
            return []
        with self.tx() as c:
            return sorted(c.execute(feeds.update().where(
                feeds.c.id.in_(list(feed_ids)), feeds.c.active.is_(True)).values(
                next_poll_at=sa.case((feeds.c.next_poll_at > now, now),
                                     else_=feeds.c.next_poll_at),
                last_push_at=now, last_push_via=via).returning(feeds.c.id)).scalars())

    def keep_pushes(self, feed_ids: Sequence[int], since: datetime) -> int:
        """After polls claimed at `since`: a push that came during one (the poll may have read
        the feed before the change) makes the feed due again at the push's time, which the
        poll's release had moved on. One statement; how many."""
        if not feed_ids:
            return 0
        with self.tx() as c:
            return c.execute(feeds.update().where(
                feeds.c.id.in_(list(feed_ids)), feeds.c.active.is_(True),
                feeds.c.last_push_at > since, feeds.c.next_poll_at > feeds.c.last_push_at
            ).values(next_poll_at=feeds.c.last_push_at)).rowcount

    def all_feeds(self, show_id: int | None = None) -> list[Feed]:
        q = sa.select(feeds).order_by(feeds.c.id)
        if show_id is not None:
            q = q.where(feeds.c.show_id == show_id)
        with self.tx() as c:
            return [Feed.from_row(r) for r in c.execute(q).mappings()]

    # -- episodes -------------------------------------------------------------------------
    def match_keys(self, feed_id: int, keys: Iterable[str]) -> dict[str, int]:
        """Which of these identity keys are known, and to which episode."""
        wanted = {storage_key(k): k for k in keys}
        found: dict[str, int] = {}
        items = list(wanted)
        with self.tx() as c:
            for i in range(0, len(items), 500):
                chunk = items[i:i + 500]
                q = sa.select(episode_keys.c.key, episode_keys.c.episode_id).where(
                    episode_keys.c.feed_id == feed_id, episode_keys.c.key.in_(chunk))
                for k, eid in c.execute(q):
                    found[wanted[k]] = eid
        return found

    # -- the item cache (see bot/feed.py: unchanged items, known by their bytes) --------------
    def load_item_cache(self, feed_id: int) -> bytes | None:
        with self.tx() as c:
            return c.execute(sa.select(item_caches.c.data).where(
                item_caches.c.feed_id == feed_id)).scalar()

    def save_item_cache(self, c, feed_id: int, data: bytes) -> None:
        c.execute(item_caches.delete().where(item_caches.c.feed_id == feed_id))
        c.execute(item_caches.insert().values(feed_id=feed_id, data=data))

    def add_episode(self, c, feed_id: int, *, title: str, guid: str | None, link: str | None,
                    published_at: datetime | None, status: str, now: datetime,
                    data: dict, keys: Iterable[str]) -> int:
        return self.add_episodes(c, feed_id, [dict(
            title=title, guid=guid, link=link, published_at=published_at, status=status,
            data=data, keys=keys)], now)[0]

    def add_episodes(self, c, feed_id: int, rows: Sequence[dict], now: datetime) -> list[int]:
        """Insert new episodes (dicts of title, guid, link, published_at, status, data, keys)
        in one statement and their identity keys in one more; their ids, in the order given
        (ascending: ids follow the rows). The episodes are new, so none of their keys may be
        recorded yet: one that is (another process recorded the episode meanwhile) trips the
        unique key (IntegrityError) and the caller's transaction records nothing."""
        if not rows:
            return []
        values = [{"feed_id": feed_id, "title": r["title"], "guid": r["guid"],
                   "link": r["link"], "published_at": r["published_at"], "status": r["status"],
                   "first_seen_at": now, "data": r["data"]} for r in rows]
        if len(values) == 1 or not c.dialect.insert_executemany_returning_sort_by_parameter_order:
            ids = [c.execute(episodes.insert().values(**v)).inserted_primary_key[0]
                   for v in values]  # (SQLite before 3.35 has no RETURNING)
        else:  # one multi-row INSERT … RETURNING (SQLAlchemy's insertmanyvalues)
            ids = list(c.execute(episodes.insert().returning(
                episodes.c.id, sort_by_parameter_order=True), values).scalars())
        keys = [{"feed_id": feed_id, "key": k, "episode_id": eid}
                for eid, r in zip(ids, rows, strict=True)
                for k in sorted({storage_key(k) for k in r["keys"]})]
        if keys:
            c.execute(episode_keys.insert(), keys)
        return ids

    def add_keys(self, c, feed_id: int, episode_id: int, keys: Iterable[str]) -> None:
        self.add_episode_keys(c, feed_id, [(episode_id, keys)])

    @staticmethod
    def add_episode_keys(c, feed_id: int, owned: Sequence[tuple[int, Iterable[str]]]) -> None:
        """Each (recorded episode id, keys it was found with): the keys (storage form) no
        episode of the feed holds yet, in one SELECT and one executemany (the first episode
        given a key keeps it)."""
        wanted = [(eid, sorted({storage_key(k) for k in keys})) for eid, keys in owned]
        every = sorted({k for _, keys in wanted for k in keys})
        if not every:
            return
        have: set[str] = set()
        for i in range(0, len(every), 500):
            have.update(c.execute(sa.select(episode_keys.c.key).where(
                episode_keys.c.feed_id == feed_id,
                episode_keys.c.key.in_(every[i:i + 500]))).scalars())
        new = []
        for eid, keys in wanted:
            for k in keys:
                if k not in have:
                    have.add(k)
                    new.append({"feed_id": feed_id, "key": k, "episode_id": eid})
        if new:
            c.execute(episode_keys.insert(), new)

    def episodes_with_status(self, status: str, feed_id: int | None = None, *,
                             show_id: int | None = None,
                             published_by: datetime | None = None) -> list[EpisodeRecord]:
        """`published_by`: only those dated then or earlier (ix_episodes_due)."""
        q = sa.select(episodes).where(episodes.c.status == status)
        if published_by is not None:
            q = q.where(episodes.c.published_at <= published_by)
        if feed_id is not None:
            q = q.where(episodes.c.feed_id == feed_id)
        if show_id is not None:
            q = q.where(episodes.c.feed_id.in_(
                sa.select(feeds.c.id).where(feeds.c.show_id == show_id)))
        with self.tx() as c:
            return [EpisodeRecord.from_row(r) for r in c.execute(
                q.order_by(episodes.c.published_at, episodes.c.id)).mappings()]

    def set_episode_status(self, episode_id: int, was: str, status: str) -> bool:
        """Move an episode from status `was` to `status` (False if it was not in `was`)."""
        with self.tx() as c:
            return c.execute(episodes.update().where(
                episodes.c.id == episode_id, episodes.c.status == was).values(status=status)
            ).rowcount == 1

    def get_episode(self, episode_id: int, show_id: int | None = None) -> EpisodeRecord | None:
        """The episode `episode_id` (None if there is none, or if it is not `show_id`'s)."""
        q = sa.select(episodes).where(episodes.c.id == episode_id)
        if show_id is not None:
            q = q.where(episodes.c.feed_id.in_(
                sa.select(feeds.c.id).where(feeds.c.show_id == show_id)))
        with self.tx() as c:
            r = c.execute(q).mappings().first()
            return EpisodeRecord.from_row(r) if r else None

    def recent_episodes(self, feed_id: int, limit: int) -> list[dict]:
        """The data of a feed's `limit` newest episodes (by publication date)."""
        with self.tx() as c:
            return list(c.execute(sa.select(episodes.c.data).where(
                episodes.c.feed_id == feed_id).order_by(
                episodes.c.published_at.desc().nulls_last(), episodes.c.id.desc()
            ).limit(limit)).scalars())

    def latest_episode(self, feed_id: int) -> EpisodeRecord | None:
        with self.tx() as c:
            r = c.execute(sa.select(episodes).where(episodes.c.feed_id == feed_id).order_by(
                episodes.c.published_at.desc().nulls_last(), episodes.c.id.desc())
                          ).mappings().first()
            return EpisodeRecord.from_row(r) if r else None

    def count_episodes(self, feed_id: int) -> dict[str, int]:
        with self.tx() as c:
            return dict(c.execute(sa.select(episodes.c.status, sa.func.count()).where(
                episodes.c.feed_id == feed_id).group_by(episodes.c.status)).all())

    # -- posts and deliveries -------------------------------------------------------------
    def enqueue(self, c, *, kind: str, dedupe_key: str, episode_id: int | None,
                targets: Sequence[tuple[str, str, str]], now: datetime,
                priority: int = 0, promo_id: int | None = None,
                due_at: datetime | None = None, show_id: int | None = None) -> int | None:
        """Create a post and one delivery per (account, platform, status). Idempotent by
        `dedupe_key`: a second call for the same post creates nothing and returns None."""
        exists = c.execute(sa.select(posts.c.id).where(posts.c.dedupe_key == dedupe_key)
                           ).scalar()
        if exists:
            return None
        pid = c.execute(posts.insert().values(
            kind=kind, episode_id=episode_id, dedupe_key=dedupe_key, priority=priority,
            created_at=now, promo_id=promo_id, due_at=due_at, show_id=show_id)
                        ).inserted_primary_key[0]
        start = due_at if due_at is not None and due_at > now else now
        for account, platform, status in targets:
            # random per delivery, kept in its row: a fresh database (a reset, a second
            # deployment on the same account) must not reuse the key of an earlier post, or
            # Mastodon answers it with that post for an hour and the new one is never made
            key = hashlib.sha256(f"crier:{dedupe_key}:{account}:{os.urandom(16).hex()}"
                                 .encode()).hexdigest()[:40]
            c.execute(deliveries.insert().values(
                post_id=pid, account=account, platform=platform, status=status,
                idempotency_key=key, attempts=0, needs_check=False, next_attempt_at=start,
                created_at=now, updated_at=now, show_id=show_id))
        return pid

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self.tx() as c:
            r = c.execute(self._delivery_query().where(deliveries.c.id == delivery_id)
                          ).mappings().first()
            return Delivery.from_row(r) if r else None

    @staticmethod
    def _delivery_query():
        return sa.select(deliveries, posts.c.kind, posts.c.episode_id, posts.c.priority,
                         posts.c.dedupe_key, posts.c.promo_id, posts.c.due_at
                         ).join(posts, posts.c.id == deliveries.c.post_id)

    def due_deliveries(self, now: datetime, limit: int = 50, *,
                       show_id: int | None = None) -> list[Delivery]:
        q = self._delivery_query().where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now,
            *([] if show_id is None else [deliveries.c.show_id == show_id]),
        ).order_by(posts.c.priority.desc(), deliveries.c.next_attempt_at, deliveries.c.id
                   ).limit(limit)
        with self.tx() as c:
            return [Delivery.from_row(r) for r in c.execute(q).mappings()]

    def deliveries_where(self, *conds, limit: int | None = None,
                         newest_first=False) -> list[Delivery]:
        q = self._delivery_query().where(*conds)
        order = deliveries.c.updated_at.desc() if newest_first else deliveries.c.id
        q = q.order_by(order)
        if limit:
            q = q.limit(limit)
        with self.tx() as c:
            return [Delivery.from_row(r) for r in c.execute(q).mappings()]

    def sent_deliveries(self, *, since: datetime | None = None, account: str | None = None,
                        limit: int | None = None,
                        show_id: int | None = None) -> list[Delivery]:
        """Deliveries that went out (status sent, or removed since), newest first."""
        q = self._delivery_query().where(deliveries.c.status.in_(
            (DeliveryStatus.SENT.value, DeliveryStatus.REMOVED.value)))
        if show_id is not None:
            q = q.where(deliveries.c.show_id == show_id)
        if since is not None:
            q = q.where(deliveries.c.sent_at >= since)
        if account is not None:
            q = q.where(deliveries.c.account == account)
        q = q.order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc())
        if limit:
            q = q.limit(limit)
        with self.tx() as c:
            return [Delivery.from_row(r) for r in c.execute(q).mappings()]

    def set_delivery_text(self, delivery_id: int, *, text: str, payload: dict, length: int,
                          limit: int, now: datetime) -> None:
        with self.tx() as c:
            c.execute(deliveries.update().where(
                deliveries.c.id == delivery_id, deliveries.c.text.is_(None)).values(
                text=text, payload=payload, length=length, limit=limit, updated_at=now))

    def claim(self, delivery_id: int, token: str, now: datetime, *,
              lease: str | None = None) -> bool:
        """Move one pending delivery to `sending`; False if another process got it first.
        `lease`: the batch lease (`lease_due_deliveries`) the caller holds on it."""
        held = () if lease is None else (deliveries.c.claim_token == lease,)
        with self.tx() as c:
            r = c.execute(deliveries.update().where(
                deliveries.c.id == delivery_id,
                deliveries.c.status == DeliveryStatus.PENDING.value, *held,
            ).values(status=DeliveryStatus.SENDING.value, claim_token=token, claimed_at=now,
                     attempts=deliveries.c.attempts + 1, updated_at=now,
                     first_attempt_at=sa.func.coalesce(deliveries.c.first_attempt_at, now)))
            return r.rowcount == 1

    def finish(self, delivery_id: int, token: str, now: datetime, *,
               and_then: Callable[[Any], None] | None = None, **values: Any) -> bool:
        """Record the outcome of a claimed delivery (only the claim's owner may); `and_then`
        runs in the same transaction when it was recorded (what follows from a post)."""
        values.setdefault("claim_token", None)
        with self.tx() as c:
            r = c.execute(deliveries.update().where(
                deliveries.c.id == delivery_id, deliveries.c.claim_token == token,
                deliveries.c.status == DeliveryStatus.SENDING.value,
            ).values(updated_at=now, **values))
            if r.rowcount == 1 and and_then is not None:
                and_then(c)
            return r.rowcount == 1

    def update_delivery(self, delivery_id: int, now: datetime, **values: Any) -> None:
        with self.tx() as c:
            c.execute(deliveries.update().where(deliveries.c.id == delivery_id).values(
                updated_at=now, **values))

    def update_delivery_if(self, delivery_id: int, was: str, now: datetime,
                           **values: Any) -> bool:
        """Change a delivery only if its status is still `was` (not claimed meanwhile)."""
        with self.tx() as c:
            return c.execute(deliveries.update().where(
                deliveries.c.id == delivery_id, deliveries.c.status == was).values(
                updated_at=now, **values)).rowcount == 1

    def recover_stale(self, now: datetime, lease: timedelta) -> list[int]:
        """Deliveries left in `sending` by a process that died: back to pending, flagged so
        the dispatcher looks for the post before sending again."""
        with self.tx() as c:
            ids = list(c.execute(sa.select(deliveries.c.id).where(
                deliveries.c.status == DeliveryStatus.SENDING.value,
                deliveries.c.claimed_at < now - lease)).scalars())
            if ids:
                c.execute(deliveries.update().where(
                    deliveries.c.id.in_(ids),
                    deliveries.c.status == DeliveryStatus.SENDING.value,
                ).values(status=DeliveryStatus.PENDING.value, needs_check=True,
                         claim_token=None, next_attempt_at=now, updated_at=now,
                         last_error="interrupted while sending; will check before resending"))
        return ids

    # -- due work across shows (bot.dispatch.due_show_ids) --------------------------------
    def shows_with_due_work(self, now: datetime, lease: timedelta) -> set[int | None]:
        """The shows that have something to dispatch at `now`, in one statement (a UNION of
        four indexed look-ups): pending deliveries due and not leased (`lease_due_deliveries`'
        rule; SQLite has no batch leases), deliveries left `sending` longer than `lease`
        (`recover_stale`), active promos due (`due_promos`) and scheduled episodes whose date
        has come (`release_scheduled`). Removed shows are left out (nobody serves them); None
        stands for rows that belong to no show. Reads only: no write lock is taken."""
        pending = [deliveries.c.status == DeliveryStatus.PENDING.value,
                   deliveries.c.next_attempt_at <= now]
        if self.many_workers:
            pending.append(sa.or_(deliveries.c.claim_token.is_(None),
                                  deliveries.c.claimed_at.is_(None),
                                  deliveries.c.claimed_at < now - lease))
        due = sa.union(
            sa.select(deliveries.c.show_id).where(*pending),
            sa.select(deliveries.c.show_id).where(
                deliveries.c.status == DeliveryStatus.SENDING.value,
                deliveries.c.claimed_at < now - lease),
            sa.select(promos.c.show_id).where(promos.c.status == "active",
                                              promos.c.next_at <= now),
            sa.select(sa.select(feeds.c.show_id).where(
                feeds.c.id == episodes.c.feed_id).scalar_subquery()).where(
                episodes.c.status == "scheduled", episodes.c.published_at <= now),
        ).subquery("due")
        # per due row, a primary-key look-up (correlated, so never a join that reads every
        # feed or show when the planner overestimates what is due)
        removed = sa.select(shows.c.removed_at).where(
            shows.c.id == due.c.show_id).scalar_subquery()
        q = sa.select(due.c.show_id).where(removed.is_(None))
        with self.engine.connect() as c:
            if self.dialect == "postgresql":  # the planner guesses far more due rows than a
                # tick finds; JIT-compiling for its guess costs ~50 ms, the query ~1 ms
                c.exec_driver_sql("SET LOCAL jit = off")
            return set(c.execute(q).scalars())

    # -- locks ----------------------------------------------------------------------------
    # -- claims: many workers on PostgreSQL ---------------------------------------------
    # A due row is leased by one worker at a time: selected FOR UPDATE SKIP LOCKED (a row
    # another worker is leasing right now is skipped, not waited for) and stamped with the
    # worker's token and the lease's start or end; a lease that ran out (its worker died) makes
    # the row claimable again. SQLite ignores FOR UPDATE: one worker, one writer at a time.
    def lease_due_deliveries(self, now: datetime, token: str, lease: timedelta,
                             limit: int = 50, *,
                             show_id: int | None = None) -> list[Delivery]:
        """Lease up to `limit` due pending deliveries to `token` (claim_token/claimed_at on a
        pending row); rows leased by another worker less than `lease` ago are not due."""
        free = sa.or_(deliveries.c.claim_token.is_(None), deliveries.c.claimed_at.is_(None),
                      deliveries.c.claimed_at < now - lease)
        q = sa.select(deliveries.c.id).join(posts, posts.c.id == deliveries.c.post_id).where(
            deliveries.c.status == DeliveryStatus.PENDING.value,
            deliveries.c.next_attempt_at <= now, free,
        ).order_by(posts.c.priority.desc(), deliveries.c.next_attempt_at, deliveries.c.id
                   ).limit(limit).with_for_update(skip_locked=True, of=deliveries)
        if show_id is not None:
            q = q.where(deliveries.c.show_id == show_id)
        with self.tx() as c:
            ids = list(c.execute(q).scalars())
            if not ids:
                return []
            c.execute(deliveries.update().where(deliveries.c.id.in_(ids)).values(
                claim_token=token, claimed_at=now))
            rows = c.execute(self._delivery_query().where(deliveries.c.id.in_(ids)))
            order = {d: i for i, d in enumerate(ids)}
            return sorted((Delivery.from_row(r) for r in rows.mappings()),
                          key=lambda d: order[d.id])

    def release_deliveries(self, token: str, ids: Sequence[int] | None = None) -> int:
        """End the lease `token` holds on the deliveries still pending (sent or parked ones
        no longer carry it). `ids`: the rows it was given (primary-key look-ups; without
        them every delivery is read, claim_token having no index)."""
        q = deliveries.update().where(deliveries.c.claim_token == token,
                                      deliveries.c.status == DeliveryStatus.PENDING.value)
        if ids is not None:
            if not ids:
                return 0
            q = q.where(deliveries.c.id.in_(list(ids)))
        with self.tx() as c:
            return c.execute(q.values(claim_token=None, claimed_at=None)).rowcount

    def claim_due_feeds(self, now: datetime, owner: str, lease: timedelta, *,
                        limit: int = 100, ids: Sequence[int] | None = None,
                        force: bool = False) -> list[Feed]:
        """Lease up to `limit` active feeds that no live lease holds, to `owner` until now +
        `lease`: first those never polled, then those due, earliest first (all of `ids` when
        `force`). The owner polls them, then `release_feed(s)` each. Two index walks
        (`ix_feeds_new`, `ix_feeds_due`) that stop after the batch: no sort of every feed."""
        free = [feeds.c.active,  # as the partial indexes say it, so the planner uses them
                sa.or_(feeds.c.poll_lease_until.is_(None), feeds.c.poll_lease_until <= now)]
        if ids is not None:
            free.append(feeds.c.id.in_(list(ids)))
        with self.tx() as c:
            got = list(c.execute(sa.select(feeds.c.id).where(
                *free, feeds.c.next_poll_at.is_(None)).order_by(feeds.c.id).limit(
                limit).with_for_update(skip_locked=True)).scalars())
            if len(got) < limit:
                due = feeds.c.next_poll_at.is_not(None) if force else \
                    feeds.c.next_poll_at <= now
                got += c.execute(sa.select(feeds.c.id).where(*free, due).order_by(
                    feeds.c.next_poll_at, feeds.c.id).limit(limit - len(got)).with_for_update(
                    skip_locked=True)).scalars()
            if not got:
                return []
            rows = c.execute(feeds.update().where(feeds.c.id.in_(got)).values(
                poll_owner=owner, poll_lease_until=now + lease).returning(*feeds.c))
            order = {f: i for i, f in enumerate(got)}
            return sorted((Feed.from_row(r) for r in rows.mappings()),
                          key=lambda r: order[r.id])

    def due_feed_urls(self, now: datetime) -> set[str]:
        """The URLs of the active feeds whose next poll has come and that no live lease holds
        (one query: a poll job costs in proportion to what is due, not to every show)."""
        q = sa.select(feeds.c.url).where(
            feeds.c.active.is_(True),
            sa.or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now),
            sa.or_(feeds.c.poll_lease_until.is_(None), feeds.c.poll_lease_until <= now))
        with self.engine.connect() as c:
            return set(c.execute(q).scalars())

    def next_due_at(self) -> datetime | None:
        """When the earliest active feed is next due (None: no feed)."""
        with self.engine.connect() as c:
            return c.execute(sa.select(sa.func.min(feeds.c.next_poll_at)).where(
                feeds.c.active.is_(True))).scalar()

    def release_feed(self, feed_id: int, owner: str, **values: Any) -> bool:
        """End `owner`'s poll lease on a feed, writing `values` with it; False (and nothing
        written) when the lease had run out and another worker took the feed."""
        with self.tx() as c:
            return c.execute(feeds.update().where(
                feeds.c.id == feed_id, feeds.c.poll_owner == owner).values(
                poll_owner=None, poll_lease_until=None, **values)).rowcount == 1

    def release_feeds(self, owner: str, done: Sequence[tuple[int, dict]]) -> int:
        """`release_feed` for many feeds in one transaction: one executemany per set of
        columns written. The number released (a lease that ran out is skipped)."""
        groups: dict[tuple[str, ...], list[dict]] = {}
        for feed_id, values in done:
            groups.setdefault(tuple(sorted(values)), []).append(
                {"_id": feed_id, **{f"_{k}": v for k, v in values.items()}})
        n = 0
        with self.tx() as c:
            for keys, rows in groups.items():
                stmt = feeds.update().where(
                    feeds.c.id == sa.bindparam("_id"), feeds.c.poll_owner == owner).values(
                    poll_owner=None, poll_lease_until=None,
                    **{k: sa.bindparam(f"_{k}") for k in keys})
                n += c.execute(stmt, rows).rowcount
        return n

    # -- community --------------------------------------------------------------------------
    def add_community(self, c, account: str, cand, now: datetime, status: str, *,
                      show_id: int | None = None) -> int | None:
        """Record a proposed post once (by account and URI); None when already known."""
        if c.execute(sa.select(community_posts.c.id).where(
                community_posts.c.account == account,
                community_posts.c.uri == cand.uri)).first():
            return None
        insert = community_posts.insert().values(
            account=account, status_id=cand.status_id, uri=cand.uri, url=cand.url,
            author=cand.author, text=cand.text, via=cand.via, status=status, found_at=now,
            decided_at=now if status != "proposed" else None, show_id=show_id)
        if not self.many_workers:
            return c.execute(insert).inserted_primary_key[0]
        try:  # another worker's scan may record the same post at the same moment
            with c.begin_nested():
                return c.execute(insert).inserted_primary_key[0]
        except sa.exc.IntegrityError:
            return None

    def community(self, *, statuses: Sequence[str] | None = None,
                  show_id: int | None = None) -> list[CommunityPost]:
        q = sa.select(community_posts).order_by(community_posts.c.id)
        if show_id is not None:
            q = q.where(community_posts.c.show_id == show_id)
        if statuses:
            q = q.where(community_posts.c.status.in_(list(statuses)))
        with self.tx() as c:
            return [CommunityPost.from_row(r) for r in c.execute(q).mappings()]

    def community_post(self, c, post_id: int) -> CommunityPost | None:
        r = c.execute(sa.select(community_posts).where(community_posts.c.id == post_id)
                      ).mappings().first()
        return CommunityPost.from_row(r) if r else None

    def decide_community(self, c, post_id: int, status: str, now: datetime) -> None:
        c.execute(community_posts.update().where(community_posts.c.id == post_id).values(
            status=status, decided_at=now))

    # -- promos ---------------------------------------------------------------------------
    def add_promo(self, now: datetime, **values: Any) -> int:
        with self.tx() as c:
            return c.execute(promos.insert().values(
                created_at=now, updated_at=now, fired=0, missed=0, **values)
            ).inserted_primary_key[0]

    def promo(self, promo_id: int) -> Promo | None:
        with self.tx() as c:
            r = c.execute(sa.select(promos).where(promos.c.id == promo_id)).mappings().first()
            return Promo.from_row(r) if r else None

    def all_promos(self, *, include_finished: bool = False,
                   show_id: int | None = None) -> list[Promo]:
        q = sa.select(promos).order_by(promos.c.next_at.nulls_last(), promos.c.id)
        if show_id is not None:
            q = q.where(promos.c.show_id == show_id)
        if not include_finished:
            q = q.where(promos.c.status.in_(("active", "paused")))
        with self.tx() as c:
            return [Promo.from_row(r) for r in c.execute(q).mappings()]

    def promo_in(self, c, promo_id: int) -> Promo | None:
        """The promo's row, read inside the caller's transaction (PostgreSQL: locked)."""
        q = sa.select(promos).where(promos.c.id == promo_id)
        if self.dialect == "postgresql":
            q = q.with_for_update()
        r = c.execute(q).mappings().first()
        return Promo.from_row(r) if r else None

    def withdraw_promo_deliveries(self, c, promo_id: int, now: datetime, *,
                                  reason: str) -> list[int]:
        """Cancel a promo's deliveries that have not started sending (pending, held)."""
        ids = list(c.execute(sa.select(deliveries.c.id).join(
            posts, posts.c.id == deliveries.c.post_id).where(
            posts.c.promo_id == promo_id,
            deliveries.c.status.in_(("pending", "held")))).scalars())
        if ids:
            c.execute(deliveries.update().where(deliveries.c.id.in_(ids),
                                                deliveries.c.status.in_(("pending", "held"))
                                                ).values(status="cancelled", last_error=reason,
                                                         updated_at=now))
        return ids

    def episode_by_guid(self, guid: str, show_id: int | None = None) -> EpisodeRecord | None:
        q = sa.select(episodes).where(episodes.c.guid == guid)
        if show_id is not None:
            q = q.where(episodes.c.feed_id.in_(
                sa.select(feeds.c.id).where(feeds.c.show_id == show_id)))
        with self.tx() as c:
            r = c.execute(q.order_by(
                episodes.c.id.desc())).mappings().first()
            return EpisodeRecord.from_row(r) if r else None

    def episodes_for_promotion(self, feed_id: int) -> list[EpisodeRecord]:
        """A feed's episodes that went out or were there before crier (no held, scheduled)."""
        with self.tx() as c:
            return [EpisodeRecord.from_row(r) for r in c.execute(sa.select(episodes).where(
                episodes.c.feed_id == feed_id,
                episodes.c.status.in_(("baseline", "announced"))).order_by(
                episodes.c.published_at, episodes.c.id)).mappings()]

    def due_promos(self, now: datetime, show_id: int | None = None) -> list[Promo]:
        with self.tx() as c:
            return [Promo.from_row(r) for r in c.execute(sa.select(promos).where(
                promos.c.status == "active", promos.c.next_at <= now,
                *([] if show_id is None else [promos.c.show_id == show_id]),
            ).order_by(promos.c.next_at, promos.c.id)).mappings()]

    def update_promo(self, c, promo_id: int, now: datetime, **values: Any) -> None:
        c.execute(promos.update().where(promos.c.id == promo_id).values(
            updated_at=now, **values))

    def promo_deliveries(self, promo_id: int, limit: int = 20) -> list[Delivery]:
        with self.tx() as c:
            return [Delivery.from_row(r) for r in c.execute(self._delivery_query().where(
                posts.c.promo_id == promo_id).order_by(deliveries.c.id.desc()).limit(limit)
            ).mappings()]

    def last_promoted(self, feed_id: int) -> dict[int, datetime]:
        """episode id → when a promo post for it was last made (evergreen cool-down)."""
        with self.tx() as c:
            q = sa.select(posts.c.episode_id, sa.func.max(posts.c.created_at)).join(
                episodes, episodes.c.id == posts.c.episode_id).where(
                posts.c.kind == "promo", episodes.c.feed_id == feed_id
            ).group_by(posts.c.episode_id)
            return dict(c.execute(q).all())

    def last_sent(self, account: str) -> datetime | None:
        """When the account last had a post sent (or recorded by a dry run)."""
        with self.tx() as c:
            return c.execute(sa.select(sa.func.max(deliveries.c.sent_at)).where(
                deliveries.c.account == account)).scalar()

    def announcement_pending(self, account: str) -> bool:
        """An announcement for the account waits to go out, now or after a retry delay (it
        goes before any promo)."""
        with self.tx() as c:
            return c.execute(sa.select(deliveries.c.id).join(
                posts, posts.c.id == deliveries.c.post_id).where(
                deliveries.c.account == account, posts.c.kind == "announcement",
                deliveries.c.status.in_(("pending", "sending"))).limit(1)).first() is not None

    def acquire_lock(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """A lease held by one process at a time (renew by calling again before it expires)."""
        with self.tx() as c:
            r = c.execute(locks.update().where(
                locks.c.name == name,
                sa.or_(locks.c.owner == owner, locks.c.expires_at < now),
            ).values(owner=owner, expires_at=now + ttl))
            if r.rowcount == 1:
                return True
            if c.execute(sa.select(locks.c.name).where(locks.c.name == name)).first():
                return False
        try:
            with self.tx() as c:
                c.execute(locks.insert().values(name=name, owner=owner, expires_at=now + ttl))
            return True
        except sa.exc.IntegrityError:
            return False

    def take_lock(self, name: str, old: str, owner: str, now: datetime,
                  ttl: timedelta) -> bool:
        """Take the lease from `old` (known dead), if `old` still holds it."""
        with self.tx() as c:
            return c.execute(locks.update().where(locks.c.name == name, locks.c.owner == old
                                                  ).values(owner=owner, expires_at=now + ttl)
                             ).rowcount == 1

    def release_lock(self, name: str, owner: str) -> None:
        with self.tx() as c:
            c.execute(locks.delete().where(locks.c.name == name, locks.c.owner == owner))

    def lock_holder(self, name: str) -> dict | None:
        with self.tx() as c:
            r = c.execute(sa.select(locks).where(locks.c.name == name)).mappings().first()
            return dict(r) if r else None

    # -- push cursors: where a watcher stopped (bot/podping.py: the last Hive block read) ---
    def cursor(self, name: str) -> dict | None:
        """{"position", "data", "updated_at"} of a watcher's cursor, None before its first."""
        with self.tx() as c:
            r = c.execute(sa.select(push_cursors).where(push_cursors.c.name == name)
                          ).mappings().first()
            return {"position": r["position"], "data": r["data"] or {},
                    "updated_at": r["updated_at"]} if r else None

    def save_cursor(self, name: str, position: int, data: dict, now: datetime) -> None:
        """Record where a watcher stopped (made on its first save)."""
        values = {"position": position, "data": data, "updated_at": now}
        with self.tx() as c:
            if c.execute(push_cursors.update().where(push_cursors.c.name == name)
                         .values(**values)).rowcount:
                return
        try:
            with self.tx() as c:
                c.execute(push_cursors.insert().values(name=name, **values))
        except sa.exc.IntegrityError:  # another process made it meanwhile
            with self.tx() as c:
                c.execute(push_cursors.update().where(push_cursors.c.name == name)
                          .values(**values))

    # -- notices: what the host was already told (bot/alerts.py) ----------------------------
    def notice(self, key: str) -> dict | None:
        with self.tx() as c:
            r = c.execute(sa.select(notices).where(notices.c.key == key)).mappings().first()
            return dict(r) if r else None

    def add_notice(self, key: str, since: datetime, sent_at: datetime | None = None) -> bool:
        """Record a condition; False if it was already recorded (by anyone)."""
        try:
            with self.tx() as c:
                c.execute(notices.insert().values(key=key, since=since, sent_at=sent_at))
            return True
        except sa.exc.IntegrityError:
            return False

    def mark_notice_sent(self, key: str, at: datetime) -> bool:
        """Claim the telling of a recorded condition; False if it was already told."""
        with self.tx() as c:
            return c.execute(notices.update().where(
                notices.c.key == key, notices.c.sent_at.is_(None)).values(sent_at=at)
                             ).rowcount == 1

    def clear_notice(self, key: str) -> dict | None:
        """Forget a condition (it is over); the row as it was, or None."""
        with self.tx() as c:
            r = c.execute(sa.select(notices).where(notices.c.key == key)).mappings().first()
            if r is None:
                return None
            c.execute(notices.delete().where(notices.c.key == key))
            return dict(r)

    # -- publish checkpoints: a publisher's state between its steps (migration 0010) --------
    def checkpoint(self, key: str) -> dict | None:
        """What a publisher recorded for the delivery with idempotency key `key`, or None."""
        with self.tx() as c:
            return c.execute(sa.select(publish_checkpoints.c.data).where(
                publish_checkpoints.c.idempotency_key == key)).scalar()

    def set_checkpoint(self, key: str, data: dict) -> None:
        """Record (replace) a publisher's state for `key`; committed when this returns."""
        now = datetime.now(UTC)
        where = publish_checkpoints.c.idempotency_key == key
        for _ in range(2):
            with self.tx() as c:
                if c.execute(publish_checkpoints.update().where(where).values(
                        data=data, updated_at=now)).rowcount == 1:
                    return
            try:
                with self.tx() as c:
                    c.execute(publish_checkpoints.insert().values(
                        idempotency_key=key, data=data, updated_at=now))
                return
            except sa.exc.IntegrityError:
                continue  # another writer inserted it meanwhile: update it
        raise StoreError(f"could not record the checkpoint of delivery {key}")


def _postgres_session(dbapi_conn, _record) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET jit = off")
    dbapi_conn.commit()


class _PoolHealth:
    """PostgreSQL pool checks without `pool_pre_ping`'s round trip on every checkout.

    A connection the server closed while it sat in the pool (a restart, pg_terminate_backend,
    idle_session_timeout) has something to read, its closing message or EOF, while a healthy
    idle one has nothing: a zero-timeout poll of its socket (no round trip) finds it, and only
    then, or after `idle_ping` seconds unused (a network path may have died silently), is it
    pinged. A failed ping replaces that connection before the transaction starts. A connection
    that dies mid-transaction fails that transaction (`Store.tx`: a StoreError), and SQLAlchemy
    then drops every connection the pool opened before it."""

    def __init__(self, engine: Engine, idle_ping: float = IDLE_PING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.idle_ping, self.clock = engine, idle_ping, clock
        self.pings = 0
        sa.event.listen(engine, "checkin", self._checkin)
        sa.event.listen(engine, "checkout", self._checkout)

    def _checkin(self, dbapi_conn, record) -> None:
        if dbapi_conn is not None:
            record.info["crier_idle_since"] = self.clock()

    def _checkout(self, dbapi_conn, record, _proxy) -> None:
        since = record.info.pop("crier_idle_since", None)
        if since is None:  # just connected
            return
        if self.clock() - since <= self.idle_ping and not _readable(dbapi_conn):
            return
        self.pings += 1
        try:
            ok = self.engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # the connection is gone: SQLAlchemy connects a new one
            raise sa.exc.DisconnectionError(f"pooled connection lost: {e}") from e
        if not ok:
            raise sa.exc.DisconnectionError("pooled connection lost")


def _readable(dbapi_conn) -> bool:
    """Whether an idle connection's socket has data waiting (no round trip)."""
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # closed
        return True
    if hasattr(select, "poll"):  # no FD_SETSIZE limit
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database's folder and file with owner-only permissions; a folder that
    cannot be created or written is one clear StoreError."""
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        # SQLite writes its journal (-wal, -shm) next to the file: the folder must be writable
        # too, or the first write fails deep inside a poll
        for p in (path, path.parent):
            if not os.access(p, os.W_OK):
                raise PermissionError(errno.EACCES, "read-only", str(p))
    except OSError as e:
        raise StoreError(f"cannot write the database {path}: {e.strerror or e} (in "
                         f"{path.parent}; make that folder writable, or set DATABASE_URL / "
                         "data_dir)") from None
