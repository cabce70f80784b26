"""When a feed is next polled: the poll interval's promise, and how it adapts to the show.

Pure: values in, values out (the clock and the random source are handed in).

`next_poll_at` keeps the interval's promise (two polls at most `interval` apart, jittered in
the interval's last tenth, counted from the due time; see its docstring). Given a `Cadence`
(what crier knows about when the show publishes) the interval in force adapts:

- the hours of the week the show usually publishes are learned from its newest episodes'
  dates (`learn_hours`: at most LEARN_FROM of them; at least LEARN_MIN dated ones, and a
  pattern clear enough that noise does not pass for one). Around each such hour (from
  WINDOW_BEFORE before it to WINDOW_AFTER after the hour ends) the feed is polled every
  `min_poll_interval`; once the episode of that window is in, the rest of it is not;
- between those windows (and for a feed that says it is complete) every `interval` x
  MAX_FACTOR, but never past the start of the next window;
- with no pattern, what the feed says (`<podcast:updateFrequency>`, `<sy:updatePeriod>` /
  `<sy:updateFrequency>`: `UpdateHint.every`) lengthens the interval up to MAX_FACTOR x; a
  hint never shortens it. Hours the feed declares (rrule BYHOUR, a dtstart with a time of
  day, sy:updateBase) stand in for learned ones when none were learned.

So adapting never polls more often than `min_poll_interval` (a poll it brings forward is at
least that long after the one before; `poll_interval`'s own jitter, its last tenth, is as
before) and never less often than `interval` x MAX_FACTOR: the safety net for an episode out
of pattern (push, WebSub and podping, announce those in seconds).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.models import UpdateHint

POLL_TICK = 5  # seconds: how often the worker looks for due feeds (bot.worker)
# How much sooner than the interval a feed is made due: a tick (a due feed waits up to one for
# the poll job) and as much again for a busy drain. At most a twentieth of the interval.
POLL_SLACK = 2 * POLL_TICK
MAX_FACTOR = 4            # the slowest polling: interval x this (and the max-age cap)
DEFAULT_MIN_INTERVAL = 60
WINDOW_BEFORE = timedelta(minutes=15)
WINDOW_AFTER = timedelta(minutes=30)   # after the end of the usual hour
LEARN_FROM = 20           # the newest episodes looked at
LEARN_MIN = 4             # fewer dated ones: no pattern
MAX_SLOTS = 21            # more usual hours a week than this is no pattern (3 a day)
WEEK = 7 * 24
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_FREQ = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 604800,
         "MONTHLY": 2629800, "YEARLY": 31557600}
# RSS 1.0 syndication module: updatePeriod is hourly | daily | weekly | monthly | yearly
# (default daily), updateFrequency how many times in that period (default 1).
# https://web.resource.org/rss/1.0/modules/syndication/
_SY_PERIOD = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2629800,
              "yearly": 31557600}
_WORDS = {"daily": 86400, "weekly": 604800, "biweekly": 1209600, "fortnightly": 1209600,
          "monthly": 2629800, "bimonthly": 5259600, "yearly": 31557600}


def hour_of_week(t: datetime) -> int:
    """0 = Monday 00:00-00:59 UTC ... 167 = Sunday 23:00-23:59 UTC."""
    t = t.astimezone(UTC)
    return t.weekday() * 24 + t.hour


def _week_start(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def learn_hours(times: Iterable[datetime | None], now: datetime) -> tuple[int, ...]:
    """The hours of the week (UTC) the show usually publishes, from its episodes' dates (the
    newest LEARN_FROM hours of a day that saw a release, up to now: episodes out in the same
    hour count once), or () when they show no clear pattern: the same hour of the week for
    at least half of them, or else the same hour of the day (at most 3 hours) for at least
    two thirds. Dates all at midnight UTC (a date with no time) teach nothing."""
    # one release an hour of a day: a batch of episodes dropped at once is one observation
    raw = [t for t in times if t is not None and t <= now]
    ts = sorted({t.astimezone(UTC).replace(minute=0, second=0, microsecond=0) for t in raw},
                reverse=True)[:LEARN_FROM]
    if len(ts) < LEARN_MIN or all(t.astimezone(UTC).time() == datetime.min.time() for t in raw):
        return ()
    week = Counter(hour_of_week(t) for t in ts)
    slots = {h for h, n in week.items() if n >= 2}
    in_slots = sum(week[h] for h in slots) if len(slots) <= MAX_SLOTS else 0
    day = Counter(t.astimezone(UTC).hour for t in ts)
    top = [h for h, n in day.most_common(3) if n >= 2]
    in_top = sum(day[h] for h in top)
    if 3 * in_top >= 2 * len(ts) and in_top > in_slots:  # the hour, whatever the day
        return tuple(sorted(d * 24 + h for d in range(7) for h in top))
    return tuple(sorted(slots)) if 2 * in_slots >= len(ts) else ()


def _rrule(rule: str) -> dict[str, str]:
    out = {}
    for part in rule.upper().replace("RRULE:", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key and value:
            out[key] = value.strip()
    return out


def _iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def declared_hint(*, text: str | None = None, rrule: str | None = None,
                  complete: str | None = None, dtstart: str | None = None,
                  sy_period: str | None = None, sy_frequency: str | None = None,
                  sy_base: str | None = None) -> UpdateHint | None:
    """What a channel's `<podcast:updateFrequency>` (node text, rrule, complete, dtstart
    attributes: RFC 5545 rules, as the Podcasting 2.0 spec says) and `<sy:updatePeriod>` /
    `<sy:updateFrequency>` / `<sy:updateBase>` say, or None when nothing usable. Anything
    unreadable is ignored (a hint, never an error); so are the rule's COUNT and UNTIL and a
    dtstart in the future (a hiatus): the safety net polls through them."""
    every: int | None = None
    hours: set[int] = set()
    if rrule:
        r = _rrule(rrule)
        try:
            n = max(1, int(r.get("INTERVAL", "1")))
        except ValueError:
            n = 1
        if r.get("FREQ") in _FREQ:
            days = [d[-2:] for d in r.get("BYDAY", "").split(",") if d[-2:] in _DAYS]
            every = _FREQ[r["FREQ"]] * n
            if r["FREQ"] == "WEEKLY" and days:
                every //= len(days)
            elif r["FREQ"] == "DAILY" and days:
                every = every * 7 // len(days)
            start = _iso(dtstart)
            by_hour = [int(h) for h in r.get("BYHOUR", "").split(",") if h.isdigit()
                       and int(h) < 24]
            if not by_hour and start and start.astimezone(UTC).time() != datetime.min.time():
                by_hour = [start.astimezone(UTC).hour]
            if by_hour and r["FREQ"] in ("DAILY", "WEEKLY"):
                wd = [_DAYS.index(d) for d in days] or (
                    list(range(7)) if r["FREQ"] == "DAILY" else
                    [start.astimezone(UTC).weekday()] if start else [])
                hours |= {d * 24 + h for d in wd for h in by_hour}
    if every is None and text:
        word = re.sub(r"[^a-z]", "", text.lower())
        every = _WORDS.get(word)
    if every is None and (sy_period or sy_frequency):
        period = _SY_PERIOD.get((sy_period or "daily").strip().lower())
        try:
            times = max(1, int((sy_frequency or "1").strip()))
        except ValueError:
            times = 1
        if period:
            every = period // times
            base = _iso(sy_base)  # the phase: updates at base + k x every
            if base and 86400 <= every <= 604800 and 604800 % every == 0:
                step = every // 3600
                hours |= {(hour_of_week(base) + k * step) % WEEK for k in range(WEEK // step)}
    done = (complete or "").strip().lower() in ("true", "yes", "1")
    if every is None and not done and not hours:
        return None
    return UpdateHint(every=every, complete=done, hours=tuple(sorted(hours)))


@dataclass(frozen=True)
class Cadence:
    """What the poll schedule knows about a feed (kept on its row: `update_hint`, and the
    JSON of `release_hours`, written when the feed is parsed; a 304 reads them as they are)."""
    hours: tuple[int, ...] = ()       # usual hours of the week, UTC (learned or declared)
    hint: int | None = None           # seconds the feed says it updates every
    complete: bool = False            # podcast:updateFrequency complete="true"
    min_interval: int = DEFAULT_MIN_INTERVAL
    newest: datetime | None = None    # the newest episode's date (its window is done)
    learned: bool = False             # `hours` learned from the episodes (not declared)

    @classmethod
    def from_row(cls, update_hint: int | None, release_hours, *,
                 min_interval: int | None = None) -> Cadence:
        """From a feed row's columns; `min_interval`: the show's min_poll_interval (else the
        one recorded when the feed was parsed)."""
        data = release_hours if isinstance(release_hours, dict) else {}
        try:
            newest = datetime.fromtimestamp(float(data["newest"]), UTC)
        except (KeyError, TypeError, ValueError, OverflowError):
            newest = None
        return cls(hours=tuple(h for h in data.get("hours") or () if isinstance(h, int)
                               and 0 <= h < WEEK),
                   hint=update_hint or None, complete=bool(data.get("complete")),
                   min_interval=int(min_interval or data.get("min") or DEFAULT_MIN_INTERVAL),
                   newest=newest, learned=bool(data.get("learned")))

    @classmethod
    def learn(cls, hint: UpdateHint | None, times: Iterable[datetime | None], now: datetime,
              min_interval: int) -> Cadence:
        times = list(times)
        hours = learn_hours(times, now)
        dated = [t for t in times if t is not None and t <= now]
        return cls(hours=hours or (hint.hours if hint else ()),
                   hint=hint.every if hint else None,
                   complete=bool(hint and hint.complete), min_interval=min_interval,
                   newest=max(dated) if dated else None, learned=bool(hours))

    def columns(self) -> dict:
        """The feed row's `update_hint` and `release_hours` for this cadence."""
        return {"update_hint": self.hint, "release_hours": {
            "hours": list(self.hours), "complete": self.complete, "min": self.min_interval,
            "learned": self.learned,
            "newest": self.newest.timestamp() if self.newest else None}}

    def _window(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(start of the window `now` is in, or None; start of the next window after now)."""
        if not self.hours:
            return None, None
        base = _week_start(now)
        inside, upcoming = None, None
        for week in (-1, 0, 1):
            for h in self.hours:
                start = base + timedelta(days=7 * week, hours=h) - WINDOW_BEFORE
                end = start + WINDOW_BEFORE + timedelta(hours=1) + WINDOW_AFTER
                if start <= now < end and (inside is None or start < inside):
                    inside = start
                elif start > now and (upcoming is None or start < upcoming):
                    upcoming = start
        return inside, upcoming

    def plan(self, now: datetime, interval: int) -> tuple[int, datetime | None, str]:
        """(the interval in force now, a time the next poll may not pass (None: none),
        why, in words)."""
        slow = interval * MAX_FACTOR
        if self.complete:
            return slow, None, "the feed says it is complete"
        inside, upcoming = self._window(now)
        if inside is not None and not (self.newest and self.newest >= inside):
            return self.min_interval, None, "around its usual release time"
        if self.hours:
            return slow, upcoming, "between its usual release times"
        if self.hint and self.hint > interval:
            return min(self.hint, slow), None, f"the feed says it updates every " \
                f"{describe_seconds(self.hint)}"
        return interval, None, ""


def describe_seconds(seconds: float) -> str:
    """90 -> "1 min 30 s", 3600 -> "1 h", 86400 -> "1 day"."""
    s = int(round(seconds))
    if s >= 86400 and s % 3600 == 0:
        d, h = divmod(s // 3600, 24)
        return f"{d} day{'s' if d > 1 else ''}" + (f" {h} h" if h else "")
    parts = [(s // 3600, "h"), (s % 3600 // 60, "min"), (s % 60, "s")]
    return " ".join(f"{n} {u}" for n, u in parts if n) or "0 s"


def next_poll_at(now: datetime, interval: int, max_age: int | None, rng,
                 due: datetime | None = None, cadence: Cadence | None = None) -> datetime:
    """When a feed polled now is next due.

    The interval is a promise: two polls of a feed are at most `interval` apart, so an episode
    is seen within one. The next poll is drawn from the last tenth of the interval (jitter, so
    feeds do not fall due together), less POLL_SLACK (a feed due at t waits up to a tick for
    the poll job, and a busy worker's drain as much again). It is counted from when this poll
    was due (`due`), not from when it ran, so a worker a few seconds behind does not stretch
    every cycle; but never sooner than 0.8 x the interval from now: a poll that ran late (a
    worker was down, a backlog) counts from now.
    Longer when the server's Cache-Control max-age asks (at most MAX_FACTOR x the interval).
    With a `cadence`, the interval in force is `Cadence.plan`'s (see the module docstring),
    and the next poll is no later than the next release window's start; when that or the
    plan makes it sooner than the interval would, never sooner than `min_interval` from now.
    """
    base, cap = interval, None
    if cadence is not None:
        interval, cap, _ = cadence.plan(now, base)
    if max_age and max_age > interval:  # the server asks us to wait longer: honour it,
        interval = min(max_age, base * MAX_FACTOR)  # within reason
    step = timedelta(seconds=interval * rng.uniform(0.9, 1.0) - min(POLL_SLACK, interval / 20))
    at = now + step
    if due is not None and due <= now and due + step >= now + timedelta(seconds=interval * 0.8):
        at = due + step
    if cadence is not None and (interval < base or (cap is not None and cap < at)):
        # sooner than the interval's promise: never sooner than min_interval
        at = max(min(at, cap or at), now + timedelta(seconds=cadence.min_interval))
    return at


def describe_schedule(cadence: Cadence | None, interval: int, now: datetime) -> str:
    """"polling every 15 min", "polling every 1 min (around its usual release time)", ..."""
    if cadence is None:
        return f"polling every {describe_seconds(interval)}"
    every, cap, why = cadence.plan(now, interval)
    text = f"polling every {describe_seconds(every)}"
    if cap is not None:
        text += f" until {cap:%a %H:%M} UTC"
    return text + (f" ({why})" if why else "")
