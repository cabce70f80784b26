"""What crier does with and for the listeners: an episode's share kit and podcast:socialInteract
tags (from its official posts), and the community's public posts found, proposed, approved and
queued for a boost (the deciding rules are the pure `bot.community`)."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from bot import errors
from bot.episodes import episode_from_data
from bot.models import CommunityPost, DeliveryStatus

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)


class Listeners:
    """Sharing and the community watch of `svc` (see the module docstring)."""

    def __init__(self, svc: Service):
        self.svc, self.store, self.settings = svc, svc.store, svc.settings
        self.clock, self.publishers = svc.clock, svc.publishers

    # -- spreading an episode -------------------------------------------------------------
    def official_posts(self, episode_id: int) -> list:
        """The episode's announcements that went out, as `bot.share.OfficialPost`s."""
        from bot.share import OfficialPost
        from bot.store import deliveries, posts
        rows = self.store.deliveries_where(
            posts.c.episode_id == episode_id, posts.c.kind == "announcement",
            deliveries.c.status == DeliveryStatus.SENT.value)
        return [OfficialPost(d.account, d.platform, d.remote_url, d.remote_id)
                for d in rows if d.remote_url]

    def share(self, ref: str | None = None, *, instance: str | None = None) -> dict:
        """The share kit of an episode ('latest' by default): listener texts per network
        with share links, and the official posts to boost."""
        from bot.share import share_kit
        row = self.svc.queue.episode(ref or "latest")
        episode = episode_from_data(row.data)
        official = self.settings.posting_accounts
        masto = next((a for a in official if a.platform == "mastodon"), None)
        base = masto or (official[0] if official else None)
        options = self.svc.options_for(base, row.data.get("boilerplate") or ()) if base else None
        rules = {"mastodon": self.svc.rules_for(masto)} if masto else {}
        if instance is None and masto is not None:
            instance = masto.instance
        kit = share_kit(episode, show=self.settings.show, options=options, rules=rules,
                        instance=instance, posts=self.official_posts(row.id))
        return {"id": row.id, **kit}

    def social_interact(self, ref: str | None = None) -> dict:
        from bot.share import social_interact, social_interact_xml
        row = self.svc.queue.episode(ref or "latest")
        tags = social_interact(self.official_posts(row.id))
        return {"id": row.id, "episode": row.title, "tags": tags,
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

    def community_list(self, *, all_: bool = False) -> list[CommunityPost]:
        """The posts waiting for the host (all of them with `all_`), oldest first."""
        return self.store.community(statuses=None if all_ else ("proposed",))

    def community_decide(self, post_id: int, approve: bool) -> CommunityPost:
        """Approve (the official account boosts it, once) or reject a proposed post; the
        post as decided."""
        now = self.clock()
        with self.store.tx() as c:
            row = self.store.community_post(c, post_id)
            if row is None:
                raise errors.CrierError(f"no community post {post_id} (see `crier community "
                                        "list`)")
            if row.status != "proposed":
                raise errors.CrierError(f"community post {post_id} was already {row.status}")
            status = "approved" if approve else "rejected"
            self.store.decide_community(c, post_id, status, now)
            if approve:
                self._enqueue_community_boost(c, post_id, row.account, now)
        return dataclasses.replace(row, status=status, decided_at=now)

    def _enqueue_community_boost(self, c, post_id: int, account: str, now: datetime) -> None:
        a = self.svc._account(account)
        self.store.enqueue(c, kind="community", dedupe_key=f"community:{post_id}",
                           episode_id=None, now=now, priority=1,
                           targets=[(account, a.platform if a else "mastodon",
                                     DeliveryStatus.PENDING.value)])
