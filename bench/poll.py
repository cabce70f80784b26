"""Benchmark: what one poll costs, unchanged and changed, against feedparser and a peer.

    python bench/poll.py            # the full run (a few minutes); prints a table
    python bench/poll.py --quick    # a smoke run (small feeds, few repeats)

Generates Buzzsprout-like feeds (50, 1000, 3000 items; 2-4 KB HTML show notes in CDATA,
itunes: and podcast: tags), serves them on 127.0.0.1 with ETag/Last-Modified (the test
suite's FeedServer, in this process), and measures, each as the median of several runs with
min and max:

* the bare floor: a 304 for a conditional GET with requests (same session);
* crier's poll of an unchanged feed (Service.poll on a baselined SQLite database): (a) the
  server answers 304, (b) the server ignores validators and sends the same 200 body; CPU time
  of the polling thread and wall time; polled back to back (within the 5 minutes in which an
  unchanged poll does not rewrite the feed's row) and again with every poll recorded; plus
  the floor for (b): download and sha256 the body;
* crier's poll of a changed feed with one new episode, up to the composed announcement
  (poll + dispatch with dry-run publishers), in a fresh process each run (nothing warm but
  the imports; the database holds the item cache the first run left), with its peak RSS;
* one full feedparser.parse of the same bytes (fresh process each run, with its peak RSS);
* the peer feed2toot (PyPI), installed into its own venv under ~/.cache/crier-bench, run as
  its users run it (one process per poll, `feed2toot -c conf.ini --dry-run`), CPU/wall/RSS;
* peak RSS (VmHWM) of an idle `crier run` worker after its first cycle, and `crier --help`.

Nothing here is a test; it prints numbers and says which of issue 4's targets they meet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PY = sys.executable
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "crier-bench"

WORDS = ("podcast episode guest conversation story history science culture money music "
         "interview community design future public climate health technology startup "
         "journalism politics economy education research language film books").split()
START = datetime(2000, 1, 3, 10, tzinfo=UTC)


# -- feeds ------------------------------------------------------------------------------------
def _notes(rng: random.Random, n: int) -> str:
    """2-4 KB of Buzzsprout-style show notes: paragraphs, a few links and lists."""
    parts, total, size = [], 0, rng.randint(2000, 4000)
    while total < size:
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))).capitalize()
        if rng.random() < 0.3:
            s += (f' <a href="https://example.com/{rng.choice(WORDS)}/{n}" rel="nofollow">'
                  f"{rng.choice(WORDS)}</a>")
        p = f"<p>{s}.</p>"
        if rng.random() < 0.1:
            p = "<ul>" + "".join(f"<li><strong>{rng.choice(WORDS)}</strong> {rng.choice(WORDS)}"
                                 "</li>" for _ in range(3)) + "</ul>"
        parts.append(p)
        total += len(p)
    parts.append("<p>Support the show: <a href='https://www.buzzsprout.com/2046234/support'>"
                 "buzzsprout</a></p>")
    return "".join(parts)


def _item(i: int) -> str:
    rng = random.Random(100003 + i)
    eid = 10000000 + i
    title = f"{i + 1}: {' '.join(rng.choice(WORDS) for _ in range(5)).title()} & more"
    return f"""<item>
