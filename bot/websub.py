"""WebSub (W3C Recommendation, 2018): a feed's hub tells crier the moment the feed changes.

How it goes, per feed (one row of `websub_subscriptions`):

1. Discovery (`note_hub`, called by a poll that read a changed body): the feed's channel names
   its hub (`<atom:link rel="hub" href=…>`, or an HTTP `Link: <…>; rel="hub"` header) and its
   topic (`rel="self"`; the URL crier fetched when it names none). A new hub or topic makes the
   row `pending`, with a new random callback token and a new secret; a feed that names no hub
   any more is unsubscribed.
2. Subscription (`maintain`, the worker's `websub` job, only with a top-level `public_url`):
   a form POST to the hub with hub.callback = `<public_url>/websub/<token>`, hub.topic,
   hub.lease_seconds and hub.secret. The hub must be HTTPS (the secret must not travel in the
   clear); plain HTTP only for a hub on loopback (a test hub). The hub's address goes through
   the same guard as the feed's artwork (bot.netguard: public addresses, or a network named in
   `allow_private_networks`). The row is `requested` before the POST is sent (a hub may verify
   before it answers); a refusal or an unreachable hub makes it `failed` with the reason
   (`crier status` shows it) and it is asked again after FAILED_RETRY; polling goes on as ever.
3. Intent verification (`verify_intent`, GET on the callback): the challenge is echoed only for
   a request crier has outstanding on that token (subscribe: `requested`, or an `active` row
   renewing; unsubscribe: `unsubscribing`) and only for the topic it asked about; anything else
   is a 404. A subscribe verification starts the lease (`hub.lease_seconds`); `denied` (5.2)
   records the hub's reason.
4. Renewal: an active lease is renewed when RENEW_AT of it has passed (the same token and
   secret, so notifications keep verifying meanwhile).
5. Notification (`notification`, POST on the callback): dropped (and logged, with the feed and
   the reason, never the secret) unless the subscription was verified, `X-Hub-Signature` is
   `sha1|sha256|sha384|sha512=<hex>` and matches the HMAC of the body under the row's secret
   (constant-time compare), and a `Link: rel="self"` header, if any, names the topic. A good
   one makes the feed due now (bot.push.poll_now): the ordinary conditional GET and detection
   follow, so an unchanged feed costs one 304. The same signed body again (a replay) is
   ignored while this process remembers it (REPLAY_MEMORY notifications); after that, or while
   the feed is still due, a replay costs at most one poll and never posts twice.
6. A feed no show polls any more (a removed show, a moved feed) is unsubscribed; its row is
   deleted when the hub confirms, or when the lease has run out anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from urllib.parse import urljoin, urlsplit

import sqlalchemy as sa

from bot import push
from bot.store import Store, feeds, websub_subscriptions

log = logging.getLogger(__name__)

subs = websub_subscriptions
LEASE_ASKED = 10 * 86400           # hub.lease_seconds asked for; the hub decides
RENEW_AT = 0.8                     # renew when this share of the lease has passed
VERIFY_WAIT = timedelta(minutes=10)    # a request no verification followed is sent again
FAILED_RETRY = timedelta(hours=1)      # a refused or unreachable hub is asked again after
REQUEST_TIMEOUT = (5, 15)          # connect, read (seconds) for the hub's answer
HEAD_BYTES = 256 * 1024            # where the channel's hub link is looked for
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
              "sha512": hashlib.sha512}
REPLAY_MEMORY = 4096
MAX_URL = 2048
LOCK = "websub"                    # many workers: one maintains the subscriptions at a time


# -- discovery (no I/O) ---------------------------------------------------------------------
_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?link\b([^>]*)>", re.I)
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ITEM = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s>]", re.I)
_LINK_HEADER = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")


def _unescape(v: str) -> str:
    import html
    return html.unescape(v)


def discover(head: bytes, link_header: str | None, base: str) -> tuple[str | None, str]:
    """(hub, topic) a feed names: the channel's atom:link rel="hub"/"self" (before its first
    item), else the HTTP Link header's; the topic defaults to `base` (the URL fetched).
    Relative URLs resolve against `base`; only http(s) URLs count."""
    found: dict[str, str] = {}
    cut = _ITEM.search(head)
    for m in _TAG.finditer(head[:cut.start()] if cut else head):
        attrs = {k.lower().split(b":")[-1]: (a if a else b)
                 for k, a, b in _ATTR.findall(m.group(1))}
        rel, href = attrs.get(b"rel"), attrs.get(b"href")
        if rel is None or href is None:
            continue
        for r in rel.decode("utf-8", "replace").lower().split():
            if r in ("hub", "self") and r not in found:
                found[r] = _unescape(href.decode("utf-8", "replace").strip())
    for m in _LINK_HEADER.finditer(link_header or ""):
        rel = re.search(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", m.group(2), re.I)
        for r in ((rel.group(1) or rel.group(2)).lower().split() if rel else ()):
            if r in ("hub", "self") and r not in found:
                found[r] = m.group(1).strip()
    hub = _http_url(found.get("hub"), base)
    topic = _http_url(found.get("self"), base) or base
    return hub, topic


def _http_url(value: str | None, base: str) -> str | None:
    if not value:
        return None
    url = urljoin(base, value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL:
        return None
    return url


def _loopback(host: str | None) -> bool:
    import ipaddress
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def hub_refusal(hub: str) -> str | None:
    """Why crier will not give `hub` a secret (a phrase), or None: HTTPS, or loopback."""
    parts = urlsplit(hub)
    if parts.scheme == "https" or _loopback(parts.hostname):
        return None
    return "the hub is plain HTTP; crier subscribes only over HTTPS (the secret must not " \
           "travel in the clear)"


def callback_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/websub/{token}"


# -- discovery: recording it -----------------------------------------------------------------
def note_hub(store: Store, feed_id: int, res, now: datetime) -> str | None:
    """A poll read the feed's body (`res`, a bot.fetch.FetchResult, body open): record the hub
    it names (a new subscription to make), or that it names none any more. What changed, or
    None. Never raises: push is a bonus over polling."""
    try:
        head = res.body[:HEAD_BYTES] if res.body is not None else b""
        hub, topic = discover(head, getattr(res, "link", None), res.final_url or res.url)
        changed = _record(store, feed_id, hub, topic, now)
        if changed and _kick is not None:
            _kick()            # the worker's websub job runs now, not in up to JOB_SECONDS
        return changed
    except Exception:
        log.exception("websub: feed %s: could not read its hub; polling goes on", feed_id)
        return None


def _record(store: Store, feed_id: int, hub: str | None, topic: str,
            now: datetime) -> str | None:
    with store.tx() as c:
        row = c.execute(sa.select(subs).where(subs.c.feed_id == feed_id)).mappings().first()
        if hub is None:
            if row is None or row["state"] == "unsubscribing":
                return None
            if row["verified_at"] is None and row["state"] != "requested":
                c.execute(subs.delete().where(subs.c.id == row["id"]))
                return "forgotten"
            c.execute(subs.update().where(subs.c.id == row["id"]).values(
                state="unsubscribing", requested_at=None, updated_at=now,
                last_error="the feed names no hub any more"))
            log.info("websub: feed %s names no hub any more; unsubscribing", feed_id)
            return "unsubscribing"
        if row is not None and row["hub"] == hub and row["topic"] == topic:
            return None
        values = dict(hub=hub, topic=topic, token=secrets.token_urlsafe(24),
                      secret=secrets.token_urlsafe(32), state="pending", lease_seconds=None,
                      expires_at=None, requested_at=None, verified_at=None, last_error=None,
                      updated_at=now)
        if row is None:
            c.execute(subs.insert().values(feed_id=feed_id, **values))
        else:  # another hub or topic: a new subscription (the old lease just runs out)
            c.execute(subs.update().where(subs.c.id == row["id"]).values(**values))
        log.info("websub: feed %s names hub %s (topic %s)", feed_id, _shown(hub), _shown(topic))
        return "pending"


# -- subscribing, renewing, unsubscribing ---------------------------------------------------
def _due(row, now: datetime) -> str | None:
    """What a row needs now: "subscribe", "unsubscribe", "forget" or None."""
    state, asked = row["state"], row["requested_at"]
    waited = asked is None or asked + VERIFY_WAIT <= now
    if not row["feed_active"]:
        if row["verified_at"] is None or (row["expires_at"] and row["expires_at"] <= now):
            return "forget"
        return "unsubscribe" if state != "unsubscribing" or waited else None
    if state == "pending":
        return "subscribe"
    if state == "requested":
        return "subscribe" if waited else None
    if state == "active":
        lease = row["lease_seconds"] or 0
        renew = row["expires_at"] is None or \
            row["expires_at"] - timedelta(seconds=lease * (1 - RENEW_AT)) <= now
        return "subscribe" if renew and waited else None
    if state in ("failed", "denied"):
        return "subscribe" if row["updated_at"] + FAILED_RETRY <= now else None
    if state == "unsubscribing":
        if row["verified_at"] is None or (row["expires_at"] and row["expires_at"] <= now):
            return "forget"
        return "unsubscribe" if waited else None
    return None


def maintain(store: Store, public_url: str | None, session, now: datetime, *,
             owner: str = "worker") -> dict[str, int]:
    """Subscribe, renew and unsubscribe what is due (the worker's `websub` job); counts of
    what was done. Without `public_url` nothing is asked (the hub could not reach us)."""
    done: dict[str, int] = {}
    if not public_url:
        return done
    if store.many_workers and not store.acquire_lock(LOCK, owner, now, timedelta(minutes=2)):
        return done
    q = sa.select(subs, sa.func.coalesce(feeds.c.active, sa.false()).label("feed_active")
                  ).select_from(subs.outerjoin(feeds, feeds.c.id == subs.c.feed_id))
    with store.tx() as c:
        rows = list(c.execute(q).mappings())
    for row in rows:
        action = _due(row, now)
        if action is None:
            continue
        if action == "forget":
            with store.tx() as c:
                c.execute(subs.delete().where(subs.c.id == row["id"]))
        else:
            _ask(store, row, action, public_url, session, now)
        done[action] = done.get(action, 0) + 1
    return done


def _ask(store: Store, row, mode: str, public_url: str, session, now: datetime) -> None:
    """Send one subscription request (subscribe or unsubscribe) and record the outcome."""
    refused = hub_refusal(row["hub"]) if mode == "subscribe" else None
    renewing = mode == "subscribe" and row["state"] == "active"
    if refused:
        _set(store, row["id"], state="failed", last_error=refused, updated_at=now)
        log.warning("websub: feed %s: %s (%s)", row["feed_id"], refused, _shown(row["hub"]))
        return
    # recorded before the request: a hub may verify before it answers
    _set(store, row["id"], requested_at=now, updated_at=now,
         state="active" if renewing else ("unsubscribing" if mode == "unsubscribe"
                                          else "requested"))
    form = {"hub.mode": mode, "hub.topic": row["topic"],
            "hub.callback": callback_url(public_url, row["token"])}
    if mode == "subscribe":
        form["hub.lease_seconds"] = str(LEASE_ASKED)
        form["hub.secret"] = row["secret"]
    error = None
    try:
        r = session.post(row["hub"], data=form, timeout=REQUEST_TIMEOUT)
        if not 200 <= r.status_code < 300:
            text = " ".join((r.text or "").split())[:200]
            error = f"the hub answered {r.status_code}" + (f": {text}" if text else "")
        r.close()
    except Exception as e:  # refused address, connection refused, timeout, bad URL
        error = f"the hub could not be reached ({type(e).__name__}: {_safe(e, row['secret'])})"
    if error is None:
        log.info("websub: feed %s: %s request sent to %s", row["feed_id"], mode,
                 _shown(row["hub"]))
        return
    log.warning("websub: feed %s: %s refused: %s; polling goes on", row["feed_id"], mode, error)
    if mode == "unsubscribe":
        _set(store, row["id"], last_error=error, updated_at=now)
    elif renewing:     # the lease runs on meanwhile; asked again after VERIFY_WAIT
        _set(store, row["id"], last_error=error, updated_at=now)
    else:
        _set(store, row["id"], state="failed", last_error=error, updated_at=now)


def _shown(url: str) -> str:
    """A URL as logs show it (no user name or password: bot.fetch.redact_url)."""
    from bot.fetch import redact_url
    return redact_url(url)


def _safe(e: Exception, secret: str) -> str:
    return " ".join(str(e).replace(secret, "***").split())[:300]


def _set(store: Store, sub_id: int, **values) -> None:
    with store.tx() as c:
        c.execute(subs.update().where(subs.c.id == sub_id).values(**values))


# -- the callback ------------------------------------------------------------------------------
def verify_intent(store: Store, token: str, mode: str, topic: str, challenge: str,
                  lease: str | None, reason: str | None, now: datetime) -> str | None:
    """A hub's GET on the callback: the body to answer (the challenge, or "" for a denial
    taken note of), or None (404): crier asked no such thing."""
    if not token or len(token) > 64 or not topic:
        return None
    with store.tx() as c:
        row = c.execute(sa.select(subs).where(subs.c.token == token)).mappings().first()
        if row is None or row["topic"] != topic:
            return None
        asking = row["requested_at"] is not None    # a request sent, not yet verified
        if mode == "denied":
            if row["state"] not in ("requested", "active"):
                return None
            why = " ".join((reason or "no reason given").split())[:300]
            c.execute(subs.update().where(subs.c.id == row["id"]).values(
                state="denied", last_error=f"the hub denied the subscription: {why}",
                updated_at=now))
            log.warning("websub: feed %s: the hub denied the subscription: %s",
                        row["feed_id"], why)
            return ""
        if not challenge or len(challenge) > 1024:
            return None
        if mode == "subscribe" and (row["state"] == "requested" or
                                    (row["state"] == "active" and asking)):
            try:
                seconds = int(lease) if lease else None
            except ValueError:
                return None
            if seconds is None or seconds <= 0:
                return None
            c.execute(subs.update().where(subs.c.id == row["id"]).values(
                state="active", lease_seconds=seconds, verified_at=now, last_error=None,
                requested_at=None,
                expires_at=now + timedelta(seconds=seconds), updated_at=now))
            log.info("websub: feed %s: subscription verified, lease %ss", row["feed_id"],
                     seconds)
            return challenge
        if mode == "unsubscribe" and row["state"] == "unsubscribing":
            c.execute(subs.delete().where(subs.c.id == row["id"]))
            log.info("websub: feed %s: unsubscribed", row["feed_id"])
            return challenge
    return None


class _Seen:
    """The signed bodies recently acted on (a replay of one is ignored), bounded."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def add(self, key) -> bool:
        """True when `key` is new."""
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return False
            self._d[key] = True
            while len(self._d) > self.size:
                self._d.popitem(last=False)
            return True


