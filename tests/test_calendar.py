"""The queue as a calendar (bot.calendar) on a test world (real database, the local Mastodon
and X servers, an injected clock): week and month windows in the show's time zone across a
DST change, the times the dispatcher really sends at (gap, quiet hours, grace, announcements
first: checked by running the dispatcher forward), evergreen slots, paused promos, pending
deliveries, held and scheduled episodes, a constant number of queries, and the CLI view."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.calendar import calendar, month, month_window, week, week_window
from bot.config import Account, Secret
from tests.feedgen import item
from tests.world import M_TOKEN, new_episode

NY = "America/New_York"


@pytest.fixture
def q(world):
    """A world whose show is in New York, the back catalogue recorded, no gap by default."""
    world.configure(timezone=NY, min_gap=0)
    world.cycle()  # baseline: 5 episodes, 5–9 weeks before the real now
    return world


def at(world, iso: str) -> None:
    world.clock.now = datetime.fromisoformat(iso).astimezone(UTC)


def utc(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def of(entries, **kw):
    return [e for e in entries if all(getattr(e, k) == v for k, v in kw.items())]


def run_until(w, end: datetime, rounds: int = 300) -> None:
    """A worker that wakes exactly when something is due (a delivery, a promo, a future-dated
    episode), until `end`."""
    for _ in range(rounds):
        w.svc.dispatch()
        now = w.clock.now
        times = [d.next_attempt_at for d in w.rows("pending")]
        times += [p.next_at for p in w.store.all_promos() if p.status == "active" and p.next_at]
        times += [e.published_at for e in w.store.episodes_with_status("scheduled")]
        later = [t for t in times if t > now]
        if any(t <= now for t in times) and not later:
            raise AssertionError("something due is not going out")
        if not later or min(later) >= end:
            return
        w.clock.now = min(later)
    raise AssertionError("still running")


# -- windows in the show's time zone -------------------------------------------------------

def test_weekly_promo_in_month_and_week_views_across_the_dst_change(q):
    at(q, "2026-09-28T12:00:00+00:00")  # a Monday; US clocks go back on Sunday 2026-11-01
    pid, _, _ = q.svc.queue.add("Friday reminder", every="fri 17:00")
    october = of(month(q.svc, 2026, 10), promo_id=pid, account="masto")
    assert [e.local for e in october] == [f"2026-10-{d:02d}T17:00:00-04:00"
                                          for d in (2, 9, 16, 23, 30)]
    assert [e.when for e in october][-1] == utc("2026-10-30T21:00:00+00:00")
    november = of(month(q.svc, 2026, 11), promo_id=pid)
    assert len(of(november, account="masto")) == 4 and len(of(november, account="x")) == 4
    assert of(november, account="x")[0].local == "2026-11-06T17:00:00-05:00"  # EST now
    assert of(november, account="x")[0].when == utc("2026-11-06T22:00:00+00:00")
    assert all(e.kind == "recurring" and e.status == "scheduled" and e.moved_from is None
               and e.text == "Friday reminder" and e.delivery_id is None for e in november)
    # the week holding Wednesday Nov 4 (Monday start): one Friday, on each account
    wk = week(q.svc, date(2026, 11, 4))
    assert [(e.account, e.local) for e in of(wk, promo_id=pid)] == [
        ("masto", "2026-11-06T17:00:00-05:00"), ("x", "2026-11-06T17:00:00-05:00")]
    # a Sunday belongs to the week before it
    assert week_window(date(2026, 11, 8), q.settings.tz)[0] == utc("2026-11-02T05:00:00+00:00")


def test_until_ends_the_occurrences_and_windows_are_half_open(q):
    at(q, "2026-11-23T12:00:00+00:00")  # Monday
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00", until="2026-11-25 12:00")
    wk = of(week(q.svc, date(2026, 11, 23)), account="masto")
    assert [e.local[:10] for e in wk] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    nine = utc("2026-11-24T14:00:00+00:00")
    assert [e.when for e in of(calendar(q.svc, nine, nine + timedelta(days=1)),
                                account="masto")] == [nine]
    # [start, end): the end is not in it
    assert of(calendar(q.svc, nine - timedelta(hours=23), nine), account="masto") == []
    assert of(month(q.svc, 2026, 12), promo_id=pid) == []
    with pytest.raises(ValueError):
        calendar(q.svc, datetime(2026, 11, 1), datetime(2026, 12, 1))


# -- the times the dispatcher really sends at ------------------------------------------------

def test_a_one_off_in_the_quiet_hours_goes_out_when_they_end(q):
    q.configure(quiet_hours="22:00-07:00")
    at(q, "2026-11-26T15:00:00+00:00")  # 10:00 EST
    pid, _, _ = q.svc.queue.add("Late night", at="today 23:00")
    [e] = of(week(q.svc, date(2026, 11, 26)), promo_id=pid, account="masto")
    assert e.local == "2026-11-27T07:00:00-05:00" and e.kind == "promo"
    assert e.moved_from == utc("2026-11-27T04:00:00+00:00")
    assert "quiet hours 22:00-07:00 (America/New_York)" in e.reason
    run_until(q, utc("2026-11-28T00:00:00+00:00"))
    sent = of(q.rows("sent"), promo_id=pid, account="masto")
    assert [d.sent_at for d in sent] == [e.when]


def test_the_gap_moves_the_second_post_and_that_pushes_the_third(q):
    q.configure(min_gap=1800)
    at(q, "2026-11-26T15:00:00+00:00")
    a, _, _ = q.svc.queue.add("First", at="in 1h", accounts=["masto"])
    b, _, _ = q.svc.queue.add("Second", at="in 70m", accounts=["masto"])
    c, _, _ = q.svc.queue.add("Third", at="in 75m", accounts=["masto"])
    cal = week(q.svc, date(2026, 11, 26))
    [first], [second], [third] = (of(cal, promo_id=p) for p in (a, b, c))
    assert first.when == utc("2026-11-26T16:00:00+00:00") and first.moved_from is None
    assert second.when == utc("2026-11-26T16:30:00+00:00")
    assert second.moved_from == utc("2026-11-26T16:10:00+00:00")
    assert second.reason == f"min gap 30 minutes after the promo #{a} at Thu 11:00"
    assert third.when == utc("2026-11-26T17:00:00+00:00")
    assert f"after the promo #{b} at Thu 11:30" in third.reason
    run_until(q, utc("2026-11-27T00:00:00+00:00"))
    assert sorted(d.sent_at for d in q.rows("sent") if d.promo_id in (a, b, c)) == \
        [first.when, second.when, third.when]


def test_the_calendar_agrees_with_the_dispatcher_over_two_busy_days(q):
    """Recurring and one-off promos on both accounts, a gap, quiet hours, a future-dated
    episode announced in between: every post goes out at the calendar's time."""
    q.configure(min_gap=2700, quiet_hours="21:00-08:00", x={"min_gap": 600})
    at(q, "2026-12-07T13:00:00+00:00")  # Monday 08:00 EST
    # (recurring ones on Mastodon only: X refuses a text it has just seen)
    ids = [q.svc.queue.add("Every 2h", every="0 */2 * * *", accounts=["masto"])[0],
           q.svc.queue.add("Morning", every="every day 7:30", accounts=["masto"])[0],
           q.svc.queue.add("One-off", at="today 12:10")[0],
           q.svc.queue.add("Masto only", at="today 12:20", accounts=["masto"])[0]]
    q.items.append(item(7, published=utc("2026-12-07T17:15:00+00:00")))  # 12:15 EST
    q.publish_feed()
    assert q.svc.poll(force=True).scheduled
    start, end = q.clock.now, utc("2026-12-09T13:00:00+00:00")
    cal = calendar(q.svc, start, end)
    [ep_id] = [e.id for e in q.store.episodes_with_status("scheduled")]
    ann = of(cal, episode_id=ep_id, kind="announcement")
    assert {e.account for e in ann} == {"masto", "x"} and all(
        e.when == utc("2026-12-07T17:15:00+00:00") and e.status == "scheduled" for e in ann)
    moved = [e for e in cal if e.moved_from]
    assert any("quiet hours" in e.reason for e in moved)
    assert any("after the announcement at Mon 12:15" in e.reason for e in moved)
    run_until(q, end)
    for account in ("masto", "x"):
        expected = sorted((e.promo_id or 0, e.when) for e in of(cal, account=account))
        sent = sorted((d.promo_id or 0, d.sent_at) for d in q.rows("sent")
                      if d.account == account and start <= d.sent_at < end)
        assert sent == expected, account
        assert {p for p, _ in sent} >= (set(ids) if account == "masto" else {ids[2]})


