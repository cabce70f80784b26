"""The show registry: which shows crier serves, kept in the `shows` table.

Two sources fill it:

- the config (`sync_config`, at start and on SIGHUP): the shows its files declare are added,
  changed (their settings' hash differs) or removed; only rows that came from the config are
  touched;
- `crier shows import PATH` (`import_shows`): TOML files in the single-show layout, stored
  with their text (to rebuild their `Settings`), kept until `crier shows remove SLUG`.

A removed show keeps its history (feeds, episodes, deliveries sent); its deliveries that
had not started are withdrawn. A database from before the registry has one show made by
migration 0006 (no hash yet): the first config show synced takes it over, slug and all.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bot.config import Settings, dotenv_values_for, tomllib, validate_show
from bot.deployment import _SHARED_FIELDS, Deployment, _slug_of, slugify
from bot.errors import ConfigError
from bot.store import Store, deliveries, shows

DEFAULT_SLUG = "show"            # a Settings made without a slug (tests, old callers)
WITHDRAWN = "show removed: not sent"
CHUNK = 2000                     # rows per INSERT/UPDATE statement
REGISTRY_LOCK = 0x73686f77       # "show": the advisory lock registry writes take in turn


def _now() -> datetime:
    return datetime.now(UTC)


def settings_hash(settings: Settings) -> str:
    """What a config show's settings are, as a hash (secrets and notify URLs are left out of
    the repr, so they never reach it): a different hash is a changed show."""
    return hashlib.sha256(repr(replace(settings, path=Path(""))).encode()).hexdigest()


def slug_of(settings: Settings) -> str:
    """A show's slug; a Settings made without one gets what a single-show config gives."""
    return settings.slug or slugify(settings.show) or DEFAULT_SLUG


def ensure_show(store: Store, settings: Settings, now: datetime | None = None, *,
                conn=None) -> int:
    """The id of the show `settings` describes, its row made (or the migrated one taken
    over) when there is none yet; in `conn`'s transaction when given (SQLite has one
    writer: a second connection would wait for it)."""
    if conn is None:
        with store.tx() as c:
            return ensure_show(store, settings, now, conn=c)
    slug = slug_of(settings)
    sid = conn.execute(sa.select(shows.c.id).where(shows.c.slug == slug)).scalar()
    if sid is None and _registry_lock(conn):  # another worker may have made it meanwhile
        sid = conn.execute(sa.select(shows.c.id).where(shows.c.slug == slug)).scalar()
    if sid is None:
        _sync(conn, [settings], now or _now(), remove=False, whole=False)
        sid = conn.execute(sa.select(shows.c.id).where(shows.c.slug == slug)).scalar_one()
    return sid


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    withdrawn: int = 0

    def __str__(self) -> str:
        return (f"{len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.removed)} removed ({self.withdrawn} deliveries withdrawn)")


def sync_config(store: Store, declared, *, now: datetime | None = None,
                remove: bool = True, whole: bool = True) -> SyncReport:
    """Make the registry's config shows those `declared` (Settings); `remove` False only
    adds and changes. `whole`: `declared` is every show of the config (so one show under a
    new slug is the old one renamed). One transaction."""
    with store.tx() as c:
        return _sync(c, declared, now or _now(), remove=remove, whole=whole)


def _same_feed(shows_, seen: dict[str, str] | None = None) -> dict[str, str]:
    """(slug, feed, where) of shows, added to `seen` (feed → slug): two shows with one feed
    is a ConfigError (a feed's episodes are one show's)."""
    seen = {} if seen is None else seen
    for slug, feed, where in shows_:
        if seen.setdefault(feed, slug) != slug:
            raise ConfigError(f"the shows '{seen[feed]}' and '{slug}' have the same feed "
                              f"{feed}; a feed belongs to one show", file=where)
    return seen


def _registry_lock(c) -> bool:
    """PostgreSQL: registry writes of all workers take turns (a transaction-scoped advisory
    lock), so two workers starting at once never insert one show twice. True if taken;
    SQLite has one writer anyway."""
    if c.dialect.name != "postgresql":
        return False
    c.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": REGISTRY_LOCK})
    return True


