"""Settings: `crier.toml` plus the environment (and `.env`) → typed, validated values.

Every mistake is a `ConfigError` naming the file, the key (with its line, found in the right
table) and what was expected. Secrets come only from environment variables whose names are
derived from the account name (see `secret_names`); they are wrapped in `Secret` so they never
print. An account without them is not a dry run: it lists them in `missing_secrets`.

Paths never depend on the working directory: `.env`, `data_dir` (default `data`, holding the
SQLite database and prepared artwork), a relative SQLite path in `DATABASE_URL` and a relative
`feed` path all resolve against the config file's folder. Durations share one grammar with the
command line (`bot.schedule.parse_duration`).
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError

try:  # tomllib's own upstream, compiled (mypyc): the same results, about 3× faster to parse
    import tomli as tomllib
except ImportError:  # pragma: no cover - tomli is a dependency; tomllib is the same parser
    import tomllib
from bot.tomlpos import line_of as _line_of
from bot.tomlpos import line_of_path as _line_of_path

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATHS = ("config/crier.toml", "crier.toml")
DEFAULT_DATA_DIR = "data"               # relative to the config file's folder
DEFAULT_DATABASE_URL = "sqlite:///data/crier.db"  # its path relative to the config's folder
PLATFORMS = ("mastodon", "x", "bluesky", "threads")
X_API_BASE = "https://api.twitter.com"
BLUESKY_SERVICE = "https://bsky.social"       # the PDS a Bluesky account signs in to
THREADS_API_BASE = "https://graph.threads.net"
# [podping] nodes: public Hive API nodes from the Hive developer portal's list
# (https://developers.hive.io/quickstart/hive_full_nodes.html), tried in this order
HIVE_NODES = ("https://api.hive.blog", "https://api.openhive.network",
              "https://api.deathwing.me", "https://hive-api.arcange.eu")

# The secrets each platform needs; the variable is CRIER_<ACCOUNT>_<SUFFIX>.
SECRET_SUFFIXES = {
    "mastodon": ("ACCESS_TOKEN",),
    "x": ("CONSUMER_KEY", "CONSUMER_SECRET", "ACCESS_TOKEN", "ACCESS_TOKEN_SECRET"),
    "bluesky": ("APP_PASSWORD",),
    "threads": ("ACCESS_TOKEN",),
}


class Secret(str):
    """A string that never shows itself in repr, logs or tracebacks."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    platform: str
    instance: str | None = None          # Mastodon base URL
    api_base: str = X_API_BASE           # X (or Threads) API host (a test server, a proxy)
    handle: str | None = None            # Bluesky: the account's handle ("show.bsky.social")
    service: str = BLUESKY_SERVICE       # Bluesky: the PDS base URL
    user_id: str = "me"                  # Threads: the profile's user id
    dry_run: bool = False                # True: record what would be posted, send nothing
    dry_run_reason: str = ""
    visibility: str = "public"
    template: str | None = None
    hashtags: tuple[str, ...] = ()
    max_characters: int | None = None    # only for dry runs: the instance is not asked then
    timeout: float = 10.0
    link: str = "episode"                # which link: "episode" page or the show's "listen" link
    utm: dict[str, str] = field(default_factory=dict, compare=False)
    link_policy: str = "inline"          # inline | none | reply (X charges more for URLs)
    x_budget: Any = None                 # a bot.xcost.Budget: x_budget = "5.00/month" (X only)
    over_budget: str = "hold"            # X over its budget: "hold" the post, or "no-link"
    media: str = "card"                  # "card": the link card; "artwork": attach the artwork
    alt_template: str | None = None
    ellipsis: str | None = None
    min_gap: int | None = None           # seconds between two posts (None: the [promos] one)
    quiet_hours: str | None = None       # "22:00-07:00" in the show's time zone
    amplify: str | None = None           # an amplifier: boosts this official account's posts
    amplify_delay: int = 300             # seconds after the official post
    notify: tuple[str, ...] = field(default=(), repr=False)  # Apprise URLs (+ the top-level)
    secrets: dict[str, Secret] = field(default_factory=dict, repr=False, compare=False)
    # the variables that are unset or empty, for an account that is not a dry run: it cannot
    # post, so `crier run` refuses to start (names only, never values)
    missing_secrets: tuple[str, ...] = ()
    # where the secrets come from: "environment", "connected in the web app" (bot.connect),
    # or why a connected one cannot be used; "" for none
    credentials: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path
    show: str
    feed: str                            # http(s) URL or an absolute file path
    poll_interval: int = 900             # seconds
    min_poll_interval: int = 60          # seconds: adaptive polling never polls more often
    timezone: str = "UTC"
    max_new_per_poll: int = 3
    first_run_backfill: int = 0
    dispatch_interval: int = 5
    max_attempts: int = 8
    accounts: tuple[Account, ...] = ()
    database_url: str = DEFAULT_DATABASE_URL
    listen_link: str | None = None
    people: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)
    boilerplate_patterns: tuple[str, ...] = ()
    media_dir: str = "data/media"         # prepared artwork (owner-only)
    data_dir: str = DEFAULT_DATA_DIR      # absolute once loaded: the database and media_dir
    # what URLs from the feed may reach (see bot.netguard), and download deadlines (seconds)
    allow_private_networks: tuple[str, ...] = ()  # CIDR, e.g. ("10.0.0.0/8",)
    feed_deadline: int = 60
    image_deadline: int = 30
    # polls in flight at once in one worker, and at most this many to one host (bot.fleet)
    max_polls_in_flight: int = 16
    max_polls_per_host: int = 4
    # where the control room is reached from the internet: WebSub hubs call <public_url>/websub/
    public_url: str | None = None
    # the promo queue ([promos] table)
    min_gap: int = 1800                   # seconds between two posts of one account
    quiet_hours: str | None = None        # "22:00-07:00": no promo goes out then
    promo_grace: int = 6 * 3600           # a promo overdue by more is reported, not posted
    evergreen_template: str | None = None
    evergreen_cooldown: int = 90 * 86400  # an episode is promoted again after this long
    # the community ([community] table): posts to propose for a boost
    community: bool = False
    community_account: str | None = None  # the official Mastodon account (default: first)
    community_hashtags: tuple[str, ...] = ()  # default: that account's hashtags
    community_mentions: bool = True
    community_allow: tuple[str, ...] = ()  # authors boosted without asking ("user@host")
    community_interval: int = 600
    # notifications to the host (bot/alerts.py): Apprise URLs; a feed failing this long
    notify: tuple[str, ...] = field(default=(), repr=False, compare=False)
    feed_alert_after: int = 3600
    # the podping watcher ([podping] table, deployment-wide; bot/podping.py)
    podping_enabled: bool = True
    podping_nodes: tuple[str, ...] = HIVE_NODES
    slug: str = ""                        # the show's short name (bot/deployment.py)

    def notify_urls(self, account: str | None = None) -> tuple[str, ...]:
        """Where a notification about `account` (or about crier as a whole) goes: the
        account's own `notify` URLs, then the top-level ones."""
        own = next((a.notify for a in self.accounts if a.name == account), ())
        return tuple(dict.fromkeys(own + self.notify))

    @property
    def posting_accounts(self) -> tuple[Account, ...]:
        """The official accounts: everything is posted on these (not on amplifiers)."""
        return tuple(a for a in self.accounts if not a.amplify)

    def amplifiers_of(self, name: str) -> tuple[Account, ...]:
        return tuple(a for a in self.accounts if a.amplify == name)

    def gap_for(self, account: Account) -> int:
        return self.min_gap if account.min_gap is None else account.min_gap

    def quiet_for(self, account: Account) -> str | None:
        return self.quiet_hours if account.quiet_hours is None else (account.quiet_hours or None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def unconfigured(self) -> tuple[Account, ...]:
        """Accounts that are not dry runs but lack their credentials (they cannot post)."""
        return tuple(a for a in self.accounts if a.missing_secrets and not a.dry_run)

    def account(self, name: str) -> Account:
        for a in self.accounts:
            if a.name == name:
                return a
        raise ConfigError(f"no account named '{name}' (have: "
                          f"{', '.join(a.name for a in self.accounts) or 'none'})",
                          file=str(self.path))


# key: (type(s), required, description for messages)
TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "show": ((str,), "the show's name (text)"),
    "slug": ((str,), "the show's short name: lower-case letters, digits and -"),
    "feed": ((str,), "the feed's http(s) URL or a file path (text)"),
    "poll_interval": ((int, str), "seconds (a number) or a duration like \"15m\""),
    "min_poll_interval": ((int, str), "seconds (a number) or a duration like \"1m\""),
    "data_dir": ((str,), "a folder for the SQLite database and artwork (relative: to this "
                         "file's folder)"),
    "timezone": ((str,), "an IANA time zone like \"America/New_York\""),
    "max_new_per_poll": ((int,), "a whole number ≥ 1"),
    "first_run_backfill": ((int,), "a whole number ≥ 0"),
    "dispatch_interval": ((int, str), "seconds (a number) or a duration like \"5s\""),
    "max_attempts": ((int,), "a whole number ≥ 1"),
    "accounts": ((list,), "a list of [[accounts]] tables"),
    "listen_link": ((str,), "an http(s) URL where listeners find the show"),
    "people": ((dict,), "a table of [people.\"Name\"] tables with mastodon/x/bluesky/threads "
                        "handles"),
    "boilerplate_patterns": ((list,), "a list of regular expressions (text)"),
    "promos": ((dict,), "a [promos] table (min_gap, quiet_hours, grace, evergreen_template, "
                        "evergreen_cooldown)"),
    "community": ((dict,), "a [community] table (enabled, account, hashtags, mentions, allow, "
                           "interval)"),
    "notify": ((list,), "a list of Apprise URLs, e.g. [\"ntfy://ntfy.sh/my-topic\"]"),
    "feed_alert_after": ((int, str), "a duration like \"1h\""),
    "allow_private_networks": ((list,), "a list of networks like [\"10.0.0.0/8\"]"),
    "feed_deadline": ((int, str), "a duration like \"60s\" for a whole feed download"),
    "image_deadline": ((int, str), "a duration like \"30s\" for a whole artwork download"),
    "max_polls_in_flight": ((int,), "a whole number ≥ 1 (feeds polled at once)"),
    "max_polls_per_host": ((int,), "a whole number ≥ 1 (feeds polled at once from one host)"),
    "public_url": ((str,), "the control room's public base URL, e.g. "
                           "\"https://crier.example.org\" (WebSub hubs call it)"),
    "podping": ((dict,), "a [podping] table (enabled, nodes)"),
}
PODPING_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "enabled": ((bool,), "true or false"),
    "nodes": ((list,), "a list of Hive API URLs, e.g. [\"https://api.hive.blog\"]"),
}
COMMUNITY_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "enabled": ((bool,), "true or false"),
    "account": ((str,), "the official Mastodon account's name"),
    "hashtags": ((list,), "hashtags to watch, e.g. [\"BlockchainSocialist\"]"),
    "mentions": ((bool,), "true or false: propose posts that mention the account"),
    "allow": ((list,), "authors boosted without approval, e.g. [\"cohost@social.coop\"]"),
    "interval": ((int, str), "a duration like \"10m\""),
}
PROMO_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "min_gap": ((int, str), "a duration like \"30m\" (0: no gap)"),
    "quiet_hours": ((str,), "local times like \"22:00-07:00\" (\"\": none)"),
    "grace": ((int, str), "a duration like \"6h\""),
    "evergreen_template": ((str,), "a Jinja2 template (text)"),
    "evergreen_cooldown": ((int, str), "a duration like \"90d\""),
}
ACCOUNT_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "platform": ((str,), "\"mastodon\", \"x\", \"bluesky\" or \"threads\""),
    "name": ((str,), "a short name of letters, digits, - or _"),
    "instance": ((str,), "the Mastodon instance's https:// base URL"),
    "api_base": ((str,), "the X or Threads API's base URL"),
    "handle": ((str,), "the Bluesky handle, e.g. \"show.bsky.social\""),
    "service": ((str,), "the Bluesky PDS's https:// base URL (default https://bsky.social)"),
    "user_id": ((str,), "the Threads user id (default \"me\")"),
    "upload_base": ((str,), "nothing: no longer used (images go to api_base)"),
    "dry_run": ((bool,), "true or false"),
    "visibility": ((str,), "public, unlisted, private or direct"),
    "template": ((str,), "a Jinja2 template (text)"),
    "hashtags": ((list,), "a list of hashtags, e.g. [\"BlockchainSocialist\"]"),
    "max_characters": ((int,), "a whole number (used for dry runs only)"),
    "timeout": ((int, float, str), "seconds (a number) or a duration like \"10s\""),
    "link": ((str,), "\"episode\" or \"listen\""),
    "utm": ((dict,), "a table of query parameters, e.g. { utm_source = \"mastodon\" }"),
    "link_policy": ((str,), "\"inline\", \"none\" or \"reply\""),
    "x_budget": ((str,), "dollars per month like \"5.00/month\" (X accounts)"),
    "over_budget": ((str,), "\"hold\" or \"no-link\" (X accounts)"),
    "media": ((str,), "\"card\" or \"artwork\""),
    "alt_template": ((str,), "a Jinja2 template for the artwork's alt text"),
    "ellipsis": ((str,), "the text put where something was shortened, e.g. \"…\""),
    "min_gap": ((int, str), "a duration like \"30m\" between two posts (0: no gap)"),
    "quiet_hours": ((str,), "local times like \"22:00-07:00\" (\"\": none)"),
    "amplify": ((str,), "the name of the official account whose posts this one boosts"),
    "amplify_delay": ((int, str), "a duration like \"5m\" after the official post"),
    "notify": ((list,), "a list of Apprise URLs, e.g. [\"ntfy://ntfy.sh/my-topic\"]"),
}
HANDLE_PATTERNS = {
    "mastodon": (re.compile(r"^@?[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*"
                            r"@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"), "\"@user@instance.social\""),
    "x": (re.compile(r"^@?[A-Za-z0-9_]{1,15}$"), "\"@user\" (1–15 letters, digits or _)"),
    # a domain name (atproto handle syntax): labels of letters, digits and -, a letter first
    # in the last one; 253 characters at most
    "bluesky": (re.compile(r"^@?(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                           r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"),
                "\"@name.bsky.social\" (a domain name)"),
    "threads": (re.compile(r"^@?[A-Za-z0-9._]{1,30}$"),
                "\"@user\" (1–30 letters, digits, . or _)"),
}
# keys only some networks take: (the platforms that take it, what to say to the others)
PLATFORM_KEYS = {
    "instance": (("mastodon",), "only Mastodon accounts take an instance; X and Threads use "
                                "api_base, Bluesky service"),
    "api_base": (("x", "threads"), "only X and Threads accounts take api_base"),
    "upload_base": (("x",), "only X accounts took upload_base"),
    "handle": (("bluesky",), "only Bluesky accounts take a handle"),
    "service": (("bluesky",), "only Bluesky accounts take a service (their PDS)"),
    "user_id": (("threads",), "only Threads accounts take a user_id"),
}
REQUIRED_TOP = ("show", "feed")
SECRET_KEYS = frozenset({"notify"})  # values never shown in an error (Apprise URLs)
VISIBILITIES = ("public", "unlisted", "private", "direct")
_QUIET = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def env_prefix(account_name: str) -> str:
    return "CRIER_" + re.sub(r"[^A-Z0-9]", "_", account_name.upper()) + "_"


