"""The `crier` command line: a thin layer over `bot.service`.

Expected errors (bad config, unreachable database, broken feed) print one clear line and exit
non-zero; no traceback reaches the user for them. Heavy libraries are imported inside commands
so `crier --help` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager

import click

from bot import __version__
from bot.errors import CrierError

log = logging.getLogger("bot")


class Context:
    def __init__(self, config: str | None, verbose: int, quiet: bool):
        self.config_path, self.verbose, self.quiet = config, verbose, quiet
        self.show_slug: str | None = None       # --show SLUG
        self._deployment = None

    def deployment(self):
        """The config (and the `.env` next to it), with paths resolved against its folder."""
        if self._deployment is None:
            from bot.deployment import load_deployment
            self._deployment = load_deployment(self.config_path)
        return self._deployment

    def settings(self):
        """The show the command is about (--show, or the only one; imported ones too)."""
        dep = self.deployment()
        if self.show_slug in dep.slugs:
            return dep.show(self.show_slug)
        from bot.errors import StoreError
        from bot.shows import choose
        from bot.store import Store
        try:
            store = Store(dep.database_url)
        except StoreError:
            return dep.show(self.show_slug)
        try:
            store.migrate()
            return choose(store, dep, self.show_slug)
        except StoreError:
            return dep.show(self.show_slug)
        finally:
            store.close()

    def require_credentials(self, dry_run: bool) -> None:
        """Refuse to post with an account that lacks its credentials (one line naming each
        such account and its unset variables): no credentials is not a dry run."""
        if dry_run:
            return
        dep = self.deployment()
        lacking = [a for s in dep.shows for a in s.unconfigured]
        if lacking:
            raise CrierError("no credentials for " + "; ".join(
                f"account '{a.name}' (set {', '.join(a.missing_secrets)})"
                for a in lacking) + f" in the environment or "
                f"{dep.path.resolve().parent / '.env'}; or mark the account "
                "dry_run = true, or pass --dry-run")

    @contextmanager
    def service(self, *, dry_run: bool = False):
        from bot.service import Service
        from bot.shows import choose, sync_config
        from bot.store import Store
        dep = self.deployment()
        store = Store(dep.database_url)
        svc = None
        try:
            store.migrate()
            sync_config(store, dep.shows, remove=False)  # crier run removes (bot.shows)
            svc = Service(choose(store, dep, self.show_slug), store, dry_run=dry_run)
            yield svc
        finally:
            if svc is not None:  # what waits to be told goes out (a bounded wait)
                svc.notifier.close()
            store.close()

    @contextmanager
    def fleet(self, *, dry_run: bool = False):
        """Every show served (bot.fleet), the config synced into the registry first."""
        from bot.fleet import Fleet
        from bot.store import Store
        store = Store(self.deployment().database_url)
        fleet = None
        try:
            store.migrate()
            fleet = Fleet(store, self.reload_deployment, dry_run=dry_run)
            yield fleet
        finally:
            if fleet is not None:
                fleet.close()
            store.close()

    def reload_deployment(self):
        """The config read again (SIGHUP)."""
        self._deployment = None
        return self.deployment()


def _set_show(ctx: click.Context, _param, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(Context).show_slug = value
    return value


show_option = click.option(
    "--show", metavar="SLUG", expose_value=False, callback=_set_show,
    help="The show (its slug): needed when crier serves several (see crier shows list).")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else
                                          logging.INFO if verbose else logging.WARNING)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if verbose < 2:
        for noisy in ("urllib3", "apscheduler.executors", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # These log Authorization headers at DEBUG: never let them, whatever -v says.
    from bot.platforms.base import quiet_leaky_loggers
    quiet_leaky_loggers()


class CrierGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CrierError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=CrierGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "-c", envvar="CRIER_CONFIG", metavar="PATH",
              help="Config file (default: config/crier.toml, or $CRIER_CONFIG).")
@click.option("--verbose", "-v", count=True, help="Log decisions (-vv: debug).")
@click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors.")
@click.version_option(__version__, prog_name="crier")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: int, quiet: bool) -> None:
    """crier: announces every new episode of a podcast on Mastodon and X, exactly once."""
    _setup_logging(verbose, quiet)
    ctx.obj = Context(config, verbose, quiet)


# -- run ----------------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="One poll and dispatch cycle, then exit.")
@click.option("--dry-run", is_flag=True,
              help="Record what would be posted on every account; send nothing.")
@click.option("--backfill", type=click.IntRange(min=0), default=None, metavar="N",
              help="On the first run, announce the newest N episodes instead of none.")
@click.pass_obj
def run(obj: Context, once: bool, dry_run: bool, backfill: int | None) -> None:
    """Run the worker: poll the feed, announce new episodes, deliver posts."""
    obj.require_credentials(dry_run)
    if not once:
        from bot.worker import run_worker
        run_worker(obj, dry_run=dry_run, backfill=backfill)
        return
    import os
    import socket

    from bot.locks import acquire_worker_lock, release_worker_lock
    with obj.fleet(dry_run=dry_run) as fleet:
        owner = f"{socket.gethostname()}:{os.getpid()}:once"
        store = fleet.store
        alone = not store.many_workers  # PostgreSQL: workers share the work by leases
        if alone and not acquire_worker_lock(store, owner, fleet.now()):
            holder = store.lock_holder("worker")
            raise CrierError(f"another crier worker is running ({holder['owner']}); it polls "
                             "and posts already — stop it first to run --once")
        try:
            fleet.wake_auth_stopped()
            several = fleet.count > 1
            # one show: polled now, as always; several: those due (all on their first run)
            reports = fleet.poll(force=not several, backfill=backfill)
            for show, report in reports:
                if several:
                    click.secho(f"[{show.slug}]", bold=True)
                _print_poll(report)
            # one pass: wait for feed artwork as long as it may take, not the worker's slice
            wait = fleet.deployment.image_deadline + 1
            _print_outcomes(fleet.dispatch(artwork_wait=wait))
        finally:
            if alone:
                release_worker_lock(store, owner)
    if any(report.result == "error" for _svc, report in reports):
        sys.exit(1)


def _print_poll(report) -> None:
    for w in report.warnings:
        click.secho(f"warning: {w}", fg="yellow", err=True)
    if report.result == "error":
        click.secho(f"error: {report.error}", fg="red", err=True)
    elif report.result == "unchanged":
        click.echo("Feed unchanged since the last poll.")
    elif report.result == "baseline":
        click.echo(f"First run: {report.baseline} existing episodes recorded as already known"
                   + (f", {len(report.announced)} announced." if report.announced else
                      " (nothing announced; --backfill N announces the newest N)."))
    elif report.result == "nothing-new":
        click.echo("No new episodes.")
    if report.held:
        click.secho(f"{len(report.held)} new episodes held by the flood guard; "
                    "`crier status` lists them, `crier release` announces them.", fg="yellow")
    if report.scheduled:
        click.echo(f"{len(report.scheduled)} future-dated episodes wait for their date.")


def _print_outcomes(outcomes) -> None:
    for o in outcomes:
        label = {"dry_run": "dry run (not sent)", "sent": "sent", "pending": "will retry",
                 "failed": "FAILED", "held": "held"}.get(o.status, o.status)
        size = f" · {o.length}/{o.limit}" if o.length is not None else ""
        click.secho(f"── {o.account} ({o.platform}) · {label}{size} ──",
                    fg={"failed": "red", "pending": "yellow"}.get(o.status), bold=True)
        if o.text is not None:
            click.echo(o.text)
        if o.url:
            click.echo(f"→ {o.url}")
        if o.error:
            click.secho(f"error: {o.error}", fg="red" if o.status == "failed" else "yellow")
        if o.next_attempt_at:
            click.echo(f"next attempt: {o.next_attempt_at.isoformat(timespec='seconds')}")
        click.echo()


# -- preview ------------------------------------------------------------------------------
@main.command()
@click.option("--feed", "feed_src", metavar="URL|PATH", help="Another feed than the config's.")
@click.option("--latest", is_flag=True, help="The newest episode (the default).")
@click.option("--guid", metavar="GUID", help="The episode with this GUID.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def preview(obj: Context, feed_src: str | None, latest: bool, guid: str | None,
            as_json: bool) -> None:
    """Show what would be posted for an episode on each account (nothing is recorded)."""
    from bot.feed import parse_feed
    from bot.fetch import fetch_feed, new_session
    from bot.service import Service, build_publishers
    settings = obj.settings()
    src = feed_src or settings.feed
    res = fetch_feed(src, session=new_session())
    with res.body as body:
        parsed = parse_feed(bytes(body), url=res.final_url)
    if not parsed.episodes:
        raise CrierError(f"feed {src}: has no episodes")
    if guid:
        ep = next((e for e in parsed.episodes if e.guid == guid), None)
        if ep is None:
            raise CrierError(f"feed {src}: no episode with GUID {guid!r}")
    else:
        ep = max(parsed.episodes, key=lambda e: (e.published is not None, e.published))
    from bot.compose import find_boilerplate
    svc = Service(settings, store=None, publishers=build_publishers(settings))  # type: ignore
    previews = svc.preview(ep, boilerplate=find_boilerplate(parsed.episodes),
                           show_image=parsed.image)
    if as_json:
        click.echo(json.dumps([{
            "account": p.account, "platform": p.platform, "text": p.text, "length": p.length,
            "limit": p.limit, "truncated": p.truncated, "trimmed": list(p.trimmed),
            "link": p.link, "reply_text": p.reply_text,
            "media": [{"source": m.source, "alt": m.alt} for m in p.media],
            "episode": ep.title, "guid": ep.guid,
        } for p in previews], indent=2, ensure_ascii=False))
        return
    click.echo(f"Episode: {ep.title}" + (f" ({ep.guid})" if ep.guid else ""))
    click.echo()
    for p in previews:
        note = " · shortened to fit" if p.truncated else ""
        click.secho(f"── {p.account} ({p.platform}) · {p.length}/{p.limit}{note} ──", bold=True)
        click.echo(p.text)
        click.echo()
        click.echo(f"   link:    {p.link or '(none)'}")
        if p.reply_text:
            click.echo(f"   reply:   {p.reply_text}")
        for m in p.media:
            click.echo(f"   image:   {m.source}")
            click.echo(f"   alt:     {m.alt}")
        if not p.media:
            click.echo("   image:   (none: the link card shows)")
        for t in p.trimmed:
            click.echo(f"   trimmed: {t}")
        click.echo()


# -- status -------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Feeds, held episodes, pending and failed deliveries, the last posts (several shows
    and no --show: one line of health per show)."""
    if obj.show_slug is None and _print_overview(obj, as_json):
        return
    with obj.service() as svc:
        st = svc.status()
    if as_json:
        click.echo(json.dumps(st, indent=2, ensure_ascii=False))
        return
    for f in st["feeds"]:
        click.secho(f"Feed {f['url']}", bold=True)
        if f["redirect_url"]:
            click.secho(f"  moved permanently to {f['redirect_url']} (update your config)",
                        fg="yellow")
        click.echo(f"  last poll: {f['last_poll_at'] or 'never'} → {f['last_result'] or '-'}"
                   f"; next poll: {f['next_poll_at'] or 'on start'}")
        if f["last_error"]:
            click.secho(f"  last error ({f['error_count']} in a row): {f['last_error']}",
                        fg="red")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(f["episodes"].items()))
        click.echo(f"  episodes: {counts or 'none yet'}")
    if not any(f["last_poll_at"] for f in st["feeds"]):
        click.echo("No feed polled yet: run `crier run --once`.")
    if st["held_episodes"]:
        click.secho("Held by the flood guard (`crier release ID...` announces them, "
                    "`crier release --dismiss ID...` never will):",
                    fg="yellow", bold=True)
        for e in st["held_episodes"]:
            click.echo(f"  #{e['id']} {e['title']} ({e['published_at'] or 'no date'})")
    if st["scheduled_episodes"]:
        click.secho("Future-dated, waiting for their date:", bold=True)
        for e in st["scheduled_episodes"]:
            click.echo(f"  #{e['id']} {e['title']} ({e['published_at']})")
    if st.get("queue"):
        click.secho("Queued posts (`crier queue list`):", bold=True)
        for v in st["queue"]:
            line = f"  #{v['id']} {v['kind']} [{v['status']}] next {v['next_local'] or '-'}"
            if v["fired"] or v["missed"]:
                line += f" · fired {v['fired']}×, missed {v['missed']}×"
            click.echo(line)
            if v["note"]:
                click.secho(f"      {v['note']}", fg="yellow")
    for title, rows in (("Pending deliveries (`crier retry ID` sends a retrying one now)",
                         st["pending"]),
                        ("Failed or skipped deliveries (`crier retry ID` tries again)",
                         st["failed"]),
                        ("Last posts", st["recent"])):
        if rows:
            click.secho(f"{title}:", bold=True)
            for d in rows:
                line = f"  #{d['id']} {d['account']} ({d['platform']})"
                if d.get("promo"):
                    line += f" · queued post #{d['promo']}"
                if d["episode"]:
                    line += f" · {d['episode']}"
                click.echo(line)
                click.secho(f"      {_shown(d)}", fg=_STATE_COLOURS.get(d["state"]))


