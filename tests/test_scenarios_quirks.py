"""The quirk scenarios pass with every mitigation on, and catch the damage with one switched off.

Each damage test runs a library scenario with ``migration.options.disable: [name]`` and asserts
the verifier reports what a naive engine does to the mail (duplicates, wrong dates, missing
messages, merged folders): proof that the scenario can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios.model import Scenario, load_scenario
from scenarios.runner import ScenarioResult, run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library"
QUIRKS = sorted((LIBRARY / "quirks").glob("*.yaml"))


def scenario(name: str, area: str = "quirks") -> Scenario:
    return load_scenario(LIBRARY / area / f"{name}.yaml")


def without(name: str, mitigation: str, area: str = "quirks") -> ScenarioResult:
    """The scenario run with one mitigation switched off."""
    s = scenario(name, area)
    options = {**s.migration.options, "disable": [mitigation]}
    return run_scenario(s.model_copy(update={"migration": s.migration.model_copy(update={"options": options})}))


def failed_with(result: ScenarioResult, *phrases: str) -> None:
    assert not result.passed, "the scenario passed with its mitigation off: it cannot catch the damage"
    text = "\n".join(result.failures)
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} not in the failures:\n{text}"


@pytest.mark.parametrize("path", QUIRKS, ids=[p.stem for p in QUIRKS])
def test_quirk_scenario_passes_with_every_mitigation_on(path: Path):
    s = load_scenario(path)
    result = run_scenario(s)
    assert result.error is None, result.error
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.passed, "\n".join(result.failures)
    # Scenarios that expect missing messages (renamed folders, refusals) still judge every copy
    # that did land: its INTERNALDATE instant, flags and bytes. Delivery (LMTP/SMTP) cannot carry
    # flags or an INTERNALDATE: the destination stamps arrival, the documented loss of that path.
    delivered = s.destination.protocol in ("lmtp", "smtp")
    for problem in ("byte_mismatches",) if delivered else ("date_mismatches", "flag_mismatches", "byte_mismatches"):
        assert result.verify.total(problem) == 0, result.verify.summary()


def test_every_scenario_name_is_unique_across_the_library():
    names = [load_scenario(p).name for p in LIBRARY.glob("*/*.yaml")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_case_collision_merge_is_caught():
    result = without("case-insensitive-folders", "case-collision-rename")
    failed_with(result, "destination folder 'Projects' holds 5 messages, expected 3",
                "destination folder 'projects (2)' does not exist", "2 unexpected messages")


def test_nonmail_folders_created_empty_are_caught():
    result = without("m365-nonmail-folders-over-imap", "nonmail-folder-skip")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "destination folder 'Calendar' exists (0 messages), expected none")
    assert {s["reason"] for s in result.runs[0].report["skipped"]} == {"no-body"}  # and still no made-up message


def test_reserved_name_left_behind_is_caught():
    result = without("m365-reserved-folders", "folder-rename")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "destination folder 'Files (2)' does not exist")
    assert result.runs[0].report["errors"][0]["message"].endswith("Folder name is reserved")


def test_refused_whitespace_name_left_behind_is_caught():
    result = without("folder-name-restrictions", "folder-rename")
    failed_with(result, "destination folder 'Old Mail' does not exist")


def test_throttled_appends_lost_without_backoff_are_caught():
    result = without("m365-throttled-backoff", "throttle-backoff")
    failed_with(result, "the destination is not identical to the source: 1 missing", "run 1 copied 23 messages, expected 24")
    assert {s["reason"] for s in result.runs[0].report["skipped"]} == {"refused"}


def test_connection_loss_without_resume_is_caught():
    result = without("exchange-bye-after-errors", "reconnect-resume")
    failed_with(result, "run 1 ended with exit code 5, expected 1", "missing messages at the destination, expected 3")
    assert "destination connection lost" in result.runs[0].report["aborted"]


def test_dates_reset_without_internaldate_are_caught():
    result = without("bad-dates-into-simulator", "internaldate")
    failed_with(result, "date mismatches")
    assert result.verify.total("date_mismatches") == result.verify.total("date_mismatches") > 0
    assert result.verify.total("missing") == 0  # the mail is there; only its dates are wrong


def test_duplicates_after_a_rerun_without_identity_matching_are_caught():
    result = without("lost-checkpoint-rematch", "identity-dedup")
    failed_with(result, "run 1 copied", "duplicated messages at the destination, expected 0")
    assert result.verify.total("duplicated") == scenario("lost-checkpoint-rematch").source.fixture.messages + 2 + 2


def test_gmail_label_copies_without_msgid_handling_are_caught():
    result = without("gmail-labels-once", "gmail-msgid")
    failed_with(result, "run 1 copied 61 messages, expected 30",
                "destination folder 'Réunions' holds 7 messages, expected 3",
                "destination folder 'Archive' holds 0 messages, expected 3",
                "destination folder '[Gmail]/All Mail' exists (30 messages), expected none")


def test_gmail_report_says_what_was_collapsed():
    report = run_scenario(scenario("gmail-labels-once")).runs[0].report
    assert report["gmail_labels"] == "once" and report["collapsed"] == 31
    rows = {f["source"]: f for f in report["folders"]}
    assert rows["[Gmail]/All Mail"]["destination"] == "Archive" and rows["[Gmail]/All Mail"]["collapsed"] == 27
    assert rows["Réunions"]["collapsed"] == 4
    assert any("30 distinct messages by X-GM-MSGID" in n for n in report["notes"])


def test_gmail_dedup_trusted_by_uid_is_caught():
    result = without("gmail-append-dedup", "gmail-append-confirm")
    failed_with(result, "run 1 ended with exit code 0, expected 1", "run 1 copied 16 messages, expected 14",
                "0 messages skipped as 'not-stored' in INBOX, expected 2")
    assert result.verify.total("missing") == 2  # what the report claimed as copied is not there


def test_a_folder_of_exactly_1000_messages_is_flagged_unless_switched_off():
    warned = run_scenario(scenario("gmail-1000-per-folder")).runs[0].report["folders"][0]["notes"]
    assert any("exactly 1000 messages" in n for n in warned)
    silent = without("gmail-1000-per-folder", "gmail-1000-warning").runs[0].report["folders"][0]["notes"]
    assert not any("exactly 1000" in n for n in silent)


@pytest.mark.parametrize("name, phrase", [
    ("imap-oauth-only", "the server offers OAuth: password logins may be disabled for this account or tenant"),
    ("authenticated-but-not-connected", "logged in but refused"),
    ("imap-app-password-required", "wants an application-specific password, not the account password"),
])
def test_refused_logins_are_classified_not_retried(name, phrase):
    run = run_scenario(scenario(name)).runs
    assert len(run) == 1 and run[0].exit_code == 4 and phrase in run[0].error


def test_gmail_noselect_parent_is_skipped_and_localised_folders_map_by_role():
    report = run_scenario(scenario("gmail-localised-special-folders")).runs[0].report
    assert report["skipped_folders"] == [{"folder": "[Gmail]", "reason": "\\Noselect"}]
    rows = {f["source"]: f["destination"] for f in report["folders"]}
    assert rows["[Gmail]/Gesendet"] == "Sent" and rows["[Gmail]/Papierkorb"] == "Trash"
    assert rows["[Gmail]/Alle Nachrichten"] == "Archive"


@pytest.mark.parametrize("name, side", [("bye-mid-fetch", "source"), ("drop-after-bytes", "source"),
                                        ("drop-at-command", "destination"), ("reset-mid-append", "destination")])
def test_transport_cuts_without_reconnect_lose_mail(name, side):
    result = without(name, "reconnect-resume")
    failed_with(result, "run 1 ended with exit code 5, expected 0", "the destination is not identical to the source")
    assert result.verify.total("missing") > 0
    assert result.runs[0].report["aborted"].startswith(f"{side} connection lost")


def test_replace_at_gmail_says_the_old_mail_stays_in_all_mail():
    result = run_scenario(scenario("gmail-delete-semantics"))
    inbox = next(f for f in result.runs[0].report["folders"] if f["source"] == "INBOX")
    assert any("stay in All Mail" in n for n in inbox["notes"])
    assert result.verify.dest_counts["[Gmail]/All Mail"] == 10 + 12  # the old mail, and the new copies' labels
