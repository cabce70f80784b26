"""Many shows in one deployment (issue 14): the registry, `--show`, `crier shows …`, config
sync, and each show's posts on its own accounts only — on SQLite and PostgreSQL, with the
real CLI, a loopback feed server and local Mastodon and X servers."""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bot.cli import main
from bot.deployment import load_deployment
from bot.shows import ensure_show, list_shows, sync_config
from bot.store import Store, deliveries, feeds, promos, shows
from tests.fakes.feed_server import FeedServer
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.feedgen import item, rss

X_KEYS = dict(consumer_key="ck", consumer_secret="cs", access_token="at",
              access_token_secret="ats")
SLUGS = ("alpha", "bravo", "charlie")


class Net:
    """Three shows' worth of servers: one feed server (a path per show), and for each show
    its own Mastodon and X servers; config files naming them; `crier` run on them."""

    def __init__(self, stack: ExitStack, tmp: Path, db_url: str, monkeypatch):
        self.tmp, self.db_url = tmp, db_url
        self.feed = stack.enter_context(FeedServer())
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.masto, self.x, self.items = {}, {}, {}
        for slug in SLUGS:
            self.masto[slug] = stack.enter_context(MastodonServer(token=f"tok-{slug}"))
            self.x[slug] = stack.enter_context(XServer(**X_KEYS, username=slug))
            self.items[slug] = [item(n, published=self.now - timedelta(days=7 * (10 - n)),
                                     title=f"{slug} episode {n}") for n in range(1, 4)]
            self.publish(slug)
            monkeypatch.setenv(f"CRIER_M_{slug.upper()}_ACCESS_TOKEN", f"tok-{slug}")
            for key, value in X_KEYS.items():
                monkeypatch.setenv(f"CRIER_X_{slug.upper()}_{key.upper()}", value)
        monkeypatch.setenv("DATABASE_URL", db_url)
        monkeypatch.chdir(tmp)
        (tmp / "shows").mkdir()
        self.cfg = tmp / "crier.toml"
        self.cfg.write_text('include = ["shows/*.toml"]\n')
        for slug in SLUGS:
            self.write_show(slug)

    def publish(self, slug: str) -> None:
        self.feed.set_feed(f"/{slug}.xml", rss(self.items[slug]))

    def new_episode(self, slug: str, n: int) -> str:
        title = f"{slug} episode {n}"
        self.items[slug].append(item(n, published=datetime.now(UTC) - timedelta(minutes=5),
                                     title=title))
        self.publish(slug)
        return title

    def show_text(self, slug: str, extra: str = "") -> str:
        return f"""show = "{slug.title()} Show"
slug = "{slug}"
feed = "{self.feed.url}/{slug}.xml"
{extra}
[promos]
min_gap = 0

[[accounts]]
platform = "mastodon"
name = "m-{slug}"
instance = "{self.masto[slug].url}"
timeout = 2

[[accounts]]
platform = "x"
name = "x-{slug}"
api_base = "{self.x[slug].url}"
timeout = 2
"""

    def write_show(self, slug: str, folder: str = "shows", extra: str = "") -> Path:
        path = self.tmp / folder / f"{slug}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(self.show_text(slug, extra))
        return path

    def cli(self, *args, code=0):
        result = CliRunner().invoke(main, ["--config", str(self.cfg), *args])
        assert result.exit_code == code, result.output
        return result.output

    def later(self) -> None:
        """Time passes: every feed is due again (`run --once` polls the shows that are)."""
        store = self.store()
        try:
            with store.tx() as c:
                c.execute(feeds.update().values(next_poll_at=datetime.now(UTC)
                                                - timedelta(seconds=1)))
        finally:
            store.close()

    def posted(self, slug: str) -> tuple[list[str], list[str]]:
        return ([s["text"] for s in self.masto[slug].statuses],
                [t["text"] for t in self.x[slug].tweets])

    def store(self) -> Store:
        s = Store(self.db_url)
        s.migrate()
        return s


@pytest.fixture
def net(db_url, tmp_path, monkeypatch):
    with ExitStack() as stack:
        yield Net(stack, tmp_path, db_url, monkeypatch)


