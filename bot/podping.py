"""The podping watcher: new Hive blocks read through the public Hive JSON-RPC API, their
podpings for a feed crier follows turned into "poll this feed now" (bot.push).

What a podping is (sources in tests/data/podping/README.md):
- a Hive `custom_json` operation whose `id` is `pp_<medium>_<reason>` (podping-hivewriter's
  HiveOperationId; e.g. "pp_podcast_update", "pp_podcast_live") and whose `json` is a text
  holding {"version", "medium", "reason", "iris": [feed URLs]} (podping-schemas' podping.json),
  or the older id "podping" whose JSON names the feed in "url" or "urls" (podping-hivewatcher);
  every reason (update, live, liveEnd, ...) means the feed changed, so every one makes a poll;
- anyone may write a custom_json, so only the accounts the Hive account `podping` follows are
  believed (condenser_api.get_following ["podping", start, "blog", 1000]; how podping's own
  watchers decide and how the project publishes its writers, podping-hivewriter README
  "Permissions and Authorization"). They are read again every WRITERS_TTL and kept in the
  cursor's data, so a restart with no node answering still knows them.

How the chain is read (Hive developer portal, developers.hive.io/apidefinitions):
- `condenser_api.get_dynamic_global_properties` -> head_block_number (crier reads up to the
  head, not the last irreversible block: a block later dropped by a micro-fork costs at most
  one needless conditional GET, and waiting ~45 s for irreversibility would defeat the point);
- `block_api.get_block_range` {"starting_block_num", "count"} -> {"blocks": [...]}, RANGE
  blocks a call; operations come as {"type": "custom_json_operation", "value": {...}} (the
  condenser's ["custom_json", {...}] is read too).

Nodes (`[podping] nodes`, default config.HIVE_NODES: public nodes of the developer portal's
list): tried in order; a node that fails (connection error, timeout, HTTP error, not JSON,
a JSON-RPC error, an answer of the wrong shape) is left for a backoff (5 s doubling to 5 min)
and the next one is asked at once; when every node is in backoff the watcher waits.

Where it stopped: the push_cursors row "podping" (position = the last block read; data: since,
head, writers, last ping). After a restart it goes on from there; after downtime it catches
up, RANGE blocks a call, but at most MAX_CATCH_UP blocks (one hour) back: further behind, it
says so and starts an hour before the head, since every feed's regular poll (the safety net)
has come due during so long a downtime anyway. On its very first start it begins at the head.

One watcher across workers: the lease "podping" in the locks table (LEASE_TTL, renewed each
round); a worker that does not hold it does nothing until the holder stops renewing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from bot.store import Store

log = logging.getLogger(__name__)

CURSOR = "podping"                   # push_cursors row
LEASE = "podping"                    # locks row: one watcher across workers
LEASE_TTL = timedelta(seconds=60)
WRITERS_ACCOUNT = "podping"          # the accounts it follows may write podpings
WRITERS_TTL = timedelta(hours=1)
BLOCK_SECONDS = 3.0                  # Hive makes a block every 3 s: the watcher's pace
MAX_CATCH_UP = 1200                  # blocks (one hour) read back after downtime, at most
RANGE = 50                           # blocks per block_api.get_block_range call
BLOCKS_PER_ROUND = 500               # then the lease is renewed and the cursor saved
TIMEOUT = (3.05, 10.0)               # connect, read (seconds) per call
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0
PAGE = 1000                          # condenser_api.get_following's largest page
PODPING_ID = re.compile(r"^pp_[A-Za-z0-9]+_[A-Za-z0-9-]+$")   # pp_<medium>_<reason>
LEGACY_ID = "podping"


class HiveError(Exception):
    """No node answered (each one failed or is in its backoff)."""


@dataclass(frozen=True)
class Ping:
    """A podping from an allowed writer: the feeds it says changed."""
    block: int
    writer: str
    op_id: str
    urls: tuple[str, ...]


@dataclass
class Round:
    """What one round of the watcher did."""
    head: int | None = None
    first: int | None = None            # the first and last block read (None: none)
    last: int | None = None
    skipped: int = 0                    # blocks left unread: more than MAX_CATCH_UP behind
    pings: int = 0                      # podpings from allowed writers
    ignored: int = 0                    # podping ids from writers `podping` does not follow
    malformed: int = 0
    polled: list[int] = field(default_factory=list)   # feed ids made due
    error: str | None = None
    caught_up: bool = True


# -- the API ------------------------------------------------------------------------------
class HiveClient:
    """Hive JSON-RPC over HTTP POST with failover between nodes."""

    def __init__(self, nodes: Iterable[str], *, session: requests.Session | None = None,
                 timeout=TIMEOUT, clock: Callable[[], datetime] | None = None):
        self.nodes = list(dict.fromkeys(nodes))
        if not self.nodes:
            raise ValueError("no Hive API node")
        if session is None:
            from bot.fetch import new_session
            session = new_session()
        self.session, self.timeout = session, timeout
        self.clock = clock or (lambda: datetime.now(UTC))
        self.current = self.nodes[0]
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, datetime] = {}
        self._ids = iter(range(1, 1 << 62))

    def call(self, method: str, params, shape: Callable = lambda r: r):
        """The result of `method`, from the current node or the next ones; `shape` turns it
        into what the caller needs (KeyError/TypeError/ValueError: the node answered wrong)."""
        now = self.clock()
        start = self.nodes.index(self.current)
        order = self.nodes[start:] + self.nodes[:start]
        ready = [n for n in order if self._retry_at.get(n, now) <= now]
        if not ready:
            soonest = min(self._retry_at.values())
            raise HiveError(f"every Hive node failed recently; next try at "
                            f"{soonest:%H:%M:%S} UTC")
        reasons = []
        for node in ready:
            try:
                result = shape(self._post(node, method, params))
            except (requests.RequestException, ValueError, KeyError, TypeError,
                    IndexError) as e:
                reasons.append(f"{node}: {_why(e)}")
                self._failed(node, _why(e), method)
                continue
            self._failures.pop(node, None)
            self._retry_at.pop(node, None)
            self.current = node
            return result
        raise HiveError(f"no Hive node answered {method}: " + "; ".join(reasons))

    def _post(self, node: str, method: str, params):
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)}
        resp = self.session.post(node, json=body, timeout=self.timeout)
        if resp.status_code != 200:
            raise ValueError(f"HTTP {resp.status_code}")
        try:
            answer = resp.json()
        except ValueError:
            raise ValueError("the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON-RPC response")
        if answer.get("error") is not None:
            err = answer["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise ValueError(f"JSON-RPC error: {str(message)[:200]}")
        if "result" not in answer:
            raise ValueError("the answer has no result")
        return answer["result"]

    def _failed(self, node: str, why: str, method: str) -> None:
        n = self._failures[node] = self._failures.get(node, 0) + 1
        wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (n - 1))
        self._retry_at[node] = self.clock() + timedelta(seconds=wait)
        log.warning("podping: Hive node %s failed %s (%s); left alone for %.0f s", node,
                    method, why, wait)

    # the calls the watcher makes
    def head(self) -> int:
        return self.call("condenser_api.get_dynamic_global_properties", [],
                         lambda r: int(r["head_block_number"]))

    def blocks(self, start: int, count: int) -> list[tuple[int, dict]]:
        """(number, block) of the blocks start..start+count-1 the node has, in order."""
        def shape(result):
            out = []
            for i, block in enumerate(result["blocks"]):
                if not isinstance(block, dict):
                    raise TypeError("a block is not an object")
                bid = block.get("block_id")
                num = int(bid[:8], 16) if isinstance(bid, str) and len(bid) >= 8 else start + i
                out.append((num, block))
            return out
        return self.call("block_api.get_block_range",
                         {"starting_block_num": start, "count": count}, shape)

    def following(self, account: str) -> set[str]:
        """The accounts `account` follows ("blog"), every page."""
        names: set[str] = set()
        start: str | None = None
        while True:
            page = self.call("condenser_api.get_following", [account, start, "blog", PAGE],
                             lambda r: [str(e["following"]) for e in r])
            new = [n for n in page if n not in names]
            names.update(page)
            if len(page) < PAGE or not new:
                return names
            start = page[-1]


def _why(e: Exception) -> str:
    if isinstance(e, requests.Timeout):
        return "timed out"
    if isinstance(e, requests.ConnectionError):
        return "cannot connect"
    if isinstance(e, (KeyError, TypeError, IndexError)):
        return f"unexpected answer ({type(e).__name__}: {e})"
    return str(e) or type(e).__name__


# -- reading blocks -----------------------------------------------------------------------
def custom_jsons(block: dict) -> Iterator[dict]:
    """The custom_json operations of a block, in either API's shape."""
    for tx in block.get("transactions") or ():
        for op in (tx.get("operations") or ()) if isinstance(tx, dict) else ():
            if isinstance(op, list) and len(op) == 2 and op[0] == "custom_json":
                value = op[1]
            elif isinstance(op, dict) and op.get("type") == "custom_json_operation":
                value = op.get("value")
            else:
                continue
            if isinstance(value, dict):
                yield value


