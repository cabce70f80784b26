"""The first run of many shows (the baseline), measured: N generated feeds, each polled once by
its own `Service` over one shared store, on SQLite and on PostgreSQL. Prints numbers; not a test.

    python bench/baseline.py                          # N = 300, SQLite and PostgreSQL
    python bench/baseline.py --feeds 100 --no-postgres
    python bench/baseline.py --crier /tmp/base        # another checkout's crier (before/after)
    python bench/baseline.py --profile /tmp/b.prof    # cProfile of the polls (pstats file)

Feeds: `bench/scalefeeds.py` (10-50 Buzzsprout-like items each) written to a temporary folder
and served by the test suite's `tests/fakes/feed_server.py` on 127.0.0.1 (a thread of this
process). Each show has two dry-run accounts and `first_run_backfill = 0`, as the scale
bench's show files. Per database: wall time of all N first runs, and the CPU time of the
polling thread (`time.thread_time`: the server thread is not counted) per baseline; the
feedparser calls made (and their CPU), and the size of the episodes' stored data.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _setup_path(crier: Path | None) -> None:
    sys.path.insert(0, str(ROOT))
    if crier is not None:  # that checkout's `bot` first (this one's tests and bench after)
        sys.path.insert(0, str(crier.resolve()))


def run_one(db_url: str, urls: list[str], profile: str | None, tmp: Path) -> dict:
    import cProfile

    import feedparser
    import sqlalchemy as sa

    from bot.config import Account, Settings
    from bot.service import Service
    from bot.store import Store, episodes

    calls: list[float] = []
    real = feedparser.parse

    def counted(*a, **kw):
        t = time.thread_time()
        try:
            return real(*a, **kw)
        finally:
            calls.append(time.thread_time() - t)

    feedparser.parse = counted
    store = Store(db_url)
    store.migrate()
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    services = []
    for k, url in enumerate(urls):
        settings = Settings(
            path=tmp / f"show-{k}.toml", show=f"Bench Show {k}", feed=url, slug=f"show-{k}",
            poll_interval=300, database_url=db_url,
            accounts=(Account(name=f"show-{k}-mastodon", platform="mastodon",
                              instance="https://mastodon.example", dry_run=True,
                              max_characters=500),
                      Account(name=f"show-{k}-x", platform="x", dry_run=True)))
        services.append(Service(settings, store, clock=lambda: now, rng=random.Random(k),
                                dry_run=True))
    session = services[0].session
    for svc in services[1:]:
        svc._session = session
        # the show and its feed's row registered first, as `crier shows import` does
        svc.store.ensure_feed(svc.settings.feed, now)
    # warm up (imports, SQLAlchemy's statement cache) on one extra show, not counted
    services[0].poll(force=True)
    prof = cProfile.Profile() if profile else None
    calls.clear()
    per: list[float] = []
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    if prof:
        prof.enable()
    baselined = 0
    for svc in services[1:]:
        t = time.thread_time()
        report = svc.poll(force=True)
        per.append(time.thread_time() - t)
        if report.result != "baseline":
            raise SystemExit(f"{svc.settings.feed}: {report.result} {report.error}")
        baselined += report.baseline
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    with store.engine.connect() as c:  # the stored JSON text
        sizes = list(c.execute(sa.select(sa.func.length(sa.cast(episodes.c.data, sa.Text)))
                               ).scalars())
        sample = c.execute(sa.select(episodes.c.data).where(
            episodes.c.status == "baseline").limit(1)).scalar()
    store.close()
    feedparser.parse = real
    n = len(services) - 1
    return {"shows": n, "episodes": baselined, "wall_s": wall, "cpu_s": cpu,
            "per_s": n / wall, "cpu_ms": 1000 * cpu / n,
            "cpu_ms_p50": 1000 * statistics.median(per), "cpu_ms_max": 1000 * max(per),
            "parses": len(calls), "parse_cpu_s": sum(calls),
            "data_bytes_avg": statistics.mean(sizes) if sizes else 0, "sample": sample}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--crier", type=Path, help="another checkout whose `bot` is measured")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--sample", action="store_true", help="print one baseline's stored data")
    p.add_argument("--profile", help="write a cProfile of the polls here (+ .sqlite/.pg)")
    args = p.parse_args()
    _setup_path(args.crier)
    import logging
    logging.disable(logging.WARNING)

    from bench.scalefeeds import FeedSet
    from tests.fakes.feed_server import FeedServer

    with tempfile.TemporaryDirectory(prefix="crier-baseline-") as d:
        tmp = Path(d)
        fs = FeedSet(tmp, args.feeds + 1)
        fs.generate(time.monotonic() + 600)
        pg = None
        with FeedServer() as srv:
            for k in range(fs.n):
                srv.set_feed(fs.url_path(k), fs.path(k).read_bytes())
            urls = [srv.url + fs.url_path(k) for k in range(fs.n)]
            dbs = []
            if not args.no_sqlite:
                dbs.append(("sqlite", f"sqlite:///{tmp / 'crier.db'}"))
            try:
                if not args.no_postgres:
                    from tests.pg import PostgresServer
                    pg = PostgresServer()
                    pg.start()
                    dbs.append(("postgresql", pg.new_database()))
                import bot
                print(f"crier: {Path(bot.__file__).parent.parent}; {args.feeds} shows, "
                      f"{sum(fs.items[1:])} episodes, {fs.bytes_written / 1e6:.1f} MB of feeds")
                print("| database | baselines/s | wall s | CPU ms/baseline (p50, max) | "
                      "feedparser calls (CPU s) | episode data bytes (avg) |")
                print("|---|---|---|---|---|---|")
                for name, url in dbs:
                    r = run_one(url, urls, args.profile and f"{args.profile}.{name}", tmp)
                    print(f"| {name} | {r['per_s']:.1f} | {r['wall_s']:.1f} | "
                          f"{r['cpu_ms']:.1f} ({r['cpu_ms_p50']:.1f}, {r['cpu_ms_max']:.1f}) | "
                          f"{r['parses']} ({r['parse_cpu_s']:.1f}) | "
                          f"{r['data_bytes_avg']:.0f} |", flush=True)
                    if args.sample:
                        print(json.dumps(r["sample"], indent=1))
            finally:
                if pg is not None:
                    pg.stop()


if __name__ == "__main__":
    main()
