"""Issue 13, text from others: summaries a human would write (abbreviations, the richest show
notes, one <p> is one paragraph, the show's page before an audio file, no tracker in a shown
link) and hostile feeds (bidi and invisible characters, undefined entities, a 10 MB
description), from feed bytes to the composed post, and through the worker."""

from __future__ import annotations

import html
import time

import pytest

from bot.compose import ComposeOptions, compose_episode, find_boilerplate, fit_text
from bot.errors import ParseError
from bot.feed import parse_feed, parse_selected, scan_feed
from bot.models import Episode, Rules
from bot.textlen import MASTODON_DEFAULT_RULES, X_RULES, fits
from tests.world import new_episode

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0">'
        "<channel><title>The Show</title><link>https://show.example/</link>"
        "<language>en-us</language>")


def feed(*items: str, head: str = HEAD) -> bytes:
    return (head + "".join(f"<item>{i}</item>" for i in items) + "</channel></rss>").encode()


def post(ep: Episode, rules: Rules = X_RULES, **options) -> str:
    return compose_episode(ep, show="The Show", rules=rules,
                           options=ComposeOptions(**options)).text


TITLE = "A title long enough that the summary has to be shortened to fit in the post"


# --- abbreviations are not sentence ends -------------------------------------------------------


@pytest.mark.parametrize(("abbreviation", "phrase"), [
    ("U.S.", "why the U.S. Senate voted against them"),
    ("Dr.", "how the voice of Dr. Jane Smith changed them"),
    ("vs.", "why the Mets vs. Cubs game mattered to them"),
    ("p.m.", "why a vote at 5 p.m. on Friday undid them"),
    ("J. R. R.", "what J. R. R. Tolkien would have said of them"),
])
def test_a_summary_is_never_cut_after_an_abbreviation(abbreviation: str, phrase: str) -> None:
    notes = (f"<p>In this one we look at how the new rules came to be, and {phrase} twice in "
             "one week, late at night, after a long debate that went on and on about almost "
             "everything there is.</p>")
    ep = Episode(title=TITLE, link="https://show.example/1", summary_html=notes)
    text = post(ep)
    assert fits(text, X_RULES)
    summary = text.split("\n\n")[1]
    assert not summary.endswith(abbreviation), text   # (the old regex cut there)
    assert summary.endswith("…")                     # a cut at a word says it is one


def test_whole_sentences_are_still_dropped_at_real_ends() -> None:
    notes = ("<p>The voice of Dr. Jane Smith is heard here. " + "More words follow here. " * 20
             + "</p>")
    text = post(Episode(title="Short", link="https://show.example/1", summary_html=notes))
    assert "\n\nThe voice of Dr. Jane Smith is heard here." in text


def test_host_text_is_cut_at_sentences_not_abbreviations() -> None:
    text = ("Tonight we talk to Dr. Jane Smith about " + "words and " * 30
            + "more. https://example.com/live")
    out = fit_text(text, X_RULES)
    body = out.text.removesuffix("https://example.com/live").strip()
    assert out.text.endswith("https://example.com/live")
    assert not body.endswith("Dr."), out.text           # (the old regex cut there)
    assert body.startswith("Tonight we talk to Dr. Jane Smith") and body.endswith("…")


def test_sentences_follow_the_feeds_language() -> None:
    notes = ("<p>Wir sprechen mit Prof. Dr. Müller über den 3. Oktober und darüber, warum die "
             "Wahl z.B. in Berlin anders ausging als erwartet, und was das bedeutet.</p>")
    ep = Episode(title=TITLE, link="https://show.example/1", summary_html=notes,
                 language="de-de")
    summary = post(ep).split("\n\n")[1]
    for stop in ("Prof.", "Dr.", "3.", "z.B."):
        assert not summary.endswith(stop)


# --- the richest show notes win ----------------------------------------------------------------


