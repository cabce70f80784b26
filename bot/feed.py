"""Read a podcast feed: bytes in, a `ParsedFeed` out; and the keys that say "same episode".

Pure: no network, no database, no clock. feedparser reads the bytes, handed to it as a stream so
it never fetches a URL or opens a file, and the strict XML parser it uses does not load external
entities. The feed's own URL is used only as the base for relative links. A small scanner over
the decoded text adds the Podcasting 2.0 elements feedparser does not model
(`podcast:person`, item-level `podcast:guid`) and the channel's `itunes:image`.

What counts as unreadable (raises `ParseError`):

* empty input, or input that is not RSS/Atom/RDF at all (an HTML page, JSON, junk);
* malformed XML from which not one item could be read, unless it carries an
  `itunes:new-feed-url` (a moved feed often keeps only that). A malformed document with no
  items is far more often a broken or truncated response than a real empty feed, and treating
  it as "this feed now has no episodes" would be the wrong lesson to learn from it.

Malformed XML that still yields items is returned with `bozo=True` and a `bozo_message`.

Identity: `identity_keys` gives one episode's keys (item GUID, podcast:guid, normalized
enclosure URL, normalized item link, title+date fingerprint); two items are the same episode
if any key matches. `feed_identity_keys` does that for a whole feed and drops the keys that
cannot identify anything because several different episodes of the same feed carry them
(a GUID reused by the publisher, one link shared by every item). Prefer it.

The fast path for big feeds: `scan_feed` reads every item's identity material and byte span
in one expat pass (no feedparser), with keys exactly equal to `feed_identity_keys(parse_feed(
data))`, or returns None when it cannot be sure; `parse_selected` then runs feedparser on the
channel plus only the chosen items, giving the very Episodes a full parse gives for them.

Public: `parse_feed`, `parse_duration`, `normalize_url`, `untracked_url`, `identity_keys`,
`fingerprint`,
`feed_identity_keys`, `html_to_text`, `scan_feed`, `parse_selected`, `FeedScan`,
`ScannedItem`.
"""

from __future__ import annotations

import functools
import hashlib
import html
import html.entities
import io
import logging
import math
import re
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, NamedTuple
from urllib.parse import (
    SplitResult,
    parse_qsl,
    unquote,
    urlencode,
    urljoin,
    urlsplit,
    urlunsplit,
)
from xml.parsers import expat as pyexpat
from xml.sax import SAXParseException

import feedparser
import feedparser.api
import xxhash

from bot import plaintext
from bot.errors import ParseError
from bot.models import Episode, ParsedFeed, Person, UpdateHint

log = logging.getLogger(__name__)

# feedparser's strict parser gets expat with its text buffered (see bot.expatsax): the same
# reading, without one Python call per character reference of a description.
feedparser.api.PREFERRED_XML_PARSERS = ["bot.expatsax"]

# Podcasting 2.0 namespace URIs (the current one and the spec's original GitHub address).
# https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md
PODCAST_NAMESPACES = frozenset({
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
})
CONTENT_NAMESPACE = "http://purl.org/rss/1.0/modules/content/"
SY_NAMESPACE = "http://purl.org/rss/1.0/modules/syndication/"  # sy:updatePeriod (bot.cadence)
ITUNES_NAMESPACES = frozenset({
    "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "https://www.itunes.com/dtds/podcast-1.0.dtd",
})
# podcast:person's role defaults to "host" (Podcasting 2.0 spec, podcast:person).
DEFAULT_PERSON_ROLE = "host"
# Apple's itunes:episodeType values.
EPISODE_TYPES = frozenset({"full", "trailer", "bonus"})

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GENERIC_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})
# File extensions of audio/video enclosures, with the type to assume when none is given.
MEDIA_EXTENSIONS = {
    "mp3": "audio/mpeg", "m4a": "audio/mp4", "aac": "audio/aac", "ogg": "audio/ogg",
    "oga": "audio/ogg", "opus": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac",
    "mp4": "video/mp4", "m4v": "video/x-m4v", "mov": "video/quicktime", "webm": "video/webm",
}

# Prefix redirectors that podcast hosts chain in front of the real enclosure URL for download
# statistics: "https://dts.podtrac.com/redirect.mp3/chrt.fm/track/X/traffic.host/a.mp3".
# Each pattern matches host + path prefix (scheme removed); what follows it is the next URL,
# with or without its scheme. Stripped repeatedly, so chains unwind.
TRACKING_PREFIXES: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"(?:dts\.|www\.)?podtrac\.com/(?:pts/)?redirect\.[a-z0-9]+[/?]",  # Podtrac (/ or ?)
    r"chtbl\.com/track/[^/]+/",                     # Chartable
    r"chrt\.fm/track/[^/]+/",                       # Chartable
    r"pdst\.fm/e/",                                 # Podsights
    r"op3\.dev/e(?:,[^/]*)?/",                      # OP3 (https://op3.dev/setup)
    r"pdrl\.fm/[^/]+/",                             # Podroll
    r"(?:verifi\.podscribe\.com|pscrb\.fm)/rss/p/",  # Podscribe
    r"mgln\.ai/e/[^/]+/",                           # Magellan AI
    r"arttrk\.com/p/[^/]+/",                        # ART19 tracking
    r"(?:clrtpod\.com/m|claritaspod\.com/measure)/",  # Claritas
    r"prfx\.byspotify\.com/e/",                     # Spotify Ad Analytics
    r"pfx\.vpixl\.com/[^/]+/",                      # Veritone
    r"(?:tracking\.)?swap\.fm/track/[^/]+/",        # Swap.fm
    r"pdcn\.co/e/",                                 # Podcorn
    r"media\.blubrry\.com/[^/]+/(?:p/)?",           # Blubrry statistics
))
# "https://host/path" with nothing that urlsplit would treat specially (no user, port, query,
# fragment, IPv6, control characters or non-ASCII): normalize_url's fast path.
_PLAIN_URL = re.compile(r"(?i:https?://)(([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?)"
                        r"(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?)\Z")
_ANY_TRACKING_PREFIX = re.compile("|".join(f"(?:{p.pattern})" for p in TRACKING_PREFIXES),
                                  re.IGNORECASE)
# Query parameters that never identify anything (campaign tracking).
TRACKING_PARAMS = re.compile(r"^(?:utm_[a-z_]*|fbclid|gclid|mc_cid|mc_eid)$", re.IGNORECASE)


# -- parsing ------------------------------------------------------------------------------------

def parse_feed(data: bytes, *, url: str | None = None) -> ParsedFeed:
    """Parse a feed document. `url` (where it was fetched from) only resolves relative links.

    Raises `ParseError(url or "<bytes>", ...)` when the bytes are not a feed at all (see the
    module docstring). Episodes come in document order.
    """
    where = url or "<bytes>"
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"parse_feed takes bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.strip():
        raise ParseError(where, "the document is empty")

    # A stream, never a str/bytes: feedparser would fetch a string that looks like a URL and
    # open one that names a file. No Content-Location either: it would make feedparser resolve
    # relative GUIDs against the feed's address, and an item's GUID must not change when the
    # feed moves. Relative links are resolved below instead.
    # No sanitizing or relative-URI resolution of embedded HTML: both re-parse every piece of
    # show notes with feedparser's slow SGML parser (seconds per MB: a hostile 10 MB
    # description took minutes), and crier only ever reads the text of the notes
    # (`bot.compose`). `summary_html` is therefore unsanitized: never render it as HTML.
    # Titles are still sanitized (`_text`), exactly as feedparser would, since their text
    # is part of an episode's identity.
    try:
        result = feedparser.parse(io.BytesIO(data), sanitize_html=False,
                                  resolve_relative_uris=False)
    except (UnicodeError, ValueError, LookupError) as e:
        # feedparser chokes on some broken encoding declarations (bytes it cannot decode,
        # a NUL inside): a broken feed, said so, never a crash
        raise ParseError(where, "the XML declaration's encoding is unreadable "
                                f"({type(e).__name__}: {e})") from None
    entries = result.get("entries") or []
    channel = result.get("feed") or {}
    bozo = bool(result.get("bozo"))
    bozo_message = _describe_bozo(result.get("bozo_exception")) if bozo else None
    new_feed_url = _clean(channel.get("itunes_new-feed-url"))

    if not entries:
        if not result.get("version"):
            raise ParseError(where, "not an RSS or Atom feed" + _sniff(data)
                             + (f" ({bozo_message})" if bozo_message else ""))
        if bozo and not new_feed_url:
            raise ParseError(where, f"malformed XML and no episode could be read ({bozo_message})")
    if bozo:
        log.warning("feed %s is malformed but readable: %s", where, bozo_message)

    scan = _scan(data, result.get("encoding"))
    items: list[_ScannedItem | None] = list(scan.items)
    if len(items) != len(entries):
        log.warning("feed %s: found %d <item>s but feedparser read %d entries; podcast:person "
                    "and podcast:guid of items are ignored", where, len(items), len(entries))
        items = [None] * len(entries)

    show_link = _absolute(_clean(channel.get("link")), url)
    language = _clean(channel.get("language"))
    episodes = tuple(_episode(entry, item, scan.persons, url, show_link, language)
                     for entry, item in zip(entries, items, strict=True))
    image = scan.image or _get(channel, "image", "href")
    return ParsedFeed(
        title=_text(channel.get("title"), channel.get("title_detail")),
        link=show_link,
        language=language,
        image=_absolute(_clean(image), url),
        episodes=episodes,
        bozo=bozo,
        bozo_message=bozo_message,
        new_feed_url=new_feed_url,
        update=scan.update,
    )


