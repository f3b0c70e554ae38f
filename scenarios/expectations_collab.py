"""Checking ``expect.collab`` (see ``model_collab``): pure, one sentence per broken expectation.

Inputs: the expectations, the record of each run (the engine's report as JSON, the waits it
slept) and the PIM comparison; output: sentences such as "contact ews-1f…: start: source … /
destination …" or "2 contact items reported unmigratable in 'Deleted Items', expected 3".
"""

from __future__ import annotations

from collections import Counter

from scenarios.expectations import RunRecord
from scenarios.model_collab import CollabExpectations, ItemErrorExpectation, UnmigratableExpectation
from scenarios.verify_pim import PimVerifyReport

SHOWN_DIFFERENCES = 5


def check_collab(expect: CollabExpectations, runs: list[RunRecord], pim: PimVerifyReport | None) -> list[str]:
    last = runs[-1] if runs else None
    report = (last.report if last else None) or {}
    failures: list[str] = []
    failures += _check_kinds(expect, report)
    if expect.unmigratable is not None:
        failures += _check_unmigratable(expect.unmigratable, report.get("unmigratable", []))
    if expect.item_errors is not None:
        failures += _check_errors(expect.item_errors, report.get("errors", []))
    if expect.skipped_folders is not None:
        got = sorted(s["folder"] for s in report.get("skipped_folders", []))
        if got != sorted(expect.skipped_folders):
            failures.append(f"the engine reported skipped folders {got}, expected {sorted(expect.skipped_folders)}")
    notes = report.get("notes", []) + [n for f in report.get("folders", []) for n in f.get("notes", [])]
    for phrase in expect.notes:
        if not any(phrase in n for n in notes):
            failures.append(f"no engine note says {phrase!r}")
    if expect.throttle is not None:
        failures += _check_throttle(expect, runs)
    if expect.pim is not None:
        failures += _check_pim(expect, pim)
    return failures


def _check_kinds(expect: CollabExpectations, report: dict) -> list[str]:
    totals = {k["kind"]: k for k in report.get("kinds", [])}
    failures = []
    for kind, wanted in expect.kinds.items():
        got = totals.get(kind, {})
        for name, value in wanted.model_dump(exclude_none=True).items():
            if got.get(name, 0) != value:
                failures.append(f"the engine reported {got.get(name, 0)} {kind} items {name.replace('_', ' ')}, "
                                f"expected {value}")
    return failures


def _check_unmigratable(wanted: list[UnmigratableExpectation], got: list[dict]) -> list[str]:
    failures = []
    claimed: set[int] = set()
    for w in wanted:
        rows = [i for i, u in enumerate(got) if u["kind"] == w.kind and (w.folder is None or u["folder"] == w.folder)]
        claimed.update(rows)
        count = sum(got[i]["count"] for i in rows)
        where = f" in {w.folder!r}" if w.folder else ""
        if count != w.count:
            failures.append(f"{count} {w.kind} items reported unmigratable{where}, expected {w.count}")
        for i in rows:
            if w.reason and w.reason not in got[i]["reason"]:
                failures.append(f"{w.kind} items{where} reported unmigratable because {got[i]['reason']!r}, "
                                f"expected a reason saying {w.reason!r}")
    for i, u in enumerate(got):
        if i not in claimed:
            failures.append(f"{u['count']} {u['kind']} items in {u['folder']!r} reported unmigratable "
                            f"({u['reason']}), expected none")
    return failures


def _check_errors(wanted: list[ItemErrorExpectation], got: list[dict]) -> list[str]:
    failures = []
    for e in got:
        if not e.get("item_id"):
            failures.append(f"an item error in {e['folder']!r} ({e['error']}: {e['message']}) does not name its ItemId")
    for w in wanted:
        count = sum(1 for e in got if e["error"] == w.error and (w.folder is None or e["folder"] == w.folder))
        if count != w.count:
            where = f" in {w.folder!r}" if w.folder else ""
            failures.append(f"{count} items failed with {w.error}{where}, expected {w.count}")
    others = Counter(e["error"] for e in got if e["error"] not in {w.error for w in wanted})
    for error, count in sorted(others.items()):
        failures.append(f"{count} items failed with {error}, expected none")
    return failures


def _check_throttle(expect: CollabExpectations, runs: list[RunRecord]) -> list[str]:
    wanted = expect.throttle
    waits = [w for r in runs for w in (r.waits or [])]
    failures = []
    if wanted.waits is None and not waits:
        failures.append("the engine never waited: the throttling was not observed")
    elif wanted.waits is not None and len(waits) != wanted.waits:
        failures.append(f"the engine waited {len(waits)} times {waits}, expected {wanted.waits}")
    short = [w for w in waits if w < wanted.at_least]
    if short:
        failures.append(f"the engine waited {short} s, shorter than the {wanted.at_least} s the server asked for")
    return failures


def _check_pim(expect: CollabExpectations, pim: PimVerifyReport | None) -> list[str]:
    spec = expect.pim
    if pim is None:
        return ["no PIM destination to verify (pim_destination: and an EWS source are needed)"]
    failures = []
    for case, least in spec.cases.items():
        if pim.cases.get(case, 0) < least:
            failures.append(f"the source holds {pim.cases.get(case, 0)} items of case {case!r}, "
                            f"the scenario needs at least {least}")
    if spec.folders is not None:
        for folder, kinds in spec.folders.items():
            for kind, count in kinds.items():
                got = pim.dest_counts.get(folder, {}).get(kind, 0)
                if got != count:
                    failures.append(f"PIM destination {folder!r} holds {got} {kind} items, expected {count}")
    if spec.identical and not pim.identical:
        shown = "; ".join(pim.differences[:SHOWN_DIFFERENCES])
        more = f" (+{len(pim.differences) - SHOWN_DIFFERENCES} more)" if len(pim.differences) > SHOWN_DIFFERENCES else ""
        failures.append(f"the PIM destination differs from the source: {shown}{more}")
    if not spec.identical and pim.identical:
        failures.append("the PIM destination is identical to the source, expected a difference")
    return failures
