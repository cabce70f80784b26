"""Feeds from the wild and feeds broken in known ways: every one polled and composed without a
crash, each broken kind with its documented behaviour; a fuzz test of parser and composer; and
the security basics (no secret in logs, errors or status)."""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import asdict
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.compose import compose_episode
from bot.errors import ParseError
from bot.feed import parse_feed, scan_feed
from bot.service import Service, build_publishers
from bot.store import Store
from bot.textlen import MASTODON_DEFAULT_RULES, X_RULES, count
from tests.conftest import SHARED
from tests.feedgen import item, rss
from tests.world import M_TOKEN, new_episode

FEEDS = SHARED / "feeds"
ALL = sorted(p for p in FEEDS.rglob("*") if p.is_file()) if FEEDS.is_dir() else []


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(FEEDS)))
def test_every_shared_feed_is_polled_and_composed_without_a_crash(path, tmp_path):
    """A first poll records the back catalogue (or says exactly what is wrong); the newest
    episode composes within both limits."""
    from bot.config import Account, Settings
    settings = Settings(path=tmp_path / "crier.toml", show="Wild", feed=str(path),
                        database_url=f"sqlite:///{tmp_path}/c.db",
                        accounts=(Account(name="m", platform="mastodon",
                                          instance="https://m.example", dry_run=True),
                                  Account(name="x", platform="x", dry_run=True)))
    store = Store(settings.database_url)
    store.migrate()
    svc = Service(settings, store, publishers=build_publishers(settings, dry_run=True))
    report = svc.poll(force=True)
    assert report.result in ("baseline", "error"), report
    if report.result == "error":
        assert report.error and str(path.name) in report.error or "feed" in report.error
    else:
        outcomes = svc.dispatch()
        assert all(o.status == "dry_run" for o in outcomes)
        try:
            feed = parse_feed(path.read_bytes(), url=f"https://example.com/{path.name}")
        except ParseError:
            feed = None
        for ep in (feed.episodes[:1] if feed else ()):
            for rules in (X_RULES, MASTODON_DEFAULT_RULES):
                c = compose_episode(ep, show=feed.title or "Wild", rules=rules)
                assert count(c.text, rules) <= rules.limit
    store.close()


# -- broken in known ways: the documented behaviour -------------------------------------------

def test_truncated_xml_is_read_as_far_as_it_goes_or_refused_clearly(world):
    world.cycle()
    new_episode(world)
    body = rss(world.items)
    world.feed_srv.set_feed("/feed.xml", body[: len(body) * 2 // 3])
    report, _ = world.cycle()
    # feedparser's loose parser reads what is there; a cut item is not announced half-made
    assert report.result in ("new", "nothing-new", "error")
    assert any("malformed" in w for w in report.warnings) or report.result == "error"
    world.publish_feed()
    report, outcomes = world.cycle()
    world.drain()
    masto, x = world.texts()
    assert sum("Episode 6" in t for t in masto) == 1 and sum("Episode 6" in t for t in x) == 1


def test_wrong_encoding_declaration_is_read_and_reported(world):
    world.cycle()
    new_episode(world, title="Café société")
    body = rss(world.items).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    world.feed_srv.set_feed("/feed.xml", body)
    report, outcomes = world.cycle()
    assert report.result == "new"
    assert outcomes and all(o.status == "sent" for o in outcomes)


def test_html_instead_of_xml_is_an_error_on_the_feed_and_nothing_is_posted(world):
    world.cycle()
    world.feed_srv.set_feed("/feed.xml", b"<!doctype html><html><body><h1>Maintenance"
                                         b"</h1></body></html>", content_type="text/html")
    report, outcomes = world.cycle()
    assert report.result == "error" and outcomes == []
    assert "feed" in report.error.lower()
    assert world.store.all_feeds()[0].error_count == 1


def test_a_20_mb_feed_is_polled_and_its_new_episode_announced(world):
    world.cycle()
    pad = "<p>" + "long show notes " * 4000 + "</p>"  # ~64 KB per item
    world.items = [item(n, published=world.clock.now - timedelta(days=400 - n)).with_(
        notes=pad) for n in range(1, 320)]
    world.publish_feed()
    assert len(rss(world.items)) > 20_000_000
    world.store.close()
    world.start()
    report, _ = world.cycle()
    assert report.result in ("new", "nothing-new", "baseline") or report.held
    held = world.store.episodes_with_status("held")
    assert held or report.result != "error"  # the flood guard holds a back catalogue


def test_items_without_link_guid_or_date(world):
    world.cycle()
    it = item(6, published=world.clock.now - timedelta(minutes=1)).with_(
        guid="", link="", enclosure="")
    world.items.append(it)
    world.publish_feed()
    report, outcomes = world.cycle()
    assert report.result == "new" and len(outcomes) == 2  # title + date identify it
    nothing = item(7, published=world.clock.now - timedelta(minutes=1)).with_(
        guid="", link="", enclosure="", title="")
    world.items.append(nothing)
    world.publish_feed()
    report, _ = world.cycle()
    assert any("skipped an item with no GUID" in w for w in report.warnings)


def test_urls_that_cannot_be_split_are_not_links_and_crash_nothing(world):
    """urllib refuses "https://[host/..." (an unclosed IPv6 bracket): the item is still an
    episode, announced once, without the link nobody could open."""
    world.cycle()
    it = item(6, published=world.clock.now - timedelta(minutes=1)).with_(
        link="https://[www.buzzsprout.com/2046234/episodes/6",
        enclosure="https://[cdn.example/ep-6.mp3", image="https://[cdn.example/art.jpg")
    world.items.append(it)
    world.publish_feed()
    report, outcomes = world.cycle()
    world.drain()
    assert report.result == "new" and len(outcomes) == 2
    masto, x = world.texts()
    for texts in (masto, x):
        (text,) = [t for t in texts if "Episode 6" in t]
        assert "[" not in text


def test_duplicate_guids_and_oldest_first_order(world):
    world.cycle()
    a = item(6, published=world.clock.now - timedelta(minutes=10))
    b = item(7, published=world.clock.now - timedelta(minutes=5)).with_(guid=a.guid)
    world.items += [a, b]
    body = rss(world.items).decode()
    blocks = re.findall(r"<item>.*?</item>", body, re.S)
    start, end = body.index("<item>"), body.rindex("</item>") + len("</item>")
    oldest_first = body[:start] + "\n".join(reversed(blocks)) + body[end:]
    assert oldest_first != body  # (some hosts list items oldest first)
    world.feed_srv.set_feed("/feed.xml", oldest_first.encode())
    report, outcomes = world.cycle()
    world.drain()
    masto, _ = world.texts()
    # two different files and titles under one GUID: two episodes, each announced once
    assert sum("Episode 6" in t for t in masto) == 1 and sum("Episode 7" in t for t in masto) == 1
    assert [t for t in masto if "Episode 6" in t or "Episode 7" in t][0].count("Episode 6") == 1


# -- fuzz --------------------------------------------------------------------------------------

SEED_FEED = rss([item(n) for n in range(1, 6)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SEED_FEED) - 1), st.integers(0, 3),
                          st.binary(max_size=8)), max_size=6))
