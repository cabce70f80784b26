"""The JSON API's episodes, deliveries and community posts (see bot.web.api for the rules
every route keeps): each route calls what `crier release`, `crier release --dismiss`,
`crier retry`, `crier remove`, `crier share` and `crier community ...` call."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request

from bot.models import DeliveryStatus as S
from bot.users import User
from bot.web.api_models import (
    CommunityOut,
    DeliveryOut,
    EpisodeDetail,
    EpisodeOut,
    RemovedOut,
    clean,
    delivery_out,
    episode_out,
    share_url,
)
from bot.web.auth import api_user, require

router = APIRouter()
SHOW = "/shows/{slug}"
# The delivery statuses each `?status=` names, as `crier status` groups them.
DELIVERY_GROUPS = {
    "failed": (S.FAILED.value, S.SKIPPED.value),
    "pending": (S.PENDING.value, S.SENDING.value, S.HELD.value),
    "sent": (S.SENT.value, S.DRY_RUN.value),
    "cancelled": (S.CANCELLED.value,),
    "removed": (S.REMOVED.value,),
}
MAX_LIMIT = 500


def _state(request: Request):
    return request.app.state.crier


# -- episodes ---------------------------------------------------------------------------------
def _episode(svc, episode_id: int):
    """The show's episode `episode_id`, or 404 (another show's is none of this one's)."""
    row = svc.store.get_episode(episode_id)
    if row is None:
        raise HTTPException(404, f"no episode {episode_id} in show {svc.settings.slug}")
    return row


def _episodes(svc, status: str | None, limit: int) -> list:
    """The show's episodes, newest first (a read; bot.store's tables)."""
    from bot.models import EpisodeRecord
    from bot.store import episodes, feeds
    q = sa.select(episodes).where(episodes.c.feed_id.in_(
        sa.select(feeds.c.id).where(feeds.c.show_id == svc.show_id)))
    if status:
        q = q.where(episodes.c.status == status)
    q = q.order_by(episodes.c.published_at.desc().nulls_last(), episodes.c.id.desc())
    with svc.store.tx() as c:
        return [EpisodeRecord.from_row(r) for r in c.execute(q.limit(limit)).mappings()]


def _posts(svc, episode_id: int, title: str | None) -> list[dict]:
    from bot.outbox import describe
    from bot.store import posts
    now = svc.clock()
    return [delivery_out(d, describe(d, now), svc.settings.tz, title)
            for d in svc.store.deliveries_where(posts.c.episode_id == episode_id)]


@router.get(SHOW + "/episodes", response_model=list[EpisodeOut])
def list_episodes(request: Request, slug: str, user: User = Depends(api_user),
                  status: Literal["baseline", "held", "scheduled", "announced",
                                  "dismissed"] | None = None,
                  limit: int = Query(50, ge=1, le=MAX_LIMIT)) -> list[dict]:
    """The show's episodes, newest first, with their status (announced, held, ...) and
    public share page."""
    with _state(request).service(slug, user) as svc:
        rows = _episodes(svc, status, limit)
        return clean(request, [episode_out(e, svc.settings.tz, share_url(request, slug, e.id))
                               for e in rows], svc.settings)


@router.get(SHOW + "/episodes/{episode_id}", response_model=EpisodeDetail)
def get_episode(request: Request, slug: str, episode_id: int,
                user: User = Depends(api_user)) -> dict:
    """One episode: its posts per account (state, URL, text, error), its public
    `share_url`, and its share kit (`crier share ID --json`)."""
    with _state(request).service(slug, user) as svc:
        return clean(request, _episode_detail(request, svc, slug, episode_id), svc.settings)


def _episode_detail(request: Request, svc, slug: str, episode_id: int) -> dict:
    e = _episode(svc, episode_id)
    out = episode_out(e, svc.settings.tz, share_url(request, slug, e.id))
    out["summary"] = (e.data or {}).get("summary")
    out["posts"] = _posts(svc, e.id, e.title)
    out["share"] = svc.share(str(e.id))
    return out


@router.post(SHOW + "/episodes/{episode_id}/release", response_model=EpisodeDetail)
def release_episode(request: Request, slug: str, episode_id: int,
                    user: User = Depends(api_user)) -> dict:
    """Announce a held episode (`crier release ID`); 422 if it is not held."""
    with _state(request).service(slug, user) as svc:
        _episode(svc, episode_id)
        svc.release([episode_id])
        return clean(request, _episode_detail(request, svc, slug, episode_id), svc.settings)


@router.post(SHOW + "/episodes/{episode_id}/dismiss", response_model=EpisodeDetail)
def dismiss_episode(request: Request, slug: str, episode_id: int,
                    user: User = Depends(api_user)) -> dict:
    """Never announce a held episode (`crier release --dismiss ID`); host only; 422 if it
    is not held."""
    from bot.held import dismiss
    with _state(request).service(slug, user) as svc:
        require(user, "remove_post")
        _episode(svc, episode_id)
        dismiss(svc.store, [episode_id])
        return clean(request, _episode_detail(request, svc, slug, episode_id), svc.settings)


