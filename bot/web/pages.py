"""The HTML pages: each renders a template from what the application modules return (the
same functions the JSON API calls). Every page but the public share page needs a session."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from bot.users import User
from bot.web.auth import page_user
from bot.web.render import render

router = APIRouter(include_in_schema=False)


def _state(request: Request):
    return request.app.state.crier


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
    """Today: the feed's health, what went out and what failed, held episodes."""
    with _state(request).service(slug, user) as svc:
        status = svc.status()
        settings = svc.settings
    return render(request, "today.html", slug=slug, show=settings, status=status,
                  tz=settings.timezone)
