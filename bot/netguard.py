"""Where a download may connect, and for how long: address checks and total deadlines.

A plain utility under `bot.fetch` (it imports only the standard library, requests and urllib3,
never another crier module), so any adapter may use it.

    session.mount("https://", GuardedAdapter(AddressPolicy.allowing(["10.0.0.0/8"])))
    with Deadline(30):                   # the whole download, however slowly bytes arrive
        session.get(url, stream=True)... # every connection made inside is checked and watched

**Addresses.** `GuardedAdapter(policy)` gives requests connection classes that resolve the host
name themselves, refuse every address that is not a public internet address (loopback,
link-local incl. cloud metadata at 169.254.169.254, private ranges, carrier-grade NAT,
unspecified, multicast, reserved, and the same inside IPv6: IPv4-mapped ::ffff:a.b.c.d, NAT64
64:ff9b::/96, 6to4, unique-local fc00::/7, link-local fe80::/10) unless the policy allows its
network, and then connect to exactly the address that was checked. So a redirect (each hop
opens its own connection) and a name that resolves differently the second time (DNS
rebinding) are covered; a name with both kinds of address is connected to its allowed ones
only. A refusal raises `AddressRefused` before any packet is sent. With
`policy=None` the adapter checks nothing (the host's own endpoints) but still honours deadlines.
Through an HTTP(S) proxy the proxy connects, not us: the target's name is then resolved and
checked here first (best effort: the proxy may resolve it differently).

**Deadlines.** A per-read timeout does not stop a server that sends one byte a second. Inside
`with Deadline(seconds)` every connection the adapter opens or reuses is registered; when the
time is up a single watchdog thread shuts those sockets down, which wakes whatever read or
write is blocked on them (headers or body). `Deadline.expired` then says why the download
broke, and the caller reports that rather than the broken connection (a body cut short must
never be taken for a whole one: check `expired` after reading, too).
"""

from __future__ import annotations

import contextvars
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARED_NAT = ipaddress.ip_network("100.64.0.0/10")     # RFC 6598, carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")           # RFC 6052 well-known prefix
_COMPAT = ipaddress.ip_network("::/96")                 # deprecated IPv4-compatible ::a.b.c.d
_METADATA = ipaddress.ip_address("169.254.169.254")


# -- which addresses -------------------------------------------------------------------------

def why_not_public(ip: IPAddress) -> str | None:
    """Why `ip` is not a public internet address (a phrase), or None when it is one."""
    if ip.version == 6:
        inner, how = _embedded_ipv4(ip)
        if inner is not None:
            reason = why_not_public(inner)
            return f"{how} {inner}: {reason}" if reason else None
    if ip.is_unspecified:
        return "the unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return "a loopback address (this machine)"
    if ip == _METADATA:
        return "the link-local cloud metadata address (it can hand out this machine's secrets)"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services answer there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip in _SHARED_NAT:
        return "a shared carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private network address"
    if ip.version == 6 and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "not a public internet address"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip in _COMPAT and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    return None, ""


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses only, plus the networks the host allowed."""
    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, networks: Iterable[str]) -> AddressPolicy:
        """From CIDR strings ("10.0.0.0/8", "fd00::/8", a bare address); ValueError if bad."""
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks))

    def allows(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if ip.version == 6 and (inner := _embedded_ipv4(ip)[0]) is not None:
            candidates.append(inner)
        return any(c.version == n.version and c in n for c in candidates for n in self.allowed)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a connection to `ip` is refused, or None when it may go ahead."""
        reason = why_not_public(ip)
        if reason is None or self.allows(ip):
            return None
        return reason


class AddressRefused(Exception):
    """A connection refused before it was made. Deliberately not an OSError, so neither
    urllib3 nor requests wraps or retries it: it reaches the caller as it is."""

    def __init__(self, host: str, ip: IPAddress, reason: str):
        self.host, self.ip, self.reason = host, ip, reason
        inner = _embedded_ipv4(ip)[0] if ip.version == 6 else None
        shown = f"::ffff:{inner}" if ip.version == 6 and ip.ipv4_mapped else str(ip)
        named = host.strip("[]")
        where = shown if named in (shown, str(ip)) else f"{host} ({shown})"
        network = f"{inner}/32" if inner is not None else f"{ip}/{ip.max_prefixlen}"
        super().__init__(
            f"refused to connect to {where}: {reason}; addresses named by a feed must be "
            f"public (to allow this one, add \"{network}\" or its network to "
            f"allow_private_networks)")


def check_host(host: str, port: int, policy: AddressPolicy) -> None:
    """Resolve `host` and raise AddressRefused if any of its addresses is refused."""
    for ip in _resolve(host, port):
        if (reason := policy.refusal(ip)) is not None:
            raise AddressRefused(host, ip, reason)