def _sync(c, declared, now: datetime, *, remove: bool, whole: bool) -> SyncReport:
    _registry_lock(c)
    report = SyncReport()
    _same_feed([(slug_of(s), s.feed, str(s.path)) for s in declared])
    rows = {r["slug"]: dict(r) for r in c.execute(sa.select(
        shows.c.id, shows.c.slug, shows.c.source, shows.c.content_hash,
        shows.c.removed_at)).mappings()}
    legacy = [r for r in rows.values() if r["content_hash"] is None
              and r["source"] == "config"]
    active = [r for r in rows.values() if r["source"] == "config"
              and r["removed_at"] is None]
    if not legacy and len(declared) == 1 and len(active) == 1 and whole:
        legacy = active       # one show, renamed: the same show (its history, its queue)
    from bot.store import feeds
    legacy_feeds = {r["id"]: set(c.execute(sa.select(feeds.c.url).where(
        feeds.c.show_id == r["id"])).scalars()) for r in legacy}
    new, updates, seen = [], [], set()
    for s in declared:
        slug, h = slug_of(s), settings_hash(s)
        seen.add(slug)
        values = {"name": s.show, "source": "config", "path": str(s.path),
                  "content_hash": h, "config": None, "updated_at": now,
                  "removed_at": None}
        row = rows.get(slug)
        # the show a database from before 0006 served: the one with its feed (or the only one)
        old = next((r for r in legacy if len(declared) == 1 or s.feed in legacy_feeds[r["id"]]),
                   None)
        if row is None and old is not None:
            legacy.remove(old)
            row = old
            values["slug"] = slug
            seen.add(row["slug"])
        if row is None:
            new.append({**values, "slug": slug, "created_at": now})
            report.added.append(slug)
        elif (row["content_hash"] != h or row["removed_at"] is not None
              or row["source"] != "config"):
            updates.append({**values, "_id": row["id"]})
            report.changed.append(slug)
    for i in range(0, len(new), CHUNK):
        c.execute(shows.insert(), new[i:i + CHUNK])
    _update(c, updates)
    _ensure_feeds(c, [(slug_of(s), s.feed, s.poll_interval) for s in declared], now)
    if remove:
        gone = [r for slug, r in rows.items() if slug not in seen
                and r["source"] == "config" and r["removed_at"] is None]
        for r in gone:
            report.withdrawn += _remove(c, r["id"], now)
            report.removed.append(r["slug"])
    return report


