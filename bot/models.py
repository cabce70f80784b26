"""crier's data: frozen values passed between the pure core, the adapters and the service.

Nothing here does I/O. Datetimes are always timezone-aware UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Person:
    """A person named in a feed (`podcast:person`) or found in an episode title."""
    name: str
    role: str = "guest"
    href: str | None = None


@dataclass(frozen=True)
class Episode:
    """One feed item, as much as crier needs of it. Built by `feed.parse_feed`."""
    title: str
    guid: str | None = None            # item <guid> (feedparser's entry.id)
    podcast_guid: str | None = None    # item-level <podcast:guid>, when a host sets one
    link: str | None = None            # the episode page
    published: datetime | None = None  # aware UTC
    summary_html: str = ""             # show notes, unsanitized HTML: never render it as HTML
    enclosure_url: str | None = None
    enclosure_type: str | None = None
    image: str | None = None           # episode artwork (itunes:image), else None
    duration: int | None = None        # seconds
    season: int | None = None
    number: int | None = None          # itunes:episode
    episode_type: str | None = None    # full | trailer | bonus
    persons: tuple[Person, ...] = ()
    show_link: str | None = None       # the show's page: the channel's <link>
    language: str | None = None        # the channel's <language> ("en-us")


@dataclass(frozen=True)
class UpdateHint:
    """When a feed says it updates (podcast:updateFrequency, sy:updatePeriod; bot.cadence)."""
    every: int | None = None           # seconds between updates
    complete: bool = False             # no more episodes (podcast:updateFrequency complete)
    hours: tuple[int, ...] = ()        # declared hours of the week, UTC (0 = Monday 00:00)


@dataclass(frozen=True)
class ParsedFeed:
    """A whole feed: the show's fields and its episodes in document order."""
    title: str
    link: str | None = None
    language: str | None = None
    image: str | None = None
    episodes: tuple[Episode, ...] = ()
    bozo: bool = False                 # feedparser found the XML malformed but could read it
    bozo_message: str | None = None
    new_feed_url: str | None = None    # itunes:new-feed-url
    update: UpdateHint | None = None   # what the channel says about when it updates


@dataclass(frozen=True)
class Rules:
    """How one network counts and limits a post. Data, so a new network adds a row, not code."""
    platform: str
    limit: int                         # max counted length
    counter: str                       # "x" | "mastodon" | "bluesky" | "threads" (textlen)
    url_weight: int | None = 23        # every URL counts this much; None = its real length
    max_bytes: int | None = None       # Bluesky: UTF-8 byte cap on top of graphemes
    ellipsis: str = "…"
    alt_text_limit: int = 1500
    image_max_bytes: int = 5 * 1024 * 1024
    max_links: int | None = None       # Threads: at most 5 distinct links in a post


@dataclass(frozen=True)
class Media:
    """An image to attach: a local path or URL plus its alt text. `url` is the image's original
    public http(s) address when known (the feed's artwork URL): Threads fetches images by URL."""
    source: str
    alt: str = ""
    mime_type: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Card:
    """A link card: Bluesky's app.bsky.embed.external, Threads' link_attachment (= `uri`)."""
    uri: str
    title: str = ""
    description: str = ""
    thumb: Media | None = None


@dataclass(frozen=True)
class Post:
    """What one account will say: the final text and how to send it."""
    text: str
    language: str | None = None
    visibility: str = "public"
    media: tuple[Media, ...] = ()
    spoiler: str | None = None
    reply_text: str | None = None      # X link policy "reply": a follow-up in reply
    card: Card | None = None           # Bluesky/Threads: the link card
    # ("@handle", "Name") pairs the composer wrote into the text: an adapter that cannot
    # resolve a handle writes the name instead.
    mentions: tuple[tuple[str, str], ...] = ()
    # (shown text, full URL) pairs: a link shown shortened in the text (Bluesky), whose link
    # facet carries the whole URL.
    links: tuple[tuple[str, str], ...] = ()
    created_at: datetime | None = None  # the delivery's created_at: stable across retries


def media_to_data(m: Media) -> dict[str, Any]:
    """A Media as the delivery payload's JSON holds it (`media_from_data` reads it back)."""
    out: dict[str, Any] = {"source": m.source, "alt": m.alt, "mime_type": m.mime_type}
    if m.url:
        out["url"] = m.url
    return out


def media_from_data(data: Mapping[str, Any]) -> Media:
    return Media(source=data["source"], alt=data.get("alt") or "",
                 mime_type=data.get("mime_type"), url=data.get("url"))


def card_to_data(card: Card | None) -> dict[str, Any] | None:
    """A Card as the delivery payload's JSON holds it (None stays None)."""
    if card is None:
        return None
    return {"uri": card.uri, "title": card.title, "description": card.description,
            "thumb": media_to_data(card.thumb) if card.thumb else None}


