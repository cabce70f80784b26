"""Composing for Bluesky and Threads (issue 16): links shown as Bluesky's app shows them with
the whole URL kept for the facet, link cards, guests' handles from the people map, and Threads'
5-link cap."""

from __future__ import annotations

import pytest

from bot.compose import (
    CARD_DESCRIPTION,
    ComposeOptions,
    bluesky_short_url,
    card_description,
    compose_episode,
    compose_promo,
    fit_text,
    render_mention,
)
from bot.errors import CrierError
from bot.models import Card, Episode, Media, Person
from bot.platforms.dryrun import DryRunPublisher
from bot.textlen import (
    BLUESKY_RULES,
    MASTODON_DEFAULT_RULES,
    THREADS_RULES,
    X_RULES,
    count,
    fits,
    link_count,
)

PEOPLE = {"Ana Lima": {"bluesky": "@ana.lima.bsky.social", "threads": "@ana.lima_99",
                       "mastodon": "@ana@hci.social"},
          "Bo Ek": {"bluesky": "bo", "threads": "@bo-ek"}}   # not valid handles: names
LINK = "https://pod.example.com/episodes/42-the-great-one?utm_source=bsky"
EP = Episode(title="Data strikes w/ Ana Lima", link=LINK, image="https://cdn.example.com/42.jpg",
             summary_html="<p>" + "We talk about data leverage and collective action. " * 12
             + "</p>", persons=(Person("Bo Ek"),), language="en-us")


@pytest.mark.parametrize(("url", "shown"), [
    ("https://example.com", "example.com"),
    ("https://example.com/", "example.com"),
    ("https://example.com/ep/7", "example.com/ep/7"),
    ("https://www.example.com/episodes/42", "www.example.com/episodes/42"),  # 12: whole
    ("https://example.com/episodes/42-the", "example.com/episodes/42-…"),   # 16: 13 + …
    ("http://example.com:8080/a?b=c#d", "example.com:8080/a?b=c#d"),
    ("https://user@example.com/x", "example.com/x"),
    ("ftp://example.com/file", "ftp://example.com/file"),
    ("not a url", "not a url"),
])
def test_bluesky_short_url_is_the_official_apps(url: str, shown: str) -> None:
    assert bluesky_short_url(url) == shown


def test_bluesky_announcement_has_its_card_mentions_and_whole_link() -> None:
    opts = ComposeOptions(people=PEOPLE, hashtags=("DataStrikes",))
    c = compose_episode(EP, show="The Show", rules=BLUESKY_RULES, options=opts)
    shown = "pod.example.com/episodes/42-…"
    assert shown in c.text and LINK not in c.text and fits(c.text, BLUESKY_RULES)
    assert c.links == ((shown, LINK),) and c.link == LINK
    # a guest with a valid handle is mentioned, the other is written by name
    assert "@ana.lima.bsky.social" in c.text and "@bo" not in c.text
    assert c.mentions == (("@ana.lima.bsky.social", "Ana Lima"),)
    assert c.text.endswith("#DataStrikes")
    assert c.card == Card(uri=LINK, title="Data strikes w/ Ana Lima",
                          description=card_description(c.card.description),
                          thumb=Media("https://cdn.example.com/42.jpg",
                                      alt="Cover art of The Show: Data strikes w/ Ana Lima",
                                      url="https://cdn.example.com/42.jpg"))
    assert len(c.card.description) <= CARD_DESCRIPTION and c.card.description.endswith("…")
    assert c.card.description.startswith("We talk about data leverage")
    # the summary was cut for the post, not for the card
    assert len(c.card.description) > len(c.text.split("\n\n")[1])


def test_threads_announcement_has_a_card_and_its_handles() -> None:
    c = compose_episode(EP, show="The Show", rules=THREADS_RULES,
                        options=ComposeOptions(people=PEOPLE))
    assert LINK in c.text and c.links == () and c.card.uri == LINK
    assert c.mentions == (("@ana.lima_99", "Ana Lima"),) and "@bo" not in c.text
    assert c.length == count(c.text, THREADS_RULES) <= 500


