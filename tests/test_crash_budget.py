"""The error budget (``max_item_errors``) and jittered retries: per-item isolation until the
budget is spent, then a clean stop (exit code 5) that a re-run resumes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from migrator import backoff
from migrator.error_budget import ErrorBudget
from migrator.engine import MigrationOptions, migrate
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, snapshot, user  # noqa: F401 (fixture)


def test_budget_counts_errors_not_policy_skips_and_fires_once():
    budget = ErrorBudget(3)
    assert budget.charge_skip("too-large") is None and budget.charge_skip("vanished") is None  # policy
    assert budget.charge() is None and budget.charge_skip("refused") is None
    reason = budget.charge_skip("source-refused")
    assert reason.startswith("error budget exhausted: 3 item errors (max_item_errors=3)")
    assert budget.charge() is None  # reported once; the run is already stopping
    assert ErrorBudget(0).charge() is None  # 0 = no limit


def test_jitter_is_bounded_and_replays_under_a_seed():
    backoff.seed_jitter(42)
    first = [backoff.backoff_delay(a) for a in range(4)]
    backoff.seed_jitter(42)
    assert [backoff.backoff_delay(a) for a in range(4)] == first
    assert all(n / 2 <= w <= n for w, n in zip(first, [0.05, 0.1, 0.2, 0.4]))
    assert len(set(w / n for w, n in zip(first, [0.05, 0.1, 0.2, 0.4]))) > 1  # really drawn, not a constant factor
    assert backoff.retry_delay("Request is throttled. Suggested Backoff Time: 1500 milliseconds", 0) == 1.5  # exact
    assert backoff.retry_delay("Can't save a zero byte message", 0) is None  # not temporary: never retried
    backoff.seed_jitter(None)


@pytest.mark.peer
def test_error_budget_stops_the_run_and_a_rerun_resumes(dovecot, tmp_path):
    """Dovecot refuses zero-byte messages: 12 of 30 source messages are refused one by one."""
    account = Store().add_account("budget", PASSWORD)
    when = datetime(2023, 3, 4, tzinfo=timezone.utc)
    bad = {n for n in range(30) if n % 5 in (1, 3)}
    for n in range(30):
        raw = b"" if n in bad else f"Subject: b{n}\r\nMessage-ID: <b{n}@x>\r\n\r\nbody {n}\r\n".encode()
        account.append(("INBOX",), raw, internaldate=when)
    dst = user(dovecot)
    with SimulatorWorld(account._store, load_profile("generic")) as world:
        src = Endpoint(ServerURL.parse(world.start_imap().url("budget")), Secret(PASSWORD), cafile=world.cafile)
        opts = dict(state_path=tmp_path / "s.sqlite", batch_size=2, connections=1)
        report = migrate(src, endpoint(dovecot, dst), MigrationOptions(**opts, max_item_errors=4))
        assert report.exit_code == 5 and report.aborted.startswith("error budget exhausted: 4 item errors")
        assert [s.reason for s in report.skipped] == ["refused"] * 4  # the batch in flight finishes, no more
        assert 0 < report.copied < 30 - len(bad)  # stopped early, what was confirmed is kept
        again = migrate(src, endpoint(dovecot, dst), MigrationOptions(**opts, max_item_errors=0))
    assert again.exit_code == 1 and not again.aborted
    assert (again.copied + report.copied, len(again.skipped)) == (30 - len(bad), len(bad))
    assert len(snapshot(dovecot, dst)["INBOX"]) == 30 - len(bad)


@pytest.mark.slow
def test_error_budget_stops_an_ews_run(tmp_path):
    """Every second message fails MIME conversion at the EWS source: the budget of 3 stops the run."""
    profile = load_profile("exchange").with_quirks([QuirkSpec.parse("ews-mime-conversion-failed:every=2")])
    src = Store().add_account("ewa", PASSWORD)
    populate(src, FixtureSpec(seed=52, messages=24, folders=2), profile)
    dst = Store().add_account("dan", PASSWORD)
    with SimulatorWorld(src._store, profile) as sw, SimulatorWorld(dst._store, load_profile("generic")) as dw:
        source = Endpoint(ServerURL.parse(sw.start_ews().url("ewa")), Secret(PASSWORD))
        dest = Endpoint(ServerURL.parse(dw.start_imap().url("dan")), Secret(PASSWORD), cafile=dw.cafile)
        report = migrate(source, dest, MigrationOptions(state_path=tmp_path / "s.sqlite", items=["mail"],
                                                        connections=1, batch_size=4, max_item_errors=3))
    assert report.exit_code == 5 and report.aborted.startswith("error budget exhausted: 3 item errors")
    assert {e.error for e in report.errors} == {"ErrorMimeContentConversionFailed"}
    assert 3 <= len(report.errors) < 12  # stopped early: a batch in flight at most, not all 12