def card_from_data(data: Mapping[str, Any] | None) -> Card | None:
    if not data:
        return None
    thumb = data.get("thumb")
    return Card(uri=data["uri"], title=data.get("title") or "",
                description=data.get("description") or "",
                thumb=media_from_data(thumb) if thumb else None)


def pairs_from_data(data: Any) -> tuple[tuple[str, str], ...]:
    """Payload "mentions"/"links" (JSON lists of two strings) as a tuple of pairs."""
    return tuple((str(a), str(b)) for a, b in data or ())


@dataclass(frozen=True)
class Published:
    """Where a post landed (and the link reply it carried on X, if any)."""
    remote_id: str
    url: str | None = None
    reply_id: str | None = None
    reply_url: str | None = None


class StoreRow:
    """What the store's typed rows share: `from_row(mapping)` reads each field by name from a
    row holding every column (a missing one fails loudly; extra keys are ignored)."""
    __slots__ = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]):
        names = cls.__dict__.get("_names")
        if names is None:
            names = tuple(f.name for f in fields(cls))
            type.__setattr__(cls, "_names", names)
        return cls(**{name: row[name] for name in names})


@dataclass(frozen=True, slots=True)
class Feed(StoreRow):
    """A polled feed as its row in the store's `feeds` table holds it: its address, the
    validators of its last good read and its poll state. `Feed.from_row` builds it; a poll's
    changes make a new one (`dataclasses.replace`)."""
    id: int
    url: str                              # as the show's config names it
    created_at: datetime
    title: str | None = None              # the channel's <title> as last read
    etag: str | None = None               # the last good read's validators (conditional GET)
    last_modified: str | None = None
    body_hash: str | None = None          # the last body's hash: "unchanged" without a 304
    redirect_url: str | None = None       # a permanent redirect's target: polled instead
    baseline_done: bool = False           # the first run recorded what was there before crier
    last_poll_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_result: str | None = None        # a PollReport.result: new | unchanged | error ...
    last_error: str | None = None
    error_count: int = 0                  # failed polls in a row (the backoff's exponent)
    next_poll_at: datetime | None = None  # None: due at once
    show_id: int | None = None            # the show polling it (None: before migration 0006)
    poll_owner: str | None = None         # the worker holding its poll lease, if any
    poll_lease_until: datetime | None = None
    poll_interval: int | None = None      # the show's, in seconds (the quiet-poll fast path)
    active: bool = True                   # False: parked, no show polls it any more
    update_hint: int | None = None        # seconds the feed says it updates every (0011)
    release_hours: Any = None             # JSON: hours of the week the show publishes (0011)
    last_push_at: datetime | None = None  # the last WebSub notification or podping (0011)
    last_push_via: str | None = None      # "websub" | "podping"




@dataclass(frozen=True, slots=True)
class Promo(StoreRow):
    """A post in the host's queue (bot.promos) as its row in the store's `promos` table
    holds it; `Promo.from_row` builds it, a change makes a new one (`dataclasses.replace`)."""
    kind: str                             # once | recurring | evergreen
    text: str | None = None               # a template; evergreen: optional
    accounts: list[str] | None = None     # account names; None: every posting account
    image_path: str | None = None
    alt: str | None = None
    episode_id: int | None = None         # the episode its template speaks of, if any
    rule: str | None = None               # a repeating post's bot.schedule Rule.text
    until: datetime | None = None         # the rule's end
    next_at: datetime | None = None       # the next occurrence (None: none left)
    status: str = "active"                # active | paused | cancelled | done
    fit: bool = False                     # shortened to fit each network, not refused
    pick: str | None = None               # evergreen: oldest | random
    cooldown_days: int | None = None      # evergreen: days before an episode comes again
    fired: int = 0                        # occurrences posted (the next one's dedupe key)
    missed: int = 0                       # occurrences not posted (past the grace window)
    last_fired_at: datetime | None = None
    note: str | None = None               # a warning for the host (why one was skipped)
    id: int | None = None                 # None: not queued (a dry run's preview)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    show_id: int | None = None




@dataclass(frozen=True, slots=True)
class EpisodeRecord(StoreRow):
    """An episode as its row in the store's `episodes` table holds it: what crier knows of
    a feed item and where it stands (`EpisodeStatus`). `EpisodeRecord.from_row` builds it.
    The item itself is `data` (`bot.episodes.episode_to_data`: JSON content, a dict)."""
    id: int
    feed_id: int
    title: str
    status: str                           # an EpisodeStatus value
    first_seen_at: datetime
    data: dict[str, Any]                  # the item, boilerplate, show image (JSON)
    guid: str | None = None
    link: str | None = None
    published_at: datetime | None = None
    announced_at: datetime | None = None




