"""SIGKILL the engine (a child process) at 24 seeded points of an IMAP → Dovecot migration, re-run
it to completion, and verify: nothing lost, nothing duplicated, INTERNALDATE instants and flags
intact. The source is the IMAP simulator in this process (one world for every cycle)."""

from __future__ import annotations

import random
import sqlite3

import pytest

from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.verify import verify
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.crash_support import committed_rows, engine_env, kill_after_rows, run_engine
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, user  # noqa: F401 (fixture)

SPEC = FixtureSpec(seed=61, messages=110, folders=5, no_message_id=2, duplicate_message_id=2, bad_dates=2)
SEED = 20261122
TIMED_KILLS = 16  # kills at a committed-row count plus a random delay
COMMIT_KILLS = 8  # kills inside a checkpoint write, before its commit (confirmed, not yet recorded)


@pytest.mark.peer
@pytest.mark.slow
def test_sigkill_at_24_points_loses_and_duplicates_nothing(dovecot, tmp_path):
    profile = load_profile("generic")
    account = Store().add_account("crash", PASSWORD)
    populate(account, SPEC, profile)
    total = sum(len(f.messages) for f in account.folders.values())
    dst = user(dovecot)
    state = tmp_path / "state.sqlite"
    rng = random.Random(SEED)
    with SimulatorWorld(account._store, profile) as world:
        src_url = world.start_imap().url("crash")
        args = ["--from", src_url, "--to", dovecot.url(dst), "--from-password-env", "QM_SRC",
                "--to-password-env", "QM_DST", "--cafile", str(world.cafile), "--state", str(state),
                "--batch-size", "3", "--connections", "2"]
        env = engine_env({"QM_SRC": PASSWORD, "QM_DST": PASSWORD})
        # Kill points spread over the whole run: row targets for timed kills, commit numbers
        # (counted from each run's start) for the in-commit kills; interleaved, seeded.
        plan = [("rows", n) for n in sorted(rng.sample(range(1, total - 5), TIMED_KILLS))]
        plan += [("commit", rng.randint(1, 4)) for _ in range(COMMIT_KILLS)]
        rng.shuffle(plan)
        plan.sort(key=lambda p: p[1] if p[0] == "rows" else 0)  # row targets must grow; commit kills anywhere
        killed = 0
        for kind, n in plan:
            if kind == "rows":
                killed += kill_after_rows(args, env, state, n, rng.uniform(0.0, 0.04))
            else:
                done = run_engine(args, env, at_commit=n)
                assert done.returncode in (-9, 0), done.stderr
                killed += done.returncode == -9
        assert killed >= 20, f"only {killed} runs were killed before finishing"
        final = run_engine(args, env)
        assert final.returncode == 0, final.stdout + final.stderr
        report = verify(Endpoint(ServerURL.parse(src_url), Secret(PASSWORD), cafile=world.cafile),
                        endpoint(dovecot, dst))
    assert report.total("missing") == 0 and report.total("duplicated") == 0, report.summary()
    assert report.total("date_mismatches") == 0 and report.total("flag_mismatches") == 0, report.summary()
    assert report.total("unexpected") == 0 and report.identical, report.summary()
    assert sum(report.dest_counts.values()) == total
    assert committed_rows(state) == total
    # Rows without a destination UID were re-matched by identity: APPENDed by a run killed before
    # its checkpoint commit (the commit kills guarantee some).
    db = sqlite3.connect(state)
    rematched = db.execute("SELECT count(*) FROM copied WHERE dest_uid IS NULL").fetchone()[0]
    db.close()
    assert rematched >= 1
