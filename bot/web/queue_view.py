"""What the queue pages show, computed from the application's answers (bot.promos, and the
calendar's entries): the refused form's posts per account (as the JSON API's PREVIEW, which
the live preview in bot/web/static/queue.js draws from `POST /api/v1/shows/{slug}/preview`),
and the calendar's week and month grids. No rule of crier's lives here.

The calendar reads its entries through one function, `calendar_entries(svc, start, end)`:
bot.calendar's `CalendarEntry`s (`when` in UTC, `account`, `platform`, `kind`, `status`,
`text`, `promo_id`, `moved_from`, `reason`, ...), at the times the dispatcher will really
send them."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from bot import errors
from bot.models import Promo
from bot.schedule import localize
from bot.web.api_models import preview_out

log = logging.getLogger(__name__)


# -- the form's posts when it is refused (the page without JavaScript) ----------------------
def card(p, display_name: str | None) -> dict:
    """A preview (bot.models.PromoPreview) as the JSON API's PREVIEW gives it (the live
    preview draws the same from /api/v1/shows/{slug}/preview), with how many over."""
    out = preview_out(p, display_name=display_name)
    links = [s["href"] for s in out["segments"] if s["kind"] == "link"]
    return {**out, "over": max(0, p.length - p.limit),
            "link": out["link"] or (links[0] if links else None),   # the episode's, or the text's
            "alt_over": bool(p.alt_length and p.alt_limit and p.alt_length > p.alt_limit)}


def composed(svc, form: dict) -> list[dict]:
    """The posts composed where the text allows it though the post cannot be queued (too
    long, a time in the past, ...): the form, posted without JavaScript and refused, shows
    the numbers next to the CLI's message."""
    q = svc.queue
    text = form.get("text") or ""
    if form.get("evergreen") or not text.strip():
        return []
    promo = Promo(kind="once", text=text, fit=bool(form.get("fit")), alt=form.get("alt"),
                  image_path=form.get("image"))
    try:
        shown = q.preview(promo, q.accounts(form.get("accounts")), q.episode(form.get("episode")))
    except errors.CrierError:
        return []
    return [card(p, svc.settings.show) for p in shown]


# -- the calendar ----------------------------------------------------------------------------
def calendar_entries(svc, start: datetime, end: datetime) -> list:
    """Everything going out in [start, end), per account, at the time it really goes out
    (bot.calendar: the dispatcher's own gap, quiet-hours and grace rules, replayed)."""
    from bot.calendar import calendar
    return calendar(svc, start, end)


def window(view: str, day: date, tz) -> tuple[datetime, datetime, date, date]:
    """[start, end) in UTC of the week (Monday first) or month holding `day`, and its first
    and last local days."""
    if view == "month":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    else:
        first = day - timedelta(days=day.weekday())
        last = first + timedelta(days=6)
    return (localize(datetime.combine(first, time()), tz),
            localize(datetime.combine(last + timedelta(days=1), time()), tz), first, last)


def grid(view: str, day: date, entries: list, tz, today: date) -> list[list[dict]]:
    """Weeks of days (Monday first), each day with its entries in local time order. A month
    grid starts on the Monday before the 1st and ends on the Sunday after the last day."""
    _, _, first, last = window(view, day, tz)
    by_day: dict[date, list] = {}
    for e in entries:
        local = e.when.astimezone(tz)
        by_day.setdefault(local.date(), []).append({"e": e, "time": local.strftime("%H:%M"),
                                                    "zone": local.tzname()})
    start = first - timedelta(days=first.weekday())
    weeks, d = [], start
    while d <= last or d.weekday() != 0:
        if d.weekday() == 0:
            weeks.append([])
        weeks[-1].append({"date": d, "iso": d.isoformat(), "entries": by_day.get(d, []),
                          "outside": not (first <= d <= last), "today": d == today})
        d += timedelta(days=1)
    return weeks


def neighbours(view: str, day: date) -> tuple[date, date]:
    """The day to show for "previous" and "next" (a week or a month away)."""
    if view == "month":
        first = day.replace(day=1)
        prev = (first - timedelta(days=1)).replace(day=1)
        return prev, (first + timedelta(days=32)).replace(day=1)
    return day - timedelta(days=7), day + timedelta(days=7)