def test_three_shows_each_episode_once_on_its_own_accounts_only(net):
    net.cli("run", "--once")                         # first run: every show's baseline
    assert all(net.posted(s) == ([], []) for s in SLUGS)
    titles = {s: net.new_episode(s, 4) for s in SLUGS}
    net.cli("run", "--once")                         # not due yet: nothing polled
    assert all(net.posted(s) == ([], []) for s in SLUGS)
    net.later()
    net.cli("run", "--once")
    for slug in SLUGS:
        masto, x = net.posted(slug)
        assert len(masto) == 1 and len(x) == 1, (slug, masto, x)
        assert titles[slug] in masto[0] and titles[slug] in x[0]
        others = [t for s, t in titles.items() if s != slug]
        assert not any(t in masto[0] or t in x[0] for t in others)
    net.later()
    net.cli("run", "--once")                         # nothing twice
    assert all(len(net.posted(s)[0]) == 1 and len(net.posted(s)[1]) == 1 for s in SLUGS)
    store = net.store()
    try:
        with store.tx() as c:                        # every row belongs to its show
            by_show = dict(c.execute(sa.select(shows.c.slug, shows.c.id)).all())
            for d in c.execute(sa.select(deliveries.c.account, deliveries.c.show_id)):
                assert d.account.endswith(next(s for s, i in by_show.items()
                                               if i == d.show_id))
            assert sorted(c.execute(sa.select(feeds.c.show_id)).scalars()) == \
                sorted(by_show.values())
    finally:
        store.close()


def test_per_show_commands_need_show_with_several(net):
    net.cli("run", "--once")
    for args in (("queue", "list"), ("history",), ("community", "list"), ("release", "--all")):
        out = net.cli(*args, code=1)
        assert "--show" in out and "alpha, bravo, charlie" in out, (args, out)
        assert "Traceback" not in out
    out = net.cli("queue", "list", "--show", "nope", code=1)
    assert "no show 'nope'" in out
    net.cli("queue", "list", "--show", "bravo")
    lines = net.cli("status").strip().splitlines()
    assert [ln.split()[0] for ln in lines[:3]] == list(SLUGS)
    assert "last poll" in lines[0] and "failed deliveries" in lines[0]
    health = json.loads(net.cli("status", "--json"))
    assert [h["slug"] for h in health] == list(SLUGS)
    assert "Feed " in net.cli("status", "--show", "alpha")
    out = net.cli("preview", "--show", "bravo")
    assert "bravo episode 3" in out and "m-bravo" in out and "alpha" not in out


def test_promos_go_out_on_their_own_show_only(net):
    net.cli("run", "--once")
    net.cli("queue", "add", "Bravo's promo", "--show", "bravo")
    assert "Bravo's promo" in net.cli("queue", "list", "--show", "bravo")
    assert "Bravo's promo" not in net.cli("queue", "list", "--show", "alpha")
    net.cli("run", "--once")
    assert net.posted("bravo") == (["Bravo's promo"], ["Bravo's promo"])
    assert net.posted("alpha") == ([], []) and net.posted("charlie") == ([], [])


def test_queue_commands_refuse_another_shows_promo(net):
    """`queue edit/cancel/pause/resume ID --show S` find the promo in show S only: an id of
    another show's promo is refused (one line naming the show), and that promo is untouched."""
    net.cli("run", "--once")
    net.cli("queue", "add", "Bravo's weekly promo", "--every", "monday 09:00", "--show", "bravo")
    pid = json.loads(net.cli("queue", "list", "--json", "--show", "bravo"))[0]["id"]
    for args in (("edit", str(pid), "--text", "Alpha took it"), ("cancel", str(pid)),
                 ("pause", str(pid)), ("show", str(pid))):
        out = net.cli("queue", *args, "--show", "alpha", code=1)
        assert f"no queued post {pid} in show alpha" in out, (args, out)
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    [row] = json.loads(net.cli("queue", "list", "--json", "--show", "bravo"))
    assert row["status"] == "active" and row["text"] == "Bravo's weekly promo"
    net.cli("queue", "pause", str(pid), "--show", "bravo")
    out = net.cli("queue", "resume", str(pid), "--show", "charlie", code=1)
    assert f"no queued post {pid} in show charlie" in out
    [row] = json.loads(net.cli("queue", "list", "--json", "--show", "bravo"))
    assert row["status"] == "paused"
    net.cli("queue", "resume", str(pid), "--show", "bravo")
    net.cli("queue", "cancel", str(pid), "--show", "bravo")