<itunes:title>{escape(title)}</itunes:title>
<title>{escape(title)}</title>
<description><![CDATA[{_notes(rng, i)}]]></description>
<itunes:author>The Bench Show</itunes:author>
<enclosure url="https://www.buzzsprout.com/2046234/{eid}-episode-{i + 1}.mp3" length="{rng.randint(10**7, 9 * 10**7)}" type="audio/mpeg" />
<guid isPermaLink="false">Buzzsprout-{eid}</guid>
<pubDate>{format_datetime(START + timedelta(days=3 * i))}</pubDate>
<link>https://www.buzzsprout.com/2046234/episodes/{eid}</link>
<itunes:duration>{rng.randint(600, 7200)}</itunes:duration>
<itunes:episode>{i + 1}</itunes:episode>
<itunes:episodeType>full</itunes:episodeType>
<itunes:explicit>false</itunes:explicit>
<podcast:transcript url="https://www.buzzsprout.com/2046234/{eid}/transcript" type="text/html" />
<podcast:person role="host">Ada Host</podcast:person>
</item>"""  # noqa: E501


def make_feed(n: int) -> bytes:
    """n items, newest first (as hosts write them)."""
    head = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        "<channel>",
        '<atom:link href="https://feeds.buzzsprout.com/2046234.rss" rel="self" '
        'type="application/rss+xml" />',
        "<title>The Bench Show</title>",
        "<description><![CDATA[<p>A show about benchmarks.</p>]]></description>",
        "<link>https://www.buzzsprout.com/2046234</link>", "<language>en-us</language>",
        '<itunes:image href="https://storage.buzzsprout.com/show.jpg" />',
        "<podcast:guid>7b3c1f4e-1111-5555-9999-abcdefabcdef</podcast:guid>",
    ]
    items = [_item(i) for i in range(n)]
    items.reverse()
    return "\n".join(head + items + ["</channel>\n</rss>\n"]).encode()


# -- measuring --------------------------------------------------------------------------------
class Stat:
    def __init__(self, values: list[float]):
        self.values = values
        self.median = statistics.median(values)
        self.min, self.max = min(values), max(values)

    def ms(self) -> str:
        return f"{self.median * 1000:.2f} ({self.min * 1000:.2f}–{self.max * 1000:.2f})"

    def s(self) -> str:
        return f"{self.median:.3f} ({self.min:.3f}–{self.max:.3f})"


def run_child(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    """Run one of this script's child modes; it reports its own numbers as JSON."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate(timeout=timeout)
    wall = time.perf_counter() - t
    try:
        data = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        data = {}
    data.setdefault("wall", wall)
    data["rc"], data["stderr"] = proc.returncode, err.decode(errors="replace")[-2000:]
    return data


def timed_child(args: list[str], env: dict | None = None) -> dict:
    """CPU seconds, wall seconds and peak RSS (MB) of one whole process, by wait4."""
    with tempfile.TemporaryFile() as errf:
        t = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=errf, env=env)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace")
    return {"cpu": ru.ru_utime + ru.ru_stime, "wall": wall, "rss": ru.ru_maxrss / 1024,
            "rc": proc.returncode, "stderr": err[-2000:]}


