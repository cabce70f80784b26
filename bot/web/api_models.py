"""The JSON API's shapes: pydantic models for every request body and answer (so
/api/v1/openapi.json documents them), and the functions that turn what the application modules
return (PromoPreview, Preview, Delivery, EpisodeRecord, CommunityPost, promo views) into them,
with a post's text cut into the pieces a network shows (`segments`: links, mentions, hashtags;
the live preview draws them). Nothing here decides anything: it only names and converts.
`scrub` keeps secrets (account tokens, notify URLs, passwords in URLs) out of every answer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.status import iso
from bot.web.segments import PLATFORM_NAMES, segments


class Open(BaseModel):
    """An answer whose extra keys (added by the application module) pass through."""
    model_config = ConfigDict(extra="allow")


class Strict(BaseModel):
    """A request body: an unknown field is a 422 naming it (a typo must not post to every
    account); an empty string is the same as leaving the field out."""
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        return None if v == "" else v


# -- answers --------------------------------------------------------------------------------
class Me(BaseModel):
    name: str
    role: str
    may: dict[str, bool]


class ShowHealth(Open):
    """A show and its health (bot.shows.health)."""
    slug: str
    name: str | None = None
    id: int
    last_poll_at: datetime | None = None
    last_result: str | None = None
    error_count: int = 0
    last_error: str | None = None
    failed: int = 0
    held: int = 0


class AccountOut(BaseModel):
    """An account of the show as the pages show it (never its credentials)."""
    name: str
    platform: str
    instance: str | None = Field(None, description="Mastodon's instance, Bluesky's PDS "
                                 "(`service`), Threads' API base")
    handle: str | None = Field(None, description="Bluesky: the account's handle")
    dry_run: bool
    posting: bool
    configured: bool


class Segment(BaseModel):
    """A piece of a post's text as a network shows it: "text", "link" (`text` is the address
    as shown, cut after LINK_SHOWN characters; `href` the whole), "mention" or "hashtag"."""
    kind: str
    text: str
    href: str | None = None


class PreviewOut(Open):
    """A post composed for one account, as it would go out: counted length and limit.
    `network` ("Mastodon"), `display_name` (the show's name) and `segments` (the text cut into
    links, mentions and hashtags) are what a page needs to draw it as the network would."""
    account: str
    platform: str
    network: str | None = None
    display_name: str | None = None
    text: str
    length: int
    limit: int
    fits: bool
    shortened: bool = False
    link: str | None = None
    hashtags: list[str] = []
    mentions: list[str] = []
    image: str | None = None
    alt: str | None = None
    alt_length: int | None = None
    alt_limit: int | None = None
    trimmed: list[str] | None = None
    episode: str | None = None
    reply_text: str | None = None
    segments: list[Segment] = []


class Previews(BaseModel):
    previews: list[PreviewOut]


class TooLong(BaseModel):
    """422 when a post does not fit: the CLI's message and every account's numbers."""
    detail: str
    previews: list[PreviewOut]


class Planned(BaseModel):
    utc: str | None
    local: str | None


class PromoView(Open):
    """A queued post as `crier queue list --json` shows it (`deliveries` in the one-post
    answers; `withdrawn` after cancel/pause)."""
    id: int | None
    kind: str
    status: str
    text: str | None = None
    accounts: list[str]
    rule: str | None = None
    next_at: str | None = None
    next_local: str | None = None
    goes_out: dict[str, Planned] = {}
    until: str | None = None
    image: str | None = None
    alt: str | None = None
    episode_id: int | None = None
    fit: bool | None = None
    pick: str | None = None
    fired: int = 0
    missed: int = 0
    last_fired_at: str | None = None
    note: str | None = None


class QueueAdded(BaseModel):
    """201 with the queued post; a dry run: 200, `id` null and no promo."""
    id: int | None
    queued: bool
    promo: PromoView | None
    previews: list[PreviewOut]


class PromoEdited(PromoView):
    previews: list[PreviewOut] = []


class DeliveryOut(Open):
    id: int
    account: str
    platform: str
    kind: str
    status: str
    state: str
    detail: str
    error: str | None = None
    url: str | None = None
    episode_id: int | None = None
    episode: str | None = None
    promo_id: int | None = None
    attempts: int = 0
    next_attempt_at: str | None = None
    next_attempt_local: str | None = None
    sent_at: str | None = None
    sent_local: str | None = None
    removed_at: str | None = None     # when the host took its post down (bot.removal)
    text: str | None = None


class RemovedOut(DeliveryOut):
    """POST …/deliveries/{id}/remove: the delivery now, what was done, its boosts'."""
    action: str                       # removed | already removed | dry run: recorded, ...
    boosts_removed: int = 0
    boosts_withdrawn: int = 0


