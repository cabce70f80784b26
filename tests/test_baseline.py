"""The first run of a show (the baseline), made cheap: a feed's new episodes go in with one
INSERT (ids in the order they are announced: oldest first) and their identity keys with one
more, exactly as one at a time did; an episode's stored data leaves out what is at its default
and reads back the same. (That the first run runs feedparser once is in
tests/test_poll_perf_behaviour.py.)"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from bot.episodes import episode_from_data, episode_to_data
from bot.feed import feed_identity_keys, parse_feed
from bot.models import Episode, Person
from bot.store import Store, episode_keys, episodes, storage_key
from tests.conftest import SHARED
from tests.feedgen import item, rss


def shuffled_feed(items, seed: int = 3) -> bytes:
    """rss() with its items in a random document order (feeds are not always sorted)."""
    lines = rss(items).split(b"\n")
    body = [ln for ln in lines if ln.startswith(b"<item>")]
    random.Random(seed).shuffle(body)
    head = [ln for ln in lines if not ln.startswith(b"<item>") and ln != b"</channel></rss>"]
    return b"\n".join(head + body + [b"</channel></rss>"])


def rows_by_id(store: Store) -> list[dict]:
    with store.tx() as c:
        return [dict(r) for r in c.execute(sa.select(episodes).order_by(episodes.c.id)
                                           ).mappings()]


def keys_by_episode(store: Store) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    with store.tx() as c:
        for k, eid in c.execute(sa.select(episode_keys.c.key, episode_keys.c.episode_id)):
            out.setdefault(eid, set()).add(k)
    return out


def test_first_run_ids_follow_publication_with_each_episodes_keys(world):
    """30 items in a shuffled document: ids ascend oldest first, each id holds exactly its
    item's identity keys, and the backfilled newest two come last (announced, enqueued)."""
    now = world.clock.now
    world.items = [item(n, published=now - timedelta(days=3 * (31 - n))) for n in range(1, 31)]
    body = shuffled_feed(world.items)
    world.feed_srv.set_feed("/feed.xml", body)
    world.configure(first_run_backfill=2)
    report = world.svc.poll(force=True)
    assert report.result == "baseline" and report.baseline == 28
    rows = rows_by_id(world.store)
    assert [r["guid"] for r in rows] == [it.guid for it in world.items]  # oldest first
    assert [r["status"] for r in rows] == ["baseline"] * 28 + ["announced"] * 2
    assert report.announced == [r["id"] for r in rows[-2:]]
    parsed = parse_feed(body, url=world.settings.feed)
    expected = {ep.guid: {storage_key(k) for k in keys}
                for ep, keys in zip(parsed.episodes, feed_identity_keys(parsed), strict=True)}
    held = keys_by_episode(world.store)
    assert {r["id"]: expected[r["guid"]] for r in rows} == held
    # and each row is the full parse's episode
    by_guid = {ep.guid: ep for ep in parsed.episodes}
    assert all(episode_from_data(r["data"]) == by_guid[r["guid"]] for r in rows)
    # the backfilled ones were enqueued for both accounts, in order
    queued = sorted((d.post_id, d.account, d.episode_id) for d in world.rows())
    assert [(a, e) for _, a, e in queued] == [
        (a, e) for e in report.announced for a in ("masto", "x")]


def test_a_flood_after_the_first_run_is_held_in_order_with_its_keys(world):
    """The new-episodes path: several at once go in with one INSERT too."""
    world.svc.poll(force=True)
    first = {r["id"] for r in rows_by_id(world.store)}
    now = world.clock.now
    world.items += [item(n, published=now - timedelta(hours=12 - n)) for n in range(6, 11)]
    world.feed_srv.set_feed("/feed.xml", shuffled_feed(world.items, seed=5))
    report = world.svc.poll(force=True)
    assert report.result == "new" and len(report.held) == 5  # max_new_per_poll is 3
    new = [r for r in rows_by_id(world.store) if r["id"] not in first]
    assert [r["id"] for r in new] == report.held
    assert [r["guid"] for r in new] == [it.guid for it in world.items[5:]]
    held = keys_by_episode(world.store)
    assert all(f"guid:{r['guid']}" in held[r["id"]] for r in new)
    assert all(r["data"]["boilerplate"] for r in new)  # new episodes carry the boilerplate


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