def read_ping(op: dict, block: int, writers: set[str], tally: Round) -> Ping | None:
    """The podping in a custom_json, if it is one from an allowed writer (others: None,
    counted in `tally`; malformed ones logged)."""
    op_id = op.get("id")
    if not isinstance(op_id, str) or not (PODPING_ID.match(op_id) or op_id == LEGACY_ID):
        return None
    auths = op.get("required_posting_auths") or []
    writer = next((a for a in auths if isinstance(a, str) and a in writers), None)
    if writer is None:
        tally.ignored += 1
        log.debug("podping: block %d: %s from %s, not an account %s follows; ignored",
                  block, op_id, ",".join(map(str, auths)) or "nobody", WRITERS_ACCOUNT)
        return None
    raw = op.get("json")
    try:
        payload = json.loads(raw) if isinstance(raw, str | bytes) else raw
        if not isinstance(payload, dict):
            raise ValueError(f"a JSON {type(payload).__name__}, not an object")
    except ValueError as e:
        tally.malformed += 1
        log.warning("podping: block %d: %s from %s has malformed JSON (%s); ignored", block,
                    op_id, writer, str(e)[:120])
        return None
    found = payload.get("iris")
    if found is None:
        found = payload.get("urls")
    if found is None and payload.get("url") is not None:
        found = [payload.get("url")]
    urls = tuple(u.strip() for u in found if isinstance(u, str) and u.strip()) \
        if isinstance(found, list) else ()
    if not urls:
        tally.malformed += 1
        log.warning("podping: block %d: %s from %s names no feed (no iris, urls or url); "
                    "ignored", block, op_id, writer)
        return None
    tally.pings += 1
    return Ping(block=block, writer=writer, op_id=op_id, urls=urls)


