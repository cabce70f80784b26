"""Connecting accounts without a terminal: what the web app's "Connect" buttons call.

- **Mastodon**: `start_mastodon` registers crier as an app on the instance once per
  (instance, redirect URI) (`POST /api/v1/apps`), keeps a one-use `state` and a PKCE verifier
  (S256) and returns the instance's `/oauth/authorize` URL to send the host to; the instance
  sends them back to the redirect URI with `code` and `state`, and `finish_mastodon`
  exchanges the code (`POST /oauth/token`), verifies the token the way `crier check` does
  (`verify_credentials`) and stores it. A state works once, for `STATE_TTL`.
- **X**: `connect_x` takes the four OAuth 1.0a values pasted by the host, verifies them on
  X (`GET /2/users/me`, as `crier check`) and stores them.
- **Bluesky**: `connect_bluesky` takes the handle and an app password (never the main one:
  refused by its form, else by the session's scope), verifies them with a createSession on
  the account's `service` (the adapter's `verify`) and stores the password.
- **Threads**: `connect_threads` takes a pasted long-lived token, verifies it (`GET /me`) and
  stores it; bot.threads_tokens refreshes it (and keeps the expiry in the same sealed value).
- `disconnect`, `connected` (never a secret), and `with_connected`: the seam where publishers
  get their credentials (`Service`, `crier check`, `crier run`). A variable in the environment
  wins for its account, as always; an account without one uses what was connected here.
  Connecting or disconnecting touches the show's registry row, so a running worker builds that
  show's Service again (bot.fleet `refresh`), and makes the deliveries stopped on credentials
  due at once.

Every secret (token, app client secret, PKCE verifier) is encrypted by `bot.vault` before it
is stored; without `CRIER_SECRET_KEY` nothing is stored and the error says why. Instances are
user input: `https://` only (plain `http://` only for a loopback address the deployment
allows), and every connection goes through the guarded session of `bot.fetch`, so a private
address is refused unless `allow_private_networks` allows it.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import sqlalchemy as sa

from bot.config import BLUESKY_SERVICE, X_API_BASE, Secret, Settings
from bot.errors import CrierError
from bot.models import DeliveryStatus
from bot.store import (
    Store,
    connected_accounts,
    deliveries,
    oauth_apps,
    oauth_pending,
    shows,
    users,
)
from bot.vault import Vault, VaultError

log = logging.getLogger(__name__)

CLIENT_NAME = "crier"
# https://docs.joinmastodon.org/api/oauth-scopes/ : what bot/platforms/mastodon.py calls.
# write:statuses posts and boosts; write:media uploads artwork (and polls it); read:accounts
# verify_credentials; read:statuses finds an earlier post and reads hashtag timelines (the
# community watch); read:notifications its mentions; read:search resolves a post to boost;
# read:blocks / read:mutes: whom the community watch leaves out.
MASTODON_SCOPES = ("write:statuses write:media read:accounts read:statuses "
                   "read:notifications read:search read:blocks read:mutes")
STATE_TTL = timedelta(minutes=10)
CONNECTED = "connected in the web app"
ENVIRONMENT = "environment"
X_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
TIMEOUT = 10.0
# kept in a Threads row's sealed value beside its token (bot.threads_tokens), not credentials:
# never handed to a publisher, never scrubbed from output as if they were secrets
NOT_SECRETS = frozenset({"origin", "expires_at", "refreshed_at", "env_sha"})
APP_PASSWORDS_URL = "https://bsky.app/settings/app-passwords"
APP_PASSWORD = re.compile(r"[a-z0-9]{4}(?:-[a-z0-9]{4}){3}", re.I)  # what Bluesky generates
MAIN_SCOPE = "com.atproto.access"    # a session from the main password (app ones: appPass...)


@dataclass(frozen=True)
class ConnectedAccount:
    """An account connected in the web app, as pages and the API may show it (no secret)."""
    account: str
    platform: str
    show_id: int | None
    instance: str | None        # Mastodon: the instance; Bluesky: the PDS; X, Threads: API
    username: str | None        # "@user@host" (Mastodon) or "@user" (X), as verified
    created_by: str | None
    created_at: datetime
    verified_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ConnectedAccount:
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


# -- Mastodon: the OAuth code flow with PKCE ---------------------------------------------------
def start_mastodon(store: Store, vault: Vault | None, *, show_id: int | None, account: str,
                   instance: str, redirect_uri: str, user_id: int | None, now: datetime,
                   session=None, allow_private: Iterable[str] = ()) -> str:
    """The instance's authorization URL to send the host to (crier registered there first,
    once per instance and redirect URI). `vault` None: from the environment. `session`
    (default: a new one) must be guarded (bot.fetch.new_session(guard=True)); `allow_private`
    is the deployment's `allow_private_networks`."""
    vault = vault or Vault.from_env()           # no key: refused before anything is sent
    base = instance_url(instance, allow_private)
    session = _session(allow_private, session)
    client_id = _app(store, vault, base, redirect_uri, now, session)["client_id"]
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)        # 86 characters: RFC 7636 wants 43 to 128
    with store.tx() as c:
        c.execute(oauth_pending.delete().where(oauth_pending.c.created_at < now - STATE_TTL))
        c.execute(oauth_pending.insert().values(
            state_hash=_sha256(state), show_id=show_id, account=account, instance=base,
            verifier_enc=vault.seal({"verifier": verifier, "redirect_uri": redirect_uri}),
            user_id=user_id, created_at=now))
    log.info("connecting mastodon account '%s' on %s: sent to authorize", account, base)
    return f"{base}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": MASTODON_SCOPES, "state": state, "code_challenge": _s256(verifier),
        "code_challenge_method": "S256"})