def secret_names(account_name: str, platform: str) -> tuple[str, ...]:
    """The environment variables that hold an account's secrets."""
    return tuple(env_prefix(account_name) + s for s in SECRET_SUFFIXES[platform])


def find_config(explicit: str | None, env: dict[str, str]) -> Path:
    if explicit:
        return Path(explicit)
    if env.get("CRIER_CONFIG"):
        return Path(env["CRIER_CONFIG"])
    for p in DEFAULT_CONFIG_PATHS:
        if Path(p).exists():
            return Path(p)
    raise ConfigError("no configuration found: pass --config PATH, set CRIER_CONFIG, or create "
                      "config/crier.toml", file=DEFAULT_CONFIG_PATHS[0])


def load_dotenv_file(path: str | os.PathLike = ".env") -> None:
    """Load a `.env` file into os.environ without overriding what is set (not used by crier
    itself any more: `load_settings` reads the `.env` next to the config file)."""
    if Path(path).is_file():
        from dotenv import load_dotenv
        load_dotenv(path, override=False)


def dotenv_values_for(cfg_path: Path) -> dict[str, str]:
    """The `.env` next to the config file, as a dict (os.environ is left alone). A `.env` in
    the working directory instead is ignored, with a warning saying where crier looks."""
    own = cfg_path.parent / ".env"
    cwd = Path(".env")
    if cwd.is_file() and cwd.resolve() != own.resolve():
        log.warning("ignoring %s: crier reads the .env next to its config file (%s)",
                    cwd.resolve(), own)
    if not own.is_file():
        return {}
    from dotenv import dotenv_values
    try:
        return {k: v for k, v in dotenv_values(own).items() if v is not None}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=str(own)) from None


