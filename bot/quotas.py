"""Pre-send policies: what may go out now on an account that its network bills or caps.

The dispatcher asks `before_claim` about each delivery just before claiming it (bot.dispatch
`_deliver`, once the delivery is composed). `decide` answers one of:

- **go**: send the delivery as it is (always, for a delivery tried before: the budget decides
  once, before the first attempt, which may have posted it);
- **rewrite**: X over its budget with `over_budget = "no-link"`: the same text without its
  link(s) and without the link reply (a post without a URL costs $0.015, not $0.200),
  recounted and written on the row (payload key "x_no_link"), then sent;
- **hold**: X over its `x_budget` (`over_budget = "hold"`, the default, or no cheaper
  variant fits): status `held`, the reason on the row (which budget, the period's spend, what
  the post would cost), payload key "x_budget_held"; the host is told once per account and
  period (`Alerts.over_budget`). `crier retry ID` releases it: a pending delivery whose
  payload says it was held goes out whatever the spend (the host decided);
- **later**: Threads published 250 posts from this account in the last 24 hours (Meta's cap
  on API-published posts per profile, a moving window): the delivery waits, pending, until
  the oldest of those 250 is 24 hours old (`next_attempt_at`), the reason as its last error
  (`crier status` shows it "retrying"); no attempt is used, nothing fails or is lost.

Spend and counts come from the store: the account's deliveries that went out (sent, or
removed since), each X one costed from its stored text and payload (`bot.xcost`: the text
sent is the text stored, a link reply counts when its id was stored), since the start of the
budget's period (UTC midnight; the 1st for a month). Dry runs send and cost nothing, so they
are not counted (a dry-run account still shows what its budget would do to one post).
With many workers two may both see room for one more post and both send it: the caps are
crier's own bookkeeping, the network's answers (402, 429) still apply.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot import xcost
from bot.models import Delivery, DeliveryStatus

if TYPE_CHECKING:
    from bot.alerts import Alerts
    from bot.config import Account
    from bot.dispatch import Outcome

log = logging.getLogger(__name__)

# Threads: "Threads profiles are limited to 250 API-published posts within a 24-hour moving
# period. Carousels count as a single post. This limit is enforced on the POST
# /{threads-user-id}/threads_publish endpoint" (developers.facebook.com/docs/threads/overview,
# Rate limiting, Posts). Reposts go to another endpoint: they are not counted.
THREADS_POSTS = 250
THREADS_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Verdict:
    """What `decide` says about one delivery."""
    action: str                     # "go" | "rewrite" | "hold" | "later"
    reason: str = ""
    at: datetime | None = None      # later: when it may go
    text: str | None = None         # rewrite: the post to send instead
    payload: dict[str, Any] | None = None   # rewrite / hold: the row's new payload
    length: int | None = None       # rewrite: the new text's length
    notice: str | None = None       # hold: the key the host is told under (once)


GO = Verdict("go")


# -- what the store says -------------------------------------------------------------------
def spend(store, account: str, since: datetime) -> Decimal:
    """What `account`'s X deliveries sent since `since` cost (bot.xcost)."""
    return sum((xcost.delivery_cost(d.kind, d.text, d.payload, sent=True)
                for d in store.sent_deliveries(since=since, account=account)), Decimal(0))


def threads_window(store, account: str, now: datetime) -> tuple[int, datetime | None]:
    """How many posts `account` sent in the 24 hours before `now` (up to THREADS_POSTS),
    and, at the cap, when the next one may go: when the oldest of the last 250 is 24 h old."""
    rows = [d for d in store.sent_deliveries(since=now - THREADS_WINDOW, account=account)
            if d.sent_at is not None and d.sent_at > now - THREADS_WINDOW
            and d.kind not in xcost.REPOST_KINDS]
    if len(rows) < THREADS_POSTS:
        return len(rows), None
    return THREADS_POSTS, rows[THREADS_POSTS - 1].sent_at + THREADS_WINDOW  # newest first


def budget_status(store, account: Account, now: datetime) -> dict[str, Any] | None:
    """An X account's spend in its budget's period, as `crier status` shows it (None: not
    an X account). Without an x_budget, the calendar month's spend."""
    if account.platform != "x":
        return None
    budget = account.x_budget or xcost.Budget(Decimal(0), "month")
    spent = spend(store, account.name, budget.start(now))
    out = {"account": account.name, "period": budget.key(now), "spent": xcost.usd(spent),
           "budget": str(budget) if account.x_budget else None,
           "left": None, "over_budget": account.over_budget if account.x_budget else None}
    if account.x_budget:
        out["left"] = xcost.usd(max(budget.amount - spent, Decimal(0)))
    return out


def describe_budget(b: dict[str, Any]) -> str:
    """One line of `crier status` for `budget_status`'s answer."""
    if not b["budget"]:
        return f"X spend {b['period']}: {b['spent']} (no x_budget)"
    return (f"X spend {b['period']}: {b['spent']} of {b['budget']} ({b['left']} left; "
            f"over it: {b['over_budget']})")