@dataclass(frozen=True, slots=True)
class Delivery(StoreRow):
    """One account's copy of a post as the store gives it: its row in `deliveries` joined
    with its post's (`posts`: kind, episode, priority, dedupe key, promo, due time).
    `Delivery.from_row` builds it; a change makes a new one (`dataclasses.replace`)."""
    id: int
    post_id: int
    account: str
    platform: str
    status: str                           # a DeliveryStatus value
    idempotency_key: str                  # sent with every attempt (no double post)
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    kind: str                             # the post's: announcement | promo | boost ...
    dedupe_key: str                       # the post's
    text: str | None = None               # composed at the first attempt
    payload: dict[str, Any] | None = None  # the composed post (JSON content, stays a dict)
    length: int | None = None
    limit: int | None = None
    attempts: int = 0
    needs_check: bool = False             # interrupted while sending: look before resending
    first_attempt_at: datetime | None = None
    claimed_at: datetime | None = None
    claim_token: str | None = None
    last_error: str | None = None
    error_kind: str | None = None
    remote_id: str | None = None          # where it landed
    remote_url: str | None = None
    sent_at: datetime | None = None
    show_id: int | None = None
    episode_id: int | None = None         # the post's episode, if any
    priority: int = 0                     # the post's: higher goes first
    promo_id: int | None = None           # the queued post it came from, if any
    due_at: datetime | None = None        # a promo occurrence's time




@dataclass(frozen=True, slots=True)
class CommunityPost(StoreRow):
    """A listener's public post proposed for a boost by the official account, as its row in
    the store's `community_posts` table holds it (bot.listeners); `CommunityPost.from_row`
    builds it. Fields in the table's column order: `as_dict` is `crier community list --json`."""
    id: int
    account: str                          # the official account that would boost it
    status_id: str                        # the post's id on that account's instance
    uri: str                              # the post's ActivityPub URI (one row per account)
    url: str | None                       # its web page
    author: str                           # user@instance
    text: str | None
    via: str | None                       # how it was found: "#tag" | "mention"
    status: str                           # proposed | approved | rejected
    found_at: datetime
    decided_at: datetime | None
    show_id: int | None                   # the show watching (None: before migration 0006)

    def as_dict(self) -> dict[str, Any]:
        """Every column by name, times as ISO 8601 strings (JSON-ready)."""
        return {f.name: (v.isoformat() if isinstance(v, datetime) else v)
                for f in fields(self) for v in (getattr(self, f.name),)}




class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"    # waiting for its next attempt
    SENDING = "sending"    # claimed; the network call may be in flight
    SENT = "sent"
    FAILED = "failed"      # permanent: rejected, or retries exhausted; shown to the host
    HELD = "held"          # waiting for the host (flood guard, account stopped)
    DRY_RUN = "dry_run"    # recorded, not sent: no credentials or --dry-run
    CANCELLED = "cancelled"  # withdrawn before sending (a queued post cancelled or edited)
    SKIPPED = "skipped"    # the platform does not allow it for this account (the reason kept)
    REMOVED = "removed"    # went out, then taken down by the host (`crier remove`); final


class EpisodeStatus(enum.StrEnum):
    BASELINE = "baseline"     # known before crier started watching; never announced
    HELD = "held"             # flood guard: waits for `crier release`
    SCHEDULED = "scheduled"   # future-dated: announced when its date comes
    ANNOUNCED = "announced"   # posts enqueued for every account
    DISMISSED = "dismissed"   # was held; the host chose never to announce it (known)


@dataclass(frozen=True)
class Preview:
    """One account's rendering of a post, for `crier preview` and the dry run."""
    account: str
    platform: str
    text: str
    length: int
    limit: int
    link: str | None = None
    truncated: bool = False
    media: tuple[Media, ...] = field(default=())
    trimmed: tuple[str, ...] = ()
    reply_text: str | None = None
    card: Card | None = None              # Bluesky/Threads: the link card shown with it


@dataclass(frozen=True)
class PromoPreview:
    """A queued post composed for one account, as it would go out."""
    account: str
    platform: str
    text: str
    length: int
    limit: int
    shortened: bool = False
    image: str | None = None
    alt: str | None = None
    alt_length: int | None = None
    alt_limit: int | None = None
    episode: str | None = None
    link: str | None = None               # the link as posted
    trimmed: tuple[str, ...] = ()         # what fitting cut, e.g. "summary: 2 sentences dropped"
    mentions: tuple[tuple[str, str], ...] = ()  # ("@handle", "Name") in the text
    links: tuple[tuple[str, str], ...] = ()     # (shown text, whole URL): Bluesky
    card: Card | None = None              # Bluesky/Threads: the episode's link card

    @property
    def fits(self) -> bool:
        return self.length <= self.limit and (self.alt_length or 0) <= (self.alt_limit or 0)
