"""bot/platforms/threads.py against the Threads contract server (tests/fakes/threads_server.py):
text with a link card, images with alt text, exactly once through the stored container, and
Meta's errors translated to crier's."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import pytest

from bot import errors
from bot.models import Media, Post
from bot.platforms.base import Publisher
from bot.platforms.threads import ThreadsPublisher
from tests.fakes.threads_server import ThreadsServer

TOKEN = "THREADS-long-lived-TOKEN-0123456789"

# Card, Media.url and Post.card come with CORE's part of issue 16; until it is merged these
# stand-ins carry the same fields (the adapter reads them by name).
try:
    from bot.models import Card
except ImportError:
    @dataclass(frozen=True)
    class Card:  # type: ignore[no-redef]
        uri: str
        title: str = ""
        description: str = ""
        thumb: Media | None = None

if "card" in {f.name for f in fields(Post)}:
    CardPost = Post
else:
    @dataclass(frozen=True)
    class CardPost(Post):  # type: ignore[no-redef]
        card: Card | None = None

if "url" in {f.name for f in fields(Media)}:
    UrlMedia = Media
else:
    @dataclass(frozen=True)
    class UrlMedia(Media):  # type: ignore[no-redef]
        url: str | None = None


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:   # the publisher waits by moving this clock
        self.now += timedelta(seconds=seconds)


class MemoryCheckpoints:
    """The two methods a publisher needs of the store (bot.store.Store has them too)."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}

    def checkpoint(self, key: str) -> dict | None:
        return self.data.get(key)

    def set_checkpoint(self, key: str, data: dict) -> None:
        self.data[key] = dict(data)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def srv(clock):
    with ThreadsServer(access_token=TOKEN, username="tbsocialist", clock=clock,
                       token_issued_at=clock.now - timedelta(days=3)) as s:
        yield s


def make(srv, clock, checkpoints=None, **kw) -> ThreadsPublisher:
    kw.setdefault("timeout", 5.0)
    return ThreadsPublisher("threads", access_token=kw.pop("access_token", TOKEN),
                            api_base=srv.url, checkpoints=checkpoints, clock=clock,
                            sleep=clock.sleep, **kw)


@pytest.fixture
def cps():
    return MemoryCheckpoints()


@pytest.fixture
def pub(srv, clock, cps):
    return make(srv, clock, cps)


ANNOUNCEMENT = ("New episode: Bread and Roses, with Jane Doe. "
                "https://tbsocialist.example.org/episodes/42")


def test_it_is_a_publisher_with_threads_rules(pub):
    assert isinstance(pub, Publisher)
    assert pub.platform == "threads" and pub.rules().limit == 500
    assert TOKEN not in repr(pub)


def test_announcement_goes_out_with_its_link_card(srv, pub, cps):
    post = CardPost(text=ANNOUNCEMENT,
                    card=Card(uri="https://tbsocialist.example.org/episodes/42",
                              title="Bread and Roses"))
    got = pub.publish(post, "key-1")
    [made] = srv.posts
    assert made["text"] == ANNOUNCEMENT and made["media_type"] == "TEXT_POST"
    assert made["link_attachment_url"] == "https://tbsocialist.example.org/episodes/42"
    assert got.remote_id == made["id"] and got.url == made["permalink"]
    assert cps.data["key-1"]["container"] == made["container"]
    assert cps.data["key-1"]["media"] == made["id"]


def test_promo_with_an_image_and_its_alt_text(srv, pub, tmp_path):
    srv.processing_polls = 2                       # Meta is still fetching the image
    art = tmp_path / "cover.png"
    art.write_bytes(b"\x89PNG\r\n\x1a\n")
    post = CardPost(text="Support the show: become a member!",
                    media=(UrlMedia(str(art), alt="The show's red cover, a rose",
                                    url="https://cdn.example.org/cover.png"),),
                    card=Card(uri="https://tbsocialist.example.org/join"))
    pub.publish(post, "key-2")
    [made] = srv.posts
    assert made["media_type"] == "IMAGE"
    assert made["media_url"] == "https://cdn.example.org/cover.png"
    assert made["alt_text"] == "The show's red cover, a rose"
    assert "link_attachment_url" not in made       # Threads attaches links to text posts only
    statuses = [r for r in srv.requests if r["route"] == "status"]
    assert len(statuses) == 3                      # IN_PROGRESS twice, then FINISHED


