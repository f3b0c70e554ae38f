"""The Microsoft-over-IMAP and flag scenarios catch the damage with their mitigation switched off,
and say what the engine did (restored flags, receipts neutralised, skipped or re-wrapped lines)."""

from __future__ import annotations

from scenarios.runner import run_scenario
from tests.test_scenarios_quirks import failed_with, scenario, without


def test_flagged_lost_on_append_is_caught():
    result = without("exchange-flagged-on-append-lost", "flag-after-append")
    failed_with(result, "flag mismatches", "lost \\Flagged")
    assert result.verify.total("missing") == 0


def test_flagged_is_restored_and_counted():
    report = run_scenario(scenario("exchange-flagged-on-append-lost")).runs[0].report
    assert report["flags_restored"] == 2


def test_long_lines_sent_anyway_are_refused_by_exchange():
    result = without("exchange-append-limits", "line-length-check")
    failed_with(result, "0 messages skipped as 'line-too-long', expected 1", "1 messages skipped as 'refused'")
    assert "Command Argument Error. 11" in result.runs[0].report["skipped"][0]["detail"]


def test_long_line_skip_names_the_line():
    skipped = run_scenario(scenario("exchange-append-limits")).runs[0].report["skipped"]
    assert [s["detail"] for s in skipped] == ["a line of 12000 characters > the destination's 9900"]


def test_rewrap_copies_the_long_line_message_as_a_reported_repair():
    s = scenario("exchange-append-limits")
    options = {**s.migration.options, "long_lines": "rewrap"}
    s = s.model_copy(update={"migration": s.migration.model_copy(update={"options": options})})
    result = run_scenario(s)
    report = result.runs[0].report
    assert result.runs[0].exit_code == 0 and report["skipped"] == []
    assert [r["repair"] for r in report["repaired"]] == ["rewrapped"]
    # The repaired copy is the one message whose bytes differ; nothing is missing.
    assert result.verify.total("byte_mismatches") == 1 and result.verify.total("missing") == 0


def test_oversize_sent_past_appendlimit_provoke_the_bye_and_lose_innocent_mail():
    result = without("appendlimit-bye-after-errors", "appendlimit-skip")
    # Two refusals, BYE; reconnect; two more, BYE again: the run aborts, and the fifth oversize
    # message and the four innocent ones after it never get copied.
    failed_with(result, "run 1 ended with exit code 5, expected 1", "4 messages skipped as 'too-large', expected 5",
                "9 missing messages at the destination, expected 5")
    assert "destination connection lost twice" in result.runs[0].report["aborted"]


def test_refused_flags_without_the_filter_lose_whole_messages():
    result = without("invalid-flags-on-append", "permanentflags-filter")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "3 missing")
    assert {s["detail"] for s in result.runs[0].report["skipped"]} == {"APPEND Invalid flag list"}


def test_the_filter_reports_what_it_dropped():
    result = run_scenario(scenario("invalid-flags-on-append"))
    dropped = sorted(f for d in result.runs[0].report["dropped_flags"] for f in d["flags"])
    assert dropped == sorted(["$NotJunk", "NonJunk", "\\Indexed"] + [f"$label{i}" for i in range(1, 9)])
    assert result.verify.total("flags_unstorable") == 3


def test_m365_destination_keeps_keywords_read_from_select():
    result = run_scenario(scenario("examine-empty-permanentflags"))
    assert result.passed
    dropped = [f for d in result.runs[0].report["dropped_flags"] for f in d["flags"]]
    assert dropped == ["\\Indexed"]  # keywords went through: SELECT lists \*, EXAMINE nothing


def test_receipts_sent_again_without_neutralising_are_caught():
    result = without("mdn-resend", "mdn-neutralise")
    failed_with(result, "2 unexpected messages at the destination, expected 0 (Sent: 2")


def test_mdn_neutralised_messages_are_counted_and_noted():
    result = run_scenario(scenario("mdn-resend"))
    assert result.runs[0].report["mdn_neutralised"] == 2 and result.verify.total("mdn_marked") == 2


def test_m365_refuses_a_system_flag_it_cannot_store_without_the_filter():
    result = without("examine-empty-permanentflags", "permanentflags-filter")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "1 missing")
    assert [s["detail"] for s in result.runs[0].report["skipped"]] == ["APPEND command error: BAD [Command Argument Error. 11]"]
