"""`crier web` (the control room, bot.web, under uvicorn), `crier users ...` and
`crier tokens ...` (who may use it: bot.users)."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from bot.cli.context import Context


def _now() -> datetime:
    return datetime.now(UTC)


def web_options(f):
    f = click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on.")(f)
    f = click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
                     help="Port to listen on.")(f)
    f = click.option("--root-path", default="", metavar="PATH",
                     help='Served under this path behind a reverse proxy (e.g. "/crier").')(f)
    f = click.option("--proxy", "proxies", multiple=True, metavar="ADDR",
                     help="Trust X-Forwarded-For/-Proto from this proxy address (repeat; "
                          "default: trust none).")(f)
    return f


def web_server(obj: Context, store, *, host: str, port: int, root_path: str, proxies):
    """A uvicorn Server for the control room over `store` (not started)."""
    import uvicorn

    from bot.web.app import create_app
    app = create_app(store, obj.reload_deployment)
    config = uvicorn.Config(app, host=host, port=port, root_path=root_path.rstrip("/"),
                            proxy_headers=bool(proxies),
                            forwarded_allow_ips=list(proxies) or None, server_header=False,
                            log_level="info" if obj.verbose else "warning", access_log=False)
    return uvicorn.Server(config)


@click.command()
@web_options
@click.pass_obj
def web(obj: Context, host: str, port: int, root_path: str, proxies) -> None:
    """Serve the control room (log in with a user from `crier users add`)."""
    with _store(obj) as store:
        server = web_server(obj, store, host=host, port=port, root_path=root_path,
                            proxies=proxies)
        click.echo(f"crier web: http://{host}:{port}{root_path.rstrip('/')}/ (Ctrl-C stops)",
                   err=True)
        # uvicorn handles SIGTERM/SIGINT (a graceful shutdown), then raises the signal again
        # for the handler it found: a quiet one, so the command ends with exit code 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        server.run()
        click.echo("crier web stopped", err=True)


@contextmanager
def _store(obj: Context):
    """The deployment's store, migrated and synced with the config (no show removed), closed
    after the block."""
    from bot.shows import sync_config
    from bot.store import Store
    dep = obj.deployment()
    store = Store(dep.database_url)
    try:
        store.migrate()
        sync_config(store, dep.shows, remove=False)
        yield store
    finally:
        store.close()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group()
def users() -> None:
    """Who may log in to the control room (`crier web`)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["host", "cohost"]), default="host",
              show_default=True, help="host: everything; cohost: queue, edit, approve.")
@click.option("--show", "show_slugs", multiple=True, metavar="SLUG",
              help="A show they may see (repeat; default: every show).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.pass_obj
def users_add(obj: Context, name: str, role: str, show_slugs, password_stdin: bool) -> None:
    """Add a user who may log in to the control room."""
    from bot.users import add_user, check_password
    password = _read_password(password_stdin)
    check_password(password)
    with _store(obj) as store:
        user = add_user(store, name, password, role=role, show_slugs=show_slugs, now=_now())
    click.echo(f"Added {user.role} {user.name!r} "
               f"({'shows ' + ', '.join(show_slugs) if show_slugs else 'every show'}).")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def users_list(obj: Context, as_json: bool) -> None:
    """The users (never their passwords)."""
    from bot.shows import served_ids
    from bot.users import list_users
    with _store(obj) as store:
        found, slugs = list_users(store), served_ids(store)
    rows = [{"name": u.name, "role": u.role,
             "shows": None if u.shows is None else sorted(slugs.get(s) or f"#{s}"
                                                          for s in u.shows),
             "created_at": u.created_at.isoformat() if u.created_at else None} for u in found]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No users yet (crier users add NAME).")
    for r in rows:
        click.echo(f"{r['name']:<20} {r['role']:<7} "
                   f"{'every show' if r['shows'] is None else ', '.join(r['shows'])}")


@users.command("remove")
@click.argument("name")
@click.pass_obj
def users_remove(obj: Context, name: str) -> None:
    """Remove a user (their sessions and API tokens end)."""
    from bot.users import remove_user
    with _store(obj) as store:
        remove_user(store, name)
    click.echo(f"Removed {name!r}.")


@click.group()
def tokens() -> None:
    """API tokens for scripts (`Authorization: Bearer TOKEN`)."""


@tokens.command("create")
@click.argument("user")
@click.option("--label", metavar="L", help="What the token is for.")
@click.pass_obj
def tokens_create(obj: Context, user: str, label: str | None) -> None:
    """Make a token acting as USER; it is printed once and stored only as a hash."""
    from bot.users import create_token
    with _store(obj) as store:
        tid, token = create_token(store, user, label=label, now=_now())
    click.echo(f"Token #{tid} for {user!r} (shown once; keep it secret):", err=True)
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def tokens_list(obj: Context, as_json: bool) -> None:
    """The tokens (never the tokens themselves)."""
    from bot.users import list_tokens
    with _store(obj) as store:
        found = list_tokens(store)
    iso = lambda t: t.isoformat(timespec="seconds") if t else None  # noqa: E731
    rows = [{"id": t.id, "user": t.user, "label": t.label, "created_at": iso(t.created_at),
             "last_used_at": iso(t.last_used_at), "revoked_at": iso(t.revoked_at)}
            for t in found]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No tokens (crier tokens create USER).")
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else \
            f"last used {r['last_used_at'] or 'never'}"
        click.echo(f"#{r['id']:<4} {r['user']:<16} {r['label'] or '':<20} {state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def tokens_revoke(obj: Context, token_id: int) -> None:
    """Revoke a token: it stops working at once."""
    from bot.users import revoke_token
    with _store(obj) as store:
        revoke_token(store, token_id, now=_now())
    click.echo(f"Revoked token #{token_id}.")


__all__ = ["web", "users", "tokens", "web_options", "web_server"]
