"""What a post costs on X, and the budgets that cap it (pure: no I/O).

X API pay-per-usage pricing, "Credit consumption details", write operations charged per request
(https://docs.x.com/x-api/getting-started/pricing, read December 2026):

    Content: Create                 $0.015 per request    a post, or a reply, without a URL
    Content: Create (with URL)      $0.200 per request    a post whose text carries a URL
    User Interaction: Create        $0.015 per request    a repost (an amplifier's boost)

"Prices are subject to change. Current rates are always available in the Developer Console":
they are the constants below, in one place. An account out of credits gets HTTP 402
(`bot.errors.CreditsExhaustedError`). Reads (crier's look for an interrupted post, `users/me`)
and uploads are not counted here: the budget caps what crier posts.

A URL is what twitter-text finds (`bot.textlen.extract_urls`, bare domains too), as X does.
The link reply of `link_policy = "reply"` is a post of its own, with a URL: a post with its
link in a reply costs $0.015 + $0.200.

Money is `Decimal` (never float), shown to the tenth of a cent ("$0.215").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.textlen import extract_urls

POST = Decimal("0.015")
POST_WITH_URL = Decimal("0.200")
REPOST = Decimal("0.015")
REPOST_KINDS = ("boost", "community")   # deliveries that repost rather than post
PERIODS = ("month", "day")

_BUDGET = re.compile(r"(\d{1,7}(?:\.\d{1,3})?)/(month|day)")
_ONLY_PUNCTUATION = re.compile(r"^[\s\W_]*$")


def has_url(text: str | None) -> bool:
    """Does X see a link in `text` (and charge the URL price)?"""
    return bool(text) and bool(extract_urls(text or ""))


def text_cost(text: str | None) -> Decimal:
    """One post (or reply) with this text."""
    return POST_WITH_URL if has_url(text) else POST


def post_cost(text: str | None, reply_text: str | None = None) -> Decimal:
    """A composed X post: its text, plus its link reply (link_policy "reply") when it has one."""
    return text_cost(text) + (text_cost(reply_text) if reply_text else Decimal(0))


def delivery_cost(kind: str | None, text: str | None, payload: dict[str, Any] | None, *,
                  sent: bool = False) -> Decimal:
    """An X delivery row's cost: a repost for boosts, else its post and link reply. `sent`:
    the row went out, so its reply counts only if it was posted (its `reply_id` is stored)."""
    if kind in REPOST_KINDS:
        return REPOST
    p = payload or {}
    reply = p.get("reply_text")
    if sent and not p.get("reply_id"):
        reply = None
    return post_cost(text, reply)


def usd(amount: Decimal) -> str:
    """"$0.200": dollars to the tenth of a cent."""
    return f"${amount.quantize(Decimal('0.001'))}"


@dataclass(frozen=True)
class Budget:
    """`x_budget = "5.00/month"`: at most `amount` dollars per calendar `period` (UTC)."""
    amount: Decimal
    period: str     # "month" | "day"

    def __str__(self) -> str:
        return f"{self.amount.quantize(Decimal('0.01'))}/{self.period}"

    def start(self, now: datetime) -> datetime:
        """Where the period holding `now` began (UTC midnight, the 1st for a month)."""
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return day.replace(day=1) if self.period == "month" else day

    def key(self, now: datetime) -> str:
        """The period's name: "2026-12" or "2026-12-06"."""
        return self.start(now).strftime("%Y-%m" if self.period == "month" else "%Y-%m-%d")


def parse_budget(value: str) -> Budget:
    """`"5.00/month"` (or `"/day"`): a dollar amount, no sign or currency symbol, up to three
    decimals. ValueError says what is expected."""
    m = _BUDGET.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"expected an amount of dollars per month like \"5.00/month\" (or "
                         f"\"0.50/day\"), got {value!r}")
    return Budget(Decimal(m.group(1)), m.group(2))


def without_urls(text: str) -> str:
    """`text` with its links taken out (for `over_budget = "no-link"`): a line left with
    nothing but punctuation goes, spaces the link leaves are closed up."""
    spans = extract_urls(text)
    if not spans:
        return text
    out, pos = [], 0
    for _url, start, end in spans:
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    stripped = "".join(out)
    lines = []
    for old, new in zip(_line_spans(text, spans), stripped.split("\n"), strict=True):
        new = re.sub(r"[ \t]{2,}", " ", new).rstrip()
        new = re.sub(r"\s+([,.;:!?)])", r"\1", new) if old else new
        if old and _ONLY_PUNCTUATION.match(new):
            continue   # the line was (nearly) only the link
        lines.append(new)
    return "\n".join(lines).strip()


def _line_spans(text: str, spans: list[tuple[str, int, int]]) -> list[bool]:
    """Per line of `text`: did a link start on it? (Links never cross a line break.)"""
    flags, pos = [], 0
    for line in text.split("\n"):
        end = pos + len(line)
        flags.append(any(pos <= s < end for _u, s, _e in spans))
        pos = end + 1
    return flags
