"""The whole worker cycle over real HTTP: a loopback feed server, the Mastodon and X contract
servers, the real adapters (Mastodon.py, tweepy) and a real database (SQLite and PostgreSQL).

The clock is injected and moved by hand; nothing sleeps to wait for time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.service import Service, build_publishers
from bot.store import Store
from tests.feedgen import item, rss
from tests.world import M_TOKEN, new_episode


# -- detection ----------------------------------------------------------------------------
def test_first_run_records_back_catalogue_and_announces_nothing(world):
    report, outcomes = world.cycle()
    assert report.result == "baseline" and report.baseline == 5
    assert outcomes == [] and world.masto.statuses == [] and world.x.tweets == []
    report, _ = world.cycle()
    assert report.result == "unchanged"


def test_first_run_backfill_announces_newest_n(world):
    report = world.svc.poll(force=True, backfill=2)
    assert report.baseline == 3 and len(report.announced) == 2
    world.drain()
    m, x = world.texts()
    assert len(m) == 2 and len(x) == 2
    assert "Episode 4" in m[0] and "Episode 5" in m[1]  # oldest first


def test_new_episode_is_announced_once_on_each_account(world):
    world.cycle()
    it = new_episode(world)
    report, outcomes = world.cycle()
    assert report.result == "new" and len(report.announced) == 1
    assert {o.status for o in outcomes} == {"sent"}
    m, x = world.texts()
    assert len(m) == 1 and len(x) == 1
    assert it.title in m[0] and it.link in m[0]
    assert it.title in x[0]
    sent = world.rows("sent")
    assert {d.account for d in sent} == {"masto", "x"}
    assert all(d.remote_id and d.remote_url for d in sent)
    # the Mastodon status is public, in the feed's language, with an Idempotency-Key
    status = world.masto.statuses[0]
    assert status["visibility"] == "public" and status["language"] == "en"
    assert status["idempotency_key"] == next(d for d in sent if d.account == "masto"
                                             ).idempotency_key
    # polling again announces nothing more, even if the server ignores conditional GET
    world.feed_srv.set_feed("/feed.xml", rss(world.items), etag=False, last_modified=False)
    for _ in range(2):
        report, outcomes = world.cycle()
        assert not report.announced and outcomes == []
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1


def test_conditional_get_304_costs_no_parse(world):
    world.cycle()
    world.feed_srv.requests.clear()
    report, _ = world.cycle()
    assert report.result == "unchanged"
    (method, path, headers), = world.feed_srv.requests
    assert headers.get("If-None-Match") or headers.get("If-Modified-Since")
    assert headers["User-Agent"].startswith("crier/")


def test_guid_rewrite_announces_nothing(world):
    world.cycle()
    world.items = [i.with_(guid=f"https://newhost.example/guid/{i.n}") for i in world.items]
    world.publish_feed()
    report, outcomes = world.cycle()
    assert report.result == "nothing-new" and outcomes == []
    # ...and the migrated episodes stay known under their new GUIDs alone
    world.items = [i.with_(enclosure=i.enclosure.replace("buzzsprout.com", "cdn.example"),
                           link=i.link + "?x=1", title=i.title + " (remastered)")
                   for i in world.items]
    world.publish_feed()
    report, outcomes = world.cycle()
    assert report.result == "nothing-new" and outcomes == []


def test_enclosure_url_change_announces_nothing(world):
    world.cycle()
    world.items = [i.with_(enclosure=f"https://traffic.example/{i.n}.mp3?sig=abc")
                   for i in world.items]
    world.publish_feed()
    report, _ = world.cycle()
    assert report.result == "nothing-new"


def test_flood_guard_holds_and_release_announces(world):
    world.cycle()
    for n in range(6, 11):
        new_episode(world, n)
    report, outcomes = world.cycle()
    assert len(report.held) == 5 and outcomes == []
    st = world.svc.status()
    assert len(st["held_episodes"]) == 5
    assert world.masto.statuses == []
    released = world.svc.release(report.held[:2])
    assert len(released) == 2
    world.drain()
    assert len(world.masto.statuses) == 2 and len(world.x.tweets) == 2
    assert len(world.svc.status()["held_episodes"]) == 3


def test_future_dated_episode_waits_for_its_date(world):
    world.cycle()
    it = item(6, published=world.clock.now + timedelta(hours=2))
    world.items.append(it)
    world.publish_feed()
    report, outcomes = world.cycle()
    assert len(report.scheduled) == 1 and outcomes == []
    world.clock.advance(hours=1)
    world.svc.dispatch()
    assert world.masto.statuses == []
    world.clock.advance(hours=1, minutes=1)
    world.drain()
    assert len(world.masto.statuses) == 1 and it.title in world.masto.statuses[0]["text"]


def test_feed_errors_are_recorded_and_retried_with_backoff(world):
    world.cycle()
    world.feed_srv.fail_next("/feed.xml", status=500, count=1)
    report, _ = world.cycle()
    assert report.result == "error" and "500" in report.error
    feed = world.store.all_feeds()[0]
    assert feed.error_count == 1 and feed.next_poll_at > world.clock.now
    # not due yet: a non-forced poll waits
    assert world.svc.poll().result == "waiting"
    new_episode(world)
    world.clock.now = feed.next_poll_at
    report = world.svc.poll()
    assert report.result == "new"
    assert world.store.all_feeds()[0].error_count == 0


def test_unreadable_feed_is_an_error_on_that_feed_only(world):
    world.cycle()
    world.feed_srv.set_feed("/feed.xml", b"<html><body>Maintenance</body></html>")
    report, _ = world.cycle()
    assert report.result == "error"
    assert world.store.all_feeds()[0].last_error
    world.publish_feed()
    report, _ = world.cycle()
    assert report.result == "unchanged"  # the same bytes as the last good poll
    new_episode(world)
    report, _ = world.cycle()
    assert report.result == "new"


def test_permanent_redirect_is_remembered_and_reported(world):
    world.cycle()
    world.feed_srv.set_feed("/new-feed.xml", rss(world.items))
    world.feed_srv.redirect("/feed.xml", "/new-feed.xml", status=301)
    report, _ = world.cycle()
    assert any("moved permanently" in w for w in report.warnings)
    assert world.store.all_feeds()[0].redirect_url.endswith("/new-feed.xml")
    world.feed_srv.requests.clear()
    world.cycle()
    assert world.feed_srv.requests[0][1] == "/new-feed.xml"


# -- delivery -----------------------------------------------------------------------------
def test_500_then_success_posts_once(world):
    world.cycle()
    world.masto.fail_next(500, count=1)
    world.x.fail_next(503, count=1)
    new_episode(world)
    report, outcomes = world.cycle()
    assert {o.status for o in outcomes} == {"pending"}
    assert all(d.needs_check for d in world.rows("pending"))
    world.drain()
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1
    assert {d.status for d in world.rows()} == {"sent"}


def test_timeout_after_the_server_created_the_post_makes_no_duplicate(world):
    world.cycle()
    world.masto.timeout_after_create_next(count=1, delay=3)
    world.x.timeout_after_create_next(count=1, delay=3)
    new_episode(world)
    _, outcomes = world.cycle()
    assert {o.status for o in outcomes} == {"pending"}
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1  # created anyway
    world.drain()
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1
    sent = world.rows("sent")
    assert len(sent) == 2
    assert {d.remote_id for d in sent} == {world.masto.statuses[0]["id"],
                                              world.x.tweets[0]["id"]}


def test_429_waits_for_the_reset_and_does_not_use_up_attempts(world):
    world.cycle()
    world.masto.rate_limit_next(reset_in_seconds=600, count=1)
    world.x.rate_limit_next(reset_in_seconds=900, count=1)
    new_episode(world)
    _, outcomes = world.cycle()
    assert {o.status for o in outcomes} == {"pending"}
    rows = {d.account: d for d in world.rows("pending")}
    real_now = datetime.now(UTC)
    assert timedelta(seconds=590) <= rows["masto"].next_attempt_at - real_now \
        <= timedelta(seconds=610)
    assert timedelta(seconds=890) <= rows["x"].next_attempt_at - real_now \
        <= timedelta(seconds=910)
    assert rows["masto"].attempts == 0
    world.svc.dispatch()  # not yet due: nothing happens
    assert world.masto.statuses == []
    world.drain()
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1


def test_401_stops_the_account_and_keeps_the_post(world):
    world.cycle()
    world.masto.revoke_token()
    new_episode(world)
    _, outcomes = world.cycle()
    by = {o.account: o for o in outcomes}
    assert by["masto"].status == "pending" and "token" in by["masto"].error.lower() \
        or "401" in by["masto"].error or "auth" in by["masto"].error.lower()
    assert by["x"].status == "sent"
    row = world.rows("pending")[0]
    assert row.error_kind == "auth" and row.attempts == 0
    assert M_TOKEN not in row.last_error
    st = world.svc.status()
    assert st["pending"][0]["last_error"]


def test_422_is_a_permanent_failure_shown_with_the_platform_message(world):
    world.cycle()
    world.masto.fail_next(422, count=1, body={"error": "Validation failed: Text is spam"})
    new_episode(world)
    _, outcomes = world.cycle()
    by = {o.account: o for o in outcomes}
    assert by["masto"].status == "failed"
    assert "Validation failed: Text is spam" in by["masto"].error
    world.drain()
    assert world.masto.statuses == []  # not retried blindly
    failed = world.svc.status()["failed"]
    assert failed[0]["last_error"].endswith("Validation failed: Text is spam") or \
        "Validation failed: Text is spam" in failed[0]["last_error"]
    # the host fixes it and asks again
    assert world.svc.retry_failed([failed[0]["id"]]) == 1
    world.drain()
    assert len(world.masto.statuses) == 1


@pytest.mark.parametrize("posted_before_crash", [True, False])
def test_killed_between_sending_and_sent_then_restarted(world, posted_before_crash):
    """The process claims a delivery (sending), maybe posts it, and dies before recording."""
    world.cycle()
    new_episode(world)
    world.svc.poll(force=True)
    for d in world.rows("pending"):
        d = world.store.delivery(d.id)
        if d.text is None:
            world.svc._compose_delivery(d, world.settings.account(d.account))
            d = world.store.delivery(d.id)
        assert world.store.claim(d.id, "dead-process", world.clock.now)
        if posted_before_crash:
            from bot.service import _post_from_row
            world.svc.publishers[d.account].publish(_post_from_row(d), d.idempotency_key)
    # ...crash. A new process starts; the lease has not yet expired: nothing is touched.
    world.start()
    assert world.svc.dispatch() == []
    assert len(world.rows("sending")) == 2
    world.clock.advance(minutes=3)
    world.drain()
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1
    assert {d.status for d in world.rows()} == {"sent"}


def test_two_processes_never_send_the_same_delivery(world):
    world.cycle()
    new_episode(world)
    world.svc.poll(force=True)
    other = Service(world.settings, Store(world.db_url), clock=world.clock,
                    publishers=build_publishers(world.settings))
    a, b = world.svc.dispatch(), other.dispatch()
    other.store.close()
    assert len(a) + len(b) == 2
    assert len(world.masto.statuses) == 1 and len(world.x.tweets) == 1


def test_worker_lock_admits_one_worker(world):
    assert world.svc.acquire_worker_lock("one")
    assert not world.svc.acquire_worker_lock("two")
    assert world.svc.acquire_worker_lock("one")  # renew
    world.clock.advance(minutes=5)  # the first died without releasing: the lease expires
    assert world.svc.acquire_worker_lock("two")


def test_dry_run_records_and_sends_nothing(world):
    world.cycle()
    new_episode(world)
    svc = Service(world.settings, world.store, clock=world.clock, dry_run=True,
                  publishers=build_publishers(world.settings, dry_run=True))
    svc.poll(force=True)
    outcomes = svc.dispatch()
    assert {o.status for o in outcomes} == {"dry_run"}
    assert all(o.length <= o.limit for o in outcomes)
    assert world.masto.statuses == [] and world.x.tweets == []
    assert {d.status for d in world.rows()} == {"dry_run"}


def test_mastodon_limit_comes_from_the_instance(world):
    world.masto.max_characters = 11000
    world.cycle()
    new_episode(world)
    world.cycle()
    row = next(d for d in world.rows("sent") if d.account == "masto")
    assert row.limit == 11000


def test_unchanged_polls_are_written_at_most_every_few_minutes(world):
    """Polling every minute does not mean a database write every minute: an unchanged poll
    that only moves the poll times is recorded when the last record is QUIET_WRITE old;
    anything else (new validators, an error cleared) is written at once."""
    from bot.service import QUIET_WRITE
    world.cycle()
    world.cycle()
    recorded = world.store.all_feeds()[0].last_poll_at
    assert recorded == world.clock.now
    world.clock.advance(minutes=1)
    report, _ = world.cycle()
    assert report.result == "unchanged"
    assert world.store.all_feeds()[0].last_poll_at == recorded  # not written
    world.clock.advance(seconds=QUIET_WRITE.total_seconds())
    world.cycle()
    assert world.store.all_feeds()[0].last_poll_at == world.clock.now  # written
    # the same body under a new ETag (a host's rebuild): the new ETag is written at once
    world.clock.advance(minutes=1)
    world.publish_feed(etag='"v2"')
    report, _ = world.cycle()
    assert report.result == "unchanged"  # (by the body's hash)
    row = world.store.all_feeds()[0]
    assert row.etag == '"v2"' and row.last_poll_at == world.clock.now
    # a restarted service (no memory of the feed) reads the row again and carries on
    world.start()
    world.clock.advance(minutes=1)
    report, _ = world.cycle()
    assert report.result == "unchanged"
    assert world.store.all_feeds()[0].last_poll_at == world.clock.now - timedelta(minutes=1)


def test_a_dead_workers_lock_does_not_block_the_next_one(world):
    """kill -9 leaves the lease behind; a worker on the same machine whose pid is gone does
    not make the next one wait for it to run out. A live holder still blocks."""
    import os
    import socket
    import subprocess
    import sys
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    assert world.svc.acquire_worker_lock(f"{host}:{dead.pid}")
    assert world.svc.acquire_worker_lock(f"{host}:{os.getpid()}:new")  # took over
    assert world.store.lock_holder("worker")["owner"] == f"{host}:{os.getpid()}:new"
    assert not world.svc.acquire_worker_lock(f"{host}:1:third")  # the holder is alive
    assert not world.svc.acquire_worker_lock(f"otherhost:{dead.pid}")
