"""Announcements as composed for each network, end to end through the real adapters."""

from __future__ import annotations

import io

from PIL import Image

from tests.world import new_episode


def png(size=(600, 600), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_sponsor_reads_repeated_across_the_feed_are_not_in_the_post(world):
    world.cycle()
    it = new_episode(world)
    world.cycle()
    for text in world.texts()[0] + world.texts()[1]:
        assert f"Guest {it.n} joins me" in text
        assert "Acme VPN" not in text and "Support the show" not in text


def test_guest_mentions_per_network_and_names_without_handles(world):
    world.configure(people={"Guest 6": {"mastodon": "@guest6@example.social", "x": "@guest_six"}})
    world.cycle()
    new_episode(world, 6)
    world.cycle()
    (m,), (x,) = world.texts()
    assert "@guest6@example.social" in m and "@guest_six" not in m
    assert "@guest_six" in x and "@guest6@example.social" not in x
    new_episode(world, 7)  # Guest 7 has no handle: written by name, never as "@Guest"
    world.cycle()
    m7, x7 = world.texts()[0][1], world.texts()[1][1]
    assert "Guest 7" in m7 and "Guest 7" in x7
    assert "@Guest" not in m7 + x7


def test_hashtags_and_utm_per_account(world):
    world.configure(masto={"hashtags": ("BlockchainSocialist", "Podcast"),
                           "utm": {"utm_source": "mastodon", "utm_medium": "social"}},
                    x={"hashtags": ("BlockchainSocialist",)})
    world.cycle()
    it = new_episode(world)
    world.cycle()
    (m,), (x,) = world.texts()
    assert "#BlockchainSocialist #Podcast" in m
    assert f"{it.link}?utm_source=mastodon&utm_medium=social" in m
    assert "#BlockchainSocialist" in x and "utm_" not in x


def test_artwork_attached_with_alt_text_on_mastodon(world):
    world.feed_srv.set_feed("/art/6.png", png(), etag=True)
    world.configure(masto={"media": "artwork"}, media_dir=str(world.tmp / "media"),
                    allow_private_networks=("127.0.0.0/8",))  # the artwork is on loopback
    world.cycle()
    it = new_episode(world)
    world.items[-1] = it.with_(image=world.feed_srv.url + "/art/6.png")
    world.publish_feed()
    world.cycle()
    status = world.masto.statuses[0]
    assert len(status["media_ids"]) == 1
    media = world.masto.media[status["media_ids"][0]] if isinstance(world.masto.media, dict) \
        else next(m for m in world.masto.media if m["id"] == status["media_ids"][0])
    assert "The Test Show" in media["description"] and "Episode 6" in media["description"]
    assert world.x.tweets[0].get("media_ids") in (None, [])  # X keeps its link card


def test_artwork_that_is_not_an_image_posts_without_it_and_says_so(world):
    world.feed_srv.set_feed("/art/6.png", b"<html>nope</html>")
    world.configure(masto={"media": "artwork"}, media_dir=str(world.tmp / "media"),
                    allow_private_networks=("127.0.0.0/8",))  # the artwork is on loopback
    world.cycle()
    it = new_episode(world)
    world.items[-1] = it.with_(image=world.feed_srv.url + "/art/6.png")
    world.publish_feed()
    world.cycle()
    assert len(world.masto.statuses) == 1 and not world.masto.statuses[0]["media_ids"]
    row = next(d for d in world.rows("sent") if d.account == "masto")
    assert any("without artwork" in n for n in row.payload["notes"])


def test_x_link_policy_reply_and_none(world):
    world.configure(x={"link_policy": "reply"})
    world.cycle()
    it = new_episode(world)
    world.cycle()
    main, reply = world.x.tweets
    assert it.link not in main["text"] and it.link in reply["text"]
    assert reply["in_reply_to"] == main["id"]
    world.configure(x={"link_policy": "none"})
    new_episode(world, 7)
    world.cycle()
    assert len(world.x.tweets) == 3 and "http" not in world.x.tweets[2]["text"]


def test_x_reply_failure_keeps_the_main_post_and_reports_it(world):
    world.configure(x={"link_policy": "reply"})
    world.cycle()
    new_episode(world)
    world.x.fail_next(500, after=1)
    _, outcomes = world.cycle()
    by = {o.account: o for o in outcomes}
    assert by["x"].status == "sent" and "reply failed" in by["x"].error
    assert len(world.x.tweets) == 1
    row = next(d for d in world.rows("sent") if d.account == "x")
    assert "reply failed" in row.last_error
    world.drain()
    assert len(world.x.tweets) == 1  # the main post is never sent again


def test_artwork_that_fails_for_a_passing_reason_is_waited_for(world):
    """A 503 from the artwork host: the post waits and goes out with the image; after
    ARTWORK_PATIENCE of failures it goes out without, saying so."""
    from bot.service import ARTWORK_PATIENCE
    world.feed_srv.set_feed("/art/6.png", png(), etag=True)
    world.configure(masto={"media": "artwork"}, media_dir=str(world.tmp / "media"),
                    allow_private_networks=("127.0.0.0/8",))  # the artwork is on loopback
    world.cycle()
    it = new_episode(world)
    world.items[-1] = it.with_(image=world.feed_srv.url + "/art/6.png")
    world.publish_feed()
    world.feed_srv.fail_next("/art/6.png", status=503)
    world.cycle()
    assert world.masto.statuses == []  # waiting for the artwork
    row = next(d for d in world.rows() if d.account == "masto")
    assert row.status == "pending" and "artwork" in row.last_error
    world.drain()
    assert len(world.masto.statuses) == 1 and len(world.masto.statuses[0]["media_ids"]) == 1
    # a host down for longer than the patience: the post goes without the image
    it7 = new_episode(world, 7)
    world.items[-1] = it7.with_(image=world.feed_srv.url + "/art/7.png")
    world.publish_feed()
    world.feed_srv.fail_next("/art/7.png", status=503, count=1000)
    world.cycle()
    world.clock.advance(seconds=ARTWORK_PATIENCE.total_seconds() + 1)
    world.drain()
    assert len(world.masto.statuses) == 2 and not world.masto.statuses[1]["media_ids"]
    row = next(d for d in world.rows("sent") if d.account == "masto" and
               "Episode 7" in d.text)
    assert any("without artwork" in n for n in row.payload["notes"])
