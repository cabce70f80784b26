"""bot.feed: bytes → ParsedFeed, URL normalization and identity keys.

Real feeds come from the shared test data (testdata/README.md lists what feedparser 6.0.14 reads
from each). Decisions pinned here:

* edge_broken.rss (malformed, a channel title but no item) and edge_not-xml.rss (12 bytes of
  text) raise ParseError: malformed XML with no readable item is treated as a broken response,
  not as an empty feed. A malformed feed that still carries itunes:new-feed-url is returned.
* podcastparser's fixtures agree with us field by field except where podcastparser makes a
  different choice on purpose (listed in PODCASTPARSER_DIFFERENCES, each with its reason).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import ParseError
from bot.feed import (
    feed_identity_keys,
    fingerprint,
    html_to_text,
    identity_keys,
    normalize_url,
    parse_duration,
    parse_feed,
)
from bot.models import Episode, ParsedFeed, Person
from tests.conftest import ROOT, SHARED

FEEDS = SHARED / "feeds"
SAMPLE_FEED = ROOT / "config" / "sample-feed.xml"


@functools.cache
def parsed(path: Path, url: str | None = None) -> ParsedFeed:
    """Parse each big feed once per test session."""
    return parse_feed(path.read_bytes(), url=url)


def readme_expectations() -> dict[str, tuple[bool, int]]:
    """file name → (bozo, entries) from the last column of testdata/README.md's feed table."""
    readme = SHARED / "README.md"
    if not readme.is_file():
        return {}
    out = {}
    for m in re.finditer(r"^\| `([^`]+)` \|.*\| bozo=(\d)[^|]*?; entries=(\d+)[^|]*\|\s*$",
                         readme.read_text(encoding="utf-8"), re.MULTILINE):
        out[m.group(1)] = (m.group(2) == "1", int(m.group(3)))
    return out


EXPECTED = readme_expectations()
# A missing shared folder must fail, not silently collect nothing (the fixture says where).
FEED_NAMES = sorted(EXPECTED) or ["<shared testdata missing>"]


# -- every real feed -----------------------------------------------------------------------------

def test_readme_table_covers_every_top_level_feed(shared: Path):
    on_disk = {p.name for p in (shared / "feeds").iterdir()
               if p.is_file() and p.suffix in (".xml", ".rss")}
    assert len(on_disk) == 39
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("name", FEED_NAMES)
def test_real_feed_parses_as_the_readme_says(shared: Path, name: str):
    bozo, entries = EXPECTED[name]
    path = shared / "feeds" / name
    if bozo and entries == 0:  # edge_broken.rss, edge_not-xml.rss
        with pytest.raises(ParseError) as err:
            parse_feed(path.read_bytes(), url=f"https://example.com/{name}")
        assert err.value.url == f"https://example.com/{name}"
        return
    feed = parsed(path)
    assert len(feed.episodes) == entries
    assert feed.bozo is bozo
    assert (feed.bozo_message is not None) is bozo
    for ep in feed.episodes:
        assert isinstance(ep.title, str) and ep.title == ep.title.strip()
        assert ep.published is None or ep.published.tzinfo is UTC
        assert ep.duration is None or ep.duration > 0
        assert ep.enclosure_url is None or ep.enclosure_url.strip() == ep.enclosure_url
        assert ep.link is None or ep.link.startswith(("http://", "https://"))


def test_broken_feeds_say_why(shared: Path):
    with pytest.raises(ParseError, match=r"malformed XML and no episode.*unbound prefix"):
        parse_feed((shared / "feeds" / "edge_broken.rss").read_bytes())
    with pytest.raises(ParseError, match="not an RSS or Atom feed") as err:
        parse_feed((shared / "feeds" / "edge_not-xml.rss").read_bytes())
    assert err.value.url == "<bytes>"


def test_megaphone_feed_fields(shared: Path):
    feed = parsed(shared / "feeds" / "megaphone_critrole-sagas_2026-07-21.xml")
    assert feed.language and feed.image and feed.image.startswith("https://megaphone.imgix.net/")
    ep = feed.episodes[-1]  # document order: the oldest is last
    assert ep.guid == "geekandsundry.podbean.com/02a437f0-c963-371d-b4a8-70a0eef1caf7"
    assert ep.link == "https://geekandsundry.podbean.com/e/vox-machina-ep-0-the-backstory/"
    assert ep.enclosure_type == "audio/mpeg"
    assert normalize_url(ep.enclosure_url, enclosure=True) == \
        "https://traffic.megaphone.fm/DYEAN4635423723.mp3"
    dates = [e.published for e in feed.episodes]
    assert all(d is not None for d in dates)
    assert dates[0] > dates[-1]


