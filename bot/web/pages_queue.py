"""The queue pages: the list of queued posts (when each goes out per account, cancel / pause /
resume), the promo form (new and edit) with a live preview per network, and the calendar
(week and month). Forms post here with the hidden csrf_token field and call what `crier queue
add/edit/cancel/pause/resume` call (bot.promos via `svc.queue`); an error re-renders the form
with the CLI's message and the posts' counts, so everything works without JavaScript. The live
preview is drawn by bot/web/static/queue.js from the JSON API a script would call (`POST
/api/v1/shows/{slug}/preview`, the dry run of `crier queue add --dry-run`) as the host types;
the form's image already on the server (a queued post's, or one uploaded with a refused form)
is served here for it to send along."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bot import errors
from bot.users import User
from bot.web import queue_view
from bot.web.api_models import PLATFORM_NAMES
from bot.web.auth import page_user
from bot.web.render import render

router = APIRouter(include_in_schema=False)
ACTIONS = ("cancel", "pause", "resume")
DONE = {"queued": "Queued", "changed": "Changed", "cancelled": "Cancelled",
        "paused": "Paused", "resumed": "Resumed"}
MAX_IMAGE = 10 * 1024 * 1024     # bytes of an uploaded image
IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_UPLOAD_NAME = re.compile(r"[0-9a-f]{64}\.(png|jpg|gif|webp)")
WHEN_FORMAT = "%Y-%m-%d %H:%M"   # how the form shows a time (the show's zone; parse_when reads it)


def _state(request: Request):
    return request.app.state.crier


def _root(request: Request) -> str:
    return request.scope.get("root_path", "")


async def _with_service(request: Request, slug: str, user: User, fn):
    """Run `fn(svc)` for the show in a worker thread (the store is synchronous)."""
    def call():
        with _state(request).service(slug, user) as svc:
            return fn(svc)
    return await run_in_threadpool(call)


def _uploads(svc) -> Path:
    return Path(svc.settings.data_dir) / "uploads"


async def _read_form(request: Request) -> tuple[dict, UploadFile | None]:
    form = await request.form()
    upload = form.get("image")
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "accounts"}
    values["accounts"] = [a for a in form.getlist("accounts") if isinstance(a, str)]
    return values, upload if isinstance(upload, UploadFile) and upload.filename else None


async def _image_bytes(upload: UploadFile | None) -> tuple[bytes, str] | None:
    if upload is None:
        return None
    data = await upload.read(MAX_IMAGE + 1)
    if not data:
        return None
    if len(data) > MAX_IMAGE:
        raise errors.CrierError(f"image {upload.filename!r} is over {MAX_IMAGE // 2**20} MB")
    ext = IMAGE_TYPES.get(upload.content_type or "")
    if ext is None:
        raise errors.CrierError(f"image {upload.filename!r}: PNG, JPEG, GIF or WebP only")
    return data, ext


def _store_image(svc, image: tuple[bytes, str] | None, kept: str) -> str | None:
    """The uploaded image's path (kept by its content's hash under data_dir/uploads), or the
    one uploaded before (the form's `image_name`: a name there, never a path)."""
    if image is not None:
        data, ext = image
        folder = _uploads(svc)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(data).hexdigest()}.{ext}"
        if not path.exists():
            path.write_bytes(data)
        return str(path)
    if kept and _UPLOAD_NAME.fullmatch(kept) and (_uploads(svc) / kept).is_file():
        return str(_uploads(svc) / kept)
    return None


def _add_args(values: dict, image: str | None) -> dict:
    """The form's fields as `PromoQueue.add`'s arguments (what `crier queue add` passes)."""
    def text(key):
        return (values.get(key) or "").strip() or None
    return {"text": values.get("text") or "", "at": text("at"), "every": text("every"),
            "until": text("until"), "accounts": values.get("accounts") or None,
            "episode": text("episode"), "image": image,
            "alt": (values.get("alt") or "").strip() or None if image else None,
            "fit": bool(values.get("fit")), "evergreen": bool(values.get("evergreen")),
            "pick": values.get("pick") or "oldest"}


def _form_context(svc, values: dict, *, promo=None) -> dict:
    settings = svc.settings
    feeds = svc.store.all_feeds()
    episodes = svc.store.recent_episodes(feeds[0].id, 20) if feeds else []
    checked = values.get("accounts") or [a.name for a in settings.posting_accounts]
    return {"show": settings, "tz": settings.timezone, "values": values, "promo": promo,
            "accounts": [{"name": a.name, "platform": a.platform,
                          "network": PLATFORM_NAMES.get(a.platform, a.platform),
                          "checked": a.name in checked} for a in settings.posting_accounts],
            "episodes": [{"guid": e.get("guid"), "title": e.get("title")} for e in episodes],
            "now_local": svc.clock().astimezone(settings.tz).strftime(WHEN_FORMAT)}


