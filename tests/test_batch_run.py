"""run_batch end to end on simulators: two source servers, one simulator destination.

Six accounts in imapsync's line format, per-host cap 2: the cap is checked where it matters, at
the simulators (users logged in together, connections per user); one account with a wrong
password fails alone; a batch stopped half-way resumes without redoing finished accounts or
copying anything twice.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from migrator.batch.accounts import parse_batch
from migrator.batch.progress import NullBatchProgress
from migrator.batch.runner import BatchOptions, run_batch
from migrator.engine import MigrationOptions
from migrator.errors import ExitCode
from scenarios.snapshot import snapshot_account
from scenarios.verify import compare
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

PASSWORD = "pw-batch-1"
CONNECTIONS = 1  # per account: the engine then holds at most 1 + 2 × 1 source connections
PER_HOST = 2


class PeakUsers(Counter):
    """Stands in for an IMAP server factory's ``users`` (logged-in connections per user) and
    remembers the most users logged in together and the most connections of one user."""

    def __init__(self):
        super().__init__()
        self.peak_users = self.peak_per_user = 0

    def __setitem__(self, user, count):
        super().__setitem__(user, count)
        self.peak_users = max(self.peak_users, sum(1 for n in self.values() if n > 0))
        self.peak_per_user = max(self.peak_per_user, count)


@pytest.fixture
def servers():
    # 8 ms per reply keeps each account busy long enough for accounts to overlap.
    profile = load_profile("generic").with_faults([QuirkSpec.parse("latency:ms=8,times=0")])
    sources, dest_store = [], Store()
    with SimulatorWorld(Store(), profile) as a, SimulatorWorld(Store(), profile) as b, \
            SimulatorWorld(dest_store, load_profile("generic")) as dest:
        for h, world in enumerate((a, b)):
            for i in range(3):
                account = world.store.add_account(f"u{i}", PASSWORD)
                populate(account, FixtureSpec(seed=10 * h + i, messages=8 + 4 * i, folders=2), world.profile)
                dest_store.add_account(f"h{h}u{i}", PASSWORD)
            handle = world.start_imap()
            world._factories[-1].users = watch = PeakUsers()  # the simulator counts; we watch
            sources.append((world, handle, watch))
        yield sources, dest, dest.start_imap()


def batch_text(sources, dest_handle, bad: str = "h1u2") -> str:
    lines = ["# host1;user1;password1;host2;user2;password2; [imapsync options]"]
    for h, (_, handle, _) in enumerate(sources):
        for i in range(3):
            password = "wrong" if f"h{h}u{i}" == bad else PASSWORD
            lines.append(f"127.0.0.1;u{i};{password};127.0.0.1;h{h}u{i};{PASSWORD};"
                         f"--port1 {handle.port} --port2 {dest_handle.port} --notls1 --notls2")
    return "\n".join(lines) + "\n"


def options(tmp_path) -> BatchOptions:
    return BatchOptions(outdir=tmp_path / "out", per_host=PER_HOST, accounts_parallel=6,
                        migration=MigrationOptions(connections=CONNECTIONS, batch_size=3))


class StopMidway(NullBatchProgress):
    """Stops the batch at the first batch of messages stored after some account finished: the
    account that stored it is then stopped with part of its mail copied."""

    def __init__(self, stop: threading.Event):
        self.stop, self.one_done = stop, threading.Event()

    def account_done(self, result) -> None:
        self.one_done.set()

    def advance(self, account_id: str, messages: int) -> None:
        if self.one_done.is_set():
            self.stop.set()


def verified(sources, dest, account_id: str) -> bool:
    h, i = int(account_id[1]), int(account_id[3])
    src = snapshot_account(sources[h][0].store.accounts[f"u{i}"])
    return compare(src, snapshot_account(dest.store.accounts[account_id])).identical


def test_per_host_cap_isolation_and_imapsync_lines(servers, tmp_path):
    sources, dest, dest_handle = servers
    batch = parse_batch(batch_text(sources, dest_handle))
    assert batch.format == "imapsync" and len(batch.accounts) == 6
    assert any("plain password" in w for w in batch.warnings) and not any(PASSWORD in w for w in batch.warnings)
    report = run_batch(batch, options(tmp_path))

    by_id = {a.id: a for a in report.accounts}
    for (_, _, watch) in sources:  # the cap holds at each server, and was reached
        assert watch.peak_users == PER_HOST
        assert watch.peak_per_user <= 1 + 2 * CONNECTIONS
    assert max(report.peak_per_host.values()) == PER_HOST
    bad = next(a for a in report.accounts if a.destination.startswith("imap://h1u2@"))
    assert (bad.outcome, bad.exit_code) == ("authentication", ExitCode.AUTHENTICATION)
    assert "AuthenticationFailed" in bad.error and "wrong" not in bad.error
    good = [a for a in report.accounts if a is not bad]
    assert [a.outcome for a in good] == ["ok"] * 5
    for a in good:
        dest_user = a.destination.split("://")[1].split("@")[0]
        assert verified(sources, dest, dest_user)
        assert a.copied == sum(len(f.messages) for f in dest.store.accounts[dest_user].folders.values())
    assert report.exit_code == ExitCode.AUTHENTICATION
    log = (tmp_path / "out" / "accounts" / f"{good[0].id}.jsonl").read_text()
    assert '"event": "start"' in log and '"event": "folder"' in log and log.rstrip().endswith("}")
    assert '"outcome": "ok"' in log.splitlines()[-1]
    assert len(by_id) == 6


def test_stopped_batch_resumes_without_redoing_or_duplicating(servers, tmp_path):
    sources, dest, dest_handle = servers
    batch = parse_batch(batch_text(sources, dest_handle, bad=""))
    stop = threading.Event()
    first = run_batch(batch, options(tmp_path), progress=StopMidway(stop), stop=stop)
    finished = {a.id for a in first.accounts if a.outcome == "ok"}
    half = {a.id: a.copied for a in first.accounts if a.outcome == "aborted"}
    assert finished and first.stopped and first.exit_code == ExitCode.ABORTED
    assert any(n > 0 for n in half.values())  # some account was stopped mid-way

    second = run_batch(batch, options(tmp_path))
    by_id = {a.id: a for a in second.accounts}
    assert second.exit_code == ExitCode.OK and not second.not_started
    for account_id in finished:  # not redone: one attempt, one start in its log
        assert by_id[account_id].reused
        assert (tmp_path / "out" / "accounts" / f"{account_id}.jsonl").read_text().count('"event": "start"') == 1
    for account_id, copied in half.items():  # continued from its checkpoint
        assert by_id[account_id].attempts == 2 and by_id[account_id].already_present >= copied
    for a in second.accounts:
        dest_user = a.destination.split("://")[1].split("@")[0]
        assert verified(sources, dest, dest_user)  # every message once: nothing copied twice


class ReleaseOnDeferral(NullBatchProgress):
    """Closes the connections that crowd an account out when the batch defers it."""

    def __init__(self, blockers):
        self.blockers, self.deferred = blockers, []

    def account_deferred(self, result, seconds: float) -> None:
        self.deferred.append((result.id, result.outcome, result.error, seconds))
        for client in self.blockers:
            client.logout()


@pytest.mark.parametrize("retry", [True, False], ids=["retried", "batch-connection-retry-off"])
def test_account_refused_for_its_connection_limit_is_retried_once(tmp_path, retry):
    from imapclient import IMAPClient

    limit = 1 + 2 * CONNECTIONS
    profile = load_profile("generic").model_copy(update={
        "quirks": [QuirkSpec.parse(f"gmail-too-many-connections:limit={limit}")]})
    store, dest_store = Store(), Store()
    populate(store.add_account("busy", PASSWORD), FixtureSpec(seed=5, messages=6, folders=1), profile)
    dest_store.add_account("busy", PASSWORD)
    with SimulatorWorld(store, profile) as src, SimulatorWorld(dest_store, load_profile("generic")) as dst:
        a, b = src.start_imap(), dst.start_imap()
        blockers = []
        for _ in range(limit):  # another client holds every connection Gmail allows the account
            client = IMAPClient(a.host, port=a.port, ssl=False)
            client.login("busy", PASSWORD)
            blockers.append(client)
        batch = parse_batch(f"127.0.0.1;busy;{PASSWORD};127.0.0.1;busy;{PASSWORD}; "
                            f"--port1 {a.port} --port2 {b.port} --notls1 --notls2\n")
        progress = ReleaseOnDeferral(blockers)
        opts = options(tmp_path).model_copy(update={"retry_after": 0.1})
        if not retry:
            opts.migration = opts.migration.model_copy(update={"disable": ["batch-connection-retry"]})
        report = run_batch(batch, opts, progress=progress)
        if not retry:
            [result] = report.accounts
            assert progress.deferred == [] and (result.outcome, result.attempts) == ("connection", 1)
            return
    [(account_id, outcome, error, seconds)] = progress.deferred
    assert (outcome, seconds) == ("connection", 0.1)
    assert "TooManyConnections" in error and "Too many simultaneous connections. (Failure)" in error
    [result] = report.accounts
    assert (result.outcome, result.copied, result.attempts) == ("ok", 6, 2)
    log = (tmp_path / "out" / "accounts" / f"{account_id}.jsonl").read_text()
    assert log.count('"event": "start"') == 2 and '"retry_in": 0.1' in log


def test_a_dry_run_marks_nothing_finished(servers, tmp_path):
    sources, dest, dest_handle = servers
    batch = parse_batch(batch_text(sources, dest_handle, bad=""))
    dry = options(tmp_path)
    dry.migration = dry.migration.model_copy(update={"dry_run": True})
    planned = run_batch(batch, dry)
    assert all(a.outcome == "ok" and a.copied > 0 for a in planned.accounts)
    assert sum(len(f.messages) for acc in dest.store.accounts.values() for f in acc.folders.values()) == 0
    real = run_batch(batch, options(tmp_path))
    assert [a.reused for a in real.accounts] == [False] * 6
    assert [a.copied for a in real.accounts] == [a.copied for a in planned.accounts]
