"""Who may use the control room (bot.users, bot.web.auth), over real HTTP on loopback, on
SQLite and PostgreSQL: users and API tokens from the CLI, login with rate limiting, sessions
with CSRF tokens, 401 for the API and a redirect for pages, shows a user may not see answer
404, and a strict Content-Security-Policy on every response; no secret ever in an answer."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.users import LOGIN_MAX_FAILURES, add_user, authenticate, list_users
from tests.conftest import ROOT
from tests.webapp import PASSWORD, WebApp

BUNDLED = ROOT / "config"


def _config(tmp_path, shows=("alpha", "beta")) -> str:
    parts = []
    for slug in shows:
        (tmp_path / f"{slug}.xml").write_text((BUNDLED / "sample-feed.xml").read_text())
        parts.append(f'[[shows]]\nshow = "Show {slug}"\nslug = "{slug}"\nfeed = "{slug}.xml"\n'
                     f'timezone = "Europe/Berlin"\n[[shows.accounts]]\nplatform = "mastodon"\n'
                     f'name = "m-{slug}"\ninstance = "https://social.example"\ndry_run = true\n'
                     f'max_characters = 500\n')
    path = tmp_path / "crier.toml"
    path.write_text("\n".join(parts))
    return str(path)


@pytest.fixture
def web(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    with WebApp(db_url, _config(tmp_path)) as w:
        yield w


def test_cli_users_and_tokens(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    cfg = _config(tmp_path)
    cli = lambda *a, **kw: CliRunner().invoke(main, ["--config", cfg, *a], **kw)  # noqa: E731
    r = cli("users", "add", "ana", "--password-stdin", input="short\n")
    assert r.exit_code == 1 and "at least 10 characters" in r.output
    r = cli("users", "add", "ana", "--role", "cohost", "--show", "alpha", "--password-stdin",
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert cli("users", "add", "ana", "--password-stdin", input=PASSWORD + "\n").exit_code == 1
    r = cli("users", "add", "bo", "--show", "nope", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 1 and "no show 'nope'" in r.output
    r = cli("users", "list", "--json")
    assert r.exit_code == 0 and '"shows": [\n      "alpha"' in r.output
    assert "argon2" not in r.output and PASSWORD not in r.output
    r = cli("tokens", "create", "ana", "--label", "script")
    assert r.exit_code == 0
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("crier_") and len(token) > 40
    r = cli("tokens", "list")
    assert "script" in r.output and token not in r.output
    assert cli("tokens", "revoke", "1").exit_code == 0
    assert "revoked" in cli("tokens", "list").output
    assert cli("tokens", "revoke", "1").exit_code == 1
    assert cli("users", "remove", "ana").exit_code == 0
    assert "No users yet" in cli("users", "list").output


def test_passwords_are_argon2_hashed_and_checked(web):
    u = web.add_user("ana")
    from bot.store import users
    with web.store.tx() as c:
        stored = c.execute(users.select()).first().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    now = datetime.now(UTC)
    assert authenticate(web.store, "ana", PASSWORD, client="1.2.3.4", now=now).id == u.id
    assert [x.name for x in list_users(web.store)] == ["ana"]


def test_login_sets_a_safe_session_cookie_and_logout_ends_it(web):
    web.add_user("ana")
    c = web.client()
    assert c.get("/api/v1/me").status_code == 401
    page = c.get("/shows/alpha")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/shows/alpha"
    form = c.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    # the login form's own CSRF token
    bad = web.client().post("/login", data={"name": "ana", "password": PASSWORD,
                                            "csrf_token": token})
    assert bad.status_code == 403
    wrong = c.post("/login", data={"name": "ana", "password": "wrong password!",
                                   "csrf_token": token})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text.lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text).group(1)
    ok = c.post("/login", data={"name": "ana", "password": PASSWORD, "csrf_token": token,
                                "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["location"] == "/"   # no open redirect
    cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith("crier_session"))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie        # plain HTTP on loopback (a browser would drop it)
    me = c.get("/api/v1/me").json()
    assert me == {"name": "ana", "role": "host",
                  "may": {"accounts": True, "remove_post": True, "users": True}}
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/shows/alpha").text).group(1)
    assert c.post("/logout").status_code == 403                       # no CSRF token
    assert c.post("/logout", data={"csrf_token": "x" * 40}).status_code == 403
    assert c.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert c.get("/api/v1/me").status_code == 401


def test_cookies_are_secure_off_loopback(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", db_url)
    with WebApp(db_url, _config(tmp_path), secure_cookies=True) as w:
        r = w.client().get("/login")
        assert "Secure" in r.headers["set-cookie"]


def test_logins_are_rate_limited(web):
    web.add_user("ana")
    c = web.client()

    def attempt(password):
        form = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return c.post("/login", data={"name": "ana", "password": password,
                                      "csrf_token": token})
    for _ in range(LOGIN_MAX_FAILURES):
        assert attempt("wrong password!").status_code == 401
    r = attempt(PASSWORD)            # even the right password, until the window moves on
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "too many failed logins" in r.text.lower()


def test_api_tokens_and_show_visibility(web):
    web.add_user("ana", shows=("alpha",))
    web.add_user("host")
    token = web.token("ana")
    assert web.client().get("/api/v1/shows").status_code == 401
    assert web.client("crier_not-a-token").get("/api/v1/shows").status_code == 401
    mine = web.client(token).get("/api/v1/shows")
    assert mine.status_code == 200 and [s["slug"] for s in mine.json()] == ["alpha"]
    everything = web.client(web.token("host")).get("/api/v1/shows").json()
    assert [s["slug"] for s in everything] == ["alpha", "beta"]
    c, _csrf = web.login("ana")
    assert c.get("/shows/alpha").status_code == 200
    assert c.get("/shows/beta").status_code == 404          # may not see it: as if absent
    assert c.get("/shows/nope").status_code == 404
    from bot.users import list_tokens, revoke_token
    revoke_token(web.store, list_tokens(web.store)[0].id, now=datetime.now(UTC))
    assert web.client(token).get("/api/v1/shows").status_code == 401


def test_every_response_has_a_strict_csp_and_no_secret(web):
    web.add_user("ana")
    c, _csrf = web.login("ana")
    for path in ("/login", "/api/v1/me", "/shows/alpha", "/static/app.css",
                 "/api/v1/openapi.json", "/nope"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "$argon2" not in r.text and PASSWORD not in r.text
    html = c.get("/shows/alpha").text
    assert "<script>" not in html and " style=" not in html and "onclick" not in html


def test_a_cohost_may_less_than_a_host(web):
    u = add_user(web.store, "co", PASSWORD, role="cohost", now=datetime.now(UTC))
    assert u.may("queue") and u.may("approve") and u.may("release")
    assert not u.may("accounts") and not u.may("remove_post") and not u.may("users")


def test_crier_web_serves_the_bundled_default(tmp_path, monkeypatch):
    """`crier web` on the bundled config: the sample show, after only `crier users add`."""
    import subprocess
    import sys
    import time

    import httpx
    cfg = tmp_path / "config"
    cfg.mkdir()
    for name in ("crier.toml", "sample-feed.xml"):
        shutil.copy(BUNDLED / name, cfg / name)
    for k in list(__import__("os").environ):
        if k.startswith("CRIER_") or k == "DATABASE_URL":
            monkeypatch.delenv(k)
    r = CliRunner().invoke(main, ["--config", str(cfg / "crier.toml"), "users", "add", "host",
                                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg / "crier.toml"),
                             "web", "--port", str(port)], cwd=tmp_path, env=dict(
        __import__("os").environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/login", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < end and proc.poll() is None, proc.stdout.read()
                time.sleep(0.1)
        c = httpx.Client(base_url=base)
        form = c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = c.post("/login", data={"name": "host", "password": PASSWORD, "csrf_token": token},
                   follow_redirects=True)
        assert r.status_code == 200 and "The Blockchain Socialist" in r.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
