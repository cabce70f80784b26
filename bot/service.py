"""Orchestration: poll the feed, decide what is new, enqueue posts, dispatch deliveries.

The only module that combines adapters (fetch, store, platforms) with the pure core (feed,
compose, textlen). Clock, HTTP session, random source and publishers are injected.

Guarantees kept here:
- an episode's row, its identity keys and its deliveries are written in one transaction, and
  the feed's validators (ETag, body hash) only after it commits: a crash re-reads the feed;
- a delivery is claimed (pending → sending) before the network call; the outcome is recorded
  by the claim's owner only; a delivery found in `sending` after a crash is checked on the
  platform before it is sent again (and Mastodon gets the same Idempotency-Key);
- every failure is recorded on its row with the platform's message; nothing is dropped.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.artwork import ArtworkPending, ArtworkPreparer
from bot.config import Account, Settings
from bot.models import (
    DeliveryStatus,
    Episode,
    EpisodeStatus,
    Media,
    ParsedFeed,
    Person,
    Post,
    Preview,
    Published,
    Rules,
)
from bot.platforms.base import Publisher
from bot.store import Store

if TYPE_CHECKING:
    from bot.feed import ItemCache

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

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
# Artwork that fails to download for a passing reason (timeout, 5xx, 429) is tried again for
# this long after the post was queued; then the post goes out without it, saying so.
ARTWORK_PATIENCE = timedelta(minutes=15)
# Feed artwork is prepared by a small thread pool (bot.artwork); one dispatch waits for it at
# most this long in all (real seconds), then sends what is ready and looks again this much later.
ARTWORK_WAIT = 2.0
ARTWORK_RECHECK = timedelta(seconds=5)
FEED_RETRY_BASE = timedelta(minutes=1)
FEED_RETRY_MAX = timedelta(hours=6)
WORKER_LOCK = "worker"
# An unchanged poll that changes nothing but the poll times is written at most this often.
QUIET_WRITE = timedelta(minutes=5)
_POLL_TIMES = frozenset({"last_poll_at", "last_ok_at", "next_poll_at"})
# A changed feed read by the pre-scan: boilerplate (paragraphs repeated across items) is found
# in the new items and this many of the newest episodes already recorded (their show notes as
# stored; a sponsor read or "Support the show" repeats in the recent ones). Reading them from
# the feed again would cost feedparser 1-3 ms per item.
BOILERPLATE_SAMPLE = 12


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- reports ------------------------------------------------------------------------------
@dataclass
class PollReport:
    feed: str
    result: str                         # new | nothing-new | unchanged | baseline | error | waiting
    announced: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    scheduled: list[int] = field(default_factory=list)
    baseline: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Outcome:
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


# -- episodes as JSON ---------------------------------------------------------------------
def episode_to_data(ep: Episode, language: str | None = None,
                    show_image: str | None = None) -> dict:
    d = asdict(ep)
    d["published"] = ep.published.isoformat() if ep.published else None
    d["persons"] = [asdict(p) for p in ep.persons]
    d["language"] = language
    d["show_image"] = show_image
    return d


def episode_from_data(d: dict) -> Episode:
    d = dict(d)
    for extra in ("show_image", "boilerplate"):  # (language is an Episode field)
        d.pop(extra, None)
    pub = d.get("published")
    d["published"] = datetime.fromisoformat(pub) if pub else None
    d["persons"] = tuple(Person(**p) for p in d.get("persons") or ())
    known = Episode.__dataclass_fields__
    return Episode(**{k: v for k, v in d.items() if k in known})


# -- a changed feed, read as little as needed ---------------------------------------------
class _FeedItems:
    """A changed feed as `Service._detect` needs it: every item's identity keys in document
    order, the channel's fields, and Episodes on demand: from a full parse, or, when the
    pre-scan could read the feed, from feedparser on just the items asked for. `digests` are
    the items' cache digests (None: not cacheable), when a scan gave them."""

    def __init__(self, body, url: str | None, keys: tuple[frozenset[str], ...],
                 channel: ParsedFeed, *, parsed: ParsedFeed | None = None, scan=None,
                 digests: tuple[str | None, ...] = (), scanned=None):
        self.body, self.url, self.keys, self.channel = body, url, keys, channel
        self.parsed, self.scan = parsed, scan
        self.digests = digests or (None,) * len(keys)
        self._scanned = scanned if scanned is not None else scan  # FeedScan of the digests
        self._sample: tuple[Episode, ...] = parsed.episodes if parsed else ()

    @classmethod
    def read(cls, body, url: str | None, *, scan: bool,
             known: ItemCache | None = None) -> _FeedItems:
        """`body` is bytes or a `bot.fetch.Body`. With `scan`, the pre-scan (helped by the
        `known` items of the last poll) reads the items; without it (the first run needs
        every episode) the feed is parsed in full, and scanned too for the item digests.
        Raises ParseError when the feed is unreadable (as parse_feed does)."""
        from bot.feed import feed_identity_keys, parse_feed, scan_feed
        pre = scan_feed(body, url=url, known=known) if scan else None
        if pre is not None:
            return cls(body, url, pre.keys, pre.channel, scan=pre, digests=pre.digests)
        data = body if isinstance(body, bytes) else bytes(body)
        parsed = parse_feed(data, url=url)
        keys = feed_identity_keys(parsed)
        digests, scanned = (), None
        if not scan:
            scanned = scan_feed(data, url=url)
            if scanned is not None and scanned.keys == keys:
                digests = scanned.digests
            else:
                scanned = None
        return cls(data, url, keys, parsed, parsed=parsed, digests=digests, scanned=scanned)

    def is_known(self, i: int) -> bool:
        """Item `i` is byte for byte one the last poll recorded (no keys needed)."""
        return self.scan is not None and self.scan.items[i].known

    def next_cache(self, recorded: Iterable[int], previous: ItemCache | None) -> ItemCache:
        from bot.feed import ItemCache, next_item_cache
        if self._scanned is None:
            return ItemCache()
        return next_item_cache(self._scanned, recorded, previous)

    @property
    def bozo_message(self) -> str | None:
        return (self.channel.bozo_message or "malformed feed") if self.channel.bozo else None

    def title(self, i: int) -> str:
        return self.parsed.episodes[i].title if self.parsed else self.scan.items[i].title

    def episodes(self, indices: list[int]) -> dict[int, Episode]:
        """The Episodes of these items (by index): from the full parse, or feedparser on just
        these items."""
        if self.parsed is not None or not indices:
            eps = self.parsed.episodes if self.parsed else ()
            return {i: eps[i] for i in indices}
        from bot.feed import parse_feed, parse_selected
        try:
            got = parse_selected(self.body, self.scan, indices, url=self.url).episodes
            return dict(zip(sorted(indices), got, strict=True))
        except Exception:  # never expected; the full parse is always right
            log.exception("feed %s: reading the new items alone failed; parsing in full",
                          self.url)
            data = self.body if isinstance(self.body, bytes) else bytes(self.body)
            self.parsed = parse_feed(data, url=self.url)
            return {i: self.parsed.episodes[i] for i in indices}