class EpisodeOut(Open):
    id: int
    guid: str | None = None
    title: str
    status: str
    link: str | None = None
    published_at: str | None = None
    published_local: str | None = None
    announced_at: str | None = None
    first_seen_at: str | None = None
    image: str | None = None
    share_url: str


class EpisodeDetail(EpisodeOut):
    summary: str | None = None
    posts: list[DeliveryOut]
    share: dict[str, Any] | None = None


class CommunityOut(Open):
    """A listener's post as `crier community list --json` shows it."""
    id: int
    account: str
    status: str
    url: str
    author: str
    text: str | None = None


# -- request bodies ---------------------------------------------------------------------------
IMAGE_HELP = ("a data: URL (data:image/png;base64,...; JPEG, PNG, GIF or WebP, at most "
              "10 MB) saved under the show's media dir; `alt` is required with it")


class QueueAdd(Strict):
    """`crier queue add` as JSON: the same fields, the same checks, the same messages."""
    text: str | None = Field(None, description="The post (a template).")
    at: str | None = Field(None, description='"tomorrow 9:00", "fri 17:00", ISO 8601.')
    in_: str | None = Field(None, alias="in", description='"2h", "90m", "3 days".')
    every: str | None = Field(None, description='"fri 17:00", "every 2 weeks on mon 9:00".')
    until: str | None = None
    accounts: list[str] | None = Field(None, description="Account names; none: every account.")
    episode: str | int | None = Field(None, description='GUID, episode id or "latest".')
    image: str | None = Field(None, description=IMAGE_HELP)
    alt: str | None = None
    evergreen: bool = False
    fit: bool = False
    pick: str = "oldest"
    cooldown: int | None = Field(None, ge=0, description="Evergreen: days between repeats.")
    dry: bool = Field(False, description="Preview only: queue nothing (answer 200).")


class QueueEdit(Strict):
    """`crier queue edit` as JSON: only the fields given change."""
    text: str | None = None
    at: str | None = None
    in_: str | None = Field(None, alias="in")
    every: str | None = None
    until: str | None = None
    accounts: list[str] | None = None
    image: str | None = Field(None, description=IMAGE_HELP)
    alt: str | None = None
    fit: bool | None = None


class PreviewIn(Strict):
    """A text composed as a promo per account, or (no text) an episode's announcement."""
    text: str | None = None
    episode: str | int | None = Field(None, description='GUID, episode id or "latest".')
    accounts: list[str] | None = None
    fit: bool = False
    image: str | None = Field(None, description=IMAGE_HELP)
    alt: str | None = None


# -- conversions ------------------------------------------------------------------------------
_HASHTAG = re.compile(r"(?<![\w&/#])#(\w+)")
def preview_out(p, *, alt_limit: int | None = None, display_name: str | None = None) -> dict:
    """A PromoPreview (bot.promos) or an announcement's Preview (bot.composer) as PREVIEW
    (`display_name`: the name the post appears under, the show's)."""
    from bot.textlen import extract_mentions
    media = getattr(p, "media", ())
    image = getattr(p, "image", None) or (media[0].source if media else None)
    alt = getattr(p, "alt", None) if hasattr(p, "alt") else (media[0].alt if media else None)
    alt_length = getattr(p, "alt_length", None)
    if alt_length is None and alt is not None:
        alt_length = len(alt)
    alt_limit = getattr(p, "alt_limit", None) or (alt_limit if alt is not None else None)
    fits = p.fits if hasattr(p, "fits") else (
        p.length <= p.limit and (alt_length or 0) <= (alt_limit or alt_length or 0))
    return {"account": p.account, "platform": p.platform,
            "network": PLATFORM_NAMES.get(p.platform, p.platform), "display_name": display_name,
            "text": p.text, "length": p.length,
            "limit": p.limit, "fits": fits,
            "shortened": bool(getattr(p, "shortened", getattr(p, "truncated", False))),
            "link": p.link, "hashtags": _HASHTAG.findall(p.text),
            "mentions": ["@" + m for m, _, _ in extract_mentions(p.text)],
            "image": image, "alt": alt, "alt_length": alt_length, "alt_limit": alt_limit,
            "trimmed": list(p.trimmed) or None, "episode": getattr(p, "episode", None),
            "reply_text": getattr(p, "reply_text", None), "x_cost": _x_cost(p),
            "segments": [{"kind": k, "text": t, "href": h} for k, t, h in segments(p.text)]}


