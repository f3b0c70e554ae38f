"""IMAP and POP3 backoffs, BYEs and reconnects with their instants: from the engine's timeline
(migrator.timeline) through report.json to the marks on report.html's SVG timeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import html as lxml_html

from migrator import backoff
from migrator.timeline import Timeline
from scenarios import reports
from scenarios.model import load_scenario
from scenarios.runner import ScenarioResult, run_scenario

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library"

# POP3 → simulated IMAP (no peer): the connection drops inside RETR of message 5, twice.
POP3_DROPS = """\
description: POP3 drops mid-RETR twice; the engine resumes in new sessions.
source:
  server: simulator
  protocol: pop3
  profile: generic
  quirks: ["pop3-drop-mid-retr:after_bytes=200,message=5,times=2"]
  fixture: {seed: 201, messages: 12, folders: 1}
destination: {server: simulator, profile: generic}
migration:
  options: {mode: merge, batch_size: 4}
expect:
  exit_code: 0
  duplicated: 0
  pop3: {reconnects: 2}
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, ScenarioResult]:
    backoff.seed_jitter(7)  # the doubling waits are jittered: replayable
    own = tmp_path_factory.mktemp("pop3")
    (own / "pop3-drops.yaml").write_text(POP3_DROPS)
    files = [LIBRARY / "quirks" / "yahoo-rate-limit.yaml", LIBRARY / "quirks" / "m365-throttled-backoff.yaml",
             LIBRARY / "quirks" / "exchange-bye-after-errors.yaml", own / "pop3-drops.yaml"]
    try:
        out = {f.stem: run_scenario(load_scenario(f)) for f in files}
    finally:
        backoff.seed_jitter(None)
    assert all(r.passed for r in out.values()), {k: r.failures or r.error for k, r in out.items()}
    # Through report.json and back, as a reader of the artifact gets them.
    folder = tmp_path_factory.mktemp("report")
    reports.write_json(list(out.values()), folder / reports.REPORT_JSON)
    return {r.name: r for r in reports.read_json(folder / reports.REPORT_JSON)}


def events(result: ScenarioResult, kind: str | None = None) -> list[dict]:
    (run,) = result.runs
    return [e for e in run.report["events"] if kind is None or e["kind"] == kind]


def assert_sane_instants(result: ScenarioResult) -> None:
    (run,) = result.runs
    ats = [e["at"] for e in events(result)]
    assert ats == sorted(ats)
    for e in events(result):
        assert 0 <= e["at"] and e["at"] + e["seconds"] <= run.report["seconds"] <= run.seconds, e


def test_imap_source_backoffs_are_timed_with_the_reply_that_asked(results):
    limited = results["yahoo-rate-limit"]
    waits = events(limited, "backoff")
    assert len(waits) == 2  # the quirk refused times=2 UID FETCHes; each was waited out once
    assert events(limited) == waits  # nothing else happened
    for attempt, e in enumerate(waits, start=1):
        assert e["role"] == "source" and "[LIMIT] UID FETCH Rate limit hit." in e["cause"]
        assert e["attempt"] == attempt  # the same command refused twice running
        nominal = backoff.FIRST_DELAY * 2 ** (attempt - 1)
        assert nominal * (1 - backoff.JITTER) <= e["seconds"] <= nominal
    assert waits[1]["at"] >= waits[0]["at"] + waits[0]["seconds"]  # the second began after the first ended
    assert_sane_instants(limited)


def test_imap_destination_backoff_waits_the_suggested_time(results):
    throttled = results["m365-throttled-backoff"]
    (wait,) = events(throttled)  # two APPENDs of one batch refused: one pause, then both again
    assert wait["kind"] == "backoff" and wait["role"] == "destination" and wait["seconds"] == 0.3
    assert "Request is throttled. Suggested Backoff Time: 300 milliseconds" in wait["cause"]
    assert_sane_instants(throttled)


def test_bye_then_reconnect_in_order(results):
    bye = results["exchange-bye-after-errors"]
    kinds = [(e["kind"], e["role"]) for e in events(bye)]
    assert kinds == [("bye", "destination"), ("reconnect", "destination")]
    said, back = events(bye)
    assert said["cause"] == "Connection closed."  # Exchange's BYE text, byte for byte
    assert back["outcome"] == "resumed" and back["attempt"] == 1 and back["at"] >= said["at"]
    assert_sane_instants(bye)


