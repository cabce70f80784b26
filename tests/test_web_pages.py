"""The control room's pages (bot.web.pages*): Today, Episodes, one episode, Community and the
public share page, over real HTTP on SQLite and PostgreSQL. The show's episodes come from
polling a feed file; its announcements go to a local Mastodon server (tests/fakes) that
refuses one of them, so Today has a failure to retry; listeners' posts on that server are
found by the community scan. Buttons are forms needing the CSRF token."""

from __future__ import annotations

import re
from contextlib import contextmanager
from html import unescape

import pytest

from bot.deployment import load_deployment
from bot.service import Service
from tests.fakes.mastodon_server import MastodonServer
from tests.feedgen import item, rss
from tests.webapp import WebApp
from tests.world import M_TOKEN

HOSTILE_TITLE = "Hostile <script>alert('title')</script> & friends"
HOSTILE_NOTES = ("<p>Real notes here.</p><script>alert('notes')</script>"
                 "<img src=x onerror=alert(1)><p>Second paragraph.</p>")
REFUSAL = "Validation failed: Text character limit of 500 exceeded"
HOSTILE_LINK = "javascript:alert(document.cookie)"
ART = "https://cdn.example/art/ep3.jpg"


def _items(*more: int) -> list:
    return [item(1), item(2, title=HOSTILE_TITLE).with_(notes=HOSTILE_NOTES, link=HOSTILE_LINK),
            item(3).with_(image=ART)] + [item(n) for n in more]


def _config(tmp_path, masto_url: str, items: list) -> str:
    (tmp_path / "alpha.xml").write_bytes(rss(items))
    (tmp_path / "beta.xml").write_bytes(rss([item(1)]))
    path = tmp_path / "crier.toml"
    path.write_text(f"""
[[shows]]
show = "Show alpha"
slug = "alpha"
feed = "alpha.xml"
timezone = "Europe/Berlin"
first_run_backfill = 2
max_new_per_poll = 1

[shows.promos]
min_gap = 0

[shows.community]
enabled = true
hashtags = ["TestShow"]
allow = ["friend@other.example"]

[[shows.accounts]]
platform = "mastodon"
name = "masto"
instance = "{masto_url}"
timeout = 2

[[shows]]
show = "Show beta"
slug = "beta"
feed = "beta.xml"

[[shows.accounts]]
platform = "mastodon"
name = "m-beta"
instance = "https://social.example"
dry_run = true
""")
    return str(path)


class Scene:
    """The app, the Mastodon server and the show's Service (to poll and dispatch)."""

    def __init__(self, web: WebApp, masto: MastodonServer, tmp_path, items: list):
        self.web, self.masto, self.tmp_path, self.items = web, masto, tmp_path, items

    def service(self, slug: str = "alpha") -> Service:
        dep = load_deployment(self.web.config)
        settings = next(s for s in dep.shows if s.slug == slug)
        return Service(settings, self.web.store)

    def run(self, slug: str = "alpha") -> Service:
        svc = self.service(slug)
        svc.poll(force=True)
        svc.dispatch()
        return svc

    def more_episodes(self, *ns) -> None:
        """The feed with more items (numbers for `feedgen.item`, or items)."""
        more = [item(n) if isinstance(n, int) else n for n in ns]
        (self.tmp_path / "alpha.xml").write_bytes(rss(self.items + more))


@contextmanager
def open_scene(db_url: str, tmp_path, monkeypatch, items: list | None = None):
    """Show alpha polled once: of its three episodes the newest two are announced on the
    local Mastodon server, which refuses the first it is sent; user "ana" is its host."""
    items = _items() if items is None else items
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("CRIER_MASTO_ACCESS_TOKEN", M_TOKEN)
    with MastodonServer(token=M_TOKEN) as masto, \
            WebApp(db_url, _config(tmp_path, masto.url, items)) as web:
        s = Scene(web, masto, tmp_path, items)
        masto.fail_next(422, body={"error": REFUSAL})
        s.run()
        web.add_user("ana")
        yield s


