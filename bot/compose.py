"""Compose posts: render an episode through a template, then fit the text to a network's rules.

Pure: no I/O and no clock. The same input always gives the same output.

Fitting keeps the template's layout: every step shortens one part and renders the template
again. In order, until the post fits (`textlen.fits`): drop hashtags from the end, drop the
summary's last whole sentences, cut the summary at a word (else grapheme) boundary with an
ellipsis, drop the summary, cut the title the same way. The link is always kept whole, and no
cut falls inside a URL, an @mention or a #hashtag, or inside a grapheme cluster.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import regex
from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from bot import textlen
from bot.errors import CrierError, TemplateError
from bot.models import Episode, Rules

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_TEMPLATE", "Composed", "compose_episode", "fit_text", "summary_from_html"]


@dataclass(frozen=True)
class Composed:
    """A post's final text, measured against the rules it was fitted to."""

    text: str
    length: int                    # as the network counts it (textlen.count)
    limit: int
    link: str | None
    truncated: bool                # something was shortened or dropped
    trimmed: tuple[str, ...] = ()  # what, e.g. ("summary: 3 sentences dropped",)


# Empty parts leave no blank-line garbage: a rendered post's runs of blank lines collapse to one.
DEFAULT_TEMPLATE = """\
{% if show %}New episode of {{ show }}: {% endif %}{{ title }}

{{ summary }}

{{ link }}

{{ hashtags }}
"""

TEMPLATE_VARIABLES = (
    "show", "title", "summary", "link", "season", "number", "duration", "published",
    "hashtags", "guests",
)


# ---------------------------------------------------------------------------------------------
# summary


_BLOCK_TAGS = frozenset(
    "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
_SKIP_TAGS = frozenset({"script", "style", "template", "head", "title"})
_BAD_CHARS = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\ufeff\\ufffe\\uffff]")
_SPACE_RUN = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v\xa0]*\n")


