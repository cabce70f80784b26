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
    pure = ["models", "errors", "textlen", "plaintext", "compose", "feed", "episodes"]
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
    adapters = ["fetch", "store", "config", "deployment", "images", "notify", "vault", "hive"]
    allowed = {("config", "deployment"), ("deployment", "config"), ("images", "fetch")}
    for name in adapters:
        src = (ROOT / "bot" / f"{name}.py").read_text()
        imported = set(re.findall(r"^\s*(?:from|import) bot\.(\w+)", src, re.M))
        for other in imported & (set(adapters) | {"platforms"}):
            assert (name, other) in allowed, f"adapter bot/{name}.py imports bot.{other}"


# The application layer (one module per concern) and the entry points; see README, Development.
APPLICATION = {"service", "polling", "composer", "dispatch", "promos", "listeners", "status",
               "calendar",
               "shows", "showscope", "fleet", "publishers", "locks", "outbox", "alerts", "checks",
               "history", "held", "catalog", "removal",
               "artwork", "users", "connect",
               "threads_tokens", "quotas", "push", "websub", "podping"}
# cli: the package bot/cli/ (one file a concern); web: the package bot/web/ (the control room)
ENTRY_POINTS = {"cli", "worker", "__main__", "web"}
ADAPTERS = {"fetch", "store", "config", "deployment", "images", "notify", "netguard", "tomlpos",
            "hive",
            "platforms", "vault"}
PURE = {"models", "errors", "textlen", "plaintext", "expatsax", "compose", "feed", "episodes",
        "cadence",
        "schedule", "spacing", "share", "community", "xcost"}


def _imported(path) -> set[str]:
    """The `bot` modules a file imports (also inside functions), by their first name."""
    import re
    found = re.findall(r"^\s*(?:from|import)\s+bot\.([a-z_]+)", path.read_text(), re.M)
    return set(found)


def test_every_module_has_a_layer_and_imports_only_downwards():
    files = {p.stem: p for p in (ROOT / "bot").glob("*.py") if p.stem != "__init__"}
    for package in ("platforms", "cli", "web"):  # a package is one module's layer
        files.update({f"{package}/{p.stem}": p for p in (ROOT / "bot" / package).glob("*.py")})
    unplaced = [n for n in files if n.split("/")[0] not in
                APPLICATION | ENTRY_POINTS | ADAPTERS | PURE]
    assert not unplaced, f"give these modules a layer in tests/test_lint.py: {unplaced}"
    for name, path in files.items():
        layer = name.split("/")[0]
        imported = _imported(path)
        if layer in PURE:
            assert not imported & (ADAPTERS | APPLICATION | ENTRY_POINTS), (name, imported)
        elif layer in ADAPTERS:
            assert not imported & (APPLICATION | ENTRY_POINTS), (name, imported)
        elif layer in APPLICATION:
            assert not imported & ENTRY_POINTS, (name, imported)


def test_application_modules_are_small_and_say_what_they_are_for():
    import ast
    for name in sorted(APPLICATION):
        path = ROOT / "bot" / f"{name}.py"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{name}.py has no docstring"
        lines = path.read_text().count("\n")
        assert lines <= 500, f"{name}.py has {lines} lines: split it by concern"


def test_what_was_imported_from_bot_service_still_is():
    """Code and tests imported these from bot.service before it was split by concern."""
    import bot.service
    for name in ("Service", "PollReport", "Outcome", "build_publishers", "utcnow",
                 "episode_to_data", "episode_from_data", "PromoQueue", "PromoPreview",
                 "_FeedItems", "_post_from_row", "QUIET_WRITE", "ARTWORK_PATIENCE"):
        assert hasattr(bot.service, name), name


def test_entry_points_are_thin_files_that_say_what_they_are_for():
    """The command line is split by concern (bot/cli/): each file small enough to hold in one's
    head, with a docstring."""
    import ast
    paths = [ROOT / "bot" / "worker.py", ROOT / "bot" / "__main__.py",
             *sorted((ROOT / "bot" / "cli").glob("*.py")),
             *sorted((ROOT / "bot" / "web").glob("*.py"))]
    for path in paths:
        src = path.read_text()
        assert ast.get_docstring(ast.parse(src)), f"{path.name} has no docstring"
        lines = src.count("\n")
        assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"
