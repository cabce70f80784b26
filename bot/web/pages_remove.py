"""The **Remove post** button (host only; `crier remove`): a plain form on the one-episode page
and in Today's "Went out recently" posts here with its `csrf_token`; without `confirm=yes` the
answer is a confirmation page showing the post (its account, text and link) with the form that
confirms, so the step works without JavaScript; with it, `bot.removal.remove` deletes the post
on its network and the answer is a 303 back to the page with what was done (or why not)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from bot import errors
from bot.users import User
from bot.web.auth import page_user, require
from bot.web.render import render

router = APIRouter(include_in_schema=False)


@router.post("/shows/{slug}/deliveries/{delivery_id}/remove", response_class=HTMLResponse)
async def remove(request: Request, slug: str, delivery_id: int,
                 user: User = Depends(page_user)):
    """Confirm (without `confirm=yes`), then remove the delivery's post."""
    from bot.outbox import describe
    from bot.removal import remove as remove_post
    from bot.store import deliveries
    from bot.web.pages import _back, _form
    require(user, "remove_post")
    form = await _form(request)
    back = form.get("back") or ""
    if not back.startswith(f"/shows/{slug}") or "//" in back:
        back = f"/shows/{slug}"
    with request.app.state.crier.service(slug, user) as svc:
        found = svc.store.deliveries_where(deliveries.c.id == delivery_id)
        if not found:
            raise HTTPException(404, f"no delivery {delivery_id} in show {slug!r}")
        d = found[0]
        if form.get("confirm") != "yes":
            title = None
            if d.episode_id:
                row = svc.store.get_episode(d.episode_id)
                title = row.title if row else None
            post = {**describe(d, svc.clock()), "id": d.id, "account": d.account,
                    "platform": d.platform, "kind": d.kind, "url": d.remote_url,
                    "sent_at": d.sent_at, "text": d.text, "title": title}
            return render(request, "remove_confirm.html", slug=slug, show=svc.settings,
                          d=post, back=back, tz=svc.settings.timezone)
        try:
            done = remove_post(svc, delivery_id, by=user.name)
        except errors.CrierError as e:
            return _back(request, slug, back, text=str(e), ok=False)
    boosts = done["boosts_removed"] + done["boosts_withdrawn"]
    said = {"removed": f"Removed the post of delivery {delivery_id} from {d.account}"
                       + (f" (and {boosts} boost(s) of it)" if boosts else "") + ".",
            "already removed": f"Delivery {delivery_id} was already removed."}
    return _back(request, slug, back, text=said.get(done["action"],
                                                    f"Delivery {delivery_id}: {done['action']}."))
