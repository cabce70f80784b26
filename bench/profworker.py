"""`crier run` under yappi (every thread, CPU clock): the APScheduler jobs run in worker
threads, which cProfile does not see. Usage: python bench/profworker.py OUT.pstat [crier args]
(bench/crierrun.py starts worker 0 this way when CRIER_BENCH_PROFILE is set)."""

import runpy
import sys

import yappi

out = sys.argv[1]
sys.argv = ["crier", *sys.argv[2:]]
yappi.set_clock_type("cpu")
yappi.start()
try:
    runpy.run_module("bot", run_name="__main__")
except SystemExit:
    pass
finally:
    yappi.stop()
    yappi.get_func_stats().save(out, type="pstat")
