"""The fleet crash harness: many shows, several `crier run` workers on one PostgreSQL database,
each worker killed (SIGKILL) and restarted at its own random moments (tests/test_crash.py).

Every show has its own feed (a path on one local feed server) and its own accounts: one local
Mastodon server and one local X server per show (the fakes know one token / one user each), with
random platform faults; during the kills the feed server answers slowly (SLOW), so workers
that poll at once meet on the same feeds (without the poll lease, this test fails). New
episodes appear on random shows during the run. At the end the faults stop, time is moved on
in the database (retries and polls due, leases of killed workers expired), `crier run --once`
catches up, and then:

- every episode is on each account of its own show exactly once, and on no other show's account;
- no feed was polled twice in one cycle. A feed's cycle is its poll interval: after a poll, the
  feed is next due no sooner than 0.8 × poll_interval later (bot.polling.next_poll_at), so two
  GETs of one feed path at the feed server closer than that (less a second for the time between
  a poll's clock reading and its GET) are a feed polled twice in one cycle. A poll killed
  mid-way keeps its lease (two minutes), longer than a cycle, so it is no excuse. The
  catch-up rounds follow a jump in time; there each `run --once` round may GET a feed at most once.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.crash import KEYS, ROOT, _age, _engine, _open
from tests.fakes.chaos import Chaos
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.feedgen import item, rss

POLL_INTERVAL = 60
CYCLE = 0.8 * POLL_INTERVAL - 1.0   # the shortest gap allowed between two GETs of one feed
SLOW = 0.3                          # seconds the feed server takes per feed during the kills
TAG = re.compile(r"\[s(\d+)-e(\d+)\]")


def _title(show: int, n: int) -> str:
    return f"[s{show:02d}-e{n:03d}] talking about topic {n}"


def _config(path: Path, feed_url: str, mastos: list, xs: list) -> None:
    parts = ["dispatch_interval = 1\nmax_attempts = 50\n"]
    for i, (m, x) in enumerate(zip(mastos, xs, strict=True)):
        parts.append(f"""
[[shows]]
show = "Fleet Show {i:02d}"
slug = "s{i:02d}"
feed = "{feed_url}/s{i:02d}.xml"
poll_interval = {POLL_INTERVAL}
first_run_backfill = 0
max_new_per_poll = 50

[[shows.accounts]]
platform = "mastodon"
name = "m{i:02d}"
instance = "{m.url}"
timeout = 1