# -- the watcher --------------------------------------------------------------------------
class Watcher:
    """Reads new blocks from where the last round (of any worker) stopped; `round()` once,
    `run(stop)` until `stop` is set. A ping that makes a feed due wakes the worker's poll
    (bot.push.poll_now calls bot.push.wake)."""

    def __init__(self, store: Store, nodes: Iterable[str], *, owner: str,
                 clock: Callable[[], datetime] | None = None,
                 session: requests.Session | None = None, timeout=TIMEOUT,
                 max_catch_up: int = MAX_CATCH_UP):
        self.store, self.owner = store, owner
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = HiveClient(nodes, session=session, timeout=timeout, clock=self.clock)
        self.max_catch_up = max_catch_up
        self._writers: set[str] = set()
        self._writers_at: datetime | None = None

    def round(self) -> Round | None:
        """One round: take or renew the lease, read the blocks up to the head (at most
        BLOCKS_PER_ROUND), act on the pings, save the cursor. None: another worker watches."""
        now = self.clock()
        if not self._lease(now):
            return None
        tally = Round()
        cur = self.store.cursor(CURSOR)
        data = dict(cur["data"]) if cur else {}
        try:
            tally.head = head = self.client.head()
            if cur is None:  # the first start: from the head on, nothing older
                log.info("podping: watching the Hive chain from block %d", head)
                self._save(head, {"since": _iso(now), "head": head}, now)
                return tally
            position = int(cur["position"])
            if head - position > self.max_catch_up:
                tally.skipped = head - self.max_catch_up - position
                log.warning("podping: %d blocks (about %s) behind the chain; reading the last "
                            "%d only (every feed's own poll covers the rest)", head - position,
                            _duration((head - position) * BLOCK_SECONDS), self.max_catch_up)
                position = head - self.max_catch_up
            writers = self._allowed(data, now)
            end = min(head, position + BLOCKS_PER_ROUND)
            tally.caught_up = end >= head
            while position < end:
                got = self.client.blocks(position + 1, min(RANGE, end - position))
                got = [(n, b) for n, b in got if position < n <= end]
                if not got:   # this node is behind the head it told us: next round
                    break
                pings = [p for n, b in got for op in custom_jsons(b)
                         if (p := read_ping(op, n, writers, tally))]
                tally.first = tally.first or got[0][0]
                position = tally.last = got[-1][0]
                data.update(head=head, **self._act(pings, tally, data))
                self._save(position, data, self.clock())
            if tally.last is None:
                data["head"] = head
                self._save(position, data, self.clock())
        except HiveError as e:
            tally.error, tally.caught_up = str(e), True
            log.error("podping: %s", e)
        return tally

    def _lease(self, now: datetime) -> bool:
        """Take or renew the lease; a holder that died on this machine (a crash, kill -9)
        does not make a restart wait for its lease to run out."""
        if self.store.acquire_lock(LEASE, self.owner, now, LEASE_TTL):
            return True
        from bot.locks import _dead_here
        holder = self.store.lock_holder(LEASE)
        if holder and _dead_here(holder["owner"]) and \
                self.store.take_lock(LEASE, holder["owner"], self.owner, now, LEASE_TTL):
            log.warning("podping: %s is no longer running; watching in its place",
                        holder["owner"])
            return True
        return False

    def _allowed(self, data: dict, now: datetime) -> set[str]:
        """The writers: from the chain every WRITERS_TTL, else the last list read (kept in
        the cursor's data, so a restart does not depend on a node answering)."""
        if not self._writers and data.get("writers"):
            self._writers = set(data["writers"])
            self._writers_at = _parse(data.get("writers_at"))
        fresh = self._writers_at and now - self._writers_at < WRITERS_TTL
        if self._writers and fresh:
            return self._writers
        try:
            found = self.client.following(WRITERS_ACCOUNT)
        except HiveError as e:
            if not self._writers:
                raise
            log.warning("podping: the writers could not be read again (%s); keeping the %d "
                        "known", e, len(self._writers))
            return self._writers
        if found != self._writers:
            log.info("podping: %d accounts may write podpings (those %s follows)", len(found),
                     WRITERS_ACCOUNT)
        self._writers, self._writers_at = found, now
        data.update(writers=sorted(found), writers_at=_iso(now))
        return found

    def _act(self, pings: list[Ping], tally: Round, data: dict) -> dict:
        """Make the followed feeds these pings name due now; what to remember of it."""
        if not pings:
            return {}
        from bot import push
        urls = list(dict.fromkeys(u for p in pings for u in p.urls))
        matched = push.feeds_by_url(self.store, urls)
        for p in pings:
            log.debug("podping: block %d: %s from %s: %s", p.block, p.op_id, p.writer,
                      ", ".join(p.urls[:5]) + (" …" if len(p.urls) > 5 else ""))
        if not matched:
            return {}
        now = self.clock()
        polled = push.poll_now(self.store, set(matched.values()), via="podping", now=now)
        tally.polled.extend(polled)
        names = [u for u, fid in matched.items() if fid in polled]
        block = next(p.block for p in pings if any(u in matched for u in p.urls))
        log.info("podping: block %d: %s changed; %s", block, ", ".join(names or matched),
                 "polling now" if polled else "already due")
        return {"last_ping_at": _iso(now), "last_ping_block": block,
                "last_ping_feeds": sorted(set(matched.values()))}

    def _save(self, position: int, data: dict, now: datetime) -> None:
        self.store.save_cursor(CURSOR, position, data, now)
        self.store.acquire_lock(LEASE, self.owner, now, LEASE_TTL)   # renew

    def run(self, stop: threading.Event, pace: float = BLOCK_SECONDS) -> None:
        """Rounds until `stop` is set: at once while catching up, else every `pace` seconds
        (a new block comes every 3 s; longer when every node is in its backoff)."""
        try:
            while not stop.is_set():
                try:
                    tally = self.round()
                except Exception:  # a bug or the database: logged, tried again later
                    log.exception("podping: unexpected error; trying again in a minute")
                    stop.wait(60)
                    continue
                if tally is not None and not tally.caught_up and not tally.error:
                    continue
                stop.wait(pace)
        finally:
            self.store.release_lock(LEASE, self.owner)


