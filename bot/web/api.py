"""The JSON API (/api/v1): what the pages do, for scripts and for the pages' own calls.
Every route needs a user (bot.web.auth.api_user) and answers only about the shows they may
see (another show is a 404). Documented by OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from bot.users import User
from bot.web.auth import api_user

router = APIRouter(prefix="/api/v1", tags=["api"])


def _state(request: Request):
    return request.app.state.crier


@router.get("/me")
def me(request: Request, user: User = Depends(api_user)) -> dict:
    """Who the caller is: name, role and what the role allows."""
    return {"name": user.name, "role": user.role,
            "may": {"accounts": user.may("accounts"), "remove_post": user.may("remove_post"),
                    "users": user.may("users")}}


@router.get("/shows")
def list_shows(request: Request, user: User = Depends(api_user)) -> list[dict]:
    """The shows this user may see, each with its `slug` and health (last poll, errors,
    failed deliveries, held episodes)."""
    return _state(request).shows(user)
