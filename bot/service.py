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
FIND_EXISTING_MARGIN = timedelta(minutes=5)
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
    for extra in ("language", "show_image", "boilerplate"):
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
                 dry_run: bool = False):
        self.settings, self.store, self.clock = settings, store, clock
        self.rng = rng or random.Random()
        self.dry_run = dry_run
        self._session = session
        self.publishers = publishers if publishers is not None else build_publishers(
            settings, dry_run=dry_run, session=session)
        self._rules: dict[str, Rules] = {}
        self._feed: dict | None = None  # the feed's row as of the last unchanged poll

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
                             previous_hash=feed["body_hash"])
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
                   for a in self.settings.accounts]
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
        for account in self.settings.accounts:
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
                 limit: int = 50) -> list[Outcome]:
        """Send every due delivery once (each claimed first); record each outcome."""
        now = self.clock()
        stale = self.store.recover_stale(now, SENDING_LEASE)
        for d in stale:
            log.warning("delivery %d: was interrupted while sending; will check the platform "
                        "before sending again", d)
        self.release_scheduled()
        outcomes = []
        blocked: dict[str, str] = {}
        for d in self.store.due_deliveries(now, limit=limit):
            if stop and stop():
                break
            if d["account"] in blocked:
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
            if d["needs_check"]:
                since = (d["first_attempt_at"] or now) - FIND_EXISTING_MARGIN
                published = publisher.find_existing(post, since)
                if published:
                    log.info("delivery %d to %s: found already posted after an interrupted "
                             "attempt: %s", did, name, published.url)
            if published is None:
                published = publisher.publish(post, d["idempotency_key"])
        except errors.DuplicateError as e:
            since = (d["first_attempt_at"] or now) - FIND_EXISTING_MARGIN
            try:
                published = publisher.find_existing(post, since)
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
        self.store.finish(did, token, now, status=DeliveryStatus.SENT.value,
                          remote_id=published.remote_id, remote_url=published.url, sent_at=now,
                          last_error=note, error_kind="reply" if note else None,
                          needs_check=False)
        log.info("delivery %d to %s: sent %s", did, name, published.url or published.remote_id)
        outcome.status, outcome.url, outcome.error = DeliveryStatus.SENT.value, published.url, note
        return outcome

    def _compose_delivery(self, d: dict, account: Account) -> None:
        """Write the delivery's final text (and media) before its first network call, so
        every retry sends exactly the same post."""
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
                img = self._prepare_image(composed.image_url, rules)
                payload["media"] = [{"source": img.path, "alt": composed.alt_text or "",
                                     "mime_type": img.mime_type}]
            except errors.CrierError as e:
                note = f"posted without artwork: {e}"
                log.warning("delivery %d to %s: %s", d["id"], account.name, note)
                payload["notes"].append(note)
        self.store.set_delivery_text(d["id"], text=composed.text, payload=payload,
                                     length=length, limit=rules.limit, now=self.clock())

    def _prepare_image(self, url: str, rules: Rules):
        from bot.images import prepare_artwork
        return prepare_artwork(url, cache_dir=self.settings.media_dir, session=self.session,
                               max_bytes=rules.image_max_bytes)

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
        if token:
            self.store.finish(d["id"], token, now, **values)
        else:
            self.store.update_delivery(d["id"], now, **values)
        log.error("delivery %d to %s: failed: %s", d["id"], d["account"], e)
        outcome.status, outcome.error = DeliveryStatus.FAILED.value, str(e)
        return outcome

    def retry_failed(self, delivery_ids: Iterable[int]) -> int:
        """The host asks failed deliveries to be tried again (after fixing the cause)."""
        from bot.store import deliveries
        now = self.clock()
        ids = list(delivery_ids)
        rows = self.store.deliveries_where(deliveries.c.id.in_(ids))
        n = 0
        for d in rows:
            if d["status"] == DeliveryStatus.FAILED.value:
                self.store.update_delivery(d["id"], now, status=DeliveryStatus.PENDING.value,
                                           next_attempt_at=now, attempts=0, needs_check=True)
                n += 1
        return n

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
        failed = self.store.deliveries_where(
            deliveries.c.status == DeliveryStatus.FAILED.value, limit=50, newest_first=True)
        recent = self.store.deliveries_where(deliveries.c.status.in_(
            [DeliveryStatus.SENT.value, DeliveryStatus.DRY_RUN.value]), limit=10,
            newest_first=True)
        titles = {}

        def title(eid):
            if eid and eid not in titles:
                e = self.store.get_episode(eid)
                titles[eid] = e["title"] if e else None
            return titles.get(eid)

        def drow(d):
            return {"id": d["id"], "account": d["account"], "platform": d["platform"],
                    "status": d["status"], "episode": title(d["episode_id"]),
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
        }

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
        return self.store.acquire_lock(WORKER_LOCK, owner, self.clock(), ttl)

    def release_worker_lock(self, owner: str) -> None:
        self.store.release_lock(WORKER_LOCK, owner)


def _lang(language: str | None) -> str | None:
    """Feeds say "en-us"; platforms take ISO 639-1 ("en")."""
    if not language:
        return None
    code = language.strip().split("-")[0].split("_")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None


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
    from bot.platforms.dryrun import DryRunPublisher
    out: dict[str, Publisher] = {}
    for a in settings.accounts:
        if a.dry_run or dry_run:
            out[a.name] = DryRunPublisher(a.name, a.platform, max_characters=a.max_characters,
                                          reason=a.dry_run_reason or "--dry-run")
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
                                     api_base=a.api_base, upload_base=a.upload_base,
                                     timeout=a.timeout)
    return out


__all__ = ["Service", "PollReport", "Outcome", "build_publishers", "utcnow",
           "episode_to_data", "episode_from_data", "Published"]
