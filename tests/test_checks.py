"""`crier check` checks everything that can fail later, each problem on one line, against the
local feed, Mastodon and X servers with the real clients."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tests.hostcli import host_cli, write_config


@pytest.fixture
def cli(world, monkeypatch, tmp_path):
    return host_cli(world, monkeypatch, tmp_path)


def lines(out: str) -> dict[str, str]:
    """check name → its line."""
    got = {}
    for line in out.strip().splitlines():
        mark, rest = line.split(None, 1)
        name = rest.split("  ")[0].strip()
        got[name] = line
    return got


def test_everything_checked_and_passing(world, cli):
    out = cli("check").output
    got = lines(out)
    assert list(got) == ["config", "database", "account masto", "account x", "feed",
                         "template masto", "template x"]
    assert all(line.startswith("ok ") for line in got.values()), out
    assert "@TestShow" in got["account x"] and "limit 280" in got["account x"]
    assert "5 episodes" in got["feed"] and "Episode 5" in got["feed"]
    data = json.loads(cli("check", "--json").output)
    assert [c["name"] for c in data] == list(got) and all(c["ok"] for c in data)
    assert set(data[0]) == {"name", "ok", "detail"}


def test_each_problem_is_one_line_and_exit_1(world, cli):
    write_config(world, cli.config,
                 masto='template = "New: {{ title }}\\n{{ summary | nosuchfilter }}"\n',
                 x='alt_template = "Cover of {{ title }"\n')
    world.x.revoke_token()
    out = cli("check", code=1).output
    got = lines(out)
    assert got["account x"].startswith("FAILED") and "credentials" in got["account x"]
    assert got["template masto"].startswith("FAILED")
    assert "accounts.masto.template" in got["template masto"] and "nosuchfilter" in out
    assert got["template x"].startswith("FAILED")
    assert "accounts.x.alt_template" in got["template x"] and "line 1" in got["template x"]
    assert got["feed"].startswith("ok") and got["account masto"].startswith("ok")
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == len(got)      # one line each
    data = json.loads(cli("check", "--json", code=1).output)
    assert {c["name"] for c in data if not c["ok"]} == {"account x", "template masto",
                                                         "template x"}


def test_a_broken_feed_fails_the_check_and_skips_the_templates(world, cli):
    world.feed_srv.set_feed("/feed.xml", "<html><body>Moved</body></html>")
    got = lines(cli("check", code=1).output)
    assert got["feed"].startswith("FAILED") and "feed" in got["feed"]
    assert "template masto" not in got                 # not claimed to pass


def test_artwork_that_cannot_be_read_is_reported(world, cli):
    world.items = [it.with_(image=world.feed_srv.url + "/missing.png") for it in world.items]
    world.publish_feed()
    write_config(world, cli.config, masto='media = "artwork"\n')
    got = lines(cli("check", code=1).output)
    assert got["artwork masto"].startswith("FAILED") and "/missing.png" in got["artwork masto"]
    assert got["template masto"].startswith("ok")


def test_missing_credentials_are_reported_by_name(world):
    from bot.checks import run_checks
    x = next(a for a in world.settings.accounts if a.name == "x")
    unset = dataclasses.replace(x, secrets={}, missing_secrets=(
        "CRIER_X_ACCESS_TOKEN", "CRIER_X_ACCESS_TOKEN_SECRET"))
    settings = dataclasses.replace(world.settings, accounts=(
        *[a for a in world.settings.accounts if a.name != "x"], unset))
    checks = {c.name: c for c in run_checks(lambda: settings)}
    assert not checks["account x"].ok
    assert "CRIER_X_ACCESS_TOKEN, CRIER_X_ACCESS_TOKEN_SECRET" in checks["account x"].detail
    assert checks["account masto"].ok and checks["template x"].ok


def test_a_queued_post_that_no_longer_composes_is_reported(world, cli, tmp_path):
    from PIL import Image
    world.configure(min_gap=0)
    world.cycle()
    img = tmp_path / "cover.png"
    Image.new("RGB", (8, 8), "red").save(img)
    pid, *_ = world.svc.queue.add("Look", at="in 2h", image=str(img), alt="A red square")
    assert lines(cli("check").output)[f"queued post #{pid}"].startswith("ok")
    img.unlink()
    got = lines(cli("check", code=1).output)
    assert got[f"queued post #{pid}"].startswith("FAILED") and "no such file" in \
        got[f"queued post #{pid}"]


def test_config_errors_are_a_failed_check(world, cli):
    cli.config.write_text('show = "x"\nfeed = "f.xml"\npol_interval = 5\n')
    data = json.loads(cli("check", "--json", code=1).output)
    assert len(data) == 1 and data[0]["name"] == "config" and not data[0]["ok"]
    assert "pol_interval" in data[0]["detail"]


def test_feed_artwork_is_checked_as_the_worker_fetches_it(world, cli):
    """check fetches the feed's artwork with the worker's rules: a loopback image is refused
    unless allow_private_networks names loopback, and then it is read."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), (30, 120, 200)).save(buf, "PNG")
    world.feed_srv.set_feed("/art.png", buf.getvalue(), content_type="image/png")
    world.items = [it.with_(image=world.feed_srv.url + "/art.png") for it in world.items]
    world.publish_feed()
    write_config(world, cli.config, masto='media = "artwork"\n')
    got = lines(cli("check", code=1).output)
    assert got["artwork masto"].startswith("FAILED")
    assert "allow_private_networks" in got["artwork masto"]
    write_config(world, cli.config, masto='media = "artwork"\n',
                 top='allow_private_networks = ["127.0.0.0/8"]\n')
    got = lines(cli("check").output)
    assert got["artwork masto"].startswith("ok") and "image/png" in got["artwork masto"]


def test_no_secret_in_check_status_or_history(world, cli, monkeypatch):
    """What the host's commands print never carries a token: checked with a refused X key
    (its error path) and a working Mastodon token, in text and JSON."""
    from tests.world import M_TOKEN
    world.cycle()
    wrong = "WRONG-SECRET-consumer-7f3e9a"
    monkeypatch.setenv("CRIER_X_CONSUMER_SECRET", wrong)
    outs = [cli("check", code=1).output, cli("check", "--json", code=1).output,
            cli("status").output, cli("status", "--json").output,
            cli("history").output, cli("history", "--json").output]
    assert "FAILED" in outs[0] and "account x" in outs[0]
    for out in outs:
        assert M_TOKEN not in out and wrong not in out and "Traceback" not in out
