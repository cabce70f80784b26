"""The WebSub test hub itself (tests/fakes/websub_hub.py) behaves as the W3C spec says, checked
against a minimal subscriber on loopback: 202 then an asynchronous intent verification that
counts only when the challenge is echoed, leases within the hub's bounds, denial, refusal,
unsubscription, and signed content distribution."""

from __future__ import annotations

import hmac
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.fakes.websub_hub import WebSubHub

TOPIC = "http://127.0.0.1:9/feed.xml"


class Subscriber:
    """Echoes challenges when `agree`, records everything."""

    def __init__(self):
        self.agree = True
        self.gets: list[dict] = []
        self.posts: list[tuple[dict, bytes]] = []
        me = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                me.gets.append(q)
                body = q.get("hub.challenge", "").encode() if me.agree else b""
                self.send_response(200 if me.agree else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                me.posts.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cb/tok"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def pair():
    sub = Subscriber()
    with WebSubHub(default_lease=600, max_lease=3600) as hub:
        yield hub, sub
    sub.close()


def ask(hub, **form) -> int:
    data = urlencode({f"hub.{k}": v for k, v in form.items()}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(hub.url, data=data), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_subscribe_verify_distribute_signed_and_unsubscribe(pair):
    hub, sub = pair
    assert ask(hub, mode="subscribe", callback=sub.url, topic=TOPIC, secret="s3cret",
               lease_seconds="99999") == 202
    got = hub.wait_verified(TOPIC)
    assert got.lease_seconds == 3600                  # capped at the hub's max
    q = sub.gets[0]
    assert q["hub.mode"] == "subscribe" and q["hub.topic"] == TOPIC
    assert q["hub.lease_seconds"] == "3600" and len(q["hub.challenge"]) >= 20
    assert hub.publish(TOPIC, b"<rss/>") == [204]
    headers, body = sub.posts[0]
    assert body == b"<rss/>"
    expected = hmac.new(b"s3cret", b"<rss/>", "sha256").hexdigest()
    assert headers["X-Hub-Signature"] == f"sha256={expected}"
    assert 'rel="self"' in headers["Link"] and hub.url in headers["Link"]
    assert hub.publish(TOPIC, b"x", signature="sha1") == [204]
    assert sub.posts[1][0]["X-Hub-Signature"].startswith("sha1=")
    hub.publish(TOPIC, b"x", signature="none")
    assert "X-Hub-Signature" not in sub.posts[2][0]
    assert hub.replay() == 204 and sub.posts[3][1] == b"x"
    assert ask(hub, mode="unsubscribe", callback=sub.url, topic=TOPIC) == 202
    hub.settle()
    assert hub.active(TOPIC) == [] and sub.gets[-1]["hub.mode"] == "unsubscribe"
    assert hub.publish(TOPIC, b"y") == []


def test_no_echo_no_subscription_and_denial_and_refusal(pair):
    hub, sub = pair
    sub.agree = False
    assert ask(hub, mode="subscribe", callback=sub.url, topic=TOPIC) == 202
    hub.settle()
    assert hub.active() == [] and hub.verifications[0][2] == 404
    sub.agree = True
    hub.deny(TOPIC, "no such topic")
    ask(hub, mode="subscribe", callback=sub.url, topic=TOPIC)
    hub.settle()
    assert sub.gets[-1] == {"hub.mode": "denied", "hub.topic": TOPIC,
                            "hub.reason": "no such topic"} and hub.active() == []
    hub.refuse(503)
    assert ask(hub, mode="subscribe", callback=sub.url, topic="http://127.0.0.1:9/b") == 503
    assert ask(hub, mode="subscribe", callback="ftp://x", topic=TOPIC) == 400
    assert ask(hub, mode="subscribe", callback=sub.url, topic=TOPIC, secret="x" * 200) == 400
    assert ask(hub, mode="publish", url="nope") == 400


def test_a_publisher_pings_the_hub_over_http(pair):
    """hub.mode=publish&hub.url=TOPIC (what the benchmark sends): the hub reads the topic and
    distributes it; an unreadable topic is recorded."""
    from tests.fakes.feed_server import FeedServer
    hub, sub = pair
    with FeedServer() as feed:
        feed.set_feed("/f.xml", b"<rss>new</rss>")
        topic = feed.url + "/f.xml"
        ask(hub, mode="subscribe", callback=sub.url, topic=topic, secret="k")
        hub.wait_verified(topic)
        assert ask(hub, mode="publish", url=topic) == 204
        hub.settle()
        assert sub.posts[-1][1] == b"<rss>new</rss>"
        assert sub.posts[-1][0]["X-Hub-Signature"] == WebSubHub.sign("k", b"<rss>new</rss>")
        assert ask(hub, mode="publish", url=TOPIC) == 204       # nothing listens on port 9
        hub.settle()
        assert hub.errors and TOPIC in hub.errors[0]
