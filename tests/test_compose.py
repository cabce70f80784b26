"""bot.compose: templates, summaries and fitting, by example and by property, and over every
episode of the real feeds in the shared test data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.compose import (
    DEFAULT_TEMPLATE,
    Composed,
    ComposeOptions,
    ascii_url,
    bluesky_short_url,
    compose_episode,
    find_boilerplate,
    fit_text,
    guests_for,
    render_mention,
    summary_from_html,
    with_params,
)
from bot.errors import CrierError, TemplateError
from bot.models import Episode, Person, Rules
from bot.textlen import (
    BLUESKY_RULES,
    MASTODON_DEFAULT_RULES,
    THREADS_RULES,
    X_RULES,
    count,
    extract_urls,
    fits,
    graphemes,
    x_length,
)
from tests.test_summary import parsed_feeds, sample_feed

LINK = "https://example.com/episodes/42"
EPISODE = Episode(
    title="The Great Episode About Things",
    guid="ep-42",
    link=LINK,
    summary_html="<p>First sentence here. A second one &amp; more! Third here?</p>"
                 "<p>Support the show</p>",
    enclosure_url="https://cdn.example.com/42.mp3",
    published=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    duration=3780,
    season=2,
    number=42,
    persons=(Person("Ann Guest"), Person("Hal Host", role="host"), Person("Bo")),
)


def rules(limit: int, counter: str = "x") -> Rules:
    return Rules("test", limit, counter, 23)


# --- summary_from_html ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # a first paragraph under 80 characters is joined with the next
        ("<p>Hello &amp; welcome,\n  friends.</p><p>Second</p>",
         "Hello & welcome, friends. Second"),
        ("<p>" + "Long enough. " * 7 + "</p><p>Second</p>", ("Long enough. " * 7).strip()),
        ("Intro line.<br><br>Links:<br>- one", "Intro line."),
        ("Line one<br>line two<br/><br />Next", "Line one line two — Next"),
        ("<div><h1></h1><p> </p><p>Real&nbsp;text</p></div>", "Real text"),
        ("<style>p{}</style><script>x()</script><p>Shown</p>", "Shown"),
        ("Plain text.\n\nSecond paragraph.", "Plain text. Second paragraph."),
        ("Plain text.\n\nSupport the show!", "Plain text."),
        ("<p>Caf&eacute; &#8212; &#x1F600;</p>", "Café — 😀"),
        ("\ufeff<p>bom\u0007 gone</p>", "bom gone"),
        ("", ""),
        ("<p> </p><br><br>", ""),
    ],
)
def test_summary_from_html(html: str, expected: str) -> None:
    assert summary_from_html(html) == expected


# --- templates --------------------------------------------------------------------------------


def test_default_template_renders_every_part() -> None:
    c = compose_episode(EPISODE, show="My Show", rules=X_RULES, hashtags=["podcast", "#News"])
    assert c == Composed(
        "New episode of My Show: The Great Episode About Things\n\n"
        "First sentence here. A second one & more! Third here?\n\n"
        f"{LINK}\n\n#podcast #News",
        count(c.text, X_RULES), 280, LINK, False, (), guests=("Ann Guest", "Bo"))
    assert "{{ summary }}" in DEFAULT_TEMPLATE


def test_empty_parts_leave_no_blank_line_garbage() -> None:
    bare = Episode(title="Just a title")
    c = compose_episode(bare, show="", rules=X_RULES)
    assert c.text == "Just a title" and c.link is None
    c = compose_episode(Episode(title="T", summary_html="<p>S</p>"), show="Show", rules=X_RULES)
    assert c.text == "New episode of Show: T\n\nS"
    c = compose_episode(Episode(title="T", enclosure_url="https://cdn.example/t.mp3"),
                        show="Show", rules=X_RULES, template="{{ title }}\n\n\n{{ summary }}  \n"
                        "{{ guests }}\n\n{{ link }}")
    assert c.text == "T\n\nhttps://cdn.example/t.mp3"


def test_template_variables() -> None:
    template = ("{{ show }}|{{ title }}|S{{ season }}E{{ number }}|{{ duration }}|{{ published }}"
                "|{{ guests }}|{{ guest_names }}|{{ mentions }}|{{ hashtags }}|{{ link }}")
    c = compose_episode(EPISODE, show="Show", rules=X_RULES, template=template,
                        hashtags=["a b", "#c", "c", "", "#2024"])
    assert c.text == (f"Show|The Great Episode About Things|S2E42|1h 3m|2024-05-01"
                      f"|Ann Guest and Bo|Ann Guest and Bo||#ab #c|{LINK}")
    options = ComposeOptions(template=template, people={"Bo": {"x": "@bo_x"}})
    c = compose_episode(EPISODE, show="Show", rules=X_RULES, options=options)
    assert "|Ann Guest and @bo_x|Ann Guest and Bo|@bo_x||" in c.text
    bare = compose_episode(Episode(title="T"), show="Show", rules=X_RULES, template=template)
    assert bare.text == "Show|T|SE|||||||"


@pytest.mark.parametrize(("seconds", "shown"),
                         [(45, "45s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (3780, "1h 3m")])
def test_duration(seconds: int, shown: str) -> None:
    ep = Episode(title="T", duration=seconds)
    assert compose_episode(ep, show="", rules=X_RULES, template="{{ duration }}").text == shown


def test_link_defaults_and_override() -> None:
    assert compose_episode(EPISODE, show="", rules=X_RULES).link == LINK
    no_page = Episode(title="T", enclosure_url="https://cdn.example/a.mp3")
    assert compose_episode(no_page, show="", rules=X_RULES).link == "https://cdn.example/a.mp3"
    c = compose_episode(EPISODE, show="", rules=X_RULES, link="https://short.example/42")
    assert c.link == "https://short.example/42" and "https://short.example/42" in c.text


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ("ok\n{{ title ", 2, "unexpected end of template"),
        ("{{ titel }}", 1, "'titel' is undefined"),
        ("a\nb\n{{ number + 'x' }}", 3, "TypeError"),
        ("{{ ().__class__.__bases__ }}", 1, "unsafe"),
        ("{% if false %}x{% endif %}", None, "empty post"),
    ],
)
def test_template_errors_name_the_template_and_line(template: str, line: int | None,
                                                    message: str) -> None:
    with pytest.raises(TemplateError) as err:
        compose_episode(EPISODE, show="S", rules=X_RULES, template=template,
                        template_name="mine")
    assert err.value.name == "mine" and err.value.line == line
    assert message in str(err.value) and "template 'mine'" in str(err.value)


# --- fitting ----------------------------------------------------------------------------------


def test_fitting_steps_in_priority_order() -> None:
    """Summary by sentences, by words, dropped; then the title by words; hashtags last."""
    def fit(limit: int) -> Composed:
        return compose_episode(EPISODE, show="My Show", rules=rules(limit),
                               hashtags=["podcast", "news"])

    head = "New episode of My Show: "
    tags = "\n\n#podcast #news"
    assert fit(150).trimmed == ()
    assert fit(145).trimmed == ("summary: 1 of 3 sentences dropped",)
    c = fit(120)
    assert c.trimmed == ("summary: 2 of 3 sentences dropped",)
    assert c.text == f"{head}The Great Episode About Things\n\nFirst sentence here.\n\n{LINK}{tags}"
    c = fit(110)
    assert c.trimmed == ("summary: cut to 1 of 10 words",)
    assert c.text == f"{head}The Great Episode About Things\n\nFirst…\n\n{LINK}{tags}"
    c = fit(100)  # "F…" would say nothing: a summary cut inside a word keeps 10 graphemes
    assert c.trimmed == ("summary: dropped",)
    assert c.text == f"{head}The Great Episode About Things\n\n{LINK}{tags}"
    c = fit(80)
    assert c.trimmed == ("summary: dropped", "title: cut to 2 of 5 words")
    assert c.text == f"{head}The Great…\n\n{LINK}{tags}"
    c = fit(70)
    assert c.text == f"{head}The…\n\n{LINK}{tags}"
    c = fit(66)
    assert c.trimmed[-1] == "hashtags: 1 of 2 dropped"
    assert c.text == f"{head}The…\n\n{LINK}\n\n#podcast"
    c = fit(60)  # with fewer hashtags, the title gets its words back
    assert c.trimmed == ("summary: dropped", "title: cut to 2 of 5 words",
                         "hashtags: 2 of 2 dropped")
    assert c.text == f"{head}The Great…\n\n{LINK}"
    for limit in (145, 120, 110, 100, 80, 70, 66, 60, 52):
        c = fit(limit)
        assert c.truncated and c.length <= c.limit and c.link == LINK and LINK in c.text
        if "title" not in " ".join(c.trimmed):
            assert c.text.endswith(tags)  # hashtags stay until the title is cut


def test_unfittable_post_raises_with_count_and_limit() -> None:
    shortest = f"New episode of My Show: T…\n\n{LINK}"  # "…" weighs 2 on X
    assert count(shortest, X_RULES) == 52
    with pytest.raises(CrierError, match=r"test: the post is still 52 characters .* limit is 45"):
        compose_episode(EPISODE, show="My Show", rules=rules(45))


def test_custom_ellipsis_and_rules_ellipsis() -> None:
    c = compose_episode(EPISODE, show="My Show", rules=rules(100), ellipsis="...")
    assert "First sentence..." in c.text
    c = compose_episode(EPISODE, show="My Show", rules=Rules("t", 100, "x", 23, ellipsis=" [+]"))
    assert "First sentence [+]" in c.text


def test_links_mentions_and_hashtags_in_the_summary_are_never_cut() -> None:
    url = "https://example.org/" + "long-path-" * 8
    summary = f"Talking with @someone@example.social about {url} and #Python today indeed"
    ep = Episode(title="T", summary_html=summary, link=LINK)
    seen = set()
    for limit in range(40, 120):
        c = compose_episode(ep, show="", rules=rules(limit))
        body = c.text.split("\n\n")[1] if c.text.count("\n\n") == 2 else ""
        seen.add(body)
        for token in (url, "@someone@example.social", "#Python"):
            if token[:8] in body:
                assert token in body, (limit, body)
    assert len(seen) > 4


def test_cjk_summary_is_cut_at_graphemes() -> None:
    ep = Episode(title="回", summary_html="日本語の長い説明文" * 40, link=LINK)
    c = compose_episode(ep, show="番組", rules=X_RULES)
    assert c.length <= 280 and c.text.count("…") == 1
    assert c.trimmed == ("summary: cut to 1 of 1 words",)


def test_bluesky_byte_cap_and_links_shown_as_its_app_shows_them() -> None:
    ep = Episode(title="👩‍👩‍👧‍👦" * 150, link=LINK)  # 150 graphemes, 3750 bytes
    c = compose_episode(ep, show="", rules=BLUESKY_RULES)
    shown = bluesky_short_url(LINK)
    assert fits(c.text, BLUESKY_RULES) and len(c.text.encode()) <= 3000 and shown in c.text
    assert c.links == ((shown, LINK),) and c.link == LINK and LINK not in c.text
    # a long path is shown cut, so it does not eat the limit; the facet gets all of it
    long_link = "https://example.com/" + "a" * 400
    c = compose_episode(ep, show="", rules=BLUESKY_RULES, link=long_link)
    assert c.links == (("example.com/aaaaaaaaaaaa…", long_link),) and fits(c.text, BLUESKY_RULES)
    assert "example.com/aaaaaaaaaaaa…" in c.text and c.card.uri == long_link
    # a host cannot be cut: what is shown counts at its full length
    long_host = "https://" + "a" * 400 + ".com/ep"
    with pytest.raises(CrierError, match="limit is 300 \\(3000 bytes\\)"):
        compose_episode(ep, show="", rules=BLUESKY_RULES, link=long_host)
    assert fits(compose_episode(ep, show="", rules=X_RULES, link=long_link).text, X_RULES)


def test_same_input_same_output() -> None:
    results = {compose_episode(EPISODE, show="S", rules=rules(90), hashtags=["a"])
               for _ in range(3)}
    assert len(results) == 1


# --- guests and mentions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "guests"),
    [
        ("Collective action strategies in the age of AI w/ Nick Vincent from Data Leverage",
         ("Nick Vincent",)),
        ("Episode 12: w/ Jane Doe and John Smith", ("Jane Doe", "John Smith")),
        ("Live at the Fillmore (feat. Ann Lee & Bo Diddley)", ("Ann Lee", "Bo Diddley")),
        ("Talking tech ft. Drake | Ep 5", ("Drake",)),
        ("Featuring Jean-Luc Picard: the interview", ("Jean-Luc Picard",)),
        ("A chat with Ursula von der Leyen about Europe", ("Ursula von der Leyen",)),
        ("Why we organize with Tessa Lindqvist", ("Tessa Lindqvist",)),
        ("Ep 5 with Jane Doe, John Roe and Ann Poe on tour", ("Jane Doe", "John Roe", "Ann Poe")),
        ("w/ Bob, Alice, and Eve", ("Bob", "Alice", "Eve")),
        ("The Rudest TTRPG Actual Play Ever?! (w/ Christopher Hastings & Joe Lepore)",
         ("Christopher Hastings", "Joe Lepore")),
        ("Reimagining Blood on the Clocktower w/ Becca Scott | Quests N’ Answers",
         ("Becca Scott",)),
        ("Influencers with Louise O'Neill", ("Louise O'Neill",)),
        ("Talking shop w/Dr. Jane Q. Public", ("Dr. Jane Q. Public",)),
        ("w/ Nick Vincent - part 2", ("Nick Vincent",)),
        ("Chat w/ Nick Vincent. Next week: Bob", ("Nick Vincent",)),
        ("w/ Nick Vincent w/ nick vincent", ("Nick Vincent",)),
        # not names
        ("Coding with AI agents", ()),
        ("Dinner with friends", ()),
        ("Interview with Bob", ()),            # "with" needs two name-shaped words
        ("Living With Chronic Pain", ()),      # Title Case: capitals say nothing
        ("271: Voting With Your Virtual Feet", ()),
        ("Season finale w/o guests", ()),
        ("Feat Fetishes | 4-Sided Dive", ()),  # "feat." needs its dot
        ("", ()),
    ],
)
def test_guests_from_title_patterns(title: str, guests: tuple[str, ...]) -> None:
    assert guests_for(Episode(title=title)) == guests


def test_guests_from_podcast_person_first_then_title_without_hosts() -> None:
    ep = Episode(
        title="Tea w/ Nick Vincent, Josh Dykgraaf and Omar Haddad",
        persons=(Person("Josh Dykgraaf", role="host"), Person("Nick Vincent", role="guest"),
                 Person(" Ann  Lee ", role="Guest"), Person("Cy", role="producer")),
    )
    assert guests_for(ep) == ("Nick Vincent", "Ann Lee", "Omar Haddad")
    seed = sample_feed().episodes[0]
    assert guests_for(seed) == ("Nick Vincent",)


def test_guests_named_in_the_people_map_are_read_as_written_there() -> None:
    ep = Episode(title="Episode 6: talking about topic 6 w/ Guest 6 and ann lee")
    assert guests_for(ep) == ("Guest",)  # "6" is no part of a name...
    people = {"Guest 6": {"x": "@guest_six"}, "Ann Lee": {}}
    assert guests_for(ep, people) == ("Guest 6", "Ann Lee")  # ... unless the host says so
    c = compose_episode(ep, show="", rules=X_RULES, options=ComposeOptions(people=people))
    assert c.guests == ("Guest 6", "Ann Lee") and "With @guest_six" in c.text


PEOPLE = {
    "Nick Vincent": {"mastodon": "@nick@dataleverage.social", "x": "@nickmvincent"},
    "Ann Lee": {"mastodon": "ann@example.social", "x": "not a handle!"},
    "Bo": {"mastodon": "@bo", "x": "@sixteen_chars_xx"},
    "Cy": {"twitter": "cy_tw", "mastodon": "@cy@bad_domain"},
}


@pytest.mark.parametrize(
    ("name", "platform", "shown"),
    [
        ("Nick Vincent", "mastodon", "@nick@dataleverage.social"),  # kept whole
        ("Nick Vincent", "x", "@nickmvincent"),
        ("nick  VINCENT", "x", "@nickmvincent"),                    # names match loosely
        ("Nick Vincent", "bluesky", "Nick Vincent"),                # none in the map
        ("Ann Lee", "mastodon", "@ann@example.social"),             # "@" added
        ("Ann Lee", "x", "Ann Lee"),                                # invalid: the name
        ("Bo", "mastodon", "Bo"),                                   # no domain: the name
        ("Bo", "x", "Bo"),                                          # 16 characters
        ("Cy", "x", "@cy_tw"),                                      # "twitter" works too
        ("Cy", "mastodon", "Cy"),
        ("Dee Unknown", "mastodon", "Dee Unknown"),
    ],
)
def test_render_mention(name: str, platform: str, shown: str) -> None:
    assert render_mention(name, platform, PEOPLE) == shown


GUEST_EPISODE = Episode(
    title="Data strikes w/ Nick Vincent and Ann Lee",
    link=LINK,
    summary_html="<p>We talk about data leverage, strikes and what collective action "
                 "means when AI is built on everyone's work.</p>",
)


def test_default_template_mentions_guests_with_a_handle_on_that_platform() -> None:
    opts = ComposeOptions(people=PEOPLE, hashtags=("Podcast",))
    x = compose_episode(GUEST_EPISODE, show="S", rules=X_RULES, options=opts)
    assert "\n\nWith @nickmvincent\n\n" in x.text and x.guests == ("Nick Vincent", "Ann Lee")
    assert "not a handle" not in x.text
    m = compose_episode(GUEST_EPISODE, show="S", rules=MASTODON_DEFAULT_RULES, options=opts)
    assert "\n\nWith @nick@dataleverage.social and @ann@example.social\n\n" in m.text
    assert m.text.endswith(f"{LINK}\n\n#Podcast")
    b = compose_episode(GUEST_EPISODE, show="S", rules=BLUESKY_RULES, options=opts)
    assert "With" not in b.text and "@" not in b.text
    # no handle on the platform: no "With" line; the names are in the title already
    bare = compose_episode(GUEST_EPISODE, show="S", rules=X_RULES)
    assert "With" not in bare.text
    # a handle the summary already has is not repeated
    ep = Episode(title=GUEST_EPISODE.title, link=LINK,
                 summary_html="<p>Follow-up with @nickmvincent on data strikes.</p>")
    c = compose_episode(ep, show="S", rules=X_RULES, options=opts)
    assert c.text.count("@nickmvincent") == 1 and "With" not in c.text


def test_guests_variable_renders_mentions_or_names() -> None:
    opts = ComposeOptions(template="{{ title }} — {{ guests }} / {{ mentions }} / "
                                   "{{ guest_names }}", people=PEOPLE)
    c = compose_episode(GUEST_EPISODE, show="S", rules=X_RULES, options=opts)
    assert c.text.endswith(" — @nickmvincent and Ann Lee / @nickmvincent / "
                           "Nick Vincent and Ann Lee")


# --- hashtags -----------------------------------------------------------------------------------


def test_hashtags_keep_their_case_and_are_not_repeated() -> None:
    ep = Episode(title="Why #python matters for podcasting", link="https://example.com/podcast",
                 summary_html="<p>About Python, AI and the @news desk.</p>")
    c = compose_episode(ep, show="S", rules=X_RULES,
                        hashtags=["Python", "BlockchainSocialist", "AI", "podcast", "News",
                                  "podcasting", "#Podcasting"])
    # "#python" and the word "AI" are in the text; "podcast" only inside the link and
    # "news" only in a mention, so those are added; "Podcasting" is a word of the title
    assert c.text.endswith("\n\n#BlockchainSocialist #podcast #News")


def test_seed_episode_keeps_guest_link_and_hashtags_on_x_and_mastodon() -> None:
    """The acceptance case: the bundled feed's newest episode, default template."""
    feed = sample_feed()
    seed = feed.episodes[0]
    opts = ComposeOptions(hashtags=("BlockchainSocialist",),
                          boilerplate=find_boilerplate(feed.episodes))
    for r in (X_RULES, MASTODON_DEFAULT_RULES):
        c = compose_episode(seed, show=feed.title, rules=r, options=opts, show_image=feed.image)
        assert c.length <= c.limit and fits(c.text, r)
        assert "Nick Vincent" in c.text and "#BlockchainSocialist" in c.text
        assert c.link == seed.link and seed.link in c.text
        assert "I spoke to Nick Vincent" in c.text
        for promo in ("NYM", "Patreon", "Support the show", "See all episodes"):
            assert promo not in c.text
        assert c.image_url == seed.image and "Collective action strategies" in c.alt_text
    people = {"Nick Vincent": {"x": "@nickmvincent",
                               "mastodon": "@nickmvincent@dataleverage.social"}}
    opts = ComposeOptions(hashtags=("BlockchainSocialist",), people=people,
                          boilerplate=find_boilerplate(feed.episodes))
    c = compose_episode(seed, show=feed.title, rules=X_RULES, options=opts)
    assert "\n\nWith @nickmvincent\n\n" in c.text and "#BlockchainSocialist" in c.text
    assert seed.link in c.text and c.length <= 280


