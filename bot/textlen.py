"""Count a post's length exactly as each network counts it. Pure: no I/O, no clock.

* X: twitter-text "config v3" weighted length (https://docs.x.com/resources/fundamentals/counting-characters,
  https://github.com/twitter/twitter-text/blob/master/config/v3.json): text is NFC-normalized;
  code points in U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037 weigh 1, all others 2;
  every emoji sequence weighs 2; every URL twitter-text extracts (also "example.com" without a
  protocol, when its TLD is real) weighs 23. Limit 280.
* Mastodon: grapheme clusters of spoiler + text, where every auto-linkable http(s) URL counts 23
  and a remote mention ``@user@domain`` counts as ``@user``
  (app/validators/status_length_validator.rb, https://docs.joinmastodon.org/user/posting/#text).
* Bluesky: grapheme clusters and UTF-8 bytes of the whole text, URLs at full length
  (lexicon app.bsky.feed.post: maxGraphemes 300, maxLength 3000).
* Threads: 500 characters, "Emojis are counted as the number of UTF-8 bytes" (Meta's Threads
  API docs, https://developers.facebook.com/documentation/threads/posts, "Limitations"): a
  grapheme cluster holding an emoji counts its UTF-8 bytes ("😀" 4, "👩‍👩‍👧‍👦" 25), any other
  character (code point) 1; URLs at full length. At most 5 distinct links (`link_count`; the
  same page, text-attachments: "All unique URLs found in the text field are counted as links",
  more than 5 fail with THREADS_API__LINK_LIMIT_EXCEEDED since 22 December 2025).

The URL extractor is a port of twitter-text's (Apache-2.0) ``extractUrlsWithIndices``, checked
against its conformance files. It decides a domain with a memoized scan instead of one
backtracking regular expression, because the regex form takes seconds on long dotted strings
("www.a" * 2000 took 48 s in twitter-text-parser 3.0.0). Emoji sequences are those of Unicode
Emoji 12.0 (the list twitter-text-parser ships; X's own client dates from that era): newer
emoji are counted by their code points, which can only over-count, never under-count.
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import regex

from bot.models import Rules

log = logging.getLogger(__name__)

__all__ = [
    "BLUESKY_RULES",
    "MASTODON_DEFAULT_RULES",
    "THREADS_RULES",
    "X_RULES",
    "bluesky_length",
    "count",
    "extract_mentions",
    "extract_urls",
    "find_urls",
    "fits",
    "graphemes",
    "link_count",
    "mastodon_length",
    "threads_length",
    "x_length",
    "x_valid",
]

# https://docs.x.com/resources/fundamentals/counting-characters (twitter-text config/v3.json:
# maxWeightedTweetLength 280, transformedURLLength 23)
# X: alt text on media is at most 1000 characters (POST media/metadata/create, alt_text.text).
X_RULES = Rules("x", 280, "x", 23, alt_text_limit=1000)
# https://docs.joinmastodon.org/user/posting/#text : 500 is only Mastodon's default; the real
# limit is the instance's /api/v2/instance configuration.statuses.max_characters, and
# characters_reserved_per_url (23) is the URL weight.
MASTODON_DEFAULT_RULES = Rules("mastodon", 500, "mastodon", 23)
# https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json
# (text: maxGraphemes 300, maxLength 3000 bytes); links count at their full length. Images
# (app.bsky.embed.images) and a card's thumb (app.bsky.embed.external) are blobs of at most
# 1,000,000 bytes; the official app caps alt text at 2000 characters.
BLUESKY_RULES = Rules("bluesky", 300, "bluesky", None, max_bytes=3000, alt_text_limit=2000,
                      image_max_bytes=1_000_000)
# https://developers.facebook.com/documentation/threads/posts ("Limitations": text posts are
# limited to 500 characters; emojis count as their UTF-8 bytes); at most 5 links (see the
# module docstring). Images: JPEG or PNG, 8 MB at most (Meta's image specifications, as the
# schedulers' guides quote them, e.g. https://ayrshare.com/docs/media-guidelines/threads).
# Alt text (`alt_text`): no limit found in the docs; 1000, as the schedulers apply.
THREADS_RULES = Rules("threads", 500, "threads", None, alt_text_limit=1000,
                      image_max_bytes=8 * 1024 * 1024, max_links=5)

COUNTERS = ("x", "mastodon", "bluesky", "threads")

_GRAPHEME = regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """The extended grapheme clusters of `text` (what a reader sees as characters)."""
    return _GRAPHEME.findall(text)


# ---------------------------------------------------------------------------------------------
# twitter-text character classes (twitter-text/js/src/regexp/*.js)

_PUNCT = "!'#%&()*+,\\\\\\-./:;<=>?@\\[\\]^_{|}~$"
_SPACES = (
    "\\x09-\\x0D\\x20\\x85\\xA0\\u1680\\u180E\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
)
_INVALID = "\\uFFFE\\uFEFF\\uFFFF"
_DIRECTIONAL = "\\u202A-\\u202E\\u061C\\u200E\\u200F\\u2066\\u2067\\u2068\\u2069"
_LATIN_ACCENTS = (
    "\\xC0-\\xD6\\xD8-\\xF6\\xF8-\\xFF\\u0100-\\u024F\\u0253\\u0254\\u0256\\u0257\\u0259\\u025B"
    "\\u0263\\u0268\\u026F\\u0272\\u0289\\u028B\\u02BB\\u0300-\\u036F\\u1E00-\\u1EFF"
)
_CYRILLIC = "\\u0400-\\u04FF"
_I = re.IGNORECASE

# a character that may stand before a URL
_PRECEDING = re.compile(f"[^A-Za-z0-9@＠$#＃{_INVALID}]|[{_DIRECTIONAL}]", _I)
_NOT_DOMAIN_CHAR = re.compile(f"[{_PUNCT}{_SPACES}{_INVALID}{_DIRECTIONAL}]", _I)
_PROTOCOL = re.compile(r"https?://", _I)
_PORT = re.compile(r":[0-9]+")
_PATH_CHARS = f"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\\[\\]\\-\\u2013_~@|&{_LATIN_ACCENTS}]"
_BALANCED_PARENS = (
    f"\\((?:{_PATH_CHARS}+|(?:{_PATH_CHARS}*\\({_PATH_CHARS}+\\){_PATH_CHARS}*))\\)"
)
_PATH_ENDING = f"[+\\-a-z{_CYRILLIC}0-9=_#/{_LATIN_ACCENTS}]|(?:{_BALANCED_PARENS})"
_URL_PATH = (
    f"(?:(?:{_PATH_CHARS}*(?:{_BALANCED_PARENS}{_PATH_CHARS}*)*(?:{_PATH_ENDING}))"
    f"|(?:@{_PATH_CHARS}+/))"
)
_PATH = re.compile(f"/{_URL_PATH}*", _I)
_QUERY_CHARS = "[a-z0-9!?*'@();:&=+$/%#\\[\\]\\-_.,~|]"
_QUERY_ENDING = "[a-z0-9\\-_&=#/]"
_QUERY = re.compile(f"\\?{_QUERY_CHARS}*{_QUERY_ENDING}", _I)
_TCO = re.compile(f"https?://t\\.co/([a-z0-9]+)(?:\\?{_QUERY_CHARS}*{_QUERY_ENDING})?", _I)
_ASCII_LABEL_RUN = re.compile(f"[\\-a-z0-9{_LATIN_ACCENTS}]+", _I)
_NO_PROTOCOL_BAD_BEFORE = frozenset("-_./")
_MAX_URL_LENGTH = 4096
_MAX_TCO_SLUG_LENGTH = 40
_DEFAULT_PROTOCOL = "https://"


@dataclass
class _Scan:
    """Per-text memo for the domain matcher: label runs and results by position."""

    text: str
    runs: re.Pattern[str]
    tld: dict[int, int] = field(default_factory=dict)
    sub: dict[int, int | None] = field(default_factory=dict)
    underscores: list[int] = field(default_factory=list)
    last_run: tuple[int, int] = (0, 0)

    def run_end(self, x: int) -> int:
        """End of the label run from x on (x when there is none)."""
        start, end = self.last_run
        if start <= x < end:  # callers often walk along one run
            return end
        m = self.runs.match(self.text, x)
        if not m:
            return x
        self.last_run = (x, m.end())
        return m.end()

    def tld_end(self, y: int) -> int:
        """End of the TLD that twitter-text would match at y, or -1."""
        if y not in self.tld:
            length = _tld_length(self.text[y:y + _TLD_WINDOW])
            if length == -1:
                m = _PUNYCODE_TLD.match(self.text, y)
                length = m.end() - y if m else -1
            self.tld[y] = y + length if length != -1 else -1
        return self.tld[y]


@lru_cache(maxsize=1 << 16)
def _tld_length(window: str) -> int:
    """Length of the gTLD or ccTLD (then its lookahead) at the start of window, or -1. The
    window is longer than any TLD, so a shorter one ends the text."""
    m = _TLD.match(window)
    return m.end() if m else -1


def _label_scan(text: str, run_pattern: re.Pattern[str]) -> _Scan:
    scan = _Scan(text, run_pattern)
    scan.underscores = [m.start() for m in _UNDERSCORE.finditer(text)] if "_" in text else []
    return scan


# runs of valid_domain_chars, "-" and "_": the characters a domain label is made of
_PUNCT_BUT_LABEL = _PUNCT.replace("_", "").replace("\\-", "")  # "-" and "_" join labels
_LABEL_CHAR = f"[^{_PUNCT_BUT_LABEL}{_SPACES}{_INVALID}{_DIRECTIONAL}]"
_DOMAIN_RUNS = re.compile(f"{_LABEL_CHAR}+", _I)
# whole label runs that a dot follows (the lookbehind makes finditer linear)
_RUN_BEFORE_DOT = re.compile(f"(?<!{_LABEL_CHAR}){_LABEL_CHAR}++(?=\\.)", _I)


_UNDERSCORE = re.compile("_")


def _is_domain_char(ch: str) -> bool:
    return _NOT_DOMAIN_CHAR.match(ch) is None


def _unit(scan: _Scan, x: int, allow_underscore: bool) -> int | None:
    """twitter-text valid_subdomain (allow_underscore) / valid_domain_name at x: the label
    and its dot, returned as the position after the dot."""
    text = scan.text
    e = scan.run_end(x)
    if e == x or e >= len(text) or text[e] != ".":
        return None
    if not (_is_domain_char(text[x]) and _is_domain_char(text[e - 1])):
        return None
    if not allow_underscore:
        i = bisect.bisect_left(scan.underscores, x)
        if i < len(scan.underscores) and scan.underscores[i] < e:
            return None
    return e + 1


def _domain_end(scan: _Scan, x: int) -> int | None:
    """End of twitter-text's `subdomain* domain_name tld` matched at x, or None, with the
    regex's greedy backtracking order: F(p) = F(after label p) if that matches, else
    (label p as domain_name) + tld. Memoized by position, so a whole scan is linear."""
    if x in scan.sub:
        return scan.sub[x]
    chain = [x]
    while True:
        nxt = _unit(scan, chain[-1], True)
        if nxt is None or nxt in scan.sub:
            break
        chain.append(nxt)
    for p in reversed(chain):
        nxt = _unit(scan, p, True)
        found = scan.sub[nxt] if nxt is not None else None
        if found is None:
            dn = _unit(scan, p, False)
            if dn is not None:
                end = scan.tld_end(dn)
                found = end if end != -1 else None
        scan.sub[p] = found
    return scan.sub[x]


def _idna_ok(domain: str) -> str | None:
    try:
        return domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return None


def _valid_url(url: str, protocol: str, domain: str) -> bool:
    puny = _idna_ok(domain)
    if not puny:
        return False
    return len(protocol) + len(url) + len(puny) - len(domain) <= _MAX_URL_LENGTH


def _ascii_domains(domain: str) -> list[tuple[int, int]]:
    """twitter-text valid_ascii_domain, all matches in `domain`, as (start, end)."""
    scan = _label_scan(domain, _ASCII_LABEL_RUN)
    runs = [m.span() for m in _ASCII_LABEL_RUN.finditer(domain)]
    memo: dict[int, int | None] = {}

    def unit(x: int) -> int | None:
        e = scan.run_end(x)
        if e == x or e >= len(domain) or domain[e] != ".":
            return None
        return e + 1

    def rest(y: int) -> int | None:  # (?:label\.)* tld, greedy
        chain = []
        while y not in memo:
            chain.append(y)
            nxt = unit(y)
            if nxt is None:
                break
            y = nxt
        for p in reversed(chain):
            nxt = unit(p)
            found = memo.get(nxt) if nxt is not None else None
            if found is None:
                end = scan.tld_end(p)
                found = end if end != -1 else None
            memo[p] = found
        return memo[chain[0]] if chain else memo[y]

    out = []
    i = 0
    for s, e in runs:
        start = max(s, i)  # every start inside one run reaches the same dot: try one
        if start >= e:
            continue
        first = unit(start)
        end = rest(first) if first is not None else None
        if end is not None:
            out.append((start, end))
            i = end
    return out


def extract_urls(text: str, *, without_protocol: bool = True) -> list[tuple[str, int, int]]:
    """URLs as twitter-text's extractUrlsWithIndices finds them: (url, start, end), code point
    indices into `text`. `without_protocol=False` is Mastodon's setting (http(s) links only)."""
    if not text or ("." not in text if without_protocol else ":" not in text):
        return []
    scan = _label_scan(text, _DOMAIN_RUNS)
    starts = _url_starts(text, scan)
    out: list[tuple[str, int, int]] = []
    cur, i = 0, 0
    while True:
        # The regex tries p = cur, cur + 1, ...: a preceding character at p and a URL at p + 1,
        # and at p = 0 also a URL at 0. A URL can only start where _url_starts says.
        hit = None
        while i < len(starts) and hit is None:
            q = starts[i]
            i += 1
            if q == 0:
                if cur == 0 and len(text) > 1 and _PRECEDING.match(text, 0):
                    hit = _match_url(text, scan, 1)
                if hit is None and cur == 0:
                    hit = _match_url(text, scan, 0)
            elif q - 1 >= cur and _PRECEDING.match(text, q - 1):
                hit = _match_url(text, scan, q)
        if hit is None:
            break
        q, end, protocol, d0, d1, has_path = hit
        cur = end
        url, domain = text[q:end], text[d0:d1]
        if not _valid_url(url, protocol or _DEFAULT_PROTOCOL, domain):
            continue
        if not protocol:
            before = text[q - 1] if q > 0 else ""
            if not without_protocol or (before and before in _NO_PROTOCOL_BAD_BEFORE):
                continue
            found = _ascii_domains(domain)
            if not found:
                continue
            for a, b in found[:-1]:
                out.append((domain[a:b], d0 + a, d0 + b))
            a, b = found[-1]
            if has_path:
                out.append((url.replace(domain, domain[a:b], 1), d0 + a, end))
            else:
                out.append((domain[a:b], d0 + a, d0 + b))
        else:
            m = _TCO.match(url)
            if m:
                if len(m.group(1)) > _MAX_TCO_SLUG_LENGTH:
                    continue
                url = m.group(0)
                end = q + len(url)
            out.append((url, q, end))
    return out


