"""The control room in a real browser (Debian's Chromium under Playwright): a person logs in
and sees the show's Today page. The flows of each page are in the tests of that page."""

from __future__ import annotations

import pytest

from tests.test_web_auth import _config
from tests.webapp import PASSWORD, WebApp


@pytest.fixture
def web(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'crier.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    with WebApp(db, _config(tmp_path, shows=("alpha",))) as w:
        w.add_user("ana")
        yield w


def test_log_in_and_see_today(web, page):
    page.goto(web.url + "/shows/alpha")
    assert "/login" in page.url
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(web.url + "/shows/alpha")
    assert page.get_by_role("heading", level=1).inner_text() == "Show alpha"
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(web.url + "/login")


# -- Today, Community and the public share page (bot.web.pages*) ------------------------------
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def scene(tmp_path, monkeypatch):
    """Show alpha with a sent and a failed announcement (tests/test_web_pages.py), two held
    episodes and a listener's post waiting; SQLite."""
    from tests.feedgen import item
    from tests.test_web_pages import ART, open_scene
    items = [item(1), item(2), item(3).with_(image=ART)]
    with open_scene(f"sqlite:///{tmp_path / 'crier.db'}", tmp_path, monkeypatch, items) as s:
        s.more_episodes(4, 5)
        s.masto.add_post("fan@other.example", "Just listened to this week's #TestShow on the "
                         "train: the bit about co-ops made my day.", tags=("TestShow",))
        svc = s.run()
        svc.community_scan()
        yield s


def _cover(route):
    """The artwork the feed names (a CDN on the internet): drawn here, never fetched."""
    import io

    from PIL import Image, ImageDraw
    img = Image.new("RGB", (320, 320), (91, 60, 196))
    ImageDraw.Draw(img).ellipse((60, 60, 260, 260), fill=(250, 250, 247))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    route.fulfill(status=200, content_type="image/png", body=buf.getvalue())


def _fits(page) -> bool:
    """Nothing wider than the screen (no sideways scrolling on a phone)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _log_in(page, url):
    page.goto(url)
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_today_retry_a_failed_delivery_and_approve_a_listener_post(scene, page):
    from tests.browser import SCREENSHOTS
    from tests.test_web_pages import REFUSAL
    web = scene.web
    _log_in(page, web.url + "/shows/alpha")
    page.wait_for_url(web.url + "/shows/alpha")
    feed = page.get_by_role("region", name="Feed")
    assert "The feed is healthy." in feed.inner_text() and "CET" in feed.inner_text()
    failed = page.get_by_role("region", name="Failed")
    assert REFUSAL in failed.inner_text()
    held = page.get_by_role("region", name="Held episodes")
    assert held.get_by_role("button", name="Release").count() == 2
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "today.png"), full_page=True)
    # Retry: by keyboard, as a person without a mouse would
    retry = failed.get_by_role("button", name="Retry announcement on masto")
    retry.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert page.get_by_role("status").first.inner_text().endswith(
        "goes out on the next dispatch.")
    assert "Nothing failed." in page.get_by_role("region", name="Failed").inner_text()
    assert "due" in page.get_by_role("region", name="Going out next").inner_text()
    scene.run()
    page.reload()
    assert page.get_by_role("region", name="Went out recently").get_by_role(
        "link", name="view post").count() == 2
    # the community post waiting: approve it
    page.get_by_role("link", name="1 listener post waiting for your approval").click()
    page.wait_for_url(web.url + "/shows/alpha/community")
    post = page.get_by_role("article", name="fan@other.example")
    assert "made my day" in post.inner_text()
    post.get_by_role("button", name="Approve the post by fan@other.example").click()
    page.wait_for_url(web.url + "/shows/alpha/community")
    assert "boosts it once" in page.get_by_role("status").first.inner_text()
    assert "approved" in page.get_by_role("region", name="Decided lately").inner_text()
    # on a phone: everything fits the screen
    page.set_viewport_size(PHONE)
    ep = scene.service().store.episodes_with_status("announced")[0]
    for path in ("/shows/alpha", "/shows/alpha/episodes", f"/shows/alpha/episodes/{ep.id}",
                 "/shows/alpha/community"):
        page.goto(web.url + path)
        assert _fits(page), path


def test_the_public_share_page(scene, page):
    from tests.browser import SCREENSHOTS
    from tests.feedgen import item
    ep = next(e for e in scene.service().store.episodes_with_status("announced")
              if e.title == item(3).title)
    page.route("https://cdn.example/**", _cover)
    page.goto(f"{scene.web.url}/share/alpha/{ep.id}")    # no login
    assert page.url.endswith(f"/share/alpha/{ep.id}")
    assert page.get_by_role("heading", level=1).inner_text() == ep.title
    assert page.locator('meta[property="og:title"]').get_attribute("content") == ep.title
    masto = page.get_by_role("link", name="Share on Mastodon")
    assert masto.get_attribute("href").startswith(scene.masto.url + "/share?text=")
    assert page.get_by_role("link", name="Share on Bluesky").get_attribute("href").startswith(
        "https://bsky.app/intent/compose?text=")
    assert page.get_by_role("link", name="Share on X").get_attribute("href").startswith(
        "https://x.com/intent/post?text=")
    boost = page.get_by_role("region", name="Boost the show's posts")
    assert boost.get_by_role("link").get_attribute("href").startswith(scene.masto.url + "/@")
    art = page.get_by_role("img", name=f"Artwork of {ep.title}")
    assert art.evaluate("img => img.complete && img.naturalWidth") == 320
    page.set_viewport_size(PHONE)
    assert _fits(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "share.png"), full_page=True)
