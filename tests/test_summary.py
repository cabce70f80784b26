"""bot.compose's summary: show notes to one paragraph of plain text, with the feed's own
boilerplate (found by comparing its items) and plain promos left out. On the bundled seed
episode, on hand-made notes and on every episode of the real feeds in the shared test data."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from bot.compose import (
    _key,
    _paragraphs,
    find_boilerplate,
    summary_from_html,
)
from bot.errors import CrierError, ParseError
from bot.feed import parse_feed
from bot.models import Episode, ParsedFeed
from tests.conftest import ROOT

SAMPLE_FEED = ROOT / "config" / "sample-feed.xml"
SEED_FIRST_PARAGRAPH = (
    "I spoke to Nick Vincent, assistant professor of computing science at Simon Fraser "
    "University and author of the Data Leverage substack, about what it actually means that AI "
    "systems are built on the collective output of humanity's digital labor and what we can do "
    "about it."
)
SEED_PROMOS = ("NYM", "Nym", "Patreon", "Support the show", "Blockchain Radicals",
               "See all episodes", "review", "linktree", "blockchainsocialist")


@cache
def sample_feed() -> ParsedFeed:
    return parse_feed(SAMPLE_FEED.read_bytes())


@cache
def parsed_feeds(folder: Path) -> tuple[tuple[str, ParsedFeed], ...]:
    """Every readable feed under folder (not its subfolders), parsed once per test session:
    test_compose uses them too."""
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix in (".xml", ".rss"):
            try:
                out.append((path.name, parse_feed(path.read_bytes())))
            except ParseError:
                continue  # edge_broken.rss and edge_not-xml.rss: not feeds at all
    return tuple(out)


@pytest.fixture(scope="module")
def feeds(shared: Path) -> tuple[tuple[str, ParsedFeed], ...]:
    found = parsed_feeds(shared / "feeds")
    assert len(found) >= 37
    return found


# --- the seed episode --------------------------------------------------------------------------


def test_seed_summary_is_its_first_paragraph_without_sponsor_or_patreon_text() -> None:
    feed = sample_feed()
    seed = feed.episodes[0]
    assert seed.title.startswith("Collective action strategies in the age of AI")
    boilerplate = find_boilerplate(feed.episodes)
    summary = summary_from_html(seed.summary_html, boilerplate=boilerplate)
    assert summary == SEED_FIRST_PARAGRAPH
    for promo in SEED_PROMOS:
        assert promo not in summary


def test_seed_boilerplate_is_the_repeated_promos_not_the_episode_text() -> None:
    feed = sample_feed()
    boilerplate = find_boilerplate(feed.episodes)
    assert len(boilerplate) == 7
    for ep in feed.episodes:
        paragraphs = [p.text for p in _paragraphs(ep.summary_html)]
        # every item: one or two paragraphs of its own, then the same seven promos
        repeated = [p for p in paragraphs if _key(p) in boilerplate]
        assert repeated == paragraphs[-7:] and len(paragraphs) in (8, 9)
        assert repeated[0].startswith("This episode is sponsored by NYM")
        assert repeated[-1] == "See all episodes"


def test_seed_promos_are_dropped_by_the_built_in_patterns_alone() -> None:
    """A feed with one item has no repeats to learn from: the built-ins still know promos."""
    notes = sample_feed().episodes[0].summary_html
    only_promos = notes[notes.index("<p>This episode is sponsored"):]
    assert summary_from_html(only_promos) == ""
    assert summary_from_html(notes) == SEED_FIRST_PARAGRAPH


# --- find_boilerplate -----------------------------------------------------------------------------


def _episodes(*notes: str) -> list[Episode]:
    return [Episode(title=f"Episode {i}", summary_html=html) for i, html in enumerate(notes)]


def test_boilerplate_needs_min_count_and_min_share() -> None:
    own = [f"<p>Topic number {i} is discussed at length.</p>" for i in range(10)]
    eps = _episodes(*(o + ("<p>Support us!</p>" if i < 3 else "") for i, o in enumerate(own)))
    assert find_boilerplate(eps) == frozenset({"support us"})       # 3 of 10: 30 %
    assert find_boilerplate(eps, min_count=4) == frozenset()
    assert find_boilerplate(eps, min_share=0.31) == frozenset()
    assert find_boilerplate(eps[:5], min_share=0.5) == frozenset({"support us"})  # 3 of 5
    assert find_boilerplate(eps[:2]) == frozenset()                 # 2 items: never 3


def test_boilerplate_keys_are_normalized_but_keep_digits() -> None:
    eps = _episodes(
        "<p>Own text one.</p><p>Support the show!</p><p>Episode 12</p>",
        "<p>Own text two.</p><p>support   the SHOW</p><p>Episode 13</p>",
        "<p>Own text three.</p><p>Support&nbsp;the show…</p><p>Episode 14</p>",
    )
    assert find_boilerplate(eps) == frozenset({"support the show"})
    assert summary_from_html(eps[0].summary_html,
                             boilerplate=find_boilerplate(eps)) == "Own text one. Episode 12"


def test_boilerplate_counts_a_paragraph_once_per_item() -> None:
    eps = _episodes("<p>Ad</p>" * 5, "<p>Real</p>", "<p>Real too</p>")
    assert find_boilerplate(eps) == frozenset()


def test_find_boilerplate_is_fast_on_a_3000_item_feed(
        feeds: tuple[tuple[str, ParsedFeed], ...]) -> None:
    pool = [ep for _name, feed in feeds for ep in feed.episodes if ep.summary_html]
    assert len(pool) > 2500
    # distinct notes (no cache can help), about 3 MB of real show notes
    eps = [replace(pool[i % len(pool)],
                   summary_html=pool[i % len(pool)].summary_html + f"<p>Item {i}</p>")
           for i in range(3000)]
    start = time.process_time()   # CPU time: other processes on the machine don't count
    find_boilerplate(eps)
    assert time.process_time() - start < 1.0


# --- real feeds ---------------------------------------------------------------------------------


# what the notes of the few real items without a summary consist of: their host's ad line
HOST_LINES = ("acast.com/privacy", "pcm.adswizz.com")


def test_real_feeds_boilerplate_never_takes_a_normal_episode_summary(
        feeds: tuple[tuple[str, ParsedFeed], ...]) -> None:
    """Every episode with text of its own (a paragraph no other item of its feed has) gets a
    summary, and a summary is never boilerplate nor a sponsor read. The only items without one
    are those whose notes are nothing but their host's ad line."""
    with_text = 0
    empty = []
    for name, feed in feeds:
        boilerplate = find_boilerplate(feed.episodes)
        seen: dict[str, int] = {}
        for ep in feed.episodes:
            for k in {_key(p.text) for p in _paragraphs(ep.summary_html)}:
                seen[k] = seen.get(k, 0) + 1
        for ep in feed.episodes:
            keys = [_key(p.text) for p in _paragraphs(ep.summary_html)]
            if not keys:
                continue
            with_text += 1
            summary = summary_from_html(ep.summary_html, boilerplate=boilerplate)
            assert not summary or _key(summary) not in boilerplate, (name, ep.title)
            for promo in ("adchoices", "acast.com/privacy", "this episode is sponsored by",
                          "support the show", "promo code"):
                assert promo not in summary.casefold(), (name, ep.title, summary)
            if not summary:
                empty.append(ep.summary_html)
                assert all(seen[k] > 1 for k in keys) or any(
                    line in ep.summary_html for line in HOST_LINES), (name, ep.title)
    assert with_text > 2800
    assert len(empty) <= 3
    assert all(any(line in html for line in HOST_LINES) for html in empty)


