"""Who is asking: the session cookie (HttpOnly, SameSite=Lax, Secure except for plain HTTP on
loopback) with a CSRF token required on every state-changing request (the `csrf_token` form
field, or the `X-CSRF-Token` header on JSON calls), or `Authorization: Bearer TOKEN` (an API
token of bot.users; no CSRF: a browser never sends it by itself). Login (rate limited by
bot.users.authenticate) and logout. API requests without a valid identity get 401; pages
redirect to the login page."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import RedirectResponse

from bot import users as users_mod
from bot.web.render import render

router = APIRouter(include_in_schema=False)
COOKIE = "crier_session"
LOGIN_COOKIE = "crier_login"     # the login form's CSRF token (before there is a session)
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginNeeded(Exception):
    """A page asked for without a session: redirect to the login page."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def _state(request: Request):
    return request.app.state.crier


def _secure(request: Request) -> bool:
    st = _state(request)
    if st.secure_cookies is not None:
        return st.secure_cookies
    host = (request.url.hostname or "").lower()
    return request.url.scheme == "https" or host not in ("127.0.0.1", "localhost", "::1")


def _login_path(request: Request) -> str:
    """The login form's cookie path as the browser sees it (under --root-path)."""
    return request.scope.get("root_path", "") + "/login"


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _csrf_given(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def _identify(request: Request, *, page: bool):
    st = _state(request)
    now = st.now()
    auth = request.headers.get("authorization", "")
    if auth and not page:
        scheme, _, token = auth.partition(" ")
        user = users_mod.token_user(st.store, token.strip(), now=now) \
            if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(401, "invalid or revoked API token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        request.state.user, request.state.csrf = user, None
        return user
    found = users_mod.session_user(st.store, request.cookies.get(COOKIE), now=now)
    if found is None:
        if page:
            path = request.url.path
            root = request.scope.get("root_path", "")
            raise LoginNeeded(path[len(root):] if root and path.startswith(root) else path)
        raise HTTPException(401, "log in, or send Authorization: Bearer TOKEN",
                            headers={"WWW-Authenticate": "Bearer"})
    user, csrf = found
    if request.method not in SAFE and \
            not users_mod.same_token(await _csrf_given(request), csrf):
        raise HTTPException(403, "missing or wrong CSRF token (reload the page)")
    request.state.user, request.state.csrf = user, csrf
    return user


async def api_user(request: Request) -> users_mod.User:
    """The API's caller (401 without a valid token or session; 403 without the CSRF token
    on a state-changing request made with the session cookie)."""
    return await _identify(request, page=False)


async def page_user(request: Request) -> users_mod.User:
    """A page's user (a redirect to the login page without a session)."""
    return await _identify(request, page=True)


def require(user: users_mod.User, action: str) -> None:
    """403 unless the user's role allows `action` (bot.users.HOST_ONLY)."""
    if not user.may(action):
        raise HTTPException(403, f"a {user.role} may not do this ({action}); ask the host")


def _safe_next(value: str | None) -> str:
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
async def login_form(request: Request, next: str = "/"):
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", login_token=token, next=_safe_next(next), error=None)
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                    secure=_secure(request), path=_login_path(request), max_age=3600)
    return resp


@router.post("/login")
async def login(request: Request):
    st = _state(request)
    form = await request.form()
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    nxt = _safe_next(str(form.get("next") or "/"))
    root = request.scope.get("root_path", "")
    if not users_mod.same_token(str(form.get("csrf_token") or ""),
                                request.cookies.get(LOGIN_COOKIE)):
        return _login_again(request, nxt, "The form expired; please log in again.", 403)
    try:
        user = users_mod.authenticate(st.store, name, password, client=_client(request),
                                      now=st.now())
    except users_mod.LoginRefused as e:
        resp = _login_again(request, nxt, str(e).capitalize() + ".",
                            429 if e.retry_after else 401)
        if e.retry_after:
            resp.headers["Retry-After"] = str(e.retry_after)
        return resp
    sid, _csrf = users_mod.new_session(st.store, user, now=st.now())
    resp = RedirectResponse(root + nxt, status_code=303)
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="lax", secure=_secure(request),
                    path="/", max_age=int(users_mod.SESSION_TTL.total_seconds()))
    resp.delete_cookie(LOGIN_COOKIE, path=_login_path(request))
    return resp


def _login_again(request: Request, nxt: str, error: str, status: int):
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", status_code=status, login_token=token, next=nxt,
                  error=error)
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                    secure=_secure(request), path=_login_path(request), max_age=3600)
    return resp


@router.post("/logout")
async def logout(request: Request):
    await page_user(request)
    users_mod.end_session(_state(request).store, request.cookies.get(COOKIE))
    resp = RedirectResponse(request.scope.get("root_path", "") + "/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


def install(app: FastAPI) -> None:
    """The redirect of a page asked for without a session."""
    @app.exception_handler(LoginNeeded)
    async def to_login(request: Request, exc: LoginNeeded):
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/login?next={quote(exc.next_path)}", status_code=303)
