"""Feed text made fit to post: invisible and deceptive characters removed, undefined entities
dropped, and sentence ends found by a real segmenter that knows the feed's language.

Pure: no I/O, no clock. Every function here is linear in its input (or bounded by `reach`).

* `clean`: removes characters a post should not carry because the reader cannot see them or
  because they change how the text around them is shown:

  - the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they reorder
    what is displayed ("Trojan Source"; a title that reads as another URL or name);
  - other invisible format characters (Unicode category Cf) with no job in a post: zero-width
    space U+200B, word joiner and invisible operators U+2060-U+2064, the deprecated format
    characters U+206A-U+206F, the byte order mark U+FEFF, soft hyphen U+00AD, Mongolian vowel
    separator U+180E, interlinear annotation U+FFF9-U+FFFB, the language tag U+E0001, and tag
    characters U+E0020-U+E007F outside an emoji flag sequence (they hide text);
  - control characters (C0 but tab/newline, DEL, C1) and the non-characters U+FFFE/U+FFFF.

  Kept, because text is wrong without them: zero-width joiner U+200D (emoji sequences, Indic
  scripts) and non-joiner U+200C (Persian, Indic scripts); the bidi *marks* LRM U+200E, RLM
  U+200F and ALM U+061C, which right-to-left text needs for punctuation and numbers and which
  cannot reorder letters; tag characters inside an emoji flag (🏴 + tags + cancel tag, as in
  the flags of England, Scotland and Wales); and the visible Cf characters (Arabic number
  signs, Egyptian hieroglyph and shorthand format controls, musical symbol formatting).
* `unescape`: HTML character references decoded; a named reference that HTML does not define
  (`&lol9;`, left behind by a feed's entity declarations that crier never expands) is dropped,
  never printed. A bare "&" and "AT&T" stay.
* `sentence_ends`: where sentences end, by pysbd (rules for abbreviations, initials, numbers:
  "Dr.", "vs.", "U.S.", "p.m.", "J. R. R." are not ends) in the feed's language (`language`,
  an RSS `<language>` such as "en-us"; English when pysbd does not know it), plus ends of
  lines and CJK full stops. pysbd's cost grows faster than the text, so only the first
  `reach` characters are segmented: a cut further on could not fit in a post anyway.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

__all__ = ["clean", "pysbd_language", "sentence_ends", "unescape"]

# Removed characters (see the module docstring); tag characters are handled apart.
_INVISIBLE = (
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"      # control characters (tab, LF, CR kept)
    "\u00ad\u180e\u200b"                        # soft hyphen, MVS, zero-width space
    "\u202a-\u202e\u2066-\u2069"                # bidi embeddings, overrides, isolates
    "\u2060-\u2064\u206a-\u206f"                # word joiner, invisible operators, deprecated
    "\ufeff\ufff9-\ufffb\ufffe\uffff"           # BOM, interlinear annotation, non-characters
    "\U000e0001"                                # language tag
)
_REMOVE = re.compile(f"[{_INVISIBLE}]+")
# an emoji tag sequence (🏴 tag-letters cancel-tag) is kept whole; other tag characters go
_TAGS = re.compile("(\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f)|[\U000e0020-\U000e007f]+")
_ANY = re.compile(f"[{_INVISIBLE}\U000e0020-\U000e007f]")


def clean(text: str) -> str:
    """text without the invisible and deceptive characters listed in the module docstring."""
    if not _ANY.search(text):
        return text
    text = _REMOVE.sub("", text)
    if "\U000e0000" <= max(text, default="") and _TAGS.search(text):
        text = _TAGS.sub(lambda m: m.group(1) or "", text)
    return text


# a character reference, with or without its ";" (HTML decodes "&amp" and "&copy" too)
_REFERENCE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]{0,40};?)")


def _decode(m: re.Match[str]) -> str:
    ref = m.group()
    out = html.unescape(ref)
    if out == ref and ref.endswith(";") and not ref.startswith("&#"):
        return ""  # "&lol9;": no such entity; dropped, never printed
    return out


def unescape(text: str) -> str:
    """HTML character references decoded, undefined named ones ("&lol9;") dropped."""
    return _REFERENCE.sub(_decode, text) if "&" in text else text


# -- sentences ------------------------------------------------------------------------------

# pysbd's languages (pysbd.languages.LANGUAGE_CODES, pysbd 0.3.4)
_PYSBD = frozenset("am ar bg da de el en es fa fr hi hy it ja kk mr my nl pl ru sk ur zh".split())
# Lines and CJK full stops end a sentence whatever pysbd says.
_HARD_END = re.compile(r"[。！？](?![。！？\"'”’」』)\]]*$)|\n")
_HARD_CLOSE = re.compile(r"[。！？]+[\"'”’」』)\]]*")


def pysbd_language(language: str | None) -> str:
    """pysbd's code for an RSS <language> ("en-us", "de_DE", "pt-BR"...); "en" if unknown."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in _PYSBD else "en"


def _segmenter(code: str):  # -> pysbd.Segmenter
    """A new segmenter for each text: one keeps the text it is segmenting as its own state,
    so sharing one between threads would mix texts (and a new one costs under 1 µs)."""
    import pysbd  # (imported when first needed: it takes a moment)
    return pysbd.Segmenter(language=code, clean=False, char_span=False)


@lru_cache(maxsize=256)
def sentence_ends(text: str, language: str | None = None, reach: int = 20000
                  ) -> tuple[int, ...]:
    """Offsets just past each sentence of text (trailing spaces not included), ascending,
    not counting the end of text; only sentences ending within the first `reach` characters
    (roughly) are found."""
    window = text
    if len(text) > reach:
        space = text.find(" ", reach)
        window = text[:space] if space >= 0 else text
    ends: set[int] = set()
    pos = 0
    code = pysbd_language(language)
    for line_start, line in _lines(window):
        if not line.strip():
            continue
        pos = line_start
        for sentence in _segmenter(code).segment(line):
            body = sentence.strip()
            if not body:
                continue
            at = window.find(body, pos)
            if at < 0:  # (pysbd changed the text: a sentence not found is no cut)
                continue
            pos = at + len(body)
            ends.add(pos)
    for m in _HARD_END.finditer(window):
        if m.group() == "\n":
            ends.add(m.start())
        else:
            close = _HARD_CLOSE.match(window, m.start())
            ends.add(close.end() if close else m.end())
    if len(window) < len(text):
        # the last sentence of a cut window may be cut itself: no cut at the window's end
        last = len(window.rstrip())
        ends.discard(last)
    return tuple(sorted(e for e in ends if 0 < e < len(text.rstrip())))


def _lines(text: str):
    """(offset, line) for each line of text (pysbd is given one line at a time)."""
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1
