"""The crash harness (tests/test_crash.py runs it short; bench/soak.py runs it long).

The real `crier` runs as subprocesses against the local feed, Mastodon and X servers, with
random faults on the platforms. The feed gains episodes and promos are queued while workers
(`crier run`) and one-shot runs (`crier run --once`) are killed with SIGKILL at random moments
and restarted (with `workers` > 1, on PostgreSQL: that many processes at once, each killed
at the same random moment). At the end the faults stop, crier runs until nothing is pending,
and every episode and promo must be on every account exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.chaos import Chaos  # noqa: E402
from tests.fakes.feed_server import FeedServer  # noqa: E402
from tests.fakes.mastodon_server import MastodonServer  # noqa: E402
from tests.fakes.x_server import XServer  # noqa: E402
from tests.feedgen import item, rss  # noqa: E402

TOKEN = "crash-token"
KEYS = dict(consumer_key="ck", consumer_secret="cs", access_token="1-at",
            access_token_secret="ats")


def _config(path: Path, feed: str, masto: str, x: str) -> None:
    path.write_text(f"""
show = "Crash Show"
feed = "{feed}"
poll_interval = 60
dispatch_interval = 1
max_attempts = 50
first_run_backfill = 0

[promos]
min_gap = 0
grace = "24h"

[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{masto}"
timeout = 1

[[accounts]]
platform = "x"
name = "bird"
api_base = "{x}"
timeout = 1

[podping]
enabled = false  # no Hive node beyond loopback in tests
""")


def _engine(db_url: str):
    import sqlalchemy as sa
    return sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1)
                            if db_url.startswith("postgresql://") else db_url)


def _age(db_url: str) -> None:
    """Let time pass for crier: retries due now, leases of killed processes expired."""
    from bot.store import deliveries, feeds, locks
    engine = _engine(db_url)
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(deliveries.update().where(deliveries.c.status == "pending").values(
            next_attempt_at=now - timedelta(seconds=1)))
        c.execute(deliveries.update().where(deliveries.c.status == "pending",
                                            deliveries.c.claim_token.is_not(None)).values(
            claimed_at=now - timedelta(hours=1)))  # batch leases of killed workers
        c.execute(feeds.update().values(poll_lease_until=now - timedelta(seconds=1)))
        c.execute(deliveries.update().where(deliveries.c.status == "sending").values(
            claimed_at=now - timedelta(hours=1)))
        c.execute(locks.delete())
    engine.dispose()


def _open(db_url: str) -> dict:
    import sqlalchemy as sa

    from bot.store import deliveries
    engine = _engine(db_url)
    with engine.begin() as c:
        rows = c.execute(sa.select(deliveries.c.status, sa.func.count()).group_by(
            deliveries.c.status)).all()
    engine.dispose()
    return dict(rows)


def run(db_url: str, tmp: Path, *, kills: int, seed: int = 1, fault_rate: float = 0.3,
        workers: int = 1, log=lambda *a: None) -> dict:
    """Returns the numbers; raises AssertionError when anything is lost or doubled."""
    rng = random.Random(seed)
    with FeedServer() as feed, MastodonServer(token=TOKEN, max_characters=500) as masto, \
            XServer(**KEYS, username="CrashShow", user_id="1") as x:
        masto.chaos = Chaos(fault_rate, seed=seed, client_timeout=1.0)
        x.chaos = Chaos(fault_rate, seed=seed + 1, client_timeout=1.0)
        items = [item(n) for n in range(1, 4)]
        feed.set_feed("/feed.xml", rss(items))
        cfg = tmp / "crier.toml"
        _config(cfg, f"{feed.url}/feed.xml", masto.url, x.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update({"CRIER_CONFIG": str(cfg), "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT),
                    "CRIER_MASTO_ACCESS_TOKEN": TOKEN,
                    **{f"CRIER_BIRD_{k.upper()}": v for k, v in KEYS.items()}})
        crier = [sys.executable, "-m", "bot"]

        def once(*args, timeout=120) -> subprocess.CompletedProcess:
            return subprocess.run(crier + list(args), env=env, cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout)

        first = once("run", "--once")
        assert first.returncode == 0, first.stderr
        episodes: list[str] = []
        promos: list[str] = []
        killed = 0
        started = time.monotonic()
        while killed < kills:
            roll = rng.random()
            if roll < 0.25:  # a new episode, read by a one-shot run we may kill
                n = len(items) + 1
                items.append(item(n, published=datetime.now(UTC) - timedelta(minutes=1)))
                episodes.append(items[-1].title)
                feed.set_feed("/feed.xml", rss(items))
                args = ["run", "--once"]
            elif roll < 0.4:  # the host queues a promo (that command is not killed)
                text = f"Promo {len(promos) + 1}: listen to Crash Show"
                out = once("queue", "add", text, "--in", "1s")
                assert out.returncode == 0, out.stderr + out.stdout
                promos.append(text)
                continue
            else:
                args = ["run"]
            procs = [subprocess.Popen(crier + (args if i == 0 else ["run"]), env=env, cwd=tmp,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(workers)]
            time.sleep(rng.choice((rng.uniform(0.05, 0.8), rng.uniform(0.8, 3.0))))
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    killed += 1
            for proc in procs:
                proc.wait()
            log(f"kill {killed}/{kills}: {len(episodes)} episodes, {len(promos)} promos, "
                f"faults {sum(masto.chaos.counts.values()) + sum(x.chaos.counts.values())}")
        # the end: no more faults; crier catches up, and the host releases what the flood
        # guard held (several episodes read in one poll, the runs before killed)
        masto.chaos.enabled = x.chaos.enabled = False
        held = 0
        for _ in range(30):
            _age(db_url)
            out = once("run", "--once")  # polls (force) and dispatches
            assert out.returncode == 0, out.stderr
            released = once("release", "--all")
            assert released.returncode == 0, released.stderr
            if released.stdout.startswith("Released"):
                held += int(released.stdout.split()[1])
                continue
            left = {k: v for k, v in _open(db_url).items() if k in ("pending", "sending")}
            if not left:
                break
        else:
            raise AssertionError(f"still pending after catching up: {left}")
        statuses = Counter(s["text"] for s in masto.statuses)
        tweets = Counter(t["text"] for t in x.tweets)
        report = {"workers": workers, "kills": killed, "episodes": len(episodes),
                  "promos": len(promos),
                  "held_by_flood_guard_then_released": held,
                  "mastodon_posts": len(masto.statuses), "x_posts": len(x.tweets),
                  "faults": dict(masto.chaos.counts + x.chaos.counts),
                  "seconds": round(time.monotonic() - started, 1)}
        doubled = [(name, t) for name, posted in (("mastodon", statuses), ("x", tweets))
                   for t, c in posted.items() if c > 1]
        lost = []
        for title in episodes:
            for name, posted in (("mastodon", statuses), ("x", tweets)):
                hits = [t for t in posted if title in t]
                if len(hits) != 1:
                    lost.append((name, title, len(hits)))
        for text in promos:
            for name, posted in (("mastodon", statuses), ("x", tweets)):
                if posted.get(text, 0) != 1:
                    lost.append((name, text, posted.get(text, 0)))
        report.update(duplicates=len(doubled), lost=len(lost))
        failed = [d for d, n in _open(db_url).items() if d == "failed" and n]
        assert not doubled, f"posted twice: {doubled}"
        assert not lost, f"lost or doubled: {lost}"
        assert not failed, f"failed deliveries: {_open(db_url)}"
        return report
