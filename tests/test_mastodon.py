"""MastodonPublisher against a local Mastodon over real loopback HTTP, and that local server
against the shapes of real recorded Mastodon responses."""

from __future__ import annotations

import functools
import json
import logging
import re
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from bot import errors
from bot.models import Media, Post, Published, Rules
from bot.platforms.base import Publisher
from bot.platforms.mastodon import MastodonPublisher
from tests.fakes.mastodon_server import MastodonServer, mastodon_length

TOKEN = "tok-7f3a9c2e-SECRET"
ISO_RESET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def srv():
    with MastodonServer(token=TOKEN) as server:
        yield server


def publisher(server: MastodonServer, **kw) -> MastodonPublisher:
    kw.setdefault("media_poll_interval", 0.01)
    return MastodonPublisher("main", server.url, TOKEN, **kw)


def raises(kind: type[errors.PublishError], fn, *args) -> errors.PublishError:
    """Call fn, expect `kind`, and check the token is nowhere in what it says."""
    with pytest.raises(kind) as info:
        fn(*args)
    exc = info.value
    for text in (str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)):
        assert TOKEN not in text
    assert exc.platform == "mastodon" and exc.account == "main"
    return exc


def png(path: Path, width: int = 2, height: int = 1) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


# -- the local server's contract ---------------------------------------------------------------

@functools.cache
def cassette(shared: Path, name: str) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the media cassette is 3 MB
    doc = yaml.load((shared / "recorded" / "mastodon.py" / name).read_text(), Loader=loader)
    return doc["interactions"]


def recorded(shared: Path, name: str, index: int = 0) -> tuple[int, dict, object]:
    response = cassette(shared, name)[index]["response"]
    return response["status"]["code"], response["headers"], json.loads(
        response["body"]["string"])


