"""End to end on the local PDS: the service composes a new episode's announcement for a real
Bluesky account (the link shown short with the whole URL in its facet, the guest's handle
from the people map, the card with the artwork as its thumbnail, the feed's language), sends
it, and the record as the PDS stored it says all of that; the delivery keeps its at:// URI and
bsky.app URL. A promo with an image and alt text goes the same way."""

from __future__ import annotations

import dataclasses
import io
import secrets

from PIL import Image

from bot.compose import bluesky_short_url
from bot.config import Account, Secret
from tests.test_service_networks import art

POST = "app.bsky.feed.post"


def _with_bluesky(world, pds):
    show = pds.create_account(f"show{secrets.token_hex(3)}.test")
    guest = pds.create_account(f"guest{secrets.token_hex(3)}.test")
    sky = Account(name="sky", platform="bluesky", handle=show.handle, service=pds.url,
                  timeout=10.0, secrets={"app_password": Secret(show.app_password)})
    world.settings = dataclasses.replace(world.settings,
                                         accounts=world.settings.accounts + (sky,))
    world.configure(media_dir=str(world.tmp / "media"),
                    allow_private_networks=("127.0.0.0/8",),
                    people={"Guest 6": {"bluesky": f"@{guest.handle}"}})
    return show, guest


def _spans(value: dict) -> list[tuple[str, str, str]]:
    raw = value["text"].encode("utf-8")
    out = []
    for f in value.get("facets", []):
        s, e = f["index"]["byteStart"], f["index"]["byteEnd"]
        feature = f["features"][0]
        out.append((raw[s:e].decode("utf-8"), feature["$type"].rsplit("#", 1)[1],
                    feature.get("uri") or feature.get("did") or feature.get("tag")))
    return out


def test_an_announcement_and_a_promo_on_bluesky_as_the_pds_stored_them(world, pds, tmp_path):
    show, guest = _with_bluesky(world, pds)
    image_url = art(world)                       # episode 6 with a 1600 px noisy artwork
    world.cycle()
    sky = next(d for d in world.rows() if d.account == "sky")
    assert sky.status == "sent", sky.last_error
    (record,) = pds.list_records(show.did, POST)
    assert sky.remote_id == record["uri"]
    rkey = record["uri"].rsplit("/", 1)[1]
    assert sky.remote_url == f"https://bsky.app/profile/{show.handle}/post/{rkey}"
    value, episode = record["value"], world.items[-1]
    assert value["text"] == sky.text
    shown = bluesky_short_url(episode.link)
    spans = _spans(value)
    assert (shown, "link", episode.link) in spans
    assert (f"@{guest.handle}", "mention", guest.did) in spans
    assert value["langs"] == ["en"]
    external = value["embed"]["external"]
    assert external["uri"] == episode.link and external["title"] == episode.title
    assert external["description"] == sky.payload["card"]["description"]
    blob = pds.get_blob(show.did, external["thumb"]["ref"]["$link"])
    assert len(blob) == external["thumb"]["size"] <= 1_000_000
    with Image.open(io.BytesIO(blob)) as img:
        assert img.width == img.height
    assert image_url

    picture = tmp_path / "book.png"
    Image.new("RGB", (800, 400), (20, 60, 200)).save(picture)
    world.svc.queue.add("Our book is out 📚", at="in 1m", image=str(picture),
                        alt="A blue book cover", accounts=["sky"])
    world.clock.advance(minutes=2)
    world.drain()
    promo = next(d for d in world.rows() if d.account == "sky" and d.kind == "promo")
    assert promo.status == "sent", promo.last_error
    stored = next(r["value"] for r in pds.list_records(show.did, POST)
                  if r["uri"] == promo.remote_id)
    assert stored["text"] == "Our book is out 📚"
    (image,) = stored["embed"]["images"]
    assert image["alt"] == "A blue book cover"
    assert image["aspectRatio"] == {"width": 800, "height": 400}
    assert pds.get_blob(show.did, image["image"]["ref"]["$link"])[:4] == b"\x89PNG"
