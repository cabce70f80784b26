"""Compose posts: render an episode through a template, then fit the text to a network's rules.

Pure: no I/O and no clock. The same input always gives the same output.

* Summary (`summary_from_html`): the show notes as paragraphs of plain text; paragraphs that
  repeat across the feed (`find_boilerplate`), that match the host's patterns, or that are
  plainly promos (a short list of built-in patterns) are dropped; the first paragraph left is
  the summary (a very short one is joined with the next), less closing promo sentences, at
  most MAX_SUMMARY characters. Feed text is cleaned of invisible and bidi override characters
  and undefined entities (`bot.plaintext`); the work is linear in the size of the notes.
* Guests (`guests_for`): `podcast:person` guests and names after "w/", "with", "ft.", "feat.",
  "featuring" in the title; each written as its handle on the platform when the host's people
  map has a valid one (`render_mention`), else by name: never a broken mention.
* Link (`choose_link`): the episode page (or the show's page: `listen_link`, else the feed's
  <link>; the audio file only when there is nothing else; never behind a tracker's prefix),
  UTM parameters merged in (`with_params`), non-ASCII parts percent-encoded (`ascii_url`; on
  X the host IDNA-encoded too) so X and Mastodon link, and X counts, all of it. Link policy
  "none" leaves it out, "reply" moves it to a reply.
* Fitting keeps the template's layout: every step shortens one part and renders the template
  again. In order, until the post fits (`textlen.fits`): drop the summary's last whole
  sentences (found by pysbd in the feed's language: "Dr." or "U.S." ends none), cut the
  summary at a word (else grapheme) boundary with an ellipsis, drop the summary, cut the
  title the same way; only when even that is not enough, drop hashtags from the end (and fit
  again with fewer). The link is always kept whole, and no cut falls inside a URL, an
  @mention or a #hashtag, or inside a grapheme cluster.
* Artwork: the episode's image, else the show's, with alt text from a template, cut at a word
  to the platform's alt-text limit.
* Bluesky and Threads: a link card (`Composed.card`: the link, the whole title, the summary cut
  to CARD_DESCRIPTION characters, the artwork with its alt text as its thumbnail); guests'
  handles from the people map ("@name.bsky.social", "@name") in `Composed.mentions` with their
  names. On Bluesky a link is shown as its app shows one (`bluesky_short_url`: host and path,
  a long path cut with "…"), so a long URL does not eat the 300; `Composed.links` pairs the
  shown text with the whole URL, which the link facet carries. Threads counts at most 5 links
  (`Rules.max_links`): the summary is shortened until the post has no more.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import regex
from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from bot import plaintext, textlen
from bot.errors import CrierError, TemplateError
from bot.feed import untracked_url
from bot.models import Card, Episode, Media, Rules

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ALT_TEMPLATE",
    "DEFAULT_TEMPLATE",
    "ComposeOptions",
    "Composed",
    "ascii_url",
    "choose_link",
    "compose_episode",
    "find_boilerplate",
    "fit_text",
    "guests_for",
    "render_mention",
    "summary_from_html",
    "with_params",
]


@dataclass(frozen=True)
class ComposeOptions:
    """One account's way of announcing an episode (from its config)."""

    template: str | None = None            # Jinja2 source; None = DEFAULT_TEMPLATE
    template_name: str = "default"         # named in template errors
    hashtags: tuple[str, ...] = ()
    # person name -> {"mastodon": "@user@host", "x": "@user"}
    people: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    link: str = "episode"                  # "episode" page or the show's "listen" page
    listen_link: str | None = None         # the show's listen page (a plain URL)
    utm: Mapping[str, str] = field(default_factory=dict)  # query parameters added to the link
    link_policy: str = "inline"            # "inline" | "none" | "reply"
    ellipsis: str | None = None            # None = the rules' ellipsis
    alt_template: str | None = None        # Jinja2 for the artwork's alt text
    boilerplate: frozenset[str] = frozenset()      # find_boilerplate() of the feed
    boilerplate_patterns: tuple[str, ...] = ()     # regexes (case-insensitive): drop paragraph
    # Bluesky: a link shown as its app shows it, the facet carrying the whole URL; False: the
    # whole URL in the text (a share intent's text has no facets)
    shorten_links: bool = True


@dataclass(frozen=True)
class Composed:
    """A post's final text, measured against the rules it was fitted to."""

    text: str
    length: int                    # as the network counts it (textlen.count)
    limit: int
    link: str | None               # the link as posted (in the text, or in the reply)
    truncated: bool                # something was shortened or dropped
    trimmed: tuple[str, ...] = ()  # what, e.g. ("summary: 3 sentences dropped",)
    reply_text: str | None = None  # link policy "reply": the follow-up holding the link
    image_url: str | None = None   # the episode's artwork, else the show's
    alt_text: str | None = None    # for image_url, within rules.alt_text_limit
    guests: tuple[str, ...] = ()   # guest names found (guests_for)
    # Bluesky and Threads: the link card, ("@handle", "Name") of the mentions in the text, and
    # (shown text, whole URL) of a link shown shortened (Bluesky)
    card: Card | None = None
    mentions: tuple[tuple[str, str], ...] = ()
    links: tuple[tuple[str, str], ...] = ()


# Empty parts leave no blank-line garbage: a rendered post's runs of blank lines collapse to one.
DEFAULT_TEMPLATE = """\
{% if show %}New episode of {{ show }}: {% endif %}{{ title }}

{{ summary }}

{% if mentions %}
With {{ mentions }}
{% endif %}

{{ link }}

{{ hashtags }}
"""

# `image` is "episode" (the episode's own artwork) or "show" (the show's).
DEFAULT_ALT_TEMPLATE = """\
{% if image == "episode" %}Cover art{% if show %} of {{ show }}{% endif %}: {{ title }}\
{% elif show %}{{ show }} podcast artwork{% else %}Podcast artwork{% endif %}"""

TEMPLATE_VARIABLES = (
    "show", "title", "summary", "link", "season", "number", "duration", "published",
    "hashtags", "guests", "guest_names", "mentions",
)
ALT_TEMPLATE_VARIABLES = (
    "show", "title", "season", "number", "published", "guest_names", "image",
)
LINK_CHOICES = ("episode", "listen")
LINK_POLICIES = ("inline", "none", "reply")
REPLY_PREFIX = "Listen: "
CARD_DESCRIPTION = 300   # characters of the summary a link card shows
CARD_NETWORKS = ("bluesky", "threads")   # the counters whose posts carry a link card


# ---------------------------------------------------------------------------------------------
# show notes -> paragraphs


_BLOCK_TAGS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
# A tag's attributes: quoted values may hold "<" and ">", an unquoted "<" ends the attempt;
# possessive, so stray "<"s in text cost little.
_ATTRS = r"""(?:[^<>"']++|"[^"]*+"|'[^']*+')*+"""
_TOKEN = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<!\[CDATA\[(?P<cdata>.*?)(?:\]\]>|\Z)"
    rf"|<(?P<skip>script|style|template|head|title)\b{_ATTRS}>.*?(?:</(?P=skip)\s*>|\Z)"
    rf"|<(?P<close>/)?(?P<tag>[a-zA-Z][a-zA-Z0-9:-]*+){_ATTRS}>"
    r"|<[!?][^>]*+(?:>|\Z)",
    re.DOTALL | re.IGNORECASE,
)
# Elements holding one paragraph of prose: a blank line inside one is only white space.
_PROSE = frozenset("p li dt dd td th figcaption h1 h2 h3 h4 h5 h6".split())
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v\xa0]*\n")


