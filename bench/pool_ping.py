"""Microbenchmark: what a PostgreSQL transaction of bot.store.Store costs with SQLAlchemy's
`pool_pre_ping` (a SELECT 1 round trip on every checkout, crier before issue 14) and with
crier's checks (`_PoolHealth`: a zero-timeout poll of the pooled socket; a ping only when the
socket has something to read or the connection sat idle past IDLE_PING).

    python bench/pool_ping.py                  # 20,000 transactions each way, 3 rounds

Starts a private PostgreSQL (tests/pg.py's way) and runs, in one thread, the same short
transaction (`store.tx()` with one indexed SELECT of the feeds table, as a worker does it many
times a poll) N times on a Store as it is and on the same Store with its engine rebuilt with
`pool_pre_ping=True`. Prints microseconds per transaction (wall and this process's CPU) for
each and the difference. Numbers only, not a test; PostgreSQL is removed on exit.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _loop(store, n: int, feed_id: int) -> tuple[float, float]:
    import sqlalchemy as sa

    from bot.store import feeds
    q = sa.select(feeds.c.id, feeds.c.next_poll_at).where(feeds.c.id == feed_id)
    w, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        with store.tx() as conn:
            conn.execute(q).first()
    return (time.perf_counter() - w) / n * 1e6, (time.process_time() - c) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20_000, help="transactions per run")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    import sqlalchemy as sa

    from bot.store import POOL_OVERFLOW, POOL_RECYCLE, Store
    from tests.pg import PostgresServer
    pg = PostgresServer()
    pg.start()
    try:
        url = pg.new_database()
        ours = Store(url)
        ours.migrate()
        feed_id = ours.ensure_feed("https://feeds.example.net/a.rss", datetime.now(UTC)).id
        pinged = Store(url)
        pinged.engine.dispose()
        pinged.engine = sa.create_engine(pinged.engine.url, pool_pre_ping=True,
                                         max_overflow=POOL_OVERFLOW, pool_recycle=POOL_RECYCLE)
        results: dict[str, list[tuple[float, float]]] = {"pool_pre_ping": [], "crier": []}
        for _ in range(args.rounds):
            for name, store in (("pool_pre_ping", pinged), ("crier", ours)):
                _loop(store, min(1000, args.n), feed_id)  # warm: pool filled, caches
                results[name].append(_loop(store, args.n, feed_id))
        print(f"{args.n} transactions (one SELECT each) x {args.rounds} rounds, one thread, "
              "PostgreSQL on 127.0.0.1; median of rounds")
        med = {k: sorted(v)[len(v) // 2] for k, v in results.items()}
        for name, (wall, cpu) in med.items():
            print(f"{name:<14} {wall:7.1f} us/tx wall  {cpu:7.1f} us/tx CPU")
        saved = med["pool_pre_ping"][0] - med["crier"][0]
        print(f"saved per transaction: {saved:.1f} us wall "
              f"({saved / med['pool_pre_ping'][0] * 100:.0f}%), "
              f"{med['pool_pre_ping'][1] - med['crier'][1]:.1f} us CPU; "
              f"pings by crier's check: {ours.pool_health.pings}")
        ours.close()
        pinged.close()
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
