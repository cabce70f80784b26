"""The Hive blockchain's JSON-RPC API over HTTP, as the podping watcher (bot.podping) reads
it: the head block, ranges of blocks, whom an account follows, with failover between nodes.

The calls (Hive developer portal, https://developers.hive.io/apidefinitions/; the shapes the
local test node tests/fakes/hive_server.py answers with, sources in tests/data/podping/):
- `condenser_api.get_dynamic_global_properties` [] -> {"head_block_number", ...};
- `block_api.get_block_range` {"starting_block_num", "count"} -> {"blocks": [block, ...]},
  a block's number in the first 8 hex digits of its `block_id`; its transactions'
  operations typed {"type": "custom_json_operation", "value": {...}} (the condenser's
  `condenser_api.get_block` gives ["custom_json", {...}]: `custom_jsons` reads both);
- `condenser_api.get_following` [account, start, "blog", limit <= 1000] -> [{"follower",
  "following", "what"}], a page from `start`.

Every call is a JSON-RPC 2.0 POST. A node that fails (no connection, a timeout, an HTTP status
other than 200, not JSON, a JSON-RPC error, an answer of the wrong shape) is left alone for a
backoff (BACKOFF_FIRST seconds, doubling to BACKOFF_MAX) and the next node is asked at once;
the node that answered is asked first next time. When every node is in its backoff, a call
raises HiveError(waiting=True) without a request.

An adapter: it imports no other module of crier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

import requests

from bot import __version__

log = logging.getLogger(__name__)

USER_AGENT = f"crier/{__version__}"
TIMEOUT = (3.05, 10.0)               # connect, read (seconds) per call
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0
PAGE = 1000                          # condenser_api.get_following's largest page


class HiveError(Exception):
    """No node answered (each one failed, or all are in their backoff: `waiting`)."""

    def __init__(self, message: str, *, retry_at: datetime | None = None,
                 waiting: bool = False):
        super().__init__(message)
        self.retry_at, self.waiting = retry_at, waiting


class HiveClient:
    """Hive JSON-RPC over HTTP POST with failover between nodes."""

    def __init__(self, nodes: Iterable[str], *, session: requests.Session | None = None,
                 timeout=TIMEOUT, clock: Callable[[], datetime] | None = None):
        self.nodes = list(dict.fromkeys(nodes))
        if not self.nodes:
            raise ValueError("no Hive API node")
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
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
                            f"{soonest:%H:%M:%S} UTC", retry_at=soonest, waiting=True)
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
        raise HiveError(f"no Hive node answered {method}: " + "; ".join(reasons),
                        retry_at=min(self._retry_at.values()))

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
        log.warning("Hive node %s failed %s (%s); left alone for %.0f s", node,
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
