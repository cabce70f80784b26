"""A composed post's payload (card, mentions, links, media with their URLs) survives the
store's JSON column and comes back as the same `Post` (bot.dispatch._post_from_row)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.dispatch import _post_from_row
from bot.models import (
    Card,
    Media,
    Post,
    card_from_data,
    card_to_data,
    media_from_data,
    media_to_data,
)
from bot.store import Store


def test_card_and_media_round_trip_as_data():
    thumb = Media("/m/art.jpg", alt="Cover: a fox", mime_type="image/jpeg",
                  url="https://cdn.example.com/art.jpg")
    card = Card("https://show.example/ep/7", title="Ep 7", description="About foxes",
                thumb=thumb)
    assert card_from_data(card_to_data(card)) == card
    assert card_from_data(card_to_data(Card("https://x.example"))) == Card("https://x.example")
    assert card_to_data(None) is None and card_from_data(None) is None
    assert media_from_data(media_to_data(thumb)) == thumb
    plain = Media("/m/a.png", alt="a")
    assert "url" not in media_to_data(plain) and media_from_data(media_to_data(plain)) == plain
    # a payload written before Media.url existed still reads
    assert media_from_data({"source": "/m/b.png", "alt": "b", "mime_type": None}) == \
        Media("/m/b.png", "b")


def test_the_payload_round_trips_through_the_store(db_url):
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    store = Store(db_url)
    store.migrate()
    with store.tx() as c:
        store.enqueue(c, kind="announcement", dedupe_key="ep:1", episode_id=None,
                      targets=[("sky", "bluesky", "pending")], now=now)
    (d,) = store.deliveries_where()
    thumb = Media("/m/art.jpg", alt="Cover: a fox 🦊", mime_type="image/jpeg",
                  url="https://cdn.example.com/art.jpg")
    card = Card("https://show.example/ep/7", "Ep 7 — 狐", "About foxes", thumb)
    text = "Ep 7 with @ana.bsky.social: show.example/ep/7… #foxes"
    payload = {"language": "en", "visibility": "public", "reply_text": None,
               "media": [media_to_data(thumb)], "card": card_to_data(card),
               "mentions": [["@ana.bsky.social", "Ana Lima"]],
               "links": [["show.example/ep/7…", "https://show.example/ep/7?utm_source=b"]],
               "notes": []}
    store.set_delivery_text(d.id, text=text, payload=payload, length=50, limit=300, now=now)
    got = store.delivery(d.id)
    store.close()
    assert _post_from_row(got) == Post(
        text=text, language="en", media=(thumb,), card=card,
        mentions=(("@ana.bsky.social", "Ana Lima"),),
        links=(("show.example/ep/7…", "https://show.example/ep/7?utm_source=b"),),
        created_at=got.created_at)
    assert got.created_at == now


def test_an_old_payload_reads_without_the_new_keys():
    """Deliveries composed before cards existed carry no card, mentions or links."""
    from bot.models import Delivery
    row = {f: None for f in Delivery.__dataclass_fields__}
    now = datetime(2026, 1, 5, tzinfo=UTC)
    d = Delivery(**{**row, "text": "hi", "created_at": now,
                    "payload": {"media": [{"source": "/a.png", "alt": "a",
                                           "mime_type": None}]}})
    post = _post_from_row(d)
    assert (post.card, post.mentions, post.links, post.media) == (
        None, (), (), (Media("/a.png", "a"),))
    assert post.created_at == now
