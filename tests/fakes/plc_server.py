"""A local stand-in for the did:plc directory (plc.directory), for the local Bluesky PDS.

The PDS (`@atproto/pds`, through `@did-plc/lib`'s Client) registers each new account's DID here
and resolves it back. It follows the directory's HTTP contract as that client uses it:

    POST /{did}              a signed operation (JSON)      200 empty; 400 {"message": ...}
    GET  /{did}              the DID document               404 {"message": "DID not registered"}
    GET  /{did}/data         {did, verificationMethods, rotationKeys, alsoKnownAs, services}
    GET  /{did}/log          every operation, oldest first
    GET  /{did}/log/last     the newest operation
    GET  /{did}/log/audit    [{did, operation, cid, nullified, createdAt}]
    GET  /_health            {"version": ...}

It is honest, not a lookup table: it stores the operations it is sent and builds every answer from
them. A genesis operation must hash to its DID (did:plc: + the first 24 base32 characters of the
SHA-256 of its DAG-CBOR encoding); every operation must be signed (`sig`, base64url, over the
DAG-CBOR of the operation without `sig`) by one of the rotation keys then in force, and a later
one must name the CID of the newest operation as `prev`. A tombstone makes GET /{did} answer 410.
The DID document lists the `verificationMethods` as Multikey entries and the `services` as
service entries, as plc.directory does.

    with PLCServer() as plc:
        plc.url                       # "http://127.0.0.1:<port>"
        plc.operations[did]           # the stored operations, oldest first
        plc.document(did)             # what GET /{did} answers
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import libipld
from atproto_crypto.verify import verify_signature

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT = "https://w3id.org/security/multikey/v1"


class PLCError(ValueError):
    """An operation the directory refuses (answered 400 with the message)."""


def cid_for(op: dict) -> str:
    """The CIDv1 (dag-cbor, sha2-256, base32) of an operation, as `prev` names it."""
    digest = hashlib.sha256(libipld.encode_dag_cbor(op)).digest()
    raw = bytes([0x01, 0x71, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def did_for_genesis(op: dict) -> str:
    digest = hashlib.sha256(libipld.encode_dag_cbor(op)).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_signature(op: dict, keys: list[str]) -> None:
    sig = op.get("sig")
    if not isinstance(sig, str):
        raise PLCError("operation is not signed")
    unsigned = {k: v for k, v in op.items() if k != "sig"}
    data = libipld.encode_dag_cbor(unsigned)
    signature = _b64url(sig)
    for key in keys:
        try:
            if verify_signature(key, data, signature):
                return
        except Exception:  # noqa: BLE001 (a malformed key simply does not verify)
            continue
    raise PLCError("Invalid signature on op")


def _check_shape(op: Any) -> None:
    if not isinstance(op, dict):
        raise PLCError("operation must be a JSON object")
    kind = op.get("type")
    if kind == "plc_tombstone":
        if not isinstance(op.get("prev"), str):
            raise PLCError("tombstone needs prev")
        return
    if kind != "plc_operation":
        raise PLCError(f"unsupported operation type: {kind!r}")
    for name, typ in (("rotationKeys", list), ("verificationMethods", dict),
                      ("alsoKnownAs", list), ("services", dict)):
        if not isinstance(op.get(name), typ):
            raise PLCError(f"operation field {name} missing or of the wrong type")
    if not op["rotationKeys"] or not all(isinstance(k, str) and k.startswith("did:key:")
                                         for k in op["rotationKeys"]):
        raise PLCError("rotationKeys must be did:key strings")
    for key in op["verificationMethods"].values():
        if not (isinstance(key, str) and key.startswith("did:key:")):
            raise PLCError("verificationMethods must be did:key strings")


class PLCServer:
    def __init__(self) -> None:
        self.operations: dict[str, list[dict]] = {}
        self.created_at: dict[str, list[str]] = {}
        self.requests: list[tuple[str, str, int]] = []   # (method, path, status)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- the directory's logic -------------------------------------------------------------
    def submit(self, did: str, op: Any) -> None:
        """Validate and append an operation (what POST /{did} does); raises PLCError."""
        _check_shape(op)
        with self._lock:
            log = self.operations.get(did)
            if not log:
                if op["type"] != "plc_operation" or op.get("prev") is not None:
                    raise PLCError("a new DID's first operation must be a genesis operation")
                if did_for_genesis(op) != did:
                    raise PLCError(f"genesis operation does not hash to {did}")
                _check_signature(op, op["rotationKeys"])
            else:
                last = log[-1]
                if last["type"] == "plc_tombstone":
                    raise PLCError("DID is tombstoned")
                if op.get("prev") != cid_for(last):
                    raise PLCError("operation's prev is not the newest operation")
                _check_signature(op, last["rotationKeys"])
            self.operations.setdefault(did, []).append(op)
            self.created_at.setdefault(did, []).append(
                datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))

    def data(self, did: str) -> dict | None:
        """The document data of a live DID, None when unknown or tombstoned."""
        with self._lock:
            log = list(self.operations.get(did) or [])
        if not log or log[-1]["type"] == "plc_tombstone":
            return None
        op = log[-1]
        return {"did": did, "verificationMethods": op["verificationMethods"],
                "rotationKeys": op["rotationKeys"], "alsoKnownAs": op["alsoKnownAs"],
                "services": op["services"]}

    def document(self, did: str) -> dict | None:
        data = self.data(did)
        if data is None:
            return None
        methods = [{"id": f"{did}#{name}", "type": "Multikey", "controller": did,
                    "publicKeyMultibase": key.removeprefix("did:key:")}
                   for name, key in data["verificationMethods"].items()]
        services = [{"id": f"#{name}", "type": svc.get("type"),
                     "serviceEndpoint": svc.get("endpoint")}
                    for name, svc in data["services"].items()]
        return {"@context": [DID_CONTEXT, MULTIKEY_CONTEXT], "id": did,
                "alsoKnownAs": data["alsoKnownAs"], "verificationMethod": methods,
                "service": services}

    # --- HTTP --------------------------------------------------------------------------------
    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.split("?", 1)[0].strip("/").split("/")]
        if method == "GET" and parts == ["_health"]:
            return 200, {"version": "crier-plc-standin"}
        did = parts[0]
        if not did.startswith("did:plc:"):
            return 404, {"message": "not found"}
        if method == "POST" and len(parts) == 1:
            try:
                self.submit(did, json.loads(body or b"null"))
            except (PLCError, ValueError) as exc:
                return 400, {"message": str(exc)}
            return 200, None
        if method != "GET":
            return 405, {"message": "method not allowed"}
        with self._lock:
            log = list(self.operations.get(did) or [])
            stamps = list(self.created_at.get(did) or [])
        if not log:
            return 404, {"message": f"DID not registered: {did}"}
        rest = parts[1:]
        if rest == []:
            doc = self.document(did)
            return (410, {"message": f"DID not available: {did}"}) if doc is None else (200, doc)
        if rest == ["data"]:
            data = self.data(did)
            return (410, {"message": f"DID not available: {did}"}) if data is None else (200, data)
        if rest == ["log"]:
            return 200, log
        if rest == ["log", "last"]:
            return 200, log[-1]
        if rest == ["log", "audit"]:
            return 200, [{"did": did, "operation": op, "cid": cid_for(op), "nullified": False,
                          "createdAt": at} for op, at in zip(log, stamps, strict=True)]
        return 404, {"message": "not found"}

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _go(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = srv._answer(method, self.path, body)
                out = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                with srv._lock:
                    srv.requests.append((method, self.path, status))

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self._go("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._go("POST")

            def log_message(self, *args) -> None:
                pass

        return Handler

    def start(self) -> PLCServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PLCServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
