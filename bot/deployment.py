"""A deployment: the deployment-wide settings and every show a config declares.

This is the second half of the config adapter (`bot/config.py` validates one show; this module
finds the shows and validates them with it), so it imports `bot.config`; no other module of
crier is imported here.

A config declares its shows in one of three ways:

- today's layout: the show's keys at the top level (one show);
- `[[shows]]` tables, each holding one show's keys and its own `[[shows.accounts]]`;
- `include = ["shows/*.toml"]`: globs relative to the config file's folder, each matching
  file one show in today's layout (the layout a network generates); with `[[shows]]` too.

With `[[shows]]` or `include`, the top level holds only deployment-wide keys
(`DEPLOYMENT_KEYS`); a show holds none of them (except `notify`: a show's own URLs are told
as well as the deployment's). Every show has a unique `slug` (default: from its name), and
account names are unique across the deployment (they name the secrets' variables).

Speed (100,000 included files): each file is read and parsed once and validated without
looking for line numbers; only an error reads a text again to find its line.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from bot.config import (
    HIVE_NODES,
    TOP_KEYS,
    Settings,
    _notify_list,
    _paths,
    _safety,
    dotenv_values_for,
    find_config,
    parse_duration,
    read_config,
    validate_show,
)
from bot.errors import ConfigError
from bot.tomlpos import HEADER, line_of_path

log = logging.getLogger(__name__)

# Keys about the whole deployment: the top level only, once there are several shows.
DEPLOYMENT_KEYS = ("data_dir", "dispatch_interval", "max_attempts", "notify", "feed_alert_after",
                   "allow_private_networks", "feed_deadline", "image_deadline",
                   "max_polls_in_flight", "max_polls_per_host", "podping",
                   "public_url")
SHOW_MAY_ADD = frozenset({"notify"})       # a show's own URLs, told besides the deployment's
MULTI_KEYS = {
    "shows": ((list,), "a list of [[shows]] tables"),
    "include": ((list,), "a list of file patterns like [\"shows/*.toml\"]"),
}
# the Settings fields that come from the deployment, not from the show
_SHARED_FIELDS = ("data_dir", "media_dir", "database_url", "dispatch_interval", "max_attempts",
                  "allow_private_networks", "feed_deadline", "image_deadline", "notify",
                  "feed_alert_after", "max_polls_in_flight", "max_polls_per_host",
                  "podping_enabled", "podping_nodes", "public_url")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 64
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_GLOB_CHARS = re.compile(r"[*?\[]")
SINGLE_SHOW_SLUG = "show"       # a lone show whose name gives no slug ("日本語") keeps working
CHOICES_SHOWN = 20                          # slugs named in a "which show?" message


def slugify(name: str) -> str:
    """A show's default slug: its name in lower-case ASCII, other characters as hyphens."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")[:SLUG_MAX].strip("-")


@dataclass(frozen=True)
class Deployment:
    """The deployment-wide settings and its shows (each a full `Settings` with its `slug`,
    the deployment-wide values copied in, so the rest of crier works per show)."""
    path: Path
    shows: tuple[Settings, ...]
    data_dir: str
    media_dir: str
    database_url: str
    dispatch_interval: int = 5
    max_attempts: int = 8
    allow_private_networks: tuple[str, ...] = ()
    feed_deadline: int = 60
    image_deadline: int = 30
    notify: tuple[str, ...] = ()
    feed_alert_after: int = 3600
    max_polls_in_flight: int = 16       # bot.fleet
    max_polls_per_host: int = 4
    podping_enabled: bool = True        # bot.podping
    podping_nodes: tuple[str, ...] = HIVE_NODES
    public_url: str | None = None       # WebSub callbacks (bot.websub)

    def __repr__(self) -> str:  # notify URLs carry tokens
        return f"Deployment(path={str(self.path)!r}, shows={len(self.shows)})"

    @cached_property
    def _by_slug(self) -> dict[str, Settings]:
        return {s.slug: s for s in self.shows}

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(s.slug for s in self.shows)

    def show(self, slug: str | None = None) -> Settings:
        """The show a command is about: `slug` (from --show), or the only one."""
        if slug is not None:
            if slug in self._by_slug:
                return self._by_slug[slug]
            raise ConfigError(f"no show '{slug}': {self._choices()}", file=str(self.path))
        if len(self.shows) == 1:
            return self.shows[0]
        if not self.shows:
            raise ConfigError("no shows: add [[shows]] tables or files that `include` matches",
                              file=str(self.path))
        raise ConfigError(f"this command needs --show SLUG: {self._choices()}",
                          file=str(self.path))

    def _choices(self) -> str:
        shown = ", ".join(self.slugs[:CHOICES_SHOWN])
        more = len(self.shows) - CHOICES_SHOWN
        return f"one of {shown}" + (f" … and {more} more" if more > 0 else "")


