"""The bare floor's client, run by bench/scale.py as a child process (one per client kind).

    python bench/floorclient.py KIND URLS_FILE CONCURRENCY REQUEST_TIMEOUT CYCLE_TIMEOUT

KIND is `aiohttp` (one event loop, CONCURRENCY requests in flight, one connection pool),
`requests` (one thread, one Session: the plain way) or `requests-threads` (CONCURRENCY threads,
each with its own Session: a thread pool over requests). URLS_FILE holds one URL a line (all on
127.0.0.1). Each line `cycle` on stdin makes it GET every URL once, conditionally from the
second cycle on (If-None-Match / If-Modified-Since from the feed's last 200), reading each body
in full, and print one JSON line: polls, wall and process CPU seconds, latency p50/p99/max
(request start to body read), counts by status, errors, which URLs answered 200 (when few),
VmRSS/VmHWM. A cycle stops issuing requests past CYCLE_TIMEOUT seconds (`complete: false`).
It exits at `quit` or end of input. Only the URLs given are fetched.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path


def vm_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class State:
    """Validators per URL and the current cycle's tallies."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.etag: list[str | None] = [None] * len(urls)
        self.modified: list[str | None] = [None] * len(urls)

    def headers(self, i: int) -> dict[str, str]:
        h = {}
        if self.etag[i]:
            h["If-None-Match"] = self.etag[i]
        if self.modified[i]:
            h["If-Modified-Since"] = self.modified[i]
        return h

    def remember(self, i: int, headers) -> None:
        self.etag[i] = headers.get("ETag")
        self.modified[i] = headers.get("Last-Modified")


class Tally:
    def __init__(self) -> None:
        self.lat: list[float] = []
        self.status: Counter = Counter()
        self.errors: Counter = Counter()
        self.got200: list[int] = []
        self.lock = threading.Lock()

    def add(self, i: int, status: int | None, lat: float, err: str | None = None) -> None:
        with self.lock:
            self.lat.append(lat)
            if status is None:
                self.errors[err or "error"] += 1
            else:
                self.status[status] += 1
                if status == 200:
                    self.got200.append(i)


async def _aiohttp_cycle(session, st: State, t: Tally, conc: int, deadline: float) -> None:
    import aiohttp
    it = iter(range(len(st.urls)))

    async def worker() -> None:
        for i in it:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            try:
                async with session.get(st.urls[i], headers=st.headers(i)) as r:
                    await r.read()
                    if r.status == 200:
                        st.remember(i, r.headers)
                    t.add(i, r.status, time.perf_counter() - t0)
            except (TimeoutError, aiohttp.ClientError) as e:
                t.add(i, None, time.perf_counter() - t0, type(e).__name__)

    await asyncio.gather(*(worker() for _ in range(conc)))


def _requests_worker(session, st: State, t: Tally, it, lock, deadline: float, timeout: float):
    import requests
    while True:
        with lock:
            i = next(it, None)
        if i is None or time.monotonic() > deadline:
            return
        t0 = time.perf_counter()
        try:
            r = session.get(st.urls[i], headers=st.headers(i), timeout=timeout)
            _ = r.content
            if r.status_code == 200:
                st.remember(i, r.headers)
            t.add(i, r.status_code, time.perf_counter() - t0)
        except requests.RequestException as e:
            t.add(i, None, time.perf_counter() - t0, type(e).__name__)


def _pct(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    return sorted_vals[min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))]


def main() -> int:
    kind, urls_file, conc, req_timeout, cycle_timeout = sys.argv[1:6]
    conc, req_timeout, cycle_timeout = int(conc), float(req_timeout), float(cycle_timeout)
    st = State(Path(urls_file).read_text().split())
    loop = session = None
    sessions: list = []
    if kind == "aiohttp":
        import aiohttp
        loop = asyncio.new_event_loop()

        async def mk():
            return aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=conc, limit_per_host=conc),
                timeout=aiohttp.ClientTimeout(total=req_timeout))
        session = loop.run_until_complete(mk())
    elif kind in ("requests", "requests-threads"):
        import requests
        threads = 1 if kind == "requests" else conc
        sessions = [requests.Session() for _ in range(threads)]
    else:
        print(f"unknown client kind {kind!r}", file=sys.stderr)
        return 2
    for line in sys.stdin:
        if line.strip() != "cycle":
            break
        t = Tally()
        deadline = time.monotonic() + cycle_timeout
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if kind == "aiohttp":
            loop.run_until_complete(_aiohttp_cycle(session, st, t, conc, deadline))
        else:
            it, lock = iter(range(len(st.urls))), threading.Lock()
            workers = [threading.Thread(target=_requests_worker,
                                        args=(s, st, t, it, lock, deadline, req_timeout))
                       for s in sessions]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        lat = sorted(t.lat)
        polls = len(lat)
        print(json.dumps({
            "polls": polls, "complete": polls == len(st.urls), "wall": wall, "cpu": cpu,
            "p50": _pct(lat, 0.50), "p99": _pct(lat, 0.99), "max": lat[-1] if lat else 0.0,
            "status": {str(k): v for k, v in t.status.items()}, "errors": dict(t.errors),
            "got200": t.got200 if len(t.got200) <= max(1000, len(st.urls) // 20) else None,
            "rss_kb": vm_kb("VmRSS"), "hwm_kb": vm_kb("VmHWM")}), flush=True)
    if loop is not None:
        loop.run_until_complete(session.close())
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
