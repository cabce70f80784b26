"""A whole crier deployment in one process for tests: a loopback feed server, the Mastodon and
X contract servers, the real adapters and a real database, with an injected clock."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Account, Secret, Settings
from bot.models import Delivery, DeliveryStatus
from bot.service import Service, build_publishers
from bot.store import Store, deliveries
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.feedgen import item, rss

X_KEYS = dict(consumer_key="ck", consumer_secret="cs", access_token="at",
              access_token_secret="ats")
M_TOKEN = "mastodon-test-token"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


class World:
    """A feed, two platforms, one database, and a way to (re)start the service."""

    def __init__(self, db_url: str, feed_srv, masto, x, tmp: Path):
        self.tmp = tmp
        self.db_url, self.feed_srv, self.masto, self.x = db_url, feed_srv, masto, x
        self.clock = Clock()
        self.items = [item(n, published=self.clock.now - timedelta(days=7 * (10 - n)))
                      for n in range(1, 6)]
        self.publish_feed()
        self.settings = Settings(
            path=tmp / "crier.toml", show="The Test Show", feed=feed_srv.url + "/feed.xml",
            poll_interval=900, max_new_per_poll=3, max_attempts=5,
            accounts=(
                Account(name="masto", platform="mastodon", instance=masto.url, timeout=2.0,
                        secrets={"access_token": Secret(M_TOKEN)}),
                Account(name="x", platform="x", api_base=x.url,
                        timeout=2.0, secrets={k: Secret(v) for k, v in X_KEYS.items()}),
            ),
            database_url=db_url)
        self.store: Store | None = None
        self.svc: Service | None = None
        self.start()

    def configure(self, *, masto: dict | None = None, x: dict | None = None, **top) -> None:
        """Change settings (and the accounts' settings) and restart the service."""
        accounts = []
        for a in self.settings.accounts:
            change = masto if a.platform == "mastodon" else x
            accounts.append(dataclasses.replace(a, **(change or {})))
        self.settings = dataclasses.replace(self.settings, accounts=tuple(accounts), **top)
        self.start()

    def publish_feed(self, **kw) -> None:
        self.feed_srv.set_feed("/feed.xml", rss(self.items), **kw)

    def start(self) -> Service:
        """A fresh process: new store connection, new publishers, same database."""
        if self.svc:  # a stopping crier sends what it still has to tell (bounded)
            self.svc.notifier.close(5)
        if self.store:
            self.store.close()
        self.store = Store(self.db_url)
        self.store.migrate()
        self.svc = Service(self.settings, self.store, clock=self.clock,
                           rng=random.Random(7),
                           publishers=build_publishers(self.settings))
        return self.svc

    def cycle(self):
        report = self.svc.poll(force=True)
        return report, self.svc.dispatch()

    def drain(self, rounds: int = 12):
        """Dispatch until nothing is pending, moving the clock past each retry time."""
        for _ in range(rounds):
            self.svc.dispatch()
            pending = self.store.deliveries_where(
                deliveries.c.status == DeliveryStatus.PENDING.value)
            if not pending:
                return
            self.clock.now = max(self.clock.now, max(d.next_attempt_at for d in pending))
        raise AssertionError("deliveries still pending after draining")

    def rows(self, status: str | None = None) -> list[Delivery]:
        conds = [deliveries.c.status == status] if status else []
        return self.store.deliveries_where(*conds)

    def texts(self):
        return [s["text"] for s in self.masto.statuses], [t["text"] for t in self.x.tweets]


@pytest.fixture
def world(db_url, tmp_path):
    with FeedServer() as feed_srv, \
            MastodonServer(token=M_TOKEN, max_characters=500) as masto, \
            XServer(**X_KEYS, username="TestShow") as x:
        w = World(db_url, feed_srv, masto, x, tmp_path)
        yield w
        w.store.close()


def new_episode(w: World, n: int = 6, **kw):
    it = item(n, published=w.clock.now - timedelta(minutes=5), **kw)
    w.items.append(it)
    w.publish_feed()
    return it
