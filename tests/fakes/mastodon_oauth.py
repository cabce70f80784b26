"""The OAuth half of the local Mastodon (tests/fakes/mastodon_server.py): app registration and
the authorization-code flow with PKCE, as https://docs.joinmastodon.org/methods/apps/ and
https://docs.joinmastodon.org/methods/oauth/ document them (shapes from the Mastodon OpenAPI
schema in shared/testdata/specs).

- `POST /api/v1/apps` (client_name, redirect_uris, scopes, website) → a CredentialApplication
  (id, name, scopes, redirect_uri, redirect_uris, client_id, client_secret, ...); 422
  "Validation failed: ..." for a blank name, a redirect URI that is not absolute or an
  unknown scope.
- `GET /oauth/authorize` (response_type=code, client_id, redirect_uri, scope, state,
  code_challenge, code_challenge_method=S256): the server's one user approves at once (set
  `decision = "deny"` to refuse) and the answer is Mastodon's 302 to
  `redirect_uri?code=...&state=...` (or `?error=access_denied&...`); an unknown client or
  redirect URI is answered here (400/401), never redirected, as Doorkeeper does.
- `POST /oauth/token` (grant_type=authorization_code, code, client_id, client_secret or HTTP
  Basic, redirect_uri, code_verifier) → a Token (access_token, token_type "Bearer", scope,
  created_at). A code works once and for 10 minutes; PKCE S256 is checked. Errors are
  Doorkeeper's: 401 invalid_client, 400 invalid_grant / unsupported_grant_type /
  invalid_request, each with its error_description.

Tokens issued here are accepted by the API with their scopes: a call outside them is 403
"This action is outside the authorized scopes", like Mastodon.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

OOB = "urn:ietf:wg:oauth:2.0:oob"
CODE_TTL = timedelta(minutes=10)          # Doorkeeper's authorization_code_expires_in
SCOPES = {"read", "write", "follow", "push", "profile",
          *(f"read:{s}" for s in ("accounts", "blocks", "bookmarks", "favourites", "filters",
                                  "follows", "lists", "mutes", "notifications", "search",
                                  "statuses")),
          *(f"write:{s}" for s in ("accounts", "blocks", "bookmarks", "conversations",
                                   "favourites", "filters", "follows", "lists", "media",
                                   "mutes", "notifications", "reports", "statuses"))}
# The parent scopes that grant a child (the deprecated `follow` grants blocks, mutes, follows).
PARENTS = {"read:blocks": ("read", "follow"), "read:mutes": ("read", "follow"),
           "read:follows": ("read", "follow"), "write:blocks": ("write", "follow"),
           "write:mutes": ("write", "follow"), "write:follows": ("write", "follow")}
INVALID_CLIENT = ("Client authentication failed due to unknown client, no client "
                  "authentication included, or unsupported authentication method.")
INVALID_GRANT = ("The provided authorization grant is invalid, expired, revoked, does not "
                 "match the redirection URI used in the authorization request, or was issued "
                 "to another client.")
OUTSIDE_SCOPES = "This action is outside the authorized scopes"
VAPID_KEY = ("BCk-QqERU0q-CfYZjcuB6lnyyOYfJ2AifKqfeGIm7Z-HiTU5T9eTG5GxVA0_OH5mMlI4UkkDTpaZw"
             "ozy0TzdZ2M=")


def required_scope(method: str, parts: list[str]) -> str | None:
    """The scope an API call needs (https://docs.joinmastodon.org/methods/), None: any."""
    match (method, parts):
        case ("GET", ["api", "v1", "accounts", "verify_credentials"]):
            return "read:accounts"
        case ("GET", ["api", "v1", "accounts", _, "statuses"]) | \
             ("GET", ["api", "v1", "statuses", _]) | ("GET", ["api", "v1", "timelines", *_]):
            return "read:statuses"
        case ("POST" | "DELETE", ["api", "v1", "statuses", *_]):
            return "write:statuses"
        case (_, ["api", _, "media", *_]):
            return "write:media"
        case ("GET", ["api", "v2", "search"]):
            return "read:search"
        case ("GET", ["api", "v1", "notifications", *_]):
            return "read:notifications"
        case ("GET", ["api", "v1", ("blocks" | "mutes") as which]):
            return f"read:{which}"
    return None


def granted(scopes: set[str], wanted: str) -> bool:
    top = wanted.split(":")[0]
    return wanted in scopes or top in scopes or any(p in scopes for p in PARENTS.get(wanted, ()))


class OAuthProvider:
    """Apps, codes and tokens of one local Mastodon. `handle` answers the OAuth requests
    (None: not one of them) as (status, body, headers)."""

    def __init__(self, clock):
        self.clock = clock
        self.apps: dict[str, dict] = {}       # client_id → the app
        self.codes: dict[str, dict] = {}      # code → what it was issued for
        self.tokens: dict[str, dict] = {}     # access token → {"scopes", "client_id"}
        self.decision = "approve"             # what the user answers at /oauth/authorize
        self._lock = threading.Lock()
        self._ids = iter(range(563419, 10**9))

    def handle(self, method: str, path: str, query: dict, form: dict,
               headers) -> tuple[int, Any, dict] | None:
        if method == "POST" and path == "/api/v1/apps":
            return self._create_app(form)
        if method == "GET" and path == "/oauth/authorize":
            return self._authorize({k: v[0] for k, v in query.items() if v})
        if method == "POST" and path == "/oauth/token":
            return self._token({k: _one(v) for k, v in form.items()}, headers)
        return None

    def token_scopes(self, token: str) -> set[str] | None:
        entry = self.tokens.get(token)
        return None if entry is None else set(entry["scopes"])

    # -- POST /api/v1/apps -----------------------------------------------------------------
    def _create_app(self, form: dict) -> tuple[int, Any, dict]:
        name = str(_one(form.get("client_name")) or "").strip()
        uris = [u for v in _list(form, "redirect_uris") for u in str(v).split()]
        scopes = str(_one(form.get("scopes")) or "read").split()
        if not name:
            return _invalid("Validation failed: Application name can't be blank")
        if not uris:
            return _invalid("Validation failed: Redirect URI can't be blank")
        for uri in uris:
            parts = urlsplit(uri)
            if uri != OOB and (not parts.scheme or not parts.netloc or parts.fragment):
                return _invalid("Validation failed: Redirect URI must be an absolute URI.")
        if not set(scopes) <= SCOPES:
            return _invalid("Validation failed: Scopes must be a valid scope")
        client_id, secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        app = {"id": str(next(self._ids)), "name": name,
               "website": _one(form.get("website")) or None, "scopes": scopes,
               "redirect_uri": "\n".join(uris), "redirect_uris": uris,
               "client_id": client_id, "client_secret": secret,
               "client_secret_expires_at": 0, "vapid_key": VAPID_KEY}
        with self._lock:
            self.apps[client_id] = app
        return 200, app, {}

    # -- GET /oauth/authorize --------------------------------------------------------------
    def _authorize(self, q: dict[str, str]) -> tuple[int, Any, dict]:
        app = self.apps.get(q.get("client_id", ""))
        if app is None:
            return 401, {"error": "invalid_client", "error_description": INVALID_CLIENT}, {}
        redirect = q.get("redirect_uri", "")
        if redirect not in app["redirect_uris"]:
            return 400, {"error": "invalid_redirect_uri", "error_description":
                         "The requested redirect uri is malformed or doesn't match client "
                         "redirect URI."}, {}
        state = q.get("state")

        def back(**params: str) -> tuple[int, Any, dict]:
            if state is not None:
                params["state"] = state
            sep = "&" if "?" in redirect else "?"
            return 302, "", {"Location": f"{redirect}{sep}{urlencode(params)}"}

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description=(
                "The authorization server does not support this response type."))
        scopes = (q.get("scope") or "read").replace("+", " ").split()
        if not set(scopes) <= set(app["scopes"]):
            return back(error="invalid_scope", error_description=(
                "The requested scope is invalid, unknown, or malformed."))
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
        if challenge and method != "S256":
            return back(error="invalid_request", error_description=(
                "The request is missing a required parameter, includes an unsupported "
                "parameter value, or is otherwise malformed. Code challenge method must be "
                "S256."))
        if self.decision != "approve":
            return back(error="access_denied", error_description=(
                "The resource owner or authorization server denied the request."))
        code = secrets.token_urlsafe(32)
        with self._lock:
            self.codes[code] = {"client_id": app["client_id"], "redirect_uri": redirect,
                                "scopes": scopes, "challenge": challenge,
                                "at": self.clock(), "used": False}
        return back(code=code)

    # -- POST /oauth/token -----------------------------------------------------------------
    def _token(self, form: dict[str, Any], headers) -> tuple[int, Any, dict]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        app = self.apps.get(str(client_id or ""))
        if app is None or not secrets.compare_digest(str(secret or ""), app["client_secret"]):
            return 401, {"error": "invalid_client", "error_description": INVALID_CLIENT}, {}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type", "error_description":
                         "The authorization grant type is not supported by the authorization "
                         "server."}, {}
        with self._lock:
            issued = self.codes.get(str(form.get("code") or ""))
            fresh = issued is not None and not issued["used"] \
                and self.clock() - issued["at"] <= CODE_TTL
            if issued is not None:
                issued["used"] = True       # one try, right or wrong
        if not fresh or issued["client_id"] != app["client_id"] \
                or form.get("redirect_uri") != issued["redirect_uri"]:
            return _grant()
        if issued["challenge"]:
            verifier = str(form.get("code_verifier") or "")
            if not verifier or _s256(verifier) != issued["challenge"]:
                return _grant()
        token = secrets.token_urlsafe(32)
        now: datetime = self.clock()
        with self._lock:
            self.tokens[token] = {"scopes": issued["scopes"], "client_id": app["client_id"]}
        return 200, {"access_token": token, "token_type": "Bearer",
                     "scope": " ".join(issued["scopes"]),
                     "created_at": int(now.timestamp())}, {}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _grant() -> tuple[int, Any, dict]:
    return 400, {"error": "invalid_grant", "error_description": INVALID_GRANT}, {}


def _invalid(message: str) -> tuple[int, Any, dict]:
    return 422, {"error": message}, {}


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _list(form: dict, name: str) -> list:
    value = form.get(name + "[]", form.get(name)) or []
    return value if isinstance(value, list) else [value]