# -- the service --------------------------------------------------------------------------
class Service:
    def __init__(self, settings: Settings, store: Store, *,
                 publishers: dict[str, Publisher] | None = None, session=None,
                 clock: Clock = utcnow, rng: random.Random | None = None,
                 dry_run: bool = False, notifier=None):
        from bot.alerts import Alerts, notifier_for
        self.settings, self.store, self.clock = settings, store, clock
        self.notifier = notifier if notifier is not None else notifier_for(settings)
        self.alerts = Alerts(settings, store, self.notifier, clock)  # tells the host
        self.rng = rng or random.Random()
        self.dry_run = dry_run
        self._session = session
        self.publishers = publishers if publishers is not None else build_publishers(
            settings, dry_run=dry_run, session=session)
        self._rules: dict[str, Rules] = {}
        self._feed: dict | None = None  # the feed's row as of the last unchanged poll

    @property
    def queue(self) -> PromoQueue:
        """The host's promo queue."""
        return PromoQueue(self)

    @property
    def session(self):
        if self._session is None:
            from bot.fetch import new_session
            self._session = new_session()
        return self._session

    # -- polling --------------------------------------------------------------------------
    def poll(self, *, force: bool = False, backfill: int | None = None) -> PollReport:
        """Fetch the feed (if due), record what is new, enqueue announcements.

        Unchanged (304, or the same body hash): no parse at all. Changed, after the first
        run: a pre-scan reads every item's identity keys without feedparser, and feedparser
        reads only the items the database does not know (plus a sample of the newest for
        boilerplate); anything the scan cannot read exactly is parsed in full.
        """
        from bot.fetch import fetch_feed

        now = self.clock()
        feed = self._feed
        if feed is None or feed["url"] != self.settings.feed:
            feed = self.store.ensure_feed(self.settings.feed, now)
        self._feed = None  # kept again only after an unchanged poll (below)
        report = PollReport(feed=self.settings.feed, result="waiting")
        if not force and feed["next_poll_at"] and now < feed["next_poll_at"]:
            return report
        url = feed["redirect_url"] or feed["url"]
        try:
            res = fetch_feed(url, session=self.session, etag=feed["etag"],
                             last_modified=feed["last_modified"],
                             previous_hash=feed["body_hash"],
                             deadline=self.settings.feed_deadline)
        except errors.FetchError as e:
            return self._feed_failed(feed, now, e, report, retry_after=e.retry_after)

        updates: dict = {"last_poll_at": now, "last_ok_at": now, "error_count": 0,
                         "last_error": None,
                         "next_poll_at": self._next_poll(now, res.max_age)}
        if res.permanent_redirect and res.permanent_redirect != feed["redirect_url"]:
            from bot.fetch import redact_url
            msg = (f"feed moved permanently to {redact_url(res.permanent_redirect)}; polling "
                   f"the new address from now on (update 'feed' in {self.settings.path})")
            log.warning("feed %s: %s", redact_url(feed["url"]), msg)
            report.warnings.append(msg)
            updates["redirect_url"] = res.permanent_redirect

        if res.unchanged:
            updates.update(last_result="unchanged", etag=res.etag or feed["etag"],
                           last_modified=res.last_modified or feed["last_modified"])
            # Only the times moved: written at most every QUIET_WRITE (a crash loses at most
            # that much "last checked" history; the next start simply polls at once).
            quiet = all(feed[k] == v for k, v in updates.items() if k not in _POLL_TIMES) \
                and feed["last_poll_at"] is not None \
                and timedelta(0) <= now - feed["last_poll_at"] < QUIET_WRITE
            if not quiet:
                self.store.update_feed(feed["id"], **updates)
            self._feed = {**feed, **updates} if not quiet else \
                {**feed, "next_poll_at": updates["next_poll_at"]}
            log.info("feed %s: unchanged (%s)", url,
                     "304" if res.status == 304 else "same body hash")
            report.result = "unchanged"
            self.alerts.feed_ok(feed, now)
            return report

        with res.body:
            return self._changed(feed, res, now, backfill, report, updates)

    def _changed(self, feed: dict, res, now: datetime, backfill: int | None,
                 report: PollReport, updates: dict) -> PollReport:
        url = res.final_url
        from bot.feed import ItemCache
        cache = ItemCache.unpack(self.store.load_item_cache(feed["id"])
                                 if feed["baseline_done"] else None)
        try:
            items = _FeedItems.read(res.body, res.final_url, scan=bool(feed["baseline_done"]),
                                    known=cache)
        except errors.ParseError as e:
            return self._feed_failed(feed, now, e, report)
        if items.bozo_message:
            msg = f"feed is malformed but readable ({items.bozo_message}); using it"
            log.warning("feed %s: %s", url, msg)
            report.warnings.append(msg)

        try:
            self._detect(feed, items, cache, now, backfill, report)
        except Exception:
            # Another process may have recorded the same episodes at the same moment
            # (a unique key tripped): the next poll sees them as known. Nothing is lost:
            # the validators below are not saved, so the feed is read again.
            log.exception("feed %s: could not record episodes; will read the feed again", url)
            self.store.update_feed(feed["id"], last_poll_at=now, last_result="error",
                                   last_error="could not record episodes (see log)",
                                   next_poll_at=now + FEED_RETRY_BASE)
            report.result, report.error = "error", "could not record episodes"
            return report
        # Validators only after the episodes are safely recorded.
        updates.update(etag=res.etag, last_modified=res.last_modified, body_hash=res.body_hash,
                       title=items.channel.title or feed["title"], last_result=report.result)
        self.store.update_feed(feed["id"], **updates)
        self.alerts.feed_ok(feed, now)
        return report

    def _next_poll(self, now: datetime, max_age: int | None) -> datetime:
        interval = self.settings.poll_interval
        if max_age and max_age > interval:  # the server asks us to wait longer: honour it,
            interval = min(max_age, interval * 4)  # within reason
        return now + timedelta(seconds=interval * self.rng.uniform(0.9, 1.1))

    def _feed_failed(self, feed: dict, now: datetime, e: errors.FeedError, report: PollReport,
                     retry_after: float | None = None) -> PollReport:
        n = feed["error_count"] + 1
        delay = min(FEED_RETRY_BASE * 2 ** (n - 1), FEED_RETRY_MAX)
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        delay *= self.rng.uniform(0.9, 1.1)
        self.store.update_feed(feed["id"], last_poll_at=now, last_result="error",
                               last_error=str(e), error_count=n, next_poll_at=now + delay)
        log.error("feed %s: %s (failure %d; next try in %ds)", feed["url"], e.detail, n,
                  delay.total_seconds())
        report.result, report.error = "error", str(e)
        self.alerts.feed_failed(feed, now, e)
        return report

    def _detect(self, feed: dict, items: _FeedItems, cache: ItemCache, now: datetime,
                backfill: int | None, report: PollReport) -> None:
        keysets = items.keys
        # An item whose bytes are as the last poll left them is that episode still (every key
        # it has was recorded then); the rest are matched on their identity keys.
        resolved: dict[int, int | None] = {i: None for i in range(len(keysets))
                                           if items.is_known(i)}
        known = self.store.match_keys(feed["id"], {k for i, ks in enumerate(keysets)
                                                   if i not in resolved for k in ks})
        first_run = not feed["baseline_done"]
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
                            "enclosure, link, or title and date); skipped", feed["url"], title)
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
                            "treated as the same episode", feed["url"], items.title(i))
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
            recent = self.store.recent_episodes(feed["id"], BOILERPLATE_SAMPLE)
            return tuple(episodes.values()) + tuple(episode_from_data(r) for r in recent)

        with self.store.tx() as c:
            for eid, missing in learned:
                self.store.add_keys(c, feed["id"], eid, missing)
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

            def add(ep: Episode, keys, status: EpisodeStatus, i: int) -> int:
                data = episode_to_data(ep, items.channel.language, items.channel.image)
                if status != EpisodeStatus.BASELINE:
                    data["boilerplate"] = boilerplate()
                eid = resolved[i] = self.store.add_episode(
                    c, feed["id"], title=ep.title, guid=ep.guid, link=ep.link,
                    published_at=ep.published, status=status.value, now=now,
                    data=data, keys=keys)
                return eid

            if first_run:
                n = self.settings.first_run_backfill if backfill is None else backfill
                chosen = current[len(current) - n:] if n > 0 else []
                for ep, keys, i in current[:len(current) - len(chosen)]:
                    add(ep, keys, EpisodeStatus.BASELINE, i)
                    report.baseline += 1
                for ep, keys, i in chosen:
                    eid = add(ep, keys, EpisodeStatus.ANNOUNCED, i)
                    self._enqueue_episode(c, eid, now)
                    report.announced.append(eid)
                    log.info("episode %d %r: announced (backfill)", eid, ep.title)
                c.execute(self._feeds().update().where(self._feeds().c.id == feed["id"])
                          .values(baseline_done=True))
                log.info("feed %s: first run, %d episodes recorded as already known%s",
                         feed["url"], report.baseline,
                         f", newest {len(chosen)} announced" if chosen else "")
            elif len(current) > self.settings.max_new_per_poll:
                for ep, keys, i in current:
                    eid = add(ep, keys, EpisodeStatus.HELD, i)
                    report.held.append(eid)
                    log.warning("episode %d %r: held (flood guard: %d new in one poll > "
                                "max_new_per_poll %d); `crier release` announces it",
                                eid, ep.title, len(current), self.settings.max_new_per_poll)
            else:
                for ep, keys, i in current:
                    eid = add(ep, keys, EpisodeStatus.ANNOUNCED, i)
                    self._enqueue_episode(c, eid, now)
                    report.announced.append(eid)
                    log.info("episode %d %r: new, announcement enqueued", eid, ep.title)
            for ep, keys, i in future:
                eid = add(ep, keys, EpisodeStatus.SCHEDULED, i)
                report.scheduled.append(eid)
                log.info("episode %d %r: dated %s, waits until then", eid, ep.title,
                         ep.published.isoformat())
            self._remember_items(c, feed["id"], items, cache, resolved)
        self.alerts.held(report.held)
        if first_run:
            report.result = "baseline"
        elif report.announced or report.held or report.scheduled:
            report.result = "new"
        else:
            report.result = "nothing-new"
        if not report.announced:
            log.info("feed %s: %s", feed["url"], report.result)

    def _remember_items(self, c, feed_id: int, items: _FeedItems, cache: ItemCache,
                        resolved: dict[int, int | None]) -> None:
        """Keep the recorded items' digests for the next poll (see `ItemCache`)."""
        new = items.next_cache(sorted(resolved), cache).pack()
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
            unknown = wanted - {e["id"] for e in held}
            if unknown:
                raise errors.CrierError(
                    f"not held: episode {', '.join(map(str, sorted(unknown)))} "
                    "(see `crier status` for held episodes)")
        done = []
        with self.store.tx() as c:
            for e in held:
                if wanted is None or e["id"] in wanted:
                    self._enqueue_episode(c, e["id"], now)
                    done.append(e["id"])
                    log.info("episode %d %r: released by the host", e["id"], e["title"])
        return done

    def release_scheduled(self) -> list[int]:
        """Future-dated episodes whose date has come are announced now."""
        now = self.clock()
        due = [e for e in self.store.episodes_with_status(EpisodeStatus.SCHEDULED.value)
               if e["published_at"] and e["published_at"] <= now]
        if due:
            with self.store.tx() as c:
                for e in due:
                    self._enqueue_episode(c, e["id"], now)
                    log.info("episode %d %r: its date has come, announcement enqueued",
                             e["id"], e["title"])
        return [e["id"] for e in due]

    # -- composing ------------------------------------------------------------------------
    def rules_for(self, account: Account) -> Rules:
        if account.name not in self._rules:
            self._rules[account.name] = self.publishers[account.name].rules()
        return self._rules[account.name]

    def options_for(self, account: Account, boilerplate: Iterable[str] = ()):
        from bot.compose import ComposeOptions
        return ComposeOptions(
            template=account.template, template_name=f"accounts.{account.name}.template",
            hashtags=account.hashtags, people=self.settings.people, link=account.link,
            listen_link=self.settings.listen_link, utm=account.utm,
            link_policy=account.link_policy, ellipsis=account.ellipsis,
            alt_template=account.alt_template, boilerplate=frozenset(boilerplate),
            boilerplate_patterns=self.settings.boilerplate_patterns)

    def compose(self, account: Account, episode: Episode, *, rules: Rules | None = None,
                boilerplate: Iterable[str] = (), show_image: str | None = None):
        from bot.compose import compose_episode
        rules = rules or self.rules_for(account)
        return compose_episode(episode, show=self.settings.show, rules=rules,
                               options=self.options_for(account, boilerplate),
                               show_image=show_image)

    def preview(self, episode: Episode, *, boilerplate: Iterable[str] = (),
                show_image: str | None = None) -> list[Preview]:
        out = []
        for account in self.settings.posting_accounts:
            c = self.compose(account, episode, boilerplate=boilerplate, show_image=show_image)
            media = ()
            if account.media == "artwork" and c.image_url:
                media = (Media(source=c.image_url, alt=c.alt_text or ""),)
            out.append(Preview(account=account.name, platform=account.platform,
                               text=c.text, length=c.length, limit=c.limit, link=c.link,
                               truncated=c.truncated, media=media, trimmed=tuple(c.trimmed),
                               reply_text=c.reply_text))
        return out

    # -- dispatching ----------------------------------------------------------------------
    def dispatch(self, *, stop: Callable[[], bool] | None = None,
                 limit: int = 50, artwork_wait: float | None = None) -> list[Outcome]:
        """Send every due delivery once (each claimed first); record each outcome.
        `artwork_wait`: real seconds this pass may wait for feed artwork (ARTWORK_WAIT)."""
        import time
        self._artwork_until = time.monotonic() + (ARTWORK_WAIT if artwork_wait is None
                                                  else artwork_wait)
        now = self.clock()
        stale = self.store.recover_stale(now, SENDING_LEASE)
        for d in stale:
            log.warning("delivery %d: was interrupted while sending; will check the platform "
                        "before sending again", d)
        self.release_scheduled()
        self.queue.fire()
        outcomes = []
        blocked: dict[str, str] = {}
        for d in self.store.due_deliveries(now, limit=limit):
            if stop and stop():
                break
            if d["account"] in blocked:
                continue
            if d["kind"] == "promo" and (account := self._account(d["account"])):
                hold = self.queue.hold_for(d, account, self.clock())
                if hold is not None:  # spacing, quiet hours, an announcement first
                    self.store.update_delivery(d["id"], self.clock(), next_attempt_at=hold)
                    continue
            outcome = self._deliver(d, blocked)
            if outcome:
                outcomes.append(outcome)
        return outcomes

    def _account(self, name: str) -> Account | None:
        return next((a for a in self.settings.accounts if a.name == name), None)

    def _deliver(self, d: dict, blocked: dict[str, str]) -> Outcome | None:
        now = self.clock()
        did, name = d["id"], d["account"]
        account = self._account(name)
        publisher = self.publishers.get(name)
        if account is None or publisher is None:
            self.store.update_delivery(did, now, status=DeliveryStatus.HELD.value,
                                       last_error=f"account '{name}' is no longer in the "
                                                  "configuration")
            log.warning("delivery %d: held, account %r not configured", did, name)
            return Outcome(did, name, d["platform"], DeliveryStatus.HELD.value,
                           error="account not configured")

        if d["text"] is None:
            try:
                self._compose_delivery(d, account)
            except ArtworkPending as e:  # downloading off the dispatch path: look again soon
                at = now + ARTWORK_RECHECK
                self.store.update_delivery(did, now, next_attempt_at=at, last_error=str(e),
                                           error_kind="artwork")
                log.info("delivery %d to %s: %s", did, name, e)
                return Outcome(did, name, d["platform"], DeliveryStatus.PENDING.value,
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
                return Outcome(did, name, d["platform"], DeliveryStatus.FAILED.value,
                               error=str(e))
            d = self.store.delivery(did)

        token = uuid.uuid4().hex
        if not self.store.claim(did, token, now):
            return None  # another process took it
        post = _post_from_row(d)
        outcome = Outcome(did, name, d["platform"], "", text=d["text"], length=d["length"],
                          limit=d["limit"])

        if isinstance(publisher, _dry_run_type()):
            publisher.publish(post, d["idempotency_key"])
            self.store.finish(did, token, now, status=DeliveryStatus.DRY_RUN.value,
                              sent_at=now)
            log.info("delivery %d to %s: dry run, recorded not sent (%d/%d)", did, name,
                     d["length"] or 0, d["limit"] or 0)
            outcome.status = DeliveryStatus.DRY_RUN.value
            return outcome

        try:
            published = None
            if d["needs_check"] and d["kind"] not in ("boost", "community"):  # (a no-op again)
                published = publisher.find_existing(post, _since_first_attempt(d, now))
                if published:
                    log.info("delivery %d to %s: found already posted after an interrupted "
                             "attempt: %s", did, name, published.url)
            if published is None and d["kind"] in ("boost", "community"):
                target = d["payload"]["boost_of"]
                published = publisher.boost(target["url"], target["remote_id"],
                                            same_instance=target["same_instance"])
            elif published is None:
                published = publisher.publish(post, d["idempotency_key"])
        except errors.NotAllowedError as e:  # e.g. X's Free tier cannot repost
            self.store.finish(did, token, now, status=DeliveryStatus.SKIPPED.value,
                              last_error=str(e), error_kind="not allowed")
            log.warning("delivery %d to %s: skipped: %s", did, name, e)
            outcome.status, outcome.error = DeliveryStatus.SKIPPED.value, str(e)
            return outcome
        except errors.DuplicateError as e:
            published = None   # without an earlier ambiguous attempt, it is another post's text
            if d["needs_check"]:
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
        extra = {"payload": {**(d["payload"] or {}), "reply_id": published.reply_id,
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

    def _compose_delivery(self, d: dict, account: Account) -> None:
        """Write the delivery's final text (and media) before its first network call, so
        every retry sends exactly the same post."""
        if d["kind"] == "promo":
            return self._compose_promo_delivery(d, account)
        if d["kind"] == "boost":
            return self._compose_boost(d, account)
        if d["kind"] == "community":
            return self._compose_community(d, account)
        row = self.store.get_episode(d["episode_id"]) if d["episode_id"] else None
        if row is None:
            raise errors.CrierError(f"delivery {d['id']} has no episode or text to post")
        data = row["data"]
        episode = episode_from_data(data)
        rules = self.rules_for(account)
        composed = self.compose(account, episode, rules=rules,
                                boilerplate=data.get("boilerplate") or (),
                                show_image=data.get("show_image"))
        from bot.textlen import count
        length = count(composed.text, rules)
        if length > rules.limit:
            raise errors.CrierError(f"composed post is {length} characters, over the "
                                    f"{rules.limit} limit of {account.platform}")
        payload = {"language": _lang(data.get("language")), "visibility": account.visibility,
                   "truncated": composed.truncated, "link": composed.link,
                   "trimmed": list(composed.trimmed), "reply_text": composed.reply_text,
                   "media": [], "notes": []}
        if account.media == "artwork" and composed.image_url:
            try:
                img = self._feed_artwork(composed.image_url, rules)
                payload["media"] = [{"source": img.path, "alt": composed.alt_text or "",
                                     "mime_type": img.mime_type}]
            except ArtworkPending:
                raise
            except errors.CrierError as e:
                if getattr(e, "transient", False) and \
                        self.clock() - d["created_at"] < ARTWORK_PATIENCE:
                    raise errors.TransientError(
                        f"the artwork could not be downloaded yet ({e}); trying again before "
                        "posting", platform=account.platform, account=account.name) from None
                note = f"posted without artwork: {e}"
                log.warning("delivery %d to %s: %s", d["id"], account.name, note)
                payload["notes"].append(note)
        self.store.set_delivery_text(d["id"], text=composed.text, payload=payload,
                                     length=length, limit=rules.limit, now=self.clock())

    def _enqueue_boosts(self, c, d: dict, account: Account, now: datetime) -> None:
        """After an official post: one boost per amplifier of its account, after the delay
        (in the transaction that records the post, so a crash loses none)."""
        if d["kind"] in ("boost", "community"):
            return
        amps = self.settings.amplifiers_of(account.name)
        for amp in amps:
            self.store.enqueue(c, kind="boost", dedupe_key=f"boost:{d['id']}:{amp.name}",
                               episode_id=d["episode_id"], now=now, priority=5,
                               targets=[(amp.name, amp.platform,
                                         DeliveryStatus.PENDING.value)],
                               due_at=now + timedelta(seconds=amp.amplify_delay))

    def _compose_community(self, d: dict, account: Account) -> None:
        post_id = int(d["dedupe_key"].split(":")[1])
        with self.store.tx() as c:
            row = self.store.community_post(c, post_id)
        if row is None:
            raise errors.CrierError(f"delivery {d['id']}: community post {post_id} is gone")
        self._set_boost(d, row["url"], row["status_id"], row["author"], same_instance=True)

    def _compose_boost(self, d: dict, account: Account) -> None:
        """An amplifier's boost of an official post (found by the boost's dedupe key)."""
        official_id = int(d["dedupe_key"].split(":")[1])
        official = self.store.delivery(official_id)
        if official is None or not (official["remote_url"] or official["remote_id"]):
            raise errors.CrierError(f"delivery {d['id']}: the post to boost is gone")
        source = self._account(official["account"])
        same = bool(source and source.instance and account.instance and
                    source.instance.rstrip("/").lower() == account.instance.rstrip("/").lower())
        self._set_boost(d, official["remote_url"], official["remote_id"], official["account"],
                        same_instance=same or account.platform == "x")

    def _set_boost(self, d: dict, url: str, remote_id: str | None, author: str, *,
                   same_instance: bool) -> None:
        """A boost's "text" says what it boosts; its payload, the post to boost."""
        payload = {"boost_of": {"url": url, "remote_id": remote_id, "account": author,
                                "same_instance": same_instance}, "media": [], "notes": []}
        self.store.set_delivery_text(d["id"], text=f"boost of {url}", payload=payload,
                                     length=0, limit=0, now=self.clock())

    def _compose_promo_delivery(self, d: dict, account: Account) -> None:
        promo = self.store.promo(d["promo_id"]) if d["promo_id"] else None
        if promo is None:
            raise errors.CrierError(f"delivery {d['id']}: its queued post is gone")
        row = self.store.get_episode(d["episode_id"]) if d["episode_id"] else None
        p = self.queue._compose(account, promo, row)
        if p.length > p.limit:
            raise errors.CrierError(f"the queued post is {p.length} characters for "
                                    f"{account.name}, over the {p.limit} limit")
        rules = self.rules_for(account)
        payload = {"language": _lang(row["data"].get("language") if row else None),
                   "visibility": account.visibility, "truncated": p.shortened, "link": None,
                   "trimmed": [], "reply_text": None, "media": [], "notes": []}
        if p.image:
            img = self._prepare_image(p.image, rules)
            payload["media"] = [{"source": img.path, "alt": p.alt or "",
                                 "mime_type": img.mime_type}]
        self.store.set_delivery_text(d["id"], text=p.text, payload=payload, length=p.length,
                                     limit=p.limit, now=self.clock())

    def _prepare_image(self, url: str, rules: Rules):
        """An image the host named (`crier queue add --image`): a local file is fine."""
        from bot.images import prepare_artwork
        return prepare_artwork(url, cache_dir=self.settings.media_dir, session=self.session,
                               max_bytes=rules.image_max_bytes, trusted=True,
                               deadline=self.settings.image_deadline)

    @property
    def artwork(self) -> ArtworkPreparer:
        """Prepares the artwork a feed names, off the dispatch path (bot.artwork)."""
        if getattr(self, "_artwork", None) is None:
            self._artwork = ArtworkPreparer(
                cache_dir=self.settings.media_dir, deadline=self.settings.image_deadline,
                allow_private=self.settings.allow_private_networks)
        return self._artwork

    def _feed_artwork(self, url: str, rules: Rules):
        import time
        wait = getattr(self, "_artwork_until", 0.0) - time.monotonic()
        return self.artwork.get(url, max_bytes=rules.image_max_bytes, wait=wait)

    def _retry_later(self, d: dict, e: errors.PublishError, now: datetime, *,
                     token: str | None = None, outcome: Outcome | None = None,
                     at: datetime | None = None, kind: str = "transient",
                     check: bool = False, count_attempt: bool = True,
                     claimed: bool = True) -> Outcome:
        attempts = d["attempts"] + (1 if claimed else 0)
        if count_attempt and attempts >= self.settings.max_attempts:
            return self._fail(d, token, errors.PublishError(
                f"gave up after {attempts} attempts; last error: {e.detail}",
                platform=d["platform"], account=d["account"]), now,
                outcome or Outcome(d["id"], d["account"], d["platform"], ""))
        if at is None:
            delay = min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)
            at = now + delay * self.rng.uniform(0.8, 1.2)
        values = dict(status=DeliveryStatus.PENDING.value, next_attempt_at=at,
                      last_error=str(e), error_kind=kind,
                      needs_check=bool(check or d["needs_check"]))
        if not count_attempt and claimed:
            values["attempts"] = d["attempts"]  # rate limits and auth stops don't use up tries
        if claimed:
            self.store.finish(d["id"], token, now, **values)
        else:
            self.store.update_delivery(d["id"], now, **values)
        log.warning("delivery %d to %s: %s; retry at %s", d["id"], d["account"], e,
                    at.isoformat(timespec="seconds"))
        o = outcome or Outcome(d["id"], d["account"], d["platform"], "")
        o.status, o.error, o.next_attempt_at = DeliveryStatus.PENDING.value, str(e), at
        return o

    def _fail(self, d: dict, token: str | None, e: errors.CrierError, now: datetime,
              outcome: Outcome) -> Outcome:
        values = dict(status=DeliveryStatus.FAILED.value, last_error=str(e),
                      error_kind="rejected")
        recorded = True
        if token:
            recorded = self.store.finish(d["id"], token, now, **values)
        else:
            self.store.update_delivery(d["id"], now, **values)
        log.error("delivery %d to %s: failed: %s", d["id"], d["account"], e)
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
            self.store.update_delivery(d["id"], now, next_attempt_at=now)

    # -- status ---------------------------------------------------------------------------
    def status(self) -> dict:
        from bot.store import deliveries
        feeds = self.store.all_feeds()
        held = self.store.episodes_with_status(EpisodeStatus.HELD.value)
        scheduled = self.store.episodes_with_status(EpisodeStatus.SCHEDULED.value)
        open_ = self.store.deliveries_where(deliveries.c.status.in_(
            [DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value,
             DeliveryStatus.HELD.value]))
        failed = self.store.deliveries_where(deliveries.c.status.in_(
            [DeliveryStatus.FAILED.value, DeliveryStatus.SKIPPED.value]), limit=50,
            newest_first=True)
        recent = self.store.deliveries_where(deliveries.c.status.in_(
            [DeliveryStatus.SENT.value, DeliveryStatus.DRY_RUN.value]), limit=10,
            newest_first=True)
        titles = {}

        def title(eid):
            if eid and eid not in titles:
                e = self.store.get_episode(eid)
                titles[eid] = e["title"] if e else None
            return titles.get(eid)

        from bot.outbox import describe
        now = self.clock()

        def drow(d):
            return {**describe(d, now), "id": d["id"], "account": d["account"],
                    "platform": d["platform"],
                    "status": d["status"], "kind": d["kind"], "promo": d["promo_id"],
                    "episode": title(d["episode_id"]),
                    "attempts": d["attempts"], "next_attempt_at": _iso(d["next_attempt_at"]),
                    "last_error": d["last_error"], "url": d["remote_url"],
                    "sent_at": _iso(d["sent_at"])}

        return {
            "feeds": [{"url": f["url"], "title": f["title"], "redirect_url": f["redirect_url"],
                       "last_poll_at": _iso(f["last_poll_at"]), "last_result": f["last_result"],
                       "last_error": f["last_error"], "error_count": f["error_count"],
                       "next_poll_at": _iso(f["next_poll_at"]),
                       "episodes": self.store.count_episodes(f["id"])} for f in feeds],
            "held_episodes": [{"id": e["id"], "title": e["title"],
                               "published_at": _iso(e["published_at"])} for e in held],
            "scheduled_episodes": [{"id": e["id"], "title": e["title"],
                                    "published_at": _iso(e["published_at"])}
                                   for e in scheduled],
            "pending": [drow(d) for d in open_],
            "failed": [drow(d) for d in failed],
            "recent": [drow(d) for d in recent],
            "queue": self.queue.list(),
        }

    # -- spreading an episode -------------------------------------------------------------
    def official_posts(self, episode_id: int) -> list:
        """The episode's announcements that went out, as `bot.share.OfficialPost`s."""
        from bot.share import OfficialPost
        from bot.store import deliveries, posts
        rows = self.store.deliveries_where(
            posts.c.episode_id == episode_id, posts.c.kind == "announcement",
            deliveries.c.status == DeliveryStatus.SENT.value)
        return [OfficialPost(d["account"], d["platform"], d["remote_url"])
                for d in rows if d["remote_url"]]

    def share(self, ref: str | None = None, *, instance: str | None = None) -> dict:
        """The share kit of an episode ('latest' by default): listener texts per network
        with share links, and the official posts to boost."""
        from bot.share import share_kit
        row = self.queue.episode(ref or "latest")
        episode = episode_from_data(row["data"])
        official = self.settings.posting_accounts
        masto = next((a for a in official if a.platform == "mastodon"), None)
        base = masto or (official[0] if official else None)
        options = self.options_for(base, row["data"].get("boilerplate") or ()) if base else None
        rules = {"mastodon": self.rules_for(masto)} if masto else {}
        if instance is None and masto is not None:
            instance = masto.instance
        kit = share_kit(episode, show=self.settings.show, options=options, rules=rules,
                        instance=instance, posts=self.official_posts(row["id"]))
        return {"id": row["id"], **kit}

    def social_interact(self, ref: str | None = None) -> dict:
        from bot.share import social_interact, social_interact_xml
        row = self.queue.episode(ref or "latest")
        tags = social_interact(self.official_posts(row["id"]))
        return {"id": row["id"], "episode": row["title"], "tags": tags,
                "xml": social_interact_xml(tags)}

    # -- the community --------------------------------------------------------------------
    def community_scan(self) -> list[dict]:
        """Propose the community's new public posts (hashtags, mentions) for a boost; an
        allow-listed author's post is approved (and its boost queued) at once."""
        from bot.community import candidates
        st = self.settings
        if not st.community:
            raise errors.CrierError("the community watch is off ([community] enabled = true "
                                    f"in {st.path})")
        name = st.community_account
        publisher = self.publishers.get(name)
        if publisher is None or not hasattr(publisher, "watch"):
            log.info("community: account %r cannot be watched (dry run?)", name)
            return []
        seen = publisher.watch(list(st.community_hashtags), mentions=st.community_mentions)
        found = candidates(seen["found"], me_id=seen["me"], blocked=seen["blocked"],
                           muted=seen["muted"])
        now = self.clock()
        new = []
        with self.store.tx() as c:
            for cand in found:
                allowed = cand.author.lower() in st.community_allow
                pid = self.store.add_community(c, name, cand, now,
                                               "approved" if allowed else "proposed")
                if pid is None:
                    continue
                if allowed:
                    self._enqueue_community_boost(c, pid, name, now)
                new.append({"id": pid, "author": cand.author, "via": cand.via,
                            "approved": allowed})
        if new:
            log.info("community: %d new post(s) proposed", len(new))
        return new

    def community_list(self, *, all_: bool = False) -> list[dict]:
        rows = self.store.community(statuses=None if all_ else ("proposed",))
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                for r in rows]

    def community_decide(self, post_id: int, approve: bool) -> dict:
        """Approve (the official account boosts it, once) or reject a proposed post."""
        now = self.clock()
        with self.store.tx() as c:
            row = self.store.community_post(c, post_id)
            if row is None:
                raise errors.CrierError(f"no community post {post_id} (see `crier community "
                                        "list`)")
            if row["status"] != "proposed":
                raise errors.CrierError(f"community post {post_id} was already "
                                        f"{row['status']}")
            self.store.decide_community(c, post_id, "approved" if approve else "rejected",
                                        now)
            if approve:
                self._enqueue_community_boost(c, post_id, row["account"], now)
        return {**row, "status": "approved" if approve else "rejected"}

    def _enqueue_community_boost(self, c, post_id: int, account: str, now: datetime) -> None:
        a = self._account(account)
        self.store.enqueue(c, kind="community", dedupe_key=f"community:{post_id}",
                           episode_id=None, now=now, priority=1,
                           targets=[(account, a.platform if a else "mastodon",
                                     DeliveryStatus.PENDING.value)])

    # -- credentials ----------------------------------------------------------------------
    def check(self) -> list[dict]:
        rows = []
        for a in self.settings.accounts:
            p = self.publishers[a.name]
            try:
                who = p.verify()
                rules = p.rules()
                rows.append({"account": a.name, "platform": a.platform, "ok": True,
                             "dry_run": a.dry_run or self.dry_run, "who": who,
                             "limit": rules.limit, "error": None})
            except errors.CrierError as e:
                rows.append({"account": a.name, "platform": a.platform, "ok": False,
                             "dry_run": a.dry_run or self.dry_run, "who": None,
                             "limit": None, "error": str(e)})
        return rows

    # -- worker lock ----------------------------------------------------------------------
    def acquire_worker_lock(self, owner: str, ttl: timedelta = timedelta(seconds=90)) -> bool:
        """The database's worker lease. A holder that died on this machine (its pid is
        gone: a crash, a kill -9) does not make a restart wait for its lease to run out."""
        now = self.clock()
        if self.store.acquire_lock(WORKER_LOCK, owner, now, ttl):
            return True
        holder = self.store.lock_holder(WORKER_LOCK)
        if holder and _dead_here(holder["owner"]) and \
                self.store.take_lock(WORKER_LOCK, holder["owner"], owner, now, ttl):
            log.warning("worker lock: %s is no longer running; taking over", holder["owner"])
            return True
        return False

    def release_worker_lock(self, owner: str) -> None:
        self.store.release_lock(WORKER_LOCK, owner)


def _dead_here(owner: str) -> bool:
    """Is `owner` ("host:pid" or "host:pid:once") a process of this host that has exited?"""
    import os
    import socket
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def _lang(language: str | None) -> str | None:
    """Feeds say "en-us"; platforms take ISO 639-1 ("en")."""
    if not language:
        return None
    code = language.strip().split("-")[0].split("_")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


def _since_first_attempt(d: dict, now: datetime) -> datetime:
    """Where a look for this delivery's own post starts (see FIND_EXISTING_SKEW)."""
    return (d["first_attempt_at"] or now) - FIND_EXISTING_SKEW


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") if dt else None


def _post_from_row(d: dict) -> Post:
    p = d["payload"] or {}
    media = tuple(Media(**m) for m in p.get("media") or ())
    return Post(text=d["text"], language=p.get("language"),
                visibility=p.get("visibility", "public"), media=media,
                spoiler=p.get("spoiler"), reply_text=p.get("reply_text"))


def _dry_run_type():
    from bot.platforms.dryrun import DryRunPublisher
    return DryRunPublisher


def build_publishers(settings: Settings, *, dry_run: bool = False,
                     session=None) -> dict[str, Publisher]:
    """One publisher per account; dry-run accounts (or --dry-run) record instead of posting."""
    from bot.platforms.base import quiet_leaky_loggers
    quiet_leaky_loggers()
    from bot.platforms.dryrun import DryRunPublisher
    out: dict[str, Publisher] = {}
    for a in settings.accounts:
        if a.dry_run or dry_run:
            out[a.name] = DryRunPublisher(a.name, a.platform, max_characters=a.max_characters,
                                          reason=a.dry_run_reason or "--dry-run")
        elif getattr(a, "missing_secrets", ()):  # cannot post: says so, never fakes a post
            from bot.platforms.dryrun import UnconfiguredPublisher
            out[a.name] = UnconfiguredPublisher(a.name, a.platform, a.missing_secrets,
                                                max_characters=a.max_characters)
        elif a.platform == "mastodon":
            from bot.platforms.mastodon import MastodonPublisher
            out[a.name] = MastodonPublisher(a.name, a.instance,
                                            a.secrets["access_token"].reveal(),
                                            timeout=a.timeout, visibility=a.visibility)
        else:
            from bot.platforms.x import XPublisher
            s = a.secrets
            out[a.name] = XPublisher(a.name, consumer_key=s["consumer_key"].reveal(),
                                     consumer_secret=s["consumer_secret"].reveal(),
                                     access_token=s["access_token"].reveal(),
                                     access_token_secret=s["access_token_secret"].reveal(),
                                     api_base=a.api_base,
                                     timeout=a.timeout)
    return out


__all__ = ["Service", "PollReport", "Outcome", "build_publishers", "utcnow",
           "episode_to_data", "episode_from_data", "Published"]


# -- the promo queue ------------------------------------------------------------------------
PROMO_KINDS = ("once", "recurring", "evergreen")
# Evergreen promotes the back catalogue: an episode newer than this (or announced within it)
# is still being announced, not "from the archive".
EVERGREEN_MIN_AGE = timedelta(days=30)
PICKS = ("oldest", "random")


@dataclass
class PromoPreview:
    """A queued post composed for one account, as it would go out."""
    account: str
    platform: str
    text: str
    length: int
    limit: int
    shortened: bool = False
    image: str | None = None
    alt: str | None = None
    alt_length: int | None = None
    alt_limit: int | None = None
    episode: str | None = None

    @property
    def fits(self) -> bool:
        return self.length <= self.limit and (self.alt_length or 0) <= (self.alt_limit or 0)


class PromoQueue:
    """The host's queue: add (with a preview per account), list, show, edit, cancel, pause,
    resume; `fire` turns due promos into outbox posts, exactly once per occurrence (the post's
    dedupe key is the promo and the occurrence, written in the same transaction that moves
    the promo on). Spacing and quiet hours apply when the deliveries go out (`hold_for`)."""

    def __init__(self, svc: Service):
        self.svc, self.store, self.settings = svc, svc.store, svc.settings

    # -- helpers --------------------------------------------------------------------------
    @property
    def tz(self):
        return self.settings.tz

    def rule(self, row: dict):
        """The promo's recurrence rule (None for a one-off), with its end."""
        from bot.schedule import parse_rule
        if not row["rule"]:
            return None
        rule = parse_rule(row["rule"], tz=self.tz, start=row["created_at"])
        return rule.with_until(row["until"]) if row["until"] else rule

    def accounts(self, names: Iterable[str] | None) -> list[Account]:
        names = [n for n in (names or ()) if n]
        if not names:
            if not self.settings.posting_accounts:
                raise errors.CrierError("no accounts are configured to post to")
            return list(self.settings.posting_accounts)
        known = {a.name: a for a in self.settings.posting_accounts}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise errors.CrierError(
                f"unknown account {', '.join(repr(n) for n in unknown)} (configured: "
                f"{', '.join(known) or 'none'})")
        return [known[n] for n in dict.fromkeys(names)]

    def episode(self, ref: str | None) -> dict | None:
        """'latest', a GUID or an episode id → the episode's row; None for None."""
        if ref is None:
            return None
        feeds = self.store.all_feeds()
        if not feeds:
            raise errors.CrierError("no episodes recorded yet: run `crier run --once` first")
        if ref == "latest":
            row = self.store.latest_episode(feeds[0]["id"])
        else:
            row = self.store.episode_by_guid(ref)
            if row is None and ref.isdigit():
                row = self.store.get_episode(int(ref))
        if row is None:
            raise errors.CrierError(f"no episode with GUID or id {ref!r} (see `crier status`; "
                                    "'latest' picks the newest)")
        return row

    def _compose(self, account: Account, promo: dict, episode_row: dict | None
                 ) -> PromoPreview:
        from bot.compose import DEFAULT_EVERGREEN_TEMPLATE, compose_episode, compose_promo
        rules = self.svc.rules_for(account)
        ep = episode_from_data(episode_row["data"]) if episode_row else None
        boiler = (episode_row["data"].get("boilerplate") or ()) if episode_row else ()
        options = self.svc.options_for(account, boiler)
        if promo["kind"] == "evergreen":
            if ep is None:
                raise errors.CrierError("no episode to promote")
            from dataclasses import replace as dc_replace
            template = promo["text"] or self.settings.evergreen_template or \
                DEFAULT_EVERGREEN_TEMPLATE
            options = dc_replace(options, template=template, template_name="evergreen")
            c = compose_episode(ep, show=self.settings.show, rules=rules, options=options,
                                show_image=episode_row["data"].get("show_image"))
        else:
            c = compose_promo(promo["text"], show=self.settings.show, rules=rules, episode=ep,
                              options=options, fit=bool(promo["fit"]))
        image, alt = promo.get("image_path"), promo.get("alt")
        alt_length = len(alt) if alt is not None else None  # (platforms count characters)
        return PromoPreview(account.name, account.platform, c.text, c.length, c.limit,
                            shortened=c.truncated, image=image, alt=alt, alt_length=alt_length,
                            alt_limit=rules.alt_text_limit if alt is not None else None,
                            episode=ep.title if ep else None)

    def preview(self, promo: dict, accounts: list[Account],
                episode_row: dict | None) -> list[PromoPreview]:
        return [self._compose(a, promo, episode_row) for a in accounts]

    # -- add ------------------------------------------------------------------------------
    def add(self, text: str | None, *, at: str | None = None, every: str | None = None,
            until: str | None = None, accounts: Iterable[str] | None = None,
            image: str | None = None, alt: str | None = None, episode: str | None = None,
            fit: bool = False, evergreen: bool = False, pick: str = "oldest",
            cooldown_days: int | None = None, dry: bool = False
            ) -> tuple[int | None, dict, list[PromoPreview]]:
        """Validate, compose for every target account, and queue (unless `dry`). Returns
        (id, the promo as stored, previews). Raises CrierError saying what is wrong; nothing
        is queued then."""
        from bot.schedule import parse_rule, parse_when
        now = self.svc.clock()
        targets = self.accounts(accounts)
        kind = "evergreen" if evergreen else "recurring" if every else "once"
        if evergreen and not every:
            raise errors.CrierError("an evergreen slot needs --every (e.g. --every \"fri 17:00\")")
        if at and every:
            raise errors.CrierError("give either a time (--at/--in) or a rule (--every), "
                                    "not both")
        if not evergreen and not (text or "").strip():
            raise errors.CrierError("the post's text is empty")
        if pick not in PICKS:
            raise errors.CrierError(f"--pick must be one of {', '.join(PICKS)}")
        rule = None
        if every:
            rule = parse_rule(every, tz=self.tz, start=now)
            if until:
                rule = rule.with_until(parse_when(until, now=now, tz=self.tz))
            first = rule.next_after(now)
            if first is None:
                raise errors.CrierError(f"the rule {rule.describe()} has no occurrence after "
                                        f"now (--until {until!r} is too early)")
        else:
            if until:
                raise errors.CrierError("--until goes with --every (a repeating post)")
            first = parse_when(at, now=now, tz=self.tz) if at else now
            if first < now - timedelta(seconds=60):
                from bot.schedule import format_local
                raise errors.CrierError(f"{at!r} is in the past ({format_local(first, self.tz)}"
                                        f"; now is {format_local(now, self.tz)})")
        image_path = self._check_image(image, alt)
        ep_row = self.episode(episode) if not evergreen else self._pick(pick, cooldown_days,
                                                                         now, preview=True)
        promo = {"kind": kind, "text": (text or None) if evergreen else text,
                 "accounts": [a.name for a in targets] if accounts else None,
                 "image_path": image_path, "alt": alt,
                 "episode_id": ep_row["id"] if ep_row and not evergreen else None,
                 "rule": rule.text if rule else None, "until": rule.until if rule else None,
                 "next_at": first, "status": "active", "fit": fit,
                 "pick": pick if evergreen else None,
                 "cooldown_days": cooldown_days if evergreen else None}
        previews = self.preview(promo, targets, ep_row)
        _refuse_too_long(previews)
        if kind == "recurring" and "{{" not in (text or "") and \
                any(a.platform == "x" for a in targets):
            promo["note"] = ("X refuses a tweet identical to a recent one: the same text every "
                             "time may fail there; vary it (e.g. with --episode variables)")
            log.warning("promo: %s", promo["note"])
        bad_alt = [p for p in previews if p.alt is not None and p.alt_length > p.alt_limit]
        if bad_alt:
            raise errors.CrierError("alt text too long: " + "; ".join(
                f"{p.account} ({p.platform}) {p.alt_length}/{p.alt_limit} characters"
                for p in bad_alt))
        if dry:
            return None, promo, previews
        pid = self.store.add_promo(now, **promo)
        log.info("promo %d queued (%s), first at %s", pid, kind, first.isoformat())
        return pid, {**promo, "id": pid}, previews

    def _check_image(self, image: str | None, alt: str | None) -> str | None:
        if image is None:
            if alt is not None:
                raise errors.CrierError("--alt describes an image: give --image too")
            return None
        from pathlib import Path
        path = Path(image).expanduser()
        if not path.is_file():
            raise errors.CrierError(f"image {image!r}: no such file")
        if not (alt or "").strip():
            raise errors.CrierError("--alt is required with --image: describe the image for "
                                    "people who cannot see it (it travels with every boost)")
        try:
            from PIL import Image
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # Pillow raises many kinds
            raise errors.CrierError(f"image {image!r} is not an image Pillow can read "
                                    f"({type(e).__name__})") from None
        return str(path.resolve())

    # -- evergreen ------------------------------------------------------------------------
    def _pick(self, pick: str, cooldown_days: int | None, now: datetime, *,
              preview: bool = False) -> dict | None:
        """An older episode not promoted (nor announced) within the cool-down."""
        feeds = self.store.all_feeds()
        if not feeds:
            if preview:
                raise errors.CrierError("no episodes recorded yet: run `crier run --once` "
                                        "first")
            return None
        cooldown = timedelta(days=cooldown_days) if cooldown_days is not None else \
            timedelta(seconds=self.settings.evergreen_cooldown)
        promoted = self.store.last_promoted(feeds[0]["id"])
        fresh = EVERGREEN_MIN_AGE
        rows = [r for r in self.store.episodes_for_promotion(feeds[0]["id"])
                if not ((p := promoted.get(r["id"])) and now - p < cooldown)
                and not (r["announced_at"] and now - r["announced_at"] < fresh)
                and not (r["published_at"] and now - r["published_at"] < fresh)]
        if not rows:
            if preview:
                raise errors.CrierError(
                    f"no episode can be promoted now: each one is newer than "
                    f"{fresh.days} days or was promoted within the cool-down "
                    f"({cooldown.days} days)")
            return None
        if pick == "random":
            chosen = self.svc.rng.choice(rows)
        else:
            floor = datetime.min.replace(tzinfo=UTC)
            chosen = min(rows, key=lambda r: (promoted.get(r["id"]) or floor,
                                              r["published_at"] or floor, r["id"]))
        return self.store.get_episode(chosen["id"])

    # -- list, show, change -----------------------------------------------------------------
    def plan(self, rows: list[dict]) -> dict[int, dict[str, datetime]]:
        """When each active promo's next occurrence will actually go out, per account."""
        from bot.spacing import Slot, plan
        now = self.svc.clock()
        accounts = self.settings.posting_accounts
        slots = []
        for r in rows:
            if r["status"] != "active" or r["next_at"] is None:
                continue
            names = tuple(r["accounts"] or [a.name for a in accounts])
            slots.append(Slot(r["id"], max(r["next_at"], now), names))
        return plan(slots, tz=self.tz,
                    gaps={a.name: timedelta(seconds=self.settings.gap_for(a)) for a in accounts},
                    quiet={a.name: self.settings.quiet_for(a) for a in accounts},
                    last_sent={a.name: self.store.last_sent(a.name) for a in accounts},
                    blocked_until={a.name: now for a in accounts
                                   if self.store.announcement_pending(a.name)})

    def view(self, r: dict, planned: dict[str, datetime] | None = None) -> dict:
        from bot.schedule import format_local
        rule = self.rule(r)
        return {
            "id": r["id"], "kind": r["kind"], "status": r["status"], "text": r["text"],
            "accounts": r["accounts"] or [a.name for a in self.settings.posting_accounts],
            "rule": rule.describe() if rule else None,
            "next_at": _iso(r["next_at"]),
            "next_local": format_local(r["next_at"], self.tz) if r["next_at"] else None,
            "goes_out": {a: {"utc": _iso(t), "local": format_local(t, self.tz)}
                         for a, t in (planned or {}).items()},
            "until": _iso(r["until"]), "image": r["image_path"], "alt": r["alt"],
            "episode_id": r["episode_id"], "fit": r["fit"], "pick": r["pick"],
            "fired": r["fired"], "missed": r["missed"], "last_fired_at": _iso(r["last_fired_at"]),
            "note": r["note"],
        }

    def list(self, *, all_: bool = False) -> list[dict]:
        rows = self.store.all_promos(include_finished=all_)
        planned = self.plan(rows)
        return [self.view(r, planned.get(r["id"])) for r in rows]

    def get(self, promo_id: int) -> dict:
        row = self.store.promo(promo_id)
        if row is None:
            raise errors.CrierError(f"no queued post {promo_id} (see `crier queue list`)")
        return row

    def show(self, promo_id: int) -> dict:
        from bot.outbox import describe
        row = self.get(promo_id)
        out = self.view(row, self.plan([row]).get(promo_id))
        now = self.svc.clock()
        out["deliveries"] = [{
            **describe(d, now), "id": d["id"], "account": d["account"], "status": d["status"],
            "due_at": _iso(d["due_at"]), "sent_at": _iso(d["sent_at"]), "url": d["remote_url"],
            "error": d["last_error"], "next_attempt_at": _iso(d["next_attempt_at"]),
            "text": d["text"]} for d in self.store.promo_deliveries(promo_id)]
        return out

    def set_status(self, promo_id: int, action: str) -> dict:
        """cancel | pause | resume. Cancelling also withdraws deliveries not yet sending."""
        row = self.get(promo_id)
        now = self.svc.clock()
        allowed = {"cancel": ("active", "paused", "done"), "pause": ("active",),
                   "resume": ("paused",)}[action]
        if row["status"] not in allowed:
            raise errors.CrierError(f"queued post {promo_id} is {row['status']}; cannot "
                                    f"{action} it")
        status = {"cancel": "cancelled", "pause": "paused", "resume": "active"}[action]
        withdrawn = []
        with self.store.tx() as c:
            values: dict = {"status": status}
            if action == "resume" and row["next_at"] and row["next_at"] < now and row["rule"]:
                values["next_at"] = self.rule(row).next_after(now)
                if values["next_at"] is None:
                    values["status"] = "done"
            self.store.update_promo(c, promo_id, now, **values)
            if action in ("cancel", "pause"):
                withdrawn = self.store.withdraw_promo_deliveries(
                    c, promo_id, now, reason=f"queued post {status}")
            if row["status"] == "done" and not withdrawn:
                raise errors.CrierError(f"queued post {promo_id} already went out; nothing "
                                        "to cancel")
        log.info("promo %d %s%s", promo_id, status,
                 f"; {len(withdrawn)} waiting deliveries withdrawn" if withdrawn else "")
        return {**self.show(promo_id), "withdrawn": withdrawn}

    def edit(self, promo_id: int, *, text: str | None = None, at: str | None = None,
             every: str | None = None, until: str | None = None,
             accounts: Iterable[str] | None = None, image: str | None = None,
             alt: str | None = None, fit: bool | None = None) -> tuple[dict, list[PromoPreview]]:
        """Change a queued post; checked (and composed for every account) as `add` checks a
        new one. Deliveries of a firing that have not been composed yet (waiting for their
        time, a gap, quiet hours) go out with the change; one already composed (tried once)
        or being sent keeps its text, so no retry ever sends a different post."""
        from bot.schedule import parse_rule, parse_when
        row = self.get(promo_id)
        waiting = [d for d in self.store.promo_deliveries(promo_id, limit=100)
                   if d["status"] == "pending"]
        if row["status"] == "cancelled" or (row["status"] == "done" and not waiting):
            raise errors.CrierError(f"queued post {promo_id} is {row['status']}; it cannot be "
                                    "edited")
        if row["status"] == "done" and (at or every or until or accounts):
            raise errors.CrierError(f"queued post {promo_id} has fired; only its text, image "
                                    "and --fit can change (cancel it and queue a new one)")
        now = self.svc.clock()
        new = dict(row)
        if text is not None:
            new["text"] = text
        if fit is not None:
            new["fit"] = fit
        if accounts:
            new["accounts"] = [a.name for a in self.accounts(accounts)]
        if image is not None or alt is not None:
            new["image_path"] = self._check_image(image or row["image_path"],
                                                  alt if alt is not None else row["alt"])
            new["alt"] = alt if alt is not None else row["alt"]
        if every:
            rule = parse_rule(every, tz=self.tz, start=now)
            new["kind"] = "evergreen" if row["kind"] == "evergreen" else "recurring"
            new["rule"], new["next_at"] = rule.text, rule.next_after(now)
            new["until"] = None
        if at:
            if new["rule"]:
                raise errors.CrierError("this post repeats: change it with --every, not --at")
            first = parse_when(at, now=now, tz=self.tz)
            if first < now - timedelta(seconds=60):
                raise errors.CrierError(f"{at!r} is in the past")
            new["next_at"] = first
        if until:
            if not new["rule"]:
                raise errors.CrierError("--until goes with a repeating post")
            rule = parse_rule(new["rule"], tz=self.tz, start=now).with_until(
                parse_when(until, now=now, tz=self.tz))
            new["rule"], new["until"] = rule.text, rule.until
            new["next_at"] = rule.next_after(now - timedelta(seconds=1))
        targets = self.accounts(new["accounts"])
        ep_row = self.store.get_episode(new["episode_id"]) if new["episode_id"] else (
            self._pick(new["pick"] or "oldest", new["cooldown_days"], now, preview=True)
            if new["kind"] == "evergreen" else None)
        previews = self.preview(new, targets, ep_row)
        _refuse_too_long(previews)
        changes = {k: new[k] for k in ("text", "fit", "accounts", "image_path", "alt", "kind",
                                       "rule", "until", "next_at") if new[k] != row[k]}
        if changes:
            with self.store.tx() as c:
                self.store.update_promo(c, promo_id, now, **changes)
        return self.show(promo_id), previews

    # -- firing ---------------------------------------------------------------------------
    def fire(self) -> list[dict]:
        """Turn every due promo into an outbox post (once per occurrence). A promo that was
        due more than the grace window ago (crier was not running) is reported, not posted;
        of several occurrences missed, only the newest within the window goes out."""
        now = self.svc.clock()
        done = []
        for row in self.store.due_promos(now):
            try:
                done.append(self._fire(row["id"], now))
            except errors.CrierError as e:
                log.error("promo %d: %s", row["id"], e)
                with self.store.tx() as c:
                    self.store.update_promo(c, row["id"], now, note=str(e))
        return [d for d in done if d]

    def _fire(self, promo_id: int, now: datetime) -> dict | None:
        from bot.schedule import format_local
        grace = timedelta(seconds=self.settings.promo_grace)
        with self.store.tx() as c:
            row = self.store.promo_in(c, promo_id)
            if row is None or row["status"] != "active" or row["next_at"] is None \
                    or row["next_at"] > now:
                return None
            rule = self.rule(row)
            due = [row["next_at"]]
            nxt = rule.next_after(row["next_at"]) if rule else None
            while nxt is not None and nxt <= now:
                due.append(nxt)
                nxt = rule.next_after(nxt)
            late = [t for t in due if now - t > grace]
            on_time = [t for t in due if now - t <= grace]
            missed = len(late) + max(len(on_time) - 1, 0)
            notes = []
            if late:
                notes.append(f"missed {len(late)} occurrence(s) (last due "
                             f"{format_local(late[-1], self.tz)}, more than "
                             f"{_human(grace)} ago: crier was not running); not posted")
                log.warning("promo %d: %s", promo_id, notes[-1])
            post_id = None
            if on_time:
                occurrence = on_time[-1]
                episode_id = row["episode_id"]
                if row["kind"] == "evergreen":
                    pick = self._pick(row["pick"] or "oldest", row["cooldown_days"], now)
                    if pick is None:
                        notes.append("no episode could be promoted (all within the "
                                     "cool-down); skipped")
                        log.warning("promo %d: %s", promo_id, notes[-1])
                    episode_id = pick["id"] if pick else None
                if row["kind"] != "evergreen" or episode_id is not None:
                    targets = [(a.name, a.platform, DeliveryStatus.PENDING.value)
                               for a in self.accounts(row["accounts"])]
                    # the key: the promo and its firing number, read and moved on in this
                    # transaction, so two processes firing the same occurrence make one post
                    post_id = self.store.enqueue(
                        c, kind="promo", dedupe_key=f"promo:{promo_id}:{row['fired']}",
                        episode_id=episode_id, targets=targets, now=now, priority=0,
                        promo_id=promo_id, due_at=occurrence)
            self.store.update_promo(
                c, promo_id, now, next_at=nxt, status="active" if nxt else "done",
                fired=row["fired"] + (1 if post_id else 0), missed=row["missed"] + missed,
                last_fired_at=now if post_id else row["last_fired_at"],
                note="; ".join(notes) or row["note"])
        if late:
            self.svc.alerts.promo_missed(row, late, grace)
        if post_id:
            log.info("promo %d: posting (occurrence %s)", promo_id, occurrence.isoformat())
        return {"promo": promo_id, "post": post_id, "missed": missed, "next_at": nxt}

    # -- spacing at send time -------------------------------------------------------------
    def hold_for(self, d: dict, account: Account, now: datetime) -> datetime | None:
        """When a promo delivery may go out, if not now: after a pending announcement, the
        account's minimum gap since its last post, and outside its quiet hours."""
        from bot.spacing import next_allowed
        if self.store.announcement_pending(account.name):
            return now + timedelta(seconds=max(self.settings.dispatch_interval, 30))
        last = self.store.last_sent(account.name)
        gap = timedelta(seconds=self.settings.gap_for(account))
        at = next_allowed(now, tz=self.tz, quiet=self.settings.quiet_for(account),
                          not_before=last + gap if last else None)
        return at if at > now else None


def _refuse_too_long(previews: list[PromoPreview]) -> None:
    too_long = [p for p in previews if p.length > p.limit]
    if too_long:
        raise errors.CrierError("too long: " + "; ".join(
            f"{p.account} ({p.platform}) {p.length}/{p.limit} characters"
            for p in too_long) + " — shorten it, or --fit to have it shortened")


def _human(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s % 86400 == 0:
        return f"{s // 86400} days"
    if s % 3600 == 0:
        return f"{s // 3600} hours"
    return f"{s // 60} minutes"
