"""Shared test fixtures. Third-party test data is read from ../shared/testdata (CRIER_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRIER_SHARED", ROOT.parent / "shared")) / "testdata"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"shared test data not found at {SHARED}; set CRIER_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def postgres():
    from tests.pg import PostgresServer
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each test that takes this runs twice: on a SQLite file and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crier.db'}"
    return request.getfixturevalue("postgres").new_database()


from tests.world import world  # noqa: E402, F401  (the `world` fixture, for every test module)


@pytest.fixture(scope="session")
def pds(request):
    """Bluesky's own PDS (@atproto/pds) with a PLC stand-in, one for the session (tests/pds.py).
    Its data folder and logs are kept, and their path printed, when a test failed."""
    from tests.pds import LocalPDS
    server = LocalPDS().start()
    yield server
    keep = request.session.testsfailed > 0
    server.stop(keep=keep)
    if keep:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"local PDS logs kept in {server.tmp}")


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright, one for the session (tests/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (no cookies from other tests) and a page in it."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    pg = ctx.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    ctx.close()