def _x_cost(p) -> str | None:
    """What the post costs on X ("$0.200", bot.xcost), None on other networks."""
    if p.platform != "x":
        return None
    from bot.xcost import post_cost, usd
    return usd(post_cost(p.text, getattr(p, "reply_text", None)))


def local(dt: datetime | None, tz: ZoneInfo) -> str | None:
    from bot.schedule import format_local
    return format_local(dt, tz) if dt else None


def delivery_out(d, described: dict, tz: ZoneInfo, title: str | None = None) -> dict:
    """A Delivery (bot.models) with its shown state (bot.outbox.describe)."""
    return {**described, "id": d.id, "account": d.account, "platform": d.platform,
            "kind": d.kind, "status": d.status, "error": d.last_error, "url": d.remote_url,
            "episode_id": d.episode_id, "episode": title, "promo_id": d.promo_id,
            "attempts": d.attempts, "next_attempt_at": iso(d.next_attempt_at),
            "next_attempt_local": local(d.next_attempt_at, tz), "sent_at": iso(d.sent_at),
            "sent_local": local(d.sent_at, tz), "text": d.text,
            "removed_at": ((d.payload or {}).get("removed") or {}).get("at")}


def episode_out(e, tz: ZoneInfo, share_url: str) -> dict:
    """An EpisodeRecord (bot.models) as the episode list shows it."""
    return {"id": e.id, "guid": e.guid, "title": e.title, "status": e.status, "link": e.link,
            "published_at": iso(e.published_at), "published_local": local(e.published_at, tz),
            "announced_at": iso(e.announced_at), "first_seen_at": iso(e.first_seen_at),
            "image": (e.data or {}).get("image"), "share_url": share_url}


# -- secrets ---------------------------------------------------------------------------------
_SECRET_QUERY = re.compile(r"token|key|secret|pass|auth|sig|session|code", re.I)


def redact_url(url: str) -> str:
    """A URL fit to show: no user:password, no value of a query parameter that looks like a
    credential (a private feed's ?token=...)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    query = urlencode([(k, "***" if _SECRET_QUERY.search(k) else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query if parts.query else "",
                       parts.fragment))


def secrets_of(settings) -> list[str]:
    """Every secret a show's settings hold: account credentials, notify URLs (Apprise URLs
    carry tokens) and the credential parts of its feed URL (a private feed's user:password
    or ?token=...)."""
    out = [str.__str__(v) for a in settings.accounts for v in (a.secrets or {}).values()]
    notify = list(settings.notify) + [u for a in settings.accounts for u in a.notify]
    out += notify
    for url in notify:  # and their parts, should an error quote one
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        out += [x for x in (parts.username, parts.password) if x]
        out += [seg for seg in parts.path.split("/") if len(seg) >= 8]
        out += [v for _, v in parse_qsl(parts.query) if len(v) >= 8]
    try:
        feed = urlsplit(settings.feed or "")
    except ValueError:
        feed = None
    if feed is not None and feed.scheme in ("http", "https"):
        out += [x for x in (feed.password, feed.username) if x]
        out += [v for k, v in parse_qsl(feed.query) if _SECRET_QUERY.search(k)]
    return sorted({s for s in out if s and len(s) >= 4}, key=len, reverse=True)


def scrub(value: Any, secrets: list[str] | tuple[str, ...] = ()) -> Any:
    """`value` (an answer) with every known secret replaced by ***, recursively."""
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, "***")
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    return value


# -- per request ----------------------------------------------------------------------------
def clean(request, value: Any, settings=None) -> Any:
    """An answer scrubbed of the secrets of every show the config names (and `settings`')."""
    secrets: list[str] = []
    for s in [*request.app.state.crier.deployment.shows, *([settings] if settings else [])]:
        secrets += secrets_of(s)
    return scrub(value, sorted(set(secrets), key=len, reverse=True))


def share_url(request, slug: str, episode_id: int) -> str:
    """The episode's public share page, absolute: the request's base URL (its scheme and
    host as the proxy forwarded them, and the app's root path) + /share/{slug}/{id}."""
    return str(request.base_url).rstrip("/") + f"/share/{slug}/{episode_id}"