# -- the list and the status buttons --------------------------------------------------------
@router.get("/shows/{slug}/queue", response_class=HTMLResponse)
async def queue_list(request: Request, slug: str, all: int = 0, did: str = "", id: int = 0,
                     user: User = Depends(page_user)):
    """Every queued post, with when it goes out on each account."""
    def load(svc):
        return svc.settings, svc.queue.list(all_=bool(all))
    settings, views = await _with_service(request, slug, user, load)
    return render(request, "queue.html", slug=slug, show=settings, tz=settings.timezone,
                  views=views, all=bool(all),
                  done=f"{DONE[did]} #{id}." if did in DONE and id else None)


# -- the form -----------------------------------------------------------------------------
@router.get("/shows/{slug}/queue/new", response_class=HTMLResponse)
async def new_form(request: Request, slug: str, at: str = "", user: User = Depends(page_user)):
    """An empty promo form (`at` prefilled from the calendar's day)."""
    ctx = await _with_service(request, slug, user,
                              lambda svc: _form_context(svc, {"at": at, "text": ""}))
    return render(request, "queue_form.html", slug=slug, error=None, cards=[], **ctx)


@router.post("/shows/{slug}/queue/new", response_class=HTMLResponse)
async def create(request: Request, slug: str, user: User = Depends(page_user)):
    """Queue the form's post (as `crier queue add`), or show the form again with why not."""
    values, upload = await _read_form(request)
    try:
        image = await _image_bytes(upload)
    except errors.CrierError as e:
        image, upload_error = None, str(e)
    else:
        upload_error = None

    def go(svc):
        path = _store_image(svc, image, values.get("image_name", ""))
        args = _add_args(values, path)
        try:
            if upload_error:
                raise errors.CrierError(upload_error)
            pid, _, _ = svc.queue.add(**args)
            return pid, None
        except errors.CrierError as e:
            if path:
                values["image_name"] = Path(path).name
            return None, {**_form_context(svc, values), "error": str(e),
                          "cards": queue_view.composed(svc, args)}
    pid, ctx = await _with_service(request, slug, user, go)
    if pid is None:
        return render(request, "queue_form.html", status_code=422, slug=slug, **ctx)
    return RedirectResponse(f"{_root(request)}/shows/{slug}/queue?did=queued&id={pid}",
                            status_code=303)


def _promo_values(svc, promo_id: int) -> tuple[object, dict]:
    row = svc.queue.get(promo_id)
    tz = svc.settings.tz
    return row, {
        "text": row.text or "", "every": row.rule or "",
        "at": row.next_at.astimezone(tz).strftime(WHEN_FORMAT) if row.next_at and not row.rule
        else "",
        "until": row.until.astimezone(tz).strftime(WHEN_FORMAT) if row.until else "",
        "accounts": row.accounts or [], "alt": row.alt or "", "fit": row.fit,
        "evergreen": row.kind == "evergreen", "pick": row.pick or "oldest",
        "image_name": Path(row.image_path).name if row.image_path else "",
        "episode": _episode_ref(svc, row.episode_id)}


def _episode_ref(svc, episode_id: int | None) -> str:
    if not episode_id:
        return ""
    ep = svc.store.get_episode(episode_id)
    return (ep.guid if ep else None) or str(episode_id)


@router.get("/shows/{slug}/queue/{promo_id:int}/edit", response_class=HTMLResponse)
async def edit_form(request: Request, slug: str, promo_id: int,
                    user: User = Depends(page_user)):
    """The form of a queued post, filled in."""
    def load(svc):
        try:
            row, values = _promo_values(svc, promo_id)
        except errors.CrierError as e:
            raise HTTPException(404, str(e)) from None
        return _form_context(svc, values, promo=row)
    ctx = await _with_service(request, slug, user, load)
    return render(request, "queue_form.html", slug=slug, error=None, cards=[], **ctx)


