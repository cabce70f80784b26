"""Opening the state database: Heroku-style URLs, unusable data folders and two processes
migrating one fresh database at once (issue 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.errors import StoreError
from bot.store import HEAD, Store
from tests.conftest import ROOT

# A child process: import everything, say it is ready, wait for the start signal, migrate.
RACER = """
import sys, time
from pathlib import Path
from bot.errors import StoreError
from bot.store import Store
url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
store = Store(url)
ready.touch()
while not go.exists():
    time.sleep(0.001)
try:
    store.migrate()
except StoreError as e:
    print(e)
    sys.exit(3)
print("ok")
"""


def _race(url: str, tmp: Path, n: int = 3) -> list[subprocess.CompletedProcess]:
    go = tmp / "go"
    go.unlink(missing_ok=True)
    procs = []
    for i in range(n):
        ready = tmp / f"ready{i}"
        ready.unlink(missing_ok=True)
        procs.append((ready, subprocess.Popen(
            [sys.executable, "-c", RACER, url, str(ready), str(go)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))))
    deadline = time.monotonic() + 60
    while not all(r.exists() for r, _ in procs):
        assert time.monotonic() < deadline, "racers did not start"
        assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs]
        time.sleep(0.01)
    go.touch()
    out = []
    for _, p in procs:
        stdout, _ = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout))
    return out


def test_processes_migrating_a_fresh_database_at_once_all_succeed(db_url, request, tmp_path):
    """The loser waits for the winner; none reports "table already exists"."""
    for r in range(4):
        if db_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path}/race{r}.db"
        else:
            url = request.getfixturevalue("postgres").new_database()
        results = _race(url, tmp_path)
        assert [(p.returncode, p.stdout.strip().splitlines()[-1:]) for p in results] == \
            [(0, ["ok"])] * len(results), [p.stdout for p in results]
        store = Store(url)
        with store.engine.connect() as c:
            assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
        store.close()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_heroku_style_database_urls_work(postgres, scheme):
    url = sa.engine.make_url(postgres.new_database())
    heroku = url.set(drivername=scheme).render_as_string(hide_password=False)
    assert heroku.startswith(f"{scheme}://")
    store = Store(heroku)
    assert store.dialect == "postgresql"
    store.migrate()
    with store.engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD
    store.close()


def test_a_data_folder_that_cannot_be_created_is_one_clear_line(tmp_path):
    (tmp_path / "data").write_text("a file where the folder should be")
    with pytest.raises(StoreError) as e:
        Store(f"sqlite:///{tmp_path}/data/crier.db")
    msg = str(e.value)
    assert f"{tmp_path}/data" in msg and "DATABASE_URL" in msg and "\n" not in msg


def _cli_with_read_only(folder: Path, args: list[str]) -> subprocess.CompletedProcess:
    """Run crier with `folder` read-only: by permissions, or (root writes anywhere) by a
    read-only bind mount in a private mount namespace of the child only."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CRIER_") and k != "DATABASE_URL"}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "bot", *args]
    if os.geteuid() == 0:
        cmd = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" "$0" && '
               'mount -o remount,bind,ro "$0" && exec "$@"', str(folder), *cmd]
    else:
        folder.chmod(0o555)
    try:
        return subprocess.run(cmd, cwd="/", capture_output=True, text=True, env=env,
                              timeout=60)
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("existing", [False, True])
def test_a_read_only_data_folder_is_one_clear_line_from_the_command_line(tmp_path, existing):
    cfg = tmp_path / "cfg"
    (cfg / "data").mkdir(parents=True)
    (cfg / "crier.toml").write_text(f'show = "S"\nfeed = "{ROOT}/config/sample-feed.xml"\n')
    if existing:  # a database made earlier, its folder read-only since
        Store(f"sqlite:///{cfg}/data/crier.db").migrate()
    r = _cli_with_read_only(cfg / "data", ["-c", str(cfg / "crier.toml"), "run", "--once"])
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(cfg / "data") in lines[0] and "DATABASE_URL" in lines[0], lines[0]