def test_podcasting20_persons_and_channel_inheritance(shared: Path):
    feed = parsed(shared / "feeds" / "podcastindex_namespace-example.xml")
    first = feed.episodes[0]
    assert Person("Adam Curry", "host",
                  "https://www.podchaser.com/creators/adam-curry-107ZzmWE5f") in first.persons
    assert Person("Dave Jones", "guest", "https://github.com/daveajones/") in first.persons
    assert all(p.role == p.role.lower() for ep in feed.episodes for p in ep.persons)


def test_person_role_defaults_to_host_and_channel_people_are_inherited():
    doc = b"""<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"
      xmlns:p2="https://podcastindex.org/namespace/1.0"><channel><title>S</title>
      <podcast:person href="https://example.com/ann">Ann Host</podcast:person>
      <podcast:liveItem status="live" start="2026-03-04T14:00:00Z" end="2026-03-04T15:00:00Z">
        <podcast:person role="guest">Live Guest</podcast:person></podcast:liveItem>
      <item><title>A</title><guid>a</guid>
        <p2:person role="Guest">Bo &amp; Co</p2:person>
        <podcast:guid>917393e3-1b1e-5cef-ace4-edaa54e1f810</podcast:guid></item>
      <item><title>B</title><guid>b</guid>
        <description><![CDATA[<podcast:person>Not A Person</podcast:person>]]></description>
      </item></channel></rss>"""
    a, b = parse_feed(doc).episodes
    assert a.persons == (Person("Bo & Co", "guest"),)
    assert a.podcast_guid == "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    assert b.persons == (Person("Ann Host", "host", "https://example.com/ann"),)
    assert b.podcast_guid is None


def test_channel_podcast_guid_is_not_an_item_guid():
    feed = parse_feed(SAMPLE_FEED.read_bytes())
    assert all(ep.podcast_guid is None for ep in feed.episodes)


# -- encodings -----------------------------------------------------------------------------------

def test_gb2312_feed_is_decoded(shared: Path):
    feed = parsed(shared / "feeds" / "edge_gb2312_chinese_forum.rss")
    assert feed.title.startswith("投资资讯网")
    assert feed.language == "zh-cn"
    assert feed.episodes[0].title == "建国35周年纪念，华表，和平鸽"
    assert all(ep.guid is None and ep.enclosure_url is None for ep in feed.episodes)
    assert "和平鸽" in feed.episodes[0].summary_html
    # No guid and no audio: still told apart by link and title+date.
    keys = feed_identity_keys(feed)
    assert all(k for k in keys)


def test_greek_iso_8859_7_feed_is_decoded(shared: Path):
    feed = parsed(shared / "feeds" / "edge_greek_iso-8859-7.xml")
    assert feed.title == "Liberal - ΕΠΙΚΑΙΡΟΤΗΤΑ"
    ep = feed.episodes[0]
    assert ep.title.startswith("«Πορτραίτα καραντίνας»")
    assert ep.enclosure_url is None  # its only enclosure is a JPEG, not an episode
    assert ep.published == datetime(2020, 4, 24, 20, 3, tzinfo=UTC)


def test_norwegian_and_japanese_titles(shared: Path):
    assert parsed(shared / "feeds" / "nrk_lordagsradet_norwegian.xml").title == "Lørdagsrådet"
    ep = parsed(shared / "feeds" / "rebuild-fm_japanese.xml").episodes[0]
    assert ep.title == "24: Go, Mavericks, LinkedIn Intro (typester)"
    assert "ゲスト" in ep.summary_html


# -- podcastparser's expectations -----------------------------------------------------------------

