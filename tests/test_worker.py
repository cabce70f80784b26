"""The real `crier run` worker as a subprocess against the loopback feed, Mastodon and X servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.feedgen import item, rss

X_KEYS = dict(consumer_key="ck", consumer_secret="cs", access_token="at",
              access_token_secret="ats")


def wait_for(cond, timeout=30.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def setup(tmp_path, db_url):
    with FeedServer() as feed, MastodonServer(token="tok") as masto, \
            XServer(**X_KEYS, username="Show") as x:
        feed.set_feed("/feed.xml", rss([item(n) for n in range(1, 5)]))
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f"""
show = "Worker Show"
feed = "{feed.url}/feed.xml"
poll_interval = 60
first_run_backfill = 1
dispatch_interval = 1

[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{masto.url}"
timeout = 3

[[accounts]]
platform = "x"
name = "bird"
api_base = "{x.url}"
timeout = 3

[podping]
enabled = false  # no Hive node beyond loopback in tests (tests/test_podping.py runs one)
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update({"CRIER_CONFIG": str(cfg), "DATABASE_URL": db_url,
                    "CRIER_MASTO_ACCESS_TOKEN": "tok",
                    **{f"CRIER_BIRD_{k.upper()}": v for k, v in X_KEYS.items()}})
        yield env, masto, x, tmp_path, feed


def start(env, cwd):
    return subprocess.Popen([sys.executable, "-m", "bot", "-v", "run"], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_worker_posts_once_refuses_a_second_worker_and_stops_cleanly(setup):
    """SQLite refuses a second worker; PostgreSQL lets it join (and nothing is sent twice)."""
    env, masto, x, cwd, feed = setup
    env = dict(env, PYTHONPATH=str(ROOT))
    w1 = start(env, cwd)
    try:
        wait_for(lambda: len(masto.statuses) == 1 and len(x.tweets) == 1, what="first posts")
        if env["DATABASE_URL"].startswith("sqlite"):  # SQLite: one worker
            w2 = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=cwd,
                                capture_output=True, text=True, timeout=60)
            assert w2.returncode == 1
            assert "another crier worker" in w2.stderr + w2.stdout
        else:  # PostgreSQL: a second worker joins, and posts nothing already posted
            w2 = start(env, cwd)
            time.sleep(3)  # a few dispatch passes of both (dispatch_interval = 1)
            w2.send_signal(signal.SIGTERM)
            out2, _ = w2.communicate(timeout=20)
            assert w2.returncode == 0, out2
            assert "another crier worker" not in out2 and "stopped" in out2
            assert len(masto.statuses) == 1 and len(x.tweets) == 1
            # nor polls the feed the first polled (poll_interval = 60: one cycle)
            assert sum(1 for m, p, _ in feed.requests if m == "GET" and p == "/feed.xml") == 1
        w1.send_signal(signal.SIGTERM)
        out, _ = w1.communicate(timeout=20)
        assert w1.returncode == 0, out
        assert "stopped" in out
        assert "tok" not in out.replace("token", "")
    finally:
        if w1.poll() is None:
            w1.kill()
    # a restart announces nothing again
    w3 = start(env, cwd)
    try:
        time.sleep(3)
    finally:
        w3.send_signal(signal.SIGTERM)
        w3.communicate(timeout=20)
    assert len(masto.statuses) == 1 and len(x.tweets) == 1


def test_the_worker_posts_a_queued_promo_once_across_a_restart(setup):
    """Queued from the CLI, fired by the real worker; a restart does not post it again."""
    env, masto, x, cwd, _ = setup
    env = dict(env, PYTHONPATH=str(ROOT))
    cfg = Path(env["CRIER_CONFIG"])
    cfg.write_text(cfg.read_text().replace("dispatch_interval = 1",
                                           "dispatch_interval = 1\n[promos]\nmin_gap = 0"))
    subprocess.run([sys.executable, "-m", "bot", "run", "--once"], env=env, cwd=cwd,
                   check=True, capture_output=True, timeout=60)
    add = subprocess.run([sys.executable, "-m", "bot", "queue", "add", "Queued promo",
                          "--in", "3s"], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    assert add.returncode == 0, add.stderr + add.stdout
    w = start(env, cwd)
    try:
        wait_for(lambda: any(s["text"] == "Queued promo" for s in masto.statuses)
                 and any(t["text"] == "Queued promo" for t in x.tweets), what="the promo")
    finally:
        w.send_signal(signal.SIGTERM)
        w.communicate(timeout=20)
    w = start(env, cwd)
    try:
        time.sleep(3)
    finally:
        w.send_signal(signal.SIGTERM)
        w.communicate(timeout=20)
    assert sum(s["text"] == "Queued promo" for s in masto.statuses) == 1
    assert sum(t["text"] == "Queued promo" for t in x.tweets) == 1


def test_a_poll_that_announces_sends_at_once_not_at_the_next_dispatch_round(setup):
    """The dispatch round is an hour apart here: the announcement still goes out within
    seconds of the poll that found the episode (the poll job wakes the dispatch job)."""
    env, masto, x, cwd, _feed = setup
    cfg = Path(env["CRIER_CONFIG"])
    cfg.write_text(cfg.read_text().replace("dispatch_interval = 1", "dispatch_interval = 3600"))
    w = start(dict(env, PYTHONPATH=str(ROOT)), cwd)
    try:
        wait_for(lambda: len(masto.statuses) == 1 and len(x.tweets) == 1, timeout=20,
                 what="the announcement, long before the next dispatch round")
    finally:
        w.send_signal(signal.SIGTERM)
        out, _ = w.communicate(timeout=20)
    assert w.returncode == 0, out