def resolve_path(value: str, base: Path) -> Path:
    """A path the host wrote in a config file: `~` expanded, relative to `base`."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?):///(?!/)([^?]+)(\?.*)?$")


def resolve_database_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative path (`sqlite:///data/crier.db`) → its absolute path
    under `base`; any other URL is returned as it is."""
    m = _SQLITE_URL.match(url.strip())
    if not m or m[2] == ":memory:":
        return url
    return f"{m[1]}:///{resolve_path(m[2], base)}{m[3] or ''}"


def load_settings(path: str | os.PathLike | None = None,
                  env: dict[str, str] | None = None) -> Settings:
    """Read and check a config file and return its one show. `env` (default os.environ) wins
    over the `.env` file next to the config. A config with several shows (`[[shows]]`,
    `include`) is an error naming them: use `bot.deployment.load_deployment` there."""
    from bot.deployment import load_deployment  # the multi-show half of this adapter
    return load_deployment(path, env).show(None)


def read_config(cfg_path: Path) -> tuple[str, dict[str, Any]]:
    """A config file's text and its parsed TOML; an unreadable file is a ConfigError."""
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(cfg_path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read: {e}", file=str(cfg_path)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"not valid TOML: {e}", file=str(cfg_path)) from None


def validate_show(raw: dict[str, Any], cfg_path: Path, text: str, env: dict[str, str], *,
                  own_paths: bool = True) -> Settings:
    """One show in today's single-show layout → Settings. `text` is only read on the error
    path, to find the line of the key an error names ("" leaves lines unknown). `own_paths`
    False: data_dir and the database are the deployment's (the caller sets them)."""
    try:
        return _validate(raw, cfg_path, text, env, own_paths)
    except ConfigError as e:
        # a key path ("accounts[1].min_gap", "promos.grace") or a top-level key: its line
        if e.line is None and e.key and e.file == str(cfg_path) and (
                "." in e.key or "[" in e.key or e.key in TOP_KEYS):
            line = _line_of_path(text, e.key)
            if line is not None:
                raise ConfigError(e.detail, file=e.file, key=e.key, line=line) from None
        raise


def _check_keys(table: dict[str, Any], schema: dict, where: str, file: str, text: str,
                section: str | None = None, index: int = 0) -> None:
    for key, value in table.items():
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            expected = f"did you mean '{hint[0]}'?" if hint else \
                f"known keys: {', '.join(sorted(schema))}"
            raise ConfigError(f"unknown key {where}; {expected}", file=file, key=key,
                              line=_line_of(text, key, section, index))
        types, desc = schema[key]
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            shown = "" if key in SECRET_KEYS else f" {value!r}"  # URLs with tokens
            raise ConfigError(f"expected {desc}, got {type(value).__name__}{shown}",
                              file=file, key=key, line=_line_of(text, key, section, index))


def parse_duration(value: int | str, *, file: str, key: str, minimum: int = 60) -> int:
    """Seconds from a duration key: a number of seconds, or text in the one grammar crier
    uses everywhere (`--in` too): "90s", "15m", "1h30m", "5 minutes", "2 days", "1.5h"."""
    if isinstance(value, int):
        seconds = value
    elif value.strip().isdigit():
        from bot.schedule import DURATION_HINT
        raise ConfigError(f"{value!r} has no unit: write {value.strip()} without quotes for "
                          f"seconds, or add a unit. {DURATION_HINT}", file=file, key=key)
    else:
        seconds = _text_seconds(value, minimum == 0)
        if isinstance(seconds, str):
            raise ConfigError(f"expected a duration: {seconds}", file=file, key=key)
    if seconds < minimum:
        raise ConfigError(f"must be at least {minimum} seconds"
                          f"{' (polite polling)' if 'poll_interval' in key else ''}, got {seconds}",
                          file=file, key=key)
    return seconds


@functools.lru_cache(maxsize=4096)
def _text_seconds(value: str, allow_zero: bool) -> int | str:
    """A duration text's seconds, or the problem with it (remembered: thousands of show files
    repeat the same few durations)."""
    from bot.schedule import ScheduleError
    from bot.schedule import parse_duration as parse_text
    try:
        return round(parse_text(value, allow_zero=allow_zero).total_seconds())
    except ScheduleError as e:
        return f"{e.problem}. {e.hint}"


def parse_quiet_hours(value: str, *, file: str, key: str) -> str | None:
    """"22:00-07:00" (normalized to HH:MM-HH:MM), or None for ""."""
    if not value.strip():
        return None
    m = _QUIET.match(value)
    if not m or (m.group(1), m.group(2)) == (m.group(3), m.group(4)):
        raise ConfigError(f"expected local times like \"22:00-07:00\", got {value!r}",
                          file=file, key=key)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def _notify_list(urls: list, *, file: str, key: str, line: int | None) -> tuple[str, ...]:
    """Apprise URLs, each one Apprise understands. An error names the key, its line and
    the URL's place and scheme, never the URL itself (it carries tokens)."""
    out = []
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"expected a list of Apprise URLs (text); item {i + 1} is "
                              f"{type(url).__name__}", file=file, key=key, line=line)
        if not _apprise_understands(url):
            m = re.match(r"([A-Za-z][A-Za-z0-9+.-]{0,24})://", url.strip())
            scheme = m.group(1).lower() if m else None
            what = f"a '{scheme}://' URL" if scheme else "not a URL"
            raise ConfigError(f"item {i + 1} ({what}) is not a notification URL Apprise "
                              "understands; see https://github.com/caronc/apprise/wiki for "
                              "each service's form", file=file, key=key, line=line)
        out.append(url.strip())
    return tuple(out)


