"""WebSub end to end (issue 17): a feed naming a hub (tests/fakes/websub_hub.py, a W3C WebSub
hub on loopback), the control room serving the callback for real (uvicorn, tests/webapp.py),
a fleet polling the feed (loopback feed server) and announcing on the local Mastodon server;
an injected clock; SQLite and PostgreSQL.

Subscribe -> the hub's intent verification -> signed notifications (sha256, sha1) make the feed
polled at once and its new episode posted; bad, missing or unknown signatures are dropped and
logged (never the secret); a replay costs at most one poll; a notification for an unchanged
feed costs one 304; the lease is renewed; a removed show is unsubscribed; a hub that refuses
or is down leaves polling as it was, with the reason in `crier status`; the callback answers
only what crier asked for; it works under a root path behind a proxy."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot import push, websub
from bot.deployment import load_deployment
from bot.fetch import new_session
from bot.fleet import Fleet
from bot.shows import remove_show
from bot.store import Store, websub_subscriptions
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.websub_hub import WebSubHub
from tests.feedgen import item, rss
from tests.test_web_proxy import nginx  # noqa: F401  (the fixture)
from tests.webapp import WebApp

TOKEN = "tok-websub"


def with_hub(body: bytes, hub: str | None, self_url: str | None) -> bytes:
    """The feed with <atom:link rel="hub"> and rel="self" in its channel."""
    links = b""
    if hub:
        links += f'<atom:link href="{hub}" rel="hub"/>'.encode()
    if self_url:
        links += f"<atom:link rel='self' type='application/rss+xml' href='{self_url}'/>".encode()
    body = body.replace(b"<rss ", b'<rss xmlns:atom="http://www.w3.org/2005/Atom" ', 1)
    return body.replace(b"<channel>", b"<channel>" + links, 1)


class Net:
    def __init__(self, stack: ExitStack, tmp, db_url: str, monkeypatch, *, algorithm="sha256",
                 root_path: str = "", proxy=None):
        self.feed = stack.enter_context(FeedServer())
        self.masto = stack.enter_context(MastodonServer(token=TOKEN))
        self.hub = stack.enter_context(WebSubHub(algorithm=algorithm, max_lease=86400))
        self.t = [datetime.now(UTC).replace(microsecond=0)]
        self.items = [item(k, published=self.t[0] - timedelta(days=7 * (10 - k)))
                      for k in (1, 2)]
        self.url = f"http://127.0.0.1:{self.feed.port}/show.xml"
        self.hub_url = self.hub.url
        self.publish()
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.setenv("CRIER_M_ACCESS_TOKEN", TOKEN)
        self.cfg = tmp / "crier.toml"
        self.write_config()
        self.web = stack.enter_context(WebApp(db_url, self.cfg, clock=lambda: self.t[0],
                                              root_path=root_path))
        self.public_url = proxy(self.web.port) + root_path if proxy else self.web.url
        self.store = Store(db_url)
        stack.callback(self.store.close)
        self.fleet = Fleet(self.store, lambda: load_deployment(self.cfg),
                           clock=lambda: self.t[0])
        stack.callback(self.fleet.close)
        self.session = new_session(guard=True, allow_private=["127.0.0.1/32"])
        stack.callback(self.session.close)
        self.woken: list[int] = []
        push.set_waker(lambda: self.woken.append(1))
        stack.callback(push.set_waker, None)
        websub._seen = websub._Seen(websub.REPLAY_MEMORY)   # a fresh process's memory

    def write_config(self, shows: bool = True) -> None:
        self.cfg.write_text(f"""public_url = "http://example.invalid"