def test_a_promo_waits_for_an_announcement_being_retried(q):
    q.configure(min_gap=1800)
    q.masto.rate_limit_next(reset_in_seconds=3600)  # (the clock is the real one here)
    new_episode(q)
    q.cycle()  # announced on X; Mastodon says: come back in an hour
    [ann] = q.rows("pending")
    pid, _, _ = q.svc.queue.add("After the news", at="in 10m", accounts=["masto"])
    cal = calendar(q.svc, q.clock.now, q.clock.now + timedelta(days=1))
    [waiting] = of(cal, delivery_id=ann.id)
    assert (waiting.status, waiting.when) == ("retrying", ann.next_attempt_at)
    [promo] = of(cal, promo_id=pid)
    assert promo.when == ann.next_attempt_at + timedelta(minutes=30)
    assert promo.moved_from == q.clock.now + timedelta(minutes=10)
    assert promo.reason.startswith("min gap 30 minutes after the announcement at ")
    run_until(q, q.clock.now + timedelta(days=1))
    assert [d.sent_at for d in of(q.rows("sent"), promo_id=pid)] == [promo.when]
    assert of(q.rows("sent"), id=ann.id)[0].sent_at == waiting.when


def test_grace_an_overdue_occurrence_goes_out_now_an_older_one_is_missed(q):
    at(q, "2026-11-23T12:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Daily", every="every day 9:00")
    q.clock.now = utc("2026-11-25T15:00:00+00:00")  # the worker was down since Monday
    cal = of(calendar(q.svc, utc("2026-11-23T00:00:00+00:00"), utc("2026-11-27T00:00:00Z")),
             promo_id=pid, account="masto")
    assert [(e.when, e.status) for e in cal] == [
        (utc("2026-11-23T14:00:00+00:00"), "missed"), (utc("2026-11-24T14:00:00+00:00"),
                                                       "missed"),
        (q.clock.now, "scheduled"), (utc("2026-11-26T14:00:00+00:00"), "scheduled")]
    assert "not posted" in cal[0].reason and "grace" in cal[2].reason
    assert cal[2].moved_from == utc("2026-11-25T14:00:00+00:00")
    q.svc.dispatch()
    assert [d.sent_at for d in of(q.rows("sent"), promo_id=pid, account="masto")] == \
        [q.clock.now]


