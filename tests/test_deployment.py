"""Many shows in one deployment: [[shows]] tables, `include`d show files, slugs, account names
unique across shows, deployment-wide vs per-show keys, and errors at the right file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import config as config_module
from bot import deployment as deployment_module
from bot.config import load_settings
from bot.deployment import load_deployment, slugify
from bot.errors import ConfigError
from tests.conftest import ROOT


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def show_file(name: str, account: str, *, extra: str = "", feed: str = "feed.xml") -> str:
    """One show in today's single-show layout, with one dry-run Mastodon account."""
    return (f'show = "{name}"\nfeed = "{feed}"\n{extra}'
            f'[[accounts]]\nplatform = "mastodon"\nname = "{account}"\n'
            f'instance = "https://social.example"\ndry_run = true\n')


TWO_SHOWS = """\
data_dir = "state"
dispatch_interval = "10s"
notify = ["json://127.0.0.1:9/host"]

[[shows]]
show = "Alpha Hour"
feed = "https://alpha.example/feed.xml"
timezone = "Europe/Berlin"
poll_interval = "30m"

[shows.promos]
min_gap = "2h"

[[shows.accounts]]
platform = "mastodon"
name = "alpha"
instance = "https://alpha.social"
dry_run = true

[[shows]]
show = "Beta Cast"
slug = "beta"
feed = "https://beta.example/feed.xml"
notify = ["json://127.0.0.1:9/beta"]

[[shows.accounts]]
platform = "mastodon"
name = "beta-main"
instance = "https://beta.social"
dry_run = true

[[shows.accounts]]
platform = "x"
name = "beta-x"
dry_run = true
{beta_x_extra}
"""


def test_todays_single_show_config_is_one_show_unchanged():
    path = ROOT / "config" / "crier.toml"
    d = load_deployment(path, env={})
    assert len(d.shows) == 1
    s = d.show()
    assert s.slug == "the-blockchain-socialist"
    assert s.show == "The Blockchain Socialist"
    assert d.database_url == s.database_url == f"sqlite:///{ROOT}/config/data/crier.db"
    assert d.show("the-blockchain-socialist") is s
    one = load_settings(path, env={})
    assert one == s and one.slug == s.slug and one.accounts == s.accounts


def test_two_shows_tables_each_with_its_own_keys_and_accounts(tmp_path):
    cfg = write(tmp_path / "crier.toml", TWO_SHOWS.format(beta_x_extra=""))
    d = load_deployment(cfg, env={})
    assert d.slugs == ("alpha-hour", "beta")
    alpha, beta = d.shows
    assert (alpha.show, alpha.feed, alpha.timezone, alpha.poll_interval, alpha.min_gap) == \
        ("Alpha Hour", "https://alpha.example/feed.xml", "Europe/Berlin", 1800, 7200)
    assert (beta.timezone, beta.poll_interval, beta.min_gap) == ("UTC", 900, 1800)
    assert [a.name for a in alpha.accounts] == ["alpha"]
    assert [a.name for a in beta.accounts] == ["beta-main", "beta-x"]
    # deployment-wide values reach every show
    for s in d.shows:
        assert s.dispatch_interval == d.dispatch_interval == 10
        assert s.data_dir == d.data_dir == str(tmp_path / "state")
        assert s.database_url == f"sqlite:///{tmp_path}/state/crier.db"
        assert s.path == cfg
    # a show's own notify URLs are told besides the deployment's
    assert alpha.notify_urls() == ("json://127.0.0.1:9/host",)
    assert beta.notify_urls() == ("json://127.0.0.1:9/beta", "json://127.0.0.1:9/host")
    assert "127.0.0.1:9" not in repr(d)


def test_one_show_is_chosen_by_slug_and_several_need_one(tmp_path):
    cfg = write(tmp_path / "crier.toml", TWO_SHOWS.format(beta_x_extra=""))
    d = load_deployment(cfg, env={})
    assert d.show("beta").show == "Beta Cast"
    with pytest.raises(ConfigError, match=r"this command needs --show SLUG: one of "
                                          r"alpha-hour, beta$"):
        d.show(None)
    with pytest.raises(ConfigError, match=r"no show 'gamma': one of alpha-hour, beta$"):
        d.show("gamma")
    with pytest.raises(ConfigError, match=r"needs --show SLUG: one of alpha-hour, beta"):
        load_settings(cfg, env={})