def _url_starts(text: str, scan: _Scan) -> list[int]:
    """Where a URL can start: at a protocol, or in a label run that a dot follows."""
    starts = {m.start() for m in _PROTOCOL.finditer(text)}
    for m in _RUN_BEFORE_DOT.finditer(text):
        starts.update(range(m.start(), m.end()))
    return sorted(starts)


def _match_url(text: str, scan: _Scan, q: int) -> tuple[int, int, str, int, int, bool] | None:
    """The URL group of twitter-text's extractUrl regex at q: (q, end, protocol, domain start,
    domain end, has path), or None."""
    if q >= len(text):
        return None
    protocol = ""
    m = _PROTOCOL.match(text, q)
    d0 = q
    if m:
        d1 = _domain_end(scan, m.end())
        if d1 is not None:
            protocol, d0 = m.group(0), m.end()
    if not protocol:
        if not _is_domain_char(text[q]):
            return None
        d1 = _domain_end(scan, q)
        if d1 is None:
            return None
    assert d1 is not None
    pos = d1
    pm = _PORT.match(text, pos)
    if pm:
        pos = pm.end()
    has_path = False
    pm = _PATH.match(text, pos)
    if pm:
        pos, has_path = pm.end(), True
    qm = _QUERY.match(text, pos)
    if qm:
        pos = qm.end()
    return q, pos, protocol, d0, d1, has_path


