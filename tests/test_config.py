"""Configuration: the bundled default loads; every mistake names the file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings, secret_names
from bot.errors import ConfigError
from tests.conftest import ROOT

X_SECRETS = {n: f"value-{i}" for i, n in enumerate(secret_names("x", "x"))}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "crier.toml"
    p.write_text(text, encoding="utf-8")
    return p


BASE = """
show = "Test Show"
feed = "feed.xml"
"""


def test_bundled_default_loads_as_dry_run():
    s = load_settings(ROOT / "config" / "crier.toml", env={})
    assert s.show == "The Blockchain Socialist"
    assert Path(s.feed) == ROOT / "config" / "sample-feed.xml"
    assert [a.platform for a in s.accounts] == ["mastodon", "x", "bluesky", "threads"]
    assert s.accounts[2].handle == "tbsocialist.bsky.social"
    assert all(a.dry_run for a in s.accounts)
    assert s.accounts[0].dry_run_reason == "dry_run = true in config"
    assert s.database_url == f"sqlite:///{ROOT}/config/data/crier.db"
    assert s.poll_interval == 900


def test_secret_names_are_derived_from_the_account_name():
    assert secret_names("social-coop", "mastodon") == ("CRIER_SOCIAL_COOP_ACCESS_TOKEN",)
    assert secret_names("x", "x") == ("CRIER_X_CONSUMER_KEY", "CRIER_X_CONSUMER_SECRET",
                                      "CRIER_X_ACCESS_TOKEN", "CRIER_X_ACCESS_TOKEN_SECRET")


def test_env_example_documents_every_secret_of_the_bundled_accounts():
    example = (ROOT / "config" / ".env.example").read_text()
    s = load_settings(ROOT / "config" / "crier.toml", env={})
    for a in s.accounts:
        for name in secret_names(a.name, a.platform):
            assert f"{name}=" in example


def test_secrets_come_from_env_and_never_print(tmp_path):
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n')
    s = load_settings(p, env=X_SECRETS)
    a = s.accounts[0]
    assert not a.dry_run
    assert a.secrets["consumer_key"].reveal() == "value-0"
    for text in (repr(s), repr(a), str(a), repr(a.secrets)):
        assert "value-0" not in text


def test_database_url_from_env(tmp_path):
    p = write(tmp_path, BASE)
    assert load_settings(p, env={"DATABASE_URL": "postgresql://x/y"}).database_url == \
        "postgresql://x/y"


@pytest.mark.parametrize("text, key, words", [
    (BASE + "pol_interval = 60\n", "pol_interval", "did you mean 'poll_interval'"),
    (BASE + "poll_interval = true\n", "poll_interval", "expected seconds"),
    (BASE + "poll_interval = \"soon\"\n", "poll_interval", "duration"),
    (BASE + "poll_interval = 5\n", "poll_interval", "at least 60"),
    (BASE + "timezone = \"Mars/Olympus\"\n", "timezone", "unknown time zone"),
    (BASE + "max_new_per_poll = 0\n", "max_new_per_poll", "≥ 1"),
    ('feed = "x.xml"\n', "show", "required"),
    (BASE.replace('"feed.xml"', '"ftp://example.com/f.xml"'), "feed", "only http(s)"),
    (BASE + '[[accounts]]\nplatform = "myspace"\nname = "a"\n', "accounts[0].platform",
     "mastodon, x"),
    (BASE + '[[accounts]]\nplatform = "mastodon"\nname = "m"\n', "accounts[0].instance",
     "base URL"),
    (BASE + '[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "social.coop"\n',
     "accounts[0].instance", "base URL"),
    (BASE + '[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'visiblity = "public"\n', "visiblity", "did you mean 'visibility'"),
    (BASE + '[[accounts]]\nplatform = "x"\nname = "bad name"\n', "accounts[0].name",
     "short name"),
    (BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n[[accounts]]\nplatform = "x"\n'
     'name = "x"\ndry_run = true\n', "accounts[1].name", "duplicate"),
    (BASE + '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\namplify = "nobody"\n',
     "accounts[0].amplify", "not one"),
    (BASE + '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\n'
     '[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'dry_run = true\namplify = "x"\n', "accounts[1].amplify", "its own network"),
    (BASE + '[community]\nenabled = true\n', "community.account", "official Mastodon"),
    (BASE + '[community]\nenabeld = true\n', "enabeld", "did you mean 'enabled'"),
    (BASE + '[promos]\nmin_gap = "soon"\n', "promos.min_gap", "duration"),
    (BASE + '[promos]\nquiet_hours = "22-7"\n', "promos.quiet_hours", "22:00-07:00"),
    (BASE + '[promos]\nquiet_hours = "25:00-07:00"\n', "promos.quiet_hours", "local times"),
    (BASE + '[promos]\ngrace = "1s"\n', "promos.grace", "at least 60"),
    (BASE + '[promos]\nmin_gapp = "30m"\n', "min_gapp", "did you mean 'min_gap'"),
    (BASE + '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\n'
     'quiet_hours = "7-9"\n', "accounts[0].quiet_hours", "local times"),
])
def test_mistakes_name_file_key_and_expectation(tmp_path, text, key, words):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    msg = str(exc.value)
    assert str(p) in msg
    assert key in msg
    assert words in msg


def test_unknown_key_reports_its_line(tmp_path):
    p = write(tmp_path, BASE + "\n\npol_interval = 60\n")
    with pytest.raises(ConfigError, match=r"line 6, key 'pol_interval'"):
        load_settings(p, env={})


def test_partial_secrets_are_an_error_not_a_silent_dry_run(tmp_path):
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n')
    env = dict(X_SECRETS)
    del env["CRIER_X_ACCESS_TOKEN_SECRET"]
    with pytest.raises(ConfigError, match="missing secret.*CRIER_X_ACCESS_TOKEN_SECRET"):
        load_settings(p, env=env)


def test_toml_syntax_error_names_file_and_line(tmp_path):
    p = write(tmp_path, 'show = "x"\nfeed = \n')
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_settings(p, env={})


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_composition_keys(tmp_path):
    p = write(tmp_path, BASE + """listen_link = "https://example.com/listen"