@pytest.mark.parametrize(("feed", "expected"), [
    ("megaphone_critrole-sagas_2026-07-21.xml",
     {"learn more about your ad choices visit megaphone fm adchoices"}),
    ("acast_sentimental-garbage.xml",
     {"hosted on acast see acast com privacy for more information"}),
    ("libsyn_accidental-tech-podcast.rss", {"sponsored by", "follow up", "askatp"}),
    ("99pi.rss", set()),
    ("simplecast_serial.rss", set()),
])
def test_real_feeds_boilerplate_found(feeds: tuple[tuple[str, ParsedFeed], ...], feed: str,
                                      expected: set[str]) -> None:
    parsed = dict(feeds)[feed]
    assert find_boilerplate(parsed.episodes) == expected


# --- hand-made notes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # entities, whitespace, links become their text
        ("<p>Caf&eacute; &amp; cr&egrave;me&nbsp;&#8212; read <a href='https://x.org/a'>the "
         "paper</a>&#x21;</p>", "Café & crème — read the paper!"),
        ("<p>It&#8217;s &lt;fine&gt; &quot;here&quot;, isn&rsquo;t it? A first paragraph "
         "long enough to be a summary on its own.</p><p>Next</p>",
         "It’s <fine> \"here\", isn’t it? A first paragraph long enough to be a summary on its "
         "own."),
        # a very short first paragraph is joined with the next
        ("<p>Happy new year!</p><p>We look back.</p>", "Happy new year! We look back."),
        ("Line one<br>line two<br/><br />Next", "Line one line two — Next"),
        # lists: items are paragraphs; a short lead-in is joined with the first item
        ("<p>Topics:</p><ul><li>Tea &amp; biscuits</li><li>Cafés</li></ul>",
         "Topics: Tea & biscuits"),
        ("<ol><li>One thing</li><li>Another thing</li></ol>", "One thing — Another thing"),
        # headings are passed over when there is prose
        ("<h2>Episode 5: Tea</h2><p>We drink tea.</p>", "We drink tea."),
        ("<h2>Only a heading</h2>", "Only a heading"),
        # a promo opening the notes, and list headings, are left out
        ("<p>Support the show</p><p>This episode is brought to you by Acme. Acme makes "
         "everything you could ever need, for less.</p><p>Links:</p><p>The real summary is "
         "here, and it is long enough to stand on its own as a summary.</p>",
         "The real summary is here, and it is long enough to stand on its own as a summary."),
        # ... but a long summary that mentions a sponsor in passing is kept, less its
        # closing promo sentences
        ("<p>We talk about grants. Our research was sponsored by the NSF and the ERC, and "
         + "we talk about grants. " * 8 + "Support the show at example.com! Use code POD.</p>",
         "We talk about grants. Our research was sponsored by the NSF and the ERC, and "
         + "we talk about grants. " * 7 + "we talk about grants."),
        ("<p>Electronic Arts' Paul Barnett explains his top 10 games of 2011, brought to you "
         "by the letter D.</p>",
         "Electronic Arts' Paul Barnett explains his top 10 games of 2011, brought to you by "
         "the letter D."),
        # when nothing else is left, a short paragraph keeps its non-promo sentences
        ("<p>Geekistry continues! Sponsored by Benthic Petroleum! DC vs Marvel!</p>",
         "Geekistry continues! DC vs Marvel!"),
        ("<p>Use the code PODCAST for 20% off.</p><p>Leave us a review!</p>", ""),
    ],
)
def test_summary_from_html_cases(html: str, expected: str) -> None:
    assert summary_from_html(html) == expected


def test_patterns_drop_matching_paragraphs_case_insensitively() -> None:
    html = ("<p>Recorded live at the Town Hall, Springfield.</p>"
            "<p>Ann and Bo talk about the history of the Springfield monorail and why it "
            "never ran.</p>")
    assert summary_from_html(html).startswith("Recorded live at the Town Hall")
    summary = summary_from_html(html, patterns=[r"^recorded live\b"])
    assert summary.startswith("Ann and Bo talk about")
    with pytest.raises(CrierError, match="boilerplate pattern '\\(' is not a valid"):
        summary_from_html(html, patterns=["("])


def test_summary_from_html_is_pure_and_deterministic() -> None:
    notes = sample_feed().episodes[0].summary_html
    boilerplate = find_boilerplate(sample_feed().episodes)
    results = {summary_from_html(notes, boilerplate=boilerplate, patterns=("x",))
               for _ in range(3)}
    assert len(results) == 1