def vm(pid: int | str, key: str) -> float:
    """VmHWM / VmRSS of a process in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- crier in this process ----------------------------------------------------------------------
def settings(db: Path, feed_url: str, tmp: Path):
    from bot.config import Account, Settings
    return Settings(path=tmp / "crier.toml", show="The Bench Show", feed=feed_url,
                    poll_interval=900, max_new_per_poll=3, database_url=f"sqlite:///{db}",
                    media_dir=str(tmp / "media"),
                    accounts=(Account(name="masto", platform="mastodon",
                                      instance="https://mastodon.example", dry_run=True),
                              Account(name="x", platform="x", dry_run=True)))


def service(db: Path, feed_url: str, tmp: Path):
    from bot.service import Service, build_publishers
    from bot.store import Store
    st = settings(db, feed_url, tmp)
    store = Store(st.database_url)
    store.migrate()
    return Service(st, store, publishers=build_publishers(st, dry_run=True)), store


def baseline_db(path: Path, feed_url: str, tmp: Path) -> None:
    svc, store = service(path, feed_url, tmp)
    report = svc.poll(force=True, backfill=0)
    assert report.result == "baseline", report
    store.close()


def child_changed(db: str, url: str, tmp: str) -> None:
    """(in a fresh process) one changed poll + composing the announcement; JSON out."""
    import bot.compose  # noqa: F401  a running worker has these loaded already
    import bot.feed  # noqa: F401
    import bot.fetch  # noqa: F401
    import bot.platforms.dryrun  # noqa: F401
    import bot.textlen  # noqa: F401
    svc, store = service(Path(db), url, Path(tmp))
    svc.session  # noqa: B018  (the worker's session exists already)
    c0, t0 = time.thread_time(), time.perf_counter()
    report = svc.poll(force=True)
    outcomes = svc.dispatch()
    cpu, wall = time.thread_time() - c0, time.perf_counter() - t0
    store.close()
    ok = report.result == "new" and len(outcomes) == 2 and all(o.text for o in outcomes)
    print(json.dumps({"cpu": cpu, "wall": wall, "rss": vm("self", "VmHWM"), "ok": ok,
                      "text": outcomes[0].text if outcomes else None}))


def child_feedparser(path: str) -> None:
    import io

    import feedparser
    data = Path(path).read_bytes()
    c0, t0 = time.process_time(), time.perf_counter()
    r = feedparser.parse(io.BytesIO(data))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(json.dumps({"cpu": cpu, "wall": wall, "rss": vm("self", "VmHWM"),
                      "entries": len(r.entries)}))


# -- the peer ---------------------------------------------------------------------------------
def peer_venv(log) -> Path | None:
    venv = CACHE / "feed2toot-venv"
    exe = venv / "bin" / "feed2toot"
    if exe.exists():
        return exe
    log("installing feed2toot from PyPI into", venv)
    try:
        subprocess.run([PY, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "feed2toot"], check=True,
                       capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as e:
        log("could not install feed2toot:", e)
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return exe if exe.exists() else None


def peer_config(tmp: Path, url: str, name: str) -> Path:
    d = tmp / f"peer-{name}"
    d.mkdir(exist_ok=True)
    (d / "usercred.txt").write_text("token\nhttps://127.0.0.1:9\n")
    (d / "clientcred.txt").write_text("id\nsecret\nhttps://127.0.0.1:9\n")
    conf = d / "feed2toot.ini"
    conf.write_text(f"""[mastodon]
instance_url=https://127.0.0.1:9
user_credentials={d / 'usercred.txt'}
client_credentials={d / 'clientcred.txt'}

[cache]
cachefile={d / 'cache.db'}

[lock]
lock_file={d / 'feed2toot.lock'}

