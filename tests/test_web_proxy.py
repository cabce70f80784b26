"""The control room behind a reverse proxy: a real nginx serves it under /crier/ (`--root-path`)
as if it terminated TLS (`X-Forwarded-Proto: https`), and the app believes X-Forwarded-* only
from the proxy addresses it is given (`--proxy`): pages and redirects keep the prefix, the
session cookie is Secure, and a client cannot spoof its address past the login rate limit."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest
import sqlalchemy as sa

from bot.store import login_attempts
from tests.test_web_auth import _config
from tests.webapp import PASSWORD, WebApp

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def nginx(tmp_path):
    """start(app_port) -> the proxy's base URL: /crier/ proxied to the app, prefix stripped."""
    procs = []

    def start(app_port: int) -> str:
        port, t = _free_port(), tmp_path / "nginx"
        t.mkdir()
        user = "user root root;\n" if __import__("os").geteuid() == 0 else ""
        (t / "nginx.conf").write_text(f"""{user}daemon off;
worker_processes 1;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t};
    uwsgi_temp_path {t}; scgi_temp_path {t};
    server {{
        listen 127.0.0.1:{port};
        location /crier/ {{
            proxy_pass http://127.0.0.1:{app_port}/;
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_redirect off;
        }}
    }}
}}
""")
        p = subprocess.Popen([NGINX, "-e", str(t / "error.log"), "-p", str(t), "-c",
                              str(t / "nginx.conf")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
        procs.append(p)
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return f"http://127.0.0.1:{port}"
            except OSError:
                assert p.poll() is None and time.monotonic() < end, p.stderr.read()
                time.sleep(0.05)
    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def _attempt_keys(web) -> set[str]:
    with web.store.tx() as c:
        return set(c.execute(sa.select(login_attempts.c.key)).scalars())


def test_served_under_a_path_behind_nginx(tmp_path, monkeypatch, nginx):
    import httpx
    db = f"sqlite:///{tmp_path / 'crier.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    with WebApp(db, _config(tmp_path, shows=("alpha",)), root_path="/crier",
                proxies=("127.0.0.1",)) as web:
        web.add_user("ana")
        base = nginx(web.port)
        c = httpx.Client(base_url=base, timeout=10)
        r = c.get("/crier/shows/alpha")
        assert r.status_code == 303 and r.headers["location"] == "/crier/login?next=/shows/alpha"
        form = c.get("/crier/login")
        assert form.status_code == 200 and 'action="/crier/login"' in form.text
        assert 'href="/crier/static/app.css"' in form.text
        assert c.get("/crier/static/app.css").status_code == 200
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        login_cookie = form.headers["set-cookie"]
        assert "Secure" in login_cookie and "Path=/crier/login" in login_cookie
        # httpx keeps Secure cookies for https: hand it over as a browser on https would
        c.cookies.set("crier_login", login_cookie.split(";")[0].split("=", 1)[1])
        # a spoofed X-Forwarded-For: nginx replaces it with the address it saw
        c.headers["X-Forwarded-For"] = "203.0.113.9"
        bad = c.post("/crier/login", data={"name": "ana", "password": "wrong password!",
                                           "csrf_token": token})
        assert bad.status_code == 401
        assert _attempt_keys(web) == {"user:ana", "addr:127.0.0.1"}
        token = re.search(r'name="csrf_token" value="([^"]+)"', bad.text).group(1)
        c.cookies.set("crier_login", bad.headers["set-cookie"].split(";")[0].split("=", 1)[1])
        ok = c.post("/crier/login", data={"name": "ana", "password": PASSWORD,
                                          "csrf_token": token, "next": "/shows/alpha"})
        assert ok.status_code == 303 and ok.headers["location"] == "/crier/shows/alpha"
        cookie = next(h for h in ok.headers.get_list("set-cookie")
                      if h.startswith("crier_session="))
        assert "Secure" in cookie and "HttpOnly" in cookie   # the proxy said https
        assert "Path=/crier" in cookie
        sid = cookie.split(";")[0].split("=", 1)[1]
        page = httpx.get(base + "/crier/shows/alpha", cookies={"crier_session": sid})
        assert page.status_code == 200 and 'href="/crier/shows/alpha"' in page.text


@pytest.mark.parametrize(("proxies", "key", "secure"), [
    ((), "addr:127.0.0.1", False),                    # no proxy configured: headers ignored
    (("10.9.9.9",), "addr:127.0.0.1", False),         # not from the configured proxy: ignored
    (("127.0.0.1",), "addr:203.0.113.9", True),       # from the configured proxy: believed
])
def test_forwarded_headers_only_from_a_configured_proxy(tmp_path, monkeypatch, proxies, key,
                                                        secure):
    db = f"sqlite:///{tmp_path / 'crier.db'}"
    monkeypatch.setenv("DATABASE_URL", db)
    with WebApp(db, _config(tmp_path, shows=("alpha",)), proxies=proxies) as web:
        web.add_user("ana")
        c = web.client()
        c.headers.update({"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
        form = c.get("/login")
        assert ("Secure" in form.headers["set-cookie"]) is secure
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        c.cookies.set("crier_login", form.cookies.get("crier_login") or
                      form.headers["set-cookie"].split(";")[0].split("=", 1)[1])
        r = c.post("/login", data={"name": "ana", "password": "wrong password!",
                                   "csrf_token": token})
        assert r.status_code == 401
        assert _attempt_keys(web) == {"user:ana", key}
