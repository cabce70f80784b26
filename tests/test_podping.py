"""The podping watcher (issue 17) against a local Hive API node (tests/fakes/hive_server.py)
whose blocks carry podpings in the documented format: a ping for a followed feed makes it due
at once and its new episode goes out once; pings for other feeds, from writers the `podping`
account does not follow, with malformed JSON or naming no feed are ignored (the malformed
ones logged); the legacy id "podping" is read; a restart resumes from the stored block and
catches up after downtime, at most MAX_CATCH_UP blocks back; a failing node (500, timeout,
JSON-RPC error, refused connection) hands over to the next; one watcher across workers.
A real fleet, the local Mastodon server, an injected clock; SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import socket
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import pytest

from bot import push
from bot.deployment import load_deployment
from bot.fleet import Fleet
from bot.podping import (
    BLOCKS_PER_ROUND,
    CURSOR,
    LEASE_TTL,
    Watcher,
    custom_jsons,
    describe,
    podping_status,
)
from bot.store import Store
from tests.fakes.feed_server import FeedServer
from tests.fakes.hive_server import HiveServer
from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss

TOKEN = "tok-podping"
OTHER = "https://feeds.example.org/someone-else.xml"


class Net:
    """One show polled every 15 minutes, one Mastodon account, one Hive node."""

    def __init__(self, stack: ExitStack, tmp, db_url: str, monkeypatch):
        self.feed = stack.enter_context(FeedServer())
        self.masto = stack.enter_context(MastodonServer(token=TOKEN))
        self.hive = stack.enter_context(HiveServer(writers=("podping.test", "podping.two")))
        self.t = [datetime.now(UTC).replace(microsecond=0)]
        self.items = [item(k, published=self.t[0] - timedelta(days=7 * (10 - k)))
                      for k in (1, 2)]
        self.publish()
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("CRIER_M_ACCESS_TOKEN", TOKEN)
        self.url = f"http://127.0.0.1:{self.feed.port}/show.xml"
        self.db_url = db_url
        cfg = tmp / "crier.toml"
        cfg.write_text(f"""show = "Pinged"
