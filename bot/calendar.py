"""The queue as a calendar: everything a show will post in a window, per account, at the time
it will really go out. The data behind the web app's week and month views and
`crier queue calendar`; no HTML here.

    calendar(svc, start, end) -> [CalendarEntry]     # [start, end), aware datetimes
    week(svc, day) / month(svc, year, month)          # windows in the show's time zone

What it shows, and how:
- Waiting deliveries (pending, retrying, sending) at the time they will go out; held ones
  (waiting for the host: `crier retry`) and sent ones (or dry runs) inside the window, at
  now and at their time. Sent posts are only context: the window may start in the past.
- Every occurrence of active one-off and recurring promos (their rule from `bot.schedule`,
  `until` respected), and evergreen slots: the next one names the episode `--pick oldest`
  would promote then (`PromoQueue._pick`); later ones say "an older episode" (the pick
  depends on what goes out meanwhile), a random pick "a random older episode".
- Future-dated (scheduled) episodes' announcements on every posting account at their date;
  held episodes' (flood guard) announcements at now, status "held": they go out only when
  the host releases them.
- Paused promos are shown, status "paused", at the times they would go out if resumed; they
  take no slot in the spacing (they will not go out unless resumed).
- Amplifiers' boosts of what the official accounts will post, the account's amplify delay
  after it (boosts of posts already sent are deliveries, shown as such).
- An occurrence overdue past the promo grace window (crier was not running) is shown once,
  status "missed", at its time: `PromoQueue.fire` will report it, not post it (`overdue`
  decides, as when firing); the newest within the window goes out now.

Real times: the dispatcher's rules are simulated forward from now, in time order per account,
with the functions the dispatcher itself uses (`bot.spacing.next_allowed`, the show's gaps and
quiet hours, `bot.schedule.overdue` for the grace window). Announcements, boosts and community
boosts go out at their time; promos go out one at a time, not before a waiting announcement,
the account's minimum gap after its previous post (any kind: a post moved by the gap pushes
the next one) and outside its quiet hours. `moved_from` and `reason` say when and why an
entry was moved. The simulation assumes a worker running and every post succeeding.

Cost: one query each for deliveries, promos and episodes, one per account for its last post
and one per evergreen promo picked with `--pick oldest`; nothing per occurrence.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from bot.models import Delivery, Promo
from bot.promos import _human
from bot.schedule import localize, overdue
from bot.spacing import next_allowed
from bot.store import deliveries, episodes, feeds, promos

log = logging.getLogger(__name__)

PROMO_KINDS = {"once": "promo", "recurring": "recurring", "evergreen": "evergreen"}
MAX_OCCURRENCES = 5000   # per promo and window: a cron rule every minute stops here (logged)
TEXT_MAX = 120           # characters of the first line kept in `text`


@dataclass(frozen=True)
class CalendarEntry:
    """One post on one account, as the calendar shows it."""
    when: datetime                # aware UTC: when it will really go out (sent: went out)
    local: str                    # `when` in ISO 8601 in the show's time zone
    account: str
    platform: str                 # mastodon | x | ...
    kind: str                     # announcement | promo (a one-off) | recurring | evergreen |
    #                               boost | community
    status: str                   # scheduled (projected) | pending | retrying | sending |
    #                               held | paused | missed | skipped | sent | dry_run
    text: str                     # its first line (composed text, template, episode title)
    promo_id: int | None = None
    delivery_id: int | None = None  # None: not in the outbox yet (projected)
    episode_id: int | None = None
    episode: str | None = None    # the episode's title, when it speaks of one
    moved_from: datetime | None = None  # aware UTC: when it was due, if it goes out later
    reason: str | None = None     # why it moved, or why it waits (held, paused, missed)
    url: str | None = None        # sent: where it landed

    def to_dict(self) -> dict:
        """JSON-ready: datetimes as ISO 8601 strings (to the second, as `crier status`)."""
        out = asdict(self)
        for k in ("when", "moved_from"):
            out[k] = out[k].isoformat(timespec="seconds") if out[k] else None
        return out


@dataclass
class _Item:
    """An entry being placed: `due` is the earliest it may go; `spaced` promos get the gap,
    quiet hours and announcements first; `slot` False: it will not go out by itself."""
    due: datetime
    account: str
    kind: str
    status: str
    text: str
    spaced: bool = False
    slot: bool = True
    order: tuple = ()
    origin: datetime | None = None      # the time it was due (moved_from's reference)
    notes: list[str] = field(default_factory=list)
    promo_id: int | None = None
    delivery_id: int | None = None
    episode_id: int | None = None
    episode: str | None = None
    url: str | None = None
    platform: str | None = None         # a delivery's; else the account's
    when: datetime | None = None


# -- windows --------------------------------------------------------------------------------
def _midnight(day: date, tz) -> datetime:
    return localize(datetime.combine(day, time()), tz)


def week_window(day: date, tz) -> tuple[datetime, datetime]:
    """The week (Monday to Monday, local midnights) holding `day`, in UTC."""
    monday = day - timedelta(days=day.weekday())
    return _midnight(monday, tz), _midnight(monday + timedelta(days=7), tz)


def month_window(year: int, month: int, tz) -> tuple[datetime, datetime]:
    """The month's first local midnight to the next month's, in UTC."""
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return _midnight(date(year, month, 1), tz), _midnight(nxt, tz)


def week(svc, day: date) -> list[CalendarEntry]:
    """The calendar of the week (Monday start, the show's time zone) holding `day`."""
    return calendar(svc, *week_window(day, svc.settings.tz))


def month(svc, year: int, month: int) -> list[CalendarEntry]:
    """The calendar of a month in the show's time zone."""
    return calendar(svc, *month_window(year, month, svc.settings.tz))


# -- the calendar ---------------------------------------------------------------------------
def calendar(svc, start: datetime, end: datetime) -> list[CalendarEntry]:
    """Everything going out (or that went out) in [start, end), in time order."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("calendar: start and end must be timezone-aware")
    now, settings, tz = svc.clock(), svc.settings, svc.settings.tz
    queue = svc.queue
    rows = _deliveries(svc, start, end)
    promo_rows = _promos(svc, {d.promo_id for d in rows if d.promo_id})
    eps = _episodes(svc, {d.episode_id for d in rows if d.episode_id} |
                    {p.episode_id for p in promo_rows.values() if p.episode_id})
    items = [_from_delivery(d, promo_rows, eps, now) for d in rows]
    grace = timedelta(seconds=settings.promo_grace)
    for p in promo_rows.values():
        if p.status in ("active", "paused") and p.next_at is not None:
            items += _occurrences(queue, p, now, end, grace, eps)
    posting = [a.name for a in settings.posting_accounts]
    for e in eps.values():
        if e["status"] == "scheduled" and e["published_at"] is not None:
            due = max(e["published_at"], now)
            notes = [] if due == e["published_at"] else [
                "its date has come: announced on the next dispatch"]
            items += [_Item(due, a, "announcement", "scheduled", e["title"], origin=due,
                            notes=notes, order=(0, e["id"]), episode_id=e["id"],
                            episode=e["title"]) for a in posting]
        elif e["status"] == "held":
            items += [_Item(now, a, "announcement", "held", e["title"], slot=False,
                            notes=[f"held by the flood guard: `crier release {e['id']}` "
                                   f"announces it, `crier release --dismiss {e['id']}` "
                                   "never does"], episode_id=e["id"], episode=e["title"])
                      for a in posting]
    _place(svc, items, now, rows)
    items += _boosts(settings, items)
    out = [_entry(i, tz, settings) for i in items
           if i.when is not None and start <= i.when < end]
    return sorted(out, key=lambda e: (e.when, e.account, e.delivery_id or 0, e.promo_id or 0))


def _deliveries(svc, start: datetime, end: datetime) -> list[Delivery]:
    """The show's waiting deliveries, and those sent inside the window (one query)."""
    c = deliveries.c
    return svc.store.deliveries_where(sa.or_(
        c.status.in_(("pending", "sending", "held")),
        sa.and_(c.status.in_(("sent", "dry_run")), c.sent_at >= start, c.sent_at < end)))


def _promos(svc, ids: set[int]) -> dict[int, Promo]:
    """The show's active and paused promos, and those the deliveries came from (one query)."""
    q = sa.select(promos).where(promos.c.show_id == svc.show_id, sa.or_(
        promos.c.status.in_(("active", "paused")), promos.c.id.in_(sorted(ids))))
    with svc.store.tx() as c:
        return {r["id"]: Promo.from_row(r) for r in c.execute(q.order_by(promos.c.id)
                                                               ).mappings()}


def _episodes(svc, ids: set[int]) -> dict[int, dict]:
    """The show's scheduled and held episodes and those named by ids (one query; no data)."""
    e = episodes.c
    q = sa.select(e.id, e.title, e.status, e.published_at).where(
        e.feed_id.in_(sa.select(feeds.c.id).where(feeds.c.show_id == svc.show_id)),
        sa.or_(e.status.in_(("scheduled", "held")), e.id.in_(sorted(ids))))
    with svc.store.tx() as c:
        return {r["id"]: dict(r) for r in c.execute(q.order_by(e.id)).mappings()}


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    first = lines[0].strip() if lines else ""
    return first if len(first) <= TEXT_MAX else first[:TEXT_MAX - 1] + "…"


def _from_delivery(d: Delivery, promo_rows: dict[int, Promo], eps: dict[int, dict],
                   now: datetime) -> _Item:
    ep = eps.get(d.episode_id) if d.episode_id else None
    title = ep["title"] if ep else None
    promo = promo_rows.get(d.promo_id) if d.promo_id else None
    kind = PROMO_KINDS.get(promo.kind, "promo") if d.kind == "promo" and promo else d.kind
    if d.text:
        text = _first_line(d.text)
    elif d.kind in ("boost", "community"):
        target = (d.payload or {}).get("boost_of") or {}
        text = f"boost of {target.get('url') or title or 'a post'}"
    elif d.kind == "promo":
        text = _first_line(promo.text) if promo and promo.text else (title or "a queued post")
    else:
        text = title or d.kind
    # a waiting promo goes out by the spacing from its occurrence (the hold the dispatcher
    # last put on it is worked out again); after an error, not before its next attempt
    earliest = d.due_at if d.kind == "promo" and d.due_at and not d.last_error \
        else d.next_attempt_at
    item = _Item(max(earliest, now), d.account, kind, d.status, text,
                 spaced=d.kind == "promo", order=(0, d.id), origin=d.due_at,
                 promo_id=d.promo_id, delivery_id=d.id, episode_id=d.episode_id,
                 episode=title, platform=d.platform)
    if d.status in ("sent", "dry_run"):
        item.slot, item.when, item.url, item.origin = False, d.sent_at, d.remote_url, None
    elif d.status == "held":
        item.slot, item.due = False, now
        item.notes.append(f"held: {d.last_error or 'waits for the host'} "
                          f"(`crier retry {d.id}` sends it)")
    elif d.status == "sending":
        item.due, item.spaced = now, False
    elif d.last_error:
        item.status = "retrying"
        item.notes.append(f"retrying after: {d.last_error}")
    return item


def _occurrences(queue, p: Promo, now: datetime, end: datetime, grace: timedelta,
                 eps: dict[int, dict]) -> list[_Item]:
    """A promo's occurrences from now until `end` (overdue ones by the grace window)."""
    rule = queue.rule(p)
    kind = PROMO_KINDS.get(p.kind, "promo")
    names = p.accounts or [a.name for a in queue.settings.posting_accounts]
    ep = eps.get(p.episode_id) if p.episode_id else None
    base = dict(kind=kind, spaced=True, promo_id=p.id, episode_id=p.episode_id,
                episode=ep["title"] if ep else None)
    text = _first_line(p.text)
    out: list[_Item] = []

    def add(due: datetime, origin: datetime, status: str, notes: list[str], *,
            slot: bool = True, n: int = 0) -> None:
        out.extend(_Item(due, a, status=status, text=text, slot=slot, order=(1, p.id, n),
                         origin=origin, notes=list(notes), **base) for a in names)

    t: datetime | None = p.next_at
    if p.status == "paused":
        if rule is not None and t < now:
            t = rule.next_after(now)
        status, notes = "paused", [f"paused: `crier queue resume {p.id}` to post it"]
    else:
        status, notes = "scheduled", []
        if t <= now:
            late, on_time, nxt = overdue(rule, t, now, grace)
            for x in late + on_time[:-1]:
                add(x, x, "missed", [f"missed: due more than {_human(grace)} before now "
                                     "(crier was not running); not posted" if x in late else
                                     "missed: a later occurrence goes out instead"], slot=False)
            if on_time:
                add(now, on_time[-1], status, [f"overdue, within the {_human(grace)} grace "
                                               "window: goes out on the next dispatch"])
            t = nxt
    n = 0
    while t is not None and t < end:
        n += 1
        if n > MAX_OCCURRENCES:
            log.warning("calendar: promo %d has more than %d occurrences in the window; "
                        "the rest are not shown", p.id, MAX_OCCURRENCES)
            break
        add(t, t, status, notes, n=n, slot=status != "paused")
        t = rule.next_after(t) if rule else None
    if p.kind == "evergreen":
        _name_episodes(queue, p, out)
    return out


def _name_episodes(queue, p: Promo, items: list[_Item]) -> None:
    """Evergreen slots: the next one names its episode (oldest pick); later ones cannot."""
    upcoming = sorted({i.due for i in items if i.slot})
    first = upcoming[0] if upcoming else None
    picked = None
    if first is not None and (p.pick or "oldest") == "oldest":
        picked = queue._pick("oldest", p.cooldown_days, first)
    for i in items:
        if i.slot and i.due == first and (p.pick or "oldest") == "oldest":
            if picked is None:
                i.slot, i.status = False, "skipped"
                i.notes.append("no older episode can be promoted then (each is too new or "
                               "within the cool-down); skipped")
                i.text = "no episode to promote"
            else:
                i.episode_id, i.episode = picked.id, picked.title
                i.text = picked.title
        else:
            i.text = "a random older episode" if p.pick == "random" else "an older episode"
        if p.text:
            i.text = f"{i.text} ({_first_line(p.text)})"


# -- spacing, simulated forward -------------------------------------------------------------
def _place(svc, items: list[_Item], now: datetime, rows: list[Delivery]) -> None:
    """Give each item its `when`: fixed ones their due time, promos the dispatcher's."""
    settings = svc.settings
    by_account: dict[str, list[_Item]] = {}
    for i in items:
        if i.when is not None:
            continue
        if not i.slot:
            i.when = i.due
            continue
        by_account.setdefault(i.account, []).append(i)
    waiting_ann: dict[str, datetime] = {}
    for d in rows:  # a waiting announcement goes before any promo (PromoQueue.hold_for)
        if d.kind == "announcement" and d.status in ("pending", "sending"):
            t = max(d.next_attempt_at, now)
            waiting_ann[d.account] = max(waiting_ann.get(d.account, t), t)
    for name, group in by_account.items():
        account = svc._account(name)
        if account is None or not any(i.spaced for i in group):
            for i in group:
                i.when = i.due
            continue
        _space(group, tz=settings.tz, gap=timedelta(seconds=settings.gap_for(account)),
               quiet=settings.quiet_for(account), last=svc.store.last_sent(name),
               blocked=waiting_ann.get(name))


def _space(group: list[_Item], *, tz, gap: timedelta, quiet: str | None,
           last: datetime | None, blocked: datetime | None) -> None:
    """One account: fixed posts at their time; promos in due order, each at the first
    `next_allowed` moment after the previous post and its gap (fixed posts falling before
    it push it again), never before a waiting announcement."""
    fixed = sorted((i for i in group if not i.spaced), key=lambda i: (i.due, i.order))
    for f in fixed:
        f.when = f.due
    free, why = (last + gap, f"the last post at {_hm(last, tz)}") if last else (None, None)
    if blocked is not None and (free is None or blocked > free):
        free, why = blocked, f"the announcement waiting to go out ({_hm(blocked, tz)})"
    k = 0
    for p in sorted((i for i in group if i.spaced), key=lambda i: (i.due, i.order)):
        while True:
            t = next_allowed(p.due, tz=tz, quiet=quiet, not_before=free)
            if k < len(fixed) and fixed[k].when <= t:  # it goes first (higher priority)
                f = fixed[k]
                k += 1
                if free is None or f.when + gap > free:
                    free, why = f.when + gap, f"the {f.kind} at {_hm(f.when, tz)}"
                continue
            break
        if free is not None and free > p.due:
            p.notes.append(f"min gap {_human(gap)} after {why}" if gap else f"after {why}")
        if t > max(p.due, free or p.due):
            p.notes.append(f"quiet hours {quiet} ({tz.key})")
        p.when = t
        free, why = t + gap, f"the {p.kind} #{p.promo_id} at {_hm(t, tz)}"


def _hm(t: datetime, tz) -> str:
    return t.astimezone(tz).strftime("%a %H:%M")


def _boosts(settings, items: list[_Item]) -> list[_Item]:
    """Amplifiers boost each official post their account will make, after their delay."""
    out = []
    for i in items:
        if not i.slot or i.kind in ("boost", "community") or i.when is None:
            continue
        for amp in settings.amplifiers_of(i.account):
            at = i.when + timedelta(seconds=amp.amplify_delay)
            out.append(_Item(at, amp.name, "boost", "scheduled", f"boost of: {i.text}",
                             promo_id=i.promo_id, episode_id=i.episode_id, episode=i.episode,
                             when=at))
    return out


def _entry(i: _Item, tz, settings) -> CalendarEntry:
    account = next((a for a in settings.accounts if a.name == i.account), None)
    moved = i.origin if i.origin is not None and i.when != i.origin else None
    return CalendarEntry(
        when=i.when, local=i.when.astimezone(tz).isoformat(timespec="seconds"), account=i.account,
        platform=i.platform or (account.platform if account else "?"), kind=i.kind, status=i.status,
        text=i.text, promo_id=i.promo_id, delivery_id=i.delivery_id, episode_id=i.episode_id,
        episode=i.episode, moved_from=moved, reason="; ".join(i.notes) or None, url=i.url)
