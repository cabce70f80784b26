"""Connecting accounts without a terminal (bot/connect.py, bot/vault.py): the Mastodon OAuth
code flow with PKCE over real loopback HTTP against the local Mastodon, X keys verified on
save against the local X, secrets encrypted at rest, and the connected credentials used by
the normal publisher path (the environment still wins). On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from bot import connect
from bot.checks import run_checks
from bot.errors import AuthError, CrierError
from bot.fetch import new_session
from bot.models import Media, Post
from bot.service import Service
from bot.store import connected_accounts, oauth_apps, oauth_pending
from bot.vault import Vault, VaultError, derive_key, generate_key, key_from
from tests.fakes.x_server import XServer
from tests.hostcli import host_cli
from tests.world import M_TOKEN, X_KEYS, new_episode

LOOPBACK = ("127.0.0.0/8",)
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
CALLBACK = "https://crier.example/connect/mastodon/callback"


@pytest.fixture
def key(monkeypatch) -> str:
    k = generate_key()
    monkeypatch.setenv("CRIER_SECRET_KEY", k)
    return k


def start(w, account="masto", *, now=None, show_id=None, **kw) -> str:
    return connect.start_mastodon(w.store, None, show_id=show_id, account=account,
                                  instance=w.masto.url, redirect_uri=CALLBACK, user_id=None,
                                  now=now or w.clock(), allow_private=LOOPBACK, **kw)


def approve(url: str) -> dict[str, str]:
    """The host follows the authorization URL; the instance sends them back (302)."""
    r = requests.get(url, allow_redirects=False, timeout=5)
    assert r.status_code == 302, r.text
    back = r.headers["Location"]
    assert back.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}


def finish(w, back: dict, *, now=None, **kw):
    return connect.finish_mastodon(w.store, None, state=back.get("state", ""),
                                   code=back.get("code"), now=now or w.clock(),
                                   allow_private=LOOPBACK, **kw)


def connect_masto(w) -> connect.ConnectedAccount:
    return finish(w, approve(start(w)))


def without_env_token(w):
    """The world's settings as loaded from a config whose .env has no Mastodon token."""
    return dataclasses.replace(w.settings, accounts=tuple(
        dataclasses.replace(a, secrets={}, missing_secrets=("CRIER_MASTO_ACCESS_TOKEN",),
                            credentials="") if a.platform == "mastodon" else a
        for a in w.settings.accounts))


def service(w, settings) -> Service:
    """A Service as the worker builds it: publishers from the settings (and the store)."""
    return Service(settings, w.store, clock=w.clock, rng=random.Random(7))


def issued(w) -> str:
    (token,) = w.masto.oauth.tokens
    return token


def raw_rows(w) -> str:
    """Every row of the three tables, every column, as text."""
    out = []
    with w.store.tx() as c:
        for table in (connected_accounts, oauth_apps, oauth_pending):
            out += [json.dumps([str(v) for v in row]) for row in c.execute(sa.select(table))]
    return "\n".join(out)


# -- the Mastodon flow -------------------------------------------------------------------------
def test_connect_mastodon_then_post_with_the_connected_token(world, key):
    url = start(world)
    q = parse_qs(urlsplit(url).query)
    assert url.startswith(world.masto.url + "/oauth/authorize?")
    assert q["response_type"] == ["code"] and q["code_challenge_method"] == ["S256"]
    assert q["redirect_uri"] == [CALLBACK] and len(q["code_challenge"][0]) == 43
    assert set(q["scope"][0].split()) >= {"write:statuses", "write:media", "read:accounts"}
    got = finish(world, approve(url))
    assert (got.account, got.platform, got.username) == ("masto", "mastodon",
                                                         "@crier@127.0.0.1")
    assert got.instance == world.masto.url and got.verified_at == world.clock()
    assert connect.connected(world.store) == [got]
    assert not any(k in dataclasses.asdict(got) for k in ("secret_enc", "access_token"))
    # a second connection reuses crier's app on that instance
    finish(world, approve(start(world)))
    assert [r["path"] for r in world.masto.requests].count("/api/v1/apps") == 1
    token = list(world.masto.oauth.tokens)[-1]

    # the worker's path: no token in the environment, the connected one is used
    world.cycle()  # the back catalogue is known
    svc = service(world, without_env_token(world))
    assert svc.settings.account("masto").credentials == "connected in the web app"
    new_episode(world)
    svc.poll(force=True)
    outcomes = svc.dispatch()
    assert {o.account: o.status for o in outcomes} == {"masto": "sent", "x": "sent"}
    assert len(world.masto.statuses) == 1
    post = [r for r in world.masto.requests if r["path"] == "/api/v1/statuses"][-1]
    assert post["headers"]["Authorization"] == f"Bearer {token}"
    st = svc.status()["accounts"]
    assert {a["account"]: a["credentials"] for a in st} == {
        "masto": "connected in the web app", "x": "environment"}