def _update(c, updates: list[dict]) -> None:
    """Bulk UPDATEs by id (one statement per set of columns changed)."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for u in updates:
        groups.setdefault(tuple(sorted(set(u) - {"_id"})), []).append(u)
    for keys, rows in groups.items():
        stmt = shows.update().where(shows.c.id == sa.bindparam("_id")).values(
            {k: sa.bindparam(k) for k in keys})
        for i in range(0, len(rows), CHUNK):
            c.execute(stmt, rows[i:i + CHUNK])


def _remove(c, show_id: int, now: datetime) -> int:
    """Mark a show removed; withdraw its deliveries that have not started. The count."""
    c.execute(shows.update().where(shows.c.id == show_id).values(removed_at=now,
                                                                   updated_at=now))
    Store.park_feeds(c, show_id=show_id)
    return c.execute(deliveries.update().where(
        deliveries.c.show_id == show_id, deliveries.c.status.in_(("pending", "held"))
    ).values(status="cancelled", last_error=WITHDRAWN, updated_at=now)).rowcount


def remove_show(store: Store, slug: str, now: datetime | None = None) -> int:
    """`crier shows remove SLUG`: the deliveries withdrawn. A ConfigError when there is no
    such show (or it is already removed)."""
    now = now or _now()
    with store.tx() as c:
        sid = c.execute(sa.select(shows.c.id).where(
            shows.c.slug == slug, shows.c.removed_at.is_(None))).scalar()
        if sid is None:
            raise ConfigError(f"no show '{slug}' in the registry (see crier shows list)")
        return _remove(c, sid, now)


def list_shows(store: Store, *, removed: bool = False) -> list[dict]:
    q = sa.select(shows.c.id, shows.c.slug, shows.c.name, shows.c.source, shows.c.path,
                  shows.c.created_at, shows.c.updated_at, shows.c.removed_at
                  ).order_by(shows.c.slug)
    if not removed:
        q = q.where(shows.c.removed_at.is_(None))
    with store.tx() as c:
        return [dict(r) for r in c.execute(q).mappings()]


# -- import -------------------------------------------------------------------------------
@dataclass
class ImportReport:
    files: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0


def show_files(path: str | os.PathLike) -> list[Path]:
    """A TOML file, or the *.toml files of a folder (not its subfolders), sorted."""
    p = Path(path)
    if p.is_dir():
        with os.scandir(p) as it:  # sorted as text: 10x faster than Paths at 100,000
            found = sorted(e.path for e in it if e.name.endswith(".toml") and e.is_file())
        return [Path(f) for f in found]
    if p.is_file():
        return [p]
    raise ConfigError("no such file or folder", file=str(p))


@dataclass(slots=True)
class _Show:
    """What an import needs of one file: for its row, its feed row and the checks across
    files. `text` only for a file to write (None: unchanged)."""
    slug: str
    path: str
    hash: str
    feed: str
    interval: int
    names: tuple[str, ...]
    name: str = ""
    text: str | None = None


def import_shows(store: Store, deployment: Deployment, path: str | os.PathLike, *,
                 env: dict[str, str] | None = None,
                 now: datetime | None = None) -> ImportReport:
    """Read and check every show file under `path`, then add or change their rows in one
    transaction. Any bad file: a ConfigError naming it, and nothing is imported.

    A file whose bytes are those imported before from the same path (the hash on its show's
    row, which has one active feed) is parsed for the checks across files (slug, account
    names, feed) but not validated again: it was, when imported, and a worker validates it
    again when it loads it."""
    now, env = now or _now(), _env(deployment, env)
    report = ImportReport()
    config_slugs = set(deployment.slugs)
    names = {a.name: s.slug for s in deployment.shows for a in s.accounts}
    feeds_seen = _same_feed((s.slug, s.feed, str(s.path)) for s in deployment.shows)
    known = _imported(store)
    parsed: dict[str, _Show] = {}
    for file in show_files(path):
        show = _read_show(file, env, known)
        where = str(file)
        if show.slug in config_slugs:
            raise ConfigError(f"the show '{show.slug}' is declared by the config "
                              f"{deployment.path}; change it there", file=where)
        if show.slug in parsed:
            raise ConfigError(f"two files have the slug '{show.slug}'; the first is "
                              f"{parsed[show.slug].path}", file=where)
        for name in show.names:
            if names.setdefault(name, show.slug) != show.slug:
                raise ConfigError(f"duplicate account name '{name}' (also in the show "
                                  f"'{names[name]}'; account names are unique across the "
                                  "deployment)", file=where)
        _same_feed([(show.slug, show.feed, where)], feeds_seen)
        parsed[show.slug] = show
        report.files += 1
    with store.tx() as c:
        _registry_lock(c)
        rows = {r.slug: r for r in c.execute(sa.select(
            shows.c.id, shows.c.slug, shows.c.content_hash, shows.c.removed_at,
            shows.c.source))}
        new, updates = [], []
        for slug, show in parsed.items():
            row = rows.get(slug)
            if row is not None and row.content_hash == show.hash and row.removed_at is None \
                    and row.source == "import":
                report.unchanged += 1
                continue
            if show.text is None:  # its row changed since _imported read it: validated then
                show = _read_show(Path(show.path), env, {})
            values = {"name": show.name, "source": "import", "path": show.path,
                      "content_hash": show.hash, "config": show.text, "updated_at": now,
                      "removed_at": None}
            if row is None:
                new.append({**values, "slug": slug, "created_at": now})
                report.added.append(slug)
            else:
                updates.append({**values, "_id": row.id})
                report.changed.append(slug)
        for i in range(0, len(new), CHUNK):
            c.execute(shows.insert(), new[i:i + CHUNK])
        _update(c, updates)
        _ensure_feeds(c, [(s.slug, s.feed, s.interval) for s in parsed.values()], now)
    return report


def _read_show(file: Path, env: dict[str, str], known: dict[str, tuple]) -> _Show:
    """One show file read and checked (a ConfigError naming it); `known`: _imported's."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
        raw = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"not valid TOML: {e}", file=str(file)) from None
    for key in ("shows", "include"):
        if key in raw:
            raise ConfigError(f"an imported file holds one show in the single-show layout; "
                              f"'{key}' does not belong here", file=str(file), key=key)
    absolute, h = str(file.absolute()), hashlib.sha256(data).hexdigest()
    before = known.get(absolute)
    if before is not None and before[0] == h:  # these bytes were imported and validated
        slug, feed, interval = before[1:]
        return _Show(slug, absolute, h, feed, interval,
                     tuple(a["name"] for a in raw.get("accounts", ())))
    s = validate_show(raw, file, text, env, own_paths=False)
    return _Show(_slug_of(raw, file, None, text), absolute, h, s.feed, s.poll_interval,
                 tuple(a.name for a in s.accounts), s.show, text)