@example(edits=[(444, 0, b"[")])   # found by this test: "https://[www.buzzsprout.com/..."
@example(edits=[(363, 1, b"\0" * 8), (725, 1, b"")])   # and this: a 360-character show name
def test_mutated_feeds_never_crash_the_parser_scanner_or_composer(edits):
    data = bytearray(SEED_FEED)
    for pos, op, blob in edits:
        if op == 0:
            data[pos:pos] = blob
        elif op == 1:
            del data[pos:pos + len(blob) + 1]
        elif op == 2:
            data[pos:pos + len(blob)] = blob
        else:
            data = data[:pos]
    data = bytes(data)
    try:
        parsed = parse_feed(data)
    except ParseError:
        parsed = None
    scan = scan_feed(data)
    if scan is not None:
        assert parsed is not None
        from bot.feed import feed_identity_keys
        assert scan.keys == feed_identity_keys(parsed)
    for ep in (parsed.episodes[:2] if parsed else ()):
        for rules in (X_RULES, MASTODON_DEFAULT_RULES):
            c = compose_episode(ep, show=parsed.title or "Show", rules=rules)
            assert count(c.text, rules) <= rules.limit


# -- security basics ---------------------------------------------------------------------------

LONG_KEYS = dict(consumer_key="ck-SECRET-5f1e2d", consumer_secret="cs-SECRET-9a8b7c",
                 access_token="99-SECRET-at-4d3c", access_token_secret="ats-SECRET-1a2b")


def test_secrets_never_reach_logs_errors_or_status(world, caplog):
    """Everything logged at DEBUG, the status and every delivery row: no token, no key,
    through successes, 500s, a 401 and a revoked token."""
    import dataclasses

    from bot.config import Account, Secret
    from tests.fakes.x_server import XServer
    caplog.set_level(logging.DEBUG)
    with XServer(**LONG_KEYS, username="Bird", user_id="99") as bird:
        world.settings = dataclasses.replace(world.settings, accounts=world.settings.accounts + (
            Account(name="bird", platform="x", api_base=bird.url,
                    timeout=2.0, secrets={k: Secret(v) for k, v in LONG_KEYS.items()}),))
        world.start()
        world.cycle()
        new_episode(world)
        world.masto.fail_next(500)
        bird.fail_next(401)
        world.cycle()
        world.masto.revoke_token()
        bird.revoke_token()
        world.clock.advance(hours=2)
        world.svc.dispatch()
        status = json.dumps(world.svc.status(), default=str)
        rows = json.dumps([asdict(d) for d in world.rows()], default=str)
    assert "bird" in rows  # (the account was used)
    for secret in [M_TOKEN, *LONG_KEYS.values()]:
        assert secret not in caplog.text, secret
        assert secret not in status and secret not in rows, secret


def test_only_http_urls_and_capped_downloads(tmp_path):
    import requests

    from bot.errors import FetchError
    from bot.fetch import fetch_feed
    for url in ("ftp://example.com/feed.xml", "gopher://example.com/", "javascript:alert(1)"):
        with pytest.raises(FetchError, match="only http"):
            fetch_feed(url, session=requests.Session())
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(FetchError, match="cap"):
        fetch_feed(str(big), session=requests.Session(), max_bytes=1024)


def test_the_database_file_is_owner_only(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/sub/crier.db")
    store.migrate()
    assert oct((tmp_path / "sub" / "crier.db").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "sub").stat().st_mode & 0o777) == "0o700"
    store.close()


def test_random_is_seeded_for_replays():
    assert random.Random(1).random() == random.Random(1).random()
