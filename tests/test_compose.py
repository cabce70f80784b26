"""bot.compose: templates, summaries and fitting, by example and by property, and over every
episode of the real feeds in the shared test data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.compose import DEFAULT_TEMPLATE, Composed, compose_episode, fit_text, summary_from_html
from bot.errors import CrierError, TemplateError
from bot.models import Episode, Person, Rules
from bot.textlen import (
    BLUESKY_RULES,
    MASTODON_DEFAULT_RULES,
    X_RULES,
    count,
    fits,
    graphemes,
)

LINK = "https://example.com/episodes/42"
EPISODE = Episode(
    title="The Great Episode About Things",
    guid="ep-42",
    link=LINK,
    summary_html="<p>First sentence here. A second one &amp; more! Third here?</p><p>Other</p>",
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
        ("<p>Hello &amp; welcome,\n  friends.</p><p>Second</p>", "Hello & welcome, friends."),
        ("Intro line.<br><br>Links:<br>- one", "Intro line."),
        ("Line one<br>line two<br/><br />Next", "Line one line two"),
        ("<div><h1></h1><p> </p><p>Real&nbsp;text</p></div>", "Real text"),
        ("<style>p{}</style><script>x()</script><p>Shown</p>", "Shown"),
        ("Plain text.\n\nSecond paragraph.", "Plain text."),
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
        count(c.text, X_RULES), 280, LINK, False, ())
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
                "|{{ guests }}|{{ hashtags }}|{{ link }}")
    c = compose_episode(EPISODE, show="Show", rules=X_RULES, template=template,
                        hashtags=["a b", "#c", "c", ""])
    assert c.text == (f"Show|The Great Episode About Things|S2E42|1h 3m|2024-05-01"
                      f"|Ann Guest, Bo|#ab #c|{LINK}")
    bare = compose_episode(Episode(title="T"), show="Show", rules=X_RULES, template=template)
    assert bare.text == "Show|T|SE|||||"


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
    def fit(limit: int) -> Composed:
        return compose_episode(EPISODE, show="My Show", rules=rules(limit),
                               hashtags=["podcast", "news"])

    assert fit(150).trimmed == ()
    assert fit(145).trimmed == ("hashtags: 1 of 2 dropped",)
    c = fit(110)
    assert c.trimmed == ("hashtags: 2 of 2 dropped", "summary: 2 of 3 sentences dropped")
    assert "First sentence here.\n\n" in c.text
    c = fit(100)
    assert c.trimmed[1] == "summary: cut to 2 of 10 words"
    assert "\n\nFirst sentence…\n\n" in c.text
    c = fit(80)
    assert c.trimmed[1:] == ("summary: dropped",)
    assert c.text == f"New episode of My Show: The Great Episode About Things\n\n{LINK}"
    c = fit(60)
    assert c.text == f"New episode of My Show: The Great…\n\n{LINK}"
    assert c.trimmed[-1] == "title: cut to 2 of 5 words"
    for c in (fit(145), fit(110), fit(100), fit(80), fit(60)):
        assert c.truncated and c.length <= c.limit and c.link == LINK and LINK in c.text


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


def test_bluesky_byte_cap_and_full_length_links() -> None:
    ep = Episode(title="👩‍👩‍👧‍👦" * 150, link=LINK)  # 150 graphemes, 3750 bytes
    c = compose_episode(ep, show="", rules=BLUESKY_RULES)
    assert fits(c.text, BLUESKY_RULES) and len(c.text.encode()) <= 3000 and LINK in c.text
    long_link = "https://example.com/" + "a" * 400
    with pytest.raises(CrierError, match="limit is 300 \\(3000 bytes\\)"):
        compose_episode(ep, show="", rules=BLUESKY_RULES, link=long_link)
    assert fits(compose_episode(ep, show="", rules=X_RULES, link=long_link).text, X_RULES)


def test_same_input_same_output() -> None:
    results = {compose_episode(EPISODE, show="S", rules=rules(90), hashtags=["a"])
               for _ in range(3)}
    assert len(results) == 1


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
_RULES = [X_RULES, MASTODON_DEFAULT_RULES, Rules("mastodon", 11000, "mastodon", 23), BLUESKY_RULES]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_prose, summary=_prose, link=_link, show=st.text(max_size=30),
       tags=st.lists(st.sampled_from(["pod", "news", "日本", "a_b"]), max_size=4))
def test_every_composed_post_fits_and_keeps_its_link(title: str, summary: str, link: str,
                                                     show: str, tags: list[str]) -> None:
    ep = Episode(title=title, summary_html=summary)
    for r in _RULES:
        lnk = link[:150] if r.counter == "bluesky" else link
        c = compose_episode(ep, show=show, rules=r, link=lnk, hashtags=tags)
        assert fits(c.text, r), (r, c)
        assert c.length == count(c.text, r) <= r.limit
        assert lnk in c.text and c.link == lnk
        assert compose_episode(ep, show=show, rules=r, link=lnk, hashtags=tags) == c


def _is_grapheme_prefix(part: str, whole: str) -> bool:
    kept = graphemes(part)
    return kept == graphemes(whole)[:len(kept)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_prose, summary=_prose)
def test_cuts_never_split_a_grapheme(title: str, summary: str) -> None:
    ep = Episode(title=title, summary_html=summary, link=LINK)
    template = "⟦{{ title }}⟧⟦{{ summary }}⟧{{ link }}"

    def parts(c: Composed) -> tuple[str, str]:
        pieces = c.text.split("⟧")
        return pieces[0][1:], pieces[1][1:]

    full = parts(compose_episode(ep, show="", rules=rules(10**6, "mastodon"), template=template))
    for r in (X_RULES, BLUESKY_RULES, rules(60)):
        try:
            c = compose_episode(ep, show="", rules=r, template=template)
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


@pytest.fixture(scope="module")
def feed_episodes(shared: Path) -> list[tuple[str, str, Episode]]:
    files = sorted(p for p in (shared / "feeds").iterdir() if p.suffix in (".xml", ".rss"))
    assert len(files) >= 39
    out = []
    for path in files:
        parsed = feedparser.parse(path.read_bytes(), sanitize_html=False,
                                  resolve_relative_uris=False)
        show = parsed.feed.get("title", "")
        for entry in parsed.entries:
            content = entry.get("content") or [{}]
            html = content[0].get("value") or entry.get("summary", "")
            out.append((path.name, show, Episode(title=entry.get("title", ""),
                                                 link=entry.get("link"), summary_html=html)))
    return out


def test_every_episode_of_every_feed_fits(feed_episodes: list[tuple[str, str, Episode]]) -> None:
    assert len(feed_episodes) > 2500
    failures, truncated = [], 0
    for name, show, ep in feed_episodes:
        for r in (X_RULES, MASTODON_DEFAULT_RULES):
            c = compose_episode(ep, show=show, rules=r, hashtags=["podcast"])
            truncated += c.truncated
            if not fits(c.text, r) or (ep.link and ep.link not in c.text):
                failures.append(f"{name}: {ep.title!r} on {r.platform}: {c.length}")
    assert failures == []
    assert truncated > 1000  # real show notes are long: fitting did real work