def test_no_card_elsewhere_or_without_a_link() -> None:
    assert compose_episode(EP, show="S", rules=MASTODON_DEFAULT_RULES).card is None
    assert compose_episode(EP, show="S", rules=X_RULES).card is None
    none = compose_episode(EP, show="S", rules=BLUESKY_RULES,
                           options=ComposeOptions(link_policy="none"))
    assert none.card is None and none.links == () and "pod.example.com" not in none.text


@pytest.mark.parametrize(("name", "platform", "shown"), [
    ("Ana Lima", "bluesky", "@ana.lima.bsky.social"),
    ("Ana Lima", "threads", "@ana.lima_99"),
    ("Bo Ek", "bluesky", "Bo Ek"),          # no dot: not a domain name
    ("Bo Ek", "threads", "Bo Ek"),          # "-" is not in a Threads username
])
def test_render_mention_on_bluesky_and_threads(name: str, platform: str, shown: str) -> None:
    assert render_mention(name, platform, PEOPLE) == shown


def test_threads_post_keeps_at_most_five_links() -> None:
    links = " ".join(f"https://site{i}.org/p." for i in range(7))
    ep = Episode(title="Links galore", link=LINK,
                 summary_html=f"<p>Our first sentence. Read these: {links} Thanks.</p>")
    c = compose_episode(ep, show="S", rules=THREADS_RULES)
    assert link_count(c.text) <= 5 and LINK in c.text
    assert c.trimmed and c.trimmed[0].startswith("summary:")
    # elsewhere the summary keeps them
    assert link_count(compose_episode(ep, show="S", rules=MASTODON_DEFAULT_RULES).text) == 8
    # a template that itself has more than five links: refused, saying why
    many = "{{ title }} " + " ".join(f"https://t{i}.org" for i in range(6)) + " {{ link }}"
    with pytest.raises(CrierError, match="7 links .* at most 5"):
        compose_episode(ep, show="S", rules=THREADS_RULES, options=ComposeOptions(template=many))


def test_threads_free_text_with_too_many_links() -> None:
    text = "Our picks. " + " ".join(f"https://s{i}.org/x" for i in range(6))
    with pytest.raises(CrierError, match="6 links; threads takes at most 5"):
        fit_text(text, THREADS_RULES, fit=False)
    body = "First. " + " ".join(f"See https://s{i}.org/x now." for i in range(6))
    fitted = fit_text(body + " #tag", THREADS_RULES, fit=True)
    assert link_count(fitted.text) <= 5 and fitted.text.endswith("#tag") and fitted.truncated
    assert fit_text(text, BLUESKY_RULES, fit=False).text == text   # no cap on Bluesky


def test_promo_on_bluesky_shows_the_link_short_and_keeps_it_whole() -> None:
    p = compose_promo("Listen again: {{ title }} with {{ mentions }} {{ link }}", show="S",
                      rules=BLUESKY_RULES, episode=EP, options=ComposeOptions(people=PEOPLE))
    shown = bluesky_short_url(LINK)
    assert shown in p.text and p.links == ((shown, LINK),) and p.link == LINK
    assert p.mentions == (("@ana.lima.bsky.social", "Ana Lima"),)
    t = compose_promo("{{ title }} {{ link }}", show="S", rules=THREADS_RULES, episode=EP)
    assert LINK in t.text and t.links == () and t.link == LINK


def test_emoji_and_cjk_posts_fit_threads_as_meta_counts() -> None:
    ep = Episode(title="🎙️🔥 新しいエピソード " * 30, link=LINK)
    c = compose_episode(ep, show="番組", rules=THREADS_RULES)
    assert c.length <= 500 and c.length == count(c.text, THREADS_RULES)
    assert len(c.text) < 500   # each emoji took its UTF-8 bytes of the 500


@pytest.mark.parametrize(("platform", "rules"), [("bluesky", BLUESKY_RULES),
                                                  ("threads", THREADS_RULES)])
def test_dry_runs_count_with_the_networks_rules(platform, rules) -> None:
    assert DryRunPublisher("a", platform).rules() == rules
