"""`crier remove`: a sent post is deleted on its network (the local Mastodon and X servers, the
real Mastodon.py and tweepy clients) and its delivery recorded removed, for good: status,
history and the API show it, `crier retry` refuses it, no poll sends it again. A post already
gone counts as removed; a failure leaves it sent and says so. The web app's button and API
route are host only (tests/test_remove_web.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bot.config import Account, Secret
from bot.errors import CrierError
from bot.models import DeliveryStatus
from bot.platforms.dryrun import DryRunPublisher
from bot.removal import remove
from tests.hostcli import host_cli
from tests.world import M_TOKEN, new_episode


@pytest.fixture
def w(world):
    """The back catalogue known, then one new episode announced on both accounts."""
    world.x.clock = world.clock
    world.configure(min_gap=0)
    world.cycle()
    new_episode(world)
    world.cycle()
    world.drain()
    return world


def sent(w, account: str):
    (d,) = [d for d in w.rows("sent") if d.account == account and d.kind == "announcement"]
    return d


def test_removes_on_mastodon_and_x_for_good(w):
    masto, x = sent(w, "masto"), sent(w, "x")
    assert [s["id"] for s in w.masto.statuses] == [masto.remote_id]
    assert [t["id"] for t in w.x.tweets] == [x.remote_id]
    out = remove(w.svc, masto.id, by="hana")
    assert out["action"] == "removed" and out["url"] == masto.remote_url
    assert remove(w.svc, x.id)["action"] == "removed"
    assert w.masto.statuses == [] and w.x.tweets == []          # really gone there
    deletes = [r for r in w.masto.requests if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [f"/api/v1/statuses/{masto.remote_id}"]
    d = w.store.delivery(masto.id)
    assert d.status == DeliveryStatus.REMOVED.value and d.payload["removed"]["by"] == "hana"
    assert d.payload["removed"]["at"] == w.clock.now.isoformat(timespec="seconds")
    assert d.remote_url == masto.remote_url                     # where it was, kept
    # status and history say so; the share kit no longer offers it
    recent = {r["id"]: r for r in w.svc.status()["recent"]}
    assert recent[masto.id]["state"] == "removed" and "hana" in recent[masto.id]["detail"]
    from bot.history import history
    rows = {r["delivery"]: r for r in history(w.store)}
    assert rows[x.id]["status"] == "removed" and rows[x.id]["removed_at"]
    assert w.svc.official_posts(masto.episode_id) == []
    # never again: not by a retry, a second remove, a poll, a dispatch, a restart
    with pytest.raises(CrierError, match=rf"delivery {masto.id} is removed \(its post was "
                                         r"removed by the host"):
        w.svc.retry_failed([masto.id])
    with pytest.raises(CrierError, match="already removed"):
        remove(w.svc, masto.id)
    w.clock.advance(hours=2)
    w.start()
    w.cycle()
    w.drain()
    assert w.masto.statuses == [] and w.x.tweets == []
    assert {d.status for d in w.rows() if d.kind == "announcement"} == {"removed"}


def test_only_a_sent_post_can_be_removed(w):
    pending_id = sent(w, "x").id
    w.store.update_delivery(pending_id, w.clock.now, status="pending", remote_id=None)
    with pytest.raises(CrierError, match=rf"delivery {pending_id} is pending: it has not gone "
                                         "out"):
        remove(w.svc, pending_id)
    with pytest.raises(CrierError, match="delivery 999999: no such delivery"):
        remove(w.svc, 999999)
    d = sent(w, "masto")
    w.store.update_delivery(d.id, w.clock.now, status="dry_run")
    with pytest.raises(CrierError, match="recorded by a dry run: nothing was posted"):
        remove(w.svc, d.id)
    assert len(w.masto.statuses) == 1 and len(w.x.tweets) == 1
    assert not any(r["method"] == "DELETE" for r in w.masto.requests + w.x.requests)


def test_an_x_repost_is_not_deleted_as_if_it_were_ours(w):
    from bot.store import posts
    x = sent(w, "x")
    with w.store.tx() as c:   # as an amplifier's repost: its remote id is the reposted tweet
        c.execute(posts.update().where(posts.c.id == x.post_id).values(kind="boost"))
    with pytest.raises(CrierError, match="is a repost on X.*undo the repost on X"):
        remove(w.svc, x.id)
    assert len(w.x.tweets) == 1 and not any(r["method"] == "DELETE" for r in w.x.requests)


def test_a_post_already_gone_is_recorded_removed(w):
    masto, x = sent(w, "masto"), sent(w, "x")
    w.masto.statuses.clear()                     # deleted by hand: Mastodon answers 404
    w.x.fail_next(404, path=f"/2/tweets/{x.remote_id}", method="DELETE")
    assert remove(w.svc, masto.id)["action"] == "removed"
    assert remove(w.svc, x.id)["action"] == "removed"
    assert [r["path"] for r in w.masto.requests if r["method"] == "DELETE"] == [
        f"/api/v1/statuses/{masto.remote_id}"]
    assert {w.store.delivery(i).status for i in (masto.id, x.id)} == {"removed"}
    assert len(w.x.tweets) == 1    # the 404 was injected: the fake kept it, crier took X's word


def test_x_saying_not_deleted_means_already_gone(w):
    x = sent(w, "x")
    w.x.tweets.clear()              # X answers {"deleted": false}: no such tweet of ours
    assert remove(w.svc, x.id)["action"] == "removed"
    assert w.store.delivery(x.id).status == "removed"


@pytest.mark.parametrize("platform", ["mastodon", "x"])
def test_a_server_error_leaves_it_sent_and_says_so(w, platform):
    d = sent(w, "masto" if platform == "mastodon" else "x")
    if platform == "mastodon":
        w.masto.fail_next(500, path_prefix=f"/api/v1/statuses/{d.remote_id}", method="DELETE")
    else:
        w.x.fail_next(503, path=f"/2/tweets/{d.remote_id}", method="DELETE")
    with pytest.raises(CrierError) as e:
        remove(w.svc, d.id)
    said = str(e.value)
    assert f"could not remove delivery {d.id}" in said and "still sent and its post still up" \
        in said and said.endswith("try again")
    assert w.store.delivery(d.id).status == "sent"
    assert len(w.masto.statuses if platform == "mastodon" else w.x.tweets) == 1
    assert remove(w.svc, d.id)["action"] == "removed"     # the next try works


def test_refusals_say_what_the_network_said(w):
    masto, x = sent(w, "masto"), sent(w, "x")
    w.x.rate_limit_next(reset_in_seconds=120, path=f"/2/tweets/{x.remote_id}", method="DELETE")
    with pytest.raises(CrierError, match=r"x account x is rate limited: delivery \d+ is still "
                                         r"sent and its post still up; try again after 20"):
        remove(w.svc, x.id)
    w.masto.fail_next(403, body={"error": "This action is not allowed"},
                      path_prefix=f"/api/v1/statuses/{masto.remote_id}", method="DELETE")
    with pytest.raises(CrierError, match=r"mastodon account masto refused to delete delivery "
                                         r"\d+'s post: This action is not allowed"):
        remove(w.svc, masto.id)
    w.masto.fail_next(401, body={"error": f"The access token {M_TOKEN} is invalid"},
                      path_prefix="/api/v1/statuses", method="DELETE")
    with pytest.raises(CrierError, match="the credentials were refused") as e:
        remove(w.svc, masto.id)
    assert M_TOKEN not in str(e.value) and "[token]" in str(e.value)
    assert {w.store.delivery(i).status for i in (masto.id, x.id)} == {"sent"}
    assert len(w.masto.statuses) == 1 and len(w.x.tweets) == 1


def test_an_x_link_reply_is_deleted_too(w):
    w.configure(x={"link_policy": "reply"})
    new_episode(w, 7)
    w.cycle()
    w.drain()
    (d,) = [d for d in w.rows("sent") if d.account == "x" and d.payload.get("reply_id")]
    assert len(w.x.tweets) == 3     # the first episode's tweet, this one and its reply
    remove(w.svc, d.id)
    assert [t["id"] for t in w.x.tweets] == [sent_first(w)]


def sent_first(w) -> str:
    (d,) = [d for d in w.rows("sent") if d.account == "x"]
    return d.remote_id


def test_boosts_of_a_removed_post_go_with_it_or_are_withdrawn(w):
    amp = Account(name="network", platform="mastodon", instance=w.masto.url, timeout=2.0,
                  amplify="masto", amplify_delay=0, secrets={"access_token": Secret(M_TOKEN)})
    late = dataclasses.replace(amp, name="later", amplify_delay=3600)
    w.settings = dataclasses.replace(w.settings, accounts=w.settings.accounts + (amp, late))
    w.start()
    new_episode(w, 7)
    w.cycle()
    w.svc.dispatch()                 # the boost with no delay goes out; the other waits
    official = [d for d in w.rows("sent") if d.account == "masto"][-1]
    boosts = {d.account: d for d in w.rows() if d.kind == "boost"}
    assert boosts["network"].status == "sent" and boosts["later"].status == "pending"
    assert len(w.masto.reblogs) == 1
    out = remove(w.svc, official.id)
    assert (out["boosts_removed"], out["boosts_withdrawn"]) == (1, 1)
    assert w.masto.reblogs == []     # Mastodon deletes the reblogs of a deleted status
    assert w.store.delivery(boosts["network"].id).status == "removed"
    assert w.store.delivery(boosts["later"].id).status == "cancelled"
    w.clock.advance(hours=2)
    w.drain()
    assert w.masto.reblogs == [] and w.store.delivery(boosts["later"].id).status == "cancelled"


def test_a_dry_run_account_records_and_changes_nothing(w):
    d = sent(w, "masto")
    dry = DryRunPublisher("masto", "mastodon")
    w.svc.publishers["masto"] = dry
    assert remove(w.svc, d.id)["action"] == "dry run: recorded, not deleted"
    assert dry.deleted == [d.remote_id] and w.store.delivery(d.id).status == "sent"
    assert len(w.masto.statuses) == 1


def test_the_command(w, monkeypatch, tmp_path):
    cli = host_cli(w, monkeypatch, tmp_path)
    d = sent(w, "masto")
    r = cli("remove", str(d.id))
    assert r.output.strip() == f"delivery {d.id} (masto, {d.remote_url}): removed"
    assert w.masto.statuses == []
    r = cli("retry", str(d.id), code=1)
    assert f"delivery {d.id} is removed" in r.output
    r = cli("remove", str(d.id), code=1)
    assert r.output.startswith("Error: ") and "already removed" in r.output
    r = cli("status", "--json")
    (row,) = [x for x in json.loads(r.output)["recent"] if x["id"] == d.id]
    assert row["state"] == "removed" and row["status"] == "removed"
    r = cli("history")
    assert f"{d.remote_url}  (removed at " in r.output
    cli("remove", "424242", code=1)
