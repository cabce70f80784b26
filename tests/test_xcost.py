"""What an X post costs (bot.xcost, pure) and the x_budget / over_budget keys (bot.config)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot import xcost
from bot.config import load_settings
from bot.errors import ConfigError
from tests.test_config import BASE, write


# -- the cost of a composed post ------------------------------------------------------------
@pytest.mark.parametrize("text, reply, cost", [
    ("New episode: Marx and the blockchain #Socialism", None, "0.015"),
    ("New episode: https://example.com/ep/1", None, "0.200"),
    ("Bare domains are links on X too: example.com/ep/1", None, "0.200"),
    ("Two links https://a.org/1 and https://b.net/2", None, "0.200"),   # one request
    ("New episode: Marx and the blockchain", "Listen: https://example.com/ep/1", "0.215"),
    ("New episode: Marx and the blockchain", "no link in this reply", "0.030"),
    ("Not a link: file.txt, e.g. 3.14", None, "0.015"),
])
def test_post_cost_with_and_without_urls_and_the_link_reply(text, reply, cost):
    got = xcost.post_cost(text, reply)
    assert isinstance(got, Decimal) and got == Decimal(cost)


def test_delivery_cost_reposts_and_sent_replies():
    assert xcost.delivery_cost("boost", "boost of https://x.com/a/status/1", {}) == \
        Decimal("0.015")
    p = {"reply_text": "https://example.com/ep/1"}
    assert xcost.delivery_cost("announcement", "New episode", p) == Decimal("0.215")
    # once sent, the reply counts only if it went out (its id was stored)
    assert xcost.delivery_cost("announcement", "New episode", p, sent=True) == Decimal("0.015")
    assert xcost.delivery_cost("announcement", "New episode", {**p, "reply_id": "9"},
                               sent=True) == Decimal("0.215")


def test_money_is_shown_to_the_tenth_of_a_cent():
    assert xcost.usd(Decimal("0.2")) == "$0.200"
    assert xcost.usd(Decimal("0.015") * 3) == "$0.045"
    assert xcost.usd(Decimal("5")) == "$5.000"


# -- budgets -------------------------------------------------------------------------------
def test_budget_periods_start_at_utc_midnight_and_the_first():
    b = xcost.parse_budget("5.00/month")
    assert (b.amount, b.period, str(b)) == (Decimal("5.00"), "month", "5.00/month")
    now = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert b.start(now) == datetime(2026, 12, 1, tzinfo=UTC) and b.key(now) == "2026-12"
    d = xcost.parse_budget("0.5/day")
    assert str(d) == "0.50/day" and d.start(now) == datetime(2026, 12, 31, tzinfo=UTC)
    assert d.key(now) == "2026-12-31"


@pytest.mark.parametrize("bad", ["5", "5/week", "$5.00/month", "5.00 / month", "-1/month",
                                 "5.0001/month", "five/month", "5,00/month", ""])
def test_budget_parsing_is_strict(bad):
    with pytest.raises(ValueError, match="5.00/month"):
        xcost.parse_budget(bad)


# -- taking the links out (over_budget = "no-link") ----------------------------------------
def test_without_urls_keeps_the_words_and_drops_link_only_lines():
    text = ("New episode: Marx and the blockchain, https://example.com/ep/1 #Socialism\n\n"
            "https://example.com/listen\n"
            "Also on example.org.")
    out = xcost.without_urls(text)
    assert out == "New episode: Marx and the blockchain, #Socialism\n\nAlso on."
    assert not xcost.has_url(out) and xcost.text_cost(out) == xcost.POST
    assert xcost.without_urls("no links at all") == "no links at all"
    assert xcost.without_urls("https://example.com/only") == ""


# -- the configuration keys ------------------------------------------------------------------
X_ACCOUNT = '[[accounts]]\nplatform = "x"\nname = "x"\ndry_run = true\n'


def test_x_budget_and_over_budget_are_read():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        p = write(Path(d), BASE + X_ACCOUNT + 'x_budget = "5.00/month"\n'
                  'over_budget = "no-link"\n')
        a = load_settings(p, env={}).accounts[0]
        assert a.x_budget == xcost.Budget(Decimal("5.00"), "month")
        assert a.over_budget == "no-link"
        p = write(Path(d), BASE + X_ACCOUNT)
        a = load_settings(p, env={}).accounts[0]
        assert a.x_budget is None and a.over_budget == "hold"


@pytest.mark.parametrize("extra, key, words", [
    (X_ACCOUNT + 'x_budget = "5 dollars"\n', "accounts[0].x_budget", "\"5.00/month\""),
    (X_ACCOUNT + 'x_budget = 5\n', "line 8, key 'x_budget'", "expected dollars per month"),
    (X_ACCOUNT + 'x_budget = "5.00/week"\n', "accounts[0].x_budget", "got '5.00/week'"),
    (X_ACCOUNT + 'over_budget = "drop"\n', "accounts[0].over_budget", "\"hold\" or \"no-link\""),
    ('[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'dry_run = true\nx_budget = "5.00/month"\n', "accounts[0].x_budget", "only X accounts"),
    ('[[accounts]]\nplatform = "mastodon"\nname = "m"\ninstance = "https://a.b"\n'
     'dry_run = true\nover_budget = "hold"\n', "accounts[0].over_budget", "only X accounts"),
])
def test_budget_key_mistakes_name_the_file_and_key(tmp_path, extra, key, words):
    p = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as exc:
        load_settings(p, env={})
    message = str(exc.value)
    assert str(p) in message and key in message and words in message, message
