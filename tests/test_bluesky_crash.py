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
