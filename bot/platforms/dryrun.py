"""A publisher that records instead of posting: dry runs and accounts without credentials.

Its rules come from configuration alone (no network): X's published rules, or for Mastodon
the account's `max_characters` if set, else Mastodon's default of 500 — the real instance is
asked only by the real publisher.
"""

from __future__ import annotations

from datetime import datetime

from bot.models import Post, Published, Rules

# https://docs.joinmastodon.org/user/posting/#text : 500 is Mastodon's default limit.
MASTODON_DEFAULT_LIMIT = 500
# https://docs.x.com/resources/fundamentals/counting-characters : 280 weighted characters.
X_LIMIT = 280


class DryRunPublisher:
    def __init__(self, account: str, platform: str, *, max_characters: int | None = None,
                 reason: str = ""):
        self.account, self.platform, self.reason = account, platform, reason
        if platform == "mastodon":
            self._rules = Rules("mastodon", max_characters or MASTODON_DEFAULT_LIMIT,
                                "mastodon", 23)
        else:
            self._rules = Rules("x", X_LIMIT, "x", 23)
        self.published: list[tuple[Post, str]] = []

    def rules(self) -> Rules:
        return self._rules

    def publish(self, post: Post, idempotency_key: str) -> Published:
        self.published.append((post, idempotency_key))
        return Published(remote_id=f"dry-run:{idempotency_key[:12]}", url=None)

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        return None

    def verify(self) -> str:
        return f"(dry run: {self.reason})" if self.reason else "(dry run)"