class _Para(NamedTuple):
    text: str   # one line of plain text
    kind: str   # "p" (prose), "li" (list item), "h" (heading)
    # a <p> with blank lines inside: its blank-line-separated parts (each one line), so a
    # part that repeats across the feed (a show's blurb) is still found as boilerplate
    parts: tuple[str, ...] = ()


def _inline(text: str) -> str:
    """One line of clean text: control, invisible and bidi override characters dropped
    (`plaintext.clean`), whitespace runs made one space."""
    return " ".join(plaintext.clean(text).split())


@lru_cache(maxsize=1024)
def _paragraphs(source: str) -> tuple[_Para, ...]:
    """Show notes (HTML, or plain text) as paragraphs of plain text: a new one at every block
    tag, at two <br> in a row and at a blank line outside a <p> (or another element holding
    one paragraph: inside it a blank line is white space); entities decoded (undefined ones
    dropped); links become their text; script and style dropped. A regular-expression
    tokenizer, linear in the size of the notes: a 3000-item feed's notes take a fraction of a
    second, about twice as fast as html.parser."""
    out: list[_Para] = []
    chunks: list[str] = []
    kind = "p"
    breaks = 0
    depth = {"li": 0, "h": 0}
    prose = False  # inside a <p> (or the like): blank lines are not breaks

    def flush() -> None:
        nonlocal breaks
        if chunks:
            lines = [line for part in _BLANK_LINE.split("".join(chunks))
                     if (line := _inline(part))]
            if prose and len(lines) > 1:
                out.append(_Para(" ".join(lines), kind, tuple(lines)))
            else:
                out.extend(_Para(line, kind) for line in lines)
            chunks.clear()
        breaks = 0

    pos = 0
    for m in _TOKEN.finditer(source):
        if m.start() > pos:
            data = plaintext.unescape(source[pos:m.start()])
            if data.strip():
                breaks = 0
            chunks.append(data)
        pos = m.end()
        tag = m.group("tag")
        if tag is None:
            if m.group("cdata"):
                chunks.append(m.group("cdata"))
            continue
        tag = tag.lower()
        if tag == "br":
            breaks += 1
            if breaks >= 2:
                flush()
            else:
                chunks.append(" ")  # (one <br> and a newline are no blank line)
        elif tag in _BLOCK_TAGS:
            flush()
            prose = tag in _PROSE and not m.group("close")
            part = "li" if tag == "li" else "h" if tag in _HEADINGS else None
            if part:
                depth[part] = max(0, depth[part] + (-1 if m.group("close") else 1))
            kind = "h" if depth["h"] else "li" if depth["li"] else "p"
    if pos < len(source):
        chunks.append(plaintext.unescape(source[pos:]))
    flush()
    return tuple(out)


_NOT_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}]+")


def _key(text: str) -> str:
    """A paragraph's identity for boilerplate: casefolded, punctuation and spaces squashed to
    one space, digits kept ("Episode 12" is not "Episode 13")."""
    return _NOT_WORD.sub(" ", text.casefold()).strip()


# ---------------------------------------------------------------------------------------------
# boilerplate and summary

# Defaults for find_boilerplate: a paragraph is boilerplate when at least this many of the
# feed's items, and at least this share of them, carry it.
BOILERPLATE_MIN_COUNT = 3
BOILERPLATE_MIN_SHARE = 0.3


def find_boilerplate(episodes: Sequence[Episode], *, min_share: float = BOILERPLATE_MIN_SHARE,
                     min_count: int = BOILERPLATE_MIN_COUNT) -> frozenset[str]:
    """The paragraphs that repeat across a feed's items (sponsor reads, "Support the show",
    Patreon asks, book plugs, "See all episodes"): the normalized keys of those found in at
    least `min_count` items and at least `min_share` of all items. Pass the result to
    `summary_from_html` (or ComposeOptions.boilerplate)."""
    counts: Counter[str] = Counter()
    for ep in episodes:
        counts.update({k for p in _paragraphs(ep.summary_html) for t in (p.text, *p.parts)
                       if (k := _key(t))})
    need = min_share * len(episodes) - 1e-9  # 0.3 * 10 is 3.0000000000000004
    return frozenset(k for k, n in counts.items() if n >= min_count and n >= need)


# Built-in promo patterns: calls to action rather than topics. One drops a paragraph only when
# the paragraph is short or opens with it, so a real summary that mentions a sponsor in
# passing is kept; trailing promo sentences are cut from the summary.
_PROMOS = tuple(regex.compile(p, regex.IGNORECASE) for p in (
    r"\bsupport (?:the|this|our|my) (?:show|podcast|work|channel)\b",
    r"\bpatreon\.com\b|\b(?:on|via|at|join|to|our|my) patreon\b"
    r"|\bbecome an? (?:patron|member|supporter|paid subscriber)\b",
    r"\bsee all episodes\b",
    r"\b(?:sponsored|underwritten) by\b|^(?:our |today's )?sponsors?\b",
    r"\b(?:use|using|enter|with) (?:the |our |my |promo |discount |coupon |offer )*code\b"
    r"|\bpromo code\b",
    r"\b(?:leave|write|give)(?: us| me| it)? an? (?:\w+ )?(?:rating|review)\b"
    r"|\b(?:rate|review)(?:,| and| &) (?:\w+ )?(?:subscribe|review|rate)\b",
    r"\bbuy (?:us|me) a coffee\b|\bko-?fi\.com\b",
    # book plugs
    r"\b(?:i've|i have|we've|we have) (?:written|published) a (?:new )?book\b|\bpre-?order\b"
    r"|\b(?:buy|purchase|order|get) (?:the|my|our) (?:new )?book\b",
    r"\bad ?choices\b|\bprivacy (?:policy|notice)\b|\bcollection and use of personal data\b"
    r"|\.\w+/privacy\b",
    r"\bhosted (?:on|by) (?:acast|simplecast|libsyn|anchor|buzzsprout|megaphone|podbean"
    r"|spreaker|transistor|captivate)\b",
    r"\b(?:follow|find) (?:us|me) on\b|\bsign up for (?:the|our|my) newsletter\b",
    # a bare list heading ("Links:", "Show notes", "Credits: ...")
    r"^(?:links?|show ?notes|sponsors?|credits|chapters|timestamps|transcript|keywords"
    r"|resources|mentioned)\b\s*(?::|$)",
))
# these only when they open the paragraph ("… 2011, brought to you by the letter D." stays)
_OPENERS = tuple(regex.compile(p, regex.IGNORECASE) for p in (
    r"\b(?:brought to you|presented|made possible|supported) by\b",
))
_PROMO_SHORT = 200   # characters: a paragraph this short is dropped for one promo pattern
_PROMO_OPENING = 40  # a pattern starting this early opens the paragraph


_SENTENCE_GAP = regex.compile(r"(?<=[.!?…][\"'”’»)\]]*)\s+")


# all of _PROMOS in one: its leftmost match starts where the earliest of them does
_ANY_PROMO = regex.compile("|".join(f"(?:{p.pattern})" for p in _PROMOS), regex.IGNORECASE)
_ANY_OPENER = regex.compile("|".join(f"(?:{p.pattern})" for p in _OPENERS), regex.IGNORECASE)


def _promo_at(text: str) -> int | None:
    """Where the first built-in promo pattern matches in text, or None."""
    opener = _ANY_OPENER.search(text, 0, _PROMO_OPENING + 40)
    if opener and opener.start() <= _PROMO_OPENING:
        return opener.start()
    m = _ANY_PROMO.search(text)
    return m.start() if m else None


def _opens(text: str, at: int) -> bool:
    """Is `at` early in text's first sentence?"""
    return at <= _PROMO_OPENING and not _SENTENCE_GAP.search(text, 0, at)


