"""One process that posts to Bluesky with its record key kept in crier's real Store, as
`crier run` does for a delivery: tests/test_bluesky_crash.py runs it, kills it with SIGKILL
mid-post, and runs it again.

    python -m tests.bskycrash DB_URL SERVICE HANDLE IDEMPOTENCY_KEY TEXT
    (the app password in CRIER_SHOW_APP_PASSWORD; prints the Published as JSON)
"""

from __future__ import annotations

import json
import os
import sys

from bot.models import Post
from bot.platforms.bluesky import BlueskyPublisher
from bot.store import Store


def main(argv: list[str]) -> int:
    db_url, service, handle, key, text = argv
    store = Store(db_url)
    store.migrate()
    publisher = BlueskyPublisher("show", handle=handle, service=service,
                                 app_password=os.environ["CRIER_SHOW_APP_PASSWORD"],
                                 checkpoints=store, timeout=60)
    print("checkpoint before:", json.dumps(store.checkpoint(key)), flush=True)
    published = publisher.publish(Post(text=text, language="en"), key)
    print(json.dumps({"remote_id": published.remote_id, "url": published.url}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
