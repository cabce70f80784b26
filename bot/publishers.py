"""The accounts' publishers: one per configured account (a recording one for dry runs, one that
refuses for missing secrets), and the check of each account's credentials."""

from __future__ import annotations

from bot import errors
from bot.config import Settings
from bot.platforms.base import Publisher


def build_publishers(settings: Settings, *, dry_run: bool = False, session=None,
                     checkpoints=None) -> dict[str, Publisher]:
    """One publisher per account; dry-run accounts (or --dry-run) record instead of posting.
    `checkpoints` (the Store: `checkpoint(key)`, `set_checkpoint(key, data)`) keeps a
    publisher's state between the steps of one delivery (Bluesky, Threads)."""
    from bot.platforms.base import quiet_leaky_loggers
    quiet_leaky_loggers()
    from bot.platforms.dryrun import DryRunPublisher
    out: dict[str, Publisher] = {}
    for a in settings.accounts:
        if a.dry_run or dry_run:
            out[a.name] = DryRunPublisher(a.name, a.platform, max_characters=a.max_characters,
                                          reason=a.dry_run_reason or "--dry-run")
        elif getattr(a, "missing_secrets", ()):  # cannot post: says so, never fakes a post
            from bot.platforms.dryrun import UnconfiguredPublisher
            out[a.name] = UnconfiguredPublisher(a.name, a.platform, a.missing_secrets,
                                                max_characters=a.max_characters)
        elif a.platform == "mastodon":
            from bot.platforms.mastodon import MastodonPublisher
            out[a.name] = MastodonPublisher(a.name, a.instance,
                                            a.secrets["access_token"].reveal(),
                                            timeout=a.timeout, visibility=a.visibility)
        elif a.platform == "bluesky":
            from bot.platforms.bluesky import BlueskyPublisher
            out[a.name] = BlueskyPublisher(a.name, handle=a.handle, service=a.service,
                                           app_password=a.secrets["app_password"].reveal(),
                                           checkpoints=checkpoints, timeout=a.timeout)
        elif a.platform == "threads":
            from bot.platforms.threads import ThreadsPublisher
            out[a.name] = ThreadsPublisher(a.name, access_token=a.secrets["access_token"].reveal(),
                                           api_base=a.api_base, user_id=a.user_id,
                                           checkpoints=checkpoints, timeout=a.timeout,
                                           token_store=None)  # (the web app's: THREADS wires it)
        else:
            from bot.platforms.x import XPublisher
            s = a.secrets
            out[a.name] = XPublisher(a.name, consumer_key=s["consumer_key"].reveal(),
                                     consumer_secret=s["consumer_secret"].reveal(),
                                     access_token=s["access_token"].reveal(),
                                     access_token_secret=s["access_token_secret"].reveal(),
                                     api_base=a.api_base,
                                     timeout=a.timeout)
    return out




def check_accounts(settings: Settings, publishers: dict[str, Publisher],
                   dry_run: bool = False) -> list[dict]:
    """Each account's credentials, verified on its network (`crier check` without --deep)."""
    rows = []
    for a in settings.accounts:
        p = publishers[a.name]
        try:
            who = p.verify()
            rules = p.rules()
            rows.append({"account": a.name, "platform": a.platform, "ok": True,
                         "dry_run": a.dry_run or dry_run, "who": who,
                         "limit": rules.limit, "error": None})
        except errors.CrierError as e:
            rows.append({"account": a.name, "platform": a.platform, "ok": False,
                         "dry_run": a.dry_run or dry_run, "who": None,
                         "limit": None, "error": str(e)})
    return rows