# --- links ----------------------------------------------------------------------------------------

PAGE, LISTEN, AUDIO = ("https://example.com/ep/7", "https://listen.example.org/show",
                       "https://cdn.example.com/7.mp3")


@pytest.mark.parametrize(
    ("link", "page", "listen", "chosen"),
    [
        ("episode", PAGE, LISTEN, PAGE),
        ("episode", None, LISTEN, LISTEN),
        ("episode", None, None, AUDIO),       # the raw audio only when nothing else exists
        ("listen", PAGE, LISTEN, LISTEN),
        ("listen", PAGE, None, PAGE),
        ("listen", None, None, AUDIO),
    ],
)
def test_link_choice(link: str, page: str | None, listen: str | None, chosen: str) -> None:
    ep = Episode(title="T", link=page, enclosure_url=AUDIO)
    c = compose_episode(ep, show="", rules=X_RULES,
                        options=ComposeOptions(link=link, listen_link=listen))
    assert c.link == chosen and c.text == f"T\n\n{chosen}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (PAGE, f"{PAGE}?utm_source=mastodon&utm_medium=social"),
        (f"{PAGE}?id=1&utm_source=feed", f"{PAGE}?id=1&utm_source=feed&utm_medium=social"),
        (f"{PAGE}#t=10", f"{PAGE}?utm_source=mastodon&utm_medium=social#t=10"),
        ("mailto:a@example.com", "mailto:a@example.com"),
    ],
)
def test_utm_parameters_are_merged_not_repeated(url: str, expected: str) -> None:
    utm = {"utm_source": "mastodon", "utm_medium": "social"}
    assert with_params(url, utm) == expected
    ep = Episode(title="T", link=url)
    c = compose_episode(ep, show="", rules=MASTODON_DEFAULT_RULES,
                        options=ComposeOptions(utm=utm))
    assert c.link == expected and expected in c.text


