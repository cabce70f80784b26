"""A post's text as a network shows it: cut into plain text, links (the address shown cut
after LINK_SHOWN characters, as the networks cut it), mentions and hashtags, and the networks'
names. The JSON API's PREVIEW carries these (`segments`, `network`) so a page can draw the post
(bot/web/static/queue.js, and the queue form without JavaScript). Pure: no I/O."""

from __future__ import annotations

import regex

from bot import textlen

_HASHTAG = regex.compile(r"(?<![\w&/#])[#＃](\w*[\p{L}_]\w*)")
PLATFORM_NAMES = {"mastodon": "Mastodon", "x": "X", "bluesky": "Bluesky", "threads": "Threads"}
LINK_SHOWN = 30              # characters of a link's address shown, as the networks cut them


def segments(text: str) -> list[tuple[str, str, str | None]]:
    """(kind, shown text, href) pieces of `text`: "text", "link", "mention", "hashtag"."""
    spans = [(s, e, "link", url) for url, s, e in textlen.extract_urls(text)]
    taken = [(s, e) for s, e, _, _ in spans]

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)
    for name, s, e in textlen.extract_mentions(text):
        if free(s, e):
            spans.append((s, e, "mention", name))
            taken.append((s, e))
    for m in _HASHTAG.finditer(text):
        if free(m.start(), m.end()):
            spans.append((m.start(), m.end(), "hashtag", m.group(1)))
    out, at = [], 0
    for s, e, kind, _ in sorted(spans):
        if s > at:
            out.append(("text", text[at:s], None))
        piece = text[s:e]
        if kind == "link":
            href = piece if "://" in piece else "https://" + piece
            shown = piece.split("://", 1)[-1]
            shown = shown if len(shown) <= LINK_SHOWN else shown[:LINK_SHOWN] + "…"
            out.append(("link", shown, href))
        else:
            out.append((kind, piece, None))
        at = e
    if at < len(text):
        out.append(("text", text[at:], None))
    return out
