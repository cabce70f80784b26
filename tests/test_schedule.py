"""Queued-post times and rules: every accepted form, DST edges, round trips, helpful errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.errors import CrierError
from bot.schedule import (
    ScheduleError,
    format_local,
    parse_duration,
    parse_rule,
    parse_when,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # Thursday: 10:00 EST, 16:00 CET


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def chain(rule, after: datetime, n: int) -> list[datetime | None]:
    out = []
    for _ in range(n):
        after = rule.next_after(after)
        out.append(after)
    return out


# --- parse_when ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01T09:00", utc(2026, 12, 1, 14)),
    ("2026-12-01 09:00", utc(2026, 12, 1, 14)),
    ("2026-12-01T09:00:30", utc(2026, 12, 1, 14, 0, 30)),
    ("2026-12-01T09:00Z", utc(2026, 12, 1, 9)),
    ("2026-12-01t09:00z", utc(2026, 12, 1, 9)),
    ("2026-12-01T09:00+01:00", utc(2026, 12, 1, 8)),
    ("2026-12-01 9am", utc(2026, 12, 1, 14)),
    ("2026-12-01 at 5 pm", utc(2026, 12, 1, 22)),
    ("2026-07-01 09:00", utc(2026, 7, 1, 13)),            # summer: EDT
    ("2026-01-01 09:00", utc(2026, 1, 1, 14)),            # in the past: allowed
    ("today 17:30", utc(2026, 11, 26, 22, 30)),
    ("today 9:00", utc(2026, 11, 26, 14)),                # already past: the caller decides
    ("tomorrow 9:00", utc(2026, 11, 27, 14)),
    ("tomorrow 9am", utc(2026, 11, 27, 14)),
    ("  TOMORROW  at 9 AM ", utc(2026, 11, 27, 14)),
    ("tomorrow 12am", utc(2026, 11, 27, 5)),
    ("tomorrow 12pm", utc(2026, 11, 27, 17)),
    ("fri 17:00", utc(2026, 11, 27, 22)),
    ("friday 5pm", utc(2026, 11, 27, 22)),
    ("Fri at 5 p.m.", utc(2026, 11, 27, 22)),
    ("next fri 17:00", utc(2026, 11, 27, 22)),
    ("mon 9:30am", utc(2026, 11, 30, 14, 30)),
    ("thurs 11:00", utc(2026, 11, 26, 16)),               # later today
    ("thu 9:00", utc(2026, 12, 3, 14)),                   # passed today: next week
    ("thu 10:00", utc(2026, 12, 3, 15)),                  # exactly now: strictly after
    ("17:00", utc(2026, 11, 26, 22)),
    ("at 5pm", utc(2026, 11, 26, 22)),
    ("9:00", utc(2026, 11, 27, 14)),
    ("10:00", utc(2026, 11, 27, 15)),
    ("in 2h", utc(2026, 11, 26, 17)),
    ("in 90m", utc(2026, 11, 26, 16, 30)),
    ("in 1h30m", utc(2026, 11, 26, 16, 30)),
    ("in 3 days", utc(2026, 11, 29, 15)),
])
def test_parse_when_new_york(text, expected):
    assert parse_when(text, now=NOW, tz=NY) == expected


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01T09:00", utc(2026, 12, 1, 8)),
    ("2026-12-01T09:00Z", utc(2026, 12, 1, 9)),
    ("today 17:30", utc(2026, 11, 26, 16, 30)),
    ("tomorrow 9am", utc(2026, 11, 27, 8)),
    ("fri 17:00", utc(2026, 11, 27, 16)),
    ("sunday 10:00", utc(2026, 11, 29, 9)),
    ("thu 16:00", utc(2026, 12, 3, 15)),
    ("16:30", utc(2026, 11, 26, 15, 30)),
    ("16:00", utc(2026, 11, 27, 15)),
    ("in 2h", utc(2026, 11, 26, 17)),
])
def test_parse_when_berlin(text, expected):
    assert parse_when(text, now=NOW, tz=BERLIN) == expected


def test_today_and_weekdays_are_the_shows_local_days():
    now = utc(2026, 11, 26, 23, 30)  # Thu 18:30 in New York, already Fri 00:30 in Berlin
    assert parse_when("today 9:00", now=now, tz=BERLIN) == utc(2026, 11, 27, 8)
    assert parse_when("today 9:00", now=now, tz=NY) == utc(2026, 11, 26, 14)
    assert parse_when("tomorrow 9:00", now=now, tz=BERLIN) == utc(2026, 11, 28, 8)
    assert parse_when("fri 9:00", now=now, tz=BERLIN) == utc(2026, 11, 27, 8)
    assert parse_when("9:00", now=now, tz=BERLIN) == utc(2026, 11, 27, 8)


def test_nonexistent_time_moves_to_the_end_of_the_gap():
    # 2027-03-14: New York jumps from 02:00 EST to 03:00 EDT (07:00 UTC).
    now = utc(2027, 3, 13, 15)
    assert parse_when("tomorrow 2:30", now=now, tz=NY) == utc(2027, 3, 14, 7)
    assert parse_when("2027-03-14 02:59", now=now, tz=NY) == utc(2027, 3, 14, 7)
    assert parse_when("2027-03-14 03:00", now=now, tz=NY) == utc(2027, 3, 14, 7)
    assert parse_when("2027-03-14 01:59", now=now, tz=NY) == utc(2027, 3, 14, 6, 59)
    # 2027-03-28: Berlin jumps from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert parse_when("2027-03-28 02:30", now=now, tz=BERLIN) == utc(2027, 3, 28, 1)


def test_ambiguous_time_means_the_first_occurrence():
    # 2026-11-01: New York repeats 01:00-02:00 (EDT, then EST).
    assert parse_when("2026-11-01 01:30", now=NOW, tz=NY) == utc(2026, 11, 1, 5, 30)
    before = utc(2026, 10, 31, 15)
    assert parse_when("tomorrow 1:30", now=before, tz=NY) == utc(2026, 11, 1, 5, 30)
    # Berlin repeats 02:00-03:00 on 2026-10-25 (CEST, then CET).
    assert parse_when("2026-10-25 02:30", now=NOW, tz=BERLIN) == utc(2026, 10, 25, 0, 30)
    # In the repeated hour, today's 01:30 counts as past (its first occurrence was).
    during = utc(2026, 11, 1, 5, 45)  # 01:45 EDT
    assert parse_when("1:30", now=during, tz=NY) == utc(2026, 11, 2, 6, 30)
    assert parse_when("sun 1:30", now=during, tz=NY) == utc(2026, 11, 8, 6, 30)


def test_relative_times_are_elapsed_time_across_dst():
    now = utc(2026, 11, 1, 5)  # 01:00 EDT; two hours later it is 02:00 EST
    assert parse_when("in 2h", now=now, tz=NY) == utc(2026, 11, 1, 7)


def test_results_are_aware_utc():
    at = parse_when("fri 17:00", now=NOW, tz=NY)
    assert at.tzinfo is UTC


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("17:00", now=datetime(2026, 11, 26, 15), tz=NY)


# --- parse_duration -----------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("90m", timedelta(minutes=90)),
    ("2h", timedelta(hours=2)),
    ("1h30m", timedelta(minutes=90)),
    ("1h 30m", timedelta(minutes=90)),
    ("1 hour and 30 minutes", timedelta(minutes=90)),
    ("45 min", timedelta(minutes=45)),
    ("3 days", timedelta(days=3)),
    ("3d", timedelta(days=3)),
    ("1w", timedelta(weeks=1)),
    ("2 weeks", timedelta(weeks=2)),
    ("30s", timedelta(seconds=30)),
    ("1.5h", timedelta(minutes=90)),
    ("2H", timedelta(hours=2)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


# --- parse_rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, canonical, first", [
    ("fri 17:00", "every fri 17:00", utc(2026, 11, 27, 22)),
    ("every fri 17:00", "every fri 17:00", utc(2026, 11, 27, 22)),
    ("every friday at 5pm", "every fri 17:00", utc(2026, 11, 27, 22)),
    ("Fridays 5 PM", "every fri 17:00", utc(2026, 11, 27, 22)),
    ("every week on sat 10:00", "every sat 10:00", utc(2026, 11, 28, 15)),
    ("every day 9:00", "every day 09:00", utc(2026, 11, 27, 14)),
    ("daily 9:00", "every day 09:00", utc(2026, 11, 27, 14)),
    ("daily 11:00", "every day 11:00", utc(2026, 11, 26, 16)),
    ("weekdays 8:30", "every weekday 08:30", utc(2026, 11, 27, 13, 30)),
    ("every weekday 8:30", "every weekday 08:30", utc(2026, 11, 27, 13, 30)),
    ("mon-fri 8:30", "every weekday 08:30", utc(2026, 11, 27, 13, 30)),
    ("weekends 10:00", "every sat,sun 10:00", utc(2026, 11, 28, 15)),
    ("mon,wed,fri 9:00", "every mon,wed,fri 09:00", utc(2026, 11, 27, 14)),
    ("fri, mon and wed 9am", "every mon,wed,fri 09:00", utc(2026, 11, 27, 14)),
    ("every 2 weeks on mon 9:00", "every 2 weeks on mon 09:00 from 2026-11-30",
     utc(2026, 11, 30, 14)),
    ("every other week on fri 5pm", "every 2 weeks on fri 17:00 from 2026-11-27",
     utc(2026, 11, 27, 22)),
    ("every 1 week on fri 17:00", "every fri 17:00", utc(2026, 11, 27, 22)),
    ("every month on the 1st 10:00", "every month on the 1st 10:00", utc(2026, 12, 1, 15)),
    ("monthly 1 10:00", "every month on the 1st 10:00", utc(2026, 12, 1, 15)),
    ("monthly on the 22nd at 10am", "every month on the 22nd 10:00", utc(2026, 12, 22, 15)),
    ("every month on the last day 10:00", "every month on the last day 10:00",
     utc(2026, 11, 30, 15)),
    ("0 9 * * mon-fri", "0 9 * * mon-fri", utc(2026, 11, 27, 14)),
    ("0 9 * * 1-5", "0 9 * * 1-5", utc(2026, 11, 27, 14)),
    ("cron 30 17 * * 5", "30 17 * * 5", utc(2026, 11, 27, 22, 30)),
    ("0 9 * * 0", "0 9 * * 0", utc(2026, 11, 29, 14)),      # crontab: 0 is Sunday
    ("0 9 * * 7", "0 9 * * 7", utc(2026, 11, 29, 14)),      # ... and so is 7
    ("0 9 * * 1", "0 9 * * 1", utc(2026, 11, 30, 14)),      # 1 is Monday (not APScheduler's)
    ("0 9 * * */2", "0 9 * * */2", utc(2026, 11, 28, 14)),  # sun,tue,thu,sat
    ("0 12 1 * *", "0 12 1 * *", utc(2026, 12, 1, 17)),
])
def test_rule_forms_canonical_text_and_first_occurrence(text, canonical, first):
    rule = parse_rule(text, tz=NY, start=NOW)
    assert rule.text == canonical
    assert rule.next_after(NOW) == first
    assert parse_rule(rule.text, tz=NY, start=utc(2030, 1, 1)) == rule


def test_weekly_rule_keeps_wall_clock_across_dst():
    rule = parse_rule("every fri 17:00", tz=NY, start=NOW)
    assert rule.describe() == "every Friday at 17:00 (America/New_York)"
    # Fall back on Sun 2026-11-01: 21:00 UTC (EDT) before, 22:00 UTC (EST) after.
    assert chain(rule, utc(2026, 10, 23, 21), 2) == [utc(2026, 10, 30, 21), utc(2026, 11, 6, 22)]
    # Spring forward on Sun 2027-03-14: back to 21:00 UTC.
    assert chain(rule, utc(2027, 3, 5, 22), 2) == [utc(2027, 3, 12, 22), utc(2027, 3, 19, 21)]


def test_weekly_rule_in_berlin_across_dst():
    rule = parse_rule("every fri 17:00", tz=BERLIN, start=NOW)
    assert chain(rule, utc(2026, 10, 20), 2) == [utc(2026, 10, 23, 15), utc(2026, 10, 30, 16)]
    assert chain(rule, utc(2027, 3, 20), 2) == [utc(2027, 3, 26, 16), utc(2027, 4, 2, 15)]


def test_rule_in_spring_forward_gap_fires_at_the_end_of_the_gap():
    rule = parse_rule("every sun 2:30", tz=NY, start=NOW)
    assert chain(rule, utc(2027, 3, 8), 2) == [utc(2027, 3, 14, 7), utc(2027, 3, 21, 6, 30)]
    daily = parse_rule("daily 2:30", tz=NY, start=NOW)
    assert chain(daily, utc(2027, 3, 13, 12), 2) == [utc(2027, 3, 14, 7), utc(2027, 3, 15, 6, 30)]


@pytest.mark.parametrize("text", ["daily 1:30", "30 1 * * *"])
def test_rule_in_fall_back_hour_fires_once(text):
    rule = parse_rule(text, tz=NY, start=NOW)
    # 01:30 EDT (05:30 UTC) fires; 01:30 EST (06:30 UTC) the same night does not.
    assert chain(rule, utc(2026, 10, 31, 12), 2) == [utc(2026, 11, 1, 5, 30),
                                                     utc(2026, 11, 2, 6, 30)]
    assert rule.next_after(utc(2026, 11, 1, 6)) == utc(2026, 11, 2, 6, 30)  # 01:00 EST


def test_subhourly_cron_skips_the_repeated_hour():
    rule = parse_rule("*/30 * * * *", tz=NY, start=NOW)
    assert chain(rule, utc(2026, 11, 1, 5), 2) == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7)]


def test_cron_weekdays_skip_the_weekend():
    rule = parse_rule("0 9 * * mon-fri", tz=NY, start=NOW)
    same = parse_rule("0 9 * * 1-5", tz=NY, start=NOW)
    expected = [utc(2026, 11, 27, 14), utc(2026, 11, 30, 14), utc(2026, 12, 1, 14)]
    assert chain(rule, NOW, 3) == chain(same, NOW, 3) == expected
    assert parse_rule("0 9 * * *", tz=BERLIN, start=NOW).next_after(NOW) == utc(2026, 11, 27, 8)


def test_biweekly_is_anchored_at_the_first_occurrence_after_start():
    rule = parse_rule("every 2 weeks on mon 9:00", tz=NY, start=NOW)
    assert rule.describe() == ("every 2 weeks on Monday at 09:00 from Mon 2026-11-30 "
                               "(America/New_York)")
    assert chain(rule, NOW, 3) == [utc(2026, 11, 30, 14), utc(2026, 12, 14, 14),
                                   utc(2026, 12, 28, 14)]
    assert rule.next_after(utc(2026, 1, 1)) == utc(2026, 11, 30, 14)   # not before the anchor
    assert rule.next_after(utc(2026, 12, 1)) == utc(2026, 12, 14, 14)
    assert rule.next_after(utc(2027, 3, 10)) == utc(2027, 3, 22, 13)   # EDT by then
    # Starting on a Monday before 09:00 anchors that day; at 09:00 exactly, a week later.
    early = parse_rule("every 2 weeks on mon 9:00", tz=NY, start=utc(2026, 11, 30, 13))
    assert early.text == "every 2 weeks on mon 09:00 from 2026-11-30"
    exact = parse_rule("every 2 weeks on mon 9:00", tz=NY, start=utc(2026, 11, 30, 14))
    assert exact.text == "every 2 weeks on mon 09:00 from 2026-12-07"


def test_biweekly_from_date_moves_to_the_weekday_and_round_trips():
    rule = parse_rule("every 2 weeks on mon 9:00 from 2026-12-02", tz=NY, start=NOW)
    assert rule.text == "every 2 weeks on mon 09:00 from 2026-12-07"
    other_start = parse_rule(rule.text, tz=NY, start=utc(2027, 6, 1))
    assert other_start == rule
    assert chain(other_start, NOW, 2) == [utc(2026, 12, 7, 14), utc(2026, 12, 21, 14)]


def test_monthly_rules():
    first = parse_rule("every month on the 1st 10:00", tz=NY, start=NOW)
    assert first.describe() == "every month on the 1st at 10:00 (America/New_York)"
    assert chain(first, NOW, 2) == [utc(2026, 12, 1, 15), utc(2027, 1, 1, 15)]
    late = parse_rule("monthly 31 10:00", tz=NY, start=NOW)
    assert late.describe() == ("every month on the 31st at 10:00 "
                               "(America/New_York; months without a 31st are skipped)")
    assert late.next_after(utc(2027, 1, 31, 16)) == utc(2027, 3, 31, 14)  # no Feb 31; EDT
    last = parse_rule("monthly last 10:00", tz=NY, start=NOW)
    assert chain(last, utc(2027, 1, 31, 16), 1) == [utc(2027, 2, 28, 15)]


def test_describe():
    assert (parse_rule("weekdays 8:30", tz=NY, start=NOW).describe()
            == "every weekday (Monday to Friday) at 08:30 (America/New_York)")
    assert (parse_rule("mon,wed,fri 9:00", tz=BERLIN, start=NOW).describe()
            == "every Monday, Wednesday and Friday at 09:00 (Europe/Berlin)")
    assert (parse_rule("daily 9:00", tz=NY, start=NOW).describe()
            == "every day at 09:00 (America/New_York)")
    assert (parse_rule("0 9 * * mon-fri", tz=NY, start=NOW).describe()
            == "at times matching cron '0 9 * * mon-fri' (America/New_York)")


def test_until_is_inclusive_and_round_trips():
    rule = parse_rule("every fri 17:00", tz=NY, start=NOW).with_until(utc(2026, 12, 4, 22))
    assert rule.until == utc(2026, 12, 4, 22)
    assert rule.text == "every fri 17:00 until 2026-12-04T22:00:00Z"
    assert chain(rule, NOW, 3) == [utc(2026, 11, 27, 22), utc(2026, 12, 4, 22), None]
    assert parse_rule(rule.text, tz=NY, start=utc(2030, 1, 1)) == rule
    assert parse_rule("every fri 17:00 until 2026-12-04 17:00", tz=NY, start=NOW) == rule
    assert parse_rule("every fri 17:00 until fri 17:00", tz=NY,
                      start=utc(2026, 11, 28)) == rule                 # relative to start
    assert rule.describe() == ("every Friday at 17:00 (America/New_York), "
                               "until Fri 2026-12-04 17:00 EST (22:00 UTC)")
    endless = rule.with_until(None)
    assert endless.until is None and endless.text == "every fri 17:00"
    assert endless == parse_rule("every fri 17:00", tz=NY, start=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        rule.with_until(datetime(2027, 1, 1))


def test_until_before_the_first_occurrence_leaves_nothing():
    rule = parse_rule("every fri 17:00 until 2026-11-27 16:59", tz=NY, start=NOW)
    assert rule.next_after(NOW) is None


def test_rules_differ_by_text_time_zone_and_until():
    a = parse_rule("every fri 17:00", tz=NY, start=NOW)
    assert a != parse_rule("every fri 17:01", tz=NY, start=NOW)
    assert a != parse_rule("every fri 17:00", tz=BERLIN, start=NOW)
    assert a != a.with_until(utc(2027, 1, 1))
    assert hash(a) == hash(parse_rule("friday 5pm", tz=NY, start=NOW))


# --- format_local -------------------------------------------------------------------------


@pytest.mark.parametrize("dt, tz, expected", [
    (utc(2026, 12, 4, 22), NY, "Fri 2026-12-04 17:00 EST (22:00 UTC)"),
    (utc(2026, 7, 3, 21), NY, "Fri 2026-07-03 17:00 EDT (21:00 UTC)"),
    (utc(2026, 12, 5, 1), NY, "Fri 2026-12-04 20:00 EST (Sat 01:00 UTC)"),
    (utc(2026, 12, 4, 22), BERLIN, "Fri 2026-12-04 23:00 CET (22:00 UTC)"),
    (utc(2026, 12, 4, 22), ZoneInfo("UTC"), "Fri 2026-12-04 22:00 UTC"),
])
def test_format_local(dt, tz, expected):
    assert format_local(dt, tz) == expected


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, problem", [
    ("", "can't use '': it is empty. Write e.g. '2026-12-01 09:00'"),
    ("banana", "'banana' is not a date, day or time. Write e.g."),
    ("fryday 5pm", "'fryday' is not a date, day or time (did you mean 'friday'?)"),
    ("next", "a day of the week is missing, e.g. 'next fri 9:00'"),
    ("next banana 9:00", "'banana' is not a date, day or time"),
    ("25:00", "'25:00' has no hour 25: hours go 0-23. Write a time of day, e.g. '17:00'"),
    ("tomorrow 25:00", "can't use 'tomorrow 25:00': '25:00' has no hour 25"),
    ("fri 17:60", "'17:60' has no minute 60: minutes go 00-59"),
    ("13pm", "'13pm' has no hour 13: with am/pm hours go 1-12"),
    ("9", "'9' is ambiguous: give minutes or am/pm, e.g. '9:00' or '9am'"),
    ("tomorrow", "the time of day is missing. Write a time of day, e.g."),
    ("today 9:00 sharp", "it does not end with a time of day ('sharp' is not one)"),
    ("fri soon 9:00", "'soon' is not understood after 'fri'"),
    ("2026-12-01", "'2026-12-01' has no time of day; add one, e.g. '2026-12-01 09:00'"),
    ("2026-13-01 09:00", "'2026-13-01' is not a valid date (month must be in 1..12)"),
    ("in", "the duration after 'in' is missing. Write e.g. '30s', '90m'"),
    ("in 0m", "a duration must be longer than zero"),
    ("in -5m", "a duration must be positive"),
    ("in 2 fortnights", "'fortnights' is not a unit of time"),
])
def test_parse_when_errors(text, problem):
    with pytest.raises(ScheduleError) as e:
        parse_when(text, now=NOW, tz=NY)
    assert problem in str(e.value)
    assert isinstance(e.value, CrierError) and e.value.text == text


@pytest.mark.parametrize("text, problem", [
    ("", "it is empty. Write e.g. '30s', '90m', '2h'"),
    ("0", "'0' is not a number followed by a unit"),
    ("0m", "a duration must be longer than zero"),
    ("0h 0m", "a duration must be longer than zero"),
    ("-5m", "a duration must be positive"),
    ("5", "'5' is not a number followed by a unit"),
    ("1h 30", "'30' is not a number followed by a unit"),
    ("5 mins please", "'please' is not a number followed by a unit"),
    ("3 dayz", "'dayz' is not a unit of time (did you mean 'day'?)"),
    ("soon", "'soon' is not a number followed by a unit"),
    ("99999999999d", "that is too long"),
])
def test_parse_duration_errors(text, problem):
    with pytest.raises(ScheduleError) as e:
        parse_duration(text)
    assert problem in str(e.value)
    assert "Write e.g." in str(e.value)


@pytest.mark.parametrize("text, problem", [
    ("", "it is empty. Write e.g. 'every fri 17:00'"),
    ("banana", "can't use 'banana': it has no time of day. Write e.g. 'every fri 17:00'"),
    ("every fri", "it has no time of day"),
    ("17:00", "it does not say which days"),
    ("every fryday 17:00", "'fryday' is not a day of the week (did you mean 'friday'?)"),
    ("every fri 25:00", "'25:00' has no hour 25: hours go 0-23"),
    ("every 0 weeks on mon 9:00", "'every 0 weeks' repeats nothing: use 1 or more weeks. "
                                  "Write e.g. 'every 2 weeks on mon 9:00'"),
    ("every 2 weeks on mon,tue 9:00", "'every 2 weeks' takes exactly one day"),
    ("every 2 weeks on mon 9:00 from 2026-13-01", "'2026-13-01' is not a date"),
    ("every fri 17:00 from 2026-11-27", "'from DATE' only goes with 'every N weeks'"),
    ("fri-mon 9:00", "the range 'fri-mon' runs backwards"),
    ("monthly 32 10:00", "no month has a day 32: days go 1-31"),
    ("monthly 0 10:00", "no month has a day 0"),
    ("every fri 17:00 until whenever", "'whenever' is not a date, day or time"),
    ("0 25 * * *", "the last value (25) is higher than the maximum value (23)"),
    ("61 9 * * *", "the last value (61) is higher than the maximum value (59)"),
    ("x 9 * * *", "it is not a valid cron expression"),
    ("0 9 * * 8", "there is no day-of-week 8 (0-7, 0 and 7 are Sunday)"),
    ("0 9 * * fri-mon", "the day-of-week range 'fri-mon' runs backwards"),
    ("0 9 * * */0", "'*/0' has a bad step '0'"),
    ("0 9 * * funday", "'funday' is not a day of the week (did you mean 'sunday'?)"),
    ("0 9 1 * mon", "it limits both the day of the month and the day of the week"),
    ("0 9 * *", "a cron expression needs 5 fields, this one has 4"),
    ("0 9 30 2 *", "it never happens"),
])
def test_parse_rule_errors(text, problem):
    with pytest.raises(ScheduleError) as e:
        parse_rule(text, tz=NY, start=NOW)
    assert problem in str(e.value)
    assert "e.g. " in str(e.value)
