"""Every show a deployment serves, each as its own `Service` over one shared store: what
`crier run` (the worker and `--once`) works through.

The config is synced into the registry first (bot.shows), so shows the config no longer
declares are removed and their unsent deliveries withdrawn; imported shows are served too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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

    def poll(self, *, force: bool = False, backfill: int | None = None) -> list:
        """Poll every show whose feed is due (`force`: every show); (service, report)."""
        out = []
        for svc in self.services:
            try:
                out.append((svc, svc.poll(force=force, backfill=backfill)))
            except CrierError as e:
                log.error("poll %s: %s", svc.settings.slug, e)
        return out

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
