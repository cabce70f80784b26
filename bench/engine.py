"""Benchmark: the poll engine (bot.fleet) in one process, step by step, without a scheduler.

    python bench/engine.py                       # 2,000 feeds, PostgreSQL
    python bench/engine.py --feeds 10000 --sqlite

N generated feeds (bench/scalefeeds.py) served by a private nginx on 127.0.0.1, N show files
imported (dry-run accounts), then, each timed with this process's CPU clock (nginx and the
database are other processes: their CPU is not counted here):

1. the first run of every show (`Fleet.poll()` until nothing is due: a 200 and a baseline each);
2. a cycle where every feed is due and unchanged (304s: the quiet path, no show loaded);
3. a cycle where every feed is due and 1% gained an episode;
4. `Fleet.dispatch()` of the dry-run announcements, then one with nothing due.

It prints one line per step: polls (or deliveries) per second and CPU ms each. Read it with
bench/scale.py, which measures whole `crier run` workers over real cycles.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from nginx import Nginx, find_or_install  # noqa: E402
from scalefeeds import FeedSet, write_show_file  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def step(name: str, n_fn, fn) -> None:
    c0, t0 = cpu(), time.perf_counter()
    out = fn()
    c, t = cpu() - c0, time.perf_counter() - t0
    n = n_fn(out)
    print(f"{name:<34} {n:>7} in {t:7.2f} s: {n / t if t else 0:9.1f}/s, "
          f"{c * 1000 / max(n, 1):7.3f} CPU ms each", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    ap.add_argument("--in-flight", type=int, default=16)
    ap.add_argument("--per-host", type=int, default=4)
    ap.add_argument("--profile", metavar="FILE",
                    help="profile the unchanged cycle with yappi (every thread, CPU clock) "
                         "into FILE (pstats)")
    ap.add_argument("--profile-first-run", metavar="FILE",
                    help="the same for the first runs")
    ap.add_argument("--drain", default="1,2",
                    help="then, for each count W: every feed due, W processes each running "
                         "Fleet.poll() until none is due; N / wall time ('' skips)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="crier-engine-"))
    os.chmod(tmp, 0o755)
    nginx = pg = None
    try:
        fs = FeedSet(tmp / "feeds", args.feeds)
        fs.generate(time.monotonic() + 600)
        nginx = Nginx(find_or_install(print), fs.root, tmp / "nginx")
        nginx.tmp.mkdir()
        nginx.start()
        if args.sqlite:
            db_url = f"sqlite:///{tmp}/crier.db"
        else:
            from tests.pg import PostgresServer
            pg = PostgresServer()
            pg.start()
            db_url = pg.new_database()
        shows = tmp / "shows"
        shows.mkdir()
        for k in range(args.feeds):
            write_show_file(shows, k, f"{nginx.base_url}{fs.url_path(k)}")
        cfg = tmp / "crier.toml"
        cfg.write_text(f'include = ["none/*.toml"]\nmax_polls_in_flight = {args.in_flight}\n'
                       f'max_polls_per_host = {args.per_host}\n')
        os.environ["DATABASE_URL"] = db_url
        logging_off()
        from bot.deployment import load_deployment
        from bot.fleet import Fleet
        from bot.shows import import_shows
        from bot.store import Store, feeds
        store = Store(db_url)
        store.migrate()
        dep = load_deployment(cfg)
        step("import show files", lambda r: r.files, lambda: import_shows(store, dep, shows))
        fleet = Fleet(store, lambda: load_deployment(cfg), dry_run=True)

        def due_all():
            with store.tx() as c:
                c.execute(feeds.update().values(
                    next_poll_at=datetime.now(UTC) - timedelta(seconds=1)))

        if args.profile_first_run:
            import yappi
            yappi.set_clock_type("cpu")
            yappi.start()
        step("first run (baseline) of every show", len, fleet.poll)
        if args.profile_first_run:
            yappi.stop()
            yappi.get_func_stats().save(args.profile_first_run, type="pstat")
            yappi.clear_stats()
        due_all()
        if args.profile:
            import yappi
            yappi.set_clock_type("cpu")
            yappi.start()
        step("every feed due, unchanged (304)", len, fleet.poll)
        if args.profile:
            yappi.stop()
            yappi.get_func_stats().save(args.profile, type="pstat")
        print(f"   shows loaded after it: {fleet.loaded}")
        changed = fs.gain_episodes(0.01, random.Random(1))
        print(f"   {len(changed)} feeds gained an episode")
        due_all()
        step("every feed due, 1% changed", len, fleet.poll)
        step("dispatch the announcements", len, fleet.dispatch)
        step("dispatch, nothing due (x20)", lambda r: 20,
             lambda: [fleet.dispatch() for _ in range(20)])
        print(f"peak RSS of this process: "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        fleet.close()
        for w in [int(x) for x in args.drain.split(",") if x.strip()]:
            due_all()
            drain(w, cfg, db_url, store, args.feeds)
        store.close()
        return 0
    finally:
        if nginx is not None:
            nginx.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


DRAIN = """
import sys, time
sys.path.insert(0, {root!r})
from bot.deployment import load_deployment
from bot.fleet import Fleet
from bot.store import Store
store = Store({db!r})
fleet = Fleet(store, lambda: load_deployment({cfg!r}), dry_run=True)
t0 = time.time()
n = len(fleet.poll())
print(n, t0, time.time(), flush=True)
"""


def drain(workers: int, cfg: Path, db_url: str, store, n: int) -> None:
    """Every feed is due: `workers` processes poll until none is; throughput = N / wall."""
    import subprocess
    code = DRAIN.format(root=str(HERE.parent), db=db_url, cfg=str(cfg))
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(workers)]
    out = [(p.communicate()[0] or "0 0 0").split() for p in procs]
    polled = [int(o[0]) for o in out]
    # from the first process's first claim to the last one's end (imports not counted)
    wall = max(float(o[2]) for o in out) - min(float(o[1]) for o in out)
    print(f"drain: {workers} process(es) polled {sum(polled)} of {n} due feeds "
          f"({'/'.join(map(str, polled))}) in {wall:.2f} s: {sum(polled) / wall:.0f} polls/s",
          flush=True)


def logging_off() -> None:
    import logging
    logging.basicConfig(level=logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