# ---------------------------------------------------------------------------------------------
# X


def _emoji_pattern() -> regex.Pattern[str]:
    tone = "[\\U0001F3FB-\\U0001F3FF]"
    zwj = []
    base_ranges = [[int(cp, 16) for cp in r.split("-")] for r in _MODIFIER_BASES.split()]
    for item in sorted(_ZWJ_SEQUENCES.split(), key=lambda s: -s.count(".")):
        # a "*" sequence comes with a skin tone on every base, or with none
        for toned in (True, False) if item.startswith("*") else (False,):
            parts = []
            for cp in (int(x, 16) for x in item.lstrip("*").split(".")):
                el = f"\\U{cp:08X}"
                if toned and any(r[0] <= cp <= r[-1] for r in base_ranges):
                    el += tone
                if not regex.match(r"\p{Emoji_Presentation}", chr(cp)):
                    el += "\\uFE0F?"  # a text-style element takes a variation selector
                parts.append(el)
            zwj.append("\\u200D".join(parts))
    flags = "|".join(
        "".join(f"\\U{0x1F1E6 + ord(c) - 65:08X}" for c in pair) for pair in _FLAGS.split()
    )
    tags = "|".join(
        "\\U0001F3F4" + "".join(f"\\U{0xE0000 + ord(c):08X}" for c in name) + "\\U000E007F"
        for name in ("gbeng", "gbsct", "gbwls")
    )
    bases = "".join(
        "-".join(f"\\U{int(cp, 16):08X}" for cp in r.split("-")) for r in _MODIFIER_BASES.split()
    )
    return regex.compile(
        f"(?:{'|'.join(zwj)})"
        f"|{tags}|{flags}"
        "|[#*0-9]\\uFE0F?\\u20E3"
        f"|[{bases}]{tone}"
        "|[\\p{Emoji}--[#*0-9\\p{Emoji_Presentation}]]\\uFE0F"
        "|[\\p{Emoji}--[#*0-9]]",
        regex.V1,
    )


