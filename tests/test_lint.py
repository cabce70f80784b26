"""The code stays ruff-clean (part of the suite, so CI runs one command)."""

import shutil
import subprocess
import sys

from tests.conftest import ROOT


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    r = subprocess.run([ruff, "check", "bot", "tests"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_imports_point_down_the_layers():
    """The pure core never imports adapters, orchestration or entry points."""
    pure = ["models", "errors", "textlen", "compose", "feed", "episodes"]
    for name in pure:
        path = ROOT / "bot" / f"{name}.py"
        if not path.exists():
            continue
        src = path.read_text()
        for banned in ("bot.store", "bot.fetch", "bot.service", "bot.cli", "bot.worker",
                       "bot.platforms", "requests", "sqlalchemy"):
            assert f"import {banned}" not in src and f"from {banned} " not in src, \
                (name, banned)
    assert sys.version_info >= (3, 11)
