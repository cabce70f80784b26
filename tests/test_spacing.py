"""bot.spacing: minimum gaps and quiet hours, in the show's time zone (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.spacing import Slot, next_allowed, plan, quiet_until

NY = ZoneInfo("America/New_York")


def utc(*a) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize("when, quiet, expected", [
    (utc(2026, 11, 27, 4, 0), "22:00-07:00", utc(2026, 11, 27, 12, 0)),    # 23:00 EST
    (utc(2026, 11, 27, 2, 59), "22:00-07:00", utc(2026, 11, 27, 12, 0)),   # 21:59 EST: no;
    (utc(2026, 11, 27, 11, 59), "22:00-07:00", utc(2026, 11, 27, 12, 0)),  # 06:59 EST
    (utc(2026, 11, 27, 12, 0), "22:00-07:00", None),                       # 07:00: open
    (utc(2026, 11, 27, 18, 30), "13:00-14:00", utc(2026, 11, 27, 19, 0)),  # 13:30 EST
    (utc(2026, 11, 27, 18, 30), None, None),
])
def test_quiet_until(when, quiet, expected):
    got = quiet_until(when, tz=NY, quiet=quiet)
    if when == utc(2026, 11, 27, 2, 59):
        assert got is None  # 21:59 is before the quiet hours
    else:
        assert got == expected


def test_quiet_hours_across_the_dst_change():
    # the night of 2026-10-31 → 11-01 (clocks go back at 2:00): 07:00 EST is 12:00 UTC
    assert quiet_until(utc(2026, 11, 1, 4, 0), tz=NY, quiet="22:00-07:00") == \
        utc(2026, 11, 1, 12, 0)
    # spring forward 2027-03-14: 07:00 EDT is 11:00 UTC
    assert quiet_until(utc(2027, 3, 14, 5, 0), tz=NY, quiet="22:00-07:00") == \
        utc(2027, 3, 14, 11, 0)
    # a window ending in the skipped hour ends when the clocks jump
    assert quiet_until(utc(2027, 3, 14, 6, 30), tz=NY, quiet="01:00-02:30") == \
        utc(2027, 3, 14, 7, 0)


def test_next_allowed_takes_the_gap_then_the_quiet_hours():
    due = utc(2026, 11, 27, 2, 0)  # 21:00 EST
    assert next_allowed(due, tz=NY) == due
    assert next_allowed(due, tz=NY, not_before=due + timedelta(minutes=30)) == \
        utc(2026, 11, 27, 2, 30)
    # the gap pushes it into the quiet hours: the morning
    assert next_allowed(due, tz=NY, quiet="21:15-07:00",
                        not_before=due + timedelta(minutes=30)) == utc(2026, 11, 27, 12, 0)


def test_plan_spaces_each_account_and_waits_for_announcements():
    t = utc(2026, 11, 27, 15, 0)
    slots = [Slot(1, t, ("m", "x")), Slot(2, t + timedelta(minutes=5), ("m",)),
             Slot(3, t, ("x",))]
    got = plan(slots, tz=NY, gaps={"m": timedelta(minutes=30), "x": timedelta(0)},
               quiet={}, last_sent={"m": t - timedelta(minutes=10), "x": None},
               blocked_until={"x": t + timedelta(minutes=1)})
    assert got[1] == {"m": t + timedelta(minutes=20), "x": t + timedelta(minutes=1)}
    assert got[2] == {"m": t + timedelta(minutes=50)}
    assert got[3] == {"x": t + timedelta(minutes=1)}