def _is_promo(text: str) -> bool:
    """A paragraph that is a promo: short with a promo pattern, or opening with one (so a
    long one is searched only near its start: no pattern match is 400 characters long)."""
    at = _promo_at(text if len(text) <= _PROMO_SHORT else text[:_PROMO_OPENING + 400])
    return at is not None and (len(text) <= _PROMO_SHORT or _opens(text, at))


def _sentences(text: str, language: str | None) -> list[str]:
    """text cut into its sentences (`plaintext.sentence_ends`), each with the white space
    that follows it: "".join() of them is text."""
    ends = plaintext.sentence_ends(text, language)
    return [text[a:b] for a, b in zip((0, *ends), (*ends, len(text)), strict=True)]


def _without_promo_sentences(text: str, *, trailing_only: bool,
                             language: str | None = None) -> str:
    """text less its promo sentences (or only the closing ones: "… Support the show at …")."""
    if _promo_at(text) is None:  # (most summaries: no need to find their sentences)
        return " ".join(text.split())
    sentences = _sentences(text, language)
    if trailing_only:
        while len(sentences) > 1 and _promo_at(sentences[-1]) is not None:
            sentences.pop()
    else:
        sentences = [s for s in sentences if _promo_at(s) is None]
    return " ".join("".join(sentences).split())


@lru_cache(maxsize=64)
def _user_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.IGNORECASE))
        except re.error as e:
            raise CrierError(f"boilerplate pattern {p!r} is not a valid regular expression: "
                             f"{e}") from None
    return tuple(out)


# graphemes: a summary cut inside a word (a long word, or a script without spaces) keeps at
# least this many, else it is dropped
MIN_SUMMARY_CUT = 10
SHORT_SUMMARY = 80  # characters: a first paragraph shorter than this is joined with the next
_ENDS_CLAUSE = regex.compile(r"[.!?…:;。！？][\"'”’»)\]]*$")


# characters: a longer summary is cut at its last sentence end before this (else at a word,
# with an ellipsis). No post needs more, and it bounds the work of fitting a hostile one.
MAX_SUMMARY = 5000


def summary_from_html(html: str, *, boilerplate: frozenset[str] = frozenset(),
                      patterns: Sequence[str] = (), language: str | None = None) -> str:
    """Show notes (HTML or plain text) -> the summary, as plain text.

    Paragraphs whose key is in `boilerplate` (see `find_boilerplate`), that match one of
    `patterns` (regular expressions, case-insensitive) or that are plainly promos (built-in
    patterns) are dropped; headings are passed over. The summary is the first paragraph left;
    when it is shorter than SHORT_SUMMARY characters the next one is joined to it; closing
    promo sentences are cut (sentences as `plaintext.sentence_ends` finds them in the feed's
    `language`), and it is at most MAX_SUMMARY characters. Empty when no text is left."""
    if not html or not html.strip():
        return ""
    return _summary(html, frozenset(boilerplate), tuple(patterns), language)


def _capped(text: str, language: str | None) -> str:
    """text, or its sentences that end within MAX_SUMMARY characters (else its words, and an
    ellipsis)."""
    if len(text) <= MAX_SUMMARY:
        return text
    head = text[:MAX_SUMMARY + 1]
    ends = [e for e in plaintext.sentence_ends(head, language, MAX_SUMMARY)
            if e <= MAX_SUMMARY]
    if ends:
        return head[:ends[-1]].rstrip()
    space = head.rfind(" ")
    if space > 0:
        return head[:space].rstrip() + "…"
    clusters = textlen.graphemes(head)  # (no space: a script without any, or junk)
    return "".join(clusters[:-2]) + "…"   # (the last may be a cluster cut in two)


@lru_cache(maxsize=256)
def _summary(html: str, boilerplate: frozenset[str], patterns: tuple[str, ...],
             language: str | None = None) -> str:
    user = _user_patterns(patterns)
    kept: list[_Para] = []
    promos: list[_Para] = []
    for p in _paragraphs(html):
        if p.parts and boilerplate:  # a blurb inside the paragraph: left out of it
            parts = tuple(t for t in p.parts if _key(t) not in boilerplate)
            if not parts:
                continue
            p = p._replace(text=" ".join(parts), parts=parts)
        if (boilerplate and _key(p.text) in boilerplate) or any(u.search(p.text) for u in user):
            continue
        (promos if _is_promo(p.text) else kept).append(p)
        if sum(k.kind != "h" for k in kept) == 2:
            break  # all the summary can use
    body = [p for p in kept if p.kind != "h"] or kept
    if not body:
        # Nothing else: a short paragraph whose promo comes later ("Geekistry continues!
        # Sponsored by Benthic Petroleum! DC vs Marvel!") less its promo sentences.
        for p in promos:
            at = _promo_at(p.text)
            if at is not None and not _opens(p.text, at):
                rest = _without_promo_sentences(_capped(p.text, language),
                                                trailing_only=False, language=language)
                if rest:
                    return rest
        return ""
    summary = body[0].text
    if len(summary) < SHORT_SUMMARY and len(body) > 1:
        sep = " " if _ENDS_CLAUSE.search(summary) else " — "
        summary = summary + sep + body[1].text
    return _without_promo_sentences(_capped(summary, language), trailing_only=True,
                                    language=language)


# ---------------------------------------------------------------------------------------------
# templates

def _finalize(value: Any) -> Any:
    return "" if value is None else value


_ENV = SandboxedEnvironment(
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
    finalize=_finalize,
)


@lru_cache(maxsize=128)
def _compile(source: str, name: str) -> Template:
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as e:
        raise TemplateError(name, e.message or str(e), e.lineno) from None


def _template_line(exc: BaseException) -> int | None:
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == "<template>":
            line = lineno
    return line


def _render(template: Template, name: str, variables: Mapping[str, Any]) -> str:
    try:
        text = template.render(**variables)
    except Exception as e:  # a host's template can fail in any way: report which and where
        raise TemplateError(name, f"{type(e).__name__}: {e}", _template_line(e)) from None
    return _tidy(text)