def test_include_reads_one_file_per_show_from_a_folder(tmp_path):
    write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\nfeed_deadline = "20s"\n')
    write(tmp_path / "shows" / "b.toml", show_file("Second Show", "second"))
    write(tmp_path / "shows" / "a.toml", show_file("First Show", "first",
                                                   extra='slug = "one"\ntimezone = "Asia/Tokyo"\n'))
    write(tmp_path / "shows" / "c.toml", show_file("Third Show", "third",
                                                   feed="https://third.example/rss"))
    write(tmp_path / "shows" / "notes.txt", "not a show")
    d = load_deployment(tmp_path / "crier.toml", env={})
    assert d.slugs == ("one", "second-show", "third-show")       # in file-name order
    first, second, third = d.shows
    assert first.path == tmp_path / "shows" / "a.toml" and first.timezone == "Asia/Tokyo"
    # a relative feed path is relative to the show's own file; the data to the main config's
    assert second.feed == str(tmp_path / "shows" / "feed.xml")
    assert third.feed == "https://third.example/rss"
    assert {s.data_dir for s in d.shows} == {str(tmp_path / "data")}
    assert {s.feed_deadline for s in d.shows} == {20}


def test_include_and_shows_tables_together(tmp_path):
    cfg = write(tmp_path / "crier.toml",
                'include = ["more/*.toml"]\n\n' + TWO_SHOWS.format(beta_x_extra=""))
    write(tmp_path / "more" / "g.toml", show_file("Gamma", "gamma"))
    assert load_deployment(cfg, env={}).slugs == ("alpha-hour", "beta", "gamma")