def test_non_ascii_url_on_x_is_encoded_counted_23_and_kept_whole() -> None:
    raw = "https://bücher.de/folgen/größe?q=straße&x=ü#teil"
    assert x_length(raw) > 23  # X would link only "https://bücher.de/folgen/größe?q=stra"
    ep = Episode(title="Ein Titel", link=raw)
    c = compose_episode(ep, show="", rules=X_RULES,
                        options=ComposeOptions(utm={"utm_source": "x"}))
    encoded = ("https://xn--bcher-kva.de/folgen/gr%C3%B6%C3%9Fe?q=stra%C3%9Fe&x=%C3%BC"
               "&utm_source=x#teil")
    assert c.link == encoded and c.text == f"Ein Titel\n\n{encoded}"
    assert c.length == len("Ein Titel\n\n") + 23
    assert [u for u, _s, _e in extract_urls(c.text)] == [encoded]
    # Mastodon links a unicode host but stops at a non-ASCII query: only the path is encoded
    m = compose_episode(ep, show="", rules=MASTODON_DEFAULT_RULES)
    assert m.link == "https://bücher.de/folgen/gr%C3%B6%C3%9Fe?q=stra%C3%9Fe&x=%C3%BC#teil"
    assert m.length == len("Ein Titel\n\n") + 23
    assert ascii_url(PAGE) == PAGE and ascii_url("https://例え.jp/パス") == (
        "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9")


