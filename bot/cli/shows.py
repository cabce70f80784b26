"""`crier shows ...`: the registry of shows (bot.shows): list, import show files, remove."""

from __future__ import annotations

import json
from contextlib import contextmanager

import click

from bot.cli.context import Context
from bot.errors import CrierError


@click.group()
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
