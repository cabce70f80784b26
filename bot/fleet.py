"""Every show a deployment serves, each as its own `Service` over one shared store: what
`crier run` (the worker and `--once`) works through.

The config is synced into the registry first (bot.shows), so shows the config no longer
declares are removed and their unsent deliveries withdrawn; imported shows are served too.

Polls run concurrently (`poll`): a thread pool of `max_polls_in_flight` over the requests code,
at most `max_polls_per_host` of them to one host (the feed URL's host), so crier never
hammers one hosting company. Only the shows whose feed is due are polled, found by one query
(`Store.due_feed_urls`). Each poll's writes are its own transactions (the engine's pool is
thread-safe; on SQLite the worker's threads take turns writing, see `Store.tx`). The shows
share one requests session once the first is made (urllib3's connection pools are
thread-safe).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bot.errors import CrierError
from bot.service import Service
from bot.shows import SyncReport, served, sync_config
from bot.store import Store

log = logging.getLogger(__name__)


class Fleet:
    """One Service per show served; `reload` re-reads the config (SIGHUP)."""

    def __init__(self, store: Store, load_deployment: Callable, *, dry_run: bool = False,
                 session=None, **service_kw):
        self.store, self._load, self.dry_run = store, load_deployment, dry_run
        self._session, self._kw = session, service_kw
        self.services: list[Service] = []
        self._known: set[str] = set()   # feeds that have a row (polled at least once)
        self._hosts: dict[tuple[str, int], threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.last_sync: SyncReport | None = None
        self.reload()

    def reload(self) -> SyncReport:
        """Sync the config into the registry and serve what it now holds."""
        dep = self._load()
        self.last_sync = sync_config(self.store, dep.shows)
        everyone = served(self.store, dep)
        old = {s.settings.slug: s for s in self.services}
        services = []
        for settings in everyone.shows:
            svc = old.get(settings.slug)
            if svc is None or svc.settings != settings:
                svc = Service(settings, self.store, dry_run=self.dry_run,
                              session=self._session, **self._kw)
            services.append(svc)
        kept = {id(s) for s in services}
        for svc in self.services:       # shows removed or changed: what they must tell goes
            if id(svc) not in kept:
                svc.notifier.close()
        self.services = services
        if self._session is None and services:  # one HTTP session for every show
            self._session = services[0].session
        log.info("serving %d show(s): %s", len(services), self.last_sync)
        return self.last_sync

    def now(self):
        from datetime import UTC, datetime
        return self.services[0].clock() if self.services else datetime.now(UTC)

    def due(self, *, force: bool = False) -> list[Service]:
        """The shows whose feed is due (one query), or every show with `force`."""
        if force or not self.services:
            return list(self.services)
        now = self.now()
        due = self.store.due_feed_urls(now)
        return [s for s in self.services
                if (s.settings.feed in due or s.settings.feed not in self._known)
                and not _known_later(s, now)]

    def poll(self, *, force: bool = False, backfill: int | None = None) -> list:
        """Poll every show whose feed is due (`force`: every show), a bounded number at once;
        (service, report) in the shows' order. A failing feed does not stop the others."""
        todo = self.due(force=force)
        if not todo:
            return []
        first = todo[0].settings
        in_flight = max(1, getattr(first, "max_polls_in_flight", 16))
        per_host = max(1, getattr(first, "max_polls_per_host", 4))
        if in_flight == 1 or len(todo) == 1:
            results = [self._poll_one(svc, force, backfill, per_host) for svc in todo]
        else:
            with ThreadPoolExecutor(min(in_flight, len(todo)),
                                    thread_name_prefix="crier-poll") as pool:
                results = list(pool.map(
                    lambda svc: self._poll_one(svc, force, backfill, per_host), todo))
        return [r for r in results if r is not None]

    def _host_slot(self, url: str, per_host: int) -> threading.BoundedSemaphore:
        host = (urlsplit(url).hostname or "").lower()  # a file path: one "host" too
        with self._lock:
            sem = self._hosts.get((host, per_host))
            if sem is None:
                sem = self._hosts[(host, per_host)] = threading.BoundedSemaphore(per_host)
            return sem

    def _poll_one(self, svc: Service, force: bool, backfill: int | None, per_host: int):
        try:
            with self._host_slot(svc.settings.feed, per_host):
                report = svc.poll(force=force, backfill=backfill)
        except CrierError as e:
            log.error("poll %s: %s", svc.settings.slug, e)
            return None
        with self._lock:
            self._known.add(svc.settings.feed)
        return svc, report

    def dispatch(self, **kw) -> list:
        """Send what is due, show after show."""
        outcomes = []
        for svc in self.services:
            try:
                outcomes.extend(svc.dispatch(**kw))
            except CrierError as e:
                log.error("dispatch %s: %s", svc.settings.slug, e)
        return outcomes

    def close(self) -> None:
        for svc in self.services:
            svc.notifier.close()


def _known_later(svc: Service, now) -> bool:
    """The show's own poller knows its feed is not due yet (a quiet poll not yet written)."""
    after = svc.poller.due_after()
    return after is not None and now < after