def test_link_policy_none_leaves_the_link_out() -> None:
    c = compose_episode(EPISODE, show="S", rules=X_RULES,
                        options=ComposeOptions(link_policy="none", hashtags=("pod",)))
    assert c.link is None and c.reply_text is None
    assert "http" not in c.text and not extract_urls(c.text)
    assert c.text == ("New episode of S: The Great Episode About Things\n\n"
                      "First sentence here. A second one & more! Third here?\n\n#pod")


def test_link_policy_reply_moves_the_link_to_a_reply_that_fits() -> None:
    c = compose_episode(EPISODE, show="S", rules=X_RULES,
                        options=ComposeOptions(link_policy="reply"))
    assert c.link == LINK and LINK not in c.text and c.reply_text == f"Listen: {LINK}"
    tight = compose_episode(EPISODE, show="S", rules=rules(30),
                            options=ComposeOptions(link_policy="reply"))
    assert tight.reply_text == LINK and tight.length <= 30  # "Listen: " + 23 is 31
    with pytest.raises(CrierError, match="the link alone is 23 characters; the limit is 20"):
        compose_episode(Episode(title="T", link=LINK), show="S", rules=rules(20),
                        options=ComposeOptions(link_policy="reply"))


@pytest.mark.parametrize("options", [ComposeOptions(link_policy="later"),
                                     ComposeOptions(link="audio")])
