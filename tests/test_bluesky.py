"""The Bluesky publisher against a real local PDS (`pds` fixture: Bluesky's own @atproto/pds,
which validates every record against the lexicon). Records are read back as the server stored
them: text, facets at byte offsets, card, blobs, alt text, langs. A loopback proxy
(tests/fakes/xrpc_proxy.py) counts the calls and loses answers where a test says so."""

from __future__ import annotations

import io
import logging
import random
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.errors import (
    AmbiguousError,
    AuthError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from bot.feed import parse_feed
from bot.models import Card, Media, Post
from bot.platforms.bluesky import BLOB_MAX_BYTES, BlueskyPublisher
from tests.conftest import ROOT
from tests.fakes.xrpc_proxy import XrpcProxy

POST, REPOST = "app.bsky.feed.post", "app.bsky.feed.repost"
LINK, MENTION, TAG = (f"app.bsky.richtext.facet#{k}" for k in ("link", "mention", "tag"))


class Checkpoints:
    """The two methods publishers use (Store.checkpoint / set_checkpoint), kept in memory."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}

    def checkpoint(self, key: str) -> dict | None:
        return self.data.get(key)

    def set_checkpoint(self, key: str, data: dict) -> None:
        self.data[key] = dict(data)


def _account(pds, prefix: str):
    return pds.create_account(f"{prefix}{secrets.token_hex(3)}.test")


def _publisher(acct, service: str, **kw) -> BlueskyPublisher:
    return BlueskyPublisher(kw.pop("name", "bsky"), handle=acct.handle, service=service,
                            app_password=kw.pop("app_password", acct.app_password), **kw)


def _rkey(published) -> str:
    return published.remote_id.rsplit("/", 1)[1]


def _spans(record: dict) -> list[tuple[str, str, str]]:
    raw = record["text"].encode("utf-8")
    out = []
    for f in record.get("facets", []):
        s, e = f["index"]["byteStart"], f["index"]["byteEnd"]
        feature = f["features"][0]
        value = feature.get("uri") or feature.get("did") or feature.get("tag")
        out.append((raw[s:e].decode("utf-8"), feature["$type"], value))
    return out


def _image(path: Path, size: tuple[int, int], *, noise: bool = True) -> Path:
    rng = random.Random(size[0])
    if noise:   # random pixels do not compress: a big file
        img = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    else:
        img = Image.new("RGB", size, (30, 90, 160))
    img.save(path, "PNG")
    return path


@pytest.fixture
def proxy(pds):
    p = XrpcProxy(pds.url).start()
    yield p
    p.stop()


# -- what is stored ---------------------------------------------------------------------------

def test_mentions_hashtags_emoji_and_cjk_are_stored_with_byte_offset_facets(pds, caplog):
    show, guest = _account(pds, "show"), _account(pds, "guest")
    text = (f"🎙️👩🏽‍💻 新しいエピソード with @{guest.handle} and @nobody.test! "
            f"日本語 #ポッドキャスト #123 #tech. https://example.com/ep/1 #podcast")
    post = Post(text=text, language="en-us",
                mentions=((f"@{guest.handle}", "Guest Person"), ("@nobody.test", "Nobody Known")))
    caplog.set_level(logging.DEBUG)
    published = _publisher(show, pds.url).publish(post, "k-facets")
    stored = pds.get_record(show.did, POST, _rkey(published))["value"]
    # the unresolvable handle is written as the person's name, the rest as composed
    assert stored["text"] == text.replace("@nobody.test", "Nobody Known")
    assert _spans(stored) == [
        (f"@{guest.handle}", MENTION, guest.did),
        ("#ポッドキャスト", TAG, "ポッドキャスト"),
        ("#tech", TAG, "tech"),
        ("https://example.com/ep/1", LINK, "https://example.com/ep/1"),
        ("#podcast", TAG, "podcast"),
    ]
    assert stored["langs"] == ["en-US"]
    assert published.url == f"https://bsky.app/profile/{show.handle}/post/{_rkey(published)}"
    assert published.remote_id == f"at://{show.did}/{POST}/{_rkey(published)}"
    assert show.app_password not in caplog.text


def test_an_unresolvable_handle_without_a_name_stays_plain_text(pds):
    show = _account(pds, "show")
    text = "thanks @ghost.test #podcast"
    stored = pds.get_record(show.did, POST, _rkey(
        _publisher(show, pds.url).publish(Post(text=text), "k-ghost")))["value"]
    assert stored["text"] == text
    assert [k for _s, k, _v in _spans(stored)] == [TAG]
    assert "langs" not in stored


def test_a_handle_lookup_that_fails_writes_the_name_and_the_post_goes_out(pds, proxy):
    show, guest = _account(pds, "show"), _account(pds, "guest")
    proxy.fail("com.atproto.identity.resolveHandle", "502-before")
    text = f"with @{guest.handle} today"
    published = _publisher(show, proxy.url).publish(
        Post(text=text, mentions=((f"@{guest.handle}", "Guest Person"),)), "k-502")
    stored = pds.get_record(show.did, POST, _rkey(published))["value"]
    assert stored["text"] == "with Guest Person today" and "facets" not in stored


def test_a_shortened_link_is_shown_short_and_links_the_whole_url(pds):
    show = _account(pds, "show")
    full = "https://example.com/episodes/2026/12/a-really-long-slug-for-this-one?ref=crier"
    shown = "example.com/episodes/2026/12/a-rea…"
    stored = pds.get_record(show.did, POST, _rkey(_publisher(show, pds.url).publish(
        Post(text=f"Listen: {shown}", links=((shown, full),)), "k-link")))["value"]
    assert _spans(stored) == [(shown, LINK, full)]


def test_the_seed_episode_announcement_carries_its_card_and_thumbnail(pds, tmp_path):
    feed = parse_feed((ROOT / "config" / "sample-feed.xml").read_bytes())
    episode = feed.episodes[0]
    summary = ("I spoke to Nick Vincent, assistant professor of computing science at Simon "
               "Fraser University, about collective action in the age of AI.")
    artwork = _image(tmp_path / "cover.png", (1600, 1600))   # a cover as podcasts ship it
    assert artwork.stat().st_size > BLOB_MAX_BYTES
    text = f"New episode of {feed.title}: {episode.title} {episode.link}"
    post = Post(text=text, language=feed.language,
                card=Card(uri=episode.link, title=episode.title, description=summary,
                          thumb=Media(source=str(artwork), alt="Show artwork")))
    show = _account(pds, "show")
    published = _publisher(show, pds.url).publish(post, "k-seed")
    stored = pds.get_record(show.did, POST, _rkey(published))["value"]
    assert stored["text"] == text
    external = stored["embed"]["external"]
    assert stored["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"], external["description"]) == \
        (episode.link, episode.title, summary)
    thumb = external["thumb"]
    blob = pds.get_blob(show.did, thumb["ref"]["$link"])
    assert len(blob) == thumb["size"] <= BLOB_MAX_BYTES
    assert thumb["mimeType"] == "image/jpeg"
    with Image.open(io.BytesIO(blob)) as img:
        assert img.format == "JPEG" and img.width == img.height
    assert _spans(stored) == [(episode.link, LINK, episode.link)]
    assert stored["langs"] == ["en-US"]


def test_promo_images_carry_alt_text_and_aspect_ratio(pds, tmp_path):
    wide = _image(tmp_path / "wide.png", (1200, 600), noise=False)
    big = _image(tmp_path / "big.png", (1000, 1500))
    post = Post(text="Support the show 💜", media=(
        Media(source=str(wide), alt="A blue banner"),
        Media(source=f"file://{big}", alt="Noise, tall"),
        Media(source="https://example.com/remote.png", alt="not a local file")))
    show = _account(pds, "show")
    stored = pds.get_record(show.did, POST, _rkey(
        _publisher(show, pds.url).publish(post, "k-promo")))["value"]
    images = stored["embed"]["images"]
    assert stored["embed"]["$type"] == "app.bsky.embed.images"
    assert [i["alt"] for i in images] == ["A blue banner", "Noise, tall"]
    assert [i["aspectRatio"] for i in images] == [{"width": 1200, "height": 600},
                                                  {"width": 1000, "height": 1500}]
    for image in images:
        blob = pds.get_blob(show.did, image["image"]["ref"]["$link"])
        assert len(blob) == image["image"]["size"] <= BLOB_MAX_BYTES
    assert images[0]["image"]["mimeType"] == "image/png"      # small enough: sent as it was
    assert images[1]["image"]["mimeType"] == "image/jpeg"     # 4.5 MB: re-encoded


def test_the_server_refuses_what_the_lexicon_refuses(pds):
    show = _account(pds, "show")
    with pytest.raises(RejectedError, match=r"maximum 300, got 301\) at \$.record.text") as info:
        _publisher(show, pds.url).publish(Post(text="é" * 301), "k-long")
    assert info.value.status == 400
    assert pds.list_records(show.did, POST) == []


# -- exactly once -----------------------------------------------------------------------------

def test_an_answer_lost_after_the_write_is_found_by_its_record_key(pds, proxy):
    show = _account(pds, "show")
    checkpoints = Checkpoints()
    pub = _publisher(show, proxy.url, checkpoints=checkpoints)
    proxy.fail("com.atproto.repo.createRecord", "drop")     # written; the answer is lost
    published = pub.publish(Post(text="lost answer"), "k-drop")
    assert _rkey(published) == checkpoints.data["k-drop"]["rkey"]
    assert len(pds.list_records(show.did, POST)) == 1
    assert proxy.count("com.atproto.repo.createRecord") == 1
    # asked again (the dispatcher retrying): the same record, nothing written
    assert pub.publish(Post(text="lost answer"), "k-drop") == published
    assert proxy.count("com.atproto.repo.createRecord") == 1


def test_an_ambiguous_failure_then_a_retry_makes_one_record(pds, proxy):
    show = _account(pds, "show")
    checkpoints = Checkpoints()
    pub = _publisher(show, proxy.url, checkpoints=checkpoints)
    proxy.fail("com.atproto.repo.createRecord", "502-before")   # never reached the PDS
    with pytest.raises(AmbiguousError):
        pub.publish(Post(text="retry me"), "k-retry")
    rkey = checkpoints.data["k-retry"]["rkey"]
    assert pds.list_records(show.did, POST) == []
    published = pub.publish(Post(text="retry me"), "k-retry")
    assert _rkey(published) == rkey
    proxy.fail("com.atproto.repo.createRecord", "502")          # reached it, answered 502
    assert pub.publish(Post(text="another"), "k-retry-2") is not None
    texts = sorted(r["value"]["text"] for r in pds.list_records(show.did, POST))
    assert texts == ["another", "retry me"]


def test_without_checkpoints_each_publish_is_a_new_record(pds):
    show = _account(pds, "show")
    pub = _publisher(show, pds.url)
    a, b = pub.publish(Post(text="one"), "k"), pub.publish(Post(text="two"), "k")
    assert a.remote_id != b.remote_id and len(pds.list_records(show.did, POST)) == 2


def test_find_existing_matches_text_and_time(pds):
    show = _account(pds, "show")
    pub = _publisher(show, pds.url)
    before = datetime.now(UTC) - timedelta(seconds=5)
    post = Post(text="hello @nobody.test #x", mentions=(("@nobody.test", "Nobody"),))
    published = pub.publish(post, "k-find")          # stored as "hello Nobody #x"
    assert pub.find_existing(post, before) == published
    assert pub.find_existing(Post(text="something else"), before) is None
    assert pub.find_existing(post, datetime.now(UTC) + timedelta(minutes=1)) is None


def test_delete_and_deleting_again(pds):
    show = _account(pds, "show")
    pub = _publisher(show, pds.url)
    published = pub.publish(Post(text="soon gone"), "k-del")
    pub.delete(published.remote_id)
    assert pds.get_record(show.did, POST, _rkey(published)) is None
    pub.delete(published.remote_id)                  # already gone: still fine
    other = _account(pds, "other")
    with pytest.raises(RejectedError, match="not a record of"):
        pub.delete(f"at://{other.did}/{POST}/{_rkey(published)}")


def test_an_amplifier_reposts_once(pds, proxy):
    show, amp = _account(pds, "show"), _account(pds, "amp")
    official = _publisher(show, pds.url).publish(Post(text="the official post"), "k-off")
    checkpoints = Checkpoints()
    amplifier = _publisher(amp, proxy.url, name="amp", checkpoints=checkpoints)
    first = amplifier.boost(official.url, official.remote_id, same_instance=True)
    again = amplifier.boost(official.url, official.remote_id, same_instance=True)
    assert first == again and first.url == official.url
    reposts = pds.list_records(amp.did, REPOST)
    assert len(reposts) == 1 and reposts[0]["uri"] == first.remote_id
    target = pds.get_record(show.did, POST, _rkey(official))
    assert reposts[0]["value"]["subject"] == {"uri": target["uri"], "cid": target["cid"]}
    assert proxy.count("com.atproto.repo.createRecord") == 1
    # from the bsky.app URL alone (no remote id), another amplifier finds the post
    amp2 = _account(pds, "amp")
    by_url = _publisher(amp2, pds.url, name="amp2").boost(official.url, None,
                                                          same_instance=False)
    assert pds.list_records(amp2.did, REPOST)[0]["uri"] == by_url.remote_id


# -- the session ------------------------------------------------------------------------------

def test_one_session_for_every_publisher_of_the_account(pds, proxy):
    show = _account(pds, "show")
    for i in range(3):   # a worker rebuilds its publishers on each tick
        pub = _publisher(show, proxy.url)
        pub.publish(Post(text=f"tick {i}"), f"k-tick-{i}")
        assert pub.verify() == f"@{show.handle}"
    assert proxy.count("com.atproto.server.createSession") == 1
    assert proxy.count("com.atproto.repo.createRecord") == 3
    assert not [n for n in proxy.seen if n.startswith("app.bsky")]   # no profile fetch


def test_an_expired_access_token_is_refreshed_not_logged_in_again(pds, proxy, caplog):
    caplog.set_level(logging.DEBUG)
    show = _account(pds, "show")
    pub = _publisher(show, proxy.url)
    pub.publish(Post(text="first"), "k-exp-1")
    session = pub._session.client._session
    expired = session.access_jwt = pds.expired(session.access_jwt)   # as after 2 hours
    assert pds.xrpc("GET", "com.atproto.server.getSession",
                    token=expired).json()["error"] == "ExpiredToken"
    pub.publish(Post(text="second"), "k-exp-2")
    assert proxy.count("com.atproto.server.refreshSession") == 1
    assert proxy.count("com.atproto.server.createSession") == 1
    assert session.access_jwt != expired
    assert pds.xrpc("GET", "com.atproto.server.getSession",
                    token=session.access_jwt).status_code == 200
    # a token the client thinks good but the server refuses (signed with another secret):
    # the server's answer leads to the refresh, and the call is made again
    head, body, _sig = session.access_jwt.split(".")
    session.access_jwt = f"{head}.{body}.{'A' * 43}"
    assert pds.xrpc("GET", "com.atproto.server.getSession",
                    token=session.access_jwt).json()["error"] == "InvalidToken"
    pub.publish(Post(text="third"), "k-exp-3")
    assert proxy.count("com.atproto.server.refreshSession") == 2
    assert proxy.count("com.atproto.server.createSession") == 1
    assert len(pds.list_records(show.did, POST)) == 3
    # the refresh token itself expired too (90 days idle): a new session, once
    session.access_jwt = pds.expired(session.access_jwt)
    session.refresh_jwt = pds.expired(session.refresh_jwt)
    assert _publisher(show, proxy.url).verify() == f"@{show.handle}"
    assert proxy.count("com.atproto.server.refreshSession") == 2
    assert proxy.count("com.atproto.server.createSession") == 2
    for secret in (session.access_jwt, session.refresh_jwt, show.app_password):
        assert secret not in caplog.text


# -- errors -----------------------------------------------------------------------------------

def test_a_wrong_app_password_is_an_auth_error_that_says_so(pds, caplog):
    show = _account(pds, "show")
    wrong = "abcd-efgh-ijkl-mnop"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as info:
        _publisher(show, pds.url, name="show", app_password=wrong).publish(
            Post(text="never"), "k-auth")
    message = str(info.value)
    assert "Invalid identifier or password" in message
    assert "CRIER_SHOW_APP_PASSWORD" in message and show.handle in message
    assert wrong not in message and wrong not in caplog.text
    assert pds.list_records(show.did, POST) == []


def test_too_many_logins_is_rate_limited_until_the_servers_reset(pds):
    show = _account(pds, "show")
    for _ in range(30):                         # createSession: 30 per 5 minutes
        pds.login(show.handle, show.app_password)
    over = pds.xrpc("POST", "com.atproto.server.createSession",
                    json={"identifier": show.handle, "password": show.app_password})
    assert over.status_code == 429
    with pytest.raises(RateLimitedError) as info:
        _publisher(show, pds.url).verify()
    reset = int(over.headers["ratelimit-reset"])
    assert abs(info.value.retry_at.timestamp() - reset) <= 1


def test_network_failures_on_reads_are_transient(pds, proxy):
    show = _account(pds, "show")
    with pytest.raises(TransientError, match="could not connect") as info:
        _publisher(show, "http://127.0.0.1:9").verify()    # nothing listens there
    assert not isinstance(info.value, AmbiguousError)
    pub = _publisher(show, proxy.url)
    pub.verify()
    proxy.fail("com.atproto.repo.listRecords", "502-before")
    with pytest.raises(TransientError) as info:
        pub.find_existing(Post(text="x"), datetime.now(UTC))
    assert not isinstance(info.value, AmbiguousError) and info.value.status == 502


def test_a_write_that_times_out_is_ambiguous_and_its_key_settles_it(pds, proxy):
    show = _account(pds, "show")
    checkpoints = Checkpoints()
    pub = _publisher(show, proxy.url, checkpoints=checkpoints, timeout=0.5)
    pub.verify()
    proxy.hold("com.atproto.repo.createRecord")                 # written, never answered
    published = pub.publish(Post(text="slow but there"), "k-slow")
    assert _rkey(published) == checkpoints.data["k-slow"]["rkey"]
    proxy.hold("com.atproto.repo.createRecord", forward=False)  # never written
    with pytest.raises(AmbiguousError, match="timed out while creating the post"):
        pub.publish(Post(text="not there"), "k-slow-2")
    assert [r["value"]["text"] for r in pds.list_records(show.did, POST)] == ["slow but there"]


def test_importing_the_adapter_does_not_load_the_sdk():
    import subprocess
    import sys
    code = ("import sys, bot.platforms.bluesky, bot.platforms.bluesky_rich; "
            "print(sorted(m for m in sys.modules if m.startswith(('atproto', 'PIL'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
