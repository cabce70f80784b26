"""Threads tokens: a long-lived token lasts 60 days and Meta refreshes it only when it is at
least 24 hours old and not yet expired (threads/get-started/long-lived-tokens). crier refreshes
each Threads account's token well before it expires, keeps the refreshed one where the web app
keeps connected secrets (`connected_accounts`, encrypted with CRIER_SECRET_KEY by bot.vault),
and tells the host a week before a token would expire and when a refresh fails.

- `StoredToken` is the publisher's `token_store` (bot.platforms.threads): `get()` gives the
  account's current token from the database (None: the publisher keeps the one it was built
  with), `save(token, expires_in)` keeps a refreshed one with its expiry. A token from the
  environment (CRIER_<NAME>_ACCESS_TOKEN) is refreshed too: the stored one remembers which
  environment token it came from (a hash), so a new token set in the environment wins again.
- `refresh_threads_tokens(svc)` is the worker's periodic job (bot.worker `tokens`) for one
  show: per Threads account, refresh when less than `REFRESH_BEFORE` is left (or the expiry is
  unknown: an environment token's is learnt from the refresh answer's `expires_in`), warn
  `WARN_BEFORE` ahead of the expiry, notify a failed refresh (once per run of failures).
  Without CRIER_SECRET_KEY nothing can be kept: it says so (log and one notification) and the
  environment token is used as it is.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bot.errors import AuthError, CrierError, PublishError, RejectedError
from bot.notify import Message
from bot.store import connected_accounts, shows
from bot.vault import Vault, VaultError

if TYPE_CHECKING:
    from bot.config import Account, Settings
    from bot.store import Store

log = logging.getLogger(__name__)

REFRESH_BEFORE = timedelta(days=30)   # refresh once less than this is left (of 60 days)
MIN_AGE = timedelta(hours=24)         # Meta refreshes tokens at least this old
WARN_BEFORE = timedelta(days=7)       # tell the host this long before a token expires
CHECK_EVERY = 3600                    # seconds between the worker's checks
ENVIRONMENT, WEB = "environment", "web"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TokenRecord:
    """What the database holds for one Threads account (decrypted; never logged)."""
    token: str
    origin: str                     # "environment" (refreshed from it) | "web" (pasted)
    expires_at: datetime | None
    refreshed_at: datetime | None   # when Meta issued it, as far as crier knows
    stored_at: datetime             # the row's created_at (a pasted token is at least as old)
    show_id: int | None


class StoredToken:
    """One Threads account's token in `connected_accounts` (the publisher's token_store)."""

    def __init__(self, store: Store, account: str, *, show_id: int | None = None,
                 env_token: str | None = None, api_base: str | None = None,
                 vault: Vault | None = None, vault_error: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.store, self.account, self.show_id = store, account, show_id
        self.env_token, self.api_base, self.clock = env_token, api_base, clock
        self.vault, self.vault_error = vault, vault_error

    def __repr__(self) -> str:
        return f"StoredToken(account={self.account!r})"

    def record(self) -> TokenRecord | None:
        """The stored token (None: none, another show's, or unreadable: logged)."""
        if self.vault is None:
            return None
        with self.store.tx() as c:
            row = c.execute(sa.select(connected_accounts).where(
                connected_accounts.c.account == self.account,
                connected_accounts.c.platform == "threads")).mappings().first()
        if row is None or None not in (row["show_id"], self.show_id) \
                and row["show_id"] != self.show_id:
            return None
        try:
            values = self.vault.unseal(row["secret_enc"], what=f"the token of Threads account "
                                                                f"'{self.account}'")
        except VaultError as e:
            log.error("threads account '%s': %s", self.account, e)
            return None
        origin = values.get("origin") or WEB
        if origin == ENVIRONMENT and self.env_token and values.get("env_sha") != \
                _sha(self.env_token):
            return None   # the host set another token in the environment since: it wins
        return TokenRecord(values.get("access_token", ""), origin,
                           _time(values.get("expires_at")), _time(values.get("refreshed_at")),
                           row["created_at"], row["show_id"])

    def get(self) -> str | None:
        rec = self.record()
        return rec.token if rec is not None and rec.token else None

    def save(self, token: str, expires_in: int | None) -> None:
        """Keep a refreshed token (encrypted) with its expiry; CrierError if it cannot be."""
        if self.vault is None:
            raise CrierError(f"threads account '{self.account}': the refreshed token cannot be "
                             f"kept: {self.vault_error or 'no CRIER_SECRET_KEY'}")
        now = self.clock()
        old = self.record()
        origin = old.origin if old is not None else (ENVIRONMENT if self.env_token else WEB)
        values = {"access_token": token, "origin": origin, "refreshed_at": now.isoformat(),
                  "expires_at": (now + timedelta(seconds=expires_in)).isoformat()
                  if expires_in else ""}
        if origin == ENVIRONMENT and self.env_token:
            values["env_sha"] = _sha(self.env_token)
        sealed = self.vault.seal(values)
        with self.store.tx() as c:
            row = c.execute(sa.select(connected_accounts.c.show_id).where(
                connected_accounts.c.account == self.account)).first()
            if row is not None and None not in (row[0], self.show_id) and row[0] != self.show_id:
                raise CrierError(f"an account named '{self.account}' is connected for another "
                                 "show: its refreshed Threads token is not kept")
            if row is None:
                c.execute(connected_accounts.insert().values(
                    show_id=self.show_id, account=self.account, platform="threads",
                    instance=self.api_base, username=None, secret_enc=sealed,
                    created_by=None, created_at=now, verified_at=now))
            else:
                c.execute(connected_accounts.update().where(
                    connected_accounts.c.account == self.account).values(
                    secret_enc=sealed, platform="threads", verified_at=now))
        log.info("threads account '%s': refreshed token kept (encrypted)%s", self.account,
                 f", valid until {values['expires_at'][:16]}" if expires_in else "")


def token_store_for(store: Store, settings: Settings, account: Account, *,
                    show_id: int | None = None, env: Mapping[str, str] | None = None,
                    clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> StoredToken:
    """The `token_store` for a Threads account's publisher (bot.publishers wires it)."""
    from bot.connect import open_vault
    vault, problem = None, None
    try:
        vault = open_vault(settings, env)
    except VaultError as e:
        problem = str(e)
    env_token = None
    if account.credentials == ENVIRONMENT and account.secrets.get("access_token"):
        env_token = account.secrets["access_token"].reveal()
    return StoredToken(getattr(store, "unscoped", store), account.name, show_id=show_id,
                       env_token=env_token, api_base=account.api_base, vault=vault,
                       vault_error=problem, clock=clock)


# -- the periodic job ----------------------------------------------------------------------------
def threads_show_ids(store: Store, deployment) -> list[int]:
    """The served shows that may have a Threads account (the caller checks their Settings)."""
    from bot.shows import slug_of
    on = {slug_of(s) for s in deployment.shows
          if any(a.platform == "threads" for a in s.accounts)}
    with store.tx() as c:
        rows = list(c.execute(sa.select(shows.c.id, shows.c.slug, shows.c.source).where(
            shows.c.removed_at.is_(None),
            sa.or_(shows.c.source == "config", shows.c.config.like("%threads%")))))
    return [sid for sid, slug, source in rows if source != "config" or slug in on]


def refresh_threads_tokens(svc, *, env: Mapping[str, str] | None = None) -> list[dict]:
    """Check (and refresh when due) every Threads account's token of the show `svc` serves.
    One dict per account: account, action (refreshed | not due | failed | no key | expired |
    dry run), expires_at, error."""
    out = []
    for account in svc.settings.accounts:
        if account.platform != "threads":
            continue
        if account.dry_run or svc.dry_run:
            out.append({"account": account.name, "action": "dry run", "expires_at": None,
                        "error": None})
            continue
        try:
            out.append(_check(svc, account, env))
        except CrierError as e:       # e.g. the database: the next check tries again
            log.error("threads account '%s': token check failed: %s", account.name, e)
            out.append({"account": account.name, "action": "failed", "expires_at": None,
                        "error": str(e)})
    return out


def _check(svc, account: Account, env: Mapping[str, str] | None) -> dict:
    now = svc.clock()
    name, sid = account.name, svc.store.show_id
    tokens = token_store_for(svc.store, svc.settings, account, show_id=sid, env=env,
                             clock=svc.clock)
    report = {"account": name, "action": "not due", "expires_at": None, "error": None}
    if tokens.vault is None:
        report["action"] = "no key"
        if tokens.env_token and _first(svc, f"threads-nokey:{sid}:{name}", now):
            _tell(svc, name, f"the refreshed Threads token of {name} cannot be kept",
                  f"Threads tokens last 60 days; crier refreshes them and keeps the new one "
                  f"encrypted, which needs CRIER_SECRET_KEY: {tokens.vault_error}\n\n"
                  f"Until then crier keeps using the token in the environment as it is; it "
                  f"stops working 60 days after it was made.", "warning")
        log.error("threads account '%s': %s; using the environment's token as it is", name,
                  tokens.vault_error)
        return report
    rec = tokens.record()
    expires = rec.expires_at if rec else None
    report["expires_at"] = expires
    if expires is not None and expires <= now:
        report["action"] = "expired"
        _tell_failed(svc, name, sid, now, f"its token expired on {expires:%Y-%m-%d %H:%M} UTC "
                     "and can no longer be refreshed", force=True)
        return report
    issued = (rec.refreshed_at or rec.stored_at) if rec else _seen(svc, sid, name, tokens, now)
    due = expires is None or expires - now <= REFRESH_BEFORE
    old_enough = issued is None or now - issued >= MIN_AGE
    if due and old_enough:
        publisher = _publisher(svc, account, tokens, rec)
        try:
            new, expires_in = publisher.refresh_token()
            if publisher.token_store is not tokens:
                tokens.save(new, expires_in)
        except (PublishError, CrierError) as e:
            report.update(action="failed", error=str(e))
            young = isinstance(e, RejectedError) and issued is None
            if young:   # an environment token of unknown age may be under a day old
                svc.store.add_notice(_young_key(sid, name, tokens), now, now)
                log.info("threads account '%s': Meta did not refresh the token (it may be "
                         "less than a day old); trying again later: %s", name, e)
            else:
                log.error("threads account '%s': token refresh failed: %s", name, e)
                _tell_failed(svc, name, sid, now, getattr(e, "detail", None) or str(e),
                             force=isinstance(e, AuthError | RejectedError))
        else:
            svc.store.clear_notice(f"threads-refresh:{sid}:{name}")
            expires = now + timedelta(seconds=expires_in) if expires_in else None
            report.update(action="refreshed", expires_at=expires)
            return report
    if expires is not None and expires - now <= WARN_BEFORE and \
            _first(svc, f"threads-expiry:{sid}:{name}:{expires:%Y%m%d%H%M}", now):
        _tell(svc, name, f"the Threads token of {name} expires in {(expires - now).days} days",
              f"The Threads token of account {name} expires on {expires:%Y-%m-%d %H:%M} UTC "
              "and crier could not refresh it. After that nothing is posted on Threads.\n\n"
              "What to do: paste a new long-lived token on the Accounts page of the web app "
              f"(or set CRIER_{name.upper().replace('-', '_')}_ACCESS_TOKEN), then run "
              "`crier check`.", "warning")
    return report


def _young_key(sid, name: str, tokens: StoredToken) -> str:
    return f"threads-young:{sid}:{name}:{_sha(tokens.env_token or '')[:16]}"


def _seen(svc, sid, name: str, tokens: StoredToken, now: datetime) -> datetime | None:
    """An environment token never refreshed: when Meta said it was too young to refresh
    (it is at least that old), None when it never did."""
    if not tokens.env_token:
        return None
    row = svc.store.notice(_young_key(sid, name, tokens))
    return row["since"] if row is not None else None


def _publisher(svc, account: Account, tokens: StoredToken, rec: TokenRecord | None):
    """The show's own publisher (its token changes in memory too), else one for the job."""
    from bot.platforms.threads import ThreadsPublisher
    own = svc.publishers.get(account.name)
    if isinstance(own, ThreadsPublisher):
        return own
    token = rec.token if rec else (tokens.env_token or "")
    return ThreadsPublisher(account.name, access_token=token, api_base=account.api_base,
                            user_id=getattr(account, "user_id", "me"), token_store=tokens,
                            timeout=account.timeout, clock=svc.clock)


def _first(svc, key: str, now: datetime) -> bool:
    """True once per key (the notices table remembers across restarts and workers)."""
    return svc.store.add_notice(key, now, now)


def _tell_failed(svc, name: str, sid, now: datetime, why: str, *, force: bool) -> None:
    """A failed refresh: told once per run of failures (a passing one only after a day)."""
    key = f"threads-refresh:{sid}:{name}"
    row = svc.store.notice(key)
    if row is None:
        svc.store.add_notice(key, now)
        row = svc.store.notice(key)
    if row["sent_at"] is not None or not force and now - row["since"] < MIN_AGE:
        return
    if svc.store.mark_notice_sent(key, now):
        _tell(svc, name, f"the Threads token of {name} could not be refreshed",
              f"crier could not refresh the Threads token of account {name}: {why}\n\n"
              "crier tries again every hour. If the token expires, nothing is posted on "
              "Threads. What to do: paste a new long-lived token on the Accounts page of the "
              "web app (or set it in the environment), then run `crier check`.", "failure")


def _tell(svc, account: str, title: str, body: str, kind: str) -> None:
    urls = svc.settings.notify_urls(account)
    if urls:
        svc.notifier.send(Message(f"crier: {title}", body, urls, kind))
    log.warning("threads account '%s': %s", account, title)