boilerplate_patterns = ["^Thanks to our sponsor"]

[people."Nick Vincent"]
mastodon = "nick@hci.social"
x = "@nickmvincent"

[[accounts]]
platform = "x"
name = "x"
link_policy = "reply"
utm = { utm_source = "x", utm_medium = "social" }
""")
    s = load_settings(p, env={})
    assert s.people == {"Nick Vincent": {"mastodon": "@nick@hci.social", "x": "@nickmvincent"}}
    assert s.listen_link == "https://example.com/listen"
    a = s.accounts[0]
    assert a.link_policy == "reply" and a.media == "artwork"
    assert a.utm == {"utm_source": "x", "utm_medium": "social"}


@pytest.mark.parametrize("extra, key, words", [
    ('[people."A B"]\nx = "not a handle!"\n', 'people."A B".x', "handle like"),
    ('[people."A B"]\nmastodon = "@user"\n', 'people."A B".mastodon', "@user@instance"),
    ('[people."A B"]\nfacebook = "@a"\n', 'people."A B".facebook', "unknown network"),
    ('boilerplate_patterns = ["(unclosed"]\n', "boilerplate_patterns[0]", "regular expression"),
    ('listen_link = "example.com"\n', "listen_link", "http(s) URL"),
    ('[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'link_policy = "reply"\n', "accounts[0].link_policy", "inline, none"),
    ('[[accounts]]\nplatform = "x"\nname = "x"\nmedia = "video"\n', "accounts[0].media",
     "card, artwork"),
])
def test_composition_key_mistakes(tmp_path, extra, key, words):
    p = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    assert key in str(exc.value) and words in str(exc.value)


def test_promo_settings_and_per_account_overrides(tmp_path):
    p = write(tmp_path, BASE + '[promos]\nmin_gap = "45m"\nquiet_hours = "23:00-6:30"\n'
              'grace = "2h"\nevergreen_cooldown = "30d"\n'
              '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\nmin_gap = 0\n'
              'quiet_hours = ""\n'
              '[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
              'dry_run = true\n')
    st = load_settings(p, env={})
    x, m = st.accounts
    assert (st.min_gap, st.quiet_hours, st.promo_grace, st.evergreen_cooldown) == \
        (2700, "23:00-06:30", 7200, 30 * 86400)
    assert st.gap_for(x) == 0 and st.quiet_for(x) is None
    assert st.gap_for(m) == 2700 and st.quiet_for(m) == "23:00-06:30"


def test_amplifiers_are_not_posting_accounts(tmp_path):
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "mastodon"\nname = "show"\n'
              'instance = "https://a.b"\ndry_run = true\n'
              '[[accounts]]\nplatform = "mastodon"\nname = "cohost"\n'
              'instance = "https://c.d"\ndry_run = true\namplify = "show"\n'
              'amplify_delay = "10m"\n')
    st = load_settings(p, env={})
    assert [a.name for a in st.posting_accounts] == ["show"]
    (amp,) = st.amplifiers_of("show")
    assert amp.name == "cohost" and amp.amplify_delay == 600


def test_retired_upload_base_is_accepted_with_a_warning(tmp_path, caplog):
    """X retired its v1.1 upload host; a config written for it still loads, and says so."""
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n'
              'api_base = "https://api.example"\nupload_base = "https://upload.example"\n')
    with caplog.at_level("WARNING", logger="bot.config"):
        st = load_settings(p, env=X_SECRETS)
    (account,) = st.accounts
    assert account.api_base == "https://api.example"
    assert "accounts[0].upload_base" in caplog.text
    assert "no longer used" in caplog.text and str(p) in caplog.text


# -- issue 13: missing credentials, durations, lines, paths ----------------------------------
def test_missing_credentials_are_not_a_dry_run(tmp_path):
    """No variables set and no `dry_run = true`: not a dry run; the missing names are kept."""
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n'
              '[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
              'dry_run = true\n')
    x, m = load_settings(p, env={}).accounts
    assert not x.dry_run
    assert x.missing_secrets == secret_names("x", "x")
    assert m.dry_run and m.missing_secrets == ()
    # empty values count as unset
    x2 = load_settings(p, env={n: " " for n in secret_names("x", "x")}).accounts[0]
    assert not x2.dry_run and x2.missing_secrets == secret_names("x", "x")
    x3 = load_settings(p, env=X_SECRETS).accounts[0]
    assert not x3.dry_run and x3.missing_secrets == ()


@pytest.mark.parametrize("value, seconds", [
    ("900", 900), ('"15m"', 900), ('"5 minutes"', 300), ('"1h30m"', 5400),
    ('"2 days"', 2 * 86400), ('"1 hour"', 3600), ('"90s"', 90), ('"1h 30m"', 5400),
    ('"1.5h"', 5400),
])
def test_every_duration_key_takes_one_grammar(tmp_path, value, seconds):
    p = write(tmp_path, BASE + f"poll_interval = {value}\n[promos]\nmin_gap = {value}\n"
              f"grace = {value}\nevergreen_cooldown = {value}\n"
              f'[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\n'
              f"min_gap = {value}\namplify_delay = 60\n"
              f'[[accounts]]\nplatform = "x"\nname = "y"\ndry_run = true\namplify = "x"\n'
              f"amplify_delay = {value}\n")
    s = load_settings(p, env={})
    assert (s.poll_interval, s.min_gap, s.promo_grace, s.evergreen_cooldown) == (seconds,) * 4
    assert s.accounts[0].min_gap == seconds and s.accounts[1].amplify_delay == seconds


def test_interval_and_timeout_take_durations_too(tmp_path):
    p = write(tmp_path, BASE + 'dispatch_interval = "5s"\n[[accounts]]\nplatform = "x"\n'
              'name = "x"\ndry_run = true\ntimeout = "1 minute"\n[[accounts]]\n'
              'platform = "x"\nname = "y"\ndry_run = true\ntimeout = 2.5\n')
    s = load_settings(p, env={})
    assert s.dispatch_interval == 5
    assert [a.timeout for a in s.accounts] == [60.0, 2.5]


def test_config_and_command_line_share_the_duration_parser():
    """`--in "3 days"` (bot.schedule) and `poll_interval = "3 days"` are one function."""
    from datetime import timedelta

    from bot import config, schedule
    for text in ("3 days", "90m", "1h30m", "45 min", "2 weeks", "30s"):
        assert config.parse_duration(text, file="f", key="k", minimum=0) == \
            schedule.parse_duration(text) // timedelta(seconds=1)


@pytest.mark.parametrize("value, words", [
    ('"soon"', "'soon' is not a number followed by a unit"),
    ('"3 dayz"', "did you mean 'day'"),
    ('"15"', "without quotes"),
    ("-5", "at least 60"),
])
def test_duration_mistakes_say_what_and_where(tmp_path, value, words):
    p = write(tmp_path, BASE + f"poll_interval = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    assert "line 4, key 'poll_interval'" in str(exc.value)
    assert words in str(exc.value)


def test_a_mistake_in_the_second_account_is_reported_at_its_own_line(tmp_path):
    text = ('show = "S"\nfeed = "f.xml"\n'
            '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\n'     # lines 3-6
            '[[accounts]]\nvisiblity = "public"\nplatform = "x"\nname = "y"\n')  # 7-10
    with pytest.raises(ConfigError, match=r"line 8, key 'visiblity'"):
        load_settings(write(tmp_path, text), env={})
    text2 = text.replace('visiblity = "public"\n', '') + 'min_gap = "soon"\n'
    with pytest.raises(ConfigError, match=r"line 10, key 'accounts\[1\]\.min_gap'"):
        load_settings(write(tmp_path, text2), env={})
    text3 = ('show = "S"\nfeed = "f.xml"\n[promos]\ngrace = "1h"\n'
             '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\ngrace = 1\n')
    with pytest.raises(ConfigError, match=r"line 9, key 'grace'"):
        load_settings(write(tmp_path, text3), env={})
    text4 = ('show = "S"\nfeed = "f.xml"\n[promos]\nmin_gap = "30m"\n'
             '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\nmin_gap = "x"\n')
    with pytest.raises(ConfigError, match=r"line 9, key 'accounts\[0\]\.min_gap'"):
        load_settings(write(tmp_path, text4), env={})


def test_paths_resolve_against_the_config_folder(tmp_path, monkeypatch, caplog):
    """State, `.env` and relative paths follow the config file, not the working directory."""
    etc = tmp_path / "etc" / "crier"
    etc.mkdir(parents=True)
    p = etc / "crier.toml"
    p.write_text(BASE + '[[accounts]]\nplatform = "x"\nname = "x"\n')
    (etc / ".env").write_text("".join(f"{k}={v}\n" for k, v in X_SECRETS.items()))
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    (elsewhere / ".env").write_text("DATABASE_URL=sqlite:///wrong.db\n")
    monkeypatch.chdir(elsewhere)
    for k in list(__import__("os").environ):
        if k.startswith("CRIER_") or k == "DATABASE_URL":
            monkeypatch.delenv(k)
    with caplog.at_level("WARNING", logger="bot.config"):
        s = load_settings(p)
    assert f"ignoring {elsewhere / '.env'}" in caplog.text and str(etc / ".env") in caplog.text
    assert s.database_url == f"sqlite:///{etc}/data/crier.db"
    assert s.data_dir == str(etc / "data") and s.media_dir == str(etc / "data" / "media")
    assert s.feed == str(etc / "feed.xml")
    (x,) = s.accounts
    assert not x.dry_run and x.secrets["consumer_key"].reveal() == "value-0"
    assert "CRIER_X_CONSUMER_KEY" not in __import__("os").environ  # not leaked into os.environ
    # the environment wins over .env; a relative sqlite path and data_dir follow the config
    s2 = load_settings(p, env={**X_SECRETS, "CRIER_X_CONSUMER_KEY": "from-env",
                               "DATABASE_URL": "sqlite:///state/c.db"})
    assert s2.accounts[0].secrets["consumer_key"].reveal() == "from-env"
    assert s2.database_url == f"sqlite:///{etc}/state/c.db"
    p.write_text(BASE + 'data_dir = "../../var/crier"\n')
    s3 = load_settings(p, env={})
    assert s3.database_url == f"sqlite:///{tmp_path}/var/crier/crier.db"
    assert s3.media_dir == f"{tmp_path}/var/crier/media"
    assert load_settings(p, env={"DATABASE_URL": "sqlite:////abs/c.db"}).database_url == \
        "sqlite:////abs/c.db"
    assert load_settings(p, env={"DATABASE_URL": "postgres://u@h/d"}).database_url == \
        "postgres://u@h/d"


# -- issue 16: Bluesky and Threads accounts ---------------------------------------------------
def test_bluesky_and_threads_accounts_and_their_secrets(tmp_path):
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "bluesky"\nname = "sky"\n'
              'handle = "@TBSocialist.bsky.social"\n'
              '[[accounts]]\nplatform = "bluesky"\nname = "pds"\nhandle = "show.test"\n'
              'service = "http://127.0.0.1:2583/"\ndry_run = true\n'
              '[[accounts]]\nplatform = "threads"\nname = "th"\n'
              '[[accounts]]\nplatform = "threads"\nname = "th2"\nuser_id = "17841400000"\n'
              'api_base = "http://127.0.0.1:9/"\ndry_run = true\n')
    assert secret_names("sky", "bluesky") == ("CRIER_SKY_APP_PASSWORD",)
    assert secret_names("th", "threads") == ("CRIER_TH_ACCESS_TOKEN",)
    env = {"CRIER_SKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop", "CRIER_TH_ACCESS_TOKEN": "THAA1"}
    sky, pds, th, th2 = load_settings(p, env=env).accounts
    assert (sky.platform, sky.handle, sky.service, sky.dry_run) == (
        "bluesky", "tbsocialist.bsky.social", "https://bsky.social", False)
    assert sky.secrets["app_password"].reveal() == "abcd-efgh-ijkl-mnop"
    assert "abcd-efgh" not in repr(sky) and sky.credentials == "environment"
    assert (pds.handle, pds.service) == ("show.test", "http://127.0.0.1:2583")
    assert (th.api_base, th.user_id, th.secrets["access_token"].reveal()) == (
        "https://graph.threads.net", "me", "THAA1")
    assert (th2.api_base, th2.user_id) == ("http://127.0.0.1:9", "17841400000")
    missing = load_settings(p, env={}).accounts
    assert missing[0].missing_secrets == ("CRIER_SKY_APP_PASSWORD",)
    assert missing[2].missing_secrets == ("CRIER_TH_ACCESS_TOKEN",)


SKY = '[[accounts]]\nplatform = "bluesky"\nname = "sky"\ndry_run = true\n'
THR = '[[accounts]]\nplatform = "threads"\nname = "th"\ndry_run = true\n'


@pytest.mark.parametrize("extra, key, words", [
    (SKY, "accounts[0].handle", "domain name like \"show.bsky.social\""),
    (SKY + 'handle = "not a handle"\n', "accounts[0].handle", "got 'not a handle'"),
    (SKY + 'handle = "nodots"\n', "accounts[0].handle", "domain name"),
    (SKY + 'handle = "a.b"\nservice = "bsky.social"\n', "accounts[0].service",
     "http(s) base URL"),
    (SKY + 'handle = "a.b"\ninstance = "https://a.b"\n', "accounts[0].instance",
     "only Mastodon accounts take an instance"),
    (SKY + 'handle = "a.b"\napi_base = "https://a.b"\n', "accounts[0].api_base",
     "only X and Threads"),
    (SKY + 'handle = "a.b"\nuser_id = "me"\n', "accounts[0].user_id", "only Threads"),
    (SKY + 'handle = "a.b"\nlink_policy = "reply"\n', "accounts[0].link_policy",
     "inline, none for bluesky"),
    (SKY + 'handel = "a.b"\n', "handel", "did you mean 'handle'"),
    (THR + 'handle = "a.b"\n', "accounts[0].handle", "only Bluesky accounts take a handle"),
    (THR + 'service = "https://a.b"\n', "accounts[0].service", "only Bluesky"),
    (THR + 'user_id = "@me"\n', "accounts[0].user_id", "numeric Threads user id"),
    (THR + 'api_base = "graph.threads.net"\n', "accounts[0].api_base", "http(s) base URL"),
    ('[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\nhandle = "a.b"\n',
     "accounts[0].handle", "only Bluesky"),
    ('[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'dry_run = true\nservice = "https://a.b"\n', "accounts[0].service", "only Bluesky"),
    ('[people."A B"]\nbluesky = "@ana"\n', 'people."A B".bluesky', "@name.bsky.social"),
    ('[people."A B"]\nbluesky = "@ana@bsky.social"\n', 'people."A B".bluesky', "domain name"),
    ('[people."A B"]\nthreads = "@ana-lima"\n', 'people."A B".threads', "1–30 letters"),
    ('[people."A B"]\nthreads = "@' + "a" * 31 + '"\n', 'people."A B".threads', "1–30"),
])
def test_bluesky_and_threads_mistakes_name_file_and_key(tmp_path, extra, key, words):
    p = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    msg = str(exc.value)
    assert str(p) in msg and key in msg and words in msg, msg


def test_an_empty_bluesky_app_password_counts_as_missing(tmp_path):
    p = write(tmp_path, BASE + '[[accounts]]\nplatform = "bluesky"\nname = "my-sky"\n'
              'handle = "show.bsky.social"\n')
    (a,) = load_settings(p, env={"CRIER_MY_SKY_APP_PASSWORD": "  "}).accounts
    assert a.missing_secrets == ("CRIER_MY_SKY_APP_PASSWORD",) and not a.dry_run


def test_people_map_takes_bluesky_and_threads_handles(tmp_path):
    p = write(tmp_path, BASE + '[people."Ana Lima"]\nbluesky = "Ana.Lima.bsky.social"\n'
              'threads = "@ana.lima_99"\nmastodon = "@ana@hci.social"\n'
              '[people."Bo"]\nbluesky = "@bo.example.com"\n')
    s = load_settings(p, env={})
    assert s.people == {"Ana Lima": {"bluesky": "@ana.lima.bsky.social",
                                     "threads": "@ana.lima_99", "mastodon": "@ana@hci.social"},
                        "Bo": {"bluesky": "@bo.example.com"}}


@pytest.mark.parametrize("where, line", [
    ("listen_link", 'listen_link = "http://["'),
    ("accounts[0].instance", '[[accounts]]\nplatform = "mastodon"\nname = "m"\n'
                             'instance = "https://[social.coop"\ndry_run = true'),
    ("podping.nodes[0]", '[podping]\nnodes = ["http://[::1"]'),
])
def test_a_malformed_url_is_a_config_error_naming_its_key(tmp_path, where, line):
    """urlsplit raises on an unclosed IPv6 bracket: said as the key's bad value, never a
    traceback."""
    with pytest.raises(ConfigError, match=r"http\(s\)|base URL") as exc:
        load_settings(write(tmp_path, BASE + line + "\n"), env={})
    assert where in str(exc.value)
