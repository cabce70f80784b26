"""The outbox never fakes or loses a post: X duplicates, `retry`, the state shown by `status`
and `queue show`. Against the local X and Mastodon servers with the real clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import CrierError
from tests.fakes.x_server import DUPLICATE_DETAIL
from tests.hostcli import host_cli

TEXT = "Support the show: https://example.com/support"


@pytest.fixture
def w(world):
    """The back catalogue recorded, no gap between posts, X stamping tweets by our clock."""
    world.x.clock = world.clock
    world.configure(min_gap=0)
    world.cycle()
    return world


@pytest.fixture
def cli(w, monkeypatch, tmp_path):
    return host_cli(w, monkeypatch, tmp_path)


def said_duplicate(error: str) -> bool:
    """X's own message is in the error (the world's 2-letter test secrets are starred in it)."""
    scrubbed = DUPLICATE_DETAIL
    for secret in ("ck", "cs", "at", "ats"):
        scrubbed = scrubbed.replace(secret, "***")
    return "already posted" in error and error.endswith(scrubbed)


def x_promo_rows(w):
    return [d for d in w.rows() if d.kind == "promo" and d.account == "x"]


# -- X refuses a duplicate: never matched to an older tweet ------------------------------

def test_a_403_duplicate_of_an_older_delivery_fails_with_x_message(w):
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    (first,) = x_promo_rows(w)
    assert first.status == "sent"
    w.clock.advance(minutes=1)                        # a second, different delivery, same text
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    second = next(d for d in x_promo_rows(w) if d.id != first.id)
    assert second.status == "failed", second
    assert second.remote_url is None and second.remote_id is None
    assert said_duplicate(second.last_error)
    assert len(w.x.tweets) == 1


def test_an_ambiguous_attempt_is_not_matched_to_an_older_tweet_of_the_same_text(w):
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    (first,) = x_promo_rows(w)
    w.clock.advance(minutes=2)
    w.x.fail_next(503)                               # ambiguous: did X create it?
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    second = next(d for d in x_promo_rows(w) if d.id != first.id)
    assert second.status == "pending" and second.needs_check
    w.drain()
    second = w.store.delivery(second.id)
    assert second.status == "failed" and said_duplicate(second.last_error)
    assert second.remote_id is None and len(w.x.tweets) == 1


def test_an_ambiguous_attempt_that_did_post_is_found_with_x_clock_a_second_behind(w):
    w.x.clock = lambda: w.clock() - timedelta(seconds=1)
    w.x.timeout_after_create_next(delay=3)
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    (row,) = x_promo_rows(w)
    assert row.status == "pending" and len(w.x.tweets) == 1   # X created it anyway
    w.drain()
    (row,) = x_promo_rows(w)
    assert row.status == "sent" and row.remote_id == w.x.tweets[0]["id"]
    assert len(w.x.tweets) == 1


# -- crier retry ---------------------------------------------------------------------------

def test_retry_pushes_a_delivery_waiting_out_a_refused_token(w, cli):
    w.x.revoke_token()
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.dispatch()
    (row,) = x_promo_rows(w)
    assert row.status == "pending" and row.error_kind == "auth"
    assert row.next_attempt_at > w.clock.now + timedelta(minutes=30)
    w.x.restore_token()                               # the host fixed the token
    out = cli("retry", str(row.id)).output
    assert f"delivery {row.id} (x, was retrying): pushed to now" in out
    w.clock.now = max(w.clock.now, datetime.now(UTC))  # the CLI ran on the real clock
    w.svc.dispatch()                                   # due at once, not in an hour
    (row,) = x_promo_rows(w)
    assert row.status == "sent" and len(w.x.tweets) == 1


def test_retry_of_an_unknown_or_sent_delivery_is_an_error_and_changes_nothing(w, cli):
    w.x.fail_next(403, body={"title": "Forbidden", "detail": "Not today", "status": 403,
                             "type": "about:blank"})
    w.svc.queue.add(TEXT)
    w.svc.dispatch()
    rows = {d.account: d for d in w.rows() if d.kind == "promo"}
    assert rows["masto"].status == "sent" and rows["x"].status == "failed"
    out = cli("retry", str(rows["x"].id), str(rows["masto"].id), "999", code=1).output
    assert f"delivery {rows['masto'].id} is sent (it went out)" in out
    assert "delivery 999: no such delivery" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    assert w.store.delivery(rows["x"].id).status == "failed"      # nothing changed
    out = cli("retry", str(rows["x"].id)).output
    assert "was failed): queued again" in out
    w.clock.now = max(w.clock.now, datetime.now(UTC))
    w.svc.dispatch()
    assert w.store.delivery(rows["x"].id).status == "sent"


def test_retry_refuses_a_withdrawn_delivery(w):
    pid, *_ = w.svc.queue.add(TEXT, at="in 2h")
    w.clock.advance(hours=2, seconds=1)
    w.svc.queue.fire()
    w.svc.queue.set_status(pid, "cancel")
    ids = [d.id for d in w.rows() if d.kind == "promo"]
    with pytest.raises(CrierError, match=rf"delivery {ids[0]} is withdrawn"):
        w.svc.retry_failed(ids)


# -- status and queue show agree -----------------------------------------------------------

def test_status_and_queue_show_show_each_delivery_in_the_same_state(w, cli):
    w.x.revoke_token()
    w.masto.fail_next(422, count=1, body={"error": "Validation failed: Text is spam"})
    pid, *_ = w.svc.queue.add(TEXT)
    w.svc.dispatch()
    later, *_ = w.svc.queue.add("Later: https://example.com/later", at="in 3h")
    w.clock.advance(hours=3, seconds=1)
    w.svc.queue.fire()                                # fired, not yet dispatched: due
    status = cli("status", "--json").output
    import json
    st = json.loads(status)
    by_id = {d["id"]: d for d in st["pending"] + st["failed"] + st["recent"]}
    for promo in (pid, later):
        show = json.loads(cli("queue", "show", str(promo), "--json").output)
        for d in show["deliveries"]:
            assert (d["state"], d["detail"]) == (by_id[d["id"]]["state"],
                                                 by_id[d["id"]]["detail"]), d
    states = {(d["account"], d["state"]) for d in by_id.values() if d["promo"] == pid}
    assert states == {("masto", "failed"), ("x", "retrying")}
    text = cli("status").output
    shown = cli("queue", "show", str(pid)).output
    for d in by_id.values():
        if d["promo"] == pid:
            line = f"{d['state']}: {d['detail']}"
            assert line in text and line in shown


# -- crier release --dismiss -----------------------------------------------------------------

def test_dismissed_episodes_are_never_announced_even_by_release_all(w, cli):
    from tests.world import new_episode
    for n in range(6, 11):
        new_episode(w, n)
    report, _ = w.cycle()
    assert len(report.held) == 5
    keep, drop = report.held[:2], report.held[2:]
    out = cli("release", "--dismiss", *map(str, drop)).output
    assert out.count("recorded as known, never announced") == 3
    out = cli("release", "--dismiss", str(drop[0]), code=1).output
    assert f"episode {drop[0]} is dismissed" in out
    assert [e["id"] for e in w.svc.status()["held_episodes"]] == keep
    assert "Released 2 episode(s)" in cli("release", "--all").output
    w.clock.now = max(w.clock.now, datetime.now(UTC))
    w.drain()
    w.cycle()                                          # the feed still has all five
    w.drain()
    announced = {d.episode_id for d in w.rows() if d.kind == "announcement"}
    assert announced == set(keep)
    assert len(w.masto.statuses) == 2 and len(w.x.tweets) == 2
    counts = w.svc.status()["feeds"][0]["episodes"]
    assert counts["dismissed"] == 3 and "held" not in counts


# -- crier history ---------------------------------------------------------------------------

def test_history_lists_every_post_that_went_out_newest_first(w, cli):
    import json

    from bot.history import history, parse_since
    from tests.world import new_episode
    w.configure(x={"link_policy": "reply"})
    new_episode(w)
    w.cycle()                                          # announced on both; X with a link reply
    w.clock.advance(hours=2)
    w.svc.queue.add(TEXT, accounts=["masto"])
    w.masto.fail_next(422, count=1, body={"error": "nope"})
    w.svc.queue.add("Another one", accounts=["masto"])
    w.svc.dispatch()                                   # one promo sent, one failed
    rows = history(w.store)
    assert [(r["account"], r["kind"]) for r in rows] == [
        ("masto", "promo"), ("x", "reply"), ("x", "announcement"),
        ("masto", "announcement")]
    assert all(r["url"] for r in rows)
    reply = next(r for r in rows if r["kind"] == "reply")
    tweet = next(t for t in w.x.tweets if t["in_reply_to"])
    assert reply["url"].endswith(tweet["id"]) and reply["reply_to"].endswith(
        tweet["in_reply_to"])
    assert rows[0]["kind"] == "promo" and rows[0]["promo"]
    recent = history(w.store, since=parse_since("90 minutes", now=w.clock(), tz=w.settings.tz))
    assert [r["kind"] for r in recent] == ["promo"]
    only_x = json.loads(cli("history", "--account", "x", "--json").output)
    assert {r["kind"] for r in only_x} == {"announcement", "reply"}
    out = cli("history").output
    assert out.index("promo") < out.index("announcement")
    assert all(r["url"] in out for r in rows)
    assert "Episode 6" in out
    bad = cli("history", "--since", "last tuesday-ish", code=1).output
    assert "Traceback" not in bad and len(bad.strip().splitlines()) == 1


def test_history_since_takes_dates_iso_times_and_durations(w):
    from bot.history import parse_since
    now, tz = w.clock(), w.settings.tz
    assert parse_since("7 days", now=now, tz=tz) == now - timedelta(days=7)
    assert parse_since("2 weeks ago", now=now, tz=tz) == now - timedelta(weeks=2)
    assert parse_since("2026-12-01", now=now, tz=tz).isoformat() == "2026-12-01T00:00:00+00:00"
    assert parse_since("2026-12-01T10:30:00+01:00", now=now, tz=tz).isoformat() == \
        "2026-12-01T09:30:00+00:00"


def test_retry_refuses_a_delivery_that_is_only_waiting_for_its_time(w):
    w.configure(min_gap=3600)
    w.svc.queue.add(TEXT, accounts=["x"])
    w.svc.queue.add("Second promo", accounts=["x"])
    w.svc.dispatch()                                   # one goes out, one waits for the gap
    waiting = next(d for d in x_promo_rows(w) if d.status == "pending")
    with pytest.raises(CrierError, match=rf"delivery {waiting.id} is waiting \(goes out"):
        w.svc.retry_failed([waiting.id])