def test_several_images_make_one_carousel(srv, pub):
    media = tuple(UrlMedia(f"https://cdn.example.org/{i}.png", alt=f"picture {i}")
                  for i in range(3))
    pub.publish(Post(text="Three pictures", media=media), "key-c")
    [made] = srv.posts
    assert made["media_type"] == "CAROUSEL_ALBUM" and len(made["children"]["data"]) == 3
    assert made["child_alt_texts"] == ["picture 0", "picture 1", "picture 2"]


def test_an_image_without_a_public_url_is_refused_with_the_reason(srv, pub, tmp_path):
    with pytest.raises(errors.RejectedError, match="public image URL"):
        pub.publish(Post(text="x", media=(Media(str(tmp_path / "a.png"), alt="a"),)), "k")
    assert not srv.containers and not srv.posts


def test_more_than_five_links_is_refused_before_anything_is_sent(srv, pub):
    text = " ".join(f"https://l{i}.example.org/" for i in range(6))
    with pytest.raises(errors.RejectedError, match="at most 5 links"):
        pub.publish(Post(text=text), "k")
    assert not srv.containers


def test_server_error_on_publish_then_retry_publishes_the_same_container(srv, pub, cps):
    srv.fail_next("publish", status=500)
    with pytest.raises(errors.AmbiguousError):
        pub.publish(Post(text="Once only"), "key-3")
    assert not srv.posts and len(srv.containers) == 1
    got = pub.publish(Post(text="Once only"), "key-3")
    assert len(srv.containers) == 1 and len(srv.posts) == 1
    assert srv.posts[0]["container"] == cps.data["key-3"]["container"]
    assert got.remote_id == srv.posts[0]["id"]


def test_published_but_the_answer_lost_is_found_not_posted_again(srv, pub):
    srv.commit_then_fail_next("publish", status=500)
    with pytest.raises(errors.AmbiguousError):
        pub.publish(Post(text="Landed anyway"), "key-4")
    assert len(srv.posts) == 1
    got = pub.publish(Post(text="Landed anyway"), "key-4")
    assert len(srv.posts) == 1 and len(srv.containers) == 1
    assert got.remote_id == srv.posts[0]["id"]


def test_a_timeout_after_publishing_is_ambiguous_and_find_existing_finds_it(srv, clock):
    pub = make(srv, clock, MemoryCheckpoints(), timeout=0.5)
    since = clock.now
    srv.timeout_after_commit_next("publish", delay=2.0)
    with pytest.raises(errors.AmbiguousError):
        pub.publish(Post(text="Slow answer"), "key-5")
    found = pub.find_existing(Post(text="Slow  answer"), since)   # spacing does not matter
    assert found is not None and found.remote_id == srv.posts[0]["id"]
    assert pub.find_existing(Post(text="Another text"), since) is None
    assert pub.find_existing(Post(text="Slow answer"), since + timedelta(minutes=5)) is None


def test_an_expired_container_is_replaced(srv, pub, clock, cps):
    srv.fail_next("publish", status=500)
    with pytest.raises(errors.AmbiguousError):
        pub.publish(Post(text="A day late"), "key-6")
    first = cps.data["key-6"]["container"]
    clock.now += timedelta(hours=25)
    pub.publish(Post(text="A day late"), "key-6")
    assert len(srv.containers) == 2 and srv.posts[0]["container"] != first


def test_a_container_that_failed_is_replaced_on_the_next_attempt(srv, pub, cps):
    srv.error_next_container("UNKNOWN")
    with pytest.raises(errors.RejectedError, match="ERROR"):
        pub.publish(Post(text="Try again"), "key-7")
    pub.publish(Post(text="Try again"), "key-7")
    assert len(srv.containers) == 2 and len(srv.posts) == 1


def test_a_container_still_processing_is_kept_for_the_next_attempt(srv, clock, cps):
    pub = make(srv, clock, cps, status_wait=6.0, status_poll=3.0)
    srv.processing_polls = 10
    post = Post(text="Big image", media=(UrlMedia("https://cdn.example.org/big.png"),))
    with pytest.raises(errors.TransientError, match="next attempt"):
        pub.publish(post, "key-8")
    srv.containers[cps.data["key-8"]["container"]]["polls_left"] = 0
    pub.publish(post, "key-8")
    assert len(srv.containers) == 1 and len(srv.posts) == 1


