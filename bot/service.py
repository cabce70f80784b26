"""The application's one door: `Service` wires the adapters (fetch, store, platforms, notify)
to the application modules, and the CLI, the worker and `crier check` call it.

Each concern lives in its own module, which `Service` delegates to:

- `bot.polling`: fetch the feed, detect what is new, record it, release held episodes;
- `bot.composer`: compose options, rules and previews per account; each delivery's post;
- `bot.dispatch`: claim due deliveries, send each once, retry or fail, queue boosts;
- `bot.promos`: the host's promo queue;
- `bot.listeners`: share kits, socialInteract tags and the community watch;
- `bot.status`: what `crier status` shows;
- `bot.publishers`: one publisher per account, and the credentials check;
- `bot.locks`: the single-worker lease.

Clock, HTTP session, random source and publishers are injected here and shared by all of
them. The names other code imported from this module before the split are re-exported.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from bot.artwork import ArtworkPreparer
from bot.composer import ARTWORK_PATIENCE, Composer, _lang
from bot.config import Account, Settings
from bot.dispatch import (
    ARTWORK_RECHECK,
    ARTWORK_WAIT,
    AUTH_RETRY,
    FIND_EXISTING_SKEW,
    RETRY_BASE,
    RETRY_MAX,
    SENDING_LEASE,
    Dispatcher,
    Outcome,
    _dry_run_type,
    _post_from_row,
    _since_first_attempt,
)
from bot.episodes import FeedItems, episode_from_data, episode_to_data
from bot.listeners import Listeners
from bot.locks import WORKER_LOCK, _dead_here
from bot.models import CommunityPost, Delivery, Episode, Preview, Published, Rules
from bot.platforms.base import Publisher
from bot.polling import (
    BOILERPLATE_SAMPLE,
    FEED_RETRY_BASE,
    FEED_RETRY_MAX,
    QUIET_WRITE,
    Poller,
    PollReport,
)
from bot.promos import (
    EVERGREEN_MIN_AGE,
    PICKS,
    PROMO_KINDS,
    PromoPreview,
    PromoQueue,
    _human,
    _refuse_too_long,
)
from bot.publishers import build_publishers, check_accounts
from bot.status import iso as _iso
from bot.store import Store

Clock = Callable[[], datetime]
_FeedItems = FeedItems  # its name before the split (tests/test_feed_scan.py)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    """One show's crier: what the entry points call. Holds the injected parts; the work is
    done by the application modules named in the module docstring."""

    def __init__(self, settings: Settings, store: Store, *,
                 publishers: dict[str, Publisher] | None = None, session=None,
                 clock: Clock = utcnow, rng: random.Random | None = None,
                 dry_run: bool = False, notifier=None, show_id: int | None = None):
        from bot.alerts import Alerts, notifier_for
        from bot.showscope import ShowStore
        if publishers is None and store is not None:  # secrets connected in the web app
            from bot.connect import with_connected
            settings = with_connected(settings, getattr(store, "unscoped", store),
                                      show_id=show_id)
        self.settings, self.clock = settings, clock
        # this show's view of the store (bot.showscope); `store.unscoped` is the whole
        self.store = store if isinstance(store, ShowStore) else ShowStore(store, settings,
                                                                           show_id)
        self.notifier = notifier if notifier is not None else notifier_for(settings)
        self.alerts = Alerts(settings, self.store, self.notifier, clock)  # tells the host
        self.rng = rng or random.Random()
        self.dry_run = dry_run
        self._session = session
        self.publishers = publishers if publishers is not None else build_publishers(
            settings, dry_run=dry_run, session=session,
            checkpoints=getattr(store, "unscoped", store))  # (None for a preview)
        self._artwork: ArtworkPreparer | None = None
        self.poller = Poller(self)
        self.composer = Composer(self)
        self.dispatcher = Dispatcher(self)
        self.listeners = Listeners(self)

    @property
    def show_id(self) -> int:
        """This show's row in the registry (bot.shows)."""
        return self.store.show_id

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

    @property
    def artwork(self) -> ArtworkPreparer:
        """Prepares the artwork a feed names, off the dispatch path (bot.artwork)."""
        if self._artwork is None:
            self._artwork = ArtworkPreparer(
                cache_dir=self.settings.media_dir, deadline=self.settings.image_deadline,
                allow_private=self.settings.allow_private_networks)
        return self._artwork

    def _account(self, name: str) -> Account | None:
        return next((a for a in self.settings.accounts if a.name == name), None)

    # -- polling (bot.polling) ------------------------------------------------------------
    def poll(self, *, force: bool = False, backfill: int | None = None) -> PollReport:
        """Fetch the feed (if due), record what is new, enqueue announcements."""
        return self.poller.poll(force=force, backfill=backfill)

    def release(self, episode_ids: Iterable[int] | None = None) -> list[int]:
        """Announce held episodes (all of them, or the given ids)."""
        return self.poller.release(episode_ids)

    def release_scheduled(self) -> list[int]:
        """Future-dated episodes whose date has come are announced now."""
        return self.poller.release_scheduled()

    # -- composing (bot.composer) ---------------------------------------------------------
    def rules_for(self, account: Account) -> Rules:
        return self.composer.rules_for(account)

    def options_for(self, account: Account, boilerplate: Iterable[str] = ()):
        return self.composer.options_for(account, boilerplate)

    def compose(self, account: Account, episode: Episode, *, rules: Rules | None = None,
                boilerplate: Iterable[str] = (), show_image: str | None = None):
        return self.composer.compose(account, episode, rules=rules, boilerplate=boilerplate,
                                     show_image=show_image)

    def preview(self, episode: Episode, *, boilerplate: Iterable[str] = (),
                show_image: str | None = None) -> list[Preview]:
        return self.composer.preview(episode, boilerplate=boilerplate, show_image=show_image)

    def _compose_delivery(self, d: Delivery, account: Account) -> None:
        self.composer.compose_delivery(d, account)

    # -- the outbox (bot.dispatch) --------------------------------------------------------
    def dispatch(self, *, stop: Callable[[], bool] | None = None,
                 limit: int = 50, artwork_wait: float | None = None,
                 recover: bool = True) -> list[Outcome]:
        """Send every due delivery once (each claimed first); record each outcome.
        `recover` False: the caller already ran `bot.dispatch.recover_stale` this tick."""
        return self.dispatcher.dispatch(stop=stop, limit=limit, artwork_wait=artwork_wait,
                                        recover=recover)

    def retry_failed(self, delivery_ids: Iterable[int]) -> int:
        """The host asks deliveries to be tried again (see `bot.outbox.retry`)."""
        return self.dispatcher.retry_failed(delivery_ids)

    def wake_auth_stopped(self) -> None:
        """On start: deliveries parked by a refused token are due again (it may be fixed)."""
        self.dispatcher.wake_auth_stopped()

    # -- what the host sees (bot.status) --------------------------------------------------
    def status(self) -> dict:
        from bot.status import status
        return status(self)

    # -- listeners (bot.listeners) --------------------------------------------------------
    def official_posts(self, episode_id: int) -> list:
        return self.listeners.official_posts(episode_id)

    def share(self, ref: str | None = None, *, instance: str | None = None) -> dict:
        return self.listeners.share(ref, instance=instance)

    def social_interact(self, ref: str | None = None) -> dict:
        return self.listeners.social_interact(ref)

    def community_scan(self) -> list[dict]:
        return self.listeners.community_scan()

    def community_list(self, *, all_: bool = False) -> list[CommunityPost]:
        return self.listeners.community_list(all_=all_)

    def community_decide(self, post_id: int, approve: bool) -> CommunityPost:
        return self.listeners.community_decide(post_id, approve)

    # -- credentials (bot.publishers) and the worker lock (bot.locks) ---------------------
    def check(self) -> list[dict]:
        return check_accounts(self.settings, self.publishers, self.dry_run)

    def acquire_worker_lock(self, owner: str, ttl: timedelta = timedelta(seconds=90)) -> bool:
        from bot.locks import acquire_worker_lock
        return acquire_worker_lock(self.store, owner, self.clock(), ttl)

    def release_worker_lock(self, owner: str) -> None:
        from bot.locks import release_worker_lock
        release_worker_lock(self.store, owner)


__all__ = ["Service", "PollReport", "Outcome", "build_publishers", "utcnow",
           "episode_to_data", "episode_from_data", "Published", "PromoQueue", "PromoPreview"]

# Re-exported for the code and tests that imported them from here before the split.
_REEXPORTED = (ARTWORK_PATIENCE, ARTWORK_RECHECK, ARTWORK_WAIT, AUTH_RETRY, BOILERPLATE_SAMPLE,
               EVERGREEN_MIN_AGE, FEED_RETRY_BASE, FEED_RETRY_MAX, FIND_EXISTING_SKEW, PICKS,
               PROMO_KINDS, QUIET_WRITE, RETRY_BASE, RETRY_MAX, SENDING_LEASE, WORKER_LOCK,
               _dead_here, _dry_run_type, _human, _iso, _lang, _post_from_row,
               _refuse_too_long, _since_first_attempt)