def test_pop3_reconnects_match_the_count(results):
    drops = results["pop3-drops"]
    (run,) = drops.runs
    back = events(drops, "reconnect")
    assert len(back) == run.report["pop3"]["reconnects"] == 2
    assert [e["attempt"] for e in back] == [1, 2]
    assert all(e["role"] == "source" and e["outcome"] == "resumed" for e in back)
    assert_sane_instants(drops)


def test_html_timeline_marks_each_event_at_its_instant(results):
    doc = lxml_html.fromstring(reports.html_page(list(results.values())))
    for name, result in results.items():
        (svg,) = doc.xpath(f'//details[@id="quirks-{name}" or @id="{result.area}-{name}"]'
                           '//*[local-name()="svg"][contains(@class, "timeline")]')
        drawn = {
            "backoff": svg.xpath('.//*[local-name()="rect"][contains(@class, "bar wait")]'),
            "bye": svg.xpath('.//*[local-name()="path"][contains(@class, "mark bye")]'),
            "reconnect": svg.xpath('.//*[local-name()="circle"][contains(@class, "mark reconnect")]'),
        }
        for kind, marks in drawn.items():
            assert [float(m.get("data-at")) for m in marks] == [e["at"] for e in events(result, kind)], (name, kind)
        waits = [float(m.get("data-seconds")) for m in drawn["backoff"]]
        assert waits == [e["seconds"] for e in events(result, "backoff")]
        xs = [float(m.get("x") or m.get("cx") or 0) for m in drawn["backoff"] + drawn["reconnect"]]
        assert all(80 <= x <= 840 for x in xs)  # inside the lane, after the lane's name
        legend = svg.xpath('.//*[local-name()="g"][@class="legend"]/@data-kind')
        assert legend == ["wait", "bye", "reconnect", "reconnect-failed"]


def test_report_json_without_events_still_reads():
    """Older report.json files (no ``events``) load and draw no timeline."""
    old = {"name": "t", "area": "imap", "file": "imap/t.yaml", "passed": True,
           "runs": [{"run": 1, "exit_code": 0, "seconds": 1.0, "copied": 1,
                     "report": {"source": "imap://a@h", "destination": "imap://b@h",
                                "started": "2026-01-01T00:00:00Z", "notes": []}}]}
    result = ScenarioResult.model_validate(json.loads(json.dumps(old)))
    assert 'class="chart timeline"' not in reports.html_page([result])


def test_timeline_orders_events_and_counts_reconnects_per_role():
    now = [10.0]
    slept: list[float] = []
    line = Timeline(clock=lambda: now[0], sleep=slept.append)
    now[0] = 10.5
    line.backoff(0.2, "NO [LIMIT] x", where="source imap://a@h folder 'INBOX'", attempt=1)
    now[0] = 11.0
    line.reconnect("EOF", where="destination imap://b@h", outcome="resumed")
    line.reconnect("EOF", where="destination imap://b@h", outcome="failed")
    line.reconnect("EOF", where="source imap://a@h", outcome="resumed")
    got = [(e.kind, e.at, e.role, e.attempt, e.outcome) for e in line.events()]
    assert got == [("backoff", 0.5, "source", 1, ""), ("reconnect", 1.0, "destination", 1, "resumed"),
                   ("reconnect", 1.0, "destination", 2, "failed"), ("reconnect", 1.0, "source", 1, "resumed")]
    assert slept == [0.2]


def test_junit_text_says_waits_byes_and_reconnects(results):
    from scenarios.reports import _collab_text

    lines = _collab_text(results["exchange-bye-after-errors"]).splitlines()[1:]
    bye, back = events(results["exchange-bye-after-errors"])
    assert lines == [f"run 1 at {bye['at']:g} s: destination said BYE Connection closed.",
                     f"run 1 at {back['at']:g} s: destination reconnect 1 resumed (lost: {back['cause']})"]
    assert _collab_text(results["m365-throttled-backoff"]).splitlines()[1:] == ["run 1 throttled: waited 0.3 s"]
