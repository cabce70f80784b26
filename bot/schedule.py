"""Times and recurring rules for queued promo posts, read in the show's time zone.

Pure: no I/O and no clock; `now` / `start` are passed in (aware), every result is aware UTC.

Wall-clock policy, in one place (`localize`, used by `bot.spacing` too):
- a local time that does not exist (the hour skipped when clocks spring forward) becomes the
  first valid instant after the gap: "2:30" on 2027-03-14 in New York is 03:00 EDT;
- an ambiguous one (the hour repeated when clocks fall back) means its first occurrence
  (fold=0, still summer time); recurring rules never fire again in the repeated hour.

Recurring rules keep their local wall-clock time across DST changes. APScheduler's triggers
walk the local wall clock (given to them as if it were UTC, so they see no DST at all) and
`localize` turns each wall time they find into an instant.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.errors import CrierError

WHEN_HINT = ("Write e.g. '2026-12-01 09:00', 'today 17:30', 'tomorrow 9am', 'fri 17:00', "
             "'next mon 9:30am', '17:00' or 'in 2h'.")
TIME_HINT = "Write a time of day, e.g. '17:00', '9:30am' or '5pm'."
DURATION_HINT = "Write e.g. '30s', '90m', '2h', '1h30m', '45 min', '3 days' or '2 weeks'."
RULE_HINT = ("Write e.g. 'every fri 17:00', 'every friday at 5pm', 'daily 9:00', "
             "'weekdays 8:30', 'mon,wed,fri 9:00', 'every 2 weeks on mon 9:00', "
             "'monthly 1 10:00' or a cron expression like '0 9 * * mon-fri'.")
CRON_HINT = ("A cron expression has 5 fields, minute hour day-of-month month day-of-week, "
             "e.g. '0 9 * * mon-fri' (09:00 on weekdays) or '30 17 * * 5' (Fridays 17:30).")

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ABBR = tuple(d[:3].lower() for d in DAY_NAMES)
_WEEKDAYS: dict[str, int] = {}
for _i, _name in enumerate(DAY_NAMES):
    _full = _name.lower()
    _WEEKDAYS.update({_full[:3]: _i, _full: _i, _full + "s": _i})
_WEEKDAYS.update({"tues": 1, "weds": 2, "thur": 3, "thurs": 3})
_WORKWEEK = frozenset(range(5))
_ALL_DAYS = frozenset(range(7))

_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$")
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "seconds"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minutes"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hours"),
    **dict.fromkeys(("d", "day", "days"), "days"),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), "weeks"),
}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CRON_FIELD = re.compile(r"^[\d*?][\d*/,?-]*$")


class ScheduleError(CrierError):
    """A time, duration or rule the host typed that cannot be used: what and why, with examples."""

    def __init__(self, text: str, problem: str, hint: str):
        self.text, self.problem, self.hint = text, problem, hint
        super().__init__(f"can't use '{text}': {problem}. {hint}")


class _Invalid(ValueError):
    """Raised inside the parsers; the public functions turn it into a ScheduleError."""

    def __init__(self, problem: str, hint: str):
        self.problem, self.hint = problem, hint
        super().__init__(problem)


# --- public API ---------------------------------------------------------------------------


def at_or_in(at: str | None, in_: str | None) -> str | None:
    """`--at WHEN` or `--in DURATION` (never both: the CLI and the web API) as one WHEN."""
    if at and in_:
        raise CrierError("give --at or --in, not both")
    return f"in {in_}" if in_ else at


def parse_when(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """One moment: ISO 8601, 'today 17:30', 'tomorrow 9am', 'fri 17:00', '17:00', 'in 2h'.

    Weekday and bare-time forms mean the next such moment strictly after `now`; the others may
    lie in the past (the caller decides). Naive ISO times are in `tz`.
    """
    try:
        return _when(text, _aware(now, "now"), tz)
    except _Invalid as e:
        raise ScheduleError(text, e.problem, e.hint) from None


def parse_duration(text: str | int, *, allow_zero: bool = False) -> timedelta:
    """A positive length of time: '90m', '2h', '1h30m', '45 min', '3 days', '1w', '30s', or a
    whole number of seconds (an int, as TOML gives it). The one duration grammar of crier:
    the command line (`--in`) and every duration key of the config use it.
    `allow_zero`: "0m" / 0 mean "none" (a key like min_gap)."""
    try:
        if isinstance(text, bool) or not isinstance(text, (int, str)):
            raise _Invalid("it is not a number of seconds or a text", DURATION_HINT)
        if isinstance(text, int):
            if text < 0 or (text == 0 and not allow_zero):
                raise _Invalid("a duration must be longer than zero", DURATION_HINT)
            return timedelta(seconds=text)
        return _duration(text, allow_zero=allow_zero)
    except _Invalid as e:
        raise ScheduleError(str(text), e.problem, e.hint) from None


def parse_rule(text: str, *, tz: ZoneInfo, start: datetime) -> Rule:
    """A recurring rule, e.g. 'every fri 17:00' or '0 9 * * mon-fri', optionally '... until WHEN'.

    `start` anchors 'every N weeks' rules (their first occurrence is the first one after it)
    and is the `now` for a relative 'until'.
    """
    try:
        return _rule(text, tz, _aware(start, "start"))
    except _Invalid as e:
        raise ScheduleError(text, e.problem, e.hint) from None


def format_local(dt: datetime, tz: ZoneInfo) -> str:
    """'Fri 2026-12-04 17:00 EST (22:00 UTC)'; the UTC part names its weekday if that differs."""
    utc = _aware(dt, "dt").astimezone(UTC)
    local = utc.astimezone(tz)
    shown = f"{local:%a %Y-%m-%d %H:%M} {local.tzname()}"
    if local.tzname() == "UTC":
        return shown
    day = f"{utc:%a} " if utc.date() != local.date() else ""
    return f"{shown} ({day}{utc:%H:%M} UTC)"


@dataclass(frozen=True)
class _Recurrence:
    base: str                                         # canonical text without 'until'
    summary: str                                      # human, without the time zone
    next_wall: Callable[[datetime], datetime | None]  # next local wall time strictly after
    note: str = ""                                    # a caveat shown after the time zone


@dataclass(frozen=True)
class Rule:
    """A recurring rule in a time zone. Build it with `parse_rule`; store `text`."""

    text: str                      # canonical: parse_rule(text) gives an equal Rule
    tz: ZoneInfo
    until: datetime | None = None  # aware UTC, inclusive: nothing fires after it
    _rec: _Recurrence | None = field(default=None, compare=False, repr=False)

    def next_after(self, when: datetime) -> datetime | None:
        """The first occurrence strictly after `when` (aware UTC), or None past `until`."""
        assert self._rec is not None, "build rules with parse_rule()"
        when = _aware(when, "when").astimezone(UTC)
        wall = when.astimezone(self.tz).replace(tzinfo=None)
        while (wall := self._rec.next_wall(wall)) is not None:
            at = localize(wall, self.tz)
            if at > when:  # else a wall time repeated by a fall-back whose first run is past
                return None if self.until is not None and at > self.until else at
        return None

    def describe(self) -> str:
        """'every Friday at 17:00 (America/New_York)', with any 'until'."""
        assert self._rec is not None, "build rules with parse_rule()"
        until = f", until {format_local(self.until, self.tz)}" if self.until else ""
        note = f"; {self._rec.note}" if self._rec.note else ""
        return f"{self._rec.summary} ({self.tz.key or self.tz}{note}){until}"

    def with_until(self, until: datetime | None) -> Rule:
        """The same rule ending at `until` (inclusive; aware), or never ending with None."""
        assert self._rec is not None, "build rules with parse_rule()"
        if until is None:
            return replace(self, until=None, text=self._rec.base)
        u = _aware(until, "until").astimezone(UTC)
        return replace(self, until=u,
                       text=f"{self._rec.base} until {u.replace(tzinfo=None).isoformat()}Z")


# --- wall clock ---------------------------------------------------------------------------


def _aware(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {dt!r}")
    return dt


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """A naive local wall time → aware UTC (gap: first instant after it; fold: first one)."""
    first = wall.replace(tzinfo=tz, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == wall:
        return utc
    # In a gap fold=0 uses the offset from before the jump (a later instant), fold=1 the one
    # after (an earlier instant); the jump lies between them: find it to the second.
    hi, lo = int(first.timestamp()), int(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (hi + lo) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _fake_utc(wall: datetime) -> datetime:
    """Hand a local wall time to APScheduler as if it were UTC (no DST for it to trip on)."""
    return wall.replace(tzinfo=UTC)


# --- pieces -------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.lower().split()


def _unknown(word: str, known: list[str], what: str) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"'{word}' is not {what}" + (f" (did you mean '{close[0]}'?)" if close else "")


def _weekday(word: str) -> int:
    if word in _WEEKDAYS:
        return _WEEKDAYS[word]
    raise _Invalid(_unknown(word, list(_WEEKDAYS), "a day of the week"),
                   "Days are mon, tue, wed, thu, fri, sat, sun or their full names, "
                   "e.g. 'fri 17:00' or 'friday 5pm'.")


def _time(text: str) -> time:
    s = " ".join(text.split()).lower()
    if not s:
        raise _Invalid("the time of day is missing", TIME_HINT)
    m = _TIME.match(s)
    if not m:
        raise _Invalid(f"'{s}' is not a time of day", TIME_HINT)
    hour, minute, half = int(m[1]), int(m[2] or 0), (m[3] or "").replace(".", "")
    if not half and m[2] is None:
        raise _Invalid(f"'{s}' is ambiguous: give minutes or am/pm, e.g. '{hour}:00' or "
                       f"'{hour}am'", TIME_HINT)
    if half and not 1 <= hour <= 12:
        raise _Invalid(f"'{s}' has no hour {hour}: with am/pm hours go 1-12", TIME_HINT)
    if hour > 23:
        raise _Invalid(f"'{s}' has no hour {hour}: hours go 0-23", TIME_HINT)
    if minute > 59:
        raise _Invalid(f"'{s}' has no minute {minute}: minutes go 00-59", TIME_HINT)
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    return time(hour, minute)


def _split_time(words: list[str]) -> tuple[list[str], time]:
    """Words ending in a time ('5 pm', 'at 17:00') → (the words before it, the time)."""
    n = 2 if len(words) >= 2 and words[-1] in ("am", "pm", "a.m.", "p.m.") else 1
    head, tail = words[:-n], " ".join(words[-n:])
    if not re.search(r"\d", tail):
        raise _Invalid(f"it does not end with a time of day ('{tail}' is not one)" if tail
                       else "the time of day is missing", TIME_HINT)
    if head and head[-1] == "at":
        head = head[:-1]
    return head, _time(tail)


def _duration(text: str, *, allow_zero: bool = False) -> timedelta:
    s = " ".join(text.split()).lower()
    if not s:
        raise _Invalid("it is empty", DURATION_HINT)
    if s.startswith("-"):
        raise _Invalid("a duration must be positive", DURATION_HINT)
    s = re.sub(r",|\band\b", " ", s).strip()
    parts: dict[str, float] = {}
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise _Invalid(f"'{s[pos:]}' is not a number followed by a unit", DURATION_HINT)
        if m[2] not in _UNITS:
            raise _Invalid(_unknown(m[2], list(_UNITS), "a unit of time"), DURATION_HINT)
        unit = _UNITS[m[2]]
        parts[unit] = parts.get(unit, 0) + float(m[1])
        pos = m.end()
    try:
        delta = timedelta(**parts)
    except OverflowError:
        raise _Invalid("that is too long", DURATION_HINT) from None
    if delta < timedelta(0) or (delta == timedelta(0) and not allow_zero):
        raise _Invalid("a duration must be longer than zero", DURATION_HINT)
    return delta


# --- parse_when ---------------------------------------------------------------------------


def _when(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    now = now.astimezone(UTC)
    words = _words(text)
    if not words:
        raise _Invalid("it is empty", WHEN_HINT)
    if words[0] == "in":
        if len(words) == 1:
            raise _Invalid("the duration after 'in' is missing", DURATION_HINT)
        try:
            return now + _duration(" ".join(words[1:]))
        except OverflowError:
            raise _Invalid("that is too far away", WHEN_HINT) from None
    if re.match(r"\d{4}-\d", words[0]):
        return _iso(" ".join(text.split()), tz)
    today = now.astimezone(tz).date()
    if words[0] in ("today", "tomorrow"):
        head, at = _split_time(words[1:])
        if head:
            raise _Invalid(f"'{' '.join(head)}' is not understood after '{words[0]}'", WHEN_HINT)
        return localize(datetime.combine(today + timedelta(words[0] == "tomorrow"), at), tz)
    if words[0] in ("next", "this"):
        words = words[1:]
        if not words or not words[0].isalpha():
            raise _Invalid("a day of the week is missing, e.g. 'next fri 9:00'", WHEN_HINT)
    if words[0].isalpha() and words[0] != "at":
        if words[0] not in _WEEKDAYS:
            known = [*_WEEKDAYS, "today", "tomorrow", "next", "in"]
            raise _Invalid(_unknown(words[0], known, "a date, day or time"), WHEN_HINT)
        day = _WEEKDAYS[words[0]]
        head, at = _split_time(words[1:])
        if head:
            raise _Invalid(f"'{' '.join(head)}' is not understood after '{words[0]}'", WHEN_HINT)
        days = [today + timedelta(d) for d in range(9) if (today + timedelta(d)).weekday() == day]
    else:
        head, at = _split_time(words)
        if head:
            raise _Invalid(f"'{' '.join(head)}' is not understood", WHEN_HINT)
        days = [today + timedelta(d) for d in range(3)]
    return next(t for t in (localize(datetime.combine(d, at), tz) for d in days) if t > now)


def _iso(text: str, tz: ZoneInfo) -> datetime:
    if _ISO_DATE.match(text):
        raise _Invalid(f"'{text}' has no time of day; add one, e.g. '{text} 09:00'", WHEN_HINT)
    try:
        dt = datetime.fromisoformat(text.upper())
    except ValueError:
        m = re.match(r"^(\S+?)(?:\s+at\s+|[ tT])(.+)$", text, re.I)
        if not m:
            raise _Invalid(f"'{text}' is not a date and time", WHEN_HINT) from None
        try:
            day = date.fromisoformat(m[1])
        except ValueError as e:
            raise _Invalid(f"'{m[1]}' is not a valid date ({e})",
                           "Write dates as YYYY-MM-DD, e.g. '2026-12-01 09:00'.") from None
        dt = datetime.combine(day, _time(m[2]))
    if dt.tzinfo is not None:
        return dt.astimezone(UTC)
    return localize(dt, tz)


# --- parse_rule ---------------------------------------------------------------------------


def _rule(text: str, tz: ZoneInfo, start: datetime) -> Rule:
    s = " ".join(text.split()).lower()
    if not s:
        raise _Invalid("it is empty", RULE_HINT)
    s, _, until_text = s.partition(" until ")
    until = _when(until_text, start, tz) if until_text else None
    words = s.split()
    if words[0] == "cron" or any("*" in w for w in words) or (
            len(words) == 5 and all(_CRON_FIELD.match(w) for w in words[:2])):
        rec = _cron(words[1:] if words[0] == "cron" else words)
    else:
        rec = _calendar(words, tz, start)
    rule = Rule(text=rec.base, tz=tz, _rec=rec)
    if rule.next_after(start) is None:
        raise _Invalid("it never happens (no such date)", RULE_HINT)
    return rule.with_until(until)


def _calendar(words: list[str], tz: ZoneInfo, start: datetime) -> _Recurrence:
    anchor: date | None = None
    if len(words) >= 2 and words[-2] == "from":
        try:
            anchor = date.fromisoformat(words[-1])
        except ValueError:
            raise _Invalid(f"'{words[-1]}' is not a date",
                           "Write e.g. 'every 2 weeks on mon 9:00 from 2026-11-30'.") from None
        words = words[:-2]
    if words and words[0] in ("every", "each"):
        words = words[1:]
    if not any(c.isdigit() for c in "".join(words)):
        raise _Invalid("it has no time of day", RULE_HINT)
    head, at = _split_time(words)
    if not head:
        raise _Invalid("it does not say which days", RULE_HINT)
    phrase = " ".join(head)
    hhmm = f"{at:%H:%M}"
    if m := re.fullmatch(r"(\d+|other) weeks? (?:on )?(.+)", phrase):
        every = 2 if m[1] == "other" else int(m[1])
        if every < 1:
            raise _Invalid(f"'every {m[1]} weeks' repeats nothing: use 1 or more weeks",
                           "Write e.g. 'every 2 weeks on mon 9:00'.")
        days = _days(m[2])
        if every == 1:
            anchor = None
        else:
            if len(days) != 1:
                raise _Invalid(f"'every {every} weeks' takes exactly one day",
                               "Write e.g. 'every 2 weeks on mon 9:00'.")
            return _weeks(every, min(days), at, anchor, tz, start)
    elif m := re.fullmatch(r"(?:monthly|month)(?: on)?(?: the)?(?: day)? "
                           r"(?:(\d{1,2})(?:st|nd|rd|th)?|(last))(?: day)?(?: of the month)?",
                           phrase):
        if anchor:
            raise _Invalid("'from DATE' only goes with 'every N weeks'", RULE_HINT)
        day = int(m[1]) if m[1] else None
        if day is not None and not 1 <= day <= 31:
            raise _Invalid(f"no month has a day {day}: days go 1-31",
                           "Write e.g. 'every month on the 1st 10:00' or 'monthly last 10:00'.")
        return _monthly(day, at)
    elif phrase in ("day", "days", "daily"):
        days = _ALL_DAYS
    elif phrase in ("weekday", "weekdays"):
        days = _WORKWEEK
    elif phrase in ("weekend", "weekends", "weekend day"):
        days = frozenset((5, 6))
    else:
        days = _days(re.sub(r"^(?:weekly|week)(?: on)?\s*|^on ", "", phrase))
    if anchor:
        raise _Invalid("'from DATE' only goes with 'every N weeks'", RULE_HINT)
    aps = ",".join(_ABBR[d] for d in sorted(days))
    trig = CronTrigger(day_of_week=aps, hour=at.hour, minute=at.minute, timezone=UTC)
    if days == _ALL_DAYS:
        base, summary = f"every day {hhmm}", f"every day at {hhmm}"
    elif days == _WORKWEEK:
        base, summary = f"every weekday {hhmm}", f"every weekday (Monday to Friday) at {hhmm}"
    else:
        names = [DAY_NAMES[d] for d in sorted(days)]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        base, summary = f"every {aps} {hhmm}", f"every {listed} at {hhmm}"
    return _Recurrence(base, summary, _cron_next(trig))


def _days(phrase: str) -> frozenset[int]:
    """'mon,wed,fri', 'mon, wed and fri', 'mon-fri' → weekday numbers (Monday = 0)."""
    items = [w for w in re.split(r"[,\s]+|\band\b", phrase) if w]
    if not items:
        raise _Invalid("it does not say which days", RULE_HINT)
    days: set[int] = set()
    for item in items:
        first, dash, last = item.partition("-")
        a = _weekday(first)
        b = _weekday(last) if dash else a
        if b < a:
            raise _Invalid(f"the range '{item}' runs backwards (weeks start on Monday)",
                           "Write e.g. 'mon-fri 9:00' or 'sat,sun 10:00'.")
        days.update(range(a, b + 1))
    return frozenset(days)


def _cron_next(trig: CronTrigger) -> Callable[[datetime], datetime | None]:
    def next_wall(wall: datetime) -> datetime | None:
        fire = trig.get_next_fire_time(None, _fake_utc(wall) + timedelta(microseconds=1))
        return fire.replace(tzinfo=None) if fire else None
    return next_wall


def _monthly(day: int | None, at: time) -> _Recurrence:
    hhmm, note = f"{at:%H:%M}", ""
    if day is None:
        base = f"every month on the last day {hhmm}"
        summary = f"every month on the last day at {hhmm}"
    else:
        nth = f"{day}{_ordinal(day)}"
        base, summary = f"every month on the {nth} {hhmm}", f"every month on the {nth} at {hhmm}"
        if day > 28:
            note = f"months without a {nth} are skipped"
    trig = CronTrigger(day=str(day or "last"), hour=at.hour, minute=at.minute, timezone=UTC)
    return _Recurrence(base, summary, _cron_next(trig), note)


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _weeks(every: int, day: int, at: time, anchor: date | None, tz: ZoneInfo,
           start: datetime) -> _Recurrence:
    """Every `every` weeks on `day`, from `anchor` or else the first such moment after start."""
    if anchor is None:
        local = start.astimezone(tz).date()
        anchor = next(d for d in (local + timedelta(i) for i in range(9))
                      if d.weekday() == day and localize(datetime.combine(d, at), tz) > start)
    anchor += timedelta((day - anchor.weekday()) % 7)
    trig = CalendarIntervalTrigger(weeks=every, hour=at.hour, minute=at.minute,
                                   start_date=anchor, timezone=UTC)
    first = datetime.combine(anchor, at)

    def next_wall(wall: datetime) -> datetime | None:
        if wall < first:
            return first
        k = (wall.date() - anchor).days // (7 * every)
        prev = datetime.combine(anchor + timedelta(weeks=every * k), at)
        if prev > wall:
            return prev
        fire = trig.get_next_fire_time(_fake_utc(prev), _fake_utc(prev))
        return fire.replace(tzinfo=None) if fire else None

    hhmm, abbr = f"{at:%H:%M}", _ABBR[day]
    return _Recurrence(f"every {every} weeks on {abbr} {hhmm} from {anchor}",
                       f"every {every} weeks on {DAY_NAMES[day]} at {hhmm} from "
                       f"{anchor:%a %Y-%m-%d}", next_wall)


def _cron(fields: list[str]) -> _Recurrence:
    if len(fields) != 5:
        raise _Invalid(f"a cron expression needs 5 fields, this one has {len(fields)}", CRON_HINT)
    minute, hour, dom, month, dow = fields
    if dom[0] not in "*?" and dow[0] not in "*?":
        raise _Invalid("it limits both the day of the month and the day of the week (cron "
                       "would fire on either, which is rarely meant); use '*' in one of them",
                       CRON_HINT)
    try:
        trig = CronTrigger(minute=minute, hour=hour, day=dom.replace("?", "*"), month=month,
                           day_of_week=_cron_dow(dow), timezone=UTC)
    except ValueError as e:
        raise _Invalid(f"it is not a valid cron expression ({e})", CRON_HINT) from None
    expr = " ".join(fields)
    return _Recurrence(expr, f"at times matching cron '{expr}'", _cron_next(trig))


def _cron_dow(text: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, names too) → APScheduler's 'mon,wed,...'.

    APScheduler 3 counts 0 as Monday, unlike crontab, so numbers are translated here.
    """
    days: set[int] = set()  # crontab numbering, Sunday = 0
    for part in text.split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise _Invalid(f"'{part}' has a bad step '{step_text}' in the day-of-week field",
                           CRON_HINT)
        if span in ("*", "?"):
            first, last = 0, 6
        else:
            a, dash, b = span.partition("-")
            first = _cron_day(a, end=False)
            last = _cron_day(b, end=True) if dash else (6 if slash else first)
            if last < first:
                raise _Invalid(f"the day-of-week range '{span}' runs backwards", CRON_HINT)
        days.update(d % 7 for d in range(first, last + 1, int(step_text or 1)))
    if len(days) == 7:
        return "*"
    return ",".join(_ABBR[d] for d in sorted((d - 1) % 7 for d in days))


def _cron_day(text: str, *, end: bool) -> int:
    if text.isdigit():
        if int(text) > 7:
            raise _Invalid(f"there is no day-of-week {text} (0-7, 0 and 7 are Sunday)",
                           CRON_HINT)
        return int(text)
    if text not in _WEEKDAYS:
        raise _Invalid(_unknown(text, list(_WEEKDAYS), "a day of the week"), CRON_HINT)
    n = (_WEEKDAYS[text] + 1) % 7
    return 7 if end and n == 0 else n


def overdue(rule, next_at: datetime, now: datetime, grace: timedelta
            ) -> tuple[list[datetime], list[datetime], datetime | None]:
    """A promo firing at `now` (its next occurrence `next_at` <= now; `rule` None for a
    one-off): the occurrences due by now split into those more than `grace` late (reported,
    not posted) and those on time (the newest goes out), and the next one after now."""
    due = [next_at]
    nxt = rule.next_after(next_at) if rule else None
    while nxt is not None and nxt <= now:
        due.append(nxt)
        nxt = rule.next_after(nxt)
    return ([t for t in due if now - t > grace], [t for t in due if now - t <= grace], nxt)
