"""What the queue pages show, computed from the application's answers (bot.promos, and the
calendar's entries): a post's text cut into the pieces a network renders (links, mentions,
hashtags), the form's previews (the same `PromoQueue.add(..., dry=True)` the CLI's
`--dry-run` runs), and the calendar's week and month grids. No rule of crier's lives here.

The calendar reads its entries through one function, `calendar_entries(svc, start, end)`:
bot.calendar's `CalendarEntry`s (`when` in UTC, `account`, `platform`, `kind`, `status`,
`text`, `promo_id`, `moved_from`, `reason`, ...), at the times the dispatcher will really
send them."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import regex

from bot import errors, textlen
from bot.models import Promo
from bot.schedule import localize

log = logging.getLogger(__name__)

PLATFORM_NAMES = {"mastodon": "Mastodon", "x": "X", "bluesky": "Bluesky", "threads": "Threads"}
LINK_SHOWN = 30              # characters of a link's address shown, as the networks cut them
_HASHTAG = regex.compile(r"(?<![\w&/#])[#＃](\w*[\p{L}_]\w*)")


# -- a post as a network shows it ----------------------------------------------------------
def segments(text: str) -> list[tuple[str, str, str | None]]:
    """(kind, shown text, href) pieces of `text`: "text", "link", "mention", "hashtag"."""
    spans = [(s, e, "link", url) for url, s, e in textlen.extract_urls(text)]
    taken = [(s, e) for s, e, _, _ in spans]

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)
    for name, s, e in textlen.extract_mentions(text):
        if free(s, e):
            spans.append((s, e, "mention", name))
            taken.append((s, e))
    for m in _HASHTAG.finditer(text):
        if free(m.start(), m.end()):
            spans.append((m.start(), m.end(), "hashtag", m.group(1)))
    out, at = [], 0
    for s, e, kind, _ in sorted(spans):
        if s > at:
            out.append(("text", text[at:s], None))
        piece = text[s:e]
        if kind == "link":
            href = piece if "://" in piece else "https://" + piece
            shown = piece.split("://", 1)[-1]
            shown = shown if len(shown) <= LINK_SHOWN else shown[:LINK_SHOWN] + "…"
            out.append(("link", shown, href))
        else:
            out.append((kind, piece, None))
        at = e
    if at < len(text):
        out.append(("text", text[at:], None))
    return out


def card(p) -> dict:
    """A preview (bot.models.PromoPreview) as the page's card shows it."""
    segs = segments(p.text)
    links = [h for k, _, h in segs if k == "link"]
    return {
        "account": p.account, "platform": p.platform,
        "network": PLATFORM_NAMES.get(p.platform, p.platform), "text": p.text,
        "segments": segs, "length": p.length, "limit": p.limit,
        "over": p.length - p.limit if p.length > p.limit else 0, "fits": p.fits,
        "shortened": p.shortened, "trimmed": list(getattr(p, "trimmed", ()) or ()),
        "link": getattr(p, "link", None) or (links[0] if links else None),
        "hashtags": [t for k, t, _ in segs if k == "hashtag"],
        "mentions": [t for k, t, _ in segs if k == "mention"],
        "image": p.image, "alt": p.alt, "alt_length": p.alt_length, "alt_limit": p.alt_limit,
        "alt_over": bool(p.alt_length and p.alt_limit and p.alt_length > p.alt_limit),
        "episode": p.episode,
    }


def previews(svc, form: dict) -> tuple[str | None, list[dict]]:
    """The form's posts composed for every account as `crier queue add --dry-run` composes
    them (`form`: add's arguments), and the CLI's message when the post cannot be queued."""
    try:
        _, _, shown = svc.queue.add(dry=True, **form)
        return None, [card(p) for p in shown]
    except errors.CrierError as e:
        return str(e), composed(svc, form)


def composed(svc, form: dict) -> list[dict]:
    """The posts composed where the text allows it though the post cannot be queued (too
    long, a time in the past, ...): the host sees the numbers next to the message."""
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
    return [card(p) for p in shown]


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