def parse_duration(value: str | None) -> int | None:
    """itunes:duration in seconds: "1:03:12", "63:12", "3792", "3792.5", "1h 3m 12s".

    None for absent, garbage, negative or zero (hosts write 0 when they do not know).
    """
    if value is None:
        return None
    text = value.strip().lower()
    seconds: float
    if _HMS.fullmatch(text):
        parts = [float(p) for p in text.split(":")]
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
    elif (m := _UNITS.fullmatch(text)) and any(m.groups()):
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        return None
    return int(seconds) or None


_HMS = re.compile(r"\d+(?::\d+){0,2}(?:\.\d*)?")
_UNITS = re.compile(r"(?:(\d+)\s*h(?:ours?|rs?)?\s*)?(?:(\d+)\s*m(?:in(?:ute)?s?)?\s*)?"
                    r"(?:(\d+(?:\.\d*)?)\s*s(?:ec(?:ond)?s?)?)?")


def _episode(entry: Mapping[str, Any], item: _ScannedItem | None,
             channel_persons: tuple[Person, ...], base: str | None,
             show_link: str | None = None, language: str | None = None) -> Episode:
    enclosure_url, enclosure_type = _enclosure(entry, base)
    persons = item.persons if item and item.persons else channel_persons
    return Episode(
        title=_text(entry.get("title"), entry.get("title_detail")),
        guid=_clean(entry.get("id")),
        podcast_guid=item.podcast_guid if item else None,
        link=_episode_link(entry, enclosure_url, base),
        published=_published(entry),
        summary_html=item.notes if item and item.notes else _summary_html(entry),
        enclosure_url=enclosure_url,
        enclosure_type=enclosure_type,
        image=_episode_image(entry, base),
        duration=parse_duration(_str(entry.get("itunes_duration"))),
        season=_positive_int(entry.get("itunes_season")),
        number=_positive_int(entry.get("itunes_episode")),
        episode_type=_episode_type(entry.get("itunes_episodetype")),
        persons=persons,
        show_link=show_link,
        language=language,
    )


def _episode_link(entry: Mapping[str, Any], enclosure_url: str | None,
                  base: str | None) -> str | None:
    """The episode's web page; None when all the feed offers is the audio file itself."""
    link = _clean(entry.get("link"))
    if not link:
        return None
    if entry.get("guidislink"):
        # feedparser copied a permalink GUID (RSS default isPermaLink="true") into the link:
        # trust it only if it is a web address; "c41042ae-5460-..." is not a page.
        if not _is_web(link):
            return None
    else:
        link = _absolute(link, base)
    if not _is_web(link):
        return None
    enclosures = {normalize_url(u, enclosure=True)
                  for u in [enclosure_url, *(_absolute(_clean(e.get("href")), base)
                                             for e in entry.get("enclosures") or [])] if u}
    if normalize_url(link, enclosure=True) in enclosures:
        log.debug("item %r: its link is its enclosure; no episode page", entry.get("id"))
        return None
    return link


def _episode_image(entry: Mapping[str, Any], base: str | None) -> str | None:
    """The item's itunes:image, else its media:thumbnail."""
    href = _clean(_get(entry, "image", "href"))
    if not href:
        thumbs = entry.get("media_thumbnail") or []
        href = next((u for t in thumbs if (u := _clean(t.get("url")))), None)
    return _absolute(href, base)


def _enclosure(entry: Mapping[str, Any], base: str | None) -> tuple[str | None, str | None]:
    """The first audio/video enclosure; else one that looks like media by its file name; else
    the first one without a (useful) type. Images, PDFs and the like are not episodes."""
    candidates: list[tuple[str, str | None]] = []
    for enc in list(entry.get("enclosures") or []) + list(entry.get("media_content") or []):
        href = _clean(enc.get("href") or enc.get("url"))
        if href:
            candidates.append((_absolute(href, base) or href, _clean(enc.get("type"))))
    for href, mime in candidates:
        if _is_media_type(mime):
            return href, mime
    for href, mime in candidates:
        guessed = MEDIA_EXTENSIONS.get(_extension(href))
        if guessed and not (mime or "").lower().startswith(("image/", "text/")):
            return href, guessed if not mime or mime.lower() in _GENERIC_TYPES else mime
    for href, mime in candidates:
        if not mime or mime.lower() in _GENERIC_TYPES:
            return href, mime
    return None, None


def _is_media_type(mime: str | None) -> bool:
    main = (mime or "").lower().split("/")[0]
    return main in ("audio", "video") or main.endswith(("-audio", "-video"))  # x-audio/mp3


def _published(entry: Mapping[str, Any]) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        # dict.get: FeedParserDict.get would map one key onto the other, with a warning.
        t = dict.get(entry, key) if isinstance(entry, dict) else entry.get(key)
        if t:
            try:
                return datetime(*t[:6], tzinfo=UTC)
            except (TypeError, ValueError):
                continue
    return None


def _summary_html(entry: Mapping[str, Any]) -> str:
    """The richest show notes feedparser read (content:encoded is found by `_scan` first):
    the longest HTML one of the item's content and summary (Atom content, description,
    itunes:summary: feedparser files a second summary-like element under content); else the
    summary, else the first content, as plain text escaped, so the result is always HTML."""
    contents = list(entry.get("content") or [])
    marked: list[str] = []
    for c in contents:
        if (c.get("type") or "").lower() in HTML_TYPES and (c.get("value") or "").strip():
            marked.append(c["value"].strip())
    summary = entry.get("summary")
    plain = None
    if isinstance(summary, str) and summary.strip():
        if (_get(entry, "summary_detail", "type") or "text/html").lower() in HTML_TYPES:
            marked.append(summary.strip())
        else:
            plain = summary.strip()
    if marked:
        return max(marked, key=len)  # (the first of equals)
    if plain is None:
        plain = next((v.strip() for c in contents if (v := c.get("value") or "").strip()), "")
    return html.escape(plain)


def _positive_int(value: object) -> int | None:
    text = (_str(value) or "").strip()
    if not re.fullmatch(r"[0-9]+", text):
        return None
    n = int(text)
    return n if n > 0 else None  # Apple: "a non-zero integer"


def _episode_type(value: object) -> str | None:
    text = (_str(value) or "").strip().lower()
    return text if text in EPISODE_TYPES else None


def _describe_bozo(exc: object) -> str:
    if exc is None:
        return "malformed feed"
    if isinstance(exc, SAXParseException):
        return f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    return str(exc) or type(exc).__name__


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return ": it looks like an HTML page"
    if head.startswith((b"{", b"[")):
        return ": it looks like JSON"
    return ""


# -- the scanner for what feedparser leaves out ------------------------------------------------

@dataclass(frozen=True)
class _ScannedItem:
    persons: tuple[Person, ...] = ()
    podcast_guid: str | None = None
    notes: str | None = None          # the item's content:encoded, when it has any text


@dataclass(frozen=True)
class _Scan:
    items: tuple[_ScannedItem, ...]
    persons: tuple[Person, ...]       # channel-level podcast:person
    image: str | None                 # channel-level itunes:image href
    update: UpdateHint | None = None  # podcast:updateFrequency, sy:update* (bot.cadence)


# (an unclosed section runs to the end: searched once, not again from every "<!--")
_HIDDEN = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)|<!--.*?(?:-->|\Z)", re.DOTALL)
_ITEM = re.compile(r"<(item|entry)\b[^>]*?(?:/>|>(.*?)(?:</\1\s*>|\Z))",
                   re.DOTALL | re.IGNORECASE)
_XMLNS = re.compile(r"""\bxmlns:([A-Za-z_][\w.-]*)\s*=\s*(["'])(.*?)\2""", re.DOTALL)
_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _scan(data: bytes, encoding: str | None) -> _Scan:
    """Find podcast:person, item podcast:guid, item content:encoded (feedparser mixes it up
    with a description or itunes:summary that comes before it) and the channel itunes:image
    in the raw text.

    A tolerant scan (malformed feeds are read too): CDATA sections are escaped and comments
    dropped first, so markup inside show notes is never mistaken for elements. Items are
    <item>/<entry> elements in document order, as feedparser counts them.
    """
    try:
        text = data.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    podcast = {"podcast"}
    itunes = {"itunes"}
    content = {"content"}
    sy = {"sy"}
    for prefix, _, uri in _XMLNS.findall(text[:20000]):
        uri = uri.strip().lower()
        if uri in PODCAST_NAMESPACES:
            podcast.add(prefix)
        elif uri in ITUNES_NAMESPACES:
            itunes.add(prefix)
        elif uri == CONTENT_NAMESPACE:
            content.add(prefix)
        elif uri == SY_NAMESPACE:
            sy.add(prefix)
    text = _HIDDEN.sub(lambda m: html.escape(m.group(1)) if m.group(1) is not None else "", text)
    pp = "|".join(re.escape(p) for p in sorted(podcast))
    ip = "|".join(re.escape(p) for p in sorted(itunes))
    # Elements are found by their start tag, then the first end tag after it: linear, where
    # one regular expression with both would search to the end again from every unclosed
    # start tag (minutes for a malformed feed full of them). No "<" inside a tag (XML has
    # none in attribute values).
    person_re = (re.compile(rf"<(?:{pp}):person\b([^<>]*?)(?<!/)>", re.IGNORECASE),
                 re.compile(rf"</(?:{pp}):person\s*>", re.IGNORECASE))
    guid_re = (re.compile(rf"<(?:{pp}):guid\b[^<>]*?(?<!/)>", re.IGNORECASE),
               re.compile(rf"</(?:{pp}):guid\s*>", re.IGNORECASE))
    live_re = (re.compile(rf"<(?:{pp}):liveItem\b", re.IGNORECASE),
               re.compile(rf"</(?:{pp}):liveItem\s*>", re.IGNORECASE))
    image_re = re.compile(rf"<(?:{ip}):image\b([^<>]*)>", re.IGNORECASE)
    cp = "|".join(re.escape(p) for p in sorted(content))
    encoded_re = (re.compile(rf"<(?:{cp}):encoded\b[^>]*?(/?)>", re.IGNORECASE),
                  re.compile(rf"</(?:{cp}):encoded\s*>", re.IGNORECASE))
    fix = _fixer(encoding)

    items: list[_ScannedItem] = []
    outside: list[str] = []
    pos = 0
    for m in _ITEM.finditer(text):
        outside.append(text[pos:m.start()])
        pos = m.end()
        body = m.group(2) or ""
        guid = next(_elements(body, guid_re), None)
        items.append(_ScannedItem(
            persons=_persons(_elements(body, person_re)),
            podcast_guid=_clean(html.unescape(body[guid[1]:guid[2]])) if guid else None,
            notes=_encoded(body, encoded_re, fix),
        ))
    outside.append(text[pos:])
    channel = "".join(outside)
    live = list(_elements(channel, live_re))
    if live:  # podcast:liveItem elements are not the channel's own
        kept, at = [], 0
        for start, _, _, end, _ in live:
            kept.append(channel[at:start])
            at = end
        channel = "".join(kept) + channel[at:]
    image = None
    for m in image_re.finditer(channel):
        attrs = _attrs(m.group(1))
        image = _clean(attrs.get("href") or attrs.get("url"))
        if image:
            break
    return _Scan(items=tuple(items), persons=_persons(_elements(channel, person_re)),
                 image=image, update=_update_hint(channel, pp, sy))


