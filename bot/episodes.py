"""Episodes between the feed and the database (pure): an Episode to and from the JSON kept on
its row, and a changed feed read as little as detection needs (`FeedItems`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import MISSING, asdict, fields
from datetime import datetime
from typing import TYPE_CHECKING

from bot.models import Episode, ParsedFeed, Person

if TYPE_CHECKING:
    from bot.feed import ItemCache

log = logging.getLogger(__name__)


# Episode's fields with a default: stored only when they differ from it (a baseline of
# thousands of episodes is mostly None, "" and () ), read back as that default.
_DEFAULTS = {f.name: f.default for f in fields(Episode) if f.default is not MISSING}
_NAMES = tuple(f.name for f in fields(Episode))


def episode_to_data(ep: Episode, language: str | None = None,
                    show_image: str | None = None) -> dict:
    """The JSON kept on an episode's row: every field of `ep` that is not at its default
    (`episode_from_data` gives those back), the channel's `language` (in place of the
    episode's) and the show's image."""
    d: dict = {}
    for name in _NAMES:
        value = getattr(ep, name)
        if name in _DEFAULTS and value == _DEFAULTS[name]:
            continue
        if name == "published":
            value = value.isoformat()
        elif name == "persons":
            value = [asdict(p) for p in value]
        d[name] = value
    d.pop("language", None)
    if language is not None:
        d["language"] = language
    if show_image is not None:
        d["show_image"] = show_image
    return d


def episode_from_data(d: dict) -> Episode:
    d = dict(d)
    for extra in ("show_image", "boilerplate"):  # (language is an Episode field)
        d.pop(extra, None)
    pub = d.get("published")
    d["published"] = datetime.fromisoformat(pub) if pub else None
    d["persons"] = tuple(Person(**p) for p in d.get("persons") or ())
    known = Episode.__dataclass_fields__
    return Episode(**{k: v for k, v in d.items() if k in known})


# -- a changed feed, read as little as needed ---------------------------------------------
class FeedItems:
    """A changed feed as `bot.polling` needs it: every item's identity keys in document
    order, the channel's fields, and Episodes on demand: from a full parse, or, when the
    pre-scan could read the feed, from feedparser on just the items asked for. `digests` are
    the items' cache digests (None: not cacheable), when a scan gave them."""

    def __init__(self, body, url: str | None, keys: tuple[frozenset[str], ...],
                 channel: ParsedFeed, *, parsed: ParsedFeed | None = None, scan=None,
                 digests: tuple[str | None, ...] = (), scanned=None):
        self.body, self.url, self.keys, self.channel = body, url, keys, channel
        self.parsed, self.scan = parsed, scan
        self.digests = digests or (None,) * len(keys)
        self._scanned = scanned if scanned is not None else scan  # FeedScan of the digests
        self._sample: tuple[Episode, ...] = parsed.episodes if parsed else ()

    @classmethod
    def read(cls, body, url: str | None, *, scan: bool,
             known: ItemCache | None = None) -> FeedItems:
        """`body` is bytes or a `bot.fetch.Body`. With `scan`, the pre-scan (helped by the
        `known` items of the last poll) reads the items; without it (the first run needs
        every episode) the feed is parsed in full, and scanned too for the item digests.
        Raises ParseError when the feed is unreadable (as parse_feed does)."""
        from bot import feed
        from bot.feed import feed_identity_keys, parse_feed, scan_feed
        pre = scan_feed(body, url=url, known=known) if scan else None
        if pre is not None:
            return cls(body, url, pre.keys, pre.channel, scan=pre, digests=pre.digests)
        data = body if isinstance(body, bytes) else bytes(body)
        parsed = parse_feed(data, url=url)
        keys = feed_identity_keys(parsed)
        digests, scanned = (), None
        # The first run learns the item digests (the item cache) of a feed big enough for its
        # next poll to read with them (`scan_feed` does above KNOWN_MIN_BYTES; half of that
        # leaves room to grow); a smaller feed's next changed poll scans it whole anyway and
        # learns them then. The scan takes the channel and any item it cannot read alone from
        # `parsed`: feedparser runs once.
        if not scan and len(data) > feed.KNOWN_MIN_BYTES // 2:
            scanned = scan_feed(data, url=url, parsed=parsed)
            if scanned is not None and scanned.keys == keys:
                digests = scanned.digests
            else:
                scanned = None
        return cls(data, url, keys, parsed, parsed=parsed, digests=digests, scanned=scanned)

    def published(self) -> list[datetime | None]:
        """Every item's date, in document order (the poll schedule learns from them)."""
        if self.parsed is not None:
            return [e.published for e in self.parsed.episodes]
        return [it.published for it in self.scan.items]

    def is_known(self, i: int) -> bool:
        """Item `i` is byte for byte one the last poll recorded (no keys needed)."""
        return self.scan is not None and self.scan.items[i].known

    def next_cache(self, recorded: Iterable[int], previous: ItemCache | None) -> ItemCache:
        from bot.feed import ItemCache, next_item_cache
        if self._scanned is None:
            return ItemCache()
        return next_item_cache(self._scanned, recorded, previous)

    @property
    def bozo_message(self) -> str | None:
        return (self.channel.bozo_message or "malformed feed") if self.channel.bozo else None

    def title(self, i: int) -> str:
        return self.parsed.episodes[i].title if self.parsed else self.scan.items[i].title

    def episodes(self, indices: list[int]) -> dict[int, Episode]:
        """The Episodes of these items (by index): from the full parse, or feedparser on just
        these items."""
        if self.parsed is not None or not indices:
            eps = self.parsed.episodes if self.parsed else ()
            return {i: eps[i] for i in indices}
        from bot.feed import parse_feed, parse_selected
        try:
            got = parse_selected(self.body, self.scan, indices, url=self.url).episodes
            return dict(zip(sorted(indices), got, strict=True))
        except Exception:  # never expected; the full parse is always right
            log.exception("feed %s: reading the new items alone failed; parsing in full",
                          self.url)
            data = self.body if isinstance(self.body, bytes) else bytes(self.body)
            self.parsed = parse_feed(data, url=self.url)
            return {i: self.parsed.episodes[i] for i in indices}