def _apprise_understands(url: str) -> bool:
    import apprise
    quiet = logging.getLogger("apprise")  # its messages could show the URL: kept out
    if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
        quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return apprise.Apprise.instantiate(url.strip()) is not None


def _community(table: dict[str, Any], accounts: list[Account], file: str,
               text: str) -> dict[str, Any]:
    _check_keys(table, COMMUNITY_KEYS, "in [community]", file, text, "community")
    if not table.get("enabled", False):
        return {}
    masto = [a for a in accounts if a.platform == "mastodon" and not a.amplify]
    name = table.get("account") or (masto[0].name if masto else None)
    if name not in {a.name for a in masto}:
        raise ConfigError("the community is watched from an official Mastodon account; "
                          f"{name!r} is not one (have: "
                          f"{', '.join(a.name for a in masto) or 'none'})", file=file,
                          key="community.account")
    account = next(a for a in masto if a.name == name)
    tags = table.get("hashtags", list(account.hashtags))
    if not all(isinstance(t, str) and re.fullmatch(r"#?\w+", t) for t in tags):
        raise ConfigError("expected hashtags as words without spaces", file=file,
                          key="community.hashtags")
    allow = table.get("allow", [])
    if not all(isinstance(a, str) and a.strip() for a in allow):
        raise ConfigError("expected account names like \"user@host\"", file=file,
                          key="community.allow")
    out: dict[str, Any] = {
        "community": True, "community_account": name,
        "community_hashtags": tuple(t.lstrip("#") for t in tags),
        "community_mentions": table.get("mentions", True),
        "community_allow": tuple(a.strip().lstrip("@").lower() for a in allow)}
    if "interval" in table:
        out["community_interval"] = parse_duration(table["interval"], file=file,
                                                   key="community.interval")
    return out


