"""The control room served for real in tests: `WebApp` runs bot.web's app under uvicorn on a
loopback socket (a thread), over a store on `db_url` and a config file, with an httpx client
per user. Shared by the API and browser tests (tests/test_web_*.py)."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import httpx

from bot.deployment import load_deployment
from bot.shows import sync_config
from bot.store import Store
from bot.users import add_user, create_token

PASSWORD = "correct horse battery"


class WebApp:
    """`with WebApp(db_url, config) as web:` the app at `web.url` until the block ends."""

    def __init__(self, db_url: str, config: str | Path, *, clock=None, root_path: str = "",
                 secure_cookies: bool | None = None, session=None, proxies=()):
        self.db_url, self.config = db_url, Path(config)
        self.clock, self.root_path = clock, root_path
        self.secure_cookies, self.session, self.proxies = secure_cookies, session, proxies

    def __enter__(self) -> WebApp:
        import uvicorn

        from bot.web.app import create_app
        self.store = Store(self.db_url)
        self.store.migrate()
        self.deployment = load_deployment(self.config)
        sync_config(self.store, self.deployment.shows, remove=False)
        self.app = create_app(self.store, lambda: load_deployment(self.config), clock=self.clock,
                              secure_cookies=self.secure_cookies,
                              session=self.session)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        cfg = uvicorn.Config(self.app, log_level="warning", access_log=False,
                             root_path=self.root_path,
                             proxy_headers=bool(self.proxies),
                             forwarded_allow_ips=list(self.proxies) or None)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        end = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.02)
        self._sock = sock
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self._sock.close()
        self.store.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_user(self, name: str, *, role: str = "host", shows=(), password: str = PASSWORD):
        from datetime import UTC, datetime
        return add_user(self.store, name, password, role=role, show_slugs=shows,
                        now=datetime.now(UTC))

    def token(self, name: str) -> str:
        from datetime import UTC, datetime
        return create_token(self.store, name, now=datetime.now(UTC))[1]

    def client(self, token: str | None = None) -> httpx.Client:
        """A client talking to the app as a reverse proxy that strips `root_path` does (the
        app's links and redirects carry the prefix; requests come without it)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers,
                            follow_redirects=False, timeout=10)

    def _keep_cookies(self, c: httpx.Client, r: httpx.Response) -> None:
        """Under a root path the cookies are scoped to it (as the browser sees the paths);
        this client talks below the proxy, so it keeps them for every path."""
        if self.root_path:
            for name, value in r.cookies.items():
                c.cookies.set(name, value)

    def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
        """A client logged in as `name` through the login form, and its CSRF token."""
        c = self.client()
        form = c.get("/login")
        self._keep_cookies(c, form)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = c.post("/login", data={"name": name, "password": password, "csrf_token": token,
                                   "next": "/"})
        assert r.status_code == 303, r.text
        self._keep_cookies(c, r)
        page = c.get("/api/v1/me")
        assert page.status_code == 200, page.text
        home = c.get(r.headers["location"].removeprefix(self.root_path), follow_redirects=True)
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text).group(1)
        return c, csrf
