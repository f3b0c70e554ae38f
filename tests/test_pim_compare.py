"""scenarios.pim_compare: parsed-object comparison of PIM items, and the pure DAV helpers."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import icalendar
import pytest
import vobject

from scenarios.pim_compare import (
    PimParseError,
    When,
    compare,
    dav_home,
    normalise_rrule,
    parse_multistatus,
    parse_record,
    read_store,
)
from simulators.fixtures import FixtureSpec, generate_pim, populate
from simulators.profiles import load_profile
from simulators.store import Store

EXCHANGE = load_profile("exchange")
SPEC = FixtureSpec(seed=5, contacts=4, events=6, tasks=3, notes=2)
GENERATED = generate_pim(SPEC, EXCHANGE)


def records(items=GENERATED):
    return [parse_record(g.item.kind.value, g.item.payload, "/".join(g.folder)) for g in items]


def shaped(shape: str):
    return next(g for g in GENERATED if g.item.extra["fixture"].get("shape") == shape)


def with_payload(generated, payload: str):
    """The records of GENERATED with one item's payload replaced."""
    return [
        parse_record(g.item.kind.value, payload if g is generated else g.item.payload, "/".join(g.folder))
        for g in GENERATED
    ]


def edit_master(generated, change) -> str:
    cal = icalendar.Calendar.from_ical(generated.item.payload)
    master = next(v for v in cal.walk("VEVENT") if "recurrence-id" not in v)
    change(master)
    return cal.to_ical().decode()


def only(report):
    assert len(report.differences) == 1, report.summary()
    return report.differences[0]


def test_identical_sets_compare_equal():
    report = compare(records(), records())
    assert report.ok, report.summary()
    assert report.source_counts[("event", "Calendar")] == 6 and report.dest_counts[("contact", "Contacts")] == 4


def test_reserialised_items_compare_equal():
    """Property order, folding and parameter spelling do not matter; only what they say."""
    again = []
    for g in GENERATED:
        if g.item.kind.value == "contact":
            text = vobject.readOne(g.item.payload).serialize()
        else:
            cal = icalendar.Calendar.from_ical(g.item.payload)
            for comp in cal.subcomponents:
                comp.subcomponents.reverse()
            text = cal.to_ical().decode()
        again.append(parse_record(g.item.kind.value, text, "/".join(g.folder)))
    assert compare(records(), again).ok


def test_changed_instant_is_reported_with_uid_and_field():
    event = shaped("single")

    def later(master):
        start = master["dtstart"].dt
        del master["dtstart"]
        master.add("dtstart", start + timedelta(hours=1))

    diff = only(compare(records(), with_payload(event, edit_master(event, later))))
    assert (diff.kind, diff.uid, diff.field) == ("event", event.item.item_id, "start")
    assert diff.dest.value - diff.source.value == timedelta(hours=1)
    assert event.item.item_id in str(diff) and "start" in str(diff)


def test_same_instant_in_another_zone_is_a_difference_of_zone():
    event = shaped("single")

    def to_utc(master):
        start = master["dtstart"].dt
        del master["dtstart"]
        master.add("dtstart", start.astimezone(timezone.utc))

    diff = only(compare(records(), with_payload(event, edit_master(event, to_utc))))
    assert diff.field == "start"
    assert diff.source.value == diff.dest.value and diff.dest.tzid == "UTC" != diff.source.tzid


def test_dropped_exdate_is_reported():
    event = shaped("weekly-dst")
    diff = only(compare(records(), with_payload(event, edit_master(event, lambda m: m.pop("exdate")))))
    assert (diff.uid, diff.field) == (event.item.item_id, "exdates")
    assert len(diff.source) == 1 and diff.dest == frozenset()


def test_changed_override_is_reported_by_recurrence_id():
    event = shaped("weekly-dst")
    cal = icalendar.Calendar.from_ical(event.item.payload)
    override = next(v for v in cal.walk("VEVENT") if "recurrence-id" in v)
    override["summary"] = icalendar.vText("something else")
    diff = only(compare(records(), with_payload(event, cal.to_ical().decode())))
    assert diff.field.startswith("overrides[") and diff.field.endswith("].summary")


def test_changed_email_is_reported():
    contact = next(g for g in GENERATED if g.item.kind.value == "contact")
    card = vobject.readOne(contact.item.payload)
    card.contents["email"][0].value = "someone.else@example.org"
    report = compare(records(), with_payload(contact, card.serialize()))
    assert {(d.kind, d.uid, d.field) for d in report.differences} == {
        ("contact", contact.item.item_id, "emails"), ("contact", contact.item.item_id, "email_types")
    }
    diff = next(d for d in report.differences if d.field == "emails")
    assert diff.dest - diff.source == {"someone.else@example.org"}
    # Only the TYPE changed: the addresses still agree.
    card = vobject.readOne(contact.item.payload)
    card.contents["email"][0].type_paramlist = ["INTERNET", "X-ODD"]
    diff = only(compare(records(), with_payload(contact, card.serialize())))
    assert diff.field == "email_types"


def test_ignored_fields_are_left_out():
    contact = next(g for g in GENERATED if g.item.kind.value == "contact")
    card = vobject.readOne(contact.item.payload)
    card.contents["email"][0].value = "someone.else@example.org"
    changed = with_payload(contact, card.serialize())
    assert compare(records(), changed, ignore={"contact.emails", "contact.email_types"}).ok
    assert compare(records(), changed, ignore={"emails", "email_types"}).ok
    assert not compare(records(), changed, ignore={"email_types"}).ok
    assert not compare(records(), changed, ignore={"event.emails", "phones"}).ok


