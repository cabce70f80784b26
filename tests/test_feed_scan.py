"""bot.feed.scan_feed / parse_selected: the pre-scan agrees with the full parse, exactly.

For every feed in the shared test data (top level, podcastparser/, feedparser-conformance/)
and for generated feeds: either the scan gives the very identity keys `feed_identity_keys(
parse_feed(data))` gives, item fields equal to the full parse's, and `parse_selected` gives
Episodes equal (==) to the full parse's for the chosen items and the same channel fields; or
the scan says None and the poll's fallback (a full parse) gives the full-parse result.
"""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.feed
from bot.errors import ParseError
from bot.feed import (
    FeedScan,
    ItemCache,
    feed_identity_keys,
    next_item_cache,
    parse_feed,
    parse_selected,
    scan_feed,
)
from bot.models import ParsedFeed
from bot.service import _FeedItems
from tests.conftest import SHARED
from tests.feedgen import item, rss

FEEDS = SHARED / "feeds"
SUFFIXES = (".xml", ".rss", ".atom", ".rdf")
# A missing shared folder must fail, not silently collect nothing (the fixture says where).
FEED_FILES = sorted(str(p.relative_to(FEEDS)) for p in FEEDS.rglob("*")
                    if p.is_file() and p.suffix in SUFFIXES) if FEEDS.is_dir() \
    else ["<shared testdata missing>"]


@functools.cache
def full(name: str) -> ParsedFeed | None:
    try:
        return parse_feed((FEEDS / name).read_bytes(), url=f"https://example.com/f/{name}")
    except ParseError:
        return None


def channel_fields(p: ParsedFeed) -> tuple:
    return (p.title, p.link, p.language, p.image, p.bozo, p.bozo_message, p.new_feed_url)