RICH = ("<p>Jane Doe joins us to talk about bridges and why they stand.</p>"
        "<p>She built three of them, and one fell down twice.</p>"
        "<p>Support the show at patreon.com/show</p>")


@pytest.mark.parametrize("first", [
    "<itunes:summary>&lt;p&gt;Short &lt;b&gt;teaser&lt;/b&gt;.&lt;/p&gt;</itunes:summary>"
    "<description>&lt;p&gt;Another short teaser.&lt;/p&gt;</description>",
    "<description><![CDATA[<p>Short <b>teaser</b>.</p>]]></description>",
    "<itunes:summary>Plain teaser, with no markup at all, and rather long for a teaser, "
    "long enough to beat anything else in length if length were all.....................</"
    "itunes:summary>",
])
def test_content_encoded_wins_over_a_summary_that_comes_first(first: str) -> None:
    data = feed(f"<title>Ep</title><guid>g1</guid>{first}"
                f"<content:encoded><![CDATA[{RICH}]]></content:encoded>")
    (ep,) = parse_feed(data).episodes
    assert ep.summary_html == RICH
    text = post(ep, MASTODON_DEFAULT_RULES)
    assert "Jane Doe joins us to talk about bridges and why they stand. She built three" in text
    assert "patreon" not in text and "teaser" not in text


def test_content_encoded_read_with_character_references_and_empty_ones_skipped() -> None:
    data = feed("<title>Ep</title><guid>g1</guid><description>teaser</description>"
                "<content:encoded/><content:encoded>  </content:encoded>"
                "<content:encoded>&lt;p&gt;Caf&#233; &amp;amp; more&lt;/p&gt;</content:encoded>")
    (ep,) = parse_feed(data).episodes
    assert ep.summary_html == "<p>Café &amp; more</p>"


def test_content_encoded_is_read_as_feedparser_reads_it_in_every_real_feed(shared) -> None:
    import io

    import feedparser

    from bot.feed import _scan
    checked = 0
    for path in sorted((shared / "feeds").rglob("*")):
        if path.suffix not in (".xml", ".rss"):
            continue
        data = path.read_bytes()
        read = feedparser.parse(io.BytesIO(data), sanitize_html=False,
                                resolve_relative_uris=False)
        scan = _scan(data, read.get("encoding"))
        if len(scan.items) != len(read.entries):
            continue  # (parse_feed then uses feedparser's fields alone)
        for entry, item in zip(read.entries, scan.items, strict=True):
            if item.notes is not None:
                assert item.notes in [c["value"].strip() for c in entry.get("content", [])]
                checked += 1
    assert checked > 1000


def test_the_longest_html_notes_win_without_content_encoded() -> None:
    data = feed("<title>Ep</title><guid>g1</guid>"
                "<itunes:summary>&lt;p&gt;Short.&lt;/p&gt;</itunes:summary>"
                "<description>&lt;p&gt;The long one.&lt;/p&gt;&lt;p&gt;Two.&lt;/p&gt;"
                "</description>")
    (ep,) = parse_feed(data).episodes
    assert ep.summary_html == "<p>The long one.</p><p>Two.</p>"


def test_the_scan_path_gives_the_same_notes_as_a_full_parse() -> None:
    items = [f"<title>Ep {n}</title><guid>g{n}</guid><link>https://show.example/{n}</link>"
             f"<itunes:summary>&lt;p&gt;Teaser {n}.&lt;/p&gt;</itunes:summary>"
             f"<content:encoded><![CDATA[<p>Rich notes {n}.</p>{RICH}]]></content:encoded>"
             for n in range(5)]
    data = feed(*items)
    full = parse_feed(data)
    scan = scan_feed(data)
    assert scan is not None
    selected = parse_selected(data, scan, [1, 3])
    assert selected.episodes == (full.episodes[1], full.episodes[3])
    assert selected.episodes[0].summary_html.startswith("<p>Rich notes 1.</p>")


# --- one <p> is one paragraph ------------------------------------------------------------------