def test_status_health_line_per_show(net):
    """`crier status` with several shows: one line each with its last poll, errors in a row
    (and the last one), failed deliveries and held episodes, each counted in its own show."""
    net.cli("run", "--once")
    for n in range(4, 9):                          # five at once: the flood guard holds them
        net.new_episode("alpha", n)
    net.new_episode("charlie", 4)
    net.feed.fail_next("/bravo.xml", status=500)   # bravo's feed fails once
    net.x["charlie"].fail_next(403, body={"title": "Forbidden", "detail": "Not today",
                                          "status": 403, "type": "about:blank"})
    net.later()
    net.cli("run", "--once", code=1)               # a poll failed: exit 1
    lines = {ln.split()[0]: ln for ln in net.cli("status").strip().splitlines()[:3]}
    assert "0 error(s) in a row, 0 failed deliveries, 5 held episode(s)" in lines["alpha"]
    assert "1 error(s) in a row, 0 failed deliveries, 0 held episode(s)" in lines["bravo"]
    assert "500" in lines["bravo"] and "last error" in lines["bravo"]
    assert "0 error(s) in a row, 1 failed deliveries, 0 held episode(s)" in lines["charlie"]
    for line in lines.values():
        assert "last poll 20" in line
    health = {h["slug"]: h for h in json.loads(net.cli("status", "--json"))}
    assert (health["alpha"]["held"], health["bravo"]["error_count"],
            health["charlie"]["failed"]) == (5, 1, 1)
    assert health["bravo"]["last_poll_at"] is not None


def test_a_show_removed_with_deliveries_pending_keeps_its_history(net):
    net.cli("run", "--once")
    net.new_episode("charlie", 4)
    net.later()
    net.x["charlie"].fail_next(503)                   # X is down: that delivery waits
    net.cli("run", "--once")
    assert len(net.posted("charlie")[0]) == 1 and net.posted("charlie")[1] == []
    (net.tmp / "shows" / "charlie.toml").unlink()    # the config no longer declares it
    net.new_episode("charlie", 5)
    net.later()
    net.cli("run", "--once")
    assert net.posted("charlie") == (net.posted("charlie")[0][:1], [])  # not served
    listed = json.loads(net.cli("shows", "list", "--removed", "--json"))
    gone = next(r for r in listed if r["slug"] == "charlie")
    assert gone["removed_at"] is not None
    assert "charlie" not in net.cli("shows", "list")
    store = net.store()
    try:
        with store.tx() as c:
            rows = c.execute(sa.select(deliveries.c.status, deliveries.c.last_error).where(
                deliveries.c.show_id == gone["id"])).all()
    finally:
        store.close()
    assert sorted(r.status for r in rows) == ["cancelled", "sent"]
    assert all("show removed" in r.last_error for r in rows if r.status == "cancelled")
    net.write_show("charlie")                          # back: the same show, its history
    assert "charlie" in net.cli("shows", "list")
    assert json.loads(net.cli("shows", "list", "--json"))[2]["id"] == gone["id"]


