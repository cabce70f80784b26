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
    pure = ["models", "errors", "textlen", "plaintext", "compose", "feed"]
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


def test_adapters_do_not_import_each_other():
    """Adapters meet only in the application layer. Exceptions, each one adapter split in two
    files or a dependency stated in the module's docstring:
    - config ↔ deployment: one adapter (config.py validates one show, deployment.py finds the
      shows of a deployment and validates each with it);
    - images → fetch: artwork is downloaded through fetch's guarded session (predates this
      test)."""
    import re
    adapters = ["fetch", "store", "config", "deployment", "images", "notify"]
    allowed = {("config", "deployment"), ("deployment", "config"), ("images", "fetch")}
    for name in adapters:
        src = (ROOT / "bot" / f"{name}.py").read_text()
        imported = set(re.findall(r"^\s*(?:from|import) bot\.(\w+)", src, re.M))
        for other in imported & (set(adapters) | {"platforms"}):
            assert (name, other) in allowed, f"adapter bot/{name}.py imports bot.{other}"