def test_unknown_link_choice_or_policy_is_an_error(options: ComposeOptions) -> None:
    with pytest.raises(CrierError, match="expected one of"):
        compose_episode(EPISODE, show="S", rules=X_RULES, options=options)


# --- artwork alt text ---------------------------------------------------------------------------


def test_image_and_default_alt_text() -> None:
    ep = Episode(title="Tea w/ Ann Lee", image="https://img.example/ep.jpg")
    c = compose_episode(ep, show="My Show", rules=X_RULES, show_image="https://img.example/s.jpg")
    assert c.image_url == "https://img.example/ep.jpg"
    assert c.alt_text == "Cover art of My Show: Tea w/ Ann Lee"
    c = compose_episode(Episode(title="T"), show="My Show", rules=X_RULES,
                        show_image="https://img.example/s.jpg")
    assert (c.image_url, c.alt_text) == ("https://img.example/s.jpg", "My Show podcast artwork")
    c = compose_episode(Episode(title="T"), show="My Show", rules=X_RULES)
    assert c.image_url is None and c.alt_text is None


def test_alt_template_and_its_limit() -> None:
    ep = Episode(title="Tea w/ Ann Lee " + "and a very long title " * 10,
                 image="https://img.example/ep.jpg", number=7)
    opts = ComposeOptions(alt_template="Episode {{ number }} of {{ show }} ({{ image }}): "
                                       "{{ title }} with {{ guest_names }}")
    c = compose_episode(ep, show="S", rules=X_RULES, options=opts)
    assert c.alt_text.startswith("Episode 7 of S (episode): Tea w/ Ann Lee and a very")
    short = Rules("x", 280, "x", 23, alt_text_limit=40)
    c = compose_episode(ep, show="S", rules=short, options=opts)
    assert c.alt_text == "Episode 7 of S (episode): Tea w/ Ann…"
    assert len(c.alt_text) <= 40
    with pytest.raises(TemplateError, match="template 'accounts.x.alt_template', line 1"):
        compose_episode(ep, show="S", rules=X_RULES, options=ComposeOptions(
            alt_template="{{ nope }}", template_name="accounts.x.template"))