_HEAVY = re.compile("[^\\u0000-\\u10FF\\u2000-\\u200D\\u2010-\\u201F\\u2032-\\u2037]")
_X_INVALID = re.compile(f"[{_INVALID}]")


def _weight(text: str, i: int, j: int) -> int:
    return (j - i) + len(_HEAVY.findall(text, i, j))


def x_length(text: str, *, url_weight: int | None = 23) -> int:
    """X's weighted length (twitter-text config v3). `url_weight=None` counts URLs as text."""
    t = unicodedata.normalize("NFC", text)
    entities: dict[int, tuple[int, int]] = {}
    last = 0
    for hint in _EMOJI_START.finditer(t):  # == _EMOJI.finditer(t), faster
        if hint.start() < last:
            continue
        m = _EMOJI.match(t, hint.start())
        if m:
            entities[m.start()] = (m.end(), 2)
            last = m.end()
    if url_weight is not None:
        for url, s, _e in extract_urls(t):
            # twitter-text skips len(url), which differs from the span in rare protocol-less
            # cases; a URL wins over an emoji starting at the same index
            entities[s] = (s + len(url), url_weight)
    total, i = 0, 0
    for s in sorted(entities):
        if s < i:
            continue
        e, w = entities[s]
        total += _weight(t, i, s) + w
        i = e
    return total + _weight(t, i, len(t))


def x_valid(text: str, rules: Rules = X_RULES) -> bool:
    """twitter-text's `valid`: not empty, within the limit, no U+FFFE/U+FEFF/U+FFFF."""
    n = x_length(text, url_weight=rules.url_weight)
    return 0 < n <= rules.limit and not _X_INVALID.search(unicodedata.normalize("NFC", text))


# ---------------------------------------------------------------------------------------------
# Mastodon

# Account::USERNAME_RE / MENTION_RE (app/models/account.rb) and twitter-text end_mention_match
_WORD = "[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]"
_MENTION = regex.compile(
    f"(?<![=/]|{_WORD})@((?i:[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@{_WORD}+(?:[.-]+{_WORD}+)*)?)"
)
_END_MENTION = regex.compile(f"[@＠{_LATIN_ACCENTS}]|://")
_MAX_MENTION_DOMAIN = 253  # lib/extractor.rb MAX_DOMAIN_LENGTH


def extract_mentions(text: str) -> list[tuple[str, int, int]]:
    """Mentions as Mastodon's Extractor finds them: (screen_name without "@", start, end)."""
    if "@" not in text and "＠" not in text:
        return []
    out = []
    for m in _MENTION.finditer(text):
        if _END_MENTION.match(text, m.end()):
            continue
        name = m.group(1)
        _, _, domain = name.partition("@")
        if domain and len(domain) > _MAX_MENTION_DOMAIN:
            continue
        out.append((name, m.start(), m.end()))
    return out