def test_import_list_remove(net):
    for slug in ("bravo", "charlie"):                  # the config keeps only alpha
        shutil.move(net.tmp / "shows" / f"{slug}.toml", net.tmp / f"{slug}.toml")
        net.write_show(slug, folder="imports")
    net.cli("run", "--once")
    assert "imported" not in net.cli("shows", "list")
    out = net.cli("shows", "import", str(net.tmp / "imports"))
    assert "2 show file(s) read" in out and "2 added" in out
    assert "0 added, 0 changed, 2 unchanged" in net.cli("shows", "import",
                                                        str(net.tmp / "imports"))
    listed = {r["slug"]: r["source"] for r in json.loads(net.cli("shows", "list", "--json"))}
    assert listed == {"alpha": "config", "bravo": "import", "charlie": "import"}
    assert "--show" in net.cli("queue", "list", code=1)
    net.cli("run", "--once")                           # imported shows: their baseline
    t = net.new_episode("charlie", 4)
    net.later()
    net.cli("run", "--once")
    assert t in net.posted("charlie")[0][0] and net.posted("bravo") == ([], [])
    assert "declared by the config" in net.cli("shows", "remove", "alpha", code=1)
    assert "removed" in net.cli("shows", "remove", "charlie")
    assert "no show 'charlie'" in net.cli("shows", "remove", "charlie", code=1)
    assert set(json.loads(net.cli("shows", "list", "--json"))[i]["slug"]
               for i in range(2)) == {"alpha", "bravo"}
    net.new_episode("charlie", 5)
    net.later()
    net.cli("run", "--once")
    assert len(net.posted("charlie")[0]) == 1          # a removed show is not served
    # a bad file: one line naming it, nothing imported
    (net.tmp / "imports" / "zulu.toml").write_text('show = "Zulu"\nfeed = 3\n')
    out = net.cli("shows", "import", str(net.tmp / "imports"), code=1)
    assert "zulu.toml" in out and "Traceback" not in out
    # an imported show may not take a config show's slug
    (net.tmp / "imports" / "zulu.toml").write_text(net.show_text("alpha"))
    assert "declared by the config" in net.cli("shows", "import",
                                               str(net.tmp / "imports" / "zulu.toml"),
                                               code=1)


def test_config_sync_adds_changes_removes_only_config_shows(net):
    store = net.store()
    try:
        dep = load_deployment(net.cfg)
        r = sync_config(store, dep.shows)
        assert sorted(r.added) == list(SLUGS) and not r.changed and not r.removed
        assert not any((r := sync_config(store, dep.shows)).added or r.changed)
        net.write_show("bravo", extra="poll_interval = 600")
        (net.tmp / "shows" / "charlie.toml").unlink()
        r = sync_config(store, load_deployment(net.cfg).shows)
        assert r.changed == ["bravo"] and r.removed == ["charlie"] and not r.added
        with store.tx() as c:                           # an imported show is left alone
            c.execute(shows.insert().values(slug="imp", name="Imp", source="import",
                                            created_at=net.now, updated_at=net.now))
        r = sync_config(store, load_deployment(net.cfg).shows)
        assert not (r.added or r.changed or r.removed)
        assert {s["slug"] for s in list_shows(store)} == {"alpha", "bravo", "imp"}
    finally:
        store.close()


def old_database(db_url: str) -> None:
    """A database at 0005 (before the registry) with a feed, an episode, a pending
    announcement and a promo, written as that schema wrote them."""
    from alembic import command
    from alembic.config import Config

    from bot.store import MIGRATIONS
    store = Store(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
    now = datetime.now(UTC).replace(microsecond=0)
    with store.engine.begin() as c:
        ins = {"t": now.replace(tzinfo=None) if store.dialect == "sqlite" else now}
        c.execute(sa.text("INSERT INTO feeds (id, url, title, baseline_done, error_count, "
                          "created_at) VALUES (1, 'http://127.0.0.1:9/f.xml', 'Old Show', "
                          ":b, 0, :t)"), {**ins, "b": True})
        c.execute(sa.text("INSERT INTO episodes (id, feed_id, title, status, first_seen_at, "
                          "data) VALUES (1, 1, 'Ep', 'announced', :t, '{}')"), ins)
        c.execute(sa.text("INSERT INTO posts (id, kind, episode_id, dedupe_key, priority, "
                          "created_at) VALUES (1, 'announcement', 1, 'episode:1', 0, :t)"), ins)
        c.execute(sa.text("INSERT INTO deliveries (id, post_id, account, platform, status, "
                          "idempotency_key, attempts, needs_check, next_attempt_at, "
                          "created_at, updated_at) VALUES (1, 1, 'masto', 'mastodon', "
                          "'pending', 'k1', 0, :f, :t, :t, :t)"), {**ins, "f": False})
        c.execute(sa.text("INSERT INTO promos (id, kind, text, status, fit, fired, missed, "
                          "created_at, updated_at) VALUES (1, 'once', 'P', 'paused', :f, 0, "
                          "0, :t, :t)"), {**ins, "f": False})
        if store.dialect == "postgresql":  # ids written by hand: move the sequences past them
            for table in ("feeds", "episodes", "posts", "deliveries", "promos"):
                c.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1)"))
    store.close()


