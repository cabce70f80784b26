"""What a poll reads, by behaviour: no parse when nothing changed, feedparser on only the new
items when something did, and the full parse whenever the pre-scan cannot be sure.

feedparser.parse is wrapped by a spy that calls the real function and counts what it read.
"""

from __future__ import annotations

from datetime import timedelta

import feedparser
import pytest

from tests.feedgen import item, rss
from tests.world import new_episode


@pytest.fixture
def parses(monkeypatch):
    """Every feedparser.parse call: how many items it read."""
    calls: list[int] = []
    real = feedparser.parse

    def spy(*args, **kw):
        result = real(*args, **kw)
        calls.append(len(result.get("entries") or []))
        return result

    monkeypatch.setattr(feedparser, "parse", spy)
    return calls


def big_feed(world, n: int = 40) -> None:
    world.items = [item(i, published=world.clock.now - timedelta(days=3 * (n - i)))
                   for i in range(1, n + 1)]
    world.publish_feed()


def test_unchanged_304_does_not_parse(world, parses):
    world.cycle()
    parses.clear()
    report, _ = world.cycle()
    assert report.result == "unchanged" and parses == []


def test_unchanged_200_body_does_not_call_feedparser(world, parses):
    world.feed_srv.set_feed("/feed.xml", rss(world.items), etag=False, last_modified=False)
    world.cycle()
    parses.clear()
    world.feed_srv.requests.clear()
    report, _ = world.cycle()
    assert len(world.feed_srv.requests) == 1  # the body was downloaded (and hashed)...
    assert report.result == "unchanged" and parses == []  # ...and not parsed


def item_cache(world):
    from bot.feed import ItemCache
    return ItemCache.unpack(world.store.load_item_cache(world.store.all_feeds()[0].id))


@pytest.mark.parametrize("big", [False, True])
def test_first_run_parses_in_full_once(world, parses, monkeypatch, big):
    """A feed big enough to be read with the item cache later (here: the threshold moved
    down) has its items' digests learned by a scan that takes the channel (and any item it
    cannot read alone) from the full parse instead of running feedparser again; a small
    feed's are learned by its next changed poll (it scans in full anyway)."""
    import bot.feed
    if big:
        monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    big_feed(world)
    report, _ = world.cycle()
    assert report.result == "baseline" and report.baseline == 40
    assert parses == [40]  # every item, once
    assert len(item_cache(world)) == (40 if big else 0)
    feed_id = world.store.all_feeds()[0].id
    assert (world.store.load_item_cache(feed_id) is None) == (not big)  # no empty row written
    new_episode(world, 41)
    report, _ = world.cycle()
    assert report.result == "new" and len(report.announced) == 1
    assert len(item_cache(world)) == 41


def test_first_run_parses_once_when_the_scan_needs_feedparser_for_some_items(
        world, parses, monkeypatch):
    """Items the scanner cannot read alone (an HTML-looking title) are taken from the one
    full parse too; the item cache is the same as a scan with its own feedparser run."""
    import bot.feed
    from bot.feed import ItemCache, next_item_cache, scan_feed
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    big_feed(world, 12)
    body = rss(world.items).replace(b"<title>Episode 3", b"<title>Episode 3 &lt;b&gt;x&lt;/b&gt;")
    world.feed_srv.set_feed("/feed.xml", body)
    report, _ = world.cycle()
    assert report.result == "baseline" and report.baseline == 12
    assert parses == [12]
    parses.clear()
    alone = scan_feed(body, url=world.settings.feed)
    assert parses == [2]  # (alone, the scan runs feedparser on that item and the first)
    assert [it.exact for it in alone.items].count(False) == 1
    expected = next_item_cache(alone, range(12), ItemCache()).pack()
    assert world.store.load_item_cache(world.store.all_feeds()[0].id) == expected


def test_a_changed_feed_parses_only_the_new_items(world, parses):
    big_feed(world)
    world.cycle()
    parses.clear()
    it = new_episode(world, 41)
    report, outcomes = world.cycle()
    assert report.result == "new" and len(report.announced) == 1
    # the channel alone (for its link), then the new item (after the document's first item,
    # which sets feedparser's state as in the whole document)
    assert parses == [0, 2]
    assert all(it.title in o.text for o in outcomes)
    assert {o.status for o in outcomes} == {"sent"}


