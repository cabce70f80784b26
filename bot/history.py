"""`crier history`: every post that went out, newest first, with where it is.

One row per sent delivery (announcements, promos, boosts of the official posts, community
boosts) and one per link reply an X post carried (`link_policy = "reply"`), each with its time,
account, kind, what it was about (the episode, the queued post, the boosted post) and its URL.
A post the host removed since (`crier remove`) stays, with `status` "removed" and its
`removed_at`. Dry runs, failures and withdrawn posts are not history: `crier status` shows
those.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.errors import CrierError
from bot.store import Store

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_since(text: str, *, now: datetime, tz: ZoneInfo) -> datetime:
    """--since: a date (midnight in the show's time zone), an ISO 8601 time, or a duration
    back from now ("7 days", "12h", "2 weeks ago")."""
    from bot.schedule import localize, parse_duration, parse_when
    s = " ".join(text.split())
    if _DATE.match(s):
        try:
            day = datetime.fromisoformat(s).date()
        except ValueError:
            raise CrierError(f"--since {text!r}: not a valid date (YYYY-MM-DD)") from None
        return localize(datetime.combine(day, time()), tz)
    if re.match(r"\d{4}-\d", s):
        return parse_when(s, now=now, tz=tz)
    return now - parse_duration(re.sub(r"\s+ago$", "", s, flags=re.I))


def history(store: Store, *, since: datetime | None = None, account: str | None = None,
            limit: int | None = None) -> list[dict]:
    """The posts that went out, newest first (see the module docstring)."""
    titles: dict[int, str | None] = {}

    def title(episode_id: int | None) -> str | None:
        if episode_id is None:
            return None
        if episode_id not in titles:
            row = store.get_episode(episode_id)
            titles[episode_id] = row.title if row else None
        return titles[episode_id]

    out = []
    for d in store.sent_deliveries(since=since, account=account, limit=limit):
        payload = d.payload or {}
        boosted = (payload.get("boost_of") or {}).get("url")
        row = {"delivery": d.id, "sent_at": d.sent_at.isoformat(timespec="seconds")
               if d.sent_at else None, "account": d.account, "platform": d.platform,
               "kind": d.kind, "episode": title(d.episode_id), "promo": d.promo_id,
               "boost_of": boosted, "url": d.remote_url, "remote_id": d.remote_id,
               "status": d.status, "removed_at": (payload.get("removed") or {}).get("at")}
        if payload.get("reply_url"):
            out.append({**row, "kind": "reply", "url": payload["reply_url"],
                        "remote_id": payload.get("reply_id"), "reply_to": d.remote_url})
        out.append(row)
    return out
