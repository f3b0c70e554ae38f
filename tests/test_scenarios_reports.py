"""Expectation checks (pure sentences) and the report writers (report.json, junit.xml, table)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from rich.console import Console

from scenarios import reports
from scenarios.expectations import RunRecord, check
from scenarios.model import Scenario
from scenarios.runner import ScenarioResult
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, record_of
from scenarios.verify import compare

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)


def scenario(**expect) -> Scenario:
    return Scenario.model_validate(
        {"source": {"server": "dovecot"}, "migration": {"runs": 2}, "expect": expect}
    )


def verify_report(missing: bool = False):
    raws = [b"Message-ID: <a@x>\r\n\r\na", b"Message-ID: <b@x>\r\n\r\nb"]
    src = MailboxSnapshot(label="src")
    dst = MailboxSnapshot(label="dst")
    src.folders["INBOX"] = FolderSnapshot(path=("INBOX",), name="INBOX", messages=[record_of(i, r, [], T0) for i, r in enumerate(raws, 1)])
    kept = raws[:1] if missing else raws
    dst.folders["INBOX"] = FolderSnapshot(path=("INBOX",), name="INBOX", messages=[record_of(i, r, [], T0) for i, r in enumerate(kept, 1)])
    return compare(src, dst)


def runs(*copied: int, exit_code: int = 0, skipped=()) -> list[RunRecord]:
    return [
        RunRecord(run=i, exit_code=exit_code, seconds=0.1, copied=c, report={"skipped": list(skipped), "date_fallbacks": []})
        for i, c in enumerate(copied, 1)
    ]


def test_all_expectations_met_gives_no_failures():
    s = scenario(copied_per_run=[2, 0], folders={"INBOX": 2}, unexpected=0)
    assert check(s, runs(2, 0), verify_report()) == []


def test_each_broken_expectation_is_one_precise_sentence():
    s = scenario(copied_per_run=[2, 0], folders={"INBOX": 2, "Sent": 1}, exit_code=[0, 0], skipped=[{"reason": "too-large", "count": 1}])
    failures = check(s, runs(2, 1, exit_code=1, skipped=[{"reason": "no-such", "folder": "INBOX"}]), verify_report(missing=True))
    assert "run 2 copied 1 messages, expected 0" in failures
    assert "run 1 ended with exit code 1, expected 0" in failures
    assert "0 messages skipped as 'too-large', expected 1" in failures
    assert "1 messages skipped as 'no-such', expected none" in failures
    assert "destination folder 'INBOX' holds 1 messages, expected 2" in failures
    assert "destination folder 'Sent' does not exist, expected 1 messages" in failures
    # folders given → identical is not implied; a stated missing count is checked instead
    assert not any("not identical" in f for f in failures)


def test_identity_is_the_default_expectation_and_names_the_problem():
    failures = check(scenario(), runs(2, 0), verify_report(missing=True))
    assert len(failures) == 1
    assert failures[0].startswith("the destination is not identical to the source: 1 missing (INBOX: 1; e.g. uid 2 <b@x>)")
    assert check(scenario(missing=1, identical=False), runs(2, 0), verify_report(missing=True)) == []


def result(name: str, area: str = "imap", **kw) -> ScenarioResult:
    return ScenarioResult(name=name, area=area, file=f"lib/{area}/{name}.yaml", seconds=1.5, **kw)


RESULTS = [
    result("plain", passed=True, runs=runs(40), verify=verify_report()),
    result("rerun", passed=False, failures=["run 2 copied 3 messages, expected 0", "another sentence"]),
    result("needs-dovecot", passed=False, skipped="needs Dovecot: not installed"),
    result("broken", area="pop3", passed=False, error="lib/pop3/broken.yaml: expect.x: Extra inputs are not permitted"),
]


def test_junit_groups_by_area_and_carries_the_failure_sentences(tmp_path):
    reports.write_junit(RESULTS, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["plain"].get("classname") == "imap" and cases["plain"].get("time") == "1.500"
    assert cases["broken"].get("classname") == "pop3"
    failure = cases["rerun"].find("failure")
    assert failure.get("message") == "run 2 copied 3 messages, expected 0"
    assert failure.text == "run 2 copied 3 messages, expected 0\nanother sentence"
    assert cases["needs-dovecot"].find("skipped").get("message") == "needs Dovecot: not installed"
    assert "Extra inputs" in cases["broken"].find("error").get("message")
    assert "IDENTICAL" in cases["plain"].find("system-out").text


def test_report_json_round_trips_with_totals_and_environment(tmp_path):
    reports.write_all(RESULTS, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["totals"] == {"total": 4, "passed": 1, "failed": 1, "known-gap": 0, "skipped": 1, "error": 1, "seconds": 6.0}
    assert data["environment"]["python"]
    again = reports.read_json(tmp_path / "report.json")
    assert [r.name for r in again] == [r.name for r in RESULTS]
    assert again[0].verify.identical and again[0].runs[0].copied == 40


def test_summary_table_shows_each_scenario_with_its_first_failure():
    console = Console(width=200, record=True)
    console.print(reports.summary_table(RESULTS))
    text = console.export_text()
    assert "run 2 copied 3 messages, expected 0" in text and "another sentence" not in text
    assert "1 passed, 1 failed, 0 known gaps, 1 errors, 1 skipped" in text
    for name in ("plain", "rerun", "needs-dovecot", "broken"):
        assert name in text


def test_a_changed_source_is_a_failure_unless_the_scenario_allows_it():
    from scenarios.verify import VerifyScope

    src = MailboxSnapshot(label="before")
    after = MailboxSnapshot(label="after")
    raw = b"Message-ID: <a@x>\r\n\r\na"
    src.folders["INBOX"] = FolderSnapshot(path=("INBOX",), name="INBOX", messages=[record_of(1, raw, [], T0)])
    after.folders["INBOX"] = FolderSnapshot(path=("INBOX",), name="INBOX", messages=[record_of(1, raw, ["\\Seen"], T0)])
    after.folders["New"] = FolderSnapshot(path=("New",), name="New")
    changed = compare(src, after, VerifyScope(map_special_use=False))
    failures = check(scenario(), runs(2, 0), verify_report(), changed)
    assert failures == [
        "the migration changed the source mailbox: 1 flag mismatches (INBOX: 1; e.g. uid 1 <a@x>, gained \\Seen); new folders New"
    ]
    assert check(scenario(), runs(2, 0), verify_report(), compare(src, src)) == []
    assert check(scenario(source_unchanged=False), runs(2, 0), verify_report(), changed) == []


def test_html_report_escapes_and_lists_every_scenario(tmp_path):
    hostile = result("<script>", passed=False, failures=["folder '<b>' holds 1 messages, expected 2"])
    reports.write_all([*RESULTS, hostile], tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count('<details class="scenario') == 5  # one section per scenario (scenarios.report_html)
    assert "1 passed, 2 failed, 0 known gaps, 1 errors, 1 skipped" in page
