"""Pure parts of the EWS flow: exchangelib items → vCard/iCalendar, throttling decisions, DAV names.

Items are exchangelib objects built here, as GetItem would give them (UTC instants + the zone).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import icalendar
import pytest
import vobject
from exchangelib import CalendarItem, Contact, EWSDate, EWSDateTime, EWSTimeZone, Message, Task
from exchangelib import errors as ews_errors
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.properties import Attendee, Mailbox
from exchangelib.recurrence import (
    AbsoluteYearlyPattern,
    DeletedOccurrence,
    EndDatePattern,
    NumberedPattern,
    Occurrence,
    Recurrence,
    RelativeMonthlyPattern,
    WeeklyPattern,
)

from migrator.cli import collab_preamble, parse_items
from migrator.collab import convert
from migrator.collab.kinds import MAIL_ONLY, not_offered
from migrator.collab.throttle import retry_delay
from migrator.engine import MigrationOptions
from migrator.errors import UsageError
from migrator.sinks.dav import collection_name, mkcol_body, parse_collections, resource_name
from migrator.urls import Endpoint, Secret, ServerURL

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = EWSTimeZone("UTC")


def utc(*args) -> EWSDateTime:
    """A Berlin wall-clock time as the UTC instant EWS sends."""
    return EWSDateTime.from_datetime(dt.datetime(*args, tzinfo=BERLIN)).astimezone(UTC)


def components(text: str, name: str) -> list[icalendar.Component]:
    return [c for c in icalendar.Calendar.from_ical(text).walk(name)]


def standup() -> CalendarItem:
    """Weekly Monday 09:00 Berlin from 16 March 2026, 4 times — across the 29 March DST change;
    the 23rd deleted, the 30th moved to 11:00 with its own subject."""
    start = utc(2026, 3, 16, 9, 0)
    item = CalendarItem(
        id="E1", uid="standup@example.net", subject="Standup", start=start, end=start + dt.timedelta(minutes=30),
        recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[1]),
                              boundary=NumberedPattern(start=start.date(), number=4)),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="bo@example.net", name="Bö"), response_type="Accept")],
        deleted_occurrences=[DeletedOccurrence(start=utc(2026, 3, 23, 9, 0))],
        modified_occurrences=[Occurrence(id="O1", original_start=utc(2026, 3, 30, 9, 0), start=utc(2026, 3, 30, 11, 0),
                                         end=utc(2026, 3, 30, 11, 30))],
        reminder_is_set=True, reminder_minutes_before_start=15,
    )
    item._start_timezone = EWSTimeZone("Europe/Berlin")
    return item


def test_recurring_event_across_dst_with_exceptions():
    moved = CalendarItem(id="O1", subject="Standup (moved)", start=utc(2026, 3, 30, 11, 0), end=utc(2026, 3, 30, 11, 30))
    text = convert.event_to_ical(standup(), occurrences={"O1": moved})
    assert [c["TZID"] for c in components(text, "VTIMEZONE")] == ["Europe/Berlin"]
    master, override = components(text, "VEVENT")
    assert master.decoded("DTSTART") == dt.datetime(2026, 3, 16, 9, 0, tzinfo=BERLIN)
    assert master["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=4"  # BYDAY=MO restates DTSTART
    exdate = master["EXDATE"].dts[0].dt
    assert exdate == dt.datetime(2026, 3, 23, 9, 0, tzinfo=BERLIN)  # 08:00Z: still CET
    assert override.decoded("RECURRENCE-ID") == dt.datetime(2026, 3, 30, 9, 0, tzinfo=BERLIN)  # 07:00Z: CEST
    assert override.decoded("RECURRENCE-ID").astimezone(dt.timezone.utc).hour == 7
    assert override.decoded("DTSTART") == dt.datetime(2026, 3, 30, 11, 0, tzinfo=BERLIN)
    assert str(override["SUMMARY"]) == "Standup (moved)"
    att = master["ATTENDEE"]
    assert (str(att), att.params["PARTSTAT"], att.params["CN"]) == ("mailto:bo@example.net", "ACCEPTED", "Bö")
    assert master.walk("VALARM")[0].decoded("TRIGGER") == dt.timedelta(minutes=-15)


def test_override_without_its_item_moves_the_master_copy():
    master, override = components(convert.event_to_ical(standup()), "VEVENT")
    assert str(override["SUMMARY"]) == "Standup"
    assert override.decoded("DTSTART").astimezone(dt.timezone.utc) == utc(2026, 3, 30, 11, 0)


def test_all_day_event_dates_and_exclusive_end():
    item = CalendarItem(id="A", uid="a@x", subject="Holiday", is_all_day=True,
                        start=EWSDate(2026, 5, 1), end=EWSDate(2026, 5, 1))  # exchangelib: inclusive end
    (ev,) = components(convert.event_to_ical(item), "VEVENT")
    assert (ev.decoded("DTSTART"), ev.decoded("DTEND")) == (dt.date(2026, 5, 1), dt.date(2026, 5, 2))


@pytest.mark.parametrize("pattern, boundary, start, expected", [
    (RelativeMonthlyPattern(interval=2, weekday=2, week_number=5), NumberedPattern(start=EWSDate(2026, 1, 27), number=3),
     dt.datetime(2026, 1, 27, 10, tzinfo=BERLIN), "FREQ=MONTHLY;COUNT=3;INTERVAL=2;BYDAY=-1TU"),
    (AbsoluteYearlyPattern(day_of_month=20, month=1), EndDatePattern(start=EWSDate(2024, 1, 20), end=EWSDate(2028, 1, 20)),
     dt.date(2024, 1, 20), "FREQ=YEARLY;UNTIL=20280120"),
    (WeeklyPattern(interval=1, weekdays=[1, 3], first_day_of_week=7),
     EndDatePattern(start=EWSDate(2026, 3, 16), end=EWSDate(2026, 4, 1)),
     dt.datetime(2026, 3, 16, 9, tzinfo=BERLIN), "FREQ=WEEKLY;UNTIL=20260401T070000Z;BYDAY=MO,WE;WKST=SU"),
])
def test_recurrence_rules(pattern, boundary, start, expected):
    rule = convert.recurrence_rule(Recurrence(pattern=pattern, boundary=boundary), start)
    assert icalendar.vRecur(rule).to_ical().decode() == expected


def test_contact_with_non_ascii_names():
    item = Contact(
        id="C1", display_name="Jürgen Müller-Øberg", given_name="Jürgen", surname="Müller-Øberg", company_name="Ærø AG",
        email_addresses=[EmailAddress(email="j@x.de", label="EmailAddress1"), EmailAddress(email="h@x.de", label="EmailAddress2")],
        phone_numbers=[PhoneNumber(label="MobilePhone", phone_number="+49 1"), PhoneNumber(label="BusinessFax", phone_number="+49 2")],
        physical_addresses=[PhysicalAddress(label="Home", street="Hauptstraße 1", city="Köln", zipcode="50667", country="DE")],
        birthday=EWSDate(1980, 2, 29),
    )
    card = vobject.readOne(convert.contact_to_vcard(item))
    assert card.version.value == "3.0" and card.uid.value == convert.stable_uid("C1")
    assert (card.fn.value, card.n.value.family, card.n.value.given) == ("Jürgen Müller-Øberg", "Müller-Øberg", "Jürgen")
    assert card.org.value == ["Ærø AG"]
    assert [(e.value, e.type_paramlist) for e in card.email_list] == [
        ("j@x.de", ["INTERNET", "WORK", "PREF"]), ("h@x.de", ["INTERNET", "HOME"])]
    assert [(t.value, t.type_paramlist) for t in card.tel_list] == [("+49 1", ["CELL"]), ("+49 2", ["WORK", "FAX"])]
    assert (card.adr.value.street, card.adr.value.city, card.adr.type_param) == ("Hauptstraße 1", "Köln", "HOME")
    assert card.bday.value == "1980-02-29"


def test_task_and_note():
    task = Task(id="T1", subject="Steuer", start_date=EWSDate(2026, 3, 1), due_date=EWSDate(2026, 4, 1),
                status="InProgress", percent_complete=40, importance="High")
    (todo,) = components(convert.task_to_ical(task), "VTODO")
    assert (todo.decoded("DTSTART"), todo.decoded("DUE")) == (dt.date(2026, 3, 1), dt.date(2026, 4, 1))
    assert (str(todo["STATUS"]), todo["PERCENT-COMPLETE"], todo["PRIORITY"]) == ("IN-PROCESS", 40, 1)
    note = Message(id="N1", subject="Idee", body="Text", item_class="IPM.StickyNote",
                   datetime_created=EWSDateTime(2026, 2, 3, 4, 5, tzinfo=UTC))
    (journal,) = components(convert.note_to_ical(note), "VJOURNAL")
    assert (str(journal["SUMMARY"]), str(journal["DESCRIPTION"]), journal.decoded("DTSTART")) == ("Idee", "Text", dt.date(2026, 2, 3))
    assert convert.note_to_ical(note) == convert.note_to_ical(note)  # no wall clock: same text on a re-run


def test_throttling_decisions():
    busy = ews_errors.ErrorServerBusy("busy", back_off=2.5)
    assert retry_delay(busy, 0, authenticated_before=False) == 2.5
    assert 1.0 <= retry_delay(ews_errors.ErrorTooManyObjectsOpened("x"), 2, authenticated_before=True) <= 2.0
    assert 0.25 <= retry_delay(ews_errors.ErrorInternalServerTransientError("Caused by HTTP 503 response"), 0,
                               authenticated_before=True) <= 0.5
    unauthorized = ews_errors.UnauthorizedError("Invalid credentials")
    assert retry_delay(unauthorized, 0, authenticated_before=False) is None  # a wrong password
    assert 0.25 <= retry_delay(unauthorized, 0, authenticated_before=True) <= 0.5  # throttling in disguise
    assert retry_delay(ews_errors.ErrorMimeContentConversionFailed("x"), 0, authenticated_before=True) is None
    assert retry_delay(busy, 7, authenticated_before=True) is None  # attempts used up


def test_dav_names_and_bodies():
    assert resource_name("standup@example.net", "event") == "standup@example.net.ics"
    assert resource_name("a/b c", "contact").endswith(".vcf") and "/" not in resource_name("a/b c", "contact")
    assert collection_name(("Calendar",), "event") == "calendar"
    assert collection_name(("Kalender", "Büro"), "event").startswith("kalender-b-ro-")
    method, body = mkcol_body("task", "Aufgaben & Co")
    assert method == "MKCALENDAR" and b'<C:comp name="VTODO"/>' in body and b"Aufgaben &amp; Co" in body
    xml = (b'<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><response><href>/u/</href><propstat>'
           b"<prop><resourcetype><collection/></resourcetype></prop></propstat></response><response><href>/u/c/</href>"
           b"<propstat><prop><resourcetype><collection/><C:addressbook/></resourcetype></prop></propstat></response>"
           b"</multistatus>")
    assert parse_collections(xml) == {"/u/": "collection", "/u/c/": "addressbook"}


def test_items_selection_and_what_sources_cannot_offer():
    assert parse_items("mail, Contacts") == ["mail", "contacts"]
    with pytest.raises(UsageError):
        parse_items("mail,journal")
    assert not_offered(["mail", "contacts", "notes"], MAIL_ONLY) == ["contacts", "notes"]
    imap = Endpoint(ServerURL.parse("imap://a@h"), Secret("x"))
    said = collab_preamble(imap, MigrationOptions(items=["mail", "calendars"]), None)
    assert said == ["imap:// offers mail only: calendars cannot be migrated from it"]
    ews = Endpoint(ServerURL.parse("ews+http://a@h"), Secret("x"))
    assert "will not be migrated" in collab_preamble(ews, MigrationOptions(), None)[0]


def test_mapi_flag_properties_both_ways():
    from migrator.collab import mapi

    assert mapi.imap_flags(mapi.VERB_REPLY_ALL, mapi.FLAG_FLAGGED) == ["\\Answered", "\\Flagged"]
    assert mapi.imap_flags(mapi.VERB_FORWARD, 1) == ["$Forwarded"]  # 1 = flag completed: not \Flagged
    assert mapi.imap_flags(None, None) == []
    props = mapi.properties(["\\Seen", "\\Answered", "$Forwarded", "\\Flagged"])
    assert props == {"qm_message_flags": mapi.MSGFLAG_READ, "qm_last_verb": mapi.VERB_FORWARD,
                     "qm_flag_status": mapi.FLAG_FLAGGED}  # Exchange keeps the last verb only
    assert mapi.properties(["\\Draft"]) == {"qm_message_flags": mapi.MSGFLAG_UNSENT}