def test_the_new_episode_is_recorded_exactly_as_a_full_parse_reads_it(world):
    big_feed(world)
    world.cycle()
    new_episode(world, 41)
    world.cycle()
    row = world.store.latest_episode(world.store.all_feeds()[0].id)
    from bot.feed import parse_feed
    from bot.service import episode_from_data
    full = parse_feed(rss(world.items), url=world.settings.feed)
    assert episode_from_data(row.data) == next(e for e in full.episodes
                                                  if e.guid == row.guid)


def test_changed_feed_with_nothing_new_parses_no_item(world, parses):
    big_feed(world)
    world.cycle()
    parses.clear()
    world.items[3] = world.items[3].with_(notes="<p>Edited show notes.</p>")
    world.publish_feed()
    report, _ = world.cycle()
    assert report.result == "nothing-new"
    assert parses == [0]  # the channel's fields only


def test_guid_rewrite_on_the_scan_path_announces_nothing_and_is_learned(world, parses):
    big_feed(world)
    world.cycle()
    world.items = [i.with_(guid=f"https://newhost.example/guid/{i.n}") for i in world.items]
    world.publish_feed()
    parses.clear()
    report, outcomes = world.cycle()
    assert report.result == "nothing-new" and outcomes == []
    assert parses == [0]
    # the new GUIDs alone now identify the episodes
    world.items = [i.with_(enclosure=i.enclosure.replace("buzzsprout.com", "cdn.example"),
                           link=i.link + "?x=1", title=i.title + " (remastered)")
                   for i in world.items]
    world.publish_feed()
    report, _ = world.cycle()
    assert report.result == "nothing-new"


def test_malformed_changed_feed_falls_back_to_the_full_parse(world, parses):
    big_feed(world, 10)
    world.cycle()
    new_episode(world, 11)
    body = rss(world.items).replace(b"<title>Episode 11", b"<title>Episode&nbsp;11")
    world.feed_srv.set_feed("/feed.xml", body)
    parses.clear()
    report, _ = world.cycle()
    assert report.result == "new" and len(report.announced) == 1
    assert parses == [11]  # one full (loose) parse of every item
    assert any("malformed" in w for w in report.warnings)


def test_items_unchanged_since_the_last_poll_are_only_hashed(world, parses, monkeypatch):
    """The item cache: after the first run, a changed poll reads only the items whose bytes
    changed; the rest are known by their digests (even on a later poll, and across a
    restart: the cache lives in the database)."""
    import bot.feed
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    scans: list = []
    real = bot.feed._scan_known

    def spy(*args, **kw):
        scans.append(real(*args, **kw))
        return scans[-1]

    monkeypatch.setattr(bot.feed, "_scan_known", spy)
    big_feed(world)
    world.cycle()
    for n in (41, 42):
        new_episode(world, n)
        report, outcomes = world.cycle()
        assert report.result == "new" and len(report.announced) == 1
        assert {o.status for o in outcomes} == {"sent"}
        # read: the new item, and the document's first item (always read: see _scan_known)
        read = {it.guid for it in scans[-1].items if not it.known}
        assert read == {f"Buzzsprout-{1000000 + n}", scans[-1].items[0].guid}
        assert scans[-1].reused == n - len(read)
    # and the announcement is the full parse's episode, as without the cache
    row = world.store.latest_episode(world.store.all_feeds()[0].id)
    from bot.feed import parse_feed
    from bot.service import episode_from_data
    full = parse_feed(rss(world.items), url=world.settings.feed)
    assert episode_from_data(row.data) == next(e for e in full.episodes
                                                  if e.guid == row.guid)


def test_a_lost_item_cache_costs_one_slower_poll(world, monkeypatch):
    import bot.feed
    from bot.store import item_caches
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    big_feed(world)
    world.cycle()
    with world.store.tx() as c:
        c.execute(item_caches.delete())
    new_episode(world, 41)
    report, _ = world.cycle()
    assert report.result == "new" and len(report.announced) == 1
    assert world.store.load_item_cache(world.store.all_feeds()[0].id)  # rebuilt