def test_blank_lines_inside_one_p_are_not_paragraph_breaks() -> None:
    notes = ("<p>A conversation with\n\nJane Doe, who wrote a book about bridges.\n\n"
             "It is good. She talks about it at length here.</p><p>Second paragraph.</p>")
    ep = Episode(title="Ep", link="https://show.example/1", summary_html=notes)
    text = post(ep, MASTODON_DEFAULT_RULES)
    assert ("A conversation with Jane Doe, who wrote a book about bridges. It is good. She "
            "talks about it at length here.") in text
    assert "—" not in text


def test_a_blurb_repeated_inside_each_p_is_still_boilerplate() -> None:
    blurb = "Based on the hit podcast, our host leads a game of survival for a group of players."
    eps = [Episode(title=f"Ep {n}", link=f"https://show.example/{n}",
                   summary_html=f"<p>The survivors of part {n} find a road north, and more of "
                                f"what happens to them.\n\n{blurb}</p>") for n in range(5)]
    boilerplate = find_boilerplate(eps)
    text = post(eps[0], MASTODON_DEFAULT_RULES, boilerplate=boilerplate)
    assert "The survivors of part 0 find a road north" in text and blurb not in text


def test_one_br_and_a_newline_are_no_paragraph_break() -> None:
    notes = ("<p>A few months before the end, everyone said goodbye.<br />\nThe world that "
             "ended was a game.<br />\nIt did not do well.</p><p>Credits here.</p>")
    text = post(Episode(title="Ep", link="https://show.example/1", summary_html=notes),
                MASTODON_DEFAULT_RULES)
    assert ("A few months before the end, everyone said goodbye. The world that ended was a "
            "game. It did not do well.") in text and "Credits" not in text


@pytest.mark.parametrize(("notes", "summary"), [
    ("<p>Stanton struggled to press on and continue the fight..</p>",
     "Stanton struggled to press on and continue the fight.."),
    ("<p>建国35周年纪念，和平鸽一起出7枚680元。品相如图，喜欢联系！江浙沪皖朋友优先！</p>",
     "建国35周年纪念，和平鸽一起出7枚680元。品相如图，喜欢联系！江浙沪皖朋友优先！"),
])
def test_sentences_are_kept_as_written(notes: str, summary: str) -> None:
    from bot.compose import summary_from_html
    assert summary_from_html(notes) == summary


def test_blank_lines_in_plain_text_notes_still_separate_paragraphs() -> None:
    notes = ("First paragraph of plain text notes, which is long enough to stand alone as "
             "a summary.\n\nNext")
    text = post(Episode(title="Ep", link="https://show.example/1", summary_html=notes),
                MASTODON_DEFAULT_RULES)
    assert "stand alone as a summary." in text and "Next" not in text


# --- the show's page before an audio file; never a tracker -------------------------------------


TRACKED = ("https://dts.podtrac.com/redirect.mp3/chrt.fm/track/ABC/pdst.fm/e/"
           "traffic.example.com/show/ep1.mp3")


def item_without_link(extra: str = "") -> str:
    return (f"<title>Ep</title><guid isPermaLink=\"false\">g1</guid>{extra}"
            f'<enclosure url="{TRACKED}" length="1" type="audio/mpeg"/>')


def test_an_item_without_link_is_announced_with_the_channel_link() -> None:
    (ep,) = parse_feed(feed(item_without_link())).episodes
    assert ep.link is None and ep.show_link == "https://show.example/"
    text = post(ep)
    assert "https://show.example/" in text and ".mp3" not in text


def test_listen_link_comes_before_the_channel_link() -> None:
    (ep,) = parse_feed(feed(item_without_link())).episodes
    text = post(ep, listen_link="https://listen.example/show")
    assert "https://listen.example/show" in text and "show.example/" not in text.replace(
        "listen.example/show", "")


