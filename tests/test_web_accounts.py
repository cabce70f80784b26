"""Connecting accounts from the control room's Accounts page (bot/web/pages_accounts.py over
bot.connect), over real HTTP on loopback, on SQLite and PostgreSQL: Mastodon through the local
instance's OAuth authorization (app registration, PKCE) back to crier's callback, X keys
verified on save against the local X, disconnecting; a co-host sees but may not change; without
CRIER_SECRET_KEY the page says why and stores nothing; no secret is ever on a page."""

from __future__ import annotations

import html
import re

import httpx
import pytest
import sqlalchemy as sa

from bot.store import connected_accounts
from bot.vault import generate_key
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.webapp import WebApp

KEYS = dict(consumer_key="ck-web", consumer_secret="cs-web", access_token="at-web",
            access_token_secret="ats-web")


@pytest.fixture
def setup(db_url, tmp_path, monkeypatch):
    from tests.conftest import ROOT
    (tmp_path / "feed.xml").write_text((ROOT / "config" / "sample-feed.xml").read_text())
    for k in list(__import__("os").environ):
        if k.startswith("CRIER_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRIER_SECRET_KEY", generate_key())
    with MastodonServer(token="env-token-never-used") as masto, XServer(**KEYS) as x:
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f"""allow_private_networks = ["127.0.0.0/8"]
show = "Connect Show"
slug = "cs"
feed = "feed.xml"
[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{masto.url}"
max_characters = 500
[[accounts]]
platform = "x"
name = "bird"
api_base = "{x.url}"
""")
        with WebApp(db_url, cfg) as web:
            web.add_user("host")
            web.add_user("co", role="cohost")
            yield web, masto, x


def _page(c, csrf=None) -> str:
    r = c.get("/shows/cs/accounts")
    assert r.status_code == 200, r.text
    return r.text


def _stored(web) -> list:
    with web.store.tx() as c:
        return list(c.execute(sa.select(connected_accounts)).mappings())


def test_connect_mastodon_through_its_oauth_and_disconnect(setup):
    web, masto, _x = setup
    c, csrf = web.login("host")
    page = _page(c)
    assert "Credentials: <strong>missing</strong>" in page
    r = c.post("/shows/cs/accounts/masto/mastodon", data={"instance": masto.url})
    assert r.status_code == 403                                    # no CSRF token
    r = c.post("/shows/cs/accounts/masto/mastodon",
               data={"instance": masto.url, "csrf_token": csrf})
    assert r.status_code == 200 and "Approve crier on 127.0.0.1" in r.text
    url = html.unescape(re.search(r'id="continue" href="([^"]+)"', r.text).group(1))
    assert url.startswith(masto.url + "/oauth/authorize?") and "code_challenge=" in url
    assert '<meta http-equiv="refresh" content="0;url=' in r.text   # no script needed
    back = httpx.get(url, follow_redirects=False)                  # the host approves
    assert back.status_code == 302
    callback = back.headers["location"]
    assert callback.startswith(web.url + "/oauth/mastodon/callback?")
    done = c.get(callback.removeprefix(web.url))
    assert done.status_code == 303 and "/shows/cs/accounts?done=" in done.headers["location"]
    page = _page(c)
    assert "Credentials: <strong>connected in the web app</strong>" in page
    assert "connected as @" in page
    [row] = _stored(web)
    assert row["account"] == "masto" and row["platform"] == "mastodon"
    token = next(iter(masto.oauth.tokens))
    assert token not in page and token not in row["secret_enc"]
    # the same state cannot be used twice
    again = c.get(callback.removeprefix(web.url))
    assert again.status_code == 422 and "connect the account again" in again.text
    r = c.post("/shows/cs/accounts/masto/disconnect", data={"csrf_token": csrf})
    assert r.status_code == 303 and "Disconnected" in html.unescape(
        httpx.URL(r.headers["location"]).params["done"])
    assert _stored(web) == []


def test_x_keys_are_verified_on_save(setup):
    web, _masto, _x = setup
    c, csrf = web.login("host")
    wrong = dict(KEYS, access_token_secret="nope", csrf_token=csrf)
    r = c.post("/shows/cs/accounts/bird/x", data=wrong)
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert _stored(web) == []
    r = c.post("/shows/cs/accounts/bird/x", data=dict(KEYS, csrf_token=csrf))
    assert r.status_code == 303 and "done=" in r.headers["location"]
    page = _page(c)
    assert page.count("connected in the web app") == 1
    for v in KEYS.values():
        assert v not in page
    assert [r["account"] for r in _stored(web)] == ["bird"]


def test_a_cohost_sees_but_may_not_change(setup):
    web, masto, _x = setup
    c, csrf = web.login("co")
    page = _page(c)
    assert "Credentials:" in page and "<form method=\"post\" action=\"/shows/cs/accounts" \
        not in page
    r = c.post("/shows/cs/accounts/masto/mastodon",
               data={"instance": masto.url, "csrf_token": csrf})
    assert r.status_code == 403 and "cohost may not" in r.text
    assert c.post("/shows/cs/accounts/bird/x", data=dict(KEYS, csrf_token=csrf)) \
        .status_code == 403


def test_without_a_secret_key_nothing_is_stored_and_the_page_says_why(setup, monkeypatch):
    web, masto, _x = setup
    monkeypatch.delenv("CRIER_SECRET_KEY")
    c, csrf = web.login("host")
    page = _page(c)
    assert "CRIER_SECRET_KEY" in page and "Connecting accounts here is off" in page
    r = c.post("/shows/cs/accounts/masto/mastodon",
               data={"instance": masto.url, "csrf_token": csrf})
    assert r.status_code == 303 and "CRIER_SECRET_KEY" in httpx.URL(
        r.headers["location"]).params["error"]
    assert _stored(web) == [] and masto.oauth.apps == {}     # nothing sent, nothing stored


def test_another_show_or_account_is_404(setup):
    web, _masto, _x = setup
    c, csrf = web.login("host")
    assert c.get("/shows/nope/accounts").status_code == 404
    assert c.post("/shows/cs/accounts/ghost/x", data=dict(KEYS, csrf_token=csrf)) \
        .status_code == 404