feed = "{self.url}"
poll_interval = "15m"
[promos]
min_gap = 0
[podping]
nodes = ["{self.hive.url}"]
[[accounts]]
platform = "mastodon"
name = "m"
instance = "{self.masto.url}"
timeout = 2
""")
        self.store = Store(db_url)
        stack.callback(self.store.close)
        self.store.migrate()
        self.fleet = Fleet(self.store, lambda: load_deployment(cfg), clock=self.clock)
        stack.callback(self.fleet.close)
        self.stack = stack
        self.woken: list[int] = []
        push.set_waker(lambda: self.woken.append(1))

    def clock(self) -> datetime:
        return self.t[0]

    def watcher(self, nodes=None, *, owner: str = "host-a:1", store: Store | None = None,
                **kw) -> Watcher:
        return Watcher(store or self.store, nodes or [self.hive.url], owner=owner,
                       clock=self.clock, **kw)

    def publish(self) -> None:
        self.feed.set_feed("/show.xml", rss(self.items, title="Pinged"))

    def new_episode(self) -> str:
        k = len(self.items) + 1
        self.items.append(item(k, published=self.t[0] - timedelta(minutes=1),
                               title=f"Episode {k} pinged"))
        self.publish()
        return f"Episode {k} pinged"

    def row(self):
        return self.store.all_feeds()[0]

    def baseline(self) -> None:
        """The first run (the back catalogue, nothing posted), then a minute later."""
        self.fleet.poll()
        self.fleet.dispatch()
        self.t[0] += timedelta(minutes=1)


@pytest.fixture
def net(db_url, tmp_path, monkeypatch):
    with ExitStack() as stack:
        yield Net(stack, tmp_path, db_url, monkeypatch)
    push.set_waker(None)


def ranges(hive: HiveServer) -> list[int]:
    return [p["starting_block_num"] for m, p in hive.requests if m == "block_api.get_block_range"]


def test_a_ping_for_a_followed_feed_makes_it_due_and_the_episode_goes_out_once(net):
    net.baseline()
    w = net.watcher()
    first = w.round()                                  # the first start: from the head on
    assert first.head == net.hive.head and first.last is None
    assert net.store.cursor(CURSOR)["position"] == net.hive.head
    title = net.new_episode()
    assert net.fleet.poll() == []                      # not due for another ~14 minutes
    fid = net.row().id
    net.hive.ping([OTHER, net.url])                    # one podping naming two feeds
    net.hive.advance(2)
    r = w.round()
    assert r.polled == [fid] and r.pings == 1 and r.last == net.hive.head
    assert net.woken == [1]                            # the worker polls at once
    row = net.row()
    assert row.next_poll_at == net.t[0] and row.last_push_via == "podping"
    [(_ref, report)] = net.fleet.poll()
    assert report.result == "new" and len(report.announced) == 1
    net.fleet.dispatch()
    assert [s["text"] for s in net.masto.statuses if title in s["text"]]
    # the same feed pinged again (a host pings twice): one conditional GET, nothing posted
    net.t[0] += timedelta(seconds=30)
    net.hive.ping([net.url.replace("http://", "https://") + "/"], writer="podping.two")
    assert w.round().polled == [fid]
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
    net.fleet.dispatch()
    assert len(net.masto.statuses) == 1
    st = podping_status(net.store, net.t[0], feeds=net.store.all_feeds())
    assert st["watching"] and st["last_block"] == net.hive.head
    assert st["show_last_ping_at"] == net.t[0].isoformat(timespec="seconds")
    assert "podping: watching since" in describe(st)
    assert "last ping for this show: " + st["show_last_ping_at"] in describe(st)
    assert net.fleet.services[0].status()["podping"]["last_block"] == net.hive.head


def test_other_feeds_strangers_and_malformed_pings_are_ignored(net, caplog):
    net.baseline()
    w = net.watcher()
    w.round()
    due = net.row().next_poll_at
    net.hive.ping([OTHER])                                          # another feed
    net.hive.ping([net.url], writer="mallory")                      # not followed by podping
    bad = net.hive.custom_json("pp_podcast_update", '{"version":"1.0","iris":[')
    net.hive.custom_json("pp_podcast_update", '{"version":"1.0","medium":"podcast",'
                                              '"reason":"update","iris":[]}')
    net.hive.custom_json("pp_podcast_update", '["not", "an", "object"]')
    net.hive.custom_json("follow", f'{{"url": "{net.url}"}}')       # another app's id
    net.hive.custom_json("podping-livetest", f'{{"url": "{net.url}"}}')
    net.hive.custom_json("pp_startup", f'{{"url": "{net.url}"}}')  # a writer's startup note
    with caplog.at_level(logging.WARNING, logger="bot.podping"):
        r = w.round()
    assert r.polled == [] and r.pings == 1 and r.ignored == 1 and r.malformed == 3
    assert r.last == net.hive.head
    assert net.row().next_poll_at == due and net.row().last_push_at is None
    assert net.woken == []
    lines = [m for m in caplog.messages if "malformed JSON" in m]
    assert len(lines) == 2 and f"block {bad}" in lines[0] and "podping.test" in lines[0]
    assert "not an object" in lines[1]
    assert any("names no feed" in m for m in caplog.messages)
    assert not any("mallory" in m for m in caplog.messages)        # debug only: no noise


def test_the_legacy_id_and_other_mediums_and_reasons_are_read(net):
    net.baseline()
    w = net.watcher()
    w.round()
    fid = net.row().id
    net.hive.ping_legacy(url=net.url)
    assert w.round().polled == [fid]
    net.t[0] += timedelta(minutes=1)
    net.hive.ping_legacy(urls=[OTHER, net.url])
    assert w.round().polled == [fid]
    net.t[0] += timedelta(minutes=1)
    net.hive.ping([net.url], medium="podcastL", reason="liveEnd")
    assert w.round().polled == [fid]
    assert net.row().last_push_at == net.t[0]


def _dead_owner() -> str:
    """The lease owner of a crier that died on this machine (its pid is gone)."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return f"{socket.gethostname()}:{p.pid}"


def test_a_restart_resumes_from_the_stored_block(net):
    """The worker was killed (no clean stop, its lease still held): the new one takes the
    lease over at once and reads on from the block after the last one read."""
    net.baseline()
    net.watcher(owner=_dead_owner()).round()
    stopped = net.hive.head
    at = net.hive.ping([net.url])                       # while crier is down
    net.hive.advance(5)
    other = Store(net.db_url)                           # a new process: its own connection
    net.stack.callback(other.close)
    net.hive.requests.clear()
    r = net.watcher(store=other, owner="host-a:2").round()
    assert ranges(net.hive) == [stopped + 1]            # from where it stopped, not the head
    assert r.first == stopped + 1 and r.polled == [net.row().id] and at <= r.last
    assert other.cursor(CURSOR)["position"] == net.hive.head


