"""A throwaway PostgreSQL server for the test session (real server, loopback only).

Uses $CRIER_TEST_DATABASE_URL when set (a server you run yourself; each test gets its own
database on it). Otherwise starts a private cluster with the PostgreSQL server binaries
(`initdb`, `pg_ctl`; Debian: `apt-get install postgresql`), as the `postgres` user when the
tests run as root, and stops it at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if cands:
        return Path(cands[-1]).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
                       "(Debian: apt-get install postgresql) or set CRIER_TEST_DATABASE_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.external = os.environ.get("CRIER_TEST_DATABASE_URL")
        self.tmp: str | None = None
        self.port = 0
        self._n = 0

    def start(self) -> None:
        if self.external:
            return
        bindir = _bindir()
        self.tmp = tempfile.mkdtemp(prefix="crier-pg-")
        data = Path(self.tmp) / "data"
        as_root = os.geteuid() == 0
        prefix: list[str] = []
        if as_root:
            os.chmod(self.tmp, 0o755)
            shutil.chown(self.tmp, "postgres", "postgres")
            prefix = ["runuser", "-u", "postgres", "--"]
        self.port = _free_port()
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, env=env)
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l",
                                 str(Path(self.tmp) / "log"), "-o",
                                 f"-c listen_addresses=127.0.0.1 -p {self.port} "
                                 f"-k {self.tmp} -c fsync=off -c full_page_writes=off",
                                 "start"], check=True, capture_output=True, env=env)
        self._prefix, self._bindir, self._data = prefix, bindir, data

    def stop(self) -> None:
        if self.external or not self.tmp:
            return
        subprocess.run(self._prefix + [str(self._bindir / "pg_ctl"), "-D", str(self._data),
                                       "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        if self.external:
            return self.external
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import sqlalchemy as sa
        self._n += 1
        name = f"crier_test_{os.getpid()}_{self._n}"
        eng = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        eng.dispose()
        return str(sa.engine.make_url(self.admin_url).set(database=name)
                   .render_as_string(hide_password=False))
