"""Where a key is in a TOML text, so configuration errors name the right line.

tomllib keeps no positions, so this reads the text itself: table headers (`[promos]`,
`[[accounts]]`, `[people."A B"]`) split it into sections, and a key is looked for only in the
section it belongs to (the second `[[accounts]]` table's `min_gap` is not the first one's).
Pure: text in, line numbers (1-based) or None out.
"""

from __future__ import annotations

import re

HEADER = re.compile(r"^[ \t]*(\[\[?)[ \t]*([^\]\n]+?)[ \t]*\]\]?[ \t]*(?:#.*)?$", re.M)


def section_span(text: str, table: str | None, index: int = 0) -> tuple[int, int] | None:
    """Where a table's keys are: the top level (table None), `[table]`, or the index-th
    `[[table]]`; from after its header to the next header."""
    headers = [(m.start(), m.end(), m[2].replace(" ", "").replace("\t", ""))
               for m in HEADER.finditer(text)]
    if table is None:
        return 0, headers[0][0] if headers else len(text)
    want = table.replace(" ", "")
    found = [h for h in headers if h[2] == want]
    if index >= len(found):
        return None
    start = found[index][1]
    later = [h[0] for h in headers if h[0] > start]
    return start, later[0] if later else len(text)


def line_of(text: str, key: str, table: str | None = None, index: int = 0,
             *, header: bool = False) -> int | None:
    """The line of `key =` in that table (or of the table's header itself)."""
    span = section_span(text, table, index)
    if span is None:
        return None
    if header:
        return text.count("\n", 0, span[0]) + 1
    m = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.M).search(
        text, span[0], span[1])
    return text.count("\n", 0, m.start()) + 1 if m else None


KEY_PATH = re.compile(r"^(?:(accounts)\[(\d+)\]|(promos|community|people\.\"[^\"]*\"))"
                       r"(?:\.(\w+))?(?:\[\d+\])?$|^(\w+)(?:\[\d+\])?$")


def line_of_path(text: str, key: str) -> int | None:
    """The line of a key named as crier's messages name it: "poll_interval",
    "accounts[1].min_gap", "promos.grace", "accounts[0]" (the table's header)."""
    m = KEY_PATH.match(key)
    if not m:
        return None
    if m[5]:
        return line_of(text, m[5])
    table, index = (m[1], int(m[2])) if m[1] else (m[3], 0)
    if m[4]:
        return line_of(text, m[4], table, index)
    return line_of(text, "", table, index, header=True)
