"""A publisher that records instead of posting (dry runs), and one for an account without
its credentials, which refuses every post with an AuthError naming the unset variables.

Its rules are the real platform's, so a dry run refuses exactly what the real post would be
refused for: X's rules are `bot.textlen.X_RULES`, the very ones `XPublisher.rules()` returns
(weighted 280, URLs 23, alt text 1000, images 5 MB). A Mastodon instance states its own limits
and only the real publisher asks it: a dry run takes the account's `max_characters` (the
instance's limit, as the host configured it) else Mastodon's documented default of 500, and
for the rest (URL weight, alt text 1500, image size) the same defaults the real publisher falls
back on when the instance does not say (`bot.textlen.MASTODON_DEFAULT_RULES`). Bluesky and
Threads have fixed limits: `bot.textlen.BLUESKY_RULES` and `THREADS_RULES`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.errors import AuthError
from bot.models import Post, Published, Rules
from bot.textlen import BLUESKY_RULES, MASTODON_DEFAULT_RULES, THREADS_RULES, X_RULES

# https://docs.joinmastodon.org/user/posting/#text : 500 is Mastodon's default limit.
MASTODON_DEFAULT_LIMIT = MASTODON_DEFAULT_RULES.limit
# https://docs.x.com/resources/fundamentals/counting-characters : 280 weighted characters.
X_LIMIT = X_RULES.limit


def dry_run_rules(platform: str, max_characters: int | None = None) -> Rules:
    """The rules a dry run of an account on `platform` applies (see the module docstring)."""
    if platform == "x":
        return X_RULES
    if platform == "bluesky":
        return BLUESKY_RULES
    if platform == "threads":
        return THREADS_RULES
    if max_characters:
        return replace(MASTODON_DEFAULT_RULES, limit=max_characters)
    return MASTODON_DEFAULT_RULES


class DryRunPublisher:
    def __init__(self, account: str, platform: str, *, max_characters: int | None = None,
                 reason: str = ""):
        self.account, self.platform, self.reason = account, platform, reason
        self._rules = dry_run_rules(platform, max_characters)
        self.published: list[tuple[Post, str]] = []
        self.deleted: list[str] = []   # the remote ids `delete` was asked for (recorded only)

    def rules(self) -> Rules:
        return self._rules

    def publish(self, post: Post, idempotency_key: str) -> Published:
        self.published.append((post, idempotency_key))
        return Published(remote_id=f"dry-run:{idempotency_key[:12]}", url=None)

    def find_existing(self, post: Post, since: datetime) -> Published | None:
        return None

    def delete(self, remote_id: str) -> None:
        """Recorded, not deleted (`bot.removal` leaves the delivery as it is)."""
        self.deleted.append(remote_id)

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

    def delete(self, remote_id: str) -> None:
        raise self._refuse()

    def verify(self) -> str:
        raise self._refuse()
