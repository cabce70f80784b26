"""Amplifier accounts: a co-host boosts each official post once, after a delay, as an
ordinary delivery (retried, exactly once across restarts, visible in status). A status from
another instance is resolved there first; X reposts need an access level that allows them."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import Account, Secret
from bot.models import DeliveryStatus
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.world import new_episode

COHOST_TOKEN = "cohost-token"
# X access tokens start with the user's id ("<id>-..."), which tweepy reads for the repost URL
BIRD_KEYS = dict(consumer_key="ck2", consumer_secret="cs2", access_token="42-at2",
                 access_token_secret="ats2")


def add_accounts(world, *accounts: Account) -> None:
    world.settings = dataclasses.replace(world.settings,
                                         accounts=world.settings.accounts + accounts)
    world.start()


@pytest.fixture
def cohost(world):
    """A co-host on another Mastodon instance amplifying the show's Mastodon account."""
    with MastodonServer(token=COHOST_TOKEN, username="cohost") as other:
        other.peers = [world.masto]
        add_accounts(world, Account(
            name="cohost", platform="mastodon", instance=other.url, timeout=2.0,
            amplify="masto", amplify_delay=60, secrets={"access_token": Secret(COHOST_TOKEN)}))
        world.cycle()  # baseline
        yield world, other


def boosts(world):
    return [d for d in world.rows() if d.kind == "boost"]


def test_a_cohost_on_another_instance_resolves_then_boosts_once(cohost):
    world, other = cohost
    new_episode(world)
    world.cycle()
    official = world.masto.statuses[-1]
    assert len(other.statuses) == 0 and boosts(world)[0].status == "pending"
    world.svc.dispatch()
    assert other.reblogs == []  # not before the delay
    world.clock.advance(seconds=61)
    world.svc.dispatch()
    assert len(other.remote) == 1 and other.remote[0]["url"] == official["url"]  # resolved
    assert len(other.reblogs) == 1 and other.reblogs[0]["reblog"]["url"] == official["url"]
    (b,) = boosts(world)
    assert b.status == DeliveryStatus.SENT.value and b.remote_url == official["url"]
    # the co-host never posts announcements or promos of its own
    assert other.statuses == []
    # a restart and more rounds boost nothing again
    world.start()
    world.clock.advance(hours=1)
    world.cycle()
    assert len(other.reblogs) == 1 and len(boosts(world)) == 1
    st = world.svc.status()
    assert any(d["kind"] == "boost" and d["status"] == "sent" for d in st["recent"])


def test_a_failed_boost_is_retried_and_still_happens_once(cohost):
    world, other = cohost
    new_episode(world)
    world.cycle()
    world.clock.advance(seconds=61)
    other.fail_next(500, path_prefix="/api/v1/statuses", method="POST")
    world.svc.dispatch()
    (b,) = boosts(world)
    assert b.status == "pending" and b.attempts == 1 and "500" in (b.last_error or "")
    world.drain()
    assert len(other.reblogs) == 1 and boosts(world)[0].status == "sent"


def test_a_failed_resolve_is_retried(cohost):
    world, other = cohost
    new_episode(world)
    world.cycle()
    world.clock.advance(seconds=61)
    other.fail_next(502, path_prefix="/api/v2/search", method="GET")
    world.svc.dispatch()
    assert boosts(world)[0].status == "pending" and other.reblogs == []
    world.drain()
    assert len(other.reblogs) == 1 and boosts(world)[0].status == "sent"


def test_killed_after_boosting_before_recording_boosts_once(cohost):
    """The process boosted, then died before recording it: after the lease the delivery is
    tried again, and Mastodon's reblog of an already boosted status changes nothing."""
    world, other = cohost
    new_episode(world)
    world.cycle()
    world.clock.advance(seconds=61)
    (b,) = boosts(world)
    world.svc._compose_delivery(b, world.settings.account("cohost"))
    b = world.store.delivery(b.id)
    assert world.store.claim(b.id, "dead-process", world.clock.now)
    target = b.payload["boost_of"]
    world.svc.publishers["cohost"].boost(target["url"], target["remote_id"],
                                         same_instance=False)  # ...and the process dies
    world.start()
    world.clock.advance(minutes=5)  # past the sending lease
    world.svc.dispatch()
    world.drain()
    assert len(other.reblogs) == 1 and boosts(world)[0].status == "sent"


def test_a_same_instance_amplifier_boosts_by_id(world):
    with MastodonServer(token=COHOST_TOKEN) as _:
        add_accounts(world, Account(
            name="network", platform="mastodon", instance=world.masto.url, timeout=2.0,
            amplify="masto", amplify_delay=0, secrets={"access_token": Secret(M_TOKEN)}))
    world.cycle()
    new_episode(world)
    world.cycle()
    world.svc.dispatch()
    assert len(world.masto.reblogs) == 1
    assert not any(r["path"] == "/api/v2/search" for r in world.masto.requests)


@pytest.mark.parametrize("allowed", [False, True])
def test_x_amplifier_reposts_where_the_access_level_allows(world, allowed):
    with XServer(**BIRD_KEYS, username="CoHost", user_id="42",
                 allow_retweets=allowed) as bird:
        add_accounts(world, Account(
            name="bird", platform="x", api_base=bird.url, timeout=2.0,
            amplify="x", amplify_delay=0, secrets={k: Secret(v) for k, v in BIRD_KEYS.items()}))
        world.cycle()
        new_episode(world)
        world.cycle()
        world.svc.dispatch()
        (b,) = boosts(world)
        tweet_id = next(d for d in world.rows()
                        if d.account == "x" and d.kind == "announcement").remote_id
        if allowed:
            assert b.status == "sent" and bird.retweets == [tweet_id]
        else:
            assert b.status == "skipped" and bird.retweets == []
            assert "access level" in b.last_error
            # skipped is final: no retries, the X account is not stopped
            world.clock.advance(hours=2)
            world.svc.dispatch()
            assert boosts(world)[0].attempts <= 1


from tests.world import M_TOKEN  # noqa: E402
