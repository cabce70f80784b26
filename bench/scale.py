"""Benchmark: many shows' feeds on one machine — the bare floor, and crier's workers.

    python bench/scale.py                       # N = 1,000 and 10,000 feeds (a few minutes)
    python bench/scale.py --feeds 100000        # 100,000 feeds (~5 GB of files in /tmp)
    python bench/scale.py --feeds 1000 --cycles 1 --no-postgres   # a quick smoke run

Generates N small Buzzsprout-like feeds (10-50 items; bench/scalefeeds.py) as static files in
a temporary folder and serves them with a private nginx on 127.0.0.1 (bench/nginx.py: Debian's
nginx, installed with apt-get when missing; its own config, pid and logs in the temporary
folder), after checking that a conditional GET gets a 304. Before every cycle but the first,
1% of the feeds gain an episode (new ETag and Last-Modified). A private PostgreSQL is started
for the crier measurement (tests/pg.py's way; `--no-postgres` skips it).

The bare floor: a client doing only the conditional GETs (If-None-Match / If-Modified-Since
from its previous answer) for all N feeds, each cycle as fast as it can, in a child process
(bench/floorclient.py): aiohttp with bounded concurrency, requests in one thread, and a thread
pool over requests. Per client: polls per second sustained over a whole cycle, CPU per poll
(the client process's CPU time / polls; nginx's separately), p50/p99 latency, peak RSS, and the
200 and 304 counts, checked against the feeds that changed (exactly those answer 200).

crier itself (`measure_crier`, read by bench/crierrun.py): one dry-run show per feed, `crier
shows import` timed, then 1, 2 and 4 `crier run` workers on the PostgreSQL database, a second
table beside the floor's (polls/s, worker CPU per poll, lateness, RSS, episode to dry-run
delivery, exactly once). Nothing here is a test; the test suite never runs it. Every loop is
bounded in count and time, all traffic is on 127.0.0.1, and nginx, PostgreSQL, the client
processes and the temporary folder are cleaned up on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from nginx import Nginx, find_or_install, version  # noqa: E402
from scalefeeds import Change, FeedSet  # noqa: E402

CLIENTS = ("aiohttp", "requests", "requests-threads")
CRIER_PENDING = "crier: not measured (--no-postgres, or the run failed: see the log above)"
TARGET_POLLS = 100_000 / 300  # 100,000 shows on a 5-minute cycle (issue 14)
_children: list[subprocess.Popen] = []


def log(*parts) -> None:
    print("…", *parts, file=sys.stderr, flush=True)


# -- machine ----------------------------------------------------------------------------------
def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(v) / tick
    return total - (v[3] + v[4]) / tick, total


def machine_line(nginx_version: str, pg_version: str | None) -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), platform.processor())
    import aiohttp
    import requests
    pg = f", PostgreSQL {pg_version} (idle during the floor)" if pg_version else ""
    return (f"Machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"Linux {platform.release()}, nginx {nginx_version}, aiohttp {aiohttp.__version__}, "
            f"requests {requests.__version__}{pg}; load average at start "
            f"{os.getloadavg()[0]:.2f}")


# -- the floor --------------------------------------------------------------------------------
@dataclass
class Cycle:
    n: int
    changed: int
    res: dict
    nginx_cpu: float
    other_cpu: float          # CPU seconds of every other process on the machine
    ok: bool
    note: str = ""


@dataclass
class FloorRun:
    kind: str
    n: int
    cycles: list[Cycle] = field(default_factory=list)

    @property
    def measured(self) -> list[Cycle]:
        return self.cycles[1:]  # the first cycle (every feed a 200, no validators) is apart


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise RuntimeError(f"client gave no answer within {timeout:.0f} s")
    finally:
        sel.close()
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"client exited: {err.strip()[-800:]}")
    return line


def run_floor(spec: str, fs: FeedSet, nginx: Nginx, urls_file: Path, args,
              rng: random.Random) -> FloorRun:
    kind, _, conc = spec.partition(":")
    conc = conc or str(args.concurrency)
    if kind != "requests":
        spec = f"{kind} ×{conc}"
    cmd = [sys.executable, str(HERE / "floorclient.py"), kind, str(urls_file),
           conc, str(args.request_timeout), str(args.cycle_timeout)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _children.append(proc)
    run = FloorRun(spec, fs.n)
    try:
        for c in range(args.cycles + 1):
            changes: list[Change] = fs.gain_episodes(args.changed, rng) if c else []
            expected = {ch.k for ch in changes}
            ng0, (busy0, _) = nginx.cpu_seconds(), machine_cpu()
            proc.stdin.write("cycle\n")
            proc.stdin.flush()
            res = json.loads(_read_line(proc, args.cycle_timeout + 60))
            ng, (busy, _) = nginx.cpu_seconds() - ng0, machine_cpu()
            other = max(0.0, (busy - busy0) - ng - res["cpu"])
            st, notes = res["status"], []
            want200 = fs.n if c == 0 else len(expected)
            if not res["complete"]:
                notes.append(f"stopped at the cycle timeout after {res['polls']} polls")
            if res["errors"]:
                notes.append(f"errors {res['errors']}")
            if st.get("200", 0) != want200 or st.get("304", 0) != fs.n - want200:
                notes.append(f"expected {want200}×200 and {fs.n - want200}×304, got {st}")
            elif c and res["got200"] is not None and set(res["got200"]) != expected:
                notes.append("the 200s were not exactly the feeds that changed")
            run.cycles.append(Cycle(fs.n, len(expected), res, ng, other, not notes,
                                    "; ".join(notes)))
            r = res
            log(f"{spec:<21} N={fs.n:>6} cycle {c}: {r['polls'] / r['wall']:8.0f} polls/s, "
                f"CPU {r['cpu'] / max(1, r['polls']) * 1e3:.3f} ms/poll, p50 "
                f"{r['p50'] * 1e3:.2f} ms, p99 {r['p99'] * 1e3:.2f} ms, {st}"
                + (f" — {'; '.join(notes)}" if notes else ""))
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        _children.remove(proc)
    return run


# -- crier (the plug-in point) ----------------------------------------------------------------
@dataclass
class CrierBench:
    """What the crier measurement gets: the feeds, their server and the database."""
    feeds: FeedSet            # .gain_episodes() per cycle; .changes: what changed and when
    base_url: str             # nginx, e.g. http://127.0.0.1:PORT (+ feeds.url_path(k))
    database_url: str | None  # a fresh, empty PostgreSQL database (None with --no-postgres)
    tmp: Path                 # a folder of its own for show files, config and logs
    cycles: int
    cycle_seconds: float = 300.0
    access_log: Path | None = None  # nginx's access log ($msec $status $uri)


@dataclass
class CrierResult:
    workers: int
    polls_per_s: float
    cpu_per_poll_ms: float
    lateness_p50_s: float     # poll start minus due time
    lateness_p99_s: float
    rss_mb: float             # the largest worker's peak RSS
    delivery_p50_s: float     # feed gained an episode -> its dry-run delivery recorded
    delivery_max_s: float
    exactly_once: bool        # every new episode delivered once per account, never twice
    import_s: float | None = None  # `crier shows import` of the N show files
    due_per_s: float = 0.0    # polls/s the shows ask for: N / poll_interval
    missing: int = 0          # dry-run deliveries not made within a cycle after the change


def measure_crier(ctx: CrierBench, workers: int) -> CrierResult | None:
    """crier with `workers` `crier run` processes on ctx.database_url (None without one).

    1. scalefeeds.write_show_file(folder, k, ctx.base_url + ctx.feeds.url_path(k)) for every
       feed (today's single-show layout, dry-run Mastodon and X accounts, `poll_interval`
       ctx.cycle_seconds), then `crier shows import FOLDER`, timed (once per N);
    2. `workers` × `crier run` with DATABASE_URL = ctx.database_url; the first start waits
       until every feed is baselined, then per cycle ctx.feeds.gain_episodes(0.01, rng);
    3. read back (bench/crierrun.py): polls from nginx's access log, due times from the feeds
       table's next_poll_at, dry-run deliveries (sent_at minus Change.at; each exactly once),
       CPU per poll from the workers' /proc/PID/stat, RSS from their VmHWM;
    4. stop the workers (SIGTERM, then SIGKILL after 30 s), like every other child here.
    """
    if ctx.database_url is None:
        return None
    import crierrun
    import sqlalchemy as sa
    state = _crier_states.get(id(ctx))
    if state is None:
        ctx.tmp.mkdir(parents=True, exist_ok=True)
        state = crierrun.CrierState(ctx, int(ctx.cycle_seconds), sa.create_engine(
            ctx.database_url, poolclass=sa.pool.NullPool))
        _crier_states[id(ctx)] = state
        state.prepare()
    try:
        return crierrun.run_workers(state, workers, ctx.access_log, random.Random(workers),
                                    _children, CrierResult)
    except RuntimeError as e:
        log(f"crier × {workers}: {e}")
        return None


_crier_states: dict[int, object] = {}


# -- report -----------------------------------------------------------------------------------
def _med(values: list[float]) -> str:
    if not values:
        return "–"
    m = statistics.median(values)
    fmt = (lambda x: f"{x:.0f}") if m >= 100 else (lambda x: f"{x:.3f}" if m < 1 else f"{x:.2f}")
    return fmt(m) if len(values) == 1 else f"{fmt(m)} ({fmt(min(values))}–{fmt(max(values))})"


def report(runs: list[FloorRun], machine: str, args, crier: dict, gen: dict) -> None:
    print(f"\n{machine}")
    print(f"Feeds: 10-50 items each; {args.changed:.0%} gain an episode before each measured "
          f"cycle; {args.cycles} measured cycle(s) per client after a first one (every feed a "
          f"200, no validators); ×C = C requests in flight (aiohttp: one event loop; "
          f"requests-threads: C threads, a Session each). Median (min–max) over the measured "
          f"cycles; CPU = CPU time per poll of the client process / of nginx's processes; "
          f"others = cores kept busy meanwhile by every other process on this shared machine.\n")
    for n, g in gen.items():
        print(f"N={n:,}: generated {g['bytes'] / 1e6:,.0f} MB in {g['s']:.1f} s; {g['check']}")
    print()
    print("| feeds | client | polls/s | client CPU ms/poll | nginx CPU ms/poll | p50 ms | "
          "p99 ms | peak RSS MB | 200 / 304 per cycle | others, cores | first cycle polls/s |")
    print("|" + "|".join("-" * w for w in (9, 18, 20, 20, 19, 16, 16, 13, 21, 15, 21)) + "|")
    for r in runs:
        m = r.measured
        polls = [c.res["polls"] / c.res["wall"] for c in m]
        cpu = [c.res["cpu"] / c.res["polls"] * 1e3 for c in m if c.res["polls"]]
        ng = [c.nginx_cpu / c.res["polls"] * 1e3 for c in m if c.res["polls"]]
        codes = " ".join(sorted({f"{c.res['status'].get('200', 0)} / "
                                 f"{c.res['status'].get('304', 0)}" for c in m}))
        others = [c.other_cpu / c.res["wall"] for c in m]
        first = r.cycles[0].res
        bad = "" if all(c.ok for c in r.cycles) else " ⚠"
        print(f"| {r.n:,} | {r.kind} | {_med(polls)} | {_med(cpu)} | {_med(ng)} | "
              f"{_med([c.res['p50'] * 1e3 for c in m])} | {_med([c.res['p99'] * 1e3 for c in m])}"
              f" | {max(c.res['hwm_kb'] for c in r.cycles) / 1024:.0f} | {codes}{bad} | "
              f"{_med(others)} | {first['polls'] / first['wall']:.0f} |")
    for r in runs:
        for i, c in enumerate(r.cycles):
            if not c.ok:
                print(f"⚠ {r.kind}, N={r.n:,}, cycle {i}: {c.note}")
    print("\n| feeds | crier | polls/s (due) | worker CPU ms/poll | lateness p50 / p99 s | "
          "max RSS MB | episode → dry-run delivery p50 / max s | exactly once | shows import |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, results in crier.items():
        for workers, res in results.items():
            if res is None:
                print(f"| {n:,} | crier run × {workers} | {CRIER_PENDING} |")
            else:
                imp = f"{res.import_s:.1f} s" if res.import_s is not None else "–"
                print(f"| {n:,} | crier run × {workers} | {res.polls_per_s:.1f} "
                      f"(due {res.due_per_s:.1f}) | {res.cpu_per_poll_ms:.1f} | "
                      f"{res.lateness_p50_s:.1f} / {res.lateness_p99_s:.1f} | {res.rss_mb:.0f} | "
                      f"{res.delivery_p50_s:.1f} / {res.delivery_max_s:.1f} | "
                      f"{'yes' if res.exactly_once else 'NO'}"
                      f"{f' ({res.missing} missing)' if res.missing else ''} | {imp} |")
    print(f"\nThe floor against issue 14's target ({TARGET_POLLS:.0f} polls/s sustained: 100,000 "
          "shows on a 5-minute cycle):")
    for r in runs:
        polls = [c.res["polls"] / c.res["wall"] for c in r.measured]
        if polls:
            med = statistics.median(polls)
            cpu = statistics.median((c.res["cpu"] + c.nginx_cpu) / c.res["polls"]
                                    for c in r.measured)
            print(f"  N={r.n:,} {r.kind}: {med:.0f} polls/s = {med / TARGET_POLLS:.1f}× the "
                  f"target (a cycle of 100,000 feeds: {100_000 / med:.0f} s); client + nginx "
                  f"{cpu * 1e3:.3f} CPU ms/poll = {1 / cpu:.0f} polls per CPU-second")


# -- main -------------------------------------------------------------------------------------
def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "").replace(",", "")) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--feeds", default="1000,10000",
                   help="numbers of feeds, comma-separated (default 1000,10000)")
    p.add_argument("--cycles", type=int, default=3, help="measured cycles per client (1-20)")
    p.add_argument("--changed", type=float, default=0.01,
                   help="fraction of the feeds gaining an episode per cycle (default 0.01)")
    p.add_argument("--concurrency", type=int, default=32,
                   help="requests in flight for aiohttp and the requests thread pool (32)")
    p.add_argument("--clients", default=",".join(CLIENTS),
                   help=f"of {', '.join(CLIENTS)}; KIND:C for another concurrency, e.g. "
                        "aiohttp:4 (default: all three)")
    p.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    p.add_argument("--no-postgres", action="store_true",
                   help="the floor alone: no PostgreSQL for the crier measurement")
    p.add_argument("--crier-workers", default="1,2,4",
                   help="numbers of `crier run` workers to measure, e.g. 1,2,4 ('' skips)")
    p.add_argument("--crier-interval", type=int, default=0,
                   help="the shows' poll_interval in s (default: 60 up to 10,000, else 300)")
    p.add_argument("--crier-cycles", type=int, default=1, help="measured crier cycles")
    p.add_argument("--request-timeout", type=float, default=30.0)
    p.add_argument("--cycle-timeout", type=float, default=600.0,
                   help="a client's cycle stops issuing requests after this many seconds")
    p.add_argument("--generate-timeout", type=float, default=900.0)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    a.feeds = _ints(a.feeds)
    a.crier_workers = _ints(a.crier_workers)
    a.clients = [c for c in a.clients.split(",") if c]
    bad = [c for c in a.clients if c.partition(":")[0] not in CLIENTS
           or not (c.partition(":")[2] or "1").isdigit()
           or not 1 <= int(c.partition(":")[2] or "1") <= 1000]
    if bad or not a.clients:
        p.error(f"--clients: unknown {bad}; choose from {', '.join(CLIENTS)}")
    if not 1 <= a.cycles <= 20 or not 0 < a.changed <= 1 or not 1 <= a.concurrency <= 1000:
        p.error("--cycles must be 1-20, --changed in (0, 1], --concurrency 1-1000")
    if any(not 1 <= n <= 1_000_000 for n in a.feeds):
        p.error("--feeds: each between 1 and 1,000,000")
    return a


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigterm)  # also when started with SIGINT ignored
    tmp = Path(tempfile.mkdtemp(prefix="crier-scale-"))
    os.chmod(tmp, 0o755)
    nginx: Nginx | None = None
    pg = None
    try:
        need = max(args.feeds) * 60_000 * 1.2  # one N at a time; its folder goes after it
        free = shutil.disk_usage(tmp).free
        if need > free:
            raise RuntimeError(f"not enough disk in {tmp.parent}: {free / 1e9:.1f} GB free, "
                               f"~{need / 1e9:.1f} GB needed")
        binary = find_or_install(log)
        ng_version = version(binary)
        pg_version = db_url = None
        if not args.no_postgres:
            from tests.pg import PostgresServer, _bindir
            pg = PostgresServer()
            pg.start()
            db_url = pg.new_database()
            pg_version = subprocess.run([str(_bindir() / "postgres"), "--version"],
                                        capture_output=True, text=True).stdout.split()[2]
            log(f"PostgreSQL {pg_version} on 127.0.0.1:{pg.port}, database for crier ready")
        machine = machine_line(ng_version, pg_version)
        rng = random.Random(args.seed)
        runs: list[FloorRun] = []
        crier: dict[int, dict[int, CrierResult | None]] = {}
        gen: dict[int, dict] = {}
        for n in args.feeds:
            root = tmp / f"n{n}"
            fs = FeedSet(root, n)
            t = time.perf_counter()
            fs.generate(time.monotonic() + args.generate_timeout)
            gen[n] = {"s": time.perf_counter() - t, "bytes": fs.bytes_written}
            log(f"N={n}: {fs.bytes_written / 1e6:.0f} MB of feeds in {gen[n]['s']:.1f} s")
            nginx = Nginx(binary, root, tmp / f"nginx-{n}", args.nginx_workers)
            nginx.tmp.mkdir()
            nginx.start()
            gen[n]["check"] = "nginx: " + nginx.verify_conditional(fs.url_path(n - 1))
            log(gen[n]["check"])
            urls_file = tmp / f"urls-{n}.txt"
            urls_file.write_text("".join(f"{nginx.base_url}{fs.url_path(k)}\n"
                                         for k in range(n)))
            for kind in args.clients:
                runs.append(run_floor(kind, fs, nginx, urls_file, args, rng))
            nginx.stop()
            nginx = None
            if db_url is not None and args.crier_workers:
                # crier's run: a second nginx on the same files, logging each request
                alog = tmp / f"access-{n}.log"
                nginx = Nginx(binary, root, tmp / f"nginx-crier-{n}", args.nginx_workers, alog)
                nginx.tmp.mkdir()
                nginx.start()
                interval = args.crier_interval or (60 if n <= 10_000 else 300)
                # a database of its own per N: shows, feeds and deliveries of the N before
                # (same slugs, same GUIDs) would count as strays or doubles in this one
                db_n = db_url if n == args.feeds[0] else pg.new_database()
                ctx = CrierBench(fs, nginx.base_url, db_n, tmp / f"crier-{n}",
                                 args.crier_cycles, interval, alog)
                crier[n] = {w: measure_crier(ctx, w) for w in args.crier_workers}
                nginx.stop()
                nginx = None
            shutil.rmtree(root, ignore_errors=True)
        report(runs, machine, args, crier, gen)
        return 0 if all(c.ok for r in runs for c in r.cycles) else 1
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish (it is bounded)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in list(_children):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if nginx is not None:
            nginx.stop()
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
