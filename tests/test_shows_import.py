"""`crier shows import` (bot.shows.import_shows): every check, one clear error naming the bad
file with nothing imported, and the fast path for files imported before (same path, same
bytes: parsed for the checks across files, not validated again) — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import bot.shows
from bot.cli import main
from bot.deployment import load_deployment
from bot.errors import ConfigError
from bot.shows import import_shows, imported_settings, remove_show
from bot.store import Store, feeds, shows

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def show_text(slug: str, *, account: str | None = None, feed: str | None = None,
              interval: str = "5m") -> str:
    return (f'show = "Show {slug}"\nslug = "{slug}"\n'
            f'feed = "{feed or f"https://feeds.example.net/{slug}.rss"}"\n'
            f'poll_interval = "{interval}"\n\n[[accounts]]\nplatform = "x"\n'
            f'name = "{account or f"{slug}-x"}"\ndry_run = true\n')


class Setup:
    def __init__(self, tmp: Path, db_url: str):
        self.tmp, self.folder = tmp, tmp / "imports"
        self.folder.mkdir()
        self.cfg = tmp / "crier.toml"
        self.config("")
        self.store = Store(db_url)
        self.store.migrate()

    def config(self, shows_toml: str) -> None:
        (self.tmp / "shows").mkdir(exist_ok=True)
        (self.tmp / "shows" / "c.toml").unlink(missing_ok=True)
        if shows_toml:
            (self.tmp / "shows" / "c.toml").write_text(shows_toml)
        self.cfg.write_text('include = ["shows/*.toml"]\n')

    def write(self, name: str, text: str) -> Path:
        p = self.folder / f"{name}.toml"
        p.write_text(text)
        return p

    def imp(self, path: Path | None = None):
        dep = load_deployment(self.cfg, env={})
        return import_shows(self.store, dep, path or self.folder, env={}, now=NOW)

    def registry(self) -> dict[str, tuple]:
        with self.store.tx() as c:
            return {r.slug: (r.content_hash, r.removed_at) for r in c.execute(
                sa.select(shows.c.slug, shows.c.content_hash, shows.c.removed_at))}

    def active_feeds(self) -> dict[str, int]:
        with self.store.tx() as c:
            return dict(c.execute(sa.select(feeds.c.url, feeds.c.poll_interval).where(
                feeds.c.active)).all())


@pytest.fixture
def setup(tmp_path, db_url):
    s = Setup(tmp_path, db_url)
    yield s
    s.store.close()


def test_import_again_unchanged_then_one_changed(setup):
    for slug in ("a", "b", "c"):
        setup.write(slug, show_text(slug))
    r = setup.imp()
    assert (r.files, r.added, r.changed, r.unchanged) == (3, ["a", "b", "c"], [], 0)
    assert setup.active_feeds() == {f"https://feeds.example.net/{s}.rss": 300 for s in "abc"}
    r = setup.imp()
    assert (r.files, r.added, r.changed, r.unchanged) == (3, [], [], 3)
    setup.write("b", show_text("b", interval="10m", feed="https://feeds.example.net/b2.rss"))
    r = setup.imp()
    assert (r.added, r.changed, r.unchanged) == ([], ["b"], 2)
    assert setup.active_feeds()["https://feeds.example.net/b2.rss"] == 600
    assert "https://feeds.example.net/b.rss" not in setup.active_feeds()  # parked
    got = {s.slug: s.poll_interval for s in imported_settings(
        setup.store, load_deployment(setup.cfg, env={}), env={})}
    assert got == {"a": 300, "b": 600, "c": 300}


@pytest.mark.parametrize("bad, says", [
    ('show = "Bad"\nfeed = 3\n', "feed"),
    ('show = "Bad"\nfeed = "https://x.example/f.rss"\nnope = 1\n', "unknown key"),
    ("show = \n", "not valid TOML"),
])
def test_a_bad_file_among_many_is_named_and_nothing_is_imported(setup, bad, says):
    for slug in ("a", "b", "d"):
        setup.write(slug, show_text(slug))
    bad_file = setup.write("c", bad)
    with pytest.raises(ConfigError, match=says) as e:
        setup.imp()
    assert e.value.file == str(bad_file)
    assert setup.registry() == {} and setup.active_feeds() == {}
    # the same after a first import: the changed file is not written either
    bad_file.unlink()
    setup.imp()
    before = setup.registry()
    setup.write("a", show_text("a", interval="20m"))
    setup.write("c", bad)
    with pytest.raises(ConfigError, match=says):
        setup.imp()
    assert setup.registry() == before
    assert setup.active_feeds()["https://feeds.example.net/a.rss"] == 300


def test_files_imported_before_still_take_part_in_every_check(setup):
    for slug in ("a", "b"):
        setup.write(slug, show_text(slug))
    setup.imp()
    # a new file against unchanged ones: an account name, a feed
    c = setup.write("c", show_text("c", account="a-x"))
    with pytest.raises(ConfigError, match="duplicate account name 'a-x'") as e:
        setup.imp()
    assert e.value.file == str(c)
    setup.write("c", show_text("c", feed="https://feeds.example.net/b.rss"))
    with pytest.raises(ConfigError, match="'b' and 'c' have the same feed"):
        setup.imp()
    c.unlink()
    # the config, changed since: a slug or an account name an unchanged file has
    setup.config(show_text("a", account="cfg-x", feed="https://feeds.example.net/cfg.rss"))
    with pytest.raises(ConfigError, match="the show 'a' is declared by the config"):
        setup.imp()
    setup.config(show_text("cfg", account="b-x"))
    with pytest.raises(ConfigError, match="duplicate account name 'b-x'"):
        setup.imp()
    setup.config(show_text("cfg", feed="https://feeds.example.net/a.rss"))
    with pytest.raises(ConfigError, match="'cfg' and 'a' have the same feed"):
        setup.imp()


def test_two_files_imported_one_by_one_are_checked_together(setup):
    """Both unchanged since their own imports, yet one account name: found (each file's
    account names are read again; only its validation is skipped)."""
    one = setup.write("a", show_text("a", account="shared"))
    setup.imp(one)
    two = setup.write("b", show_text("b", account="shared"))
    setup.imp(two)
    with pytest.raises(ConfigError, match="duplicate account name 'shared'"):
        setup.imp()


def test_a_removed_show_comes_back_validated(setup):
    setup.write("a", show_text("a"))
    setup.imp()
    remove_show(setup.store, "a", NOW)
    assert setup.active_feeds() == {}
    r = setup.imp()
    assert (r.changed, r.unchanged) == (["a"], 0)
    assert setup.registry()["a"][1] is None and len(setup.active_feeds()) == 1


def test_a_row_changed_between_the_read_and_the_write_is_written_whole(setup, monkeypatch):
    """Another process removes the show after this import found it unchanged: it is
    validated and written with its text (imported_settings needs it)."""
    setup.write("a", show_text("a"))
    setup.imp()
    stale = bot.shows._imported(setup.store)
    remove_show(setup.store, "a", NOW)
    monkeypatch.setattr(bot.shows, "_imported", lambda store: stale)
    r = setup.imp()
    assert r.changed == ["a"]
    [s] = imported_settings(setup.store, load_deployment(setup.cfg, env={}), env={})
    assert s.slug == "a" and s.feed == "https://feeds.example.net/a.rss"


def test_cli_import_bad_file_one_line(setup, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", setup.store.url)
    setup.write("a", show_text("a"))
    bad = setup.write("b", 'show = "B"\nfeed = "ftp://nope"\n')
    result = CliRunner().invoke(main, ["--config", str(setup.cfg), "shows", "import",
                                       str(setup.folder)])
    assert result.exit_code == 1 and str(bad) in result.output
    assert "Traceback" not in result.output and setup.registry() == {}


@pytest.mark.parametrize("chunk", [100, 2])  # 2: several chunks, the table read once
def test_ensure_feeds_many_at_once(db_url, chunk):
    """Store.ensure_feeds reads the feeds table once when given more than a chunk: the same
    rows as the statements per chunk (new ones, a new interval, a URL another show had, a
    show's old URL parked)."""
    store = Store(db_url)
    store.migrate()
    try:
        with store.tx() as c:
            Store.ensure_feeds(c, [(1, "u1", 60), (2, "u2", 60), (3, "u3", 60)], NOW)
        # show 6 takes u3 in an earlier chunk than show 3 moving to u3b: u3 stays show 6's
        wanted = [(6, "u3", 60), (1, "u1", 60), (2, "u2", 120), (3, "u3b", 60),
                  (4, "u4", 60), (5, "u5", 60)]
        with store.tx() as c:
            written = Store.ensure_feeds(c, wanted, NOW, chunk=chunk)
            rows = {r.url: (r.show_id, r.poll_interval, r.active) for r in c.execute(
                sa.select(feeds.c.url, feeds.c.show_id, feeds.c.poll_interval,
                          feeds.c.active))}
        assert rows == {"u1": (1, 60, True), "u2": (2, 120, True), "u3": (6, 60, True),
                        "u3b": (3, 60, True), "u4": (4, 60, True), "u5": (5, 60, True)}
        assert written == 5  # u3 taken over, u2 changed, u3b u4 u5 new
    finally:
        store.close()
