"""Done when: killed (`kill -9`) mid-post and restarted, one Bluesky record, not two.

A real process (tests/bskycrash.py) posts to the real local PDS with its record key kept in
crier's Store (SQLite and PostgreSQL), through the loopback proxy, which holds the
createRecord call: once the PDS has written the record (or before it sees it), the process is
killed with SIGKILL, and a new one delivers the same post with the same idempotency key."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import Store
from tests.conftest import ROOT
from tests.fakes.xrpc_proxy import XrpcProxy

POST = "app.bsky.feed.post"


def _run(args: list[str], password: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRIER_SHOW_APP_PASSWORD=password)
    return subprocess.Popen([sys.executable, "-m", "tests.bskycrash", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("reached_the_pds", [True, False],
                         ids=["killed-after-the-write", "killed-before-the-write"])
def test_killed_mid_post_and_restarted_one_record(pds, db_url, reached_the_pds):
    show = pds.create_account(f"crash{secrets.token_hex(3)}.test")
    key = secrets.token_hex(16)
    text = "New episode 🎙️ out now #podcast"
    proxy = XrpcProxy(pds.url).start()
    try:
        held = proxy.hold("com.atproto.repo.createRecord", forward=reached_the_pds)
        args = [db_url, proxy.url, show.handle, key, text]
        first = _run(args, show.app_password)
        assert held.wait(60), first.stderr.read() if first.poll() is not None else "no call"
        first.send_signal(signal.SIGKILL)          # mid-post: the answer never came
        first.wait(30)
        assert first.returncode == -signal.SIGKILL
        stored_key = Store(db_url).checkpoint(key)["rkey"]   # kept before createRecord
        before = pds.list_records(show.did, POST)
        assert [r["uri"].rsplit("/", 1)[1] for r in before] == \
            ([stored_key] if reached_the_pds else [])

        second = _run(args, show.app_password)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        published = json.loads(out.strip().splitlines()[-1])
    finally:
        proxy.stop()
    records = pds.list_records(show.did, POST)
    assert len(records) == 1                       # one record, not two
    assert records[0]["uri"] == published["remote_id"]
    assert records[0]["uri"].endswith("/" + stored_key)
    assert records[0]["value"]["text"] == text
    # the restarted process wrote only when the first had not
    assert proxy.count("com.atproto.repo.createRecord") == (1 if reached_the_pds else 2)


@pytest.mark.parametrize("reached_the_pds", [True, False],
                         ids=["killed-after-the-write", "killed-before-the-write"])
def test_crier_run_killed_mid_post_announces_once_on_bluesky(pds, db_url, tmp_path,
                                                              reached_the_pds):
    """The real `crier run --once` with a Bluesky account: a new episode, the process
    killed -9 while its createRecord is on the way, time passes (its claim runs out), and
    another `crier run --once` finishes the delivery: one record, stored on the delivery."""
    import sqlalchemy as sa

    from bot.store import deliveries
    from tests.crash import _age, _engine
    from tests.fakes.feed_server import FeedServer
    from tests.feedgen import item, rss

    show = pds.create_account(f"run{secrets.token_hex(3)}.test")
    proxy = XrpcProxy(pds.url).start()
    try:
        with FeedServer() as feed:
            items = [item(1)]
            feed.set_feed("/feed.xml", rss(items))
            cfg = tmp_path / "crier.toml"
            cfg.write_text(f"""
show = "Crash Show"
feed = "{feed.url}/feed.xml"
poll_interval = 60
dispatch_interval = 1
first_run_backfill = 0

[[accounts]]
platform = "bluesky"
name = "sky"
handle = "{show.handle}"
service = "{proxy.url}"
timeout = 30
""")
            env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
            env.update(CRIER_CONFIG=str(cfg), DATABASE_URL=db_url, PYTHONPATH=str(ROOT),
                       CRIER_SKY_APP_PASSWORD=show.app_password)
            crier = [sys.executable, "-m", "bot"]
            first = subprocess.run(crier + ["run", "--once"], env=env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=120)
            assert first.returncode == 0, first.stderr    # the back catalogue: not announced
            items.append(item(2, published=datetime.now(UTC) - timedelta(minutes=1)))
            feed.set_feed("/feed.xml", rss(items))
            held = proxy.hold("com.atproto.repo.createRecord", forward=reached_the_pds)
            worker = subprocess.Popen(crier + ["run", "--once"], env=env, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True)
            assert held.wait(90), "the worker never posted"
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            assert len(pds.list_records(show.did, POST)) == (1 if reached_the_pds else 0)
            _age(db_url)       # its claim and lease as if the worker died long ago
            again = subprocess.run(crier + ["run", "--once"], env=env, cwd=tmp_path,
                                   capture_output=True, text=True, timeout=120)
            assert again.returncode == 0, again.stderr
    finally:
        proxy.stop()
    records = pds.list_records(show.did, POST)
    assert len(records) == 1                       # one record, not two
    assert items[-1].title in records[0]["value"]["text"]
    engine = _engine(db_url)
    with engine.begin() as c:
        rows = c.execute(sa.select(deliveries.c.status, deliveries.c.remote_id,
                                   deliveries.c.remote_url)).all()
        key = c.execute(sa.select(deliveries.c.idempotency_key)).scalar_one()
    engine.dispose()
    rkey = records[0]["uri"].rsplit("/", 1)[1]
    assert Store(db_url).checkpoint(key) == {"rkey": rkey}   # the key chosen before the kill
    assert [tuple(r) for r in rows] == [
        ("sent", records[0]["uri"], f"https://bsky.app/profile/{show.handle}/post/{rkey}")]
    assert proxy.count("com.atproto.server.createSession") == 2   # one per process
