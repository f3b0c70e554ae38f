"""SIGKILL a whole batch (``python -m migrator --batch``, a child process) at 30 seeded points,
re-run the same command until it completes, and verify every account: nothing lost, nothing
duplicated, INTERNALDATE instants and flags intact, the ledger saying every account is done.
Four accounts on two source simulators in this process, into a real Dovecot. A second test shows
the check can fail (``--disable identity-dedup`` duplicates), a third that a killed batch's lock
does not keep the next run out."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from migrator.batch.ledger import Ledger
from migrator.errors import UsageError
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.verify import verify
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.crash_support import batch_rows, engine_env, kill_after_rows, run_engine
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, user  # noqa: F401 (fixture)

SEED = 20261123
TIMED_KILLS = 20  # at a committed-row count (over all accounts) plus a random delay
LEDGER_KILLS = 2  # once n accounts have their result file: between accounts, or before the summary
COMMIT_KILLS = 8  # inside a checkpoint write, before its commit (confirmed, not yet recorded)


def finished_accounts(outdir: Path) -> int:
    return len(list((outdir / "accounts").glob("*.result.json")))


class Batch:
    """``accounts`` source accounts spread over two simulators, each paired with a fresh Dovecot user."""

    def __init__(self, dovecot, tmp_path: Path, *, accounts: int, messages: int, extra: tuple[str, ...] = ()):
        self.profile = load_profile("generic")
        self.stores = [Store(), Store()]
        self.pairs = []  # (simulator index, source user, Dovecot user)
        self.total = 0  # messages over all accounts (the fixture adds its duplicates to ``messages``)
        for n in range(accounts):
            account = self.stores[n % 2].add_account(f"k{n}", PASSWORD)
            populate(account, FixtureSpec(seed=70 + n, messages=messages, folders=3, no_message_id=1,
                                          duplicate_message_id=1, bad_dates=1), self.profile)
            self.pairs.append((n % 2, f"k{n}", user(dovecot)))
            self.total += sum(len(f.messages) for f in account.folders.values())
        self.dovecot, self.outdir, self.csv = dovecot, tmp_path / "out", tmp_path / "accounts.csv"
        self.extra = extra
        self.env = engine_env({"QM_BATCH_PW": PASSWORD})

    def __enter__(self) -> Batch:
        self.worlds = [SimulatorWorld(s, self.profile).__enter__() for s in self.stores]
        self.ports = [w.start_imap().port for w in self.worlds]
        self.csv.write_text("source,source_user,source_secret,dest,dest_user,dest_secret\n" + "".join(
            f"imap://127.0.0.1:{self.ports[h]}?starttls=no,{s},env:QM_BATCH_PW,{self.dovecot.url(d)},,env:QM_BATCH_PW\n"
            for h, s, d in self.pairs))
        self.args = ["--batch", str(self.csv), "--outdir", str(self.outdir), "--per-host", "2",
                     "--accounts-parallel", "4", "--connections", "1", "--batch-size", "3", *self.extra]
        return self

    def __exit__(self, *exc) -> None:
        for w in self.worlds:
            w.__exit__(*exc)

    def complete(self) -> subprocess.CompletedProcess:
        done = run_engine(self.args, self.env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def verify(self):
        for h, s, d in self.pairs:
            source = Endpoint(ServerURL.parse(f"imap://{s}@127.0.0.1:{self.ports[h]}?starttls=no"), Secret(PASSWORD))
            yield s, verify(source, endpoint(self.dovecot, d))


@pytest.mark.peer
@pytest.mark.slow
def test_sigkill_a_batch_at_30_points_loses_and_duplicates_nothing(dovecot, tmp_path):
    rng = random.Random(SEED)
    with Batch(dovecot, tmp_path, accounts=4, messages=30) as batch:
        # Kill points over the whole batch, seeded: row targets must grow, the ledger and in-commit
        # kills fall anywhere among them (keyed by a random row position).
        plan = [("rows", n, n) for n in rng.sample(range(1, batch.total - 5), TIMED_KILLS)]
        plan += [("results", n, rng.randint(batch.total // 2, batch.total)) for n in range(1, LEDGER_KILLS + 1)]
        plan += [("commit", rng.randint(1, 8), rng.randint(0, batch.total)) for _ in range(COMMIT_KILLS)]
        plan.sort(key=lambda p: p[2])
        killed = 0
        for kind, n, _ in plan:
            if kind == "commit":
                done = run_engine(batch.args, batch.env, at_commit=n)
                assert done.returncode in (-9, 0, 5), done.stderr  # 5: an account aborted, resumable
                killed += done.returncode == -9
            else:
                count = batch_rows if kind == "rows" else finished_accounts
                killed += kill_after_rows(batch.args, batch.env, batch.outdir, n, rng.uniform(0.0, 0.04), count=count)
        assert killed >= 20, f"only {killed} runs were killed before the batch finished"
        print(f"{killed} kills of {len(plan)} planned")
        batch.complete()
        reports = dict(batch.verify())
    for name, report in reports.items():
        assert report.total("missing") == 0 and report.total("duplicated") == 0, (name, report.summary())
        assert report.total("date_mismatches") == 0 and report.total("flag_mismatches") == 0, (name, report.summary())
        assert report.total("unexpected") == 0 and report.identical, (name, report.summary())
    assert sum(sum(r.dest_counts.values()) for r in reports.values()) == batch.total
    assert batch_rows(batch.outdir) == batch.total
    summary = json.loads((batch.outdir / "summary.json").read_text())
    assert [a["outcome"] for a in summary["accounts"]] == ["ok"] * 4 and summary["not_started"] == []
    # Every account was started again after a kill and resumed from its checkpoint (its journal
    # keeps every run's "start"; a killed run writes no result, so ``attempts`` cannot show it).
    for journal in (batch.outdir / "accounts").glob("*.jsonl"):
        starts = [json.loads(line) for line in journal.read_text().splitlines() if '"start"' in line]
        assert len(starts) > 1 and any(e.get("resumed") for e in starts), journal.name


@pytest.mark.peer
@pytest.mark.slow
def test_killed_batch_without_identity_dedup_duplicates(dovecot, tmp_path):
    """The check above can fail: kills inside a checkpoint write leave APPENDed messages the
    checkpoint does not know; without identity matching the re-run copies them again."""
    with Batch(dovecot, tmp_path, accounts=2, messages=12, extra=("--disable", "identity-dedup")) as batch:
        killed = sum(run_engine(batch.args, batch.env, at_commit=2).returncode == -9 for _ in range(3))
        assert killed == 3
        batch.complete()
        reports = dict(batch.verify())
    assert sum(r.total("duplicated") for r in reports.values()) > 0
    assert all(r.total("missing") == 0 for r in reports.values())


HOLD_LOCK = """
import os, signal, sys
from migrator.batch.ledger import Ledger
ledger = Ledger(sys.argv[1])  # kept referenced: the lock lives as long as its open file
ledger.lock()
print("locked", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # hold it until the parent closes our stdin
"""


def test_a_killed_batch_lock_is_taken_over_a_live_one_is_not(tmp_path):
    env = engine_env({})
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", HOLD_LOCK, str(out), "die"], env=env, capture_output=True, text=True,
                          timeout=30)
    assert dead.returncode == -9 and dead.stdout == "locked\n"
    assert (out / ".lock").exists()  # the killed holder left its lock file
    live = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out), "hold"], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert live.stdout.readline() == "locked\n"  # took over the dead holder's lock
        with pytest.raises(UsageError, match="another batch is running"):
            Ledger(out).lock()
    finally:
        live.stdin.close()
        live.wait(timeout=30)
    ledger = Ledger(out)
    ledger.lock()  # the holder ended: free again
    ledger.unlock()
