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
