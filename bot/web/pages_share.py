"""The public share page of an episode, GET /share/{slug}/{episode_id}: no login. The
episode (title, date, a short plain-text description, its artwork), the ready-to-post
listener texts with their Mastodon / Bluesky / Threads / X share links (`crier share ID`), and the
official posts to boost; with Open Graph and Twitter card tags so the page itself makes a
good link card. 404 for an unknown show or episode, another show's episode, or a removed
show. Show notes are the feed's untrusted HTML: only their text is ever shown."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from bot import catalog, errors
from bot.users import User
from bot.web.render import render

router = APIRouter(include_in_schema=False)
# Who the public page reads a show as: any show that is served (not removed); it acts on nothing.
VISITOR = User(id=0, name="(public share page)", role="cohost", shows=None)
NETWORK_NAMES = {"x": "X", "mastodon": "Mastodon", "bluesky": "Bluesky", "threads": "Threads"}
CACHE = "public, max-age=300"


@router.get("/share/{slug}/{episode_id}", response_class=HTMLResponse)
def share_page(request: Request, slug: str, episode_id: int):
    """The episode's share kit for listeners, as a page anyone may open."""
    st = request.app.state.crier
    with st.service(slug, VISITOR) as svc:
        settings = svc.settings
        row = catalog.episode(svc, episode_id)
        if row is None:
            raise HTTPException(404, "no such episode")
        try:
            kit = svc.share(str(row.id))
        except errors.CrierError:   # (never for a real feed's episode)
            kit = {"texts": [], "official_posts": []}
    if kit.get("id", row.id) != row.id:   # a GUID that reads as this id: not this episode
        raise HTTPException(404, "no such episode")
    url = str(request.url.replace(query=None, fragment=None))
    description = catalog.summary(row) or f"A new episode of {settings.show}."
    resp = render(request, "share.html", user=None, csrf=None, show=settings, ep=row,
                  kit=kit, names=NETWORK_NAMES, description=description, page_url=url,
                  image=catalog.artwork(row), tz=settings.timezone)
    resp.headers["Cache-Control"] = CACHE
    return resp
