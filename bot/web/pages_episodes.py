"""The Episodes pages (every episode with its announcement per account; one episode with its
posts, show notes as text and share kit) and the Community page (listeners' posts proposed
for a boost, the allow-list). Read from bot.catalog and the Service; the buttons post to the
actions in bot.web.pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from bot import catalog, errors
from bot.users import User
from bot.web.auth import page_user
from bot.web.render import render

router = APIRouter(include_in_schema=False)
DECIDED_SHOWN = 20     # approved / rejected posts listed under the waiting ones


def _state(request: Request):
    return request.app.state.crier


def share_path(request: Request, slug: str, episode_id: int) -> str:
    """The public share page of an episode, as an absolute URL of this app."""
    root = request.scope.get("root_path", "")
    base = str(request.base_url).rstrip("/")
    if root and base.endswith(root):
        base = base[:-len(root)]
    return f"{base}{root}/share/{slug}/{episode_id}"


@router.get("/shows/{slug}/episodes", response_class=HTMLResponse)
def episodes(request: Request, slug: str, status: str | None = None,
             user: User = Depends(page_user)):
    """Every episode (newest first) with its announcement per account."""
    from bot.web.pages import flash, with_flash
    with _state(request).service(slug, user) as svc:
        settings = svc.settings
        rows = catalog.episodes(svc, status=status or None)
        posts = catalog.announcements(svc, [r.id for r in rows])
    accounts = [a.name for a in settings.posting_accounts]
    return with_flash(request, render(
        request, "episodes.html", slug=slug, show=settings, episodes=rows, posts=posts,
        accounts=accounts, status=status, limit=catalog.LIST_LIMIT, tz=settings.timezone,
        flash=flash(request), back=f"/shows/{slug}/episodes"))


@router.get("/shows/{slug}/episodes/{episode_id}", response_class=HTMLResponse)
def episode(request: Request, slug: str, episode_id: int, user: User = Depends(page_user)):
    """One episode: its announcement per account (links, texts, errors), its show notes as
    text, and the share kit (`crier share ID`)."""
    from bot.web.pages import flash, with_flash
    with _state(request).service(slug, user) as svc:
        settings = svc.settings
        row = catalog.episode(svc, episode_id)
        if row is None:
            raise HTTPException(404, f"no episode {episode_id} in show {slug!r}")
        posts = catalog.announcements(svc, [row.id])[row.id]
        try:
            kit = svc.share(str(row.id))
        except errors.CrierError as e:   # (never for a real feed's episode)
            kit = {"error": str(e), "texts": [], "official_posts": []}
    return with_flash(request, render(
        request, "episode.html", slug=slug, show=settings, ep=row, posts=posts, kit=kit,
        notes=catalog.notes_text(row), image=catalog.artwork(row),
        share_url=share_path(request, slug, row.id), tz=settings.timezone,
        flash=flash(request), back=f"/shows/{slug}/episodes/{row.id}"))


@router.get("/shows/{slug}/community", response_class=HTMLResponse)
def community(request: Request, slug: str, user: User = Depends(page_user)):
    """The listeners' posts waiting for the host, the last decided ones, the allow-list."""
    from bot.web.pages import flash, with_flash
    with _state(request).service(slug, user) as svc:
        settings = svc.settings
        every = svc.community_list(all_=True) if settings.community else []
    waiting = [p for p in every if p.status == "proposed"]
    decided = sorted((p for p in every if p.status != "proposed"),
                     key=lambda p: p.decided_at or p.found_at, reverse=True)[:DECIDED_SHOWN]
    return with_flash(request, render(
        request, "community.html", slug=slug, show=settings, waiting=waiting,
        decided=decided, tz=settings.timezone, flash=flash(request),
        back=f"/shows/{slug}/community"))
