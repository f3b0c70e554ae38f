"""EWS scenarios can fail: a damaged PIM destination gives a precise sentence.

Each test runs a library scenario with ``after_migration`` changing the destination between the
migration and the verification (an event moved by an hour, a contact deleted) and asserts the
failure sentence; the pure checks of ``expect.collab`` are tested on hand-made records.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from scenarios.expectations import RunRecord
from scenarios.expectations_collab import check_collab
from scenarios.model import load_scenario
from scenarios.model_collab import CollabExpectations
from scenarios.runner import run_scenario
from scenarios.verify_pim import PimVerifyReport, crosses_dst

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library" / "ews"


def _needs_peers():
    from scenarios.peers.dovecot import DovecotServer
    from scenarios.peers.radicale import availability

    for reason in (DovecotServer.availability(), availability()):
        if reason:
            pytest.skip(reason)


def _resources(dest, collection: str) -> dict[str, str]:
    pim = dest.pim
    return pim.radicale.items(pim.user, collection)


@pytest.mark.peer
def test_moved_event_instant_fails_the_dst_scenario():
    _needs_peers()

    def move_one_event(source, dest):
        name, text = sorted(_resources(dest, "calendar").items())[0]
        lines = text.splitlines()
        event = lines.index("BEGIN:VEVENT")  # not the VTIMEZONE's DTSTARTs above it
        i = next(n for n, line in enumerate(lines) if n > event and line.startswith("DTSTART"))
        head, value = lines[i].rsplit(":", 1)
        hour = int(value[9:11])
        lines[i] = f"{head}:{value[:9]}{(hour + 1) % 24:02d}{value[11:]}"  # one hour later
        response = dest.pim.radicale.put(dest.pim.user, "calendar", name, "\r\n".join(lines) + "\r\n")
        assert response.status_code in (201, 204), response.text

    result = run_scenario(load_scenario(LIBRARY / "recurring-events-across-dst.yaml"), after_migration=move_one_event)
    assert not result.passed
    [sentence] = result.failures
    assert sentence.startswith("the PIM destination differs from the source: event ")
    assert ": start: source " in sentence and "/ destination " in sentence


@pytest.mark.peer
def test_dropped_contact_fails_the_non_ascii_scenario():
    _needs_peers()

    def drop_one_contact(source, dest):
        name = sorted(_resources(dest, "contacts"))[0]
        session = dest.pim.radicale.session(dest.pim.user)
        url = dest.pim.radicale.collection_url(dest.pim.user, "contacts") + name
        assert session.delete(url, timeout=10).status_code in (200, 204)

    result = run_scenario(load_scenario(LIBRARY / "contacts-non-ascii-names.yaml"), after_migration=drop_one_contact)
    assert not result.passed
    assert "PIM destination 'contacts' holds 15 contact items, expected 16" in result.failures
    assert any(": presence: source 'present' / destination None" in f for f in result.failures)
    assert any("contacts in 'contacts': count: source 16 / destination 15" in f for f in result.failures)


def _run(report: dict | None = None, waits: list[float] | None = None) -> RunRecord:
    return RunRecord(run=1, exit_code=0, seconds=1.0, report=report or {}, waits=waits)


def test_unmigratable_counted_by_kind_and_never_silent():
    expect = CollabExpectations.model_validate(
        {"unmigratable": [{"kind": "contact", "count": 3, "folder": "Deleted Items", "reason": "only mail"}]}
    )
    report = {"unmigratable": [
        {"kind": "contact", "count": 2, "folder": "Deleted Items", "reason": "destination allows only mail"},
        {"kind": "task", "count": 1, "folder": "Deleted Items", "reason": "x"},
    ]}
    assert check_collab(expect, [_run(report)], None) == [
        "2 contact items reported unmigratable in 'Deleted Items', expected 3",
        "1 task items in 'Deleted Items' reported unmigratable (x), expected none",
    ]


def test_item_errors_must_name_their_item_id():
    expect = CollabExpectations.model_validate({"item_errors": [{"error": "ErrorMimeContentConversionFailed", "count": 1}]})
    report = {"errors": [{"folder": "Inbox", "uid": None, "item_id": None,
                          "error": "ErrorMimeContentConversionFailed", "message": "Content conversion failed."}]}
    assert check_collab(expect, [_run(report)], None) == [
        "an item error in 'Inbox' (ErrorMimeContentConversionFailed: Content conversion failed.) does not name its ItemId"
    ]


def test_throttle_waits_shorter_than_asked_fail():
    expect = CollabExpectations.model_validate({"throttle": {"waits": 2, "at_least": 0.4}})
    assert check_collab(expect, [_run(waits=[0.4, 0.1])], None) == [
        "the engine waited [0.1] s, shorter than the 0.4 s the server asked for"
    ]
    assert check_collab(expect, [_run(waits=[])], None) == ["the engine waited 0 times [], expected 2"]


def test_kind_counts_and_pim_cases():
    expect = CollabExpectations.model_validate(
        {"kinds": {"event": {"copied": 12}}, "pim": {"cases": {"recurring-across-dst": 2}}}
    )
    report = {"kinds": [{"kind": "event", "source": 12, "copied": 11}]}
    pim = PimVerifyReport(cases={"recurring-across-dst": 1})
    assert check_collab(expect, [_run(report)], pim) == [
        "the engine reported 11 event items copied, expected 12",
        "the source holds 1 items of case 'recurring-across-dst', the scenario needs at least 2",
    ]


def test_left_out_items_must_be_said_in_a_note():
    expect = CollabExpectations.model_validate({"notes": ["4 task item(s) left out"]})
    report = {"notes": [], "folders": [{"notes": ["3 note item(s) left out (--items contacts)"]}]}
    assert check_collab(expect, [_run(report)], None) == ["no engine note says '4 task item(s) left out'"]
    report["folders"].append({"notes": ["4 task item(s) left out (--items contacts)"]})
    assert check_collab(expect, [_run(report)], None) == []


WEEKLY = """BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Europe/Berlin:{start}\r
RRULE:FREQ=WEEKLY;COUNT=4\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"""


def test_crosses_dst_sees_the_offset_change():
    assert crosses_dst(WEEKLY.format(start="20241014T090000"))  # Berlin leaves summer time on 27 Oct
    assert not crosses_dst(WEEKLY.format(start="20240603T090000"))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("source: {server: dovecot, protocol: ews}", "source.server: an ews source is the simulator's EWS front"),
        ("source: {server: simulator}\npim_destination: {server: radicale}",
         "pim_destination: contacts, calendars, tasks and notes come from an ews source"),
        ("source: {server: simulator, protocol: ews}\nexpect: {collab: {pim: {ignor: [x]}}}",
         "expect.collab.pim.ignor: Extra inputs are not permitted"),
        ("source: {server: simulator, protocol: ews}\nexpect: {collab: {pim: {cases: {dst: 1}}}}",
         "expect.collab.pim.cases.dst.[key]"),
    ],
)
def test_ews_scenario_files_are_validated(tmp_path, text, where):
    from scenarios.model import ScenarioError

    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert where in str(info.value)


def test_every_ews_library_file_loads():
    names = sorted(p.stem for p in LIBRARY.glob("*.yaml"))
    assert len(names) >= 10
    for name in names:
        scenario = load_scenario(LIBRARY / f"{name}.yaml")
        assert scenario.area == "ews" and scenario.description


def _exchange_account():
    from simulators.fixtures import FixtureSpec, populate
    from simulators.profiles import load_profile
    from simulators.store import Store

    profile = load_profile("exchange")
    account = Store().add_account("alice", "pw")
    populate(account, FixtureSpec(seed=3, messages=4, folders=2, contacts=2, events=2, deleted_items_mixed=1), profile)
    return account, profile


def test_expected_records_follow_the_options():
    from migrator.engine import MigrationOptions
    from scenarios.verify_pim import expected_records

    account, profile = _exchange_account()
    by_kind = expected_records(account, profile, MigrationOptions())
    places = sorted((r.kind, r.folder) for r in by_kind)
    # Deleted Items' contact/event/task/note go to their kind's collection.
    assert places == [("contact", "contacts")] * 3 + [("event", "calendar")] * 3 + [("note", "notes"), ("task", "tasks")]
    assert all(r.uid.startswith("ews-") for r in by_kind if r.kind != "event")
    mail_only = expected_records(account, profile, MigrationOptions(deleted_items="mail-only"))
    assert sorted((r.kind, r.folder) for r in mail_only) == [("contact", "contacts")] * 2 + [("event", "calendar")] * 2
    only_contacts = expected_records(account, profile, MigrationOptions(items=["contacts"]))
    assert {r.kind for r in only_contacts} == {"contact"} and len(only_contacts) == 3


def test_reports_show_waits_and_pim_differences():
    from scenarios.reports import _collab_text
    from scenarios.runner import ScenarioResult

    result = ScenarioResult(name="x", area="ews", file="x.yaml", passed=False, runs=[_run(waits=[0.4, 1.5])],
                            pim={"dest_counts": {"contacts": {"contact": 3}}, "identical": False,
                                 "differences": ["contact ews-1: presence: source 'present' / destination None"]})
    assert _collab_text(result).splitlines()[1:] == [
        "run 1 throttled: waited 0.4 s, 1.5 s",
        "PIM destination holds contacts: 3 contact",
        "  contact ews-1: presence: source 'present' / destination None",
        "PIM NOT IDENTICAL: 1 differences",
    ]


def test_an_ews_source_shows_one_verb_per_message():
    from datetime import datetime, timezone

    from scenarios.sides_ews import one_verb
    from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, record_of

    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    both = record_of(1, b"Subject: a\r\n\r\nx", ["\\Answered", "$Forwarded", "\\Seen"], when)
    answered = record_of(2, b"Subject: b\r\n\r\ny", ["\\Answered"], when)
    snap = MailboxSnapshot(label="s", folders={"INBOX": FolderSnapshot(path=("INBOX",), name="INBOX",
                                                                        messages=[both, answered])})
    flags = [m.flags for m in one_verb(snap).folders["INBOX"].messages]
    assert flags == [frozenset({"$Forwarded", "\\Seen"}), frozenset({"\\Answered"})]
