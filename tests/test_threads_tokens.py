"""Threads tokens (bot/threads_tokens.py, bot.connect.connect_threads) against the contract
server, on SQLite and PostgreSQL: refreshed before they expire and kept encrypted where the web
app keeps connected secrets, used afterwards; the host told a week before a token expires and
when a refresh fails; without CRIER_SECRET_KEY it says so and keeps the environment's token."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot import connect
from bot.config import Account, Secret, Settings
from bot.errors import AuthError
from bot.models import Post
from bot.platforms.threads import ThreadsPublisher
from bot.service import Service
from bot.store import Store, connected_accounts
from bot.threads_tokens import StoredToken, refresh_threads_tokens, token_store_for
from bot.vault import Vault, generate_key
from tests.fakes.threads_server import ThreadsServer
from tests.fakes.webhook_server import WebhookServer

TOKEN = "env-threads-token-ABCDEFGHIJ"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, db_url, tmp_path, srv, hook, clock):
        self.srv, self.hook, self.clock = srv, hook, clock
        self.store = Store(db_url)
        self.store.migrate()
        self.settings = Settings(
            path=tmp_path / "crier.toml", show="Token Show", feed="http://127.0.0.1:9/feed",
            accounts=(Account(name="threads", platform="threads", api_base=srv.url,
                              timeout=2.0, secrets={"access_token": Secret(TOKEN)},
                              credentials="environment"),),
            notify=(hook.url(),), database_url=db_url)
        self.svc: Service | None = None
        self.start()

    def start(self, env_token: str = TOKEN) -> Service:
        """A fresh process: its publisher gets its token_store as bot.publishers wires it."""
        if self.svc is not None:
            self.svc.notifier.close(5)
        a = dataclasses.replace(self.settings.accounts[0],
                                secrets={"access_token": Secret(env_token)})
        self.settings = dataclasses.replace(self.settings, accounts=(a,))
        self.svc = Service(self.settings, self.store, clock=self.clock, publishers={})
        tokens = token_store_for(self.store, self.settings, a, show_id=self.svc.show_id,
                                 clock=self.clock)
        self.svc.publishers["threads"] = ThreadsPublisher(
            "threads", access_token=env_token, api_base=self.srv.url, token_store=tokens,
            clock=self.clock, timeout=2.0)
        return self.svc

    def check(self) -> dict:
        [report] = refresh_threads_tokens(self.svc)
        return report

    def told(self) -> list[dict]:
        assert self.svc.notifier.flush(5)
        return self.hook.messages()

    def stored(self) -> list[dict]:
        with self.store.tx() as c:
            return [dict(r) for r in c.execute(sa.select(connected_accounts)).mappings()]


@pytest.fixture
def key(monkeypatch) -> str:
    k = generate_key()
    monkeypatch.setenv("CRIER_SECRET_KEY", k)
    return k


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def w(db_url, tmp_path, clock, key):
    with ThreadsServer(access_token=TOKEN, clock=clock,
                       token_issued_at=clock.now - timedelta(days=40)) as srv, \
            WebhookServer() as hook:
        world = World(db_url, tmp_path, srv, hook, clock)
        yield world
        world.svc.notifier.close(5)
        world.store.close()


def titles(w) -> list[str]:
    return [m.get("title", "") for m in w.told()]


def test_an_env_token_is_refreshed_kept_encrypted_and_used_afterwards(w, key, clock):
    report = w.check()
    assert report["action"] == "refreshed"
    assert report["expires_at"] == clock.now + timedelta(days=60)   # learnt from expires_in
    [row] = w.stored()
    new = next(t for t in w.srv.tokens if t != TOKEN)
    assert row["platform"] == "threads" and new not in row["secret_enc"]
    sealed = Vault(key).unseal(row["secret_enc"])
    assert sealed["access_token"] == new and sealed["origin"] == "environment"
    w.srv.revoke(TOKEN)                              # only the refreshed token works now
    w.start()                                        # a restart: the env still has the old one
    got = w.svc.publishers["threads"].publish(Post(text="After the refresh"), "k1")
    assert got.remote_id == w.srv.posts[0]["id"]
    assert not w.told()


def test_refreshed_again_only_when_a_month_is_left(w, clock):
    assert w.check()["action"] == "refreshed"
    clock.now += timedelta(days=29)
    assert w.check()["action"] == "not due"
    clock.now += timedelta(days=2)
    assert w.check()["action"] == "refreshed"
    assert len(w.srv.tokens) == 3


def test_the_host_is_told_a_week_before_the_token_expires(w, clock):
    assert w.check()["action"] == "refreshed"
    clock.now += timedelta(days=54)                  # six days left, and Meta is down
    w.srv.fail_next("refresh", status=503, count=2)
    report = w.check()
    assert report["action"] == "failed"
    assert titles(w) == ["crier: the Threads token of threads expires in 6 days"]
    w.check()                                        # told once, not every hour
    assert len(w.told()) == 1
    assert w.check()["action"] == "refreshed"        # Meta is back: refreshed, nothing more
    assert len(w.told()) == 1


def test_no_warning_while_refreshes_work(w, clock):
    for _ in range(5):
        w.check()
        clock.now += timedelta(days=20)
    assert not w.told() and w.check()["action"] in ("refreshed", "not due")


def test_a_failed_refresh_is_told_once_and_again_after_it_worked(w, clock):
    w.srv.revoke(TOKEN)
    report = w.check()
    assert report["action"] == "failed" and "190" not in report["error"]
    assert titles(w) == ["crier: the Threads token of threads could not be refreshed"]
    w.check()
    assert len(w.told()) == 1
    w.srv.tokens[TOKEN]["revoked"] = False
    assert w.check()["action"] == "refreshed"
    clock.now += timedelta(days=31)
    w.srv.revoke(next(t for t in w.srv.tokens if t != TOKEN))
    assert w.check()["action"] == "failed"
    assert len(w.told()) == 2                        # a new run of failures is news again
    assert TOKEN not in str(w.told())


def test_a_young_env_token_is_tried_again_a_day_later_without_alarm(w, clock):
    w.srv.issue_token(TOKEN, issued_at=clock.now - timedelta(hours=2))
    assert w.check()["action"] == "failed"
    clock.now += timedelta(hours=1)
    assert w.check()["action"] == "not due"          # not asked again within the day
    clock.now += timedelta(hours=24)
    assert w.check()["action"] == "refreshed"
    assert not w.told()


def test_without_a_secret_key_it_says_so_and_keeps_the_env_token(w, monkeypatch):
    monkeypatch.delenv("CRIER_SECRET_KEY")
    w.start()
    report = w.check()
    assert report["action"] == "no key"
    [message] = w.told()
    assert "CRIER_SECRET_KEY" in message["message"] and "crier secret-key" in message["message"]
    assert w.check()["action"] == "no key" and len(w.told()) == 1
    assert not w.stored() and len(w.srv.tokens) == 1  # nothing refreshed, nothing lost
    w.svc.publishers["threads"].publish(Post(text="Still posting"), "k")
    assert len(w.srv.posts) == 1


def test_a_new_env_token_wins_over_one_refreshed_from_the_old(w, clock):
    assert w.check()["action"] == "refreshed"
    w.srv.issue_token("brand-new-env-token", issued_at=clock.now - timedelta(days=3))
    w.start(env_token="brand-new-env-token")
    assert w.svc.publishers["threads"].token() == "brand-new-env-token"
    assert w.check()["action"] == "refreshed"        # and it is refreshed in its turn
    [row] = w.stored()
    assert row["account"] == "threads"


def test_an_expired_token_is_told_at_once(w, clock):
    assert w.check()["action"] == "refreshed"
    clock.now += timedelta(days=61)
    assert w.check()["action"] == "expired"
    assert titles(w) == ["crier: the Threads token of threads could not be refreshed"]


def test_a_pasted_token_is_verified_stored_and_refreshed_a_day_later(w, key, clock):
    w.srv.issue_token("pasted-token", issued_at=clock.now)
    with pytest.raises(AuthError):
        connect.connect_threads(w.store, None, show_id=w.svc.show_id, account="threads",
                                token="wrong", now=clock.now, api_base=w.srv.url)
    assert not w.stored()
    done = connect.connect_threads(w.store, None, show_id=w.svc.show_id, account="threads",
                                   token="pasted-token", now=clock.now, api_base=w.srv.url)
    assert done.username == "@tbsocialist" and done.platform == "threads"
    [row] = w.stored()
    assert "pasted-token" not in row["secret_enc"]
    # an account without a token in the environment uses the pasted one
    bare = dataclasses.replace(w.settings.accounts[0], secrets={}, credentials="",
                               missing_secrets=("CRIER_THREADS_ACCESS_TOKEN",))
    settings = connect.with_connected(dataclasses.replace(w.settings, accounts=(bare,)),
                                      w.store, show_id=w.svc.show_id)
    assert dict(settings.accounts[0].secrets) == {"access_token": "pasted-token"}
    tokens = StoredToken(w.store, "threads", show_id=w.svc.show_id, vault=Vault(key),
                         clock=clock)
    assert tokens.get() == "pasted-token"
    w.svc.settings = settings
    w.svc.publishers["threads"] = ThreadsPublisher("threads", access_token="pasted-token",
                                                   api_base=w.srv.url, token_store=tokens,
                                                   clock=clock)
    assert w.check()["action"] == "not due"          # Meta refreshes tokens a day old
    clock.now += timedelta(hours=25)
    assert w.check()["action"] == "refreshed"
    assert tokens.get() not in (None, "pasted-token")
    assert tokens.record().origin == "web"


def test_the_worker_job_finds_the_shows_with_threads_accounts(w):
    from types import SimpleNamespace

    from bot.threads_tokens import threads_show_ids
    sid = w.svc.show_id
    assert threads_show_ids(w.store, SimpleNamespace(shows=(w.settings,))) == [sid]
    none = dataclasses.replace(w.settings, accounts=())
    assert threads_show_ids(w.store, SimpleNamespace(shows=(none,))) == []
