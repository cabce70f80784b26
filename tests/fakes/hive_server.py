"""A local Hive API node that answers the JSON-RPC calls a podping watcher makes, for tests and
the benchmark. Blocks are built from the documented operation format (tests/data/podping/
README.md names the sources):

- `condenser_api.get_dynamic_global_properties` (params `[]`; also `database_api.` with `{}`):
  `head_block_number`, `head_block_id`, `time`, `last_irreversible_block_num`;
- `block_api.get_block` `{"block_num"}` -> `{"block": {...}}` (or `{}` past the head), and
  `block_api.get_block_range` `{"starting_block_num", "count"}` -> `{"blocks": [...]}` (the
  blocks that exist; count at most 1000, as hived's limit): operations typed
  `{"type": "custom_json_operation", "value": {...}}`;
- `condenser_api.get_block` `[num]` -> the block with operations as `["custom_json", {...}]`
  (the condenser's legacy shape), or null;
- `condenser_api.get_following` `[account, start, "blog", limit]` -> a page of
  `{"follower", "following", "what": ["blog"]}`, sorted by name, from `start` (inclusive);
  limit at most 1000.

A custom_json is `{"required_auths": [], "required_posting_auths": [writer], "id": ...,
"json": "<a JSON text>"}`; a podping's id is `pp_<medium>_<reason>` and its JSON holds
"version", "medium", "reason" and "iris" (the legacy id "podping" holds "url" or "urls").

    with HiveServer(writers=("podping.test",)) as hive:
        hive.url                                   # "http://127.0.0.1:<port>"
        n = hive.ping(["https://feeds.example.org/rss"])   # a new block with one podping
        hive.ping([...], writer="someone.else")    # a writer `podping` does not follow
        hive.ping_legacy(url="...")                # id "podping", {"url": ...}
        hive.custom_json("pp_podcast_update", "{not json", writer=...)   # malformed
        hive.advance(100)                          # 100 empty blocks
        hive.fail_next(status=500, count=2)        # HTTP 500 for the next 2 requests
        hive.fail_next(delay=2.0)                  # answer after 2 s (a client times out)
        hive.fail_next(rpc_error=(-32003, "Assert Exception"))   # a JSON-RPC error
        hive.fail_next(status=500, count=None)     # every request until `clear_faults()`
        hive.requests                              # [(method, params), ...] answered or not

Each `fail_next` may name a `method` (only that method's calls fail). JSON-RPC batches (a list
of calls) are answered as a list. Nothing goes to stderr; `stop()` wakes delayed replies.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BLOCK_SECONDS = 3                  # Hive makes a block every 3 seconds
MAX_RANGE = 1000                   # block_api.get_block_range / get_following page limits
IRREVERSIBLE_LAG = 20              # last_irreversible_block_num trails the head by this much


def podping_json(iris, *, medium: str = "podcast", reason: str = "update",
                 version: str = "1.0") -> str:
    """The JSON text of a podping (podping-schemas' podping.json: version, medium, reason,
    iris)."""
    return json.dumps({"version": version, "medium": medium, "reason": reason,
                       "iris": list(iris)}, separators=(",", ":"))


def custom_json(op_id: str, json_text: str, writer: str) -> dict:
    """A custom_json operation's value, posted with `writer`'s posting authority."""
    return {"required_auths": [], "required_posting_auths": [writer], "id": op_id,
            "json": json_text}


class HiveServer:
    """A Hive API node on 127.0.0.1 in a background thread; its chain grows on demand."""

    def __init__(self, *, head: int = 80_000_000, writers=("podping.test",),
                 podping_account: str = "podping", start: datetime | None = None):
        self.head = head
        self.podping_account = podping_account
        self.following: dict[str, list[str]] = {podping_account: sorted(writers)}
        self.base_time = (start or datetime(2026, 12, 6, 20, 0, tzinfo=UTC)).replace(
            microsecond=0) - timedelta(seconds=BLOCK_SECONDS * head)
        self.blocks: dict[int, list[list[dict]]] = {}   # block -> transactions -> ops
        self.requests: list[tuple[str, Any]] = []
        self._faults: list[dict] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> HiveServer:
        handler = type("Handler", (_Handler,), {"hive": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, client_address: None  # quiet
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # -- the chain ---------------------------------------------------------------------------
    def add_block(self, *operations: dict) -> int:
        """A new head block holding these custom_json operations (one transaction each)."""
        with self._lock:
            self.head += 1
            self.blocks[self.head] = [[op] for op in operations]
            return self.head

    def advance(self, n: int = 1) -> int:
        """`n` empty blocks; the new head."""
        with self._lock:
            self.head += n
            return self.head

    def ping(self, iris, *, writer: str = "podping.test", medium: str = "podcast",
             reason: str = "update", version: str = "1.0") -> int:
        """A new block with one podping (id pp_<medium>_<reason>) naming these feeds."""
        return self.add_block(custom_json(f"pp_{medium}_{reason}",
                                          podping_json(iris, medium=medium, reason=reason,
                                                       version=version), writer))

    def ping_legacy(self, *, url: str | None = None, urls=None,
                    writer: str = "podping.test") -> int:
        """A new block with one podping of the legacy id "podping" (`url` or `urls`)."""
        payload: dict[str, Any] = {"url": url} if url else {"num_urls": len(urls),
                                                           "reason": "feed_update",
                                                           "urls": list(urls)}
        return self.add_block(custom_json("podping", json.dumps(payload), writer))

    def custom_json(self, op_id: str, json_text: str, *, writer: str = "podping.test") -> int:
        """A new block with any custom_json (malformed JSON, another app's id, ...)."""
        return self.add_block(custom_json(op_id, json_text, writer))

    def follow(self, writer: str) -> None:
        with self._lock:
            names = set(self.following[self.podping_account]) | {writer}
            self.following[self.podping_account] = sorted(names)

    # -- faults ------------------------------------------------------------------------------
    def fail_next(self, *, status: int = 500, count: int | None = 1, delay: float = 0.0,
                  rpc_error: tuple[int, str] | None = None, method: str | None = None) -> None:
        """The next `count` requests (None: all, until clear_faults) fail: HTTP `status`,
        or after `delay` seconds, or a JSON-RPC `rpc_error` (code, message)."""
        with self._lock:
            self._faults.append({"status": status, "count": count, "delay": delay,
                                 "rpc_error": rpc_error, "method": method})

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _fault(self, methods: list[str]) -> dict | None:
        with self._lock:
            for f in self._faults:
                if f["method"] is None or f["method"] in methods:
                    if f["count"] is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            self._faults.remove(f)
                    return dict(f)
        return None

    # -- answers -----------------------------------------------------------------------------
    def _time(self, num: int) -> str:
        return (self.base_time + timedelta(seconds=BLOCK_SECONDS * num)).strftime(
            "%Y-%m-%dT%H:%M:%S")

    @staticmethod
    def _block_id(num: int) -> str:
        return f"{num:08x}" + f"{num * 2654435761 % (1 << 128):032x}"

    def _block(self, num: int, legacy: bool) -> dict | None:
        if num < 1 or num > self.head:
            return None
        txs, ids = [], []
        for i, ops in enumerate(self.blocks.get(num, [])):
            tid = f"{num:08x}{i:032x}"
            ids.append(tid)
            shaped = [["custom_json", op] if legacy else
                      {"type": "custom_json_operation", "value": op} for op in ops]
            tx = {"ref_block_num": (num - 1) & 0xFFFF, "ref_block_prefix": 0,
                  "expiration": self._time(num + 20), "operations": shaped,
                  "extensions": [], "signatures": []}
            if legacy:
                tx.update(transaction_id=tid, block_num=num, transaction_num=i)
            txs.append(tx)
        return {"previous": self._block_id(num - 1), "timestamp": self._time(num),
                "witness": "witness.test", "transaction_merkle_root": "0" * 40,
                "extensions": [], "witness_signature": "", "transactions": txs,
                "block_id": self._block_id(num), "signing_key": "", "transaction_ids": ids}

    def _call(self, method: str, params: Any) -> Any:
        """The result of one call; raises _RpcError for a call hived would refuse."""
        with self._lock:
            if method in ("condenser_api.get_dynamic_global_properties",
                          "database_api.get_dynamic_global_properties"):
                return {"head_block_number": self.head, "head_block_id": self._block_id(self.head),
                        "time": self._time(self.head),
                        "last_irreversible_block_num": max(1, self.head - IRREVERSIBLE_LAG)}
            if method == "block_api.get_block":
                block = self._block(int(_param(params, "block_num", 0)), legacy=False)
                return {"block": block} if block else {}
            if method == "block_api.get_block_range":
                start = int(_param(params, "starting_block_num", 0))
                count = int(_param(params, "count", 1))
                if count < 1 or count > MAX_RANGE:
                    raise _RpcError(-32003, f"Assert Exception:count <= {MAX_RANGE}: "
                                            f"You can only ask for {MAX_RANGE} blocks at a time")
                blocks = [self._block(n, legacy=False) for n in range(start, start + count)]
                return {"blocks": [b for b in blocks if b]}
            if method == "condenser_api.get_block":
                return self._block(int(_param(params, 0, 0)), legacy=True)
            if method == "condenser_api.get_following":
                account, start = _param(params, 0, ""), _param(params, 1, None) or ""
                kind, limit = _param(params, 2, "blog"), int(_param(params, 3, 10))
                if limit > MAX_RANGE:
                    raise _RpcError(-32003, f"Assert Exception:limit <= {MAX_RANGE}")
                names = self.following.get(account, []) if kind == "blog" else []
                return [{"follower": account, "following": n, "what": ["blog"]}
                        for n in names if n >= start][:limit]
        raise _RpcError(-32601, f"Could not find method {method.split('.')[-1]}")

    def _answer(self, call: Any) -> dict:
        if not isinstance(call, dict) or "method" not in call:
            return {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"},
                    "id": None}
        reply = {"jsonrpc": "2.0", "id": call.get("id")}
        try:
            reply["result"] = self._call(call["method"], call.get("params"))
        except _RpcError as e:
            reply["error"] = {"code": e.code, "message": e.message}
        except (TypeError, ValueError, IndexError, KeyError) as e:
            reply["error"] = {"code": -32602, "message": f"Invalid parameters: {e}"}
        return reply


def _param(params: Any, key: int | str, default: Any) -> Any:
    if isinstance(params, dict) and isinstance(key, str):
        return params.get(key, default)
    if isinstance(params, list) and isinstance(key, int):
        return params[key] if key < len(params) else default
    if isinstance(params, list) and params and isinstance(params[0], dict) \
            and isinstance(key, str):  # [{"block_num": n}] as some clients send
        return params[0].get(key, default)
    return default


class _RpcError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hive: HiveServer

    def do_POST(self) -> None:
        hive = self.hive
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(200, {"jsonrpc": "2.0", "id": None,
                                    "error": {"code": -32700, "message": "Parse error"}})
        calls = body if isinstance(body, list) else [body]
        methods = [c.get("method", "") for c in calls if isinstance(c, dict)]
        with hive._lock:
            hive.requests.extend((c.get("method"), c.get("params")) for c in calls
                                 if isinstance(c, dict))
        fault = hive._fault(methods)
        if fault and fault["delay"]:
            hive._stop.wait(fault["delay"])
        elif fault and fault["rpc_error"]:
            code, message = fault["rpc_error"]
            return self._send(200, [{"jsonrpc": "2.0", "id": c.get("id"),
                                     "error": {"code": code, "message": message}}
                                    for c in calls] if isinstance(body, list) else
                              {"jsonrpc": "2.0", "id": body.get("id"),
                               "error": {"code": code, "message": message}})
        elif fault:
            return self._send(fault["status"], b"<html><body>upstream error</body></html>",
                              "text/html")
        answers = [hive._answer(c) for c in calls]
        self._send(200, answers if isinstance(body, list) else answers[0])

    def do_GET(self) -> None:
        self._send(405, b"use POST", "text/plain")

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client timed out and went away
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass
