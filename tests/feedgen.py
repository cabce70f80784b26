"""Build small, realistic podcast RSS documents for tests (and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

SHOW_LINK = "https://www.buzzsprout.com/2046234"


@dataclass(frozen=True)
class Item:
    n: int
    title: str
    published: datetime
    guid: str
    link: str
    enclosure: str
    notes: str = "<p>We talk about things.</p>"
    image: str | None = None

    def with_(self, **kw) -> Item:
        return replace(self, **kw)


def item(n: int, *, published: datetime | None = None, title: str | None = None) -> Item:
    published = published or datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=7 * n)
    return Item(
        n=n, title=title or f"Episode {n}: talking about topic {n} w/ Guest {n}",
        published=published, guid=f"Buzzsprout-{1000000 + n}",
        link=f"{SHOW_LINK}/episodes/{1000000 + n}",
        enclosure=f"https://www.buzzsprout.com/2046234/episodes/{1000000 + n}-ep-{n}.mp3",
        notes=f"<p>Guest {n} joins me to talk about topic {n}. It was great.</p>"
              "<p>This episode is sponsored by Acme VPN. Use the code crier for a month "
              "free!</p><p>Support the show</p>")


def rss(items: list[Item], *, title: str = "Test Show", language: str = "en-us") -> bytes:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        f"<channel><title>{escape(title)}</title><link>{SHOW_LINK}</link>"
        f"<language>{language}</language><description>A show.</description>",
    ]
    for it in sorted(items, key=lambda i: i.published, reverse=True):
        parts.append(
            f"<item><title>{escape(it.title)}</title>"
            f'<guid isPermaLink="false">{escape(it.guid)}</guid>'
            f"<link>{escape(it.link)}</link>"
            f"<pubDate>{format_datetime(it.published)}</pubDate>"
            f"<description><![CDATA[{it.notes}]]></description>"
            f'<enclosure url="{escape(it.enclosure)}" length="1000" type="audio/mpeg"/>'
            f"<itunes:duration>3780</itunes:duration>"
            + (f'<itunes:image href="{escape(it.image)}"/>' if it.image else "")
            + "</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()
