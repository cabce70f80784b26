"""A real local Bluesky PDS (`@atproto/pds`, Bluesky's own server) for the test session.

What this PDS answers (0.4.217, dev mode; tests/test_pds.py checks each of these):

- createRecord with an explicit TID rkey: 200 {"uri": "at://<did>/app.bsky.feed.post/<rkey>",
  "cid", "commit": {"cid", "rev"}, "validationStatus": "valid"}.
- createRecord (or applyWrites#create) with an rkey that already exists: HTTP 500
  {"error": "InternalServerError", "message": "Internal Server Error"} (its log says "There is
  already a value at key: ..."); nothing is written. A 500 is ambiguous, so "did this delivery
  already post?" is asked with getRecord: 400 {"error": "RecordNotFound"} when absent. putRecord
  of the identical value at that rkey is idempotent: 200, same cid, no "commit" in the answer.
- a record the lexicon refuses: HTTP 400 {"error": "InvalidRequest", "message": "Invalid
  app.bsky.feed.post record: grapheme too big (maximum 300, got 301) at $.record.text"} (the
  message names the field; the same for 3,001 bytes, a bad facet, a missing createdAt); a bad
  rkey: 400 InvalidRequest "Invalid record key ..."; an embed naming a blob never uploaded: 400
  {"error": "BlobNotFound"}. uploadBlob of a corrupt image: 500 InternalServerError. getBlob of
  a blob no record references yet: 400.
- an expired access token: HTTP 400 {"error": "ExpiredToken", "message": "Token has expired"}
  (400, not 401); an expired refresh token on refreshSession: the same; a garbled token: 400
  {"error": "InvalidToken"}. These answers carry no ratelimit-* headers. Wrong password on
  createSession: 401 {"error": "AuthenticationRequired", "message": "Invalid identifier or
  password"}; a taken-down account: writes 401 {"error": "AccountTakedown"}.
- refreshSession: a new refreshJwt each time; the used one stays valid for a 2-hour grace
  period. Access JWTs minted in the same second are byte-identical (no jti).
- rate limits (PDS_RATE_LIMITS_ENABLED=true here; in-memory limiter): xrpc answers carry
  `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (epoch seconds) and
  `ratelimit-policy` ("<points>;w=<seconds>") of the tightest limit that applies: createSession
  "30;w=300" (also 300 a day), keyed by the identifier string as sent (handle and DID count
  separately) plus client IP; uploadBlob "1000;w=86400"; the rest "3000;w=300" (global per IP).
  Over a limit: HTTP 429 {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
  ratelimit-remaining "0". Every createSession answer takes at least 350 ms (the PDS pads
  logins against timing attacks), another reason to refresh rather than log in again.
- no AppView: app.bsky.* reads (getProfile, timelines, search) answer 400 InvalidRequest "No
  service configured for app.bsky.actor.getProfile", so the atproto SDK's Client.login (which
  fetches the profile) fails; com.atproto.server.createSession works.
  com.atproto.identity.resolveHandle resolves this PDS's own handles (unknown: 400
  InvalidRequest "Unable to resolve handle").

Install (once, cached by version; the fixture runs it on first use, .ci/run beforehand):
`tests/pds/install.sh` puts
`@atproto/pds@0.4.217` under $CRIER_PDS_DIR (default ~/.cache/crier/pds-0.4.217) and compiles
better-sqlite3 (needs node, npm and a C++ compiler). The `pds` session fixture
(tests/conftest.py) then starts, in a few seconds: a PLC directory stand-in
(tests/fakes/plc_server.py) and the PDS (tests/pds/run.js) on a free loopback port with its data
in a temporary folder, and stops both at the end (the folder and its logs are kept, and their
path printed, when a test failed). It fails - never skips - when the PDS cannot start.

    def test_x(pds):
        acct = pds.create_account("show.test")      # Account(handle, did, password, app_password)
        pds.url                                     # http://127.0.0.1:PORT (PDS_HOSTNAME localhost)
        pds.get_record(acct.did, "app.bsky.feed.post", rkey)   # {"uri", "cid", "value"} or None
        pds.list_records(acct.did, "app.bsky.feed.post")       # every record, newest first
        pds.get_blob(acct.did, cid)                             # bytes
        pds.xrpc("POST", "com.atproto.repo.createRecord", token=..., json=...)  # httpx.Response
        pds.expired(token)          # the same JWT, expired, signed like the PDS signs its own
        pds.takedown(acct.did)      # the account is taken down (AccountTakedown on login)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.plc_server import PLCServer

PDS_VERSION = "0.4.217"
HERE = Path(__file__).resolve().parent
RUN_JS = HERE / "pds" / "run.js"
INSTALL_SH = HERE / "pds" / "install.sh"
ADMIN_PASSWORD = "crier-admin-password"
START_TIMEOUT = 60.0


def pds_dir() -> Path:
    """Where the npm install lives: $CRIER_PDS_DIR or ~/.cache/crier/pds-<version>."""
    env = os.environ.get("CRIER_PDS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "crier" / f"pds-{PDS_VERSION}"


def _installed(modules: Path) -> bool:
    return (modules / "@atproto" / "pds" / "package.json").is_file() and \
        (modules / "better-sqlite3" / "build" / "Release" / "better_sqlite3.node").is_file()


class PDSUnavailable(RuntimeError):
    """The local PDS could not be installed or started (the message says why and what to do)."""


class XRPCError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.error = body.get("error", "")
        self.message = body.get("message", response.text[:200])
        super().__init__(f"{self.status} {self.error}: {self.message}")


@dataclass(frozen=True)
class Account:
    handle: str
    did: str
    password: str
    app_password: str
    email: str = ""
    access_jwt: str = ""
    refresh_jwt: str = ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalPDS:
    def __init__(self, *, rate_limits: bool = True) -> None:
        self.rate_limits = rate_limits
        self.port = 0
        self.tmp: Path | None = None
        self.plc: PLCServer | None = None
        self.proc: subprocess.Popen | None = None
        self.start_seconds = 0.0
        self.jwt_secret = secrets.token_hex(16)
        self._http: httpx.Client | None = None
        self._n = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_url(self) -> str:
        """What the PDS calls itself (its DID documents' service endpoint)."""
        return f"http://localhost:{self.port}"

    # --- start / stop --------------------------------------------------------------------------
    def _check_install(self) -> tuple[str, Path]:
        node = shutil.which("node")
        if not node:
            raise PDSUnavailable("the local Bluesky PDS needs Node.js: apt-get install nodejs npm "
                                 "build-essential, then tests/pds/install.sh (.ci/run does both)")
        modules = pds_dir() / "node_modules"
        if not _installed(modules):   # a first run installs it (cached; about 2-3 minutes)
            done = subprocess.run(["bash", str(INSTALL_SH)], capture_output=True, text=True)
            if done.returncode:
                raise PDSUnavailable(f"{INSTALL_SH} failed ({done.returncode}): "
                                     f"{done.stderr.strip()[-1500:]}")
        if not _installed(modules):
            raise PDSUnavailable(f"@atproto/pds@{PDS_VERSION} is not installed in {pds_dir()}: "
                                 f"run {INSTALL_SH} (.ci/run does it; set CRIER_PDS_DIR to "
                                 "use another folder)")
        return node, modules

    def start(self) -> LocalPDS:
        started = time.monotonic()
        node, modules = self._check_install()
        self.tmp = Path(tempfile.mkdtemp(prefix="crier-pds-"))
        self.plc = PLCServer().start()
        self.port = _free_port()
        data = self.tmp / "data"
        (data / "blobs").mkdir(parents=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.tmp),
            "NODE_PATH": str(modules), "NODE_ENV": "development",
            "PDS_HOSTNAME": "localhost", "PDS_PORT": str(self.port), "PDS_DEV_MODE": "true",
            "PDS_JWT_SECRET": self.jwt_secret, "PDS_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": secrets.token_hex(32),
            "PDS_DATA_DIRECTORY": str(data), "PDS_BLOBSTORE_DISK_LOCATION": str(data / "blobs"),
            "PDS_DID_PLC_URL": self.plc.url, "PDS_INVITE_REQUIRED": "false",
            "PDS_SERVICE_HANDLE_DOMAINS": ".test", "PDS_CRAWLERS": "",
            "PDS_RATE_LIMITS_ENABLED": "true" if self.rate_limits else "false",
            "LOG_ENABLED": "true", "LOG_LEVEL": "info",
            "LOG_DESTINATION": str(self.tmp / "pds.log"),
        }
        stderr = open(self.tmp / "stderr.log", "wb")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen([node, str(RUN_JS)], env=env, cwd=self.tmp,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr)
        stderr.close()
        self._wait_ready(started)
        self._http = httpx.Client(base_url=self.url, timeout=30)
        self.start_seconds = time.monotonic() - started
        return self

    def _wait_ready(self, started: float) -> None:
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        ready = bool(line and line[0].startswith(b'{"ready"'))
        while ready and time.monotonic() - started < START_TIMEOUT:
            try:
                if httpx.get(self.url + "/xrpc/_health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        try:   # its stdout closed or it never got ready: did it exit?
            code = self.proc.wait(0 if ready else 5)
        except subprocess.TimeoutExpired:
            code = None
        tail = self.log_tail()
        self.stop(keep=True)
        why = f"exited at start (exit code {code})" if code is not None else \
            f"did not start within {START_TIMEOUT:.0f} s"
        raise PDSUnavailable(f"the local PDS {why}; logs in {self.tmp}:\n{tail}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.tmp:
            return ""
        out = []
        for name in ("stderr.log", "pds.log"):
            path = self.tmp / name
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the PDS and the PLC stand-in; remove the data folder unless `keep`."""
        if self._http:
            self._http.close()
            self._http = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdin:
            self.proc.stdin.close()
            self.proc.stdout.close()
        if self.plc:
            self.plc.stop()
            self.plc = None
        if self.tmp and not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- XRPC ----------------------------------------------------------------------------------
    def xrpc(self, method: str, nsid: str, *, token: str | None = None, json: Any = None,
             params: dict | None = None, content: bytes | None = None,
             headers: dict | None = None, auth: tuple[str, str] | None = None) -> httpx.Response:
        """One raw XRPC call; returns the response whatever its status."""
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        return self._http.request(method, f"/xrpc/{nsid}", json=json, params=params,
                                  content=content, headers=hdrs, auth=auth)

    def call(self, method: str, nsid: str, **kw: Any) -> Any:
        """XRPC call that must succeed; its JSON (or None), XRPCError otherwise."""
        resp = self.xrpc(method, nsid, **kw)
        if resp.status_code != 200:
            raise XRPCError(resp)
        return resp.json() if resp.content else None

    def admin(self, method: str, nsid: str, **kw: Any) -> Any:
        return self.call(method, nsid, auth=("admin", ADMIN_PASSWORD), **kw)

    # --- accounts ------------------------------------------------------------------------------
    def create_account(self, handle: str, *, password: str | None = None,
                       email: str | None = None) -> Account:
        """A new account (handle ending in ".test") with an app password."""
        n = next(self._n)
        password = password or f"pw-{secrets.token_hex(8)}"
        email = email or f"user{n}-{secrets.token_hex(3)}@example.test"
        made = self.call("POST", "com.atproto.server.createAccount",
                         json={"handle": handle, "email": email, "password": password})
        app = self.call("POST", "com.atproto.server.createAppPassword", token=made["accessJwt"],
                        json={"name": f"crier-{n}"})
        return Account(handle=made["handle"], did=made["did"], password=password,
                       app_password=app["password"], email=email,
                       access_jwt=made["accessJwt"], refresh_jwt=made["refreshJwt"])

    def login(self, identifier: str, password: str) -> dict:
        """com.atproto.server.createSession (counts against its rate limit)."""
        return self.call("POST", "com.atproto.server.createSession",
                         json={"identifier": identifier, "password": password})

    def takedown(self, did: str, *, applied: bool = True) -> None:
        self.admin("POST", "com.atproto.admin.updateSubjectStatus",
                   json={"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did},
                         "takedown": {"applied": applied, "ref": "crier-test"}})

    def expired(self, token: str, *, seconds_ago: int = 60) -> str:
        """The same JWT with its expiry in the past, signed with this PDS's secret (HS256), as
        the PDS signs its own: what a client holds when its token ran out."""
        head, body, _ = token.split(".")
        claims = json.loads(_unb64url(body))
        now = int(time.time())
        life = claims["exp"] - claims["iat"]
        claims["exp"] = now - seconds_ago
        claims["iat"] = claims["exp"] - life
        signing = f"{head}.{_b64url(json.dumps(claims, separators=(',', ':')).encode())}"
        sig = hmac.new(self.jwt_secret.encode(), signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64url(sig)}"

    # --- reading back --------------------------------------------------------------------------
    def get_record(self, did: str, collection: str, rkey: str) -> dict | None:
        """{"uri", "cid", "value"} as the PDS stored it; None when there is no such record."""
        resp = self.xrpc("GET", "com.atproto.repo.getRecord",
                         params={"repo": did, "collection": collection, "rkey": rkey})
        if resp.status_code == 400 and resp.json().get("error") == "RecordNotFound":
            return None
        if resp.status_code != 200:
            raise XRPCError(resp)
        return resp.json()

    def list_records(self, did: str, collection: str) -> list[dict]:
        """Every record of the collection ({"uri", "cid", "value"}), newest first."""
        out: list[dict] = []
        cursor = None
        while True:
            params = {"repo": did, "collection": collection, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = self.call("GET", "com.atproto.repo.listRecords", params=params)
            out.extend(page.get("records", []))
            cursor = page.get("cursor")
            if not cursor or not page.get("records"):
                return out

    def get_blob(self, did: str, cid: str) -> bytes:
        resp = self.xrpc("GET", "com.atproto.sync.getBlob", params={"did": did, "cid": cid})
        if resp.status_code != 200:
            raise XRPCError(resp)
        return resp.content


TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int | None = None, clock_id: int = 0) -> str:
    """A record key in atproto's TID format: 13 base32-sortable characters of (microseconds
    since the epoch << 10 | clock id)."""
    if micros is None:
        micros = time.time_ns() // 1000
    n = (micros << 10) | (clock_id & 0x3FF)
    return "".join(TID_ALPHABET[(n >> (5 * i)) & 31] for i in range(12, -1, -1))


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