def _imported(store: Store) -> dict[str, tuple[str, str, str, int]]:
    """The imported shows (not removed) with one active feed row: path → (content hash, slug,
    feed URL, poll interval), as the import that wrote them found them."""
    from bot.store import feeds
    q = sa.select(shows.c.path, shows.c.content_hash, shows.c.slug, feeds.c.url,
                  feeds.c.poll_interval).join(feeds, feeds.c.show_id == shows.c.id).where(
        shows.c.source == "import", shows.c.removed_at.is_(None), feeds.c.active)
    out: dict[str, tuple[str, str, str, int]] = {}
    twice: set[str] = set()
    with store.tx() as c:
        for path, h, slug, url, interval in c.execute(q):
            if path in out:
                twice.add(path)
            out[path] = (h, slug, url, interval)
    for path in twice:
        del out[path]
    return out


def _ensure_feeds(c, wanted: list[tuple[str, str, int]], now: datetime) -> None:
    """Each (slug, feed URL, poll interval) gets its active feed row (bot.store.ensure_feeds),
    so any worker claims it when due without loading the show first."""
    if not wanted:
        return
    ids: dict[str, int] = {}
    slugs = [slug for slug, _f, _i in wanted]
    if len(slugs) > CHUNK:  # one read of the registry beats many long IN lists
        ids.update(c.execute(sa.select(shows.c.slug, shows.c.id)).all())
    else:
        ids.update(c.execute(sa.select(shows.c.slug, shows.c.id).where(
            shows.c.slug.in_(slugs))).all())
    Store.ensure_feeds(c, [(ids[slug], feed, int(interval)) for slug, feed, interval in wanted],
                       now, chunk=CHUNK)


def _env(deployment: Deployment, env: dict[str, str] | None) -> dict[str, str]:
    if env is not None:
        return env
    own = dotenv_values_for(deployment.path) if deployment.path.is_file() else {}
    return {**own, **os.environ}


def imported_settings(store: Store, deployment: Deployment, *,
                      env: dict[str, str] | None = None,
                      slugs: set[str] | None = None) -> list[Settings]:
    """The imported shows (not removed) as Settings, the deployment's shared values in."""
    env = _env(deployment, env)
    shared: dict[str, Any] = {k: getattr(deployment, k) for k in _SHARED_FIELDS}
    q = sa.select(shows.c.slug, shows.c.path, shows.c.config).where(
        shows.c.source == "import", shows.c.removed_at.is_(None)).order_by(shows.c.slug)
    if slugs is not None:
        q = q.where(shows.c.slug.in_(sorted(slugs)))
    out = []
    with store.tx() as c:
        rows = list(c.execute(q))
    for slug, path, text in rows:
        s = validate_show(tomllib.loads(text), Path(path), text, env, own_paths=False)
        notify = tuple(dict.fromkeys(s.notify + shared["notify"]))
        out.append(replace(s, **{**shared, "notify": notify}, slug=slug))
    return out


def settings_by_id(store: Store, deployment: Deployment, ids: set[int], *,
                   env: dict[str, str] | None = None) -> dict[int, Settings]:
    """The Settings of the served shows among `ids` (config shows from `deployment`, imported
    ones rebuilt from their stored file); removed or unknown ids are left out."""
    if not ids:
        return {}
    out: dict[int, Settings] = {}
    imported: dict[str, int] = {}
    with store.tx() as c:
        rows = list(c.execute(sa.select(shows.c.id, shows.c.slug, shows.c.source).where(
            shows.c.id.in_(sorted(ids)), shows.c.removed_at.is_(None))))
    for sid, slug, source in rows:
        if source == "config" and slug in deployment.slugs:
            out[sid] = deployment.show(slug)
        elif source == "import":
            imported[slug] = sid
    if imported:
        for st in imported_settings(store, deployment, env=env, slugs=set(imported)):
            out[imported[st.slug]] = st
    return out