_seen = _Seen(REPLAY_MEMORY)


def check_signature(secret: str, body: bytes, header: str | None) -> str | None:
    """Why the X-Hub-Signature `header` does not vouch for `body` (a phrase), or None."""
    if not header:
        return "no X-Hub-Signature"
    method, _, given = header.strip().partition("=")
    algo = ALGORITHMS.get(method.strip().lower())
    if algo is None or not given:
        return f"an X-Hub-Signature crier does not know ({method.strip()[:20]!r})"
    expected = hmac.new(secret.encode(), body, algo).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode()):
        return "a bad X-Hub-Signature"
    return None


def notification(store: Store, token: str, body: bytes, signature: str | None,
                 link: str | None, now: datetime) -> tuple[int, str]:
    """A hub's POST on the callback: (HTTP status, what was done). Unknown token: 404;
    otherwise 2xx whatever happens (the spec: a bad signature is ignored, not refused)."""
    with store.tx() as c:
        row = c.execute(sa.select(subs).where(subs.c.token == token)).mappings().first() \
            if token and len(token) <= 64 else None
    if row is None:
        return 404, "no such subscription"
    fid = row["feed_id"]
    why = None
    if row["verified_at"] is None or row["state"] not in ("active", "requested"):
        why = f"the subscription is not verified ({row['state']})"
    else:
        why = check_signature(row["secret"], body, signature)
    if why is None and link:
        _hub, self_url = discover(b"", link, row["topic"])
        if push.url_key(self_url) != push.url_key(row["topic"]):
            why = "it names another topic"
    if why is not None:
        log.warning("websub: notification for feed %s dropped: %s", fid, why)
        return 202, f"dropped: {why}"
    if not _seen.add((token, hashlib.sha256(body).digest())):
        log.info("websub: notification for feed %s: a replay, ignored", fid)
        return 202, "replay"
    _set(store, row["id"], last_notified_at=now)
    made = push.poll_now(store, [fid], via="websub", now=now)
    return 202, "polling now" if made else "feed not active"


