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