allow_private_networks = ["127.0.0.1/32"]
[[shows]]
show = "Pushed"
slug = "pushed"
feed = "{self.url}"
poll_interval = "15m"
[shows.promos]
min_gap = 0
[[shows.accounts]]
platform = "mastodon"
name = "m"
instance = "{self.masto.url}"
timeout = 2
""" + ("" if shows else """[[shows]]
show = "Other"
slug = "other"
feed = "/nonexistent/other.xml"
"""))

    def publish(self, hub: bool = True) -> None:
        self.feed.set_feed("/show.xml", with_hub(rss(self.items, title="Pushed"),
                                                 self.hub_url if hub else None, self.url))

    def new_episode(self) -> str:
        k = len(self.items) + 1
        title = f"Episode {k} pushed"
        self.items.append(item(k, published=self.t[0] - timedelta(minutes=1), title=title))
        self.publish()
        return title

    def maintain(self) -> dict:
        done = websub.maintain(self.store, self.public_url, self.session, self.t[0])
        self.hub.settle()
        return done

    def sub(self) -> dict | None:
        with self.store.tx() as c:
            r = c.execute(websub_subscriptions.select()).mappings().first()
            return dict(r) if r else None

    def feed_row(self):
        return next(f for f in self.store.all_feeds() if f.url == self.url)

    def subscribed(self) -> dict:
        """Baseline poll (discovers the hub), subscribe, verified."""
        self.fleet.poll()
        assert self.sub()["state"] == "pending"
        assert self.maintain() == {"subscribe": 1}
        self.hub.wait_verified(self.url)
        row = self.sub()
        assert row["state"] == "active", row
        return row


@pytest.fixture
def make(db_url, tmp_path, monkeypatch):
    with ExitStack() as stack:
        yield lambda **kw: Net(stack, tmp_path, db_url, monkeypatch, **kw)


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_subscribe_verify_and_a_signed_notification_posts_at_once(make, algorithm, caplog):
    caplog.set_level(logging.INFO)
    net = make(algorithm=algorithm)
    row = net.subscribed()
    form = net.hub.requests[0]
    assert form["hub.mode"] == "subscribe" and form["hub.topic"] == net.url
    assert form["hub.callback"] == f"{net.web.url}/websub/{row['token']}"
    assert form["hub.secret"] == row["secret"] and len(row["secret"]) >= 32
    assert form["hub.lease_seconds"] == str(websub.LEASE_ASKED)
    assert row["lease_seconds"] == 86400                    # what the hub granted
    assert row["expires_at"] == net.t[0] + timedelta(seconds=86400)
    net.t[0] += timedelta(minutes=2)
    title = net.new_episode()
    assert net.fleet.poll() == []                          # not due by polling
    assert net.hub.publish(net.url) == [202]
    assert net.woken == [1]                                # the worker is told at once
    assert net.feed_row().next_poll_at == net.t[0]
    assert net.sub()["last_notified_at"] == net.t[0]
    [(_ref, report)] = net.fleet.poll()
    assert report.result == "new"
    net.fleet.dispatch()
    assert [s["text"] for s in net.masto.statuses if title in s["text"]]
    assert row["secret"] not in caplog.text               # never logged
    st = net.fleet.services[0].status()["feeds"][0]["listening"]
    assert st["websub"].startswith("WebSub lease until")
    assert st["polling"] == "15m" and st["last_notification_via"] == "websub"
    assert "polling every 15 min; last notification" in st["line"]
    assert st["line"].startswith("WebSub lease until")  # all three ways, in one line
    assert ("podping (Hive)" in st["line"]) == net.fleet.services[0].settings.podping_enabled


@pytest.mark.parametrize("how", ["bad", "none", "sha384-wrong-secret", "unknown-method"])
def test_a_bad_or_missing_signature_is_dropped_and_logged(make, how, caplog):
    net = make()
    row = net.subscribed()
    net.new_episode()
    cb = f"{net.web.url}/websub/{row['token']}"
    body = b"<rss>forged</rss>"
    if how in ("bad", "none"):
        assert net.hub.publish(net.url, body, signature=how) == [202]   # 2xx, as the spec says
    else:
        sig = WebSubHub.sign("not-the-secret", body, "sha384") if how.startswith("sha384") \
            else "md5=" + "0" * 32
        assert httpx.post(cb, content=body, headers={"X-Hub-Signature": sig}).status_code == 202
    assert net.woken == [] and net.feed_row().last_push_at is None
    assert net.sub()["last_notified_at"] is None
    assert "notification for feed" in caplog.text and "dropped" in caplog.text
    assert row["secret"] not in caplog.text
    assert net.fleet.poll() == []                          # nothing made due
    assert net.masto.statuses == []


def test_a_replay_costs_at_most_one_poll_and_an_unchanged_feed_one_304(make):
    net = make()
    net.subscribed()
    net.t[0] += timedelta(minutes=1)
    title = net.new_episode()
    assert net.hub.publish(net.url) == [202]
    net.fleet.poll()
    net.fleet.dispatch()
    assert len(net.masto.statuses) == 1 and title in net.masto.statuses[0]["text"]
    net.t[0] += timedelta(minutes=1)
    net.feed.requests.clear()
    assert net.hub.replay() == 202                         # remembered: ignored
    assert net.fleet.poll() == [] and net.feed.requests == []
    websub._seen = websub._Seen(websub.REPLAY_MEMORY)      # a restart forgets
    for _ in range(3):
        assert net.hub.replay() == 202                     # made due once; then still due
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
    assert len(net.feed.requests) == 1                     # one conditional GET: a 304
    net.fleet.dispatch()
    assert len(net.masto.statuses) == 1                    # nothing posted twice
    # a genuine notification for a feed that has not changed: one 304, nothing posted
    net.feed.requests.clear()
    assert net.hub.publish(net.url, b"<rss>same feed, new ping</rss>") == [202]
    assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
    assert [m for m, _p, _h in net.feed.requests] == ["GET"]
    assert "If-None-Match" in net.feed.requests[0][2]
    net.fleet.dispatch()
    assert len(net.masto.statuses) == 1


def test_the_lease_is_renewed_before_it_ends_and_notifications_go_on(make):
    net = make()
    first = net.subscribed()
    net.t[0] += timedelta(hours=12)
    assert net.maintain() == {}                            # not yet
    net.t[0] += timedelta(hours=8)                         # 20 h of 24: renew
    net.hub.lease_override = 7200
    assert net.maintain() == {"subscribe": 1}
    renewal = net.hub.requests[-1]
    assert renewal["hub.callback"].endswith(first["token"])
    assert renewal["hub.secret"] == first["secret"]        # the same secret: no gap
    row = net.sub()
    assert row["state"] == "active" and row["lease_seconds"] == 7200
    assert row["expires_at"] == net.t[0] + timedelta(hours=2)
    assert net.hub.publish(net.url) == [202] and net.woken == [1]
    # a verification nobody asked for now (the renewal is done) is refused
    r = httpx.get(f"{net.web.url}/websub/{row['token']}", params={
        "hub.mode": "subscribe", "hub.topic": net.url, "hub.challenge": "x",
        "hub.lease_seconds": "999999"})
    assert r.status_code == 404
    assert net.sub()["lease_seconds"] == 7200


def test_a_removed_show_is_unsubscribed(make):
    net = make()
    net.subscribed()
    remove_show(net.store, "pushed", net.t[0])
    assert net.maintain() == {"unsubscribe": 1}
    assert net.hub.requests[-1]["hub.mode"] == "unsubscribe"
    assert "hub.secret" not in net.hub.requests[-1]
    assert net.hub.active() == [] and net.sub() is None
    assert net.maintain() == {}


def test_a_hub_that_refuses_or_is_down_leaves_polling_as_it_was(make):
    net = make()
    net.fleet.poll()
    net.hub.refuse(503)
    assert net.maintain() == {"subscribe": 1}
    row = net.sub()
    assert row["state"] == "failed" and row["last_error"].startswith("the hub answered 503")
    line = net.fleet.services[0].status()["feeds"][0]["listening"]["line"]
    assert "WebSub failed: the hub answered 503" in line and "polling every 15 min" in line
    assert net.maintain() == {}                            # asked again only later
    net.hub.stop()
    net.t[0] += websub.FAILED_RETRY
    assert net.maintain() == {"subscribe": 1}
    assert "could not be reached" in net.sub()["last_error"]
    # polling is as it was: the feed comes due at its interval and is read
    net.t[0] += timedelta(minutes=15)
    title = net.new_episode()
    assert [r.result for _s, r in net.fleet.poll()] == ["new"]
    net.fleet.dispatch()
    assert title in net.masto.statuses[0]["text"]


def test_a_denied_subscription_is_recorded(make):
    net = make()
    net.fleet.poll()
    net.hub.deny(net.url, "topic not allowed here")
    net.maintain()
    row = net.sub()
    assert row["state"] == "denied"
    assert row["last_error"] == "the hub denied the subscription: topic not allowed here"


def test_the_callback_answers_only_what_crier_asked(make):
    net = make()
    net.fleet.poll()
    row = net.sub()
    cb = f"{net.web.url}/websub/{row['token']}"

    def get(**q):
        return httpx.get(cb, params={f"hub.{k}": v for k, v in q.items()})
    # pending: nothing asked yet
    assert get(mode="subscribe", topic=net.url, challenge="c", lease_seconds="60"
               ).status_code == 404
    net.maintain()
    assert net.sub()["state"] == "active"
    assert get(mode="subscribe", topic=net.url, challenge="c", lease_seconds="60"
               ).status_code == 404                        # nothing outstanding
    assert get(mode="unsubscribe", topic=net.url, challenge="c").status_code == 404
    assert httpx.get(f"{net.web.url}/websub/nosuchtoken", params={
        "hub.mode": "subscribe", "hub.topic": net.url, "hub.challenge": "c"}).status_code == 404
    assert httpx.post(f"{net.web.url}/websub/nosuchtoken", content=b"x").status_code == 404
    # a request outstanding: the wrong topic is still refused, the right one answered
    with net.store.tx() as c:
        c.execute(websub_subscriptions.update().values(requested_at=net.t[0],
                                                       state="requested"))
    assert get(mode="subscribe", topic=net.url + "?other", challenge="c", lease_seconds="60"
               ).status_code == 404
    assert get(mode="subscribe", topic=net.url, challenge="c", lease_seconds="nope"
               ).status_code == 404
    r = get(mode="subscribe", topic=net.url, challenge="ch4llenge", lease_seconds="600")
    assert r.status_code == 200 and r.text == "ch4llenge"
    # no session, no CSRF token needed, and none of the control room is reachable this way
    assert httpx.get(f"{net.web.url}/api/v1/me").status_code == 401
    # a notification naming another topic in its Link header is dropped
    body = b"<rss/>"
    r = httpx.post(cb, content=body, headers={
        "X-Hub-Signature": WebSubHub.sign(row["secret"], body),
        "Link": '<https://evil.example/feed>; rel="self"'})
    assert r.status_code == 202 and net.woken == []


def test_the_callback_under_a_root_path_behind_a_proxy(make, nginx):  # noqa: F811
    net = make(root_path="/crier", proxy=nginx)
    row = net.subscribed()
    assert net.hub.requests[0]["hub.callback"] == \
        f"{net.public_url}/websub/{row['token']}"
    assert "/crier/websub/" in net.hub.requests[0]["hub.callback"]
    net.new_episode()
    assert net.hub.publish(net.url) == [202] and net.woken == [1]


def test_hub_addresses_are_guarded_and_plain_http_only_on_loopback(make):
    net = make()
    net.fleet.poll()
    fid = net.feed_row().id
    cases = [("http://hub.example.org/", "plain HTTP"),
             ("https://10.1.2.3/hub", "AddressRefused"),
             ("https://169.254.169.254/hub", "AddressRefused")]
    for hub, why in cases:
        with net.store.tx() as c:
            c.execute(websub_subscriptions.update().values(hub=hub, state="pending"))
        net.maintain()
        row = net.sub()
        assert row["state"] == "failed" and why in row["last_error"], (hub, row["last_error"])
    # loopback is refused by the guard unless allow_private_networks names it
    strict = new_session(guard=True)
    with net.store.tx() as c:
        c.execute(websub_subscriptions.update().values(hub=net.hub_url, state="pending"))
    websub.maintain(net.store, net.public_url, strict, net.t[0])
    assert "AddressRefused" in net.sub()["last_error"] and net.hub.requests == []
    assert fid


def test_discovery_follows_the_feed(make):
    net = make()
    kicked = []
    websub.set_kick(lambda: kicked.append(1))
    try:
        net.fleet.poll()
    finally:
        websub.set_kick(None)
    assert kicked == [1]                  # the worker's websub job is run at once
    first = net.sub()
    assert (first["hub"], first["topic"], first["state"]) == (net.hub_url, net.url, "pending")
    net.maintain()
    # the feed stops naming a hub: unsubscribed
    net.t[0] += timedelta(minutes=20)
    net.items.append(item(3, published=net.t[0] - timedelta(minutes=1)))
    net.publish(hub=False)
    net.fleet.poll()
    assert net.sub()["state"] == "unsubscribing"
    net.maintain()
    assert net.sub() is None and net.hub.active() == []


def test_discover():
    base = "https://host.example/feed.xml"
    head = (b'<rss><channel><title>t</title><atom:link rel="self" href="/canonical.xml"/>'
            b"<link rel='hub' href='https://pubsubhubbub.appspot.com/'/>"
            b'<item><atom:link rel="hub" href="https://item.example/"/></item>')
    assert websub.discover(head, None, base) == ("https://pubsubhubbub.appspot.com/",
                                                 "https://host.example/canonical.xml")
    assert websub.discover(b"<rss><channel></channel></rss>",
                           '<https://hub.example/>; rel="hub", <https://t.example/f>; rel=self',
                           base) == ("https://hub.example/", "https://t.example/f")
    assert websub.discover(b'<feed><link href="javascript:x" rel="hub"/></feed>', None,
                           base) == (None, base)
    assert websub.discover(b'<entry><link rel="hub" href="https://h/"/></entry>', None,
                           base) == (None, base)
    assert websub.discover(b'<channel><atom:link href="https://h.example/?a=1&amp;b=2" '
                           b'rel="hub"/>', None, base)[0] == "https://h.example/?a=1&b=2"


def test_check_signature():
    body = b"payload"
    for algo in ("sha1", "sha256", "sha384", "sha512"):
        assert websub.check_signature("s", body, WebSubHub.sign("s", body, algo)) is None
        assert websub.check_signature("s", body + b"!", WebSubHub.sign("s", body, algo))
    assert websub.check_signature("s", body, None) == "no X-Hub-Signature"
    assert "does not know" in websub.check_signature("s", body, "md5=00")
    assert websub.check_signature("s", body, "sha256=") is not None


def test_public_url_config(tmp_path):
    from bot.errors import ConfigError
    cfg = tmp_path / "crier.toml"
    base = 'show = "S"\nfeed = "https://example.org/f.xml"\n'
    cfg.write_text(base + 'public_url = "https://example.org/crier/"\n')
    assert load_deployment(cfg, env={}).public_url == "https://example.org/crier"
    assert load_deployment(cfg, env={}).shows[0].public_url == "https://example.org/crier"
    for bad in ("ftp://x", "https://example.org/?q=1", "not a url"):
        cfg.write_text(base + f'public_url = "{bad}"\n')
        with pytest.raises(ConfigError, match="public_url"):
            load_deployment(cfg, env={})