# -- what `crier status` shows ----------------------------------------------------------------
def subscriptions(store: Store, feed_ids) -> dict[int, dict]:
    """feed id -> its subscription row (without the secret)."""
    ids = list(feed_ids)
    if not ids:
        return {}
    cols = [col for col in subs.c if col.name not in ("secret", "token")]
    with store.tx() as c:
        return {r["feed_id"]: dict(r) for r in c.execute(
            sa.select(*cols).where(subs.c.feed_id.in_(ids))).mappings()}


def describe(sub: dict | None, now: datetime) -> str | None:
    """One phrase: how WebSub listens to a feed, or None when its feed names no hub."""
    if sub is None:
        return None
    state, until = sub["state"], sub.get("expires_at")
    if state == "active" and until and until > now:
        text = f"WebSub lease until {until:%Y-%m-%d %H:%M} UTC"
        return text + (f" (renewal: {sub['last_error']})" if sub.get("last_error") else "")
    if state == "active":
        return "WebSub lease expired (renewing)"
    if state == "pending":
        return f"WebSub hub {_shown(sub['hub'])} found, not subscribed yet (needs public_url)"
    if state == "requested":
        return "WebSub subscription requested, waiting for the hub's verification"
    if state == "unsubscribing":
        return "WebSub: unsubscribing"
    return f"WebSub {state}: {sub.get('last_error') or 'no reason given'}"


