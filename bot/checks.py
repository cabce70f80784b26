"""`crier check`: everything that can fail later, checked now, one line per problem.

In order: the configuration loads; the database is reached (and migrated); each account has
its credentials (an account that is not a dry run with unset variables is reported by name)
and the platform accepts them; the feed is fetched and parsed; every posting account's
template and alt template render against the newest episode and fit the account's limit (an
error names the template and its line), as does the evergreen template; the artwork an
account attaches (`media = "artwork"`) can be downloaded and prepared; each active queued
post still composes and its image can be read. A step that cannot run because an earlier one
failed (no feed: no template check) is not reported as passed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Account, Settings
from bot.errors import CrierError
from bot.models import Episode, ParsedFeed, Rules

log = logging.getLogger(__name__)

# Stands in for the artwork when an episode and show have none, so an alt template is
# rendered (and checked) even then; never fetched.
_PLACEHOLDER_IMAGE = "https://example.invalid/artwork.png"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_checks(load: Callable[[], Settings], *, dry_run: bool = False,
               publishers: dict | None = None, session=None) -> list[Check]:
    """Every check, in order (see the module docstring). `load` reads the configuration."""
    try:
        settings = load()
    except CrierError as e:
        return [Check("config", False, str(e))]
    out = [Check("config", True, str(settings.path))]
    from bot.store import Store
    store = None
    try:
        store = Store(settings.database_url)
        store.migrate()
        out.append(Check("database", True, _redacted(settings.database_url)))
    except CrierError as e:
        out.append(Check("database", False, str(e)))
        if store is not None:
            store.close()
        store = None
    try:
        out += _after_database(settings, store, dry_run=dry_run, publishers=publishers,
                               session=session)
    finally:
        if store is not None:
            store.close()
    return out


def _after_database(settings: Settings, store, *, dry_run: bool, publishers: dict | None,
                    session) -> list[Check]:
    from bot.connect import with_connected
    from bot.platforms.dryrun import dry_run_rules
    from bot.service import Service, build_publishers
    out: list[Check] = []
    usable = []
    settings = with_connected(settings, store)  # an account the environment lacks: connected?
    for a in settings.accounts:
        missing = tuple(getattr(a, "missing_secrets", ()) or ())
        if missing and not (a.dry_run or dry_run):
            out.append(Check(f"account {a.name}", False,
                             f"{a.platform} account '{a.name}': missing "
                             f"{', '.join(missing)} (set them in the environment or .env, "
                             "connect the account in the web app, or set dry_run = true on "
                             "the account)" + (f"; {a.credentials}" if a.credentials else "")))
        else:
            usable.append(a)
    if publishers is None:
        publishers = build_publishers(dataclasses.replace(settings, accounts=tuple(usable)),
                                      dry_run=dry_run, session=session)
    svc = Service(settings, store, publishers=publishers, session=session, dry_run=dry_run)
    rules: dict[str, Rules] = {}
    for a in usable:
        p = publishers[a.name]
        try:
            who = p.verify()
            rules[a.name] = svc.rules_for(a)
            mode = " (dry run: nothing is sent)" if a.dry_run or dry_run else \
                f" (credentials: {a.credentials or 'environment'})"
            out.append(Check(f"account {a.name}", True, f"{a.platform} {who}, limit "
                                                        f"{rules[a.name].limit}{mode}"))
        except CrierError as e:
            out.append(Check(f"account {a.name}", False, str(e)))
    feed, newest = _feed(svc, out)
    if newest is not None:
        for a in settings.posting_accounts:
            _templates(svc, a, rules.get(a.name) or dry_run_rules(a.platform, a.max_characters),
                       feed, newest, out, artwork=a.name in rules)
        if settings.evergreen_template:
            _evergreen(svc, settings, rules, feed, newest, out)
    if store is not None:
        _queued(svc, out)
    return out


def _feed(svc, out: list[Check]) -> tuple[ParsedFeed | None, Episode | None]:
    from bot.feed import parse_feed
    from bot.fetch import fetch_feed
    src = svc.settings.feed
    try:
        res = fetch_feed(src, session=svc.session)
        with res.body as body:
            parsed = parse_feed(bytes(body), url=res.final_url)
    except CrierError as e:
        out.append(Check("feed", False, str(e)))
        return None, None
    if not parsed.episodes:
        out.append(Check("feed", False, f"feed {src}: has no episodes"))
        return parsed, None
    newest = max(parsed.episodes, key=lambda e: (e.published is not None, e.published))
    note = f" (readable despite: {parsed.bozo_message})" if parsed.bozo else ""
    out.append(Check("feed", True, f"{src}: {len(parsed.episodes)} episodes, newest "
                                   f"{newest.title!r}{note}"))
    return parsed, newest


def _templates(svc, a: Account, rules: Rules, feed: ParsedFeed, newest: Episode,
               out: list[Check], *, artwork: bool) -> None:
    from bot.compose import compose_episode, find_boilerplate
    options = svc.options_for(a, find_boilerplate(feed.episodes))
    try:
        c = compose_episode(newest, show=svc.settings.show, rules=rules, options=options,
                            show_image=feed.image or _PLACEHOLDER_IMAGE)
    except CrierError as e:
        out.append(Check(f"template {a.name}", False, str(e)))
        return
    out.append(Check(f"template {a.name}", True,
                     f"{c.length}/{c.limit} characters for {newest.title!r}"
                     + (" (shortened to fit)" if c.truncated else "")))
    if a.media == "artwork" and artwork and c.image_url and c.image_url != _PLACEHOLDER_IMAGE:
        try:
            # the feed named it: fetched as the worker would (http(s), public addresses)
            img = svc.artwork.get(c.image_url, max_bytes=rules.image_max_bytes,
                                  wait=svc.settings.image_deadline + 1)
            out.append(Check(f"artwork {a.name}", True, f"{c.image_url} → {img.mime_type}"))
        except CrierError as e:
            out.append(Check(f"artwork {a.name}", False, f"{c.image_url}: {e}"))


def _evergreen(svc, settings: Settings, rules: dict[str, Rules], feed: ParsedFeed,
               newest: Episode, out: list[Check]) -> None:
    from bot.compose import compose_episode, find_boilerplate
    from bot.platforms.dryrun import dry_run_rules
    for a in settings.posting_accounts:
        options = dataclasses.replace(svc.options_for(a, find_boilerplate(feed.episodes)),
                                      template=settings.evergreen_template,
                                      template_name="evergreen")
        try:
            compose_episode(newest, show=settings.show, options=options,
                            rules=rules.get(a.name) or dry_run_rules(a.platform),
                            show_image=feed.image)
        except CrierError as e:
            out.append(Check("evergreen template", False, f"{a.name}: {e}"))
            return
    out.append(Check("evergreen template", True, "renders for every account"))


def _queued(svc, out: list[Check]) -> None:
    """Each active queued post composes for its accounts, and its image is readable."""
    q = svc.queue
    for row in svc.store.all_promos():
        if row.status != "active":
            continue
        name = f"queued post #{row.id}"
        try:
            if row.image_path:
                q._check_image(row.image_path, row.alt or "(alt)")
            if row.kind != "evergreen":
                episode = svc.store.get_episode(row.episode_id) if row.episode_id \
                    else None
                for a in q.accounts(row.accounts):
                    p = q._compose(a, row, episode)
                    if p.length > p.limit:
                        raise CrierError(f"{a.name}: {p.length}/{p.limit} characters")
        except CrierError as e:
            out.append(Check(name, False, str(e)))
            continue
        out.append(Check(name, True, "composes" + (" and its image reads"
                                                   if row.image_path else "")))


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)