def _mastodon_countable(text: str, url_weight: int | None) -> str:
    """StatusLengthValidator#countable_text: URLs become 23 placeholder characters and
    `@user@domain` becomes `@user`; overlapping entities keep the earliest."""
    if not text.strip():
        return ""
    entities: list[tuple[int, int, str]] = []
    for _url, s, e in extract_urls(text, without_protocol=False):
        entities.append((s, e, "x" * url_weight if url_weight is not None else text[s:e]))
    for name, s, e in extract_mentions(text):
        entities.append((s, e, "@" + name.split("@")[0]))
    entities.sort(key=lambda ent: ent[0])
    out, last = [], 0
    for s, e, replacement in entities:
        if s < last:
            continue
        out.append(text[last:s])
        out.append(replacement)
        last = e
    out.append(text[last:])
    return "".join(out)


def mastodon_length(text: str, *, url_weight: int | None = 23, spoiler: str = "") -> int:
    """Mastodon's counted length: grapheme clusters of spoiler + text with URLs at
    `url_weight` and remote mentions counted as their local part."""
    return len(graphemes(spoiler + _mastodon_countable(text, url_weight)))


# ---------------------------------------------------------------------------------------------
# Bluesky and dispatch


def bluesky_length(text: str) -> tuple[int, int]:
    """Bluesky's two measures: (grapheme clusters, UTF-8 bytes). URLs count in full."""
    return len(graphemes(text)), len(text.encode("utf-8"))


_PICTOGRAPHIC = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20E3]")


def threads_length(text: str) -> int:
    """Threads' count (see the module docstring): an emoji's grapheme cluster counts its UTF-8
    bytes, every other code point 1. Where the docs leave it open (is "é" as e + accent one
    character or two? is "©" an emoji?) this counts the larger, so a post crier passes is never
    refused for its length."""
    n = 0
    for g in graphemes(text):
        n += len(g.encode("utf-8")) if _PICTOGRAPHIC.search(g) else len(g)
    return n


def link_count(text: str, extra: tuple[str, ...] = ()) -> int:
    """How many distinct links Threads counts in a post: the unique URLs of its text (also
    bare domains), plus each of `extra` (a link attachment) that is not one of them."""
    urls = {_link_key(u) for u, _s, _e in extract_urls(text, without_protocol=True)}
    return len(urls | {_link_key(u) for u in extra if u})


def _link_key(url: str) -> str:
    """A URL as Threads compares them (assumed): without its scheme and a trailing slash,
    the host in lower case."""
    bare = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url.strip())
    host, slash, rest = bare.partition("/")
    return (host.lower() + slash + rest).rstrip("/")


def find_urls(text: str, counter: str) -> list[tuple[int, int]]:
    """Spans (string indices into `text`) of what `counter` treats as a link, so that fitting
    can keep each one whole. X and Bluesky also link bare domains; Mastodon only http(s)."""
    _check_counter(counter)
    return [(s, e) for _u, s, e in extract_urls(text, without_protocol=counter != "mastodon")]


def count(text: str, rules: Rules) -> int:
    """`text`'s length as `rules.counter` counts it (for Bluesky: grapheme clusters)."""
    counter = _COUNTERS.get(rules.counter)
    if counter is None:
        _check_counter(rules.counter)
    assert counter is not None
    return counter(text, rules)


def fits(text: str, rules: Rules) -> bool:
    """Whether the network would accept `text`'s length (and byte size, and number of links,
    where it caps them)."""
    if rules.max_bytes is not None and len(text.encode("utf-8")) > rules.max_bytes:
        return False
    if rules.max_links is not None and link_count(text) > rules.max_links:
        return False
    return count(text, rules) <= rules.limit


def _check_counter(counter: str) -> None:
    if counter not in COUNTERS:
        raise ValueError(f"unknown counter {counter!r}; expected one of {', '.join(COUNTERS)}")


_COUNTERS: dict[str, Callable[[str, Rules], int]] = {
    "x": lambda text, rules: x_length(text, url_weight=rules.url_weight),
    "mastodon": lambda text, rules: mastodon_length(text, url_weight=rules.url_weight),
    "bluesky": lambda text, rules: len(graphemes(text)),
    "threads": lambda text, rules: threads_length(text),
}


# ---------------------------------------------------------------------------------------------
# Data. TLDs: twitter-text's lists, in its order (first match wins), as shipped by
# twitter-text-parser 3.0.0 (MIT; lists from twitter/twitter-text, Apache-2.0).
# Emoji: Unicode emoji-test.txt 12.0 (as shipped by twitter-text-parser 3.0.0): ZWJ sequences
# (code points joined by ZWJ, variation selectors dropped; "*" = also with skin tones),
# skin-tone bases, and flag regions.