def test_the_scopes_asked_cover_what_crier_does_on_mastodon(world, key, tmp_path):
    """Posting with an image, finding an earlier post, boosting and the community watch all
    work with the connected token; the local Mastodon enforces scopes like Mastodon."""
    from bot.platforms.mastodon import MastodonPublisher
    connect_masto(world)
    pub = MastodonPublisher("masto", world.masto.url, issued(world), media_poll_interval=0)
    assert pub.verify() == "@crier@127.0.0.1"
    since = world.masto.clock() - timedelta(seconds=1)
    png = tmp_path / "a.png"
    png.write_bytes(PNG)
    post = Post("Episode 9 is out", media=(Media(str(png), "the cover", "image/png"),))
    done = pub.publish(post, "key-1")
    assert world.masto.statuses[-1]["media_ids"]            # write:media
    assert pub.find_existing(post, since).remote_id == done.remote_id  # read:statuses
    assert pub.boost(done.url, done.remote_id, same_instance=False)  # read:search, write
    assert pub.watch(["CrierTest"], mentions=True)["me"] == world.masto.account_id
    assert pub.rules().limit == 500
    # a token without read:notifications is refused there, as Mastodon does
    world.masto.oauth.tokens[issued(world)]["scopes"] = ["write:statuses", "read:accounts"]
    with pytest.raises(CrierError, match="403"):
        MastodonPublisher("masto", world.masto.url, issued(world)).watch(["CrierTest"])


def test_a_variable_in_the_environment_still_wins(world, key):
    got = connect_masto(world)
    view = {v["account"]: v for v in connect.accounts_view(world.settings, world.store)}
    assert view["masto"]["credentials"] == "environment" and view["masto"]["connected"] == got
    assert view["x"] == {"account": "x", "platform": "x", "instance": world.x.url,
                         "credentials": "environment", "connected": None}
    view = connect.accounts_view(without_env_token(world), world.store)
    assert view[0]["credentials"] == "connected in the web app"
    dry = dataclasses.replace(without_env_token(world), accounts=tuple(
        dataclasses.replace(a, dry_run=True) for a in world.settings.accounts))
    assert {v["credentials"] for v in connect.accounts_view(dry, world.store)} == {"dry run"}
    world.cycle()
    svc = service(world, world.settings)          # CRIER_MASTO_ACCESS_TOKEN is set
    assert svc.settings.account("masto").secrets["access_token"].reveal() == M_TOKEN
    assert svc.status()["accounts"][0] == {"account": "masto", "platform": "mastodon",
                                           "credentials": "environment"}
    new_episode(world)
    svc.poll(force=True)
    svc.dispatch()
    post = [r for r in world.masto.requests if r["path"] == "/api/v1/statuses"][-1]
    assert post["headers"]["Authorization"] == f"Bearer {M_TOKEN}"


def test_wrong_reused_and_expired_states_are_refused(world, key):
    back = approve(start(world))
    with pytest.raises(CrierError, match="unknown or was already used"):
        finish(world, {**back, "state": "not-the-state"})
    finish(world, back)
    with pytest.raises(CrierError, match="unknown or was already used"):
        finish(world, back)                        # a state works once
    late = approve(start(world))
    with pytest.raises(CrierError, match="expired .*10 minutes"):
        finish(world, late, now=world.clock() + timedelta(minutes=11))
    with pytest.raises(CrierError, match="unknown or was already used"):
        finish(world, late)                        # used up by the failed try too
    assert len(world.masto.oauth.tokens) == 1      # only the first exchange happened