def test_catching_up_after_downtime_takes_rounds_and_is_bounded(net, caplog):
    net.baseline()
    w = net.watcher()
    w.round()
    net.hive.advance(2 * BLOCKS_PER_ROUND)              # a long stop, the ping at its end
    net.hive.ping([net.url])
    r = w.round()
    assert not r.caught_up and r.polled == [] and r.last < net.hive.head
    while not r.caught_up:
        r = w.round()
    assert r.polled == [net.row().id]
    # down for longer than the window: only the last `max_catch_up` blocks are read
    net.t[0] += timedelta(minutes=1)
    lost = net.hive.ping([net.url])
    net.hive.advance(300)
    net.hive.requests.clear()
    with caplog.at_level(logging.WARNING, logger="bot.podping"):
        r = net.watcher(max_catch_up=100).round()
    assert r.skipped == 201 and r.polled == [] and r.first == net.hive.head - 99
    assert min(ranges(net.hive)) > lost
    assert any("301 blocks" in m and "behind" in m for m in caplog.messages)
    assert net.store.cursor(CURSOR)["position"] == net.hive.head


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("fault", ["500", "timeout", "rpc_error", "refused"])
def test_a_failing_node_hands_over_to_the_next(net, fault, caplog):
    net.baseline()
    bad = net.stack.enter_context(HiveServer())
    first = _closed_port() if fault == "refused" else bad.url
    if fault == "500":
        bad.fail_next(status=500, count=None)
    elif fault == "timeout":
        bad.fail_next(delay=3.0, count=None)
    elif fault == "rpc_error":
        bad.fail_next(rpc_error=(-32003, "Unable to acquire database lock"), count=None)
    w = net.watcher([first, net.hive.url], timeout=(0.5, 0.5))
    with caplog.at_level(logging.WARNING, logger="bot.podping"):
        assert w.round().error is None                  # the first start, through node 2
    assert w.client.current == net.hive.url
    assert any(first in m and "failed" in m for m in caplog.messages)
    net.hive.ping([net.url])
    asked = len(bad.requests)
    assert w.round().polled == [net.row().id]
    assert len(bad.requests) == asked                   # the node that answers is kept


def test_every_node_failing_leaves_the_cursor_and_backs_off(net):
    net.baseline()
    w = net.watcher([net.hive.url])
    w.round()
    stopped = net.hive.head
    net.hive.ping([net.url])
    net.hive.fail_next(status=503, count=1)
    r = w.round()
    assert r.error and "HTTP 503" in r.error and r.polled == []
    assert net.store.cursor(CURSOR)["position"] == stopped
    asked = len(net.hive.requests)
    assert "next try at" in w.round().error             # in its backoff: not asked again
    assert len(net.hive.requests) == asked
    net.t[0] += timedelta(seconds=6)
    assert w.round().polled == [net.row().id]           # after it: read from where it stopped


def test_one_watcher_across_workers(net):
    net.baseline()
    a = net.watcher(owner="host-a:1")
    b = net.watcher(owner="host-b:1")
    assert a.round() is not None
    assert b.round() is None                            # a holds the lease
    net.hive.ping([net.url])
    assert b.round() is None and a.round().polled == [net.row().id]
    net.t[0] += LEASE_TTL + timedelta(seconds=1)        # a stopped renewing (died elsewhere)
    net.hive.ping([net.url])
    r = b.round()
    assert r is not None and r.polled == [net.row().id]
    assert a.round() is None
    assert podping_status(net.store, net.t[0])["worker"] == "host-b:1"


def test_writers_are_the_accounts_podping_follows_read_again_hourly(net):
    net.baseline()
    w = net.watcher()
    w.round()
    net.hive.ping([net.url], writer="podping.new")      # not (yet) followed
    assert w.round().ignored == 1
    net.hive.follow("podping.new")
    net.hive.ping([net.url], writer="podping.new")
    assert w.round().ignored == 1                       # the list is an hour old at most
    net.t[0] += timedelta(hours=1, seconds=1)
    net.hive.ping([net.url], writer="podping.new")
    assert w.round().polled == [net.row().id]
    # a restart while the nodes cannot say who follows whom: the stored list still works
    net.hive.fail_next(count=None, method="condenser_api.get_following")
    net.t[0] += timedelta(minutes=1)
    net.hive.ping([net.url], writer="podping.new")
    assert net.watcher(owner="host-a:1").round().polled == [net.row().id]


