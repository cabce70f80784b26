"""Polling one feed: fetch it (conditional GET, backoff, Retry-After, max-age), detect what is
new (identity keys, the first-run baseline, the flood guard), record it with its announcements,
keep the item cache, and release held and scheduled episodes.

Guarantee kept here: an episode's row, its identity keys and its deliveries are written in one
transaction, and the feed's validators (ETag, body hash) in that same transaction, never
before it: a crash re-reads the feed. A poll's new episodes go in together (one INSERT, ids
oldest first, and one for their keys), so a first run of thousands of episodes is cheap. On
PostgreSQL, where many workers poll, a feed is polled only under a poll lease
(`Store.claim_due_feeds`, POLL_LEASE long): no worker polls a feed another is polling, and a
due feed is polled by one of them; should a lease run out mid-poll, a new episode's keys are
unique in the database, so the later of two workers records nothing and reads again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.cadence import POLL_SLACK, POLL_TICK, Cadence, next_poll_at  # noqa: F401 (re-exported)
from bot.cadence import describe_schedule as describe_cadence
from bot.episodes import FeedItems, episode_from_data, episode_to_data
from bot.models import DeliveryStatus, Episode, EpisodeStatus, Feed

if TYPE_CHECKING:
    from bot.feed import ItemCache
    from bot.service import Service

log = logging.getLogger(__name__)

FEED_RETRY_BASE = timedelta(minutes=1)
FEED_RETRY_MAX = timedelta(hours=6)
# An unchanged poll that changes nothing but the poll times is written at most this often.
QUIET_WRITE = timedelta(minutes=5)
_POLL_TIMES = frozenset({"last_poll_at", "last_ok_at", "next_poll_at"})
# A changed feed read by the pre-scan: boilerplate (paragraphs repeated across items) is found
# in the new items and this many of the newest episodes already recorded (their show notes as
# stored; a sponsor read or "Support the show" repeats in the recent ones). Reading them from
# the feed again would cost feedparser 1-3 ms per item.
BOILERPLATE_SAMPLE = 12
# A feed's poll lease (many workers): a worker that dies mid-poll frees its feed after this.
POLL_LEASE = timedelta(minutes=2)


@dataclass
class PollReport:
    """What one poll found and did (episode ids announced, held, scheduled)."""
    feed: str
    result: str                         # new | nothing-new | unchanged | baseline | error | waiting
    announced: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    scheduled: list[int] = field(default_factory=list)
    baseline: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)



def fetch(feed: Feed, session, deadline: float | None):
    """The feed's conditional GET, with the validators of its last good read (FetchError)."""
    from bot.fetch import fetch_feed
    return fetch_feed(feed.redirect_url or feed.url, session=session, etag=feed.etag,
                      last_modified=feed.last_modified, previous_hash=feed.body_hash,
                      deadline=deadline)


def describe_schedule(feed: Feed, now: datetime, *, interval: int | None = None,
                      min_interval: int | None = None) -> str:
    """How a feed is polled now, for `crier status`: "polling every 15 min", "polling every
    1 min (around its usual release time)", "polling every 1 h until Mon 05:45 UTC (between
    its usual release times)" (bot.cadence; `interval`: the show's, else the row's)."""
    cad = Cadence.from_row(feed.update_hint, feed.release_hours, min_interval=min_interval)
    return describe_cadence(cad, interval or feed.poll_interval or 900, now)


