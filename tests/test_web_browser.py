"""The control room in a real browser (Debian's Chromium under Playwright): a person logs in
and sees the show's Today page. The flows of each page are in the tests of that page."""

from __future__ import annotations

import re

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
    assert page.get_by_role("link", name="Share on Threads").get_attribute("href") \
        .startswith("https://www.threads.net/intent/post?text=")
    boost = page.get_by_role("region", name="Boost the show's posts")
    assert boost.get_by_role("link").get_attribute("href").startswith(scene.masto.url + "/@")
    art = page.get_by_role("img", name=f"Artwork of {ep.title}")
    assert art.evaluate("img => img.complete && img.naturalWidth") == 320
    page.set_viewport_size(PHONE)
    assert _fits(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "share.png"), full_page=True)
# -- the queue: the promo form's live preview, the calendar (bot/web/pages_queue.py) ---------
@pytest.fixture
def queue_web(tmp_path, monkeypatch):
    from tests.test_web_queue import NOW
    from tests.test_web_queue import _config as queue_config
    db = f"sqlite:///{tmp_path / 'crier.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    with WebApp(db, queue_config(tmp_path), clock=lambda: NOW) as w:
        w.add_user("ana", shows=["alpha"])
        yield w


def _log_in_at(page, web, path):
    page.goto(web.url + path)
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(web.url + path)


def _watch(page) -> list:
    """Every script error and console error (a CSP refusal is one) the page shows, with the
    URL it names."""
    problems = []
    page.on("console", lambda m: problems.append((m.text, m.location.get("url") or ""))
            if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append((str(e), "")))
    return problems


def _api_calls(page) -> list:
    """The JSON API calls the page makes: (method, path, body, CSRF header)."""
    calls = []

    def seen(req):
        if "/api/v1/" in req.url:
            calls.append((req.method, req.url.split("/api/v1", 1)[1], req.post_data_json,
                          req.headers.get("x-csrf-token")))
    page.on("request", seen)
    return calls


def _queue(page, web, text, *, at="", every=""):
    page.goto(web.url + "/shows/alpha/queue/new")
    page.get_by_label("Text", exact=True).fill(text)
    page.get_by_label("At", exact=True).fill(at)
    page.get_by_label("Or repeat every").fill(every)
    page.get_by_role("button", name="Queue it").click()
    page.wait_for_url(web.url + "/shows/alpha/queue?did=queued*")


