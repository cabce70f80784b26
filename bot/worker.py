"""The long-running worker: one APScheduler scheduler, thin over `bot.fleet` (one
`bot.service.Service` per show served).

Jobs (stable ids, replace_existing, coalesce, max_instances=1, UTC):
- `poll`: every 5 s, claims the feeds whose `next_poll_at` has come, across every show, in
  batches, and polls them until none is due (bot.fleet; interval with jitter and backoff
  after errors are kept in the database);
- `dispatch`: every `dispatch_interval` seconds, fires due queued posts, sends due deliveries
  of every show and renews the worker lock; a poll that announced an episode runs it at once
  (so an episode goes out within its feed's poll interval, not an interval and a round);
- `websub`: every 15 s, WebSub subscriptions due are asked for, renewed or ended
  (bot.websub; only with `public_url`); a notification wakes `poll` through bot.push;
- `community`: every 60 s, each show with `[community] enabled` whose `interval` has passed
  proposes its community's new posts.

Beside the scheduler, a thread runs the podping watcher (bot.podping; `[podping] enabled`),
which reads new Hive blocks every 3 s and makes a pinged feed due now through bot.push; with
many workers one of them holds its lease.

SIGHUP reads the config again and syncs it into the show registry (bot.shows): shows added
are served from the next job on, removed ones no longer (their unsent deliveries withdrawn).

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
from bot.polling import POLL_TICK

log = logging.getLogger(__name__)

POLL_CHECK_SECONDS = POLL_TICK  # next_poll_at counts on it
COMMUNITY_CHECK_SECONDS = 60


def run_worker(ctx, *, dry_run: bool = False, backfill: int | None = None,
               web=None) -> None:
    """The worker until SIGTERM/SIGINT; `web(store)`: a uvicorn Server for the control room,
    run in a thread of this process over the same store (`crier run --web`)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    owner = f"{socket.gethostname()}:{os.getpid()}"
    stopping = threading.Event()
    from bot.locks import acquire_worker_lock, release_worker_lock
    with ctx.fleet(dry_run=dry_run) as fleet:
        store = fleet.store
        alone = not store.many_workers  # SQLite: one worker, kept alone by the lock
        if alone and not acquire_worker_lock(store, owner, fleet.now()):
            holder = store.lock_holder("worker")
            raise CrierError(
                f"another crier worker holds this database ({holder['owner']}, lease until "
                f"{holder['expires_at']:%Y-%m-%d %H:%M:%S} UTC); refusing to start a second "
                "scheduler")
        fleet.wake_auth_stopped()
        first_backfill = [backfill]
        reload_wanted = threading.Event()
        community_at: dict[str, object] = {}

        def poll_job() -> None:
            if reload_wanted.is_set():
                reload_wanted.clear()
                try:
                    log.info("SIGHUP: config synced: %s", fleet.reload())
                except CrierError as e:
                    log.error("SIGHUP: the config was not reloaded: %s", e)
            # a long drain (thousands of first runs) yields to a stop or a SIGHUP between batches
            polling.set()
            try:
                while True:
                    poll_again.clear()
                    fleet.poll(backfill=first_backfill[0],
                               stop=lambda: stopping.is_set() or reload_wanted.is_set(),
                               found=send_now)
                    first_backfill[0] = None
                    if not poll_again.is_set() or stopping.is_set():
                        break
            finally:
                polling.clear()

        polling, poll_again = threading.Event(), threading.Event()

        def poll_soon() -> None:
            """A push (bot.push) made a feed due: poll now (or once more, if a poll is on)."""
            poll_again.set()
            if not polling.is_set() and not stopping.is_set():
                sched.modify_job("poll", next_run_time=fleet.now())

        dispatching, again = threading.Event(), threading.Event()

        def send_now() -> None:
            """A poll announced something: dispatch now (or once more, if a round is on)."""
            again.set()
            if not dispatching.is_set() and not stopping.is_set():
                sched.modify_job("dispatch", next_run_time=fleet.now())

        def dispatch_job() -> None:
            if alone and not acquire_worker_lock(store, owner, fleet.now()):
                log.error("worker lock lost to another process; stopping")
                stopping.set()
                sched.shutdown(wait=False)
                return
            dispatching.set()
            try:
                while not stopping.is_set():
                    again.clear()
                    fleet.dispatch(stop=stopping.is_set)
                    if not again.is_set():
                        break
            finally:
                dispatching.clear()

        def community_job() -> None:
            from bot.shows import community_ids
            for sid in community_ids(store, fleet.deployment):
                if stopping.is_set():
                    return
                s = fleet.service_for(sid)
                if s is None or not s.settings.community:
                    continue
                now = s.clock()
                last = community_at.get(s.settings.slug)
                if last is not None and (now - last).total_seconds() \
                        < s.settings.community_interval:
                    continue
                community_at[s.settings.slug] = now
                try:
                    s.community_scan()
                except CrierError as e:
                    log.error("community %s: %s", s.settings.slug, e)

        sched = BlockingScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 60})
        sched.add_job(poll_job, "interval", seconds=POLL_CHECK_SECONDS, id="poll",
                      replace_existing=True, next_run_time=fleet.now())
        dep = ctx.deployment()
        sched.add_job(dispatch_job, "interval", seconds=dep.dispatch_interval,
                      id="dispatch", replace_existing=True, next_run_time=fleet.now())
        every = min([COMMUNITY_CHECK_SECONDS] + [s.community_interval
                                                 for s in dep.shows if s.community])
        sched.add_job(community_job, "interval", seconds=every,
                      id="community", replace_existing=True, next_run_time=fleet.now())

        from bot import websub
        sched.add_job(websub.job(store, lambda: fleet.deployment, fleet.now, owner), "interval",
                      seconds=websub.JOB_SECONDS, id="websub", replace_existing=True,
                      next_run_time=fleet.now())
        websub.set_kick(lambda: sched.modify_job("websub", next_run_time=fleet.now()))

        def on_signal(signum, _frame) -> None:
            log.info("received %s: finishing the delivery in flight, then stopping",
                     signal.Signals(signum).name)
            stopping.set()
            threading.Thread(target=sched.shutdown, kwargs={"wait": True},
                             daemon=True).start()

        def on_hangup(_signum, _frame) -> None:
            log.info("received SIGHUP: the config is read again before the next poll")
            reload_wanted.set()
            threading.Thread(target=sched.modify_job, args=("poll",),
                             kwargs={"next_run_time": fleet.now()}, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_hangup)
        if fleet.count == 1 and len(dep.shows) == 1:
            one = dep.shows[0]
            log.info("crier worker %s started: feed %s every %ss, %d account(s)%s", owner,
                     one.feed, one.poll_interval, len(one.accounts),
                     " (dry run)" if dry_run else "")
        else:
            log.info("crier worker %s started: %d shows%s", owner, fleet.count,
                     " (dry run)" if dry_run else "")
        server = web(store) if web is not None else None
        if server is not None:
            serving = threading.Thread(target=server.run, name="crier-web", daemon=True)
            serving.start()
        from bot import push
        from bot.podping import start_watcher
        push.set_waker(poll_soon)
        podping = start_watcher(store, dep, owner, clock=fleet.now)  # a thread; None: off
        try:
            sched.start()
        finally:
            if podping is not None:
                podping.stop()      # after its round, releasing its lease
            push.set_waker(None)
            websub.set_kick(None)
            if server is not None:
                server.should_exit = True
                serving.join(timeout=10)
            if alone:
                release_worker_lock(store, owner)
            log.info("crier worker %s stopped", owner)
