"""What every `crier` command is handed: the `Context` object (the config, the show chosen
with --show, a Service or the Fleet opened on the database and closed again), the --show
option, and the one line a delivery's state is shown as."""

from __future__ import annotations

from contextlib import contextmanager

import click

from bot.errors import CrierError


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
        if lacking and _database_exists(dep.database_url):  # connected in the web app?
            from bot.connect import with_connected
            from bot.store import Store
            store = Store(dep.database_url)
            try:
                store.migrate()
                lacking = [a for s in dep.shows if s.unconfigured
                           for a in with_connected(s, store).unconfigured]
            finally:
                store.close()
        if lacking:
            raise CrierError("no credentials for " + "; ".join(
                f"account '{a.name}' (set {', '.join(a.missing_secrets)}"
                + (f"; {a.credentials}" if a.credentials else "") + ")"
                for a in lacking) + f" in the environment or "
                f"{dep.path.resolve().parent / '.env'}, or connect it in the web app; or "
                "mark the account dry_run = true, or pass --dry-run")

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


def _database_exists(url: str) -> bool:
    """False for a SQLite file not made yet (nothing was ever connected there)."""
    from pathlib import Path

    from sqlalchemy.engine import make_url
    u = make_url(url)
    return u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:" \
        or Path(u.database).exists()


def _set_show(ctx: click.Context, _param, value: str | None) -> str | None:
    if value is not None:
        ctx.ensure_object(Context).show_slug = value
    return value


show_option = click.option(
    "--show", metavar="SLUG", expose_value=False, callback=_set_show,
    help="The show (its slug): needed when crier serves several (see crier shows list).")


def shown(d: dict) -> str:
    """A delivery's state line, the same in `status` and `queue show` (bot.outbox decides)."""
    return f"{d['state']}: {d['detail']}"