def test_queue_a_promo_with_its_live_preview_then_calendar_edit_cancel(queue_web, page):
    from playwright.sync_api import expect

    from tests.browser import SCREENSHOTS
    web = queue_web
    problems = _watch(page)
    _log_in_at(page, web, "/shows/alpha/queue/new")
    mastodon = page.locator(".pv-mastodon [data-count]")
    x = page.locator(".pv-x [data-count]")
    text = page.get_by_label("Text", exact=True)
    text.press_sequentially("Hello")
    expect(mastodon).to_have_text("5/500")
    expect(x).to_have_text("5/280")
    text.press_sequentially(" listeners")
    expect(mastodon).to_have_text("15/500")
    expect(page.get_by_text("over the limit")).to_have_count(0)
    text.fill("Season 3 starts with @ana@social.example on the mic: how a tiny show found its "
              "listeners, what we got wrong in the first year, why we stopped chasing "
              "downloads and what a community of a few hundred people who write back is worth "
              "to a podcast that nobody has heard of yet. Tell us what you want next! "
              "https://example.com/season-3 #podcast #crier")
    expect(page.locator(".pv-x .pv-warn")).to_contain_text("over the limit on X")
    expect(page.locator(".pv-x")).to_have_class(re.compile("pv-over"))
    expect(page.locator(".pv-mastodon .pv-warn")).to_have_count(0)
    expect(page.locator(".pv-mastodon .pv-hashtag").first).to_have_text("#podcast")
    expect(page.locator(".pv-mastodon .pv-mention")).to_have_text("@ana@social.example")
    expect(page.locator(".pv-mastodon .pv-link")).to_have_text("example.com/season-3")
    page.get_by_label("At", exact=True).fill("2026-12-09 18:30")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "preview.png"), full_page=True)
    page.get_by_role("button", name="Queue it").click()       # refused: too long on X
    expect(page.get_by_role("alert").first).to_contain_text("too long: x-alpha (x)")
    page.get_by_label("Shorten to fit each network").check()
    expect(page.locator(".pv-x .pv-foot")).to_contain_text("shortened to fit")
    expect(page.locator(".pv-x .pv-warn")).to_have_count(0)
    page.get_by_role("button", name="Queue it").click()
    page.wait_for_url(web.url + "/shows/alpha/queue?did=queued&id=1")
    expect(page.get_by_role("status")).to_have_text("Queued #1.")
    _queue(page, web, "Every Friday: the week in podcasting {{ hashtags }}", every="fri 17:00")
    _queue(page, web, "Late-night thought, out when quiet hours end", at="2026-12-10 23:30")

    page.get_by_role("link", name="Calendar").first.click()
    page.wait_for_url(web.url + "/shows/alpha/calendar")
    wed = page.locator('[data-date="2026-12-09"]')
    expect(wed.locator("time")).to_have_text(["18:30", "18:30"])
    expect(wed).to_contain_text("m-alpha")
    expect(wed).to_contain_text("x-alpha")
    expect(page.locator('[data-date="2026-12-11"]')).to_contain_text("07:00")
    expect(page.locator('[data-date="2026-12-11"]')).to_contain_text("moved from 23:30")
    page.get_by_role("link", name="Month").click()
    expect(page.locator('[data-date="2026-12-25"] time').first).to_have_text("17:00")
    page.get_by_role("link", name="Week").click()
    page.screenshot(path=str(SCREENSHOTS / "calendar.png"), full_page=True)

    page.get_by_role("link", name="Edit #1 on m-alpha").click()
    page.wait_for_url(web.url + "/shows/alpha/queue/1/edit")
    expect(page.locator(".pv-mastodon [data-count]")).not_to_have_text("")
    page.get_by_label("Text", exact=True).fill("Season 3 is here #podcast")
    expect(page.locator(".pv-x [data-count]")).to_have_text("25/280")
    page.get_by_label("At", exact=True).fill("2026-12-10 12:00")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(web.url + "/shows/alpha/queue?did=changed&id=1")
    expect(page.locator("#promo-1")).to_contain_text("Season 3 is here")
    expect(page.locator("#promo-1")).to_contain_text("Thu 10 Dec 2026, 12:00 CET")
    page.get_by_role("button", name="Cancel #1").click()
    page.wait_for_url(web.url + "/shows/alpha/queue?did=cancelled&id=1")
    expect(page.get_by_role("status")).to_have_text("Cancelled #1.")
    expect(page.locator("#promo-1")).to_have_count(0)
    page.goto(web.url + "/shows/alpha/calendar?date=2026-12-10")
    expect(page.get_by_text("Season 3 is here")).to_have_count(0)
    expected = [p for p in problems if p[1].endswith("/favicon.ico")      # none: a 404
                or ("422" in p[0] and p[1].endswith("/queue/new"))]   # the refused post
    assert [p for p in problems if p not in expected] == []   # no script error, no CSP refusal


def test_drag_a_post_to_another_day(queue_web, page):
    from playwright.sync_api import expect
    web = queue_web
    _log_in_at(page, web, "/shows/alpha/queue/new")
    _queue(page, web, "Drag me", at="2026-12-09 18:30")
    page.goto(web.url + "/shows/alpha/calendar?date=2026-12-09")
    entry = page.locator('[data-date="2026-12-09"] [data-promo="1"]').first
    entry.drag_to(page.locator('[data-date="2026-12-11"]'))
    page.wait_for_url(web.url + "/shows/alpha/calendar?view=week&date=2026-12-11")
    expect(page.locator('[data-date="2026-12-11"]')).to_contain_text("Drag me")
    expect(page.locator('[data-date="2026-12-09"]')).not_to_contain_text("Drag me")


def test_queue_pages_fit_a_phone(queue_web, page):
    """On a phone's width the form, its preview and the calendar scroll only vertically."""
    from playwright.sync_api import expect
    web = queue_web
    page.set_viewport_size({"width": 390, "height": 844})
    _log_in_at(page, web, "/shows/alpha/queue/new")
    _queue(page, web, "A long word: " + "Supercalifragilistic" * 4 + " https://example.com/"
           + "very-long-path/" * 6, at="2026-12-09 18:30")
    for path in ("/shows/alpha/queue", "/shows/alpha/queue/1/edit",
                 "/shows/alpha/calendar?view=week&date=2026-12-09",
                 "/shows/alpha/calendar?view=month&date=2026-12-09"):
        page.goto(web.url + path)
        if path.endswith("/edit"):
            expect(page.locator(".pv-x [data-count]")).not_to_have_text("")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"{path} is {wide} px wide on a 390 px phone"


