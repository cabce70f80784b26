"""The official account boosts the community: public posts with the show's hashtag or
mentioning the account are proposed, the host approves or rejects, an approved post is boosted
once; blocked and muted authors, replies to others, sensitive and non-public posts are never
proposed; an allow-listed author is boosted without asking."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from bot.community import why_not
from bot.errors import CrierError
from tests.hostcli import host_cli, write_config


@pytest.fixture
def town(world):
    world.settings = dataclasses.replace(
        world.settings, community=True, community_account="masto",
        community_hashtags=("TestShow",), community_allow=("friend@other.example",))
    world.start()
    return world


def test_only_boostable_posts_are_proposed(town):
    m = town.masto
    ok_tag = m.add_post("fan@other.example", "Loved #TestShow this week", tags=("TestShow",))
    ok_mention = m.add_post("listener@else.example", "@crier great episode", mention=True)
    m.add_post("nsfw@other.example", "spoilers #TestShow", tags=("TestShow",), sensitive=True)
    m.add_post("cw@other.example", "cw #TestShow", tags=("TestShow",), spoiler="politics")
    m.add_post("quiet@other.example", "unlisted #TestShow", tags=("TestShow",),
               visibility="unlisted")
    m.add_post("thread@other.example", "replying to Bob #TestShow", tags=("TestShow",),
               in_reply_to="1", reply_to_account="999")
    m.add_post("troll@other.example", "#TestShow is bad", tags=("TestShow",))
    m.block("troll@other.example")
    m.add_post("noisy@other.example", "#TestShow again", tags=("TestShow",))
    m.mute("noisy@other.example")
    m.add_post("elsewhere@other.example", "#OtherShow", tags=("OtherShow",))
    new = town.svc.community_scan()
    assert sorted(n["author"] for n in new) == ["fan@other.example", "listener@else.example"]
    listed = town.svc.community_list()
    assert {r.uri for r in listed} == {ok_tag["uri"], ok_mention["uri"]}
    assert town.svc.community_scan() == []  # each post is proposed once


def test_approve_boosts_once_reject_never(town):
    m = town.masto
    a = m.add_post("fan@other.example", "Loved #TestShow", tags=("TestShow",))
    b = m.add_post("meh@other.example", "Hm #TestShow", tags=("TestShow",))
    town.svc.community_scan()
    ids = {r.uri: r.id for r in town.svc.community_list()}
    town.svc.community_decide(ids[a["uri"]], approve=True)
    town.svc.community_decide(ids[b["uri"]], approve=False)
    with pytest.raises(CrierError, match="already approved"):
        town.svc.community_decide(ids[a["uri"]], approve=True)
    town.svc.dispatch()
    town.start()  # a restart boosts nothing again
    town.svc.dispatch()
    town.svc.community_scan()
    town.svc.dispatch()
    assert [r["reblog"]["uri"] for r in m.reblogs] == [a["uri"]]
    assert town.svc.community_list() == []
    assert {r.status for r in town.svc.community_list(all_=True)} == {"approved", "rejected"}


def test_an_allow_listed_author_is_boosted_without_asking(town):
    m = town.masto
    post = m.add_post("friend@other.example", "New #TestShow episode!", tags=("TestShow",))
    (new,) = town.svc.community_scan()
    assert new["author"] == "friend@other.example" and new["approved"] is True
    town.svc.dispatch()
    assert [r["reblog"]["uri"] for r in m.reblogs] == [post["uri"]]


def test_a_failed_boost_is_retried_once_approved(town):
    m = town.masto
    post = m.add_post("fan@other.example", "#TestShow", tags=("TestShow",))
    town.svc.community_scan()
    town.svc.community_decide(town.svc.community_list()[0].id, approve=True)
    m.fail_next(503, path_prefix="/api/v1/statuses", method="POST")
    town.svc.dispatch()
    assert m.reblogs == []
    town.drain()
    assert [r["reblog"]["uri"] for r in m.reblogs] == [post["uri"]]


def test_the_cli_lists_and_decides_posts_as_plain_json(world, monkeypatch, tmp_path):
    """`crier community list --json`: every column of the post by name, times in ISO 8601;
    approve/reject say what they did."""
    crier = host_cli(world, monkeypatch, tmp_path)
    write_config(world, crier.config,
                 top='[community]\nenabled = true\nhashtags = ["TestShow"]\n')
    a = world.masto.add_post("fan@other.example", "Loved\n#TestShow", tags=("TestShow",))
    b = world.masto.add_post("meh@other.example", "Hm #TestShow", tags=("TestShow",))
    assert "2 new post(s)" in crier("community", "scan").output
    listed = json.loads(crier("community", "list", "--json").output)
    assert sorted(r["uri"] for r in listed) == sorted([a["uri"], b["uri"]])
    first, second = sorted(listed, key=lambda r: r["uri"] != a["uri"])
    assert list(first) == ["id", "account", "status_id", "uri", "url", "author", "text", "via",
                           "status", "found_at", "decided_at", "show_id"]
    assert (first["account"], first["author"], first["status"], first["decided_at"]) == (
        "masto", "fan@other.example", "proposed", None)
    assert (first["status_id"], first["url"], first["via"]) == (a["id"], a["url"], "#TestShow")
    assert "#TestShow" in first["text"] and isinstance(first["show_id"], int)
    assert datetime.fromisoformat(first["found_at"]).tzinfo is not None
    text = crier("community", "list").output
    assert f"#{first['id']} [proposed] fan@other.example via #TestShow: {a['url']}" in text
    assert "\n   " in text and "Loved" in text  # the post's text on one indented line
    out = crier("community", "approve", str(first["id"])).output
    assert out.strip() == f"#{first['id']} approved: {a['url']}"
    out = crier("community", "reject", str(second["id"])).output
    assert out.strip() == f"#{second['id']} rejected: {b['url']}"
    assert "already approved" in crier("community", "approve", str(first["id"]), code=1).output
    assert json.loads(crier("community", "list", "--json").output) == []
    decided = {r["id"]: r for r in json.loads(
        crier("community", "list", "--all", "--json").output)}
    assert (decided[first["id"]]["status"], decided[second["id"]]["status"]) == (
        "approved", "rejected")
    assert all(datetime.fromisoformat(r["decided_at"]).tzinfo for r in decided.values())
    assert {k: v for k, v in decided[first["id"]].items()
            if k not in ("status", "decided_at")} == {
        k: v for k, v in first.items() if k not in ("status", "decided_at")}


def test_why_not_rules():
    base = {"id": "1", "account": {"id": "7", "acct": "a@b"}, "visibility": "public",
            "uri": "u"}
    assert why_not(base, me_id="9", blocked=set(), muted=set()) is None
    assert why_not({**base, "in_reply_to_id": "3", "in_reply_to_account_id": "9"},
                   me_id="9", blocked=set(), muted=set()) is None  # a reply to us: fine
    assert why_not(base, me_id="7", blocked=set(), muted=set()) == "our own post"
    assert why_not({**base, "reblog": {"id": "2"}}, me_id="9", blocked=set(),
                   muted=set()) == "a boost"
    assert why_not(base, me_id="9", blocked={"a@b"}, muted=set()) == "author blocked"


def test_the_watch_is_off_by_default(world):
    with pytest.raises(CrierError, match="enabled = true"):
        world.svc.community_scan()


def test_announcements_are_made_to_be_reposted(world):
    """Public, with the feed's language, the show's CamelCase hashtag as configured."""
    from tests.world import new_episode
    world.configure(masto={"hashtags": ("TestShow",)})
    world.cycle()
    new_episode(world)
    world.cycle()
    status = world.masto.statuses[-1]
    assert status["visibility"] == "public" and status["language"] == "en"
    assert "#TestShow" in status["text"]
