"""Where each source contact/event/task/note should land, and whether it did (parsed objects).

``expected_records`` turns a simulator source account into the records the destination should
hold: the UID the migration gives each item (events keep theirs; EWS gives contacts, tasks and
notes none, so theirs derive from the ItemId: ``migrator.collab.convert.stable_uid``), the
destination collection (``collection_name`` of its folder; items of a mail folder such as Deleted
Items go to their kind's own folder), and only the kinds the options select. ``check`` compares
those with what the destination holds through ``scenarios.pim_compare`` and counts the source
cases (a weekly series across a DST change, a non-ASCII contact name) the scenario requires.
Pure: accounts and records in, records and reports out; reading the destination is the caller's.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timezone
from itertools import islice
from typing import Any

import icalendar
from dateutil.rrule import rrulestr
from pydantic import BaseModel

from migrator.collab.convert import stable_uid
from migrator.collab.kinds import ITEM_KINDS
from migrator.sinks.dav import collection_name
from scenarios import pim_compare
from scenarios.model_collab import PimCheck
from scenarios.pim_compare import PimRecord, When
from simulators.ews import ids
from simulators.fixtures.pim import KINDS as FIXTURE_KINDS, pim_folder

PIM_KINDS = ("contact", "event", "task", "note")
# Folder class of a kind's own folder; items elsewhere (a mail folder) move to that folder.
KIND_CLASS = {"contact": "IPF.Contact", "event": "IPF.Appointment", "task": "IPF.Task", "note": "IPF.StickyNote"}
OCCURRENCES = 120  # of a series, enough to see a year's offset changes


class PimVerifyReport(BaseModel):
    """What the PIM comparison found; ``differences`` are pim_compare's sentences."""

    source_counts: dict[str, dict[str, int]] = {}  # destination folder → kind → items expected there
    dest_counts: dict[str, dict[str, int]] = {}  # destination folder → kind → items found
    differences: list[str] = []
    cases: dict[str, int] = {}  # source case → items of it (see CASES)
    identical: bool = True


# Where items should land -------------------------------------------------------------------------


def home_folders(profile) -> dict[str, tuple[str, ...]]:
    """kind → the folder of that kind's items (Exchange: Contacts, Calendar, Tasks, Notes)."""
    out = {}
    for kind, key, default in FIXTURE_KINDS.values():
        out[kind.value] = pim_folder(profile, key, default)
    return out


def expected_records(
    account, profile, options: Any, *, dav: bool = True
) -> list[PimRecord]:
    """The source account's PIM items as the destination should hold them.

    ``dav``: folders become collection names (CardDAV/CalDAV); otherwise folder paths (an
    EWS-like destination). Kinds the options do not select, and non-mail items of mail folders
    with ``deleted_items: mail-only``, are left out (the engine reports them instead).
    """
    wanted = {ITEM_KINDS[i] for i in (getattr(options, "items", None) or ITEM_KINDS)}
    mail_only = getattr(options, "deleted_items", "by-kind") == "mail-only"
    homes = home_folders(profile)
    out = []
    for path, folder in account.folders.items():
        for item in folder.items:
            kind = item.kind.value
            in_own_folder = folder.folder_class.startswith(KIND_CLASS[kind])
            if kind not in wanted or (mail_only and not in_own_folder):
                continue
            target = path if in_own_folder else homes[kind]
            name = "/".join(path)
            rec = pim_compare.parse_record(kind, item.payload, name, where=f"{name}/{item.item_id}")
            uid = rec.uid if kind == "event" else stable_uid(ids.item_id(account.username, path, f"p:{item.item_id}"))
            dest = collection_name(target, kind) if dav else "/".join(target)
            out.append(dataclasses.replace(rec, uid=uid, folder=dest))
    return out if dav else by_content(out)


def by_content(records: Iterable[PimRecord]) -> list[PimRecord]:
    """Contacts, tasks and notes keyed by what they say, not their UID: an EWS-like destination
    gives the items it creates UIDs of its own (EWS has no UID field for them): a contact by its
    name and e-mails, a task or note by its summary. Events keep theirs (EWS carries UID)."""
    out = []
    for rec in records:
        if rec.kind != "event":
            f = rec.fields
            # Not the dates: a destination may keep them in another form (see PimCheck.as_dates).
            key = (f.get("formatted_name"), sorted(f.get("emails") or ())) if rec.kind == "contact" else f.get("summary")
            rec = dataclasses.replace(rec, uid=f"content:{key!r}")
        out.append(rec)
    return out


def as_dates(records: Iterable[PimRecord], names: Iterable[str]) -> list[PimRecord]:
    """Fields named "kind.field" (or "field") reduced to the date of their UTC instant."""
    names = set(names)
    out = []
    for rec in records:
        fields = dict(rec.fields)
        for name, value in rec.fields.items():
            if (name in names or f"{rec.kind}.{name}" in names) and isinstance(value, When):
                fields[name] = When(_utc_date(value.value), None)
        out.append(dataclasses.replace(rec, fields=fields))
    return out


def _utc_date(value: datetime | date) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(timezone.utc) if value.tzinfo else value).date()
    return value


# Source cases --------------------------------------------------------------------------------


def crosses_dst(payload: str) -> bool:
    """A recurring event whose occurrences (local wall time kept) change their UTC offset."""
    for event in icalendar.Calendar.from_ical(payload).walk("VEVENT"):
        start = event.get("dtstart")
        if "rrule" not in event or "recurrence-id" in event or start is None:
            continue
        dt = start.dt
        if not isinstance(dt, datetime) or dt.tzinfo is None:
            return False
        rule = rrulestr(event["rrule"].to_ical().decode(), dtstart=dt)
        return len({o.utcoffset() for o in islice(rule, OCCURRENCES)}) > 1
    return False


def _is_case(case: str, kind: str, rec: PimRecord, payload: str) -> bool:
    if case == "non-ascii-contact-name":
        return kind == "contact" and not (rec.fields.get("formatted_name") or "").isascii()
    if kind != "event":
        return False
    if case == "recurring-across-dst":
        return crosses_dst(payload)
    if case == "recurrence-exceptions":
        return bool(rec.fields.get("overrides") or rec.fields.get("exdates"))
    start = rec.fields.get("start")
    return case == "all-day" and start is not None and not isinstance(start.value, datetime)


CASES = ("recurring-across-dst", "non-ascii-contact-name", "recurrence-exceptions", "all-day")


def count_cases(account) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for path, folder in account.folders.items():
        for item in folder.items:
            kind = item.kind.value
            rec = pim_compare.parse_record(kind, item.payload, "/".join(path))
            for case in CASES:
                if _is_case(case, kind, rec, item.payload):
                    counts[case] += 1
    return {c: counts[c] for c in CASES}


# The check -----------------------------------------------------------------------------------


def check(expected: list[PimRecord], dest: list[PimRecord], spec: PimCheck, cases: dict[str, int]) -> PimVerifyReport:
    src, dst = as_dates(expected, spec.as_dates), as_dates(dest, spec.as_dates)
    result = pim_compare.compare(src, dst, ignore=spec.ignore)
    return PimVerifyReport(
        source_counts=_nested(result.source_counts),
        dest_counts=_nested(result.dest_counts),
        differences=[str(d) for d in result.differences],
        cases=cases,
        identical=result.ok,
    )


def _nested(counts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (kind, folder), n in sorted(counts.items()):
        out.setdefault(folder, {})[kind] = n
    return out