def _promos(table: dict[str, Any], file: str, text: str) -> dict[str, Any]:
    _check_keys(table, PROMO_KEYS, "in [promos]", file, text, "promos")
    out: dict[str, Any] = {}
    if "min_gap" in table:
        out["min_gap"] = parse_duration(table["min_gap"], file=file, key="promos.min_gap",
                                        minimum=0)
    if "quiet_hours" in table:
        out["quiet_hours"] = parse_quiet_hours(table["quiet_hours"], file=file,
                                               key="promos.quiet_hours")
    if "grace" in table:
        out["promo_grace"] = parse_duration(table["grace"], file=file, key="promos.grace")
    if "evergreen_template" in table:
        out["evergreen_template"] = table["evergreen_template"]
    if "evergreen_cooldown" in table:
        out["evergreen_cooldown"] = parse_duration(table["evergreen_cooldown"], file=file,
                                                   key="promos.evergreen_cooldown", minimum=0)
    return out


def _validate(raw: dict[str, Any], cfg_path: Path, text: str, env: dict[str, str],
              own_paths: bool = True) -> Settings:
    file = str(cfg_path)
    base = cfg_path.absolute().parent
    _check_keys(raw, TOP_KEYS, "at the top level", file, text)
    for key in REQUIRED_TOP:
        if not str(raw.get(key, "")).strip():
            raise ConfigError(f"required: {TOP_KEYS[key][1]}", file=file, key=key)

    feed = raw["feed"].strip()
    scheme = urlsplit(feed).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(feed).netloc:
            raise ConfigError(f"not a valid URL: {feed!r}", file=file, key="feed")
    elif scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt"):
        feed = str(resolve_path(feed[7:] if scheme == "file" else feed, base))
    else:
        raise ConfigError(f"only http(s) URLs and file paths are supported, got {feed!r}",
                          file=file, key="feed", line=_line_of(text, "feed"))

    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {timezone!r}; expected an IANA name like "
                          "\"America/New_York\"", file=file, key="timezone",
                          line=_line_of(text, "timezone")) from None

    ints = {}
    if "dispatch_interval" in raw:
        ints["dispatch_interval"] = parse_duration(raw["dispatch_interval"], file=file,
                                                   key="dispatch_interval", minimum=1)
    for key, low in (("max_new_per_poll", 1), ("first_run_backfill", 0),
                     ("max_attempts", 1)):
        if key in raw:
            if raw[key] < low:
                raise ConfigError(f"must be ≥ {low}, got {raw[key]}", file=file, key=key,
                                  line=_line_of(text, key))
            ints[key] = raw[key]

    listen_link = raw.get("listen_link")
    if listen_link is not None:
        if not _is_http_url(listen_link):
            raise ConfigError(f"expected an http(s) URL, got {listen_link!r}", file=file,
                              key="listen_link", line=_line_of(text, "listen_link"))
    patterns = []
    for i, pat in enumerate(raw.get("boilerplate_patterns", [])):
        try:
            re.compile(pat)
        except (re.error, TypeError) as e:
            raise ConfigError(f"not a valid regular expression: {pat!r} ({e})", file=file,
                              key=f"boilerplate_patterns[{i}]") from None
        patterns.append(pat)
    people = _people(raw.get("people", {}), file)

    accounts = []
    seen: set[str] = set()
    for i, table in enumerate(raw.get("accounts", [])):
        where = f"accounts[{i}]"
        if not isinstance(table, dict):
            raise ConfigError("each account must be a [[accounts]] table", file=file, key=where)
        _check_keys(table, ACCOUNT_KEYS, f"in [[accounts]] #{i + 1}", file, text, "accounts",
                    i)
        acc = _account(table, where, file, text, env)
        if acc.name in seen:
            raise ConfigError(f"duplicate account name '{acc.name}'", file=file,
                              key=f"{where}.name")
        seen.add(acc.name)
        accounts.append(acc)
    names = {a.name: a for a in accounts}
    for i, acc in enumerate(accounts):
        if acc.amplify is None:
            continue
        target = names.get(acc.amplify)
        if target is None or target.amplify is not None or target is acc:
            raise ConfigError(f"amplify names the official account whose posts this one "
                              f"boosts; {acc.amplify!r} is not one (official accounts: "
                              f"{', '.join(a.name for a in accounts if not a.amplify)})",
                              file=file, key=f"accounts[{i}].amplify")
        if target.platform != acc.platform:
            raise ConfigError(f"an amplifier boosts on its own network: '{acc.name}' is on "
                              f"{acc.platform}, '{target.name}' on {target.platform}",
                              file=file, key=f"accounts[{i}].amplify")

    poll_interval = parse_duration(raw.get("poll_interval", 900), file=file, key="poll_interval")
    min_poll = parse_duration(raw.get("min_poll_interval", 60), file=file,
                              key="min_poll_interval")
    if min_poll > poll_interval:
        raise ConfigError(f"must not be longer than poll_interval ({poll_interval} s), got "
                          f"{min_poll} s", file=file, key="min_poll_interval",
                          line=_line_of(text, "min_poll_interval"))
    return Settings(
        path=cfg_path, show=raw["show"].strip(), feed=feed,
        poll_interval=poll_interval, min_poll_interval=min_poll,
        timezone=timezone, accounts=tuple(accounts),
        **(_paths(raw, env, base, file) if own_paths else {}),
        listen_link=listen_link, people=people, boilerplate_patterns=tuple(patterns),
        notify=_notify_list(raw.get("notify", []), file=file, key="notify", line=None),
        feed_alert_after=parse_duration(raw.get("feed_alert_after", 3600), file=file,
                                        key="feed_alert_after", minimum=0),
        **_promos(raw.get("promos", {}), file, text),
        **_community(raw.get("community", {}), accounts, file, text), **ints,
        **_safety(raw, file, text))


