"""The Accounts page: where each account's credentials come from, and connecting them without
a terminal (bot.connect): Mastodon through the instance's OAuth authorization (code flow with
PKCE; crier registers itself as an app there), X by pasting its four OAuth 1.0a values, Bluesky
by its handle and an app password (never the main password), Threads by pasting a long-lived
token (refreshed by bot.threads_tokens), each verified on save and stored encrypted
(CRIER_SECRET_KEY); disconnecting. Changing accounts is for a host (`accounts` in
bot.users.HOST_ONLY); a co-host sees the page read-only."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from bot import connect
from bot.errors import CrierError
from bot.users import User
from bot.web.auth import page_user, require
from bot.web.render import render

router = APIRouter(include_in_schema=False)
CALLBACK = "/oauth/mastodon/callback"


def _state(request: Request):
    return request.app.state.crier


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _callback_url(request: Request) -> str:
    """The absolute callback address (the proxy's scheme and host when one is trusted)."""
    base = f"{request.url.scheme}://{request.url.netloc}"
    return base + _root(request) + CALLBACK


def _back(request: Request, slug: str, message: str, *, error: bool = False):
    key = "error" if error else "done"
    return RedirectResponse(f"{_root(request)}/shows/{slug}/accounts?{key}={quote(message)}",
                            status_code=303)


def _account(settings, name: str):
    found = next((a for a in settings.accounts if a.name == name), None)
    if found is None:
        raise HTTPException(404, f"no account {name!r} in this show")
    return found


@router.get("/shows/{slug}/accounts", response_class=HTMLResponse)
def accounts_page(request: Request, slug: str, done: str = "", error: str = "",
                  user: User = Depends(page_user)):
    st = _state(request)
    with st.service(slug, user) as svc:
        settings, show_id = svc.settings, svc.show_id
        rows = connect.accounts_view(settings, st.store, show_id=show_id)
    try:
        connect.open_vault(settings)
        vault_problem = None
    except CrierError as e:
        vault_problem = str(e)
    return render(request, "accounts.html", slug=slug, show=settings, tz=settings.timezone,
                  accounts=rows, vault_problem=vault_problem, done=done[:300],
                  error=error[:500], may_change=user.may("accounts"))


@router.post("/shows/{slug}/accounts/{name}/mastodon", response_class=HTMLResponse)
async def connect_mastodon(request: Request, slug: str, name: str,
                           user: User = Depends(page_user)):
    require(user, "accounts")
    st = _state(request)
    form = await request.form()
    with st.service(slug, user) as svc:
        account = _account(svc.settings, name)
        if account.platform != "mastodon":
            raise HTTPException(422, f"account {name!r} is not a Mastodon account")
        instance = str(form.get("instance") or account.instance or "").strip()
        try:
            url = connect.start_mastodon(
                st.store, connect.open_vault(svc.settings), show_id=svc.show_id, account=name,
                instance=instance, redirect_uri=_callback_url(request), user_id=user.id,
                now=st.now(), allow_private=st.deployment.allow_private_networks)
        except CrierError as e:
            return _back(request, slug, str(e), error=True)
    # The CSP allows forms to post only here: the host follows a link (and a refresh) there.
    host = urlsplit(url).hostname or instance
    return render(request, "accounts_go.html", slug=slug, url=url, host=host, account=name)


@router.get(CALLBACK, response_class=HTMLResponse)
def mastodon_callback(request: Request, state: str = "", code: str = "", error: str = "",
                      user: User = Depends(page_user)):
    st = _state(request)
    try:
        done = connect.finish_mastodon(st.store, None, state=state, code=code or None,
                                       error=error or None, now=st.now(),
                                       allow_private=st.deployment.allow_private_networks)
    except CrierError as e:
        return render(request, "accounts_go.html", status_code=422, slug=None, url=None,
                      host=None, account=None, error=str(e))
    slug = _slug(st, done.show_id, user)
    return _back(request, slug, f"Connected {done.account} as {done.username}.")


def _slug(st, show_id: int | None, user: User) -> str:
    shows = st.shows(user)
    found = next((s["slug"] for s in shows if s["id"] == show_id), None)
    if found is None:
        raise HTTPException(404, "that show is not one you may see")
    return found


A_PLATFORM = {"x": "an X", "bluesky": "a Bluesky", "threads": "a Threads"}


async def _paste(request: Request, slug: str, name: str, user: User, platform: str,
                 connect_with) -> object:
    """A host pastes an account's credentials: checked on its network by
    `connect_with(st, svc, account, form)` and stored encrypted, or the network's refusal
    shown on the Accounts page (nothing stored)."""
    require(user, "accounts")
    st = _state(request)
    form = await request.form()
    with st.service(slug, user) as svc:
        account = _account(svc.settings, name)
        if account.platform != platform:
            raise HTTPException(422, f"account {name!r} is not {A_PLATFORM[platform]} account")
        try:
            done = connect_with(st, svc, account, form)
        except CrierError as e:
            return _back(request, slug, str(e), error=True)
    return _back(request, slug, f"Connected {done.account} as {done.username}.")


@router.post("/shows/{slug}/accounts/{name}/x")
async def connect_x(request: Request, slug: str, name: str, user: User = Depends(page_user)):
    return await _paste(request, slug, name, user, "x", lambda st, svc, account, form:
                        connect.connect_x(
        st.store, connect.open_vault(svc.settings), show_id=svc.show_id, account=name,
        keys={k: str(form.get(k) or "") for k in connect.X_KEYS}, now=st.now(),
        user_id=user.id, api_base=account.api_base))


@router.post("/shows/{slug}/accounts/{name}/bluesky")
async def connect_bluesky(request: Request, slug: str, name: str,
                          user: User = Depends(page_user)):
    return await _paste(request, slug, name, user, "bluesky", lambda st, svc, account, form:
                        connect.connect_bluesky(
        st.store, connect.open_vault(svc.settings), show_id=svc.show_id, account=name,
        handle=str(form.get("handle") or account.handle or ""),
        app_password=str(form.get("app_password") or ""), now=st.now(), user_id=user.id,
        service=account.service))


@router.post("/shows/{slug}/accounts/{name}/threads")
async def connect_threads(request: Request, slug: str, name: str,
                          user: User = Depends(page_user)):
    return await _paste(request, slug, name, user, "threads", lambda st, svc, account, form:
                        connect.connect_threads(
        st.store, connect.open_vault(svc.settings), show_id=svc.show_id, account=name,
        token=str(form.get("access_token") or ""), now=st.now(), user_id=user.id,
        api_base=account.api_base, threads_user=getattr(account, "user_id", "me")))


@router.post("/shows/{slug}/accounts/{name}/disconnect")
async def disconnect(request: Request, slug: str, name: str, user: User = Depends(page_user)):
    require(user, "accounts")
    st = _state(request)
    with st.service(slug, user) as svc:
        _account(svc.settings, name)
        gone = connect.disconnect(st.store, name, svc.show_id, now=st.now())
    return _back(request, slug, f"Disconnected {name}." if gone else
                 f"{name} was not connected.", error=not gone)
