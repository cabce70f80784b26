"""Who may use the control room: users (argon2-hashed passwords, a role, the shows they may
see), their API tokens (stored as a sha256, shown once), browser sessions (a random cookie,
stored hashed, with its CSRF token) and the login rate limit.

Roles: a `host` may do everything for their shows; a `cohost` may queue, edit, approve and
release, but not connect or remove accounts, remove posts or manage users (`User.may`).
A user with no shows given may see every show. The CLI (`crier users`, `crier tokens`) and the
web app (bot/web) call these functions; nothing here knows HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot import errors
from bot.store import Store, api_tokens, login_attempts, shows, user_shows, users, web_sessions

ROLES = ("host", "cohost")
# What a co-host may not do (everything else they may): the actions that change who speaks for
# the show or take back what it said.
HOST_ONLY = frozenset({"accounts", "remove_post", "users"})
SESSION_TTL = timedelta(days=14)
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_MAX_FAILURES = 5          # per user name and per client address, within LOGIN_WINDOW
TOKEN_PREFIX = "crier_"
_HASHER = None


def _hasher():
    global _HASHER
    if _HASHER is None:
        from argon2 import PasswordHasher
        _HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults
    return _HASHER


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    """A user as the web app and the CLI see them (never their password hash)."""
    id: int
    name: str
    role: str
    shows: frozenset[int] | None      # the show ids they may see; None: every show
    created_at: datetime | None = None

    def may(self, action: str) -> bool:
        """Whether their role allows `action` (HOST_ONLY names what a co-host may not do)."""
        return self.role == "host" or action not in HOST_ONLY

    def sees(self, show_id: int | None) -> bool:
        return self.shows is None or show_id in self.shows


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as listed (its secret is shown once, when made, never again)."""
    id: int
    user: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ch.isspace() for ch in name):
        raise errors.CrierError(f"user name {name!r}: 1-100 characters, no spaces")
    return name


def check_password(password: str) -> None:
    if len(password or "") < 10:
        raise errors.CrierError("the password must be at least 10 characters long")


def add_user(store: Store, name: str, password: str, *, role: str = "host",
             show_slugs: tuple[str, ...] | list[str] = (), now: datetime) -> User:
    """A new user; `show_slugs` empty: every show. Refuses a taken name or an unknown show."""
    name = _check_name(name)
    if role not in ROLES:
        raise errors.CrierError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    check_password(password)
    digest = _hasher().hash(password)
    with store.tx() as c:
        if c.execute(sa.select(users.c.id).where(users.c.name == name)).first():
            raise errors.CrierError(f"user {name!r} exists already (crier users list)")
        ids = _show_ids(c, show_slugs)
        uid = c.execute(users.insert().values(name=name, password_hash=digest, role=role,
                                              created_at=now).returning(users.c.id)).scalar_one()
        if ids:
            c.execute(user_shows.insert(), [{"user_id": uid, "show_id": s} for s in ids])
    return User(uid, name, role, frozenset(ids) if ids else None, now)


def _show_ids(c, slugs) -> list[int]:
    slugs = [s for s in slugs if s]
    if not slugs:
        return []
    found = dict(c.execute(sa.select(shows.c.slug, shows.c.id).where(
        shows.c.slug.in_(slugs), shows.c.removed_at.is_(None))).all())
    unknown = [s for s in slugs if s not in found]
    if unknown:
        raise errors.CrierError(f"no show {', '.join(map(repr, unknown))} (crier shows list)")
    return [found[s] for s in slugs]


def _user(c, row) -> User:
    ids = set(c.execute(sa.select(user_shows.c.show_id).where(
        user_shows.c.user_id == row.id)).scalars())
    return User(row.id, row.name, row.role, frozenset(ids) if ids else None, row.created_at)


def list_users(store: Store) -> list[User]:
    with store.tx() as c:
        return [_user(c, r) for r in c.execute(sa.select(users).order_by(users.c.name))]


def get_user(store: Store, name: str) -> User:
    with store.tx() as c:
        row = c.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            raise errors.CrierError(f"no user {name!r} (crier users list)")
        return _user(c, row)


def remove_user(store: Store, name: str) -> None:
    """The user, their tokens and sessions go."""
    with store.tx() as c:
        uid = c.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if uid is None:
            raise errors.CrierError(f"no user {name!r} (crier users list)")
        for t in (web_sessions, api_tokens, user_shows):
            c.execute(t.delete().where(t.c.user_id == uid))
        c.execute(users.delete().where(users.c.id == uid))


def set_password(store: Store, name: str, password: str) -> None:
    check_password(password)
    digest = _hasher().hash(password)
    with store.tx() as c:
        uid = c.execute(sa.select(users.c.id).where(users.c.name == name)).scalar()
        if uid is None:
            raise errors.CrierError(f"no user {name!r} (crier users list)")
        c.execute(users.update().where(users.c.id == uid).values(password_hash=digest))
        c.execute(web_sessions.delete().where(web_sessions.c.user_id == uid))