_STATE_COLOURS = {"failed": "red", "retrying": "yellow", "held": "yellow", "skipped": "yellow"}


def _print_overview(obj: Context, as_json: bool) -> bool:
    """One line per show when several are served; False when there is one."""
    from bot.shows import health, sync_config
    from bot.store import Store
    dep = obj.deployment()
    store = Store(dep.database_url)
    try:
        store.migrate()
        sync_config(store, dep.shows, remove=False)
        rows = health(store)
    finally:
        store.close()
    if len(rows) <= 1:
        return False
    from bot.status import iso
    if as_json:
        click.echo(json.dumps([{**r, "last_poll_at": iso(r["last_poll_at"])} for r in rows],
                              indent=2, ensure_ascii=False))
        return True
    for r in rows:
        bad = r["error_count"] or r["failed"] or r["held"]
        line = (f"{r['slug']:<24} last poll {iso(r['last_poll_at']) or 'never'} → "
                f"{r['last_result'] or '-'}; {r['error_count']} error(s) in a row, "
                f"{r['failed']} failed deliveries, {r['held']} held episode(s)")
        if r["error_count"] and r["last_error"]:
            line += f" (last error: {r['last_error']})"
        click.secho(line, fg="yellow" if bad else None)
    click.echo("crier status --show SLUG tells more about one show.")
    return True