def finish_mastodon(store: Store, vault: Vault | None, *, state: str, code: str | None,
                    now: datetime, session=None, allow_private: Iterable[str] = (),
                    error: str | None = None, timeout: float = TIMEOUT) -> ConnectedAccount:
    """Where the instance sent the host back: `state` and `code` (or the `error` it gave).
    The state is used up; the token is verified and stored encrypted."""
    vault = vault or Vault.from_env()
    pending = _take_state(store, state, now)
    account, base = pending["account"], pending["instance"]
    if error:
        raise CrierError(f"{base} did not authorize crier for account '{account}' "
                         f"({error[:100]}): connect again and approve")
    if not code:
        raise CrierError(f"{base} sent no authorization code back: connect again")
    what = f"the authorization under way for account '{account}'"
    flow = vault.unseal(pending["verifier_enc"], what=what)
    session = _session(allow_private, session)
    with store.tx() as c:
        app = c.execute(sa.select(oauth_apps).where(
            oauth_apps.c.instance == base,
            oauth_apps.c.redirect_uri == flow["redirect_uri"])).mappings().first()
    if app is None:
        raise CrierError(f"crier is no longer registered on {base}: connect again")
    answer = _post(session, f"{base}/oauth/token", {
        "grant_type": "authorization_code", "code": code, "client_id": app["client_id"],
        "client_secret": vault.decrypt(app["client_secret_enc"],
                                       what=f"crier's app secret on {base}"),
        "redirect_uri": flow["redirect_uri"], "code_verifier": flow["verifier"]},
        base, "exchanging the authorization code", timeout)
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise CrierError(f"{base} answered the code exchange without an access token")
    from bot.platforms.mastodon import MastodonPublisher
    who = MastodonPublisher(account, base, token, session=session, timeout=timeout).verify()
    return _save(store, vault, show_id=pending["show_id"], account=account,
                 platform="mastodon", instance=base, username=who,
                 values={"access_token": token}, user_id=pending["user_id"], now=now)


def _take_state(store: Store, state: str, now: datetime) -> dict:
    """The pending authorization `state` names, removed (one use); clear errors."""
    digest = _sha256(state or "")
    with store.tx() as c:
        row = c.execute(sa.select(oauth_pending).where(
            oauth_pending.c.state_hash == digest)).mappings().first()
        taken = row is not None and c.execute(oauth_pending.delete().where(
            oauth_pending.c.state_hash == digest)).rowcount == 1
    if not taken:
        raise CrierError("this authorization is unknown or was already used (a link from "
                         "the instance works once): connect the account again")
    if now - row["created_at"] > STATE_TTL:
        raise CrierError(f"this authorization expired (it lasts "
                         f"{int(STATE_TTL.total_seconds() // 60)} minutes): connect the "
                         "account again")
    return dict(row)


