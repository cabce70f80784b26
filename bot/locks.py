"""The single-worker lease kept in the database (SQLite runs one worker): taken, renewed, taken
over from a holder that died on this machine, and released."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.store import Store

log = logging.getLogger(__name__)

WORKER_LOCK = "worker"


def acquire_worker_lock(store: Store, owner: str, now: datetime,
                        ttl: timedelta = timedelta(seconds=90)) -> bool:
    """The database's worker lease. A holder that died on this machine (its pid is
    gone: a crash, a kill -9) does not make a restart wait for its lease to run out."""
    if store.acquire_lock(WORKER_LOCK, owner, now, ttl):
        return True
    holder = store.lock_holder(WORKER_LOCK)
    if holder and _dead_here(holder["owner"]) and \
            store.take_lock(WORKER_LOCK, holder["owner"], owner, now, ttl):
        log.warning("worker lock: %s is no longer running; taking over", holder["owner"])
        return True
    return False


def release_worker_lock(store: Store, owner: str) -> None:
    store.release_lock(WORKER_LOCK, owner)


def _dead_here(owner: str) -> bool:
    """Is `owner` ("host:pid" or "host:pid:once") a process of this host that has exited?"""
    import os
    import socket
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
