"""The small interface every network implements.

A publisher knows its network's `Rules` (how to count, the limit), how to `publish` a `Post`
with an idempotency key that is the same on every retry of one delivery, how to look for a post
it may already have made (`find_existing`, used after an ambiguous failure), and how to check
its credentials (`verify`) and how to take a post it made down again (`delete`, for
`crier remove`: a post that is already gone counts as deleted, so removing is safe to repeat).
It translates its library's exceptions into `bot.errors` at this
boundary: TransientError / AmbiguousError, RateLimitedError, AuthError, RejectedError /
DuplicateError. It never retries on its own; `service.py` decides.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.models import Post, Published, Rules


@runtime_checkable
class Publisher(Protocol):
    platform: str   # "mastodon" | "x"
    account: str    # the account's name in config

    def rules(self) -> Rules:
        """The network's counting rules and limit (Mastodon asks its instance, cached)."""

    def publish(self, post: Post, idempotency_key: str) -> Published:
        """Post it. Raises a `bot.errors.PublishError` subclass on failure."""

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        """A post of this account created at or after `since` with this exact text, if any."""

    def verify(self) -> str:
        """Check the credentials; return the account's handle. Raises AuthError."""

    def delete(self, remote_id: str) -> None:
        """Delete this account's post `remote_id` (a `Published.remote_id`). Returns when it
        is gone, also when it already was (the network answers 404). Raises a
        `bot.errors.PublishError` subclass otherwise, as `publish` does (never Ambiguous:
        deleting twice is harmless)."""


# These libraries log request signing details (the OAuth consumer key and access token, the
# Authorization header) at DEBUG; urllib3 logs each request's URL, which carries the Threads
# token as its documented `access_token` query parameter. Whatever logging is configured, they
# never get to.
LEAKY_LOGGERS = ("requests_oauthlib", "oauthlib", "mastodon", "urllib3")


def quiet_leaky_loggers() -> None:
    for name in LEAKY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
