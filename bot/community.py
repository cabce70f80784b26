"""Which public posts of the listener community the official account may boost (pure).

A post is proposed when it is someone else's, public, not a reblog, not marked sensitive or
behind a content warning, not a reply to somebody else's post (a reply to the show is fine),
and its author is neither blocked nor muted by the official account. Nothing is boosted
without the host's approval unless its author is on the allow-list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import unescape

_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class Candidate:
    status_id: str   # the status's id on the official account's instance
    uri: str         # its ActivityPub id (stable across instances)
    url: str
    author: str      # "user@host" (or "user" on the same instance)
    text: str        # plain text, for the host to read
    via: str         # "#tag" or "mention"
    created_at: str


def plain(html_text: str) -> str:
    text = re.sub(r"<br\s*/?>|</p>\s*<p>", "\n", html_text or "")
    return unescape(_TAGS.sub("", text)).strip()


def why_not(status: dict, *, me_id: str, blocked: set[str], muted: set[str]) -> str | None:
    """Why a status is never proposed (None: it may be)."""
    account = status.get("account") or {}
    if status.get("reblog"):
        return "a boost"
    if str(account.get("id")) == str(me_id):
        return "our own post"
    if str(account.get("id")) in blocked or account.get("acct") in blocked:
        return "author blocked"
    if str(account.get("id")) in muted or account.get("acct") in muted:
        return "author muted"
    if status.get("visibility") != "public":
        return "not public"
    if status.get("sensitive") or (status.get("spoiler_text") or "").strip():
        return "sensitive or behind a content warning"
    to = status.get("in_reply_to_account_id")
    if status.get("in_reply_to_id") and to is not None and str(to) != str(me_id):
        return "a reply to someone else"
    return None


def candidates(found: Iterable[tuple[dict, str]], *, me_id: str, blocked: Iterable[str] = (),
               muted: Iterable[str] = ()) -> list[Candidate]:
    """The proposable statuses among (status, via) pairs, each once (by URI), oldest first."""
    blocked, muted = {str(b) for b in blocked}, {str(m) for m in muted}
    seen: set[str] = set()
    out = []
    for status, via in found:
        uri = status.get("uri") or status.get("url")
        if not uri or uri in seen or why_not(status, me_id=me_id, blocked=blocked,
                                             muted=muted):
            continue
        seen.add(uri)
        out.append(Candidate(str(status["id"]), uri, status.get("url") or uri,
                             status["account"]["acct"], plain(status.get("content") or ""),
                             via, str(status.get("created_at"))))
    return sorted(out, key=lambda c: c.created_at)