def _app(store: Store, vault: Vault, base: str, redirect_uri: str, now: datetime,
         session) -> dict:
    """crier's app on `base` for `redirect_uri`: the stored one, else registered now."""
    where = (oauth_apps.c.instance == base, oauth_apps.c.redirect_uri == redirect_uri)
    with store.tx() as c:
        row = c.execute(sa.select(oauth_apps).where(*where)).mappings().first()
    if row is not None and row["scopes"] == MASTODON_SCOPES:
        try:
            vault.decrypt(row["client_secret_enc"])
            return dict(row)
        except VaultError:   # stored under another key: registering again costs nothing
            log.warning("crier's app secret on %s was stored with another key; "
                        "registering again", base)
    app = _post(session, f"{base}/api/v1/apps", {
        "client_name": CLIENT_NAME, "redirect_uris": redirect_uri, "scopes": MASTODON_SCOPES},
        base, "registering crier as an app", TIMEOUT)
    if not app.get("client_id") or not app.get("client_secret"):
        raise CrierError(f"{base} registered crier without a client id and secret")
    values = {"scopes": MASTODON_SCOPES, "client_id": str(app["client_id"]),
              "client_secret_enc": vault.encrypt(str(app["client_secret"])), "created_at": now}
    with store.tx() as c:
        if c.execute(oauth_apps.update().where(*where).values(**values)).rowcount == 0:
            c.execute(oauth_apps.insert().values(instance=base, redirect_uri=redirect_uri,
                                                 **values))
    log.info("registered crier as an app on %s", base)
    return values


# -- X: the four OAuth 1.0a values, pasted -----------------------------------------------------
def connect_x(store: Store, vault: Vault | None, *, show_id: int | None, account: str,
              keys: Mapping[str, str], now: datetime, user_id: int | None = None,
              api_base: str = X_API_BASE, timeout: float = TIMEOUT) -> ConnectedAccount:
    """Verify the four values on X (`GET /2/users/me`, as `crier check`), then store them
    encrypted. Missing values or refused keys: a CrierError, nothing stored."""
    vault = vault or Vault.from_env()
    values = {k: (keys.get(k) or "").strip() for k in X_KEYS}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise CrierError(f"x account '{account}': missing {', '.join(missing)}")
    from bot.platforms.x import XPublisher
    who = XPublisher(account, api_base=api_base, timeout=timeout, **values).verify()
    return _save(store, vault, show_id=show_id, account=account, platform="x",
                 instance=api_base, username=who, values=values, user_id=user_id, now=now)


# -- Threads: a long-lived token, pasted -------------------------------------------------------
def connect_threads(store: Store, vault: Vault | None, *, show_id: int | None, account: str,
                    token: str, now: datetime, user_id: int | None = None,
                    api_base: str = "https://graph.threads.net", threads_user: str = "me",
                    timeout: float = TIMEOUT) -> ConnectedAccount:
    """Verify a pasted long-lived Threads token (`GET /me?fields=id,username`, as `crier
    check`), then store it encrypted; bot.threads_tokens refreshes it before it expires."""
    vault = vault or Vault.from_env()
    token = (token or "").strip()
    if not token:
        raise CrierError(f"threads account '{account}': paste a long-lived access token")
    from bot.platforms.threads import ThreadsPublisher
    who = ThreadsPublisher(account, access_token=token, api_base=api_base,
                           user_id=threads_user, timeout=timeout).verify()
    return _save(store, vault, show_id=show_id, account=account, platform="threads",
                 instance=api_base, username=who, user_id=user_id, now=now,
                 values={"access_token": token, "origin": "web"})


# -- Bluesky: the handle and an app password, typed -------------------------------------------
def connect_bluesky(store: Store, vault: Vault | None, *, show_id: int | None, account: str,
                    handle: str, app_password: str, now: datetime, user_id: int | None = None,
                    service: str = BLUESKY_SERVICE, timeout: float = TIMEOUT) -> ConnectedAccount:
    """Verify the handle and app password with a createSession on `service` (the adapter's
    `verify`), then store the password encrypted; the verified handle is the account's. The
    main password is refused (by its form before anything is sent, else by the session's
    scope); a refused one: a CrierError, nothing stored."""
    vault = vault or Vault.from_env()
    handle, password = (handle or "").strip().lstrip("@"), (app_password or "").strip()
    if not handle or not password:
        raise CrierError(f"bluesky account '{account}': type the handle and an app password")
    main = (f"bluesky account '{account}': that is not an app password (they look like "
            f"xxxx-xxxx-xxxx-xxxx); never give crier the account's main password: create an "
            f"app password at {APP_PASSWORDS_URL}")
    if not APP_PASSWORD.fullmatch(password):
        raise CrierError(main)
    from bot.errors import AuthError
    from bot.platforms.bluesky import BlueskyPublisher
    pub = BlueskyPublisher(account, handle=handle, service=service, app_password=password,
                           timeout=timeout)
    try:
        who = pub.verify()
        if pub.login_scope() == MAIN_SCOPE:
            raise CrierError(main)
    except AuthError as e:
        pub.forget()
        raise CrierError(f"bluesky account '{account}': "
                         f"{e.detail.partition(' (check the handle')[0]}: check the handle "
                         f"'{handle}' and the app password; nothing was stored") from None
    except CrierError:
        pub.forget()
        raise
    return _save(store, vault, show_id=show_id, account=account, platform="bluesky",
                 instance=pub.service, username=who, values={"app_password": password},
                 user_id=user_id, now=now)