_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_SPACES = re.compile(r"(?<=\S) {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """Line endings to \\n, no trailing spaces, no runs of spaces, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", _TRAILING_SPACE.sub("", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def _duration(seconds: int | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds}s"
    hours, minutes = divmod(seconds // 60, 60)
    if not hours:
        return f"{minutes}m"
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


# ---------------------------------------------------------------------------------------------
# guests and mentions

# "w/", "ft.", "feat.", "featuring" are sure markers; "with" is not ("Dinner with Friends"),
# so the names after it must look like names (two or more words, each "Xxx"), and a Title Case
# title ("Living With Chronic Pain": capitals say nothing) is not read for "with" at all.
_MARKER = regex.compile(
    r"(?:(?<![\w/])w/(?!o\b)\s*+|(?<!\w)(?:ft\.|feat\.|featuring|with)\s++)", regex.IGNORECASE
)
_NAME_WORD = regex.compile(r"\s*+([\p{L}\p{M}][\p{L}\p{M}'’.\-]*+)")
_NAME_JOIN = regex.compile(r"\s*+(?:,\s*+(?:and\s++|&\s*+)?|&\s*+|and\s++)", regex.IGNORECASE)
_PARTICLES = frozenset(
    "van von der den de da das del della des di do dos du la le bin ibn al el ter ten y".split()
)
_NOT_NAMES = frozenset(
    "from of on about at in for to by the a an and or vs live part pt ep episode "
    "your my our his her their its this that these those".split()
)
_ABBREVIATIONS = frozenset("dr mr mrs ms mx jr sr st prof rev sen rep gen col".split())
_CAPITALIZED = regex.compile(r"\p{Lu}")
_NAME_SHAPED = regex.compile(r"\p{Lu}(?:\p{Ll}|['’]\p{Lu})|\p{Lu}\.$")
_TITLE_WORD = regex.compile(r"\p{L}{4,}")
_MAX_NAME_WORDS = 5


def _name_at(title: str, pos: int, sure: bool) -> tuple[str, int] | None:
    """The name that starts at pos (after spaces): (name, end), or None."""
    words: list[str] = []
    end = pos
    while len(words) <= _MAX_NAME_WORDS:
        m = _NAME_WORD.match(title, end)
        if not m:
            break
        word = m.group(1)
        possessive = word.endswith(("'s", "’s"))
        word = word[:-2] if possessive else word
        stop = False
        if word.endswith(".") and len(word) > 2 and word[:-1].casefold() not in _ABBREVIATIONS:
            word, stop = word.rstrip("."), True  # "… w/ Nick Vincent. Next" ("J.", "Dr." stay)
        lower = word.casefold()
        if lower in _NOT_NAMES:
            break
        if lower in _PARTICLES and word.islower():
            if not words:
                break
        elif not (_NAME_SHAPED.match(word) if not sure else _CAPITALIZED.match(word)):
            break
        words.append(word)
        end = m.end()
        if possessive or stop:
            break
    while words and words[-1].islower():  # a trailing particle is not part of the name
        words.pop()
    if not words or len(words) > _MAX_NAME_WORDS or (not sure and len(words) < 2):
        return None
    return " ".join(words), end


def _title_case(title: str, start: int, end: int) -> bool:
    """Are the title's longer words outside [start, end) all capitalized (two at least)?"""
    words = _TITLE_WORD.findall(title[:start]) + _TITLE_WORD.findall(title[end:])
    return len(words) >= 2 and all(w[0].isupper() for w in words)


@lru_cache(maxsize=256)
def _name_pattern(name: str) -> regex.Pattern[str] | None:
    words = name.split()
    if not words:
        return None
    return regex.compile(r"\s*+" + r"\s++".join(map(regex.escape, words)) + r"(?!\w)",
                         regex.IGNORECASE)


def _known_at(title: str, pos: int, known: Sequence[str]) -> tuple[str, int] | None:
    """A name of the people map written at pos (after spaces), longest first: (name, end)."""
    for name in known:
        pattern = _name_pattern(name)
        m = pattern.match(title, pos) if pattern else None
        if m:
            return _inline(name), m.end()
    return None


def _title_guests(title: str, known: Sequence[str] = ()) -> list[str]:
    """Names after the guest markers of a title; a name from `known` (the people map) is
    taken as written there, even when it does not look like a name ("Guest 6")."""
    known = sorted(known, key=lambda n: -len(n))
    names: list[str] = []
    for marker in _MARKER.finditer(title):
        sure = not marker.group().strip().casefold().startswith("with")
        found: list[str] = []
        pos = marker.end()
        while True:
            got = _known_at(title, pos, known) or _name_at(title, pos, sure)
            if got is None:
                break
            found.append(got[0])
            pos = got[1]
            join = _NAME_JOIN.match(title, pos)
            if not join:
                break
            pos = join.end()
        if found and not sure and (_title_case(title, marker.start(), pos)
                                   or (marker.start() > 0 and marker.group()[0].isupper())):
            continue  # "Living With Chronic Pain": in Title Case capitals say nothing
        names.extend(found)
    return names


def _name_key(name: str) -> str:
    return " ".join(name.casefold().split())


def guests_for(episode: Episode,
               people: Mapping[str, Mapping[str, str]] | None = None) -> tuple[str, ...]:
    """The episode's guests: `podcast:person` with role "guest", then the names after "w/",
    "with", "ft.", "feat." or "featuring" in the title (capitalized words, "and"/"&"/","
    joining several; they stop at a lowercase word, "from", "of", "on", "about", "|", "-",
    ":", "(" and the end; a name of `people` is read as written there). Case-insensitively
    unique, in order; a title name that is part of one found before ("Nick" after "Nick
    Vincent") or that is a host's is left out."""
    hosts = {_name_key(p.name) for p in episode.persons if p.role.lower() != "guest"}
    out: list[str] = []
    seen: list[str] = []
    named = [p.name for p in episode.persons if p.role.lower() == "guest"]
    titled = _title_guests(_inline(episode.title), list(people or ()))
    for i, name in enumerate(named + titled):
        name = _inline(name)
        key = _name_key(name)
        if not key or key in seen:
            continue
        if i >= len(named) and (key in hosts or any(f" {key} " in f" {k} " for k in seen)):
            continue
        seen.append(key)
        out.append(name)
    return tuple(out)


# Mastodon: Account::USERNAME_RE @ a domain (app/models/account.rb); X: 1-15 of [A-Za-z0-9_]
# (https://help.x.com/en/managing-your-account/x-username-rules).
_MASTODON_HANDLE = regex.compile(
    r"@?([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)@((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+"
    r"[\p{L}\p{N}-]{2,})",
    regex.IGNORECASE,
)
_X_HANDLE = regex.compile(r"@?([A-Za-z0-9_]{1,15})")
# Bluesky: a handle is a domain name (atproto handle syntax); Threads: Instagram's usernames.
_BLUESKY_HANDLE = regex.compile(
    r"@?((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?)")
_THREADS_HANDLE = regex.compile(r"@?([A-Za-z0-9._]{1,30})")
_HANDLE_KEYS = {"mastodon": ("mastodon",), "x": ("x", "twitter"), "bluesky": ("bluesky",),
                "threads": ("threads",)}


def _handle(name: str, platform: str, people: Mapping[str, Mapping[str, str]]) -> str | None:
    """name's valid handle on platform from the people map, or None."""
    keys = _HANDLE_KEYS.get(platform)
    if not keys or not people:
        return None
    wanted = _name_key(name)
    entry = next((v for k, v in people.items() if _name_key(k) == wanted), None)
    if not isinstance(entry, Mapping):
        return None
    raw = next((entry[k] for k in keys if isinstance(entry.get(k), str)), None)
    if raw is None:
        return None
    raw = raw.strip()
    if platform == "mastodon":
        m = _MASTODON_HANDLE.fullmatch(raw)
        handle = f"@{m.group(1)}@{m.group(2)}" if m else None
        # Mastodon must read all of it as one mention, or the post would mention someone else
        if handle and [(s, e) for _n, s, e in textlen.extract_mentions(handle)] != [
                (0, len(handle))]:
            handle = None
    elif platform == "bluesky":
        m = _BLUESKY_HANDLE.fullmatch(raw)
        handle = f"@{m.group(1).lower()}" if m and len(m.group(1)) <= 253 else None
    else:
        m = (_THREADS_HANDLE if platform == "threads" else _X_HANDLE).fullmatch(raw)
        handle = f"@{m.group(1)}" if m else None
    if handle is None:
        log.warning("people: %r's %s handle %r is not valid; writing the name instead",
                    name, platform, raw)
    return handle


def render_mention(name: str, platform: str, people: Mapping[str, Mapping[str, str]]) -> str:
    """How to write a person on a platform ("mastodon", "x", "bluesky" or "threads"): their
    handle from the people map when it is a valid one ("@user@host" on Mastodon, "@user" on X
    and Threads, "@name.bsky.social" on Bluesky), else their name. Never a broken mention."""
    return _handle(name, platform, people) or _inline(name)


def _join_names(names: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# ---------------------------------------------------------------------------------------------
# links


def _url(value: str | None) -> str | None:
    """value as a link; None when there is none or it is not a URL at all."""
    text = _inline(value) if value else ""
    try:
        urlsplit(text)
    except ValueError:   # "https://[cdn/ep.mp3" (an unclosed IPv6 bracket): nobody could open it
        return None
    return text or None


def choose_link(episode: Episode, choice: str = "episode",
                listen_link: str | None = None) -> str | None:
    """Which link to post: "episode" = the episode page, else the show's page (`listen_link`,
    else the feed's channel <link>); "listen" = the show's page, else the episode page. The
    audio file only when there is nothing else. A link is never shown behind a download
    tracker's prefix (Podtrac, Chartable, Podsights...: `feed.untracked_url`)."""
    if choice not in LINK_CHOICES:
        raise CrierError(f"unknown link {choice!r}; expected one of {', '.join(LINK_CHOICES)}")
    page = _url(episode.link)
    listen = _url(listen_link) or _url(episode.show_link)
    first, second = (listen, page) if choice == "listen" else (page, listen)
    chosen = first or second or _url(episode.enclosure_url)
    return untracked_url(chosen) if chosen else None


def _http_parts(url: str):
    """`urlsplit(url)` of an absolute http(s) URL with a host; None for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def bluesky_short_url(url: str) -> str:
    """A link as Bluesky's own app shows it in a post (social-app's `toShortUrl`, used when it
    writes a link facet): host and path without the scheme; a path (with its query and
    fragment) longer than 15 characters cut to 13 and "…". Not an http(s) URL: unchanged."""
    parts = _http_parts(url)
    if parts is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    path = ("" if parts.path == "/" else parts.path) + (f"?{parts.query}" if parts.query else
                                                         "") + (f"#{parts.fragment}"
                                                                if parts.fragment else "")
    return host + (path[:13] + "…" if len(path) > 15 else path)


def card_description(summary: str, ellipsis: str = "…", limit: int = CARD_DESCRIPTION) -> str:
    """The summary as a link card shows it: cut at a word (else a grapheme) to `limit`
    characters with the ellipsis."""
    if len(summary) <= limit:
        return summary
    cut = _cut(summary, "bluesky", ellipsis, lambda s: len(s) <= limit)
    if cut is None:
        kept: list[str] = []
        for g in textlen.graphemes(summary):
            if sum(map(len, kept)) + len(g) + len(ellipsis) > limit:
                break
            kept.append(g)
        cut = "".join(kept) + ellipsis
    return cut


def with_params(url: str, params: Mapping[str, str]) -> str:
    """url with query parameters added (UTM tags); a parameter the URL already has is kept as
    it is, not repeated. Only http(s) URLs are changed."""
    parts = _http_parts(url) if params else None
    if parts is None:
        return url
    have = {k for k, _v in parse_qsl(parts.query, keep_blank_values=True)}
    add = [(k, v) for k, v in params.items() if k and k not in have]
    if not add:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(add)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# Characters outside the URL syntax (RFC 3986) that would end the URL for X's extractor.
_NOT_URL_CHAR = re.compile(r"[^\x21-\x7e]|[\"<>\\^`{|}]")
_HOST_PORT = re.compile(r"(?P<host>.*?)(?P<port>:[0-9]*)?")


def ascii_url(url: str, *, host: bool = True) -> str:
    """url with its host IDNA-encoded (unless host=False) and any other non-ASCII (or unsafe)
    character of its path, query and fragment percent-encoded as UTF-8: X gives a URL its
    23-character weight, and X and Mastodon link all of it, only when their extractors
    recognize all of it ("?q=straße" ends at "stra"). ASCII URLs come back unchanged."""
    if not _NOT_URL_CHAR.search(url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if host and not netloc.isascii():
        user, at, hostport = netloc.rpartition("@")
        hp = _HOST_PORT.fullmatch(hostport)
        assert hp is not None  # the pattern matches any string
        name = hp.group("host")
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            name = quote(name, safe="")
        netloc = user + at + name + (hp.group("port") or "")

    def encode(part: str) -> str:
        return _NOT_URL_CHAR.sub(lambda m: quote(m.group(), safe=""), part)

    return urlunsplit((parts.scheme, netloc, encode(parts.path), encode(parts.query),
                       encode(parts.fragment)))


# ---------------------------------------------------------------------------------------------
# hashtags

_HASHTAG_JUNK = regex.compile(r"[^\w\u00b7\u200c]+")
_LETTER = regex.compile(r"\p{L}")


def _hashtags(tags: Sequence[str]) -> list[str]:
    """The configured tags as "#Word", CamelCase kept (screen readers read it word by word),
    anything that would end a hashtag removed, case-insensitively unique. A tag without a
    letter ("#2024") is no hashtag on Mastodon or X and is left out."""
    out: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        word = _HASHTAG_JUNK.sub("", plaintext.clean(tag))
        if not word or word.casefold() in seen:
            continue
        if not _LETTER.search(word):
            log.warning("hashtag %r has no letter, so no network links it; left out", tag)
            continue
        seen.add(word.casefold())
        out.append(f"#{word}")
    return out


@lru_cache(maxsize=256)
def _word_pattern(word: str) -> regex.Pattern[str]:
    return regex.compile(rf"(?<![\w@＠]){regex.escape(word)}(?!\w)", regex.IGNORECASE)


@lru_cache(maxsize=1024)
def _without_urls(text: str, counter: str) -> str:
    spans = textlen.find_urls(text, counter)
    for s, e in reversed(spans):
        text = text[:s] + " " + text[e:]
    return text


def _has_word(text: str, word: str, counter: str) -> bool:
    """Does text, links left out, have word as a word or a #tag? (a mention is neither)"""
    pattern = _word_pattern(word)
    return bool(pattern.search(text) and pattern.search(_without_urls(text, counter)))


_JINJA_CODE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@lru_cache(maxsize=128)
def _literal_text(source: str) -> str:
    """A template's own words, its code left out."""
    return _JINJA_CODE.sub(" ", source)


def _new_tags(tags: Sequence[str], texts: Sequence[str], counter: str) -> list[str]:
    """The hashtags that none of texts already has as a word or a #tag."""
    return [t for t in tags if not any(_has_word(x, t[1:], counter) for x in texts if x)]


# ---------------------------------------------------------------------------------------------
# cutting

_MENTION_OR_TAG = regex.compile(
    r"(?<![\w@＠#＃])(?:[@＠][\w.\-]+(?:@[\w\-]+(?:\.[\w\-]+)+)?|[#＃][\w\u00b7\u200c]+)"
)
_WEAK_END = frozenset(",;:-–—([{/\\&\"'“‘«")


Spans = Sequence[tuple[int, int]]


@lru_cache(maxsize=64)  # a summary is cut by sentences, then by words, for each network
def _protected(text: str, counter: str) -> Spans:
    """Spans of the links, mentions and hashtags in text, which no cut may fall inside."""
    spans = textlen.find_urls(text, counter)
    spans += [(m.start(), m.end()) for m in _MENTION_OR_TAG.finditer(text)]
    return tuple(sorted(spans))


@lru_cache(maxsize=64)
def _boundaries(text: str) -> tuple[int, ...]:
    """Grapheme cluster boundaries strictly inside text."""
    out, pos = [], 0
    for g in textlen.graphemes(text):
        pos += len(g)
        out.append(pos)
    return tuple(out[:-1])


def _outside(positions: Sequence[int], spans: Spans) -> list[int]:
    """The ascending positions that fall inside no span (s < pos < e): one pass over both."""
    out, i, reach = [], 0, -1  # reach: the furthest end of the spans starting before pos
    for pos in positions:
        while i < len(spans) and spans[i][0] < pos:
            reach = max(reach, spans[i][1])
            i += 1
        if pos >= reach:
            out.append(pos)
    return out


def _sentence_cuts(text: str, spans: Spans, language: str | None = None,
                   reach: int = 20000) -> list[int]:
    """Ends of whole sentences (`plaintext.sentence_ends`: "Dr.", "U.S." and initials are no
    ends) and of lines, ascending, not counting the end of text; only those within about
    `reach` characters (no cut further on could fit)."""
    bounds = set(_boundaries(text))
    first = len(text) - len(text.lstrip())
    ends = [e for e in plaintext.sentence_ends(text, language, reach)
            if e > first and e in bounds]
    return _outside(ends, spans)


def _word_cuts(text: str, spans: Spans) -> list[int]:
    """Ends of words: boundaries where whitespace starts after non-whitespace."""
    return _outside([pos for pos in _boundaries(text)
                     if text[pos].isspace() and not text[pos - 1].isspace()], spans)


def _grapheme_cuts(text: str, spans: Spans) -> list[int]:
    return _outside(_boundaries(text), spans)


def _with_ellipsis(text: str, end: int, spans: Spans, ellipsis: str) -> str:
    """text[:end] less trailing spaces and dangling punctuation (whole grapheme clusters, never
    part of a link, mention or hashtag), then the ellipsis; "" when nothing is left."""
    clusters = textlen.graphemes(text[:end])
    while clusters:
        last = clusters[-1]
        at = end - len(last)
        if last.isspace() or (last in _WEAK_END and not any(s <= at < e for s, e in spans)):
            clusters.pop()
            end = at
        else:
            break
    return "".join(clusters) + ellipsis if clusters else ""


def _largest(cuts: list[int], make: Callable[[int], str],
             ok: Callable[[str], bool]) -> tuple[int, str] | None:
    """(index, make(cut)) for the largest cut whose text ok() accepts, by binary search (a
    shorter text fits at least as well; every answer is checked); None when none fits."""
    lo, hi, best = 0, len(cuts) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = make(cuts[mid])
        if candidate and ok(candidate):
            best, lo = (mid, candidate), mid + 1
        else:
            hi = mid - 1
    return best


def _cut(text: str, counter: str, ellipsis: str, ok: Callable[[str], bool],
         min_graphemes: int = 1) -> str | None:
    """The longest prefix of text (at a word end, else at a grapheme boundary, keeping at
    least `min_graphemes` clusters: "F…" says nothing) plus the ellipsis that ok() accepts,
    or None."""
    spans = _protected(text, counter)

    def make(end: int) -> str:
        return _with_ellipsis(text, end, spans, ellipsis)

    found = _largest(_word_cuts(text, spans), make, ok)
    if found is None:
        cuts = _grapheme_cuts(text, spans)[max(0, min_graphemes - 1):]
        found = _largest(cuts, make, ok)
    return found[1] if found else None


def _reach(rules: Rules) -> int:
    """How far into a text a cut that fits can lie (characters, with a margin for links,
    which count 23 whatever their length): sentences beyond are not looked for."""
    return 4 * rules.limit + 400


def _words(text: str) -> int:
    return len(text.split())


def _measure(text: str, rules: Rules) -> str:
    size = f"{textlen.count(text, rules)} characters"
    if rules.max_bytes is not None:
        size += f" ({len(text.encode('utf-8'))} bytes)"
    return size


def _limits(rules: Rules) -> str:
    limit = f"the limit is {rules.limit}"
    if rules.max_bytes is not None:
        limit += f" ({rules.max_bytes} bytes)"
    return limit


def _rstrip(text: str) -> str:
    """text without trailing whitespace, removed by whole grapheme clusters."""
    clusters = textlen.graphemes(text)
    while clusters and clusters[-1].isspace():
        clusters.pop()
    return "".join(clusters)


# ---------------------------------------------------------------------------------------------
# composing


def compose_episode(
    episode: Episode,
    *,
    show: str,
    rules: Rules,
    options: ComposeOptions | None = None,
    show_image: str | None = None,
    template: str | None = None,
    template_name: str = "default",
    hashtags: Sequence[str] = (),
    ellipsis: str | None = None,
    link: str | None = None,
) -> Composed:
    """Render `episode` through the account's template (Jinja2, sandboxed) and fit it to `rules`.

    `options` holds the account's settings; without it, `template`, `template_name`,
    `hashtags` and `ellipsis` are used (the older form; ignored when `options` is given).
    `link`, when given, is the URL to post instead of the chosen one (`choose_link`).
    `show_image` is the show's artwork, used when the episode has none.

    Raises TemplateError when a template cannot be compiled or rendered, CrierError when even
    the shortest form is too long, or for an unknown link choice or policy.
    """
    if options is None:
        options = ComposeOptions(template=template, template_name=template_name,
                                 hashtags=tuple(hashtags), ellipsis=ellipsis)
    if options.link_policy not in LINK_POLICIES:
        raise CrierError(f"unknown link policy {options.link_policy!r}; expected one of "
                         f"{', '.join(LINK_POLICIES)}")
    name = options.template_name
    compiled = _compile(DEFAULT_TEMPLATE if options.template is None else options.template, name)
    ell = rules.ellipsis if options.ellipsis is None else options.ellipsis

    url = _url(link) if link is not None else choose_link(episode, options.link,
                                                          options.listen_link)
    if url:
        url = with_params(url, options.utm)
        if rules.counter in ("x", "mastodon"):  # Mastodon links unicode hosts, not paths
            url = ascii_url(url, host=rules.counter == "x")
    inline = url if options.link_policy == "inline" else None
    shown_links: tuple[tuple[str, str], ...] = ()
    if inline and rules.counter == "bluesky" and options.shorten_links:  # the facet: all
        inline = bluesky_short_url(inline)
        shown_links = ((inline, url),)

    guests = guests_for(episode, options.people)
    # whose handles: the counter names the network (a Mastodon-compatible server counts, and
    # mentions, like Mastodon)
    handles = {g: _handle(g, rules.counter, options.people) for g in guests}
    fixed = {
        "show": _inline(show),
        "link": inline,
        "season": episode.season,
        "number": episode.number,
        "duration": _duration(episode.duration),
        "published": episode.published.date() if episode.published else None,
        "guests": _join_names([handles[g] or g for g in guests]),
        "guest_names": _join_names(guests),
    }
    full_title = _inline(episode.title)
    full_summary = summary_from_html(episode.summary_html, boilerplate=options.boilerplate,
                                     patterns=options.boilerplate_patterns,
                                     language=episode.language)
    tags = _hashtags(options.hashtags)

    # what the post says besides title and summary, for "is this hashtag already there?"
    context = " ".join([fixed["show"], fixed["guest_names"], _literal_text(
        DEFAULT_TEMPLATE if options.template is None else options.template)])
    # a tag the whole title and summary lack, none of their cuts has: only these are checked
    # again as the post is shortened
    maybe_there = set(tags) - set(_new_tags(tags, (full_title, full_summary, context),
                                            rules.counter))
    rendered: dict[tuple[str, str, tuple[str, ...]], str] = {}

    def render(title: str, summary: str, tags: Sequence[str]) -> str:
        key = (title, summary, tuple(tags))
        if key not in rendered:
            text = _render(compiled, name, {
                **fixed, "title": title, "summary": summary,
                "mentions": _join_names([h for h in handles.values()
                                         if h and not _mentioned(h, title, summary)]),
                "hashtags": " ".join(t for t in tags if t not in maybe_there or _new_tags(
                    (t,), (title, summary, context), rules.counter)),
            })
            if not text:
                raise TemplateError(name, "the template renders an empty post")
            rendered[key] = text
        return rendered[key]

    lengths: dict[str, int] = {}

    def ok(text: str) -> bool:
        if rules.max_bytes is not None and len(text.encode("utf-8")) > rules.max_bytes:
            return False
        if rules.max_links is not None and textlen.link_count(text) > rules.max_links:
            return False
        if text not in lengths:
            lengths[text] = textlen.count(text, rules)
        return lengths[text] <= rules.limit

    def fit(tags: Sequence[str]) -> tuple[str, list[str]] | None:
        """Title and summary shortened, in order, until the post fits with these tags."""
        title, summary, notes = full_title, full_summary, []
        text = render(title, summary, tags)
        if not ok(text) and summary:
            spans = _protected(summary, rules.counter)
            cuts = _sentence_cuts(summary, spans, episode.language, _reach(rules))
            total = len(cuts) + 1
            best = _largest(cuts, lambda end: _rstrip(summary[:end]),
                            lambda s: ok(render(title, s, tags)))
            if best is not None:
                shorter = best[1]
                notes.append(f"summary: {total - best[0] - 1} of {total} sentences dropped")
            else:
                shorter = _cut(summary, rules.counter, ell,
                               lambda s: ok(render(title, s, tags)), MIN_SUMMARY_CUT) or ""
                notes.append(f"summary: cut to {_words(shorter)} of {_words(summary)} words"
                             if shorter else "summary: dropped")
            summary = shorter
            text = render(title, summary, tags)
        if not ok(text):
            shorter = _cut(title, rules.counter, ell, lambda t: ok(render(t, summary, tags)))
            if shorter is None:
                return None
            notes.append(f"title: cut to {_words(shorter)} of {_words(title)} words")
            text = render(shorter, summary, tags)
        return text, notes

    clusters = textlen.graphemes(full_title)
    tiniest_title = clusters[0] + ell if len(clusters) > 1 else full_title

    def fit_tags() -> tuple[int, tuple[str, list[str]] | None]:
        """The most tags the post fits with, and the post: tags go after the summary."""
        for kept in range(len(tags), -1, -1):
            # hopeless with this many tags (even a one-character title is too long): fewer
            if kept and not ok(render(tiniest_title, "", tags[:kept])):
                continue
            result = fit(tags[:kept])
            if result is not None:
                return kept, result
        return 0, None

    def with_show(name: str) -> None:
        fixed["show"] = name
        rendered.clear()

    full_show = fixed["show"]
    kept, result = fit_tags()
    show_note = None
    if result is None and full_show:
        # last of all, a show name too long for the post itself (a feed's whole <title>):
        # cut so the whole title and the hashtags fit, if they can, else the whole title,
        # else a one-character one
        def fits(show: str, title: str, keep: Sequence[str]) -> bool:
            with_show(show)
            return ok(render(title, "", keep))

        shorter_show = None
        for title, keep in ((full_title, tags), (full_title, ()), (tiniest_title, ())):
            shorter_show = _cut(full_show, rules.counter, ell,
                                lambda s, t=title, k=keep: fits(s, t, k))
            if shorter_show is not None:
                break
        if shorter_show is not None:
            with_show(shorter_show)
            kept, result = fit_tags()
            show_note = f"show name: cut to {_words(shorter_show)} of {_words(full_show)} words"
        else:
            with_show(full_show)
    if result is None:
        shortest = render(tiniest_title, "", [])
        if rules.max_links is not None and textlen.link_count(shortest) > rules.max_links:
            raise CrierError(
                f"{rules.platform}: the post still has {textlen.link_count(shortest)} links "
                f"with the summary and hashtags dropped; {rules.platform} takes at most "
                f"{rules.max_links} (check the template)")
        raise CrierError(
            f"{rules.platform}: the post is still {_measure(shortest, rules)} with the "
            f"summary and hashtags dropped and the title cut to one character; "
            f"{_limits(rules)}"
        )
    text, notes = result
    if show_note:
        notes.insert(0, show_note)
    if kept < len(tags):
        notes.append(f"hashtags: {len(tags) - kept} of {len(tags)} dropped")
    if notes:
        log.info("fitted episode %s to %s (limit %d): %s", episode.guid or episode.title,
                 rules.platform, rules.limit, "; ".join(notes))

    reply = _reply(url, rules) if options.link_policy == "reply" and url else None
    image_url = _url(episode.image) or _url(show_image)
    alt = None
    if image_url:
        alt = _alt_text(options, rules, ell, {
            "show": full_show, "title": full_title, "season": episode.season,
            "number": episode.number, "published": fixed["published"],
            "guest_names": fixed["guest_names"],
            "image": "episode" if _url(episode.image) else "show",
        })
    ok(text)
    card = None
    if rules.counter in CARD_NETWORKS and url and options.link_policy == "inline":
        card = Card(uri=url, title=full_title, description=card_description(full_summary, ell),
                    thumb=Media(image_url, alt or "", url=image_url) if image_url else None)
    return Composed(text, lengths[text], rules.limit, url if options.link_policy != "none"
                    else None, bool(notes), tuple(notes), reply_text=reply, image_url=image_url,
                    alt_text=alt, guests=guests, card=card,
                    mentions=_mentions_in(text, handles),
                    links=tuple(p for p in shown_links if p[0] in text))


def _mentions_in(text: str, handles: Mapping[str, str | None]) -> tuple[tuple[str, str], ...]:
    """("@handle", "Name") of each guest whose handle the text mentions."""
    return tuple((h, name) for name, h in handles.items() if h and _mentioned(h, text))


@lru_cache(maxsize=256)
def _handle_pattern(handle: str) -> regex.Pattern[str]:
    return regex.compile(rf"(?<![\w@＠]){regex.escape(handle)}(?![\w@])", regex.IGNORECASE)


def _mentioned(handle: str, *texts: str) -> bool:
    """Does one of texts already mention handle?"""
    pattern = _handle_pattern(handle)
    return any(pattern.search(t) for t in texts if t)


def _reply(url: str, rules: Rules) -> str:
    """The reply that carries the link (link policy "reply")."""
    for text in (REPLY_PREFIX + url, url):
        if textlen.fits(text, rules):
            return text
    raise CrierError(f"{rules.platform}: the link alone is {_measure(url, rules)}; "
                     f"{_limits(rules)}")


def _alt_name(template_name: str) -> str:
    if template_name.endswith(".template"):
        return template_name.removesuffix(".template") + ".alt_template"
    return f"{template_name} (alt text)"


def _alt_text(options: ComposeOptions, rules: Rules, ellipsis: str,
              variables: dict[str, Any]) -> str:
    """The artwork's alt text from the alt template (else the default), cut at a word to
    rules.alt_text_limit characters (code points, as Mastodon counts a description)."""
    text = ""
    if options.alt_template is not None:
        name = _alt_name(options.template_name)
        text = _inline(_render(_compile(options.alt_template, name), name, variables))
    if not text:
        text = _inline(_render(_compile(DEFAULT_ALT_TEMPLATE, "default alt text"),
                               "default alt text", variables))
    limit = rules.alt_text_limit
    if len(text) <= limit:
        return text
    cut = _cut(text, rules.counter, ellipsis, lambda s: len(s) <= limit)
    if cut is None:  # one unbreakable token (a long link): whole graphemes
        kept: list[str] = []
        size = 0
        for g in textlen.graphemes(text):
            if size + len(g) > limit:
                break
            kept.append(g)
            size += len(g)
        cut = "".join(kept)
    return cut


# ---------------------------------------------------------------------------------------------
# free text


def _split_tail(text: str, counter: str) -> tuple[str, str, str]:
    """(body, separator, tail): the tail is the run of links, mentions and hashtags that ends
    the text, which shortening keeps."""
    spans = _protected(text, counter)
    end = len(text)
    start = end
    pos = end
    while True:
        stripped = text[:pos].rstrip()
        if not stripped:
            break
        span = next((s for s, e in spans if e == len(stripped)), None)
        if span is None or (span > 0 and not text[span - 1].isspace()):
            break
        start, pos = span, span
    if start == end:
        return text, "", ""
    body = text[:start].rstrip()
    return body, text[len(body):start], text[start:]


def fit_text(text: str, rules: Rules, *, fit: bool = True, ellipsis: str | None = None,
             language: str | None = None) -> Composed:
    """Measure a host's own text against `rules`. Too long and fit=False: returned unchanged
    (length > limit) for the caller to refuse with the numbers. Too long and fit=True: shortened
    by whole sentences, then by words (else graphemes) with the ellipsis, keeping the trailing
    links, mentions and hashtags; CrierError when even that does not fit."""
    text = text.strip()
    n = textlen.count(text, rules)
    links = textlen.link_count(text)
    if rules.max_links is not None and links > rules.max_links and not fit:
        raise CrierError(f"{rules.platform}: the text has {links} links; {rules.platform} "
                         f"takes at most {rules.max_links} (remove some, or let crier shorten "
                         "the text)")
    if textlen.fits(text, rules) or not fit:
        return Composed(text, n, rules.limit, None, False)
    ell = rules.ellipsis if ellipsis is None else ellipsis
    body, sep, tail = _split_tail(text, rules.counter)

    def join(b: str) -> str:
        return b + sep + tail if b else tail

    def ok(b: str) -> bool:
        return textlen.fits(join(b), rules)

    spans = _protected(body, rules.counter)
    cuts = _sentence_cuts(body, spans, language, _reach(rules))
    best = _largest(cuts, lambda end: _rstrip(body[:end]), ok)
    if best is not None:
        shorter: str | None = best[1]
        note = f"text: {len(cuts) - best[0]} of {len(cuts) + 1} sentences dropped"
    else:
        shorter = _cut(body, rules.counter, ell, ok)
        note = f"text: cut to {_words(shorter)} of {_words(body)} words" if shorter else ""
    if shorter is None:
        too_many = "" if rules.max_links is None or links <= rules.max_links else \
            f" and has {links} links (at most {rules.max_links})"
        raise CrierError(
            f"{rules.platform}: the text is {_measure(text, rules)}{too_many}; "
            f"{_limits(rules)}; it cannot be shortened enough without cutting a link, mention "
            "or hashtag"
        )
    out = join(shorter)
    log.info("fitted free text to %s (limit %d): %s", rules.platform, rules.limit, note)
    return Composed(out, textlen.count(out, rules), rules.limit, None, True, (note,))


# ---------------------------------------------------------------------------------------------
# the host's own posts (the promo queue)

PROMO_VARIABLES = ("show", "title", "summary", "link", "season", "number", "duration",
                   "published", "hashtags", "guests", "guest_names", "mentions", "artwork")
# What only an episode gives (a promo without one has {{ show }} and {{ hashtags }}).
EPISODE_VARIABLES = frozenset(PROMO_VARIABLES) - {"show", "hashtags"}


def _refuse_episode_variables(text: str, name: str) -> None:
    """A promo without an episode must not use an episode's variable: it would render as an
    empty string. TemplateError names each one and the line of its first use."""
    from jinja2 import meta, nodes
    try:
        tree = _ENV.parse(text)
    except TemplateSyntaxError as e:
        raise TemplateError(name, e.message or str(e), e.lineno) from None
    used = meta.find_undeclared_variables(tree) & EPISODE_VARIABLES
    if not used:
        return
    first = sorted(((n.lineno, n.name) for n in tree.find_all(nodes.Name) if n.name in used),
                   key=lambda t: t[0])   # stable: in the order they appear
    found = list(dict.fromkeys(v for _, v in first))
    names = ", ".join(f"{{{{ {v} }}}}" for v in found)
    verb = "needs" if len(found) == 1 else "need"
    raise TemplateError(name, f"{names} {verb} an episode and this post has none (give it one "
                              "with --episode GUID or latest)", first[0][0])


DEFAULT_EVERGREEN_TEMPLATE = """\
From the archive{% if show %} of {{ show }}{% endif %}: {{ title }}

{{ summary }}

{% if mentions %}
With {{ mentions }}
{% endif %}

{{ link }}

{{ hashtags }}
"""


def compose_promo(text: str, *, show: str, rules: Rules, episode: Episode | None = None,
                  options: ComposeOptions | None = None, fit: bool = False,
                  name: str = "promo") -> Composed:
    """The host's text (a Jinja2 template, sandboxed) for one account. With `episode`, the
    episode's variables are there as in announcements ({{ title }}, {{ link }}, ...); without,
    only {{ show }} and {{ hashtags }}. Too long: returned as is (length > limit) for the
    caller to refuse with the numbers, or shortened when `fit` (see `fit_text`).
    Raises TemplateError for a template that does not compile or render."""
    options = options or ComposeOptions()
    if episode is None:
        _refuse_episode_variables(text, name)
    tags = " ".join(_hashtags(options.hashtags))
    variables: dict[str, Any] = {v: "" for v in PROMO_VARIABLES}
    variables.update(show=_inline(show), hashtags=tags)
    link = shown = None
    image_url = alt = None
    handles: dict[str, str | None] = {}
    if episode is not None:
        link = choose_link(episode, options.link, options.listen_link)
        if link:
            link = with_params(link, options.utm)
            if rules.counter in ("x", "mastodon"):
                link = ascii_url(link, host=rules.counter == "x")
            shown = bluesky_short_url(link) if rules.counter == "bluesky" and \
                options.shorten_links else link
        guests = guests_for(episode, options.people)
        handles = {g: _handle(g, rules.counter, options.people) for g in guests}
        variables.update(
            title=_inline(episode.title), link=shown or "",
            summary=summary_from_html(episode.summary_html, boilerplate=options.boilerplate,
                                      patterns=options.boilerplate_patterns,
                                      language=episode.language),
            season=episode.season, number=episode.number,
            duration=_duration(episode.duration),
            published=episode.published.date() if episode.published else None,
            guests=_join_names([handles[g] or g for g in guests]),
            guest_names=_join_names(guests),
            mentions=_join_names([h for h in handles.values() if h]),
            artwork=episode.image or "")
        image_url = episode.image
    rendered = _render(_compile(text, name), name, variables)
    if not rendered.strip():
        raise TemplateError(name, "the text renders an empty post")
    composed = fit_text(rendered, rules, fit=fit, ellipsis=options.ellipsis,
                        language=episode.language if episode is not None else None)
    if image_url:
        alt = _render(_compile(options.alt_template or DEFAULT_ALT_TEMPLATE, "alt_template"),
                      "alt_template", {"show": _inline(show), "title": variables["title"],
                                       "season": variables["season"],
                                       "number": variables["number"],
                                       "published": variables["published"],
                                       "guest_names": variables["guest_names"],
                                       "image": "episode"})
    posted = bool(link and shown and shown in composed.text)
    card = None
    if posted and link and rules.counter in CARD_NETWORKS:
        card = Card(uri=link, title=variables["title"],
                    description=card_description(variables["summary"], rules.ellipsis
                                                 if options.ellipsis is None else options.ellipsis),
                    thumb=Media(image_url, alt or "", url=image_url) if image_url else None)
    return replace(composed, link=link if posted else None, image_url=image_url, alt_text=alt,
                   card=card,
                   mentions=_mentions_in(composed.text, handles),
                   links=((shown, link),) if posted and shown != link else ())
