"""Benchmark: `crier shows import FOLDER` of N show files, on PostgreSQL and on SQLite.

    python bench/import_shows.py                    # N = 100,000 (about 10 minutes in all)
    python bench/import_shows.py --shows 10000      # quicker
    python bench/import_shows.py --no-postgres      # SQLite only
    python bench/import_shows.py --profile /tmp/imp # cProfile each import to /tmp/imp.<db>.<n>

Writes N show files in today's single-show layout (bench/scalefeeds.py `write_show_file`: two
dry-run accounts a show) into a temporary folder, with a config holding only deployment keys,
starts a private PostgreSQL (tests/pg.py's way), and runs `python -m bot --config CFG shows
import FOLDER` as a real subprocess with DATABASE_URL set: first into an empty database, then
again with the folder unchanged (every show "unchanged": must be much faster). The same on a
SQLite file. Per run it prints the wall time, the import process's CPU (user + system) and peak
RSS (from wait4), the whole machine's busy CPU over the run (PostgreSQL included) and crier's
own summary line; then it checks the database holds N shows and N active feed rows. Issue 14's
target: 100,000 files in at most 2 minutes. Numbers only, not a test; the temporary folder and
PostgreSQL are removed on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from scalefeeds import write_show_file  # noqa: E402

TARGET_S = 120.0  # issue 14: 100,000 show files imported in at most 2 minutes


def log(*parts) -> None:
    print("…", *parts, file=sys.stderr, flush=True)


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy so far, all cores (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    db: str
    label: str
    wall: float
    cpu: float
    rss_mb: float
    machine_cpu: float
    summary: str


def write_files(folder: Path, n: int) -> float:
    folder.mkdir(parents=True)
    t = time.perf_counter()
    for k in range(n):
        write_show_file(folder, k, f"https://feeds.example.net/{k // 1000}/show-{k}.rss")
    return time.perf_counter() - t


def run_import(cfg: Path, folder: Path, database_url: str, db: str, label: str,
               profile: str | None) -> Run:
    """One `crier shows import` subprocess; its own CPU and peak RSS from wait4."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    env.pop("CRIER_CONFIG", None)
    head = ["-m", "cProfile", "-o", f"{profile}.{db}.{label}"] if profile else []
    cmd = [sys.executable, *head, "-m", "bot", "--config", str(cfg), "shows", "import",
           str(folder)]
    out_path = cfg.parent / f"import-{db}-{label}.out"
    busy0, t0 = machine_busy(), time.perf_counter()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cfg.parent, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    busy = machine_busy() - busy0
    text = out_path.read_text(errors="replace").strip()
    summary = (text.splitlines() or [""])[-1] if proc.returncode == 0 else \
        f"FAILED ({proc.returncode}): {text[-600:]}"
    r = Run(db, label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, busy,
            summary)
    log(f"{db} {label}: {r.wall:.1f} s wall, {r.cpu:.1f} s CPU, {r.rss_mb:.0f} MB peak RSS, "
        f"machine {r.machine_cpu:.1f} CPU s: {r.summary}")
    return r


def check(url: str, n: int) -> str:
    import sqlalchemy as sa

    from bot.store import Store
    store = Store(url)
    try:
        with store.engine.connect() as c:
            shows = c.execute(sa.text("SELECT count(*) FROM shows WHERE removed_at IS NULL"
                                      " AND source = 'import'")).scalar()
            feeds = c.execute(sa.text("SELECT count(*) FROM feeds WHERE active")).scalar()
    finally:
        store.close()
    ok = shows == n and feeds == n
    return f"{shows} shows, {feeds} active feeds{'' if ok else f' (expected {n}: WRONG)'}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shows", type=int, default=100_000, help="show files (default 100,000)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--profile", metavar="PREFIX",
                   help="run each import under cProfile, written to PREFIX.<db>.<run>")
    return p.parse_args(argv)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="crier-import-"))
    os.chmod(tmp, 0o755)
    pg = None
    runs: list[Run] = []
    notes: list[str] = []
    try:
        folder = tmp / "shows"
        gen = write_files(folder, args.shows)
        log(f"{args.shows} show files written in {gen:.1f} s")
        cfg = tmp / "crier.toml"  # deployment keys only: every show comes from the import
        cfg.write_text('include = ["none/*.toml"]\ndispatch_interval = 5\n')
        dbs: list[tuple[str, str]] = []
        if not args.no_postgres:
            from tests.pg import PostgresServer
            pg = PostgresServer()
            pg.start()
            dbs.append(("postgresql", pg.new_database()))
        if not args.no_sqlite:
            dbs.append(("sqlite", f"sqlite:///{tmp / 'crier.db'}"))
        for db, url in dbs:
            for label in ("first", "again"):
                runs.append(run_import(cfg, folder, url, db, label, args.profile))
            notes.append(f"{db}: {check(url, args.shows)}")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), platform.processor())
    print(f"crier shows import of {args.shows:,} show files (2 dry-run accounts each); "
          f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}")
    print(f"{'database':<11} {'run':<6} {'wall s':>7} {'CPU s':>6} {'RSS MB':>7} "
          f"{'machine CPU s':>14}  crier says")
    for r in runs:
        print(f"{r.db:<11} {r.label:<6} {r.wall:>7.1f} {r.cpu:>6.1f} {r.rss_mb:>7.0f} "
              f"{r.machine_cpu:>14.1f}  {r.summary}")
    for n in notes:
        print(n)
    worst = max((r.wall for r in runs), default=0.0)
    scaled = worst * 100_000 / max(1, args.shows)
    print(f"target: 100,000 files in <= {TARGET_S:.0f} s; slowest run here {worst:.1f} s"
          + ("" if args.shows == 100_000 else f" (x{100_000 / args.shows:g}: ~{scaled:.0f} s)"))
    return 0 if all("FAILED" not in r.summary for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