def test_an_old_single_show_database_is_upgraded(db_url, tmp_path, monkeypatch):
    """A database written by the schema before the registry (0005), with a feed, an
    episode, a pending announcement and a promo: after the upgrade it is one show's, named by
    the config's slug on first start, and crier goes on with it."""
    old_database(db_url)
    store = Store(db_url)
    store.migrate()
    try:
        (legacy,) = list_shows(store)
        assert legacy["slug"] == "show" and legacy["name"] == "Old Show"
        with store.tx() as c:
            for table in (feeds, deliveries, promos):
                assert set(c.execute(sa.select(table.c.show_id)).scalars()) == {legacy["id"]}
        (tmp_path / "crier.toml").write_text(
            'show = "The Old Show"\nfeed = "http://127.0.0.1:9/f.xml"\n'
            '[[accounts]]\nplatform = "mastodon"\nname = "masto"\n'
            'instance = "http://127.0.0.1:9"\ndry_run = true\n')
        dep = load_deployment(tmp_path / "crier.toml", env={"DATABASE_URL": db_url})
        sync_config(store, dep.shows)
        (row,) = list_shows(store)
        assert row["id"] == legacy["id"] and row["slug"] == "the-old-show"
        from bot.service import Service
        svc = Service(dep.show(), store)
        assert svc.show_id == legacy["id"]
        st = svc.status()
        assert [f["url"] for f in st["feeds"]] == ["http://127.0.0.1:9/f.xml"]
        assert [p["id"] for p in svc.queue.list(all_=True)] == [1]
        assert ensure_show(store, dep.show()) == legacy["id"]
    finally:
        store.close()


def test_a_lone_show_renamed_stays_the_same_show(db_url, tmp_path):
    store = Store(db_url)
    store.migrate()
    try:
        path = tmp_path / "crier.toml"
        body = 'feed = "http://127.0.0.1:9/f.xml"\n'
        path.write_text('show = "First Name"\n' + body)
        sync_config(store, load_deployment(path, env={"DATABASE_URL": db_url}).shows)
        (before,) = list_shows(store)
        path.write_text('show = "Second Name"\n' + body)
        r = sync_config(store, load_deployment(path, env={"DATABASE_URL": db_url}).shows)
        (after,) = list_shows(store, removed=True)
        assert after["id"] == before["id"] and after["slug"] == "second-name"
        assert r.changed == ["second-name"] and not r.removed
    finally:
        store.close()


