"""`crier run`: the worker (bot.worker), or with --once one poll and dispatch cycle of every
show, printed as it went."""

from __future__ import annotations

import sys

import click

from bot.cli.context import Context
from bot.cli.web import web_options, web_server
from bot.errors import CrierError


@click.command()
@click.option("--once", is_flag=True, help="One poll and dispatch cycle, then exit.")
@click.option("--dry-run", is_flag=True,
              help="Record what would be posted on every account; send nothing.")
@click.option("--backfill", type=click.IntRange(min=0), default=None, metavar="N",
              help="On the first run, announce the newest N episodes instead of none.")
@click.option("--web", "with_web", is_flag=True,
              help="Serve the control room from this process too (see crier web).")
@web_options
@click.pass_obj
def run(obj: Context, once: bool, dry_run: bool, backfill: int | None, with_web: bool,
        host: str, port: int, root_path: str, proxies) -> None:
    """Run the worker: poll the feed, announce new episodes, deliver posts."""
    obj.require_credentials(dry_run)
    if with_web and once:
        raise CrierError("--web serves the control room beside the worker; not with --once")
    if not once:
        from bot.worker import run_worker
        web = (lambda store: web_server(obj, store, host=host, port=port, root_path=root_path,
                                        proxies=proxies)) if with_web else None
        run_worker(obj, dry_run=dry_run, backfill=backfill, web=web)
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