# -- evergreen, paused, pending, held, scheduled --------------------------------------------

def test_evergreen_slots_name_the_next_episode_only(q):
    at(q, "2026-12-07T12:00:00+00:00")
    pid, _, _ = q.svc.queue.add(None, every="every day 10:00", evergreen=True)
    slots = of(week(q.svc, date(2026, 12, 7)), promo_id=pid, account="masto")
    assert len(slots) == 7 and all(e.kind == "evergreen" for e in slots)
    oldest = min(q.store.episodes_for_promotion(q.store.all_feeds()[0].id),
                 key=lambda r: r.published_at)
    assert (slots[0].text, slots[0].episode_id) == (oldest.title, oldest.id)
    assert {e.text for e in slots[1:]} == {"an older episode"}
    q.clock.now = slots[0].when
    q.svc.dispatch()
    [sent] = of(q.rows("sent"), promo_id=pid, account="masto")
    assert sent.episode_id == oldest.id and sent.sent_at == slots[0].when


def test_a_paused_promo_is_marked_and_takes_no_slot(q):
    q.configure(min_gap=3600)
    at(q, "2026-11-26T15:00:00+00:00")
    paused, _, _ = q.svc.queue.add("Paused", every="every day 11:00", accounts=["masto"])
    q.svc.queue.set_status(paused, "pause")
    other, _, _ = q.svc.queue.add("Goes out", at="today 11:15", accounts=["masto"])
    cal = week(q.svc, date(2026, 11, 26))
    marked = of(cal, promo_id=paused)
    assert marked and all(e.status == "paused" and f"queue resume {paused}" in e.reason
                          for e in marked)
    assert marked[0].when == utc("2026-11-26T16:00:00+00:00")
    [goes] = of(cal, promo_id=other)
    assert goes.when == utc("2026-11-26T16:15:00+00:00") and goes.moved_from is None


def test_a_pending_delivery_a_held_and_a_scheduled_episode(q):
    q.configure(quiet_hours="22:00-07:00", max_new_per_poll=1)
    at(q, "2026-12-08T03:00:00+00:00")  # Monday 22:00 EST: quiet
    pid, _, _ = q.svc.queue.add("Tonight", at="in 1m", accounts=["x"])
    q.clock.advance(minutes=1)
    q.svc.dispatch()  # fired; the delivery waits for the morning
    [waiting] = of(q.rows("pending"), promo_id=pid)
    new_episode(q, 6)
    new_episode(q, 7)  # two new in one poll > max_new_per_poll: held
    q.items.append(item(8, published=utc("2026-12-09T15:00:00+00:00")))
    q.publish_feed()
    report = q.svc.poll(force=True)
    assert len(report.held) == 2 and len(report.scheduled) == 1
    cal = week(q.svc, date(2026, 12, 7))
    [pending] = of(cal, delivery_id=waiting.id)
    assert (pending.status, pending.when) == ("pending", utc("2026-12-08T12:00:00+00:00"))
    assert pending.moved_from == q.clock.now and "quiet hours" in pending.reason
    held = of(cal, status="held", kind="announcement")
    assert {(e.episode_id, e.account) for e in held} == {
        (i, a) for i in report.held for a in ("masto", "x")}
    assert all(e.when == q.clock.now and f"crier release {e.episode_id}" in e.reason
               for e in held)
    [sched] = report.scheduled
    assert {(e.account, e.when) for e in of(cal, episode_id=sched)} == {
        ("masto", utc("2026-12-09T15:00:00+00:00")), ("x", utc("2026-12-09T15:00:00+00:00"))}
    # outside the window: next week shows none of them
    assert week(q.svc, date(2026, 12, 14)) == []
    # released, a held episode's announcement goes out now, and the promo after it
    q.svc.release(report.held)
    cal = week(q.svc, date(2026, 12, 7))
    assert {e.status for e in of(cal, kind="announcement", account="x")} == {"pending",
                                                                             "scheduled"}
    [pending] = of(cal, delivery_id=waiting.id)
    assert pending.when == utc("2026-12-08T12:00:00+00:00")  # (no gap configured)