def test_a_code_with_another_pkce_verifier_is_refused(world, key):
    """The code of one authorization sent back with the state of another: its verifier does
    not match the challenge the code was issued for, and the instance refuses."""
    first, second = approve(start(world)), approve(start(world))
    with pytest.raises(CrierError, match=r"refused exchanging the authorization code "
                                         r"\(HTTP 400: invalid_grant"):
        finish(world, {"state": second["state"], "code": first["code"]})
    assert connect.connected(world.store) == [] and not world.masto.oauth.tokens


def test_a_host_who_does_not_approve(world, key):
    world.masto.oauth.decision = "deny"
    back = approve(start(world))
    assert back["error"] == "access_denied" and "code" not in back
    with pytest.raises(CrierError, match="did not authorize crier .*access_denied"):
        finish(world, back, error=back["error"])
    assert connect.connected(world.store) == []


def test_instances_are_https_and_public(world, key):
    assert connect.instance_url("Mastodon.Social/") == "https://mastodon.social"
    for bad, says in (("http://mastodon.social", "https://"),
                      ("https://mastodon.social/@me", "address like"),
                      ("https://user:pw@mastodon.social", "address like"),
                      ("ftp://mastodon.social", "address like")):
        with pytest.raises(CrierError, match=says):
            connect.instance_url(bad)
    with pytest.raises(CrierError, match="https://"):  # loopback over http: only if allowed
        connect.start_mastodon(world.store, None, show_id=None, account="masto",
                               instance=world.masto.url, redirect_uri=CALLBACK, user_id=None,
                               now=world.clock())
    https_loopback = world.masto.url.replace("http://", "https://")
    with pytest.raises(CrierError, match="refused to connect: a loopback address"):
        connect.start_mastodon(world.store, None, show_id=None, account="masto",
                               instance=https_loopback, redirect_uri=CALLBACK, user_id=None,
                               now=world.clock())
    with pytest.raises(ValueError, match="guarded session"):
        start(world, session=requests.Session())   # a session that would go anywhere
    assert not [r for r in world.masto.requests if r["path"] == "/api/v1/apps"]
    assert raw_rows(world) == ""
    guarded = new_session(guard=True, allow_private=LOOPBACK)  # the web app's own session
    finish(world, approve(start(world, session=guarded)))


# -- secrets at rest ---------------------------------------------------------------------------
def test_no_secret_is_stored_in_clear_text(world, key):
    connect_masto(world)
    long_keys = {k: f"{k}-{'s3cr3t' * 5}" for k in X_KEYS}
    with XServer(**long_keys, username="TestShow") as x:
        assert connect.connect_x(world.store, None, show_id=None, account="x", keys=long_keys,
                                 now=world.clock(), api_base=x.url).username == "@TestShow"
    (app,) = world.masto.oauth.apps.values()
    rows = raw_rows(world)
    assert "masto" in rows and world.masto.url in rows       # the row is there...
    for secret in (issued(world), app["client_secret"], *long_keys.values()):
        assert secret not in rows                         # ...its secrets are not
    with world.store.tx() as c:
        sealed = c.execute(sa.select(connected_accounts.c.secret_enc).where(
            connected_accounts.c.account == "masto")).scalar()
    assert Vault(key).unseal(sealed) == {"access_token": issued(world)}


def test_without_a_secret_key_nothing_is_sent_or_stored(world, monkeypatch):
    monkeypatch.delenv("CRIER_SECRET_KEY", raising=False)
    for attempt in (lambda: start(world),
                    lambda: connect.connect_x(world.store, None, show_id=None, account="x",
                                              keys=X_KEYS, now=world.clock(),
                                              api_base=world.x.url)):
        with pytest.raises(VaultError, match="need CRIER_SECRET_KEY .*crier secret-key"):
            attempt()
    assert not world.masto.requests and raw_rows(world) == ""
    assert not [r for r in world.x.requests if "/users/me" in r["path"]]