def test_add_episodes_returns_ids_in_order_with_their_keys(store):
    from datetime import UTC, datetime
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    feed = store.ensure_feed("https://example.com/feed.xml", now).id
    other = store.ensure_feed("https://example.com/other.xml", now).id
    with store.tx() as c:
        (old,) = store.add_episodes(c, feed, [dict(
            title="old", guid="g0", link=None, published_at=None, status="baseline",
            data={"title": "old"}, keys=["guid:g0"])], now)
        # another feed's episode holding the same key does not count
        store.add_episode(c, other, title="x", guid="g1", link=None, published_at=None,
                          status="baseline", now=now, data={"title": "x"}, keys=["guid:g1"])
    long_key = "x:" + "y" * 400
    rows = [dict(title=f"t{n}", guid=f"g{n}", link=None, published_at=now + timedelta(days=n),
                 status="baseline", data={"title": f"t{n}", "n": n},
                 keys=[f"guid:g{n}", f"fp:{n}", f"{long_key}{n}", f"guid:g{n}"])
             for n in range(1, 8)]
    with store.tx() as c:
        ids = store.add_episodes(c, feed, rows, now)
    assert ids == sorted(ids) and len(set(ids)) == 7 and ids[0] > old
    got = {r["id"]: r for r in rows_by_id(store)}
    assert [got[i]["title"] for i in ids] == [f"t{n}" for n in range(1, 8)]
    assert [got[i]["data"]["n"] for i in ids] == list(range(1, 8))
    held = keys_by_episode(store)
    assert held[old] == {"guid:g0"}
    for n, eid in zip(range(1, 8), ids, strict=True):  # long keys stored hashed
        assert held[eid] == {f"guid:g{n}", f"fp:{n}", storage_key(f"{long_key}{n}")}, n
    assert store.add_episodes(None, feed, [], now) == []


def test_a_new_episode_whose_key_is_already_recorded_is_refused(store):
    """New episodes hold no recorded key; one that does was recorded meanwhile by another
    process: the unique key refuses it and the transaction records nothing."""
    from datetime import UTC, datetime
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    feed = store.ensure_feed("https://example.com/feed.xml", now).id
    with store.tx() as c:
        store.add_episodes(c, feed, [dict(title="a", guid="a", link=None, published_at=None,
                                          status="baseline", data={}, keys=["guid:a"])], now)
    before = rows_by_id(store)
    with pytest.raises(sa.exc.IntegrityError), store.tx() as c:
        store.add_episodes(c, feed, [dict(title=t, guid=t, link=None, published_at=None,
                                          status="announced", data={}, keys=[f"guid:{t}"])
                                     for t in ("b", "a")], now)
    assert rows_by_id(store) == before and set(keys_by_episode(store)) == {before[0]["id"]}


def test_an_episode_recorded_meanwhile_by_another_process_is_not_recorded_twice(
        world, monkeypatch):
    """Between the key lookup and the insert, another worker records the same new episode
    (its lease ran out): this poll records nothing and reads the feed again; the next poll
    finds it known. One row, one announcement."""
    world.svc.poll(force=True)
    new_item = item(6, published=world.clock.now - timedelta(hours=1))
    world.items.append(new_item)
    world.publish_feed()
    real = Store.match_keys

    def then_another_worker_records_it(self, feed_id, keys):
        found = real(self, feed_id, keys)
        other = Store(world.db_url)
        with other.tx() as c:
            other.add_episodes(c, feed_id, [dict(
                title=new_item.title, guid=new_item.guid, link=None, published_at=None,
                status="baseline", data={"title": new_item.title},
                keys=[f"guid:{new_item.guid}"])], world.clock.now)
        other.close()
        return found

    monkeypatch.setattr(Store, "match_keys", then_another_worker_records_it)
    report = world.svc.poll(force=True)
    assert report.result == "error" and report.announced == []
    monkeypatch.setattr(Store, "match_keys", real)
    report = world.svc.poll(force=True)
    assert report.result == "nothing-new"  # (the other worker's row: read as known)
    assert [r["guid"] for r in rows_by_id(world.store)].count(new_item.guid) == 1
    assert world.rows() == []


