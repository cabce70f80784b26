"""`create_app`: the control room's FastAPI app over one store and config, with its security
headers (a strict Content-Security-Policy on every response; no inline script or style), its
state (`WebState`) and its routers (bot.web.auth, bot.web.api, bot.web.pages)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from bot import errors
from bot.store import Store

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class WebState:
    """What every request handler is handed: the store, the config (read again by
    `reload`), the clock, and a Service per show (built per request, closed after)."""

    def __init__(self, store: Store, load_deployment: Callable, *,
                 clock: Callable[[], datetime] | None = None, secure_cookies: bool | None = None,
                 session=None):
        self.store, self._load = store, load_deployment
        self.clock = clock or (lambda: datetime.now(UTC))
        self.secure_cookies = secure_cookies   # None: Secure unless plain HTTP on loopback
        self.session = session                 # the HTTP session for the platforms (tests)
        self._deployment = None

    @property
    def deployment(self):
        if self._deployment is None:
            self._deployment = self._load()
        return self._deployment

    def reload(self) -> None:
        self._deployment = None

    def now(self) -> datetime:
        return self.clock()

    def shows(self, user) -> list[dict]:
        """The shows `user` may see, each with its slug, name and health (bot.shows.health)."""
        import sqlalchemy as sa

        from bot.shows import health
        from bot.store import shows as shows_t
        with self.store.tx() as c:
            ids = dict(c.execute(sa.select(shows_t.c.slug, shows_t.c.id).where(
                shows_t.c.removed_at.is_(None))).all())
        return [dict(h, id=ids[h["slug"]]) for h in health(self.store)
                if user.sees(ids.get(h["slug"]))]

    def show_id(self, slug: str, user) -> int:
        """The id of the show `slug` if `user` may see it; 404 otherwise (whether it exists
        or not: a user learns nothing about shows they may not see)."""
        import sqlalchemy as sa

        from bot.store import shows as shows_t
        with self.store.tx() as c:
            sid = c.execute(sa.select(shows_t.c.id).where(
                shows_t.c.slug == slug, shows_t.c.removed_at.is_(None))).scalar()
        if sid is None or not user.sees(sid):
            raise HTTPException(404, f"no show {slug!r}")
        return sid

    @contextmanager
    def service(self, slug: str, user, *, dry_run: bool = False) -> Iterator:
        """The Service of show `slug` for `user` (404 when they may not see it)."""
        from bot.service import Service
        from bot.shows import settings_by_id
        sid = self.show_id(slug, user)
        settings = settings_by_id(self.store, self.deployment, {sid}).get(sid)
        if settings is None:
            raise HTTPException(404, f"no show {slug!r}")
        svc = Service(settings, self.store, show_id=sid, clock=self.clock, dry_run=dry_run,
                      session=self.session)
        try:
            yield svc
        finally:
            svc.notifier.close()


def create_app(store: Store, load_deployment: Callable, *,
               clock: Callable[[], datetime] | None = None,
               secure_cookies: bool | None = None, session=None) -> FastAPI:
    """The control room over `store` and the config `load_deployment()` reads. The store
    is migrated by the caller. Served under a path: the server's root_path (uvicorn
    `root_path`), which pages read from the request."""
    from bot import __version__
    from bot.web import api, auth, pages, pages_accounts
    app = FastAPI(title="crier", version=__version__,
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
                  description="The control room's JSON API: what the pages do, for scripts. "
                              "Authenticate with `Authorization: Bearer TOKEN` (crier tokens "
                              "create) or the session cookie plus the `X-CSRF-Token` header.")
    app.state.crier = WebState(store, load_deployment, clock=clock,
                               secure_cookies=secure_cookies, session=session)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if request.url.path.startswith(("/api/", "/login", "/logout")) or \
                "text/html" in response.headers.get("content-type", ""):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(errors.CrierError)
    async def crier_error(request: Request, exc: errors.CrierError):
        """An expected error (bad input, a refused action): 422 with the CLI's message."""
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth.router)
    app.include_router(api.router)
    api.install(app)
    app.include_router(pages.router)
    app.include_router(pages_accounts.router)
    from bot.web.pages_queue import router as queue_pages  # the queue, form, calendar
    app.include_router(queue_pages)
    from bot.web.websub import router as websub_callback  # public: a hub calls it
    app.include_router(websub_callback)
    auth.install(app)
    return app
