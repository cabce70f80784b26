"""The host's view of a deployment (`crier status`): its feeds, held and scheduled episodes,
open, failed and recent deliveries, and the promo queue."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.models import DeliveryStatus, EpisodeStatus

if TYPE_CHECKING:
    from bot.service import Service


def iso(dt: datetime | None) -> str | None:
    """A time as JSON shows it (to the second)."""
    return dt.isoformat(timespec="seconds") if dt else None


def status(svc: Service) -> dict:
    """Everything `crier status` shows, as JSON-ready data."""
    from bot.store import deliveries
    feeds = svc.store.all_feeds()
    held = svc.store.episodes_with_status(EpisodeStatus.HELD.value)
    scheduled = svc.store.episodes_with_status(EpisodeStatus.SCHEDULED.value)
    open_ = svc.store.deliveries_where(deliveries.c.status.in_(
        [DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value,
         DeliveryStatus.HELD.value]))
    failed = svc.store.deliveries_where(deliveries.c.status.in_(
        [DeliveryStatus.FAILED.value, DeliveryStatus.SKIPPED.value]), limit=50,
        newest_first=True)
    recent = svc.store.deliveries_where(deliveries.c.status.in_(
        [DeliveryStatus.SENT.value, DeliveryStatus.DRY_RUN.value,
         DeliveryStatus.REMOVED.value]), limit=10,
        newest_first=True)
    titles = {}

    def title(eid):
        if eid and eid not in titles:
            e = svc.store.get_episode(eid)
            titles[eid] = e.title if e else None
        return titles.get(eid)

    from bot.outbox import describe
    from bot.podping import podping_status
    from bot.quotas import budget_status
    now = svc.clock()

    def drow(d):
        return {**describe(d, now), "id": d.id, "account": d.account,
                "platform": d.platform,
                "status": d.status, "kind": d.kind, "promo": d.promo_id,
                "episode": title(d.episode_id),
                "attempts": d.attempts, "next_attempt_at": iso(d.next_attempt_at),
                "last_error": d.last_error, "url": d.remote_url,
                "sent_at": iso(d.sent_at)}

    from bot.polling import describe_schedule
    from bot.websub import listening, subscriptions
    subs = subscriptions(svc.store, [f.id for f in feeds])
    pp = podping_status(svc.store, now, enabled=svc.settings.podping_enabled, feeds=feeds)
    pp_phrase = None if not pp["enabled"] else (
        "podping (Hive) watched" if pp["watching"] else "podping (Hive) on, no worker watching")

    def heard(f):
        return listening(f, subs.get(f.id), svc.settings.poll_interval, now, podping=pp_phrase,
                         polling=describe_schedule(
                             f, now, interval=svc.settings.poll_interval,
                             min_interval=svc.settings.min_poll_interval))
    return {
        "feeds": [{"url": f.url, "title": f.title, "redirect_url": f.redirect_url,
                   "listening": heard(f),
                   "last_poll_at": iso(f.last_poll_at), "last_result": f.last_result,
                   "last_error": f.last_error, "error_count": f.error_count,
                   "next_poll_at": iso(f.next_poll_at),
                   "episodes": svc.store.count_episodes(f.id)} for f in feeds],
        "held_episodes": [{"id": e.id, "title": e.title,
                           "published_at": iso(e.published_at)} for e in held],
        "scheduled_episodes": [{"id": e.id, "title": e.title,
                                "published_at": iso(e.published_at)}
                               for e in scheduled],
        "pending": [drow(d) for d in open_],
        "failed": [drow(d) for d in failed],
        "recent": [drow(d) for d in recent],
        "queue": svc.queue.list(),
        "podping": pp,
        "accounts": [{"account": a.name, "platform": a.platform,  # never the secrets
                      "credentials": "dry run" if a.dry_run or svc.dry_run else
                      a.credentials or ("environment" if a.secrets else "missing"),
                      **({"x_spend": budget_status(svc.store, a, now)}
                         if a.platform == "x" else {})}
                     for a in svc.settings.accounts],
    }