def test_changed_task_status_and_rrule_normalisation():
    task = next(g for g in GENERATED if g.item.kind.value == "task")
    cal = icalendar.Calendar.from_ical(task.item.payload)
    cal.walk("VTODO")[0]["status"] = icalendar.vText("CANCELLED")
    diff = only(compare(records(), with_payload(task, cal.to_ical().decode())))
    assert diff.field == "status" and diff.dest == "CANCELLED"
    a = icalendar.vRecur.from_ical("FREQ=WEEKLY;COUNT=6;BYDAY=MO")
    b = icalendar.vRecur.from_ical("BYDAY=MO;COUNT=6;FREQ=WEEKLY")
    assert normalise_rrule(a) == normalise_rrule(b) == "BYDAY=MO;COUNT=6;FREQ=WEEKLY"
    berlin = icalendar.vRecur.from_ical("FREQ=DAILY;UNTIL=20241111T080000Z")
    assert normalise_rrule(berlin) == "FREQ=DAILY;UNTIL=20241111T080000Z"


def test_missing_items_and_counts_per_folder():
    dest = records(GENERATED[1:])
    report = compare(records(), dest)
    fields = sorted((d.field, d.folder) for d in report.differences)
    assert fields == [("count", "Contacts"), ("presence", "Contacts")]
    presence = next(d for d in report.differences if d.field == "presence")
    assert presence.uid == GENERATED[0].item.item_id and presence.dest is None


def test_folder_map_and_duplicate_uids():
    renamed = [
        parse_record(g.item.kind.value, g.item.payload, "/".join(g.folder).lower()) for g in GENERATED
    ]
    folder_map = {"Contacts": "contacts", "Calendar": "calendar", "Tasks": "tasks", "Notes": "notes"}
    assert compare(records(), renamed, folder_map=folder_map).ok
    assert not compare(records(), renamed).ok
    twice = renamed + renamed[:1]
    fields = {d.field for d in compare(records(), twice, folder_map=folder_map).differences}
    assert fields == {"count", "duplicate-uid"}


def test_when_values():
    berlin = parse_record("event", shaped("weekly-dst").item.payload, "Calendar").fields["start"]
    assert berlin.value.tzinfo == timezone.utc and berlin.tzid in ("Europe/Berlin", "America/New_York", "Europe/Paris")
    all_day = parse_record("event", shaped("all-day").item.payload, "Calendar").fields["start"]
    assert isinstance(all_day.value, date) and all_day.tzid is None
    seven = When(datetime(2024, 10, 7, 7, tzinfo=timezone.utc), "Europe/Berlin")
    assert str(seven) == "2024-10-07T07:00:00+00:00 [Europe/Berlin]"


def test_duration_and_dtend_spell_the_same_end():
    event = shaped("single")

    def as_duration(master):
        length = master.decoded("dtend") - master.decoded("dtstart")
        del master["dtend"]
        master.add("duration", length)

    assert compare(records(), with_payload(event, edit_master(event, as_duration))).ok


def test_bad_payload_names_the_item():
    with pytest.raises(PimParseError, match="Calendar/xyz"):
        parse_record("event", "BEGIN:VCALENDAR\nnonsense", "Calendar", where="Calendar/xyz")
    with pytest.raises(PimParseError, match="no VEVENT"):
        parse_record("event", "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "Calendar")


def test_read_store_reads_every_pim_item():
    account = Store().add_account("alice", "pw")
    populate(account, SPEC.model_copy(update={"deleted_items_mixed": 1, "messages": 4}), EXCHANGE)
    got = read_store(account)
    assert len(got) == 4 + 6 + 3 + 2 + 4
    assert {r.folder for r in got if r.kind == "note"} == {"Notes", "Deleted Items"}


MULTISTATUS = b"""<?xml version="1.0"?>
<multistatus xmlns="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
 <response><href>/alice/</href><propstat><prop><resourcetype><collection/></resourcetype></prop>
  <status>HTTP/1.1 200 OK</status></propstat></response>
 <response><href>/alice/Kontakte%20%C3%84/</href>
  <propstat><prop><resourcetype><collection/><CR:addressbook/></resourcetype><displayname>K</displayname></prop>
   <status>HTTP/1.1 200 OK</status></propstat>
  <propstat><prop><getcontenttype/></prop><status>HTTP/1.1 404 Not Found</status></propstat></response>
</multistatus>"""


def test_parse_multistatus_keeps_only_found_properties():
    (home, _), (book, prop) = parse_multistatus(MULTISTATUS)
    assert (home, book) == ("/alice/", "/alice/Kontakte Ä/")
    assert [child.tag for child in prop] == ["{DAV:}resourcetype", "{DAV:}displayname"]


def test_dav_home():
    assert dav_home("dav+http://alice@127.0.0.1:5232/") == ("http://127.0.0.1:5232/alice/", "alice")
    assert dav_home("dav://bob%40x.org@dav.example.org/dav/bob") == ("https://dav.example.org/dav/bob/", "bob@x.org")
    with pytest.raises(ValueError, match="not a dav://"):
        dav_home("imap://alice@host")


def test_birthday_forms():
    def birthday(value: str):
        card = f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b1\r\nFN:X\r\nN:X;;;;\r\nBDAY:{value}\r\nEND:VCARD\r\n"
        return parse_record("contact", card, "Contacts").fields["birthday"]

    assert birthday("1980-05-17") == birthday("19800517") == date(1980, 5, 17)
    assert birthday("--0517") == "--0517"