def _update_hint(channel: str, pp: str, sy: set[str]) -> UpdateHint | None:
    """The channel's podcast:updateFrequency and sy:updatePeriod/updateFrequency/updateBase,
    read by `bot.cadence.declared_hint` (the first of each; CDATA is escaped already)."""
    from bot.cadence import declared_hint
    freq = re.search(rf"<(?:{pp}):updateFrequency\b([^<>]*?)(?:/>|>([^<]*)</(?:{pp}):"
                     rf"updateFrequency\s*>)", channel, re.IGNORECASE)
    sp = "|".join(re.escape(p) for p in sorted(sy))
    found: dict[str, str] = {}
    for m in re.finditer(rf"<(?:{sp}):(updatePeriod|updateFrequency|updateBase)\s*>([^<]*)<",
                         channel, re.IGNORECASE):
        found.setdefault(m.group(1).lower(), html.unescape(m.group(2)).strip())
    attrs = _attrs(freq.group(1)) if freq else {}
    return declared_hint(text=html.unescape(freq.group(2) or "") if freq else None,
                         rrule=attrs.get("rrule"), complete=attrs.get("complete"),
                         dtstart=attrs.get("dtstart"), sy_period=found.get("updateperiod"),
                         sy_frequency=found.get("updatefrequency"),
                         sy_base=found.get("updatebase"))


def _elements(text: str, tags: tuple[re.Pattern[str], re.Pattern[str]]
              ) -> Iterator[tuple[int, int, int, int, re.Match[str]]]:
    """(start, content start, content end, end, start tag match) of each element of text
    whose start and end tags these are, in order; an element's content ends at the first end
    tag after its start. Linear: once an end tag is missing, none follows."""
    start_re, end_re = tags
    pos = 0
    while m := start_re.search(text, pos):
        close = end_re.search(text, m.end())
        if close is None:
            return
        yield m.start(), m.end(), close.start(), close.end(), m
        pos = close.end()


def _encoded(body: str, tags: tuple[re.Pattern[str], re.Pattern[str]],
             fix: Callable[[str], str]) -> str | None:
    """The text of the item's first content:encoded that has any (None when none has), as
    feedparser reads it: CDATA (escaped by `_scan`) and character references decoded, the
    same repair of mis-decoded text, whitespace stripped. Linear: one search per element."""
    start_re, end_re = tags
    pos = 0
    while m := start_re.search(body, pos):
        if m.group(1):  # <content:encoded/>
            pos = m.end()
            continue
        end = end_re.search(body, m.end())
        if end is None:
            return None
        value = fix(_xml_unescape(body[m.end():end.start()]).replace("\r\n", "\n")
                    .replace("\r", "\n")).strip()
        if value:
            return value
        pos = end.end()
    return None


