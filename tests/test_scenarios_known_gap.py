"""known_gap: a scenario that states a behaviour quirkmail lacks still runs; failing, it is a known
gap (exit 0, JUnit skipped type=known-gap); passing, it fails until the marker is removed."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scenarios.reports import caption, headline, outcome, totals
from scenarios.runner import ScenarioResult

ROOT = Path(__file__).resolve().parents[1]

# A simulator-to-simulator migration that passes: no peer needed.
PASSING = """\
source: {server: simulator, profile: generic, fixture: {seed: 5, messages: 6, folders: 2}}
destination: {server: simulator, profile: generic}
expect: {exit_code: 0, identical: true}
"""
# The same, expecting one message too many at the destination: it fails.
FAILING = PASSING.replace("expect: {exit_code: 0, identical: true}", "expect: {exit_code: 0, folders: {INBOX: 99}}")


def _run(tmp_path: Path, text: str) -> tuple[int, dict, ET.Element]:
    area = tmp_path / "gaps"
    area.mkdir()
    (area / "case.yaml").write_text(text)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "scenarios", "run", str(area), "-n", "1", "--report-dir", str(reports)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
    )
    report = json.loads((reports / "report.json").read_text())
    return proc.returncode, report, ET.parse(reports / "junit.xml").getroot()


@pytest.mark.slow
def test_a_failing_known_gap_is_reported_as_that_gap_and_exits_0(tmp_path):
    code, report, junit = _run(tmp_path, "known_gap: the engine cannot do this yet\n" + FAILING)
    assert code == 0
    assert report["totals"]["known-gap"] == 1 and report["totals"]["failed"] == 0
    (case,) = junit.iter("testcase")
    skipped = case.find("skipped")
    assert skipped.get("type") == "known-gap"
    assert skipped.get("message") == "known gap: the engine cannot do this yet"
    assert "INBOX" in skipped.text  # the failure sentences stay visible


@pytest.mark.slow
def test_a_known_gap_that_passes_fails_until_the_marker_goes(tmp_path):
    code, report, junit = _run(tmp_path, "known_gap: the engine cannot do this yet\n" + PASSING)
    assert code == 1
    (result,) = report["results"]
    assert result["passed"] is False and result["known_gap"] is None
    assert "remove its known_gap line" in result["failures"][0]
    assert next(junit.iter("testcase")).find("failure") is not None


def test_outcome_headline_and_totals_speak_of_known_gaps():
    gap = ScenarioResult(name="a", area="x", file="a.yaml", passed=False, failures=["held 1"], known_gap="no X yet")
    ok = ScenarioResult(name="b", area="x", file="b.yaml", passed=True)
    assert outcome(gap) == "known-gap" and headline(gap) == "known gap: no X yet"
    t = totals([gap, ok])
    assert (t["known-gap"], t["passed"], t["failed"]) == (1, 1, 0)
    assert caption(t).startswith("1 passed, 0 failed, 1 known gaps")