def served_ids(store: Store, *, since: datetime | None = None) -> dict[int, str | None]:
    """Show id -> slug of every show served (None for one removed); with `since`, only the
    shows changed after it (ix_shows_updated)."""
    q = sa.select(shows.c.id, shows.c.slug, shows.c.removed_at)
    if since is not None:
        q = q.where(shows.c.updated_at > since)
    else:
        q = q.where(shows.c.removed_at.is_(None))
    with store.tx() as c:
        return {sid: (None if removed else slug) for sid, slug, removed in c.execute(q)}


def community_ids(store: Store, deployment: Deployment) -> list[int]:
    """The served shows that may have a community watch: config shows with it on, and the
    imported ones whose file mentions it (the caller checks their Settings)."""
    with store.tx() as c:
        rows = list(c.execute(sa.select(shows.c.id, shows.c.slug, shows.c.source).where(
            shows.c.removed_at.is_(None),
            sa.or_(shows.c.source == "config", shows.c.config.like("%community%")))))
    on = {s.slug for s in deployment.shows if s.community}
    return [sid for sid, slug, source in rows if source == "import" or slug in on]


def imported_slugs(store: Store) -> list[str]:
    with store.tx() as c:
        return list(c.execute(sa.select(shows.c.slug).where(
            shows.c.source == "import", shows.c.removed_at.is_(None)).order_by(
            shows.c.slug)).scalars())


def served(store: Store, deployment: Deployment, *,
           env: dict[str, str] | None = None) -> Deployment:
    """The deployment with the imported shows added: every show crier serves."""
    extra = imported_settings(store, deployment, env=env)
    return replace(deployment, shows=deployment.shows + tuple(extra))


def choose(store: Store, deployment: Deployment, slug: str | None, *,
           env: dict[str, str] | None = None) -> Settings:
    """The show a command is about (`--show SLUG`, or the only one), among the config's and
    the imported ones; several and no slug: a ConfigError naming the choices."""
    if slug is not None and slug in deployment.slugs:
        return deployment.show(slug)
    others = [s for s in imported_slugs(store) if s not in deployment.slugs]
    if not others:
        return deployment.show(slug)
    stubs = tuple(Settings(path=deployment.path, show=s, feed="", slug=s) for s in others)
    chosen = replace(deployment, shows=deployment.shows + stubs).show(slug)
    if chosen.slug in others:
        return imported_settings(store, deployment, env=env, slugs={chosen.slug})[0]
    return chosen


def health(store: Store) -> list[dict]:
    """One line of health per show served (`crier status` with several): last poll, its
    result, errors in a row, failed deliveries, held episodes. A few grouped queries."""
    from bot.store import episodes, feeds
    with store.tx() as c:
        rows = {r.id: {"slug": r.slug, "name": r.name, "source": r.source,
                       "last_poll_at": None, "last_result": None, "error_count": 0,
                       "last_error": None, "failed": 0, "held": 0}
                for r in c.execute(sa.select(shows.c.id, shows.c.slug, shows.c.name,
                                             shows.c.source).where(
                    shows.c.removed_at.is_(None)).order_by(shows.c.slug))}
        for f in c.execute(sa.select(feeds.c.show_id, feeds.c.last_poll_at, feeds.c.last_result,
                                     feeds.c.error_count, feeds.c.last_error).where(
                feeds.c.show_id.in_(sa.select(shows.c.id).where(shows.c.removed_at.is_(None))))):
            h = rows.get(f.show_id)
            if h is not None and (h["last_poll_at"] is None or
                                  (f.last_poll_at and f.last_poll_at > h["last_poll_at"])):
                h.update(last_poll_at=f.last_poll_at, last_result=f.last_result,
                         error_count=f.error_count, last_error=f.last_error)
        for sid, n in c.execute(sa.select(deliveries.c.show_id, sa.func.count()).where(
                deliveries.c.status == "failed").group_by(deliveries.c.show_id)):
            if sid in rows:
                rows[sid]["failed"] = n
        for sid, n in c.execute(sa.select(feeds.c.show_id, sa.func.count()).join(
                episodes, episodes.c.feed_id == feeds.c.id).where(
                episodes.c.status == "held").group_by(feeds.c.show_id)):
            if sid in rows:
                rows[sid]["held"] = n
    return list(rows.values())
