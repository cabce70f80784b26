"""crier's own workers against bench/scale.py's feeds: `crier shows import` of N show files,
then 1 / 2 / 4 `crier run` processes on the bench's PostgreSQL, measured per cycle.

How each number is read (nothing in crier is changed for it):
- polls: nginx's access log (`$msec $status $uri`, written when the answer is sent) gives
  every feed request with its time; polls/s = requests in the measured window / its length;
- due time: the feeds table's `next_poll_at`, read every SNAPSHOT seconds (all rows first, then
  the rows polled since the last read); a request's due time is the value its feed had in the
  last snapshot before it; lateness = request time - due;
- CPU per poll: the workers' utime + stime (/proc/PID/stat) over the window / polls;
- RSS: each worker's VmHWM (/proc/PID/status) before it is stopped; the largest is reported;
- delivery: deliveries -> posts -> episodes (guid) -> feeds (url); `sent_at` of each dry-run
  delivery minus the time the feed file gained the episode (scalefeeds.Change.at); exactly
  once: each new episode has one delivery per account (two accounts a show) and no other
  episode was delivered.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNAPSHOT = 2.0
WARMUP = 20.0
CAUGHT_UP = 10.0      # s: a later start is measured once no feed is more overdue than this
CATCH_UP_MAX = 300.0  # s: ... or after this long (the report says so)
ACCOUNTS = 2  # write_show_file: one dry-run Mastodon and one dry-run X account a show


def log(*parts) -> None:
    print("…", *parts, file=sys.stderr, flush=True)


def _proc_cpu(pid: int) -> float:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _hwm_mb(pid: int) -> float:
    try:
        for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def _epoch(ts) -> float:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


def _knows(key: str) -> bool:
    """Whether this checkout's crier has a config key (passed through only then)."""
    return any(key in (ROOT / "bot" / f).read_text() for f in ("config.py", "deployment.py"))


class CrierState:
    """One N: its show files, config, imported registry; kept across 1, 2 and 4 workers."""

    def __init__(self, ctx, poll_interval: int, engine) -> None:
        self.ctx, self.interval, self.engine = ctx, poll_interval, engine
        self.import_s: float | None = None
        self.baselined = False
        self.url_k = {ctx.base_url + ctx.feeds.url_path(k): k for k in range(ctx.feeds.n)}
        self.path_k = {ctx.feeds.url_path(k): k for k in range(ctx.feeds.n)}

    def env(self) -> dict:
        return {**os.environ, "DATABASE_URL": self.ctx.database_url,
                "CRIER_CONFIG": str(self.ctx.tmp / "crier.toml"), "PYTHONPATH": str(ROOT)}

    def prepare(self) -> None:
        from scalefeeds import write_show_file
        ctx = self.ctx
        folder = ctx.tmp / "shows"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(ctx.feeds.n):
            p = write_show_file(folder, k, ctx.base_url + ctx.feeds.url_path(k))
            p.write_text(p.read_text().replace('poll_interval = "5m"',
                                               f"poll_interval = {self.interval}"))
        extra = "".join(f"{key} = {val}\n" for key, val in
                        (("max_polls_in_flight", 32), ("max_polls_per_host", 4)) if _knows(key))
        (ctx.tmp / "crier.toml").write_text(
            f'include = ["none/*.toml"]\ndispatch_interval = 5\n{extra}')
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bot", "shows", "import", str(folder)],
                           env=self.env(), cwd=ctx.tmp, capture_output=True, text=True,
                           timeout=900)
        self.import_s = time.perf_counter() - t
        if r.returncode:
            raise RuntimeError(f"crier shows import failed: {(r.stdout + r.stderr)[-800:]}")
        log(f"crier shows import of {ctx.feeds.n} files: {self.import_s:.1f} s: "
            f"{r.stdout.strip()[-200:]}")

    def snapshot(self, since: float | None = None) -> dict[int, float]:
        """Each feed's next_poll_at; with `since` (epoch s), only the feeds polled since then
        (at 100,000 feeds, reading every row every SNAPSHOT s would cost the bench a core)."""
        from datetime import datetime

        import sqlalchemy as sa
        q, params = "SELECT url, next_poll_at FROM feeds", {}
        if since is not None:
            q += " WHERE last_poll_at >= :since"
            params["since"] = datetime.fromtimestamp(since, UTC)
        with self.engine.connect() as c:
            rows = c.execute(sa.text(q), params).all()
        return {self.url_k[u]: _epoch(n) for u, n in rows if n is not None and u in self.url_k}

    def baselined_count(self) -> int:
        import sqlalchemy as sa
        with self.engine.connect() as c:
            return c.execute(sa.text("SELECT count(*) FROM feeds WHERE baseline_done")).scalar()

    def most_overdue(self) -> float:
        """How long the most overdue active feed has been due, in seconds (0: none is)."""
        import sqlalchemy as sa
        with self.engine.connect() as c:
            oldest = c.execute(sa.text("SELECT min(next_poll_at) FROM feeds WHERE active "
                                       "AND next_poll_at IS NOT NULL")).scalar()
        return max(0.0, time.time() - _epoch(oldest)) if oldest is not None else 0.0

    def deliveries(self) -> list[tuple]:
        import sqlalchemy as sa
        q = sa.text("SELECT e.guid, d.account, d.status, d.sent_at FROM deliveries d "
                    "JOIN posts p ON p.id = d.post_id JOIN episodes e ON e.id = p.episode_id")
        with self.engine.connect() as c:
            return c.execute(q).all()


