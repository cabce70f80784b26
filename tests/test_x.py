"""XPublisher against the local X API server, over real loopback HTTP (no mocks).

The fake server's answers are checked against real recorded X responses (tweepy's cassettes) and
X's OpenAPI document, so the publisher is tested against the contract, not against itself.
"""

from __future__ import annotations

import gzip
import json
import logging
import struct
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from oauthlib.oauth1 import Client as OAuthClient
from requests_oauthlib import OAuth1

from bot.errors import (
    AmbiguousError,
    AuthError,
    DuplicateError,
    PublishError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from bot.models import Media, Post, Published, Rules
from bot.platforms.base import Publisher
from bot.platforms.x import XPublisher, mount_rebase
from tests.conftest import ROOT
from tests.fakes.x_server import DUPLICATE_DETAIL, XServer

CREDS = {"consumer_key": "ck-7Hq2", "consumer_secret": "cs-SECRET-9f8e7d",
         "access_token": "1072250532645998596-at-TOKEN-4c4c",
         "access_token_secret": "ats-SECRET-1a2b3c"}
SECRETS = list(CREDS.values())
API, UPLOAD = "https://api.twitter.com", "https://upload.twitter.com"


@pytest.fixture
def srv():
    with XServer(**CREDS, username="TBSocialist") as server:
        yield server


def make_publisher(srv: XServer, timeout: float = 5.0, **override: str) -> XPublisher:
    return XPublisher("tbs", **{**CREDS, **override}, api_base=srv.url,
                      timeout=timeout)


@pytest.fixture
def pub(srv):
    return make_publisher(srv)


def signed_session(srv: XServer, consumer_secret: str | None = None) -> requests.Session:
    """A plain requests session signing like tweepy does, routed to the fake server."""
    session = requests.Session()
    session.auth = OAuth1(CREDS["consumer_key"], consumer_secret or CREDS["consumer_secret"],
                          CREDS["access_token"], CREDS["access_token_secret"])
    mount_rebase(session, {API: srv.url, UPLOAD: srv.url}, timeout=5)
    return session


def since_now() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


# -- the fake answers like the real recordings and the spec -------------------------------------


def cassette(shared: Path, name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((shared / "recorded" / "tweepy" / name).read_text())
    return data["interactions"]


def recorded_json(interaction: dict[str, Any]) -> Any:
    body = interaction["response"]["body"]["string"]
    if isinstance(body, bytes):          # !!binary: gzip, as the response said
        body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return json.loads(body)


def shape(value: Any) -> Any:
    """Keys all the way down (list items merged), types at the leaves."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(shape(item) if isinstance(item, dict) else {"": type(item).__name__})
        return [merged]
    return type(value).__name__


def replay(session: requests.Session, interaction: dict[str, Any]) -> requests.Response:
    request = interaction["request"]
    headers = {k: v[0] for k, v in request["headers"].items() if k.lower() == "content-type"}
    body = request["body"]
    return session.request(request["method"], request["uri"], headers=headers,
                           data=body.encode() if isinstance(body, str) else body)


@pytest.mark.parametrize("name", [
    "test_client_create_and_delete_tweet.yaml",
    "test_client_create_tweet_with_community.yaml",
    "test_client_get_me.yaml",
    "testmediauploadpng.yaml",
])
def test_fake_answers_recorded_requests_with_recorded_shapes(shared, srv, name):
    session = signed_session(srv)
    for interaction in cassette(shared, name):
        answer = replay(session, interaction)
        recorded = recorded_json(interaction)
        assert answer.status_code == interaction["response"]["status"]["code"]
        assert shape(answer.json()) == shape(recorded), interaction["request"]["uri"]
        for header in ("x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"):
            assert answer.headers[header].isdigit()
        if answer.status_code == 201:
            assert answer.headers["location"].startswith(f"{API}/2/tweets/")


def test_media_upload_reports_the_recorded_image(shared, srv):
    (interaction,) = cassette(shared, "testmediauploadpng.yaml")
    answer = replay(signed_session(srv), interaction).json()
    assert answer["image"] == recorded_json(interaction)["image"]     # 1252 x 626 PNG
    assert answer["size"] == srv.media[answer["media_id_string"]]["size"]


def test_problem_bodies_follow_the_spec(shared, srv, pub):
    spec = json.loads((shared / "specs" / "x-api-v2-openapi.json").read_text())
    invalid = spec["components"]["schemas"]["InvalidRequestProblem"]
    session = signed_session(srv)

    too_long = session.post(f"{API}/2/tweets", json={"text": "x" * 281})
    assert too_long.status_code == 400
    assert set(invalid["required"]) <= set(too_long.json())
    assert too_long.json()["type"] in invalid["properties"]["type"]["enum"]

    session.post(f"{API}/2/tweets", json={"text": "once"})
    duplicate = session.post(f"{API}/2/tweets", json={"text": "once"})
    assert duplicate.status_code == 403
    assert duplicate.json() == {"title": "Forbidden", "detail": DUPLICATE_DETAIL,
                                "type": "about:blank", "status": 403}

    srv.rate_limit_next(reset_in_seconds=90)
    limited = session.post(f"{API}/2/tweets", json={"text": "later"})
    assert limited.status_code == 429
    assert set(limited.json()) == {"title", "detail", "type", "status"}
    assert limited.headers["x-rate-limit-remaining"] == "0"
    assert abs(int(limited.headers["x-rate-limit-reset"]) - (time.time() + 90)) < 5

    wrong = signed_session(srv, consumer_secret="nope").get(f"{API}/2/users/me")
    assert wrong.status_code == 401
    assert wrong.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                            "detail": "Unauthorized"}
    assert wrong.headers["content-type"].startswith("application/problem+json")


def test_signature_covers_the_original_api_twitter_com_url(srv):
    """The fake verifies what X would: a signature over https://api.twitter.com/..."""
    session = requests.Session()      # signed for the loopback URL itself: refused
    session.auth = OAuth1(CREDS["consumer_key"], CREDS["consumer_secret"],
                          CREDS["access_token"], CREDS["access_token_secret"])
    assert session.get(f"{srv.url}/2/users/me", timeout=5).status_code == 401
    assert signed_session(srv).get(f"{API}/2/users/me").status_code == 200


def test_a_replayed_nonce_is_refused(srv):
    client = OAuthClient(CREDS["consumer_key"], CREDS["consumer_secret"],
                         CREDS["access_token"], CREDS["access_token_secret"],
                         nonce="fixednonce", timestamp=str(int(time.time())))
    _, headers, _ = client.sign(f"{API}/2/users/me", "GET")
    first = requests.get(f"{srv.url}/2/users/me", headers=headers, timeout=5)
    again = requests.get(f"{srv.url}/2/users/me", headers=headers, timeout=5)
    assert (first.status_code, again.status_code) == (200, 401)


def test_timeline_replaces_links_with_tco_and_gives_entities(srv):
    srv.add_tweet("New: https://example.com/episodes/42?utm=x & more at podcast.example.org")
    answer = signed_session(srv).get(f"{API}/2/users/{srv.user_id}/tweets", params={
        "max_results": 5, "tweet.fields": "created_at,entities"}).json()
    (tweet,) = answer["data"]
    urls = tweet["entities"]["urls"]
    assert [u["expanded_url"] for u in urls] == ["https://example.com/episodes/42?utm=x",
                                                 "http://podcast.example.org"]
    for url in urls:
        assert url["url"].startswith("https://t.co/") and len(url["url"]) == 23
        assert tweet["text"][url["start"]:url["end"]] == url["url"]
    assert "example.com" not in tweet["text"] and "&amp;" in tweet["text"]
    assert tweet["created_at"].endswith("Z")
    assert answer["meta"]["result_count"] == 1


# -- publish ------------------------------------------------------------------------------------


def test_publisher_satisfies_the_protocol_and_rules(pub):
    assert isinstance(pub, Publisher)
    assert pub.platform == "x" and pub.account == "tbs"
    rules = pub.rules()
    assert isinstance(rules, Rules)
    assert (rules.platform, rules.limit, rules.counter, rules.url_weight) == ("x", 280, "x", 23)


def test_publish_signs_with_oauth1_and_returns_the_status_url(srv, pub):
    published = pub.publish(Post("New episode: Dogs https://example.com/ep/1"), "key-1")
    (tweet,) = srv.tweets
    assert published == Published(tweet["id"],
                                  f"https://x.com/TBSocialist/status/{tweet['id']}")
    assert tweet["text"] == "New episode: Dogs https://example.com/ep/1"
    create = next(r for r in srv.requests if r["method"] == "POST")
    assert create["json"] == {"text": "New episode: Dogs https://example.com/ep/1"}
    assert 'oauth_signature_method="HMAC-SHA1"' in create["headers"]["authorization"]
    assert create["status"] == 201


@pytest.mark.parametrize("wrong", ["consumer_secret", "access_token_secret", "access_token"])
def test_wrong_credentials_raise_auth_error_and_post_nothing(srv, wrong):
    pub = make_publisher(srv, **{wrong: "not-it"})
    with pytest.raises(AuthError) as caught:
        pub.publish(Post("hello"), "key-1")
    assert caught.value.status == 401
    assert srv.tweets == []


def test_weighted_text_over_280_is_rejected_by_x(srv, pub):
    with pytest.raises(RejectedError) as caught:      # 141 CJK characters weigh 282
        pub.publish(Post("日" * 141), "key-1")
    assert caught.value.status == 400 and not isinstance(caught.value, DuplicateError)
    assert "too long" in str(caught.value)
    assert srv.tweets == []
    long_link = "https://example.com/" + "a" * 200   # counts 23, however long it is
    pub.publish(Post("b" * 256 + " " + long_link), "key-2")
    assert len(srv.tweets) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_on_create_are_ambiguous(srv, pub, status):
    srv.fail_next(status)
    with pytest.raises(AmbiguousError) as caught:
        pub.publish(Post("hello"), "key-1")
    assert caught.value.status == status


def test_server_error_on_a_read_is_only_transient(srv, pub):
    srv.fail_next(503, path="/2/users/me", method="GET")
    with pytest.raises(TransientError) as caught:
        pub.verify()
    assert not isinstance(caught.value, AmbiguousError)


def test_timeout_after_create_is_ambiguous_and_find_existing_finds_it(srv):
    pub = make_publisher(srv, timeout=0.5)
    pub.verify()                                     # warm: only the create may time out
    post = Post("Episode 12: Bread & Roses https://example.com/episodes/12 #podcast")
    since = since_now()
    srv.timeout_after_create_next(delay=2.0)
    started = time.monotonic()
    with pytest.raises(AmbiguousError):
        pub.publish(post, "key-12")
    assert time.monotonic() - started < 1.5
    (tweet,) = srv.tweets                            # X did create it
    shown, _ = srv.render(tweet)
    assert "https://t.co/" in shown and "example.com" not in shown
    assert pub.find_existing(post, since) == Published(
        tweet["id"], f"https://x.com/TBSocialist/status/{tweet['id']}")


def test_find_existing_ignores_other_texts_links_and_older_tweets(srv, pub):
    old = srv.add_tweet("Episode 1 https://example.com/1",
                        created_at=datetime.now(UTC) - timedelta(hours=2))
    srv.add_tweet("Episode 2 https://example.com/2")
    since = datetime.now(UTC) - timedelta(hours=1)
    assert pub.find_existing(Post(old["text"]), since) is None             # before `since`
    assert pub.find_existing(Post("Episode 2 https://example.com/3"), since) is None
    assert pub.find_existing(Post("Episode 3 https://example.com/2"), since) is None
    found = pub.find_existing(Post("Episode 2 https://example.com/2/"), since)
    assert found is not None and found.remote_id == srv.tweets[-1]["id"]
    with pytest.raises(ValueError):
        pub.find_existing(Post("x"), datetime(2026, 1, 1))


def test_find_existing_never_matches_a_tweet_older_than_since(srv, pub):
    """An older tweet with the same text is another post's (X refuses ours as a duplicate of
    it): not even one in the same second as `since` (X's start_time has whole seconds)."""
    since = (datetime.now(UTC) - timedelta(seconds=5)).replace(microsecond=500_000)
    srv.add_tweet("Same words", created_at=since - timedelta(seconds=30))
    srv.add_tweet("Same words", created_at=since - timedelta(milliseconds=200))
    assert pub.find_existing(Post("Same words"), since) is None
    query = srv.requests[-1]["query"]
    assert query["start_time"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    ours = srv.add_tweet("Same words", created_at=since + timedelta(milliseconds=1))
    assert pub.find_existing(Post("Same words"), since).remote_id == ours["id"]


def test_find_existing_matches_media_tweets_and_escaped_text(srv, pub, tmp_path):
    image = write_png(tmp_path / "art.png")
    post = Post("Q&A <live> https://example.com/qa", media=(Media(str(image), alt="Cover"),))
    since = since_now()
    published = pub.publish(post, "key-1")
    shown, urls = srv.render(srv.tweets[0])
    assert "&amp;" in shown and any("media_key" in u for u in urls)
    assert pub.find_existing(post, since) == published


def test_find_existing_reads_more_than_one_page(srv, pub):
    since = since_now()
    first = srv.add_tweet("The one we want https://example.com/want")
    for n in range(130):
        srv.add_tweet(f"Filler {n} https://example.com/{n}")
    assert pub.find_existing(Post(first["text"]), since).remote_id == first["id"]
    pages = [r for r in srv.requests if r["path"].endswith("/tweets") and r["method"] == "GET"]
    assert len(pages) == 2 and pages[1]["query"]["pagination_token"]
    assert pages[0]["query"]["tweet.fields"] == "created_at,entities"
    assert pages[0]["query"]["max_results"] == "100"


def test_duplicate_text_raises_duplicate_error(srv, pub):
    pub.publish(Post("Same words"), "key-1")
    with pytest.raises(DuplicateError) as caught:
        pub.publish(Post("Same words"), "key-2")
    assert caught.value.status == 403 and "duplicate" in str(caught.value)
    assert len(srv.tweets) == 1


def test_other_forbidden_is_rejected_not_duplicate(srv, pub):
    srv.fail_next(403, body={"title": "Forbidden", "type": "about:blank", "status": 403,
                             "detail": "You are not permitted to perform this action."})
    with pytest.raises(RejectedError) as caught:
        pub.publish(Post("hello"), "key-1")
    assert type(caught.value) is RejectedError
    assert "not permitted" in str(caught.value)


def test_forbidden_for_app_permissions_is_an_auth_problem(srv, pub):
    srv.fail_next(403, body={
        "title": "Forbidden", "type": "about:blank", "status": 403,
        "detail": "Your client app is not configured with the appropriate oauth1 app "
                  "permissions for this endpoint."})
    with pytest.raises(AuthError):
        pub.publish(Post("hello"), "key-1")


def test_rate_limit_gives_retry_at_from_the_epoch_header(srv, pub):
    pub.verify()
    srv.rate_limit_next(reset_in_seconds=60)
    with pytest.raises(RateLimitedError) as caught:
        pub.publish(Post("hello"), "key-1")
    reset = int(srv.requests[-1]["response_headers"]["x-rate-limit-reset"])
    assert caught.value.retry_at == datetime.fromtimestamp(reset, UTC)
    assert caught.value.retry_at.tzinfo is not None
    assert timedelta(seconds=55) < caught.value.retry_at - datetime.now(UTC) \
        < timedelta(seconds=65)
    assert caught.value.status == 429


def test_revoked_token_raises_auth_error(srv, pub):
    assert pub.verify() == "@TBSocialist"
    srv.revoke_token()
    with pytest.raises(AuthError):
        pub.publish(Post("hello"), "key-1")
    with pytest.raises(AuthError):
        pub.verify()
    srv.restore_token()
    assert pub.verify() == "@TBSocialist"


def test_connection_refused_is_transient_not_ambiguous():
    with XServer(**CREDS) as gone:
        pub = make_publisher(gone)
    with pytest.raises(TransientError) as caught:
        pub.publish(Post("hello"), "key-1")
    assert not isinstance(caught.value, AmbiguousError)


def test_fail_next_counts_and_matches_path_and_method(srv, pub):
    srv.fail_next(500, count=2)
    for _ in range(2):
        with pytest.raises(AmbiguousError):
            pub.publish(Post("hello"), "key-1")
    assert pub.publish(Post("hello"), "key-1").remote_id == srv.tweets[0]["id"]


# -- the reply that carries the link ------------------------------------------------------------


def test_reply_is_posted_in_reply_to_the_main_tweet(srv, pub):
    published = pub.publish(Post("Episode 5 is out", reply_text="https://example.com/5"), "k")
    main, reply = srv.tweets
    assert published.remote_id == main["id"]
    assert reply["in_reply_to"] == main["id"] and reply["text"] == "https://example.com/5"
    assert pub.last_reply_error is None


@pytest.mark.parametrize("status,error", [(500, AmbiguousError), (400, RejectedError)])
def test_a_failed_reply_leaves_the_main_post(srv, pub, caplog, status, error):
    srv.fail_next(status, after=1)                 # the main tweet goes through, the reply not
    with caplog.at_level(logging.WARNING, logger="bot.platforms.x"):
        published = pub.publish(Post("Episode 6", reply_text="https://example.com/6"), "k6")
    (main,) = srv.tweets
    assert published.remote_id == main["id"]
    assert isinstance(pub.last_reply_error, error)
    assert any(main["id"] in r.getMessage() and "reply" in r.getMessage()
               for r in caplog.records)


# -- verify, media, secrets, import cost --------------------------------------------------------


def test_verify_returns_the_handle():
    with XServer(**CREDS, username="SomeOtherShow") as srv:
        assert make_publisher(srv).verify() == "@SomeOtherShow"


def write_png(path: Path, width: int = 3, height: int = 2) -> Path:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x00" * width * 3 for _ in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_media_is_uploaded_with_alt_text(srv, pub, tmp_path, caplog):
    image = write_png(tmp_path / "cover.png")
    post = Post("With art", media=(Media(str(image), alt="Episode cover: a red fox"),
                                   Media("https://cdn.example.com/art.jpg", alt="remote")))
    with caplog.at_level(logging.WARNING, logger="bot.platforms.x"):
        pub.publish(post, "key-1")
    (tweet,) = srv.tweets
    (media_id,) = tweet["media_ids"]
    assert srv.media[media_id]["alt_text"] == "Episode cover: a red fox"
    assert srv.media[media_id]["size"] == image.stat().st_size
    assert any("only local files" in r.getMessage() for r in caplog.records)
    assert srv.media[media_id]["media_category"] == "tweet_image"
    uploads = [r for r in srv.requests if r["path"] == "/2/media/upload"]
    assert [r["headers"]["content-type"].split(";")[0] for r in uploads] \
        == ["multipart/form-data"]          # the raw bytes, not base64 in JSON
    paths = [r["path"] for r in srv.requests]
    assert "/2/media/metadata" in paths
    assert not [p for p in paths if p.startswith("/1.1/")]   # X retired v1.1 media upload


@pytest.mark.parametrize("status, error", [(500, TransientError), (503, TransientError),
                                           (401, AuthError)])
def test_image_upload_failure_that_may_pass_stops_the_post(srv, pub, tmp_path, status, error):
    """A 5xx (or a revoked token) on the upload is not a refusal of the image: the delivery
    fails and is retried later with its image, rather than going out without it now."""
    image = write_png(tmp_path / "cover.png")
    srv.fail_next(status, path="/2/media/upload")
    with pytest.raises(error):
        pub.publish(Post("with art", media=(Media(str(image), alt="alt"),)), "key-1")
    assert srv.tweets == []
    pub.publish(Post("with art", media=(Media(str(image), alt="alt"),)), "key-1")
    (tweet,) = srv.tweets
    assert srv.media[tweet["media_ids"][0]]["alt_text"] == "alt"


def test_image_upload_rate_limit_carries_x_reset_time(srv, pub, tmp_path):
    image = write_png(tmp_path / "cover.png")
    srv.rate_limit_next(reset_in_seconds=90, path="/2/media/upload")
    with pytest.raises(RateLimitedError) as exc:
        pub.publish(Post("with art", media=(Media(str(image), alt="alt"),)), "key-1")
    wait = (exc.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 60 < wait <= 91
    assert srv.tweets == []


def test_secrets_never_appear_in_errors_or_logs(srv, caplog):
    pub = make_publisher(srv, timeout=0.5)
    caught: list[PublishError] = []
    echo = f"bad token {CREDS['access_token_secret']} for {CREDS['consumer_secret']}"
    with caplog.at_level(logging.DEBUG, logger="bot.platforms.x"):
        for arrange in (lambda: srv.fail_next(400, body={"title": "Invalid Request",
                                                         "detail": echo, "type": "about:blank",
                                                         "status": 400}),
                        lambda: srv.fail_next(500), lambda: srv.rate_limit_next(),
                        lambda: srv.timeout_after_create_next(delay=2.0),
                        lambda: srv.revoke_token()):
            arrange()
            with pytest.raises(PublishError) as exc:
                pub.publish(Post(f"post {len(caught)}"), "key")
            caught.append(exc.value)
    assert [type(e) for e in caught] == [RejectedError, AmbiguousError, RateLimitedError,
                                         AmbiguousError, AuthError]
    texts = [str(e) for e in caught] + [repr(pub)] + [r.getMessage() for r in caplog.records]
    for secret in SECRETS[1:]:
        assert not any(secret in text for text in texts), secret
    assert "***" in str(caught[0])


def test_importing_the_module_does_not_import_tweepy_or_requests():
    code = ("import sys, bot.platforms.x; "
            "print(sorted(m for m in ('tweepy', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_refused_image_or_alt_text_does_not_stop_the_post(srv, pub, tmp_path, caplog):
    image = write_png(tmp_path / "cover.png")
    srv.fail_next(400, path="/2/media/upload")
    with caplog.at_level(logging.WARNING, logger="bot.platforms.x"):
        pub.publish(Post("no art", media=(Media(str(image), alt="x"),)), "key-1")
        srv.fail_next(400, path="/2/media/metadata")
        pub.publish(Post("art, no alt", media=(Media(str(image), alt="y"),)), "key-2")
        pub.publish(Post("long alt", media=(Media(str(image), alt="z" * 1200),)), "key-3")
    no_art, no_alt, long_alt = srv.tweets
    assert no_art["media_ids"] == []
    assert srv.media[no_alt["media_ids"][0]]["alt_text"] is None
    assert len(srv.media[long_alt["media_ids"][0]]["alt_text"]) == 1000
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "posting without it" in messages and "image without it" in messages
    assert "cut to 1000" in messages


def test_v2_media_upload_and_metadata(srv):
    session = signed_session(srv)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + struct.pack(">II", 40, 30) + b"\0" * 9
    uploaded = session.post(f"{API}/2/media/upload", data={"media_category": "tweet_image"},
                            files={"media": ("a.png", png)})
    assert uploaded.status_code == 200
    data = uploaded.json()["data"]
    assert data["media_key"] == f"3_{data['id']}"
    assert data["image"] == {"image_type": "image/png", "w": 40, "h": 30}
    meta = session.post(f"{API}/2/media/metadata",
                        json={"id": data["id"], "metadata": {"alt_text": {"text": "alt"}}})
    assert meta.json()["data"] == {"id": data["id"],
                                   "associated_metadata": {"alt_text": {"text": "alt"}}}


def test_timeline_delay_hides_fresh_tweets_like_x_does():
    with XServer(**CREDS, timeline_delay=60) as srv:
        pub = make_publisher(srv)
        since = since_now()
        pub.publish(Post("just now"), "key-1")
        assert pub.find_existing(Post("just now"), since) is None
