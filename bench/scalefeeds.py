"""N small Buzzsprout-like podcast feeds as static files, gaining episodes, for bench/scale.py.

Feed k (0 <= k < N) lives at `feeds/<k // 1000>/show-<k>.rss` under the root folder and has
10-50 items (seeded by k), newest first, each with `itunes:title`, `title`, 0.4-1.2 KB of HTML
show notes in CDATA, `enclosure`, `guid isPermaLink="false"` (unique across all feeds),
`pubDate`, `link`, `itunes:duration/episode/episodeType/explicit` and `podcast:transcript`; the
channel has `atom:link`, `itunes:image`, `itunes:author` and a `podcast:guid`. Generation reuses
a small pool of pre-rendered show notes and dates so that 100,000 feeds take seconds, not
minutes. `gain_episode` rewrites a feed with one more item (write to a temporary name, then
rename, so the web server never serves half a file) and moves its mtime forward, so nginx's
ETag and Last-Modified both change. `write_show_file` writes a show's config in today's
single-show layout with dry-run accounts (for the crier measurement to import).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

WORDS = ("podcast episode guest conversation story history science culture money music "
         "interview community design future public climate health technology startup "
         "journalism politics economy education research language film books").split()
START = datetime(2015, 1, 5, 10, tzinfo=UTC)
MIN_ITEMS, MAX_ITEMS = 10, 50
_POOL = 97  # distinct show notes / titles, picked per item by a cheap hash


def _notes(rng: random.Random) -> str:
    parts, total, size = [], 0, rng.randint(400, 1200)
    while total < size:
        s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 40))).capitalize()
        if rng.random() < 0.3:
            s += (f' <a href="https://example.com/{rng.choice(WORDS)}" rel="nofollow">'
                  f"{rng.choice(WORDS)}</a>")
        p = f"<p>{s}.</p>"
        parts.append(p)
        total += len(p)
    parts.append("<p>Support the show: <a href='https://www.buzzsprout.com/support'>"
                 "buzzsprout</a></p>")
    return "".join(parts)


_rng = random.Random(20261206)
NOTES = [_notes(_rng) for _ in range(_POOL)]
TITLES = [escape(" ".join(_rng.choice(WORDS) for _ in range(5)).title()) for _ in range(_POOL)]
_DATES: dict[int, str] = {}


def _date(day: int) -> str:
    d = _DATES.get(day)
    if d is None:
        d = _DATES[day] = format_datetime(START + timedelta(days=day))
    return d


def _item(k: int, i: int) -> str:
    """Episode i (0-based) of feed k."""
    eid = 10_000_000 + k * 1000 + i
    h = (k * 31 + i * 17) % _POOL
    title = f"{i + 1}: {TITLES[h]} &amp; more"
    return (
        f"<item>\n<itunes:title>{title}</itunes:title>\n<title>{title}</title>\n"
        f"<description><![CDATA[{NOTES[h]}]]></description>\n"
        f'<enclosure url="https://www.buzzsprout.com/{k}/{eid}-episode-{i + 1}.mp3" '
        f'length="{(eid * 7919) % 80_000_000 + 10_000_000}" type="audio/mpeg" />\n'
        f'<guid isPermaLink="false">Buzzsprout-{eid}</guid>\n'
        f"<pubDate>{_date(k % 7 + 7 * i)}</pubDate>\n"
        f"<link>https://www.buzzsprout.com/{k}/episodes/{eid}</link>\n"
        f"<itunes:duration>{600 + (eid * 37) % 6600}</itunes:duration>\n"
        f"<itunes:episode>{i + 1}</itunes:episode>\n<itunes:episodeType>full</itunes:episodeType>"
        f"\n<itunes:explicit>false</itunes:explicit>\n"
        f'<podcast:transcript url="https://www.buzzsprout.com/{k}/{eid}/transcript" '
        f'type="text/html" />\n</item>')


def feed_xml(k: int, n_items: int) -> bytes:
    """Feed k with n_items items, newest first (as hosts write them)."""
    head = (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0" '
        'xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">\n<channel>\n'
        f'<atom:link href="https://feeds.buzzsprout.com/{k}.rss" rel="self" '
        'type="application/rss+xml" />\n'
        f"<title>Bench Show {k}</title>\n<itunes:author>Host {k}</itunes:author>\n"
        f"<description><![CDATA[<p>Show {k}, about {TITLES[k % _POOL]}.</p>]]></description>\n"
        f"<link>https://www.buzzsprout.com/{k}</link>\n<language>en-us</language>\n"
        f'<itunes:image href="https://storage.buzzsprout.com/{k}/show.jpg" />\n'
        f"<podcast:guid>7b3c1f4e-{k:04x}-5555-9999-abcdefabcdef</podcast:guid>\n")
    items = "\n".join(_item(k, i) for i in range(n_items - 1, -1, -1))
    return (head + items + "\n</channel>\n</rss>\n").encode()


@dataclass
class Change:
    """Feed k gained episode `guid` (file renamed into place at wall time `at`, epoch s)."""
    k: int
    guid: str
    at: float


@dataclass
class FeedSet:
    root: Path
    n: int
    items: list[int] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    bytes_written: int = 0

    def path(self, k: int) -> Path:
        return self.root / "feeds" / str(k // 1000) / f"show-{k}.rss"

    def url_path(self, k: int) -> str:
        return f"/feeds/{k // 1000}/show-{k}.rss"

    def generate(self, deadline: float) -> None:
        """Write all N feeds; RuntimeError past `deadline` (time.monotonic)."""
        rng = random.Random(7)
        self.items = [rng.randint(MIN_ITEMS, MAX_ITEMS) for _ in range(self.n)]
        for d in range((self.n + 999) // 1000):
            (self.root / "feeds" / str(d)).mkdir(parents=True, exist_ok=True)
        # Every file's mtime a little in the past, so the first change moves it forward
        # even within the same second (Last-Modified has one-second resolution).
        past = time.time() - 3600
        for k in range(self.n):
            if k % 1000 == 0 and time.monotonic() > deadline:
                raise RuntimeError(f"generating {self.n} feeds took too long (at {k})")
            data = feed_xml(k, self.items[k])
            p = self.path(k)
            with open(p, "wb") as f:
                f.write(data)
            os.utime(p, (past, past))
            self.bytes_written += len(data)

    def gain_episode(self, k: int) -> Change:
        """Feed k gains one episode at the top: new bytes, new size, a newer mtime."""
        self.items[k] += 1
        data = feed_xml(k, self.items[k])
        p = self.path(k)
        old = p.stat().st_mtime
        tmp = p.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        now = max(time.time(), old + 1.0)  # Last-Modified (whole seconds) must move
        os.utime(tmp, (now, now))
        os.replace(tmp, p)
        eid = 10_000_000 + k * 1000 + self.items[k] - 1
        change = Change(k, f"Buzzsprout-{eid}", time.time())
        self.changes.append(change)
        return change

    def gain_episodes(self, fraction: float, rng: random.Random) -> list[Change]:
        """A `fraction` of the feeds (at least one) gain an episode each."""
        count = max(1, round(self.n * fraction))
        return [self.gain_episode(k) for k in sorted(rng.sample(range(self.n), count))]


def show_slug(k: int) -> str:
    return f"show-{k}"


def write_show_file(folder: Path, k: int, feed_url: str) -> Path:
    """Show k's config in today's single-show layout, both accounts dry runs.

    Account names carry the slug (they are unique across a deployment); `max_characters`
    keeps a dry-run Mastodon account from asking an instance for its limit.
    """
    slug = show_slug(k)
    text = (f'show = "Bench Show {k}"\nfeed = "{feed_url}"\npoll_interval = "5m"\n'
            f'timezone = "UTC"\nfirst_run_backfill = 0\n\n'
            f'[[accounts]]\nplatform = "mastodon"\nname = "{slug}-mastodon"\n'
            f'instance = "https://mastodon.example"\ndry_run = true\nmax_characters = 500\n\n'
            f'[[accounts]]\nplatform = "x"\nname = "{slug}-x"\ndry_run = true\n')
    p = folder / f"{slug}.toml"
    p.write_text(text)
    return p
