"""The JSON API's promo queue and previews (see bot.web.api for the rules every route keeps):
each route calls what `crier queue add|list|show|edit|cancel|pause|resume` and
`crier preview` call (bot.promos, bot.composer), with the same checks and messages.

Images come as a data: URL in the JSON body (`image`, with `alt`): JPEG, PNG, GIF or WebP, at
most MAX_IMAGE_BYTES once decoded. It is saved (0600, named by its sha256) under the show's
media dir, in `uploads/`, and that file is then checked exactly as `crier queue add --image`
checks one (Pillow reads it; the alt text is required and counted per network). A path on
the server is never accepted: a web user cannot post files of the server's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from bot.errors import CrierError
from bot.promos import TooLongError
from bot.users import User
from bot.web.api_models import (
    PreviewIn,
    Previews,
    PromoEdited,
    PromoView,
    QueueAdd,
    QueueAdded,
    QueueEdit,
    TooLong,
    clean,
    preview_out,
)
from bot.web.auth import api_user

router = APIRouter()
SHOW = "/shows/{slug}"
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
               "image/webp": ".webp"}
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[\w.+-]+)*);base64,(.*)", re.S)
TOO_LONG = {422: {"model": TooLong, "description": "A post does not fit: the CLI's message "
                                                    "and every account's counted length"}}


def _state(request: Request):
    return request.app.state.crier


def save_image(data_url: str | None, media_dir: str) -> str | None:
    """A data: URL's image written under `media_dir`/uploads; its path (None for None)."""
    if data_url is None:
        return None
    m = _DATA_URL.fullmatch(data_url.strip())
    if not m:
        raise CrierError("image: expected a data: URL (data:image/png;base64,...)")
    mime = m.group(1).lower()
    if mime not in IMAGE_TYPES:
        raise CrierError(f"image: {mime} is not accepted (JPEG, PNG, GIF or WebP)")
    if len(m.group(3)) > MAX_IMAGE_BYTES * 4 // 3 + 16:
        raise CrierError(f"image: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        data = base64.b64decode(m.group(3), validate=False)
    except (binascii.Error, ValueError):
        raise CrierError("image: the data: URL is not valid base64") from None
    if not data:
        raise CrierError("image: the data: URL holds no data")
    folder = Path(media_dir) / "uploads"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(data).hexdigest()[:40] + IMAGE_TYPES[mime])
    if not path.exists():
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


def _previews(previews, settings) -> list[dict]:
    """PREVIEWs, each under the show's name (the name its posts appear under)."""
    return [preview_out(p, display_name=settings.show) for p in previews]


def _too_long(request: Request, e: TooLongError, settings) -> JSONResponse:
    body = {"detail": str(e), "previews": _previews(e.previews, settings)}
    return JSONResponse(clean(request, body, settings), status_code=422)


def _promo(svc, promo_id: int) -> None:
    if svc.store.promo(promo_id) is None:
        slug = svc.settings.slug
        raise HTTPException(404, f"no queued post {promo_id} in show {slug}")


def _ref(episode) -> str | None:
    return None if episode is None else str(episode)


# -- the queue -------------------------------------------------------------------------------
@router.get(SHOW + "/queue", response_model=list[PromoView])
def list_queue(request: Request, slug: str, user: User = Depends(api_user),
               all: bool = False) -> list[dict]:
    """Queued posts (`crier queue list --json`), each with when it will really go out on
    each account (`goes_out`: gap, quiet hours, pending announcements); `all=1` adds done
    and cancelled ones."""
    with _state(request).service(slug, user) as svc:
        return clean(request, svc.queue.list(all_=all), svc.settings)


@router.get(SHOW + "/queue/{promo_id}", response_model=PromoView)
def show_queued(request: Request, slug: str, promo_id: int,
                user: User = Depends(api_user)) -> dict:
    """One queued post (`crier queue show ID --json`), with its deliveries."""
    with _state(request).service(slug, user) as svc:
        _promo(svc, promo_id)
        return clean(request, svc.queue.show(promo_id), svc.settings)