[rss]
uri={url}
toot={{title}} {{link}}
""")
    return conf


# -- the run ----------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small feeds, few repeats")
    ap.add_argument("--no-peer", action="store_true", help="skip feed2toot")
    ap.add_argument("--child-changed", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--child-feedparser", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child_changed:
        child_changed(*a.child_changed)
        return 0
    if a.child_feedparser:
        child_feedparser(a.child_feedparser)
        return 0

    import logging
    logging.basicConfig(level=logging.ERROR)
    import requests

    from bot.fetch import new_session
    from tests.fakes.feed_server import FeedServer

    sizes = (50, 300) if a.quick else (50, 1000, 3000)
    polls = 20 if a.quick else 200       # in-process polls (fast)
    heavy = 2 if a.quick else 5          # fresh-process runs (changed poll, feedparser, peer)

    def log(*parts):
        print("…", *parts, file=sys.stderr, flush=True)

    rows: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="crier-bench-"))
    try:
        with FeedServer() as srv:
            for n in sizes:
                log(f"{n} items: generating")
                old, new = make_feed(n), None
                new_items = [_item(i) for i in range(n + 1)]
                new_items.reverse()
                new = old.replace(b"<item>", new_items[0].encode() + b"\n<item>", 1)
                (tmp / f"feed-{n}.xml").write_bytes(old)
                r = rows[n] = {"bytes": len(old)}
                cond, plain = f"/feed-{n}.xml", f"/plain-{n}.xml"
                srv.set_feed(cond, old)
                srv.set_feed(plain, old, etag=False, last_modified=False, conditional=False)

                # the bare 304 floor, and download+hash of the 200 body
                s = requests.Session()
                etag = s.get(srv.url + cond).headers["ETag"]
                vals = []
                for _ in range(polls):
                    t = time.perf_counter()
                    resp = s.get(srv.url + cond, headers={"If-None-Match": etag})
                    vals.append(time.perf_counter() - t)
                    assert resp.status_code == 304
                r["floor304"] = Stat(vals)
                vals = []
                sess = new_session()
                for _ in range(max(3, polls // 10)):
                    t = time.perf_counter()
                    with sess.get(srv.url + plain, stream=True) as resp:
                        h = hashlib.sha256()
                        for chunk in resp.iter_content(64 * 1024):
                            h.update(chunk)
                    vals.append(time.perf_counter() - t)
                r["floor200"] = Stat(vals)

                # crier: unchanged, (a) 304 and (b) same 200 body; polled back to back, so
                # within QUIET_WRITE of the last recorded poll (the feed's row is not written,
                # as when polling every minute), and again with every poll recorded (the
                # feed's row written: one SQLite commit, as with the default 15 minutes)
                import bot.polling
                quiet = bot.polling.QUIET_WRITE
                for key, path, count, recorded in (
                        ("u304", cond, polls, False), ("u200", plain, max(3, polls // 10), False),
                        ("u304w", cond, polls, True),
                        ("u200w", plain, max(3, polls // 10), True)):
                    bot.polling.QUIET_WRITE = timedelta(0) if recorded else quiet
                    db = tmp / f"{key}-{n}.db"
                    baseline_db(db, srv.url + path, tmp)
                    svc, store = service(db, srv.url + path, tmp)
                    svc.poll(force=True)  # warm: imports, connection pool
                    walls, cpus = [], []
                    for _ in range(count):
                        c0, t0 = time.thread_time(), time.perf_counter()
                        rep = svc.poll(force=True)
                        cpus.append(time.thread_time() - c0)
                        walls.append(time.perf_counter() - t0)
                        assert rep.result == "unchanged", rep
                    store.close()
                    r[key] = (Stat(walls), Stat(cpus))
                bot.polling.QUIET_WRITE = quiet

                # crier: changed, one new episode, fresh process per run
                log(f"{n} items: changed polls")
                template = tmp / f"base-{n}.db"
                srv.set_feed(f"/changed-{n}.xml", old)
                baseline_db(template, srv.url + f"/changed-{n}.xml", tmp)
                srv.set_feed(f"/changed-{n}.xml", new)
                res = []
                for k in range(heavy):
                    db = tmp / f"changed-{n}-{k}.db"
                    shutil.copy(template, db)
                    for ext in ("-wal", "-shm"):
                        if Path(str(template) + ext).exists():
                            shutil.copy(str(template) + ext, str(db) + ext)
                    out = run_child([PY, __file__, "--child-changed", str(db),
                                     srv.url + f"/changed-{n}.xml", str(tmp)])
                    if not out.get("ok"):
                        raise SystemExit(f"changed poll failed: {out}")
                    res.append(out)
                r["changed"] = (Stat([x["wall"] for x in res]), Stat([x["cpu"] for x in res]),
                                Stat([x["rss"] for x in res]))
                r["changed_text"] = res[0]["text"]

                # one full feedparser.parse of the same bytes
                log(f"{n} items: feedparser")
                res = [run_child([PY, __file__, "--child-feedparser",
                                  str(tmp / f"feed-{n}.xml")]) for _ in range(heavy)]
                r["feedparser"] = (Stat([x["wall"] for x in res]),
                                   Stat([x["cpu"] for x in res]), Stat([x["rss"] for x in res]))

            # the peer
            exe = None if a.no_peer else peer_venv(log)
            if exe:
                for n in sizes:
                    log(f"{n} items: feed2toot")
                    conf = peer_config(tmp, srv.url + f"/plain-{n}.xml", str(n))
                    subprocess.run([str(exe), "-c", str(conf), "--populate-cache"],
                                   capture_output=True, timeout=600)
                    res = [timed_child([str(exe), "-c", str(conf), "--dry-run"])
                           for _ in range(heavy)]
                    bad = [x for x in res if x["rc"] != 0]
                    if bad:
                        log("feed2toot failed:", bad[0]["stderr"])
                        continue
                    rows[n]["peer"] = (Stat([x["wall"] for x in res]),
                                       Stat([x["cpu"] for x in res]),
                                       Stat([x["rss"] for x in res]))

            # idle worker, and --help
            wn = sizes[1]
            log(f"idle worker on the {wn}-item feed")
            worker = idle_worker(srv, tmp, srv.url + f"/feed-{wn}.xml", heavy)
        helps = [timed_child([str(Path(PY).with_name("crier")), "--help"])["wall"]
                 for _ in range(3 if a.quick else 10)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(rows, sizes, worker, Stat(helps), a.quick)
    return 0


def idle_worker(srv, tmp: Path, url: str, runs: int) -> Stat:
    """VmHWM of `crier run` a moment after its first cycle, on a baselined database, with
    real Mastodon and X publishers configured (so their libraries are loaded)."""
    import sqlite3
    db = tmp / "worker.db"
    baseline_db(db, url, tmp)
    conf = tmp / "worker.toml"
    conf.write_text(f'show = "The Bench Show"\nfeed = "{url}"\npoll_interval = "15m"\n'
                    '[[accounts]]\nplatform = "mastodon"\nname = "masto"\n'
                    'instance = "https://127.0.0.1:9"\n'
                    '[[accounts]]\nplatform = "x"\nname = "x"\n')
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db}", CRIER_MASTO_ACCESS_TOKEN="t",
               CRIER_X_CONSUMER_KEY="a", CRIER_X_CONSUMER_SECRET="b",
               CRIER_X_ACCESS_TOKEN="c", CRIER_X_ACCESS_TOKEN_SECRET="d")
    vals = []
    for _ in range(max(2, runs // 2)):
        with sqlite3.connect(db) as c:  # due now: the first cycle polls (a 304)
            c.execute("UPDATE feeds SET next_poll_at = NULL")
        c.close()
        proc = subprocess.Popen([str(Path(PY).with_name("crier")), "-c", str(conf), "run"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        asked = len(srv.requests)
        deadline = time.monotonic() + 60
        while len(srv.requests) == asked and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker's first cycle starts with its poll of the feed
        if len(srv.requests) == asked:
            print("… the worker did not poll the feed", file=sys.stderr)
        time.sleep(3)  # the first dispatch runs too; then idle
        vals.append(vm(proc.pid, "VmHWM"))
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return Stat(vals)


def report(rows: dict, sizes, worker: Stat, helps: Stat, quick: bool) -> None:
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip() or platform.processor()
    print(f"\nMachine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}" + ("  [--quick]" if quick else ""))
    print("Median (min–max). ms = milliseconds, CPU = CPU time of the polling thread "
          "(whole process for fresh-process rows).\n")
    head = f"| {'measure':<58} | " + " | ".join(f"{n} items" for n in sizes) + " |"
    print(head)
    print("|" + "-" * 60 + "|" + "|".join("-" * (len(f' {n} items ')) for n in sizes) + "|")

    def line(label, fn):
        cells = []
        for n in sizes:
            try:
                cells.append(fn(rows[n]))
            except KeyError:
                cells.append("n/a")
        print(f"| {label:<58} | " + " | ".join(cells) + " |")

    line("feed size (MB)", lambda r: f"{r['bytes'] / 1e6:.1f}")
    line("bare 304 floor, requests, wall ms", lambda r: r["floor304"].ms())
    line("crier unchanged poll, 304: wall ms", lambda r: r["u304"][0].ms())
    line("crier unchanged poll, 304: CPU ms", lambda r: r["u304"][1].ms())
    line("download + sha256 of the 200 body, wall ms", lambda r: r["floor200"].ms())
    line("crier unchanged poll, same 200 body: wall ms", lambda r: r["u200"][0].ms())
    line("crier unchanged poll, same 200 body: CPU ms", lambda r: r["u200"][1].ms())
    line("… each poll recorded, 304: wall ms", lambda r: r["u304w"][0].ms())
    line("… each poll recorded, 304: CPU ms", lambda r: r["u304w"][1].ms())
    line("… each poll recorded, same 200 body: wall ms", lambda r: r["u200w"][0].ms())
    line("… each poll recorded, same 200 body: CPU ms", lambda r: r["u200w"][1].ms())
    line("crier changed poll, 1 new episode, composed: wall ms", lambda r: r["changed"][0].ms())
    line("crier changed poll, 1 new episode, composed: CPU ms", lambda r: r["changed"][1].ms())
    line("crier changed poll: process peak RSS MB", lambda r: f"{r['changed'][2].median:.0f}")
    line("feedparser.parse, full: wall s", lambda r: r["feedparser"][0].s())
    line("feedparser.parse, full: process peak RSS MB",
         lambda r: f"{r['feedparser'][2].median:.0f}")
    line("feed2toot --dry-run, one process per poll: wall s", lambda r: r["peer"][0].s())
    line("feed2toot --dry-run, one process per poll: CPU s", lambda r: r["peer"][1].s())
    line("feed2toot: peak RSS MB", lambda r: f"{r['peer'][2].median:.0f}")
    print(f"\nIdle `crier run` worker after its first cycle, VmHWM: {worker.median:.0f} MB "
          f"({worker.min:.0f}–{worker.max:.0f})")
    print(f"`crier --help` wall time: {helps.s()} s")

    print("\nTargets (issue 4):")
    mid, big = sizes[1], sizes[-1]

    def verdict(ok: bool) -> str:
        return "MET  " if ok else "UNMET"

    for n in sizes:
        r = rows[n]
        ratio = r["u304"][0].median / r["floor304"].median
        print(f"  {verdict(ratio <= 3)} unchanged, 304, {n} items: {ratio:.2f}× the bare 304 "
              "floor (≤ 3×), no parse")
    for n in sizes:
        r = rows[n]
        ratio = r["u200"][0].median / r["floor200"].median
        print(f"  {verdict(ratio <= 1.5)} unchanged, same 200 body, {n} items: {ratio:.2f}× "
              "download+hash (≤ 1.5×), no feedparser call")
    r = rows[mid]
    if "peer" in r:
        for key, label in (("u304", "304"), ("u200", "same 200 body")):
            ratio = r["peer"][1].median / max(r[key][1].median, 1e-9)
            print(f"  {verdict(ratio >= 500)} CPU per poll vs feed2toot, {mid} items, {label}: "
                  f"{ratio:,.0f}× less (≥ 500×)")
    else:
        print("  n/a   feed2toot did not run")
    r = rows[big]
    ratio = r["feedparser"][0].median / r["changed"][0].median
    print(f"  {verdict(ratio >= 20)} changed {big}-item feed, composed: 1/{ratio:.1f} of a full "
          "feedparser parse (≤ 1/20)")
    rss = r["changed"][2].median
    print(f"  {verdict(rss <= 60)} changed {big}-item feed: process peak RSS {rss:.0f} MB "
          "(≤ 60 MB)")
    print(f"  {verdict(worker.median <= 80)} idle worker: {worker.median:.0f} MB (≤ 80 MB)")
    print(f"  {verdict(helps.median <= 0.3)} crier --help: {helps.median:.3f} s (≤ 0.3 s)")

    print("\nThe unchanged-poll targets above are for polls within 5 minutes of the last recorded"
          "\none (the feed's row is not rewritten). With every poll recorded (one SQLite commit):")
    for n in sizes:
        r = rows[n]
        print(f"  304, {n} items: {r['u304w'][0].median / r['floor304'].median:.2f}× the floor; "
              f"same 200 body: {r['u200w'][0].median / r['floor200'].median:.2f}× "
              "download+hash")
    r = rows[mid]
    if "peer" in r:
        print(f"  CPU vs feed2toot, {mid} items: 304 "
              f"{r['peer'][1].median / max(r['u304w'][1].median, 1e-9):,.0f}× less, same 200 "
              f"body {r['peer'][1].median / max(r['u200w'][1].median, 1e-9):,.0f}× less")


if __name__ == "__main__":
    sys.exit(main())
