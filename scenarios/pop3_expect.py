"""The ``expect.pop3`` and ``expect.live`` blocks, and their checks: pure, one sentence per failure.

``expect.pop3`` speaks of what a POP3 run must report and leave behind — the source's message
counts afterwards (leave-on-server vs deleted), what the report says POP3 and delivery lose, the
date fallbacks (POP3 has no INTERNALDATE: Received, else Date), the typed error of a refused login.
``expect.live`` speaks of the mail that arrived over SMTP while the migration ran
(``migration.live_traffic``): every accepted message at the destination once.

    failures = check_pop3(scenario.expect.pop3, last_run, source_counts, verify)
    failures += check_live(scenario.expect.live, live_outcome)
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeftBehind(_Block):
    messages: int | None = None  # source messages outside the inbox, as the report states them
    folders: int | None = None  # other source folders


class UidlMapExpectations(_Block):
    messages: int | None = None  # rows of the source-UIDL map the engine wrote
    with_uidl: int | None = None  # rows naming a source UIDL (0 when the server has none)


class Pop3Expectations(_Block):
    """What a POP3 source run must report and leave (each field None = not checked)."""

    # Source message counts by folder after the last run ("INBOX": 0 when deleted after confirm).
    source_folders: dict[str, int] | None = None
    deleted: int | None = None  # report.pop3.deleted of the last run
    kept: int | None = None  # report.pop3.kept of the last run
    uidl: str | None = None  # "unique" | "missing" | "duplicated"
    top: bool | None = None  # False: headers came from RETR (TOP unsupported)
    delivery: str | None = None  # "imap" | "lmtp" | "smtp"
    reconnects: int | None = None  # fresh POP3 sessions after lost connections, summed over runs
    notes: list[str] = []  # each a substring of some report note ("inbox only" ...)
    losses: list[str] = []  # each a substring of some entry of report.pop3.losses
    left_behind: LeftBehind | None = None
    # Date fallbacks of the last run by what was used: {received: 20, date: 2}.
    dates_used: dict[str, int] | None = None
    # Verify totals that a delivery path makes expected (INTERNALDATE becomes delivery time).
    date_mismatches: int | None = None
    byte_mismatches: int | None = None
    flag_mismatches: int | None = None
    error: str | None = None  # a substring of the last run's error ("application-specific password")
    uidl_map: UidlMapExpectations | None = None  # the map that keeps POP3 clients from re-downloading


class LiveExpectations(_Block):
    """Mail delivered over SMTP to the source while the migration ran."""

    accepted: int | None = None  # messages the source's SMTP front accepted
    lost: int = Field(0, ge=0)  # accepted but not at the destination
    duplicated: int = Field(0, ge=0)  # extra copies at the destination


def _report(run: Any) -> dict:
    return (run.report if run is not None else None) or {}


def check_pop3(
    wanted: Pop3Expectations | None, runs: list, source_counts: dict[str, int], verify: Any
) -> list[str]:
    if wanted is None:
        return []
    last = runs[-1] if runs else None
    report = _report(last)
    pop3 = report.get("pop3") or {}
    failures: list[str] = []
    for folder, count in (wanted.source_folders or {}).items():
        got = source_counts.get(folder)
        if got != count:
            failures.append(f"source folder {folder!r} holds {got} messages after the migration, expected {count}")
    for field in ("deleted", "kept", "uidl", "top", "delivery"):
        value = getattr(wanted, field)
        if value is not None and pop3.get(field) != value:
            failures.append(f"the POP3 report says {field} = {pop3.get(field)!r}, expected {value!r}")
    if wanted.reconnects is not None:
        got = sum(((r.report or {}).get("pop3") or {}).get("reconnects", 0) for r in runs)
        if got != wanted.reconnects:
            failures.append(f"the engine reconnected to the POP3 source {got} times, expected {wanted.reconnects}")
    failures += _contains("report notes", report.get("notes", []), wanted.notes)
    failures += _contains("POP3 losses", pop3.get("losses", []), wanted.losses)
    if wanted.left_behind is not None:
        for field in ("messages", "folders"):
            value = getattr(wanted.left_behind, field)
            got = pop3.get(f"left_behind_{field}")
            if value is not None and got != value:
                failures.append(f"the report says {got} {field} left behind by POP3, expected {value}")
    if wanted.dates_used is not None:
        got = dict(Counter(f.get("used") for f in report.get("date_fallbacks", [])))
        if got != wanted.dates_used:
            failures.append(f"the dates came from {_counts(got)}, expected {_counts(wanted.dates_used)}")
    for problem in ("date_mismatches", "byte_mismatches", "flag_mismatches"):
        value = getattr(wanted, problem)
        if value is not None and verify is not None and verify.total(problem) != value:
            failures.append(f"{verify.total(problem)} {problem.replace('_', ' ')} at the destination, expected {value}")
    if wanted.uidl_map is not None:
        failures += _check_uidl_map(wanted.uidl_map, pop3.get("uidl_map"))
    if wanted.error is not None:
        error = last.error if last is not None else ""
        if wanted.error.lower() not in error.lower():
            failures.append(f"the run's error does not say {wanted.error!r}: {error or '(no error)'}")
    return failures


def _check_uidl_map(wanted: UidlMapExpectations, path: str | None) -> list[str]:
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))["messages"] if path else None
    except (OSError, ValueError, KeyError) as exc:
        return [f"the source-UIDL map {path} cannot be read: {exc}"]
    if rows is None:
        return ["the engine wrote no source-UIDL map"]
    got = {"messages": len(rows), "with_uidl": sum(1 for r in rows if r.get("uidl"))}
    return [f"the source-UIDL map has {got[f]} {f.replace('_', ' ')}, expected {getattr(wanted, f)}"
            for f in ("messages", "with_uidl") if getattr(wanted, f) is not None and got[f] != getattr(wanted, f)]


def check_live(wanted: LiveExpectations | None, outcome: dict | None) -> list[str]:
    if wanted is None:
        return []
    if outcome is None:
        return ["expect.live is given but the scenario has no migration.live_traffic"]
    failures = []
    if wanted.accepted is not None and outcome["accepted"] != wanted.accepted:
        failures.append(f"the source accepted {outcome['accepted']} live messages over SMTP, expected {wanted.accepted}")
    for field in ("lost", "duplicated"):
        got = outcome[field]
        if len(got) != getattr(wanted, field):
            example = f" (e.g. {got[0]})" if got else ""
            failures.append(f"{len(got)} live messages {field} at the destination, expected {getattr(wanted, field)}{example}")
    return failures


def _contains(what: str, have: list[str], wanted: list[str]) -> list[str]:
    return [f"no {what} mention {w!r} (they are: {'; '.join(have) or 'none'})"
            for w in wanted if not any(w.lower() in h.lower() for h in have)]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))) or "nothing"
