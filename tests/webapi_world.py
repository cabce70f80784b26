"""One control room with something in it, shared by the JSON API tests (tests/test_web_api*.py)
per module and per database: three shows, `alpha` (a real Mastodon account on the local test
server, whose first post is refused so one delivery has failed, plus two dry-run accounts;
three episodes held by the flood guard; two listener posts proposed by the community watch),
`beta` (dry run only) and `gamma` (a private feed whose URL holds a token, unreachable); users
`hana` (host, every show), `cole` (co-host of alpha) and `bert` (host of beta only), each with
an API token. Every answer any client got is kept in `answers`, so a test can check that none
of them ever held a secret."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss
from tests.webapp import WebApp
from tests.world import Clock

M_TOKEN = "mastodon-alpha-secret-token-4242"
NOTIFY_TOKEN = "notifysecret0123456789"
NOTIFY_URL = f"json://127.0.0.1:9/hooks/{NOTIFY_TOKEN}"
FEED_TOKEN = "feedsecret-0123456789"   # a private feed's URL carries it; its errors quote it
ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "config"


def config_text(tmp: Path, masto_url: str) -> str:
    (tmp / "beta.xml").write_text((BUNDLED / "sample-feed.xml").read_text())
    return f'''notify = ["{NOTIFY_URL}"]

[[shows]]
show = "Alpha Show"
slug = "alpha"
feed = "{tmp / 'alpha.xml'}"
timezone = "Europe/Berlin"
first_run_backfill = 1
max_new_per_poll = 2
[shows.promos]
min_gap = 0
[shows.community]
enabled = true
account = "m-alpha"
hashtags = ["AlphaShow"]
[[shows.accounts]]
platform = "mastodon"
name = "m-alpha"
instance = "{masto_url}"
timeout = 2
[[shows.accounts]]
platform = "mastodon"
name = "d-alpha"
instance = "https://social.example"
dry_run = true
max_characters = 500
[[shows.accounts]]
platform = "x"
name = "x-alpha"
dry_run = true

[[shows]]
show = "Beta Show"
slug = "beta"
feed = "{tmp / 'beta.xml'}"
timezone = "America/New_York"
[[shows.accounts]]
platform = "mastodon"
name = "m-beta"
instance = "https://social.example"
dry_run = true
max_characters = 500

[[shows]]
show = "Gamma Show"
slug = "gamma"
feed = "http://127.0.0.1:9/private.xml?token={FEED_TOKEN}"
[[shows.accounts]]
platform = "mastodon"
name = "m-gamma"
instance = "https://social.example"
dry_run = true
max_characters = 500
'''


class ApiWorld:
    """What the tests use: `web` (tests.webapp.WebApp), `masto`, `clock`, `tokens` by user,
    `ids` of things made, `answers` (every response body seen)."""

    def __init__(self, web: WebApp, masto: MastodonServer, clock: Clock, tmp: Path):
        self.web, self.masto, self.clock, self.tmp = web, masto, clock, tmp
        self.tokens: dict[str, str] = {}
        self.users: dict = {}
        self.ids: dict[str, int] = {}
        self.answers: list[str] = []

    def client(self, name: str | None, token: str | None = None) -> httpx.Client:
        """A client as user `name` (Bearer token), or with `token`, or anonymous; every
        answer it gets is recorded."""
        c = self.web.client(token or (self.tokens[name] if name else None))
        c.event_hooks["response"].append(self._record)
        return c

    def login(self, name: str) -> tuple[httpx.Client, str]:
        c, csrf = self.web.login(name)
        c.event_hooks["response"].append(self._record)
        return c, csrf

    def _record(self, response: httpx.Response) -> None:
        response.read()
        self.answers.append(response.text)

    def service(self, slug: str):
        return self.web.app.state.crier.service(slug, self.users["hana"])


def _setup(w: ApiWorld) -> None:
    web, clock = w.web, w.clock
    for name, role, shows in (("hana", "host", ()), ("cole", "cohost", ("alpha",)),
                              ("bert", "host", ("beta",))):
        w.users[name] = web.add_user(name, role=role, shows=shows)
        w.tokens[name] = web.token(name)
    items = [item(n, published=clock.now - timedelta(days=7 * (10 - n))) for n in range(1, 4)]
    (w.tmp / "alpha.xml").write_bytes(rss(items, title="Alpha Show"))
    # the refusal quotes the token (a careless server): it must not be passed on
    w.masto.fail_next(422, body={"error": f"Validation failed: Text looks like spam ({M_TOKEN})"})
    with w.service("alpha") as svc:
        svc.poll(force=True)          # episodes 1-2 known, 3 announced (backfill 1)
        svc.dispatch()                # m-alpha refused (failed), the dry runs recorded
    items += [item(n, published=clock.now - timedelta(days=10 - n)) for n in range(4, 7)]
    (w.tmp / "alpha.xml").write_bytes(rss(items, title="Alpha Show"))
    clock.advance(hours=1)
    w.masto.add_post("fan@other.example", "Loved #AlphaShow this week", tags=("AlphaShow",))
    w.masto.add_post("meh@other.example", "Hm, #AlphaShow", tags=("AlphaShow",))
    with w.service("alpha") as svc:
        svc.poll(force=True)          # episodes 4-6: three new > 2: held
        svc.community_scan()
        held = [e.id for e in svc.store.episodes_with_status("held")]
        announced = svc.store.episodes_with_status("announced")
        community = [r.id for r in svc.community_list()]
        from bot.store import deliveries
        failed = svc.store.deliveries_where(deliveries.c.status == "failed")
    with w.service("beta") as svc:
        svc.poll(force=True)
        svc.dispatch()
        beta_episode = svc.store.latest_episode(svc.store.all_feeds()[0].id).id
    with w.service("gamma") as svc:
        svc.poll(force=True)          # fails: its error names the feed's URL (and token)
        assert FEED_TOKEN in svc.store.all_feeds()[0].last_error
    assert len(held) == 3 and len(announced) == 1 and len(failed) == 1 and len(community) == 2
    w.ids.update(held_release=held[0], held_dismiss=held[1], held_kept=held[2],
                 announced=announced[0].id, failed=failed[0].id, approve=community[0],
                 reject=community[1], beta_episode=beta_episode)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request, tmp_path_factory):
    """The shared world, once per test module and database."""
    tmp = tmp_path_factory.mktemp("webapi")
    db_url = (f"sqlite:///{tmp / 'crier.db'}" if request.param == "sqlite"
              else request.getfixturevalue("postgres").new_database())
    clock = Clock()
    with pytest.MonkeyPatch.context() as mp, MastodonServer(token=M_TOKEN) as masto:
        mp.setenv("CRIER_M_ALPHA_ACCESS_TOKEN", M_TOKEN)
        mp.setenv("DATABASE_URL", db_url)
        mp.delenv("CRIER_CONFIG", raising=False)
        cfg = tmp / "crier.toml"
        cfg.write_text(config_text(tmp, masto.url))
        with WebApp(db_url, cfg, clock=clock) as web:
            w = ApiWorld(web, masto, clock, tmp)
            w.config = str(cfg)
            _setup(w)
            yield w
