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
                          ("mastodon", "social.coop"), ("threads", "www.threads.net")):
        url = share_url(network, text, instance="social.coop")
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname == host
        assert parse_qs(parts.query)["text"] == [text]
    assert share_url("mastodon", text).startswith("https://mastodon.social/share?text=")
    assert urlsplit(share_url("threads", text)).path == "/intent/post"


def test_the_threads_text_is_counted_as_threads_counts_and_fills_its_500():
    """A long title: X's text is cut to X's 280 (a link counts 23 there), Threads' keeps up to
    500 characters, counted with THREADS_RULES (a link counts whole), and its intent carries
    it whole."""
    from bot.models import Episode
    from bot.textlen import THREADS_RULES, X_RULES
    link = "https://pod.example.com/episodes/42-" + "a-rather-long-slug-" * 4
    title = "Episode 42: " + " ".join(f"word{i}" for i in range(90))     # ~620 characters
    kit = share_kit(Episode(title=title, link=link), show="Show")
    by = {t["network"]: t for t in kit["texts"]}
    thr, x = by["threads"], by["x"]
    assert thr["limit"] == THREADS_RULES.limit == 500 and x["limit"] == X_RULES.limit
    assert thr["length"] == count(thr["text"], THREADS_RULES) and 280 < thr["length"] <= 500
    assert len(thr["text"]) > len(x["text"]) and link in thr["text"]
    assert count(thr["text"], X_RULES) > X_RULES.limit           # it would not fit on X
    assert parse_qs(urlsplit(thr["share_url"]).query)["text"] == [thr["text"]]


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


# -- Bluesky (issue 16) ------------------------------------------------------------------------
BSKY_URI = "at://did:plc:abc123/app.bsky.feed.post/3lbq2xyz2bc2k"
BSKY_URL = "https://bsky.app/profile/show.bsky.social/post/3lbq2xyz2bc2k"


def test_social_interact_points_at_a_bluesky_post_by_its_at_uri():
    posts = [OfficialPost("sky", "bluesky", BSKY_URL, BSKY_URI),
             OfficialPost("coop", "mastodon", "https://social.coop/@TheShow/111", "111"),
             OfficialPost("th", "threads", "https://www.threads.net/@show/post/C1", "179"),
             OfficialPost("sky2", "bluesky", "https://bsky.app/profile/a.b/post/x", "dry-run:1")]
    tags = social_interact(posts)
    assert [t["protocol"] for t in tags] == ["activitypub", "bluesky"]  # no at:// URI: none
    assert tags[1] == {"uri": BSKY_URI, "protocol": "bluesky", "priority": 2,
                       "accountId": "@show.bsky.social",
                       "accountUrl": "https://bsky.app/profile/show.bsky.social"}
    root = ET.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{social_interact_xml(tags)}</item>')
    assert root.findall(f"{{{PODCAST_NS}}}socialInteract")[1].get("uri") == BSKY_URI


def test_bluesky_share_text_has_the_whole_link():
    """A compose intent's text has no facets: the link is written whole, not shortened."""
    from bot.models import Episode
    link = "https://pod.example.com/episodes/42-a-long-slug"
    kit = share_kit(Episode(title="Episode 42", link=link), show="Show")
    sky = next(t for t in kit["texts"] if t["network"] == "bluesky")
    assert link in sky["text"] and link in parse_qs(urlsplit(sky["share_url"]).query)["text"][0]


def test_a_sent_bluesky_announcement_in_the_share_kit_and_socialinteract(world):
    world.cycle()
    new_episode(world)
    world.cycle()
    episode_id = world.svc.share()["id"]
    now = world.clock.now
    store = world.store
    with store.tx() as c:   # the Bluesky adapter's result, as the outbox records it
        store.enqueue(c, kind="announcement", dedupe_key=f"bsky-test:{episode_id}",
                      episode_id=episode_id, targets=[("sky", "bluesky", "pending")], now=now,
                      show_id=world.svc.show_id)
    (d,) = [d for d in world.rows("pending") if d.account == "sky"]
    assert store.claim(d.id, "tok", now)
    assert store.finish(d.id, "tok", now, status="sent", sent_at=now, remote_id=BSKY_URI,
                        remote_url=BSKY_URL)
    kit = world.svc.share()
    assert {"account": "sky", "platform": "bluesky", "url": BSKY_URL,
            "remote_id": BSKY_URI} in kit["official_posts"]
    out = world.svc.social_interact("latest")
    sky = next(t for t in out["tags"] if t["protocol"] == "bluesky")
    assert sky["uri"] == BSKY_URI and sky["accountId"] == "@show.bsky.social"
    assert f'uri="{BSKY_URI}" protocol="bluesky"' in out["xml"]