def test_the_worker_serves_every_show_and_syncs_on_sighup(net):
    """The real `crier run`: every show announced on its own accounts; a show added to the
    config is served after SIGHUP, a show taken out is removed, each post exactly once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT
    from tests.test_worker import wait_for

    net.cfg.write_text('include = ["shows/*.toml"]\ndispatch_interval = 1\n'
                       '[podping]\nenabled = false\n')  # no Hive node beyond loopback
    for slug in SLUGS:
        net.write_show(slug, extra="first_run_backfill = 1")
    aside = net.tmp / "charlie.toml"
    shutil.move(net.tmp / "shows" / "charlie.toml", aside)
    env = dict(os.environ, PYTHONPATH=str(ROOT), CRIER_CONFIG=str(net.cfg))
    w = subprocess.Popen([sys.executable, "-m", "bot", "-v", "run"], env=env, cwd=net.tmp,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: all(len(net.posted(s)[0]) == 1 and len(net.posted(s)[1]) == 1
                             for s in ("alpha", "bravo")), what="alpha and bravo announced")
        assert net.posted("charlie") == ([], [])
        shutil.move(aside, net.tmp / "shows" / "charlie.toml")
        (net.tmp / "shows" / "bravo.toml").unlink()
        w.send_signal(signal.SIGHUP)
        wait_for(lambda: len(net.posted("charlie")[0]) == 1 and
                 len(net.posted("charlie")[1]) == 1, what="charlie announced after SIGHUP")
        listed = {r["slug"] for r in json.loads(net.cli("shows", "list", "--json"))}
        assert listed == {"alpha", "charlie"}
        time.sleep(2)                               # a few more dispatch rounds: nothing new
    finally:
        w.send_signal(signal.SIGTERM)
        out, _ = w.communicate(timeout=30)
    assert w.returncode == 0, out
    assert "1 added, 0 changed, 1 removed" in out, out
    for slug in SLUGS:
        masto, x = net.posted(slug)
        assert len(masto) == 1 and len(x) == 1 and slug in masto[0] and slug in x[0]


def test_an_old_database_goes_to_the_show_with_its_feed(db_url, tmp_path):
    old_database(db_url)
    (tmp_path / "shows").mkdir()
    for slug, feed in (("aaa", "http://127.0.0.1:9/other.xml"),
                       ("zzz", "http://127.0.0.1:9/f.xml")):
        (tmp_path / "shows" / f"{slug}.toml").write_text(f'show = "{slug}"\nfeed = "{feed}"\n')
    (tmp_path / "crier.toml").write_text('include = ["shows/*.toml"]\n')
    store = Store(db_url)
    store.migrate()
    try:
        (legacy,) = list_shows(store)
        dep = load_deployment(tmp_path / "crier.toml", env={"DATABASE_URL": db_url})
        r = sync_config(store, dep.shows)
        assert r.added == ["aaa"] and r.changed == ["zzz"] and not r.removed
        ids = {row["slug"]: row["id"] for row in list_shows(store)}
        assert ids["zzz"] == legacy["id"] and ids["aaa"] != legacy["id"]
    finally:
        store.close()


def test_two_shows_with_one_feed_are_refused(net):
    net.write_show("bravo")
    text = (net.tmp / "shows" / "bravo.toml").read_text().replace("/bravo.xml", "/alpha.xml")
    (net.tmp / "shows" / "bravo.toml").write_text(text)
    out = net.cli("run", "--once", code=1)
    assert "'alpha' and 'bravo' have the same feed" in out and "Traceback" not in out
    net.write_show("bravo")
    (net.tmp / "imports").mkdir()
    (net.tmp / "imports" / "delta.toml").write_text(
        net.show_text("charlie").replace('slug = "charlie"', 'slug = "delta"').replace(
            'name = "m-charlie"', 'name = "m-delta"').replace('name = "x-charlie"',
                                                              'name = "x-delta"'))
    out = net.cli("shows", "import", str(net.tmp / "imports"), code=1)
    assert "'charlie' and 'delta' have the same feed" in out and "delta.toml" in out


def test_community_per_show(net):
    """Each show's community watch proposes and boosts on its own account only."""
    for slug in ("alpha", "bravo"):
        net.write_show(slug, extra=f'[community]\nenabled = true\nhashtags = ["{slug}tag"]\n')
    net.cli("run", "--once")
    a = net.masto["alpha"].add_post("fan@other.example", "Loved #alphatag",
                                    tags=("alphatag",))
    net.masto["bravo"].add_post("fan@other.example", "Loved #bravotag", tags=("bravotag",))
    net.cli("community", "scan", "--show", "alpha")
    listed = json.loads(net.cli("community", "list", "--json", "--show", "alpha"))
    assert [r["uri"] for r in listed] == [a["uri"]]
    assert json.loads(net.cli("community", "list", "--json", "--show", "bravo")) == []
    assert "no community post" in net.cli("community", "approve", str(listed[0]["id"]),
                                          "--show", "bravo", code=1)
    net.cli("community", "approve", str(listed[0]["id"]), "--show", "alpha")
    net.cli("run", "--once")
    assert [r["reblog"]["uri"] for r in net.masto["alpha"].reblogs] == [a["uri"]]
    assert net.masto["bravo"].reblogs == [] and net.masto["charlie"].reblogs == []