@router.post(SHOW + "/queue", response_model=QueueAdded, status_code=201, responses=TOO_LONG)
def add_queued(request: Request, response: Response, slug: str, body: QueueAdd,
               user: User = Depends(api_user)):
    """Queue a post (`crier queue add`): checked and composed for every account; the
    answer holds each account's preview (counted length and limit). `dry`: nothing is
    queued (200, `id` null). A post over a limit: 422 with the previews (or `fit` to have
    it shortened)."""
    from bot.schedule import at_or_in
    when = at_or_in(body.at, body.in_)
    with _state(request).service(slug, user) as svc:
        image = save_image(body.image, svc.settings.media_dir)
        try:
            pid, _promo_row, previews = svc.queue.add(
                body.text, at=when, every=body.every, until=body.until,
                accounts=body.accounts, image=image, alt=body.alt, episode=_ref(body.episode),
                fit=body.fit, evergreen=body.evergreen, pick=body.pick,
                cooldown_days=body.cooldown, dry=body.dry)
        except TooLongError as e:
            return _too_long(request, e, svc.settings)
        view = svc.queue.show(pid) if pid else None
        if pid is None:
            response.status_code = 200
        return clean(request, {"id": pid, "queued": pid is not None, "promo": view,
                               "previews": _previews(previews, svc.settings)}, svc.settings)


@router.patch(SHOW + "/queue/{promo_id}", response_model=PromoEdited, responses=TOO_LONG)
def edit_queued(request: Request, slug: str, promo_id: int, body: QueueEdit,
                user: User = Depends(api_user)):
    """Change a queued post (`crier queue edit`): only the fields given; checked and
    composed again (422 with the previews when it no longer fits)."""
    from bot.schedule import at_or_in
    when = at_or_in(body.at, body.in_)
    with _state(request).service(slug, user) as svc:
        _promo(svc, promo_id)
        image = save_image(body.image, svc.settings.media_dir)
        try:
            view, previews = svc.queue.edit(
                promo_id, text=body.text, at=when, every=body.every, until=body.until,
                accounts=body.accounts, image=image, alt=body.alt, fit=body.fit)
        except TooLongError as e:
            return _too_long(request, e, svc.settings)
        return clean(request, {**view, "previews": _previews(previews, svc.settings)},
                     svc.settings)


def _set_status(request: Request, slug: str, promo_id: int, user: User, action: str) -> dict:
    with _state(request).service(slug, user) as svc:
        _promo(svc, promo_id)
        return clean(request, svc.queue.set_status(promo_id, action), svc.settings)


@router.post(SHOW + "/queue/{promo_id}/cancel", response_model=PromoView)
def cancel_queued(request: Request, slug: str, promo_id: int,
                  user: User = Depends(api_user)) -> dict:
    """Cancel a queued post (`crier queue cancel`): its deliveries not yet sending are
    withdrawn (`withdrawn`)."""
    return _set_status(request, slug, promo_id, user, "cancel")


@router.post(SHOW + "/queue/{promo_id}/pause", response_model=PromoView)
def pause_queued(request: Request, slug: str, promo_id: int,
                 user: User = Depends(api_user)) -> dict:
    """Pause a queued post (`crier queue pause`)."""
    return _set_status(request, slug, promo_id, user, "pause")


@router.post(SHOW + "/queue/{promo_id}/resume", response_model=PromoView)
def resume_queued(request: Request, slug: str, promo_id: int,
                  user: User = Depends(api_user)) -> dict:
    """Resume a paused post (`crier queue resume`): it picks up at its next occurrence."""
    return _set_status(request, slug, promo_id, user, "resume")


# -- previews --------------------------------------------------------------------------------
@router.post(SHOW + "/preview", response_model=Previews)
def preview(request: Request, slug: str, body: PreviewIn,
            user: User = Depends(api_user)) -> dict:
    """What would be posted, per account, nothing recorded: with `text`, that text composed
    as a queued post (`crier queue add --dry-run`; over a limit it is still shown, with
    `fits` false); without, the announcement of `episode` (a GUID, an id or "latest", the
    default: `crier preview`)."""
    with _state(request).service(slug, user) as svc:
        if body.text is not None:
            image = save_image(body.image, svc.settings.media_dir)
            try:
                _, _, previews = svc.queue.add(body.text, accounts=body.accounts, image=image,
                                               alt=body.alt, episode=_ref(body.episode),
                                               fit=body.fit, dry=True)
            except TooLongError as e:
                previews = e.previews
            out = _previews(previews, svc.settings)
        else:
            out = _announcement(svc, _ref(body.episode) or "latest", body.accounts)
        return clean(request, {"previews": out}, svc.settings)


def _announcement(svc, ref: str, names: list[str] | None) -> list[dict]:
    from bot.episodes import episode_from_data
    wanted = {a.name: a for a in svc.queue.accounts(names)}
    row = svc.queue.episode(ref)
    previews = svc.preview(episode_from_data(row.data),
                           boilerplate=row.data.get("boilerplate") or (),
                           show_image=row.data.get("show_image"))
    return [dict(preview_out(p, alt_limit=svc.rules_for(wanted[p.account]).alt_text_limit,
                             display_name=svc.settings.show),
                 episode=row.title) for p in previews if p.account in wanted]