def _safety(raw: dict[str, Any], file: str, text: str) -> dict[str, Any]:
    """allow_private_networks (validated CIDR) and the download deadlines."""
    import ipaddress
    out: dict[str, Any] = {}
    networks = []
    for i, value in enumerate(raw.get("allow_private_networks", [])):
        try:
            networks.append(str(ipaddress.ip_network(str(value).strip(), strict=True)))
        except ValueError as e:
            raise ConfigError(f"expected a network like \"10.0.0.0/8\" or an address, got "
                              f"{value!r} ({e})", file=file, key=f"allow_private_networks[{i}]",
                              line=_line_of(text, "allow_private_networks")) from None
    if networks:
        out["allow_private_networks"] = tuple(networks)
    for key in ("feed_deadline", "image_deadline"):
        if key in raw:
            out[key] = parse_duration(raw[key], file=file, key=key, minimum=1)
    for key in ("max_polls_in_flight", "max_polls_per_host"):
        if key in raw:
            if raw[key] < 1:
                raise ConfigError(f"must be ≥ 1, got {raw[key]}", file=file, key=key,
                                  line=_line_of(text, key))
            out[key] = raw[key]
    if "public_url" in raw:
        out["public_url"] = _public_url(raw["public_url"], file, text)
    return {**out, **_podping(raw.get("podping", {}), file, text)}


