"""Soak: hundreds of kill -9s of the real worker, with platform faults; nothing may be lost
or posted twice. Prints the numbers (kills, episodes, promos, faults, duplicates, lost).

    python bench/soak.py                     # 200 kills, SQLite, 30% faults
    python bench/soak.py --kills 300 --postgres --fault-rate 0.3 --seed 2
    python bench/soak.py --kills 100 --postgres --workers 3   # 3 workers at once, all killed

See tests/crash.py for what one run does; the test suite runs it short.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fault-rate", type=float, default=0.3)
    ap.add_argument("--postgres", action="store_true", help="a throwaway local PostgreSQL")
    ap.add_argument("--workers", type=int, default=1,
                    help="crier processes at once (more than one needs --postgres)")
    a = ap.parse_args()
    if a.workers < 1 or (a.workers > 1 and not a.postgres):
        ap.error("--workers N: N ≥ 1, and more than one needs --postgres (SQLite runs one "
                 "worker)")
    from tests import crash
    with tempfile.TemporaryDirectory(prefix="crier-soak-") as tmp:
        if a.postgres:
            from tests.pg import PostgresServer
            pg = PostgresServer()
            pg.start()
            try:
                report = crash.run(pg.new_database(), Path(tmp), kills=a.kills, seed=a.seed,
                                   fault_rate=a.fault_rate, workers=a.workers, log=_log)
            finally:
                pg.stop()
        else:
            report = crash.run(f"sqlite:///{tmp}/crier.db", Path(tmp), kills=a.kills,
                               seed=a.seed, fault_rate=a.fault_rate, log=_log)
    report["database"] = "postgresql" if a.postgres else "sqlite"
    print(json.dumps(report, indent=2))
    return 0


def _log(line: str) -> None:
    print("…", line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
