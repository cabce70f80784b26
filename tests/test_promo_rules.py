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
    assert q.svc.queue.get(pid)["text"] == "Our book is out"
