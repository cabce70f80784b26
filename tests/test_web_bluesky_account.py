"""Connecting a Bluesky account on the Accounts page (bot/web/pages_accounts.py over
bot.connect.connect_bluesky), over real HTTP on loopback against the real local PDS: the handle
and an app password verified on save with a createSession on the account's `service`, stored
encrypted, never shown again, disconnectable; a wrong app password or the account's main
password is refused on the page and nothing is stored; the environment still wins; `crier
check` / `status` and the JSON API say where the credential comes from. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot.cli import main
from bot.store import connected_accounts
from bot.vault import generate_key
from tests.fakes.threads_server import ThreadsServer
from tests.webapp import WebApp

SESSION = "com.atproto.server.createSession"


@pytest.fixture
def setup(db_url, pds, tmp_path, monkeypatch):
    from tests.conftest import ROOT
    (tmp_path / "feed.xml").write_text((ROOT / "config" / "sample-feed.xml").read_text())
    for k in list(os.environ):
        if k.startswith("CRIER_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRIER_SECRET_KEY", generate_key())
    acct = pds.create_account(f"sky{secrets.token_hex(3)}.test")
    with ThreadsServer(access_token="unused-threads-token") as thr:
        cfg = tmp_path / "crier.toml"
        cfg.write_text(f"""allow_private_networks = ["127.0.0.0/8"]
show = "Sky Show"
slug = "sky"
feed = "feed.xml"
[[accounts]]
platform = "bluesky"
name = "sky"
handle = "{acct.handle}"
service = "{pds.url}"
[[accounts]]
platform = "threads"
name = "thr"
api_base = "{thr.url}"
""")
        with WebApp(db_url, cfg) as web:
            web.add_user("host")
            web.add_user("co", role="cohost")
            yield web, acct, cfg, thr


def _stored(web) -> list:
    with web.store.tx() as c:
        return list(c.execute(sa.select(connected_accounts)).mappings())


def _error(r: httpx.Response) -> str:
    assert r.status_code == 303, r.text
    return httpx.URL(r.headers["location"]).params["error"]


def _logins_left(pds, identifier: str) -> int:
    """The PDS's createSession budget left for `identifier` (this call spends one)."""
    r = pds.xrpc("POST", SESSION, json={"identifier": identifier, "password": "x" * 12})
    return int(r.headers["ratelimit-remaining"])


def _connect(c, csrf, handle, password):
    return c.post("/shows/sky/accounts/sky/bluesky",
                  data={"handle": handle, "app_password": password, "csrf_token": csrf})


def test_an_app_password_is_verified_on_save_stored_encrypted_and_disconnected(setup, pds):
    web, acct, _cfg, _thr = setup
    c, csrf = web.login("host")
    page = c.get("/shows/sky/accounts").text
    assert "/accounts/sky/bluesky" in page and "Credentials: <strong>missing</strong>" in page
    assert "https://bsky.app/settings/app-passwords" in page
    assert "never the account's main password" in page
    assert f'name="handle" value="{acct.handle}"' in page
    # a wrong app password: the PDS refuses it, the page says so, nothing is stored
    error = _error(_connect(c, csrf, acct.handle, "aaaa-bbbb-cccc-dddd"))
    assert "Invalid identifier or password" in error and acct.handle in error
    assert "nothing was stored" in error and _stored(web) == []
    # the right one, typed with an @ and a blank
    r = _connect(c, csrf, "@" + acct.handle, acct.app_password + " ")
    assert r.status_code == 303 and "done=" in r.headers["location"]
    page = c.get("/shows/sky/accounts").text
    assert "Credentials: <strong>connected in the web app</strong>" in page
    assert f"connected as @{acct.handle}" in page
    assert acct.app_password not in page
    [row] = _stored(web)
    assert (row["platform"], row["instance"], row["username"]) == \
        ("bluesky", pds.url, "@" + acct.handle)
    assert acct.app_password not in row["secret_enc"]
    r = c.post("/shows/sky/accounts/sky/disconnect", data={"csrf_token": csrf})
    assert r.status_code == 303 and "done=" in r.headers["location"]
    assert _stored(web) == []
    assert "Credentials: <strong>missing</strong>" in c.get("/shows/sky/accounts").text


