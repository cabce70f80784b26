"""Random faults for the fake platforms: a share `rate` of write requests meets one of
500 / 502 / 503, a connection reset (before or after the post is made), a response slower
than the client's timeout (nothing made), "made the post, then too slow to answer", or a 429
with a reset a few seconds away. Seeded, so a failing run can be replayed."""

from __future__ import annotations

import random
import threading
from collections import Counter

KINDS = ("500", "502", "503", "reset_before", "reset_after", "slow", "created_timeout", "429")


class Chaos:
    def __init__(self, rate: float, *, seed: int = 0, client_timeout: float = 1.0,
                 kinds: tuple[str, ...] = KINDS):
        self.rate, self.kinds = rate, kinds
        self.delay = client_timeout + 0.5
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.enabled = True

    def pick(self) -> str | None:
        """The fault for this request, or None."""
        with self._lock:
            if not self.enabled or self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.counts[kind] += 1
            return kind