# --- the old keyword form and the options form agree ---------------------------------------------


def test_options_and_keyword_arguments_agree() -> None:
    old = compose_episode(EPISODE, show="S", rules=rules(100), template=None,
                          hashtags=["pod"], ellipsis="...")
    new = compose_episode(EPISODE, show="S", rules=rules(100),
                          options=ComposeOptions(hashtags=("pod",), ellipsis="..."))
    assert old == new and "..." in new.text


# --- fit_text ---------------------------------------------------------------------------------

PROMO = ("Big news today. Our new season starts Monday. You will love it, we promise! "
         "https://example.com/s2 #podcast")


def test_fit_text_fitting_text_is_unchanged() -> None:
    c = fit_text("  Hello there  ", X_RULES)
    assert c == Composed("Hello there", 11, 280, None, False, ())


def test_fit_text_without_fit_reports_the_numbers() -> None:
    c = fit_text(PROMO, rules(40), fit=False)
    assert c.text == PROMO and c.length == count(PROMO, rules(40)) > c.limit == 40
    assert not c.truncated


def test_fit_text_drops_sentences_then_words_keeping_the_tail() -> None:
    c = fit_text(PROMO, rules(80))
    assert c.text == "Big news today. Our new season starts Monday. https://example.com/s2 #podcast"
    assert c.trimmed == ("text: 1 of 3 sentences dropped",) and c.truncated
    c = fit_text(PROMO, rules(45))
    assert c.text == "Big news… https://example.com/s2 #podcast"
    assert c.trimmed == ("text: cut to 2 of 14 words",)
    assert c.length <= 45