_XML_REFERENCE = re.compile(r"&(?:(lt|gt|amp|quot|apos)|#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7}));")
_XML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def _xml_unescape(text: str) -> str:
    """XML's predefined entities and character references decoded; anything else kept."""
    def one(m: re.Match[str]) -> str:
        if m.group(1):
            return _XML_NAMED[m.group(1)]
        code = int(m.group(2)) if m.group(2) else int(m.group(3), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else ""
    return _XML_REFERENCE.sub(one, text) if "&" in text else text


def _fixer(encoding: str | None) -> Callable[[str], str]:
    """What feedparser's pop() does to every text it keeps: UTF-8 that was decoded as
    ISO-8859-1 repaired (for a UTF-8 document), then cp1252's extensions mapped."""
    from feedparser.html import _cp1252
    utf8 = (encoding or "utf-8").lower() in ("utf-8", "utf-8_invalid_python_3")

    def fix(s: str) -> str:
        if utf8:
            try:
                s = s.encode("iso-8859-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        return s.translate(_cp1252)
    return fix


def _persons(found: Iterable[tuple[int, int, int, int, re.Match[str]]]
             ) -> tuple[Person, ...]:
    out: list[Person] = []
    for _start, begin, end, _end, m in found:
        attrs = _attrs(m.group(1))
        name = " ".join(plaintext.clean(plaintext.unescape(
            re.sub(r"<[^<>]*>", "", m.string[begin:end]))).split())
        if not name:
            continue
        role = " ".join((attrs.get("role") or "").split()).lower() or DEFAULT_PERSON_ROLE
        out.append(Person(name=name, role=role, href=_clean(attrs.get("href"))))
    return tuple(out)


def _attrs(text: str) -> dict[str, str]:
    return {k.lower(): html.unescape(dq or sq) for k, dq, sq in _ATTR.findall(text)}


# -- the fast pre-scan -------------------------------------------------------------------------
#
# A changed feed usually differs from the last poll by one item. `scan_feed` reads what decides
# "which episode is this" for every item (and where each item lies in the document) in one
# expat pass, without feedparser, so the poll can run feedparser on the few items not yet known
# (`parse_selected`). It must agree with `parse_feed` *exactly*, so it is deliberately narrow:
#
# * It sees the bytes as feedparser's strict parser does (same encoding rules, same expat, same
#   namespace processing): a document expat refuses, one with a DOCTYPE, or one whose encoding
#   feedparser would have to guess is not scanned (None: the caller parses it in full).
# * Only RSS 2.0 (`<rss><channel><item>`) with every namespace declared before the first item,
#   no xml:base, and nothing but items from the first item to `</channel>`.
# * For each item it replays what feedparser does with the handful of elements that make an
#   identity (title, guid, link, pubDate, enclosure, media:content; crier's own reading of
#   podcast:guid), on a real FeedParserDict, then runs this module's own `_enclosure`,
#   `_episode_link`, `_published`, `_text`. An item holding anything else that feedparser could
#   turn into one of those fields (a second title, dc:date, an HTML-looking title, an
#   atom:link, a nested <title>...) is read by feedparser instead: the scan parses just those
#   items with `parse_selected`, and gives up (None) when there are too many of them.
#
# Proven equal to the full parse over every feed in the shared test data (tests/test_feed_scan.py).

# Elements whose feedparser handlers never touch an item's title, id, link, links, enclosures,
# media_content or dates (by handler method name: "_start_" + this).
_NEUTRAL = frozenset({
    "description", "abstract", "summary", "content_encoded", "fullitem", "content", "body",
    "xhtml_body", "author", "managingeditor", "contributor", "name", "email", "category",
    "keywords", "rights", "copyright", "subtitle", "tagline", "info", "generator", "tags",
    "itunes_summary", "itunes_subtitle", "itunes_author", "itunes_name", "itunes_email",
    "itunes_owner", "itunes_image", "itunes_link", "itunes_category", "itunes_keywords",
    "itunes_block", "itunes_explicit", "dc_creator", "dc_author", "dc_subject", "dc_publisher",
    "dc_rights", "dc_description", "dc_contributor", "dc_language", "media_thumbnail",
    "media_keywords", "media_category", "media_rating", "media_credit", "media_description",
    "media_restriction", "media_license", "media_player", "media_group", "psc_chapters",
    "psc_chapter", "cc_license", "creativecommons_license",
})
# Keys a handler-less element must not be stored under (FeedParserDict maps some of them).
_RESERVED_KEYS = frozenset({
    "title", "title_detail", "id", "guid", "guidislink", "link", "links", "enclosures",
    "media_content", "published", "updated", "date", "modified", "issued", "category",
    "license", "channel", "items",
})
_TITLE, _GUID, _LINK, _DATE, _ENCLOSURE, _MEDIA, _GROUP = range(7)
_MODELED = {"title": _TITLE, "guid": _GUID, "id": _GUID, "link": _LINK, "pubdate": _DATE,
            "published": _DATE, "issued": _DATE, "enclosure": _ENCLOSURE,
            "media_content": _MEDIA, "media_group": _GROUP}
_TEXT_KINDS = frozenset({_TITLE, _GUID, _LINK, _DATE})
# feedparser's XML declaration after it has re-encoded a document (feedparser.encodings)
_UTF8_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?>")
_ITEMISH = re.compile(r"(?:item|entry)\b", re.IGNORECASE)
_START_TAG_END = re.compile(rb"""<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
# More items than this that the scanner cannot read itself: a full parse costs about the same.
MAX_FEEDPARSER_ITEMS = 50


class ScannedItem(NamedTuple):
    """One item as the pre-scan read it: its identity material and where it lies.

    `start`/`end` are byte offsets into the document feedparser parses (`FeedScan.document`).
    `exact` is False for an item the scanner could not read alone (feedparser read it).
    (A NamedTuple: a big feed has thousands, made on every changed poll.)
    """
    start: int
    end: int
    title: str = ""
    guid: str | None = None
    podcast_guid: str | None = None
    link: str | None = None
    published: datetime | None = None
    enclosure_url: str | None = None
    exact: bool = True
    known: bool = False  # unchanged since an earlier scan: only `published` is filled in


@dataclass(frozen=True, eq=False)
class FeedScan:
    """What `scan_feed` found: items in document order, their identity keys (exactly
    `feed_identity_keys(parse_feed(data))`), and the channel's fields. Items the `known`
    cache recognised (`ScannedItem.known`) have empty `keys` and `raw_keys`: they are byte
    for byte an item an earlier scan read."""
    items: tuple[ScannedItem, ...]
    keys: tuple[frozenset[str], ...]
    channel: ParsedFeed               # the channel's fields; `episodes` is empty
    size: int                         # len(data): parse_selected checks it gets the same bytes
    header_end: int                   # document offset where the first item starts
    tail_start: int                   # document offset just past the last item
    prefix: bytes                     # the document is prefix + source[skip:]
    skip: int
    converted: bytes | None = None    # the re-encoded document when it is not `data` itself
    raw_keys: tuple[frozenset[str], ...] = ()  # identity_keys(item) with no show link
    digests: tuple[bytes | None, ...] = ()     # `item_digest` of items a cache may keep
    reused: int = 0                   # items taken from `known` (not read again)

    def document(self, data: bytes) -> bytes:
        """The whole UTF-8 document feedparser parses (a copy; for tests and tools)."""
        return self._piece(data, 0, self.tail_start + self._tail_len(data))

    def _source(self, data: bytes) -> bytes:
        if len(data) != self.size:
            raise ValueError("parse_selected needs the same bytes that were scanned")
        return self.converted if self.converted is not None else data

    def _tail_len(self, data: bytes) -> int:
        return len(self._source(data)) - self.skip + len(self.prefix) - self.tail_start

    def _piece(self, data: bytes, start: int, end: int) -> bytes:
        """Document bytes [start, end)."""
        source, p = self._source(data), len(self.prefix)
        if start >= p:
            return source[start - p + self.skip:end - p + self.skip]
        return self.prefix[start:end] + source[self.skip:max(self.skip, end - p + self.skip)]


def scan_feed(data, *, url: str | None = None, known: ItemCache | None = None,
              parsed: ParsedFeed | None = None) -> FeedScan | None:
    """Read every item's identity (and byte span) without a full feedparser parse.

    Returns None when the document is not one the scan can read exactly (see the notes above
    this function): the caller then parses it in full with `parse_feed`. `url` plays the same
    part as in `parse_feed` (base for relative links). `data` is bytes, or anything with
    `len()`, plain slicing and `chunks()` (`bot.fetch.Body`). `known` is the `ItemCache` an
    earlier poll left (`next_item_cache`): an item whose bytes are unchanged is then neither
    parsed nor replayed, only hashed. `parsed` is `parse_feed(data, url=url)` when the caller
    has it (a first run): the channel and the items the scan cannot read alone are then taken
    from it instead of running feedparser again (`parse_selected` gives the same). Raises
    nothing.
    """
    try:
        if known and len(data) > KNOWN_MIN_BYTES:
            try:
                return _scan_known(data, url, known)
            except _Unreadable as e:
                log.debug("feed %s: cache-assisted scan not possible (%s); scanning in full",
                          url or "<bytes>", e)
        return _finish(_scan_feed(data if isinstance(data, bytes) else bytes(data), url,
                                  parsed=parsed))
    except (ParseError, _Unreadable):
        return None
    except Exception:  # a bug here must never cost a poll: the full parse is always right
        log.exception("feed %s: pre-scan failed; parsing in full", url or "<bytes>")
        return None


def parse_selected(data: bytes, scan: FeedScan, indices: Iterable[int], *,
                   url: str | None = None) -> ParsedFeed:
    """feedparser on the channel and only the chosen items: the same `ParsedFeed` that
    `parse_feed(data, url=url)` gives, with `episodes` limited to `indices` (document order).

    The small document is the channel's header, the first item (so every chosen item starts
    from the state feedparser is in after an item, as in the full document), the chosen items
    and the document's tail. Raises ParseError as `parse_feed` does.
    """
    wanted = sorted(set(indices))
    if wanted and not (0 <= wanted[0] and wanted[-1] < len(scan.items)):
        raise IndexError(f"item index out of range (the feed has {len(scan.items)} items)")
    order = sorted(set(wanted) | ({0} if wanted else set()))
    parts = [scan._piece(data, 0, scan.header_end)]
    for i in order:
        it = scan.items[i]
        parts.append(scan._piece(data, it.start, it.end))
    parts.append(scan._piece(data, scan.tail_start, scan.tail_start + scan._tail_len(data)))
    parsed = parse_feed(b"\n".join(parts), url=url)
    if len(parsed.episodes) != len(order):
        raise ParseError(url or "<bytes>", "the selected items did not parse as items")
    chosen = set(wanted)
    episodes = tuple(ep for i, ep in zip(order, parsed.episodes, strict=True) if i in chosen)
    return replace(parsed, episodes=episodes)


class _Unreadable(Exception):
    """The scanner cannot read this document exactly; parse it in full."""


class _Entry(dict):
    """A plain dict standing in for feedparser's entry (a FeedParserDict, whose lookups are
    slow): it computes the one derived key crier reads, `enclosures`, the way feedparser does
    (every link with rel="enclosure", without its rel, as a FeedParserDict)."""

    def get(self, key: str, default: Any = None) -> Any:
        if key != "enclosures":
            return dict.get(self, key, default)
        links = dict.get(self, "links")
        if links is None:
            return default
        from feedparser.util import FeedParserDict
        return [FeedParserDict([(k, v) for k, v in link.items() if k != "rel"])
                for link in links if link["rel"] == "enclosure"]


def _utf8_document(data: bytes) -> tuple[bytes, int, bytes | None, str]:
    """(prefix, skip, converted, encoding): the bytes feedparser's strict parser sees are
    prefix + (converted or data)[skip:]. Mirrors feedparser.encodings.convert_to_utf8 with no
    HTTP headers (parse_feed hands feedparser a stream) and sanitizer.replace_doctype."""
    from feedparser.encodings import RE_XML_PI_ENCODING, convert_to_utf8

    if data[:2] in (b"\xfe\xff", b"\xff\xfe") or data[:3] == b"\xef\xbb\xbf" \
            or data[:4] in (b"\x00\x00\xfe\xff", b"\x4c\x6f\xa7\x94") or b"\x00" in data[:4]:
        raise _Unreadable("byte order mark or a wide encoding")
    m = RE_XML_PI_ENCODING.match(data)
    declared = m.group(1).decode("utf-8", "replace").lower() if m else ""
    if declared in ("", "utf-8", "utf8"):
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise _Unreadable("not valid UTF-8") from None
        decl = _XML_DECLARATION.match(data)
        prefix, skip, converted = (_UTF8_DECLARATION, decl.end(), None) if decl else \
            (_UTF8_DECLARATION + b"\n", 0, None)
        encoding = "utf-8"
    else:
        result: dict = {}
        try:
            converted = convert_to_utf8({}, data, result)
        except (UnicodeError, ValueError, LookupError):
            raise _Unreadable("an unreadable encoding declaration") from None
        if result.get("bozo") or not result.get("encoding"):
            raise _Unreadable("feedparser would guess the encoding")
        prefix, skip, encoding = b"", 0, result["encoding"]
    head_end = re.search(rb"<\w", (converted or data)[skip:skip + 65536])
    head = prefix + (converted or data)[skip:skip + (head_end.start() if head_end else 65536)]
    if re.search(rb"<!(?!--)", head):
        raise _Unreadable("a DOCTYPE or entity declarations")
    return prefix, skip, converted, encoding


def _scan_feed(data: bytes, url: str | None, *, placeholders: frozenset[int] = frozenset(),
               podcast_prefixes: set[str] | None = None, seed: int | None = None,
               parsed: ParsedFeed | None = None) -> FeedScan:
    """The expat pass and replay. Items whose index is in `placeholders` (`<item/>` standing
    in for known items) are only located. `parsed`: the full parse of `data`, if the caller
    has one (see `scan_feed`). Returns a FeedScan whose `keys` are still empty (`_finish`
    fills them)."""
    from feedparser.datetimes import _parse_date
    from feedparser.html import _cp1252
    from feedparser.mixin import _FeedParserMixin as Mixin
    from feedparser.urls import _urljoin
    from feedparser.util import FeedParserDict

    if not data.strip():
        raise _Unreadable("empty")
    prefix, skip, converted, encoding = _utf8_document(data)
    source = converted if converted is not None else data
    shift = skip - len(prefix)  # source offset = document offset + shift

    if podcast_prefixes is None:
        podcast_prefixes = _podcast_prefixes(data, encoding)

    match_ns = {k.lower(): v for k, v in Mixin.namespaces.items()}
    doc_prefixes: dict[str, str] = {}   # document prefix → URI (declared once, before items)
    prefix_map: dict[str, str] = {}     # document prefix → feedparser's standard prefix
    kinds: dict[str, tuple[str, object]] = {}

    def classify(name: str) -> tuple[str, object]:
        """(feedparser handler suffix, kind) for an expat name "uri local prefix"."""
        parts = name.split(" ")
        if len(parts) == 1:
            uri, local, given = "", parts[0], ""
        elif len(parts) == 2:
            (uri, local), given = parts, ""
        else:
            uri, local, given = parts
        luri = uri.lower()
        if "backend.userland.com/rss" in luri:
            luri = "http://backend.userland.com/rss"
        pfx = match_ns.get(luri, given) if luri else ""
        tag = f"{pfx.lower()}:{local.lower()}" if pfx else local.lower()
        if ":" in tag:
            p, _, suffix = tag.partition(":")
            p = prefix_map.get(p, p)
            handler = f"{p}_{suffix}" if p else suffix
        else:
            handler = tag
        if handler in ("item", "entry") or (not given and _ITEMISH.match(local)):
            kind: object = "itemish"
        elif handler == "svg" or local.lower() == "svg":
            kind = "doubt"
        elif handler in _MODELED:
            kind = _MODELED[handler]
        elif handler in _NEUTRAL:
            kind = "neutral"
        elif hasattr(Mixin, "_start_" + handler) or hasattr(Mixin, "_end_" + handler):
            kind = "doubt"
        elif handler in _RESERVED_KEYS or handler.endswith("_parsed") \
                or handler in FeedParserDict.keymap:
            kind = "doubt"
        else:
            kind = "generic"
        if given.lower() in podcast_prefixes and local.lower().startswith("guid"):
            kind = "pguid" if local.lower() == "guid" else "doubt"
        return handler, kind

    items: list[dict] = []
    channels = 0
    depth = 0
    item: dict | None = None
    seen_items = False
    closed = False  # no item may follow: channel content or a new namespace came after one
    text: list[str] | None = None
    parser = pyexpat.ParserCreate(None, " ")
    parser.namespace_prefixes = True
    parser.buffer_text = True

    def collect(s: str) -> None:
        text.append(s)  # type: ignore[union-attr]

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth, item, seen_items, text, channels, closed
        depth += 1
        if attrs:
            for k in attrs:
                if (k.split(" ")[1] if " " in k else k).lower() == "base":
                    raise _Unreadable("xml:base")
        k = kinds.get(name)
        if k is None:
            k = kinds[name] = classify(name)
        handler, kind = k
        if item is None:
            if depth == 1:
                if name != "rss":
                    raise _Unreadable("not RSS 2.0")
            elif depth == 2:
                if name != "channel" or attrs:
                    raise _Unreadable("not one plain <channel>")
                channels += 1
            elif depth == 3 and name == "item":
                if closed:
                    raise _Unreadable("channel content or a namespace between items")
                seen_items = True
                at = parser.CurrentByteIndex
                tag = _START_TAG_END.match(source, at + shift)
                item = {"start": at, "events": [], "doubt": bool(attrs), "path": [],
                        "pguid": None, "empty": bool(tag and tag.group(1))}
                items.append(item)
                return
            if kind == "itemish":
                raise _Unreadable("an item-like element outside the channel's items")
            if seen_items:
                # after the last item (kept as is in parse_selected's documents); a title
                # there would depend on the items before it (feedparser's title_depth)
                if handler in ("title", "image", "media_title", "dc_title"):
                    raise _Unreadable("a title after the items")
                closed = True
            return
        # inside an item: depth 4 is a direct child
        path = item["path"]
        parent = path[-1] if path else None
        path.append(kind)
        if kind == "itemish":
            raise _Unreadable("an item inside an item")
        if item["doubt"]:
            return
        if parent in _TEXT_KINDS or parent == "pguid":
            item["doubt"] = True
        elif kind in _TEXT_KINDS:
            if depth != 4 or (attrs and kind not in (_GUID, _LINK)):
                item["doubt"] = True
            else:
                text = []
                parser.CharacterDataHandler = collect
                item["events"].append((kind, attrs, text))
        elif kind == _ENCLOSURE:
            if depth != 4:
                item["doubt"] = True
            else:
                item["events"].append((kind, attrs, None))
        elif kind == _MEDIA:
            if depth == 4 or (depth == 5 and parent == _GROUP):
                item["events"].append((kind, attrs, None))
            else:
                item["doubt"] = True
        elif kind == _GROUP:
            if depth != 4:
                item["doubt"] = True
        elif kind == "pguid":
            if item["pguid"] is not None or attrs:
                item["doubt"] = True
            else:
                text = []
                parser.CharacterDataHandler = collect
                item["pguid"] = (parser.CurrentByteIndex, text)
        elif kind == "doubt":
            item["doubt"] = True

    def end(name: str) -> None:
        nonlocal depth, item, text
        depth -= 1
        if item is None:
            return
        if depth == 2:
            idx = parser.CurrentByteIndex
            item["end"] = idx if item["empty"] else source.index(b">", idx + shift) + 1 - shift
            item = None
            return
        kind = item["path"].pop()
        if text is not None:
            parser.CharacterDataHandler = None
            if kind == "pguid" and item["pguid"] is not None and not item["doubt"]:
                begin = item["pguid"][0] + shift
                raw = source[begin:parser.CurrentByteIndex + shift]
                if b"&#" in raw or b"\r" in raw:
                    item["doubt"] = True
            text = None

    def pi(target: str, pdata: str) -> None:
        if "<" in target or "<" in pdata:
            raise _Unreadable("markup inside a processing instruction")

    def namespace(pfx: str | None, uri: str | None) -> None:
        """feedparser's track_namespace: a global prefix map, never unscoped."""
        nonlocal closed
        if pfx is None or not uri or doc_prefixes.get(pfx) == uri:
            return  # a default namespace changes no handler; a repeat changes nothing
        if seen_items:
            closed = True  # items after this one would be read differently without it
        doc_prefixes[pfx] = uri
        luri = uri.lower()
        std = "" if "backend.userland.com/rss" in luri else match_ns.get(luri)
        if std is not None:
            prefix_map[pfx] = std
        kinds.clear()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.ProcessingInstructionHandler = pi
    parser.StartNamespaceDeclHandler = namespace
    try:
        parser.Parse(prefix, False)
        parser.Parse(memoryview(source)[skip:], True)
    except pyexpat.ExpatError as e:
        raise _Unreadable(f"not well-formed XML ({e})") from None
    if channels != 1:
        raise _Unreadable("not one channel")

    doc_len = len(source) - shift
    header_end = items[0]["start"] if items else doc_len
    tail_start = items[-1]["end"] if items else doc_len
    if not items:
        # no items: the tail is the whole rest, and the "header" is everything
        header_end = tail_start = doc_len

    def fix(s: str) -> str:
        """What feedparser's pop() does to every text it keeps (mis-decoded UTF-8, cp1252)."""
        try:
            s = s.encode("iso-8859-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        return s.translate(_cp1252)

    def attributes(attrs: dict[str, str]) -> dict[str, str] | None:
        out: dict[str, str] = {}
        for k, v in attrs.items():
            if " " in k:
                return None
            lk = k.lower()
            if lk in out:
                return None
            out[lk] = v.lower() if lk in ("rel", "type") else v
        return out

    def replay(it: dict) -> Episode | None:
        """The item's identity as parse_feed would read it; None when unsure."""
        entry = _Entry()
        seen: set[int] = set()
        for kind, attrs, pieces in it["events"]:
            if kind == _LINK:
                a = attributes(attrs)
                if a is None:
                    return None
                a.setdefault("rel", "alternate")
                a.setdefault("type", "application/atom+xml" if a["rel"] == "self"
                             else "text/html")
                href = a.get("url", a.get("uri", a.get("href", None)))
                if href:  # feedparser's _enforce_href
                    a.pop("url", None)
                    a.pop("uri", None)
                    a["href"] = href
                if "href" in a:  # (an empty href="" counts too)
                    a["href"] = _urljoin("", a["href"])
                entry.setdefault("links", [])
                entry["links"].append(a)
                if "href" in a:
                    if a["rel"] == "alternate" and \
                            Mixin.map_content_type(a["type"]) in Mixin.html_types:
                        entry["link"] = a["href"]
                    continue
                value = "".join(pieces).strip()
                if value:
                    value = _urljoin("", value)
                value = fix(value)
                value = value.replace("&amp;", "&")
                value = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", value)
                entry["link"] = value
                if value:
                    entry["links"][-1]["href"] = value
            elif kind in _TEXT_KINDS:
                if kind in seen:
                    return None
                seen.add(kind)
                value = "".join(pieces).strip()
                if kind == _TITLE:
                    if Mixin.looks_like_html(value):
                        return None
                    value = fix(value)
                    entry["title"] = value
                    entry["title_detail"] = {"type": "text/plain", "value": value}
                elif kind == _GUID:
                    a = attributes(attrs)
                    if a is None:
                        return None
                    is_link = a.get("ispermalink", "true") == "true"
                    if is_link and value:
                        value = _urljoin("", value)
                    value = fix(value)
                    entry["id"] = value
                    entry.setdefault("guidislink", is_link and "link" not in entry)
                    if is_link:
                        entry.setdefault("link", value)
                else:  # _DATE
                    value = fix(value)
                    entry["published"] = value
                    entry["published_parsed"] = _parse_date(value)
            elif kind == _ENCLOSURE:
                a = attributes(attrs)
                if a is None:
                    return None
                href = a.get("url", a.get("uri", a.get("href", None)))
                if href:
                    a.pop("url", None)
                    a.pop("uri", None)
                    a["href"] = href
                a["rel"] = "enclosure"
                entry.setdefault("links", []).append(a)
            else:  # _MEDIA
                a = attributes(attrs)
                if a is None:
                    return None
                entry.setdefault("media_content", []).append(a)
        pguid = None
        if it["pguid"] is not None:
            pguid = _clean("".join(it["pguid"][1]))
        enclosure_url, _ = _enclosure(entry, url)
        return Episode(
            title=_text(entry.get("title"), entry.get("title_detail")),
            guid=_clean(entry.get("id")),
            podcast_guid=pguid,
            link=_episode_link(entry, enclosure_url, url),
            published=_published(entry),
            enclosure_url=enclosure_url,
        )

    if items and converted is None and seed is None:
        seed = _cache_seed(source[:items[0]["start"] + shift], url, podcast_prefixes)
    scanned: list[ScannedItem | None] = []
    digests: list[str | None] = []
    unsure: list[int] = []
    for i, it in enumerate(items):
        if i in placeholders:
            scanned.append(ScannedItem(start=it["start"], end=it["end"]))
            digests.append(None)
            continue
        ep = None if it["doubt"] else replay(it)
        if ep is None:
            unsure.append(i)
            scanned.append(ScannedItem(start=it["start"], end=it["end"], exact=False))
            digests.append(None)
        else:
            scanned.append(ScannedItem(
                start=it["start"], end=it["end"], title=ep.title, guid=ep.guid,
                podcast_guid=ep.podcast_guid, link=ep.link, published=ep.published,
                enclosure_url=ep.enclosure_url))
            span = source[it["start"] + shift:it["end"] + shift]
            digests.append(item_digest(span, seed) if seed is not None and b"xmlns" not in span
                           else None)
    if len(unsure) > MAX_FEEDPARSER_ITEMS and len(unsure) * 10 > len(items):
        raise _Unreadable(f"{len(unsure)} of {len(items)} items need feedparser")

    draft = FeedScan(items=tuple(scanned), keys=(), channel=ParsedFeed(title=""),
                     size=len(data), header_end=header_end, tail_start=tail_start,
                     prefix=prefix, skip=skip, converted=converted)
    if parsed is None or parsed.bozo or len(parsed.episodes) != len(items):
        parsed = parse_selected(data, draft, unsure, url=url)
        if parsed.bozo:
            raise _Unreadable("feedparser found the document malformed")
    else:  # the full parse: the very Episodes (and channel) parse_selected would give
        parsed = replace(parsed, episodes=tuple(parsed.episodes[i] for i in unsure))
    for i, ep in zip(unsure, parsed.episodes, strict=True):
        it = items[i]
        scanned[i] = ScannedItem(
            start=it["start"], end=it["end"], title=ep.title, guid=ep.guid,
            podcast_guid=ep.podcast_guid, link=ep.link, published=ep.published,
            enclosure_url=ep.enclosure_url, exact=False)
    channel = replace(parsed, episodes=())
    final = tuple(s for s in scanned if s is not None)
    raw = tuple(frozenset() if i in placeholders else identity_keys(_episode_of(s))
                for i, s in enumerate(final))
    if unsure:
        log.debug("feed %s: pre-scan read %d items, feedparser %d", url or "<bytes>",
                  len(items) - len(unsure), len(unsure))
    return replace(draft, items=final, channel=channel, raw_keys=raw, digests=tuple(digests))


def _episode_of(s: ScannedItem) -> Episode:
    return Episode(title=s.title, guid=s.guid, podcast_guid=s.podcast_guid, link=s.link,
                   published=s.published, enclosure_url=s.enclosure_url)


def _finish(scan: FeedScan) -> FeedScan:
    """`keys`: the raw keys less the show's own link, then less the ambiguous ones; exactly
    `feed_identity_keys` of the full parse."""
    show = scan.channel.link
    drop = f"link:{normalize_url(show)}" if show else None
    keysets = [ks - {drop} if drop in ks else ks for ks in scan.raw_keys]
    keys = _unambiguous(keysets, scan.channel.title, [(s.title, s.guid) for s in scan.items])
    return replace(scan, keys=keys)


# -- unchanged items, known by their bytes ---------------------------------------------------
#
# Between two polls of a changed feed almost every item is byte-for-byte what it was. An item's
# digest is XXH3-128 of its bytes, seeded with everything outside the item that can change how
# those bytes read (the XML declaration, the namespace declarations before the first item, the
# feed URL, feedparser's and this code's versions). The `ItemCache` a poll leaves holds, per
# digest and in document order, the item's length, date and hashed identity keys.
#
# `_scan_known` walks the body's chunks. At each `<item` it first tries the item the cache
# expects next (the one after the last known item): hashing exactly that many bytes either
# gives that digest, and the item is found without a search, or it does not, and the end tag
# is searched for. It builds a much smaller document: the channel, the first item, every item
# not known, and one `<item/>` in place of each run of known items (separated by whitespace
# only). That document goes through the ordinary scan, which both validates it and checks that
# each stand-in sits exactly where an item of the channel belongs; so the known bytes are
# well-formed items in the same place, and no search cut through a CDATA section or comment.
# Keys of the items read are checked for ambiguity against all items (known ones by their key
# hashes). Anything unexpected falls back to the full scan. A known item was recorded with
# every key it has, so it needs no keys now.

CACHE_VERSION = "crier-scan-2"
KNOWN_MIN_BYTES = 256 * 1024   # below this a full scan is as fast
_START_FOLLOW = frozenset(b" \t\r\n>")  # what may follow "<item" in a start tag
_END_REST = re.compile(rb"[ \t\r\n]*>")
_PLACEHOLDER = b"<item/>"
_NO_KEYS: frozenset[str] = frozenset()
_XMLNS_DECL = re.compile(rb"""xmlns(?::[^\s=/>]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_KEY_KINDS = {"guid": 1, "pguid": 2, "enc": 3, "link": 4, "fp": 5}
_LOW56 = (1 << 56) - 1


def key_hash(key: str) -> int:
    """An identity key as 64 bits: its kind in the top byte, 56 bits of XXH3 below."""
    kind = _KEY_KINDS.get(key.split(":", 1)[0], 0)
    return kind << 56 | xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) & _LOW56


class ItemCache:
    """The items of a feed as a poll read them, by digest: each one's publication time and its
    identity keys (as `key_hash`es), for the show link they were read with. Packs to a few
    dozen bytes per item for the state database (`pack` / `unpack`); reads lazily."""

    _MAGIC = b"crier-items-2\n"
    _ENTRY = struct.Struct("<16sdIB")  # digest, published (NaN: none), length, number of keys

    def __init__(self, show_link: str | None = None):
        self.show_link = show_link
        self._blob = b""
        self._index: dict[bytes, int] = {}     # digest → offset of its entry in _blob
        self._added: dict[bytes, bytes] = {}   # digest → packed entry
        self._next: dict[bytes, bytes] | None = None

    @classmethod
    def unpack(cls, blob: bytes | None) -> ItemCache:
        """A cache from `pack()` output; an empty cache for None or anything unreadable."""
        if not blob or not blob.startswith(cls._MAGIC):
            return cls()
        try:
            pos = len(cls._MAGIC)
            (n,) = struct.unpack_from("<H", blob, pos)
            link = blob[pos + 2:pos + 2 + n].decode("utf-8") or None
            pos += 2 + n
            cache = cls(link)
            index, size, entry = cache._index, len(blob), cls._ENTRY
            while pos < size:
                digest, _, _, count = entry.unpack_from(blob, pos)
                index[digest] = pos
                pos += entry.size + 8 * count
            if pos != size:
                return cls()
        except (struct.error, UnicodeDecodeError):
            return cls()
        cache._blob = blob
        return cache

    def add(self, digest: bytes, published: datetime | None, keys: Iterable[str],
            length: int) -> None:
        ts = published.timestamp() if published is not None else math.nan
        hashes = sorted(key_hash(k) for k in keys)
        self._added[digest] = self._ENTRY.pack(digest, ts, length, len(hashes)) + \
            struct.pack(f"<{len(hashes)}Q", *hashes)

    def keep(self, other: ItemCache, digest: bytes) -> None:
        """Carry `digest`'s entry over from another cache."""
        self._added[digest] = other._packed(digest)

    def __contains__(self, digest: object) -> bool:
        return digest in self._index or digest in self._added

    def __len__(self) -> int:
        return len(self._index.keys() | self._added.keys())

    def _packed(self, digest: bytes) -> bytes:
        if digest in self._added:
            return self._added[digest]
        pos = self._index[digest]
        count = self._blob[pos + self._ENTRY.size - 1]
        return self._blob[pos:pos + self._ENTRY.size + 8 * count]

    def _entry(self, digest: bytes) -> tuple[memoryview | bytes, int]:
        if digest in self._added:
            return self._added[digest], 0
        return self._blob, self._index[digest]

    def published(self, digest: bytes) -> datetime | None:
        blob, pos = self._entry(digest)
        ts = self._ENTRY.unpack_from(blob, pos)[1]
        return None if math.isnan(ts) else datetime.fromtimestamp(ts, UTC)

    def key_hashes(self, digest: bytes) -> tuple[int, ...]:
        blob, pos = self._entry(digest)
        count = blob[pos + self._ENTRY.size - 1]
        return struct.unpack_from(f"<{count}Q", blob, pos + self._ENTRY.size)

    def pack(self) -> bytes:
        """The cache as bytes: entries in the order they were added (read order)."""
        link = (self.show_link or "").encode("utf-8")[:65535]
        head = [self._MAGIC, struct.pack("<H", len(link)), link]
        if not self._added:
            return b"".join(head) + self._blob[self._blob_body():]
        return b"".join(head + [self._packed(d) for d in self._index if d not in self._added]
                        + list(self._added.values()))

    def _blob_body(self) -> int:
        return min(self._index.values()) if self._index else len(self._blob)

    def _order(self) -> list[bytes]:
        return list(self._index) + [d for d in self._added if d not in self._index]

    def first(self) -> bytes | None:
        """The digest of the first item (in the order items were added)."""
        return next(iter(self._order()), None)

    def after(self, digest: bytes) -> bytes | None:
        """The digest of the item that followed this one when the cache was written."""
        if self._next is None:
            order = self._order()
            self._next = dict(zip(order, order[1:], strict=False))
        return self._next.get(digest)

    def length(self, digest: bytes) -> int:
        blob, pos = self._entry(digest)
        return self._ENTRY.unpack_from(blob, pos)[2]

    @property
    def blob(self) -> bytes:
        """What `unpack` was given (b"" for a new cache)."""
        return self._blob


def next_item_cache(scan: FeedScan, items: Iterable[int], previous: ItemCache | None
                    ) -> ItemCache:
    """The cache to keep after a poll recorded these `items` (indices into `scan`): items
    already known are carried over; others are added when every identity key they have
    identifies them (an item with an ambiguous key is matched on its keys every time)."""
    show = scan.channel.link
    cache = ItemCache(show)
    drop = f"link:{normalize_url(show)}" if show else None
    for i in items:
        digest = scan.digests[i] if i < len(scan.digests) else None
        if digest is None:
            continue
        if scan.items[i].known:
            if previous is not None and digest in previous:
                cache.keep(previous, digest)
            continue
        keys = scan.raw_keys[i] - {drop}
        if keys and keys == scan.keys[i]:
            item = scan.items[i]
            cache.add(digest, item.published, keys, item.end - item.start)
    return cache


def item_digest(span: bytes, seed: int) -> bytes:
    return xxhash.xxh3_128_digest(span, seed=seed)


def _podcast_prefixes(data, encoding: str) -> set[str]:
    """crier's own podcast:guid reading (`_scan`) knows a prefix by the first 20000 chars."""
    try:
        head = data[:80000].decode(encoding, "replace")[:20000]
    except LookupError:
        head = data[:80000].decode("utf-8", "replace")[:20000]
    return {"podcast"} | {p.lower() for p, _, uri in _XMLNS.findall(head)
                          if uri.strip().lower() in PODCAST_NAMESPACES}


def _cache_seed(header: bytes, url: str | None, podcast_prefixes: set[str]) -> int:
    decl = _XML_DECLARATION.match(header)
    context = (CACHE_VERSION, feedparser.__version__, url or "",
               decl.group(0) if decl else b"", sorted(set(_XMLNS_DECL.findall(header))),
               sorted(podcast_prefixes))
    return xxhash.xxh3_64_intdigest(repr(context).encode())


SCAN_CHUNK = 256 * 1024  # read a spooled body in pieces this big (little memory, few calls)


def _chunks(data) -> Iterable[bytes | memoryview]:
    return (data,) if isinstance(data, bytes | bytearray | memoryview) \
        else data.chunks(SCAN_CHUNK)


def _scan_known(data, url: str | None, known: ItemCache) -> FeedScan:
    head = data[:80000]
    if head[:3] == b"\xef\xbb\xbf" or b"\x00" in head[:4]:
        raise _Unreadable("byte order mark or a wide encoding")
    from feedparser.encodings import RE_XML_PI_ENCODING
    m = RE_XML_PI_ENCODING.match(head)
    if m and m.group(1).decode("utf-8", "replace").lower() not in ("utf-8", "utf8"):
        raise _Unreadable("not declared UTF-8")
    podcast_prefixes = _podcast_prefixes(head, "utf-8")

    pieces: list[bytes] = []
    spans: list[tuple[int, int]] = []          # body offsets of each item
    digests: list[bytes | None] = []
    slot: list[int] = []                       # item → its item in the skeleton
    at: list[int] = []                         # skeleton item → its skeleton offset
    stand_ins: list[int] = []                  # skeleton items that stand in for known ones
    seed: int | None = None
    built = 0                                  # skeleton length so far
    buf, base = b"", 0                         # buf holds body[base:base + len(buf)]
    emitted, scan_from, open_at = 0, 0, None   # body offsets
    gap = b""                                  # the bytes before the open item
    expect = known.first()                     # the known item likely to come next
    run = False                                # the skeleton ends with a stand-in

    def emit(piece: bytes) -> None:
        nonlocal built
        pieces.append(piece)
        built += len(piece)

    def close(start: int, end: int, digest: bytes | None = None) -> None:
        """The open item is buf[start:end]: hash it, and put it (or a stand-in) in."""
        nonlocal emitted, open_at, expect, run
        if digest is None:
            digest = item_digest(view[start:end], seed)
        if digest not in known and buf.find(b"xmlns", start, end) >= 0:
            digest = None  # (a known digest is of an item without namespace declarations)
        i = len(spans)
        spans.append((base + start, base + end))
        digests.append(digest)
        if i > 0 and digest in known:
            expect = known.after(digest)
            if not (run and not gap.strip()):  # a run of known items is one stand-in
                emit(gap)
                stand_ins.append(len(at))
                at.append(built)
                emit(_PLACEHOLDER)
                run = True
        else:
            if digest is not None and digest in known:
                expect = known.after(digest)
            emit(gap)
            at.append(built)
            emit(buf[start:end])
            run = False
        slot.append(len(at) - 1)
        emitted, open_at = base + end, None

    for chunk in _chunks(data):
        buf = buf + chunk if buf else bytes(chunk)
        view = memoryview(buf)
        pos = scan_from - base
        while True:
            if open_at is None:  # looking for "<item" + whitespace or ">"
                pos = buf.find(b"<item", pos)
                if pos < 0 or pos + 5 >= len(buf):
                    pos = len(buf) - 5 if pos < 0 else pos
                    break
                if buf[pos + 5] not in _START_FOLLOW:
                    pos += 5
                    continue
                open_at = base + pos
                gap = buf[emitted - base:pos]
                if seed is None:
                    seed = _cache_seed(gap, url, podcast_prefixes)
                # the item the cache says comes next, checked by its digest: no search
                if expect is not None:
                    end = pos + known.length(expect)
                    if end <= len(buf) and buf[end - 1] == 0x3E and \
                            item_digest(view[pos:end], seed) == expect:
                        close(pos, end, expect)
                        pos = end
                        continue
                pos += 6
            else:  # looking for "</item" + optional whitespace + ">"
                pos = buf.find(b"</item", pos)
                if pos < 0:
                    pos = len(buf) - 6
                    break
                end_tag = _END_REST.match(buf, pos + 6)
                if end_tag is None:
                    if len(buf) - pos < 64:  # maybe cut at the chunk's end
                        break
                    pos += 6
                    continue
                close(open_at - base, end_tag.end())
                pos = end_tag.end()
        scan_from = max(base + max(pos, 0), emitted)
        view.release()
        buf, base = buf[emitted - base:], emitted
    if open_at is not None or not spans:
        raise _Unreadable("no items, or an item left open")
    emit(buf)  # the tail
    skeleton = b"".join(pieces)
    pieces.clear()
    buf = b""
    placeholders = frozenset(stand_ins)
    sk = _scan_feed(skeleton, url, placeholders=placeholders, podcast_prefixes=podcast_prefixes,
                    seed=seed)
    if sk.converted is not None or len(sk.items) != len(at):
        raise _Unreadable("the items are not where the byte search found them")
    to_doc = len(sk.prefix) - sk.skip  # document offset = body offset + to_doc
    for j, item in enumerate(sk.items):
        if item.start != at[j] + to_doc:
            raise _Unreadable("the items are not where the byte search found them")
    if sk.channel.link != known.show_link:
        raise _Unreadable("the show's link changed since the items were cached")
    items: list[ScannedItem] = []
    kept: list[bytes | None] = []
    hashes: list[bytes | None] = []  # known items: their digest (for their key hashes)
    raw: list[frozenset[str]] = []
    for i, j in enumerate(slot):
        start, end = spans[i][0] + to_doc, spans[i][1] + to_doc
        if j in placeholders:
            items.append(ScannedItem(start=start, end=end, known=True,
                                     published=known.published(digests[i])))
            kept.append(digests[i])
            hashes.append(digests[i])
            raw.append(_NO_KEYS)
        else:
            items.append(sk.items[j]._replace(start=start, end=end))
            kept.append(sk.digests[j])
            hashes.append(None)
            raw.append(sk.raw_keys[j])
    show = sk.channel.link
    drop = f"link:{normalize_url(show)}" if show else None
    keys = _unambiguous_with_known(
        [None if h is not None else (ks - {drop} if drop in ks else ks)
         for ks, h in zip(raw, hashes, strict=True)],
        [None if h is None else functools.partial(known.key_hashes, h) for h in hashes],
        sk.channel.title, items)
    return replace(sk, items=tuple(items), keys=keys, raw_keys=tuple(raw),
                   digests=tuple(kept), size=len(data), header_end=spans[0][0] + to_doc,
                   tail_start=spans[-1][1] + to_doc, reused=sum(it.known for it in items))


def _unambiguous_with_known(keysets: list[frozenset[str] | None],
                            known: list[Callable[[], tuple[int, ...]] | None], feed_title: str,
                            items: list[ScannedItem]) -> tuple[frozenset[str], ...]:
    """`_unambiguous` where known items come as key hashes (`keysets[i]` None, `known[i]`
    gives them): the keys of the items read this time, less the ones other items (read or
    known) hold that are clearly different episodes; known items get no keys (they need
    none)."""
    hashed = [None if ks is None else {key_hash(k): k for k in ks} for ks in keysets]
    wanted = {h for hs in hashed if hs for h in hs}
    holders: dict[int, list[int]] = defaultdict(list)
    sets: dict[int, Iterable[int]] = {}  # the key hashes of the items holding a wanted key
    for i, hs in enumerate(hashed):
        owned = hs.keys() if hs is not None else known[i]()
        for h in owned:
            if h in wanted:
                holders[h].append(i)
                sets[i] = owned

    def different(idx: list[int]) -> bool:
        for kind in (_KEY_KINDS["enc"], _KEY_KINDS["fp"]):
            if len({h for i in idx for h in sets[i] if h >> 56 == kind}) > 1:
                return True
        return False

    ambiguous = {h for h, idx in holders.items() if len(idx) > 1 and different(idx)}
    if ambiguous:
        log.info("feed %r: %d identity key(s) shared by different episodes are ignored: %s",
                 feed_title, len(ambiguous),
                 ", ".join(sorted(k for hs in hashed if hs for h, k in hs.items()
                                  if h in ambiguous)[:5]))
    out: list[frozenset[str]] = []
    for hs, item in zip(hashed, items, strict=True):
        if hs is None:
            out.append(_NO_KEYS)
            continue
        kept = frozenset(k for h, k in hs.items() if h not in ambiguous)
        if not kept and hs:
            log.warning("episode %r (guid %r): every identity key is shared with another "
                        "episode; keeping them all", item.title, item.guid)
            kept = frozenset(hs.values())
        out.append(kept)
    return tuple(out)


# -- identity -----------------------------------------------------------------------------------

def normalize_url(url: str, *, enclosure: bool = False) -> str:
    """A URL reduced to what identifies the thing it points to (for comparing, not fetching).

    Lowercase scheme and host, http == https (always written https), no default port, no
    fragment, no trailing slash, tracking redirect prefixes (Podtrac, Chartable, Podsights,
    OP3, ...) unwound to the real URL, utm_* and similar campaign parameters dropped. With
    `enclosure=True` the whole query is dropped from media-file URLs ("ep.mp3?updated=123"):
    hosts vary it between fetches. A query that may select the file ("download.php?id=7") is
    kept. Anything that is not an absolute http(s) URL comes back stripped but otherwise as is.
    """
    return _normalize_url(url, enclosure)


@functools.lru_cache(maxsize=16384)  # a poll of a big feed asks for each URL several times
def _normalize_url(url: str, enclosure: bool) -> str:
    raw = url.strip()
    plain = _PLAIN_URL.match(raw)
    if plain and not _ANY_TRACKING_PREFIX.match(raw, plain.start(1)):
        # scheme://host/path and nothing else: what the general case below computes
        return f"https://{plain.group(2).lower().rstrip('.')}{(plain.group(3) or '').rstrip('/')}"
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return raw
    rest = parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
    unwound = False
    for _ in range(10 if _ANY_TRACKING_PREFIX.match(rest) else 0):  # chains: podtrac →
        for prefix in TRACKING_PREFIXES:                            # chartable → the file
            m = prefix.match(rest)
            if m and _looks_like_host_path(rest[m.end():]):
                rest = re.sub(r"^https?://", "", rest[m.end():], flags=re.IGNORECASE)
                unwound = True
                break
        else:
            break
    try:
        if unwound:  # (otherwise splitting "https://" + rest gives the same parts again)
            parts = urlsplit(f"https://{rest}")
        port = parts.port
    except ValueError:
        return raw
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.username is not None or parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[0] + "@" + host
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if not TRACKING_PARAMS.match(k)] if parts.query else []
    if enclosure and _extension(path) in MEDIA_EXTENSIONS:
        params = []
    return urlunsplit(("https", host, path, urlencode(params) if params else "", ""))


def untracked_url(url: str) -> str:
    """url without the download trackers' redirect prefixes chained in front of it
    ("https://dts.podtrac.com/redirect.mp3/chrt.fm/track/X/traffic.host/a.mp3" is
    "https://traffic.host/a.mp3"), otherwise as it is: the URL to show a reader."""
    raw = url.strip()
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https") \
            or not _ANY_TRACKING_PREFIX.match(rest):
        return url
    for _ in range(10):  # chains: podtrac → chartable → the file
        for prefix in TRACKING_PREFIXES:
            m = prefix.match(rest)
            if m and _looks_like_host_path(rest[m.end():]):
                inner = rest[m.end():]
                if re.match(r"https?://", inner, re.IGNORECASE):
                    scheme, _, rest = inner.partition("://")
                else:
                    rest = inner
                break
        else:
            break
    return f"{scheme}://{rest}"


def identity_keys(ep: Episode, *, show_link: str | None = None) -> frozenset[str]:
    """Every key that identifies this episode; two items are the same episode if any matches.

    "guid:<item guid>", "pguid:<podcast:guid>", "enc:<normalized enclosure URL>",
    "link:<normalized link>" (only when it is not the show's own page, `show_link`),
    "fp:<sha1 of casefolded title | YYYY-MM-DD>" (only with both a title and a date).
    """
    keys: set[str] = set()
    if ep.guid and ep.guid.strip():
        keys.add(f"guid:{ep.guid.strip()}")
    if ep.podcast_guid and ep.podcast_guid.strip():
        keys.add(f"pguid:{ep.podcast_guid.strip().lower()}")
    if ep.enclosure_url:
        keys.add(f"enc:{normalize_url(ep.enclosure_url, enclosure=True)}")
    if ep.link:
        link = normalize_url(ep.link)
        if not show_link or link != normalize_url(show_link):
            keys.add(f"link:{link}")
    if fp := fingerprint(ep):
        keys.add(f"fp:{fp}")
    return frozenset(keys)


def fingerprint(ep: Episode) -> str | None:
    """sha1 of the casefolded, whitespace-collapsed title and the UTC publication date."""
    title = " ".join(ep.title.casefold().split())
    if not title or ep.published is None:
        return None
    day = ep.published.astimezone(UTC).date().isoformat()
    return hashlib.sha1(f"{title}|{day}".encode()).hexdigest()


def feed_identity_keys(feed: ParsedFeed) -> tuple[frozenset[str], ...]:
    """`identity_keys` for each episode of a feed, minus the keys that identify nothing.

    A key carried by items that are clearly different episodes (different enclosures, or
    different title+date) is dropped from every item: a GUID the publisher reused, a link every
    item shares, one placeholder MP3 behind several titles. Items that are the same episode
    listed twice keep their shared keys, so they still match each other. An item whose every
    key is ambiguous keeps them all (it would otherwise be unmatchable, and new on every poll).
    """
    keysets = [identity_keys(ep, show_link=feed.link) for ep in feed.episodes]
    return _unambiguous(keysets, feed.title, [(ep.title, ep.guid) for ep in feed.episodes])


def _unambiguous(keysets: list[frozenset[str]], feed_title: str,
                 labels: list[tuple[str, str | None]]) -> tuple[frozenset[str], ...]:
    holders: dict[str, list[int]] = defaultdict(list)
    for i, ks in enumerate(keysets):
        for k in ks:
            holders[k].append(i)
    ambiguous = {key for key, idx in holders.items()
                 if len(idx) > 1 and _different_episodes([keysets[i] for i in idx])}
    if ambiguous:
        log.info("feed %r: %d identity key(s) shared by different episodes are ignored: %s",
                 feed_title, len(ambiguous), ", ".join(sorted(ambiguous)[:5]))
    out = []
    for (title, guid), ks in zip(labels, keysets, strict=True):
        kept = ks - ambiguous
        if not kept:
            log.warning("episode %r (guid %r): every identity key is shared with another "
                        "episode; keeping them all", title, guid)
            kept = ks
        out.append(kept)
    return tuple(out)


def _different_episodes(keysets: list[frozenset[str]]) -> bool:
    """Do these items include two that are clearly not the same episode?"""
    for kind in ("enc:", "fp:"):
        if len({k for ks in keysets for k in ks if k.startswith(kind)}) > 1:
            return True
    return False


# -- small helpers ------------------------------------------------------------------------------

def _looks_like_host_path(rest: str) -> bool:
    rest = re.sub(r"^https?://", "", rest, flags=re.IGNORECASE)
    host = rest.split("/", 1)[0]
    return "." in host and re.fullmatch(r"[A-Za-z0-9.:@%_-]+", host) is not None


def _split(url: str) -> SplitResult | None:
    """urlsplit, or None for what it refuses (a feed's "https://[bad/ep"): feeds are input."""
    try:
        return urlsplit(url)
    except ValueError:
        return None


def _extension(url: str) -> str:
    parts = _split(url) if "://" in url else None
    path = parts.path if parts is not None else url.split("?", 1)[0]
    last = unquote(path).rstrip("/").rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _is_web(url: str | None) -> bool:
    parts = _split(url) if url else None
    return parts is not None and parts.scheme.lower() in ("http", "https") \
        and bool(parts.netloc)


def _absolute(url: str | None, base: str | None) -> str | None:
    parts = _split(url) if url and base else None
    if parts is None or parts.scheme:
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _text(value: object, detail: Mapping[str, Any] | None) -> str:
    """A title as plain text: feedparser keeps markup when it thinks the title is HTML (it is
    sanitized here as feedparser would have: parse_feed turns that off for show notes).
    Invisible and deceptive characters and undefined entities ("&lol9;") are removed."""
    if not isinstance(value, str):
        return ""
    kind = (_get(detail, "type") or "").lower()
    if len(value) > MAX_TITLE:  # (a hostile 10 MB title would take a minute to sanitize)
        value = value[:MAX_TITLE]
        if kind in HTML_TYPES and value.rfind("<") > value.rfind(">"):
            value = value[:value.rfind("<")]  # not half a tag
    if kind in HTML_TYPES:
        value = html_to_text(_sanitized(value, kind))
    value = _UNDEFINED_ENTITY.sub(lambda m: "" if m.group(1) not in html.entities.html5
                                  else m.group(), value) if "&" in value else value
    return " ".join(plaintext.clean(value).split())


# characters of a title read at most: no real one comes near, and the work stays bounded
MAX_TITLE = 20_000
# a named reference left as text (XML would have refused it; feedparser's loose parser keeps
# it): "&lol9;", from entity declarations that are never expanded
_UNDEFINED_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]{0,40};)")


def _sanitized(value: str, kind: str) -> str:
    """What feedparser's pop() makes of an HTML title (relative URIs resolved, then
    sanitized), for the same text as before parse_feed turned that off."""
    from feedparser.sanitizer import _sanitize_html
    from feedparser.urls import resolve_relative_uris
    return _sanitize_html(resolve_relative_uris(value, "", "utf-8", kind), "utf-8", kind)


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment, entities decoded, whitespace kept as found."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.chunks)


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                         "blockquote", "tr", "section", "article"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BREAKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
