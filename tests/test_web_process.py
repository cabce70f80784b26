"""The control room beside the worker, as the host runs them, on SQLite and PostgreSQL: in one
process (`crier run --web`) and in two (`crier run` + `crier web`). The app answers while the
worker polls and posts (dry run on the bundled sample show); SIGTERM stops both cleanly."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from bot.cli import main
from tests.conftest import ROOT
from tests.webapp import PASSWORD


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def deploy(tmp_path, db_url, monkeypatch):
    cfg = tmp_path / "config"
    cfg.mkdir()
    for name in ("crier.toml", "sample-feed.xml"):
        shutil.copy(ROOT / "config" / name, cfg / name)
    with open(cfg / "crier.toml", "a") as f:   # no Hive node beyond loopback in tests
        f.write("\n[podping]\nenabled = false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
    env.update(DATABASE_URL=db_url, PYTHONPATH=str(ROOT), CRIER_CONFIG=str(cfg / "crier.toml"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    r = CliRunner().invoke(main, ["--config", str(cfg / "crier.toml"), "users", "add", "host",
                                  "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    procs: list[subprocess.Popen] = []

    def start(*args):
        p = subprocess.Popen([sys.executable, "-m", "bot", *args], env=env, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(p)
        return p
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def _logged_in(base: str, proc) -> httpx.Client:
    end = time.monotonic() + 30
    while True:
        try:
            httpx.get(base + "/login", timeout=1)
            break
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < end, "the control room did not start"
            time.sleep(0.1)
    c = httpx.Client(base_url=base, timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"name": "host", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text
    return c


def _polled(c: httpx.Client) -> dict:
    end = time.monotonic() + 30
    while True:
        shows = c.get("/api/v1/shows").json()
        if shows and shows[0]["last_poll_at"]:
            return shows[0]
        assert time.monotonic() < end, shows
        time.sleep(0.2)


def _stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_worker_and_control_room_in_one_process(deploy):
    port = _port()
    proc = deploy("-v", "run", "--web", "--port", str(port))
    c = _logged_in(f"http://127.0.0.1:{port}", proc)
    show = _polled(c)                     # the worker of this same process polled the feed
    assert show["name"] == "The Blockchain Socialist" and show["error_count"] == 0
    assert "The Blockchain Socialist" in c.get("/", follow_redirects=True).text
    out = _stop(proc)
    assert "stopped" in out
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)


def test_worker_and_control_room_in_two_processes(deploy):
    worker = deploy("-v", "run")
    port = _port()
    web = deploy("web", "--port", str(port))
    c = _logged_in(f"http://127.0.0.1:{port}", web)
    show = _polled(c)                     # what the other process did, seen through the app
    assert show["error_count"] == 0
    _stop(web)
    assert "stopped" in _stop(worker)


def test_web_with_once_is_refused(deploy):
    p = deploy("run", "--once", "--web")
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1 and "not with --once" in out
