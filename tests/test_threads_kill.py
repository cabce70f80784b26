"""Killed between creating the Threads container and publishing it (kill -9): the restarted
publisher publishes that same container, once. The checkpoint lives in a real SQLite Store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bot.models import Media, Post
from bot.platforms.threads import ThreadsPublisher
from bot.store import Store
from tests.fakes.threads_server import ThreadsServer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "kill-test-token"
KEY = "0123456789abcdef0123456789abcdef"
IMAGE = "https://cdn.example.org/cover.png"

CHILD = textwrap.dedent("""
    import sys
    from bot.models import Media, Post
    from bot.platforms.threads import ThreadsPublisher
    from bot.store import Store
    url, api, token, key, image = sys.argv[1:6]
    store = Store(url)
    pub = ThreadsPublisher("threads", access_token=token, api_base=api, checkpoints=store,
                           status_wait=600, status_poll=0.05, timeout=5)
    pub.publish(Post(text="Killed mid-post", media=(Media(image, alt="cover"),)), key)
    print("PUBLISHED")   # never reached: killed while the container is processing
""")


def wait_for(condition, what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_killed_between_container_and_publish_posts_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'crier.db'}"
    store = Store(url)
    store.migrate()
    with ThreadsServer(access_token=TOKEN, processing_polls=10**6) as srv:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        child = subprocess.Popen([sys.executable, "-c", CHILD, url, srv.url, TOKEN, KEY, IMAGE],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            wait_for(lambda: store.checkpoint(KEY) is not None or child.poll() is not None,
                     "the container's checkpoint")
            container = store.checkpoint(KEY)["container"]
            seen = sum(1 for r in srv.requests if r["route"] == "status")
            wait_for(lambda: sum(1 for r in srv.requests if r["route"] == "status") > seen + 2,
                     "the child polling the container")
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
        assert not srv.posts and list(srv.containers) == [container]

        with srv.lock:                              # Meta finished fetching the image
            srv.containers[container]["polls_left"] = 0
        restarted = ThreadsPublisher("threads", access_token=TOKEN, api_base=srv.url,
                                     checkpoints=Store(url), timeout=5)
        post = Post(text="Killed mid-post", media=(Media(IMAGE, alt="cover"),))
        got = restarted.publish(post, KEY)
        again = restarted.publish(post, KEY)        # and a retry after that is a no-op
        assert len(srv.posts) == 1 and list(srv.containers) == [container]
        assert srv.posts[0]["container"] == container
        assert got.remote_id == again.remote_id == srv.posts[0]["id"]
        creates = [r for r in srv.requests if r["route"] == "create"]
        assert len(creates) == 1