def test_fit_text_raises_with_count_and_limit() -> None:
    assert count(PROMO, rules(30)) == 108
    with pytest.raises(CrierError, match=r"test: the text is 108 characters; the limit is 30"):
        fit_text(PROMO, rules(30))


def test_fit_text_keeps_paragraphs_and_mentions() -> None:
    text = "First paragraph here.\n\nSecond one with @alice@example.social inside it. More."
    c = fit_text(text, rules(60, "mastodon"))
    assert c.text == "First paragraph here.\n\nSecond one with @alice@example.social inside it."
    c = fit_text(text, rules(40, "mastodon"))
    assert "@alice@example.social" in c.text or "@alice" not in c.text
    assert c.length <= 40


# --- properties -------------------------------------------------------------------------------

_SCRIPTS = [
    "word", "Wörter", "日本語の説明", "한국어", "中文字符", "עברית", "العربية", "ελληνικά",
    "e\u0301\u0302", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🇺🇸", "👍🏽", "#️⃣", "🏴\U000e0067\U000e0062\U000e0073"
    "\U000e0063\U000e0074\U000e007f", "\u202e", "\u200d", "@user", "@a@b.social", "#tag",
    "example.com", "https://x.org/p?q=1", ".", "!", "?", "…", "。", ",", "&amp;", "<b>", "\n",
]
_word = st.sampled_from(_SCRIPTS) | st.text(min_size=1, max_size=12) | st.text(
    alphabet="abcdefghij", min_size=60, max_size=300)
