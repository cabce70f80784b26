"""The long-running worker: one APScheduler scheduler, thin over `bot.service`.

Jobs (stable ids, replace_existing, coalesce, max_instances=1, UTC):
- `poll`: every 30 s, polls the feed when its `next_poll_at` has come (interval with jitter,
  backoff after errors, both decided by the service and kept in the database);
- `dispatch`: every `dispatch_interval` seconds, fires due queued posts, sends due deliveries
  and renews the worker lock;
- `community` (when `[community] enabled`): every `interval`, proposes the community's new posts.

SQLite: one worker per database: the lock in the `locks` table is taken at start and renewed;
a second `crier run` against the same database refuses to start its scheduler. PostgreSQL: any
number of workers, on one machine or many; they share the work through leases on the rows
(due feeds and due deliveries, claimed FOR UPDATE SKIP LOCKED; see bot.store "claims").
SIGTERM/SIGINT stop the scheduler after the delivery in flight is finished and recorded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

from bot.errors import CrierError

log = logging.getLogger(__name__)

POLL_CHECK_SECONDS = 30


def run_worker(ctx, *, dry_run: bool = False, backfill: int | None = None) -> None:
    from apscheduler.schedulers.blocking import BlockingScheduler

    owner = f"{socket.gethostname()}:{os.getpid()}"
    stopping = threading.Event()
    with ctx.service(dry_run=dry_run) as svc:
        alone = not svc.store.many_workers  # SQLite: one worker, kept alone by the lock
        if alone and not svc.acquire_worker_lock(owner):
            holder = svc.store.lock_holder("worker")
            raise CrierError(
                f"another crier worker holds this database ({holder['owner']}, lease until "
                f"{holder['expires_at']:%Y-%m-%d %H:%M:%S} UTC); refusing to start a second "
                "scheduler")
        svc.wake_auth_stopped()
        first_backfill = [backfill]

        def poll_job() -> None:
            try:
                svc.poll(backfill=first_backfill[0])
                first_backfill[0] = None
            except CrierError as e:
                log.error("poll: %s", e)

        def dispatch_job() -> None:
            if alone and not svc.acquire_worker_lock(owner):
                log.error("worker lock lost to another process; stopping")
                stopping.set()
                sched.shutdown(wait=False)
                return
            try:
                svc.dispatch(stop=stopping.is_set)
            except CrierError as e:
                log.error("dispatch: %s", e)

        sched = BlockingScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        sched.add_job(poll_job, "interval", seconds=POLL_CHECK_SECONDS, id="poll",
                      replace_existing=True, next_run_time=svc.clock())
        sched.add_job(dispatch_job, "interval", seconds=svc.settings.dispatch_interval,
                      id="dispatch", replace_existing=True, next_run_time=svc.clock())
        if svc.settings.community:
            def community_job() -> None:
                try:
                    svc.community_scan()
                except CrierError as e:
                    log.error("community: %s", e)

            sched.add_job(community_job, "interval", seconds=svc.settings.community_interval,
                          id="community", replace_existing=True, next_run_time=svc.clock())

        def on_signal(signum, _frame) -> None:
            log.info("received %s: finishing the delivery in flight, then stopping",
                     signal.Signals(signum).name)
            stopping.set()
            threading.Thread(target=sched.shutdown, kwargs={"wait": True},
                             daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info("crier worker %s started: feed %s every %ss, %d account(s)%s", owner,
                 svc.settings.feed, svc.settings.poll_interval, len(svc.settings.accounts),
                 " (dry run)" if dry_run else "")
        try:
            sched.start()
        finally:
            if alone:
                svc.release_worker_lock(owner)
            log.info("crier worker %s stopped", owner)
