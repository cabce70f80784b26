"""Push: a hub or the podping stream says a feed changed, and crier polls it now.

Both push paths (bot.websub's callback, bot.podping's watcher) end here:

- `poll_now(store, feed_ids, via=..., now=...)` makes those active feeds due at once
  (`next_poll_at` brought forward to now, never pushed back) and records when and how the
  last push came (`feeds.last_push_at`, `last_push_via`), in one statement. The poll that
  follows is the ordinary one (bot.fleet: conditional GET, detection, the dispatch it wakes),
  so a push for a feed that has not changed costs one 304, and a push repeated while the feed
  is still due costs nothing more.
- `feeds_by_url(store, urls)`: which followed feeds these URLs name (a feed's `url` or the
  `redirect_url` it moved to; http/https, a trailing slash, the host's case and a default
  port do not matter).
- `set_waker(fn)` / `wake()`: the worker registers a function that runs its poll job now;
  a process without a worker (`crier web` alone) has none, and the feed simply waits for the
  worker's next tick (POLL_TICK seconds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa

from bot.store import Store, feeds

log = logging.getLogger(__name__)

VIA = ("websub", "podping")   # what `last_push_via` says (other values are accepted)

_waker: Callable[[], None] | None = None
_waker_lock = threading.Lock()


def set_waker(fn: Callable[[], None] | None) -> None:
    """`fn` runs the poll job now (the worker's); None: no worker in this process."""
    global _waker
    with _waker_lock:
        _waker = fn


def wake() -> bool:
    """Ask this process's worker to poll now; False when there is none (or it failed)."""
    with _waker_lock:
        fn = _waker
    if fn is None:
        return False
    try:
        fn()
    except Exception:  # the feed stays due: the next tick polls it
        log.exception("push: could not wake the poll job; the next tick polls the feed")
        return False
    return True


def poll_now(store: Store, feed_ids: Iterable[int], *, via: str, now: datetime) -> list[int]:
    """Make these feeds due now (active ones only) and wake the worker; the ids made due."""
    ids = sorted({int(i) for i in feed_ids})
    done = store.push_feeds(ids, via, now)
    if done:
        log.info("push (%s): feed(s) %s due now", via, ", ".join(map(str, done)))
        wake()
    return done


def url_key(url: str) -> str:
    """A feed URL as push matching compares it: no scheme, host lower-case, no default port,
    no trailing slash, no fragment (a file path is itself)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"//{host}{path}" + (f"?{parts.query}" if parts.query else "")


def _variants(url: str) -> set[str]:
    """The spellings of `url` a stored feed URL may have, lower-cased (compared with the
    stored URL lower-cased; `url_key` then decides)."""
    key = url_key(url)
    if not key.startswith("//"):
        return {key.lower()}
    host_path, _, query = key.partition("?")
    stems = {host_path, host_path + "/"}
    return {f"{scheme}:{stem}{'?' + query if query else ''}".lower()
            for scheme in ("http", "https") for stem in stems}


def feeds_by_url(store: Store, urls: Iterable[str]) -> dict[str, int]:
    """The followed (active) feeds these URLs name: {url as given: feed id}. A URL matches a
    feed's `url` or its `redirect_url` (see `url_key`); URLs naming no feed are left out."""
    wanted = {u: url_key(u) for u in urls if u and u.strip()}
    # lower(url) walks the feeds table (no index on it): a few ms for thousands of feeds
    if not wanted:
        return {}
    spellings: set[str] = set()
    for u in wanted:
        spellings |= _variants(u)
    spellings = {s for s in spellings if len(s) <= 2048}
    found: dict[str, int] = {}
    names = sorted(spellings)
    with store.engine.connect() as c:
        for i in range(0, len(names), 500):
            part = names[i:i + 500]
            for fid, url, redirect in c.execute(sa.select(
                    feeds.c.id, feeds.c.url, feeds.c.redirect_url).where(
                    feeds.c.active.is_(True),
                    sa.or_(sa.func.lower(feeds.c.url).in_(part),
                           sa.func.lower(feeds.c.redirect_url).in_(part)))):
                for stored in (url, redirect):
                    if stored:
                        found.setdefault(url_key(stored), fid)
    return {u: found[k] for u, k in wanted.items() if k in found}
