"""The host's other answer to the flood guard: `crier release --dismiss ID...`.

Episodes held by the flood guard (more new ones in one poll than `max_new_per_poll`) wait for
the host. `Service.release` announces them; `dismiss` records them as known and never
announced (status `dismissed`): they leave the held list, a later poll recognises them by
their identity keys as ever, `release --all` does not see them, and evergreen slots do not
promote them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.errors import CrierError
from bot.models import EpisodeRecord, EpisodeStatus
from bot.store import Store

log = logging.getLogger(__name__)


def dismiss(store: Store, episode_ids: Iterable[int] | None) -> list[EpisodeRecord]:
    """Dismiss held episodes (the given ids, or all held ones for None). An id that is not
    held is an error naming it, and nothing is changed. Returns the dismissed episodes."""
    held = {e.id: e for e in store.episodes_with_status(EpisodeStatus.HELD.value)}
    ids = list(held) if episode_ids is None else list(dict.fromkeys(episode_ids))
    not_held = [i for i in ids if i not in held]
    if not_held:
        states = []
        for i in not_held:
            row = store.get_episode(i)
            states.append(f"episode {i} " + (f"is {row.status}" if row else "does not exist"))
        raise CrierError("not held: " + "; ".join(states) +
                         " (see `crier status` for held episodes)")
    done = []
    for i in ids:
        if store.set_episode_status(i, EpisodeStatus.HELD.value, EpisodeStatus.DISMISSED.value):
            log.info("episode %d %r: dismissed by the host; never announced", i,
                     held[i].title)
            done.append(held[i])
    return done
