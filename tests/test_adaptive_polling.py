"""Adaptive polling (bot.cadence): what a feed says about when it updates
(`<podcast:updateFrequency>` with its rrule/complete/dtstart attributes, `<sy:updatePeriod>`/
`<sy:updateFrequency>`/`<sy:updateBase>`), the release hours learned from the episodes' dates,
and the schedule they give: every `min_poll_interval` around the usual release hours,
`poll_interval` x MAX_FACTOR between them and for a complete feed, never past the next window,
never sooner than `min_poll_interval`. The schedule is simulated with an injected clock; the
feed row's columns are written by a real poll of a local feed server (and read by a 304 poll
without parsing, by one show's Poller and by the fleet's quick path)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from bot.cadence import (
    MAX_FACTOR,
    WINDOW_AFTER,
    WINDOW_BEFORE,
    Cadence,
    declared_hint,
    hour_of_week,
    learn_hours,
    next_poll_at,
)
from bot.errors import ConfigError
from bot.feed import parse_feed, scan_feed
from bot.models import UpdateHint
from bot.polling import describe_schedule
from tests.feedgen import item, rss

MON = datetime(2026, 11, 30, tzinfo=UTC)        # a Monday, 00:00 UTC
NS = (b'<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0" '
      b'xmlns:syn="http://purl.org/rss/1.0/modules/syndication/" ')


def with_channel(doc: bytes, extra: str) -> bytes:
    """An rss() document with the namespaces declared and `extra` in its channel."""
    return doc.replace(b'<rss version="2.0" ', NS, 1).replace(
        b"<description>A show.</description>",
        b"<description>A show.</description>" + extra.encode(), 1)


# -- what the feed says -----------------------------------------------------------------------
@pytest.mark.parametrize(("kw", "every", "hours", "complete"), [
    ({"rrule": "FREQ=DAILY"}, 86400, (), False),
    ({"rrule": "FREQ=WEEKLY;INTERVAL=2"}, 14 * 86400, (), False),
    ({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE"}, 302400, (), False),
    ({"rrule": "FREQ=DAILY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR"}, 120960, (), False),
    # a time of day: the hours it declares (Monday and Wednesday at 06:00 UTC)
    ({"rrule": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=6"}, 302400, (6, 54), False),
    ({"rrule": "FREQ=WEEKLY", "dtstart": "2026-12-01T09:30:00.000Z"}, 604800, (24 + 9,),
     False),
    # a dtstart at midnight is a date (the spec's tooling writes them so): no hour
    ({"rrule": "FREQ=WEEKLY;BYDAY=TU", "dtstart": "2026-09-03T00:00:00.000Z"}, 604800, (),
     False),
    ({"complete": "true", "text": "That's all folks!"}, None, (), True),
    ({"text": "Weekly"}, 604800, (), False),                  # no rrule: the common words
    ({"sy_period": "hourly", "sy_frequency": "2"}, 1800, (), False),
    ({"sy_period": "daily", "sy_base": "2000-01-01T12:00+00:00"}, 86400,
     tuple(d * 24 + 12 for d in range(7)), False),
])
def test_what_a_feed_says_about_its_updates(kw, every, hours, complete):
    assert declared_hint(**kw) == UpdateHint(every=every, complete=complete, hours=hours)


@pytest.mark.parametrize("kw", [
    {}, {"rrule": "FREQ=FORTNIGHTLY"}, {"rrule": "nonsense"}, {"text": "whenever we feel like it"},
    {"sy_period": "sometimes"}, {"complete": "no"},
])
def test_what_cannot_be_read_is_no_hint(kw):
    assert declared_hint(**kw) is None


def test_the_channel_carries_the_hint_in_a_full_parse_and_in_the_pre_scan():
    items = [item(n) for n in range(1, 4)]
    doc = with_channel(rss(items), '<podcast:updateFrequency rrule="FREQ=WEEKLY;BYDAY=MO;'
                                   'BYHOUR=6">Mondays</podcast:updateFrequency>'
                                   '<syn:updatePeriod>hourly</syn:updatePeriod>')
    want = UpdateHint(every=604800, complete=False, hours=(6,))
    assert parse_feed(doc).update == want
    assert scan_feed(doc).channel.update == want
    sy_only = with_channel(rss(items), "<syn:updatePeriod>weekly</syn:updatePeriod>"
                                       "<syn:updateFrequency>2</syn:updateFrequency>")
    assert parse_feed(sy_only).update == UpdateHint(every=302400)
    done = with_channel(rss(items), '<podcast:updateFrequency complete="true"/>')
    assert parse_feed(done).update.complete
    assert parse_feed(rss(items)).update is None


# -- what the episodes teach ------------------------------------------------------------------
def test_a_weekly_show_teaches_its_hour_of_the_week():
    times = [MON + timedelta(hours=6, minutes=3) - timedelta(weeks=k) for k in range(12)]
    times.append(MON - timedelta(days=40, hours=-17))         # one special episode, off pattern
    assert learn_hours(times, MON + timedelta(days=1)) == (6,)


def test_a_daily_show_at_varying_days_teaches_its_hour_of_the_day():
    rng = random.Random(5)
    days = sorted(rng.sample(range(60), 15))
    times = [MON - timedelta(days=d) + timedelta(hours=17, minutes=rng.randrange(50))
             for d in days]
    assert learn_hours(times, MON) == tuple(d * 24 + 17 for d in range(7))


@pytest.mark.parametrize("seed", range(20))
def test_random_release_times_teach_nothing(seed):
    rng = random.Random(seed)
    times = [MON - timedelta(minutes=rng.randrange(60 * 24 * 120)) for _ in range(20)]
    assert learn_hours(times, MON) == ()


def test_a_batch_of_episodes_out_at_once_counts_once():
    """Ten episodes dropped within one hour, and two more shows' worth of old ones: one
    observation of that hour, no pattern (a weekly pattern needs it in several weeks)."""
    batch = [MON + timedelta(hours=20, minutes=k) for k in range(10)]
    old = [MON - timedelta(days=9 * k, hours=k * 5 % 24) for k in range(1, 6)]
    assert learn_hours(batch + old, MON + timedelta(days=1)) == ()
    weekly = [MON + timedelta(hours=20, minutes=3) - timedelta(weeks=k) for k in range(1, 6)]
    assert learn_hours(batch + old + weekly, MON + timedelta(days=1)) == (20,)


def test_too_few_dates_undated_or_date_only_episodes_teach_nothing():
    assert learn_hours([MON - timedelta(weeks=k) + timedelta(hours=6) for k in range(3)],
                       MON) == ()
    assert learn_hours([None] * 20, MON) == ()
    assert learn_hours([MON - timedelta(weeks=k) for k in range(10)], MON) == ()  # 00:00
    # a future-dated (scheduled) episode is not a release yet
    future = [MON + timedelta(weeks=k, hours=6) for k in range(1, 10)]
    assert learn_hours(future, MON) == ()


# -- the schedule -----------------------------------------------------------------------------
def run(cad: Cadence, start: datetime, end: datetime, interval: int = 900,
        lateness=lambda r: r.uniform(0, 5), seed: int = 3) -> list[datetime]:
    """The times a feed is polled from `start` to `end` (each poll a little late)."""
    rng, due, ran = random.Random(seed), start, []
    while due < end:
        now = due + timedelta(seconds=lateness(rng))
        ran.append(now)
        due = next_poll_at(now, interval, None, rng, due, cad)
    return ran


def gaps(ran: list[datetime]) -> list[float]:
    return [(b - a).total_seconds() for a, b in zip(ran, ran[1:], strict=False)]


def test_a_week_of_polls_around_a_monday_morning_show():
    """Learned: Mondays 06:00 UTC. Polled every minute from 05:45 to 07:30, hourly otherwise;
    never more often than min_poll_interval, never less often than 4 x the interval."""
    cad = Cadence(hours=(6,), min_interval=60, learned=True)
    ran = run(cad, MON - timedelta(days=1), MON + timedelta(days=6))
    g = gaps(ran)
    assert min(g) >= 60 and max(g) <= 900 * MAX_FACTOR
    window = (MON + timedelta(hours=6) - WINDOW_BEFORE,
              MON + timedelta(hours=7) + WINDOW_AFTER)
    inside = [t for t in ran if window[0] <= t < window[1]]
    assert inside[0] - window[0] <= timedelta(seconds=5)   # the window's first poll: on time
    assert len(inside) >= 100                                # 1 h 45 min, every minute or so
    assert all(60 <= x <= 66 for x in gaps(inside))
    # the rest of the week: about hourly (a day before, six after, less the window)
    assert len(ran) - len(inside) <= 7 * 24 / 0.9 + 2
    # against 672 polls at a plain 15 minutes
    assert len(ran) < 7 * 96 * 0.45


def test_the_window_ends_when_its_episode_is_in():
    at = MON + timedelta(hours=6, minutes=2)
    waiting = Cadence(hours=(6,), newest=MON - timedelta(weeks=1, minutes=-362))
    found = Cadence(hours=(6,), newest=at - timedelta(minutes=1))
    assert waiting.plan(at, 900)[0] == 60
    every, cap, _why = found.plan(at, 900)
    assert every == 900 * MAX_FACTOR and cap == MON + timedelta(weeks=1, hours=6) - WINDOW_BEFORE


def test_the_next_poll_never_passes_a_window_start():
    cad = Cadence(hours=(6,))
    now = MON + timedelta(hours=5, minutes=10)     # 35 minutes before the window
    at = next_poll_at(now, 900, None, random.Random(1), now, cad)
    assert at == MON + timedelta(hours=6) - WINDOW_BEFORE
    now = MON + timedelta(hours=5, minutes=44, seconds=30)   # 30 s before: still min apart
    assert next_poll_at(now, 900, None, random.Random(1), now, cad) == now + timedelta(
        seconds=60)


@pytest.mark.parametrize(("cad", "low", "high"), [
    (Cadence(complete=True), 0.9 * 3600 - 10, 3600),          # complete: rarely
    (Cadence(hint=604800), 0.9 * 3600 - 10, 3600),            # weekly: within the safety net
    (Cadence(hint=1800), 0.9 * 1800 - 10, 1800),              # half-hourly: that
    (Cadence(hint=300), 0.9 * 900 - 10, 900),                 # a hint never shortens it
    (Cadence(), 0.9 * 900 - 10, 900),                         # nothing known: the interval
    (None, 0.9 * 900 - 10, 900),
])
def test_hints_lengthen_the_interval_within_the_safety_net(cad, low, high):
    rng = random.Random(9)
    now = MON + timedelta(hours=12)
    for _ in range(50):
        wait = (next_poll_at(now, 900, None, rng, None, cad) - now).total_seconds()
        assert low <= wait <= high


def test_max_age_is_honoured_within_the_safety_net_in_a_window_too():
    cad = Cadence(hours=(6,))
    now = MON + timedelta(hours=6)
    wait = next_poll_at(now, 900, 300, random.Random(2), None, cad) - now
    assert timedelta(seconds=260) <= wait <= timedelta(seconds=300)


def test_the_row_round_trips_and_old_rows_read_as_nothing_known():
    cad = Cadence.learn(UpdateHint(every=604800), [MON - timedelta(weeks=k, hours=-6)
                                                   for k in range(8)], MON, 120)
    assert cad.hours == (6,) and cad.learned and cad.hint == 604800
    cols = cad.columns()
    assert Cadence.from_row(cols["update_hint"], cols["release_hours"]) == cad
    assert Cadence.from_row(None, None) == Cadence()
    assert Cadence.from_row(None, {"hours": ["x", 999, 5]}).hours == (5,)  # bad data dropped
    assert Cadence.from_row(None, cols["release_hours"], min_interval=300).min_interval == 300


def test_describe_schedule_says_how_the_feed_is_listened_to():
    from bot.models import Feed
    row = Feed(id=1, url="u", created_at=MON, poll_interval=900, **Cadence(
        hours=(6,)).columns())
    assert describe_schedule(row, MON + timedelta(hours=6)) == \
        "polling every 1 min (around its usual release time)"
    assert describe_schedule(row, MON + timedelta(hours=12)) == \
        "polling every 1 h until Mon 05:45 UTC (between its usual release times)"
    plain = Feed(id=2, url="u", created_at=MON, poll_interval=900)
    assert describe_schedule(plain, MON) == "polling every 15 min"
    done = Feed(id=3, url="u", created_at=MON, poll_interval=600,
                **Cadence(complete=True).columns())
    assert describe_schedule(done, MON) == "polling every 40 min (the feed says it is complete)"


# -- the poll writes it, a 304 reads it ---------------------------------------------------------
@pytest.fixture
def parses(monkeypatch):
    calls: list[int] = []
    real = feedparser.parse

    def spy(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(feedparser, "parse", spy)
    return calls


def test_a_poll_learns_the_schedule_and_a_304_uses_it_unparsed(world, parses):
    """The world's episodes came out weekly at this very hour of the week: the first poll
    learns that hour, and is in its window (the last episode was a week ago): every minute."""
    from tests.world import new_episode
    report, _ = world.cycle()
    assert report.result == "baseline"
    row = world.store.all_feeds()[0]
    assert row.release_hours["hours"] == [hour_of_week(world.clock.now)]
    assert row.next_poll_at - world.clock.now == timedelta(seconds=60)
    parses.clear()
    world.clock.advance(seconds=61)
    report = world.svc.poll()
    assert report.result == "unchanged" and parses == []      # a 304, no parse
    # (one worker keeps a quiet poll's times in memory; many write them with the lease)
    due = world.svc.poller.due_after() or world.store.all_feeds()[0].next_poll_at
    assert due - world.clock.now == timedelta(seconds=60)
    world.clock.advance(minutes=1)
    new_episode(world)                   # published in the window: the window is done
    report, _ = world.cycle()
    assert report.result == "new"
    row = world.store.all_feeds()[0]
    assert timedelta(seconds=3600 * 0.9 - 10) <= row.next_poll_at - world.clock.now \
        <= timedelta(seconds=3600)


def test_a_feed_that_says_it_is_complete_polls_rarely_also_in_the_fleet(db_url, tmp_path,
                                                                          monkeypatch):
    """The fleet's quick path (a 304 handled from the row alone, no show loaded) keeps what
    the parse learned."""
    from contextlib import ExitStack

    from tests.test_poll_concurrency import Shows
    t = [datetime.now(UTC).replace(microsecond=0)]
    with ExitStack() as stack:
        net = Shows(stack, tmp_path, db_url, monkeypatch, 1, in_flight=1, per_host=1,
                    clock=lambda: t[0], extra='poll_interval = "5m"\n')
        net.feed.set_feed("/s0.xml", with_channel(rss(net.items["s0"], title="Show s0"),
                                                  '<podcast:updateFrequency complete="true">'
                                                  "Done</podcast:updateFrequency>"))
        assert [r.result for _s, r in net.fleet.poll()] == ["baseline"]
        row = net.store.all_feeds()[0]
        assert row.release_hours["complete"] is True
        assert timedelta(seconds=1200 * 0.9 - 10) <= row.next_poll_at - t[0] <= \
            timedelta(seconds=1200)
        net.fleet.reload()
        t[0] = row.next_poll_at
        assert [r.result for _s, r in net.fleet.poll()] == ["unchanged"]
        assert net.fleet.loaded == 0                          # the quick path
        row = net.store.all_feeds()[0]
        assert timedelta(seconds=1200 * 0.9 - 10) <= row.next_poll_at - t[0] <= \
            timedelta(seconds=1200)


# -- the key ----------------------------------------------------------------------------------
def test_min_poll_interval_is_a_duration_no_longer_than_poll_interval(tmp_path):
    from bot.config import load_settings
    cfg = tmp_path / "crier.toml"
    base = 'show = "S"\nfeed = "https://example.org/f.xml"\n'
    cfg.write_text(base)
    assert load_settings(cfg, env={}).min_poll_interval == 60
    cfg.write_text(base + 'min_poll_interval = "2m"\n')
    assert load_settings(cfg, env={}).min_poll_interval == 120
    cfg.write_text(base + 'poll_interval = "5m"\nmin_poll_interval = "10m"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, env={})
    assert "min_poll_interval" in str(e.value) and "poll_interval (300 s)" in str(e.value)
    cfg.write_text(base + "min_poll_interval = 10\n")
    with pytest.raises(ConfigError, match="at least 60 seconds"):
        load_settings(cfg, env={})