def test_sent_posts_are_shown_in_the_window_with_their_url(q):
    at(q, "2026-12-07T15:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Hello", at="in 5m")
    q.clock.advance(minutes=5)
    q.svc.dispatch()
    cal = week(q.svc, date(2026, 12, 7))
    sent = of(cal, promo_id=pid)
    assert {(e.account, e.status) for e in sent} == {("masto", "sent"), ("x", "sent")}
    assert all(e.url and e.delivery_id and e.when == q.clock.now for e in sent)
    assert json.loads(json.dumps(sent[0].to_dict()))["when"] == q.clock.now.isoformat()
    assert of(week(q.svc, date(2026, 12, 14)), promo_id=pid) == []


def test_amplifiers_boost_what_the_official_account_will_post(q):
    amp = Account(name="amp", platform="mastodon", instance=q.masto.url, amplify="masto",
                  amplify_delay=600, secrets={"access_token": Secret(M_TOKEN)})
    q.settings = dataclasses.replace(q.settings, accounts=q.settings.accounts + (amp,))
    q.start()
    at(q, "2026-12-07T15:00:00+00:00")
    pid, _, _ = q.svc.queue.add("Boost me", at="in 1h")
    cal = week(q.svc, date(2026, 12, 7))
    [boost] = of(cal, account="amp")
    assert (boost.kind, boost.promo_id) == ("boost", pid)
    assert boost.when == utc("2026-12-07T16:10:00+00:00")
    run_until(q, utc("2026-12-08T00:00:00+00:00"))
    assert [d.sent_at for d in q.rows("sent") if d.account == "amp"] == [boost.when]


# -- cost: a constant number of queries --------------------------------------------------------

def test_a_busy_month_costs_the_same_few_queries(q):
    at(q, "2026-11-30T12:00:00+00:00")
    engine = q.store.engine
    counted: list[str] = []

    def count(*args):
        counted.append(args[2])
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        q.svc.queue.add("Daily 0", every="every day 9:00")
        counted.clear()
        few = month(q.svc, 2026, 12)
        n_few = len(counted)
        for i in range(1, 12):
            q.svc.queue.add(f"Daily {i}", every=f"every day {8 + i % 10}:{i:02d}")
        counted.clear()
        many = month(q.svc, 2026, 12)
        assert len(many) == 12 * len(few) and len(many) >= 12 * 31 * 2 - 2
        assert len(counted) == n_few and n_few <= 8, counted
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_month_window_wraps_the_year(q):
    tz = q.settings.tz
    assert month_window(2026, 12, tz) == (utc("2026-12-01T05:00:00+00:00"),
                                          utc("2027-01-01T05:00:00+00:00"))


# -- the CLI view ---------------------------------------------------------------------------

def test_crier_queue_calendar(world, monkeypatch, tmp_path):
    from tests.hostcli import host_cli
    crier = host_cli(world, monkeypatch, tmp_path)
    crier("run", "--once")
    crier("queue", "add", "Calendar check", "--in", "2 days")
    promo = json.loads(crier("queue", "list", "--json").output)[0]
    day = promo["next_at"][:10]
    entries = json.loads(crier("queue", "calendar", "--week", day, "--json").output)
    mine = [e for e in entries if e["promo_id"] == promo["id"]]
    assert {e["account"] for e in mine} == {"masto", "x"}
    assert all(e["when"] == promo["next_at"] and e["text"] == "Calendar check" for e in mine)
    text = crier("queue", "calendar", "--month", day[:7]).output
    assert "Calendar check" in text and f"#{promo['id']}" in text
    bad = crier("queue", "calendar", "--month", "2026-13", code=1).output
    assert "--month a month like 2026-12" in bad
    assert "not both" in crier("queue", "calendar", "--week", day, "--month", "2026-12",
                               code=1).output
    assert crier("queue", "calendar", "--week", "1999-01-04").output.startswith("Nothing")
