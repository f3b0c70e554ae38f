"""Checking a scenario's ``expect:`` block against what happened: pure, one sentence per failure.

Inputs are the scenario, the record of each migration run and the verify report; the output is
a list of precise sentences ("run 2 copied 3 messages, expected 0"), empty when all hold.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel

from scenarios.model import Scenario
from scenarios.verify import VerifyReport


class RunRecord(BaseModel):
    """One migration run, whichever engine did it."""

    run: int  # 1-based
    exit_code: int
    seconds: float
    copied: int | None = None  # None for an external command (it reports nothing we can read)
    report: dict[str, Any] | None = None  # migrator MigrationReport as JSON
    error: str = ""  # the typed error that ended the run, or an external command's output tail
    waits: list[float] | None = None  # seconds the engine slept when throttled (EWS sources)
    wait_at: list[float] | None = None  # when each wait began, seconds into the run (report.html's timeline)


class AccountCheck(BaseModel):
    """One account of a batch scenario (scenarios.batch_scenario): its outcome and its own verdict."""

    id: str
    outcome: str  # the batch's: ok, items-skipped, authentication ...
    exit_code: int
    copied: int = 0
    passed: bool = False
    failures: list[str] = []
    verify: VerifyReport | None = None  # None for an account whose login was meant to be refused


def check(
    scenario: Scenario, runs: list[RunRecord], verify: VerifyReport, source_check: VerifyReport | None = None
) -> list[str]:
    expect = scenario.expect
    failures: list[str] = []
    if source_check is not None and expect.source_unchanged and not source_check.exact:
        failures.append("the migration changed the source mailbox: " + _problems(source_check, with_unexpected=True))
    failures += _check_exit_codes(expect.exit_code, runs)
    if expect.copied_per_run is not None:
        for run, wanted in zip(runs, expect.copied_per_run):
            if run.copied != wanted:
                failures.append(f"run {run.run} copied {run.copied} messages, expected {wanted}")
    failures += _check_notes(expect.notes, runs)
    if expect.skipped is not None and runs:
        failures += _check_skipped(expect.skipped, runs[-1])
    if expect.error is not None and runs:
        said = why_stopped(runs[-1])
        if expect.error.lower() not in said.lower():
            failures.append(f"the last run does not say {expect.error!r}: {said or '(nothing)'}")
    if expect.date_fallbacks is not None and runs and runs[-1].report is not None:
        got = len(runs[-1].report.get("date_fallbacks", []))
        if got != expect.date_fallbacks:
            failures.append(f"the engine reported {got} date fallbacks, expected {expect.date_fallbacks}")
    if expect.folders is not None:
        failures += _check_counts(expect.folders, verify)
    for folder in expect.absent:
        if folder in verify.dest_counts:
            failures.append(f"destination folder {folder!r} exists ({verify.dest_counts[folder]} messages), expected none")
    if expect.wants_identical() and not verify.identical:
        failures.append("the destination is not identical to the source: " + _problems(verify))
    if expect.identical is False and verify.identical:
        failures.append("the destination is identical to the source, expected a difference")
    for problem in ("missing", "duplicated", "unexpected"):
        wanted = getattr(expect, problem)
        if wanted is not None and verify.total(problem) != wanted:
            failures.append(
                f"{verify.total(problem)} {problem} messages at the destination, expected {wanted}"
                + _where(verify, problem)
            )
    return failures


def _check_notes(phrases: list[str], runs: list[RunRecord]) -> list[str]:
    said = []
    for run in runs:
        report = run.report or {}
        said += report.get("notes", []) + [report.get("aborted") or ""]
        said += [n for f in report.get("folders", []) for n in f.get("notes", [])]
    return [f"no run's report says {p!r}" for p in phrases if not any(p in text for text in said)]


def why_stopped(run: RunRecord) -> str:
    """What ended a run early: its typed error, else its report's refused login or abort reason."""
    report = run.report or {}
    return run.error or report.get("login_refused") or report.get("aborted") or ""


def _check_exit_codes(wanted: int | list[int], runs: list[RunRecord]) -> list[str]:
    per_run = wanted if isinstance(wanted, list) else [wanted] * len(runs)
    failures = []
    for run, code in zip(runs, per_run):
        if run.exit_code != code:
            why = f": {run.error}" if run.error else ""
            failures.append(f"run {run.run} ended with exit code {run.exit_code}, expected {code}{why}")
    return failures


def _check_skipped(wanted: list, run: RunRecord) -> list[str]:
    items = (run.report or {}).get("skipped", [])
    failures = []
    for w in wanted:
        got = sum(1 for s in items if s.get("reason") == w.reason and (w.folder is None or s.get("folder") == w.folder))
        if got != w.count:
            where = f" in {w.folder}" if w.folder else ""
            failures.append(f"{got} messages skipped as {w.reason!r}{where}, expected {w.count}")
    expected_reasons = {w.reason for w in wanted}
    others = Counter(s.get("reason") for s in items if s.get("reason") not in expected_reasons)
    for reason, count in sorted(others.items()):
        failures.append(f"{count} messages skipped as {reason!r}, expected none")
    return failures


def _check_counts(wanted: dict[str, int], verify: VerifyReport) -> list[str]:
    failures = []
    for folder, count in wanted.items():
        got = verify.dest_counts.get(folder)
        if got is None:
            failures.append(f"destination folder {folder!r} does not exist, expected {count} messages")
        elif got != count:
            failures.append(f"destination folder {folder!r} holds {got} messages, expected {count}")
    return failures


def _problems(verify: VerifyReport, *, with_unexpected: bool = False) -> str:
    parts = []
    problems = ["missing", "duplicated", "date_mismatches", "flag_mismatches", "byte_mismatches"]
    for problem in problems + (["unexpected"] if with_unexpected else []):
        total = verify.total(problem)
        if total:
            parts.append(f"{total} {problem.replace('_', ' ')}{_where(verify, problem)}")
    if with_unexpected and verify.extra_folders:
        parts.append(f"new folders {', '.join(verify.extra_folders)}")
    return "; ".join(parts) or "see the verify report"


def _where(verify: VerifyReport, problem: str) -> str:
    folders = [f"{f.source}: {len(getattr(f, problem))}" for f in verify.folders if getattr(f, problem)]
    if not folders:
        return ""
    first = next(getattr(f, problem)[0] for f in verify.folders if getattr(f, problem))
    example = f"uid {first.uid} {first.identity}" + (f", {first.detail}" if first.detail else "")
    return f" ({', '.join(folders[:4])}{', …' if len(folders) > 4 else ''}; e.g. {example})"
