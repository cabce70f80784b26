"""What crier tells the host, and when: the application side of notifications.

The service calls one method per event; this module words the message (what failed, where,
what to do), picks the URLs (the account's own `notify` list plus the top-level one) and hands
it to the injected `Notifier`, which sends it off the posting path. Conditions that last (an
account's credentials refused, the feed down) are recorded in the `notices` table, so the
host is told once, not per delivery or per poll, and not again after a restart:

- a delivery ends `failed`: one message per delivery (X's 402, credits exhausted: once a day
  per account, since every post there fails alike);
- an account's credentials are refused: once, until a post on that account goes out again;
- the feed has failed for `feed_alert_after`: once; and once when it is back;
- episodes held by the flood guard: one message per poll that held some;
- a queued post missed past its grace window: one message per firing that missed;
- an X post held by the account's x_budget (bot.quotas): once per account and period.

Nothing here may break a post: every method logs and swallows its own errors.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.notify import Message, Notifier, SendResult, build_notifier, redact

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.models import Delivery, Feed, Promo
    from bot.store import Store

log = logging.getLogger(__name__)

TITLE_PREFIX = "crier"
SNIPPET = 80  # characters of a promo's text quoted in a message
HELD_LISTED = 20  # held episodes listed by name in one message (the rest are counted)


def notifier_for(settings: Settings) -> Notifier:
    """The notifier the settings ask for (a null one when no URL is configured)."""
    urls = settings.notify + tuple(u for a in settings.accounts for u in a.notify)
    return build_notifier(urls)


def _safe(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self, *args, **kw):
        try:
            return method(self, *args, **kw)
        except Exception:  # a notification must never stop a post
            log.exception("notification (%s) could not be prepared", method.__name__)
            return None
    return wrapper


class Alerts:
    def __init__(self, settings: Settings, store: Store, notifier: Notifier,
                 clock: Callable[[], datetime]):
        self.settings, self.store, self.notifier, self.clock = settings, store, notifier, clock

    def _send(self, title: str, body: str, *, account: str | None = None,
              kind: str = "warning") -> None:
        urls = self.settings.notify_urls(account)
        if urls:
            self.notifier.send(Message(f"{TITLE_PREFIX}: {title}", body, urls, kind))

    @property
    def _on(self) -> bool:
        return bool(self.settings.notify or any(a.notify for a in self.settings.accounts))

    # -- deliveries -------------------------------------------------------------------------
    @_safe
    def delivery_failed(self, d: Delivery, error: Exception) -> None:
        """A delivery ended `failed` (`d`: its row as `Store.delivery` gives it)."""
        if not self._on:
            return
        from bot.errors import CreditsExhaustedError
        if isinstance(error, CreditsExhaustedError):
            return self._credits_exhausted(d, error)
        error = _said(error)
        what = self._what(d)
        body = (f"Delivery {d.id} (post {d.post_id}) to {d.account} "
                f"({d.platform}) failed: {what}.\n\n"
                f"The platform said: {error}\n\n"
                f"What to do: fix what it says (the text, the image, the account's "
                f"permissions), then run `crier retry {d.id}`. `crier status` lists every "
                "failed delivery.")
        self._send(f"a post to {d.account} failed", body, account=d.account,
                   kind="failure")

    def _credits_exhausted(self, d: Delivery, error: Exception) -> None:
        """X answered 402: told once a day per account (every post there fails alike)."""
        now = self.clock()
        if not self.store.add_notice(f"credits:{d.account}:{now:%Y-%m-%d}", now, now):
            return
        body = (f"Delivery {d.id} (post {d.post_id}) to {d.account} (x) failed, "
                f"{self._what(d)}: {error}\n\n"
                f"X bills each post and this app's prepaid credits are spent: every post on "
                f"{d.account} fails the same way until credits are added (you are told once a "
                "day).\n\n"
                "What to do: buy credits (or turn on auto-recharge) for the app in X's Developer "
                f"Console, then `crier retry {d.id}` (and the other failed ones `crier status` "
                "lists). x_budget in the account's settings keeps crier's own spend in bounds.")
        self._send(f"X credits exhausted on {d.account}", body, account=d.account,
                   kind="failure")

    def _what(self, d: Delivery) -> str:
        kind = d.kind
        if d.episode_id and kind == "announcement":
            ep = self.store.get_episode(d.episode_id)
            return f"the announcement of episode {ep.title!r}" if ep else "an announcement"
        if kind == "promo":
            promo = self.store.promo(d.promo_id) if d.promo_id else None
            text = _snippet((promo.text or "") if promo else "")
            return f"queued post #{d.promo_id}" + (f" ({text!r})" if text else "")
        if kind in ("boost", "community"):
            return f"a boost ({d.text or kind})"
        return f"a {kind or 'post'}"

    @_safe
    def auth_refused(self, d: Delivery, error: Exception) -> None:
        """The account's credentials were refused: told once until they work again."""
        if not self._on:
            return
        error = _said(error)
        name, platform = d.account, d.platform
        if not self.store.add_notice(f"auth:{name}", self.clock(), self.clock()):
            return  # already told (by this process, an earlier one, or another worker)
        from bot.config import secret_names
        names = ", ".join(secret_names(name, platform))
        body = (f"{platform} refused the credentials of account {name}: {error}\n\n"
                f"Nothing is posted on {name} until they work; its posts wait (delivery "
                f"{d.id} and any others), nothing is lost.\n\n"
                f"What to do: set new credentials in {names} (environment or .env), run "
                "`crier check`, then restart crier: the waiting posts go out (without a "
                "restart they are tried again every hour). You are told again only if they "
                "are refused after working.")
        self._send(f"credentials refused for {name}", body, account=name, kind="failure")

    @_safe
    def over_budget(self, d: Delivery, key: str, reason: str) -> None:
        """An X post was held by its account's x_budget (bot.quotas): told once per account
        and budget period (`key`), however many posts are held in it."""
        if not self._on or not self.store.add_notice(key, self.clock(), self.clock()):
            return
        body = (f"Delivery {d.id} to {d.account} (x), {self._what(d)}, is {reason}.\n\n"
                f"Further posts on {d.account} that would go over the budget are held too "
                "(you are told once a period); posts that fit still go out.\n\n"
                f"What to do: `crier retry {d.id}` (or any held delivery's id) sends it anyway; "
                f"raise x_budget in {self.settings.path}, or set over_budget = \"no-link\" to "
                "send such posts without their link ($0.015 instead of $0.200). `crier status` "
                "shows the month's spend and lists what is held.")
        self._send(f"X budget reached on {d.account}", body, account=d.account)

    @_safe
    def account_worked(self, account: str) -> None:
        """A post went out on the account: a later refusal is news again."""
        if self._on:
            self.store.clear_notice(f"auth:{account}")

    # -- the feed ---------------------------------------------------------------------------
    @_safe
    def feed_failed(self, feed: Feed, now: datetime, error: Exception) -> None:
        """A poll failed (`feed`: as it was before this failure). Told once the feed has been
        failing for `feed_alert_after`."""
        if not self._on:
            return
        error = _said(error)
        key = f"feed:{feed.id}"
        row = self.store.notice(key)
        if row is None:
            self.store.add_notice(key, now)
            row = self.store.notice(key)
        since = row["since"]
        if row["sent_at"] is not None or now - since < timedelta(
                seconds=self.settings.feed_alert_after):
            return
        if not self.store.mark_notice_sent(key, now):
            return
        from bot.fetch import redact_url
        url = redact_url(feed.redirect_url or feed.url)
        body = (f"The feed {url} has failed for {_human(now - since)} (since "
                f"{since:%Y-%m-%d %H:%M} UTC, {feed.error_count + 1} failed polls). "
                f"Last error: {error}\n\n"
                "New episodes are not seen while it fails; crier keeps trying, with "
                "backoff, and announces what it missed when the feed is back.\n\n"
                "What to do: open the feed's address; if your host moved it, set 'feed' in "
                f"{self.settings.path}. `crier status` shows the last error.")
        self._send("the feed is failing", body)

    @_safe
    def feed_ok(self, feed: Feed, now: datetime) -> None:
        """A poll succeeded (`feed`: as it was before it). After a failure told to the host,
        say it is back."""
        if not feed.error_count or not self._on:
            return  # it was fine already: no database work on a healthy poll
        row = self.store.clear_notice(f"feed:{feed.id}")
        if row is None or row["sent_at"] is None:
            return  # it came back before the host was told it was down
        from bot.fetch import redact_url
        url = redact_url(feed.redirect_url or feed.url)
        body = (f"The feed {url} is readable again, after failing for "
                f"{_human(now - row['since'])} (since {row['since']:%Y-%m-%d %H:%M} UTC). "
                "Episodes published meanwhile are announced as usual.")
        self._send("the feed is back", body, kind="success")

    # -- episodes and promos ----------------------------------------------------------------
    @_safe
    def held(self, episode_ids: list[int]) -> None:
        """The flood guard held these episodes (one message for the poll)."""
        if not episode_ids or not self._on:
            return
        lines = []
        for eid in episode_ids[:HELD_LISTED]:
            ep = self.store.get_episode(eid)
            lines.append(f"  #{eid} {ep.title if ep else '?'}")
        if len(episode_ids) > HELD_LISTED:
            lines.append(f"  … and {len(episode_ids) - HELD_LISTED} more")
        release = ("`crier release " + " ".join(str(e) for e in episode_ids) + "` (or "
                   "`crier release --all`)" if len(episode_ids) <= HELD_LISTED else
                   "`crier release ID...` or `crier release --all`")
        body = (f"{len(episode_ids)} new episodes appeared in one poll, more than "
                f"max_new_per_poll ({self.settings.max_new_per_poll}); they are held, not "
                "announced:\n" + "\n".join(lines) + "\n\n"
                f"What to do: {release} announces them; `crier release --dismiss ID...` drops the "
                "ones you do not want announced; `crier status` lists what is held.")
        self._send(f"{len(episode_ids)} episodes held by the flood guard", body)

    @_safe
    def promo_missed(self, row: Promo, late: list[datetime], grace: timedelta) -> None:
        """A queued post's occurrences more than the grace window late were not posted."""
        if not late or not self._on:
            return
        from bot.schedule import format_local
        text = _snippet(row.text or "")
        body = (f"Queued post #{row.id}" + (f" ({text!r})" if text else "") +
                f" was due {format_local(late[-1], self.settings.tz)}, more than "
                f"{_human(grace)} ago, while crier was not running: "
                f"{len(late)} occurrence(s) not posted.\n\n"
                f"What to do: `crier queue show {row.id}`; queue it again with "
                "`crier queue add` if it should still go out (the [promos] grace setting "
                "decides how late a post may be).")
        accounts = row.accounts or []
        self._send(f"queued post #{row.id} was missed", body,
                   account=accounts[0] if len(accounts) == 1 else None)

    # -- `crier notify test` ----------------------------------------------------------------
    def test(self) -> list[tuple[str, SendResult]]:
        """A test message to every configured URL, sent now: (where, result) per URL."""
        out = []
        where: list[tuple[str, str, str | None]] = [
            (f"notify[{i}]", u, None) for i, u in enumerate(self.settings.notify)]
        for a in self.settings.accounts:
            where += [(f"accounts.{a.name}.notify[{i}]", u, a.name)
                      for i, u in enumerate(a.notify)]
        for key, url, account in where:
            about = f" about account {account}" if account else ""
            body = (f"A test from crier for {self.settings.show} ({self.settings.path}): "
                    f"failures, refused credentials, feed outages, held episodes and missed "
                    f"promos{about} are reported here.")
            res = self.notifier.send_now(Message(f"{TITLE_PREFIX}: test notification", body,
                                                 (url,), "info"))
            out.append((key, res[0] if res else SendResult(redact(url), False, "not sent")))
        return out


def _said(e: Exception) -> str:
    """What went wrong, without the "who" the message already names."""
    return getattr(e, "detail", None) or str(e)


def _snippet(text: str) -> str:
    first = " ".join(text.split())
    return first if len(first) <= SNIPPET else first[:SNIPPET - 1] + "…"


def _human(delta: timedelta) -> str:
    s = max(int(delta.total_seconds()), 0)
    if s >= 86400 and s % 86400 < 3600:
        return f"{s // 86400} day{'s' if s >= 172800 else ''}"
    if s >= 3600:
        h, m = divmod(s // 60, 60)
        return f"{h} h" + (f" {m} min" if m else "")
    return f"{max(s // 60, 1)} min" if s >= 60 else f"{s} s"