@router.post("/shows/{slug}/queue/{promo_id:int}/edit", response_class=HTMLResponse)
async def edit(request: Request, slug: str, promo_id: int, user: User = Depends(page_user)):
    """Change a queued post (as `crier queue edit`): only the fields the host changed."""
    values, upload = await _read_form(request)
    try:
        image, upload_error = await _image_bytes(upload), None
    except errors.CrierError as e:
        image, upload_error = None, str(e)

    def go(svc):
        try:
            row, before = _promo_values(svc, promo_id)
        except errors.CrierError as e:
            raise HTTPException(404, str(e)) from None
        path = _store_image(svc, image, "")
        args = _add_args(values, path or (row.image_path if values.get("alt") else None))
        changed = {k: args[k] for k in ("text", "at", "every", "until")
                   if (args[k] or "") != (before[k] or "")}
        accounts = sorted(values.get("accounts") or [])
        everyone = sorted(a.name for a in svc.settings.posting_accounts)
        if accounts and accounts != sorted(before["accounts"] or everyone):
            changed["accounts"] = accounts
        if (values.get("alt") or "") != before["alt"] and row.image_path:
            changed["alt"] = values.get("alt") or ""
        try:
            if upload_error:
                raise errors.CrierError(upload_error)
            if changed.get("text") == "":
                raise errors.CrierError("the post's text is empty")
            svc.queue.edit(promo_id, image=path, fit=args["fit"], **changed)
            return None
        except errors.CrierError as e:
            return {**_form_context(svc, values, promo=row), "error": str(e),
                    "cards": queue_view.composed(svc, args)}
    ctx = await _with_service(request, slug, user, go)
    if ctx is not None:
        return render(request, "queue_form.html", status_code=422, slug=slug, **ctx)
    return RedirectResponse(f"{_root(request)}/shows/{slug}/queue?did=changed&id={promo_id}",
                            status_code=303)


@router.get("/shows/{slug}/queue/upload/{name}")
async def upload_image(request: Request, slug: str, name: str,
                       user: User = Depends(page_user)):
    """An image uploaded with a form that was refused (its `image_name`: a name under
    uploads/, never a path), for the live preview to show and send along."""
    def find(svc):
        path = _uploads(svc) / name
        return path if _UPLOAD_NAME.fullmatch(name) and path.is_file() else None
    path = await _with_service(request, slug, user, find)
    if path is None:
        raise HTTPException(404, "no image")
    return FileResponse(path)


@router.get("/shows/{slug}/queue/{promo_id:int}/image")
async def promo_image(request: Request, slug: str, promo_id: int,
                      user: User = Depends(page_user)):
    """A queued post's image (for its preview): only one this show's post holds."""
    def find(svc):
        try:
            return svc.queue.get(promo_id).image_path
        except errors.CrierError:
            return None
    path = await _with_service(request, slug, user, find)
    if not path or not Path(path).is_file():
        raise HTTPException(404, "no image")
    return FileResponse(path)


@router.post("/shows/{slug}/queue/{promo_id:int}/{action}")
async def queue_action(request: Request, slug: str, promo_id: int, action: str,
                       user: User = Depends(page_user)):
    """Cancel, pause or resume a queued post (as `crier queue cancel|pause|resume`)."""
    if action not in ACTIONS:
        raise HTTPException(404, f"no action {action!r}")
    form = await request.form()
    back = "calendar" if form.get("back") == "calendar" else "queue"
    try:
        await _with_service(request, slug, user,
                            lambda svc: svc.queue.set_status(promo_id, action))
    except errors.CrierError as e:
        def load(svc):
            return svc.settings, svc.queue.list(all_=True)
        settings, views = await _with_service(request, slug, user, load)
        return render(request, "queue.html", status_code=422, slug=slug, show=settings,
                      tz=settings.timezone, views=views, all=True, error=str(e), done=None)
    did = {"cancel": "cancelled", "pause": "paused", "resume": "resumed"}[action]
    target = f"/shows/{slug}/{back}" + ("" if back == "calendar" else f"?did={did}&id={promo_id}")
    return RedirectResponse(_root(request) + target, status_code=303)


# -- the calendar -------------------------------------------------------------------------
@router.get("/shows/{slug}/calendar", response_class=HTMLResponse)
async def calendar(request: Request, slug: str, view: str = "week", date: str = "",
                   user: User = Depends(page_user)):
    """Week or month of everything that will go out, per account, at its real time."""
    if view not in ("week", "month"):
        raise HTTPException(422, f"view must be week or month, not {view!r}")

    def load(svc):
        tz = svc.settings.tz
        today = svc.clock().astimezone(tz).date()
        day = _day(date) if date else today
        start, end, first, last = queue_view.window(view, day, tz)
        entries = queue_view.calendar_entries(svc, start, end)
        prev, nxt = queue_view.neighbours(view, day)
        return {"show": svc.settings, "tz": svc.settings.timezone, "view": view, "day": day,
                "first": first, "last": last, "today": today, "prev": prev, "next": nxt,
                "weeks": queue_view.grid(view, day, entries, tz, today),
                "count": len(entries), "accounts": svc.settings.posting_accounts}
    ctx = await _with_service(request, slug, user, load)
    return render(request, "calendar.html", slug=slug, **ctx)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"date must be YYYY-MM-DD, not {text!r}") from None
