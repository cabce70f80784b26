"""Announcements and promos composed for Bluesky and Threads accounts (dry runs) through the
service: the delivery's payload carries the link card (with the artwork prepared as its
thumbnail on Bluesky), the guests' handles with their names, the shortened link with the whole
URL, the language, and images with their alt text and public URL; the post the publisher gets
is read back from that payload."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from PIL import Image

from bot.compose import bluesky_short_url
from bot.config import Account
from tests.world import new_episode


def png(size=(1600, 1600)) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(buf, "PNG")  # big: must be made smaller
    return buf.getvalue()


def with_networks(world, sky: dict | None = None, th: dict | None = None) -> None:
    """A Bluesky and a Threads account, dry runs unless told otherwise."""
    accounts = world.settings.accounts + (
        Account(name="sky", platform="bluesky", handle="show.bsky.social",
                **{"dry_run": True, **(sky or {})}),
        Account(name="th", platform="threads", **{"dry_run": True, **(th or {})}))
    world.settings = dataclasses.replace(world.settings, accounts=accounts)
    world.configure(media_dir=str(world.tmp / "media"),
                    allow_private_networks=("127.0.0.0/8",),
                    people={"Guest 6": {"bluesky": "@guest6.bsky.social",
                                        "threads": "@guest_6", "x": "@guest_six"}})


def art(world, n: int = 6) -> str:
    world.feed_srv.set_feed(f"/art/{n}.png", png(), etag=True)
    world.cycle()
    it = new_episode(world, n)
    url = world.feed_srv.url + f"/art/{n}.png"
    world.items[-1] = it.with_(image=url)
    world.publish_feed()
    return url


# A Bluesky account that is no dry run: its thumbnail is downloaded and prepared. Without its
# app password the post is composed (written on the delivery) and then stops on credentials.
UNCONFIGURED = {"dry_run": False, "missing_secrets": ("CRIER_SKY_APP_PASSWORD",)}


def test_bluesky_and_threads_announcements_carry_card_mentions_and_links(world):
    with_networks(world, sky=UNCONFIGURED)
    image = art(world)
    world.cycle()
    rows = {d.account: d for d in world.rows() if d.account in ("sky", "th")}
    sky, th = rows["sky"], rows["th"]
    assert th.status == "dry_run" and sky.status != "sent" and "CRIER_SKY_APP_PASSWORD" in (
        sky.last_error or "")
    link = world.items[-1].link
    # Bluesky: the link shown as its app shows it, the whole URL kept for the facet
    shown = bluesky_short_url(link)
    assert shown in sky.text and link not in sky.text
    assert sky.payload["links"] == [[shown, link]]
    assert "@guest6.bsky.social" in sky.text
    assert sky.payload["mentions"] == [["@guest6.bsky.social", "Guest 6"]]
    assert sky.payload["language"] == "en" and sky.payload["media"] == []
    card = sky.payload["card"]
    assert card["uri"] == link and card["title"] == world.items[-1].title
    assert card["description"].startswith("Guest 6 joins me")
    thumb = card["thumb"]
    assert thumb["url"] == image and "Episode 6" in thumb["alt"]
    assert Path(thumb["source"]).is_file() and Path(thumb["source"]).stat().st_size <= 1_000_000
    assert thumb["mime_type"] in ("image/jpeg", "image/png")
    # Threads: the whole link in the text, the card's link attachment, no download needed
    assert link in th.text and th.payload["links"] == []
    assert th.payload["mentions"] == [["@guest_6", "Guest 6"]] and "@guest_6" in th.text
    assert th.payload["card"]["uri"] == link and th.payload["card"]["thumb"]["url"] == image
    # the post the publisher is given, read back from the payload
    from bot.dispatch import _post_from_row
    post = _post_from_row(world.store.delivery(sky.id))
    assert post.card.uri == link and post.card.thumb.source == thumb["source"]
    assert post.links == ((shown, link),) and post.language == "en"
    assert post.mentions == (("@guest6.bsky.social", "Guest 6"),)
    assert post.created_at == sky.created_at
    # Mastodon and X are as before: no card in their payloads
    assert all(not d.payload.get("card") for d in world.rows("sent"))


def test_a_dry_run_downloads_no_thumbnail(world):
    with_networks(world)
    image = art(world)
    world.cycle()
    sky = next(d for d in world.rows("dry_run") if d.account == "sky")
    assert sky.payload["card"]["thumb"] == {"source": image, "alt": sky.payload["card"][
        "thumb"]["alt"], "mime_type": None, "url": image}
    (post, _key), = world.svc.publishers["sky"].published
    assert post.card.thumb.url == image == post.card.thumb.source and post.links


def test_artwork_instead_of_the_card(world):
    with_networks(world, sky={"media": "artwork"}, th={"media": "artwork"})
    image = art(world)
    world.cycle()
    rows = {d.account: d for d in world.rows("dry_run")}
    for name in ("sky", "th"):
        d = rows[name]
        assert d.payload["card"] is None, name
        (m,) = d.payload["media"]
        assert m["url"] == image and "Episode 6" in m["alt"] and Path(m["source"]).is_file()
    assert Path(rows["sky"].payload["media"][0]["source"]).stat().st_size <= 1_000_000


def test_a_thumbnail_that_cannot_be_had_leaves_the_card_without_one(world):
    with_networks(world, sky=UNCONFIGURED)
    world.cycle()
    it = new_episode(world, 6)
    world.items[-1] = it.with_(image=world.feed_srv.url + "/art/missing.png")  # 404
    world.publish_feed()
    world.cycle()
    sky = next(d for d in world.rows() if d.account == "sky")
    assert sky.payload["card"]["uri"] == it.link and sky.payload["card"]["thumb"] is None
    assert any("without the card's thumbnail" in n for n in sky.payload["notes"])


def test_promo_image_keeps_its_alt_text(world, tmp_path):
    """A queued post's image is a local file (`crier queue add --image`): its alt text goes
    with it; it has no public URL (`Media.url` None: the Threads adapter must say so)."""
    with_networks(world)
    local = tmp_path / "local.png"
    local.write_bytes(png((300, 300)))
    world.svc.queue.add("Our book is out", at="in 1m", image=str(local),
                        alt="A blue book cover", accounts=["sky", "th"])
    world.clock.advance(minutes=2)
    world.drain()
    sent = [d for d in world.rows("dry_run") if d.kind == "promo"]
    assert sorted(d.account for d in sent) == ["sky", "th"]
    for d in sent:
        (m,) = d.payload["media"]
        assert Path(m["source"]).is_file() and m["alt"] == "A blue book cover"
        assert "url" not in m and d.payload["mentions"] == [] and d.payload["links"] == []
        (post, _key), = world.svc.publishers[d.account].published
        assert post.media[0].alt == "A blue book cover" and post.media[0].url is None


def test_dataclass_replace_keeps_new_account_fields():
    a = Account(name="sky", platform="bluesky", handle="a.bsky.social", service="http://x")
    assert dataclasses.replace(a, dry_run=True).handle == "a.bsky.social"


def test_build_publishers_gives_bluesky_and_threads_their_settings(tmp_path):
    """The real adapters, built from the config (constructing one sends nothing)."""
    from bot.config import Secret, Settings
    from bot.platforms.bluesky import BlueskyPublisher
    from bot.platforms.dryrun import DryRunPublisher, UnconfiguredPublisher
    from bot.platforms.threads import ThreadsPublisher
    from bot.publishers import build_publishers
    from bot.service import Service
    from bot.store import Store
    from bot.textlen import BLUESKY_RULES, THREADS_RULES
    from bot.threads_tokens import StoredToken
    settings = Settings(path=tmp_path / "crier.toml", show="S", feed="https://e.com/f",
                        accounts=(
        Account(name="sky", platform="bluesky", handle="show.test", service="http://pds.test/",
                timeout=3.0, secrets={"app_password": Secret("app-pw")}),
        Account(name="th", platform="threads", api_base="http://meta.test", user_id="42",
                secrets={"access_token": Secret("tok")}),
        Account(name="sky-dry", platform="bluesky", handle="a.test", dry_run=True),
        Account(name="th-none", platform="threads",
                missing_secrets=("CRIER_TH_NONE_ACCESS_TOKEN",)),
    ))
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.migrate()
    try:
        for pubs in (build_publishers(settings, checkpoints=store),
                     Service(settings, store).publishers):   # the service passes its store
            sky, th = pubs["sky"], pubs["th"]
            assert isinstance(sky, BlueskyPublisher) and isinstance(th, ThreadsPublisher)
            assert (sky.account, sky.handle, sky.service, sky.timeout, sky.checkpoints) == \
                ("sky", "show.test", "http://pds.test", 3.0, store)
            assert (th.account, th.api_base, th.user_id, th.timeout) == \
                ("th", "http://meta.test", "42", 10.0)
            assert th.checkpoints is store and isinstance(th.token_store, StoredToken)
            assert isinstance(pubs["sky-dry"], DryRunPublisher)
            assert pubs["sky-dry"].rules() == BLUESKY_RULES
            assert isinstance(pubs["th-none"], UnconfiguredPublisher)
            assert pubs["th-none"].rules() == THREADS_RULES
    finally:
        store.close()


def test_a_promo_with_the_episode_link_carries_its_card(world):
    with_networks(world)
    image = art(world)
    world.cycle()
    world.svc.queue.add("Listen again: {{ title }} {{ link }}", at="in 1m", episode="latest",
                        accounts=["sky", "th"])
    world.svc.queue.add("Just words", at="in 2m", accounts=["th"])
    world.clock.advance(minutes=3)
    world.drain()
    promos = {(d.account, d.text.split()[0]): d for d in world.rows("dry_run")
              if d.kind == "promo"}
    link = world.items[-1].link
    sky, th = promos[("sky", "Listen")], promos[("th", "Listen")]
    assert sky.payload["card"]["uri"] == link == th.payload["card"]["uri"]
    assert sky.payload["card"]["title"] == world.items[-1].title
    assert sky.payload["links"] == [[bluesky_short_url(link), link]]
    assert sky.payload["card"]["thumb"]["url"] == image == th.payload["card"]["thumb"]["url"]
    assert promos[("th", "Just")].payload["card"] is None


def test_artwork_that_cannot_be_had_leaves_the_bluesky_card_without_thumbnail(world):
    with_networks(world, sky={**UNCONFIGURED, "media": "artwork"})
    world.cycle()
    it = new_episode(world, 6)
    world.items[-1] = it.with_(image=world.feed_srv.url + "/art/missing.png")  # 404
    world.publish_feed()
    world.cycle()
    sky = next(d for d in world.rows() if d.account == "sky")
    assert sky.payload["media"] == [] and sky.payload["card"]["uri"] == it.link
    assert sky.payload["card"]["thumb"] is None
    assert any("without artwork" in n for n in sky.payload["notes"])
