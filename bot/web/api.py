"""The JSON API (/api/v1): what the pages do, for scripts and for the pages' own calls.

Every route needs a user (bot.web.auth.api_user: `Authorization: Bearer TOKEN`, or the session
cookie with the `X-CSRF-Token` header on a state-changing call) and answers only about the
shows they may see: another show, or an episode, queued post, delivery or community post that
is not the show's, is a 404. Bad input is a 422 whose `detail` is the CLI's message; a role
that may not is a 403. Documented by OpenAPI at /api/v1/openapi.json (pydantic models in
bot.web.api_models). Every route calls the application functions the CLI calls:

- this file: who am I, the shows and their health, one show's status and accounts;
- bot.web.api_episodes: episodes (release, dismiss), deliveries (retry), the community;
- bot.web.api_queue: the promo queue and previews.

Host-only (bot.users.HOST_ONLY; a co-host gets 403): dismissing a held episode ("remove_post":
its announcement is never posted, and that cannot be undone). A co-host may do the rest:
queue, edit, pause, resume and cancel queued posts, preview, release held episodes, retry
deliveries, approve and reject community posts.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from bot.users import User
from bot.web import api_episodes, api_queue
from bot.web.api_models import AccountOut, Me, Open, ShowHealth, clean, redact_url
from bot.web.auth import api_user

router = APIRouter(prefix="/api/v1", tags=["api"])


def _state(request: Request):
    return request.app.state.crier


@router.get("/me", response_model=Me)
def me(request: Request, user: User = Depends(api_user)) -> dict:
    """Who the caller is: name, role and what the role allows."""
    return {"name": user.name, "role": user.role,
            "may": {"accounts": user.may("accounts"), "remove_post": user.may("remove_post"),
                    "users": user.may("users")}}


@router.get("/shows", response_model=list[ShowHealth])
def list_shows(request: Request, user: User = Depends(api_user)) -> list[dict]:
    """The shows this user may see, each with its `slug` and health (last poll, errors,
    failed deliveries, held episodes)."""
    return clean(request, _state(request).shows(user))


@router.get("/shows/{slug}", response_model=Open)
def show_status(request: Request, slug: str, user: User = Depends(api_user)) -> dict:
    """One show as `crier status --json` shows it (its feeds' health with the feed URL
    stripped of credentials, held and scheduled episodes, open, failed and recent
    deliveries, the queue), with its name, timezone and accounts."""
    with _state(request).service(slug, user) as svc:
        status = svc.status()
        settings = svc.settings
        accounts = _accounts(settings)
    for f in status["feeds"]:
        f["url"] = redact_url(f["url"])
        if f.get("redirect_url"):
            f["redirect_url"] = redact_url(f["redirect_url"])
    return clean(request, {"slug": slug, "name": settings.show, "timezone": settings.timezone,
                           "accounts": accounts, **status}, settings)


def _accounts(settings) -> list[dict]:
    posting = {a.name for a in settings.posting_accounts}
    return [{"name": a.name, "platform": a.platform,
             "instance": a.service if a.platform == "bluesky" else a.api_base
             if a.platform == "threads" else a.instance, "handle": a.handle,
             "dry_run": a.dry_run, "posting": a.name in posting,
             "configured": not a.missing_secrets} for a in settings.accounts]


@router.get("/shows/{slug}/accounts", response_model=list[AccountOut])
def list_accounts(request: Request, slug: str, user: User = Depends(api_user)) -> list[dict]:
    """The show's accounts (name, platform, instance - Mastodon's instance, Bluesky's PDS,
    Threads' API base -, Bluesky's handle, dry run, whether its credentials are
    set); never a credential."""
    with _state(request).service(slug, user) as svc:
        return clean(request, _accounts(svc.settings), svc.settings)


router.include_router(api_episodes.router)
router.include_router(api_queue.router)


def install(app: FastAPI) -> None:
    """A body or parameter of the wrong type: 422 whose `detail` names the field in one line
    (and `errors`, pydantic's list), like every other 422 of the API."""
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        lines = []
        for e in errs:
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path")]
            lines.append(f"{'.'.join(loc) or 'body'}: {e.get('msg', 'invalid')}")
        safe = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
                for e in errs]
        return JSONResponse({"detail": "; ".join(lines), "errors": safe}, status_code=422)