# -- the decision ----------------------------------------------------------------------------
def decide(store, d: Delivery, account: Account, now: datetime) -> Verdict:
    """What may happen to composed delivery `d` of `account` at `now` (nothing is written)."""
    if d.platform == "x" and account.x_budget is not None:
        return _x_budget(store, d, account, now)
    if d.platform == "threads" and d.kind not in xcost.REPOST_KINDS:
        count, at = threads_window(store, d.account, now)
        if at is not None:
            return Verdict("later", at=at, reason=(
                f"Threads allows {THREADS_POSTS} API posts per 24 hours per profile and "
                f"{d.account} sent {count} since {(now - THREADS_WINDOW):%Y-%m-%d %H:%M} UTC; "
                f"this post waits until {at:%Y-%m-%d %H:%M:%S} UTC"))
    return GO


def _x_budget(store, d: Delivery, account: Account, now: datetime) -> Verdict:
    budget, p = account.x_budget, d.payload or {}
    if p.get("x_budget_held"):
        return GO   # held before, then released by the host (`crier retry`)
    if d.first_attempt_at is not None:
        # The budget let it go before its first attempt, which may have posted it (a timeout
        # after X created it): never hold it half-way, never send another text, which the
        # "did this delivery already post?" check would not recognise.
        return GO
    cost = xcost.delivery_cost(d.kind, d.text, p)
    spent = spend(store, d.account, budget.start(now))
    if spent + cost <= budget.amount:
        return GO
    period = budget.key(now)
    what = (f"x_budget {budget} of account {d.account}: {xcost.usd(spent)} spent in {period}, "
            f"this post would cost {xcost.usd(cost)}")
    if account.over_budget == "no-link" and d.kind not in xcost.REPOST_KINDS and d.text:
        text = xcost.without_urls(d.text)
        cheaper = xcost.text_cost(text)
        if text and not xcost.has_url(text) and spent + cheaper <= budget.amount:
            from bot.textlen import X_RULES, count
            links = [u for u, _s, _e in _urls(d.text)] + ([p["reply_text"]]
                                                          if p.get("reply_text") else [])
            payload = {**p, "reply_text": None,
                       "x_no_link": {"links": links, "cost_with_links": str(cost),
                                     "cost": str(cheaper), "period": period}}
            return Verdict("rewrite", text=text, payload=payload, length=count(text, X_RULES),
                           reason=f"sent without its link ({xcost.usd(cheaper)}): over {what}")
    payload = {**p, "x_budget_held": {"budget": str(budget), "period": period,
                                      "spent": str(spent), "cost": str(cost),
                                      "at": now.isoformat(timespec="seconds")}}
    return Verdict("hold", payload=payload, notice=f"x_budget:{d.account}:{period}", reason=(
        f"held: over the {what}; `crier retry {d.id}` sends it anyway"))


def _urls(text: str) -> list[tuple[str, int, int]]:
    from bot.textlen import extract_urls
    return extract_urls(text)


# -- the dispatcher's hook ---------------------------------------------------------------------
def before_claim(store, alerts: Alerts, d: Delivery, account: Account, now: datetime
                 ) -> tuple[Delivery | None, Outcome | None]:
    """Apply `decide` to composed delivery `d` just before the dispatcher claims it.

    Returns (the delivery to send, None) to go on: `d` itself, or `d` rewritten (its new
    text and payload are stored first). Returns (d, the Outcome) when it does not go now: held
    (the host told once per account and period) or deferred; the caller returns that Outcome.
    (None, None): the row changed meanwhile (another worker took it): leave it.
    """
    v = decide(store, d, account, now)
    if v.action == "go":
        return d, None
    from bot.dispatch import Outcome
    if v.action == "rewrite":
        store.update_delivery(d.id, now, text=v.text, payload=v.payload, length=v.length)
        log.warning("delivery %d to %s: %s", d.id, d.account, v.reason)
        return dataclasses.replace(d, text=v.text, payload=v.payload, length=v.length), None
    out = Outcome(d.id, d.account, d.platform, DeliveryStatus.PENDING.value, text=d.text,
                  length=d.length, limit=d.limit, error=v.reason)
    if v.action == "later":
        store.update_delivery(d.id, now, next_attempt_at=v.at, last_error=v.reason,
                              error_kind="quota")
        log.info("delivery %d to %s: %s", d.id, d.account, v.reason)
        out.next_attempt_at = v.at
        return d, out
    if not store.update_delivery_if(d.id, DeliveryStatus.PENDING.value, now,
                                    status=DeliveryStatus.HELD.value, payload=v.payload,
                                    last_error=v.reason, error_kind="budget",
                                    claim_token=None, claimed_at=None):
        return None, None
    log.warning("delivery %d to %s: %s", d.id, d.account, v.reason)
    alerts.over_budget(d, v.notice, v.reason)
    out.status = DeliveryStatus.HELD.value
    return d, out