def load_deployment(path: str | os.PathLike | None = None,
                    env: dict[str, str] | None = None) -> Deployment:
    """Read a config (and the files it includes) and check every show. `env` (default
    os.environ) wins over the `.env` file next to the config."""
    env = dict(os.environ if env is None else env)
    cfg_path = find_config(str(path) if path else None, env)
    if cfg_path.is_file():
        env = {**dotenv_values_for(cfg_path), **env}
    text, raw = read_config(cfg_path)
    if "shows" not in raw and "include" not in raw:
        one = validate_show(raw, cfg_path, text, env)
        shared = {k: getattr(one, k) for k in _SHARED_FIELDS}
        slug = _slug_of(raw, cfg_path, None, fallback=SINGLE_SHOW_SLUG)
        return Deployment(path=cfg_path, shows=(replace(one, slug=slug),), **shared)
    return _Loader(cfg_path, text, raw, env).load()


class _Loader:
    """Loads a config with [[shows]] and/or include; remembers where each slug and account
    name was declared, to name both places when one comes again."""

    def __init__(self, cfg_path: Path, text: str, raw: dict[str, Any], env: dict[str, str]):
        self.cfg_path, self.text, self.raw, self.env = cfg_path, text, raw, env
        self.slugs: dict[str, tuple[Path, int | None, str]] = {}
        self.accounts: dict[str, tuple[Path, int | None, str]] = {}
        self.shows: list[Settings] = []

    def load(self) -> Deployment:
        shared = self._deployment_fields()
        tables = self.raw.get("shows", [])
        for i, table in enumerate(tables):
            if not isinstance(table, dict):
                raise ConfigError("each show must be a [[shows]] table", file=str(self.cfg_path),
                                  key=f"shows[{i}]", line=line_of_path(self.text, "shows"))
            self._add(table, self.cfg_path, i, "", shared)
        for file in self._included():
            text, raw = read_config(file)
            for key in ("shows", "include"):
                if key in raw:
                    raise ConfigError(f"an included file holds one show in the single-show "
                                      f"layout; '{key}' belongs in {self.cfg_path}", file=str(file),
                                      key=key, line=line_of_path(text, key))
            self._add(raw, file, None, text, shared)
        return Deployment(path=self.cfg_path, shows=tuple(self.shows), **shared)

    def _deployment_fields(self) -> dict[str, Any]:
        """The top level: deployment-wide keys only, validated once."""
        raw, file = self.raw, str(self.cfg_path)
        schema = {k: TOP_KEYS[k] for k in DEPLOYMENT_KEYS} | MULTI_KEYS
        for key, value in raw.items():
            if key not in schema:
                where = "a [[shows]] table" if "shows" in raw else "an included show file"
                raise ConfigError(f"'{key}' belongs to a show: with [[shows]] or include, the top "
                                  f"level holds only deployment-wide keys "
                                  f"({', '.join(DEPLOYMENT_KEYS)}); move it into {where}",
                                  file=file, key=key, line=self._line(key))
            types, desc = schema[key]
            if not isinstance(value, types) or isinstance(value, bool):
                shown = "" if key == "notify" else f" {value!r}"
                raise ConfigError(f"expected {desc}, got {type(value).__name__}{shown}",
                                  file=file, key=key, line=self._line(key))
        try:
            out = {**_paths(raw, self.env, self.cfg_path.absolute().parent, file),
                   **_safety(raw, file, self.text),
                   "notify": _notify_list(raw.get("notify", []), file=file, key="notify",
                                          line=None),
                   "feed_alert_after": parse_duration(raw.get("feed_alert_after", 3600),
                                                      file=file, key="feed_alert_after",
                                                      minimum=0)}
            if "dispatch_interval" in raw:
                out["dispatch_interval"] = parse_duration(raw["dispatch_interval"], file=file,
                                                          key="dispatch_interval", minimum=1)
            if "max_attempts" in raw:
                if not isinstance(raw["max_attempts"], int) or raw["max_attempts"] < 1:
                    raise ConfigError(f"must be ≥ 1, got {raw['max_attempts']}", file=file,
                                      key="max_attempts")
                out["max_attempts"] = raw["max_attempts"]
        except ConfigError as e:
            if e.line is None and e.key:
                raise ConfigError(e.detail, file=e.file, key=e.key,
                                  line=self._line(e.key.split("[")[0])) from None
            raise
        return out

    def _line(self, key: str) -> int | None:
        return line_of_path(self.text, key)

    def _included(self) -> list[Path]:
        patterns = self.raw.get("include", [])
        base = str(self.cfg_path.absolute().parent)
        seen: dict[str, None] = {os.path.abspath(self.cfg_path): None}  # never itself
        for i, pattern in enumerate(patterns):
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(f"expected file patterns like \"shows/*.toml\" (text), got "
                                  f"{pattern!r}", file=str(self.cfg_path), key=f"include[{i}]",
                                  line=self._line("include"))
            full = os.path.join(base, os.path.expanduser(pattern.strip()))
            found = sorted(glob.glob(full, recursive=True))
            if not found and not _GLOB_CHARS.search(pattern):
                raise ConfigError(f"file not found: {full}", file=str(self.cfg_path),
                                  key=f"include[{i}]", line=self._line("include"))
            if not found:
                log.warning("%s: include %r matches no file", self.cfg_path, pattern)
            for f in found:
                if os.path.isfile(f):
                    seen.setdefault(os.path.normpath(f))
        return [Path(f) for f in list(seen)[1:]]

    def _add(self, raw: dict[str, Any], file: Path, index: int | None, text: str,
             shared: dict[str, Any]) -> None:
        """Validate one show (a [[shows]] table: `index`; an included file: `text`)."""
        prefix = "" if index is None else f"shows[{index}]."
        for key in raw:
            if key in DEPLOYMENT_KEYS and key not in SHOW_MAY_ADD:
                raise ConfigError(f"'{key}' is deployment-wide: set it once at the top level "
                                  f"of {self.cfg_path}", file=str(file), key=prefix + key,
                                  line=_locate(file, index, key, text))
        try:
            show = validate_show(raw, file, text, self.env, own_paths=False)
        except ConfigError as first:
            if index is None:
                raise
            # a [[shows]] table: validate again with its own text, whose lines are found
            sub, offset = show_text(self.text, index)
            e = first
            try:
                validate_show(raw, file, sub, self.env, own_paths=False)
            except ConfigError as again:
                e = again
            line = None if e.line is None else e.line + offset
            raise ConfigError(e.detail, file=str(file), key=prefix + (e.key or ""),
                              line=line) from None
        slug = _slug_of(raw, file, index, text)
        self._unique(self.slugs, slug, (file, index, "slug" if "slug" in raw else "show"),
                     f"two shows have the slug '{slug}'" + ("" if "slug" in raw else
                                                            " (from their names; set slug)"))
        for i, acc in enumerate(show.accounts):
            self._unique(self.accounts, acc.name, (file, index, f"accounts[{i}].name"),
                         f"duplicate account name '{acc.name}' (account names are unique "
                         f"across the deployment: they name the secrets' variables)")
        notify = tuple(dict.fromkeys(show.notify + shared["notify"]))
        self.shows.append(replace(show, **{**shared, "notify": notify}, slug=slug))

    def _unique(self, seen: dict[str, tuple[Path, int | None, str]], value: str,
                here: tuple[Path, int | None, str], message: str) -> None:
        if value not in seen:
            seen[value] = here
            return
        first_file, first_index, first_key = seen[value]
        file, index, key = here
        first_line = _locate(first_file, first_index, first_key)
        first = f"{first_file}{'' if first_line is None else f', line {first_line}'}"
        prefix = "" if index is None else f"shows[{index}]."
        raise ConfigError(f"{message}; the first is in {first}", file=str(file),
                          key=prefix + key, line=_locate(file, index, key))


