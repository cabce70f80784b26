"""Bluesky's pure parts (bot.platforms.bluesky_rich): TIDs, facets at UTF-8 byte offsets,
Bluesky's hashtag rules, `langs`, and fitting images under the blob limit."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from bot.platforms import bluesky_rich as rich
from bot.platforms.bluesky import BLOB_MAX_BYTES

LINK, MENTION, TAG = (f"app.bsky.richtext.facet#{k}" for k in ("link", "mention", "tag"))


def _spans(text: str, facets: list[dict]) -> list[tuple[str, str, str]]:
    """(the bytes a facet covers, decoded; its kind; its value) for each facet."""
    raw = text.encode("utf-8")
    out = []
    for f in facets:
        s, e = f["index"]["byteStart"], f["index"]["byteEnd"]
        feature = f["features"][0]
        value = feature.get("uri") or feature.get("did") or feature.get("tag")
        out.append((raw[s:e].decode("utf-8"), feature["$type"], value))
    return out


# -- TIDs -------------------------------------------------------------------------------------

def test_tid_is_13_sortable_chars_that_round_trip():
    # the spec's example shape: 13 chars, first from the lower half of the alphabet
    tid = rich.make_tid(1_700_000_000_123_456, 1023)
    assert len(tid) == 13 and rich.TID_RE.match(tid)
    assert rich.parse_tid(tid) == (1_700_000_000_123_456, 1023)
    rng = random.Random(7)
    stamps = sorted(rng.randrange(1 << 52) for _ in range(200))
    tids = [rich.make_tid(us, rng.randrange(1024)) for us in stamps]
    assert tids == sorted(tids)          # later time, later key (string order)


def test_tid_rejects_what_is_not_one():
    for bad in ("", "3ke6kg3wk222", "zzzzzzzzzzzzz", "3KE6KG3WK2227", "3ke6kg3wk222!"):
        with pytest.raises(ValueError):
            rich.parse_tid(bad)
    with pytest.raises(ValueError):
        rich.make_tid(1 << 53, 0)
    with pytest.raises(ValueError):
        rich.make_tid(0, 1024)


# -- facets -----------------------------------------------------------------------------------

def test_facet_offsets_are_utf8_bytes_with_emoji_and_cjk():
    text = ("🎙️👩🏽‍💻 新しいエピソード with @ann.test! 日本語 #ポッドキャスト "
            "https://example.com/ep/3 #podcast")
    facets = rich.facets(text, dids={"ann.test": "did:plc:ann"})
    assert _spans(text, facets) == [
        ("@ann.test", MENTION, "did:plc:ann"),
        ("#ポッドキャスト", TAG, "ポッドキャスト"),
        ("https://example.com/ep/3", LINK, "https://example.com/ep/3"),
        ("#podcast", TAG, "podcast"),
    ]
    # byte offsets, not character offsets: the mention starts after 41 bytes of emoji and
    # kana (the same text counts 22 code points up to there)
    assert facets[0]["index"]["byteStart"] == len(text[:text.index("@")].encode("utf-8"))
    assert facets[0]["index"]["byteStart"] != text.index("@")


def test_a_shortened_link_carries_the_whole_url_and_is_not_detected_again():
    full = "https://example.com/episodes/2026/12/a-very-long-episode-slug?utm_source=crier"
    shown = "example.com/episodes/2026/12/a-ver…"
    text = f"Neu: {shown} 🎧 und example.org"
    facets = rich.facets(text, links=[(shown, full)])
    assert _spans(text, facets) == [(shown, LINK, full),
                                    ("example.org", LINK, "https://example.org")]


def test_the_same_shown_link_twice_gets_two_facets():
    text = "a.example.com/x… then a.example.com/x…"
    facets = rich.facets(text, links=[("a.example.com/x…", "https://a.example.com/x1"),
                                      ("a.example.com/x…", "https://a.example.com/x2")])
    assert [v for _s, _k, v in _spans(text, facets)] == ["https://a.example.com/x1",
                                                          "https://a.example.com/x2"]


def test_unresolved_mentions_get_no_facet_and_cashtags_stay_text():
    text = "with @ghost.test and $TSLA"
    assert rich.facets(text, dids={}) == []


def test_hashtag_rules():
    text = "#123 #ok! #fine, #a_b #" + "x" * 65 + " #" + "y" * 64 + " #C++ (#paren)"
    tags = [v for _s, kind, v in _spans(text, rich.facets(text)) if kind == TAG]
    # not all digits; trailing punctuation is not part of the tag; more than 64 graphemes is
    # no tag at all (not cut); "(#paren)" is not preceded by a space
    assert tags == ["ok", "fine", "a_b", "y" * 64, "C++"]   # "+" is a symbol, not punctuation
    assert rich.tag_ok("ポッドキャスト") and not rich.tag_ok("2026")
    assert not rich.tag_ok("tag!") and not rich.tag_ok("$TSLA")
    assert rich.tag_ok("👩🏽‍💻" * 64) is False          # 64 graphemes but 960 bytes > 640
    assert rich.tag_ok("é" * 64) and not rich.tag_ok("é" * 65)


def test_handles_in_and_write_names():
    text = "Thanks @Ann.test and @bob.bsky.social, not mail@carl.test or @ann.testing.test."
    assert rich.handles_in(text) == ["ann.test", "bob.bsky.social", "ann.testing.test"]
    out = rich.write_names(text, {"ann.test": "Ann Example", "bob.bsky.social": "Bob"})
    assert out == ("Thanks Ann Example and Bob, not mail@carl.test or @ann.testing.test.")
    # inside a URL's path it is part of the link, not a mention
    url = "see https://social.example/@ann.test for more"
    assert rich.write_names(url, {"ann.test": "Ann"}) == url
    assert rich.handles_in(url, ["@ann.test"]) == []
    # a handle written in the text that Bluesky's detector would not take is found when known
    assert rich.handles_in("hi @guest.example", ["@guest.example"]) == ["guest.example"]


def test_langs_from_the_feed_language():
    assert rich.langs("en-us") == ["en-US"]
    assert rich.langs("de_DE") == ["de-DE"]
    assert rich.langs("ja") == ["ja"]
    assert rich.langs(None) == [] and rich.langs("x") == [] and rich.langs("english!") == []


# -- images -----------------------------------------------------------------------------------

def _noise(width: int, height: int, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    rng = random.Random(width * height)
    img = Image.frombytes(mode, (width, height),
                          rng.randbytes(width * height * len(mode)))
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_a_big_image_is_brought_under_the_blob_limit_keeping_its_shape():
    data = _noise(1500, 1000)            # random pixels: a 4.5 MB PNG, no JPEG trick shrinks it
    assert len(data) > BLOB_MAX_BYTES
    fitted = rich.fit_image(data, BLOB_MAX_BYTES)
    assert len(fitted.data) <= BLOB_MAX_BYTES
    assert fitted.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(fitted.data)) as img:
        assert img.size == (fitted.width, fitted.height)
    assert abs(fitted.width / fitted.height - 1.5) < 0.01


def test_a_small_image_is_kept_byte_for_byte_and_a_huge_side_is_shrunk():
    small = _noise(40, 30, fmt="JPEG")
    fitted = rich.fit_image(small, 1_000_000)
    assert fitted.data == small and (fitted.width, fitted.height) == (40, 30)
    wide = Image.new("RGB", (5000, 1000), (200, 10, 10))
    buf = io.BytesIO()
    wide.save(buf, "PNG")
    fitted = rich.fit_image(buf.getvalue(), 1_000_000)
    assert (fitted.width, fitted.height) == (2000, 400)


def test_transparency_goes_on_white_and_junk_is_refused():
    img = Image.new("RGBA", (3000, 3000), (0, 0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    fitted = rich.fit_image(buf.getvalue(), 1_000_000)
    with Image.open(io.BytesIO(fitted.data)) as out:
        assert out.mode == "RGB" and out.getpixel((10, 10)) == (255, 255, 255)
    with pytest.raises(ValueError, match="not an image"):
        rich.fit_image(b"<html>nope</html>", 1_000_000)