PODCASTPARSER_DIFFERENCES = {
    # malformed (itunes:/podcast: prefix never declared) and no item: ParseError by our rule
    **dict.fromkeys(["explicit_feed", "itunes_author", "itunes_categories",
                     "itunes_categories_empty", "itunes_keywords", "itunes_owner",
                     "itunes_owner_name_only", "podcast_funding", "podcast_locked_feed"],
                    "raises"),
    "itunes_type_serial": "podcastparser reorders serial shows; we keep document order",
    "max_episodes": "podcastparser was called with max_episodes=1",
    "mediarss": "the link is the enclosure itself, which we report as no link",
    "no_enclosure": "podcastparser drops items without enclosure; we keep every item",
    "no_title_multi_enclosure": "podcastparser drops items without a title; we keep them",
    "no_url": "podcastparser drops an item whose enclosure has no URL; we keep it",
    "redirect_new_location": "<redirect><newLocation> (pre-iTunes) is not supported",
}


def podcastparser_names() -> list[str]:
    folder = FEEDS / "podcastparser"
    names = sorted(p.stem for p in folder.glob("*.rss")) if folder.is_dir() else []
    return names or ["<shared testdata missing>"]


def _compare_with_podcastparser(name: str, feed: ParsedFeed, expected: dict) -> list:
    """Differences between our parse and podcastparser's, mapped onto our fields."""
    diffs: list = []
    if feed.title and feed.title != expected["title"]:  # podcastparser: file name when absent
        diffs.append(("feed title", feed.title, expected["title"]))
    if feed.new_feed_url != expected.get("new_url"):
        diffs.append(("new_feed_url", feed.new_feed_url, expected.get("new_url")))
    if len(feed.episodes) != len(expected["episodes"]):
        return diffs + [("episodes", len(feed.episodes), len(expected["episodes"]))]
    for ep, x in zip(feed.episodes, expected["episodes"], strict=True):
        if ep.title and ep.title != x["title"]:
            diffs.append(("title", ep.title, x["title"]))
        if ep.guid is not None:
            # podcastparser resolves a relative permalink GUID against the file's path; we
            # keep GUIDs as written (they must not change when the feed moves).
            if x["guid"] not in (ep.guid, f"file://tests/data/{ep.guid}"):
                diffs.append(("guid", ep.guid, x["guid"]))
        elif x["guid"] not in [e["url"] for e in x["enclosures"]] + [x["link"]]:
            diffs.append(("guid (podcastparser's fallback)", None, x["guid"]))
        # We only report web pages as links (podcastparser also copies a non-URL GUID).
        web = x["link"] if x["link"].startswith(("http://", "https://")) else None
        if ep.link != web:
            diffs.append(("link", ep.link, x["link"]))
        encs = x["enclosures"]
        media = ([e for e in encs if e["mime_type"].split("/")[0] in ("audio", "video")]
                 or [e for e in encs if e["mime_type"] == "application/octet-stream"])
        if ep.enclosure_url != (media[0]["url"] if media else None):
            diffs.append(("enclosure", ep.enclosure_url, media))
        if (ep.duration or 0) != x["total_time"]:
            diffs.append(("duration", ep.duration, x["total_time"]))
        if (int(ep.published.timestamp()) if ep.published else 0) != x["published"]:
            diffs.append(("published", ep.published, x["published"]))
        if "persons" in x:
            want = [(p["name"], p["role"], p["href"]) for p in x["persons"]]
            if [(p.name, p.role, p.href) for p in ep.persons] != want:
                diffs.append(("persons", ep.persons, want))
        for ours, key in ((ep.number, "number"), (ep.season, "season"),
                          (ep.episode_type, "type"), (ep.image, "episode_art_url")):
            if ours != x.get(key):
                diffs.append((key, ours, x.get(key)))
    return diffs


@pytest.mark.parametrize("name", podcastparser_names())
def test_podcastparser_fixture(shared: Path, name: str):
    folder = shared / "feeds" / "podcastparser"
    expected = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    data = (folder / f"{name}.rss").read_bytes()
    reason = PODCASTPARSER_DIFFERENCES.get(name)
    if reason == "raises":
        assert expected["episodes"] == []  # nothing to announce is lost
        with pytest.raises(ParseError, match="malformed XML"):
            parse_feed(data)
        return
    feed = parse_feed(data, url=f"file://tests/data/{name}.rss")
    diffs = _compare_with_podcastparser(name, feed, expected)
    if reason:
        assert diffs, f"{name} now agrees with podcastparser: drop it from the differences"
    else:
        assert diffs == []


