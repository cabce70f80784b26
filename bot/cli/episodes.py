"""Acting on one episode or delivery: `crier release` (episodes held by the flood guard),
`crier retry` and `crier remove` (deliveries), `crier share` (a share kit for listeners) and
`crier socialinteract` (the feed tags pointing at the announcements)."""

from __future__ import annotations

import json

import click

from bot.cli.context import Context, show_option
from bot.errors import CrierError


# -- release / retry ----------------------------------------------------------------------
@click.command()
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
            click.echo(f"Dismissed #{e.id} {e.title}: recorded as known, never announced.")
        if not gone:
            click.echo("Nothing was held.")
        return
    with obj.service() as svc:
        done = svc.release(None if all_ else episode_ids)
    click.echo(f"Released {len(done)} episode(s): their announcements go out on the next "
               "dispatch." if done else "Nothing was held.")


@click.command()
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


@click.command()
@click.argument("delivery_id", type=int)
@show_option
@click.pass_obj
def remove(obj: Context, delivery_id: int) -> None:
    """Take down a post that went out (a sent delivery, see `crier status` / `crier history`):
    it is deleted on its network and recorded as removed, never sent again."""
    from bot.removal import remove as remove_post
    with obj.service() as svc:
        r = remove_post(svc, delivery_id, by="cli")
    said = {"removed": "removed", "already removed": "was already removed meanwhile"}
    click.echo(f"delivery {r['id']} ({r['account']}, {r['url'] or 'no URL'}): "
               + said.get(r["action"], r["action"])
               + (f"; {r['boosts_removed']} boost(s) of it went with it"
                  if r["boosts_removed"] else "")
               + (f"; {r['boosts_withdrawn']} boost(s) of it withdrawn"
                  if r["boosts_withdrawn"] else ""))


# -- spreading an episode ---------------------------------------------------------------------

@click.command()
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


@click.command("socialinteract")
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