# -- the worker's job -------------------------------------------------------------------------
JOB_SECONDS = 15
_kick = None    # the worker's "run the websub job now" (set_kick)


def set_kick(fn) -> None:
    """`fn()` runs the worker's websub job now (a hub was found); None: no worker here."""
    global _kick
    _kick = fn


def job(store: Store, deployment, clock, owner: str):
    """The worker's `websub` job: `maintain` with the deployment's public_url, over a session
    guarded like the artwork's (`allow_private_networks`), made once per allow-list."""
    held: dict = {}

    def run() -> None:
        dep = deployment()
        if not dep.public_url:
            return
        key = tuple(dep.allow_private_networks)
        if key not in held:
            from bot.fetch import new_session
            held.clear()
            held[key] = new_session(guard=True, allow_private=key)
        done = maintain(store, dep.public_url, held[key], clock(), owner=owner)
        if done:
            log.info("websub: %s", ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
    return run


def _every(seconds: int) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= n and seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def listening(feed, sub: dict | None, poll_interval: int, now: datetime, *,
              podping: str | None = None, polling: str | None = None) -> dict:
    """How crier listens to a feed (`crier status`): WebSub, podping (its watcher's phrase,
    from bot.podping), polling every … (`polling`: the adaptive schedule's phrase, from
    bot.polling.describe_schedule), and the last notification."""
    ws = describe(sub, now)
    parts = [p for p in (ws, podping) if p]
    parts.append(polling or f"polling every {_every(poll_interval)}")
    last = feed.last_push_at
    line = ", ".join(parts) + (f"; last notification {last:%Y-%m-%d %H:%M:%S} UTC via "
                               f"{feed.last_push_via}" if last else "; no notification yet")
    return {"websub": ws, "podping": podping, "polling": _every(poll_interval),
            "last_notification_at": last.isoformat(timespec="seconds") if last else None,
            "last_notification_via": feed.last_push_via, "line": line}