def test_podcastparser_core_fixtures_in_detail(shared: Path):
    folder = shared / "feeds" / "podcastparser"

    def one(name: str, url: str | None = None) -> Episode:
        (ep,) = parse_feed((folder / f"{name}.rss").read_bytes(), url=url).episodes
        return ep

    simple = one("simple")
    assert (simple.title, simple.guid, simple.link) == ("Episode", None, None)
    assert simple.enclosure_url == "http://example.org/example.mp3"
    no_guid = one("no_guid")
    assert no_guid.link == "http://example.com/episode/1" and no_guid.guid is None
    assert (no_guid.enclosure_url, no_guid.enclosure_type) == \
        ("http://example.com/test.ogg", "audio/ogg")
    assert one("duration").duration == 3600
    assert one("itunes_duration").duration == 1200
    assert one("episode_number").number == 1
    assert one("episode_number_invalid").number is None
    assert one("episode_season").season == 1
    assert one("episode_type").episode_type == "trailer"
    assert one("episode_type_invalid").episode_type is None
    assert one("permalink").link == "http://example.com/podcast/episode/1/"  # xml:base
    assert one("no_permalink").link is None
    assert one("image_and_audio").enclosure_url == "http://example.net/audio.mp3"
    assert one("leading_space_url").enclosure_url == "http://example.com/example.mp3"
    assert one("relative", url="https://example.com/feeds/show.rss").enclosure_url == \
        "https://example.com/feeds/example.mp3"
    person = one("episode_podcast_person")
    assert person.persons == (Person("John Doe", "host", "http://www.example.com"),
                              Person("Stephanie Smith", "guest", "http://amazingsite.com"))
    moved = parse_feed((folder / "new_feed_url.rss").read_bytes())
    assert moved.bozo and moved.episodes == ()
    assert moved.new_feed_url == "http://newlocation.com/example.rss"


# -- unreadable input, and no I/O -------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"  \n\t ", "empty"),
    (b"i am not xml", "not an RSS or Atom feed"),
    (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>x</body></html>",
     "HTML page"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "JSON"),
    (bytes(range(256)) * 4, "not an RSS or Atom feed"),
    (b'<?xml version="1.0"?><rss><channel><title>Cut off', "malformed XML"),
])
def test_unreadable_input_raises_parse_error(data: bytes, message: str):
    with pytest.raises(ParseError, match=message) as err:
        parse_feed(data, url="https://example.com/feed")
    assert err.value.url == "https://example.com/feed"


def test_parse_feed_takes_bytes_only():
    with pytest.raises(TypeError):
        parse_feed("<rss/>")  # type: ignore[arg-type]


def test_bytes_that_name_a_url_or_a_file_are_data_not_addresses(tmp_path: Path):
    feed_file = tmp_path / "feed.xml"
    feed_file.write_bytes(SAMPLE_FEED.read_bytes())
    with pytest.raises(ParseError):  # feedparser given a str/bytes path would open the file
        parse_feed(str(feed_file).encode())
    with pytest.raises(ParseError):  # ... and fetch a URL
        parse_feed(b"https://feeds.buzzsprout.com/2046234.rss")


