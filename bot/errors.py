"""crier's exception tree, in one place.

    CrierError                      anything crier reports to the user
    ├── ConfigError                 bad file, key, type or missing secret (names file and key)
    ├── FeedError                   a feed could not be used (that feed only; worker goes on)
    │   ├── FetchError              HTTP status, timeout, size cap, bad scheme (has retry_after)
    │   │   └── BlockedError        a URL from a feed crier will not fetch (file:, private address)
    │   └── ParseError              bytes that feedparser cannot read as a feed at all
    ├── TemplateError               a post template failed (names the template and line)
    ├── ImageError (bot.images)     artwork that cannot be used: not an image, too big, a bomb
    ├── VaultError (bot.vault)      no CRIER_SECRET_KEY, not a key, or a secret stored with
    │                               another key (connected accounts)
    ├── TooLongError (bot.promos)   a queued post over a network's limit (with the previews)
    ├── StoreError                  the state database cannot be reached or migrated
    └── PublishError                a platform refused or failed a post (platform + account named)
        ├── TransientError          5xx, connection reset, timeout: retry with backoff
        │   └── AmbiguousError      the request may have been applied (timeout after send, 5xx):
        │                           look for the post before sending again
        ├── RateLimitedError        429: retry at `retry_at` (an aware UTC datetime) or later
        ├── AuthError               401 / bad token: stop that account, tell the host
        └── RejectedError           422 / 400 / 403: permanent, never retried blindly
            ├── DuplicateError      the platform says this exact text was already posted
            └── CreditsExhaustedError  X's 402: the app's prepaid credits are spent

Adapters translate their library's exceptions into these at the boundary; `service.py` decides
what to do with them, in one place.
"""

from __future__ import annotations

from datetime import datetime


class CrierError(Exception):
    """Base of every error crier reports to the user with a clear sentence."""


class ConfigError(CrierError):
    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None):
        self.file, self.key, self.line, self.detail = file, key, line, message
        where = file or "configuration"
        if line is not None:
            where += f", line {line}"
        if key:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")


class FeedError(CrierError):
    def __init__(self, url: str, message: str):
        self.url, self.detail = url, message
        super().__init__(f"feed {url}: {message}")


class FetchError(FeedError):
    def __init__(self, url: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None):
        self.status, self.retry_after = status, retry_after
        super().__init__(url, message)


class BlockedError(FetchError):
    """A URL refused by policy before anything was fetched: retrying cannot help."""


class ParseError(FeedError):
    pass


class TemplateError(CrierError):
    def __init__(self, name: str, message: str, line: int | None = None):
        self.name, self.line, self.detail = name, line, message
        where = f"template '{name}'" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {message}")


class StoreError(CrierError):
    pass


class PublishError(CrierError):
    def __init__(self, message: str, *, platform: str = "", account: str = "",
                 status: int | None = None):
        self.platform, self.account, self.status, self.detail = platform, account, status, message
        who = f"{platform} account '{account}'" if account else (platform or "platform")
        super().__init__(f"{who}: {message}")


class TransientError(PublishError):
    """Worth retrying later with backoff."""


class AmbiguousError(TransientError):
    """The platform may have applied the request; check before posting again."""


class RateLimitedError(PublishError):
    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw):
        self.retry_at = retry_at
        super().__init__(message, **kw)


class AuthError(PublishError):
    """The credentials were refused: the account stops until the host fixes them."""


class RejectedError(PublishError):
    """A permanent refusal: retrying the same request cannot succeed."""


class DuplicateError(RejectedError):
    """The platform says this exact text was already posted."""


class NotAllowedError(RejectedError):
    """The platform (or the account's API access level) does not allow this action: the
    delivery is skipped, with the reason, and never retried."""


class CreditsExhaustedError(RejectedError):
    """X answered 402: the developer account's prepaid credits are spent. The delivery fails
    (a retry cannot succeed until the host buys credits) and the host is told."""
