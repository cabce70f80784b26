"""WebSub through the real `crier run --web` (a subprocess): the worker discovers the hub in the
feed, subscribes through its `websub` job, the control room in the same process answers the
hub's verification, and a signed notification makes the worker poll and post at once, though
the feed's poll interval is 15 minutes; `crier status` says how the feed is listened to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.conftest import ROOT
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.websub_hub import WebSubHub
from tests.feedgen import item, rss
from tests.test_web_process import _port
from tests.test_websub import with_hub
from tests.test_worker import wait_for


def test_the_worker_subscribes_and_a_notification_posts_within_seconds(tmp_path, db_url):
    now = datetime.now(UTC).replace(microsecond=0)
    items = [item(k, published=now - timedelta(days=7 * (10 - k))) for k in (1, 2)]
    with FeedServer() as feed, MastodonServer(token="tok") as masto, WebSubHub() as hub:
        url = f"{feed.url}/show.xml"
        feed.set_feed("/show.xml", with_hub(rss(items), hub.url, url))
        port = _port()
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f"""show = "Pushed"
feed = "{url}"
poll_interval = "15m"
dispatch_interval = 60
public_url = "http://127.0.0.1:{port}"
allow_private_networks = ["127.0.0.1/32"]
[promos]
min_gap = 0
[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{masto.url}"
timeout = 3
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update(CRIER_CONFIG=str(cfg), DATABASE_URL=db_url, PYTHONPATH=str(ROOT),
                   CRIER_MASTO_ACCESS_TOKEN="tok")
        proc = subprocess.Popen([sys.executable, "-m", "bot", "-v", "run", "--web", "--port",
                                 str(port)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            sub = hub.wait_verified(url, timeout=60)
            assert sub.callback.startswith(f"http://127.0.0.1:{port}/websub/")
            items.append(item(3, published=datetime.now(UTC), title="Pushed episode three"))
            feed.set_feed("/show.xml", with_hub(rss(items), hub.url, url))
            t0 = time.monotonic()
            assert hub.publish(url) == [202]
            wait_for(lambda: any("Pushed episode three" in s["text"] for s in masto.statuses),
                     timeout=15, what="the pushed episode's post")
            took = time.monotonic() - t0
            print(f"notification -> post: {took:.2f} s")
            assert took < 10, took        # polling alone would take up to 15 minutes
            st = subprocess.run([sys.executable, "-m", "bot", "status"], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
            assert st.returncode == 0, st.stderr
            assert "listening: WebSub lease until" in st.stdout
            assert "polling every 15 min; last notification" in st.stdout and "via websub" \
                in st.stdout
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert sub.secret not in out
        assert len(masto.statuses) == 1
