"""Shared set-up of the crash tests (no tests here): run the engine as a child process and kill it.

Two kinds of kill, both SIGKILL (no handler runs, nothing is flushed):
- ``at_commit=k``: the child kills itself on its k-th checkpoint write, *before* the commit — the
  exact window where the destination has confirmed items the state does not know yet;
- ``after_rows=n`` (+ a seeded jitter): the parent watches the state file and kills the child once
  ``n`` rows are committed and a random few milliseconds more have passed — anywhere in a
  FETCH, an APPEND in flight, a commit.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# The child: the real CLI (python -m migrator), with a hook that SIGKILLs the process on the k-th
# checkpoint write of any flow (IMAP, POP3, EWS) before that write commits.
CHILD = r"""
import os, runpy, signal, sys
k = int(os.environ.get("QM_CRASH_AT_COMMIT", "0"))
if k:
    from migrator.collab.state import EwsState
    from migrator.state import State
    calls = [0]
    def hooked(orig):
        def record(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(self, *args, **kwargs)
        return record
    State.record = hooked(State.record)
    State.pop3_record = hooked(State.pop3_record)
    EwsState.record = hooked(EwsState.record)
sys.argv = ["migrator"] + sys.argv[1:]
runpy.run_module("migrator", run_name="__main__", alter_sys=True)
"""

ROW_TABLES = ("copied", "pop3_copied", "ews_copied")
RUN_TIMEOUT = 60.0


def committed_rows(state: Path) -> int:
    """Checkpoint rows committed so far (0 before the engine created the file)."""
    if not state.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1)
        try:
            names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            return sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ROW_TABLES if t in names)
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def batch_rows(outdir: Path) -> int:
    """Checkpoint rows committed over all accounts of a batch's output folder (migrator.batch.ledger)."""
    return sum(committed_rows(state) for state in sorted((outdir / "state").glob("*.sqlite")))


def engine_env(passwords: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    env.update(passwords)
    env.update(extra)
    return env


def run_engine(args: list[str], env: dict[str, str], *, at_commit: int = 0) -> subprocess.CompletedProcess:
    """One engine run, to its end (or to its self-inflicted SIGKILL when ``at_commit``)."""
    env = dict(env, QM_CRASH_AT_COMMIT=str(at_commit))
    return subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def kill_after_rows(args: list[str], env: dict[str, str], state: Path, rows: int, jitter: float, *,
                    count: Callable[[Path], int] = committed_rows) -> bool:
    """Start the engine, SIGKILL it once ``count(state)`` (checkpoint rows committed) reaches
    ``rows`` plus ``jitter`` seconds; True when it was killed (False: it finished first)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], env=dict(env, QM_CRASH_AT_COMMIT="0"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while proc.poll() is None and count(state) < rows and time.monotonic() < deadline:
            time.sleep(0.003)
        time.sleep(jitter)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        return True
    finally:
        proc.wait(timeout=10)
