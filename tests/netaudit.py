"""Every address a socket connected to, seen by an audit hook on `socket.connect`: proof that
an address was refused before any packet left, with no mock in the way.

    from tests import netaudit
    seen = netaudit.recording()      # cleared; fills as sockets connect
    ...; assert seen == []
"""

from __future__ import annotations

import sys

_CONNECTS: list[tuple] = []


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        _CONNECTS.append(args[1])


sys.addaudithook(_audit)  # (hooks cannot be removed; this one only appends to a list)


def recording() -> list[tuple]:
    """From now on, the addresses every socket.connect goes to, in order."""
    _CONNECTS.clear()
    return _CONNECTS