_GTLDS = """
삼성 닷컴 닷넷 香格里拉 餐厅 食品 飞利浦 電訊盈科 集团 通販 购物 谷歌 诺基亚 联通 网络 网站
网店 网址 组织机构 移动 珠宝 点看 游戏 淡马锡 机构 書籍 时尚 新闻 政府 政务 招聘 手表 手机
我爱你 慈善 微博 广东 工行 家電 娱乐 天主教 大拿 大众汽车 在线 嘉里大酒店 嘉里 商标 商店
商城 公益 公司 八卦 健康 信息 佛山 企业 中文网 中信 世界 ポイント ファッション セール ストア
コム グーグル クラウド みんな คอม संगठन नेट कॉम همراه موقع موبايلي كوم كاثوليك عرب شبكة بيتك
بازار العليان ارامكو اتصالات ابوظبي קום сайт рус орг онлайн москва ком католик дети zuerich
zone zippo zip zero zara zappos yun youtube you yokohama yoga yodobashi yandex yamaxun yahoo
yachts xyz xxx xperia xin xihuan xfinity xerox xbox wtf wtc wow world works work woodside
wolterskluwer wme winners wine windows win williamhill wiki wien whoswho weir weibo wedding
wed website weber webcam weatherchannel weather watches watch warman wanggou wang walter
walmart wales vuelos voyage voto voting vote volvo volkswagen vodka vlaanderen vivo viva
vistaprint vista vision visa virgin vip vin villas viking vig video viajes vet versicherung
vermögensberatung vermögensberater verisign ventures vegas vanguard vana vacations ups uol
uno university unicom uconnect ubs ubank tvs tushu tunes tui tube trv trust
travelersinsurance travelers travelchannel travel training trading trade toys toyota town
tours total toshiba toray top tools tokyo today tmall tkmaxx tjx tjmaxx tirol tires tips
tiffany tienda tickets tiaa theatre theater thd teva tennis temasek telefonica telecity tel
technology tech team tdk tci taxi tax tattoo tatar tatamotors target taobao talk taipei tab
systems symantec sydney swiss swiftcover swatch suzuki surgery surf support supply supplies
sucks style study studio stream store storage stockholm stcgroup stc statoil statefarm
statebank starhub star staples stada srt srl spreadbetting spot sport spiegel space soy sony
song solutions solar sohu software softbank social soccer sncf smile smart sling skype sky
skin ski site singles sina silk shriram showtime show shouji shopping shop shoes shiksha
shia shell shaw sharp shangrila sfr sexy sex sew seven ses services sener select seek
security secure seat search scot scor scjohnson science schwarz schule school scholarships
schmidt schaeffler scb sca sbs sbi saxo save sas sarl sapo sap sanofi sandvikcoromant
sandvik samsung samsclub salon sale sakura safety safe saarland ryukyu rwe run ruhr rugby
rsvp room rogers rodeo rocks rocher rmit rip rio ril rightathome ricoh richardli rich
rexroth reviews review restaurant rest republican report repair rentals rent ren reliance
reit reisen reise rehab redumbrella redstone red recipes realty realtor realestate read raid
radio racing qvc quest quebec qpon pwc pub prudential pru protection property properties
promo progressive prof productions prod pro prime press praxi pramerica post porn politie
poker pohl pnc plus plumbing playstation play place pizza pioneer pink ping pin pid pictures
pictet pics piaget physio photos photography photo phone philips phd pharmacy pfizer pet
pccw pay passagens party parts partners pars paris panerai panasonic pamperedchef page ovh
ott otsuka osaka origins orientexpress organic org orange oracle open ooo onyourside online
onl ong one omega ollo oldnavy olayangroup olayan okinawa office off observer obi nyc ntt
nrw nra nowtv nowruz now norton northwesternmutual nokia nissay nissan ninja nikon nike nico
nhk ngo nfl nexus nextdirect next news newholland new neustar network netflix netbank net
nec nba navy natura nationwide name nagoya nadex nab mutuelle mutual museum mtr mtpc mtn msd
movistar movie mov motorcycles moto moscow mortgage mormon mopar montblanc monster money
monash mom moi moe moda mobily mobile mobi mma mls mlb mitsubishi mit mint mini mil
microsoft miami metlife merckmsd meo menu men memorial meme melbourne meet media med
mckinsey mcdonalds mcd mba mattel maserati marshalls marriott markets marketing market map
mango management man makeup maison maif madrid macys luxury luxe lupin lundbeck ltda ltd
lplfinancial lpl love lotto lotte london lol loft locus locker loans loan llp llc lixil
living live lipsy link linde lincoln limo limited lilly like lighting lifestyle
lifeinsurance life lidl liaison lgbt lexus lego legal lefrak leclerc lease lds lawyer law
latrobe latino lat lasalle lanxess landrover land lancome lancia lancaster lamer lamborghini
ladbrokes lacaixa kyoto kuokgroup kred krd kpn kpmg kosher komatsu koeln kiwi kitchen kindle
kinder kim kia kfh kerryproperties kerrylogistics kerryhotels kddi kaufen juniper juegos
jprs jpmorgan joy jot joburg jobs jnj jmp jll jlc jio jewelry jetzt jeep jcp jcb java jaguar
iwc iveco itv itau istanbul ist ismaili iselect irish ipiranga investments intuit
international intel int insure insurance institute ink ing info infiniti industries inc
immobilien immo imdb imamat ikano iinet ifm ieee icu ice icbc ibm hyundai hyatt hughes htc
hsbc how house hotmail hotels hoteles hot hosting host hospital horse honeywell honda
homesense homes homegoods homedepot holiday holdings hockey hkt hiv hitachi hisamitsu hiphop
hgtv hermes here helsinki help healthcare health hdfcbank hdfc hbo haus hangout hamburg hair
guru guitars guide guge gucci guardian group grocery gripe green gratis graphics grainger
gov got gop google goog goodyear goodhands goo golf goldpoint gold godaddy gmx gmo gmbh
gmail globo global gle glass glade giving gives gifts gift ggee george genting gent gea gdn
gbiz gay garden gap games game gallup gallo gallery gal fyi futbol furniture fund fun
fujixerox fujitsu ftr frontier frontdoor frogans frl fresenius free fox foundation forum
forsale forex ford football foodnetwork food foo fly flsmidth flowers florist flir flights
flickr fitness fit fishing fish firmdale firestone fire financial finance final film fido
fidelity fiat ferrero ferrari feedback fedex fast fashion farmers farm fans fan family faith
fairwinds fail fage extraspace express exposed expert exchange everbank events eus
eurovision etisalat esurance estate esq erni ericsson equipment epson epost enterprises
engineering engineer energy emerck email education edu edeka eco eat earth dvr dvag durban
dupont duns dunlop duck dubai dtv drive download dot doosan domains doha dog dodge doctor
docs dnp diy dish discover discount directory direct digital diet diamonds dhl dev design
desi dentist dental democrat delta deloitte dell delivery degree deals dealer deal dds dclk
day datsun dating date data dance dad dabur cyou cymru cuisinella csc cruises cruise crs
crown cricket creditunion creditcard credit cpa courses coupons coupon country corsica coop
cool cookingchannel cooking contractors contact consulting construction condos comsec
computer compare company community commbank comcast com cologne college coffee codes coach
clubmed club cloud clothing clinique clinic click cleaning claims cityeats city citic citi
citadel cisco circle cipriani church chrysler chrome christmas chloe chintai cheap chat
chase charity channel chanel cfd cfa cern ceo center ceb cbs cbre cbn cba catholic catering
cat casino cash caseih case casa cartier cars careers career care cards caravan car
capitalone capital capetown canon cancerresearch camp camera cam calvinklein call cal cafe
cab bzh buzz buy business builders build bugatti budapest brussels brother broker broadway
bridgestone bradesco box boutique bot boston bostik bosch boots booking book boo bond bom
bofa boehringer boats bnpparibas bnl bmw bms blue bloomberg blog blockbuster blanco
blackfriday black biz bio bingo bing bike bid bible bharti bet bestbuy best berlin bentley
beer beauty beats bcn bcg bbva bbt bbc bayern bauhaus basketball baseball bargains barefoot
barclays barclaycard barcelona bar bank band bananarepublic banamex baidu baby azure axa aws
avianca autos auto author auspost audio audible audi auction attorney athleta associates
asia asda arte art arpa army archi aramco arab aquarelle apple app apartments aol anz anquan
android analytics amsterdam amica amfam amex americanfamily americanexpress alstom alsace
ally allstate allfinanz alipay alibaba alfaromeo akdn airtel airforce airbus aigo aig agency
agakhan africa afl afamilycompany aetna aero aeg adult ads adac actor active aco accountants
accountant accenture academy abudhabi abogado able abc abbvie abbott abb abarth aarp aaa
onion
"""

