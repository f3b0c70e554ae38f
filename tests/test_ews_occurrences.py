"""Single occurrences of a series in the EWS simulator, through exchangelib: OccurrenceItemId
(master id + 1-based InstanceIndex, counted in the series' own zone across a DST change),
DeleteItem → EXDATE, UpdateItem → RECURRENCE-ID override, and the errors Exchange gives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import icalendar
import pytest
from exchangelib.errors import ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange, \
    ErrorCalendarOccurrenceIsDeletedFromRecurrence
from exchangelib.items import CalendarItem
from lxml import etree

from simulators.ews import pim, recurrence
from simulators.ews.soap import NSMAP
from simulators.store import ItemKind, PimItem
from tests.test_ews_exchangelib import ews_account, make_store

# Six Mondays at 09:00 Berlin; summer time ends on 27 October, so the first two are 07:00Z and
# the last four 08:00Z.
SERIES = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//quirkmail tests//EN
BEGIN:VEVENT
UID:series-dst
DTSTAMP:20240101T000000Z
DTSTART;TZID=Europe/Berlin:20241014T090000
DTEND;TZID=Europe/Berlin:20241014T100000
RRULE:FREQ=WEEKLY;COUNT=6
SUMMARY:Jour fixe
LOCATION:Room 2
ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@engines.test
END:VEVENT
END:VCALENDAR
"""
UTC = timezone.utc


@pytest.fixture
def series():
    store = make_store(0)
    store.account("alice").add_item(("Calendar",), PimItem(ItemKind.EVENT, "series-dst", SERIES))
    with ews_account(store) as account:
        master = next(i for i in account.calendar.all() if i.uid == "series-dst")
        yield store, account, master


def stored(store) -> list[icalendar.Event]:
    item = next(i for i in store.account("alice").folder(("Calendar",)).items if i.item_id == "series-dst")
    return list(icalendar.Calendar.from_ical(item.payload).walk("VEVENT"))


def test_get_occurrence_by_index_counts_in_the_series_zone(series):
    _, account, master = series
    second, fourth = master.occurrence(2), master.occurrence(4)
    second.refresh()
    fourth.refresh()
    assert second.start == datetime(2024, 10, 21, 7, tzinfo=UTC)
    assert fourth.start == datetime(2024, 11, 4, 8, tzinfo=UTC)  # 09:00 local after the change
    assert fourth.end - fourth.start == timedelta(hours=1)


def test_delete_occurrence_adds_an_exdate(series):
    store, account, master = series
    master.occurrence(2).delete()
    (event,) = stored(store)
    assert [d.dt for d in event["EXDATE"].dts] == [datetime(2024, 10, 21, 7, tzinfo=UTC).astimezone(
        event.decoded("DTSTART").tzinfo)]
    master.refresh()
    assert [o.start for o in master.deleted_occurrences] == [datetime(2024, 10, 21, 7, tzinfo=UTC)]
    # Still numbered 2: the index names the pattern's occurrence, not what is left.
    with pytest.raises(ErrorCalendarOccurrenceIsDeletedFromRecurrence):
        master.occurrence(2).refresh()
    third = master.occurrence(3)
    third.refresh()
    assert third.start == datetime(2024, 10, 28, 8, tzinfo=UTC)


