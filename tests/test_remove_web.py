"""Remove post in the control room: `POST /api/v1/shows/{slug}/deliveries/{id}/remove` and the
pages' button with its confirmation page, host only, served for real (tests/webapp.py) over a
show posting to the local Mastodon and X servers; and once in a real browser."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.store import deliveries
from tests.fakes.mastodon_server import MastodonServer
from tests.fakes.x_server import XServer
from tests.feedgen import item, rss
from tests.webapp import WebApp
from tests.world import M_TOKEN, X_KEYS, Clock


def _config(tmp, masto_url: str, x_url: str) -> str:
    (tmp / "beta.xml").write_bytes(rss([item(1)], title="Beta"))
    return f'''[[shows]]
show = "Alpha Show"
slug = "alpha"
feed = "{tmp / 'alpha.xml'}"
first_run_backfill = 1
[[shows.accounts]]
platform = "mastodon"
name = "m-alpha"
instance = "{masto_url}"
timeout = 2
[[shows.accounts]]
platform = "x"
name = "x-alpha"
api_base = "{x_url}"
timeout = 2

[[shows]]
show = "Beta Show"
slug = "beta"
feed = "{tmp / 'beta.xml'}"
[[shows.accounts]]
platform = "mastodon"
name = "m-beta"
instance = "https://social.example"
dry_run = true
'''


class Room:
    def __init__(self, web, masto, x, users):
        self.web, self.masto, self.x, self.users = web, masto, x, users

    def sent(self, account: str):
        with self.web.app.state.crier.service("alpha", self.users["hana"]) as svc:
            return svc.store.deliveries_where(deliveries.c.account == account)[0]


@pytest.fixture
def room(db_url, tmp_path, monkeypatch):
    """Show alpha's newest episode announced on m-alpha and x-alpha; hana (host), cole
    (co-host of alpha), bert (host of beta only)."""
    clock = Clock()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("CRIER_CONFIG", raising=False)
    monkeypatch.setenv("CRIER_M_ALPHA_ACCESS_TOKEN", M_TOKEN)
    for key, value in X_KEYS.items():
        monkeypatch.setenv(f"CRIER_X_ALPHA_{key.upper()}", value)
    items = [item(n, published=clock.now - timedelta(days=10 - n)) for n in (1, 2)]
    (tmp_path / "alpha.xml").write_bytes(rss(items, title="Alpha Show"))
    with MastodonServer(token=M_TOKEN) as masto, XServer(**X_KEYS) as x:
        cfg = tmp_path / "crier.toml"
        cfg.write_text(_config(tmp_path, masto.url, x.url))
        with WebApp(db_url, cfg, clock=clock) as web:
            users = {name: web.add_user(name, role=role, shows=shows) for name, role, shows in
                     (("hana", "host", ()), ("cole", "cohost", ("alpha",)),
                      ("bert", "host", ("beta",)))}
            for slug in ("alpha", "beta"):
                with web.app.state.crier.service(slug, users["hana"]) as svc:
                    svc.poll(force=True)
                    svc.dispatch()
            r = Room(web, masto, x, users)
            assert len(masto.statuses) == 1 and len(x.tweets) == 1
            yield r


def test_the_api_route_is_host_only(room):
    d, tw = room.sent("m-alpha"), room.sent("x-alpha")
    path = f"/api/v1/shows/alpha/deliveries/{d.id}/remove"
    with room.web.client(room.web.token("cole")) as cole:
        r = cole.post(path)
        assert r.status_code == 403 and "remove_post" in r.json()["detail"]
    with room.web.client(room.web.token("bert")) as bert:
        assert bert.post(path).status_code == 404                      # a show bert can't see
    hana = room.web.client(room.web.token("hana"))
    with room.web.client() as anonymous:
        assert anonymous.post(path).status_code == 401
    assert hana.post(f"/api/v1/shows/beta/deliveries/{d.id}/remove").status_code == 404
    session, _ = room.web.login("hana")
    assert session.post(path).status_code == 403                       # no CSRF token
    assert len(room.masto.statuses) == 1 and room.sent("m-alpha").status == "sent"
    r = hana.post(path)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["status"], body["state"], body["action"]) == \
        (d.id, "removed", "removed", "removed")
    assert body["removed_at"] and body["url"] == d.remote_url and "hana" in body["detail"]
    assert room.masto.statuses == [] and len(room.x.tweets) == 1
    listed = hana.get("/api/v1/shows/alpha/deliveries", params={"status": "removed"}).json()
    assert [x["id"] for x in listed] == [d.id]
    episode = hana.get(f"/api/v1/shows/alpha/episodes/{d.episode_id}").json()
    assert {p["account"]: p["state"] for p in episode["posts"]} == \
        {"m-alpha": "removed", "x-alpha": "sent"}
    assert [p["account"] for p in episode["share"]["official_posts"]] == ["x-alpha"]
    r = hana.post(path)
    assert r.status_code == 422 and "already removed" in r.json()["detail"]
    r = hana.post(f"/api/v1/shows/alpha/deliveries/{d.id}/retry")
    assert r.status_code == 422 and "removed by the host" in r.json()["detail"]
    # the network fails: 422 saying so, still sent, still up
    room.x.fail_next(500, path=f"/2/tweets/{tw.remote_id}", method="DELETE")
    r = hana.post(f"/api/v1/shows/alpha/deliveries/{tw.id}/remove")
    assert r.status_code == 422 and "still sent and its post still up" in r.json()["detail"]
    assert room.sent("x-alpha").status == "sent" and len(room.x.tweets) == 1
    assert hana.post(f"/api/v1/shows/alpha/deliveries/{tw.id}/remove").status_code == 200
    assert room.x.tweets == []
    hana.close()


def _forms(html: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+/remove)"', html)


def test_the_button_is_for_the_host_and_asks_first(room):
    d = room.sent("m-alpha")
    action = f"/shows/alpha/deliveries/{d.id}/remove"
    cole, cole_csrf = room.web.login("cole")
    assert _forms(cole.get("/shows/alpha").text) == []                  # hidden for a co-host
    assert _forms(cole.get(f"/shows/alpha/episodes/{d.episode_id}").text) == []
    r = cole.post(action, data={"csrf_token": cole_csrf, "confirm": "yes"})
    assert r.status_code == 403 and len(room.masto.statuses) == 1
    hana, csrf = room.web.login("hana")
    today = hana.get("/shows/alpha").text
    assert action in _forms(today) and "Remove post" in today
    episode_page = hana.get(f"/shows/alpha/episodes/{d.episode_id}").text
    assert action in _forms(episode_page)
    assert hana.post(action, data={"confirm": "yes"}).status_code == 403   # no CSRF token
    # the first press shows what will go, with the form that confirms (no JavaScript)
    r = hana.post(action, data={"csrf_token": csrf, "back": "/shows/alpha"})
    assert r.status_code == 200 and "Remove this post?" in r.text and d.text in r.text
    assert 'name="confirm" value="yes"' in r.text and f'value="{csrf}"' in r.text
    assert "<script>" not in r.text and " onclick" not in r.text
    assert "script-src" in r.headers["content-security-policy"]
    assert len(room.masto.statuses) == 1                                # nothing done yet
    r = hana.post(action, data={"csrf_token": csrf, "back": "/shows/alpha", "confirm": "yes"})
    assert r.status_code == 303 and r.headers["location"].endswith("/shows/alpha")
    assert room.masto.statuses == [] and room.sent("m-alpha").status == "removed"
    today = hana.get("/shows/alpha").text
    assert f"Removed the post of delivery {d.id} from m-alpha" in today
    assert action not in _forms(today) and "state-removed" in today
    # again: the reason, not a second delete
    r = hana.post(action, data={"csrf_token": csrf, "confirm": "yes"}, follow_redirects=True)
    assert "already removed" in r.text
    assert sum(q["method"] == "DELETE" for q in room.masto.requests) == 1


def test_a_host_removes_a_post_in_the_browser(tmp_path, monkeypatch, page):
    """Today → Remove post → the confirmation page → Yes: gone from the instance, shown
    removed (Debian's Chromium; the pages' CSP in force, no JavaScript needed)."""
    from tests.test_web_pages import open_scene
    from tests.webapp import PASSWORD
    with open_scene(f"sqlite:///{tmp_path / 'crier.db'}", tmp_path, monkeypatch) as scene:
        web = scene.web
        assert len(scene.masto.statuses) == 1
        page.goto(web.url + "/shows/alpha")
        page.get_by_label("User name").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(web.url + "/shows/alpha")
        out = page.get_by_role("region", name="Went out recently")
        out.get_by_role("button", name="Remove the announcement post on masto").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "Remove this post?"
        assert len(scene.masto.statuses) == 1
        page.get_by_role("button", name="Yes, remove this post").click()
        page.wait_for_url(web.url + "/shows/alpha")
        assert page.get_by_role("status").first.inner_text().startswith("Removed the post")
        assert scene.masto.statuses == []
        went = page.get_by_role("region", name="Went out recently").inner_text()
        assert "removed" in went
        assert page.get_by_role("region", name="Went out recently").get_by_role(
            "button", name="Remove the announcement post on masto").count() == 0