def test_another_key_cannot_read_and_says_so(world, key, monkeypatch):
    connect_masto(world)
    monkeypatch.setenv("CRIER_SECRET_KEY", generate_key())
    settings = connect.with_connected(without_env_token(world), world.store)
    masto = settings.account("masto")
    assert masto.missing_secrets and not masto.secrets
    assert "CRIER_SECRET_KEY is not the key it was stored with" in masto.credentials
    checks = {c.name: c for c in run_checks(lambda: without_env_token(world))}
    assert not checks["account masto"].ok
    assert "not the key it was stored with" in checks["account masto"].detail
    assert issued(world) not in checks["account masto"].detail
    with pytest.raises(VaultError) as e:
        with world.store.tx() as c:
            Vault(generate_key()).decrypt(c.execute(sa.select(
                connected_accounts.c.secret_enc)).scalar())
    assert issued(world) not in str(e.value)
    # nothing is posted by an account whose secret cannot be read
    world.cycle()
    svc = service(world, without_env_token(world))
    new_episode(world)
    svc.poll(force=True)
    assert {o.account: o.status for o in svc.dispatch()}["masto"] == "pending"
    assert world.masto.statuses == []


def test_passphrases_and_keys():
    k = generate_key()
    assert key_from(k) == k.encode()
    phrase = "correct horse battery staple, and then some more words"
    assert key_from(phrase) == derive_key(phrase) != key_from(phrase + "!")
    assert Vault(phrase).decrypt(Vault(phrase).encrypt("s")) == "s"
    with pytest.raises(VaultError, match="at least 32 characters"):
        Vault("too short")
    assert "***" in repr(Vault(k)) and k not in repr(Vault(k))


def test_the_key_is_read_from_the_dotenv_next_to_the_config(tmp_path):
    k = generate_key()
    (tmp_path / ".env").write_text(f"CRIER_SECRET_KEY={k}\n")
    sealed = Vault(k).encrypt("t")
    assert Vault.from_env({}, dotenv=tmp_path / ".env").decrypt(sealed) == "t"
    with pytest.raises(VaultError, match="not set"):
        Vault.from_env({}, dotenv=tmp_path / "missing.env")


# -- X -----------------------------------------------------------------------------------------
def test_x_keys_are_verified_on_save(world, key):
    wrong = {**X_KEYS, "consumer_secret": "not-it"}
    with pytest.raises(AuthError):
        connect.connect_x(world.store, None, show_id=None, account="x", keys=wrong,
                          now=world.clock(), api_base=world.x.url)
    with pytest.raises(CrierError, match="missing access_token_secret"):
        connect.connect_x(world.store, None, show_id=None, account="x",
                          keys={**X_KEYS, "access_token_secret": " "}, now=world.clock(),
                          api_base=world.x.url)
    assert connect.connected(world.store) == []
    got = connect.connect_x(world.store, None, show_id=None, account="x", keys=X_KEYS,
                            now=world.clock(), api_base=world.x.url)
    assert (got.platform, got.username, got.instance) == ("x", "@TestShow", world.x.url)
    # posted with the connected keys when the environment has none
    world.cycle()
    settings = dataclasses.replace(world.settings, accounts=tuple(
        dataclasses.replace(a, secrets={}, missing_secrets=("CRIER_X_CONSUMER_KEY",),
                            credentials="") if a.platform == "x" else a
        for a in world.settings.accounts))
    svc = service(world, settings)
    new_episode(world)
    svc.poll(force=True)
    assert {o.account: o.status for o in svc.dispatch()}["x"] == "sent"
    assert len(world.x.tweets) == 1


# -- disconnecting, shows ----------------------------------------------------------------------
def test_disconnect_removes_it(world, key):
    connect_masto(world)
    assert connect.disconnect(world.store, "masto") is True
    assert connect.connected(world.store) == [] and "masto" not in raw_rows(world).split('"')
    settings = connect.with_connected(without_env_token(world), world.store)
    assert settings.account("masto").missing_secrets == ("CRIER_MASTO_ACCESS_TOKEN",)
    assert connect.disconnect(world.store, "masto") is False


