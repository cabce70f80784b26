"""The HTML pages: each renders a template from what the application modules return (the
same functions the JSON API and the CLI call). Every page but the public share page needs a
session. This file: the list of shows, Today, and the buttons' actions (server-rendered forms
posting here with the hidden `csrf_token` field, answered by a 303 back to the page with a
one-time message); the Episodes and Community pages are in bot.web.pages_episodes, the public
share page in bot.web.pages_share, Remove post (with its confirmation) in bot.web.pages_remove."""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from bot import errors
from bot.users import User
from bot.web import pages_episodes, pages_remove, pages_share
from bot.web.auth import page_user, require
from bot.web.render import render, templates

router = APIRouter(include_in_schema=False)
FLASH = "crier_flash"          # the one-time message after an action (cookie, path /shows)


def _state(request: Request):
    return request.app.state.crier


def weblink(url: str | None) -> str | None:
    """`url` if it is a web address (http or https), else None: the links on the pages come
    from feeds, platforms and listeners' posts, and a `javascript:` or `data:` one is never
    made a link."""
    if isinstance(url, str) and url[:8].lower().startswith(("https://", "http://")):
        return url
    return None


templates.env.filters["weblink"] = weblink


# -- the one-time message after a button ------------------------------------------------------
def flash(request: Request) -> dict | None:
    """The message an action left for the page it redirected to ({kind, text}), if any."""
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    kind, _, text = unquote(raw).partition(":")
    return {"kind": "error" if kind == "error" else "ok", "text": text[:500]}


def with_flash(request: Request, response):
    """`response` (a rendered page) with the one-time message shown and forgotten."""
    if request.cookies.get(FLASH):
        response.delete_cookie(FLASH, path="/")
    return response


def _back(request: Request, slug: str, back: str | None, *, text: str, ok: bool = True):
    """303 back to `back` (a page of this show), else the show's Today page, with a message."""
    root = request.scope.get("root_path", "")
    base = f"/shows/{slug}"
    target = back if back and (back == base or back.startswith(base + "/") or
                               back.startswith(base + "?")) and "//" not in back else base
    resp = RedirectResponse(root + target, status_code=303)
    resp.set_cookie(FLASH, quote(("ok:" if ok else "error:") + text), httponly=True,
                    samesite="strict", path="/", max_age=60)
    return resp


async def _form(request: Request) -> dict:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- pages ------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: User = Depends(page_user)):
    """One show: its Today page; several: the list to choose from."""
    shows = _state(request).shows(user)
    if len(shows) == 1:
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/shows/{shows[0]['slug']}", status_code=303)
    return render(request, "shows.html", shows=shows)


@router.get("/shows/{slug}", response_class=HTMLResponse)
def today(request: Request, slug: str, user: User = Depends(page_user)):
    """Today: the feed's health, what went out and what failed, held episodes, the community
    posts waiting."""
    with _state(request).service(slug, user) as svc:
        status = svc.status()
        settings = svc.settings
        waiting = len(svc.community_list()) if settings.community else None
    retrying = [d for d in status["pending"] if d["state"] == "retrying"]
    return with_flash(request, render(
        request, "today.html", slug=slug, show=settings, status=status,
        retrying=retrying, waiting=waiting, tz=settings.timezone, flash=flash(request),
        back=f"/shows/{slug}"))


# -- the buttons ------------------------------------------------------------------------------
@router.post("/shows/{slug}/deliveries/{delivery_id}/retry")
async def retry(request: Request, slug: str, delivery_id: int,
                user: User = Depends(page_user)):
    """Retry: a failed (or skipped, held) delivery is queued again; one backing off after an
    error is pushed to now (`crier retry`)."""
    require(user, "retry")
    form = await _form(request)
    with _state(request).service(slug, user) as svc:
        try:
            changed = svc.retry_failed([delivery_id])
        except errors.CrierError as e:
            return _back(request, slug, form.get("back"), text=str(e), ok=False)
    return _back(request, slug, form.get("back"),
                 text=f"Delivery {delivery_id} goes out on the next dispatch." if changed
                 else f"Delivery {delivery_id} changed meanwhile; nothing done.")


@router.post("/shows/{slug}/episodes/{episode_id}/release")
async def release(request: Request, slug: str, episode_id: int,
                  user: User = Depends(page_user)):
    """Release a held episode: its announcements go out (`crier release ID`)."""
    require(user, "release")
    form = await _form(request)
    with _state(request).service(slug, user) as svc:
        try:
            done = svc.release([episode_id])
        except errors.CrierError as e:
            return _back(request, slug, form.get("back"), text=str(e), ok=False)
    return _back(request, slug, form.get("back"),
                 text=f"Episode {episode_id} released: its announcements go out on the next "
                      "dispatch." if done else "Nothing was held.")


@router.post("/shows/{slug}/episodes/{episode_id}/dismiss")
async def dismiss(request: Request, slug: str, episode_id: int,
                  user: User = Depends(page_user)):
    """Dismiss a held episode: recorded as known, never announced (`crier release
    --dismiss ID`). Host only, as in the API: it cannot be undone."""
    from bot.held import dismiss as dismiss_held
    require(user, "remove_post")
    form = await _form(request)
    with _state(request).service(slug, user) as svc:
        try:
            gone = dismiss_held(svc.store, [episode_id])
        except errors.CrierError as e:
            return _back(request, slug, form.get("back"), text=str(e), ok=False)
    return _back(request, slug, form.get("back"),
                 text=f"Dismissed “{gone[0].title}”: recorded as known, never announced."
                 if gone else "Nothing was held.")


@router.post("/shows/{slug}/community/{post_id}/{decision}")
async def community_decide(request: Request, slug: str, post_id: int, decision: str,
                           user: User = Depends(page_user)):
    """Approve (the official account boosts it once) or reject a listener's post."""
    if decision not in ("approve", "reject"):
        return HTMLResponse("Not Found", status_code=404)
    require(user, "community")
    form = await _form(request)
    with _state(request).service(slug, user) as svc:
        try:
            post = svc.community_decide(post_id, decision == "approve")
        except errors.CrierError as e:
            return _back(request, slug, form.get("back"), text=str(e), ok=False)
    said = "approved: the official account boosts it once" if post.status == "approved" \
        else "rejected: never proposed again"
    return _back(request, slug, form.get("back"), text=f"{post.author}'s post {said}.")


router.include_router(pages_episodes.router)
router.include_router(pages_share.router)
router.include_router(pages_remove.router)