def test_an_expired_or_revoked_token_is_an_auth_error(srv, pub, clock):
    srv.revoke(TOKEN)
    with pytest.raises(errors.AuthError) as e:
        pub.publish(Post(text="x"), "k")
    assert TOKEN not in str(e.value) and not srv.containers
    with pytest.raises(errors.AuthError):
        make(srv, clock, access_token="not-a-token").verify()


def test_rate_limits_carry_the_time_meta_gives(srv, pub, clock):
    srv.rate_limit_next("create", code=4, minutes=20)
    with pytest.raises(errors.RateLimitedError) as e:
        pub.publish(Post(text="x"), "k")
    assert e.value.retry_at == clock.now + timedelta(minutes=20)
    srv.rate_limit_next("create", code=613, minutes=0)
    with pytest.raises(errors.RateLimitedError):
        pub.publish(Post(text="x"), "k")


def test_the_250_a_day_limit_is_a_rate_limit(srv, pub):
    for i in range(250):
        srv.posts.append({"id": str(i), "published_at": srv.clock(), "text": ""})
    assert pub.publishing_limit()["quota_usage"] == 250
    with pytest.raises(errors.RateLimitedError):
        pub.publish(Post(text="one too many"), "k")


def test_other_refusals_are_rejected_with_metas_words(srv, pub):
    with pytest.raises(errors.RejectedError, match="longer than 500"):
        pub.publish(Post(text="a" * 501), "k")


def test_a_read_failing_is_only_transient(srv, pub):
    srv.fail_next("me", status=503)
    with pytest.raises(errors.TransientError) as e:
        pub.verify()
    assert not isinstance(e.value, errors.AmbiguousError)


def test_verify_and_delete(srv, pub):
    assert pub.verify() == "@tbsocialist"
    got = pub.publish(Post(text="Remove me"), "k")
    pub.delete(got.remote_id)
    assert not srv.posts and srv.deleted == [got.remote_id]
    pub.delete(got.remote_id)                      # already gone: fine


def test_connection_refused_is_transient(clock):
    with ThreadsServer(access_token=TOKEN) as gone:
        url = gone.url
    pub = ThreadsPublisher("threads", access_token=TOKEN, api_base=url, timeout=1.0)
    with pytest.raises(errors.TransientError) as e:
        pub.publish(Post(text="x"), "k")
    assert not isinstance(e.value, errors.AmbiguousError)


class MemoryTokens:
    def __init__(self) -> None:
        self.token: str | None = None
        self.saved: list[tuple[str, int | None]] = []

    def get(self) -> str | None:
        return self.token

    def save(self, token: str, expires_in: int | None) -> None:
        self.token = token
        self.saved.append((token, expires_in))


def test_refresh_keeps_the_new_token_and_uses_it(srv, clock):
    tokens = MemoryTokens()
    pub = make(srv, clock, token_store=tokens)
    new, expires_in = pub.refresh_token()
    assert new != TOKEN and expires_in == 60 * 86400 and tokens.saved == [(new, expires_in)]
    srv.revoke(TOKEN)                              # the old one no longer works
    assert pub.verify() == "@tbsocialist"


def test_the_token_is_never_logged(srv, pub, caplog):
    caplog.set_level(logging.DEBUG)
    pub.verify()
    pub.publish(Post(text="quiet"), "k")
    srv.revoke(TOKEN)
    with pytest.raises(errors.AuthError):
        pub.refresh_token()
    assert TOKEN not in caplog.text
    assert all(r["params"].get("access_token") in (None, "***") for r in srv.requests)


def test_a_container_meta_no_longer_knows_is_replaced(srv, pub, cps):
    cps.set_checkpoint("key-9", {"container": "17000000000000000"})
    pub.publish(Post(text="Fresh container"), "key-9")
    assert len(srv.containers) == 1 and len(srv.posts) == 1
    assert cps.data["key-9"]["container"] == srv.posts[0]["container"]


def test_find_existing_within_the_same_second(srv, pub, clock):
    clock.now = clock.now.replace(microsecond=700_000)
    pub.publish(Post(text="Same second"), "k")
    since = clock.now.replace(microsecond=500_000)     # Meta says 12:00:00, no fraction
    assert pub.find_existing(Post(text="Same second"), since) is not None
    assert pub.find_existing(Post(text="Same second"), since + timedelta(seconds=1)) is None
