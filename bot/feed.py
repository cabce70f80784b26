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

Public: `parse_feed`, `parse_duration`, `normalize_url`, `identity_keys`, `fingerprint`,
`feed_identity_keys`, `html_to_text`.
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit
from xml.sax import SAXParseException

import feedparser

from bot.errors import ParseError
from bot.models import Episode, ParsedFeed, Person

log = logging.getLogger(__name__)

# Podcasting 2.0 namespace URIs (the current one and the spec's original GitHub address).
# https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md
PODCAST_NAMESPACES = frozenset({
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
})
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
    result = feedparser.parse(io.BytesIO(data))
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

    episodes = tuple(_episode(entry, item, scan.persons, url)
                     for entry, item in zip(entries, items, strict=True))
    image = scan.image or _get(channel, "image", "href")
    return ParsedFeed(
        title=_text(channel.get("title"), channel.get("title_detail")),
        link=_absolute(_clean(channel.get("link")), url),
        language=_clean(channel.get("language")),
        image=_absolute(_clean(image), url),
        episodes=episodes,
        bozo=bozo,
        bozo_message=bozo_message,
        new_feed_url=new_feed_url,
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
             channel_persons: tuple[Person, ...], base: str | None) -> Episode:
    enclosure_url, enclosure_type = _enclosure(entry, base)
    persons = item.persons if item and item.persons else channel_persons
    return Episode(
        title=_text(entry.get("title"), entry.get("title_detail")),
        guid=_clean(entry.get("id")),
        podcast_guid=item.podcast_guid if item else None,
        link=_episode_link(entry, enclosure_url, base),
        published=_published(entry),
        summary_html=_summary_html(entry),
        enclosure_url=enclosure_url,
        enclosure_type=enclosure_type,
        image=_episode_image(entry, base),
        duration=parse_duration(_str(entry.get("itunes_duration"))),
        season=_positive_int(entry.get("itunes_season")),
        number=_positive_int(entry.get("itunes_episode")),
        episode_type=_episode_type(entry.get("itunes_episodetype")),
        persons=persons,
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
    """content:encoded (or Atom HTML content) first, else description/summary. Plain text is
    escaped, so the result is always HTML."""
    contents = list(entry.get("content") or [])
    for c in contents:
        if (c.get("type") or "").lower() in HTML_TYPES and (c.get("value") or "").strip():
            return c["value"].strip()
    summary = entry.get("summary")
    if summary and summary.strip():
        kind = (_get(entry, "summary_detail", "type") or "text/html").lower()
        return summary.strip() if kind in HTML_TYPES else html.escape(summary.strip())
    for c in contents:
        if (c.get("value") or "").strip():
            return html.escape(c["value"].strip())
    return ""


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


@dataclass(frozen=True)
class _Scan:
    items: tuple[_ScannedItem, ...]
    persons: tuple[Person, ...]       # channel-level podcast:person
    image: str | None                 # channel-level itunes:image href


_HIDDEN = re.compile(r"<!\[CDATA\[(.*?)\]\]>|<!--.*?-->", re.DOTALL)
_ITEM = re.compile(r"<(item|entry)\b[^>]*?(?:/>|>(.*?)(?:</\1\s*>|\Z))",
                   re.DOTALL | re.IGNORECASE)
_XMLNS = re.compile(r"""\bxmlns:([A-Za-z_][\w.-]*)\s*=\s*(["'])(.*?)\2""", re.DOTALL)
_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _scan(data: bytes, encoding: str | None) -> _Scan:
    """Find podcast:person, item podcast:guid and the channel itunes:image in the raw text.

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
    for prefix, _, uri in _XMLNS.findall(text[:20000]):
        uri = uri.strip().lower()
        if uri in PODCAST_NAMESPACES:
            podcast.add(prefix)
        elif uri in ITUNES_NAMESPACES:
            itunes.add(prefix)
    text = _HIDDEN.sub(lambda m: html.escape(m.group(1)) if m.group(1) is not None else "", text)
    pp = "|".join(re.escape(p) for p in sorted(podcast))
    ip = "|".join(re.escape(p) for p in sorted(itunes))
    person_re = re.compile(rf"<({pp}):person\b([^>]*?)(?<!/)>(.*?)</\1:person\s*>",
                           re.DOTALL | re.IGNORECASE)
    guid_re = re.compile(rf"<({pp}):guid\b[^>]*?(?<!/)>(.*?)</\1:guid\s*>",
                         re.DOTALL | re.IGNORECASE)
    live_re = re.compile(rf"<({pp}):liveItem\b.*?</\1:liveItem\s*>", re.DOTALL | re.IGNORECASE)
    image_re = re.compile(rf"<(?:{ip}):image\b([^>]*)>", re.IGNORECASE)

    items: list[_ScannedItem] = []
    outside: list[str] = []
    pos = 0
    for m in _ITEM.finditer(text):
        outside.append(text[pos:m.start()])
        pos = m.end()
        body = m.group(2) or ""
        guid = guid_re.search(body)
        items.append(_ScannedItem(
            persons=_persons(person_re.finditer(body)),
            podcast_guid=_clean(html.unescape(guid.group(2))) if guid else None,
        ))
    outside.append(text[pos:])
    channel = live_re.sub("", "".join(outside))
    image = None
    for m in image_re.finditer(channel):
        attrs = _attrs(m.group(1))
        image = _clean(attrs.get("href") or attrs.get("url"))
        if image:
            break
    return _Scan(items=tuple(items), persons=_persons(person_re.finditer(channel)), image=image)


def _persons(matches: Iterable[re.Match[str]]) -> tuple[Person, ...]:
    out: list[Person] = []
    for m in matches:
        attrs = _attrs(m.group(2))
        name = " ".join(html.unescape(re.sub(r"<[^>]*>", "", m.group(3))).split())
        if not name:
            continue
        role = " ".join((attrs.get("role") or "").split()).lower() or DEFAULT_PERSON_ROLE
        out.append(Person(name=name, role=role, href=_clean(attrs.get("href"))))
    return tuple(out)


def _attrs(text: str) -> dict[str, str]:
    return {k.lower(): html.unescape(dq or sq) for k, dq, sq in _ATTR.findall(text)}


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
    raw = url.strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return raw
    rest = parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
    for _ in range(10):  # chains: podtrac → chartable → podsights → the file
        for prefix in TRACKING_PREFIXES:
            m = prefix.match(rest)
            if m and _looks_like_host_path(rest[m.end():]):
                rest = re.sub(r"^https?://", "", rest[m.end():], flags=re.IGNORECASE)
                break
        else:
            break
    try:
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
              if not TRACKING_PARAMS.match(k)]
    if enclosure and _extension(path) in MEDIA_EXTENSIONS:
        params = []
    return urlunsplit(("https", host, path, urlencode(params) if params else "", ""))


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
    holders: dict[str, list[int]] = defaultdict(list)
    for i, ks in enumerate(keysets):
        for k in ks:
            holders[k].append(i)
    ambiguous = {key for key, idx in holders.items()
                 if len(idx) > 1 and _different_episodes([keysets[i] for i in idx])}
    if ambiguous:
        log.info("feed %r: %d identity key(s) shared by different episodes are ignored: %s",
                 feed.title, len(ambiguous), ", ".join(sorted(ambiguous)[:5]))
    out = []
    for ep, ks in zip(feed.episodes, keysets, strict=True):
        kept = ks - ambiguous
        if not kept:
            log.warning("episode %r (guid %r): every identity key is shared with another "
                        "episode; keeping them all", ep.title, ep.guid)
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


def _extension(url: str) -> str:
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    last = unquote(path).rstrip("/").rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _is_web(url: str | None) -> bool:
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _absolute(url: str | None, base: str | None) -> str | None:
    if not url or not base or urlsplit(url).scheme:
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
    """A title as plain text: feedparser keeps markup when it thinks the title is HTML."""
    if not isinstance(value, str):
        return ""
    if (_get(detail, "type") or "").lower() in HTML_TYPES:
        value = html_to_text(value)
    return " ".join(value.split())


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