def get(server: MastodonServer, path: str, token: str | None = TOKEN, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(server.url + path, headers=headers, timeout=5, **kw)


def post(server: MastodonServer, path: str, token: str | None = TOKEN, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    return requests.post(server.url + path, headers=headers, timeout=5, **kw)


def test_instance_v2_has_the_recorded_shape(shared, srv):
    _, _, want = recorded(shared, "test_instance.yaml")
    got = get(srv, "/api/v2/instance/").json()  # Mastodon.py asks with a trailing slash
    assert got.keys() == want.keys()
    assert got["configuration"].keys() == want["configuration"].keys()
    for key in ("statuses", "media_attachments", "accounts", "polls", "urls"):
        assert got["configuration"][key].keys() == want["configuration"][key].keys(), key


def test_instance_v1_has_the_recorded_shape(shared, srv):
    _, _, want = recorded(shared, "test_instance_v1.yaml")
    got = get(srv, "/api/v1/instance").json()
    assert got.keys() == want.keys()
    for key in ("statuses", "media_attachments"):
        assert got["configuration"][key].keys() == want["configuration"][key].keys()


def test_verify_credentials_has_the_recorded_shape(shared, srv):
    _, _, want = recorded(shared, "test_verify_credentials.yaml")
    got = get(srv, "/api/v1/accounts/verify_credentials").json()
    assert got.keys() == want.keys()
    assert got["source"].keys() == want["source"].keys()


def test_status_has_the_recorded_shape_and_html(shared, srv):
    code, headers, want = recorded(shared, "test_status_post__None-public.yaml")
    r = post(srv, "/api/v1/statuses", data={
        "status": "New <episode> & more: https://example.com/ep/1?a=1&b=2\n\n#Podcast "
                  "with @guest@example.social\nbye", "visibility": "public"})
    assert r.status_code == code == 200
    got = r.json()
    assert got.keys() == want.keys()
    assert got["account"].keys() == want["account"].keys()
    assert isinstance(got["id"], str) and got["url"] == f"{srv.url}/@crier/{got['id']}"
    assert got["created_at"].endswith("Z") and datetime.fromisoformat(got["created_at"])
    content = got["content"]
    assert content.startswith("<p>New &lt;episode&gt; &amp; more: <a href=\"https://example.com"
                              "/ep/1?a=1&amp;b=2\"")
    assert "</p><p>" in content and "<br />" in content
    assert 'class="mention hashtag"' in content and 'class="u-url mention"' in content
    assert [m["acct"] for m in got["mentions"]] == ["guest@example.social"]
    for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert name.lower() in headers and name in r.headers
    assert ISO_RESET.match(r.headers["X-RateLimit-Reset"])
    assert ISO_RESET.match(headers["x-ratelimit-reset"][0])  # the recorded format, too

    deleted = requests.delete(f"{srv.url}/api/v1/statuses/{got['id']}", timeout=5,
                              headers={"Authorization": f"Bearer {TOKEN}"}).json()
    _, _, want_deleted = recorded(shared, "test_status_post__None-public.yaml", 1)
    assert deleted.keys() == want_deleted.keys()  # "text" instead of "content"
    assert srv.statuses == []


def test_errors_have_the_recorded_shape(shared, srv):
    code, _, want = recorded(shared, "test_status_empty.yaml")
    r = post(srv, "/api/v1/statuses", data={"status": ""})
    assert (r.status_code, r.json().keys()) == (code, want.keys())
    assert r.json() == {"error": "Validation failed: Text can't be blank"}
    assert ISO_RESET.match(r.headers["X-RateLimit-Reset"])

    code, headers, want = recorded(shared, "test_unauthed_home_tl_throws.yaml", 1)
    r = post(srv, "/api/v1/statuses", token=None, data={"status": "hi"})
    assert (r.status_code, r.json()) == (code, want)
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    assert post(srv, "/api/v1/statuses", token="wrong", data={"status": "hi"}).status_code == 401
    assert srv.statuses == []


def test_media_upload_is_accepted_then_processed(shared, srv, tmp_path):
    _, _, want = recorded(shared, "test_media_post__True.yaml")
    assert cassette(shared, "test_media_post__True.yaml")[0]["response"]["status"]["code"] == 202
    with png(tmp_path / "a.png").open("rb") as f:
        r = post(srv, "/api/v2/media", files={"file": ("a.png", f, "image/png")},
                 data={"description": "a red dot"})
    assert r.status_code == 202
    media = r.json()
    assert media.keys() == want.keys() and media["url"] is None
    assert media["description"] == "a red dot"
    assert media["meta"]["original"]["width"] == 2
    r = post(srv, "/api/v1/statuses", data={"status": "early", "media_ids[]": media["id"]})
    assert r.status_code == 422 and "not finished processing" in r.json()["error"]
    assert get(srv, f"/api/v1/media/{media['id']}").status_code == 206
    done = get(srv, f"/api/v1/media/{media['id']}")
    assert done.status_code == 200 and done.json()["url"].endswith(".png")
    r = requests.put(f"{srv.url}/api/v1/media/{media['id']}", data={"description": "new"},
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.json()["description"] == "new"


def test_length_is_counted_like_mastodon():
    url = "https://example.com/" + "x" * 100
    assert mastodon_length(url) == 23
    assert mastodon_length(f"see {url}.", url_weight=30) == 4 + 30 + 1
    assert mastodon_length("hi @someone@a.very.long.example.social") == len("hi @someone")
    assert mastodon_length("👩‍👩‍👧‍👦 e\u0301") == 3  # one family, a space, one accented e
    assert mastodon_length("mail me@example.com") == len("mail me@example.com")


def test_server_counts_urls_mentions_and_graphemes(srv):
    base = "👩‍👩‍👧‍👦 https://example.com/" + "p" * 200 + " @guest@example.social "
    fill = 500 - mastodon_length(base)
    assert fill > 0
    ok = post(srv, "/api/v1/statuses", data={"status": base + "a" * fill})
    assert ok.status_code == 200
    over = post(srv, "/api/v1/statuses", data={"status": base + "a" * (fill + 1)})
    assert over.status_code == 422
    assert over.json()["error"] == "Validation failed: Text character limit of 500 exceeded"
    cw = post(srv, "/api/v1/statuses", data={"status": base + "a" * fill, "spoiler_text": "!"})
    assert cw.status_code == 422  # the content warning counts too


def test_account_statuses_search_and_reblog(srv):
    from mastodon import Mastodon

    api = Mastodon(access_token=TOKEN, api_base_url=srv.url, ratelimit_method="throw")
    ids = [api.status_post(f"post {i}").id for i in range(3)]
    me = api.me()
    assert [s.id for s in api.account_statuses(me, limit=2)] == ids[::-1][:2]
    assert [s.id for s in api.account_statuses(me, max_id=ids[1])] == [ids[0]]
    assert api.status(ids[1]).content == "<p>post 1</p>"
    found = api.search_v2(srv.statuses[0]["url"], resolve=True, result_type="statuses")
    assert [s.id for s in found.statuses] == [ids[0]]
    reblog = api.status_reblog(ids[0])
    assert reblog.reblog.id == ids[0] and api.status(ids[0]).reblogs_count == 1
    assert len(api.account_statuses(me)) == 4
    assert len(api.account_statuses(me, exclude_reblogs=True)) == 3


def test_fault_injection_is_targeted_and_counted(srv):
    srv.fail_next(503, count=2)
    assert get(srv, "/api/v1/accounts/verify_credentials").status_code == 200  # GET: not hit
    assert post(srv, "/api/v1/statuses", data={"status": "a"}).status_code == 503
    assert post(srv, "/api/v1/statuses", data={"status": "a"}).status_code == 503
    assert post(srv, "/api/v1/statuses", data={"status": "a"}).status_code == 200
    srv.rate_limit_next(reset_in_seconds=90, path_prefix=None, method=None)  # any request
    r = get(srv, "/api/v1/instance")
    assert r.status_code == 429 and r.headers["X-RateLimit-Remaining"] == "0"
    reset = datetime.fromisoformat(r.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
    assert abs((reset - datetime.now(UTC)).total_seconds() - 90) < 5
    assert [(q["method"], q["path"]) for q in srv.requests][-1] == ("GET", "/api/v1/instance")


# -- MastodonPublisher -------------------------------------------------------------------------

def test_is_a_publisher_and_constructs_without_network(srv):
    p = publisher(srv)
    assert isinstance(p, Publisher) and p.platform == "mastodon"
    assert srv.requests == []
    assert TOKEN not in repr(p)


def test_rules_come_from_the_instance_and_are_cached():
    with MastodonServer(max_characters=11000, characters_reserved_per_url=30,
                        description_limit=5000, image_size_limit=8_000_000,
                        token=TOKEN) as server:
        p = publisher(server)
        rules = p.rules()
        assert rules == Rules(platform="mastodon", limit=11000, counter="mastodon",
                              url_weight=30, alt_text_limit=5000, image_max_bytes=8_000_000)
        assert p.rules() is rules
        assert [r["path"] for r in server.requests] == ["/api/v2/instance"]


def test_rules_fall_back_to_the_v1_instance():
    with MastodonServer(max_characters=1000, instance_v2=False, token=TOKEN) as server:
        rules = publisher(server).rules()
        assert (rules.limit, rules.alt_text_limit) == (1000, 1500)
        assert rules.image_max_bytes == 16 * 1024 * 1024
    with MastodonServer(instance_v2=False, v1_configuration=False, max_toot_chars=5000,
                        token=TOKEN) as server:
        assert publisher(server).rules().limit == 5000


def test_rules_default_to_500_with_a_warning(caplog):
    with MastodonServer(instance_v2=False, v1_configuration=False, token=TOKEN) as server:
        with caplog.at_level(logging.WARNING, logger="bot.platforms.mastodon"):
            assert publisher(server).rules().limit == 500
    assert "does not state a character limit" in caplog.text


def test_rules_errors_are_translated(srv):
    srv.fail_next(502, path_prefix="/api/v2/instance", method="GET")
    exc = raises(errors.TransientError, publisher(srv).rules)
    assert not isinstance(exc, errors.AmbiguousError)
    srv.rate_limit_next(reset_in_seconds=30, path_prefix="/api/v2/instance", method="GET")
    assert raises(errors.RateLimitedError, publisher(srv).rules).retry_at is not None


def test_publish_sends_token_key_visibility_and_language(srv):
    post_ = Post(text="Episode 12 is out https://example.com/12", language="de",
                 visibility="unlisted", spoiler="spoilers")
    published = publisher(srv).publish(post_, "delivery-1-key")
    [status] = srv.statuses
    assert published == Published(remote_id=status["id"], url=status["url"])
    assert (status["text"], status["idempotency_key"]) == (post_.text, "delivery-1-key")
    assert (status["visibility"], status["language"], status["spoiler_text"]) == \
        ("unlisted", "de", "spoilers")
    [request] = [r for r in srv.requests if r["path"] == "/api/v1/statuses"]
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Idempotency-Key"] == "delivery-1-key"
    assert b"visibility=unlisted" in request["body"] and b"language=de" in request["body"]


def test_publish_defaults_to_public(srv):
    publisher(srv).publish(Post(text="hello"), "k")
    assert srv.statuses[0]["visibility"] == "public"
    assert srv.statuses[0]["language"] == "en"  # the instance's default when none is sent


def test_same_key_twice_makes_one_status(srv):
    p = publisher(srv)
    first = p.publish(Post(text="once"), "same-key")
    second = p.publish(Post(text="once"), "same-key")
    assert first == second and len(srv.statuses) == 1
    assert p.publish(Post(text="once"), "other-key") != first
    assert len(srv.statuses) == 2


def test_server_error_is_ambiguous_and_a_retry_with_the_key_posts_once(srv):
    p = publisher(srv)
    srv.fail_next(500)
    exc = raises(errors.AmbiguousError, p.publish, Post(text="retry me"), "key-500")
    assert exc.status == 500
    assert srv.statuses == []
    published = p.publish(Post(text="retry me"), "key-500")
    p.publish(Post(text="retry me"), "key-500")
    assert [s["id"] for s in srv.statuses] == [published.remote_id]


def test_created_then_timed_out_is_ambiguous_and_never_duplicated(srv):
    p = publisher(srv, timeout=0.5)
    since = datetime.now(UTC) - timedelta(seconds=1)
    srv.timeout_after_create_next(delay=5)
    started = time.monotonic()
    raises(errors.AmbiguousError, p.publish, Post(text="slow server"), "key-timeout")
    assert time.monotonic() - started < 3
    [status] = srv.statuses  # it was created all the same
    assert p.find_existing(Post(text="slow server"), since) == \
        Published(remote_id=status["id"], url=status["url"])
    again = p.publish(Post(text="slow server"), "key-timeout")
    assert again.remote_id == status["id"] and len(srv.statuses) == 1


def test_network_failure_is_ambiguous_for_posts_and_transient_for_reads():
    with MastodonServer(token=TOKEN) as server:
        p = publisher(server, timeout=1)
    raises(errors.AmbiguousError, p.publish, Post(text="nobody home"), "k")
    exc = raises(errors.TransientError, p.verify)
    assert not isinstance(exc, errors.AmbiguousError)


def test_rate_limit_gives_retry_at_from_the_iso_reset(srv):
    p = publisher(srv)
    p.rules()  # not the status POST: left alone
    srv.rate_limit_next(reset_in_seconds=120)
    exc = raises(errors.RateLimitedError, p.publish, Post(text="x"), "k")
    assert exc.retry_at.tzinfo is not None and exc.retry_at.utcoffset() == timedelta(0)
    assert abs((exc.retry_at - datetime.now(UTC)).total_seconds() - 120) < 3
    assert exc.status == 429 and srv.statuses == []


def test_rate_limit_reset_as_epoch_is_read_too(srv):
    reset = int(time.time()) + 600
    srv.fail_next(429, headers={"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"})
    exc = raises(errors.RateLimitedError, publisher(srv).publish, Post(text="x"), "k")
    assert exc.retry_at == datetime.fromtimestamp(reset, UTC)


def test_revoked_token_is_an_auth_error(srv):
    p = publisher(srv)
    assert p.verify() == "@crier@127.0.0.1"
    srv.revoke_token()
    raises(errors.AuthError, p.publish, Post(text="x"), "k")
    raises(errors.AuthError, p.verify)
    raises(errors.AuthError, p.find_existing, Post(text="x"), datetime.now(UTC))
    srv.restore_token()
    assert p.verify() == "@crier@127.0.0.1"


def test_wrong_token_is_an_auth_error_without_the_token(srv):
    p = MastodonPublisher("main", srv.url, "not-" + TOKEN)
    exc = raises(errors.AuthError, p.verify)
    assert "The access token is invalid" in str(exc) and "not-" + TOKEN not in str(exc)


def test_too_long_is_rejected_with_the_platform_message(srv):
    exc = raises(errors.RejectedError, publisher(srv).publish, Post(text="a" * 501), "k")
    assert "Validation failed: Text character limit of 500 exceeded" in str(exc)
    assert exc.status == 422 and srv.statuses == []


def test_blank_and_forbidden_are_rejected(srv):
    p = publisher(srv)
    exc = raises(errors.RejectedError, p.publish, Post(text="   "), "k1")
    assert "Text can't be blank" in exc.detail
    srv.fail_next(403, body={"error": "This action is not allowed"})
    assert raises(errors.RejectedError, p.publish, Post(text="x"), "k2").status == 403
    srv.fail_next(403, body={"error": "This action is outside the authorized scopes"})
    raises(errors.AuthError, p.publish, Post(text="x"), "k3")


def test_media_is_uploaded_with_alt_text_and_awaited(srv, tmp_path):
    image = png(tmp_path / "cover.png")
    post_ = Post(text="with art", media=(Media(str(image), alt="Cover art: a red dot"),))
    published = publisher(srv).publish(post_, "k-media")
    [status] = srv.statuses
    assert published.remote_id == status["id"]
    [attachment] = status["media_attachments"]
    assert attachment["description"] == "Cover art: a red dot"
    assert attachment["type"] == "image" and attachment["url"]
    assert status["media_ids"] == [attachment["id"]]
    paths = [(r["method"], r["path"]) for r in srv.requests]
    assert ("POST", "/api/v2/media") in paths
    assert paths.count(("GET", f"/api/v1/media/{attachment['id']}")) == 2  # 206, then 200


def test_media_problems(srv, tmp_path, caplog):
    p = publisher(srv)
    missing = Post(text="x", media=(Media(str(tmp_path / "gone.png"), alt="a"),))
    with caplog.at_level(logging.WARNING, logger="bot.platforms.mastodon"):
        p.publish(missing, "k1")  # a refused image never costs the post: it goes without
        p.publish(Post(text="remote art", media=(Media("https://example.com/a.png"),)), "k2")
    assert "posting without it" in caplog.text and "not a local file" in caplog.text
    assert srv.statuses[0]["media_ids"] == [] and srv.statuses[1]["media_ids"] == []
    srv.fail_next(503, path_prefix="/api/v2/media")
    image = Post(text="y", media=(Media(str(png(tmp_path / "b.png")), alt="b"),))
    exc = raises(errors.TransientError, p.publish, image, "k3")
    assert not isinstance(exc, errors.AmbiguousError)  # nothing was posted yet
    too_long_alt = Post(text="y", media=(Media(str(png(tmp_path / "c.png")), alt="a" * 1501),))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.platforms.mastodon"):
        p.publish(too_long_alt, "k4")
    assert "Description is too long" in caplog.text
    assert srv.statuses[-1]["media_ids"] == []


def test_find_existing_matches_the_text_as_posted(srv):
    p = publisher(srv)
    since = datetime.now(UTC) - timedelta(seconds=5)
    text = ("New episode: “Tides & <Time>”\nwith @guest@example.social #podcast\n\n"
            "https://example.com/episodes/a-very-long-slug-that-gets-shortened?x=1&y=2")
    published = p.publish(Post(text=text), "k1")
    p.publish(Post(text="something else"), "k2")
    assert p.find_existing(Post(text=text), since) == published
    assert p.find_existing(Post(text="  " + text.replace("\n", " ") + " "), since) == published
    assert p.find_existing(Post(text="never posted"), since) is None
    assert p.find_existing(Post(text=text), datetime.now(UTC) + timedelta(seconds=5)) is None


def test_find_existing_pages_back_and_stops_at_since(srv):
    p = publisher(srv)
    since = datetime.now(UTC) - timedelta(seconds=5)
    target = p.publish(Post(text="the old one"), "k-old")
    for i in range(45):
        p.publish(Post(text=f"filler {i}"), f"k{i}")
    assert p.find_existing(Post(text="the old one"), since) == target
    pages = [r for r in srv.requests if r["path"].endswith("/statuses") and r["method"] == "GET"]
    assert len(pages) == 2


def test_a_fresh_database_never_reuses_an_earlier_posts_idempotency_key(srv, tmp_path):
    """Two databases (a reset, a second deployment) enqueue the same episode for the same
    account: each delivery's key is its own, so Mastodon (which answers a repeated
    Idempotency-Key with the earlier status for an hour) makes both posts."""
    from datetime import UTC, datetime

    from bot.store import Store
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    keys = []
    for n in (1, 2):
        store = Store(f"sqlite:///{tmp_path / f'c{n}.db'}")
        store.migrate()
        with store.tx() as c:
            store.enqueue(c, kind="announcement", dedupe_key="episode:1", episode_id=None,
                          targets=[("masto", "mastodon", "pending")], now=now)
        [d] = store.deliveries_where()
        keys.append(d.idempotency_key)
        publisher(srv).publish(Post(text=f"Episode one, database {n}"), d.idempotency_key)
        store.close()
    assert keys[0] != keys[1]
    assert [s["text"] for s in srv.statuses] == ["Episode one, database 1",
                                                 "Episode one, database 2"]
