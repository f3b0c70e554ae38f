"""What a run leaves behind: report.json, junit.xml and the summary table, from ScenarioResults
(report.html is drawn by scenarios.report_html).

JUnit XML is written here rather than by pytest's ``--junitxml`` because pytest names the
testcase class after the file path; CI dashboards should group scenarios by area (imap, pop3 …).
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from scenarios.runner import ScenarioResult

REPORT_JSON = "report.json"
JUNIT_XML = "junit.xml"
REPORT_HTML = "report.html"


def outcome(result: ScenarioResult) -> str:
    if result.error:
        return "error"
    if result.skipped:
        return "skipped"
    if result.known_gap and not result.passed:
        return "known-gap"
    return "passed" if result.passed else "failed"


def headline(result: ScenarioResult) -> str:
    """One line saying what went wrong: the first failure, the error's last line, the skip reason."""
    if result.error:
        return result.error.strip().splitlines()[-1]  # a traceback ends with the exception
    if result.known_gap and not result.passed:
        return f"known gap: {result.known_gap}"
    if result.failures:
        return result.failures[0]
    return result.skipped or ""


def totals(results: list[ScenarioResult]) -> dict[str, Any]:
    counts = {k: 0 for k in ("passed", "failed", "known-gap", "skipped", "error")}
    for r in results:
        counts[outcome(r)] += 1
    return {"total": len(results), **counts, "seconds": round(sum(r.seconds for r in results), 3)}


def environment() -> dict[str, str]:
    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if shutil.which("dovecot"):
        done = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
        env["dovecot"] = done.stdout.strip()
    return env


def write_json(results: list[ScenarioResult], path: Path) -> None:
    data = {
        "environment": environment(),
        "totals": totals(results),
        "results": [r.model_dump(mode="json") for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: Path) -> list[ScenarioResult]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [ScenarioResult.model_validate(r) for r in data["results"]]


def junit_tree(results: list[ScenarioResult]) -> ET.ElementTree:
    """One testcase per scenario (classname = area); a batch scenario adds one per account
    (name ``<scenario>/<account>``), so a dashboard shows which mailbox of the batch failed."""
    t = totals(results)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name="quirkmail scenarios", time=f"{t['seconds']:.3f}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.area, name=r.name, time=f"{r.seconds:.3f}")
        case.set("file", r.file)
        kind = outcome(r)
        counts["tests"] += 1
        if kind == "failed":
            counts["failures"] += 1
            node = ET.SubElement(case, "failure", message=r.failures[0] if r.failures else "failed")
            node.text = "\n".join(r.failures)
        elif kind == "error":
            counts["errors"] += 1
            ET.SubElement(case, "error", message=headline(r)[:500]).text = r.error
        elif kind == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=r.skipped or "")
        elif kind == "known-gap":  # JUnit has no expected failure: pytest writes xfail as skipped too
            counts["skipped"] += 1
            node = ET.SubElement(case, "skipped", type="known-gap", message=headline(r))
            node.text = "\n".join(r.failures)
        if r.verify is not None:
            ET.SubElement(case, "system-out").text = r.verify.summary() + _collab_text(r)
        for a in r.accounts:
            counts["tests"] += 1
            counts["failures"] += not a.passed
            _account_case(suite, r, a)
    for name, n in counts.items():
        suite.set(name, str(n))
    ET.indent(suites)
    return ET.ElementTree(suites)


def _account_case(suite: ET.Element, r: ScenarioResult, account) -> None:
    """A batch scenario's account as its own testcase (its time is the scenario's: one batch run)."""
    case = ET.SubElement(suite, "testcase", classname=r.area, name=f"{r.name}/{account.id}", time="0.000")
    case.set("file", r.file)
    if not account.passed:
        node = ET.SubElement(case, "failure", message=account.failures[0] if account.failures else "failed")
        node.text = "\n".join(account.failures)
    said = f"outcome {account.outcome} (exit code {account.exit_code}), {account.copied} copied in the last run"
    ET.SubElement(case, "system-out").text = said + ("\n" + account.verify.summary() if account.verify else "")