def _resolve(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host.strip("[]"), port, u3connection.allowed_gai_family(),
                               socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


# -- how long --------------------------------------------------------------------------------

_CURRENT: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "crier_deadline", default=None)


class Deadline:
    """A total time limit for everything the guarded connections do inside `with`.
    `seconds=None`: no limit (a no-op)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.at = float("inf")
        self._expired = False
        self._done = False
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[Any, socket.socket | None]] = {}
        self._token: contextvars.Token | None = None

    def __enter__(self) -> Deadline:
        if self.seconds is not None:
            self.at = time.monotonic() + self.seconds
            _WATCHDOG.add(self)
        self._token = _CURRENT.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            self._watched.clear()
        if self._token is not None:
            _CURRENT.reset(self._token)
            self._token = None

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.at

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def watch(self, conn: Any, raw: socket.socket | None = None) -> None:
        """Shut `conn`'s socket down when the time is up (at once if it already is)."""
        with self._lock:
            if self._done:
                return
            if not self._expired:
                self._watched[id(conn)] = (conn, raw)
                return
        _shutdown(conn, raw)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self._expired = True
            watched = list(self._watched.values())
        for conn, raw in watched:
            _shutdown(conn, raw)


def current_deadline() -> Deadline | None:
    return _CURRENT.get()


def _shutdown(conn: Any, raw: socket.socket | None) -> None:
    for sock in (getattr(conn, "sock", None), raw):
        if sock is None:
            continue
        try:
            # the plain socket's shutdown, also on an SSLSocket: it wakes a blocked read
            # without touching the TLS object another thread is using
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return
        except OSError:  # not connected yet, or already closed / detached
            continue


class _Watchdog:
    """One daemon thread that expires deadlines in time order (started on first use)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="crier-deadlines",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                _, _, deadline = heapq.heappop(self._heap)
            deadline._expire()


_WATCHDOG = _Watchdog()


# -- the requests side -----------------------------------------------------------------------

class _Checked:
    """Mixed into urllib3's connection classes: resolve, check, connect, watch."""
    policy: AddressPolicy | None = None

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        deadline = current_deadline()
        timeout = conn.timeout if isinstance(conn.timeout, int | float) else None
        if deadline is not None and deadline.seconds is not None:
            left = deadline.remaining()
            if left <= 0:
                raise ConnectTimeoutError(conn, f"no time left to connect to {conn.host}")
            timeout = left if timeout is None else min(timeout, left)
        try:
            addresses = _resolve(conn._dns_host, conn.port)
        except socket.gaierror as e:
            raise NameResolutionError(conn.host, conn, e) from e
        if self.policy is not None:  # only checked addresses are tried, so none refused is
            refused = [(ip, r) for ip in addresses if (r := self.policy.refusal(ip))]
            addresses = [ip for ip in addresses if not any(ip == r[0] for r in refused)]
            if not addresses:        # ever connected to, whatever the name resolves to
                raise AddressRefused(conn.host, *refused[0])
        error: OSError | None = None
        for ip in addresses:
            try:
                sock = u3connection.create_connection(
                    (str(ip), conn.port), timeout, source_address=conn.source_address,
                    socket_options=conn.socket_options)
            except OSError as e:
                error = e
                continue
            if deadline is not None:
                deadline.watch(conn, sock)
            return sock
        if isinstance(error, TimeoutError):
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})")
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline = current_deadline()
        if deadline is not None and getattr(self, "sock", None) is not None:
            deadline.watch(self)  # a kept-alive connection reused under a new deadline
        super().request(*args, **kwargs)  # type: ignore[misc]


def _pool_classes(policy: AddressPolicy | None) -> dict[str, type]:
    http = type("CheckedHTTPConnection", (_Checked, HTTPConnection), {"policy": policy})
    https = type("CheckedHTTPSConnection", (_Checked, HTTPSConnection), {"policy": policy})
    return {"http": type("CheckedHTTPConnectionPool", (HTTPConnectionPool,),
                         {"ConnectionCls": http}),
            "https": type("CheckedHTTPSConnectionPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": https})}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with checked connections: `policy` (None: any address) and
    deadlines (see the module docstring)."""

    __attrs__ = [*HTTPAdapter.__attrs__, "policy"]

    def __init__(self, policy: AddressPolicy | None = None, **kwargs: Any):
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.policy)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):  # we connect to the proxy: any address
            manager.pool_classes_by_scheme = _pool_classes(None)
        return manager

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if self.policy is not None and select_proxy(request.url, kwargs.get("proxies") or {}):
            parts = urlsplit(request.url)
            if parts.hostname:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                check_host(parts.hostname, port, self.policy)
        return super().send(request, *args, **kwargs)
