"""Who may call the JSON API, over real HTTP on SQLite and PostgreSQL: 401 without a token or
with a wrong one, 403 for a session without its CSRF token and for a co-host on a host-only
action, 404 for every route of a show the user may not see (and for another show's episode,
delivery, queued post or community post named under a show they may see); the OpenAPI
document lists every path with real schemas; no answer ever holds a secret; share URLs follow
the root path."""

from __future__ import annotations

import pytest

from tests import webapi_world
from tests.webapi_world import FEED_TOKEN, M_TOKEN, NOTIFY_TOKEN
from tests.webapp import WebApp

api = webapi_world.api  # the shared world (a fixture), per module and database

# Every show-scoped route: (method, path template, JSON body). {e} an episode, {h} a held
# episode, {d} a delivery, {p} a queued post, {c} a community post (all of show alpha).
SHOW_ROUTES = [
    ("GET", "/api/v1/shows/{s}", None),
    ("GET", "/api/v1/shows/{s}/accounts", None),
    ("GET", "/api/v1/shows/{s}/episodes", None),
    ("GET", "/api/v1/shows/{s}/episodes/{e}", None),
    ("POST", "/api/v1/shows/{s}/episodes/{h}/release", None),
    ("POST", "/api/v1/shows/{s}/episodes/{h}/dismiss", None),
    ("GET", "/api/v1/shows/{s}/queue", None),
    ("POST", "/api/v1/shows/{s}/queue", {"text": "hi", "in": "1h"}),
    ("GET", "/api/v1/shows/{s}/queue/{p}", None),
    ("PATCH", "/api/v1/shows/{s}/queue/{p}", {"text": "changed"}),
    ("POST", "/api/v1/shows/{s}/queue/{p}/pause", None),
    ("POST", "/api/v1/shows/{s}/queue/{p}/resume", None),
    ("POST", "/api/v1/shows/{s}/queue/{p}/cancel", None),
    ("POST", "/api/v1/shows/{s}/preview", {"text": "hi"}),
    ("GET", "/api/v1/shows/{s}/deliveries", None),
    ("POST", "/api/v1/shows/{s}/deliveries/{d}/retry", None),
    ("GET", "/api/v1/shows/{s}/community", None),
    ("POST", "/api/v1/shows/{s}/community/{c}/approve", None),
    ("POST", "/api/v1/shows/{s}/community/{c}/reject", None),
]
ALL_ROUTES = [("GET", "/api/v1/me", None), ("GET", "/api/v1/shows", None), *SHOW_ROUTES]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ALL_ROUTES]


