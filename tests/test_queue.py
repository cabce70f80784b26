"""The host's promo queue against the local Mastodon and X servers, with an injected clock:
one-off, recurring (across a DST change), evergreen rotation and cool-down, spacing and
quiet hours, restarts with due and overdue posts, cancel/edit while in flight, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import CrierError
from tests.world import new_episode

NY = "America/New_York"


@pytest.fixture
def q(world):
    """A world whose show is in New York, the back catalogue recorded, no gap by default."""
    world.configure(timezone=NY, min_gap=0)
    world.cycle()  # baseline: 5 episodes, 5–9 weeks old
    return world


def at(world, iso: str) -> None:
    world.clock.now = datetime.fromisoformat(iso).astimezone(UTC)


def promo_rows(world):
    return [d for d in world.rows() if d.kind == "promo"]


def posted(world) -> tuple[list[str], list[str]]:
    return world.texts()


# -- one-off ------------------------------------------------------------------------------

def test_one_off_goes_out_at_its_time_exactly_once_on_each_account(q):
    at(q, "2026-11-26T15:00:00+00:00")  # Thursday 10:00 in New York
    pid, promo, previews = q.svc.queue.add("Book link: https://example.com/book",
                                           at="tomorrow 9:00")
    assert promo.next_at == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)  # 9:00 EST
    assert {p.account for p in previews} == {"masto", "x"}
    assert all(p.length <= p.limit for p in previews)
    q.svc.dispatch()
    assert posted(q) == ([], [])  # not yet
    at(q, "2026-11-27T14:00:30+00:00")
    q.svc.dispatch()
    q.svc.dispatch()
    masto, x = posted(q)
    assert masto == ["Book link: https://example.com/book"] and len(x) == 1
    view = q.svc.queue.show(pid)
    assert view["status"] == "done" and view["fired"] == 1
    assert {d["status"] for d in view["deliveries"]} == {"sent"}
    assert all(d["url"] for d in view["deliveries"])
    # a restart and more dispatching never posts it again
    q.start()
    q.clock.advance(days=1)
    q.svc.dispatch()
    assert len(posted(q)[0]) == 1


def test_in_duration_and_the_episode_variables(q):
    pid, promo, previews = q.svc.queue.add("Listen again: {{ title }} {{ link }}",
                                           at="in 2h", episode="latest")
    with pytest.raises(CrierError, match="empty"):  # (these episodes have no artwork)
        q.svc.queue.add("{{ artwork }}", at="in 2h", episode="latest", dry=True)
    assert promo.next_at == q.clock.now + timedelta(hours=2)
    latest = q.store.latest_episode(q.store.all_feeds()[0].id)
    assert all(latest.title in p.text and "https://" in p.text for p in previews)
    q.clock.advance(hours=2, seconds=1)
    q.svc.dispatch()
    masto, x = posted(q)
    assert masto and latest.title in masto[0] and x and latest.title in x[0]


def test_the_preview_counts_and_fit_shortens(q):
    long = "A very long promo sentence about the show. " * 20
    with pytest.raises(CrierError) as e:
        q.svc.queue.add(long, at="in 1h")
    msg, n = str(e.value), len(long.strip())
    assert f"x (x) {n}/280" in msg and f"masto (mastodon) {n}/500" in msg and "--fit" in msg
    assert q.store.all_promos() == []  # nothing queued
    pid, _, previews = q.svc.queue.add(long, at="in 1h", fit=True)
    assert all(p.length <= p.limit and p.shortened for p in previews)


@pytest.mark.parametrize("kwargs, message", [
    (dict(text="hi", at="2020-01-01 9:00"), "in the past"),
    (dict(text="hi", at="in 1h", accounts=["nope"]), "unknown account 'nope'"),
    (dict(text="hi", at="in 1h", image="/nonexistent.png", alt="a cat"), "no such file"),
    (dict(text="hi", at="in 1h", episode="no-such-guid"), "no episode with GUID"),
    (dict(text="hi", at="fri 25:00"), "hour"),
    (dict(text="hi", every="every 0 weeks on mon 9:00"), ""),
    (dict(text="", at="in 1h"), "empty"),
    (dict(text="hi", at="in 1h", every="fri 9:00"), "not both"),
    (dict(text="{{ nope(", at="in 1h"), "template"),
])
def test_bad_input_is_a_clear_error_and_nothing_is_queued(q, kwargs, message):
    with pytest.raises(CrierError) as e:
        q.svc.queue.add(**kwargs)
    assert message.lower() in str(e.value).lower()
    assert q.store.all_promos() == []


def test_images_need_alt_text_within_the_limit(q, tmp_path):
    from PIL import Image
    img = tmp_path / "cover.png"
    Image.new("RGB", (64, 64), "red").save(img)
    with pytest.raises(CrierError, match="--alt is required"):
        q.svc.queue.add("Look", at="in 1h", image=str(img))
    with pytest.raises(CrierError, match=r"alt text too long: .*x \(x\) 1001/1000"):
        q.svc.queue.add("Look", at="in 1h", image=str(img), alt="a" * 1001)
    (tmp_path / "not.png").write_bytes(b"not an image")
    with pytest.raises(CrierError, match="not an image"):
        q.svc.queue.add("Look", at="in 1h", image=str(tmp_path / "not.png"), alt="x")
    pid, _, _ = q.svc.queue.add("Look", at="in 1h", image=str(img), alt="A red square")
    q.clock.advance(hours=1, seconds=1)
    q.svc.dispatch()
    status = q.masto.statuses[-1]
    assert status["text"] == "Look" and len(status["media_ids"]) == 1
    assert q.masto.media[status["media_ids"][0]]["description"] == "A red square"


# -- recurring, across a DST change --------------------------------------------------------

def test_weekly_rule_keeps_local_time_across_the_dst_change(q):
    at(q, "2026-10-28T12:00:00+00:00")  # Wednesday; US clocks go back on 2026-11-01
    pid, promo, _ = q.svc.queue.add("Friday reminder", every="fri 17:00")
    fire_times = []
    for _ in range(3):
        nxt = q.store.promo(pid).next_at
        fire_times.append(nxt)
        q.clock.now = nxt + timedelta(seconds=5)
        q.svc.dispatch()
    assert fire_times == [datetime(2026, 10, 30, 21, 0, tzinfo=UTC),   # 17:00 EDT
                          datetime(2026, 11, 6, 22, 0, tzinfo=UTC),    # 17:00 EST
                          datetime(2026, 11, 13, 22, 0, tzinfo=UTC)]
    assert posted(q)[0] == ["Friday reminder"] * 3
    assert q.svc.queue.show(pid)["fired"] == 3


def test_until_ends_a_rule(q):
    at(q, "2026-11-23T12:00:00+00:00")  # Monday
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00", until="2026-11-25 12:00")
    for _ in range(5):
        nxt = q.store.promo(pid).next_at
        if nxt is None:
            break
        q.clock.now = nxt + timedelta(seconds=1)
        q.svc.dispatch()
    assert posted(q)[0] == ["Daily"] * 3  # the 23rd (9:00 EST is after 12:00Z), 24th, 25th
    assert q.store.promo(pid).status == "done"


# -- restarts: due and overdue ---------------------------------------------------------------

def test_due_while_down_goes_out_once_overdue_is_reported_not_posted(q):
    at(q, "2026-11-26T15:00:00+00:00")
    soon, _, _ = q.svc.queue.add("Due while down", at="in 1h")
    old, _, _ = q.svc.queue.add("Long overdue", at="in 2h")
    q.clock.now = datetime(2026, 11, 26, 17, 30, tzinfo=UTC)  # both due; worker was down
    q.start()
    q.clock.now = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)   # 5 h / 4 h late: within 6 h
    q.svc.dispatch()
    assert sorted(posted(q)[0]) == ["Due while down", "Long overdue"]
    # a promo missed by more than the grace window
    late, _, _ = q.svc.queue.add("Missed", at="in 1h")
    q.clock.advance(hours=8)
    q.start()
    q.svc.dispatch()
    assert "Missed" not in posted(q)[0]
    view = q.svc.queue.show(late)
    assert view["missed"] == 1 and view["fired"] == 0 and "not posted" in view["note"]
    assert view["status"] == "done"


def test_a_recurring_promo_after_days_down_posts_once(q):
    at(q, "2026-11-23T12:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00")
    q.clock.now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # 5 occurrences, 23rd-27th
    q.start()
    q.svc.dispatch()
    q.svc.dispatch()
    assert posted(q)[0] == ["Daily"]  # only the newest, 1 h late
    view = q.svc.queue.show(pid)
    assert view["fired"] == 1 and view["missed"] == 4
    assert q.store.promo(pid).next_at == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def test_two_services_firing_the_same_occurrence_post_once(q):
    from bot.service import Service, build_publishers
    pid, _, _ = q.svc.queue.add("Once only", at="in 1h")
    q.clock.advance(hours=1, seconds=1)
    other = Service(q.settings, q.store, clock=q.clock, publishers=build_publishers(q.settings))
    q.svc.queue.fire()
    other.queue.fire()
    q.svc.dispatch()
    other.dispatch()
    assert posted(q)[0] == ["Once only"] and len(posted(q)[1]) == 1
    assert len({d.post_id for d in promo_rows(q)}) == 1


# -- spacing, quiet hours, announcements first ----------------------------------------------

def test_promos_keep_the_gap_after_an_announcement(q):
    q.configure(min_gap="30m" and 1800)
    pid, _, _ = q.svc.queue.add("Promo", at="in 1m")
    new_episode(q)
    q.clock.advance(minutes=1, seconds=1)
    report, outcomes = q.cycle()  # the announcement goes; the promo waits
    assert report.result == "new"
    masto, _ = posted(q)
    assert len(masto) == 1 and "Promo" not in masto[0]
    waiting = [d for d in promo_rows(q) if d.status == "pending"]
    assert waiting and all(d.next_attempt_at == q.clock.now + timedelta(minutes=30)
                           for d in waiting)
    planned = q.svc.queue.list(all_=True)
    q.clock.advance(minutes=30)
    q.svc.dispatch()
    assert posted(q)[0][-1] == "Promo"
    assert planned  # (list works with deliveries in flight)


def test_quiet_hours_move_a_promo_to_the_morning(q):
    q.configure(quiet_hours="22:00-07:00")
    at(q, "2026-11-26T15:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Late night", at="today 23:00")  # 23:00 EST = 04:00Z
    view = q.svc.queue.list()[0]
    assert view["goes_out"]["masto"]["utc"] == "2026-11-27T12:00:00+00:00"  # 07:00 EST
    q.clock.now = datetime(2026, 11, 27, 4, 0, 5, tzinfo=UTC)
    q.svc.dispatch()
    assert posted(q) == ([], [])
    q.clock.now = datetime(2026, 11, 27, 12, 0, 1, tzinfo=UTC)
    q.svc.dispatch()
    assert posted(q)[0] == ["Late night"]


def test_list_spaces_promos_of_one_account(q):
    q.configure(min_gap=1800)
    at(q, "2026-11-26T15:00:00+00:00")
    a, _, _ = q.svc.queue.add("First", at="in 1h", accounts=["masto"])
    b, _, _ = q.svc.queue.add("Second", at="in 70m", accounts=["masto"])
    views = {v["id"]: v for v in q.svc.queue.list()}
    assert views[a]["goes_out"]["masto"]["utc"] == "2026-11-26T16:00:00+00:00"
    assert views[b]["goes_out"]["masto"]["utc"] == "2026-11-26T16:30:00+00:00"
    assert "x" not in views[a]["goes_out"]


# -- evergreen ------------------------------------------------------------------------------

def test_evergreen_rotates_oldest_first_with_a_cool_down(q):
    pid, promo, previews = q.svc.queue.add(None, every="every day 10:00", evergreen=True,
                                           cooldown_days=3)
    titles = []
    for _ in range(7):
        q.clock.now = q.store.promo(pid).next_at + timedelta(seconds=1)
        q.svc.dispatch()
        titles.append(posted(q)[0][-1].split("\n")[0] if posted(q)[0] else None)
    eps = sorted(q.store.episodes_for_promotion(q.store.all_feeds()[0].id),
                 key=lambda r: r.published_at)
    # never-promoted first, oldest first; then the least recently promoted (cool-down over)
    assert titles == [f"From the archive of The Test Show: {eps[i].title}"
                      for i in (0, 1, 2, 3, 4, 0, 1)]


def test_evergreen_skips_when_everything_is_in_the_cool_down(q):
    pid, _, _ = q.svc.queue.add("{{ title }}", every="every day 10:00", evergreen=True,
                                cooldown_days=90)
    for _ in range(6):
        q.clock.now = q.store.promo(pid).next_at + timedelta(seconds=1)
        q.svc.dispatch()
    assert len(posted(q)[0]) == 5  # five episodes, each once
    assert "cool-down" in q.svc.queue.show(pid)["note"]


# -- cancel, pause, edit: also while a delivery is in flight -------------------------------

def test_cancel_withdraws_waiting_deliveries_but_not_one_already_sending(q):
    pid, _, _ = q.svc.queue.add("Cancel me", at="in 1h")
    q.clock.advance(hours=1, seconds=1)
    q.svc.queue.fire()
    rows = promo_rows(q)
    masto_row = next(d for d in rows if d.account == "masto")
    assert q.store.claim(masto_row.id, "token", q.clock.now)  # in flight on Mastodon
    view = q.svc.queue.set_status(pid, "cancel")
    assert view["status"] == "cancelled" and len(view["withdrawn"]) == 1
    statuses = {d.account: d.status for d in promo_rows(q)}
    assert statuses == {"masto": "sending", "x": "cancelled"}
    q.svc.dispatch()
    assert posted(q)[1] == []  # X never gets it
    with pytest.raises(CrierError, match="cancelled"):
        q.svc.queue.set_status(pid, "resume")


def test_pause_and_resume_skip_to_the_next_occurrence(q):
    at(q, "2026-11-23T12:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00")
    q.svc.queue.set_status(pid, "pause")
    q.clock.now = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    q.svc.dispatch()
    assert posted(q) == ([], [])
    q.svc.queue.set_status(pid, "resume")
    assert q.store.promo(pid).next_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)


def test_edit_changes_text_and_time_and_is_checked_again(q):
    at(q, "2026-11-26T15:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Old text", at="in 1h")
    view, previews = q.svc.queue.edit(pid, text="New text", at="in 2h")
    assert [p.text for p in previews] == ["New text", "New text"]
    assert view["next_at"] == "2026-11-26T17:00:00+00:00"
    with pytest.raises(CrierError, match="too long"):
        q.svc.queue.edit(pid, text="x " * 400)
    q.clock.advance(hours=2, seconds=1)
    q.svc.dispatch()
    assert posted(q)[0] == ["New text"]


def test_edit_changes_the_rule_its_end_the_accounts_fit_and_image(q, tmp_path):
    """What an edit changes is written, the rest kept (the stored promo is a new value)."""
    from dataclasses import replace

    from PIL import Image
    img = tmp_path / "cover.png"
    Image.new("RGB", (64, 64), "red").save(img)
    at(q, "2026-11-23T12:00:00+00:00")  # Monday 07:00 in New York
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00")
    before = q.store.promo(pid)
    assert before.next_at == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    with pytest.raises(CrierError, match="repeats"):
        q.svc.queue.edit(pid, at="in 2h")
    q.clock.advance(minutes=5)
    view, previews = q.svc.queue.edit(pid, every="fri 17:00", until="2026-12-10 12:00",
                                      accounts=["masto"], fit=True, image=str(img),
                                      alt="A red square")
    assert [p.account for p in previews] == ["masto"] and previews[0].image == str(img)
    after = q.store.promo(pid)
    assert after == replace(before, rule=after.rule, accounts=["masto"], fit=True,
                            until=datetime(2026, 12, 10, 17, 0, tzinfo=UTC),
                            next_at=datetime(2026, 11, 27, 22, 0, tzinfo=UTC),  # Fri 17:00
                            image_path=str(img.resolve()), alt="A red square",
                            updated_at=q.clock.now)
    assert after.rule != before.rule and view["rule"] != q.svc.queue.view(before)["rule"]
    q.svc.queue.edit(pid, alt="Red")  # the image stays
    assert q.store.promo(pid) == replace(after, alt="Red")
    once, _, _ = q.svc.queue.add("Once", at="in 1h")
    with pytest.raises(CrierError, match="--until goes with a repeating post"):
        q.svc.queue.edit(once, until="2026-12-10 12:00")


def test_edit_while_a_firing_is_in_flight(q):
    """A delivery being sent keeps its text; one still waiting goes out with the edit; later
    occurrences use the new text."""
    at(q, "2026-11-23T12:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Old text", every="every day 9:00 until 2026-11-24 12:00")
    q.clock.now = q.store.promo(pid).next_at + timedelta(seconds=1)
    q.svc.queue.fire()
    masto_row = next(d for d in promo_rows(q) if d.account == "masto")
    q.svc._compose_delivery(masto_row, q.settings.account("masto"))
    assert q.store.claim(masto_row.id, "token", q.clock.now)  # Mastodon: being sent
    view, previews = q.svc.queue.edit(pid, text="New text")
    assert [p.text for p in previews] == ["New text", "New text"]
    q.svc.dispatch()
    assert posted(q)[1] == ["New text"]  # X had not been composed: it takes the edit
    assert q.store.delivery(masto_row.id).text == "Old text"  # in flight: unchanged
    q.clock.now = q.store.promo(pid).next_at + timedelta(seconds=1)
    q.svc.dispatch()
    assert posted(q)[0][-1] == "New text"


def test_a_fired_one_off_can_only_change_its_text(q):
    q.configure(quiet_hours="09:00-12:00")
    at(q, "2026-11-26T15:00:00+00:00")  # 10:00 EST: quiet until noon
    pid, _, _ = q.svc.queue.add("Old", at="in 1m")
    q.clock.advance(minutes=1, seconds=1)
    q.svc.dispatch()
    assert q.store.promo(pid).status == "done" and posted(q) == ([], [])
    with pytest.raises(CrierError, match="only its text"):
        q.svc.queue.edit(pid, at="in 2h")
    q.svc.queue.edit(pid, text="New")
    at(q, "2026-11-26T17:00:01+00:00")  # noon EST
    q.svc.dispatch()
    assert posted(q) == (["New"], ["New"])


def test_the_episode_artwork_is_a_variable(q):
    from tests.feedgen import item
    q.items.append(item(6, published=q.clock.now - timedelta(minutes=5)).with_(
        image="https://cdn.example.com/art/6.jpg"))
    q.publish_feed()
    q.cycle()
    _, _, previews = q.svc.queue.add("Cover: {{ artwork }}", at="in 1h", episode="latest",
                                     dry=True)
    assert {p.text for p in previews} == {"Cover: https://cdn.example.com/art/6.jpg"}
