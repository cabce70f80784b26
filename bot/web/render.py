"""The pages' one way to render a template: Jinja2 (autoescaped) with what every page needs
(the user, their CSRF token, the app's root path, the show's timezone formatting)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def local(value: datetime | str | None, tz: str | ZoneInfo | None = None,
          fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """A time as the show's host reads it: in the show's timezone (UTC when none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    if zone is not None and value.tzinfo is not None:
        value = value.astimezone(zone)
    return value.strftime(fmt) + ("" if zone is None else f" {value.tzname()}")


templates.env.filters["local"] = local


def render(request: Request, name: str, status_code: int = 200, **context):
    """Render `name` with the request's user and CSRF token (set by bot.web.auth)."""
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", getattr(request.state, "csrf", None))
    context.setdefault("root", request.scope.get("root_path", ""))
    return templates.TemplateResponse(request, name, context, status_code=status_code)