class Running:
    """A watcher running in its thread (`crier run`); `stop()` ends it after its round."""

    def __init__(self, watcher: Watcher):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=watcher.run, args=(self._stop,),
                                        name="crier-podping", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout)   # its lease is released as it ends


def start_watcher(store: Store, deployment, owner: str, *,
                  clock: Callable[[], datetime] | None = None) -> Running | None:
    """The watcher in a daemon thread for `crier run`; None when [podping] enabled = false."""
    if not getattr(deployment, "podping_enabled", True):
        log.info("podping: off ([podping] enabled = false)")
        return None
    return Running(Watcher(store, deployment.podping_nodes, owner=owner, clock=clock))


# -- what `crier status` shows ------------------------------------------------------------
def podping_status(store: Store, now: datetime, *, enabled: bool = True,
                   feeds: Iterable = ()) -> dict:
    """The watcher as `crier status` shows it: whether a worker watches now (holds the
    lease), since when, the last block read and when, the last ping crier acted on, and the
    last podping for these `feeds` (a show's Feed rows)."""
    cur = store.cursor(CURSOR)
    holder = store.lock_holder(LEASE)
    data = cur["data"] if cur else {}
    expires = holder and holder["expires_at"]
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    mine = [f.last_push_at for f in feeds
            if getattr(f, "last_push_via", None) == "podping" and f.last_push_at]
    return {
        "enabled": enabled,
        "watching": bool(enabled and expires and expires > now),
        "worker": holder["owner"] if holder else None,
        "since": data.get("since"),
        "last_block": cur["position"] if cur else None,
        "last_block_read_at": _iso(cur["updated_at"]) if cur else None,
        "behind": max(0, int(data.get("head", 0)) - int(cur["position"])) if cur else None,
        "last_ping_at": data.get("last_ping_at"),
        "show_last_ping_at": _iso(max(mine)) if mine else None,
    }


def describe(st: dict) -> str:
    """One line for `crier status`."""
    if not st["enabled"]:
        return "podping: off ([podping] enabled = false)"
    if st["last_block"] is None:
        return "podping: not started yet (a running worker starts it)"
    state = "watching" if st["watching"] else "not watching now (no worker holds it)"
    line = (f"podping: {state} since {st['since'] or '?'}; last block {st['last_block']} "
            f"read {st['last_block_read_at']}")
    if st["behind"]:
        line += f" ({st['behind']} behind)"
    return line + f"; last ping for this show: {st['show_last_ping_at'] or 'none yet'}"


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min"
