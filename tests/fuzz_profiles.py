"""How long the fuzz tests run, and how many inputs each target got.

Two run lengths, picked by the ``QUIRKMAIL_FUZZ`` environment variable:

* unset / ``ci`` — each target runs its modest ``examples`` count, derandomized (the same inputs
  on every run, so a CI failure reproduces), no example database;
* ``long`` — ``LONG_FACTOR`` times as many, freshly random each run (``benchmarks/fuzz_long.py``
  runs it and writes reports/bench/fuzz.json).

Settings are applied per test (``@fuzz``), never as a global profile, so the rest of the suite is
untouched. ``RUNS`` counts the inputs each target really ran (shrinking included); with
``QUIRKMAIL_FUZZ_COUNTS=<dir>`` each process (xdist workers too) writes them there at exit.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from simulators.profiles import Profile, load_profile

LONG = os.environ.get("QUIRKMAIL_FUZZ", "ci").lower() == "long"
LONG_FACTOR = 72
RUNS: Counter[str] = Counter()
COUNTS_DIR = os.environ.get("QUIRKMAIL_FUZZ_COUNTS")


@atexit.register
def _write_counts() -> None:
    if COUNTS_DIR and RUNS:
        Path(COUNTS_DIR, f"runs-{os.getpid()}.json").write_text(json.dumps(RUNS))


def fuzz(target: str, examples: int, **strategies):
    """``@given(**strategies)`` with this run length's settings; counts inputs under ``target``."""

    def decorate(test):
        @functools.wraps(test)
        def counted(*args, **kwargs):
            RUNS[target] += 1
            if COUNTS_DIR and RUNS.total() % 250 == 0:
                _write_counts()  # a time-boxed long run that is stopped still reports its figures
            return test(*args, **kwargs)

        return settings(
            max_examples=examples * LONG_FACTOR if LONG else examples,
            deadline=None,
            derandomize=not LONG,
            database=None,
            # Generated inputs are big on purpose (10,000-byte lines); nested strategies filter.
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
            print_blob=True,
        )(given(**strategies)(counted))

    return decorate


@functools.cache
def profile_named(name: str) -> Profile:
    """Profiles are read-only to sessions; loading one takes ~30 ms, too long per example."""
    return load_profile(name)
