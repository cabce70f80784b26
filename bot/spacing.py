"""When a queued post may go out: a minimum gap between two posts of an account, and quiet
hours in the show's time zone. Pure: times in, times out (aware UTC).

    next_allowed(due, tz=tz, quiet="22:00-07:00", not_before=last_sent + gap)

`plan` lays out several queued posts the same way, in order, so `crier queue list` can show
when each will actually go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def _window(quiet: str) -> tuple[time, time]:
    start, end = quiet.split("-")
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    return time(h1, m1), time(h2, m2)


def _local(day, at: time, tz: ZoneInfo) -> datetime:
    """`day` at local time `at` in UTC, by `bot.schedule`'s policy (a skipped time: the
    moment the clocks jump; a repeated one: its first occurrence)."""
    from bot.schedule import localize
    return localize(datetime.combine(day, at), tz)


def quiet_until(when: datetime, *, tz: ZoneInfo, quiet: str | None) -> datetime | None:
    """The end of the quiet hours `when` falls in, or None when it falls in none."""
    if not quiet:
        return None
    start, end = _window(quiet)
    local = when.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    day = local.date()
    if start < end:  # e.g. 13:00-14:00
        return _local(day, end, tz) if start <= now < end else None
    if now >= start:  # e.g. 22:00-07:00, before midnight
        return _local(day + timedelta(days=1), end, tz)
    if now < end:  # after midnight
        return _local(day, end, tz)
    return None


def next_allowed(due: datetime, *, tz: ZoneInfo, quiet: str | None = None,
                 not_before: datetime | None = None) -> datetime:
    """The first moment at or after `due` (and `not_before`) outside the quiet hours."""
    when = max(due, not_before) if not_before else due
    end = quiet_until(when, tz=tz, quiet=quiet)
    return end if end is not None else when


@dataclass(frozen=True)
class Slot:
    key: object          # the caller's id for the post
    due: datetime        # when it is due
    accounts: tuple[str, ...]


def plan(slots: Iterable[Slot], *, tz: ZoneInfo, gaps: dict[str, timedelta],
         quiet: dict[str, str | None], last_sent: dict[str, datetime | None],
         blocked_until: dict[str, datetime] | None = None
         ) -> dict[object, dict[str, datetime]]:
    """When each post goes out on each of its accounts: in order of due time, each account
    takes one post at a time, `gaps[account]` apart, never in its quiet hours, and not before
    `blocked_until[account]` (an announcement going out first)."""
    free: dict[str, datetime | None] = {
        a: (t + gaps.get(a, timedelta(0))) if t else None for a, t in last_sent.items()}
    for a, t in (blocked_until or {}).items():
        free[a] = max(free.get(a) or t, t)
    out: dict[object, dict[str, datetime]] = {}
    for slot in sorted(slots, key=lambda s: s.due):
        times = {}
        for a in slot.accounts:
            at = next_allowed(slot.due, tz=tz, quiet=quiet.get(a), not_before=free.get(a))
            times[a] = at
            free[a] = at + gaps.get(a, timedelta(0))
        out[slot.key] = times
    return out


def describe_quiet(quiet: str | None, tz: ZoneInfo) -> str:
    return f"{quiet} ({tz.key})" if quiet else "none"


__all__: Sequence[str] = ("next_allowed", "plan", "quiet_until", "Slot", "describe_quiet")
