"""Feed artwork, prepared off the dispatch path so a slow image server never holds up a post.

    art = ArtworkPreparer(cache_dir=settings.media_dir, deadline=settings.image_deadline,
                          allow_private=settings.allow_private_networks)
    try:
        img = art.get(url, max_bytes=rules.image_max_bytes, wait=0.5)  # a PreparedImage
    except ArtworkPending: ...   # still downloading: come back to this delivery later
    except ImageError: ...       # cannot be used (refused, broken, too big, too slow)

A small pool of threads (`WORKERS`) runs `bot.images.prepare_artwork` on URLs a feed named:
http(s) only, through a guarded session per thread (public addresses, or the networks in
`allow_private`), within `deadline` seconds. `get` starts the preparation if it is not under
way, waits at most `wait` seconds, and raises `ArtworkPending` if it is not done by then; the
next `get` for the same URL and size limit picks up the same preparation (finished ones are
handed out once; the image cache makes a second preparation of the same URL cheap).

Application layer: it combines the fetch and images adapters; `service.py` calls it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import CrierError

if TYPE_CHECKING:  # (imported when first used: Pillow costs a CLI command's start-up time)
    from bot.images import PreparedImage

log = logging.getLogger(__name__)

WORKERS = 2   # artwork downloads at once; each is bounded by its deadline
IMAGE_DEADLINE = 30.0  # = bot.fetch.IMAGE_DEADLINE


class ArtworkPending(CrierError):
    """The artwork is still being prepared; the delivery waits for it (no attempt used)."""

    def __init__(self, url: str, waited: float):
        self.url, self.waited = url, waited
        super().__init__(f"waiting for its artwork {url} (still downloading after "
                         f"{waited:g} s)")


class ArtworkPreparer:
    def __init__(self, *, cache_dir: str | Path, allow_private: Iterable[str] = (),
                 deadline: float | None = IMAGE_DEADLINE, workers: int = WORKERS):
        self.cache_dir, self.deadline = cache_dir, deadline
        self.allow_private = tuple(allow_private)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="crier-artwork")
        self._jobs: dict[tuple[str, int], concurrent.futures.Future] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def get(self, url: str, *, max_bytes: int, wait: float) -> PreparedImage:
        """The prepared image; ImageError if it cannot be used; ArtworkPending if it is not
        ready within `wait` seconds."""
        key = (url, max_bytes)
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = self._pool.submit(self._prepare, url, max_bytes)
        try:
            return job.result(timeout=max(0.0, wait))
        except concurrent.futures.TimeoutError:
            raise ArtworkPending(url, round(max(0.0, wait), 1)) from None
        finally:
            if job.done():
                with self._lock:
                    if self._jobs.get(key) is job:
                        del self._jobs[key]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no preparation is running (for tests and shutdown); True if none is."""
        with self._lock:
            jobs = list(self._jobs.values())
        _, running = concurrent.futures.wait(jobs, timeout=timeout)
        return not running

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _prepare(self, url: str, max_bytes: int) -> PreparedImage:
        from bot.fetch import new_session
        from bot.images import ImageError, prepare_artwork
        session = getattr(self._local, "session", None)
        if session is None:  # one per thread: requests sessions are not shared across threads
            session = self._local.session = new_session(guard=True,
                                                        allow_private=self.allow_private)
        try:
            return prepare_artwork(url, cache_dir=self.cache_dir, session=session,
                                   max_bytes=max_bytes, deadline=self.deadline)
        except ImageError:
            raise
        except Exception as e:  # a bug or a library surprise: this image only
            log.exception("artwork %s: unexpected error while preparing it", url)
            raise ImageError(url, f"could not be prepared ({type(e).__name__})") from None
