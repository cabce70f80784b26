"""Seconds from an episode's publication to its posts on Mastodon and X, by how crier hears of it:
a WebSub notification, a podping, or polling alone (issue 17).

    python bench/latency.py                               # 20 runs of each mode
    python bench/latency.py --modes websub podping --runs 20
    python bench/latency.py --modes polling --runs 10 --poll-interval 60

Everything on 127.0.0.1, in this process's threads: the feed server (tests/fakes/feed_server),
the WebSub hub (tests/fakes/websub_hub), the Hive API node (tests/fakes/hive_server, made to
produce a block every 3 s as Hive does: a ping lands in the next block), the Mastodon and X
servers (tests/fakes); and one real `crier run --web --port P` subprocess per mode on a fresh
SQLite database (the worker and the control room that serves the WebSub callback).

A run: the feed gains an episode dated now (t0 = that moment), then the host's notification
goes out (websub: the hub is told to publish the topic, which fetches the feed and POSTs it,
signed, to crier's callback; podping: the ping is queued for the next Hive block; polling:
nothing), and the bench watches the two servers until both posts exist (checked every 10 ms).
Latency = the moment each post is seen - t0. Between runs a random pause (push: 0-3 s;
polling: 0-interval, so a publication falls anywhere in the poll cycle).

In the push modes the safety-net poll is the default 15 minutes. `min_poll_interval` is set
to the poll interval in every mode: the runs publish many episodes within one hour, from
which adaptive polling would learn a "usual release hour" and poll every minute in it; with
the two equal it polls as crier always did, so the push modes measure the push (each run
checks that the worker's feed row says the poll came from it: `last_push_via`) and polling
alone measures the plain interval. Polling alone runs at `--poll-interval` (default 900 s,
the default interval); a shorter one is said so in the output.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.feed_server import FeedServer  # noqa: E402
from tests.fakes.mastodon_server import MastodonServer  # noqa: E402
from tests.fakes.x_server import XServer  # noqa: E402
from tests.feedgen import item, rss  # noqa: E402

TOKEN = "latency-token"
X_KEYS = dict(consumer_key="ck", consumer_secret="cs", access_token="1-at",
              access_token_secret="ats")
MODES = ("websub", "podping", "polling")
BLOCK_SECONDS = 3.0
PUSH_TIMEOUT = 120.0


def log(*parts) -> None:
    print("…", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of values."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


class BlockProducer:
    """The Hive chain's pace: a block every 3 s, holding the pings queued since the last."""

    def __init__(self, hive):
        self.hive, self.queued, self.lock = hive, [], threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def ping(self, iri: str) -> None:
        with self.lock:
            self.queued.append(iri)

    def _run(self) -> None:
        while not self.stop.wait(BLOCK_SECONDS):
            with self.lock:
                iris, self.queued = self.queued, []
            if iris:
                self.hive.ping(iris)
            else:
                self.hive.advance(1)