_CCTLDS = """
한국 香港 澳門 新加坡 台灣 台湾 中國 中国 გე ລາວ ไทย ලංකා ഭാരതം ಭಾರತ భారత్ சிங்கப்பூர்
இலங்கை இந்தியா ଭାରତ ભારત ਭਾਰਤ ভাৰত ভারত বাংলা भारोत भारतम् भारत ڀارت پاکستان موريتانيا
مليسيا مصر قطر فلسطين عمان عراق سورية سودان تونس بھارت بارت ایران امارات المغرب السعودية
الجزائر البحرين الاردن հայ қаз укр срб рф мон мкд ею бел бг ευ ελ zw zm za yt ye ws wf vu vn
vi vg ve vc va uz uy us um uk ug ua tz tw tv tt tr tp to tn tm tl tk tj th tg tf td tc sz sy
sx sv su st ss sr so sn sm sl sk sj si sh sg se sd sc sb sa rw ru rs ro re qa py pw pt ps pr
pn pm pl pk ph pg pf pe pa om nz nu nr np no nl ni ng nf ne nc na mz my mx mw mv mu mt ms mr
mq mp mo mn mm ml mk mh mg mf me md mc ma ly lv lu lt ls lr lk li lc lb la kz ky kw kr kp kn
km ki kh kg ke jp jo jm je it is ir iq io in im il ie id hu ht hr hn hm hk gy gw gu gt gs gr
gq gp gn gm gl gi gh gg gf ge gd gb ga fr fo fm fk fj fi eu et es er eh eg ee ec dz do dm dk
dj de cz cy cx cw cv cu cr co cn cm cl ck ci ch cg cf cd cc ca bz by bw bv bt bs br bq bo bn
bm bl bj bi bh bg bf be bd bb ba az ax aw au at as ar aq ao an am al ai ag af ae ad ac
"""

