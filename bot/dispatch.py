"""Sending the outbox: claim each due delivery, have it composed, publish it once (checking the
platform first after an interrupted attempt), record the outcome, retry with backoff or fail,
and queue the amplifiers' boosts of an official post.

Guarantees kept here: a delivery is claimed (pending → sending) before the network call; the
outcome is recorded by the claim's owner only; a delivery found in `sending` after a crash is
checked on the platform before it is sent again (and Mastodon gets the same Idempotency-Key);
every failure is recorded on its row with the platform's message; nothing is dropped.
On PostgreSQL, where many workers dispatch, the due rows are first leased in a batch
(`Store.lease_due_deliveries`: FOR UPDATE SKIP LOCKED, SENDING_LEASE long), so two workers
never compose or send the same row; the lease ends when the pass does (by the ids leased).
Across shows, a worker's tick costs what is due, not the number of shows: `recover_stale`
once for every show, then `dispatch(recover=False)` for each show `due_show_ids` names.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.artwork import ArtworkPending
from bot.config import Account
from bot.models import (
    Delivery,
    DeliveryStatus,
    Post,
    card_from_data,
    media_from_data,
    pairs_from_data,
)

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
AUTH_RETRY = timedelta(hours=1)
SENDING_LEASE = timedelta(minutes=2)
# "Did this delivery already post?" only counts posts made after its first attempt, which is
# stamped (by our clock, in the database) before the request leaves. The platform stamps the
# post by its own clock: this margin covers ours running ahead of it (NTP keeps servers within
# milliseconds). A wider window could match an older post of another delivery with the same
# text (X refuses the new one as a duplicate) and record that post as this one's.
FIND_EXISTING_SKEW = timedelta(seconds=2)
# Feed artwork is prepared by a small thread pool (bot.artwork); one dispatch waits for it at
# most this long in all (real seconds), then sends what is ready and looks again this much later.
ARTWORK_WAIT = 2.0
ARTWORK_RECHECK = timedelta(seconds=5)


@dataclass
class Outcome:
    """What one dispatch did with one delivery (status: a `DeliveryStatus` value)."""
    delivery_id: int
    account: str
    platform: str
    status: str
    text: str | None = None
    length: int | None = None
    limit: int | None = None
    url: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


class Dispatcher:
    """Sends the due deliveries of `svc` (see the module docstring)."""

    def __init__(self, svc: Service):
        self.svc, self.store, self.settings = svc, svc.store, svc.settings
        self.clock, self.rng, self.alerts = svc.clock, svc.rng, svc.alerts
        self.publishers = svc.publishers
        self._lease: str | None = None  # this pass's batch lease (many workers only)

    # -- sending ----------------------------------------------------------------------
    def dispatch(self, *, stop: Callable[[], bool] | None = None,
                 limit: int = 50, artwork_wait: float | None = None,
                 recover: bool = True) -> list[Outcome]:
        """Send every due delivery once (each claimed first); record each outcome.
        `artwork_wait`: real seconds this pass may wait for feed artwork (ARTWORK_WAIT).
        `recover` False: the caller ran `recover_stale` (every show's) for this tick."""
        import time
        wait = ARTWORK_WAIT if artwork_wait is None else artwork_wait
        self.svc.composer.artwork_until = time.monotonic() + wait
        if recover:
            recover_stale(self.store, self.clock())
        self.svc.release_scheduled()
        self.svc.queue.fire()
        now = self.clock()  # what fire() just queued is due by then (a real clock moved on)
        if self.store.many_workers:
            self._lease = f"lease:{uuid.uuid4().hex}"
            due = self.store.lease_due_deliveries(now, self._lease, SENDING_LEASE, limit)
            # Rows are touched only while the lease surely holds; the rest go back (released
            # below) for the next pass of any worker.
            until = now + SENDING_LEASE / 2
            stop_ = stop
            stop = lambda: self.clock() >= until or bool(stop_ and stop_())  # noqa: E731
        else:
            due = self.store.due_deliveries(now, limit=limit)
        try:
            return self._send_all(due, stop)
        finally:
            if self._lease is not None:  # the leased rows only: no scan when none were
                self.store.release_deliveries(self._lease, [d.id for d in due])
                self._lease = None

    def _send_all(self, due: list[dict], stop: Callable[[], bool] | None) -> list[Outcome]:
        outcomes = []
        blocked: Delivery[str, str] = {}
        for d in due:
            if stop and stop():
                break
            if d.account in blocked:
                continue
            if d.kind == "promo" and (account := self.svc._account(d.account)):
                hold = self.svc.queue.hold_for(d, account, self.clock())
                if hold is not None:  # spacing, quiet hours, an announcement first
                    self.store.update_delivery(d.id, self.clock(), next_attempt_at=hold)
                    continue
            outcome = self._deliver(d, blocked)
            if outcome:
                outcomes.append(outcome)
        return outcomes


    def _deliver(self, d: Delivery, blocked: Delivery[str, str]) -> Outcome | None:
        now = self.clock()
        did, name = d.id, d.account
        account = self.svc._account(name)
        publisher = self.publishers.get(name)
        if account is None or publisher is None:
            self.store.update_delivery(did, now, status=DeliveryStatus.HELD.value,
                                       last_error=f"account '{name}' is no longer in the "
                                                  "configuration")
            log.warning("delivery %d: held, account %r not configured", did, name)
            return Outcome(did, name, d.platform, DeliveryStatus.HELD.value,
                           error="account not configured")

        if d.text is None:
            try:
                self.svc.composer.compose_delivery(d, account)
            except ArtworkPending as e:  # downloading off the dispatch path: look again soon
                at = now + ARTWORK_RECHECK
                self.store.update_delivery(did, now, next_attempt_at=at, last_error=str(e),
                                           error_kind="artwork")
                log.info("delivery %d to %s: %s", did, name, e)
                return Outcome(did, name, d.platform, DeliveryStatus.PENDING.value,
                               error=str(e), next_attempt_at=at)
            except errors.RateLimitedError as e:  # the instance lookup was rate limited
                blocked[name] = "rate limited"
                return self._retry_later(d, e, now, claimed=False, at=e.retry_at,
                                         count_attempt=False)
            except errors.PublishError as e:  # the instance could not tell its limit
                return self._retry_later(d, e, now, claimed=False)
            except errors.CrierError as e:
                self.store.update_delivery(did, now, status=DeliveryStatus.FAILED.value,
                                           last_error=str(e), error_kind="compose")
                log.error("delivery %d to %s: cannot be composed: %s", did, name, e)
                self.alerts.delivery_failed(d, e)
                return Outcome(did, name, d.platform, DeliveryStatus.FAILED.value,
                               error=str(e))
            d = self.store.delivery(did)

        token = uuid.uuid4().hex
        if not self.store.claim(did, token, now, lease=self._lease):
            return None  # another process took it
        post = _post_from_row(d)
        outcome = Outcome(did, name, d.platform, "", text=d.text, length=d.length,
                          limit=d.limit)

        if isinstance(publisher, _dry_run_type()):
            publisher.publish(post, d.idempotency_key)
            self.store.finish(did, token, now, status=DeliveryStatus.DRY_RUN.value,
                              sent_at=now)
            log.info("delivery %d to %s: dry run, recorded not sent (%d/%d)", did, name,
                     d.length or 0, d.limit or 0)
            outcome.status = DeliveryStatus.DRY_RUN.value
            return outcome

        try:
            published = None
            if d.needs_check and d.kind not in ("boost", "community"):  # (a no-op again)
                published = publisher.find_existing(post, _since_first_attempt(d, now))
                if published:
                    log.info("delivery %d to %s: found already posted after an interrupted "
                             "attempt: %s", did, name, published.url)
            if published is None and d.kind in ("boost", "community"):
                target = d.payload["boost_of"]
                published = publisher.boost(target["url"], target["remote_id"],
                                            same_instance=target["same_instance"])
            elif published is None:
                published = publisher.publish(post, d.idempotency_key)
        except errors.NotAllowedError as e:  # e.g. X's Free tier cannot repost
            self.store.finish(did, token, now, status=DeliveryStatus.SKIPPED.value,
                              last_error=str(e), error_kind="not allowed")
            log.warning("delivery %d to %s: skipped: %s", did, name, e)
            outcome.status, outcome.error = DeliveryStatus.SKIPPED.value, str(e)
            return outcome
        except errors.DuplicateError as e:
            published = None   # without an earlier ambiguous attempt, it is another post's text
            if d.needs_check:
                try:
                    published = publisher.find_existing(post, _since_first_attempt(d, now))
                except errors.PublishError:
                    published = None
            if published is None:
                return self._fail(d, token, e, now, outcome)
            log.info("delivery %d to %s: platform says duplicate and the post is there: %s",
                     did, name, published.url)
        except errors.RateLimitedError as e:
            blocked[name] = "rate limited"
            return self._retry_later(d, e, now, token=token, outcome=outcome,
                                     at=e.retry_at, count_attempt=False)
        except errors.AuthError as e:
            blocked[name] = "credentials refused"
            self.alerts.auth_refused(d, e)
            return self._retry_later(d, e, now, token=token, outcome=outcome,
                                     at=now + AUTH_RETRY, kind="auth", count_attempt=False)
        except errors.RejectedError as e:
            return self._fail(d, token, e, now, outcome)
        except errors.TransientError as e:
            return self._retry_later(d, e, now, token=token, outcome=outcome,
                                     check=isinstance(e, errors.AmbiguousError))
        except Exception as e:  # a bug or an unexpected library error: keep the delivery
            log.exception("delivery %d to %s: unexpected error", did, name)
            return self._retry_later(d, errors.AmbiguousError(f"unexpected error: {e!r}"), now,
                                     token=token, outcome=outcome, check=True)

        note = None
        reply_error = getattr(publisher, "last_reply_error", None)
        if post.reply_text and reply_error is not None:
            note = f"posted; the link reply failed: {reply_error}"
            log.warning("delivery %d to %s: %s", did, name, note)
        extra = {"payload": {**(d.payload or {}), "reply_id": published.reply_id,
                             "reply_url": published.reply_url}} if published.reply_url else {}
        self.store.finish(did, token, now, status=DeliveryStatus.SENT.value,
                          remote_id=published.remote_id, remote_url=published.url, sent_at=now,
                          last_error=note, error_kind="reply" if note else None,
                          needs_check=False, **extra,
                          and_then=lambda c: self._enqueue_boosts(c, d, account, now))
        log.info("delivery %d to %s: sent %s", did, name, published.url or published.remote_id)
        self.alerts.account_worked(name)
        outcome.status, outcome.url, outcome.error = DeliveryStatus.SENT.value, published.url, note
        return outcome


    def _enqueue_boosts(self, c, d: Delivery, account: Account, now: datetime) -> None:
        """After an official post: one boost per amplifier of its account, after the delay
        (in the transaction that records the post, so a crash loses none)."""
        if d.kind in ("boost", "community"):
            return
        amps = self.settings.amplifiers_of(account.name)
        for amp in amps:
            self.store.enqueue(c, kind="boost", dedupe_key=f"boost:{d.id}:{amp.name}",
                               episode_id=d.episode_id, now=now, priority=5,
                               targets=[(amp.name, amp.platform,
                                         DeliveryStatus.PENDING.value)],
                               due_at=now + timedelta(seconds=amp.amplify_delay))


    def _retry_later(self, d: Delivery, e: errors.PublishError, now: datetime, *,
                     token: str | None = None, outcome: Outcome | None = None,
                     at: datetime | None = None, kind: str = "transient",
                     check: bool = False, count_attempt: bool = True,
                     claimed: bool = True) -> Outcome:
        attempts = d.attempts + (1 if claimed else 0)
        if count_attempt and attempts >= self.settings.max_attempts:
            return self._fail(d, token, errors.PublishError(
                f"gave up after {attempts} attempts; last error: {e.detail}",
                platform=d.platform, account=d.account), now,
                outcome or Outcome(d.id, d.account, d.platform, ""))
        if at is None:
            delay = min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)
            at = now + delay * self.rng.uniform(0.8, 1.2)
        values = dict(status=DeliveryStatus.PENDING.value, next_attempt_at=at,
                      last_error=str(e), error_kind=kind,
                      needs_check=bool(check or d.needs_check))
        if not count_attempt and claimed:
            values["attempts"] = d.attempts  # rate limits and auth stops don't use up tries
        if claimed:
            self.store.finish(d.id, token, now, **values)
        else:
            self.store.update_delivery(d.id, now, **values)
        log.warning("delivery %d to %s: %s; retry at %s", d.id, d.account, e,
                    at.isoformat(timespec="seconds"))
        o = outcome or Outcome(d.id, d.account, d.platform, "")
        o.status, o.error, o.next_attempt_at = DeliveryStatus.PENDING.value, str(e), at
        return o

    def _fail(self, d: Delivery, token: str | None, e: errors.CrierError, now: datetime,
              outcome: Outcome) -> Outcome:
        values = dict(status=DeliveryStatus.FAILED.value, last_error=str(e),
                      error_kind="rejected")
        recorded = True
        if token:
            recorded = self.store.finish(d.id, token, now, **values)
        else:
            self.store.update_delivery(d.id, now, **values)
        log.error("delivery %d to %s: failed: %s", d.id, d.account, e)
        if recorded:
            self.alerts.delivery_failed(d, e)
        outcome.status, outcome.error = DeliveryStatus.FAILED.value, str(e)
        return outcome

    def retry_failed(self, delivery_ids: Iterable[int]) -> int:
        """The host asks deliveries to be tried again (see `bot.outbox.retry`)."""
        from bot.outbox import retry
        return sum(r["changed"] for r in retry(self.store, delivery_ids, self.clock()))

    def wake_auth_stopped(self) -> None:
        """On start: deliveries parked by a refused token are due again (it may be fixed)."""
        from bot.store import deliveries
        now = self.clock()
        for d in self.store.deliveries_where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.error_kind == "auth"):
            self.store.update_delivery(d.id, now, next_attempt_at=now)



