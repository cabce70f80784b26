"""The commands that report and send nothing: `crier preview` (what would be posted),
`crier status` (one show in detail, or a line of health per show), `crier history` (what went
out) and `crier check` (everything that can fail later)."""

from __future__ import annotations

import json
import sys

import click

from bot.cli.context import Context, show_option, shown
from bot.errors import CrierError


# -- preview ------------------------------------------------------------------------------
@click.command()
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
@click.command()
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
        if f.get("listening"):
            click.echo(f"  listening: {f['listening']['line']}")
        if f["last_error"]:
            click.secho(f"  last error ({f['error_count']} in a row): {f['last_error']}",
                        fg="red")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(f["episodes"].items()))
        click.echo(f"  episodes: {counts or 'none yet'}")
    if not any(f["last_poll_at"] for f in st["feeds"]):
        click.echo("No feed polled yet: run `crier run --once`.")
    if st.get("podping"):
        from bot.podping import describe as podping_line
        click.echo(podping_line(st["podping"]))
    for a in st.get("accounts", ()):  # where each account's credentials come from
        fine = a["credentials"] in ("environment", "connected in the web app", "dry run")
        click.secho(f"Account {a['account']} ({a['platform']}): credentials: "
                    f"{a['credentials']}", fg=None if fine else "yellow")
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
                click.secho(f"      {shown(d)}", fg=_STATE_COLOURS.get(d["state"]))


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


# -- history ------------------------------------------------------------------------------
@click.command()
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
                   + (f"  {about}" if about else "") + f"\n    {r['url'] or r['remote_id']}"
                   + (f"  (removed at {r['removed_at']})" if r.get("removed_at") else ""))


# -- check --------------------------------------------------------------------------------
@click.command()
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
