"""`crier community ...`: listeners' posts found by the scan (bot.listeners), approved or
rejected by the host for a boost by the official account."""

from __future__ import annotations

import json

import click

from bot.cli.context import Context, show_option


@click.group()
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
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("Nothing waiting for approval.")
    for r in rows:
        click.echo(f"#{r.id} [{r.status}] {r.author} via {r.via}: {r.url}")
        click.echo("   " + (r.text or "").replace("\n", " ")[:200])


def _decide_command(name: str, approve: bool, doc: str):
    @community.command(name, help=doc)
    @click.argument("post_ids", nargs=-1, type=int, required=True)
    @show_option
    @click.pass_obj
    def command(obj: Context, post_ids: tuple[int, ...]) -> None:
        with obj.service() as svc:
            for pid in post_ids:
                row = svc.community_decide(pid, approve)
                click.echo(f"#{pid} {row.status}: {row.url}")
    return command


_decide_command("approve", True, "Approve posts: the official account boosts each once.")
_decide_command("reject", False, "Reject posts: never proposed again.")