def test_an_account_of_one_show_is_not_another_shows(world, key):
    finish(world, approve(start(world, show_id=1)))
    assert [a.show_id for a in connect.connected(world.store, show_id=1)] == [1]
    assert connect.connected(world.store, show_id=2) == []
    other = connect.with_connected(without_env_token(world), world.store, show_id=2)
    assert other.account("masto").missing_secrets         # show 2's "masto" is not show 1's
    with pytest.raises(CrierError, match="already connected for another show"):
        finish(world, approve(start(world, show_id=2)))
    assert connect.disconnect(world.store, "masto", show_id=2) is False
    assert [a.show_id for a in connect.connected(world.store)] == [1]


# -- the command line --------------------------------------------------------------------------
def test_the_command_line_says_where_credentials_come_from(world, key, monkeypatch, tmp_path):
    cli = host_cli(world, monkeypatch, tmp_path)
    monkeypatch.delenv("CRIER_MASTO_ACCESS_TOKEN")
    out = cli("run", "--once", code=1).output
    assert "no credentials for account 'masto'" in out and "web app" in out
    connect_masto(world)
    checks = {c["name"]: c for c in json.loads(cli("check", "--json").output)}
    assert checks["account masto"]["ok"]
    assert "credentials: connected in the web app" in checks["account masto"]["detail"]
    assert "credentials: environment" in checks["account x"]["detail"]
    cli("run", "--once")
    status = cli("status").output
    assert "Account masto (mastodon): credentials: connected in the web app" in status
    assert "Account x (x): credentials: environment" in status
    assert issued(world) not in status + json.dumps(checks)
    printed = cli("secret-key").output.strip()
    assert printed.startswith("CRIER_SECRET_KEY=")
    assert key_from(printed.split("=", 1)[1]) == printed.split("=", 1)[1].encode()


# -- a running worker --------------------------------------------------------------------------
def test_a_running_worker_takes_up_an_account_connected_meanwhile(world, key, monkeypatch,
                                                                  tmp_path):
    """The worker serves a show whose Mastodon account has no token: the announcement waits,
    stopped on credentials. The host connects the account in the web app: at its next tick
    the worker builds the show again and the waiting post goes out, with the connected token,
    at once (no backoff to sit out)."""
    from bot.deployment import load_deployment
    from bot.fleet import Fleet
    monkeypatch.setenv("DATABASE_URL", world.db_url)
    monkeypatch.delenv("CRIER_MASTO_ACCESS_TOKEN", raising=False)
    cfg = tmp_path / "crier.toml"
    cfg.write_text(f'show = "The Test Show"\nfeed = "{world.settings.feed}"\n'
                   f'[[accounts]]\nplatform = "mastodon"\nname = "masto"\n'
                   f'instance = "{world.masto.url}"\ntimeout = 2\n')
    fleet = Fleet(world.store, lambda: load_deployment(cfg), clock=world.clock)
    try:
        fleet.poll(force=True)                        # the back catalogue is known
        new_episode(world)
        world.clock.advance(hours=1)
        fleet.poll()
        (waiting,) = [o for o in fleet.dispatch() if o.account == "masto"]
        assert waiting.status == "pending" and "CRIER_MASTO_ACCESS_TOKEN" in waiting.error
        assert world.masto.statuses == []
        (svc,) = fleet.services
        world.clock.advance(seconds=5)
        finish(world, approve(start(world, show_id=svc.show_id)))
        world.clock.advance(seconds=5)
        fleet.poll()                                  # a worker tick: the show is rebuilt
        sent = [o for o in fleet.dispatch() if o.account == "masto"]
        assert [o.status for o in sent] == ["sent"]
        assert len(world.masto.statuses) == 1
        post = [r for r in world.masto.requests if r["path"] == "/api/v1/statuses"][-1]
        assert post["headers"]["Authorization"] == f"Bearer {issued(world)}"
    finally:
        fleet.close()
