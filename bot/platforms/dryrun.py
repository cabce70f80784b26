"""A publisher that records instead of posting (dry runs), and one for an account without
its credentials, which refuses every post with an AuthError naming the unset variables.

Its rules come from configuration alone (no network): X's published rules, or for Mastodon
the account's `max_characters` if set, else Mastodon's default of 500 — the real instance is
asked only by the real publisher.
"""

from __future__ import annotations

from datetime import datetime

from bot.errors import AuthError
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


class UnconfiguredPublisher:
    """An account that is not a dry run but has no credentials: it composes with the same
    rules as a dry run (so `preview` and `check` still work) and refuses to post or verify
    with an AuthError (the delivery waits, stopped on credentials). Deliberately not a
    DryRunPublisher: nothing sent to it is ever recorded as a dry run. `crier run` refuses to
    start before it would be asked; this is the last line of defence."""

    def __init__(self, account: str, platform: str, missing: tuple[str, ...], *,
                 max_characters: int | None = None):
        self.account, self.platform, self.missing = account, platform, missing
        self._rules = DryRunPublisher(account, platform, max_characters=max_characters).rules()

    def rules(self) -> Rules:
        return self._rules

    def _refuse(self) -> AuthError:
        return AuthError(f"no credentials: set {', '.join(self.missing)} (or dry_run = true)",
                         platform=self.platform, account=self.account)

    def publish(self, post: Post, idempotency_key: str) -> Published:
        raise self._refuse()

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        raise self._refuse()

    def boost(self, url: str, remote_id: str | None, *, same_instance: bool) -> Published:
        raise self._refuse()

    def verify(self) -> str:
        raise self._refuse()