def test_the_preview_shows_the_image_with_its_alt_text(queue_web, page, tmp_path):
    from PIL import Image
    from playwright.sync_api import expect
    web = queue_web
    problems = _watch(page)
    Image.new("RGB", (60, 40), (200, 30, 90)).save(tmp_path / "cover.png")
    _log_in_at(page, web, "/shows/alpha/queue/new")
    expect(page.locator("#preview")).to_contain_text("Type the post's text")
    calls = _api_calls(page)
    page.get_by_label("Text", exact=True).fill("New cover art!")
    page.get_by_label("Image", exact=True).set_input_files(str(tmp_path / "cover.png"))
    expect(page.locator(".pv-error")).to_contain_text("--alt is required with --image")
    page.get_by_label("Alt text").fill("A red card")
    img = page.locator(".pv-mastodon img")
    expect(img).to_have_attribute("alt", "A red card")
    expect(img).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    expect(page.locator(".pv-mastodon figcaption")).to_contain_text("A red card (10/1500)")
    expect(page.locator(".pv-x figcaption")).to_contain_text("(10/1000)")
    expect(page.locator(".pv-error")).to_have_count(0)
    assert page.evaluate("document.querySelector('.pv-mastodon img').naturalWidth") == 60
    # the image went to the API as a data: URL, with the session's CSRF header
    method, path, body, csrf = calls[-1]
    assert (method, path) == ("POST", "/shows/alpha/preview") and csrf
    assert body["image"].startswith("data:image/png;base64,") and body["alt"] == "A red card"
    # refused without JavaScript's help (a time in the past): the image is kept on the
    # server, and the live preview fetches it to send along
    page.get_by_label("At", exact=True).fill("2026-12-01 10:00")
    page.get_by_role("button", name="Queue it").click()
    expect(page.locator("#form-error")).to_contain_text("is in the past")
    expect(page.locator(".pv-mastodon img")).to_have_attribute(
        "src", re.compile("^data:image/png;base64,"))
    assert page.evaluate("document.querySelector('.pv-mastodon img').naturalWidth") == 60
    page.get_by_label("At", exact=True).fill("2026-12-09 18:30")
    page.get_by_role("button", name="Queue it").click()
    page.wait_for_url(web.url + "/shows/alpha/queue?did=queued&id=1")
    page.goto(web.url + "/shows/alpha/queue/1/edit")          # a queued post's image
    expect(page.locator(".pv-x img")).to_have_attribute("alt", "A red card")
    expect(page.locator(".pv-x img")).to_have_attribute(
        "src", re.compile("^data:image/png;base64,"))
    expected = [p for p in problems if "422" in p[0] and (
        p[1].endswith("/api/v1/shows/alpha/preview")      # alt still missing: the CLI's words
        or p[1].endswith("/queue/new"))]                  # the refused post
    assert expected and [p for p in problems if p not in expected
                         and not p[1].endswith("/favicon.ico")] == []   # none: a 404


def test_the_preview_draws_untrusted_text_as_text(queue_web, page):
    """What the host types (and what the server sends back) is never parsed as HTML: markup
    shows as the characters typed, no element or script comes of it."""
    from playwright.sync_api import expect
    web = queue_web
    problems = _watch(page)
    _log_in_at(page, web, "/shows/alpha/queue/new")
    hostile = ('<img src=x onerror="window.pwned=1"><b>bold</b> '
               '"><script>window.pwned=2</script> https://example.com/?q=<i>')
    page.get_by_label("Text", exact=True).fill(hostile)
    text = page.locator(".pv-mastodon .pv-text")
    expect(text).to_contain_text('<img src=x onerror="window.pwned=1"><b>bold</b>')
    assert text.locator("img, b, script, i").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.locator(".pv-mastodon .pv-link").get_attribute("href").startswith(
        "https://example.com/")
    page.get_by_label("Text", exact=True).fill("")
    expect(page.locator("#preview")).to_contain_text("Type the post's text")
    expect(page.locator(".pv-card")).to_have_count(0)
    assert [p for p in problems if not p[1].endswith("/favicon.ico")] == []


def test_an_evergreen_slot_previews_through_the_api(queue_web, page):
    from playwright.sync_api import expect
    web = queue_web
    problems = _watch(page)
    _log_in_at(page, web, "/shows/alpha/queue/new")
    calls = _api_calls(page)
    page.get_by_label("Evergreen").check()
    expect(page.locator(".pv-error")).to_contain_text("an evergreen slot needs --every")
    assert calls[-1][:2] == ("POST", "/shows/alpha/queue") and calls[-1][2]["dry"] is True
    assert [p for p in problems if not p[1].endswith(("/api/v1/shows/alpha/queue",
                                                      "/favicon.ico"))] == []
