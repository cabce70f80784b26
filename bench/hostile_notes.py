"""What a feed with one hostile, huge description costs: parse, boilerplate, compose.

    python bench/hostile_notes.py [SIZE_MB] [SHAPE...]     # default: 10 MB, every shape

Each shape runs in a fresh process (peak RSS is the process's): a feed of two items, the first
with a CDATA description of SIZE_MB of that shape; the time of `parse_feed`, of
`find_boilerplate` over the episodes, and of composing the first episode for X and Mastodon.
Run it with another checkout first on PYTHONPATH to compare. Nothing here is a test.
"""

from __future__ import annotations

import html
import resource
import subprocess
import sys
import time

SHAPES = {
    "prose": "This is a sentence, Dr. Who said. ",           # one 10 MB paragraph
    "paragraphs": "<p>This is a sentence, Dr. Who said.</p>\n",
    "markup": "<b>x</b> ",                                    # a tag every few bytes
    "breaks": "w<br>",
    "blank lines": "<p>word\n\n",
    "links": "https://example.com/a ",                       # a URL every 22 bytes
    "less-than": "a < b ",
    "entities": "&amp;x &lol9; ",
    # not CDATA but escaped in the XML ("&lt;p&gt;"), as many hosts write show notes
    "escaped markup": "<p>Jane <b>Doe</b> &amp; <a href='https://x.example/a'>link</a></p>\n",
}


def feed(desc: str, escaped: bool = False) -> bytes:
    desc = html.escape(desc) if escaped else f"<![CDATA[{desc}]]>"
    return (f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Show</title><link>https://show.example/</link>
<item><title>Ep 1</title><guid>g1</guid><link>https://show.example/1</link>
<description>{desc}</description></item>
<item><title>Ep 0</title><guid>g0</guid><description>short</description></item>
</channel></rss>""").encode()


def one(shape: str, size: int) -> None:
    from bot.compose import compose_episode, find_boilerplate
    from bot.feed import parse_feed
    from bot.textlen import MASTODON_DEFAULT_RULES, X_RULES

    unit = SHAPES[shape]
    data = feed((unit * (size // len(unit) + 1))[:size], shape.startswith("escaped"))
    t0 = time.perf_counter()
    parsed = parse_feed(data)
    t1 = time.perf_counter()
    find_boilerplate(parsed.episodes)
    t2 = time.perf_counter()
    for rules in (X_RULES, MASTODON_DEFAULT_RULES):
        compose_episode(parsed.episodes[0], show="Show", rules=rules)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {shape} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t3 - t2:.2f} | {t3 - t0:.2f} "
          f"| {rss:.0f} |", flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        return one(sys.argv[2], int(sys.argv[3]))
    size = int(float(sys.argv[1]) * 1024 * 1024) if len(sys.argv) > 1 else 10 * 1024 * 1024
    shapes = sys.argv[2:] or list(SHAPES)
    print(f"{size / 1024 / 1024:g} MB description | parse s | boilerplate s | compose s "
          "| total s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for shape in shapes:
        try:
            subprocess.run([sys.executable, __file__, "--one", shape, str(size)], check=True,
                           timeout=600)
        except subprocess.TimeoutExpired:
            print(f"| {shape} | over 600 s | | | | |", flush=True)


if __name__ == "__main__":
    main()