def _start(state: CrierState, workers: int) -> list[subprocess.Popen]:
    procs = []
    profile = os.environ.get("CRIER_BENCH_PROFILE")  # a file: worker 0 runs under yappi
    for i in range(workers):
        out = open(state.ctx.tmp / f"worker-{workers}-{i}.log", "ab")
        cmd = ([str(HERE / "profworker.py"), f"{profile}.{workers}", "run"] if profile and i == 0
               else ["-m", "bot", "run"])
        procs.append(subprocess.Popen([sys.executable, *cmd],
                                      env=state.env(),
                                      cwd=state.ctx.tmp, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        out.close()
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _access(state: CrierState, log_path: Path, t0: float, t1: float) -> list[tuple[float, int]]:
    out = []
    try:
        text = log_path.read_text()
    except OSError:
        return out
    for ln in text.splitlines():
        parts = ln.split()
        if len(parts) == 3 and t0 <= float(parts[0]) <= t1 and parts[2] in state.path_k:
            out.append((float(parts[0]), state.path_k[parts[2]]))
    return out


def run_workers(state: CrierState, workers: int, access_log: Path, rng, children: list,
                result_cls):
    """Start `workers` workers, baseline (first time), measure ctx.cycles cycles, stop."""
    ctx, n = state.ctx, state.ctx.feeds.n
    procs = _start(state, workers)
    children.extend(procs)
    try:
        if not state.baselined:
            t = time.monotonic()
            deadline = t + max(600, n / 5)
            while state.baselined_count() < n:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"baseline incomplete: {state.baselined_count()}/{n}")
                time.sleep(2)
            state.baselined = True
            log(f"crier × {workers}: {n} feeds baselined in {time.monotonic() - t:.0f} s")
        else:
            time.sleep(WARMUP)  # the workers' start (imports, loading N shows) is not measured
            # and the feeds that fell due while no worker ran (the switch from the last
            # workers) are drained first: the measured cycle is the steady one
            t = time.monotonic()
            while state.most_overdue() > CAUGHT_UP and time.monotonic() - t < CATCH_UP_MAX:
                time.sleep(2)
            log(f"crier × {workers}: caught up with the switch's backlog in "
                f"{time.monotonic() - t:.0f} s (most overdue feed {state.most_overdue():.0f} s)")
        stats = []
        for c in range(ctx.cycles):
            changes = ctx.feeds.gain_episodes(0.01, rng)
            t0 = time.time()
            cpu0 = sum(_proc_cpu(p.pid) for p in procs)
            history: dict[int, list[tuple[float, float]]] = {}
            since = None
            while time.time() < t0 + state.interval:
                now = time.time()
                # a poll's row is written when its batch is released: look 10 s back
                snap, since = state.snapshot(since), now - 10
                for k, due in snap.items():
                    h = history.setdefault(k, [])
                    if not h or h[-1][1] != due:
                        h.append((now, due))
                time.sleep(SNAPSHOT)
            t1 = time.time()
            cpu = sum(_proc_cpu(p.pid) for p in procs) - cpu0
            time.sleep(1.5)  # nginx flushes its log every second
            polls = _access(state, access_log, t0, t1)
            late = []
            for at, k in polls:
                due = [d for seen, d in history.get(k, []) if seen < at]
                if due:
                    late.append(at - due[-1])
            # deliveries of this cycle's episodes: wait for them, bounded by another cycle
            want = {ch.guid: ch for ch in changes}
            deadline = time.time() + state.interval
            while True:
                rows = [r for r in state.deliveries() if r[0] in want]
                done = [r for r in rows if r[3] is not None]
                if len(done) >= ACCOUNTS * len(want) or time.time() > deadline:
                    break
                time.sleep(2)
            per: dict[tuple, int] = {}
            for r in rows:
                per[(r[0], r[1])] = per.get((r[0], r[1]), 0) + 1
            delays = [_epoch(r[3]) - want[r[0]].at for r in done]
            once = (len(per) == ACCOUNTS * len(want) and all(v == 1 for v in per.values())
                    and len(done) == len(rows))
            stats.append(dict(polls=len(polls), wall=t1 - t0, cpu=cpu, late=late,
                              delays=delays, once=once, missing=ACCOUNTS * len(want) - len(done)))
            log(f"crier × {workers} N={n} cycle {c}: {len(polls) / (t1 - t0):.1f} polls/s "
                f"(due: {n / state.interval:.1f}/s), CPU {cpu / max(1, len(polls)) * 1e3:.1f} "
                f"ms/poll, lateness p50 {_pct(late, .5):.1f} s p99 {_pct(late, .99):.1f} s, "
                f"delivered {len(done)}/{ACCOUNTS * len(want)}, delivery max "
                f"{max(delays, default=float('nan')):.1f} s, exactly once {once}")
        rss = max(_hwm_mb(p.pid) for p in procs)
        log(f"crier × {workers} N={n}: largest worker's peak RSS {rss:.0f} MB")
    finally:
        _stop(procs)
        for p in procs:
            if p in children:
                children.remove(p)
    all_rows = state.deliveries()
    seen: dict[tuple, int] = {}
    for r in all_rows:
        seen[(r[0], r[1])] = seen.get((r[0], r[1]), 0) + 1
    twice = sum(1 for v in seen.values() if v > 1)
    expected = {ch.guid for ch in ctx.feeds.changes}
    strays = {r[0] for r in all_rows} - expected
    late = [x for s in stats for x in s["late"]]
    delays = [x for s in stats for x in s["delays"]]
    polls = sum(s["polls"] for s in stats)
    return result_cls(
        workers=workers,
        polls_per_s=statistics.median(s["polls"] / s["wall"] for s in stats),
        cpu_per_poll_ms=sum(s["cpu"] for s in stats) / max(1, polls) * 1e3,
        lateness_p50_s=_pct(late, .5), lateness_p99_s=_pct(late, .99), rss_mb=rss,
        delivery_p50_s=_pct(delays, .5), delivery_max_s=max(delays, default=float("nan")),
        exactly_once=all(s["once"] for s in stats) and not twice and not strays,
        import_s=state.import_s,
        due_per_s=n / state.interval,
        missing=sum(s["missing"] for s in stats))