def _collab_text(result: ScenarioResult) -> str:
    """The PIM comparison, and each run's waits, BYEs and reconnects, below the mail verify summary."""
    lines = [line for run in result.runs for line in _timeline_lines(run)]
    if result.pim is not None:
        held = "; ".join(f"{folder}: " + ", ".join(f"{n} {k}" for k, n in kinds.items())
                         for folder, kinds in result.pim["dest_counts"].items())
        lines.append(f"PIM destination holds {held or 'nothing'}")
        diffs = result.pim["differences"]
        lines += [f"  {d}" for d in diffs[:10]] + ([f"  (+{len(diffs) - 10} more)"] if len(diffs) > 10 else [])
        lines.append("PIM IDENTICAL" if result.pim["identical"] else f"PIM NOT IDENTICAL: {len(diffs)} differences")
    return "\n" + "\n".join(lines) if lines else ""


def _timeline_lines(run) -> list[str]:
    """The engine's events (MigrationReport.events), or an older EWS record's waits."""
    events = (run.report or {}).get("events") or []
    waits = [e["seconds"] for e in events if e["kind"] == "backoff"] if events else (run.waits or [])
    lines = [f"run {run.run} throttled: waited {', '.join(f'{w:g} s' for w in waits)}"] if waits else []
    for e in events:
        if e["kind"] == "bye":
            lines.append(f"run {run.run} at {e['at']:g} s: {e['role']} said BYE {e['cause']}")
        elif e["kind"] == "reconnect":
            lines.append(f"run {run.run} at {e['at']:g} s: {e['role']} reconnect {e['attempt']} {e['outcome']} "
                         f"(lost: {e['cause']})")
    return lines


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(results).write(path, encoding="utf-8", xml_declaration=True)


def html_page(results: list[ScenarioResult]) -> str:
    """report.html (scenarios.report_html), imported here late: that module uses outcome() from this one."""
    from scenarios.report_html import html_page as render

    return render(results, caption(totals(results)))


def write_all(results: list[ScenarioResult], report_dir: Path) -> None:
    write_json(results, report_dir / REPORT_JSON)
    write_junit(results, report_dir / JUNIT_XML)
    (report_dir / REPORT_HTML).write_text(html_page(results), encoding="utf-8")


def _copied(result: ScenarioResult) -> str:
    return "/".join(str(run.copied) for run in result.runs if run.copied is not None) or "-"


def summary_table(results: list[ScenarioResult]) -> Table:
    t = totals(results)
    table = Table(
        title="quirkmail scenarios",
        caption=f"{caption(t)}; {t['seconds']:.1f} s of scenario time",
    )
    for column in ("scenario", "area", "result", "copied", "seconds", "first failure"):
        table.add_column(column, justify="right" if column in ("copied", "seconds") else "left")
    styles = {"passed": "green", "failed": "red", "error": "red", "skipped": "yellow", "known-gap": "yellow"}
    for r in sorted(results, key=lambda r: (r.area, r.name)):
        kind = outcome(r)
        # Text, not markup: server replies carry brackets ("[AUTHENTICATIONFAILED]").
        table.add_row(
            Text(r.name),
            Text(r.area),
            Text(kind, style=styles[kind]),
            _copied(r),
            f"{r.seconds:.1f}",
            Text(_one_line(headline(r))),
        )
    return table


def caption(t: dict[str, Any]) -> str:
    return (f"{t['passed']} passed, {t['failed']} failed, {t['known-gap']} known gaps, {t['error']} errors, "
            f"{t['skipped']} skipped")


def _one_line(text: str, width: int = 100) -> str:
    # The table is a summary: the whole sentence is in report.json / report.html / junit.xml.
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
