"""`crier notify test`: a test message to every notify URL (bot.alerts), one line each."""

from __future__ import annotations

import sys

import click

from bot.cli.context import Context, show_option
from bot.errors import CrierError


@click.group()
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
