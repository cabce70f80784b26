"""A queued promo is refused when it uses an episode's variable without an episode, and a dry
run applies the limits the real platform will apply (text, alt text, images)."""

from __future__ import annotations

import pytest

from bot.errors import CrierError
from tests.world import new_episode


@pytest.fixture
def q(world):
    world.configure(min_gap=0)
    world.cycle()
    return world


# -- episode variables need an episode -------------------------------------------------------

@pytest.mark.parametrize("text, named, line", [
    ("Listen again: {{ title }} {{ link }}", "{{ title }}, {{ link }} need", 1),
    ("New this week!\n\n{{ summary }}", "{{ summary }} needs", 3),
    ("{% if artwork %}Art!{% endif %} Our show", "{{ artwork }} needs", 1),
    ("With {{ guests }} and {{ mentions }}", "{{ guests }}, {{ mentions }} need", 1),
])
def test_an_episode_variable_without_episode_is_refused_with_its_name(q, text, named, line):
    with pytest.raises(CrierError) as e:
        q.svc.queue.add(text, at="in 2h")
    assert named in str(e.value) and f"line {line}" in str(e.value)
    assert "--episode" in str(e.value)
    assert q.store.all_promos() == []                   # nothing queued


def test_show_hashtags_and_local_variables_need_no_episode(q):
    pid, _, previews = q.svc.queue.add(
        "{% set title = 'Our book' %}{{ title }} from {{ show }} {{ hashtags }}", at="in 2h")
    assert pid and all(p.text.startswith("Our book from The Test Show") for p in previews)


def test_the_same_text_with_an_episode_is_accepted(q):
    new_episode(q)
    q.cycle()
    pid, _, previews = q.svc.queue.add("Listen again: {{ title }} {{ link }}", at="in 2h",
                                       episode="latest")
    assert pid and all("Episode 6" in p.text for p in previews)


def test_edit_refuses_an_episode_variable_without_episode(q):
    pid, *_ = q.svc.queue.add("Our book is out", at="in 2h")
    with pytest.raises(CrierError, match=r"\{\{ title \}\} needs an episode"):
        q.svc.queue.edit(pid, text="Listen: {{ title }}")
    assert q.svc.queue.get(pid).text == "Our book is out"


# -- a dry run applies the real platform's limits ---------------------------------------------

def test_the_x_alt_text_limit_applies_in_a_dry_run(q, tmp_path):
    from PIL import Image
    q.configure(x={"dry_run": True}, masto={"dry_run": True})
    img = tmp_path / "cover.png"
    Image.new("RGB", (64, 64), "red").save(img)
    with pytest.raises(CrierError, match=r"alt text too long: x \(x\) 1001/1000"):
        q.svc.queue.add("Look", at="in 1h", image=str(img), alt="a" * 1001)
    assert q.store.all_promos() == []
    _, _, previews = q.svc.queue.add("Look", at="in 1h", image=str(img), alt="a" * 1500,
                                     accounts=["masto"])
    assert previews[0].alt_limit == 1500


def test_dry_run_rules_are_the_real_platforms_rules(world):
    from bot.platforms.dryrun import DryRunPublisher
    from bot.platforms.mastodon import MastodonPublisher
    from bot.platforms.x import XPublisher
    from tests.fakes.mastodon_server import MastodonServer
    from tests.world import M_TOKEN, X_KEYS
    real_x = XPublisher("x", **X_KEYS, api_base=world.x.url).rules()
    assert DryRunPublisher("x", "x").rules() == real_x
    # an instance that says only its character limit: the real publisher falls back to the
    # documented defaults for the rest, and so does the dry run with max_characters
    with MastodonServer(token=M_TOKEN, max_characters=640) as srv:
        real = MastodonPublisher("m", srv.url, M_TOKEN).rules()
    dry = DryRunPublisher("m", "mastodon", max_characters=640).rules()
    assert (dry.limit, dry.counter, dry.url_weight, dry.alt_text_limit) == \
        (real.limit, real.counter, real.url_weight, real.alt_text_limit)
    assert DryRunPublisher("m", "mastodon").rules().limit == 500