@pytest.fixture(scope="module")
def promo(api):
    """A queued post of show alpha (for the routes that name one)."""
    r = api.client("hana").post("/api/v1/shows/alpha/queue",
                                json={"text": "Queued for the auth tests", "at": "2032-01-01 9:00"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _path(api, promo, template: str, slug: str = "alpha") -> str:
    ids = api.ids
    return template.format(s=slug, e=ids["announced"], h=ids["held_kept"], d=ids["failed"],
                           p=promo, c=ids["approve"])


def _call(client, method, path, body):
    return client.request(method, path, json=body) if body is not None else \
        client.request(method, path)


@pytest.mark.parametrize("method, template, body", ALL_ROUTES, ids=ROUTE_IDS)
def test_no_token_and_a_wrong_token_are_401(api, promo, method, template, body):
    path = _path(api, promo, template)
    r = _call(api.client(None), method, path, body)
    assert r.status_code == 401 and r.json()["detail"], r.text
    for token in ("crier_not-a-real-token", api.tokens["hana"] + "x", "garbage"):
        r = _call(api.client(None, token=token), method, path, body)
        assert r.status_code == 401, (token, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method, template, body", SHOW_ROUTES, ids=ROUTE_IDS[2:])
def test_a_show_the_user_may_not_see_is_404(api, promo, method, template, body):
    bert = api.client("bert")                       # host of beta only
    r = _call(bert, method, _path(api, promo, template), body)
    assert r.status_code == 404 and r.json()["detail"] == "no show 'alpha'", r.text
    r = _call(api.client("hana"), method, _path(api, promo, template, "nope"), body)
    assert r.status_code == 404 and r.json()["detail"] == "no show 'nope'", r.text


@pytest.mark.parametrize("method, template, body", [
    r for r in SHOW_ROUTES if any(k in r[1] for k in ("{e}", "{h}", "{d}", "{p}", "{c}"))],
    ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_another_shows_things_are_404_under_a_show_the_user_sees(api, promo, method, template,
                                                                 body):
    """beta is hana's too: alpha's episode, delivery, queued post or community post named
    under beta is not found (and nothing about it is done)."""
    r = _call(api.client("hana"), method, _path(api, promo, template, "beta"), body)
    assert r.status_code == 404, r.text
    assert r.json()["detail"].endswith("in show beta"), r.text


def test_a_cohost_may_not_dismiss_and_the_host_may(api, promo):
    held = api.ids["held_kept"]
    r = api.client("cole").post(f"/api/v1/shows/alpha/episodes/{held}/dismiss")
    assert r.status_code == 403 and "cohost may not" in r.json()["detail"]
    with api.service("alpha") as svc:                 # nothing happened
        assert held in [e.id for e in svc.store.episodes_with_status("held")]


def test_a_session_needs_its_csrf_token_on_every_change(api, promo):
    c, csrf = api.login("cole")
    assert c.get("/api/v1/shows/alpha/queue").status_code == 200   # reading needs none
    for method, template, body in SHOW_ROUTES:
        if method == "GET":
            continue
        r = _call(c, method, _path(api, promo, template), body)
        assert r.status_code == 403 and "CSRF" in r.json()["detail"], (template, r.text)
        r = c.request(method, _path(api, promo, template), json=body,
                      headers={"X-CSRF-Token": "wrong" + csrf})
        assert r.status_code == 403, template
    r = c.post("/api/v1/shows/alpha/preview", json={"text": "with the token"},
               headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["previews"][0]["text"] == "with the token"
    r = c.post(f"/api/v1/shows/alpha/queue/{promo}/pause", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    r = c.post(f"/api/v1/shows/alpha/queue/{promo}/resume", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "active"


def test_the_openapi_document_lists_every_path_with_real_schemas(api):
    doc = api.client(None).get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    for method, template, _ in ALL_ROUTES:
        path = template.format(s="{slug}", e="{episode_id}", h="{episode_id}",
                               d="{delivery_id}", p="{promo_id}", c="{post_id}")
        assert path in paths, path
        assert method.lower() in paths[path], (method, path)
    schemas = doc["components"]["schemas"]
    add = schemas["QueueAdd"]["properties"]
    assert {"text", "at", "in", "every", "until", "accounts", "episode", "image", "alt",
            "evergreen", "fit", "pick", "cooldown", "dry"} <= set(add)
    assert {"length", "limit", "fits", "hashtags", "trimmed"} <= set(
        schemas["PreviewOut"]["properties"])
    post = paths["/api/v1/shows/{slug}/queue"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/QueueAdd")
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TooLong")
    assert "201" in post["responses"]
    listed = paths["/api/v1/shows/{slug}/deliveries"]["get"]
    assert any(p["name"] == "status" for p in listed["parameters"])


def test_no_answer_ever_holds_a_secret(api, promo):
    """The account's token (from CRIER_M_ALPHA_ACCESS_TOKEN), the notify URL's token and a
    private feed's token (quoted by its fetch error) never appear in any answer: a sweep of
    every GET, then every answer of this module."""
    c = api.client("hana")
    for method, template, _ in ALL_ROUTES:
        if method == "GET":
            c.get(_path(api, promo, template))
    c.get("/api/v1/shows/alpha/deliveries", params={"status": "failed"})
    c.get("/api/v1/openapi.json")
    gamma = c.get("/api/v1/shows/gamma").json()["feeds"][0]
    assert gamma["url"] == "http://127.0.0.1:9/private.xml?token=***"
    assert "***" in gamma["last_error"]
    assert "***" in next(s for s in c.get("/api/v1/shows").json()
                         if s["slug"] == "gamma")["last_error"]
    assert len(api.answers) > 10
    for text in api.answers:
        assert M_TOKEN not in text and NOTIFY_TOKEN not in text and FEED_TOKEN not in text


def test_share_urls_follow_the_root_path(db_url, tmp_path, monkeypatch):
    from tests.test_web_auth import _config
    monkeypatch.setenv("DATABASE_URL", db_url)
    with WebApp(db_url, _config(tmp_path, shows=("solo",)), root_path="/crier") as web:
        host = web.add_user("host")
        with web.app.state.crier.service("solo", host) as svc:
            svc.poll(force=True)
        c = web.client(web.token("host"))
        [e, *_] = c.get("/api/v1/shows/solo/episodes").json()
        assert e["share_url"] == f"{web.url}/crier/share/solo/{e['id']}"
        r = c.get("/api/v1/shows/solo/episodes", headers={"Host": "crier.example.org"})
        assert r.json()[0]["share_url"].startswith("http://crier.example.org/crier/share/solo/")
