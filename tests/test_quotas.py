"""Pre-send policies end to end (bot.quotas): X's x_budget (hold and tell the host once, or send
without the link), X's 402 (failed, told, not retried) and Threads' 250 posts per 24 hours
(wait), through the real worker cycle: loopback feed, the X contract server with tweepy, a real
database (both), an injected clock and a loopback webhook for notifications. Nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from bot import quotas, xcost
from bot.config import Account
from bot.errors import CreditsExhaustedError
from bot.models import Post
from bot.outbox import retry, shown_state
from bot.platforms.x import XPublisher
from bot.textlen import X_RULES, count
from tests.fakes.webhook_server import WebhookServer
from tests.fakes.x_server import XServer
from tests.test_cli import run  # noqa: F401  (the `run` fixture: crier on the bundled config)
from tests.world import X_KEYS, new_episode


@pytest.fixture
def hook():
    with WebhookServer() as srv:
        yield srv


def budgeted(world, hook, **x):
    """The world with notifications to `hook`, the X account changed by `x`, the back
    catalogue recorded (nothing posted)."""
    world.configure(notify=(hook.url(),), x=x)
    world.cycle()
    return world


def told(world, hook) -> list[dict]:
    assert world.svc.notifier.flush(5)
    return hook.messages()


def x_rows(world, status=None):
    return [d for d in world.rows(status) if d.account == "x"]


def creates(world) -> int:
    """POST /2/tweets requests the X server received."""
    return sum(1 for r in world.x.requests if (r["method"], r["path"]) == ("POST", "/2/tweets"))


# -- the budget: hold, tell once, `crier retry` releases --------------------------------------
def test_a_post_over_the_budget_is_held_the_host_told_once_and_retry_sends_it(world, hook):
    w = budgeted(world, hook, x_budget=xcost.parse_budget("0.30/month"))
    new_episode(w, 6)
    w.cycle()
    [first] = x_rows(w, "sent")
    assert xcost.has_url(first.text) and len(w.x.tweets) == 1       # $0.200 of $0.30
    new_episode(w, 7)
    w.cycle()
    new_episode(w, 8)
    w.cycle()
    assert len(w.x.tweets) == 1 and creates(w) == 1                 # nothing more went to X
    held = x_rows(w, "held")
    assert len(held) == 2
    reason = held[0].last_error
    period = xcost.parse_budget("0.30/month").key(w.clock())
    for words in ("x_budget 0.30/month", f"$0.200 spent in {period}",
                  "this post would cost $0.200", f"`crier retry {held[0].id}`"):
        assert words in reason, reason
    assert shown_state(held[0], w.clock()).state == "held"
    assert held[0].payload["x_budget_held"]["spent"] == "0.200"
    assert len(w.masto.statuses) == 3                               # Mastodon is not billed
    got = [m for m in told(w, hook) if "X budget" in m["title"]]
    assert len(got) == 1, got                                       # once for the month
    assert f"Delivery {held[0].id} to x" in got[0]["message"]
    assert "0.30/month" in got[0]["message"] and "crier retry" in got[0]["message"]
    w.drain()
    assert len([m for m in told(w, hook) if "X budget" in m["title"]]) == 1

    retry(w.store, [held[0].id], w.clock())                         # the host decides
    w.svc.dispatch()
    assert len(w.x.tweets) == 2
    assert w.store.delivery(held[0].id).status == "sent"
    assert w.store.delivery(held[1].id).status == "held"            # the other still waits
    st = w.svc.status()
    [x] = [a for a in st["accounts"] if a["account"] == "x"]
    assert x["x_spend"] == {"account": "x", "period": period, "spent": "$0.400",
                            "budget": "0.30/month", "left": "$0.000", "over_budget": "hold"}


def test_no_link_sends_the_same_text_without_the_url_through_tweepy(world, hook):
    w = budgeted(world, hook, x_budget=xcost.parse_budget("0.25/month"),
                 over_budget="no-link")
    new_episode(w, 6)
    w.cycle()
    new_episode(w, 7)
    w.cycle()
    first, second = x_rows(w, "sent")
    url = [u for u, _s, _e in quotas._urls(first.text)]
    assert url and url[0] in first.text
    tweet = w.x.tweets[-1]
    assert tweet["text"] == second.text                          # what X got is what is stored
    assert not xcost.has_url(tweet["text"]) and "http" not in tweet["text"]
    assert second.length == count(second.text, X_RULES)          # recounted
    [masto7] = [d for d in w.rows() if d.post_id == second.post_id and d.account == "masto"]
    assert second.payload["x_no_link"]["cost"] == "0.015"
    [link] = second.payload["x_no_link"]["links"]
    assert xcost.has_url(link) and link in masto7.text            # the episode's link, taken out
    assert any("http" in s["text"] for s in w.masto.statuses[-1:])  # Mastodon keeps its link
    assert [m for m in told(w, hook) if "X budget" in m["title"]] == []   # nothing held
    st = w.svc.status()
    [x] = [a for a in st["accounts"] if a["account"] == "x"]
    assert x["x_spend"]["spent"] == "$0.215" and x["x_spend"]["left"] == "$0.035"


def test_the_link_reply_is_its_own_post_and_no_link_drops_it(world, hook):
    w = budgeted(world, hook, link_policy="reply", x_budget=xcost.parse_budget("0.40/month"),
                 over_budget="no-link")
    new_episode(w, 6)
    w.cycle()
    assert len(w.x.tweets) == 2                                  # the post and its link reply
    [first] = x_rows(w, "sent")
    assert first.payload["reply_id"] and quotas.spend(
        w.svc.store, "x", w.clock() - timedelta(days=40)) == Decimal("0.215")
    new_episode(w, 7)
    w.cycle()                                                    # $0.215 more would be $0.430
    assert len(w.x.tweets) == 3
    second = x_rows(w, "sent")[1]
    assert w.x.tweets[-1]["in_reply_to"] is None                 # no reply this time
    assert second.payload["reply_text"] is None
    assert xcost.has_url(second.payload["x_no_link"]["links"][0])
    assert quotas.spend(w.svc.store, "x", w.clock() - timedelta(days=40)) == Decimal("0.230")


def test_a_post_tried_before_is_never_rewritten_so_it_is_not_posted_twice(world, hook):
    w = budgeted(world, hook, x_budget=xcost.parse_budget("0.45/month"), over_budget="no-link",
                 timeout=0.5)
    new_episode(w, 6)
    w.cycle()                                        # $0.200
    w.x.timeout_after_create_next(count=1, delay=1.5)
    new_episode(w, 7)
    w.cycle()                                        # X created it, crier saw a timeout
    [ep7] = x_rows(w, "pending")
    assert ep7.needs_check and len(w.x.tweets) == 2
    new_episode(w, 8)
    w.cycle()                                        # $0.400 sent: ep7 would now go over
    assert len(x_rows(w, "sent")) == 2
    w.drain()                                        # ep7's retry finds its own tweet
    row = w.store.delivery(ep7.id)
    assert row.status == "sent" and row.text == ep7.text and "x_no_link" not in row.payload
    assert len(w.x.tweets) == 3                      # ep6, ep7 once, ep8
    assert sum(1 for t in w.x.tweets if t["text"] == ep7.text) == 1


def test_the_budget_starts_again_with_the_month(world, hook):
    w = budgeted(world, hook, x_budget=xcost.parse_budget("0.30/month"))
    now = w.clock()
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0)
    w.clock.now = next_month - timedelta(minutes=10)
    new_episode(w, 6)
    w.cycle()
    new_episode(w, 7)
    w.cycle()
    assert [d.status for d in x_rows(w)[-2:]] == ["sent", "held"]
    w.clock.now = next_month + timedelta(minutes=10)
    new_episode(w, 8)
    w.cycle()
    assert [d.status for d in x_rows(w)[-3:]] == ["sent", "held", "sent"]
    assert len(w.x.tweets) == 2
    [x] = [a for a in w.svc.status()["accounts"] if a["account"] == "x"]
    assert x["x_spend"]["period"] == next_month.strftime("%Y-%m")
    assert (x["x_spend"]["spent"], x["x_spend"]["left"]) == ("$0.200", "$0.100")


# -- X's 402 ------------------------------------------------------------------------------------
def test_402_is_credits_exhausted_with_x_words():
    with XServer(**X_KEYS, credits="0.01") as srv:
        pub = XPublisher("x", api_base=srv.url, timeout=5.0, **X_KEYS)
        pub.publish(Post(text="The balance may go slightly negative"), "k1")
        with pytest.raises(CreditsExhaustedError) as exc:
            pub.publish(Post(text="and then X says no"), "k2")
        assert len(srv.tweets) == 1 and srv.credits == Decimal("-0.005")
    e = exc.value
    assert e.status == 402 and e.platform == "x" and e.account == "x"
    assert "X credits exhausted" in str(e) and "does not have any credits" in str(e)


def test_the_fake_x_server_bills_what_the_docs_say():
    keys = {**X_KEYS, "access_token": "42-at"}   # tweepy reads the user id from it (reposts)
    with XServer(**keys, user_id="42", credits="1.00") as srv:
        pub = XPublisher("x", api_base=srv.url, timeout=5.0, **keys)
        pub.publish(Post(text="plain"), "k1")
        pub.publish(Post(text="with a link https://example.com/ep/1"), "k2")
        pub.publish(Post(text="main", reply_text="the link https://example.com/ep/2"), "k3")
        assert srv.spent == Decimal("0.015") + Decimal("0.200") + Decimal("0.215")
        assert srv.spent == sum((xcost.post_cost(t) for t in (
            "plain", "with a link https://example.com/ep/1", "main",
            "the link https://example.com/ep/2")), Decimal(0))
        srv.credits = Decimal(0)
        srv.allow_retweets = True
        with pytest.raises(CreditsExhaustedError):
            pub.boost("https://x.com/a/status/1", srv.tweets[0]["id"], same_instance=True)
        body = [r for r in srv.requests if r["status"] == 402][-1]["response"]
        assert body["title"] == "CreditsDepleted" and body["status"] == 402
        assert set(body) == {"title", "detail", "type", "status"}


def test_a_402_fails_the_delivery_tells_the_host_and_is_not_retried(world, hook):
    # told once per UTC day: start in the morning, so the 3 hours this test moves on stay
    # within one day whenever it runs (it failed when run after 21:00 UTC)
    world.clock.now = world.clock.now.replace(hour=8)
    w = budgeted(world, hook)
    w.x.credits = Decimal("0.10")
    new_episode(w, 6)
    w.cycle()                                        # $0.200 from $0.10: slightly negative
    new_episode(w, 7)
    _, outcomes = w.cycle()
    [failed] = [o for o in outcomes if o.account == "x"]
    assert failed.status == "failed"
    row = w.store.delivery(failed.delivery_id)
    assert "X credits exhausted" in row.last_error and "does not have any credits" in \
        row.last_error
    tries = creates(w)
    w.drain()
    w.clock.advance(hours=3)
    w.svc.dispatch()
    assert creates(w) == tries and w.store.delivery(row.id).status == "failed"
    got = [m for m in told(w, hook) if m["type"] == "failure"]
    assert len(got) == 1, got
    assert "X credits exhausted on x" in got[0]["title"]
    assert "X credits exhausted" in got[0]["message"] and "Developer" in got[0]["message"]
    assert f"crier retry {row.id}" in got[0]["message"]
    new_episode(w, 8)                                # fails alike: told once a day, not again
    w.cycle()
    assert [d.status for d in x_rows(w)[-2:]] == ["failed", "failed"]
    assert len([m for m in told(w, hook) if m["type"] == "failure"]) == 1
    w.x.credits = Decimal("5")                       # the host buys credits and retries
    retry(w.store, [row.id], w.clock())
    w.svc.dispatch()
    assert w.store.delivery(row.id).status == "sent" and len(w.x.tweets) == 2


# -- Threads: 250 posts per 24 hours ------------------------------------------------------------
def _threads_world(world):
    """The world with a dry-run Threads account (its adapter is another module's)."""
    th = Account(name="threads", platform="threads", dry_run=True, dry_run_reason="test")
    world.settings = dataclasses.replace(world.settings,
                                         accounts=world.settings.accounts + (th,))
    world.start()
    return th


def _sent_threads(store, now, times, kind="announcement", tag="t"):
    """Rows of the Threads account that went out at `times`."""
    with store.tx() as c:
        for i, _t in enumerate(times):
            store.enqueue(c, kind=kind, dedupe_key=f"{tag}{i}", episode_id=None, now=now,
                          targets=[("threads", "threads", "sent")])
    rows = [d for d in store.deliveries_where() if d.account == "threads" and d.kind == kind
            and d.dedupe_key.startswith(tag)]
    for d, t in zip(rows, times, strict=True):
        store.update_delivery(d.id, now, sent_at=t, text=f"post {d.id}")


def test_threads_posts_past_250_in_24_hours_wait_for_the_oldest_to_age(world):
    th = _threads_world(world)
    store, now = world.svc.store, world.clock()
    oldest = now - timedelta(hours=23)
    _sent_threads(store, now, [oldest + timedelta(minutes=5 * i) for i in range(250)])
    _sent_threads(store, now, [now - timedelta(hours=25)], tag="old")        # out of the window
    _sent_threads(store, now, [now - timedelta(minutes=1)], kind="boost", tag="b")  # not counted
    assert quotas.threads_window(store, "threads", now) == (250, oldest + timedelta(hours=24))
    with store.tx() as c:
        store.enqueue(c, kind="announcement", dedupe_key="next", episode_id=None, now=now,
                      targets=[("threads", "threads", "pending")])
    [d] = [d for d in store.deliveries_where() if d.dedupe_key == "next"]
    store.set_delivery_text(d.id, text="The 251st post", payload={}, length=14, limit=500,
                            now=now)

    outcomes = world.svc.dispatch()
    [o] = [o for o in outcomes if o.account == "threads"]
    at = oldest + timedelta(hours=24)
    assert (o.status, o.next_attempt_at) == ("pending", at)
    row = store.delivery(d.id)
    assert (row.status, row.next_attempt_at, row.attempts) == ("pending", at, 0)
    shown = shown_state(row, now)
    assert shown.state == "retrying" and "250 API posts per 24 hours" in shown.detail
    assert f"until {at:%Y-%m-%d %H:%M:%S} UTC" in shown.detail

    world.clock.now = at - timedelta(seconds=1)                 # still 250 in the window
    world.svc.dispatch()
    assert store.delivery(d.id).status == "pending"
    assert quotas.decide(store, store.delivery(d.id), th, world.clock()).action == "later"
    world.clock.now = at                                        # the oldest is 24 h old
    world.svc.dispatch()
    assert store.delivery(d.id).status == "dry_run"             # went out (a dry run here)


def test_threads_below_the_cap_goes(world):
    th = _threads_world(world)
    store, now = world.svc.store, world.clock()
    _sent_threads(store, now, [now - timedelta(hours=1, minutes=i) for i in range(249)])
    with store.tx() as c:
        store.enqueue(c, kind="announcement", dedupe_key="next", episode_id=None, now=now,
                      targets=[("threads", "threads", "pending")])
    [d] = [d for d in store.deliveries_where() if d.dedupe_key == "next"]
    d = dataclasses.replace(d, text="The 250th post")
    assert quotas.decide(store, d, th, now) == quotas.GO


# -- shown: preview, the queue, status ------------------------------------------------------------
def test_preview_and_the_queue_show_the_x_cost(run):  # noqa: F811
    data = json.loads(run("preview", "--json").output)
    costs = {d["platform"]: d["x_cost"] for d in data}
    # the bundled X account links inline
    assert costs == {"mastodon": None, "x": "$0.200", "bluesky": None, "threads": None}
    out = run("preview").output
    assert re.search(r"── x \(x\) · \d+/280 (· shortened to fit )?· X cost \$0\.200 ──", out), out
    assert "X cost" not in out.split("── x (x)")[0]
    out = run("queue", "add", "Our book is out", "--in", "2h", "--dry-run").output
    assert re.search(r"── x \(x\): \d+/280 characters · X cost \$0\.015", out), out
    out = run("queue", "add", "Our book: https://example.com/book", "--in", "2h",
              "--dry-run").output
    assert "X cost $0.200" in out


def test_status_shows_the_months_spend_against_the_budget(run, tmp_path):  # noqa: F811
    cfg = tmp_path / "config" / "crier.toml"
    cfg.write_text(cfg.read_text().replace('name = "x"\n', 'name = "x"\nx_budget = "5.00/month"\n',
                                           1))
    run("run", "--once")                                   # a dry run: nothing billed
    out = run("status").output
    assert re.search(r"X spend \d{4}-\d\d: \$0\.000 of 5\.00/month \(\$5\.000 left; over it: "
                     r"hold\)", out), out
    st = json.loads(run("status", "--json").output)
    [x] = [a for a in st["accounts"] if a["platform"] == "x"]
    assert x["x_spend"]["budget"] == "5.00/month" and x["x_spend"]["spent"] == "$0.000"


def test_the_web_preview_carries_the_x_cost():
    from bot.models import PromoPreview
    from bot.web.api_models import preview_out
    x = PromoPreview(account="x", platform="x", text="Out now: https://example.com/b",
                     length=32, limit=280)
    m = dataclasses.replace(x, account="m", platform="mastodon")
    assert preview_out(x)["x_cost"] == "$0.200" and preview_out(m)["x_cost"] is None