# -- the connected accounts --------------------------------------------------------------------
def _save(store: Store, vault: Vault, *, show_id: int | None, account: str, platform: str,
          instance: str | None, username: str, values: Mapping[str, str],
          user_id: int | None, now: datetime) -> ConnectedAccount:
    """Store a verified secret (replacing the account's earlier one, of the same show)."""
    sealed = vault.seal(values)
    with store.tx() as c:
        had = c.execute(sa.select(connected_accounts.c.show_id).where(
            connected_accounts.c.account == account)).first()
        if had is not None and None not in (had[0], show_id) and had[0] != show_id:
            raise CrierError(f"an account named '{account}' is already connected for another "
                             "show: disconnect it there first")
        created_by = c.execute(sa.select(users.c.name).where(users.c.id == user_id)
                               ).scalar() if user_id is not None else None
        c.execute(connected_accounts.delete().where(connected_accounts.c.account == account))
        row = {"show_id": show_id, "account": account, "platform": platform,
               "instance": instance, "username": username, "created_by": created_by,
               "created_at": now, "verified_at": now}
        c.execute(connected_accounts.insert().values(secret_enc=sealed, **row))
        _changed(c, account, show_id, now)
        # what waits, stopped on a refused or missing token, may go now
        due = [deliveries.c.account == account, deliveries.c.error_kind == "auth",
               deliveries.c.status == DeliveryStatus.PENDING.value]
        if show_id is not None:
            due.append(deliveries.c.show_id == show_id)
        c.execute(deliveries.update().where(*due).values(next_attempt_at=now, updated_at=now))
    log.info("%s account '%s' connected as %s", platform, account, username)
    return ConnectedAccount.from_row(row)


def _changed(c, account: str, show_id: int | None, now: datetime) -> None:
    """The show's registry row is touched, so a running worker (bot.fleet `refresh`) builds
    its Service again, with the new credentials."""
    if show_id is not None:
        c.execute(shows.update().where(shows.c.id == show_id).values(updated_at=now))


def disconnect(store: Store, account: str, show_id: int | None = None, *,
               now: datetime | None = None) -> bool:
    """Forget the account's connected secret (of that show, when given); False: none."""
    cond = [connected_accounts.c.account == account]
    if show_id is not None:
        cond.append(sa.or_(connected_accounts.c.show_id == show_id,
                           connected_accounts.c.show_id.is_(None)))
    with store.tx() as c:
        row = c.execute(sa.select(connected_accounts.c.show_id).where(*cond)).first()
        gone = row is not None and c.execute(
            connected_accounts.delete().where(*cond)).rowcount > 0
        if gone:
            _changed(c, account, row[0], now or datetime.now(UTC))
    if gone:
        log.info("account '%s' disconnected", account)
    return gone


def connected(store: Store, show_id: int | None = None) -> list[ConnectedAccount]:
    """The connected accounts (of one show, when given), without their secrets."""
    cols = [connected_accounts.c[f.name] for f in dataclasses.fields(ConnectedAccount)]
    q = sa.select(*cols).order_by(connected_accounts.c.account)
    if show_id is not None:
        q = q.where(connected_accounts.c.show_id == show_id)
    with store.tx() as c:
        return [ConnectedAccount.from_row(r) for r in c.execute(q).mappings()]


def accounts_view(settings: Settings, store: Store, *,
                  show_id: int | None = None) -> list[dict]:
    """What a "Connected accounts" page shows for a show: each configured account, where its
    credentials come from ("environment", "connected in the web app", "dry run", "missing",
    or why a connected one cannot be used) and its connection if any (never a secret).
    Nothing is decrypted: with no key, a connected account still shows as connected."""
    mine = {c.account: c for c in connected(store) if None in (show_id, c.show_id)
            or c.show_id == show_id}
    out = []
    for a in settings.accounts:
        c = mine.get(a.name)
        c = c if c is not None and c.platform == a.platform else None
        # a Service's settings say it themselves (bot.connect.with_connected); raw ones do not
        source = "dry run" if a.dry_run else a.credentials or (
            ENVIRONMENT if a.secrets else CONNECTED if c is not None else "missing")
        out.append({"account": a.name, "platform": a.platform,
                    "instance": a.instance if a.platform == "mastodon" else
                    a.service if a.platform == "bluesky" else a.api_base,
                    "credentials": source, "connected": c,
                    **({"handle": a.handle} if a.platform == "bluesky" else {})})
    return out