def _podping(table: dict[str, Any], file: str, text: str) -> dict[str, Any]:
    """[podping]: enabled (default true) and nodes (http(s) URLs of Hive API nodes)."""
    _check_keys(table, PODPING_KEYS, "in [podping]", file, text, "podping")
    out: dict[str, Any] = {}
    if "enabled" in table:
        out["podping_enabled"] = table["enabled"]
    if "nodes" in table:
        nodes = []
        for i, node in enumerate(table["nodes"]):
            if not _is_http_url(node.strip() if isinstance(node, str) else node):
                raise ConfigError(f"expected a Hive API node's http(s) URL, got {node!r}",
                                  file=file, key=f"podping.nodes[{i}]",
                                  line=_line_of(text, "nodes", "podping"))
            nodes.append(node.strip().rstrip("/"))
        if not nodes and out.get("podping_enabled", True):
            raise ConfigError("no Hive API node: name at least one, or set enabled = false",
                              file=file, key="podping.nodes",
                              line=_line_of(text, "nodes", "podping"))
        out["podping_nodes"] = tuple(dict.fromkeys(nodes))
    return out


def _public_url(value: str, file: str, text: str) -> str | None:
    """The control room's public base URL (WebSub callbacks): http(s), no query or fragment."""
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"expected the control room's public base URL like "
                          f"\"https://crier.example.org\" (a path is fine: "
                          f"\"https://example.org/crier\"), got {value!r}", file=file,
                          key="public_url", line=_line_of(text, "public_url"))
    return value.rstrip("/")


def _paths(raw: dict[str, Any], env: dict[str, str], base: Path, file: str) -> dict[str, str]:
    """data_dir, the database URL and media_dir, absolute (see the module docstring)."""
    value = raw.get("data_dir", DEFAULT_DATA_DIR)
    if not value.strip():
        raise ConfigError("expected a folder, got an empty text", file=file, key="data_dir")
    data = resolve_path(value, base)
    url = (env.get("DATABASE_URL") or "").strip() or f"sqlite:///{data / 'crier.db'}"
    return {"data_dir": str(data), "media_dir": str(data / "media"),
            "database_url": resolve_database_url(url, base)}


def _people(table: dict[str, Any], file: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for name, handles in table.items():
        key = f"people.\"{name}\""
        if not isinstance(handles, dict):
            raise ConfigError("expected a table like { mastodon = \"@user@host\", x = \"@user\", "
                              "bluesky = \"@user.bsky.social\", threads = \"@user\" }",
                              file=file, key=key)
        for platform, handle in handles.items():
            if platform not in HANDLE_PATTERNS:
                raise ConfigError(f"unknown network {platform!r}; expected "
                                  f"{', '.join(HANDLE_PATTERNS)}", file=file,
                                  key=f"{key}.{platform}")
            pattern, desc = HANDLE_PATTERNS[platform]
            if not isinstance(handle, str) or not pattern.match(handle.strip()):
                raise ConfigError(f"expected a handle like {desc}, got {handle!r}", file=file,
                                  key=f"{key}.{platform}")
        out[name] = {p: "@" + (h.strip().lstrip("@").lower() if p == "bluesky" else
                               h.strip().lstrip("@")) for p, h in handles.items()}
    return out


def _is_http_url(value: Any) -> bool:
    """An absolute http(s) URL with a host (what every URL key of the config must be)."""
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
    except ValueError:          # e.g. "http://[" : said as a bad value, not a traceback
        return False
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.netloc)


def _base_url(value: str, *, file: str, key: str) -> str:
    if not _is_http_url(value):
        raise ConfigError(f"expected an http(s) base URL, got {value!r}", file=file, key=key)
    return value.rstrip("/")


