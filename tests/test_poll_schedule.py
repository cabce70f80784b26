"""When a feed is next polled (bot.polling.next_poll_at): the poll interval is a promise (two
polls of a feed at most an interval apart, so an episode is seen within one), jittered within
its last tenth, counted from the due time so a worker a few seconds behind does not stretch
every cycle, and counted from now after a long delay; Cache-Control max-age lengthens it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from bot.polling import POLL_SLACK, next_poll_at

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def simulate(interval: int, lateness, polls: int = 2000, seed: int = 7) -> list[datetime]:
    """The times a feed is polled when each poll runs `lateness(rng)` seconds after it is due."""
    rng = random.Random(seed)
    due, ran = T0, []
    for _ in range(polls):
        now = due + timedelta(seconds=lateness(rng))
        ran.append(now)
        due = next_poll_at(now, interval, None, rng, due)
    return ran


@pytest.mark.parametrize("interval", [60, 300, 900])
def test_polls_are_never_more_than_the_interval_apart(interval):
    # a due feed waits up to a tick for the poll job, and a busy drain as much again
    ran = simulate(interval, lambda r: r.uniform(0, min(POLL_SLACK, interval / 20)))
    gaps = [(b - a).total_seconds() for a, b in zip(ran, ran[1:], strict=False)]
    assert max(gaps) <= interval
    assert min(gaps) >= 0.8 * interval
    # spread: not every poll at the same offset (the jitter is there)
    assert max(gaps) - min(gaps) >= 0.08 * interval


def test_lateness_does_not_stretch_the_cycle():
    """A worker steadily 2 s behind still polls each feed once per 0.95 interval on average
    (counted from when it was due, not from when it ran); from when it ran, every cycle would
    be 2 s longer."""
    ran = simulate(300, lambda r: 2.0)
    mean = (ran[-1] - ran[0]).total_seconds() / (len(ran) - 1)
    assert 300 * 0.9 - POLL_SLACK <= mean <= 300 - POLL_SLACK
    behind = simulate(300, lambda r: 20.0)     # late but within reach: still from the due time
    assert (behind[-1] - behind[0]) / (len(behind) - 1) == \
        (ran[-1] - ran[0]) / (len(ran) - 1)


def test_a_poll_long_overdue_counts_from_now():
    rng = random.Random(1)
    now = T0 + timedelta(hours=2)          # the worker was down for two hours
    at = next_poll_at(now, 300, None, rng, due=T0)
    assert timedelta(seconds=0.9 * 300 - POLL_SLACK) <= at - now <= timedelta(seconds=300)
    # late enough that counting from the due time would poll again too soon: from now too
    now = T0 + timedelta(seconds=100)
    for _ in range(200):
        assert next_poll_at(now, 300, None, rng, due=T0) - now >= timedelta(seconds=240)


def test_a_forced_poll_before_its_due_time_counts_from_now():
    rng = random.Random(2)
    at = next_poll_at(T0, 300, None, rng, due=T0 + timedelta(minutes=4))
    assert timedelta(seconds=260) <= at - T0 <= timedelta(seconds=290)


def test_a_first_poll_counts_from_now():
    at = next_poll_at(T0, 900, None, random.Random(3))
    assert timedelta(seconds=800) <= at - T0 <= timedelta(seconds=890)


@pytest.mark.parametrize(("max_age", "low", "high"), [
    (None, 260, 290),            # the interval (its last tenth, less the slack)
    (120, 260, 290),             # shorter than the interval: the interval
    (600, 530, 590),             # longer: honoured
    (86400, 1070, 1190),         # at most 4x the interval
])
def test_max_age_lengthens_the_wait(max_age, low, high):
    rng = random.Random(4)
    for _ in range(100):
        at = next_poll_at(T0, 300, max_age, rng)
        assert timedelta(seconds=low) <= at - T0 <= timedelta(seconds=high)