# -- deliveries -------------------------------------------------------------------------------
@router.get(SHOW + "/deliveries", response_model=list[DeliveryOut])
def list_deliveries(request: Request, slug: str, user: User = Depends(api_user),
                    status: Literal["failed", "pending", "sent", "cancelled",
                                    "removed"] | None = None,
                    limit: int = Query(100, ge=1, le=MAX_LIMIT)) -> list[dict]:
    """The show's deliveries (one post on one account), most recently changed first:
    `failed` (failed or skipped), `pending` (waiting, sending or held), `sent` (sent or
    recorded by a dry run), `cancelled`, `removed` (taken down by the host); all without
    `status`."""
    from bot.outbox import describe
    from bot.store import deliveries
    with _state(request).service(slug, user) as svc:
        conds = [deliveries.c.status.in_(DELIVERY_GROUPS[status])] if status else []
        now, titles = svc.clock(), {}
        out = []
        for d in svc.store.deliveries_where(*conds, limit=limit, newest_first=True):
            if d.episode_id and d.episode_id not in titles:
                row = svc.store.get_episode(d.episode_id)
                titles[d.episode_id] = row.title if row else None
            out.append(delivery_out(d, describe(d, now), svc.settings.tz,
                                    titles.get(d.episode_id)))
        return clean(request, out, svc.settings)


@router.post(SHOW + "/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
def retry_delivery(request: Request, slug: str, delivery_id: int,
                   user: User = Depends(api_user)) -> dict:
    """Try a delivery again (`crier retry ID`): a failed, skipped or held one is queued
    again, a pending one waiting out a backoff goes now; anything else is a 422 saying why.
    The answer is the delivery as it is now, with `action` (what was done)."""
    from bot.outbox import describe, retry
    from bot.store import deliveries
    with _state(request).service(slug, user) as svc:
        found = svc.store.deliveries_where(deliveries.c.id == delivery_id)
        if not found:
            raise HTTPException(404, f"no delivery {delivery_id} in show {slug}")
        done = retry(svc.store, [delivery_id], svc.clock())
        d = svc.store.deliveries_where(deliveries.c.id == delivery_id)[0]
        out = delivery_out(d, describe(d, svc.clock()), svc.settings.tz)
        out.update(action=done[0]["action"], was=done[0]["was"])
        return clean(request, out, svc.settings)


@router.post(SHOW + "/deliveries/{delivery_id}/remove", response_model=RemovedOut)
def remove_delivery(request: Request, slug: str, delivery_id: int,
                    user: User = Depends(api_user)) -> dict:
    """Take down a post that went out (`crier remove ID`); host only. It is deleted on its
    network and the delivery recorded `removed` (never sent again); a 422 says why not
    (not sent, already removed, the network refused or failed: then it stays `sent`)."""
    from bot.outbox import describe
    from bot.removal import remove
    from bot.store import deliveries
    with _state(request).service(slug, user) as svc:
        require(user, "remove_post")
        if not svc.store.deliveries_where(deliveries.c.id == delivery_id):
            raise HTTPException(404, f"no delivery {delivery_id} in show {slug}")
        done = remove(svc, delivery_id, by=user.name)
        d = svc.store.deliveries_where(deliveries.c.id == delivery_id)[0]
        out = delivery_out(d, describe(d, svc.clock()), svc.settings.tz)
        out.update({k: done[k] for k in ("action", "boosts_removed", "boosts_withdrawn")})
        return clean(request, out, svc.settings)


# -- the community ----------------------------------------------------------------------------
@router.get(SHOW + "/community", response_model=list[CommunityOut])
def list_community(request: Request, slug: str, user: User = Depends(api_user),
                   all: bool = False) -> list[dict]:
    """Listeners' posts waiting for approval (`crier community list --json`); with
    `all=1` the approved and rejected ones too."""
    with _state(request).service(slug, user) as svc:
        return clean(request, [r.as_dict() for r in svc.community_list(all_=all)],
                     svc.settings)


def _decide(request: Request, slug: str, post_id: int, user: User, approve: bool) -> dict:
    with _state(request).service(slug, user) as svc:
        with svc.store.tx() as c:
            if svc.store.community_post(c, post_id) is None:
                raise HTTPException(404, f"no community post {post_id} in show {slug}")
        return clean(request, svc.community_decide(post_id, approve).as_dict(), svc.settings)


@router.post(SHOW + "/community/{post_id}/approve", response_model=CommunityOut)
def approve_community(request: Request, slug: str, post_id: int,
                      user: User = Depends(api_user)) -> dict:
    """Approve a listener's post (`crier community approve ID`): the official account
    boosts it once."""
    return _decide(request, slug, post_id, user, True)


@router.post(SHOW + "/community/{post_id}/reject", response_model=CommunityOut)
def reject_community(request: Request, slug: str, post_id: int,
                     user: User = Depends(api_user)) -> dict:
    """Reject a listener's post (`crier community reject ID`): never proposed again."""
    return _decide(request, slug, post_id, user, False)