_prose = st.lists(_word, max_size=40).map(" ".join)
_link = st.builds(
    lambda host, path: f"https://{host}/{path}",
    st.sampled_from(["example.com", "www.pod.example.org", "xn--n3h.com", "a.co"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_/%", max_size=1000),
)
_RULES = [X_RULES, MASTODON_DEFAULT_RULES, Rules("mastodon", 11000, "mastodon", 23), BLUESKY_RULES,
          THREADS_RULES]


_PROP_PEOPLE = {
    "Nick Vincent": {"x": "@nickmvincent", "mastodon": "@nick@dataleverage.social"},
    "Ann Lee": {"x": "@@ann-lee", "mastodon": "ann@@example.social"},   # broken: names
    "Zoë Ölçer": {"x": "zoe_o", "mastodon": "zoe@ölçer.example"},
    "山田 太郎": {"mastodon": "@yamada@example.jp"},
}
_name = st.sampled_from(list(_PROP_PEOPLE) + ["Bo", "Jean-Luc Picard"]) | st.text(
    min_size=1, max_size=20)
_unicode_link = st.builds(
    lambda host, path: f"https://{host}/{path}",
    st.sampled_from(["example.com", "bücher.de", "例え.jp", "a.co"]),
    st.text(alphabet="abcxyz0123456789-_/äöü日本", max_size=200),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_prose, summary=_prose, link=_link, show=st.text(max_size=30),
       tags=st.lists(st.sampled_from(["pod", "news", "日本", "a_b", "BlockchainSocialist"]),
                     max_size=4),
       guests=st.lists(_name, max_size=4), in_title=st.booleans(),
       policy=st.sampled_from(["inline", "none", "reply"]))
def test_every_composed_post_fits_and_keeps_its_link(
        title: str, summary: str, link: str, show: str, tags: list[str], guests: list[str],
        in_title: bool, policy: str) -> None:
    if in_title and guests:
        title = f"{title} w/ {' and '.join(guests)}"
    ep = Episode(title=title, summary_html=summary,
                 persons=tuple(Person(g, role="guest") for g in guests))
    opts = ComposeOptions(hashtags=tuple(tags), people=_PROP_PEOPLE, link_policy=policy)
    for r in _RULES:
        lnk = link[:150] if r.counter == "bluesky" else link
        shown = bluesky_short_url(lnk) if r.counter == "bluesky" else lnk
        try:
            c = compose_episode(ep, show=show, rules=r, link=lnk, options=opts)
        except TemplateError as e:  # no title, summary, tags, and the link not in the post
            assert "empty post" in str(e) and policy != "inline"
            continue
        assert fits(c.text, r), (r, c)
        assert c.length == count(c.text, r) <= r.limit
        if policy == "none":
            assert c.link is None and c.reply_text is None
        else:
            assert c.link == lnk
            assert (shown in c.text) == (policy == "inline")
            assert (c.reply_text is not None) == (policy == "reply")
            assert c.reply_text is None or (lnk in c.reply_text and fits(c.reply_text, r))
        if "@@" not in title + summary + show:
            assert "@@" not in c.text  # never a broken mention
        assert compose_episode(ep, show=show, rules=r, link=lnk, options=opts) == c


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_prose, link=_unicode_link, utm=st.booleans(),
       choice=st.sampled_from(["episode", "listen"]))
def test_chosen_link_is_whole_and_counted_as_a_link(title: str, link: str, utm: bool,
                                                    choice: str) -> None:
    ep = Episode(title=title, link=link, enclosure_url="https://cdn.example.com/a.mp3")
    opts = ComposeOptions(link=choice, utm={"utm_source": "social"} if utm else {})
    for r in (X_RULES, MASTODON_DEFAULT_RULES):
        c = compose_episode(ep, show="S", rules=r, options=opts)
        expected = ascii_url(with_params(link, opts.utm), host=r.counter == "x")
        assert c.link == expected and expected in c.text and fits(c.text, r)
        if r.counter == "x":
            assert c.link.isascii()


def _is_grapheme_prefix(part: str, whole: str) -> bool:
    kept = graphemes(part)
    return kept == graphemes(whole)[:len(kept)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_prose, summary=_prose, guests=st.lists(_name, max_size=3))
def test_cuts_never_split_a_grapheme(title: str, summary: str, guests: list[str]) -> None:
    ep = Episode(title=title, summary_html=summary, link=LINK,
                 persons=tuple(Person(g, role="guest") for g in guests))
    template = "⟦{{ title }}⟧⟦{{ summary }}⟧{{ guests }} {{ link }} {{ hashtags }}"
    opts = ComposeOptions(template=template, people=_PROP_PEOPLE, hashtags=("pod", "日本"))

    def parts(c: Composed) -> tuple[str, str]:
        pieces = c.text.split("⟧")
        return pieces[0][1:], pieces[1][1:]

    full = parts(compose_episode(ep, show="", rules=rules(10**6, "mastodon"), options=opts))
    for r in (X_RULES, BLUESKY_RULES, rules(60)):
        try:
            c = compose_episode(ep, show="", rules=r, options=opts)
        except CrierError:
            continue  # the shortest form is too long for rules(60): nothing was cut
        for out, whole in zip(parts(c), full, strict=True):
            if out != whole and out:
                assert _is_grapheme_prefix(out.removesuffix("…"), whole), (out, whole)


@settings(max_examples=60, deadline=None)
@given(body=_prose, rule=st.sampled_from(_RULES + [rules(80), rules(120, "mastodon")]))
def test_fit_text_fits_or_raises(body: str, rule: Rules) -> None:
    text = body + " https://example.com/promo"
    try:
        c = fit_text(text, rule)
    except CrierError as e:
        assert str(rule.limit) in str(e)
        return
    assert fits(c.text, rule) and c.text.endswith("https://example.com/promo")
    assert fit_text(text, rule) == c


# --- real feeds -------------------------------------------------------------------------------


def test_every_episode_of_every_feed_fits(shared: Path) -> None:
    """Every item of every real feed, parsed by bot.feed, boilerplate found per feed, with
    hashtags, on X and Mastodon: within the limit, the link whole, the alt text too."""
    feeds = parsed_feeds(shared / "feeds")
    assert len(feeds) >= 37
    failures, truncated, composed = [], 0, 0
    seen = set()
    for name, feed in feeds:
        opts = ComposeOptions(hashtags=("podcast", "CamelCase"),
                              boilerplate=find_boilerplate(feed.episodes))
        for ep in feed.episodes:
            if ep in seen:  # the same item in two snapshots of one feed
                continue
            seen.add(ep)
            for r in (X_RULES, MASTODON_DEFAULT_RULES):
                c = compose_episode(ep, show=feed.title, rules=r, options=opts,
                                    show_image=feed.image)
                composed += 1
                truncated += c.truncated
                link_ok = c.link in c.text if c.link else not (ep.link or ep.enclosure_url)
                alt_ok = c.alt_text is None or 0 < len(c.alt_text) <= r.alt_text_limit
                if not (fits(c.text, r) and link_ok and alt_ok):
                    failures.append(f"{name}: {ep.title!r} on {r.platform}: {c.length}")
    assert failures == []
    assert composed > 4500
    assert truncated > 1000  # real show notes are long: fitting did real work


@pytest.mark.parametrize("rules", [X_RULES, MASTODON_DEFAULT_RULES], ids=["x", "mastodon"])
def test_a_show_name_longer_than_the_post_is_cut_last_keeping_the_title(rules):
    """A feed whose <title> swallowed half the document (found by the fuzz test): the show
    name is cut at a word, after the summary and hashtags, so the episode's title still fits."""
    show = " ".join(f"word{n}" for n in range(120))          # ~700 characters
    title = "Episode 9: Cooperatives and the commons with Guest Nine"
    ep = Episode(title=title, link=PAGE, summary_html="<p>" + "We talk. " * 20 + "</p>")
    c = compose_episode(ep, show=show, rules=rules,
                        options=ComposeOptions(hashtags=("BlockchainSocialist",)))
    assert count(c.text, rules) <= rules.limit
    assert title in c.text and PAGE in c.text
    cut = c.text.split("New episode of ", 1)[1].split("…", 1)[0]
    assert show.startswith(cut) and show[len(cut)] == " "     # at a word end
    assert c.trimmed[0].startswith("show name: cut to ")
    # a show name that fits is never touched
    short = compose_episode(ep, show="The Blockchain Socialist", rules=rules)
    assert "The Blockchain Socialist" in short.text
    assert not any(t.startswith("show name") for t in short.trimmed)