class _Paragraphs(HTMLParser):
    """Collects text, starting a new paragraph at block tags and at two <br> in a row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[list[str]] = [[]]
        self.skipping = 0
        self.breaks = 0

    def _new_paragraph(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])
        self.breaks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.breaks += 1
            if self.breaks >= 2:
                self._new_paragraph()
            else:
                self.paragraphs[-1].append("\n")
        elif tag in _BLOCK_TAGS:
            self._new_paragraph()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._new_paragraph()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if data.strip():
            self.breaks = 0
        self.paragraphs[-1].append(data)


def _inline(text: str) -> str:
    """One line of clean text: control characters dropped, whitespace runs made one space."""
    return _SPACE_RUN.sub(" ", _BAD_CHARS.sub("", text)).strip()


def summary_from_html(html: str) -> str:
    """Show notes (HTML or plain text) -> the first paragraph as plain text: tags stripped,
    entities decoded, whitespace normalized. Empty when there is no text."""
    if not html or not html.strip():
        return ""
    parser = _Paragraphs()
    for start in range(0, len(html), _CHUNK):  # long show notes: stop after the first paragraph
        parser.feed(html[start:start + _CHUNK])
        text = _first_paragraph(parser.paragraphs[:-1])
        if text:
            return text
    parser.close()
    return _first_paragraph(parser.paragraphs)


_CHUNK = 2048


def _first_paragraph(paragraphs: list[list[str]]) -> str:
    for chunks in paragraphs:
        for paragraph in _BLANK_LINE.split("".join(chunks)):
            text = _inline(paragraph)
            if text:
                return text
    return ""


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


_HASHTAG_JUNK = re.compile(r"[\s#＃]+")


def _hashtags(tags: Sequence[str]) -> list[str]:
    out = []
    for tag in tags:
        word = _HASHTAG_JUNK.sub("", _BAD_CHARS.sub("", tag))
        if word and f"#{word}" not in out:
            out.append(f"#{word}")
    return out


# ---------------------------------------------------------------------------------------------
# cutting

_MENTION_OR_TAG = regex.compile(
    r"(?<![\w@＠#＃])(?:[@＠][\w.\-]+(?:@[\w\-]+(?:\.[\w\-]+)+)?|[#＃][\w\u00b7\u200c]+)"
)
_SENTENCE_END = regex.compile(r"[.!?…‼⁇⁈⁉][\"'”’»)\]]*(?=\s)|[。！？](?!$)|\n")
_WEAK_END = frozenset(",;:-–—([{/\\&\"'“‘«")


def _protected(text: str, counter: str) -> list[tuple[int, int]]:
    spans = textlen.find_urls(text, counter)
    spans += [(m.start(), m.end()) for m in _MENTION_OR_TAG.finditer(text)]
    return sorted(spans)


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(s < pos < e for s, e in spans)


def _boundaries(text: str) -> list[int]:
    """Grapheme cluster boundaries strictly inside text."""
    out, pos = [], 0
    for g in textlen.graphemes(text):
        pos += len(g)
        out.append(pos)
    return out[:-1]


def _sentence_cuts(text: str, spans: list[tuple[int, int]]) -> list[int]:
    """Ends of whole sentences (and of lines), ascending, not counting the end of text."""
    bounds = set(_boundaries(text))
    cuts = []
    for m in _SENTENCE_END.finditer(text):
        end = m.end() if m.group() != "\n" else m.start()
        if end in bounds and text[:end].strip() and not _inside(end, spans):
            cuts.append(end)
    return sorted(set(cuts))


def _word_cuts(text: str, spans: list[tuple[int, int]]) -> list[int]:
    """Ends of words: boundaries where whitespace starts after non-whitespace."""
    cuts = []
    for pos in _boundaries(text):
        if text[pos].isspace() and not text[pos - 1].isspace() and not _inside(pos, spans):
            cuts.append(pos)
    return cuts


def _grapheme_cuts(text: str, spans: list[tuple[int, int]]) -> list[int]:
    return [pos for pos in _boundaries(text) if not _inside(pos, spans)]


def _with_ellipsis(text: str, end: int, spans: list[tuple[int, int]], ellipsis: str) -> str:
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


def _cut(text: str, counter: str, ellipsis: str, ok: Callable[[str], bool]) -> str | None:
    """The longest prefix of text (at a word end, else at a grapheme boundary) plus the
    ellipsis that ok() accepts, or None."""
    spans = _protected(text, counter)

    def make(end: int) -> str:
        return _with_ellipsis(text, end, spans, ellipsis)

    found = _largest(_word_cuts(text, spans), make, ok)
    if found is None:
        found = _largest(_grapheme_cuts(text, spans), make, ok)
    return found[1] if found else None


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
    template: str | None = None,
    template_name: str = "default",
    hashtags: Sequence[str] = (),
    ellipsis: str | None = None,
    link: str | None = None,
) -> Composed:
    """Render `episode` through `template` (Jinja2, sandboxed) and fit it to `rules`.

    `link` defaults to the episode page, else the enclosure URL. Raises TemplateError when the
    template cannot be compiled or rendered, CrierError when even the shortest form is too long.
    """
    source = DEFAULT_TEMPLATE if template is None else template
    compiled = _compile(source, template_name)
    ell = rules.ellipsis if ellipsis is None else ellipsis
    link = link if link is not None else (episode.link or episode.enclosure_url)
    link = _inline(link) if link else None
    guests = [p.name for p in episode.persons if p.role.lower() == "guest" and p.name.strip()]
    fixed = {
        "show": _inline(show),
        "link": link,
        "season": episode.season,
        "number": episode.number,
        "duration": _duration(episode.duration),
        "published": episode.published.date() if episode.published else None,
        "guests": ", ".join(_inline(g) for g in guests),
    }
    title = _inline(episode.title)
    summary = summary_from_html(episode.summary_html)
    tags = _hashtags(hashtags)

    def render(title: str, summary: str, tags: Sequence[str]) -> str:
        text = _render(compiled, template_name,
                       {**fixed, "title": title, "summary": summary, "hashtags": " ".join(tags)})
        if not text:
            raise TemplateError(template_name, "the template renders an empty post")
        return text

    lengths: dict[str, int] = {}

    def ok(text: str) -> bool:
        if text not in lengths:
            lengths[text] = textlen.count(text, rules)
        if rules.max_bytes is not None and len(text.encode("utf-8")) > rules.max_bytes:
            return False
        return lengths[text] <= rules.limit

    text = render(title, summary, tags)
    notes: list[str] = []

    if not ok(text) and tags:
        kept = len(tags)
        while kept and not ok(text):
            kept -= 1
            text = render(title, summary, tags[:kept])
        notes.append(f"hashtags: {len(tags) - kept} of {len(tags)} dropped")
        tags = tags[:kept]

    if not ok(text) and summary:
        spans = _protected(summary, rules.counter)
        cuts = _sentence_cuts(summary, spans)
        total = len(cuts) + 1
        best = _largest(cuts, lambda end: _rstrip(summary[:end]),
                        lambda s: ok(render(title, s, tags)))
        if best is not None:
            shorter = best[1]
            notes.append(f"summary: {total - best[0] - 1} of {total} sentences dropped")
        else:
            shorter = _cut(summary, rules.counter, ell, lambda s: ok(render(title, s, tags)))
            if shorter is not None:
                notes.append(f"summary: cut to {_words(shorter)} of {_words(summary)} words")
            else:
                shorter = ""
                notes.append("summary: dropped")
        summary = shorter
        text = render(title, summary, tags)

    if not ok(text):
        shorter = _cut(title, rules.counter, ell, lambda t: ok(render(t, summary, tags)))
        if shorter is None:
            clusters = textlen.graphemes(title)
            shortest = render(clusters[0] + ell if len(clusters) > 1 else title, summary, tags)
            raise CrierError(
                f"{rules.platform}: the post is still {_measure(shortest, rules)} with the "
                f"summary and hashtags dropped and the title cut to one character; "
                f"{_limits(rules)}"
            )
        notes.append(f"title: cut to {_words(shorter)} of {_words(title)} words")
        text = render(shorter, summary, tags)

    if notes:
        log.info("fitted episode %s to %s (limit %d): %s", episode.guid or episode.title,
                 rules.platform, rules.limit, "; ".join(notes))
    ok(text)
    return Composed(text, lengths[text], rules.limit, link, bool(notes), tuple(notes))


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


def fit_text(text: str, rules: Rules, *, fit: bool = True, ellipsis: str | None = None) -> Composed:
    """Measure a host's own text against `rules`. Too long and fit=False: returned unchanged
    (length > limit) for the caller to refuse with the numbers. Too long and fit=True: shortened
    by whole sentences, then by words (else graphemes) with the ellipsis, keeping the trailing
    links, mentions and hashtags; CrierError when even that does not fit."""
    text = text.strip()
    n = textlen.count(text, rules)
    if textlen.fits(text, rules) or not fit:
        return Composed(text, n, rules.limit, None, False)
    ell = rules.ellipsis if ellipsis is None else ellipsis
    body, sep, tail = _split_tail(text, rules.counter)

    def join(b: str) -> str:
        return b + sep + tail if b else tail

    def ok(b: str) -> bool:
        return textlen.fits(join(b), rules)

    spans = _protected(body, rules.counter)
    cuts = _sentence_cuts(body, spans)
    best = _largest(cuts, lambda end: _rstrip(body[:end]), ok)
    if best is not None:
        shorter: str | None = best[1]
        note = f"text: {len(cuts) - best[0]} of {len(cuts) + 1} sentences dropped"
    else:
        shorter = _cut(body, rules.counter, ell, ok)
        note = f"text: cut to {_words(shorter)} of {_words(body)} words" if shorter else ""
    if shorter is None:
        raise CrierError(
            f"{rules.platform}: the text is {_measure(text, rules)}; {_limits(rules)}; it "
            "cannot be shortened enough without cutting a link, mention or hashtag"
        )
    out = join(shorter)
    log.info("fitted free text to %s (limit %d): %s", rules.platform, rules.limit, note)
    return Composed(out, textlen.count(out, rules), rules.limit, None, True, (note,))
