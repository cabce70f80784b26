"""Bluesky sessions: one logged-in `atproto` SDK client per account and process.

Part of the Bluesky adapter (`bot.platforms.bluesky` posts through it). createSession once
per process per (service, handle, app password), shared by every publisher built for it
(publishers are rebuilt on worker ticks; the server allows 30 createSession calls per 5
minutes and 300 a day). The access token is renewed with refreshSession a few minutes before
its `exp`, or when the server refuses it (`renew`); a new session is created only when the
refresh token is refused or expired. The profile is never fetched (a bare PDS has no AppView)
and the client stays on the configured service (the SDK would move to the PDS its DID
document names). Nothing here logs the password or a token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from typing import Any

log = logging.getLogger("bot.platforms.bluesky")

RENEW_EARLY = 300.0                  # seconds before the access token's exp it is refreshed


class _Session:
    """One logged-in SDK client, shared by every publisher of one account in this process."""

    def __init__(self, service: str, handle: str, password: str, timeout: float):
        self.service, self.handle, self.timeout = service, handle, timeout
        self._password = password
        self.lock = threading.RLock()
        self.client: Any = None
        self.created = self.refreshed = 0   # createSession / refreshSession calls made

    def ready(self) -> Any:
        """The SDK client with a session: createSession on first use, refreshSession when
        the access token expires within RENEW_EARLY (by its own `exp`)."""
        with self.lock:
            if self.client is None:
                self.client = _pinned_client_class()(self.service, timeout=self.timeout)
            if self.client._session is None:
                self._create()
            elif _expires(self.client._session.access_jwt) < time.time() + RENEW_EARLY:
                self.renew(self.token())
            return self.client

    def token(self) -> str | None:
        s = self.client._session if self.client is not None else None
        return s.access_jwt if s else None

    def renew(self, stale: str | None) -> None:
        """After the server refused the access token `stale`: refreshSession (once, however
        many threads saw it refused); createSession only if the refresh token is refused."""
        from atproto_client.client.session import SessionEvent
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        with self.lock:
            if self.client is None or self.token() != stale:
                return      # another caller renewed it already
            if _expires(self.client._session.refresh_jwt) < time.time():
                log.info("bluesky %s: the refresh token expired; logging in again", self.handle)
                self._create()
                return
            try:
                response = self.client.com.atproto.server.refresh_session(
                    headers=self.client._get_refresh_auth_headers(), ignore_session_check=True)
                self.refreshed += 1
                self.client._set_session(SessionEvent.REFRESH, response)
                log.info("bluesky %s: session refreshed", self.handle)
            except (BadRequestError, UnauthorizedError) as e:
                if xrpc_error(e) not in ("ExpiredToken", "InvalidToken", "AuthMissing"):
                    raise
                log.info("bluesky %s: refresh token refused (%s); logging in again",
                         self.handle, xrpc_error(e))
                self._create()

    def _create(self) -> None:
        from atproto_client import models
        from atproto_client.client.session import SessionEvent

        response = self.client.com.atproto.server.create_session(
            models.ComAtprotoServerCreateSession.Data(identifier=self.handle,
                                                      password=self._password),
            ignore_session_check=True)
        self.created += 1
        self.client._set_session(SessionEvent.CREATE, response)
        log.info("bluesky %s: logged in to %s", self.handle, self.service)

    def scope(self) -> str | None:
        """The access token's `scope` claim: "com.atproto.appPass" (or
        "com.atproto.appPassPrivileged") for an app password, "com.atproto.access" for the
        account's main password; None before a login."""
        token = self.token() if self.client is not None else None
        claims = _claims(token) if token else {}
        return claims.get("scope") if isinstance(claims.get("scope"), str) else None

    def secrets(self) -> list[str]:
        out = [self._password]
        s = self.client._session if self.client is not None else None
        return out + ([s.access_jwt, s.refresh_jwt] if s else [])


_SESSIONS: dict[tuple[str, str, str], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def shared_session(service: str, handle: str, app_password: str, timeout: float) -> _Session:
    """This process's session for the account (one per service, handle and password)."""
    digest = hashlib.sha256(app_password.encode()).hexdigest()
    key = (service.rstrip("/"), handle.lstrip("@").lower(), digest)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = _Session(key[0], key[1], app_password, timeout)
        return _SESSIONS[key]


def drop_session(service: str, handle: str, app_password: str) -> None:
    """Forget this process's session for the account (a password refused for crier's use)."""
    digest = hashlib.sha256(app_password.encode()).hexdigest()
    with _SESSIONS_LOCK:
        _SESSIONS.pop((service.rstrip("/"), handle.lstrip("@").lower(), digest), None)


_client_class: type | None = None


def _pinned_client_class() -> type:
    """The SDK's Client, kept on the configured service (it would move to the PDS named in
    the account's DID document) and given a request timeout. Built on first use."""
    global _client_class
    if _client_class is None:
        import httpx
        from atproto_client import Client
        from atproto_client.request import Request

        class PinnedClient(Client):
            def __init__(self, service: str, *, timeout: float):
                super().__init__(service, request=Request(timeout=httpx.Timeout(timeout)))
                self._pinned = service

            def _should_refresh_session(self) -> bool:
                return False     # _Session renews it, under its lock, counted

            def _set_session(self, event: Any, session: Any) -> None:
                self._set_or_update_session(session, self._pinned)
                self._call_on_session_change_callbacks(event)

        _client_class = PinnedClient
    return _client_class


def _claims(token: str) -> dict:
    """A JWT's claims as it says them (unverified: the server checks them); {} if unreadable."""
    try:
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _expires(token: str) -> float:
    """A JWT's `exp` (epoch seconds) as it says; 0 when it cannot be read."""
    try:
        return float(_claims(token)["exp"])
    except (KeyError, ValueError, TypeError):
        return 0.0


def xrpc_error(exc: BaseException) -> str | None:
    """The XRPC error name of a failed call ("ExpiredToken", "InvalidRequest"...)."""
    content = getattr(getattr(exc, "response", None), "content", None)
    return getattr(content, "error", None)
