"""The host's promo queue: queued posts (once, recurring, evergreen) checked and previewed per
account, listed, edited, paused and cancelled, fired into the outbox exactly once per
occurrence, and spaced (gaps, quiet hours, announcements first) when they go out."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot import errors
from bot.config import Account
from bot.episodes import episode_from_data
from bot.models import Delivery, DeliveryStatus, EpisodeRecord, Promo, PromoPreview
from bot.schedule import overdue
from bot.status import iso

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

PROMO_KINDS = ("once", "recurring", "evergreen")
# Evergreen promotes the back catalogue: an episode newer than this (or announced within it)
# is still being announced, not "from the archive".
EVERGREEN_MIN_AGE = timedelta(days=30)
PICKS = ("oldest", "random")


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

    def rule(self, row: Promo):
        """The promo's recurrence rule (None for a one-off), with its end."""
        from bot.schedule import parse_rule
        if not row.rule:
            return None
        rule = parse_rule(row.rule, tz=self.tz, start=row.created_at)
        return rule.with_until(row.until) if row.until else rule

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

    def episode(self, ref: str | None) -> EpisodeRecord | None:
        """'latest', a GUID or an episode id → the episode's row; None for None."""
        if ref is None:
            return None
        feeds = self.store.all_feeds()
        if not feeds:
            raise errors.CrierError("no episodes recorded yet: run `crier run --once` first")
        if ref == "latest":
            row = self.store.latest_episode(feeds[0].id)
        else:
            row = self.store.episode_by_guid(ref)
            if row is None and ref.isdigit():
                row = self.store.get_episode(int(ref))
                if row is not None and row.feed_id not in {f.id for f in feeds}:
                    row = None   # another show's episode: not found from this one
        if row is None:
            raise errors.CrierError(f"no episode with GUID or id {ref!r} (see `crier status`; "
                                    "'latest' picks the newest)")
        return row

    def _compose(self, account: Account, promo: Promo, episode_row: EpisodeRecord | None
                 ) -> PromoPreview:
        from bot.compose import DEFAULT_EVERGREEN_TEMPLATE, compose_episode, compose_promo
        rules = self.svc.rules_for(account)
        ep = episode_from_data(episode_row.data) if episode_row else None
        boiler = (episode_row.data.get("boilerplate") or ()) if episode_row else ()
        options = self.svc.options_for(account, boiler)
        if promo.kind == "evergreen":
            if ep is None:
                raise errors.CrierError("no episode to promote")
            template = promo.text or self.settings.evergreen_template or \
                DEFAULT_EVERGREEN_TEMPLATE
            options = replace(options, template=template, template_name="evergreen")
            c = compose_episode(ep, show=self.settings.show, rules=rules, options=options,
                                show_image=episode_row.data.get("show_image"))
        else:
            c = compose_promo(promo.text, show=self.settings.show, rules=rules, episode=ep,
                              options=options, fit=bool(promo.fit))
        image, alt = promo.image_path, promo.alt
        alt_length = len(alt) if alt is not None else None  # (platforms count characters)
        return PromoPreview(account.name, account.platform, c.text, c.length, c.limit,
                            shortened=c.truncated, image=image, alt=alt, alt_length=alt_length,
                            alt_limit=rules.alt_text_limit if alt is not None else None,
                            episode=ep.title if ep else None, link=c.link,
                            trimmed=tuple(c.trimmed), mentions=c.mentions, links=c.links)

    def preview(self, promo: Promo, accounts: list[Account],
                episode_row: EpisodeRecord | None) -> list[PromoPreview]:
        return [self._compose(a, promo, episode_row) for a in accounts]

    # -- add ------------------------------------------------------------------------------
    def add(self, text: str | None, *, at: str | None = None, every: str | None = None,
            until: str | None = None, accounts: Iterable[str] | None = None,
            image: str | None = None, alt: str | None = None, episode: str | None = None,
            fit: bool = False, evergreen: bool = False, pick: str = "oldest",
            cooldown_days: int | None = None, dry: bool = False
            ) -> tuple[int | None, Promo, list[PromoPreview]]:
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
        values = {"kind": kind, "text": (text or None) if evergreen else text,  # the new row
                  "accounts": [a.name for a in targets] if accounts else None,
                  "image_path": image_path, "alt": alt,
                  "episode_id": ep_row.id if ep_row and not evergreen else None,
                  "rule": rule.text if rule else None, "until": rule.until if rule else None,
                  "next_at": first, "status": "active", "fit": fit,
                  "pick": pick if evergreen else None,
                  "cooldown_days": cooldown_days if evergreen else None}
        previews = self.preview(Promo(**values), targets, ep_row)
        _refuse_too_long(previews)
        if kind == "recurring" and "{{" not in (text or "") and \
                any(a.platform == "x" for a in targets):
            values["note"] = ("X refuses a tweet identical to a recent one: the same text every "
                              "time may fail there; vary it (e.g. with --episode variables)")
            log.warning("promo: %s", values["note"])
        bad_alt = [p for p in previews if p.alt is not None and p.alt_length > p.alt_limit]
        if bad_alt:
            raise errors.CrierError("alt text too long: " + "; ".join(
                f"{p.account} ({p.platform}) {p.alt_length}/{p.alt_limit} characters"
                for p in bad_alt))
        if dry:
            return None, Promo(**values), previews
        pid = self.store.add_promo(now, **values)
        log.info("promo %d queued (%s), first at %s", pid, kind, first.isoformat())
        return pid, self.get(pid), previews

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
              preview: bool = False) -> EpisodeRecord | None:
        """An older episode not promoted (nor announced) within the cool-down."""
        feeds = self.store.all_feeds()
        if not feeds:
            if preview:
                raise errors.CrierError("no episodes recorded yet: run `crier run --once` "
                                        "first")
            return None
        cooldown = timedelta(days=cooldown_days) if cooldown_days is not None else \
            timedelta(seconds=self.settings.evergreen_cooldown)
        promoted = self.store.last_promoted(feeds[0].id)
        fresh = EVERGREEN_MIN_AGE
        rows = [r for r in self.store.episodes_for_promotion(feeds[0].id)
                if not ((p := promoted.get(r.id)) and now - p < cooldown)
                and not (r.announced_at and now - r.announced_at < fresh)
                and not (r.published_at and now - r.published_at < fresh)]
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
            chosen = min(rows, key=lambda r: (promoted.get(r.id) or floor,
                                              r.published_at or floor, r.id))
        return self.store.get_episode(chosen.id)

    # -- list, show, change -----------------------------------------------------------------
    def plan(self, rows: list[Promo]) -> dict[int, dict[str, datetime]]:
        """When each active promo's next occurrence will actually go out, per account."""
        from bot.spacing import Slot, plan
        now = self.svc.clock()
        accounts = self.settings.posting_accounts
        slots = []
        for r in rows:
            if r.status != "active" or r.next_at is None:
                continue
            names = tuple(r.accounts or [a.name for a in accounts])
            slots.append(Slot(r.id, max(r.next_at, now), names))
        return plan(slots, tz=self.tz,
                    gaps={a.name: timedelta(seconds=self.settings.gap_for(a)) for a in accounts},
                    quiet={a.name: self.settings.quiet_for(a) for a in accounts},
                    last_sent={a.name: self.store.last_sent(a.name) for a in accounts},
                    blocked_until={a.name: now for a in accounts
                                   if self.store.announcement_pending(a.name)})

    def view(self, r: Promo, planned: dict[str, datetime] | None = None) -> dict:
        from bot.schedule import format_local
        rule = self.rule(r)
        return {
            "id": r.id, "kind": r.kind, "status": r.status, "text": r.text,
            "accounts": r.accounts or [a.name for a in self.settings.posting_accounts],
            "rule": rule.describe() if rule else None,
            "next_at": iso(r.next_at),
            "next_local": format_local(r.next_at, self.tz) if r.next_at else None,
            "goes_out": {a: {"utc": iso(t), "local": format_local(t, self.tz)}
                         for a, t in (planned or {}).items()},
            "until": iso(r.until), "image": r.image_path, "alt": r.alt,
            "episode_id": r.episode_id, "fit": r.fit, "pick": r.pick,
            "fired": r.fired, "missed": r.missed, "last_fired_at": iso(r.last_fired_at),
            "note": r.note,
        }

    def list(self, *, all_: bool = False) -> list[dict]:
        rows = self.store.all_promos(include_finished=all_)
        planned = self.plan(rows)
        return [self.view(r, planned.get(r.id)) for r in rows]

    def get(self, promo_id: int) -> Promo:
        row = self.store.promo(promo_id)
        if row is None:
            slug = self.settings.slug  # the store is this show's: another show's id is none
            raise errors.CrierError(f"no queued post {promo_id} in show {slug} (see `crier "
                                    f"queue list --show {slug}`)")
        return row

    def show(self, promo_id: int) -> dict:
        from bot.outbox import describe
        row = self.get(promo_id)
        out = self.view(row, self.plan([row]).get(promo_id))
        now = self.svc.clock()
        out["deliveries"] = [{
            **describe(d, now), "id": d.id, "account": d.account, "status": d.status,
            "due_at": iso(d.due_at), "sent_at": iso(d.sent_at), "url": d.remote_url,
            "error": d.last_error, "next_attempt_at": iso(d.next_attempt_at),
            "text": d.text} for d in self.store.promo_deliveries(promo_id)]
        return out

    def set_status(self, promo_id: int, action: str) -> dict:
        """cancel | pause | resume. Cancelling also withdraws deliveries not yet sending."""
        row = self.get(promo_id)
        now = self.svc.clock()
        allowed = {"cancel": ("active", "paused", "done"), "pause": ("active",),
                   "resume": ("paused",)}[action]
        if row.status not in allowed:
            raise errors.CrierError(f"queued post {promo_id} is {row.status}; cannot "
                                    f"{action} it")
        status = {"cancel": "cancelled", "pause": "paused", "resume": "active"}[action]
        withdrawn = []
        with self.store.tx() as c:
            values: dict = {"status": status}
            if action == "resume" and row.next_at and row.next_at < now and row.rule:
                values["next_at"] = self.rule(row).next_after(now)
                if values["next_at"] is None:
                    values["status"] = "done"
            self.store.update_promo(c, promo_id, now, **values)
            if action in ("cancel", "pause"):
                withdrawn = self.store.withdraw_promo_deliveries(
                    c, promo_id, now, reason=f"queued post {status}")
            if row.status == "done" and not withdrawn:
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
                   if d.status == "pending"]
        if row.status == "cancelled" or (row.status == "done" and not waiting):
            raise errors.CrierError(f"queued post {promo_id} is {row.status}; it cannot be "
                                    "edited")
        if row.status == "done" and (at or every or until or accounts):
            raise errors.CrierError(f"queued post {promo_id} has fired; only its text, image "
                                    "and --fit can change (cancel it and queue a new one)")
        now = self.svc.clock()
        new = row
        if text is not None:
            new = replace(new, text=text)
        if fit is not None:
            new = replace(new, fit=fit)
        if accounts:
            new = replace(new, accounts=[a.name for a in self.accounts(accounts)])
        if image is not None or alt is not None:
            alt = alt if alt is not None else row.alt
            new = replace(new, image_path=self._check_image(image or row.image_path, alt),
                          alt=alt)
        if every:
            rule = parse_rule(every, tz=self.tz, start=now)
            new = replace(new, kind="evergreen" if row.kind == "evergreen" else "recurring",
                          rule=rule.text, next_at=rule.next_after(now), until=None)
        if at:
            if new.rule:
                raise errors.CrierError("this post repeats: change it with --every, not --at")
            first = parse_when(at, now=now, tz=self.tz)
            if first < now - timedelta(seconds=60):
                raise errors.CrierError(f"{at!r} is in the past")
            new = replace(new, next_at=first)
        if until:
            if not new.rule:
                raise errors.CrierError("--until goes with a repeating post")
            rule = parse_rule(new.rule, tz=self.tz, start=now).with_until(
                parse_when(until, now=now, tz=self.tz))
            new = replace(new, rule=rule.text, until=rule.until,
                          next_at=rule.next_after(now - timedelta(seconds=1)))
        targets = self.accounts(new.accounts)
        ep_row = self.store.get_episode(new.episode_id) if new.episode_id else (
            self._pick(new.pick or "oldest", new.cooldown_days, now, preview=True)
            if new.kind == "evergreen" else None)
        previews = self.preview(new, targets, ep_row)
        _refuse_too_long(previews)
        changes = {k: getattr(new, k) for k in ("text", "fit", "accounts", "image_path", "alt",
                                                "kind", "rule", "until", "next_at")
                   if getattr(new, k) != getattr(row, k)}
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
                done.append(self._fire(row.id, now))
            except errors.CrierError as e:
                log.error("promo %d: %s", row.id, e)
                with self.store.tx() as c:
                    self.store.update_promo(c, row.id, now, note=str(e))
        return [d for d in done if d]

    def _fire(self, promo_id: int, now: datetime) -> dict | None:
        from bot.schedule import format_local
        grace = timedelta(seconds=self.settings.promo_grace)
        with self.store.tx() as c:
            row = self.store.promo_in(c, promo_id)
            if row is None or row.status != "active" or row.next_at is None \
                    or row.next_at > now:
                return None
            late, on_time, nxt = overdue(self.rule(row), row.next_at, now, grace)
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
                episode_id = row.episode_id
                if row.kind == "evergreen":
                    pick = self._pick(row.pick or "oldest", row.cooldown_days, now)
                    if pick is None:
                        notes.append("no episode could be promoted (all within the "
                                     "cool-down); skipped")
                        log.warning("promo %d: %s", promo_id, notes[-1])
                    episode_id = pick.id if pick else None
                if row.kind != "evergreen" or episode_id is not None:
                    targets = [(a.name, a.platform, DeliveryStatus.PENDING.value)
                               for a in self.accounts(row.accounts)]
                    # the key: the promo and its firing number, read and moved on in this
                    # transaction, so two processes firing the same occurrence make one post
                    post_id = self.store.enqueue(
                        c, kind="promo", dedupe_key=f"promo:{promo_id}:{row.fired}",
                        episode_id=episode_id, targets=targets, now=now, priority=0,
                        promo_id=promo_id, due_at=occurrence)
            self.store.update_promo(
                c, promo_id, now, next_at=nxt, status="active" if nxt else "done",
                fired=row.fired + (1 if post_id else 0), missed=row.missed + missed,
                last_fired_at=now if post_id else row.last_fired_at,
                note="; ".join(notes) or row.note)
        if late:
            self.svc.alerts.promo_missed(row, late, grace)
        if post_id:
            log.info("promo %d: posting (occurrence %s)", promo_id, occurrence.isoformat())
        return {"promo": promo_id, "post": post_id, "missed": missed, "next_at": nxt}

    # -- spacing at send time -------------------------------------------------------------
    def hold_for(self, d: Delivery, account: Account, now: datetime) -> datetime | None:
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


class TooLongError(errors.CrierError):
    """A post over a network's limit; `previews` holds every account's (the numbers)."""

    def __init__(self, message: str, previews: list[PromoPreview]):
        super().__init__(message)
        self.previews = previews


def _refuse_too_long(previews: list[PromoPreview]) -> None:
    too_long = [p for p in previews if p.length > p.limit]
    if too_long:
        raise TooLongError("too long: " + "; ".join(
            f"{p.account} ({p.platform}) {p.length}/{p.limit} characters"
            for p in too_long) + " — shorten it, or --fit to have it shortened", previews)


def _human(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s % 86400 == 0:
        return f"{s // 86400} days"
    if s % 3600 == 0:
        return f"{s // 3600} hours"
    return f"{s // 60} minutes"