def _shown(d: dict) -> str:
    """A delivery's state line, the same in `status` and `queue show` (bot.outbox decides)."""
    return f"{d['state']}: {d['detail']}"


# -- release / retry ----------------------------------------------------------------------
@main.command()
@click.argument("episode_ids", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Release (or dismiss) every held episode.")
@click.option("--dismiss", is_flag=True,
              help="Never announce these episodes: they leave the held list, recorded as "
                   "known.")
@show_option
@click.pass_obj
def release(obj: Context, episode_ids: tuple[int, ...], all_: bool, dismiss: bool) -> None:
    """Announce episodes held by the flood guard (or, with --dismiss, drop them)."""
    if not episode_ids and not all_:
        raise click.UsageError("name the episode ids (see `crier status`) or --all")
    if dismiss:
        from bot.held import dismiss as dismiss_held
        with obj.service() as svc:
            gone = dismiss_held(svc.store, None if all_ else episode_ids)
        for e in gone:
            click.echo(f"Dismissed #{e['id']} {e['title']}: recorded as known, never announced.")
        if not gone:
            click.echo("Nothing was held.")
        return
    with obj.service() as svc:
        done = svc.release(None if all_ else episode_ids)
    click.echo(f"Released {len(done)} episode(s): their announcements go out on the next "
               "dispatch." if done else "Nothing was held.")


@main.command()
@click.argument("delivery_ids", nargs=-1, type=int, required=True)
@show_option
@click.pass_obj
def retry(obj: Context, delivery_ids: tuple[int, ...]) -> None:
    """Try deliveries again now: failed, skipped or held ones, or pending ones waiting out a
    backoff (after fixing what made them fail). Anything else is an error (exit 1)."""
    from bot.outbox import retry as retry_deliveries
    with obj.service() as svc:
        done = retry_deliveries(svc.store, delivery_ids, svc.clock())
    for r in done:
        click.echo(f"delivery {r['id']} ({r['account']}, was {r['was']}): {r['action']}"
                   + (" — it goes out on the next dispatch" if r["changed"] else ""))


# -- history ------------------------------------------------------------------------------
@main.command()
@click.option("--since", metavar="WHEN",
              help='A date (2026-12-01), an ISO time, or a duration back from now ("7 days").')
@click.option("--account", metavar="NAME", help="Only this account's posts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def history(obj: Context, since: str | None, account: str | None, as_json: bool) -> None:
    """Every post that went out, newest first, with its URL."""
    from bot.history import history as read_history
    from bot.history import parse_since
    with obj.service() as svc:
        when = parse_since(since, now=svc.clock(), tz=svc.settings.tz) if since else None
        rows = read_history(svc.store, since=when, account=account)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("Nothing went out" + (f" since {when.isoformat(timespec='seconds')}"
                                         if when else "") + ".")
    for r in rows:
        about = r["episode"] or (f"queued post #{r['promo']}" if r["promo"] else "") or \
            (f"boost of {r['boost_of']}" if r["boost_of"] else "")
        if r["kind"] == "reply":
            about = f"link reply to {r['reply_to']}"
        click.echo(f"{r['sent_at']}  {r['account']} ({r['platform']})  {r['kind']}"
                   + (f"  {about}" if about else "") + f"\n    {r['url'] or r['remote_id']}")


# -- check --------------------------------------------------------------------------------
@main.command()
@click.option("--dry-run", is_flag=True, help="Check as `crier run --dry-run` would run.")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable: a list of checks with name, ok, detail.")
@show_option
@click.pass_obj
def check(obj: Context, dry_run: bool, as_json: bool) -> None:
    """Check everything that can fail later: config, database, credentials, the feed, every
    template against the newest episode, images. One line per check; exit 1 if one fails."""
    from bot.checks import run_checks
    checks = run_checks(obj.settings, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            click.secho(f"{'ok' if c.ok else 'FAILED':<6} {c.name:<{width}}  {c.detail}",
                        fg=None if c.ok else "red")
    if not all(c.ok for c in checks):
        sys.exit(1)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


# -- the promo queue --------------------------------------------------------------------------

@main.group()
def queue() -> None:
    """The host's promo queue: one-off, recurring and back-catalogue (evergreen) posts."""


def _print_previews(previews) -> None:
    for p in previews:
        flag = "" if p.fits else click.style("  OVER THE LIMIT", fg="red")
        note = " (shortened)" if p.shortened else ""
        click.echo(f"── {p.account} ({p.platform}): {p.length}/{p.limit} characters{note}{flag}")
        click.echo(p.text)
        if p.image:
            click.echo(f"[image {p.image}; alt text {p.alt_length}/{p.alt_limit}: {p.alt}]")
        click.echo()


def _print_promo(v: dict) -> None:
    click.echo(f"#{v['id']} {v['kind']} [{v['status']}] → {', '.join(v['accounts'])}")
    if v["rule"]:
        click.echo(f"   repeats: {v['rule']}" + (f" until {v['until']}" if v["until"] else ""))
    if v["next_local"]:
        click.echo(f"   next:    {v['next_local']}")
    for account, t in v["goes_out"].items():
        click.echo(f"   goes out on {account}: {t['local']}")
    if v["text"]:
        first = v["text"].strip().splitlines()[0]
        click.echo(f"   text:    {first[:70]}{'…' if len(first) > 70 else ''}")
    if v["fired"] or v["missed"]:
        click.echo(f"   fired {v['fired']}×, missed {v['missed']}×")
    if v["note"]:
        click.secho(f"   note:    {v['note']}", fg="yellow")


@queue.command("add")
@click.argument("text", required=False)
@click.option("--at", "at", metavar="WHEN", help='"tomorrow 9:00", "fri 17:00", ISO 8601.')
@click.option("--in", "in_", metavar="DURATION", help='"2h", "90m", "3 days".')
@click.option("--every", metavar="RULE", help='"fri 17:00", "every 2 weeks on mon 9:00", cron.')
@click.option("--until", metavar="WHEN", help="Stop repeating after this time.")
@click.option("--account", "accounts", multiple=True, metavar="NAME",
              help="Post on this account only (repeat for several; default: all).")
@click.option("--image", type=click.Path(dir_okay=False), help="An image to attach.")
@click.option("--alt", help="The image's alt text (required with --image).")
@click.option("--episode", metavar="GUID|latest",
              help="Make the episode's {{ title }}, {{ link }}, ... available to the text.")
@click.option("--fit", is_flag=True, help="Shorten the text where it is over a limit.")
@click.option("--evergreen", is_flag=True,
              help="A recurring slot promoting an older episode each time (TEXT optional: "
                   "a template; default: the evergreen template).")
@click.option("--pick", type=click.Choice(["oldest", "random"]), default="oldest",
              show_default=True, help="Evergreen: which older episode.")
@click.option("--cooldown", metavar="DAYS", type=click.IntRange(0), default=None,
              help="Evergreen: days before an episode is promoted again (default 90).")
@click.option("--dry-run", "dry", is_flag=True, help="Show the preview; queue nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def queue_add(obj: Context, text, at, in_, every, until, accounts, image, alt, episode, fit,
              evergreen, pick, cooldown, dry, as_json) -> None:
    """Queue TEXT (a template) for later, after showing it composed for every account."""
    if at and in_:
        raise CrierError("give --at or --in, not both")
    when = f"in {in_}" if in_ else at
    with obj.service() as svc:
        pid, promo, previews = svc.queue.add(
            text, at=when, every=every, until=until, accounts=accounts, image=image, alt=alt,
            episode=episode, fit=fit, evergreen=evergreen, pick=pick, cooldown_days=cooldown,
            dry=dry)
        view = svc.queue.show(pid) if pid else None
    if as_json:
        click.echo(json.dumps({"id": pid, "queued": pid is not None, "promo": view,
                               "previews": [p.__dict__ for p in previews]}, indent=2,
                              default=str))
        return
    _print_previews(previews)
    if pid is None:
        click.echo("Dry run: nothing queued.")
        return
    click.echo(f"Queued #{pid}.")
    _print_promo(view)


@queue.command("list")
@click.option("--all", "all_", is_flag=True, help="Include done and cancelled posts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def queue_list(obj: Context, all_: bool, as_json: bool) -> None:
    """Queued posts, with when each will actually go out on each account."""
    with obj.service() as svc:
        views = svc.queue.list(all_=all_)
    if as_json:
        click.echo(json.dumps(views, indent=2, default=str))
        return
    if not views:
        click.echo("The queue is empty (`crier queue add --help`).")
    for v in views:
        _print_promo(v)


@queue.command("show")
@click.argument("promo_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def queue_show(obj: Context, promo_id: int, as_json: bool) -> None:
    """One queued post: its rule, next times, and what each firing did."""
    with obj.service() as svc:
        v = svc.queue.show(promo_id)
    if as_json:
        click.echo(json.dumps(v, indent=2, default=str))
        return
    _print_promo(v)
    if v["text"]:
        click.echo("\n" + v["text"].strip() + "\n")
    for d in v["deliveries"]:
        click.echo(f"   delivery {d['id']} {d['account']} (due {d['due_at']}): {_shown(d)}")


@queue.command("edit")
@click.argument("promo_id", type=int)
@click.option("--text", help="New text (a template).")
@click.option("--at", metavar="WHEN")
@click.option("--every", metavar="RULE")
@click.option("--until", metavar="WHEN")
@click.option("--account", "accounts", multiple=True, metavar="NAME")
@click.option("--image", type=click.Path(dir_okay=False))
@click.option("--alt")
@click.option("--fit/--no-fit", default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def queue_edit(obj: Context, promo_id, text, at, every, until, accounts, image, alt, fit,
               as_json) -> None:
    """Change a queued post (checked and previewed again)."""
    with obj.service() as svc:
        v, previews = svc.queue.edit(promo_id, text=text, at=at, every=every, until=until,
                                     accounts=accounts, image=image, alt=alt, fit=fit)
    if as_json:
        click.echo(json.dumps({"promo": v, "previews": [p.__dict__ for p in previews]},
                              indent=2, default=str))
        return
    _print_previews(previews)
    _print_promo(v)


def _status_command(action: str, doc: str):
    @queue.command(action, help=doc)
    @click.argument("promo_id", type=int)
    @show_option
    @click.pass_obj
    def command(obj: Context, promo_id: int) -> None:
        with obj.service() as svc:
            v = svc.queue.set_status(promo_id, action)
        _print_promo(v)
        if v.get("withdrawn"):
            click.echo(f"   withdrew {len(v['withdrawn'])} delivery(ies) not yet sending")
    return command


_status_command("cancel", "Cancel a queued post (deliveries not yet sending are withdrawn).")
_status_command("pause", "Pause a queued post (resume picks up at the next occurrence).")
_status_command("resume", "Resume a paused post.")


# -- spreading an episode ---------------------------------------------------------------------

@main.command()
@click.argument("episode", required=False, metavar="[GUID|ID|latest]")
@click.option("--instance", metavar="HOST",
              help="The Mastodon instance for the share link (default: the show's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def share(obj: Context, episode: str | None, instance: str | None, as_json: bool) -> None:
    """A share kit for listeners: a post per network, share links, the posts to boost."""
    with obj.service() as svc:
        kit = svc.share(episode, instance=instance)
    if as_json:
        click.echo(json.dumps(kit, indent=2, ensure_ascii=False))
        return
    click.secho(kit["episode"], bold=True)
    for t in kit["texts"]:
        click.echo(f"\n── {t['network']}: {t['length']}/{t['limit']} ──")
        click.echo(t["text"])
        click.echo(f"share: {t['share_url']}")
    if kit["official_posts"]:
        click.echo("\nBoost or quote the official posts:")
        for p in kit["official_posts"]:
            click.echo(f"  {p['account']} ({p['platform']}): {p['url']}")


@main.command("socialinteract")
@click.argument("episode", required=False, metavar="[GUID|ID|latest]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def social_interact(obj: Context, episode: str | None, as_json: bool) -> None:
    """The episode's <podcast:socialInteract> tags, for the host to paste into the feed."""
    with obj.service() as svc:
        out = svc.social_interact(episode)
    if as_json:
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not out["tags"]:
        raise CrierError(f"episode {out['id']} ({out['episode']}) has no sent announcement "
                         "yet: nothing to point podcast apps at")
    click.echo(out["xml"])


# -- the community ----------------------------------------------------------------------------

@main.group()
def community() -> None:
    """The listener community's posts proposed for a boost by the official account."""


@community.command("scan")
@show_option
@click.pass_obj
def community_scan(obj: Context) -> None:
    """Look for new posts now (the worker does it every `interval`)."""
    with obj.service() as svc:
        new = svc.community_scan()
    click.echo(f"{len(new)} new post(s)" + (": " + ", ".join(
        f"#{n['id']} {n['author']}{' (allow-listed: boosting)' if n['approved'] else ''}"
        for n in new) if new else "."))


@community.command("list")
@click.option("--all", "all_", is_flag=True, help="Include approved and rejected posts.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def community_list(obj: Context, all_: bool, as_json: bool) -> None:
    """Posts waiting for approval (`crier community approve ID`)."""
    with obj.service() as svc:
        rows = svc.community_list(all_=all_)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("Nothing waiting for approval.")
    for r in rows:
        click.echo(f"#{r['id']} [{r['status']}] {r['author']} via {r['via']}: {r['url']}")
        click.echo("   " + (r["text"] or "").replace("\n", " ")[:200])


def _decide_command(name: str, approve: bool, doc: str):
    @community.command(name, help=doc)
    @click.argument("post_ids", nargs=-1, type=int, required=True)
    @show_option
    @click.pass_obj
    def command(obj: Context, post_ids: tuple[int, ...]) -> None:
        with obj.service() as svc:
            for pid in post_ids:
                row = svc.community_decide(pid, approve)
                click.echo(f"#{pid} {row['status']}: {row['url']}")
    return command


_decide_command("approve", True, "Approve posts: the official account boosts each once.")
_decide_command("reject", False, "Reject posts: never proposed again.")


# -- notifications ----------------------------------------------------------------------------

@main.group()
def notify() -> None:
    """Notifications to the host (the `notify` Apprise URLs)."""


@notify.command("test")
@show_option
@click.pass_obj
def notify_test(obj: Context) -> None:
    """Send a test message to every notify URL (top level and per account)."""
    from bot.alerts import Alerts, notifier_for
    settings = obj.settings()
    notifier = notifier_for(settings)
    results = Alerts(settings, None, notifier, clock=None).test()  # type: ignore[arg-type]
    if not results:
        raise CrierError(f"no notify URLs configured in {settings.path} (a top-level or "
                         "per-account `notify = [\"...\"]`)")
    width = max(len(k) for k, _ in results)
    for key, r in results:
        mark = click.style("ok", fg="green") if r.ok else click.style("FAILED", fg="red")
        click.echo(f"{key:<{width}}  {r.url}  {mark}" + ("" if r.ok else f": {r.error}"))
    if not all(r.ok for _, r in results):
        sys.exit(1)


# -- shows: the registry (bot/shows.py) ---------------------------------------------------
@main.group()
def shows() -> None:
    """The shows crier serves: from the config, or imported from show files."""


@contextmanager
def _registry(obj: Context):
    from bot.store import Store
    dep = obj.deployment()
    store = Store(dep.database_url)
    try:
        store.migrate()
        yield dep, store
    finally:
        store.close()


@shows.command("list")
@click.option("--removed", is_flag=True, help="Removed shows too (their history is kept).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def shows_list(obj: Context, removed: bool, as_json: bool) -> None:
    """Every show in the registry (the config is synced into it first)."""
    from bot.shows import list_shows, sync_config
    from bot.status import iso
    with _registry(obj) as (dep, store):
        sync_config(store, dep.shows, remove=False)
        rows = list_shows(store, removed=removed)
    if as_json:
        click.echo(json.dumps([{k: iso(v) if k.endswith("_at") else v for k, v in r.items()}
                               for r in rows], indent=2, ensure_ascii=False))
        return
    for r in rows:
        gone = f" (removed {iso(r['removed_at'])})" if r["removed_at"] else ""
        click.echo(f"{r['slug']:<24} {r['source']:<7} {r['name']}{gone}")
    if not rows:
        click.echo("No shows yet.")


@shows.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.pass_obj
def shows_import(obj: Context, path: str) -> None:
    """Add or update the shows of PATH: a TOML file, or a folder of them (each in the
    single-show layout). They stay until `crier shows remove SLUG`."""
    import time

    from bot.shows import import_shows
    started = time.monotonic()
    with _registry(obj) as (dep, store):
        r = import_shows(store, dep, path)
    click.echo(f"{r.files} show file(s) read in {time.monotonic() - started:.1f} s: "
               f"{len(r.added)} added, {len(r.changed)} changed, {r.unchanged} unchanged")


@shows.command("remove")
@click.argument("slug")
@click.pass_obj
def shows_remove(obj: Context, slug: str) -> None:
    """Stop serving a show: its history is kept, its unsent deliveries are withdrawn."""
    from bot.shows import remove_show
    with _registry(obj) as (dep, store):
        if slug in dep.slugs:
            raise CrierError(f"the show '{slug}' is declared by the config {dep.path}: "
                             "remove it there (the next start or SIGHUP removes it)")
        n = remove_show(store, slug)
    click.echo(f"show '{slug}' removed; {n} unsent deliveries withdrawn")