def test_a_missing_include_file_and_an_include_inside_a_show_file_are_errors(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = [\n  "shows/one.toml",\n]\n')
    with pytest.raises(ConfigError, match=r"crier.toml, line 1, key 'include\[0\]': file "
                                          r"not found: .*shows/one.toml"):
        load_deployment(cfg, env={})
    write(tmp_path / "shows" / "one.toml", show_file("One", "one") + 'include = ["x/*"]\n')
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    assert exc.value.file == str(tmp_path / "shows" / "one.toml") and exc.value.line == 8
    assert exc.value.key == "include"


@pytest.mark.parametrize("name, slug", [
    ("The Blockchain Socialist", "the-blockchain-socialist"),
    ("Café Olé: Ünïcode & more!", "cafe-ole-unicode-more"),
    ("  --Radio 4.0 -- ", "radio-4-0"),
    ("日本語", ""),
])
def test_slug_from_a_name(name, slug):
    assert slugify(name) == slug


def test_a_name_without_a_slug_asks_for_one(tmp_path):
    # alone, as in today's config, it keeps working
    one = load_settings(write(tmp_path / "alone.toml", show_file("日本語", "jp")), env={})
    assert (one.show, one.slug) == ("日本語", "show")
    write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    write(tmp_path / "shows" / "jp.toml", show_file("日本語", "jp"))
    with pytest.raises(ConfigError, match=r"jp.toml, line 1, key 'show': no slug can be made "
                                          r"from the name '日本語': set slug"):
        load_deployment(tmp_path / "crier.toml", env={})


def test_a_slug_clash_names_both_places(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    write(tmp_path / "shows" / "a.toml", show_file("Same Name", "a"))
    write(tmp_path / "shows" / "b.toml", "# another\n" + show_file("Same  name!", "b"))
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    e = exc.value
    assert (e.file, e.line, e.key) == (str(tmp_path / "shows" / "b.toml"), 2, "show")
    assert f"the slug 'same-name' (from their names; set slug); the first is in " \
           f"{tmp_path / 'shows' / 'a.toml'}, line 1" in str(e)
    # an explicit slug clashing with a [[shows]] table's
    write(tmp_path / "shows" / "b.toml", show_file("B", "b", extra='slug = "alpha-hour"\n'))
    write(tmp_path / "shows" / "a.toml", show_file("A", "a"))
    write(cfg, 'include = ["shows/*.toml"]\n' + TWO_SHOWS.format(beta_x_extra=""))
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    e = exc.value
    assert (e.file, e.line, e.key) == (str(tmp_path / "shows" / "b.toml"), 3, "slug")
    assert f"the first is in {cfg}, line 7" in str(e)


def test_a_bad_slug_is_named_at_its_line(tmp_path):
    cfg = write(tmp_path / "crier.toml", TWO_SHOWS.replace('slug = "beta"', 'slug = "Beta!"')
                .format(beta_x_extra=""))
    with pytest.raises(ConfigError, match=r"crier.toml, line 22, key 'shows\[1\]\.slug': "
                                          r"expected lower-case"):
        load_deployment(cfg, env={})


def test_account_names_are_unique_across_the_deployment(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    write(tmp_path / "shows" / "a.toml", show_file("A", "shared-name"))
    write(tmp_path / "shows" / "b.toml", '# b\n\n' + show_file("B", "shared-name"))
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    e = exc.value
    assert (e.file, e.line, e.key) == (str(tmp_path / "shows" / "b.toml"), 7,
                                       "accounts[0].name")
    assert "duplicate account name 'shared-name'" in str(e)
    assert f"the first is in {tmp_path / 'shows' / 'a.toml'}, line 5" in str(e)
    # and between a [[shows]] table's second account and an included file
    write(tmp_path / "shows" / "b.toml", show_file("B", "beta-x"))
    write(cfg, 'include = ["shows/*.toml"]\n' + TWO_SHOWS.format(beta_x_extra=""))
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    assert (exc.value.file, exc.value.line) == (str(tmp_path / "shows" / "b.toml"), 5)
    assert f"the first is in {cfg}, line 35" in str(exc.value)


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    write(tmp_path / "shows" / "a.toml", show_file("A", "a"))
    bad = write(tmp_path / "shows" / "b.toml",
                show_file("B", "b", extra='timezone = "Mars/Olympus"\n')
                + '\n[[accounts]]\nplatform = "x"\nname = "bx"\ndry_run = true\n'
                  'min_gap = "soon"\n')
    with pytest.raises(ConfigError, match=rf"^{bad}, line 3, key 'timezone': unknown time "
                                          "zone 'Mars/Olympus'"):
        load_deployment(cfg, env={})
    write(bad, bad.read_text().replace("Mars/Olympus", "UTC"))
    with pytest.raises(ConfigError, match=rf"^{bad}, line 14, key 'accounts\[1\]\.min_gap'"):
        load_deployment(cfg, env={})
    write(bad, "show = 'B'\nfeed = 'f.xml'\ntimezone = = 'UTC'\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: not valid TOML.*line 3"):
        load_deployment(cfg, env={})


def test_an_error_in_the_second_shows_second_account_is_at_its_line(tmp_path):
    cfg = write(tmp_path / "crier.toml", TWO_SHOWS.format(beta_x_extra='min_gap = "soon"'))
    with pytest.raises(ConfigError, match=r"crier.toml, line 36, key "
                                          r"'shows\[1\]\.accounts\[1\]\.min_gap': expected a "
                                          r"duration"):
        load_deployment(cfg, env={})
    write(cfg, TWO_SHOWS.format(beta_x_extra='visiblity = "public"'))
    with pytest.raises(ConfigError, match=r"crier.toml, line 36, key 'shows\[1\]\.visiblity': "
                                          r"unknown key .* did you mean 'visibility'"):
        load_deployment(cfg, env={})
    write(cfg, TWO_SHOWS.replace("[shows.promos]\nmin_gap = \"2h\"",
                                 "[shows.promos]\nmin_gap = \"2 fortnights\"")
          .format(beta_x_extra=""))
    with pytest.raises(ConfigError, match=r"crier.toml, line 12, key 'shows\[0\]\.promos\."
                                          r"min_gap'"):
        load_deployment(cfg, env={})


@pytest.mark.parametrize("where, key, line", [("show", "data_dir", 9), ("show", "max_attempts", 9),
                                              ("top", "timezone", 1), ("top", "accounts", 1)])
def test_deployment_wide_and_per_show_keys_stay_in_their_place(tmp_path, where, key, line):
    value = {"data_dir": '"elsewhere"', "max_attempts": "3", "timezone": '"UTC"',
             "accounts": "[]"}[key]
    if where == "show":
        cfg = write(tmp_path / "crier.toml",
                    TWO_SHOWS.replace('timezone = "Europe/Berlin"\n',
                                      f'timezone = "Europe/Berlin"\n{key} = {value}\n')
                    .format(beta_x_extra=""))
        shown_key, message = f"shows[0].{key}", "is deployment-wide: set it once at the top"
    else:
        cfg = write(tmp_path / "crier.toml", f"{key} = {value}\n" + TWO_SHOWS.format(
            beta_x_extra="").replace('data_dir = "state"\n', ""))
        shown_key, message = key, "belongs to a show: with [[shows]] or include"
    with pytest.raises(ConfigError) as exc:
        load_deployment(cfg, env={})
    assert (exc.value.file, exc.value.line, exc.value.key) == (str(cfg), line, shown_key)
    assert message in str(exc.value)


def test_a_deployment_wide_key_in_an_included_file_is_named_there(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    f = write(tmp_path / "shows" / "a.toml", show_file("A", "a", extra='feed_deadline = "5s"\n'))
    with pytest.raises(ConfigError, match=rf"^{f}, line 3, key 'feed_deadline': "
                                          "'feed_deadline' is deployment-wide"):
        load_deployment(cfg, env={})


def test_a_bad_deployment_wide_value_is_named_at_its_line(tmp_path):
    cfg = write(tmp_path / "crier.toml", TWO_SHOWS.replace('dispatch_interval = "10s"',
                                                           'dispatch_interval = "often"')
                .format(beta_x_extra=""))
    with pytest.raises(ConfigError, match=r"crier.toml, line 2, key 'dispatch_interval'"):
        load_deployment(cfg, env={})


def test_valid_files_load_without_looking_for_any_line(tmp_path, monkeypatch):
    """Line lookups scan texts: they belong on the error path only (100,000 files)."""
    def no_lookup(*args, **kwargs):
        raise AssertionError("a line was looked up while loading valid files")
    write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    for i in range(3):
        write(tmp_path / "shows" / f"{i}.toml",
              show_file(f"Show {i}", f"acc{i}", extra='notify = ["json://127.0.0.1:9/s"]\n'
                                                     'timezone = "Europe/Paris"\n'
                                                     '[promos]\nmin_gap = "1h"\n'))
    for module, name in ((config_module, "_line_of"), (config_module, "_line_of_path"),
                         (deployment_module, "line_of_path"), (deployment_module, "show_text")):
        monkeypatch.setattr(module, name, no_lookup)
    assert len(load_deployment(tmp_path / "crier.toml", env={}).shows) == 3
    write(tmp_path / "crier.toml", TWO_SHOWS.format(beta_x_extra=""))
    assert len(load_deployment(tmp_path / "crier.toml", env={}).shows) == 2


def test_a_pattern_matching_nothing_is_a_deployment_without_shows(tmp_path, caplog):
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    d = load_deployment(cfg, env={})
    assert d.shows == () and "matches no file" in caplog.text
    with pytest.raises(ConfigError, match=r"no shows: add \[\[shows\]\] tables"):
        d.show(None)


def test_many_files_load_in_order_and_an_error_names_its_own_file(tmp_path):
    n = 70
    cfg = write(tmp_path / "crier.toml", 'include = ["shows/*.toml"]\n')
    for i in range(n):
        write(tmp_path / "shows" / f"{i:03d}.toml", show_file(f"Show {i}", f"acc-{i}"))
    d = load_deployment(cfg, env={})
    assert d.slugs == tuple(f"show-{i}" for i in range(n))
    assert [s.path.name for s in d.shows] == [f"{i:03d}.toml" for i in range(n)]
    bad = write(tmp_path / "shows" / f"{n - 3:03d}.toml",
                show_file("Bad", "bad", extra='poll_interval = "1s"\n'))
    write(tmp_path / "shows" / f"{n - 1:03d}.toml", "not = [toml\n")   # later: not reached
    with pytest.raises(ConfigError, match=rf"^{bad}, line 3, key 'poll_interval': must be at "
                                          r"least 60 seconds"):
        load_deployment(cfg, env={})


def test_a_pattern_that_matches_the_config_itself_skips_it(tmp_path):
    cfg = write(tmp_path / "crier.toml", 'include = ["./*.toml", "one.toml"]\n')
    write(tmp_path / "one.toml", show_file("One", "one"))
    assert load_deployment(cfg, env={}).slugs == ("one",)


def test_errors_in_a_shows_people_and_time_zone_are_at_their_lines(tmp_path):
    people = '\n[shows.people."Ana B"]\nmastodon = "not a handle"\n'
    cfg = write(tmp_path / "crier.toml",
                TWO_SHOWS.format(beta_x_extra="") + '\n[[shows]]\nshow = "Gamma"\n'
                'feed = "https://g.example/rss"\n' + people)
    with pytest.raises(ConfigError, match=r"crier.toml, line 43, key "
                                          r"'shows\[2\]\.people\.\"Ana B\"\.mastodon'"):
        load_deployment(cfg, env={})
    write(cfg, TWO_SHOWS.replace("Europe/Berlin", "Europe/Atlantis").format(beta_x_extra=""))
    with pytest.raises(ConfigError, match=r"crier.toml, line 8, key 'shows\[0\]\.timezone'"):
        load_deployment(cfg, env={})
