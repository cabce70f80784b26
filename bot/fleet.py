"""Every show a deployment serves, worked through by one engine over the shared store: what
`crier run` (the worker and `--once`) calls.

The config is synced into the registry first (bot.shows), so shows the config no longer
declares are removed and their unsent deliveries withdrawn; imported shows are served too,
and so is a show imported while the worker runs (its feed row is made by the import).

Polling costs what is due, not what is served:
- due feeds are claimed from the database in batches across every show (`Store.
  claim_due_feeds`: earliest first, FOR UPDATE SKIP LOCKED, a lease of POLL_LEASE), so any
  number of workers share them and none polls a feed another holds;
- each batch is polled concurrently: a thread pool of `max_polls_in_flight` over the requests
  code, at most `max_polls_per_host` to one host, so crier never hammers one hosting company;
- an unchanged feed (a 304, or the same body hash) of a healthy show is handled from its row
  alone (validators, `poll_interval` and what bot.cadence learned, the deployment's
  `feed_deadline`): no show is loaded and its new poll times are written with the lease's
  release, one statement per batch;
- everything else (a first run, a changed body, an error, a feed that was failing) goes to
  the show's own `Service` (bot.polling), built on demand and kept in a bounded cache.

Dispatch asks the database which shows have something due and dispatches only those.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bot import errors
from bot.cadence import Cadence
from bot.models import Feed
from bot.polling import POLL_LEASE, PollReport, fetch, next_poll_at
from bot.service import Service
from bot.shows import SyncReport, served_ids, settings_by_id, sync_config
from bot.store import Store

log = logging.getLogger(__name__)

CACHE_SIZE = 1024     # per-show Services kept built (a first run or a changed feed needs one)


@dataclass(frozen=True)
class ShowRef:
    """A show as the engine knows it without loading it: its registry id and slug."""
    show_id: int | None
    slug: str


class Fleet:
    """The engine over every show served; `reload` re-reads the config (SIGHUP)."""

    def __init__(self, store: Store, load_deployment: Callable, *, dry_run: bool = False,
                 session=None, clock: Callable[[], datetime] | None = None,
                 cache_size: int = CACHE_SIZE, **service_kw):
        self.store, self._load, self.dry_run = store, load_deployment, dry_run
        self._session, self._kw = session, service_kw
        if clock is not None:
            self._kw["clock"] = clock
        self._clock = self._kw.get("clock") or (lambda: datetime.now(UTC))
        self._cache: OrderedDict[int | None, Service] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._slugs: dict[int, str] = {}
        self._seen_at: datetime | None = None   # registry changes read up to here
        self._hosts: dict[tuple[str, int], threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._rng = random.Random()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last_sync: SyncReport | None = None
        self.reload()

    # -- the registry ---------------------------------------------------------------------
    def reload(self) -> SyncReport:
        """Sync the config into the registry and serve what it now holds."""
        dep = self._load()
        self.last_sync = sync_config(self.store, dep.shows)
        self.deployment = dep
        with self._lock:
            self._seen_at = self.now()
            self._slugs = {k: v for k, v in served_ids(self.store).items() if v}
            for svc in list(self._cache.values()):   # rebuilt from the new config when needed
                svc.notifier.close()
            self._cache.clear()
        log.info("serving %d show(s): %s", len(self._slugs), self.last_sync)
        return self.last_sync

    def refresh(self) -> None:
        """Shows imported, changed or removed by another process since the last look: the
        index follows and their cached Services are dropped (one indexed query)."""
        since, now = self._seen_at, self.now()
        changed = served_ids(self.store, since=since - timedelta(seconds=1)) if since else {}
        with self._lock:
            self._seen_at = now
            for sid, slug in changed.items():
                if slug is None:
                    self._slugs.pop(sid, None)
                else:
                    self._slugs[sid] = slug
                svc = self._cache.pop(sid, None)
                if svc is not None:
                    svc.notifier.close()

    @property
    def loaded(self) -> int:
        """How many shows' Services are built now (bounded by the cache)."""
        return len(self._cache)

    @property
    def count(self) -> int:
        """How many shows are served."""
        return len(self._slugs) or len(self.deployment.shows)

    def service_for(self, show_id: int | None) -> Service | None:
        """The show's Service (built on demand, kept in a bounded cache); None: not served."""
        with self._lock:
            svc = self._cache.get(show_id)
            if svc is not None:
                self._cache.move_to_end(show_id)
                return svc
        if show_id is None:  # rows from before the registry: the one config show
            settings = self.deployment.shows[0] if len(self.deployment.shows) == 1 else None
        else:
            settings = settings_by_id(self.store, self.deployment, {show_id}).get(show_id)
        if settings is None:
            return None
        return self._keep(show_id, self._build(settings, show_id))

    def _build(self, settings, show_id: int | None = None) -> Service:
        return Service(settings, self.store, dry_run=self.dry_run, session=self.session,
                       show_id=show_id, **self._kw)

    def _keep(self, show_id, svc: Service) -> Service:
        with self._lock:
            have = self._cache.get(show_id)
            if have is not None:     # another thread built it meanwhile
                svc.notifier.close()
                return have
            self._cache[show_id] = svc
            while len(self._cache) > self._cache_size:
                _sid, old = self._cache.popitem(last=False)
                old.notifier.close()
            return svc

    def _preload(self, ids: set) -> None:
        """Build the Services of these shows that are not cached, their settings read in one
        query (a batch of first runs needs every one of them)."""
        with self._lock:
            wanted = {sid for sid in ids if sid is not None and sid not in self._cache}
        for sid, settings in settings_by_id(self.store, self.deployment, wanted).items():
            self._keep(sid, self._build(settings, sid))

    @property
    def services(self) -> list[Service]:
        """Every show served, each as a Service, in slug order (builds them all: for the
        commands and a small deployment, not the worker's loop)."""
        ids = dict(self._slugs)
        if not ids and len(self.deployment.shows) == 1:
            svc = self.service_for(None)
            return [svc] if svc else []
        with self._lock:
            have = {sid: self._cache[sid] for sid in ids if sid in self._cache}
        for sid, settings in settings_by_id(self.store, self.deployment,
                                            set(ids) - set(have)).items():
            svc = self._build(settings, sid)
            have[sid] = self._keep(sid, svc) if len(self._cache) < self._cache_size else svc
        return [have[sid] for sid in sorted(ids, key=ids.get) if sid in have]

    @property
    def session(self):
        """One HTTP session for every show (urllib3's connection pools are thread-safe)."""
        if self._session is None:
            from bot.fetch import new_session
            self._session = new_session()
        return self._session

    def now(self) -> datetime:
        return self._clock()

    def ref(self, show_id: int | None) -> ShowRef:
        return ShowRef(show_id, self._slugs.get(show_id) or (
            self.deployment.shows[0].slug if self.deployment.shows else "?"))

    # -- polling --------------------------------------------------------------------------
    def due(self) -> list[str]:
        """The URLs of the feeds due now (one query)."""
        return sorted(self.store.due_feed_urls(self.now()))

    def poll(self, *, force: bool = False, backfill: int | None = None,
             stop: Callable[[], bool] | None = None, batch: int | None = None,
             found: Callable[[], None] | None = None) -> list:
        """Poll every feed that is due, batch after batch until none is (`force`: every show,
        now, as `run --once` does for one show); (ShowRef, PollReport) per poll. A failing
        feed does not stop the others. `found` is called after each batch that announced an
        episode (the worker sends at once rather than at its next dispatch round)."""
        if force:
            out = []
            for svc in self.services:
                try:
                    out.append((ShowRef(svc.show_id, svc.settings.slug),
                                svc.poll(force=True, backfill=backfill)))
                except errors.CrierError as e:
                    log.error("poll %s: %s", svc.settings.slug, e)
            return out
        self.refresh()
        dep = self.deployment
        in_flight = max(1, dep.max_polls_in_flight)
        per_host = max(1, dep.max_polls_per_host)
        size = batch or max(in_flight * 4, 32)
        results: list = []
        started, counts = time.monotonic(), {}
        while not (stop and stop()):
            now = self.now()
            rows = self.store.claim_due_feeds(now, self.owner, POLL_LEASE, limit=size)
            if not rows:
                break
            until = time.monotonic() + (POLL_LEASE.total_seconds() - dep.feed_deadline - 5)
            self._preload({r.show_id for r in rows
                           if not r.baseline_done or r.error_count})
            if in_flight == 1 or len(rows) == 1:
                done = [self._poll_row(r, backfill, per_host, until) for r in rows]
            else:
                done = list(self._executor(in_flight).map(
                    self._poll_row, rows, *zip(*[(backfill, per_host, until)] * len(rows),
                                               strict=True)))
            released = self.store.release_feeds(self.owner, [(fid, values)
                                                             for fid, _ref, _r, values in done])
            self.store.keep_pushes([fid for fid, *_x in done], now)   # pushed meanwhile
            if released < len(done) and self.store.many_workers:
                log.warning("%d poll lease(s) ran out during the polls",
                            len(done) - released)
            for _fid, ref, report, _values in done:
                if report is not None:
                    results.append((ref, report))
                    counts[report.result] = counts.get(report.result, 0) + 1
            if found is not None and any(r is not None and r.announced for *_x, r, _v in done):
                found()
        if counts:
            log.info("polled %d feed(s) in %.1f s: %s", sum(counts.values()),
                     time.monotonic() - started,
                     ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        return results

    def _executor(self, in_flight: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool._max_workers != in_flight:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="crier-poll")
        return self._pool

    def _host_slot(self, url: str, per_host: int) -> threading.BoundedSemaphore:
        host = (urlsplit(url).hostname or "").lower()  # a file path: one "host" too
        with self._lock:
            sem = self._hosts.get((host, per_host))
            if sem is None:
                sem = self._hosts[(host, per_host)] = threading.BoundedSemaphore(per_host)
            return sem

    def _poll_row(self, row: Feed, backfill: int | None, per_host: int, until: float):
        """Poll one claimed feed: (feed id, ShowRef, report or None, values for the release)."""
        fid, ref = row.id, self.ref(row.show_id)
        url = row.redirect_url or row.url
        try:
            with self._host_slot(url, per_host):
                if time.monotonic() > until:  # the lease may run out during the poll: next round
                    return fid, ref, None, {}
                return (fid, ref, *self._poll_held(row, ref, url, backfill))
        except errors.CrierError as e:
            log.error("poll %s: %s", ref.slug, e)
            return fid, ref, None, {}
        except Exception:  # a bug: this feed waits for its next turn, the others go on
            log.exception("poll %s: unexpected error", ref.slug)
            return fid, ref, None, {"next_poll_at": self.now() + timedelta(minutes=1)}

    def _poll_held(self, row: Feed, ref: ShowRef, url: str, backfill: int | None):
        now = self.now()
        quick = row.baseline_done and not row.error_count and row.poll_interval
        res = error = None
        if quick:
            try:
                res = fetch(row, self.session, self.deployment.feed_deadline)
            except errors.FetchError as e:
                error = e
            else:
                if res.unchanged and (not res.permanent_redirect
                                      or res.permanent_redirect == row.redirect_url):
                    log.debug("feed %s: unchanged (%s)", url,
                              "304" if res.status == 304 else "same body hash")
                    return PollReport(feed=row.url, result="unchanged"), {
                        "last_poll_at": now, "last_ok_at": now, "last_result": "unchanged",
                        "etag": res.etag or row.etag,
                        "last_modified": res.last_modified or row.last_modified,
                        "next_poll_at": next_poll_at(
                            now, row.poll_interval, res.max_age, self._rng, row.next_poll_at,
                            Cadence.from_row(row.update_hint, row.release_hours))}
        svc = self.service_for(row.show_id)
        if svc is None or svc.settings.feed != row.url:   # removed or moved meanwhile
            if res is not None and res.body is not None:
                res.body.close()
            log.info("feed %s: no show polls it any more; parked", row.url)
            return None, {"active": False}
        report, values = svc.poller.poll_claimed(row, now, backfill, res=res, error=error)
        return report, values

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, **kw) -> list:
        """Send what is due: deliveries stuck in `sending` are recovered once for every show,
        then only the shows the database says have something due are dispatched."""
        from bot.dispatch import due_show_ids, recover_stale
        now = self.now()
        recover_stale(self.store, now)
        outcomes = []
        for sid in sorted(due_show_ids(self.store, now) - {None}):
            svc = self.service_for(sid)
            if svc is None:
                continue
            try:
                outcomes.extend(svc.dispatch(recover=False, **kw))
            except errors.CrierError as e:
                log.error("dispatch %s: %s", svc.settings.slug, e)
        return outcomes

    def wake_auth_stopped(self) -> int:
        """On start: deliveries parked by a refused token are due again, every show's (the
        token may be fixed). One statement."""
        from bot.models import DeliveryStatus
        from bot.store import deliveries
        now = self.now()
        with self.store.tx() as c:
            return c.execute(deliveries.update().where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.error_kind == "auth").values(next_attempt_at=now)).rowcount

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._lock:
            for svc in self._cache.values():
                svc.notifier.close()
            self._cache.clear()
