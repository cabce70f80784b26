"""Share kit and <podcast:socialInteract>: texts within every network's limit for the real
feeds, share links, and tags that are valid XML in the podcast namespace."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.errors import ParseError
from bot.feed import parse_feed
from bot.share import (
    NETWORKS,
    PODCAST_NS,
    OfficialPost,
    share_kit,
    share_url,
    social_interact,
    social_interact_xml,
)
from bot.textlen import count
from tests.conftest import SHARED
from tests.world import new_episode

FEEDS = SHARED / "feeds"
REAL = sorted(p for p in FEEDS.glob("*") if p.is_file() and p.suffix in (".xml", ".rss")) \
    if FEEDS.is_dir() else []


def test_there_are_real_feeds():
    assert len(REAL) >= 20


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_share_texts_fit_every_network_for_the_real_feeds(path: Path):
    try:
        feed = parse_feed(path.read_bytes(), url=f"https://example.com/{path.name}")
    except ParseError:
        return
    for ep in feed.episodes[:20]:
        kit = share_kit(ep, show=feed.title)
        assert [t["network"] for t in kit["texts"]] == list(NETWORKS)
        for t in kit["texts"]:
            assert count(t["text"], NETWORKS[t["network"]]) <= NETWORKS[t["network"]].limit
            assert t["text"].strip()
            if ep.link and ep.link.startswith("http"):
                assert "http" in t["text"]  # the link survives fitting


def test_share_links_carry_the_text():
    text = "🎧 Episode 5 · Show\n\nhttps://example.com/e/5 #Show"
    for network, host in (("x", "x.com"), ("bluesky", "bsky.app"),
                          ("mastodon", "social.coop")):
        url = share_url(network, text, instance="social.coop")
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname == host
        assert parse_qs(parts.query)["text"] == [text]
    assert share_url("mastodon", text).startswith("https://mastodon.social/share?text=")


def test_social_interact_xml_is_valid_in_the_podcast_namespace():
    posts = [OfficialPost("x", "x", "https://x.com/TheShow/status/123"),
             OfficialPost("coop", "mastodon", "https://social.coop/@TheShow/111")]
    tags = social_interact(posts)
    assert [t["protocol"] for t in tags] == ["activitypub", "twitter"]
    assert tags[0] == {"uri": "https://social.coop/@TheShow/111", "protocol": "activitypub",
                       "priority": 1, "accountId": "@TheShow@social.coop",
                       "accountUrl": "https://social.coop/@TheShow"}
    xml = social_interact_xml(tags)
    root = ET.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{xml}</item>')
    found = root.findall(f"{{{PODCAST_NS}}}socialInteract")
    assert [e.get("uri") for e in found] == [t["uri"] for t in tags]
    assert found[1].get("accountId") == "@TheShow" and found[1].get("priority") == "2"


def test_share_and_social_interact_from_the_official_posts(world):
    world.cycle()
    new_episode(world)
    world.cycle()
    kit = world.svc.share()
    urls = {p["url"] for p in kit["official_posts"]}
    sent = [d for d in world.rows("sent") if d.episode_id == kit["id"]]
    assert urls == {d.remote_url for d in sent} and len(urls) == 2
    assert world.masto.statuses[-1]["url"] in urls
    assert kit["texts"][1]["share_url"].startswith(world.masto.url + "/share?text=")
    out = world.svc.social_interact("latest")
    assert {t["protocol"] for t in out["tags"]} == {"activitypub", "twitter"}
    ET.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{out["xml"]}</item>')