def test_the_audio_file_is_shown_without_its_tracking_prefixes() -> None:
    head = HEAD.replace("<link>https://show.example/</link>", "")
    (ep,) = parse_feed(feed(item_without_link(), head=head)).episodes
    assert ep.show_link is None
    text = post(ep)
    assert "https://traffic.example.com/show/ep1.mp3" in text
    for tracker in ("podtrac", "chrt.fm", "pdst.fm"):
        assert tracker not in text


def test_a_tracking_prefixed_episode_link_is_unwound_too() -> None:
    ep = Episode(title="Ep", link="https://op3.dev/e/https://show.example/ep/1")
    assert "https://show.example/ep/1" in post(ep) and "op3.dev" not in post(ep)


# --- text that could deceive -------------------------------------------------------------------


BIDI = "\u202e\u2066\u200b\u2069\u202c"


def test_bidi_and_invisible_characters_never_reach_a_post() -> None:
    data = feed(
        f"<title>Ep 5 w/ Jane{BIDI} Doe: txt.{BIDI}exe</title><guid>g1</guid>"
        "<link>https://show.example/5</link>"
        f"<description>&lt;p&gt;Jane{BIDI} Doe talks about moc.elgoog{BIDI}.&lt;/p&gt;"
        "</description>"
        f'<podcast:person role="guest">Ann{BIDI} Guest</podcast:person>')
    (ep,) = parse_feed(data).episodes
    assert not set(BIDI) & set(ep.title)
    assert ep.persons[0].name == "Ann Guest"
    for rules in (X_RULES, MASTODON_DEFAULT_RULES):
        c = compose_episode(ep, show=f"The{BIDI} Show", rules=rules)
        assert not set(BIDI) & set(c.text), repr(c.text)
        assert "Jane Doe" in c.text and "Ann Guest" in c.guests