_ZWJ_SEQUENCES = """
*1F3C3.2640 *1F3C3.2642 *1F3C4.2640 *1F3C4.2642 *1F3CA.2640 *1F3CA.2642 *1F3CB.2640
*1F3CB.2642 *1F3CC.2640 *1F3CC.2642 1F3F3.1F308 1F3F4.2620 1F415.1F9BA 1F441.1F5E8
*1F468.1F33E *1F468.1F373 *1F468.1F393 *1F468.1F3A4 *1F468.1F3A8 *1F468.1F3EB *1F468.1F3ED
1F468.1F466 1F468.1F466.1F466 1F468.1F467 1F468.1F467.1F466 1F468.1F467.1F467
1F468.1F468.1F466 1F468.1F468.1F466.1F466 1F468.1F468.1F467 1F468.1F468.1F467.1F466
1F468.1F468.1F467.1F467 1F468.1F469.1F466 1F468.1F469.1F466.1F466 1F468.1F469.1F467
1F468.1F469.1F467.1F466 1F468.1F469.1F467.1F467 *1F468.1F4BB *1F468.1F4BC *1F468.1F527
*1F468.1F52C *1F468.1F680 *1F468.1F692 *1F468.1F91D.1F468 *1F468.1F9AF *1F468.1F9B0
*1F468.1F9B1 *1F468.1F9B2 *1F468.1F9B3 *1F468.1F9BC *1F468.1F9BD *1F468.2695 *1F468.2696
*1F468.2708 1F468.2764.1F468 1F468.2764.1F48B.1F468 *1F469.1F33E *1F469.1F373 *1F469.1F393
*1F469.1F3A4 *1F469.1F3A8 *1F469.1F3EB *1F469.1F3ED 1F469.1F466 1F469.1F466.1F466
1F469.1F467 1F469.1F467.1F466 1F469.1F467.1F467 1F469.1F469.1F466 1F469.1F469.1F466.1F466
1F469.1F469.1F467 1F469.1F469.1F467.1F466 1F469.1F469.1F467.1F467 *1F469.1F4BB *1F469.1F4BC
*1F469.1F527 *1F469.1F52C *1F469.1F680 *1F469.1F692 *1F469.1F91D.1F468 *1F469.1F91D.1F469
*1F469.1F9AF *1F469.1F9B0 *1F469.1F9B1 *1F469.1F9B2 *1F469.1F9B3 *1F469.1F9BC *1F469.1F9BD
*1F469.2695 *1F469.2696 *1F469.2708 1F469.2764.1F468 1F469.2764.1F469 1F469.2764.1F48B.1F468
1F469.2764.1F48B.1F469 *1F46E.2640 *1F46E.2642 1F46F.2640 1F46F.2642 *1F471.2640 *1F471.2642
*1F473.2640 *1F473.2642 *1F477.2640 *1F477.2642 *1F481.2640 *1F481.2642 *1F482.2640
*1F482.2642 *1F486.2640 *1F486.2642 *1F487.2640 *1F487.2642 *1F575.2640 *1F575.2642
*1F645.2640 *1F645.2642 *1F646.2640 *1F646.2642 *1F647.2640 *1F647.2642 *1F64B.2640
*1F64B.2642 *1F64D.2640 *1F64D.2642 *1F64E.2640 *1F64E.2642 *1F6A3.2640 *1F6A3.2642
*1F6B4.2640 *1F6B4.2642 *1F6B5.2640 *1F6B5.2642 *1F6B6.2640 *1F6B6.2642 *1F926.2640
*1F926.2642 *1F937.2640 *1F937.2642 *1F938.2640 *1F938.2642 *1F939.2640 *1F939.2642
1F93C.2640 1F93C.2642 *1F93D.2640 *1F93D.2642 *1F93E.2640 *1F93E.2642 *1F9B8.2640
*1F9B8.2642 *1F9B9.2640 *1F9B9.2642 *1F9CD.2640 *1F9CD.2642 *1F9CE.2640 *1F9CE.2642
*1F9CF.2640 *1F9CF.2642 *1F9D1.1F91D.1F9D1 *1F9D6.2640 *1F9D6.2642 *1F9D7.2640 *1F9D7.2642
*1F9D8.2640 *1F9D8.2642 *1F9D9.2640 *1F9D9.2642 *1F9DA.2640 *1F9DA.2642 *1F9DB.2640
*1F9DB.2642 *1F9DC.2640 *1F9DC.2642 *1F9DD.2640 *1F9DD.2642 1F9DE.2640 1F9DE.2642 1F9DF.2640
1F9DF.2642 *26F9.2640 *26F9.2642
"""

_FLAGS = """
AC AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CP CR CU CV CW CX CY CZ DE DG DJ DK
DM DO DZ EA EC EE EG EH ER ES ET EU FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ
GR GS GT GU GW GY HK HM HN HR HT HU IC ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI
KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX
SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM UN US UY UZ VA VC VE VG VI
VN VU WF WS XK YE YT ZA ZM ZW
"""
_MODIFIER_BASES = """
261D 26F9 270A-270D 1F385 1F3C2-1F3C4 1F3C7 1F3CA-1F3CC 1F442-1F443 1F446-1F450 1F466-1F469
1F46B-1F46E 1F470-1F478 1F47C 1F481-1F483 1F485-1F487 1F4AA 1F574-1F575 1F57A 1F590 1F595-1F596
1F645-1F647 1F64B-1F64F 1F6A3 1F6B4-1F6B6 1F6C0 1F6CC 1F90F 1F918-1F91C 1F91E-1F91F 1F926
1F930-1F939 1F93D-1F93E 1F9B5-1F9B6 1F9B8-1F9B9 1F9BB 1F9CD-1F9CF 1F9D1-1F9DD
"""


def _tld_pattern() -> re.Pattern[str]:
    after = "(?=[^0-9a-zA-Z@+-]|$)"
    gtld = "|".join(re.escape(t) for t in _GTLDS.split())
    cctld = "|".join(re.escape(t) for t in _CCTLDS.split())
    return re.compile(f"(?:(?:{gtld}){after})|(?:(?:{cctld}){after})", _I)


_TLD = _tld_pattern()
_TLD_WINDOW = max(len(t) for t in (_GTLDS + _CCTLDS).split()) + 1
_PUNYCODE_TLD = re.compile("xn--[\\-0-9a-z]+", _I)
_EMOJI = _emoji_pattern()
# where an emoji can start: every alternative of _EMOJI begins with one of these
_EMOJI_START = regex.compile("[\\p{Emoji}--[#*0-9]]|[#*0-9](?=\\uFE0F?\\u20E3)", regex.V1)
