"""`crier remove`: take down a post crier sent (host only in the web app).

Only a `sent` delivery with a remote id can be removed (not an X repost: its remote id is the
reposted tweet's; a Mastodon boost's is the reblog's own, which deleting undoes). The
account's publisher deletes the post on its network (an X post's link reply first, then the
post); a post that is already gone there (the network answers 404) counts as deleted. Then the
delivery becomes `removed`, for good: its status is final, so no dispatch, retry (`crier
retry` refuses it) or later poll sends that announcement again (its row, unique per post and
account, stays). When and by whom is kept in the delivery's payload (`removed: {at, by,
note}`); `crier status`, `crier history`, the API and the pages show it as removed.

Boosts of it (the amplifiers'): Mastodon deletes the reblogs of a deleted status and X the
reposts of a deleted tweet, so a boost that went out is marked removed with it (no call is
made for it); one that has not gone out yet is withdrawn (cancelled), never sent.

A failure changes nothing: the delivery stays `sent`, the post stays up, and the error says
so, with the network's own words (rate limited: when to try again; a refused token; a 5xx or a
timeout: try again). A dry-run account's publisher only records the request; the delivery is
left as it is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import errors
from bot.models import Delivery, DeliveryStatus

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)
S = DeliveryStatus
BOOST_GONE = "the post it boosts was removed"


def _why_not(d: Delivery) -> str | None:
    """Why delivery `d` cannot be removed, or None if it can."""
    if d.status == S.REMOVED.value:
        at = ((d.payload or {}).get("removed") or {}).get("at")
        return f"delivery {d.id} was already removed" + (f" (at {at})" if at else "")
    if d.status == S.DRY_RUN.value:
        return f"delivery {d.id} was recorded by a dry run: nothing was posted to remove"
    if d.status != S.SENT.value:
        return (f"delivery {d.id} is {d.status}: it has not gone out, so there is no post to "
                "remove (cancel its queued post instead)")
    if d.platform == "x" and d.kind in ("boost", "community"):
        return (f"delivery {d.id} is a repost on X: its id is the reposted tweet's, which "
                "crier may not delete; undo the repost on X")
    if not d.remote_id:
        return (f"delivery {d.id} went out but crier kept no id for it: delete it by hand"
                + (f" at {d.remote_url}" if d.remote_url else ""))
    return None


def _refused(d: Delivery, e: errors.PublishError) -> errors.CrierError:
    """The clear sentence for a failed delete (the delivery is left sent)."""
    where = f"{d.platform} account {d.account}"
    up = f"delivery {d.id} is still sent and its post still up"
    if isinstance(e, errors.RateLimitedError):
        when = f" after {e.retry_at.isoformat(timespec='seconds')}" if e.retry_at else " later"
        return errors.CrierError(f"{where} is rate limited: {up}; try again{when}")
    if isinstance(e, errors.AuthError):
        return errors.CrierError(f"{where}: the credentials were refused ({e.detail}); {up}")
    if isinstance(e, errors.TransientError):
        return errors.CrierError(f"could not remove delivery {d.id} from {where} just now "
                                 f"({e.detail}); {up}: try again")
    return errors.CrierError(f"{where} refused to delete delivery {d.id}'s post: {e.detail}; "
                             f"{up}")


def remove(svc: Service, delivery_id: int, *, by: str | None = None) -> dict:
    """Remove the post of `svc`'s show's delivery `delivery_id` (see the module docstring).
    Returns {id, account, platform, url, action, boosts_removed, boosts_withdrawn}; raises
    CrierError (nothing changed) when it cannot be removed or the network refused."""
    from bot.platforms.dryrun import DryRunPublisher
    from bot.store import deliveries
    found = svc.store.deliveries_where(deliveries.c.id == delivery_id)
    if not found:
        raise errors.CrierError(f"delivery {delivery_id}: no such delivery in show "
                                f"{svc.settings.slug} (see `crier status`)")
    d = found[0]
    why = _why_not(d)
    if why:
        raise errors.CrierError(why)
    out = {"id": d.id, "account": d.account, "platform": d.platform, "url": d.remote_url,
           "boosts_removed": 0, "boosts_withdrawn": 0}
    publisher = svc.publishers.get(d.account)
    if publisher is None or not hasattr(publisher, "delete"):
        raise errors.CrierError(f"account {d.account} is not in the show's config any more: "
                                f"delete delivery {d.id}'s post by hand"
                                + (f" at {d.remote_url}" if d.remote_url else ""))
    payload = d.payload or {}
    try:
        if payload.get("reply_id"):   # an X post's link reply: not deleted with the post
            publisher.delete(str(payload["reply_id"]))
        publisher.delete(d.remote_id)
    except errors.PublishError as e:
        log.warning("delivery %d: removing its post failed: %s", d.id, e)
        raise _refused(d, e) from None
    if isinstance(publisher, DryRunPublisher):
        log.info("delivery %d: dry run, its post was not deleted", d.id)
        return {**out, "action": "dry run: recorded, not deleted"}
    now = svc.clock()
    mark = {"at": now.isoformat(timespec="seconds"), "by": by}
    if not svc.store.update_delivery_if(d.id, S.SENT.value, now, status=S.REMOVED.value,
                                        payload={**payload, "removed": mark}):
        log.info("delivery %d: removed meanwhile by another request", d.id)
        return {**out, "action": "already removed"}
    log.info("delivery %d (%s): post %s removed by %s", d.id, d.account, d.remote_id,
             by or "the host")
    out["boosts_removed"], out["boosts_withdrawn"] = _boosts_gone(svc, d, mark)
    return {**out, "action": "removed"}


def _boosts_gone(svc: Service, d: Delivery, mark: dict) -> tuple[int, int]:
    """The amplifiers' boosts of `d` (dedupe key boost:<id>:<amplifier>): sent ones marked
    removed (the network took them down with the post), unsent ones withdrawn."""
    from bot.store import posts
    removed = withdrawn = 0
    now = svc.clock()
    for b in svc.store.deliveries_where(posts.c.dedupe_key.like(f"boost:{d.id}:%")):
        if b.status == S.SENT.value:
            note = {**mark, "note": f"with the post it boosted (delivery {d.id})"}
            removed += svc.store.update_delivery_if(
                b.id, b.status, now, status=S.REMOVED.value,
                payload={**(b.payload or {}), "removed": note})
        elif b.status in (S.PENDING.value, S.HELD.value, S.FAILED.value):
            withdrawn += svc.store.update_delivery_if(
                b.id, b.status, now, status=S.CANCELLED.value, last_error=BOOST_GONE)
    if removed or withdrawn:
        log.info("delivery %d: %d boost(s) of it marked removed, %d withdrawn", d.id,
                 removed, withdrawn)
    return removed, withdrawn