# -- across shows: what a worker's dispatch tick does once, not once per show --------------
def recover_stale(store, now: datetime) -> list[int]:
    """Deliveries of every show left `sending` longer than SENDING_LEASE (their process
    died) go back to pending, flagged to be checked on the platform first; their ids. One
    transaction whatever the number of shows: a worker runs it once per dispatch tick, then
    `dispatch(recover=False)` for each show `due_show_ids` names."""
    stale = store.recover_stale(now, SENDING_LEASE)
    for d in stale:
        log.warning("delivery %d: was interrupted while sending; will check the platform "
                    "before sending again", d)
    return stale


def due_show_ids(store, now: datetime) -> set[int | None]:
    """The ids of the (not removed) shows whose dispatch has something to do at `now`: a due
    delivery no live lease holds, one stuck in `sending` past SENDING_LEASE, a due promo, or
    a scheduled episode whose date has come (`Store.shows_with_due_work`: one statement).
    None in the set: such rows belong to no show (none are written since migration 0006)."""
    return store.shows_with_due_work(now, SENDING_LEASE)


def _since_first_attempt(d: Delivery, now: datetime) -> datetime:
    """Where a look for this delivery's own post starts (see FIND_EXISTING_SKEW)."""
    return (d.first_attempt_at or now) - FIND_EXISTING_SKEW



def _post_from_row(d: Delivery) -> Post:
    p = d.payload or {}
    media = tuple(media_from_data(m) for m in p.get("media") or ())
    return Post(text=d.text, language=p.get("language"),
                visibility=p.get("visibility", "public"), media=media,
                spoiler=p.get("spoiler"), reply_text=p.get("reply_text"),
                card=card_from_data(p.get("card")), mentions=pairs_from_data(p.get("mentions")),
                links=pairs_from_data(p.get("links")), created_at=d.created_at)


def _dry_run_type():
    from bot.platforms.dryrun import DryRunPublisher
    return DryRunPublisher
