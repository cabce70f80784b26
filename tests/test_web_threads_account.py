"""Pasting a long-lived Threads token on the Accounts page (bot/web/pages_accounts.py over
bot.connect.connect_threads): verified on save against the Threads contract server (GET /me),
stored encrypted, never shown again; a refused token is not stored. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.store import connected_accounts
from bot.vault import generate_key
from tests.fakes.threads_server import ThreadsServer
from tests.webapp import WebApp

TOKEN = "pasted-threads-token-0123456789"


@pytest.fixture
def setup(db_url, tmp_path, monkeypatch):
    from tests.conftest import ROOT
    (tmp_path / "feed.xml").write_text((ROOT / "config" / "sample-feed.xml").read_text())
    for k in list(__import__("os").environ):
        if k.startswith("CRIER_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRIER_SECRET_KEY", generate_key())
    with ThreadsServer(access_token=TOKEN, username="tbsocialist") as srv:
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f"""allow_private_networks = ["127.0.0.0/8"]
show = "Threads Show"
slug = "ts"
feed = "feed.xml"
[[accounts]]
platform = "threads"
name = "thr"
api_base = "{srv.url}"
""")
        with WebApp(db_url, cfg) as web:
            web.add_user("host")
            web.add_user("co", role="cohost")
            yield web, srv


def _stored(web) -> list:
    with web.store.tx() as c:
        return list(c.execute(sa.select(connected_accounts)).mappings())


def test_a_threads_token_is_verified_on_save_and_stored_encrypted(setup):
    web, srv = setup
    c, csrf = web.login("host")
    page = c.get("/shows/ts/accounts").text
    assert "Credentials: <strong>missing</strong>" in page and "/accounts/thr/threads" in page
    r = c.post("/shows/ts/accounts/thr/threads", data={"access_token": "wrong",
                                                        "csrf_token": csrf})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert _stored(web) == []
    r = c.post("/shows/ts/accounts/thr/threads", data={"access_token": TOKEN,
                                                        "csrf_token": csrf})
    assert r.status_code == 303 and "done=" in r.headers["location"]
    page = c.get("/shows/ts/accounts").text
    assert "connected in the web app" in page and "@tbsocialist" in page and TOKEN not in page
    [row] = _stored(web)
    assert row["platform"] == "threads" and TOKEN not in row["secret_enc"]
    assert [r["route"] for r in srv.requests if r["status"] == 200] == ["me"]


def test_a_cohost_may_not_paste_a_token(setup):
    web, _srv = setup
    c, csrf = web.login("co")
    r = c.post("/shows/ts/accounts/thr/threads", data={"access_token": TOKEN,
                                                        "csrf_token": csrf})
    assert r.status_code == 403 and _stored(web) == []


def test_credentials_pasted_for_another_network_are_refused_and_not_stored(setup):
    web, srv = setup
    c, csrf = web.login("host")
    for route, data, words in (
            ("x", {"consumer_key": "k"}, "is not an X account"),
            ("bluesky", {"handle": "a.test", "app_password": "abcd-efgh-ijkl-mnop"},
             "is not a Bluesky account")):
        r = c.post(f"/shows/ts/accounts/thr/{route}", data={**data, "csrf_token": csrf})
        assert r.status_code == 422 and words in r.text, (route, r.status_code, r.text[:300])
    assert _stored(web) == [] and not srv.requests