def test_the_main_password_is_refused_and_not_kept(setup, pds):
    web, acct, _cfg, _thr = setup
    c, csrf = web.login("host")
    # not shaped like an app password: refused before anything is sent to the PDS
    before = _logins_left(pds, acct.handle)
    error = _error(_connect(c, csrf, acct.handle, acct.password))
    assert "not an app password" in error and "app-passwords" in error
    assert _logins_left(pds, acct.handle) == before - 1      # only our own probe counted
    assert _stored(web) == []
    # a main password that looks like an app password: the PDS accepts it, and its session
    # says it is the main one (scope com.atproto.access): refused all the same
    main_like = "-".join(secrets.token_hex(2) for _ in range(4))
    other = pds.create_account(f"main{secrets.token_hex(3)}.test", password=main_like)
    error = _error(_connect(c, csrf, other.handle, main_like))
    assert "not an app password" in error and _stored(web) == []
    assert acct.password not in error and main_like not in error


def test_a_cohost_may_not_connect(setup):
    web, acct, _cfg, _thr = setup
    c, csrf = web.login("co")
    assert "/accounts/sky/bluesky" not in c.get("/shows/sky/accounts").text
    assert _connect(c, csrf, acct.handle, acct.app_password).status_code == 403
    assert _stored(web) == []


def test_without_a_secret_key_nothing_is_sent_or_stored(setup, pds, monkeypatch):
    web, acct, _cfg, _thr = setup
    monkeypatch.delenv("CRIER_SECRET_KEY")
    c, csrf = web.login("host")
    page = c.get("/shows/sky/accounts").text
    assert "CRIER_SECRET_KEY" in page and "/accounts/sky/bluesky" not in page
    before = _logins_left(pds, acct.handle)
    assert "CRIER_SECRET_KEY" in _error(_connect(c, csrf, acct.handle, acct.app_password))
    assert _logins_left(pds, acct.handle) == before - 1 and _stored(web) == []


def test_where_the_credential_comes_from(setup, pds, monkeypatch):
    """The API lists Bluesky's PDS and handle and Threads' API base; `crier check` logs in
    with the connected app password (and the handle it was verified with) and, like `crier
    status`, says where it comes from; a variable in the environment wins."""
    web, acct, cfg, thr = setup
    c, csrf = web.login("host")
    listed = {a["name"]: a for a in c.get("/api/v1/shows/sky/accounts").json()}
    assert listed["sky"]["instance"] == pds.url and listed["sky"]["handle"] == acct.handle
    assert not listed["sky"]["configured"]
    assert listed["thr"]["instance"] == thr.url and listed["thr"]["handle"] is None
    assert _connect(c, csrf, acct.handle, acct.app_password).status_code == 303
    listed = {a["name"]: a for a in c.get("/api/v1/shows/sky/accounts").json()}
    assert listed["sky"]["configured"] and acct.app_password not in json.dumps(listed)

    def crier(*args):
        return CliRunner().invoke(main, ["--config", str(cfg), *args]).output
    # the config's handle is out of date: the connected account's verified handle is used
    cfg.write_text(cfg.read_text().replace(f'handle = "{acct.handle}"',
                                           'handle = "renamed-since.test"'))
    checks = {k["name"]: k for k in json.loads(crier("check", "--json"))}
    assert checks["account sky"]["ok"], checks["account sky"]
    assert f"@{acct.handle}" in checks["account sky"]["detail"]
    assert "credentials: connected in the web app" in checks["account sky"]["detail"]
    status = crier("status")
    assert "Account sky (bluesky): credentials: connected in the web app" in status
    assert acct.app_password not in status + json.dumps(checks)
    monkeypatch.setenv("CRIER_SKY_APP_PASSWORD", "wxyz-wxyz-wxyz-wxyz")   # the environment wins
    assert "Account sky (bluesky): credentials: environment" in crier("status")
    checks = {k["name"]: k for k in json.loads(crier("check", "--json"))}
    assert not checks["account sky"]["ok"]
    assert "CRIER_SKY_APP_PASSWORD" in checks["account sky"]["detail"]
