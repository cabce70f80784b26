"""One real browser for the whole test session: Debian's Chromium (/usr/bin/chromium, or
$CRIER_CHROMIUM) driven by Playwright (nothing downloads a browser). `browser` is a session
fixture (tests/conftest.py); each test takes a fresh context (`page` fixture) so cookies never
leak between tests. The flags are the ones this machine's closed network needs: no background
networking, no component updates, no QUIC."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
# README's screenshots: written there when CRIER_SCREENSHOTS=1 (so a test run leaves the
# checkout clean); otherwise into a temporary folder, taken all the same.
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots" \
    if os.environ.get("CRIER_SCREENSHOTS") else \
    Path(tempfile.gettempdir()) / f"crier-screenshots-{os.getpid()}"


def chromium_path() -> str:
    path = os.environ.get("CRIER_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed: apt-get install chromium "
                           "(.ci/run does it), or set CRIER_CHROMIUM")
    return path


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      args=CHROMIUM_ARGS)