def test_both_operation_shapes_are_read():
    block = {"transactions": [
        {"operations": [["custom_json", {"id": "podping"}], ["vote", {"voter": "a"}]]},
        {"operations": [{"type": "custom_json_operation", "value": {"id": "pp_video_live"}},
                        {"type": "transfer_operation", "value": {"id": "x"}}]},
        "not a transaction"]}
    assert [op["id"] for op in custom_jsons(block)] == ["podping", "pp_video_live"]


def test_the_podping_table_of_the_config(tmp_path):
    from bot.config import HIVE_NODES
    from bot.errors import ConfigError
    cfg = tmp_path / "crier.toml"
    base = 'show = "S"\nfeed = "https://example.org/rss"\n'
    cfg.write_text(base)
    dep = load_deployment(cfg, env={})
    assert dep.podping_enabled and dep.podping_nodes == HIVE_NODES
    assert "https://api.hive.blog" in HIVE_NODES
    cfg.write_text(base + '[podping]\nnodes = ["http://127.0.0.1:8091/", "https://h.example"]\n')
    assert load_deployment(cfg, env={}).podping_nodes == ("http://127.0.0.1:8091",
                                                          "https://h.example")
    cfg.write_text('[podping]\nenabled = false\n[[shows]]\n' + base)
    dep = load_deployment(cfg, env={})
    assert not dep.podping_enabled and not dep.shows[0].podping_enabled
    cfg.write_text(base + '[podping]\nnodes = ["wss://api.hive.blog"]\n')
    with pytest.raises(ConfigError) as e:
        load_deployment(cfg, env={})
    assert "line 4" in str(e.value) and "podping.nodes[0]" in str(e.value)
    cfg.write_text('[[shows]]\n' + base + '[shows.podping]\nenabled = false\n')
    with pytest.raises(ConfigError) as e:
        load_deployment(cfg, env={})
    assert "deployment-wide" in str(e.value)


def test_a_running_worker_posts_a_pinged_episode_within_seconds(db_url, tmp_path):
    """`crier run` as a subprocess: the feed is polled once an hour, yet a podping for it
    has its new episode posted within seconds; `crier status` shows the watcher; SIGTERM
    stops it and frees its lease."""
    import os
    import signal
    import subprocess
    import sys

    from bot.podping import LEASE
    from tests.conftest import ROOT
    from tests.test_worker import wait_for
    with FeedServer() as feed, MastodonServer(token=TOKEN) as masto, HiveServer() as hive:
        items = [item(k) for k in (1, 2)]
        feed.set_feed("/feed.xml", rss(items))
        url = f"{feed.url}/feed.xml"
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f'show = "Live"\nfeed = "{url}"\npoll_interval = "1h"\n'
                       f'dispatch_interval = 1\n[podping]\nnodes = ["{hive.url}"]\n'
                       f'[[accounts]]\nplatform = "mastodon"\nname = "m"\n'
                       f'instance = "{masto.url}"\ntimeout = 2\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
        env.update(CRIER_CONFIG=str(cfg), DATABASE_URL=db_url, CRIER_M_ACCESS_TOKEN=TOKEN,
                   PYTHONPATH=str(ROOT))
        crier = [sys.executable, "-m", "bot"]
        w = subprocess.Popen(crier + ["-v", "run"], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        store = Store(db_url)
        try:
            def started() -> bool:
                try:   # the worker makes the tables as it starts
                    return store.cursor(CURSOR) is not None
                except Exception:  # noqa: BLE001 (not yet)
                    return False
            wait_for(started, what="the watcher's start")
            wait_for(lambda: any(m == "GET" for m, _p, _h in feed.requests),
                     what="the first poll")
            items.append(item(3, title="Episode 3 pinged"))
            feed.set_feed("/feed.xml", rss(items))
            hive.ping([url])
            wait_for(lambda: len(masto.statuses) == 1, timeout=20, what="the pinged episode")
            assert "Episode 3 pinged" in masto.statuses[0]["text"]
            out = subprocess.run(crier + ["status"], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60).stdout
            assert "podping: watching since" in out and "last ping for this show: 20" in out
        finally:
            w.send_signal(signal.SIGTERM)
            log, _ = w.communicate(timeout=30)
        assert w.returncode == 0, log
        assert "podping: block" in log and "polling now" in log
        assert store.lock_holder(LEASE) is None
        assert len(masto.statuses) == 1
        store.close()
