"""The `crier` command line: a thin layer over `bot.service`.

This module holds the `crier` group itself (`bot.cli:main`, the console script and
`python -m bot`): its options, logging, and the translation of expected errors. The commands
live by concern in the modules next to it, and are added to the group below:

- `context`: the object every command is handed (config, --show, a Service or the Fleet);
- `run`: `crier run` (the worker, or `--once`);
- `inspect`: `preview`, `status`, `history`, `check` (they report, send nothing);
- `episodes`: `release`, `retry`, `remove`, `share`, `socialinteract` (one episode or delivery);
- `queue`, `community`, `notify`, `shows`: the command groups of those names;
- `web`: `crier web` (the control room) and the `users` and `tokens` groups;
- `secrets`: `secret-key` (a new CRIER_SECRET_KEY for connected accounts).

Expected errors (bad config, unreachable database, broken feed) print one clear line and exit
non-zero; no traceback reaches the user for them. Heavy libraries are imported inside commands
so `crier --help` stays fast.
"""

from __future__ import annotations

import logging
import sys

import click

from bot import __version__
from bot.cli.community import community
from bot.cli.context import Context
from bot.cli.episodes import release, remove, retry, share, social_interact
from bot.cli.inspect import check, history, preview, status
from bot.cli.notify import notify
from bot.cli.queue import queue
from bot.cli.run import run
from bot.cli.secrets import secret_key
from bot.cli.shows import shows
from bot.cli.web import tokens, users, web
from bot.errors import CrierError


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


for _command in (run, preview, status, release, retry, remove, history, check, queue, share,
                 social_interact, community, notify, shows, web, users, tokens,
                 secret_key):
    main.add_command(_command)

__all__ = ["Context", "main"]
