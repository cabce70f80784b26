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
