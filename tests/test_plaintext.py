"""bot.plaintext: invisible and deceptive characters, undefined entities, sentence ends."""

from __future__ import annotations

import time

import pytest

from bot.plaintext import clean, pysbd_language, sentence_ends, unescape

# --- clean -------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", [
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",   # embeddings, pop, overrides
    "\u2066", "\u2067", "\u2068", "\u2069",             # isolates
    "\u200b", "\u2060", "\u2061", "\u2064", "\u206a", "\u206f", "\ufeff", "\u00ad", "\u180e",
    "\ufff9", "\ufffb", "\U000e0001", "\U000e0041",     # tag characters outside a flag
    "\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f", "\ufffe", "\uffff",
])
def test_clean_removes_invisible_and_deceptive_characters(char: str) -> None:
    assert clean(f"Ex{char}ample{char}") == "Example"


def test_clean_removes_a_right_to_left_override_that_disguises_a_name() -> None:
    # shown as "Episode 12: exe.txt" by a bidi-aware renderer; it is "txt.exe"
    disguised = "Episode 12: \u202etxt.exe\u202c"
    assert clean(disguised) == "Episode 12: txt.exe"


@pytest.mark.parametrize("text", [
    "👩\u200d👩\u200d👧",                                  # ZWJ emoji sequence
    "می\u200cخواهم",                                      # ZWNJ in Persian
    "क्\u200dष",                                           # ZWJ in Devanagari
    "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # England
    "שלום \u200fABC\u200e 123 \u061c",                    # bidi marks: kept
    "Tab\tand\nnewline",
    "\u0600\u0661\u0662",                                 # Arabic number sign (visible)
])
def test_clean_keeps_what_text_needs(text: str) -> None:
    assert clean(text) == text


def test_clean_keeps_a_flag_and_drops_stray_tags_beside_it() -> None:
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert clean(f"{flag} go\U000e0068\U000e0069") == f"{flag} go"


# --- unescape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Tom &amp; Jerry", "Tom & Jerry"),
    ("&lol9; Hello &lol9;world", " Hello world"),
    ("AT&T and R&D", "AT&T and R&D"),           # no ";": never an entity, kept
    ("&eacute;t&eacute; &#233; &#xE9;", "été é é"),
    ("caf&eacute", "café"),                      # HTML decodes some names without ";"
    ("&bogus; &amp;bogus;", " &bogus;"),         # an escaped "&" is text, not an entity
    ("a & b", "a & b"),
])
def test_unescape_drops_undefined_entities(text: str, expected: str) -> None:
    assert unescape(text) == expected


# --- sentences ---------------------------------------------------------------------------------


def sentences(text: str, language: str | None = None) -> list[str]:
    ends = sentence_ends(text, language)
    return [text[a:b].strip() for a, b in zip((0, *ends), (*ends, len(text)), strict=True)]


@pytest.mark.parametrize(("text", "expected"), [
    ("We ask why the U.S. Senate voted no. Then we eat.",
     ["We ask why the U.S. Senate voted no.", "Then we eat."]),
    ("The voice of Dr. Jane Smith is heard. J. R. R. Tolkien wrote it.",
     ["The voice of Dr. Jane Smith is heard.", "J. R. R. Tolkien wrote it."]),
    ("We met at 5 p.m. on Friday. It was Mets vs. Cubs. Fun!",
     ["We met at 5 p.m. on Friday.", "It was Mets vs. Cubs.", "Fun!"]),
    ("Line one\nline two", ["Line one", "line two"]),
    ("今日は晴れ。明日は雨！", ["今日は晴れ。", "明日は雨！"]),
])
def test_sentence_ends_know_abbreviations_and_initials(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_sentence_ends_in_the_feeds_language() -> None:
    text = "Wir trafen Dr. Müller am 3. Oktober in Berlin. Dann ging es los."
    assert sentences(text, "de-DE") == ["Wir trafen Dr. Müller am 3. Oktober in Berlin.",
                                        "Dann ging es los."]


@pytest.mark.parametrize(("language", "code"), [
    ("en-us", "en"), ("de_DE", "de"), ("FR", "fr"), ("zh-cn", "zh"), ("ja", "ja"),
    ("pt-BR", "en"), ("no", "en"), (None, "en"), ("", "en"),
])
def test_pysbd_language(language: str | None, code: str) -> None:
    assert pysbd_language(language) == code


def test_sentence_ends_are_bounded_by_reach() -> None:
    text = "This is a sentence, Dr. Who said. " * 300_000   # 10 MB
    started = time.perf_counter()
    ends = sentence_ends(text, "en", 2000)
    assert time.perf_counter() - started < 5
    assert ends and ends[-1] <= 2100
    assert ends[0] == len("This is a sentence, Dr. Who said.")
