"""Composing for the accounts: each account's compose options and network rules, previews of an
announcement, and each delivery's final post (announcement, promo, boost, community boost: text
and media) written on its row before its first network call, so every retry sends the same.

On Bluesky and Threads an announcement carries a link card (`payload["card"]`, bot.models
`card_to_data`): on Bluesky its thumbnail is the artwork prepared to the blob limit (a dry run
keeps its URL and downloads nothing); with
`media = "artwork"` the artwork is attached instead (Threads takes a link card only on a post
without an image). Mentions and Bluesky's shortened links go in the payload for the adapter.
An image's public URL, when known, is kept with it (`Media.url`: Threads fetches images).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.artwork import ArtworkPending
from bot.config import Account
from bot.episodes import episode_from_data
from bot.models import Delivery, Episode, Media, Preview, Rules, card_to_data, media_to_data

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

# Artwork that fails to download for a passing reason (timeout, 5xx, 429) is tried again for
# this long after the post was queued; then the post goes out without it, saying so.
ARTWORK_PATIENCE = timedelta(minutes=15)


class Composer:
    """Composes posts for the accounts of `svc` (see the module docstring)."""

    def __init__(self, svc: Service):
        self.svc, self.store, self.settings = svc, svc.store, svc.settings
        self.clock, self.publishers = svc.clock, svc.publishers
        self._rules: dict[str, Rules] = {}
        # Until when (time.monotonic()) the current dispatch pass may wait for feed artwork.
        self.artwork_until = 0.0

    @property
    def session(self):
        return self.svc.session

    # -- announcements ------------------------------------------------------------------------
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
                media = (Media(source=c.image_url, alt=c.alt_text or "", url=c.image_url),)
            out.append(Preview(account=account.name, platform=account.platform,
                               text=c.text, length=c.length, limit=c.limit, link=c.link,
                               truncated=c.truncated, media=media, trimmed=tuple(c.trimmed),
                               reply_text=c.reply_text, card=None if media else c.card))
        return out


    def compose_delivery(self, d: Delivery, account: Account) -> None:
        """Write the delivery's final text (and media) before its first network call, so
        every retry sends exactly the same post."""
        if d.kind == "promo":
            return self._compose_promo_delivery(d, account)
        if d.kind == "boost":
            return self._compose_boost(d, account)
        if d.kind == "community":
            return self._compose_community(d, account)
        row = self.store.get_episode(d.episode_id) if d.episode_id else None
        if row is None:
            raise errors.CrierError(f"delivery {d.id} has no episode or text to post")
        data = row.data
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
                   "media": [], "notes": [], "card": None,
                   "mentions": [list(m) for m in composed.mentions],
                   "links": [list(link) for link in composed.links]}
        card = composed.card
        if account.media == "artwork" and composed.image_url:
            img = self._artwork(d, account, composed.image_url, rules, payload["notes"])
            if img is not None:
                payload["media"] = [media_to_data(Media(
                    img.path, composed.alt_text or "", img.mime_type, url=composed.image_url))]
                card = None  # the image instead of the card (Threads: a card needs no image)
        elif card is not None and card.thumb is not None and account.platform == "bluesky" \
                and not (account.dry_run or self.svc.dry_run):  # a dry run fetches nothing
            img = self._artwork(d, account, card.thumb.source, rules, payload["notes"],
                                what="the card's thumbnail")
            card = replace(card, thumb=replace(card.thumb, source=img.path,
                                               mime_type=img.mime_type) if img else None)
        payload["card"] = card_to_data(card)
        self.store.set_delivery_text(d.id, text=composed.text, payload=payload,
                                     length=length, limit=rules.limit, now=self.clock())


    def _artwork(self, d: Delivery, account: Account, url: str, rules: Rules, notes: list,
                 what: str = "artwork"):
        """The feed's artwork prepared for `rules`, or None (said in `notes`) when it cannot
        be had; a passing failure is tried again for ARTWORK_PATIENCE after the post was
        queued (TransientError)."""
        try:
            return self._feed_artwork(url, rules)
        except ArtworkPending:
            raise
        except errors.CrierError as e:
            if getattr(e, "transient", False) and \
                    self.clock() - d.created_at < ARTWORK_PATIENCE:
                raise errors.TransientError(
                    f"the artwork could not be downloaded yet ({e}); trying again before "
                    "posting", platform=account.platform, account=account.name) from None
            note = f"posted without {what}: {e}"
            log.warning("delivery %d to %s: %s", d.id, account.name, note)
            notes.append(note)
            return None

    def _compose_community(self, d: Delivery, account: Account) -> None:
        post_id = int(d.dedupe_key.split(":")[1])
        with self.store.tx() as c:
            row = self.store.community_post(c, post_id)
        if row is None:
            raise errors.CrierError(f"delivery {d.id}: community post {post_id} is gone")
        self._set_boost(d, row.url, row.status_id, row.author, same_instance=True)

    def _compose_boost(self, d: Delivery, account: Account) -> None:
        """An amplifier's boost of an official post (found by the boost's dedupe key)."""
        official_id = int(d.dedupe_key.split(":")[1])
        official = self.store.delivery(official_id)
        if official is None or not (official.remote_url or official.remote_id):
            raise errors.CrierError(f"delivery {d.id}: the post to boost is gone")
        source = self.svc._account(official.account)
        same = bool(source and source.instance and account.instance and
                    source.instance.rstrip("/").lower() == account.instance.rstrip("/").lower())
        self._set_boost(d, official.remote_url, official.remote_id, official.account,
                        same_instance=same or account.platform == "x")

    def _set_boost(self, d: Delivery, url: str, remote_id: str | None, author: str, *,
                   same_instance: bool) -> None:
        """A boost's "text" says what it boosts; its payload, the post to boost."""
        payload = {"boost_of": {"url": url, "remote_id": remote_id, "account": author,
                                "same_instance": same_instance}, "media": [], "notes": []}
        self.store.set_delivery_text(d.id, text=f"boost of {url}", payload=payload,
                                     length=0, limit=0, now=self.clock())

    def _compose_promo_delivery(self, d: Delivery, account: Account) -> None:
        promo = self.store.promo(d.promo_id) if d.promo_id else None
        if promo is None:
            raise errors.CrierError(f"delivery {d.id}: its queued post is gone")
        row = self.store.get_episode(d.episode_id) if d.episode_id else None
        p = self.svc.queue._compose(account, promo, row)
        if p.length > p.limit:
            raise errors.CrierError(f"the queued post is {p.length} characters for "
                                    f"{account.name}, over the {p.limit} limit")
        rules = self.rules_for(account)
        payload = {"language": _lang(row.data.get("language") if row else None),
                   "visibility": account.visibility, "truncated": p.shortened, "link": None,
                   "trimmed": [], "reply_text": None, "media": [], "notes": [],
                   "mentions": [list(m) for m in p.mentions],
                   "links": [list(link) for link in p.links]}
        if p.image:
            img = self._prepare_image(p.image, rules)
            public = p.image if p.image.lower().startswith(("http://", "https://")) else None
            payload["media"] = [media_to_data(Media(img.path, p.alt or "", img.mime_type,
                                                    url=public))]
        self.store.set_delivery_text(d.id, text=p.text, payload=payload, length=p.length,
                                     limit=p.limit, now=self.clock())

    def _prepare_image(self, url: str, rules: Rules):
        """An image the host named (`crier queue add --image`): a local file is fine."""
        from bot.images import prepare_artwork
        return prepare_artwork(url, cache_dir=self.settings.media_dir, session=self.session,
                               max_bytes=rules.image_max_bytes, trusted=True,
                               deadline=self.settings.image_deadline)

    def _feed_artwork(self, url: str, rules: Rules):
        import time
        wait = self.artwork_until - time.monotonic()
        return self.svc.artwork.get(url, max_bytes=rules.image_max_bytes, wait=wait)



def _lang(language: str | None) -> str | None:
    """Feeds say "en-us"; platforms take ISO 639-1 ("en")."""
    if not language:
        return None
    code = language.strip().split("-")[0].split("_")[0].lower()
    return code if len(code) == 2 and code.isalpha() else None
