"""`crier ...` run as a host runs it, on a test world: a config file naming the world's feed
and platforms, the secrets in the environment, the world's database."""

from __future__ import annotations

from click.testing import CliRunner

from bot.cli import main
from tests.world import M_TOKEN, X_KEYS


def write_config(w, path, *, masto: str = "", x: str = "", top: str = "") -> None:
    path.write_text(f"""show = "The Test Show"
feed = "{w.settings.feed}"
{top}
[promos]
min_gap = 0

[[accounts]]
platform = "mastodon"
name = "masto"
instance = "{w.masto.url}"
timeout = 2
{masto}
[[accounts]]
platform = "x"
name = "x"
api_base = "{w.x.url}"
timeout = 2
{x}""")


def host_cli(w, monkeypatch, tmp_path):
    """A function running `crier ARGS...` and asserting its exit code (`code=`); its
    `config` attribute is the config file (rewrite it with `write_config`)."""
    cfg = tmp_path / "cli.toml"
    write_config(w, cfg)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", w.db_url)
    monkeypatch.setenv("CRIER_MASTO_ACCESS_TOKEN", M_TOKEN)
    for key, value in X_KEYS.items():
        monkeypatch.setenv(f"CRIER_X_{key.upper()}", value)

    def invoke(*args, code=0):
        result = CliRunner().invoke(main, ["--config", str(cfg), *args])
        assert result.exit_code == code, result.output
        return result
    invoke.config = cfg
    return invoke
