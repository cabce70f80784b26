"""One show's view of the store: the queries that are global in `bot.store` (feeds, due
deliveries, promos, community posts, held episodes, listings) narrowed to one show, and the
rows it adds stamped with that show's id; everything else is the store itself.

`Service` hands this view to the application modules, so each of them works on its own show
without knowing there are others. The show's row is found (or made) on first use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.models import CommunityPost, Delivery, EpisodeRecord, Feed, Promo
from bot.store import Store, deliveries


class ShowStore:
    """`store`, scoped to the show `settings` describes (by its slug)."""

    def __init__(self, store: Store, settings, show_id: int | None = None):
        self._store, self._settings = store, settings
        self._show_id: int | None = show_id    # known to the caller (bot.fleet), or looked up

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def unscoped(self) -> Store:
        return self._store

    @property
    def show_id(self) -> int:
        return self._id_in(None)

    def _id_in(self, conn) -> int:
        """The show's id, found (or its row made) in `conn`'s transaction when given."""
        if self._show_id is None:
            from bot.shows import ensure_show
            self._show_id = ensure_show(self._store, self._settings, conn=conn)
        return self._show_id

    # -- rows added: stamped with the show ------------------------------------------------
    def ensure_feed(self, url: str, now: datetime) -> Feed:
        return self._store.ensure_feed(url, now, show_id=self.show_id,
                                       poll_interval=self._settings.poll_interval)

    def enqueue(self, c, **kw: Any) -> int | None:
        return self._store.enqueue(c, show_id=self._id_in(c), **kw)

    def add_promo(self, now: datetime, **values: Any) -> int:
        return self._store.add_promo(now, show_id=self.show_id, **values)

    def add_community(self, c, account: str, cand, now: datetime, status: str) -> int | None:
        return self._store.add_community(c, account, cand, now, status,
                                         show_id=self._id_in(c))

    # -- queries: this show's rows only ---------------------------------------------------
    def all_feeds(self) -> list[Feed]:
        return self._store.all_feeds(show_id=self.show_id)

    def episodes_with_status(self, status: str, feed_id: int | None = None,
                             **kw: Any) -> list[EpisodeRecord]:
        return self._store.episodes_with_status(status, feed_id, show_id=self.show_id, **kw)

    def episode_by_guid(self, guid: str) -> EpisodeRecord | None:
        return self._store.episode_by_guid(guid, show_id=self.show_id)

    def get_episode(self, episode_id: int) -> EpisodeRecord | None:
        return self._store.get_episode(episode_id, show_id=self.show_id)

    def due_deliveries(self, now: datetime, limit: int = 50, **kw: Any) -> list[Delivery]:
        return self._store.due_deliveries(now, limit=limit, show_id=self.show_id, **kw)

    def lease_due_deliveries(self, now: datetime, token: str, lease, limit: int = 50
                             ) -> list[Delivery]:
        return self._store.lease_due_deliveries(now, token, lease, limit, show_id=self.show_id)

    def deliveries_where(self, *conds, **kw: Any) -> list[Delivery]:
        return self._store.deliveries_where(deliveries.c.show_id == self.show_id, *conds, **kw)

    def sent_deliveries(self, **kw: Any) -> list[Delivery]:
        return self._store.sent_deliveries(show_id=self.show_id, **kw)

    def all_promos(self, **kw: Any) -> list[Promo]:
        return self._store.all_promos(show_id=self.show_id, **kw)

    def due_promos(self, now: datetime) -> list[Promo]:
        return self._store.due_promos(now, show_id=self.show_id)

    def community(self, **kw: Any) -> list[CommunityPost]:
        return self._store.community(show_id=self.show_id, **kw)

    def promo(self, promo_id: int) -> Promo | None:
        row = self._store.promo(promo_id)
        return row if row is not None and row.show_id == self.show_id else None

    def community_post(self, c, post_id: int) -> CommunityPost | None:
        row = self._store.community_post(c, post_id)
        return row if row is not None and row.show_id == self._id_in(c) else None
