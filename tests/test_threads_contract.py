"""The Threads contract server answers in the shapes of Meta's documented examples
(tests/data/threads/, each naming the page it comes from), and enforces what the docs say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.threads_server import ThreadsServer, links_in, threads_length

DATA = Path(__file__).parent / "data" / "threads"
V = "/v1.0"


def documented(name: str) -> Any:
    doc = json.loads((DATA / name).read_text())
    assert doc["source"].startswith("https://developers.facebook.com/docs/")
    return doc["response"]


def shape(value: Any) -> Any:
    """Keys and value types, recursively (lists: the shape of their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def srv(clock):
    with ThreadsServer(access_token="tok", clock=clock,
                       token_issued_at=clock.now - timedelta(days=2)) as s:
        yield s


def call(srv, method: str, path: str, **params) -> requests.Response:
    params.setdefault("access_token", "tok")
    if method == "POST":
        return requests.post(srv.url + path, data=params, timeout=5)
    return requests.request(method, srv.url + path, params=params, timeout=5)


def test_posting_answers_like_the_documented_examples(srv):
    made = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="Today Is Monday")
    assert made.status_code == 200
    assert shape(made.json()) == shape(documented("create_container.json"))
    status = call(srv, "GET", f"{V}/{made.json()['id']}", fields="status,error_message")
    assert shape(status.json()) == shape(documented("container_status_finished.json"))
    published = call(srv, "POST", f"{V}/me/threads_publish", creation_id=made.json()["id"])
    assert shape(published.json()) == shape(documented("publish_container.json"))
    listed = call(srv, "GET", f"{V}/me/threads", fields="id,media_product_type,media_type,"
                  "permalink,owner,username,text,timestamp,shortcode,is_quote_post", limit="1")
    doc = documented("user_threads.json")
    assert shape(listed.json()["data"]) == shape(doc["data"])
    assert listed.json()["data"][0]["timestamp"].endswith("+0000")
    assert listed.json()["data"][0]["media_type"] == "TEXT_POST"
    gone = call(srv, "DELETE", f"{V}/{published.json()['id']}")
    assert shape(gone.json()) == shape(documented("delete.json"))


def test_profile_limit_refresh_and_usage_header_match_the_docs(srv, clock):
    me = call(srv, "GET", f"{V}/me", fields="id,username,name")
    doc = documented("me.json")
    assert set(me.json()) <= set(doc) and shape(me.json()) == {k: shape(doc)[k]
                                                                  for k in me.json()}
    limit = call(srv, "GET", f"{V}/me/threads_publishing_limit", fields="quota_usage,config")
    assert shape(limit.json()) == shape(documented("publishing_limit.json"))
    assert shape(json.loads(limit.headers["x-app-usage"])) == \
        shape(documented("x_app_usage.json"))
    fresh = call(srv, "GET", "/refresh_access_token", grant_type="th_refresh_token")
    assert shape(fresh.json()) == shape(documented("refresh_token.json"))
    assert fresh.json()["expires_in"] == 60 * 86400


def test_errors_have_the_graph_api_shape(srv):
    bad = call(srv, "GET", f"{V}/me", access_token="nope")
    assert bad.status_code == 400
    err, doc = bad.json()["error"], documented("error.json")["error"]
    assert set(err) <= set(doc) and err["code"] == 190
    assert {k: shape(doc)[k] for k in err} == shape(err)


def test_a_token_expires_and_refreshes_only_when_a_day_old(srv, clock):
    srv.issue_token("young", issued_at=clock.now - timedelta(hours=2))
    young = call(srv, "GET", "/refresh_access_token", grant_type="th_refresh_token",
                 access_token="young")
    assert young.status_code == 400 and "24 hours" in young.json()["error"]["message"]
    clock.now += timedelta(days=61)
    old = call(srv, "GET", f"{V}/me")
    assert old.json()["error"]["code"] == 190 and old.json()["error"]["error_subcode"] == 463


def test_limits_are_enforced_at_container_creation(srv):
    long = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="a" * 501)
    assert long.status_code == 400
    assert call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="a" * 500).ok
    emoji = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="a" * 497 + "🎙")
    assert emoji.status_code == 400          # the emoji counts its 4 UTF-8 bytes
    six = " ".join(f"https://e{i}.example.com/" for i in range(6))
    many = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text=six)
    assert many.json()["error"]["message"] == "THREADS_API__LINK_LIMIT_EXCEEDED"
    five = " ".join(f"https://e{i}.example.com/" for i in range(5))
    assert call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text=five,
                link_attachment="https://e0.example.com").ok      # the same link counts once
    assert not call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text=five,
                    link_attachment="https://other.example.com").ok
    image_link = call(srv, "POST", f"{V}/me/threads", media_type="IMAGE", text="x",
                      image_url="https://e.example.com/a.png", link_attachment="https://e.x.com")
    assert image_link.status_code == 400


def test_containers_expire_and_publish_once(srv, clock):
    cid = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="hi").json()["id"]
    assert call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid).ok
    again = call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid)
    assert again.status_code == 400 and len(srv.posts) == 1
    late = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="late").json()["id"]
    clock.now += timedelta(hours=24)
    status = call(srv, "GET", f"{V}/{late}", fields="status,error_message").json()
    assert status["status"] == "EXPIRED"
    assert not call(srv, "POST", f"{V}/me/threads_publish", creation_id=late).ok


def test_the_250_post_quota_is_enforced_on_publish(srv, clock):
    for i in range(250):
        cid = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text=f"p{i}").json()["id"]
        assert call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid).ok
    cid = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="one more").json()["id"]
    refused = call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid)
    assert refused.json()["error"]["code"] == 4
    clock.now += timedelta(hours=24, seconds=1)    # the first 250 leave the moving window
    cid = call(srv, "POST", f"{V}/me/threads", media_type="TEXT", text="next").json()["id"]
    assert call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid).ok


def test_image_containers_process_before_they_can_be_published(srv):
    srv.processing_polls = 1
    cid = call(srv, "POST", f"{V}/me/threads", media_type="IMAGE", text="art",
               image_url="https://e.example.com/a.png", alt_text="A cover").json()["id"]
    assert not call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid).ok
    assert call(srv, "GET", f"{V}/{cid}", fields="status").json()["status"] == "IN_PROGRESS"
    assert call(srv, "GET", f"{V}/{cid}", fields="status").json()["status"] == "FINISHED"
    assert call(srv, "POST", f"{V}/me/threads_publish", creation_id=cid).ok
    assert srv.posts[0]["alt_text"] == "A cover" and srv.posts[0]["media_type"] == "IMAGE"


def test_counting_helpers():
    assert threads_length("héllo") == 5 and threads_length("🎙") == 4
    assert links_in("see https://a.example.com/x and www.b.com", "https://a.example.com/x") \
        == {"a.example.com/x", "b.com"}
