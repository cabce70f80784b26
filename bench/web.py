"""The control room's answer times (issue 15), on the bundled sample show after one run: the
app under uvicorn on 127.0.0.1 (tests/webapp.py's WebApp), a logged-in httpx client, N
requests per route one after another; prints p50 / p95 / max in ms per route, and the login
(argon2 verify). SQLite by default; DATABASE_URL for PostgreSQL. Not a test.

    python bench/web.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args()
    from click.testing import CliRunner

    from bot.cli import main as crier
    from tests.webapp import WebApp
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "crier.toml"
        for name in ("crier.toml", "sample-feed.xml"):
            shutil.copy(ROOT / "config" / name, Path(tmp) / name)
        db = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/crier.db"
        os.environ["DATABASE_URL"] = db
        r = CliRunner().invoke(crier, ["--config", str(cfg), "run", "--once"])
        assert r.exit_code == 0, r.output
        with WebApp(db, cfg) as web:
            web.add_user("host")
            t0 = time.perf_counter()
            c, _csrf = web.login("host")
            login_ms = (time.perf_counter() - t0) * 1e3
            slug = c.get("/api/v1/shows").json()[0]["slug"]
            routes = [f"/shows/{slug}", f"/shows/{slug}/episodes", f"/shows/{slug}/queue",
                      f"/shows/{slug}/calendar?view=month", f"/api/v1/shows/{slug}/episodes",
                      f"/api/v1/shows/{slug}/queue", "/api/v1/shows"]
            print(f"login (form, argon2 verify, session, redirect): {login_ms:.0f} ms")
            print(f"{'route':<44} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")
            for route in routes:
                times = []
                for _ in range(args.requests):
                    t = time.perf_counter()
                    resp = c.get(route)
                    times.append((time.perf_counter() - t) * 1e3)
                    assert resp.status_code == 200, (route, resp.status_code)
                times.sort()
                print(f"{route:<44} {statistics.median(times):7.1f} "
                      f"{times[int(len(times) * .95) - 1]:7.1f} {times[-1]:7.1f}")


if __name__ == "__main__":
    main()