def test_external_entities_are_not_loaded(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = f"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>
<rss version="2.0"><channel><title>T</title>
<item><title>Ep &leak;</title><guid>g</guid></item></channel></rss>""".encode()
    feed = parse_feed(doc)
    assert "TOP-SECRET" not in repr(feed)


def test_truncated_feed_is_bozo_with_the_items_read(shared: Path):
    data = (shared / "feeds" / "the-omni-show.rss").read_bytes()
    whole = parsed(shared / "feeds" / "the-omni-show.rss")
    cut = data[:data.index(b"</item>", data.index(b"</item>") + 1) + 200]
    feed = parse_feed(cut)
    assert feed.bozo and feed.bozo_message
    assert 2 <= len(feed.episodes) <= 3
    assert [e.guid for e in feed.episodes[:2]] == [e.guid for e in whole.episodes[:2]]


# -- fields ------------------------------------------------------------------------------------

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title> Show </title><link>https://example.com/</link><language>en</language>
<itunes:image href="https://example.com/show.jpg"/>
<image><url>https://example.com/small.jpg</url><title>Show</title>
<link>https://example.com/</link></image>
{items}</channel></rss>"""


def rss(*items: str) -> bytes:
    return RSS.format(items="".join(f"<item>{i}</item>" for i in items)).encode()


def test_channel_fields():
    feed = parse_feed(rss("<title>A</title>"))
    assert (feed.title, feed.link, feed.language) == ("Show", "https://example.com/", "en")
    assert feed.image == "https://example.com/show.jpg"  # itunes:image beats <image>
    assert not feed.bozo and feed.bozo_message is None


def test_episode_fields():
    (ep,) = parse_feed(rss("""
        <title>  Ep 1: &lt;Hello&gt; &amp; bye  </title>
        <guid isPermaLink="false">abc-1</guid>
        <link>/episodes/1</link>
        <pubDate>Wed, 04 Mar 2026 06:00:00 -0800</pubDate>
        <description>Short &amp; plain</description>
        <content:encoded><![CDATA[<p>Long <b>notes</b></p>]]></content:encoded>
        <enclosure url="https://cdn.example.com/cover.jpg" type="image/jpeg" length="1"/>
        <enclosure url="/audio/1.mp3" type="audio/mpeg" length="100"/>
        <itunes:image href="https://example.com/ep1.jpg"/>
        <itunes:duration>1:03:12</itunes:duration>
        <itunes:season>2</itunes:season><itunes:episode>07</itunes:episode>
        <itunes:episodeType> Bonus </itunes:episodeType>"""),
        url="https://example.com/feed.xml").episodes
    assert ep.title == "Ep 1: <Hello> & bye"
    assert ep.guid == "abc-1"
    assert ep.link == "https://example.com/episodes/1"
    assert ep.published == datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
    assert ep.summary_html == "<p>Long <b>notes</b></p>"
    assert (ep.enclosure_url, ep.enclosure_type) == \
        ("https://example.com/audio/1.mp3", "audio/mpeg")
    assert ep.image == "https://example.com/ep1.jpg"
    assert (ep.duration, ep.season, ep.number, ep.episode_type) == (3792, 2, 7, "bonus")


def test_missing_fields_are_empty_not_errors():
    (ep,) = parse_feed(rss("<description>x</description>")).episodes
    # (the show's page and language come from the channel)
    assert ep == Episode(title="", summary_html="x", show_link="https://example.com/",
                         language="en")


@pytest.mark.parametrize("item, link", [
    ("<guid>c41042ae-5460-11e8-b38c-5f5faf9dd0c5</guid>", None),  # permalink GUID, not a URL
    ("<guid>https://example.com/ep/9</guid>", "https://example.com/ep/9"),
    ('<link>http://cdn.example.com/a.mp3?dest-id=1</link>'
     '<enclosure url="http://cdn.example.com/a.mp3" type="audio/mpeg"/>', None),
    ("<link>mailto:host@example.com</link>", None),
])
def test_link_is_the_episode_page_or_nothing(item: str, link: str | None):
    (ep,) = parse_feed(rss(item)).episodes
    assert ep.link == link


def test_guid_does_not_depend_on_where_the_feed_was_fetched():
    doc = rss("<guid>episode-7</guid><title>T</title>")
    a = parse_feed(doc, url="https://old.example.com/feed.xml").episodes[0]
    b = parse_feed(doc, url="https://new.example.org/rss").episodes[0]
    assert a.guid == b.guid == "episode-7"


@pytest.mark.parametrize("item, expected", [
    ("<description><![CDATA[<p>A &amp; B</p>]]></description>", "<p>A &amp; B</p>"),
    ("<itunes:summary>A &lt; B &amp; C</itunes:summary>", "A &lt; B &amp; C"),
    ("<itunes:summary>plain</itunes:summary>"
     "<description><![CDATA[<p>rich</p>]]></description>", "<p>rich</p>"),
    ("<title>t</title>", ""),
])
def test_summary_html(item: str, expected: str):
    (ep,) = parse_feed(rss(item)).episodes
    assert ep.summary_html == expected


@pytest.mark.parametrize("value, seconds", [
    ("1:03:12", 3792), ("63:12", 3792), ("3792", 3792), ("01:00:00", 3600), ("00:20:00", 1200),
    ("3792.7", 3792), (" 45:00 ", 2700), ("1h 3m 12s", 3792), ("63 min", 3780),
    ("0", None), ("00:00:00", None), ("", None), ("garbage", None), ("-5", None),
    ("1:2:3:4", None), (None, None),
])
def test_parse_duration(value: str | None, seconds: int | None):
    assert parse_duration(value) == seconds


@given(st.integers(min_value=1, max_value=99), st.integers(min_value=0, max_value=59),
       st.integers(min_value=0, max_value=59))
def test_parse_duration_formats_agree(h: int, m: int, s: int):
    total = h * 3600 + m * 60 + s
    assert parse_duration(f"{h}:{m:02}:{s:02}") == total
    assert parse_duration(f"{h * 60 + m}:{s:02}") == total
    assert parse_duration(str(total)) == total


@pytest.mark.parametrize("value, number", [("12", 12), (" 3 ", 3), ("-1", None), ("0", None),
                                           ("4.5", None), ("twelve", None)])
def test_episode_number_is_a_positive_int_or_none(value: str, number: int | None):
    (ep,) = parse_feed(rss(f"<itunes:episode>{value}</itunes:episode>"
                           f"<itunes:season>{value}</itunes:season>")).episodes
    assert ep.number == ep.season == number


def test_unparseable_dates_are_none(shared: Path):
    (ep,) = parsed(shared / "feeds" / "edge_bad_dates.rss").episodes
    assert ep.published is None


def test_html_title_becomes_text():
    (ep,) = parse_feed(rss("<title><![CDATA[Tom &amp; <i>Jerry</i>]]></title>")).episodes
    assert ep.title == "Tom & Jerry"


# -- normalize_url -----------------------------------------------------------------------------

@pytest.mark.parametrize("url, normal", [
    ("HTTP://Example.COM:80/a/b/?id=3&utm_source=rss#t=10", "https://example.com/a/b?id=3"),
    ("https://example.com:443/", "https://example.com"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("https://dts.podtrac.com/redirect.mp3/chrt.fm/track/9EE2G/pdst.fm/e/rss.art19.com/"
     "episodes/7684b7cb.mp3?rss_browser=BAhJ", "https://rss.art19.com/episodes/7684b7cb.mp3"),
    ("https://www.podtrac.com/pts/redirect.mp3/pdrl.fm/2ecb25/pscrb.fm/rss/p/mgln.ai/e/495/"
     "traffic.megaphone.fm/SBP7125870051.mp3?updated=1", "https://traffic.megaphone.fm/SBP7125870051.mp3"),
    ("https://www.podtrac.com/pts/redirect.mp3/chtbl.com/track/5899E/traffic.megaphone.fm/"
     "HSW3157672398.mp3", "https://traffic.megaphone.fm/HSW3157672398.mp3"),
    ("http://www.podtrac.com/pts/redirect.mp3?http://dl.example.com/t/2005-09-25.mp3",
     "https://dl.example.com/t/2005-09-25.mp3"),
    ("https://op3.dev/e/mp3s.nashownotes.com/NA-1393.mp3", "https://mp3s.nashownotes.com/NA-1393.mp3"),
    ("https://op3.dev/e,pg=abc/https://cdn.example.com/x.mp3", "https://cdn.example.com/x.mp3"),
    ("https://media.blubrry.com/phd/ins.blubrry.com/phd/phd151.mp3",
     "https://ins.blubrry.com/phd/phd151.mp3"),
    ("https://example.com/download.php?id=7&utm_medium=x", "https://example.com/download.php?id=7"),
    ("https://op3.dev/e/", "https://op3.dev/e"),  # nothing behind the prefix: left alone
    ("episode.mp3", "episode.mp3"),
    ("  https://Example.com/A  ", "https://example.com/A"),
])
def test_normalize_url_for_enclosures(url: str, normal: str):
    assert normalize_url(url, enclosure=True) == normal


def test_normalize_url_keeps_a_links_query():
    url = "https://example.com/ep?id=9&utm_campaign=x&fbclid=1"
    assert normalize_url(url) == "https://example.com/ep?id=9"
    assert normalize_url("https://example.com/ep.mp3?updated=1") == \
        "https://example.com/ep.mp3?updated=1"


@given(st.sampled_from(["http", "https", "HTTP"]),
       st.from_regex(r"[a-z]{1,8}(\.[a-z]{2,5}){1,2}", fullmatch=True),
       st.lists(st.from_regex(r"[A-Za-z0-9_~-]{1,6}", fullmatch=True), max_size=4),
       st.sampled_from(["", "/", ".mp3", ".mp3?updated=5", "?a=1&utm_source=x", "#frag"]))
def test_normalize_url_is_idempotent_and_scheme_blind(scheme: str, host: str,
                                                      segments: list[str], tail: str):
    url = f"{scheme}://{host}/{'/'.join(segments)}{tail}"
    for enclosure in (False, True):
        once = normalize_url(url, enclosure=enclosure)
        assert normalize_url(once, enclosure=enclosure) == once
        assert once.startswith("https://")
        other = url.replace(f"{scheme}://", "https://" if scheme == "http" else "http://", 1)
        assert normalize_url(other, enclosure=enclosure) == once


# -- identity ----------------------------------------------------------------------------------

def test_identity_keys_of_one_episode():
    ep = Episode(title="  Hello   World ", guid="g-1", podcast_guid="ABC",
                 link="https://example.com/ep/1/", published=datetime(2026, 3, 4, 23, tzinfo=UTC),
                 enclosure_url="http://dts.podtrac.com/redirect.mp3/cdn.example.com/1.mp3?x=1")
    keys = identity_keys(ep, show_link="https://example.com")
    assert keys == {"guid:g-1", "pguid:abc", "enc:https://cdn.example.com/1.mp3",
                    "link:https://example.com/ep/1", f"fp:{fingerprint(ep)}"}
    assert fingerprint(ep) == fingerprint(Episode(title="hello world",
                                                  published=datetime(2026, 3, 4, tzinfo=UTC)))
    # The show's own page identifies nothing; nor does a title without a date.
    show_page = Episode(title="T", link="http://example.com/")
    assert identity_keys(show_page, show_link="https://example.com") == frozenset()
    assert identity_keys(Episode(title="")) == frozenset()


def test_megaphone_week_brings_exactly_two_new_episodes(shared: Path):
    old = parsed(shared / "feeds" / "megaphone_critrole-sagas_2026-07-14.xml")
    new = parsed(shared / "feeds" / "megaphone_critrole-sagas_2026-07-21.xml")
    known = set().union(*feed_identity_keys(old))
    fresh = [ep.guid for ep, keys in zip(new.episodes, feed_identity_keys(new), strict=True)
             if not keys & known]
    assert sorted(fresh) == ["98a048f4-1bad-11f1-9e67-ef2ccb7e1bb0",
                             "cf98a932-808e-11f1-9c0c-8344e0b51cca"]
    # The per-episode keys (what service.py uses today) agree.
    known = {k for ep in old.episodes for k in identity_keys(ep, show_link=old.link)}
    assert sorted(ep.guid for ep in new.episodes
                  if not identity_keys(ep, show_link=new.link) & known) == sorted(fresh)


GUID = re.compile(rb"(<guid\b[^>]*>)\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*(</guid>)", re.DOTALL)


@pytest.mark.parametrize("name", ["megaphone_critrole-sagas_2026-07-14.xml", "art19_1865.xml",
                                  "libsyn_accidental-tech-podcast.rss"])
def test_guid_rewrite_still_matches_every_item_and_only_its_own(shared: Path, name: str):
    data = (shared / "feeds" / name).read_bytes()
    moved = GUID.sub(lambda m: m[1] + b"new-host-" + (m[2] or m[3] or b"")[::-1] + m[4], data)
    before, after = parsed(shared / "feeds" / name), parse_feed(moved)
    assert all(a.guid != b.guid for a, b in zip(before.episodes, after.episodes, strict=True))
    old_keys, new_keys = feed_identity_keys(before), feed_identity_keys(after)
    for i, keys in enumerate(new_keys):
        assert {j for j, old in enumerate(old_keys) if keys & old} == {i}, after.episodes[i].title


def test_duplicate_guids(shared: Path):
    feed = parsed(shared / "feeds" / "prx_transistor_duplicate-guids.xml")
    assert [ep.guid for ep in feed.episodes].count("DUPE_ID") == 3
    keys = feed_identity_keys(feed)
    assert not any("guid:DUPE_ID" in k for k in keys)  # a reused GUID identifies nothing
    for i, ks in enumerate(keys):
        matches = {j for j, other in enumerate(keys) if ks & other}
        # The last two items are one episode listed twice (same audio, title, date).
        assert matches == ({4, 5} if i in (4, 5) else {i})
    # Without the feed-level pass the reused GUID would merge three different episodes.
    plain = [identity_keys(ep, show_link=feed.link) for ep in feed.episodes]
    assert plain[0] & plain[1] == {"guid:DUPE_ID"}


def test_a_link_shared_by_every_item_is_ignored():
    items = [f"<title>Ep {n}</title><link>https://example.com/podcast</link>"
             f'<enclosure url="https://cdn.example.com/{n}.mp3" type="audio/mpeg"/>'
             for n in range(3)]
    feed = parse_feed(rss(*items))
    keys = feed_identity_keys(feed)
    assert all(not any(k.startswith("link:") for k in ks) for ks in keys)
    assert all(not (a & b) for i, a in enumerate(keys) for b in keys[i + 1:])


def test_one_audio_file_behind_several_titles_identifies_none_of_them():
    items = [f"<title>Coming soon {n}</title><guid>g{n}</guid>"
             f"<pubDate>Wed, 0{n + 1} Jan 2025 10:00:00 GMT</pubDate>"
             '<enclosure url="https://cdn.example.com/placeholder.mp3" type="audio/mpeg"/>'
             for n in range(2)]
    a, b = feed_identity_keys(parse_feed(rss(*items)))
    assert not a & b and "guid:g0" in a


def test_identical_items_keep_their_keys_and_match_each_other():
    item = ("<title>Same</title><guid>same</guid>"
            '<enclosure url="https://cdn.example.com/s.mp3" type="audio/mpeg"/>')
    a, b = feed_identity_keys(parse_feed(rss(item, item)))
    assert a == b and "guid:same" in a


# -- the bundled sample feed ----------------------------------------------------------------------

def seed_page(shared: Path) -> tuple[str, list[str]]:
    """The seed episode page: its title and the paragraphs after 'Episode Description'."""
    lines = (shared.parent / "seed" / "episode-page.txt").read_text(encoding="utf-8").splitlines()
    start = lines.index("Episode Description") + 1
    return lines[0], [ln.strip() for ln in lines[start:] if ln.strip()]


def squash(text: str) -> str:
    return " ".join(text.split())


def test_sample_feed_newest_episode_is_the_seed_page(shared: Path):
    title, paragraphs = seed_page(shared)
    feed = parse_feed(SAMPLE_FEED.read_bytes(), url="https://feeds.buzzsprout.com/2046234.rss")
    assert not feed.bozo
    assert feed.title == "The Blockchain Socialist"
    assert feed.language == "en-us"
    assert feed.link == "https://www.buzzsprout.com/2046234"
    assert feed.image and feed.image.startswith("https://storage.buzzsprout.com/")
    newest = max(feed.episodes, key=lambda e: e.published)
    assert newest is feed.episodes[0]
    assert newest.title == title
    assert newest.published.date().isoformat() == "2026-03-04"
    assert newest.published.strftime("%A") == "Wednesday"
    assert 3780 <= newest.duration < 3840  # the page says "1h 3m"
    assert re.fullmatch(r"Buzzsprout-\d+", newest.guid)
    number = newest.guid.split("-")[1]
    assert newest.link == f"https://www.buzzsprout.com/2046234/episodes/{number}"
    assert re.fullmatch(rf"https://www\.buzzsprout\.com/2046234/episodes/{number}-[a-z0-9-]+\.mp3",
                        newest.enclosure_url)
    assert newest.enclosure_type == "audio/mpeg"
    assert newest.episode_type == "full"
    assert newest.image and newest.image.startswith("https://storage.buzzsprout.com/")
    assert Person("Nick Vincent", "guest", "https://dataleverage.substack.com") in newest.persons
    text = squash(html_to_text(newest.summary_html))
    for paragraph in paragraphs:
        assert squash(paragraph) in text, paragraph
    assert re.search(r'<a href="[^"]+"[^>]*>Support the show</a>', newest.summary_html)


def test_sample_feed_repeats_its_boilerplate(shared: Path):
    _, paragraphs = seed_page(shared)
    boilerplate = paragraphs[2:]  # sponsor, promo code, Patreon, Support the show, book, ...
    feed = parse_feed(SAMPLE_FEED.read_bytes())
    assert 5 <= len(feed.episodes) - 1 <= 6
    assert len({ep.guid for ep in feed.episodes}) == len(feed.episodes)
    dates = [ep.published for ep in feed.episodes]
    assert dates == sorted(dates, reverse=True)
    for ep in feed.episodes:
        text = squash(html_to_text(ep.summary_html))
        assert all(squash(p) in text for p in boilerplate), ep.title
        assert ep.duration and ep.enclosure_url and ep.link
    # Every episode is told apart from every other.
    keys = feed_identity_keys(feed)
    assert all(not (a & b) for i, a in enumerate(keys) for b in keys[i + 1:])