# -- logging in --------------------------------------------------------------------------------
class LoginRefused(errors.CrierError):
    """Wrong name or password, or too many failures lately (`retry_after` seconds)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def authenticate(store: Store, name: str, password: str, *, client: str | None,
                 now: datetime) -> User:
    """The user whose name and password these are, or LoginRefused. After LOGIN_MAX_FAILURES
    failures within LOGIN_WINDOW for the name or for the client address, every attempt is
    refused (right or wrong) until the window has moved on; a success clears the name's."""
    keys = [f"user:{(name or '').strip().lower()[:100]}"] + ([f"addr:{client}"] if client else [])
    since = now - LOGIN_WINDOW
    with store.tx() as c:
        c.execute(login_attempts.delete().where(login_attempts.c.at < since))
        for key in keys:
            times = list(c.execute(sa.select(login_attempts.c.at).where(
                login_attempts.c.key == key, login_attempts.c.at >= since).order_by(
                login_attempts.c.at)).scalars())
            if len(times) >= LOGIN_MAX_FAILURES:
                wait = times[-LOGIN_MAX_FAILURES] + LOGIN_WINDOW - now
                raise LoginRefused("too many failed logins; try again later",
                                   retry_after=max(1, int(wait.total_seconds()) + 1))
        row = c.execute(sa.select(users).where(users.c.name == (name or "").strip())).first()
    ok = False
    if row is not None:
        from argon2.exceptions import InvalidHashError, VerificationError
        try:
            ok = _hasher().verify(row.password_hash, password or "")
        except (VerificationError, InvalidHashError):
            ok = False
    else:  # the same work for an unknown name: no timing tells names apart
        _hasher().hash(password or "")
    if not ok:
        with store.tx() as c:
            c.execute(login_attempts.insert(), [{"key": k, "at": now} for k in keys])
        raise LoginRefused("wrong user name or password")
    with store.tx() as c:
        c.execute(login_attempts.delete().where(login_attempts.c.key == keys[0]))
        if _hasher().check_needs_rehash(row.password_hash):
            c.execute(users.update().where(users.c.id == row.id).values(
                password_hash=_hasher().hash(password)))
        return _user(c, row)


# -- browser sessions -------------------------------------------------------------------------
def new_session(store: Store, user: User, *, now: datetime) -> tuple[str, str]:
    """A session for `user`: (the cookie's value, its CSRF token). Only the cookie's sha256
    is stored."""
    sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with store.tx() as c:
        c.execute(web_sessions.delete().where(web_sessions.c.expires_at < now))
        c.execute(web_sessions.insert().values(id_hash=_sha256(sid), user_id=user.id,
                                               csrf=csrf, created_at=now,
                                               expires_at=now + SESSION_TTL))
    return sid, csrf


def session_user(store: Store, sid: str | None, *, now: datetime) -> tuple[User, str] | None:
    """The user and CSRF token of a live session cookie, or None."""
    if not sid or len(sid) > 200:
        return None
    with store.tx() as c:
        row = c.execute(sa.select(web_sessions.c.csrf, users).join(
            users, users.c.id == web_sessions.c.user_id).where(
            web_sessions.c.id_hash == _sha256(sid), web_sessions.c.expires_at > now)).first()
        return (_user(c, row), row.csrf) if row is not None else None


def end_session(store: Store, sid: str | None) -> None:
    if sid:
        with store.tx() as c:
            c.execute(web_sessions.delete().where(web_sessions.c.id_hash == _sha256(sid)))


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (False when either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


# -- API tokens -------------------------------------------------------------------------------
def create_token(store: Store, user_name: str, *, label: str | None = None,
                 now: datetime) -> tuple[int, str]:
    """A new token acting as `user_name`: (its id, the token: shown once, stored hashed)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.tx() as c:
        uid = c.execute(sa.select(users.c.id).where(users.c.name == user_name)).scalar()
        if uid is None:
            raise errors.CrierError(f"no user {user_name!r} (crier users list)")
        tid = c.execute(api_tokens.insert().values(
            user_id=uid, label=label, token_hash=_sha256(token), created_at=now).returning(
            api_tokens.c.id)).scalar_one()
    return tid, token


def list_tokens(store: Store) -> list[Token]:
    with store.tx() as c:
        rows = c.execute(sa.select(api_tokens, users.c.name).join(
            users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id))
        return [Token(r.id, r.name, r.label, r.created_at, r.last_used_at, r.revoked_at)
                for r in rows]


def revoke_token(store: Store, token_id: int, *, now: datetime) -> None:
    with store.tx() as c:
        n = c.execute(api_tokens.update().where(api_tokens.c.id == token_id,
                                                api_tokens.c.revoked_at.is_(None)).values(
            revoked_at=now)).rowcount
        if not n:
            raise errors.CrierError(f"no live token {token_id} (crier tokens list)")


def token_user(store: Store, token: str | None, *, now: datetime) -> User | None:
    """The user a live API token acts as, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with store.tx() as c:
        row = c.execute(sa.select(api_tokens.c.id.label("token_id"), users).join(
            users, users.c.id == api_tokens.c.user_id).where(
            api_tokens.c.token_hash == _sha256(token),
            api_tokens.c.revoked_at.is_(None))).first()
        if row is None:
            return None
        c.execute(api_tokens.update().where(api_tokens.c.id == row.token_id).values(
            last_used_at=now))
        return _user(c, row)
