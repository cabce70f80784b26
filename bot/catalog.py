"""A show's episodes as the control room lists them: newest first, each with its announcement
per account (the delivery's state as `crier status` shows it, its URL, its text or error), its
show notes as plain text and its artwork URL. Only this show's episodes: an id of another
show's episode is not found (`episode` returns None), so no page or answer leaks it.

The pages (bot.web) and the JSON API read these; the acting (release, dismiss, retry, share)
stays with `Service`, `bot.held` and `bot.outbox`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bot.models import EpisodeRecord

if TYPE_CHECKING:
    from bot.service import Service

LIST_LIMIT = 200      # episodes on one page of the list (a feed may have thousands)
NOTES_LIMIT = 20000   # characters of show notes shown on an episode's page


def _feed_ids(svc: Service) -> list[int]:
    return [f.id for f in svc.store.all_feeds()]


def episodes(svc: Service, *, status: str | None = None,
             limit: int = LIST_LIMIT) -> list[EpisodeRecord]:
    """The show's episodes, newest first (by publication date), at most `limit`."""
    from bot.store import episodes as t
    ids = _feed_ids(svc)
    if not ids:
        return []
    q = sa.select(t).where(t.c.feed_id.in_(ids))
    if status:
        q = q.where(t.c.status == status)
    q = q.order_by(t.c.published_at.desc().nulls_last(), t.c.id.desc()).limit(limit)
    with svc.store.tx() as c:
        return [EpisodeRecord.from_row(r) for r in c.execute(q).mappings()]


def episode(svc: Service, episode_id: int) -> EpisodeRecord | None:
    """Episode `episode_id` if it is this show's; None otherwise (or when there is none)."""
    row = svc.store.get_episode(episode_id)
    return row if row is not None and row.feed_id in _feed_ids(svc) else None


def announcements(svc: Service, episode_ids: Iterable[int]) -> dict[int, list[dict]]:
    """Per episode id, its announcement's deliveries (one per account) as the host reads
    them: account, platform, status, state and detail (bot.outbox.describe), url, sent_at,
    text, error, attempts, next attempt."""
    from bot.outbox import describe
    from bot.store import posts
    ids = list(episode_ids)
    out: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return out
    now = svc.clock()
    for d in svc.store.deliveries_where(posts.c.episode_id.in_(ids),
                                        posts.c.kind == "announcement"):
        out.setdefault(d.episode_id, []).append({
            **describe(d, now), "id": d.id, "account": d.account, "platform": d.platform,
            "status": d.status, "url": d.remote_url, "sent_at": d.sent_at,
            "next_attempt_at": d.next_attempt_at, "attempts": d.attempts,
            "text": d.text, "error": d.last_error})
    for rows in out.values():
        rows.sort(key=lambda r: r["account"])
    return out


def notes_text(record: EpisodeRecord) -> str:
    """The episode's show notes as plain text (the feed's HTML is never shown as HTML):
    tags dropped, entities decoded, invisible and deceptive characters removed."""
    from bot.feed import html_to_text
    from bot.plaintext import clean
    html = (record.data or {}).get("summary_html") or ""
    text = clean(html_to_text(html[:NOTES_LIMIT * 4]))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    paragraphs, current = [], []
    for line in lines + [""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return "\n\n".join(paragraphs)[:NOTES_LIMIT]


def summary(record: EpisodeRecord, limit: int = 300) -> str:
    """A short plain-text description of the episode (a link card's): the summary the
    announcements use (bot.compose.summary_from_html), cut at a word within `limit`."""
    from bot.compose import summary_from_html
    data = record.data or {}
    text = summary_from_html(data.get("summary_html") or "",
                             boilerplate=frozenset(data.get("boilerplate") or ()),
                             language=data.get("language"))
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"


def artwork(record: EpisodeRecord) -> str | None:
    """The episode's artwork URL, else the show's (http(s) only: what a link card can use)."""
    data = record.data or {}
    for url in (data.get("image"), data.get("show_image")):
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url
    return None
