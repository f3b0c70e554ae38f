"""The limit scenarios catch the damage their quirk does with the mitigation off, and say what happened.

Each library scenario (scenarios/library/quirks/) passes with every mitigation on; that is
tests/test_scenarios_quirks.py's job. Here each is run again with its mitigation switched off and
the assertions name what a naive engine really does.
"""

from __future__ import annotations

import pytest

from scenarios.runner import run_scenario
from tests.test_scenarios_quirks import failed_with, scenario, without


def test_bandwidth_cap_without_pause_fails_folder_after_folder_and_says_nothing_of_resuming():
    result = without("gmail-bandwidth-cap", "bandwidth-pause")
    failed_with(result, "run 1 ended with exit code 1, expected 5", "no run's report says 'bandwidth cap reached after'")
    first = result.runs[0].report
    assert first["aborted"] is None  # "finished" — with most of the mailbox left behind
    errors = {e["folder"]: e["message"] for e in first["errors"]}
    assert "Account exceeded command or bandwidth limits" in errors["INBOX"]  # the refused re-login
    assert any("Session expired, please login again" in m for m in errors.values())  # the next folders
    assert first["copied"] == 15 < scenario("gmail-bandwidth-cap").source.fixture.messages
    assert result.verify.total("duplicated") == 0  # the checkpoint still prevents duplicates


def test_bandwidth_cap_report_names_the_bytes_and_the_second_run_resumes():
    result = run_scenario(scenario("gmail-bandwidth-cap"))
    first, second = (r.report for r in result.runs)
    assert first["aborted"].startswith("bandwidth cap reached after ") and first["errors"] == []
    spent = int(first["aborted"].split("after ")[1].split(" ")[0])
    assert 40000 <= spent < 40000 + 5 * 3000  # the budget, passed by at most the batch that crossed it
    assert second["already_present"] == first["copied"] and second["copied"] + first["copied"] == 30


def test_byte_budget_keeps_the_run_off_the_providers_trickle():
    result = run_scenario(scenario("gmail-bandwidth-cap-budget"))
    assert result.passed, result.failures
    # Past the provider's 50 kB the replies would come at 2000 B/s: about 12 s for this mailbox.
    assert all(run.seconds < 5 for run in result.runs), [run.seconds for run in result.runs]
    assert result.runs[0].report["aborted"] == result.runs[0].report["notes"][-1]


def test_renumbered_folders_without_identity_matching_are_copied_twice():
    result = without("uidvalidity-change", "identity-dedup")
    failed_with(result, "run 2 copied 32 messages, expected 5", "27 duplicated messages at the destination, expected 0")
    notes = [n for f in result.runs[1].report["folders"] for n in f["notes"]]
    assert any(n.startswith("UIDVALIDITY changed for INBOX") and n.endswith("re-matched 0 by identity") for n in notes)


def test_renumbered_folders_are_rematched_and_reported_per_folder():
    report = run_scenario(scenario("uidvalidity-change")).runs[1].report
    notes = {f["source"]: f["notes"] for f in report["folders"]}
    rows = {f["source"]: f for f in report["folders"]}
    for folder, row in rows.items():
        (note,) = notes[folder]
        assert note.startswith(f"UIDVALIDITY changed for {folder} (") and " → " in note
        assert note.endswith(f"re-matched {row['already_present']} by identity")
    assert sum(r["already_present"] for r in rows.values()) == 27


@pytest.mark.slow
def test_a_fixed_timeout_loses_the_big_folder():
    result = without("slow-large-folder", "adaptive-timeout")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "run 1 copied 0 messages, expected 20")
    errors = {e["folder"]: e["message"] for e in result.runs[0].report["errors"]}
    assert errors["INBOX"].endswith("connection lost: The read operation timed out")


def test_slow_close_costs_the_run_nothing():
    result = run_scenario(scenario("slow-close"))
    assert result.passed, result.failures
    assert result.runs[0].seconds < 3  # each of the 4+ connections would add 3 s if waited for


def test_notes_expectation_reads_run_folder_and_abort_texts():
    from scenarios.expectations import RunRecord, _check_notes

    runs = [
        RunRecord(run=1, exit_code=5, seconds=0.1, copied=3,
                  report={"notes": ["run note"], "aborted": "bandwidth cap reached after 9 bytes",
                          "folders": [{"notes": ["UIDVALIDITY changed for INBOX (1 → 2): re-matched 4 by identity"]}]}),
        RunRecord(run=2, exit_code=5, seconds=0.1, error="CapReached: login refused for now"),  # no report
    ]
    assert _check_notes(["run note", "cap reached after 9", "re-matched 4 by identity"], runs) == []
    assert _check_notes(["re-run later resumes"], runs) == ["no run's report says 're-run later resumes'"]
