"""`crier queue ...`: the host's promo queue (bot.promos), each post previewed for every
account before it is queued."""

from __future__ import annotations

import json

import click

from bot.cli.context import Context, show_option, shown
from bot.errors import CrierError


@click.group()
def queue() -> None:
    """The host's promo queue: one-off, recurring and back-catalogue (evergreen) posts."""


def _print_previews(previews) -> None:
    for p in previews:
        flag = "" if p.fits else click.style("  OVER THE LIMIT", fg="red")
        note = " (shortened)" if p.shortened else ""
        if p.platform == "x":   # X bills per post (bot.xcost)
            from bot.xcost import post_cost, usd
            note += f" · X cost {usd(post_cost(p.text, getattr(p, 'reply_text', None)))}"
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
    from bot.schedule import at_or_in
    when = at_or_in(at, in_)
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
        click.echo(f"   delivery {d['id']} {d['account']} (due {d['due_at']}): {shown(d)}")


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


@queue.command("calendar")
@click.option("--week", "week_of", metavar="DATE",
              help="The week (Monday to Sunday) holding DATE, YYYY-MM-DD (default: this week).")
@click.option("--month", "month_of", metavar="YYYY-MM", help="A whole month.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@show_option
@click.pass_obj
def queue_calendar(obj: Context, week_of: str | None, month_of: str | None,
                   as_json: bool) -> None:
    """Everything that will go out in a week or a month, per account, at the time it will
    really go out (gap, quiet hours, grace), in the show's time zone."""
    from datetime import date

    from bot.calendar import month, week
    if week_of and month_of:
        raise CrierError("give --week or --month, not both")
    try:
        day = date.fromisoformat(week_of) if week_of else None
        ym = date.fromisoformat(f"{month_of}-01") if month_of else None
    except ValueError:
        raise CrierError(f"--week takes a date like 2026-12-07, --month a month like "
                         f"2026-12 (got {week_of or month_of!r})") from None
    with obj.service() as svc:
        tz = svc.settings.tz
        if ym is not None:
            entries = month(svc, ym.year, ym.month)
        else:
            entries = week(svc, day or svc.clock().astimezone(svc.settings.tz).date())
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    if not entries:
        click.echo("Nothing goes out in this window (`crier queue add --help`).")
    shown_day = None
    for e in entries:
        day_of = e.local[:10]
        if day_of != shown_day:
            click.echo(f"{date.fromisoformat(day_of):%a %Y-%m-%d}")
            shown_day = day_of
        ref = f"#{e.promo_id}" if e.promo_id else f"episode {e.episode_id}" \
            if e.episode_id else f"delivery {e.delivery_id}"
        click.echo(f"  {e.local[11:16]}  {e.account:<10} {e.kind:<12} {ref:<11} "
                   f"[{e.status}] {e.text}")
        if e.reason:
            moved = f"moved from {e.moved_from.astimezone(tz):%a %H:%M}: " \
                if e.moved_from else ""
            click.echo(f"         {moved}{e.reason}")
