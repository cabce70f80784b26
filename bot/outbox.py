"""What the host sees of the outbox, and what they may ask of it.

`shown_state` is the one place that decides how a delivery's state is shown: `crier status`,
`crier queue show` and `crier history` all call it, so they cannot disagree. `retry` is
`crier retry ID...`: a failed, skipped or held delivery is queued again, a pending one
waiting out a backoff (a refused token the host has since fixed, a transient error) is
pushed to now; anything else (sent, removed, sending, withdrawn, a dry run, one waiting for its time
that has not failed, an unknown id) is an error naming the id and its state, and nothing is
changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.errors import CrierError
from bot.models import Delivery, DeliveryStatus
from bot.store import Store, deliveries

log = logging.getLogger(__name__)

S = DeliveryStatus
# What `crier retry` may do to a delivery in each state (others cannot be retried).
REQUEUE = (S.FAILED.value, S.SKIPPED.value, S.HELD.value)   # → pending, due now
PUSH = (S.PENDING.value,)                                   # → due now, same attempt count
WHY_NOT = {
    S.SENT.value: "it went out",
    S.SENDING.value: "it is being sent right now",
    S.CANCELLED.value: "it was withdrawn (its queued post was cancelled or paused)",
    S.DRY_RUN.value: "it was recorded by a dry run; queue the post again to send it",
    S.REMOVED.value: "its post was removed by the host; it is never sent again",
}


@dataclass(frozen=True)
class Shown:
    """A delivery's state as the host reads it: a word, and what it means for this one."""
    state: str      # sent | dry run | sending | due | waiting | retrying | held | failed |
    #                 skipped | withdrawn | removed
    detail: str     # the URL, the error, when it goes out next


def _t(dt: datetime | None) -> str:
    return dt.isoformat(timespec="seconds") if dt else "-"


def shown_state(d: Delivery, now: datetime) -> Shown:
    """How delivery row `d` (a `Store` delivery row) is shown at `now`."""
    status, error = d.status, d.last_error or ""
    if status == S.SENT.value:
        url = d.remote_url or d.remote_id or ""
        return Shown("sent", f"{url}; {error}" if error else url)
    if status == S.DRY_RUN.value:
        return Shown("dry run", "recorded, not sent")
    if status == S.REMOVED.value:   # bot.removal
        removed = (d.payload or {}).get("removed") or {}
        by = f" by {removed['by']}" if removed.get("by") else ""
        note = f" ({removed['note']})" if removed.get("note") else ""
        return Shown("removed", f"taken down at {removed.get('at') or '-'}{by}{note}; was "
                                f"{d.remote_url or d.remote_id or '-'}")
    if status == S.SENDING.value:
        return Shown("sending", f"since {_t(d.claimed_at)}")
    if status == S.CANCELLED.value:
        return Shown("withdrawn", error or "withdrawn before sending")
    if status in (S.FAILED.value, S.SKIPPED.value, S.HELD.value):
        return Shown(status, error or "-")
    nxt = d.next_attempt_at
    if error:   # pending after an error: backing off until its next attempt
        when = "now" if nxt is None or nxt <= now else _t(nxt)
        return Shown("retrying", f"next attempt {when} (after {d.attempts or 0} "
                                 f"attempt(s)): {error}")
    if nxt is not None and nxt > now:   # its time, a gap, quiet hours
        return Shown("waiting", f"goes out at {_t(nxt)}")
    return Shown("due", "goes out on the next dispatch")


def describe(d: Delivery, now: datetime) -> dict:
    """`shown_state` as the `state` and `detail` keys of a JSON row."""
    shown = shown_state(d, now)
    return {"state": shown.state, "detail": shown.detail}


def retry(store: Store, delivery_ids: Iterable[int], now: datetime) -> list[dict]:
    """`crier retry`: requeue or push each delivery, or change nothing and raise CrierError
    naming every id that cannot be retried and why. Returns, per id, what was done."""
    ids = list(dict.fromkeys(delivery_ids))
    rows = {d.id: d for d in store.deliveries_where(deliveries.c.id.in_(ids))}
    problems = []
    for i in ids:
        d = rows.get(i)
        if d is None:
            problems.append(f"delivery {i}: no such delivery")
        elif d.status in PUSH and shown_state(d, now).state != "retrying":
            shown = shown_state(d, now)
            problems.append(f"delivery {i} is {shown.state} ({shown.detail}; it has not "
                            "failed)")
        elif d.status not in REQUEUE + PUSH:
            shown = shown_state(d, now)
            why = WHY_NOT.get(d.status, "it cannot be retried")
            problems.append(f"delivery {i} is {shown.state} ({why})")
    if problems:
        raise CrierError("; ".join(problems) + " — see `crier status`")
    done = []
    for i in ids:
        d = rows[i]
        was = shown_state(d, now)
        if d.status in PUSH:
            changed = store.update_delivery_if(i, d.status, now, next_attempt_at=now)
            action = "pushed to now" if changed else "no longer pending"
        else:
            changed = store.update_delivery_if(
                i, d.status, now, status=S.PENDING.value, next_attempt_at=now,
                attempts=0, needs_check=True, last_error=None, error_kind=None)
            action = "queued again" if changed else "changed meanwhile; not queued"
        log.info("delivery %d (%s): %s by the host", i, was.state, action)
        done.append({"id": i, "account": d.account, "was": was.state,
                     "detail": was.detail, "action": action, "changed": changed})
    return done