def test_episode_data_leaves_out_defaults_and_reads_back_the_same():
    bare = Episode(title="T")
    assert episode_to_data(bare) == {"title": "T"}
    assert episode_from_data(episode_to_data(bare)) == bare
    full = Episode(title="T", guid="g", podcast_guid="p", link="l", summary_html="<p>x</p>",
                   enclosure_url="e", enclosure_type="audio/mpeg", image="i", duration=0,
                   season=0, number=3, episode_type="full", persons=(Person("Ann"),),
                   show_link="s", language="de")
    data = episode_to_data(full, "de", "img")
    assert data["duration"] == 0 and data["season"] == 0  # falsy but not the default
    assert data["show_image"] == "img" and data["persons"] == [
        {"name": "Ann", "role": "guest", "href": None}]
    assert episode_from_data(data) == full
    # the channel's language is what is kept (as before): none given, none stored
    assert "language" not in episode_to_data(full)


@pytest.mark.parametrize("name", ["giantbomb-podcast.rss", "simplecast_serial.rss",
                                  "libsyn_accidental-tech-podcast.rss"])
def test_real_feeds_episodes_read_back_the_same_from_smaller_data(name):
    import json
    from dataclasses import asdict
    parsed = parse_feed((SHARED / "feeds" / name).read_bytes(), url="https://example.com/f")
    for ep in parsed.episodes:
        data = episode_to_data(ep, parsed.language, parsed.image)
        assert episode_from_data(json.loads(json.dumps(data))) == \
            Episode(**{**asdict(ep), "persons": ep.persons, "language": parsed.language})
        assert all(v not in (None, "", [], ()) for v in data.values())


def test_a_first_run_that_cannot_record_leaves_no_validators_and_reads_again(world,
                                                                           monkeypatch):
    """The feed row's validators go in the episodes' transaction: when recording fails at
    its end (another process's key tripped the unique index), neither is kept, and the next
    poll downloads and baselines the feed."""
    from bot.polling import Poller
    real = Poller._remember_items

    def trips(*a, **kw):  # (at the end of the transaction, the episodes written)
        real(*a, **kw)
        raise sa.exc.IntegrityError("INSERT INTO episode_keys", {}, Exception("duplicate"))

    monkeypatch.setattr(Poller, "_remember_items", trips)
    report = world.svc.poll(force=True)
    assert report.result == "error" and report.error == "could not record episodes"
    (feed,) = world.store.all_feeds()
    assert (feed.etag, feed.body_hash, feed.baseline_done) == (None, None, False)
    assert rows_by_id(world.store) == [] and keys_by_episode(world.store) == {}
    monkeypatch.setattr(Poller, "_remember_items", real)
    world.feed_srv.requests.clear()
    report = world.svc.poll(force=True)
    assert report.result == "baseline" and report.baseline == 5
    assert "If-None-Match" not in world.feed_srv.requests[0][2]  # no validators were kept
    (feed,) = world.store.all_feeds()
    assert feed.etag and feed.body_hash and feed.baseline_done
    assert feed.last_result == "baseline"
    world.feed_srv.requests.clear()
    assert world.svc.poll(force=True).result == "unchanged"
    assert "If-None-Match" in world.feed_srv.requests[0][2]  # (as a poll after a success)