def assert_agrees(data: bytes, url: str | None, expected: ParsedFeed | None,
                  scan: FeedScan | None, *, picks: int = 3) -> None:
    """The scan (or, when it says None, the poll's fallback) agrees with the full parse."""
    if scan is None:
        if expected is None:
            with pytest.raises(ParseError):
                _FeedItems.read(data, url, scan=True)
            return
        fallback = _FeedItems.read(data, url, scan=True)
        assert fallback.scan is None
        assert fallback.keys == feed_identity_keys(expected)
        assert fallback.episodes(list(range(len(expected.episodes)))) == \
            dict(enumerate(expected.episodes))
        assert channel_fields(fallback.channel) == channel_fields(expected)
        return
    assert expected is not None, "the scan read a document parse_feed refuses"
    eps = expected.episodes
    assert scan.keys == feed_identity_keys(expected)
    assert len(scan.items) == len(eps)
    for it, ep in zip(scan.items, eps, strict=True):
        assert (it.title, it.guid, it.podcast_guid, it.link, it.published, it.enclosure_url) \
            == (ep.title, ep.guid, ep.podcast_guid, ep.link, ep.published, ep.enclosure_url)
    assert channel_fields(scan.channel) == channel_fields(expected)
    n = len(eps)
    rng = random.Random(n)
    for chosen in ([], [0], [n - 1], sorted(rng.sample(range(n), min(picks, n))),
                   list(range(n)) if n <= 40 else [n // 2]):
        chosen = [i for i in chosen if 0 <= i < n]
        got = parse_selected(data, scan, chosen, url=url)
        assert got.episodes == tuple(eps[i] for i in chosen)
        assert channel_fields(got) == channel_fields(expected)


# -- every feed of the shared test data ------------------------------------------------------

def test_the_shared_feeds_are_all_here(shared: Path):
    assert len(FEED_FILES) > 150
    assert {"podcastparser", "feedparser-conformance"} <= {n.split("/")[0] for n in FEED_FILES}


@pytest.mark.parametrize("name", FEED_FILES)
def test_scan_agrees_with_the_full_parse(shared: Path, name: str):
    data = (shared / "feeds" / name).read_bytes()
    url = f"https://example.com/f/{name}"
    assert_agrees(data, url, full(name), scan_feed(data, url=url))


@pytest.mark.parametrize("name", FEED_FILES)
def test_a_scan_given_the_full_parse_is_the_scan_alone(shared: Path, name: str, monkeypatch):
    """A first run hands the scan its full parse (no second feedparser run): the scan is
    the same as the one that runs feedparser itself (items, keys, digests; the channel's
    fields that keys and the item cache read), or the same None."""
    data = (shared / "feeds" / name).read_bytes()
    url = f"https://example.com/f/{name}"
    expected = full(name)
    alone = scan_feed(data, url=url)
    calls: list[int] = []
    real = bot.feed.parse_selected
    monkeypatch.setattr(bot.feed, "parse_selected",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    given = scan_feed(data, url=url, parsed=expected) if expected is not None else None
    if alone is None or given is None:
        assert alone is None and given is None
        return
    if not expected.bozo and len(expected.episodes) == len(alone.items):
        assert calls == []  # feedparser did not run again
    assert (given.items, given.keys, given.raw_keys, given.digests) == \
        (alone.items, alone.keys, alone.raw_keys, alone.digests)
    assert (given.channel.link, given.channel.title) == (alone.channel.link, alone.channel.title)


def test_the_big_real_feeds_are_scanned_not_parsed(shared: Path):
    """The fast path is not a rarity: real hosts' feeds are read by the scanner itself."""
    for name in ("giantbomb-podcast.rss", "simplecast_critical-role_2026-07-21.xml",
                 "megaphone_critrole-sagas_2026-07-21.xml", "libsyn_accidental-tech-podcast.rss",
                 "podbean_critrole-geek-and-sundry_2019-04-05.xml", "simplecast_serial.rss"):
        scan = scan_feed((shared / "feeds" / name).read_bytes())
        assert scan is not None, name
        assert sum(it.exact for it in scan.items) >= 0.9 * len(scan.items), name


def test_megaphone_pair_two_new_items_found_by_keys(shared: Path):
    """The README's pair: a week later, two new GUIDs; the scan's keys tell which."""
    old = scan_feed((shared / "feeds" / "megaphone_critrole-sagas_2026-07-14.xml").read_bytes())
    data = (shared / "feeds" / "megaphone_critrole-sagas_2026-07-21.xml").read_bytes()
    new = scan_feed(data)
    known = {k for ks in old.keys for k in ks}
    fresh = [i for i, ks in enumerate(new.keys) if not ks & known]
    assert {new.items[i].guid for i in fresh} == {"98a048f4-1bad-11f1-9e67-ef2ccb7e1bb0",
                                                  "cf98a932-808e-11f1-9c0c-8344e0b51cca"}
    full_eps = parse_feed(data).episodes
    assert parse_selected(data, new, fresh).episodes == tuple(full_eps[i] for i in fresh)


# -- documents the scan must refuse ----------------------------------------------------------

BASE = rss([item(n) for n in range(1, 4)])


@pytest.mark.parametrize("doc", [
    BASE.replace(b"</channel>", b"<oops></channel>"),                      # malformed
    BASE.replace(b"<rss ", b"<!DOCTYPE rss [<!ENTITY x 'y'>]>\n<rss "),    # DOCTYPE
    BASE.replace(b"UTF-8", b"ISO-8859-1") + "é".encode(),                  # wrong encoding
    b"<html><body>Maintenance</body></html>",
    b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
    b"<entry><id>1</id><title>a</title></entry></feed>",                   # Atom: full parse
    BASE.replace(b"<channel>", b'<channel xml:base="https://x.example/">'),
    BASE.replace(b"</item>\n<item>", b"</item><language>de</language><item>", 1),
    b"",
])
def test_documents_the_scan_leaves_to_the_full_parse(doc: bytes):
    assert scan_feed(doc) is None
    try:
        expected = parse_feed(doc)
    except ParseError:
        expected = None
    assert_agrees(doc, None, expected, None)


def test_an_item_it_cannot_read_alone_is_read_by_feedparser():
    """An HTML-looking title, dc:date, a second title: feedparser reads that item."""
    doc = rss([item(n) for n in range(1, 6)]).replace(
        b"<title>Episode 3", b"<title>Episode 3 &lt;b&gt;bold&lt;/b&gt;").replace(
        b"<itunes:duration>", b"<dc:date>2020-01-01T00:00:00Z</dc:date><itunes:duration>", 1
    ).replace(b"<rss ", b'<rss xmlns:dc="http://purl.org/dc/elements/1.1/" ')
    scan = scan_feed(doc)
    assert scan is not None
    assert [it.exact for it in scan.items].count(False) == 2
    # ...and a namespace first declared inside an item: items after it read differently
    late = doc.replace(b'<rss xmlns:dc="http://purl.org/dc/elements/1.1/" ', b"<rss ").replace(
        b"<dc:date>", b"<dc:date xmlns:dc='http://purl.org/dc/elements/1.1/'>")
    assert scan_feed(late) is None
    assert_agrees(doc, None, parse_feed(doc), scan)


def test_parse_selected_refuses_other_bytes_and_bad_indices():
    scan = scan_feed(BASE)
    with pytest.raises(ValueError):
        parse_selected(BASE + b" ", scan, [0])
    with pytest.raises(IndexError):
        parse_selected(BASE, scan, [3])


# -- generated feeds ---------------------------------------------------------------------------

TITLES = st.sampled_from([
    "Plain title", "Tom &amp; Jerry", "  spaced\n\ttitle  ", "<![CDATA[A <b>bold</b> move]]>",
    "Caf\u00e9 cr\u00e8me", "CafÃ© (mis-decoded)", "&lt;i&gt;tag&lt;/i&gt;", "",
    "Quote &quot;x&quot; &#233;t&#xE9;", "Price \u0080 \u0099", "A &amp;amp; B",
])
DATES = st.sampled_from([
    "Mon, 03 Jan 2000 10:00:00 +0000", "Tue, 4 Feb 2020 09:00:00 GMT", "2021-05-06T07:08:09Z",
    "2021-05-06", "not a date", "", "Wed, 31 Dec 1969 23:59:59 -0500", "Sun, 30 Feb 2020 10:00 EST",
])
URLS = st.sampled_from([
    "https://example.com/ep/1", "/relative/ep", "HTTP://Example.COM:443/a/", "ep.mp3",
    "https://dts.podtrac.com/redirect.mp3/cdn.example.com/a.mp3?x=1&amp;utm_source=y",
    "  https://example.com/space  ", "", "urn:uuid:1234", "https://example.com/ep#frag",
])


@st.composite
def items(draw, n: int) -> str:
    parts = []
    for i in range(n):
        els = []
        if draw(st.booleans()):
            els.append(f"<title>{draw(TITLES)}</title>")
        if draw(st.booleans()):
            perm = draw(st.sampled_from(["", ' isPermaLink="false"', ' isPermaLink="true"',
                                         ' isPermaLink="False"']))
            els.append(f"<guid{perm}>{escape(draw(URLS)) or f'g-{i % 3}'}</guid>")
        if draw(st.booleans()):
            els.append(f"<link>{escape(draw(URLS))}</link>")
        if draw(st.booleans()):
            els.append(f"<pubDate>{draw(DATES)}</pubDate>")
        for _ in range(draw(st.integers(0, 2))):
            typ = draw(st.sampled_from(["audio/mpeg", "AUDIO/MP3", "image/jpeg", "", None]))
            els.append(f"<enclosure url={quoteattr(draw(URLS))} length=\"1\""
                       + (f" type={quoteattr(typ)}" if typ is not None else "") + "/>")
        if draw(st.booleans()):
            els.append(f"<media:content url={quoteattr(draw(URLS))} type=\"video/mp4\"/>")
        if draw(st.booleans()):
            els.append(f"<podcast:guid>{draw(st.sampled_from(['ABC-1', ' x ', '', 'abc-1']))}"
                       "</podcast:guid>")
        if draw(st.booleans()):
            els.append(f'<atom:link rel="{draw(st.sampled_from(["alternate", "payment"]))}" '
                       f'href={quoteattr(draw(URLS))} type="text/html"/>')
        els.append("<description><![CDATA[<p>Notes</p><p>Support the show</p>]]></description>")
        draw(st.randoms()).shuffle(els)
        parts.append("<item>" + "".join(els) + "</item>")
    return "\n".join(parts)


def generated(body: str, channel_link: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
            'xmlns:podcast="https://podcastindex.org/namespace/1.0" '
            'xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel><title>Gen</title>'
            f"<link>{escape(channel_link)}</link>\n{body}\n</channel></rss>\n").encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.integers(1, 6).flatmap(items), link=URLS,
       url=st.sampled_from([None, "https://host.example/feeds/show.xml"]))
def test_generated_feeds_agree(body: str, link: str, url: str | None):
    data = generated(body, link)
    try:
        expected = parse_feed(data, url=url)
    except ParseError:
        expected = None
    assert_agrees(data, url, expected, scan_feed(data, url=url), picks=2)


def test_feedgen_feeds_of_every_size_agree():
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in (1, 2, 7, 60):
        doc = rss([item(i, published=start + timedelta(days=i)) for i in range(1, n + 1)])
        scan = scan_feed(doc, url="https://www.buzzsprout.com/2046234.rss")
        assert scan is not None and all(it.exact for it in scan.items)
        assert_agrees(doc, "https://www.buzzsprout.com/2046234.rss",
                      parse_feed(doc, url="https://www.buzzsprout.com/2046234.rss"), scan)


def test_dates_follow_feedparser_rules():
    """RFC 822 with odd zones, W3DTF, and dates feedparser cannot read (None)."""
    when = datetime(2023, 3, 4, 5, 6, 7, tzinfo=UTC)
    for text in (format_datetime(when), "Sat, 04 Mar 2023 00:06:07 EST",
                 "2023-03-04T05:06:07+02:00", "4 March 2023", "2023-13-45"):
        doc = rss([item(1)]).replace(format_datetime(item(1).published).encode(), text.encode())
        scan = scan_feed(doc)
        assert scan is not None
        assert scan.items[0].published == parse_feed(doc).episodes[0].published


# -- unchanged items, known by their bytes (the item cache) ---------------------------------

class Chunked:
    """A body read in random pieces, as `bot.fetch.Body` gives it (len, slices, chunks)."""

    def __init__(self, data: bytes, seed: int):
        self.data, self.rng = data, random.Random(seed)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: slice) -> bytes:
        return self.data[key]

    def __bytes__(self) -> bytes:
        return self.data

    def chunks(self, size: int):
        pos, view = 0, memoryview(self.data)
        while pos < len(self.data):
            n = self.rng.choice((1, 7, 64, 999, 4096, size))
            yield view[pos:pos + n]
            pos += n


def cache_of(scan: FeedScan) -> ItemCache:
    """The cache a poll keeps after recording every item of `scan` (through its bytes)."""
    return ItemCache.unpack(next_item_cache(scan, range(len(scan.items)), None).pack())


def assert_known_agrees(data: bytes, url: str, before: FeedScan, seed: int) -> FeedScan | None:
    """A cache-assisted scan of `data` agrees with the full parse: the items it read are the
    parse's, the items it knew are byte for byte ones `before` read as the parse reads them."""
    expected = parse_feed(data, url=url)
    scan = scan_feed(Chunked(data, seed), url=url, known=cache_of(before))
    if scan is None:
        return None
    was = {d: it for d, it in zip(before.digests, before.items, strict=True) if d}
    full_keys = feed_identity_keys(expected)
    assert len(scan.items) == len(expected.episodes)
    assert channel_fields(scan.channel) == channel_fields(expected)
    for i, (it, ep) in enumerate(zip(scan.items, expected.episodes, strict=True)):
        fields = (ep.title, ep.guid, ep.podcast_guid, ep.link, ep.published, ep.enclosure_url)
        source = was[scan.digests[i]] if it.known else it
        assert (source.title, source.guid, source.podcast_guid, source.link,
                source.published, source.enclosure_url) == fields, i
        assert it.published == ep.published
        if not it.known:
            assert scan.keys[i] == full_keys[i], i
    n = len(expected.episodes)
    for chosen in ([0], [n - 1], sorted({0, n // 2, n - 1})):
        got = parse_selected(Chunked(data, seed), scan, chosen, url=url)
        assert got.episodes == tuple(expected.episodes[i] for i in chosen)
    return scan


@pytest.mark.parametrize("name", FEED_FILES)
def test_known_items_agree_with_the_full_parse(shared: Path, name: str, monkeypatch):
    """Every shared feed, scanned again with its own items cached: unchanged, and with its
    first item gone (every item left is known; the document is the same but for that)."""
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    data = (shared / "feeds" / name).read_bytes()
    url = f"https://example.com/f/{name}"
    before = scan_feed(data, url=url)
    if before is None or len(before.items) < 2:
        return  # the full parse reads it (test_scan_agrees_with_the_full_parse)
    scan = assert_known_agrees(data, url, before, seed=len(data))
    if scan is not None:
        cached = cache_of(before)  # (items with an ambiguous key are not kept)
        assert scan.reused == sum(d in cached for d in before.digests[1:])
    first = before.items[0]
    doc = before.document(data)
    shorter = doc[:first.start] + doc[first.end:]
    try:
        parse_feed(shorter, url=url)
    except ParseError:
        return
    assert_known_agrees(shorter, url, before, seed=len(data) + 1)


def big(n: int) -> list:
    return [item(i) for i in range(1, n + 1)]


def test_a_new_item_is_read_and_the_rest_are_known(monkeypatch):
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    items = big(30)
    before = scan_feed(rss(items))
    items.append(item(31))
    data = rss(items)
    scan = assert_known_agrees(data, None, before, seed=1)
    assert scan is not None and scan.reused == 30
    assert [i for i, it in enumerate(scan.items) if not it.known] == [0]
    assert scan.items[0].guid == "Buzzsprout-1000031"


def test_edited_and_moved_items_are_read_again(monkeypatch):
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    items = big(30)
    before = scan_feed(rss(items))
    items[10] = items[10].with_(notes="<p>Edited.</p>")
    items[20], items[21] = items[21], items[20]  # swapped: each still known by its bytes
    items.append(item(31))
    scan = assert_known_agrees(rss(items), None, before, seed=2)
    assert scan is not None
    read = {scan.items[i].guid for i, it in enumerate(scan.items) if not it.known}
    assert read == {"Buzzsprout-1000031", "Buzzsprout-1000011"}  # (item 0, first, is read)


def test_a_known_guid_reused_by_a_new_item_is_ambiguous_as_in_the_full_parse(monkeypatch):
    """A host reuses an old GUID for a new episode (different file): the GUID identifies
    nothing, in the cache-assisted scan as in the full parse."""
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    items = big(20)
    before = scan_feed(rss(items))
    items.append(item(21).with_(guid=items[4].guid))
    scan = assert_known_agrees(rss(items), None, before, seed=3)
    assert scan is not None and not any(k.startswith("guid:") for k in scan.keys[0])


@pytest.mark.parametrize("doc_change", [
    # an item the byte search finds inside a comment: the stand-in check sees it
    lambda d: d.replace(b"<item>", b"<!-- <item>", 1).replace(b"</item>", b"</item> -->", 2),
    # the namespace declarations changed: every digest changes, nothing is known
    lambda d: d.replace(b'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"',
                        b'xmlns:it="http://www.itunes.com/dtds/podcast-1.0.dtd"'
                        b' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'),
    # a CDATA section holding "</item>" in a new item
    lambda d: d.replace(b"<item>", b"<item><description><![CDATA[ </item> <item> ]]>"
                                   b"</description>", 1),
    # the channel's link changed (link keys are relative to it)
    lambda d: d.replace(b"<link>https://www.buzzsprout.com/2046234</link>",
                        b"<link>https://example.com/show</link>", 1),
])
def test_tricky_changes_agree_or_fall_back(doc_change, monkeypatch):
    monkeypatch.setattr(bot.feed, "KNOWN_MIN_BYTES", 0)
    items = big(12)
    before = scan_feed(rss(items))
    data = doc_change(rss(items + [item(13)]))
    assert data != rss(items + [item(13)])
    try:
        expected = parse_feed(data)
    except ParseError:
        assert scan_feed(data, known=cache_of(before)) is None
        return
    scan = scan_feed(Chunked(data, 4), known=cache_of(before))
    if scan is None:
        return  # the caller parses it in full
    assert_known_agrees(data, None, before, seed=4)
    assert len(scan.items) == len(expected.episodes)


def test_item_cache_packs_and_refuses_garbage():
    before = scan_feed(rss(big(5)))
    cache = cache_of(before)
    assert len(cache) == 5 and cache.show_link == before.channel.link
    assert ItemCache.unpack(cache.pack()).pack() == cache.pack()
    for junk in (None, b"", b"nonsense", cache.pack()[:-3]):
        assert len(ItemCache.unpack(junk)) == 0
