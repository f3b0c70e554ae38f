"""The name, namespace, malformed-reply and content scenarios: what the report says, and the
damage each catches with its mitigation switched off (see tests/test_scenarios_quirks.py)."""

from __future__ import annotations

from tests.test_scenarios_quirks import failed_with, run_scenario, scenario, without


def _folders(result) -> dict[str, dict]:
    return {f["source"]: f for f in result.runs[0].report["folders"]}


def test_every_folder_lands_under_the_inbox_prefix():
    rows = _folders(run_scenario(scenario("inbox-namespace-prefix")))
    assert rows["Projekte/Ärger"]["destination"] == "INBOX.Projekte.Ärger"
    assert all(r["destination"].startswith("INBOX.") for s, r in rows.items() if s != "INBOX")


def test_ignoring_the_namespace_prefix_is_caught():
    result = without("inbox-namespace-prefix", "namespace-prefix")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "missing")
    errors = result.runs[0].report["errors"]
    assert errors and all("should probably be prefixed with: INBOX." in e["message"] for e in errors)


def test_a_name_holding_the_destination_delimiter_is_renamed_and_said():
    rows = _folders(run_scenario(scenario("hierarchy-delimiter")))
    assert rows["Reports 1/2"]["destination"] == "Reports 1_2"
    assert rows["Reports 1/2"]["notes"] == [
        "name part 'Reports 1/2' contains the destination delimiter '/': renamed 'Reports 1_2'"]
    assert rows["Projekte\\Ärger"]["destination"] == "Projekte/Ärger"  # "\" nesting kept at "/"


def test_splitting_a_name_at_the_destination_delimiter_is_caught():
    result = without("hierarchy-delimiter", "delimiter-rename")
    failed_with(result, "destination folder 'Reports 1_2' does not exist",
                "destination folder 'Reports 1/2' exists (3 messages), expected none")


def test_raw_utf8_names_read_as_latin1_are_caught():
    result = without("modified-utf7-names", "lenient-list")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "destination folder '日本' does not exist")
    assert any("EntwÃ¼rfe" in e["folder"] for e in result.runs[0].report["errors"])


def test_malformed_list_line_is_reported_and_strict_parsing_fails_the_run():
    result = run_scenario(scenario("malformed-responses"))
    notes = result.runs[0].report["notes"]
    assert any("folder 'Old Mail': closing quote missing" in n for n in notes)
    assert [d["uid"] for d in result.runs[0].report["date_fallbacks"]] == [2]
    strict = without("malformed-responses", "lenient-list")
    assert not strict.passed
    assert "No closing '\"'" in (strict.runs[0].error or "") or "closing" in "\n".join(strict.failures)


def test_bare_lf_refusal_is_repaired_with_crlf_and_reported():
    repaired = run_scenario(scenario("bare-lf")).runs[0].report["repaired"]
    assert [(r["uid"], r["repair"], r["detail"]) for r in repaired] == [
        (2, "crlf", "refused (Message contains bare newlines): sent again with CRLF line endings (8 bare LF line ending(s))")]


def test_bare_lf_refusal_without_repair_is_caught():
    result = without("bare-lf", "content-repair")
    failed_with(result, "run 1 ended with exit code 1, expected 0", "1 missing")
    skipped = result.runs[0].report["skipped"]
    assert [(s["uid"], s["reason"]) for s in skipped] == [(2, "bare-lf")]


def test_refused_content_is_skipped_with_its_own_reason_and_the_servers_words():
    skipped = run_scenario(scenario("8bit-headers")).runs[0].report["skipped"]
    assert {(s["reason"], s["detail"]) for s in skipped} == {
        ("8bit-headers", "Message contains non-ASCII characters in headers (8-bit bytes in From, Subject)"),
        ("nul-bytes", "Message contains NUL characters (2 NUL byte(s))"),
    }
    long = run_scenario(scenario("long-lines")).runs[0].report["skipped"]
    assert [(s["reason"], s["detail"]) for s in long] == [("line-too-long", "a line of 20000 characters > the destination's 9900")]