def open_vault(settings: Settings | None = None,
               env: Mapping[str, str] | None = None) -> Vault:
    """The vault keyed by CRIER_SECRET_KEY (the environment, else the config's `.env`)."""
    return Vault.from_env(env, dotenv=settings.path.parent / ".env" if settings else None)


def with_connected(settings: Settings, store: Store | None, *, show_id: int | None = None,
                   vault: Vault | None = None,
                   env: Mapping[str, str] | None = None) -> Settings:
    """`settings` with each account that has no credentials in the environment given the
    ones connected in the web app (a Mastodon token also brings its instance). An account
    whose connected secret cannot be read (no key, another key) keeps no credentials and
    says why in `credentials`."""
    lacking = {a.name: a for a in settings.accounts if a.missing_secrets and not a.dry_run}
    if not lacking or store is None:
        return settings
    q = sa.select(connected_accounts).where(connected_accounts.c.account.in_(list(lacking)))
    with store.tx() as c:
        rows = {r["account"]: r for r in c.execute(q).mappings()
                if r["platform"] == lacking[r["account"]].platform
                and (None in (show_id, r["show_id"]) or r["show_id"] == show_id)}
    if not rows:
        return settings
    problem = None
    if vault is None:
        try:
            vault = open_vault(settings, env)
        except VaultError as e:
            problem = str(e)
    accounts = []
    for a in settings.accounts:
        row = rows.get(a.name) if a.name in lacking else None
        if row is None:
            accounts.append(a)
            continue
        try:
            if problem:
                raise VaultError(problem)
            values = vault.unseal(row["secret_enc"], what=f"the secret connected for "
                                                          f"account '{a.name}'")
        except VaultError as e:
            log.error("%s account '%s': %s", a.platform, a.name, e)
            accounts.append(dataclasses.replace(a, credentials=f"{CONNECTED}, unusable: {e}"))
            continue
        extra = {"instance": row["instance"]} if a.platform == "mastodon" and row["instance"] \
            else {"handle": row["username"].lstrip("@")} if a.platform == "bluesky" \
            and row["username"] else {}
        accounts.append(dataclasses.replace(
            a, secrets={k: Secret(v) for k, v in values.items() if k not in NOT_SECRETS},
            missing_secrets=(),
            credentials=CONNECTED, **extra))
    return dataclasses.replace(settings, accounts=tuple(accounts))


# -- pieces ------------------------------------------------------------------------------------
def instance_url(instance: str, allow_private: Iterable[str] = ()) -> str:
    """A Mastodon instance's base URL from what the host typed ("mastodon.social" too):
    https only; http only for a loopback address that `allow_private` allows (tests)."""
    raw = (instance or "").strip().rstrip("/")
    parts = urlsplit(raw if "://" in raw else f"https://{raw}")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username \
            or parts.password or parts.path or parts.query or parts.fragment:
        raise CrierError(f"expected an instance's address like https://mastodon.social, "
                         f"got {instance!r}")
    if parts.scheme == "http" and not _allowed_loopback(parts.hostname, allow_private):
        raise CrierError(f"{instance}: the instance must be reached over https://")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _allowed_loopback(host: str, allow_private: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    from bot.netguard import AddressPolicy
    return ip.is_loopback and AddressPolicy.allowing(allow_private).allows(ip)


def _session(allow_private: Iterable[str], given=None):
    """The session to reach an instance the host named: a guarded one (public addresses,
    and those `allow_private` allows). A given session must be guarded too."""
    from bot.fetch import is_guarded, new_session
    if given is not None:
        if not is_guarded(given):
            raise ValueError("an instance named by a user is reached through a guarded "
                             "session: bot.fetch.new_session(guard=True)")
        return given
    return new_session(guard=True, allow_private=allow_private)


def _post(session, url: str, data: dict, base: str, doing: str, timeout: float) -> dict:
    """POST a form; the JSON answer, or one clear line (the instance's own words)."""
    import requests

    from bot.netguard import AddressRefused
    try:
        r = session.post(url, data=data, timeout=timeout, allow_redirects=False)
    except AddressRefused as e:
        raise CrierError(f"{base}: refused to connect: {e.reason} (an instance must be on a "
                         "public address)") from None
    except requests.RequestException as e:
        raise CrierError(f"could not reach {base} while {doing}: {type(e).__name__}") from None
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code != 200 or not isinstance(body, dict):
        said = ""
        if isinstance(body, dict) and body.get("error"):
            said = f": {body['error']}" + (f" ({body['error_description']})"
                                           if body.get("error_description") else "")
        raise CrierError(f"{base} refused {doing} (HTTP {r.status_code}{said})")
    return body


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