def test_update_occurrence_creates_an_override(series):
    store, account, master = series
    occ = master.occurrence(4)
    occ.refresh()
    occ.start, occ.end = occ.start + timedelta(hours=2), occ.end + timedelta(hours=2)
    occ.subject, occ.location = "Jour fixe (moved)", None
    occ.save(update_fields=["start", "end", "subject", "location"])
    master_ev, override = stored(store)
    assert "RECURRENCE-ID" not in master_ev and master_ev["LOCATION"] == "Room 2"
    assert override.decoded("RECURRENCE-ID") == datetime(2024, 11, 4, 8, tzinfo=UTC)
    assert override.decoded("DTSTART") == datetime(2024, 11, 4, 10, tzinfo=UTC)
    assert override.decoded("DTEND") == datetime(2024, 11, 4, 11, tzinfo=UTC)
    assert str(override["SUMMARY"]) == "Jour fixe (moved)" and "LOCATION" not in override
    assert "ATTENDEE" in override and "RRULE" not in override  # the rest as the master has it
    master.refresh()
    (mod,) = master.modified_occurrences
    assert (mod.original_start, mod.start) == (datetime(2024, 11, 4, 8, tzinfo=UTC),
                                               datetime(2024, 11, 4, 10, tzinfo=UTC))
    # A second update changes the same override, not a new one.
    again = master.occurrence(4)
    again.refresh()
    again.subject = "Jour fixe (moved twice)"
    again.reminder_is_set, again.reminder_minutes_before_start = True, 30
    again.save(update_fields=["subject", "reminder_is_set", "reminder_minutes_before_start"])
    events = stored(store)
    assert [str(e["SUMMARY"]) for e in events] == ["Jour fixe", "Jour fixe (moved twice)"]
    assert [a.decoded("TRIGGER") for a in events[1].walk("VALARM")] == [timedelta(minutes=-30)]
    assert not list(events[0].walk("VALARM"))


def test_index_beyond_the_series_is_refused(series):
    _, _, master = series
    with pytest.raises(ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange):
        master.occurrence(7).refresh()


def test_a_single_event_has_no_occurrences(series):
    _, account, _ = series
    single = next(i for i in account.calendar.all() if i.uid == "event-allday")
    assert isinstance(single, CalendarItem) and single.recurrence is None
    with pytest.raises(ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange, match="event-allday"):
        single.occurrence(1).delete()


def _element(xml: str) -> etree._Element:
    return etree.fromstring(f'<t:X xmlns:t="{NSMAP["t"]}">{xml}</t:X>')[0]


def test_create_item_keeps_organizer_note_start_and_weekly_rule_plain():
    cal_el = _element(
        "<t:CalendarItem><t:Subject>S</t:Subject><t:UID>u1</t:UID><t:Start>2024-10-14T07:00:00Z</t:Start>"
        "<t:End>2024-10-14T08:00:00Z</t:End>"
        "<t:Organizer><t:Mailbox><t:Name>Ada</t:Name><t:EmailAddress>ada@engines.test</t:EmailAddress>"
        "</t:Mailbox></t:Organizer>"
        "<t:Recurrence><t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday</t:DaysOfWeek>"
        "</t:WeeklyRecurrence><t:EndDateRecurrence><t:StartDate>2024-10-14</t:StartDate>"
        "<t:EndDate>2024-11-18</t:EndDate></t:EndDateRecurrence></t:Recurrence>"
        '<t:StartTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>')
    (ev,) = icalendar.Calendar.from_ical(pim.parse_event(cal_el).payload).walk("VEVENT")
    assert str(ev["ORGANIZER"]) == "mailto:ada@engines.test" and ev["ORGANIZER"].params["CN"] == "Ada"
    # BYDAY only restated DTSTART's Monday; UNTIL is the last start's instant (09:00 CET = 08:00Z).
    assert ev["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20241118T080000Z"
    note_el = _element("<t:Message><t:Subject>N</t:Subject>"
                       "<t:DateTimeCreated>2024-03-23T10:00:00Z</t:DateTimeCreated></t:Message>")
    (journal,) = icalendar.Calendar.from_ical(pim.parse_note(note_el).payload).walk("VJOURNAL")
    assert journal.decoded("DTSTART").isoformat() == "2024-03-23"


def test_plain_rule_keeps_what_differs_from_dtstart():
    start = datetime(2024, 10, 14, 9, tzinfo=UTC)  # a Monday
    assert recurrence.plain_rule({"FREQ": "WEEKLY", "BYDAY": ["MO", "WE"]}, start)["BYDAY"] == ["MO", "WE"]
    assert "BYDAY" not in recurrence.plain_rule({"FREQ": "WEEKLY", "BYDAY": ["MO"]}, start)
    assert recurrence.plain_rule({"FREQ": "YEARLY", "BYMONTH": 3, "BYMONTHDAY": 14}, start) == \
        {"FREQ": "YEARLY", "BYMONTH": 3, "BYMONTHDAY": 14}
