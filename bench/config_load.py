"""How long `load_deployment` takes for N generated show files read through `include`.

    python bench/config_load.py 1000 10000 100000 [--profile] [--keep DIR]

Each show file is in today's single-show layout, like a network would generate it: a name, an
https feed, a time zone, a poll interval, people, hashtags, a [promos] table and two dry-run
accounts. Prints files, seconds (wall and CPU), files per second and the peak RSS;
`--profile` prints the top of a cProfile of the largest N. Not a timed test.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.deployment import load_deployment  # noqa: E402

SHOW = """\
show = "Generated Show {i}"
feed = "https://feeds.example-host.net/{i}/rss.xml"
poll_interval = "15m"
timezone = "America/New_York"
listen_link = "https://example-host.net/shows/{i}"

[people."Host {i}"]
mastodon = "@host{i}@social.example"
x = "@host{i}"

[promos]
min_gap = "30m"
quiet_hours = "22:00-07:00"

[[accounts]]
platform = "mastodon"
name = "show{i}-mastodon"
instance = "https://social.example"
hashtags = ["Show{i}", "Podcast"]
dry_run = true

[[accounts]]
platform = "x"
name = "show{i}-x"
hashtags = ["Show{i}"]
dry_run = true
"""


def generate(root: Path, n: int) -> Path:
    """root/<n>/crier.toml including root/<n>/shows/*.toml (kept for the next run)."""
    shows = root / str(n) / "shows"
    shows.mkdir(parents=True, exist_ok=True)
    for i in range(len(list(shows.glob("*.toml"))), n):
        (shows / f"show-{i:06d}.toml").write_text(SHOW.format(i=i), encoding="utf-8")
    cfg = shows.parent / "crier.toml"
    cfg.write_text('include = ["shows/*.toml"]\ndispatch_interval = "5s"\n', encoding="utf-8")
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[1000, 10000])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--keep", help="generate the files here and keep them")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crier-config-"))
    try:
        for n in sorted(args.sizes):
            cfg = generate(root, n)
            t0, c0 = time.perf_counter(), time.process_time()
            if args.profile and n == max(args.sizes):
                prof = cProfile.Profile()
                d = prof.runcall(load_deployment, cfg, env={})
            else:
                d = load_deployment(cfg, env={})
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert len(d.shows) == n, (len(d.shows), n)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{n:>7} files  {took:7.2f} s  (CPU {cpu:7.2f} s)  {n / took:8.0f} files/s  "
                  f"peak RSS {rss:6.0f} MB", flush=True)
            del d
        if args.profile:
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