def _account(table: dict[str, Any], where: str, file: str, text: str,
             env: dict[str, str]) -> Account:
    platform = table.get("platform")
    if platform not in PLATFORMS:
        raise ConfigError(f"expected one of {', '.join(PLATFORMS)}, got {platform!r}",
                          file=file, key=f"{where}.platform")
    name = table.get("name", "")
    if not _NAME.match(name):
        raise ConfigError(f"expected a short name of letters, digits, - or _, got {name!r}",
                          file=file, key=f"{where}.name")
    kw: dict[str, Any] = {}
    if platform == "mastodon":
        instance = table.get("instance", "")
        if not _is_http_url(instance):
            raise ConfigError(f"expected the instance's base URL like \"https://social.coop\", "
                              f"got {instance!r}", file=file, key=f"{where}.instance")
        kw["instance"] = instance.rstrip("/")
    for k, (takers, message) in PLATFORM_KEYS.items():
        if k in table and platform not in takers:
            raise ConfigError(message, file=file, key=f"{where}.{k}")
    if platform == "threads":
        kw["api_base"] = THREADS_API_BASE
        user_id = table.get("user_id", "me").strip()
        if not re.fullmatch(r"me|\d{1,30}", user_id):
            raise ConfigError(f"expected \"me\" or a numeric Threads user id, got "
                              f"{table['user_id']!r}", file=file, key=f"{where}.user_id")
        kw["user_id"] = user_id
    if platform == "bluesky":
        handle = table.get("handle", "")
        pattern, desc = HANDLE_PATTERNS["bluesky"]
        if not pattern.match(handle.strip()):
            raise ConfigError(f"expected the account's handle, a domain name like "
                              f"\"show.bsky.social\", got {handle!r}", file=file,
                              key=f"{where}.handle")
        kw["handle"] = handle.strip().lstrip("@").lower()
        if "service" in table:
            kw["service"] = _base_url(table["service"], file=file, key=f"{where}.service")
    if platform != "mastodon":
        if "api_base" in table:
            kw["api_base"] = _base_url(table["api_base"], file=file, key=f"{where}.api_base")
        if "upload_base" in table:
            # X retired the v1.1 upload host; images now go to api_base's /2/media/upload
            log.warning("%s: key '%s.upload_base' is no longer used (X takes images at "
                        "api_base); remove it", file, where)
    if "visibility" in table:
        if table["visibility"] not in VISIBILITIES:
            raise ConfigError(f"expected one of {', '.join(VISIBILITIES)}, "
                              f"got {table['visibility']!r}", file=file,
                              key=f"{where}.visibility")
        kw["visibility"] = table["visibility"]
    if "hashtags" in table:
        tags = table["hashtags"]
        if not all(isinstance(t, str) and re.fullmatch(r"#?\w+", t) for t in tags):
            raise ConfigError("expected hashtags as words without spaces, e.g. "
                              "[\"BlockchainSocialist\"]", file=file, key=f"{where}.hashtags")
        kw["hashtags"] = tuple(t.lstrip("#") for t in tags)
    for k in ("template", "max_characters", "alt_template", "ellipsis"):
        if k in table:
            kw[k] = table[k]
    if "timeout" in table:
        t = table["timeout"]
        kw["timeout"] = float(t) if not isinstance(t, str) else float(
            parse_duration(t, file=file, key=f"{where}.timeout", minimum=1))
        if kw["timeout"] <= 0:
            raise ConfigError(f"must be more than 0 seconds, got {t}", file=file,
                              key=f"{where}.timeout")
    for k, allowed in (("link", ("episode", "listen")), ("media", ("card", "artwork")),
                       ("link_policy", ("inline", "none", "reply") if platform == "x"
                        else ("inline", "none"))):
        if k in table:
            if table[k] not in allowed:
                raise ConfigError(f"expected one of {', '.join(allowed)} for {platform}, "
                                  f"got {table[k]!r}", file=file, key=f"{where}.{k}")
            kw[k] = table[k]
    if "x_budget" in table or "over_budget" in table:   # X's pay-per-use (bot.xcost)
        kw.update(_x_budget(table, platform, where, file))
    if "utm" in table:
        if not all(isinstance(v, str) for v in table["utm"].values()):
            raise ConfigError("expected text values, e.g. { utm_source = \"mastodon\" }",
                              file=file, key=f"{where}.utm")
        kw["utm"] = dict(table["utm"])
    if "min_gap" in table:
        kw["min_gap"] = parse_duration(table["min_gap"], file=file, key=f"{where}.min_gap",
                                       minimum=0)
    if "quiet_hours" in table:
        kw["quiet_hours"] = parse_quiet_hours(table["quiet_hours"], file=file,
                                              key=f"{where}.quiet_hours") or ""
    if "amplify" in table:
        kw["amplify"] = table["amplify"]
    if "amplify_delay" in table:
        kw["amplify_delay"] = parse_duration(table["amplify_delay"], file=file,
                                             key=f"{where}.amplify_delay", minimum=0)
    if "notify" in table:
        kw["notify"] = _notify_list(table["notify"], file=file, key=f"{where}.notify",
                                    line=None)  # its line: found by validate_show
    if kw.get("link_policy") in ("none", "reply") and "media" not in table:
        kw["media"] = "artwork"  # no link card without a link: show the artwork instead

    # Only the host makes a dry run (dry_run = true, or --dry-run); no credentials at all is
    # not one: `missing_secrets` names them and `crier run` refuses to start. Some but not all
    # of them set is a mistake in any case.
    names = secret_names(name, platform)
    found = {n: env[n] for n in names if env.get(n, "").strip()}
    missing = tuple(n for n in names if n not in found)
    dry = table.get("dry_run") is True
    if found and missing and not dry:
        raise ConfigError(f"missing secret for account '{name}': set "
                          f"{', '.join(missing)} in the environment or .env "
                          f"(or dry_run = true)", file=file, key=f"{where}")
    secrets = {n[len(env_prefix(name)):].lower(): Secret(found[n]) for n in found}
    return Account(name=name, platform=platform, dry_run=dry,
                   dry_run_reason="dry_run = true in config" if dry else "",
                   secrets=secrets, missing_secrets=() if dry else missing,
                   credentials="environment" if found else "", **kw)


def _x_budget(table: dict[str, Any], platform: str, where: str, file: str) -> dict[str, Any]:
    """`x_budget = "5.00/month"` and `over_budget = "hold" | "no-link"` (bot.quotas)."""
    from bot.xcost import parse_budget
    key = "x_budget" if "x_budget" in table else "over_budget"
    if platform != "x":
        raise ConfigError(f"only X accounts take {key} (X charges per post)", file=file,
                          key=f"{where}.{key}")
    out: dict[str, Any] = {}
    if "x_budget" in table:
        try:
            out["x_budget"] = parse_budget(table["x_budget"])
        except ValueError as e:
            raise ConfigError(str(e), file=file, key=f"{where}.x_budget") from None
    if "over_budget" in table:
        if table["over_budget"] not in ("hold", "no-link"):
            raise ConfigError(f"expected \"hold\" or \"no-link\", got "
                              f"{table['over_budget']!r}", file=file, key=f"{where}.over_budget")
        out["over_budget"] = table["over_budget"]
    return out
