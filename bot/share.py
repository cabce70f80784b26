"""What listeners and podcast apps need to spread an episode (pure: no I/O).

* `share_kit`: per network (X, Mastodon, Bluesky, Threads) a ready-to-post listener text, in a
  neutral voice ("🎧 <title> with <guests> · <show>", the link, the show's hashtag), fitted to
  that network's limit, with its share link: X's post intent, Bluesky's compose intent, a
  Mastodon instance's /share page and Threads' web intent; plus the official posts to boost or
  quote.
* `social_interact`: the episode's `<podcast:socialInteract>` tags (Podcasting 2.0) pointing
  podcast apps at the official posts as the episode's comment thread (a Bluesky post by its
  `at://` URI, protocol "bluesky").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import quoteattr

from bot.compose import ComposeOptions, compose_episode
from bot.models import Episode, Rules
from bot.textlen import BLUESKY_RULES, MASTODON_DEFAULT_RULES, THREADS_RULES, X_RULES

PODCAST_NS = "https://podcastindex.org/namespace/1.0"

LISTENER_TEMPLATE = """\
🎧 {{ title }}{% if mentions %} with {{ mentions }}{% endif %}{% if show %} · {{ show }}{% endif %}

{{ link }}

{{ hashtags }}
"""

NETWORKS: dict[str, Rules] = {"x": X_RULES, "mastodon": MASTODON_DEFAULT_RULES,
                              "bluesky": BLUESKY_RULES, "threads": THREADS_RULES}


@dataclass(frozen=True)
class OfficialPost:
    """A post crier made for the episode (a sent delivery)."""
    account: str
    platform: str
    url: str
    remote_id: str | None = None   # Bluesky: the post's at:// URI


@dataclass(frozen=True)
class ShareText:
    network: str
    text: str
    length: int
    limit: int
    share_url: str


def share_url(network: str, text: str, *, instance: str | None = None) -> str:
    """The page that opens a post editor with `text` filled in."""
    q = quote(text, safe="")
    if network == "x":
        return f"https://x.com/intent/post?text={q}"
    if network == "bluesky":
        return f"https://bsky.app/intent/compose?text={q}"
    if network == "threads":
        return f"https://www.threads.net/intent/post?text={q}"
    if network == "mastodon":
        host = (instance or "mastodon.social").strip()
        if "://" not in host:
            host = "https://" + host
        return f"{host.rstrip('/')}/share?text={q}"
    raise ValueError(f"unknown network {network!r}")


def share_kit(episode: Episode, *, show: str, options: ComposeOptions | None = None,
              rules: Mapping[str, Rules] | None = None, instance: str | None = None,
              posts: Iterable[OfficialPost] = ()) -> dict:
    """The listener texts (each within its network's limit), their share links and the
    official posts. `rules` overrides a network's limit (e.g. the show's own instance's);
    `options` carries hashtags, people (mentions) and the link choice. Raises CrierError
    when even the shortest text cannot fit (never for a real feed's episodes)."""
    options = options or ComposeOptions()
    options = replace(options, template=LISTENER_TEMPLATE, template_name="share",
                      link_policy="inline", shorten_links=False)  # no facets in an intent
    texts = []
    for network, default in NETWORKS.items():
        r = (rules or {}).get(network, default)
        c = compose_episode(episode, show=show, rules=r, options=options)
        texts.append(ShareText(network, c.text, c.length, c.limit,
                               share_url(network, c.text, instance=instance)))
    return {"episode": episode.title, "link": episode.link,
            "texts": [t.__dict__ for t in texts],
            "official_posts": [p.__dict__ for p in posts]}


def _account_of(url: str, platform: str) -> tuple[str | None, str | None]:
    """(accountId, accountUrl) from a post's URL: Mastodon https://host/@user/123, X
    https://x.com/user/status/123."""
    parts = urlsplit(url)
    segs = [s for s in parts.path.split("/") if s]
    if platform == "mastodon" and segs and segs[0].startswith("@"):
        user = segs[0][1:]
        return f"@{user}@{parts.hostname}", f"{parts.scheme}://{parts.netloc}/@{user}"
    if platform == "x" and len(segs) >= 3 and segs[1] == "status":
        return f"@{segs[0]}", f"https://x.com/{segs[0]}"
    if platform == "bluesky" and len(segs) >= 4 and segs[0] == "profile" and segs[2] == "post":
        return f"@{segs[1]}", f"https://bsky.app/profile/{segs[1]}"
    return None, None


PROTOCOLS = {"mastodon": "activitypub", "x": "twitter", "bluesky": "bluesky"}


def social_interact(posts: Iterable[OfficialPost]) -> list[dict]:
    """The `<podcast:socialInteract>` attributes for each official post (Mastodon first:
    apps can thread ActivityPub replies; priority 1 is the preferred one)."""
    ordered = sorted((p for p in posts if p.platform in PROTOCOLS and _uri(p)),
                     key=lambda p: (p.platform != "mastodon", p.account))
    out = []
    for i, p in enumerate(ordered, start=1):
        account_id, account_url = _account_of(p.url, p.platform)
        tag = {"uri": _uri(p), "protocol": PROTOCOLS[p.platform], "priority": i}
        if account_id:
            tag["accountId"] = account_id
        if account_url:
            tag["accountUrl"] = account_url
        out.append(tag)
    return out


def _uri(post: OfficialPost) -> str | None:
    """The post as a socialInteract `uri`: Bluesky's at:// URI, else the post's URL."""
    if post.platform == "bluesky":
        rid = post.remote_id or ""
        return rid if rid.startswith("at://") else None
    return post.url


def social_interact_xml(tags: Iterable[dict], *, prefix: str = "podcast") -> str:
    """The tags as XML to paste into the episode's <item> (the feed declares the prefix)."""
    lines = []
    for t in tags:
        attrs = " ".join(f"{k}={quoteattr(str(t[k]))}" for k in
                         ("uri", "protocol", "accountId", "accountUrl", "priority") if k in t)
        lines.append(f"<{prefix}:socialInteract {attrs}/>")
    return "\n".join(lines)
