"""The local Mastodon's app registration and OAuth endpoints (tests/fakes/mastodon_oauth.py)
answer as Mastodon documents them (docs.joinmastodon.org/methods/apps, /methods/oauth), so
crier's connect flow is tested against the same refusals a real instance gives."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from mastodon import Mastodon

from tests.fakes.mastodon_server import MastodonServer

BACK = "https://crier.example/callback"
VERIFIER = "v" * 50


@pytest.fixture
def srv():
    with MastodonServer(token="static-token") as s:
        yield s


def register(srv, **form) -> dict:
    data = {"client_name": "crier", "redirect_uris": BACK,
            "scopes": "write:statuses read:accounts", **form}
    return requests.post(f"{srv.url}/api/v1/apps", data=data, timeout=5).json()


def authorize(srv, app, **q) -> requests.Response:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    params = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": BACK,
              "scope": "write:statuses read:accounts", "state": "st",
              "code_challenge": challenge.rstrip(b"=").decode(),
              "code_challenge_method": "S256", **q}
    return requests.get(f"{srv.url}/oauth/authorize", params=params, allow_redirects=False,
                        timeout=5)


def code_of(r: requests.Response) -> str:
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["Location"]).query)
    assert q["state"] == ["st"]
    return q["code"][0]


def exchange(srv, app, issued_code, **form) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": issued_code, "client_id": app["client_id"],
            "client_secret": app["client_secret"], "redirect_uri": BACK,
            "code_verifier": VERIFIER, **form}
    return requests.post(f"{srv.url}/oauth/token", data=data, timeout=5)


def test_the_whole_flow_and_the_token_posts(srv):
    app = register(srv)
    assert app["name"] == "crier" and app["redirect_uris"] == [BACK]
    assert app["scopes"] == ["write:statuses", "read:accounts"]
    assert app["client_id"] and app["client_secret"] and app["id"]
    r = exchange(srv, app, code_of(authorize(srv, app)))
    token = r.json()
    assert r.status_code == 200 and token["token_type"] == "Bearer"
    assert token["scope"] == "write:statuses read:accounts"
    assert isinstance(token["created_at"], int)
    api = Mastodon(access_token=token["access_token"], api_base_url=srv.url,
                   version_check_mode="none")
    assert api.status_post("hello")["content"] == "<p>hello</p>"
    assert api.account_verify_credentials()["username"] == "crier"
    with pytest.raises(Exception, match="403"):      # read:notifications was not granted
        api.notifications()


@pytest.mark.parametrize("form, message", [
    ({"client_name": ""}, "Application name can't be blank"),
    ({"redirect_uris": ""}, "Redirect URI can't be blank"),
    ({"redirect_uris": "not a uri"}, "Redirect URI must be an absolute URI"),
    ({"scopes": "write:everything"}, "Scopes must be a valid scope"),
])
def test_app_registration_is_validated(srv, form, message):
    data = {"client_name": "crier", "redirect_uris": BACK, "scopes": "read", **form}
    r = requests.post(f"{srv.url}/api/v1/apps", data=data, timeout=5)
    assert r.status_code == 422 and message in r.json()["error"]


def test_authorize_refusals(srv):
    app = register(srv)
    r = authorize(srv, {"client_id": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = authorize(srv, app, redirect_uri="https://elsewhere.example/cb")
    assert r.status_code == 400 and r.json()["error"] == "invalid_redirect_uri"
    for q, error in (({"scope": "write:statuses read:notifications"}, "invalid_scope"),
                     ({"response_type": "token"}, "unsupported_response_type"),
                     ({"code_challenge_method": "plain"}, "invalid_request")):
        r = authorize(srv, app, **q)
        back = parse_qs(urlsplit(r.headers["Location"]).query)
        assert r.status_code == 302 and back["error"] == [error] and back["state"] == ["st"]
    srv.oauth.decision = "deny"
    back = parse_qs(urlsplit(authorize(srv, app).headers["Location"]).query)
    assert back["error"] == ["access_denied"] and "code" not in back


def test_token_refusals(srv):
    app = register(srv)
    r = exchange(srv, app, code_of(authorize(srv, app)), client_secret="wrong")
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.json()["error_description"].startswith("Client authentication failed")
    r = exchange(srv, app, code_of(authorize(srv, app)), grant_type="password")
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    for form in ({"redirect_uri": "https://elsewhere.example/cb"}, {"code_verifier": "x" * 50},
                 {"code_verifier": ""}, {"code": "made-up"}):
        r = exchange(srv, app, code_of(authorize(srv, app)), **form)
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant", form
    code = code_of(authorize(srv, app))
    assert exchange(srv, app, code).status_code == 200
    assert exchange(srv, app, code).json()["error"] == "invalid_grant"   # once
    assert len(srv.oauth.tokens) == 1
    # HTTP Basic client authentication works too
    basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    r = requests.post(f"{srv.url}/oauth/token", headers={"Authorization": f"Basic {basic}"},
                      data={"grant_type": "authorization_code",
                            "code": code_of(authorize(srv, app)), "redirect_uri": BACK,
                            "code_verifier": VERIFIER}, timeout=5)
    assert r.status_code == 200 and r.json()["access_token"]


def test_an_old_code_has_expired(srv):
    from datetime import timedelta
    app = register(srv)
    code = code_of(authorize(srv, app))
    now = srv.clock()
    srv.clock = lambda: now + timedelta(minutes=11)
    assert exchange(srv, app, code).json()["error"] == "invalid_grant"
