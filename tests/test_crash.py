"""Kill -9 at random moments, with 30% platform faults: nothing lost, nothing doubled
(a short run; `python bench/soak.py` runs hundreds of kills)."""

from __future__ import annotations

from tests import crash


def test_random_kills_and_faults_lose_and_double_nothing(db_url, tmp_path):
    report = crash.run(db_url, tmp_path, kills=12, seed=7, fault_rate=0.3)
    assert report["kills"] == 12
    assert report["duplicates"] == 0 and report["lost"] == 0


def test_two_workers_at_once_killed_at_random_on_postgresql(postgres, tmp_path):
    """PostgreSQL: two `crier run` processes at a time (leasing feeds and deliveries), both
    killed at random moments, with platform faults: still nothing lost, nothing doubled."""
    report = crash.run(postgres.new_database(), tmp_path, kills=12, seed=11, fault_rate=0.3,
                       workers=2)
    assert report["kills"] >= 12
    assert report["duplicates"] == 0 and report["lost"] == 0


def test_three_workers_fifty_shows_killed_at_random_on_postgresql(postgres, tmp_path):
    """Issue 14: three `crier run` processes on one PostgreSQL database serving fifty shows
    (own feed, own Mastodon and X accounts each), each killed -9 and restarted at random while
    new episodes appear: every episode once per account of its own show, on no other show's,
    and no feed polled twice in one cycle (tests/fleetcrash.py says what a cycle is)."""
    from tests import fleetcrash
    report = fleetcrash.run(postgres.new_database(), tmp_path, shows=50, workers=3,
                            seconds=70, seed=5, fault_rate=0.1)
    assert report["kills"] >= 20 and report["episodes"] >= 15
    assert report["feeds_polled_in_two_cycles"] >= 25  # the cycle rule was put to the test