class Bench:
    def __init__(self, mode: str, tmp: Path, feed, masto, x, *, hub=None, hive=None,
                 interval: int = 900):
        self.mode, self.tmp, self.feed, self.masto, self.x = mode, tmp, feed, masto, x
        self.hub, self.hive, self.interval = hub, hive, interval
        self.path = f"/{mode}.xml"
        self.url = feed.url + self.path
        self.items = [item(n, published=datetime.now(UTC).replace(microsecond=0)
                           - timedelta(days=9 * n, hours=n * 5 % 24, minutes=n * 7))
                      for n in range(1, 6)]
        self.n = 100
        self.port = free_port()
        self.db = tmp / f"{mode}.db"
        self.proc: subprocess.Popen | None = None
        self.producer = BlockProducer(hive) if mode == "podping" else None

    def publish(self) -> None:
        body = rss(self.items, title=f"Latency {self.mode}")
        if self.mode == "websub":
            body = body.replace(b'<rss version="2.0" ',
                                b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" ',
                                1).replace(b"<description>A show.</description>", (
                f'<description>A show.</description><atom:link rel="hub" href="{self.hub.url}"/>'
                f'<atom:link rel="self" href="{self.url}"/>').encode(), 1)
        self.feed.set_feed(self.path, body)

    def config(self) -> Path:
        cfg = self.tmp / f"{self.mode}.toml"
        podping = (f'[podping]\nenabled = true\nnodes = ["{self.hive.url}"]\n'
                   if self.mode == "podping" else "[podping]\nenabled = false\n")
        cfg.write_text(f"""
show = "Latency {self.mode}"
feed = "{self.url}"
poll_interval = {self.interval}
min_poll_interval = {self.interval}
dispatch_interval = 5
allow_private_networks = ["127.0.0.1/32"]   # the hub the feed names is on this machine
{f'public_url = "http://127.0.0.1:{self.port}"' if self.mode == "websub" else ""}
{podping}
[promos]
min_gap = 0

[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{self.masto.url}"
timeout = 5

[[accounts]]
platform = "x"
name = "bird"
api_base = "{self.x.url}"
timeout = 5
""")
        return cfg

    def start(self) -> None:
        self.publish()
        cfg = self.config()
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{self.db}",
                   CRIER_MASTO_ACCESS_TOKEN=TOKEN, PYTHONPATH=str(ROOT),
                   **{f"CRIER_BIRD_{k.upper()}": v for k, v in X_KEYS.items()})
        env.pop("CRIER_CONFIG", None)
        self.logfile = open(self.tmp / f"{self.mode}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "-c", str(cfg), "run", "--web", "--port",
             str(self.port)], cwd=ROOT, env=env, stdout=self.logfile, stderr=subprocess.STDOUT)
        self._wait(lambda: self._row("SELECT baseline_done FROM feeds") == 1, 120,
                   "the first poll")
        if self.mode == "websub":
            self._wait(lambda: self._row("SELECT state FROM websub_subscriptions") == "active",
                       60, "the WebSub subscription")
        if self.mode == "podping":
            self._wait(lambda: self._row("SELECT position FROM push_cursors WHERE name = "
                                         "'podping'") is not None, 60, "the podping watcher")
        time.sleep(1.0)

    def fail(self, msg: str):
        """Stop with `msg` and the end of the worker's log (the temporary folder goes)."""
        self.logfile.flush()
        tail = (self.tmp / f"{self.mode}.log").read_text(errors="replace").splitlines()[-25:]
        raise SystemExit(f"{self.mode}: {msg}\n--- crier run's log, last lines:\n"
                         + "\n".join(tail))

    def _row(self, sql: str):
        if self.proc.poll() is not None:
            self.fail(f"crier run exited ({self.proc.returncode})")
        try:
            with sqlite3.connect(self.db, timeout=1) as c:
                r = c.execute(sql).fetchone()
        except sqlite3.Error:
            return None
        return r[0] if r else None

    def _wait(self, cond, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(0.05)
        self.fail(f"timed out waiting for {what}")

    def run_once(self) -> tuple[float, float]:
        """One publication: (seconds to the Mastodon post, seconds to the X post)."""
        self.n += 1
        title = f"Latency {self.mode} episode {self.n}"
        now = datetime.now(UTC)
        self.items.append(item(self.n, published=now.replace(microsecond=0), title=title))
        pushed_before = self._row("SELECT last_push_at FROM feeds")
        t0 = time.monotonic()
        self.publish()
        if self.mode == "websub":
            self.hub.publish(self.url)
        elif self.mode == "podping":
            self.producer.ping(self.url)
        limit = PUSH_TIMEOUT if self.mode != "polling" else self.interval * 1.2 + 60
        seen: dict[str, float] = {}
        while len(seen) < 2:
            if time.monotonic() - t0 > limit:
                self.fail(f"episode {self.n} not posted within {limit:.0f} s")
            if "m" not in seen and any(title in s["text"] for s in self.masto.statuses):
                seen["m"] = time.monotonic() - t0
            if "x" not in seen and any(title in t["text"] for t in self.x.tweets):
                seen["x"] = time.monotonic() - t0
            time.sleep(0.01)
        if self.mode != "polling":  # the poll that found it was this run's push
            via, at = self._row("SELECT last_push_via || ' ' || last_push_at FROM feeds"
                                ).split(" ", 1)
            if via != self.mode or at == pushed_before:
                self.fail(f"the feed row says the last push was {via} at {at}")
        return seen["m"], seen["x"]

    def stop(self) -> None:
        if self.producer:
            self.producer.stop.set()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    ap.add_argument("--runs", type=int, default=20, help="runs of each push mode")
    ap.add_argument("--polling-runs", type=int, default=None,
                    help="runs of polling alone (default: --runs)")
    ap.add_argument("--poll-interval", type=int, default=900,
                    help="poll_interval of polling alone, seconds (default 900: the default)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    results: dict[str, tuple[list[float], list[float]]] = {}
    from contextlib import ExitStack
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="crier-latency-") as tmp:
        feed = stack.enter_context(FeedServer())
        hub = hive = None
        if "websub" in a.modes:
            from tests.fakes.websub_hub import WebSubHub
            hub = stack.enter_context(WebSubHub(algorithm="sha256", default_lease=3600))
        if "podping" in a.modes:
            from tests.fakes.hive_server import HiveServer
            hive = stack.enter_context(HiveServer(writers=("podping.test",)))
        for mode in a.modes:
            push = mode != "polling"
            interval = 900 if push else a.poll_interval
            runs = a.runs if push or a.polling_runs is None else a.polling_runs
            # fresh platforms a mode: each mode's database starts its deliveries' ids (and so
            # their Idempotency-Keys) from 1, which Mastodon would answer with the old post
            masto = stack.enter_context(MastodonServer(token=TOKEN, max_characters=500))
            x = stack.enter_context(XServer(**X_KEYS, username="LatencyShow"))
            b = Bench(mode, Path(tmp), feed, masto, x, hub=hub, hive=hive, interval=interval)
            log(f"{mode}: starting crier run --web (poll_interval {interval} s)")
            try:
                b.start()
                ms, xs = [], []
                for i in range(runs):
                    time.sleep(rng.uniform(0, 3.0) if push else rng.uniform(0, interval))
                    m, xx = b.run_once()
                    ms.append(m)
                    xs.append(xx)
                    log(f"{mode} run {i + 1}/{runs}: Mastodon {m:.2f} s, X {xx:.2f} s")
            finally:
                b.stop()
            results[mode] = (ms, xs)
    print(f"\nPublication -> post seen, seconds ({os.cpu_count()} CPUs; one crier run --web "
          f"on SQLite; everything on 127.0.0.1)\n")
    print("| mode | runs | poll_interval | Mastodon p50 | p99 | max | X p50 | p99 | max |")
    print("|------|-----:|--------------:|------:|----:|----:|------:|----:|----:|")
    for mode, (ms, xs) in results.items():
        interval = 900 if mode != "polling" else a.poll_interval
        cells = [f"{f(v):.2f}" for v in (ms, xs)
                 for f in (statistics.median, lambda v: pct(v, 0.99), max)]
        print(f"| {mode} | {len(ms)} | {interval} s | " + " | ".join(cells) + " |")
    if "polling" in results and a.poll_interval != 900:
        print(f"\npolling alone ran at poll_interval = {a.poll_interval} s, not the default "
              "900 s: its latency scales with the interval (at most one interval).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