def _slug_of(raw: dict[str, Any], file: Path, index: int | None, text: str = "", *,
             fallback: str | None = None) -> str:
    prefix = "" if index is None else f"shows[{index}]."
    if "slug" in raw:
        slug = raw["slug"].strip()
        if not SLUG.match(slug) or len(slug) > SLUG_MAX:
            raise ConfigError(f"expected lower-case letters, digits and single hyphens "
                              f"(at most {SLUG_MAX}), like \"my-show\", got {raw['slug']!r}",
                              file=str(file), key=prefix + "slug",
                              line=_locate(file, index, "slug", text))
        return slug
    slug = slugify(raw["show"]) or fallback
    if not slug:
        raise ConfigError(f"no slug can be made from the name {raw['show']!r}: set slug = "
                          f"\"…\" (lower-case letters, digits and -)", file=str(file),
                          key=prefix + "show", line=_locate(file, index, "show", text))
    return slug


def show_text(text: str, index: int) -> tuple[str, int]:
    """The index-th `[[shows]]` table of a config as a single-show text (its headers without
    `shows.`), and the number of lines before it: a line in it + offset is the file's line."""
    headers = list(HEADER.finditer(text))
    starts = [m for m in headers if m[1] == "[[" and _name(m) == "shows"]
    if index >= len(starts):
        return "", 0
    start = starts[index]
    end = next((m.start() for m in headers if m.start() > start.start()
                and not _name(m).startswith("shows.")), len(text))
    offset = text.count("\n", 0, start.start())
    # from the end of the header: its line stays (empty), so the lines still match
    return HEADER.sub(_unprefix, text[start.end():end]), offset


def _name(m: re.Match) -> str:
    return m[2].replace(" ", "").replace("\t", "")


def _unprefix(m: re.Match) -> str:
    name = _name(m)
    if not name.startswith("shows."):
        return m[0]
    return m[1] + name[len("shows."):] + ("]]" if m[1] == "[[" else "]")


def _locate(file: Path, index: int | None, key: str, text: str = "") -> int | None:
    """The line of `key` (a key path) of a show: in an included file, or in the index-th
    [[shows]] table of the config. Only called on the error path: it may read the file."""
    if not text:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    if index is None:
        return line_of_path(text, key)
    sub, offset = show_text(text, index)
    line = line_of_path(sub, key)
    return None if line is None else line + offset