class Poller:
    """Polls the feed of `svc` and records what it finds (see the module docstring)."""

    def __init__(self, svc: Service):
        self.svc, self.store, self.settings = svc, svc.store, svc.settings
        self.clock, self.rng, self.alerts = svc.clock, svc.rng, svc.alerts
        self._feed: Feed | None = None  # the feed's row as of the last unchanged poll
        self._with_release: dict = {}   # what a quiet poll writes with its lease's release
        self._leased = False            # polling a feed bot.fleet claimed (poll_claimed)
        import os
        import socket
        import uuid
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @property
    def session(self):
        return self.svc.session

    # -- polling --------------------------------------------------------------------------
    def poll(self, *, force: bool = False, backfill: int | None = None) -> PollReport:
        """Fetch the feed (if due), record what is new, enqueue announcements.

        Unchanged (304, or the same body hash): no parse at all. Changed, after the first
        run: a pre-scan reads every item's identity keys without feedparser, and feedparser
        reads only the items the database does not know (plus a sample of the newest for
        boilerplate); anything the scan cannot read exactly is parsed in full.
        """
        now = self.clock()
        if self.store.many_workers:
            return self._poll_leased(now, force, backfill)
        feed = self._feed
        if feed is None or feed.url != self.settings.feed:
            feed = self.store.ensure_feed(self.settings.feed, now)
        self._feed = None  # kept again only after an unchanged poll (below)
        report = PollReport(feed=self.settings.feed, result="waiting")
        if not force and feed.next_poll_at and now < feed.next_poll_at:
            return report
        return self._poll_feed(feed, now, backfill, report)

    def due_after(self) -> datetime | None:
        """When this feed is next due as only this worker knows it (an unchanged poll writes
        its poll times at most every QUIET_WRITE), or None: the database knows."""
        feed = self._feed
        return feed.next_poll_at if feed and feed.url == self.settings.feed else None

    def _poll_leased(self, now: datetime, force: bool, backfill: int | None) -> PollReport:
        """Many workers: poll the feed only if this worker wins its poll lease."""
        feed = self.store.ensure_feed(self.settings.feed, now)
        report = PollReport(feed=self.settings.feed, result="waiting")
        got = self.store.claim_due_feeds(now, self.owner, POLL_LEASE, ids=[feed.id],
                                         force=force)
        if not got:
            return report  # not due, or another worker is polling it
        self._with_release = {}
        try:
            return self._poll_feed(got[0], now, backfill, report)
        finally:
            self._feed = None  # other workers write the row too: read it afresh each time
            if not self.store.release_feed(feed.id, self.owner, **self._with_release):
                log.warning("feed %s: the poll lease ran out during the poll",
                            self.settings.feed)

    def poll_claimed(self, feed: Feed, now: datetime, backfill: int | None, *,
                     res=None, error: errors.FetchError | None = None
                     ) -> tuple[PollReport, dict]:
        """A feed whose poll lease the caller holds (bot.fleet claimed it), fetched already
        (`res` or `error`) or not: handle it. The report, and what to write when the caller
        releases the lease."""
        self._with_release, self._leased = {}, True
        try:
            report = self._poll_feed(feed, now, backfill,
                                     PollReport(feed=self.settings.feed, result="waiting"),
                                     res=res, error=error)
            return report, self._with_release
        finally:
            self._feed, self._leased = None, False

    def _poll_feed(self, feed: Feed, now: datetime, backfill: int | None,
                   report: PollReport, *, res=None,
                   error: errors.FetchError | None = None) -> PollReport:
        if res is None and error is None:
            try:
                res = fetch(feed, self.session, self.settings.feed_deadline)
            except errors.FetchError as e:
                error = e
        if error is not None:
            return self._feed_failed(feed, now, error, report, retry_after=error.retry_after)

        updates: dict = {"last_poll_at": now, "last_ok_at": now, "error_count": 0,
                         "last_error": None,
                         "next_poll_at": self._next_poll(now, res.max_age, feed)}
        if res.permanent_redirect and res.permanent_redirect != feed.redirect_url:
            from bot.fetch import redact_url
            msg = (f"feed moved permanently to {redact_url(res.permanent_redirect)}; polling "
                   f"the new address from now on (update 'feed' in {self.settings.path})")
            log.warning("feed %s: %s", redact_url(feed.url), msg)
            report.warnings.append(msg)
            updates["redirect_url"] = res.permanent_redirect

        if res.unchanged:
            updates.update(last_result="unchanged", etag=res.etag or feed.etag,
                           last_modified=res.last_modified or feed.last_modified)
            # Only the times moved: written at most every QUIET_WRITE (a crash loses at most
            # that much "last checked" history; the next start simply polls at once).
            quiet = all(getattr(feed, k) == v for k, v in updates.items() if k not in _POLL_TIMES) \
                and feed.last_poll_at is not None \
                and timedelta(0) <= now - feed.last_poll_at < QUIET_WRITE
            if not quiet:
                self.store.update_feed(feed.id, **updates)
            elif self.store.many_workers or self._leased:  # others read when it is due here
                self._with_release = {"next_poll_at": updates["next_poll_at"]}
            self._feed = replace(feed, **updates) if not quiet else \
                replace(feed, next_poll_at=updates["next_poll_at"])
            log.info("feed %s: unchanged (%s)", feed.redirect_url or feed.url,
                     "304" if res.status == 304 else "same body hash")
            report.result = "unchanged"
            self.alerts.feed_ok(feed, now)
            return report

        with res.body:
            return self._changed(feed, res, now, backfill, report, updates)

    def _changed(self, feed: Feed, res, now: datetime, backfill: int | None,
                 report: PollReport, updates: dict) -> PollReport:
        url = res.final_url
        from bot.feed import ItemCache
        cache = ItemCache.unpack(self.store.load_item_cache(feed.id)
                                 if feed.baseline_done else None)
        try:
            items = FeedItems.read(res.body, res.final_url, scan=feed.baseline_done,
                                    known=cache)
        except errors.ParseError as e:
            return self._feed_failed(feed, now, e, report)
        if items.bozo_message:
            msg = f"feed is malformed but readable ({items.bozo_message}); using it"
            log.warning("feed %s: %s", url, msg)
            report.warnings.append(msg)

        # The validators go in with the episodes (one transaction): never before them; and
        # what the schedule learns from the feed (bot.cadence), so a 304 needs no parse.
        cad = Cadence.learn(items.channel.update, items.published(), now,
                            self.settings.min_poll_interval)
        updates.update(etag=res.etag, last_modified=res.last_modified, body_hash=res.body_hash,
                       title=items.channel.title or feed.title, **cad.columns(),
                       next_poll_at=self._next_poll(now, res.max_age, feed, cad))
        try:
            self._detect(feed, items, cache, now, backfill, report, updates)
        except Exception:
            # Another process may have recorded the same episodes at the same moment
            # (a unique key tripped): the next poll sees them as known. Nothing is lost:
            # the validators went down with the transaction, so the feed is read again.
            log.exception("feed %s: could not record episodes; will read the feed again", url)
            self.store.update_feed(feed.id, last_poll_at=now, last_result="error",
                                   last_error="could not record episodes (see log)",
                                   next_poll_at=now + FEED_RETRY_BASE)
            report.result, report.error = "error", "could not record episodes"
            return report
        from bot.websub import note_hub
        note_hub(self.store, feed.id, res, now)   # the hub the feed names, if any (WebSub)
        self.alerts.feed_ok(feed, now)
        return report

    def _next_poll(self, now: datetime, max_age: int | None, feed: Feed,
                   cad: Cadence | None = None) -> datetime:
        cad = cad or Cadence.from_row(feed.update_hint, feed.release_hours,
                                      min_interval=self.settings.min_poll_interval)
        return next_poll_at(now, self.settings.poll_interval, max_age, self.rng,
                            feed.next_poll_at, cad)

    def _feed_failed(self, feed: Feed, now: datetime, e: errors.FeedError, report: PollReport,
                     retry_after: float | None = None) -> PollReport:
        n = feed.error_count + 1
        delay = min(FEED_RETRY_BASE * 2 ** (n - 1), FEED_RETRY_MAX)
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        delay *= self.rng.uniform(0.9, 1.1)
        self.store.update_feed(feed.id, last_poll_at=now, last_result="error",
                               last_error=str(e), error_count=n, next_poll_at=now + delay)
        log.error("feed %s: %s (failure %d; next try in %ds)", feed.url, e.detail, n,
                  delay.total_seconds())
        report.result, report.error = "error", str(e)
        self.alerts.feed_failed(feed, now, e)
        return report

    def _detect(self, feed: Feed, items: FeedItems, cache: ItemCache, now: datetime,
                backfill: int | None, report: PollReport, updates: dict) -> None:
        """Record what is new and, in the same transaction, the feed's row (`updates`, with
        its validators and `last_result`): a crash leaves neither, and the feed is read
        again."""
        keysets = items.keys
        # An item whose bytes are as the last poll left them is that episode still (every key
        # it has was recorded then); the rest are matched on their identity keys.
        resolved: dict[int, int | None] = {i: None for i in range(len(keysets))
                                           if items.is_known(i)}
        first_run = not feed.baseline_done
        # A first run's feed has no episodes yet (they are recorded in the transaction that
        # ends the first run), so none of its keys is known: one cheap look settles that.
        known = self.store.match_keys(feed.id, {k for i, ks in enumerate(keysets)
                                                   if i not in resolved for k in ks}) \
            if not first_run or self.store.count_episodes(feed.id) else {}
        # Which items are new is decided on keys alone (a GUID rewrite is learned, not
        # announced); only those items need their Episode (a feedparser read, when scanned).
        learned: list[tuple[int, list[str]]] = []
        fresh_idx: list[int] = []
        seen_new: set[str] = set()
        for i, keys in enumerate(keysets):
            if i in resolved:
                continue
            if not keys:
                title = items.title(i)
                log.warning("feed %s: item %r has nothing to identify it by (no GUID, "
                            "enclosure, link, or title and date); skipped", feed.url, title)
                report.warnings.append(f"skipped an item with no GUID, enclosure, link or "
                                       f"title+date: {title!r}")
                continue
            hits = sorted({known[k] for k in keys if k in known})
            if hits:
                resolved[i] = hits[0]
                missing = [k for k in keys if k not in known]
                if missing:  # the feed changed this episode's GUID, URL or title
                    learned.append((hits[0], missing))
                    known.update(dict.fromkeys(missing, hits[0]))
                continue
            if keys & seen_new:
                log.warning("feed %s: item %r repeats another new item's identity; "
                            "treated as the same episode", feed.url, items.title(i))
                continue
            seen_new |= keys
            fresh_idx.append(i)
        episodes = items.episodes(fresh_idx)
        fresh: list[tuple[Episode, frozenset[str], int]] = [
            (episodes[i], keysets[i], i) for i in fresh_idx]

        def sample() -> tuple[Episode, ...]:
            """Where boilerplate is looked for: every item of a full parse; else the new
            items and the newest episodes already recorded (as the feed had them then)."""
            if items.parsed is not None:
                return items.parsed.episodes
            recent = self.store.recent_episodes(feed.id, BOILERPLATE_SAMPLE)
            return tuple(episodes.values()) + tuple(episode_from_data(r) for r in recent)

        with self.store.tx() as c:
            if learned:
                self.store.add_episode_keys(c, feed.id, learned)
            for eid, missing in learned:
                log.info("episode %d: learned new identity %s", eid,
                         ", ".join(k.split(":", 1)[0] for k in missing))

            # Oldest first, so announcements read in order and ids follow time.
            fresh.sort(key=lambda t: (t[0].published or now))
            future = [t for t in fresh if t[0].published and t[0].published > now]
            current = [t for t in fresh if not (t[0].published and t[0].published > now)]

            found: list[list[str]] = []

            def boilerplate() -> list[str]:
                """Paragraphs repeated across the feed (sponsor reads...), computed once
                over the newest items (all of them when the feed was parsed in full)."""
                if not found:
                    from bot.compose import find_boilerplate
                    found.append(sorted(find_boilerplate(sample())))
                return found[0]

            chosen: list = []
            if first_run:
                n = self.settings.first_run_backfill if backfill is None else backfill
                chosen = current[len(current) - n:] if n > 0 else []
                known_before = current[:len(current) - len(chosen)]
                plan = [(t, EpisodeStatus.BASELINE) for t in known_before] + \
                    [(t, EpisodeStatus.ANNOUNCED) for t in chosen]
            elif len(current) > self.settings.max_new_per_poll:
                plan = [(t, EpisodeStatus.HELD) for t in current]
            else:
                plan = [(t, EpisodeStatus.ANNOUNCED) for t in current]
            plan += [(t, EpisodeStatus.SCHEDULED) for t in future]
            # every new episode in one INSERT and their keys in one more, ids in plan order
            rows = []
            for (ep, keys, _), status in plan:
                data = episode_to_data(ep, items.channel.language, items.channel.image)
                if status != EpisodeStatus.BASELINE:
                    data["boilerplate"] = boilerplate()
                rows.append(dict(title=ep.title, guid=ep.guid, link=ep.link,
                                 published_at=ep.published, status=status.value, data=data,
                                 keys=keys))
            ids = self.store.add_episodes(c, feed.id, rows, now)
            for ((ep, _, i), status), eid in zip(plan, ids, strict=True):
                resolved[i] = eid
                if status == EpisodeStatus.BASELINE:
                    report.baseline += 1
                elif status == EpisodeStatus.ANNOUNCED:
                    self._enqueue_episode(c, eid, now)
                    report.announced.append(eid)
                    log.info("episode %d %r: %s", eid, ep.title, "announced (backfill)"
                             if first_run else "new, announcement enqueued")
                elif status == EpisodeStatus.HELD:
                    report.held.append(eid)
                    log.warning("episode %d %r: held (flood guard: %d new in one poll > "
                                "max_new_per_poll %d); `crier release` announces it",
                                eid, ep.title, len(current), self.settings.max_new_per_poll)
                else:
                    report.scheduled.append(eid)
                    log.info("episode %d %r: dated %s, waits until then", eid, ep.title,
                             ep.published.isoformat())
            if first_run:
                log.info("feed %s: first run, %d episodes recorded as already known%s",
                         feed.url, report.baseline,
                         f", newest {len(chosen)} announced" if chosen else "")
            self._remember_items(c, feed.id, items, cache, resolved)
            if first_run:
                report.result = "baseline"
            elif report.announced or report.held or report.scheduled:
                report.result = "new"
            else:
                report.result = "nothing-new"
            c.execute(self._feeds().update().where(self._feeds().c.id == feed.id).values(
                **updates, last_result=report.result,
                **({"baseline_done": True} if first_run else {})))
        self.alerts.held(report.held)
        if not report.announced:
            log.info("feed %s: %s", feed.url, report.result)

    def _remember_items(self, c, feed_id: int, items: FeedItems, cache: ItemCache,
                        resolved: dict[int, int | None]) -> None:
        """Keep the recorded items' digests for the next poll (see `ItemCache`)."""
        nxt = items.next_cache(sorted(resolved), cache)
        if not len(nxt) and not cache.blob:
            return  # nothing learned (a small feed's first run), nothing to forget
        new = nxt.pack()
        if new != cache.blob:
            self.store.save_item_cache(c, feed_id, new)

    @staticmethod
    def _feeds():
        from bot.store import feeds
        return feeds

    def _enqueue_episode(self, c, episode_id: int, now: datetime) -> None:
        from bot.store import episodes
        targets = [(a.name, a.platform, DeliveryStatus.PENDING.value)
                   for a in self.settings.posting_accounts]
        self.store.enqueue(c, kind="announcement", dedupe_key=f"episode:{episode_id}",
                           episode_id=episode_id, targets=targets, now=now, priority=10)
        c.execute(episodes.update().where(episodes.c.id == episode_id).values(
            status=EpisodeStatus.ANNOUNCED.value, announced_at=now))

    def release(self, episode_ids: Iterable[int] | None = None) -> list[int]:
        """Announce held episodes (all of them, or the given ids)."""
        now = self.clock()
        held = self.store.episodes_with_status(EpisodeStatus.HELD.value)
        wanted = set(episode_ids) if episode_ids is not None else None
        if wanted is not None:
            unknown = wanted - {e.id for e in held}
            if unknown:
                raise errors.CrierError(
                    f"not held: episode {', '.join(map(str, sorted(unknown)))} "
                    "(see `crier status` for held episodes)")
        done = []
        with self.store.tx() as c:
            for e in held:
                if wanted is None or e.id in wanted:
                    self._enqueue_episode(c, e.id, now)
                    done.append(e.id)
                    log.info("episode %d %r: released by the host", e.id, e.title)
        return done

    def release_scheduled(self) -> list[int]:
        """Future-dated episodes whose date has come are announced now."""
        now = self.clock()
        due = self.store.episodes_with_status(EpisodeStatus.SCHEDULED.value,
                                              published_by=now)  # the due ones only
        released = []
        if due:
            from bot.store import episodes
            with self.store.tx() as c:
                for e in due:
                    # taken from `scheduled` first: another worker releasing it at the same
                    # moment waits for this row, then finds it announced
                    if not c.execute(episodes.update().where(
                            episodes.c.id == e.id,
                            episodes.c.status == EpisodeStatus.SCHEDULED.value).values(
                            status=EpisodeStatus.ANNOUNCED.value, announced_at=now)).rowcount:
                        continue
                    self._enqueue_episode(c, e.id, now)
                    released.append(e.id)
                    log.info("episode %d %r: its date has come, announcement enqueued",
                             e.id, e.title)
        return released
