"""bot.textlen against the platforms' own conformance data, plus properties.

Data (read from the shared test data, never copied): twitter-text's conformance files
(validate.yml, extract.yml, tlds.yml) and our restatement of Mastodon's status length spec.
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import textlen
from bot.models import Rules
from bot.textlen import (
    BLUESKY_RULES,
    MASTODON_DEFAULT_RULES,
    THREADS_RULES,
    X_RULES,
    bluesky_length,
    count,
    extract_mentions,
    extract_urls,
    find_urls,
    fits,
    graphemes,
    link_count,
    mastodon_length,
    threads_length,
    x_length,
    x_valid,
)


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def validate(shared: Path) -> dict:
    return _load(shared / "twitter-text" / "validate.yml")["tests"]


@pytest.fixture(scope="module")
def extract(shared: Path) -> dict:
    return _load(shared / "twitter-text" / "extract.yml")["tests"]


def _failures(cases: list[dict], check) -> list[str]:
    out = []
    for case in cases:
        problem = check(case)
        if problem:
            out.append(f"{case['description']}: {problem}")
    return out


# --- X: twitter-text conformance --------------------------------------------------------------


def test_x_weighted_length_conformance_v3(validate: dict) -> None:
    cases = validate["WeightedTweetsWithDiscountedEmojiCounterTest"]
    assert len(cases) == 22

    def check(case: dict) -> str | None:
        want = (case["expected"]["weightedLength"], case["expected"]["valid"])
        got = (x_length(case["text"]), x_valid(case["text"]))
        return None if got == want else f"got {got}, want {want}"

    assert _failures(cases, check) == []


def test_x_invalid_characters_make_text_invalid(validate: dict) -> None:
    # UnicodeDirectionalMarkerCounterTest runs with the default (v3) config in twitter-text
    for case in validate["UnicodeDirectionalMarkerCounterTest"]:
        assert x_length(case["text"]) == case["expected"]["weightedLength"]
        assert x_valid(case["text"]) == case["expected"]["valid"]


@pytest.mark.parametrize("section", ["urls", "tco_urls_with_params"])
def test_extract_urls_conformance(extract: dict, section: str) -> None:
    def check(case: dict) -> str | None:
        got = [url for url, _s, _e in extract_urls(case["text"])]
        return None if got == case["expected"] else f"got {got}"

    assert len(extract[section]) > 0
    assert _failures(extract[section], check) == []


@pytest.mark.parametrize("section", ["urls_with_indices", "urls_with_directional_markers"])
def test_extract_urls_with_indices_conformance(extract: dict, section: str) -> None:
    def check(case: dict) -> str | None:
        got = [{"url": u, "indices": [s, e]} for u, s, e in extract_urls(case["text"])]
        return None if got == case["expected"] else f"got {got}"

    assert len(extract[section]) > 0
    assert _failures(extract[section], check) == []


def test_extract_urls_every_tld(shared: Path) -> None:
    tests = _load(shared / "twitter-text" / "tlds.yml")["tests"]
    cases = tests["country"] + tests["generic"]
    assert len(cases) > 1500

    def check(case: dict) -> str | None:
        got = [url for url, _s, _e in extract_urls(case["text"])]
        return None if got == case["expected"] else f"got {got}"

    assert _failures([dict(c, description=c["text"]) for c in cases], check) == []


def test_url_weight_follows_the_rules() -> None:
    text = "listen https://example.com/a/very/long/path/to/an/episode/page"
    assert x_length(text) == 7 + 23
    assert x_length(text, url_weight=None) == len(text)
    assert x_length("example.com") == 23          # a bare domain with a real TLD is a link
    assert x_length("example.notatld") == len("example.notatld")


def test_x_weights() -> None:
    assert x_length("abc") == 3
    assert x_length("日本語") == 6                 # CJK weighs 2
    assert x_length("\u2018quoted\u2019") == 8    # U+2010-U+201F weigh 1
    assert x_length("e\u0301") == 1              # NFC first: é is one code point
    assert x_length("👩‍👩‍👧‍👦") == 2              # an emoji sequence weighs 2
    assert x_length("🇯🇵🇫🇷") == 4
    assert x_length("") == 0 and not x_valid("")


def test_long_dotted_text_is_fast() -> None:
    # the backtracking regex form of twitter-text takes ~48 s on the first of these
    started = time.perf_counter()
    for text in ("www.a" * 2000, "ab." * 2400, "a-b." * 3200, "日本語" * 3000 + ".x"):
        x_length(text)
        mastodon_length(text)
    assert time.perf_counter() - started < 3


# --- Mastodon ---------------------------------------------------------------------------------


def test_mastodon_status_length_cases(shared: Path) -> None:
    data = _load(shared / "mastodon" / "status_length_cases.yaml")
    assert len(data["cases"]) == 10
    failures = []
    for case in data["cases"]:
        text = "".join(s * n for s, n in case["text_parts"])
        spoiler = "".join(s * n for s, n in case["spoiler_parts"])
        assert len(text) + len(spoiler) == case["raw_codepoints"]
        counted = mastodon_length(text, spoiler=spoiler)
        rules = Rules("mastodon", data["limit"], "mastodon", 23)
        valid = counted <= data["limit"]
        if (counted, valid) != (case["counted_length"], case["valid"]):
            failures.append(f"{case['id']}: counted {counted}, valid {valid}")
        assert fits(spoiler + text, rules) == (mastodon_length(spoiler + text) <= data["limit"])
    assert failures == []


def test_mastodon_mentions_and_urls() -> None:
    assert extract_mentions("hi @alice@example.social and @bob") == [
        ("alice@example.social", 3, 24), ("bob", 29, 33)]
    assert mastodon_length("@alice@example.social") == len("@alice")
    assert mastodon_length("see example.com") == len("see example.com")  # no protocol: as is
    assert mastodon_length("see https://example.com/x") == 4 + 23
    assert mastodon_length("see https://example.com/x", url_weight=None) == 25
    assert mastodon_length("   ", spoiler="cw") == 2


# --- Bluesky and dispatch ---------------------------------------------------------------------


def test_bluesky_counts_graphemes_and_bytes() -> None:
    assert bluesky_length("héllo 👩‍👩‍👧‍👦") == (7, len("héllo 👩‍👩‍👧‍👦".encode()))
    url = "https://example.com/" + "a" * 100
    assert bluesky_length(url)[0] == len(url)
    assert count(url, BLUESKY_RULES) == len(url)
    assert not fits("😀" * 299 + "a" * 2, BLUESKY_RULES)
    assert fits("😀" * 300, BLUESKY_RULES)
    assert not fits("👩‍👩‍👧‍👦" * 200, BLUESKY_RULES)  # 200 graphemes, 5000 bytes


def test_count_dispatches_and_rejects_unknown_counters() -> None:
    text = "日本 https://example.com"
    assert count(text, X_RULES) == x_length(text)
    assert count(text, MASTODON_DEFAULT_RULES) == mastodon_length(text)
    assert count(text, BLUESKY_RULES) == len(graphemes(text))
    with pytest.raises(ValueError, match="unknown counter"):
        count("x", Rules("myspace", 10, "myspace"))
    with pytest.raises(ValueError):
        find_urls("x", "myspace")


def test_find_urls_per_counter() -> None:
    text = "see example.com and http://x.org/a."
    assert find_urls(text, "x") == [(4, 15), (20, 34)]
    assert find_urls(text, "bluesky") == [(4, 15), (20, 34)]
    assert find_urls(text, "mastodon") == [(20, 34)]


def test_rules_constants() -> None:
    assert (X_RULES.limit, X_RULES.counter, X_RULES.url_weight) == (280, "x", 23)
    assert (MASTODON_DEFAULT_RULES.limit, MASTODON_DEFAULT_RULES.url_weight) == (500, 23)
    assert (BLUESKY_RULES.limit, BLUESKY_RULES.max_bytes, BLUESKY_RULES.url_weight) == (
        300, 3000, None)


# --- properties -------------------------------------------------------------------------------

_pieces = st.sampled_from([
    "a", "Z", " ", "\n", ".", "-", "_", "/", ":", "?", "#", "@", "é", "e\u0301", "日本", "한국",
    "עברית", "عربى", "👩‍👩‍👧‍👦", "🇯🇵", "👍🏽", "1\ufe0f\u20e3", "\u200d", "\ufe0f", "©", "…",
    "http://", "https://", "www.", "example", ".com", ".org", ".co.uk", ".中国", "t.co/x",
    "@alice@example.social", "#tag",
])
_texts = st.lists(_pieces, max_size=40).map("".join) | st.text(max_size=80)


@settings(max_examples=150, deadline=None)
@given(_texts)
def test_properties_of_the_counters(text: str) -> None:
    assert "".join(graphemes(text)) == text
    n_graphemes, n_bytes = bluesky_length(text)
    assert n_graphemes == len(graphemes(text)) and n_bytes == len(text.encode("utf-8"))
    assert x_length(text) == x_length(unicodedata.normalize("NFC", text))
    assert x_length(text, url_weight=None) <= 2 * len(unicodedata.normalize("NFC", text))
    assert 0 <= mastodon_length(text) and 0 <= x_length(text)
    for counter in textlen.COUNTERS:
        spans = find_urls(text, counter)
        assert spans == sorted(spans)
        assert all(0 <= s < e <= len(text) for s, e in spans)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    for url, s, e in extract_urls(text):
        assert url and 0 <= s < e <= len(text)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters=".:@"), max_size=60))
def test_plain_ascii_counts_one_per_character(text: str) -> None:
    assert x_length(text) == len(text)
    # Mastodon counts a blank status as empty (String#blank?), else its grapheme clusters
    assert mastodon_length(text) == (len(graphemes(text)) if text.strip() else 0)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_fits_agrees_with_count_and_bytes(a: str, b: str) -> None:
    text = a + " https://example.com/" + b
    for rules in (X_RULES, MASTODON_DEFAULT_RULES, BLUESKY_RULES, Rules("tiny", 20, "x", 23),
                  THREADS_RULES):
        within = count(text, rules) <= rules.limit and (
            rules.max_bytes is None or len(text.encode()) <= rules.max_bytes) and (
            rules.max_links is None or link_count(text) <= rules.max_links)
        assert fits(text, rules) == within


# --- Threads (issue 16) -----------------------------------------------------------------------


def test_threads_counts_emoji_as_their_utf8_bytes() -> None:
    """Meta's docs: 500 characters, "Emojis are counted as the number of UTF-8 bytes"."""
    assert threads_length("hello") == 5
    assert threads_length("日本語 é") == 5           # characters, not bytes, for text
    assert threads_length("😀") == 4
    assert threads_length("👩‍👩‍👧‍👦") == len("👩‍👩‍👧‍👦".encode()) == 25  # the whole ZWJ sequence
    assert threads_length("🇯🇵") == 8 and threads_length("1\ufe0f\u20e3") == 7
    assert threads_length("👍🏽 ok") == 8 + 3
    assert threads_length("e\u0301") == 2          # a decomposed accent: counted as two
    url = "https://example.com/" + "a" * 100
    assert count(url, THREADS_RULES) == len(url)   # links at their full length
    assert fits("a" * 500, THREADS_RULES) and not fits("a" * 501, THREADS_RULES)
    assert fits("😀" * 125, THREADS_RULES) and not fits("😀" * 125 + "a", THREADS_RULES)


def test_threads_takes_at_most_five_distinct_links() -> None:
    five = " ".join(f"https://ex{i}.com/p" for i in range(5))
    assert link_count(five) == 5 and fits(five, THREADS_RULES)
    assert not fits(five + " example.org", THREADS_RULES)      # a bare domain is a link too
    assert fits(five + " https://ex0.com/p https://EX1.com/p/", THREADS_RULES)  # the same ones
    assert link_count("see https://a.com/x", extra=("https://a.com/x",)) == 1
    assert link_count("see https://a.com/x", extra=("https://b.com/",)) == 2
    assert fits(five + " example.org", BLUESKY_RULES)        # no cap elsewhere


def test_threads_rules_and_counter() -> None:
    assert (THREADS_RULES.limit, THREADS_RULES.counter, THREADS_RULES.url_weight,
            THREADS_RULES.max_links) == (500, "threads", None, 5)
    assert "threads" in textlen.COUNTERS
    assert find_urls("see example.com and http://x.org/a.", "threads") == [(4, 15), (20, 34)]
    assert (BLUESKY_RULES.image_max_bytes, BLUESKY_RULES.alt_text_limit) == (1_000_000, 2000)