[[shows.accounts]]
platform = "x"
name = "x{i:02d}"
api_base = "{x.url}"
timeout = 1
""")
    parts.append("\n[podping]\nenabled = false  # no Hive node beyond loopback in tests\n")
    path.write_text("".join(parts))


def _make_due(db_url: str) -> None:
    """Time moves on: every feed is due (the catch-up rounds)."""
    from bot.store import feeds
    engine = _engine(db_url)
    with engine.begin() as c:
        c.execute(feeds.update().values(next_poll_at=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()


def run(db_url: str, tmp: Path, *, shows: int = 50, workers: int = 3, seconds: float = 70,
        seed: int = 1, fault_rate: float = 0.1, log=lambda *a: None) -> dict:
    """Returns the numbers; raises AssertionError when anything is lost, doubled, misplaced or
    a feed was polled twice in one cycle."""
    rng = random.Random(seed)
    with ExitStack() as stack:
        feed = stack.enter_context(FeedServer())
        mastos, xs = [], []
        for i in range(shows):
            m = stack.enter_context(MastodonServer(token=f"tok-{i}", max_characters=500,
                                                   username=f"show{i}"))
            x = stack.enter_context(XServer(**KEYS, username=f"Show{i}", user_id=str(i + 1)))
            m.chaos = Chaos(fault_rate, seed=seed * 1000 + i, client_timeout=1.0)
            x.chaos = Chaos(fault_rate, seed=seed * 2000 + i, client_timeout=1.0)
            mastos.append(m)
            xs.append(x)
        items = {i: [item(n, title=_title(i, n)) for n in range(1, 3)] for i in range(shows)}
        for i in range(shows):
            feed.set_feed(f"/s{i:02d}.xml", rss(items[i], title=f"Fleet Show {i:02d}"))
        cfg = tmp / "crier.toml"
        _config(cfg, feed.url, mastos, xs)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update({"CRIER_CONFIG": str(cfg), "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)})
        for i in range(shows):
            env[f"CRIER_M{i:02d}_ACCESS_TOKEN"] = f"tok-{i}"
            env.update({f"CRIER_X{i:02d}_{k.upper()}": v for k, v in KEYS.items()})
        crier = [sys.executable, "-m", "bot"]

        def once(*args, timeout=180) -> subprocess.CompletedProcess:
            return subprocess.run(crier + list(args), env=env, cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout)

        chaos_from = len(feed.arrivals)  # the first run's polls start every feed's first cycle
        first = once("run", "--once")   # every show on its first run: the baseline
        assert first.returncode == 0, first.stderr[-3000:]
        for i in range(shows):  # a slow host: each poll holds its lease a while, so workers
            feed.delay(f"/s{i:02d}.xml", SLOW)  # polling at once meet on the same feeds
        logs = [open(tmp / f"worker-{k}.log", "ab") for k in range(workers)]  # noqa: SIM115
        stack.callback(lambda: [f.close() for f in logs])

        def start(k: int):
            return (subprocess.Popen(crier + ["run"], env=env, cwd=tmp, stdout=logs[k],
                                     stderr=logs[k]),
                    time.monotonic() + rng.uniform(0.3, 8.0))

        episodes: list[tuple[int, str]] = []
        started = time.monotonic()
        procs = [start(k) for k in range(workers)]
        kills, next_episode = 0, started + rng.uniform(0.5, 3)
        try:
            while time.monotonic() - started < seconds:
                now = time.monotonic()
                if now >= next_episode:  # a new episode on a random show
                    i = rng.randrange(shows)
                    n = len(items[i]) + 1
                    items[i].append(item(n, title=_title(i, n),
                                         published=datetime.now(UTC) - timedelta(minutes=1)))
                    episodes.append((i, _title(i, n)))
                    feed.set_feed(f"/s{i:02d}.xml", rss(items[i], title=f"Fleet Show {i:02d}"))
                    next_episode = now + rng.uniform(0.5, 3)
                for k, (proc, until) in enumerate(procs):
                    if now >= until:    # each worker dies at its own moment, and comes back
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        kills += 1
                        procs[k] = start(k)
                time.sleep(0.05)
        finally:
            for proc, _ in procs:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        chaos_gets = [(t, p) for t, p in feed.arrivals[chaos_from:]]
        log(f"{kills} kills, {len(episodes)} episodes, {len(chaos_gets)} feed GETs")
        # the end: no more faults; time moves on; crier catches up
        for srv in mastos + xs:
            srv.chaos.enabled = False
        for i in range(shows):
            feed.delay(f"/s{i:02d}.xml", 0)
        twice_in_round = []
        for _ in range(20):
            _age(db_url)
            _make_due(db_url)
            mark = len(feed.arrivals)
            out = once("run", "--once")
            assert out.returncode == 0, out.stderr[-3000:]
            per = Counter(p for _t, p in feed.arrivals[mark:])
            twice_in_round += [(p, c) for p, c in per.items() if c > 1]
            left = {k: v for k, v in _open(db_url).items() if k in ("pending", "sending")}
            if not left:
                break
        else:
            raise AssertionError(f"still pending after catching up: {left}")
        # no feed polled twice in one cycle (see the module docstring)
        gets = defaultdict(list)
        for t, p in chaos_gets:
            gets[p].append(t)
        too_close = [(p, round(b - a, 2)) for p, ts in gets.items()
                     for a, b in zip(ts, ts[1:], strict=False) if b - a < CYCLE]
        second_cycle = sum(1 for ts in gets.values() if len(ts) >= 2)
        # every episode exactly once on each account of its own show, never on another's
        wrong, counts = [], []
        for i in range(shows):
            for name, posted in ((f"m{i:02d}", [s["text"] for s in mastos[i].statuses]),
                                 (f"x{i:02d}", [t["text"] for t in xs[i].tweets])):
                for text in posted:
                    for show, _n in TAG.findall(text):
                        if int(show) != i:
                            wrong.append((name, text[:60]))
                mine = [title for s, title in episodes if s == i]
                for title in mine:
                    c = sum(1 for text in posted if title in text)
                    if c != 1:
                        counts.append((name, title, c))
                announced = sum(1 for text in posted if TAG.search(text))
                if announced != len(mine):
                    counts.append((name, "posts", announced, len(mine)))
        report = {"shows": shows, "workers": workers, "kills": kills, "episodes": len(episodes),
                  "feed_gets_during_kills": len(chaos_gets),
                  "feeds_polled_in_two_cycles": second_cycle,
                  "mastodon_posts": sum(len(m.statuses) for m in mastos),
                  "x_posts": sum(len(x.tweets) for x in xs),
                  "faults": sum(sum(s.chaos.counts.values()) for s in mastos + xs),
                  "seconds": round(time.monotonic() - started, 1)}
        assert not too_close, f"feeds polled twice in one cycle: {too_close[:10]}"
        assert not twice_in_round, f"feeds polled twice in one catch-up round: {twice_in_round}"
        assert not wrong, f"posted on another show's account: {wrong[:10]}"
        assert not counts, f"lost or doubled: {counts[:20]}"
        failed = _open(db_url).get("failed", 0)
        assert not failed, f"failed deliveries: {_open(db_url)}"
        return report