@pytest.fixture
def scene(db_url, tmp_path, monkeypatch):
    with open_scene(db_url, tmp_path, monkeypatch) as s:
        yield s


def _deliveries(svc: Service):
    from bot.store import deliveries
    return {d.id: d for d in svc.store.deliveries_where(deliveries.c.id > 0)}


def _csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def _flash(html: str) -> str:
    m = re.search(r'<p class="flash [^"]*" role="\w+">(.*?)</p>', html, re.S)
    return unescape(m.group(1)) if m else ""


def test_today_shows_health_what_went_out_what_failed_and_retry_works(scene):
    ana, csrf = scene.web.login("ana")
    rows = _deliveries(scene.service())
    failed = [d for d in rows.values() if d.status == "failed"]
    sent = [d for d in rows.values() if d.status == "sent"]
    assert len(failed) == 1 and len(sent) == 1, rows
    page = ana.get("/shows/alpha")
    assert page.status_code == 200
    html = page.text
    assert "The feed is healthy." in html and "Last poll" in html
    assert re.search(r"CES?T", html)   # times in the show's time zone (Europe/Berlin)
    assert REFUSAL in html              # the platform's own words
    assert f'href="{sent[0].remote_url}"' in html
    assert f'action="/shows/alpha/deliveries/{failed[0].id}/retry"' in html
    # the Retry button: without the CSRF token refused, with it queued again
    r = ana.post(f"/shows/alpha/deliveries/{failed[0].id}/retry", data={"back": "/shows/alpha"})
    assert r.status_code == 403
    assert scene.service().store.delivery(failed[0].id).status == "failed"
    r = ana.post(f"/shows/alpha/deliveries/{failed[0].id}/retry",
                 data={"csrf_token": csrf, "back": "/shows/alpha"})
    assert r.status_code == 303 and r.headers["location"] == "/shows/alpha"
    assert scene.service().store.delivery(failed[0].id).status == "pending"
    after = ana.get("/shows/alpha")
    assert _flash(after.text) == f"Delivery {failed[0].id} goes out on the next dispatch."
    assert _flash(ana.get("/shows/alpha").text) == ""     # said once
    # retrying it again is refused with the CLI's words, nothing changed
    r = ana.post(f"/shows/alpha/deliveries/{sent[0].id}/retry", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert "is sent (it went out)" in _flash(ana.get("/shows/alpha").text)
    scene.run()
    assert scene.service().store.delivery(failed[0].id).status == "sent"
    assert REFUSAL not in ana.get("/shows/alpha").text


def test_a_failing_feed_is_said_in_plain_words(scene):
    ana, _ = scene.web.login("ana")
    (scene.tmp_path / "alpha.xml").write_text("<rss><channel><title>broken")
    scene.run()
    html = ana.get("/shows/alpha").text
    assert "The feed is failing" in html and "1 time in a row" in html


def test_future_dated_episodes_are_coming_up_on_today(scene):
    from datetime import UTC, datetime, timedelta
    ana, _ = scene.web.login("ana")
    assert "Coming up" not in ana.get("/shows/alpha").text
    soon = item(4, published=datetime.now(UTC) + timedelta(days=3))
    scene.more_episodes(soon)
    scene.run()
    html = ana.get("/shows/alpha").text
    assert "Coming up" in html and soon.title in html


def test_held_episodes_released_or_dismissed_from_today(scene):
    ana, csrf = scene.web.login("ana")
    scene.more_episodes(4, 5)          # two new ones, one allowed per poll: both held
    scene.run()
    held = scene.service().store.episodes_with_status("held")
    assert [e.title for e in held] == [item(4).title, item(5).title]
    html = ana.get("/shows/alpha").text
    assert "Held episodes" in html and item(4).title in html
    r = ana.post(f"/shows/alpha/episodes/{held[0].id}/release", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert "released" in _flash(ana.get("/shows/alpha").text)
    r = ana.post(f"/shows/alpha/episodes/{held[1].id}/dismiss",
                 data={"csrf_token": csrf, "back": f"/shows/alpha/episodes/{held[1].id}"})
    assert r.headers["location"] == f"/shows/alpha/episodes/{held[1].id}"
    svc = scene.service()
    assert svc.store.get_episode(held[0].id).status == "announced"
    assert svc.store.get_episode(held[1].id).status == "dismissed"
    r = ana.post(f"/shows/alpha/episodes/{held[1].id}/release", data={"csrf_token": csrf})
    assert "not held" in _flash(ana.get("/shows/alpha").text)
    assert "Held episodes" not in ana.get("/shows/alpha").text
    # no CSRF token: refused, nothing changed
    scene.more_episodes(4, 5, 6, 7)
    scene.run()
    (h6, _h7) = scene.service().store.episodes_with_status("held")
    assert ana.post(f"/shows/alpha/episodes/{h6.id}/dismiss").status_code == 403
    assert scene.service().store.get_episode(h6.id).status == "held"


def test_episodes_list_and_one_episode_with_posts_and_share_kit(scene):
    ana, _ = scene.web.login("ana")
    svc = scene.service()
    eps = {e.title: e for e in svc.store.episodes_with_status("announced")}
    html = ana.get("/shows/alpha/episodes").text
    for title in (item(3).title, item(1).title):
        assert title in html
    assert html.index(item(3).title) < html.index(item(1).title)   # newest first
    assert "baseline" in html and "view post" in html
    ep3 = eps[item(3).title]
    page = ana.get(f"/shows/alpha/episodes/{ep3.id}")
    assert page.status_code == 200
    sent = next(d for d in _deliveries(svc).values() if d.episode_id == ep3.id)
    kit = svc.share(str(ep3.id))
    text = unescape(page.text)
    assert sent.remote_url in text
    for t in kit["texts"]:
        assert t["share_url"] in text and t["text"] in text
    assert f"/share/alpha/{ep3.id}" in text and f'src="{ART}"' in page.text
    assert ana.get("/shows/alpha/episodes?status=baseline").text.count('class="card episode"') \
        == 1
    assert ana.get("/shows/alpha/episodes/999999").status_code == 404


def test_hostile_titles_and_notes_are_shown_as_text(scene):
    ana, _ = scene.web.login("ana")
    row = next(e for e in scene.service().store.episodes_with_status("announced")
               if "Hostile" in e.title)
    for path in ("/shows/alpha", "/shows/alpha/episodes", f"/shows/alpha/episodes/{row.id}",
                 f"/share/alpha/{row.id}"):
        html = ana.get(path).text
        assert "<script>alert" not in html and "onerror=" not in html, path
        assert "javascript:" not in html.lower(), path
        assert "Hostile" in html, path
        if "<script>" in row.title:
            assert "&lt;script&gt;" in html, path
    html = ana.get(f"/shows/alpha/episodes/{row.id}").text
    assert "Real notes here." in html and "Second paragraph." in html


def test_only_web_addresses_become_links():
    from bot.web.pages import weblink
    assert weblink("https://a.example/x") == "https://a.example/x"
    assert weblink("HTTP://a.example/") == "HTTP://a.example/"
    for bad in ("javascript:alert(1)", " javascript:x", "data:text/html,x", "//evil.example",
                "", None, "vbscript:x"):
        assert weblink(bad) is None, bad


def test_community_posts_approved_or_rejected_and_the_allow_list(scene):
    ana, csrf = scene.web.login("ana")
    fan = scene.masto.add_post("fan@other.example", "Loved this week's #TestShow <3",
                               tags=("TestShow",))
    scene.masto.add_post("meh@other.example", "Hm. #TestShow", tags=("TestShow",))
    svc = scene.service()
    svc.community_scan()
    posts = {p.author: p for p in svc.community_list()}
    assert "2 listener posts waiting" in ana.get("/shows/alpha").text
    html = ana.get("/shows/alpha/community").text
    assert "fan@other.example" in html and fan["url"] in html
    assert "Loved this week&#39;s #TestShow &lt;3" in html and "friend@other.example" in html
    fid, mid = posts["fan@other.example"].id, posts["meh@other.example"].id
    assert ana.post(f"/shows/alpha/community/{fid}/approve").status_code == 403
    r = ana.post(f"/shows/alpha/community/{fid}/approve",
                 data={"csrf_token": csrf, "back": "/shows/alpha/community"})
    assert r.status_code == 303 and r.headers["location"] == "/shows/alpha/community"
    assert "boosts it once" in _flash(ana.get("/shows/alpha/community").text)
    ana.post(f"/shows/alpha/community/{mid}/reject", data={"csrf_token": csrf})
    assert {p.author: p.status for p in svc.community_list(all_=True)} == {
        "fan@other.example": "approved", "meh@other.example": "rejected"}
    r = ana.post(f"/shows/alpha/community/{mid}/approve", data={"csrf_token": csrf})
    assert "already rejected" in _flash(ana.get("/shows/alpha").text)
    assert ana.post(f"/shows/alpha/community/{mid}/boost",
                    data={"csrf_token": csrf}).status_code == 404
    scene.run()
    assert [r["reblog"]["uri"] for r in scene.masto.reblogs] == [fan["uri"]]
    assert "No listener post waiting." in ana.get("/shows/alpha").text


def test_a_cohost_may_act_and_a_user_of_another_show_sees_nothing(scene):
    scene.web.add_user("cody", role="cohost", shows=["alpha"])
    scene.web.add_user("bea", shows=["beta"])
    cody, csrf = scene.web.login("cody")
    failed = next(d for d in _deliveries(scene.service()).values() if d.status == "failed")
    r = cody.post(f"/shows/alpha/deliveries/{failed.id}/retry", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert scene.service().store.delivery(failed.id).status == "pending"
    # dismissing a held episode cannot be undone: host only (as in the API), no button
    some = scene.service().store.episodes_with_status("announced")[0]
    r = cody.post(f"/shows/alpha/episodes/{some.id}/dismiss", data={"csrf_token": csrf})
    assert r.status_code == 403 and "cohost may not" in r.text
    bea, bcsrf = scene.web.login("bea")
    ep = scene.service().store.episodes_with_status("announced")[0]
    for path in ("/shows/alpha", "/shows/alpha/episodes", f"/shows/alpha/episodes/{ep.id}",
                 "/shows/alpha/community"):
        assert bea.get(path).status_code == 404, path
    for path in (f"/shows/alpha/deliveries/{failed.id}/retry",
                 f"/shows/alpha/episodes/{ep.id}/release", "/shows/alpha/community/1/approve"):
        assert bea.post(path, data={"csrf_token": bcsrf}).status_code == 404, path
    # nor through her own show: another show's episode or delivery is not hers
    assert bea.get(f"/shows/beta/episodes/{ep.id}").status_code == 404
    r = bea.post(f"/shows/beta/deliveries/{failed.id}/retry", data={"csrf_token": bcsrf})
    assert "no such delivery" in _flash(bea.get("/shows/beta").text)
    # pages without a session go to the login page
    anon = scene.web.client()
    r = anon.get("/shows/alpha/episodes")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_the_public_share_page_needs_no_login_and_makes_a_link_card(scene):
    svc = scene.service()
    ep3 = next(e for e in svc.store.episodes_with_status("announced")
               if e.title == item(3).title)
    anon = scene.web.client()
    r = anon.get(f"/share/alpha/{ep3.id}")
    assert r.status_code == 200, r.text
    html = r.text
    meta = dict(re.findall(r'<meta (?:property|name)="((?:og|twitter):[a-z:_]+)" '
                           r'content="([^"]*)"', html))
    assert meta["og:title"] == item(3).title and meta["og:type"] == "article"
    assert meta["og:url"] == f"{scene.web.url}/share/alpha/{ep3.id}"
    assert meta["og:image"] == ART and meta["twitter:card"] == "summary_large_image"
    assert "Guest 3 joins me" in unescape(meta["og:description"])
    kit = svc.share(str(ep3.id))
    text = unescape(html)
    for t in kit["texts"]:
        assert t["share_url"] in text
    assert "Share on Mastodon" in html and "Share on Bluesky" in html and "Share on X" in html
    assert "Share on Threads" in html and "https://www.threads.net/intent/post?text=" in html
    sent = next(d for d in _deliveries(svc).values() if d.episode_id == ep3.id)
    assert sent.remote_url in text and "Boost the show" in html
    assert "csrf" not in html and "Log out" not in html
    assert "script-src 'self'" in r.headers["content-security-policy"]
    # unknown show, unknown episode, another show's episode: 404
    beta_ep = scene.run("beta").store.episodes_with_status("baseline")
    assert anon.get(f"/share/nope/{ep3.id}").status_code == 404
    assert anon.get("/share/alpha/999999").status_code == 404
    assert anon.get(f"/share/beta/{ep3.id}").status_code == 404
    assert anon.get(f"/share/alpha/{beta_ep[0].id}").status_code == 404


def test_a_removed_show_has_no_share_page(scene):
    from bot.shows import sync_config
    ep = scene.service().store.episodes_with_status("announced")[0]
    anon = scene.web.client()
    assert anon.get(f"/share/alpha/{ep.id}").status_code == 200
    dep = load_deployment(scene.web.config)
    sync_config(scene.web.store, [s for s in dep.shows if s.slug != "alpha"], remove=True)
    assert anon.get(f"/share/alpha/{ep.id}").status_code == 404


def test_behind_a_proxy_path_buttons_and_share_links_keep_the_root_path(tmp_path, monkeypatch):
    """`crier web --root-path /crier`: forms post under it, redirects come back under it, and
    the public share link names it. Logging in there works (the login form's cookie was
    set for /login, which a browser never sends to /crier/login)."""
    db = f"sqlite:///{tmp_path / 'crier.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("CRIER_MASTO_ACCESS_TOKEN", M_TOKEN)
    with MastodonServer(token=M_TOKEN) as masto:
        cfg = _config(tmp_path, masto.url, _items())
        with WebApp(db, cfg) as first:      # polled through the app's store, then served
            s = Scene(first, masto, tmp_path, _items())
            masto.fail_next(422, body={"error": REFUSAL})
            s.run()
            first.add_user("ana")
        with WebApp(db, cfg, root_path="/crier") as web:
            ana, csrf = web.login("ana")
            failed = next(d for d in _deliveries(Scene(web, masto, tmp_path, []).service())
                          .values() if d.status == "failed")
            html = ana.get("/shows/alpha").text
            assert f'action="/crier/shows/alpha/deliveries/{failed.id}/retry"' in html
            r = ana.post(f"/shows/alpha/deliveries/{failed.id}/retry",
                         data={"csrf_token": csrf, "back": "/shows/alpha/episodes"})
            assert r.status_code == 303 and r.headers["location"] == "/crier/shows/alpha/episodes"
            ep = failed.episode_id
            page = ana.get(f"/shows/alpha/episodes/{ep}").text
            assert f"{web.url}/crier/share/alpha/{ep}" in page
            r = web.client().get(f"/share/alpha/{ep}")
            assert r.status_code == 200
            assert f'property="og:url" content="{web.url}/crier/share/alpha/{ep}"' in r.text
            # a `back` outside the show is not followed
            r = ana.post(f"/shows/alpha/deliveries/{failed.id}/retry",
                         data={"csrf_token": csrf, "back": "//evil.example/shows/alpha"})
            assert r.headers["location"] == "/crier/shows/alpha"


def test_an_id_of_another_shows_episode_is_not_found_from_this_show(scene):
    """`crier share ID` / `queue add --episode ID` (PromoQueue.episode) look ids up in this
    show only: before, an id of another show's episode gave that episode."""
    from bot.errors import CrierError
    beta = scene.run("beta")
    (beta_ep,) = beta.store.episodes_with_status("baseline")
    assert beta.share(str(beta_ep.id))["id"] == beta_ep.id
    with pytest.raises(CrierError, match="no episode with GUID or id"):
        scene.service().share(str(beta_ep.id))