def test_undefined_entities_are_dropped_never_printed() -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol9 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
]>
<rss version="2.0"><channel><title>S &lol9;</title><link>https://s.example/</link>
<item><title>Ep &lol9; one</title><guid>g1</guid><link>https://s.example/1</link>
<description>Hello &lol9; world. &lt;p&gt;x &amp;bogus; y&lt;/p&gt;</description></item>
</channel></rss>"""
    parsed = parse_feed(data)
    (ep,) = parsed.episodes
    assert "&" not in parsed.title and "&" not in ep.title
    c = compose_episode(ep, show=parsed.title, rules=MASTODON_DEFAULT_RULES)
    assert "lol" not in c.text and "bogus" not in c.text, c.text
    assert "Ep one" in c.text and "Hello world." in c.text


# --- bounded work on hostile sizes -------------------------------------------------------------


HOSTILE = {
    # one 10 MB paragraph of sentences with abbreviations (a 58,000-sentence summary)
    "prose": "This is a sentence, Dr. Who said. ",
    # a tag every few bytes (feedparser's sanitizer took minutes)
    "markup": "<p>Jane <b>Doe</b> &amp; <a href='https://x.example/a'>link</a></p>\n",
    # a link every 22 bytes (the cut's "inside a link?" check was quadratic)
    "links": "https://example.com/a ",
    # an unclosed "<!" every 5 bytes (the tokenizer searched to the end for each)
    "bangs": "<! x ",
}


@pytest.mark.parametrize("shape", [*sorted(HOSTILE), "escaped markup"])
def test_a_10_mb_description_is_processed_in_bounded_time(shape: str) -> None:
    unit = HOSTILE[shape.removeprefix("escaped ")]
    notes = unit * (10 * 1024 * 1024 // len(unit))
    # escaped: "&lt;p&gt;..." rather than CDATA (expat's unbuffered text events cost minutes)
    notes = html.escape(notes) if shape.startswith("escaped") else f"<![CDATA[{notes}]]>"
    data = feed(f"<title>{TITLE}</title><guid>g1</guid><link>https://show.example/1</link>"
                f"<description>{notes}</description>",
                "<title>Other</title><guid>g2</guid><description>Short.</description>")
    started = time.perf_counter()
    parsed = parse_feed(data)
    find_boilerplate(parsed.episodes)
    posts = [compose_episode(parsed.episodes[0], show="The Show", rules=r)
             for r in (X_RULES, MASTODON_DEFAULT_RULES)]
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"{shape}: {elapsed:.1f} s"   # about 1-3 s here; minutes before
    for c, rules in zip(posts, (X_RULES, MASTODON_DEFAULT_RULES), strict=True):
        assert fits(c.text, rules) and "https://show.example/1" in c.text


@pytest.mark.parametrize("unit", ["<!-- ", "<![CDATA[ ", "<podcast:person>", "<podcast:person ",
                                  "<podcast:guid>", "<podcast:liveItem>", "<itunes:image ",
                                  "<content:encoded>"])
def test_a_malformed_feed_full_of_unclosed_tags_is_read_in_bounded_time(unit: str) -> None:
    junk = unit * (1024 * 1024 // len(unit))  # 1 MB (before: 100 KB took 3-8 s, 400 KB 1-2 min)
    item = "<title>Ep</title><guid>g1</guid><link>https://show.example/1</link>"
    for data in (feed(item + f"<description>{junk}</description>"),   # inside an item
                 feed(item, head=HEAD + junk)):                        # in the channel
        started = time.perf_counter()
        try:
            parse_feed(data)
        except ParseError:
            pass  # (unreadable is a fine answer; taking minutes is not)
        assert time.perf_counter() - started < 20


def test_a_10_mb_title_is_read_in_bounded_time() -> None:
    title = html.escape("<b>Bold</b> words ") * (10 * 1024 * 1024 // 36)
    data = feed(f"<title>{title}</title><guid>g1</guid><link>https://show.example/1</link>")
    started = time.perf_counter()
    (ep,) = parse_feed(data).episodes
    c = compose_episode(ep, show="The Show", rules=X_RULES)
    assert time.perf_counter() - started < 30  # about 2 s here; a minute before
    assert ep.title.startswith("Bold words Bold words") and "<" not in ep.title
    assert fits(c.text, X_RULES)


@pytest.mark.parametrize(("unit", "end"), [
    ("Hello Dr. Who, this is long. ", "this is long."),   # at a sentence's end
    ("👩\u200d👩\u200d👧", "👧…"),                          # at a grapheme, no space
    ("word ", "word…"),                                  # at a word
])
def test_a_summary_is_capped_at_a_sentence_word_or_grapheme(unit: str, end: str) -> None:
    from bot.compose import MAX_SUMMARY, summary_from_html
    summary = summary_from_html("<p>" + unit * (3 * MAX_SUMMARY // len(unit)) + "</p>")
    assert MAX_SUMMARY - 40 < len(summary) <= MAX_SUMMARY and summary.endswith(end)
    assert summary.removesuffix("…").endswith(unit.strip())  # (whole: no emoji cut in two)


# --- through the worker ------------------------------------------------------------------------


def test_the_worker_announces_a_hostile_episode_bounded_and_clean_and_the_next_one(world):
    world.cycle()
    hostile = new_episode(world, 6).with_(
        title=f"Episode 6 w/ Jane{BIDI} Doe", link="",
        notes="<p>Jane Doe &lol9; joins Dr. Who.\n\nA conversation.</p>"
              + "<p>" + "This is a sentence, Dr. Who said. " * 300_000 + "</p>")
    world.items[-1] = hostile
    new_episode(world, 7)
    started = time.perf_counter()
    world.cycle()
    assert time.perf_counter() - started < 60
    masto, x = world.texts()
    assert len(masto) == 2 and len(x) == 2
    for text in masto + x:
        assert not set(BIDI) & set(text) and "&lol9;" not in text
    first = next(t for t in masto if "Jane Doe" in t)
    assert "Jane Doe joins Dr. Who. A conversation." in first
    assert "https://www.buzzsprout.com/2046234" in first  # the show's page: no <link>
    assert any("Guest 7 joins me" in t for t in masto)
