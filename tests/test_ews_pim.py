"""vCard / iCalendar payloads ↔ EWS item XML, without a server."""

from __future__ import annotations

from datetime import date

import icalendar
import pytest
import vobject
from lxml import etree

from simulators.ews import pim, recurrence
from simulators.ews.soap import TNS
from simulators.store import ItemKind, PimItem
from tests.test_ews_exchangelib import CONTACT, EVENT, TASK

NS = {"t": TNS}


def texts(el, path):
    return [e.text for e in el.iterfind(path, NS)]


def pattern(rule: str, start: date = date(2024, 1, 8)) -> etree._Element:
    return recurrence.to_ews(icalendar.vRecur.from_ical(rule), start)


@pytest.mark.parametrize(
    ("rule", "xml"),
    [
        ("FREQ=DAILY;INTERVAL=2;COUNT=5",
         "<t:DailyRecurrence><t:Interval>2</t:Interval></t:DailyRecurrence>"
         "<t:NumberedRecurrence><t:StartDate>2024-01-08</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences>"
         "</t:NumberedRecurrence>"),
        ("FREQ=WEEKLY;BYDAY=MO,FR",
         "<t:WeeklyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Monday Friday</t:DaysOfWeek>"
         "<t:FirstDayOfWeek>Monday</t:FirstDayOfWeek></t:WeeklyRecurrence>"
         "<t:NoEndRecurrence><t:StartDate>2024-01-08</t:StartDate></t:NoEndRecurrence>"),
        ("FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20241231T000000Z",
         "<t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval><t:DayOfMonth>15</t:DayOfMonth>"
         "</t:AbsoluteMonthlyRecurrence><t:EndDateRecurrence><t:StartDate>2024-01-08</t:StartDate>"
         "<t:EndDate>2024-12-31</t:EndDate></t:EndDateRecurrence>"),
        ("FREQ=MONTHLY;BYDAY=2TU",
         "<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>Tuesday</t:DaysOfWeek>"
         "<t:DayOfWeekIndex>Second</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence>"
         "<t:NoEndRecurrence><t:StartDate>2024-01-08</t:StartDate></t:NoEndRecurrence>"),
        ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
         "<t:RelativeYearlyRecurrence><t:DaysOfWeek>Sunday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex>"
         "<t:Month>March</t:Month></t:RelativeYearlyRecurrence>"
         "<t:NoEndRecurrence><t:StartDate>2024-01-08</t:StartDate></t:NoEndRecurrence>"),
        ("FREQ=YEARLY",
         "<t:AbsoluteYearlyRecurrence><t:DayOfMonth>8</t:DayOfMonth><t:Month>January</t:Month>"
         "</t:AbsoluteYearlyRecurrence><t:NoEndRecurrence><t:StartDate>2024-01-08</t:StartDate></t:NoEndRecurrence>"),
    ],
)
def test_rrule_to_ews_and_back(rule, xml):
    el = pattern(rule)
    got = etree.tostring(el, encoding="unicode").replace(f' xmlns:t="{TNS}"', "")
    assert got == f"<t:Recurrence>{xml}</t:Recurrence>"
    back, start = recurrence.from_ews(el)
    assert start == date(2024, 1, 8)
    assert pattern(icalendar.vRecur(back).to_ical().decode()).getchildren()[0].tag == el[0].tag


def test_unsupported_rrule_names_the_rule():
    with pytest.raises(recurrence.UnsupportedRecurrence, match="FREQ=HOURLY"):
        pattern("FREQ=HOURLY")


def test_contact_round_trip_through_ews_xml():
    el = pim.render_contact(PimItem(ItemKind.CONTACT, "contact-1", CONTACT), [])
    assert texts(el, "t:EmailAddresses/t:Entry") == ["ada@engines.test", "ada@home.test"]
    assert el.findtext("t:Birthday", namespaces=NS) == "1815-12-10T11:59:00Z"
    assert el.findtext("t:FileAs", namespaces=NS) == "Lovelace, Ada"
    back = pim.parse_contact(el)
    card = vobject.readOne(back.payload)
    assert (card.n.value.family, card.n.value.given, card.fn.value) == ("Lovelace", "Ada", "Ada Lovelace")
    assert [e.value for e in card.contents["email"]] == ["ada@engines.test", "ada@home.test"]
    assert card.bday.value == "1815-12-10" and card.uid.value == back.item_id
    assert card.adr.value.city == "London" and "WORK" in card.adr.params["TYPE"]


def test_recurring_event_round_trip_keeps_rule_zone_and_attendees():
    el = pim.render_event(PimItem(ItemKind.EVENT, "event-weekly", EVENT), [])
    assert el.find("t:StartTimeZone", NS).get("Id") == "W. Europe Standard Time"
    assert texts(el, "t:ModifiedOccurrences/t:Occurrence/t:OriginalStart") == ["2024-01-10T08:00:00Z"]
    back = icalendar.Calendar.from_ical(pim.parse_event(el).payload)
    (ev,) = back.walk("VEVENT")
    assert ev["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE"
    assert str(ev["DTSTART"].dt.tzinfo) == "Europe/Berlin" and ev["DTSTART"].dt.hour == 9
    assert [str(a) for a in ev["ATTENDEE"]] == ["mailto:bob@engines.test", "mailto:eve@engines.test"]
    assert ev["ATTENDEE"][1].params["ROLE"] == "OPT-PARTICIPANT" and ev["UID"] == "event-weekly"
    (alarm,) = ev.walk("VALARM")
    assert alarm.decoded("TRIGGER").total_seconds() == -600


def test_task_status_and_dates():
    el = pim.render_task(PimItem(ItemKind.TASK, "task-1", TASK), [])
    assert [el.findtext(f"t:{k}", namespaces=NS) for k in ("Status", "PercentComplete", "DueDate", "StartDate")] == [
        "InProgress", "40", "2024-01-10T17:00:00Z", "2024-01-05T08:00:00Z"]
    (todo,) = icalendar.Calendar.from_ical(pim.parse_task(el).payload).walk("VTODO")
    assert (str(todo["STATUS"]), int(todo["PERCENT-COMPLETE"])) == ("IN-PROCESS", 40)


def test_bad_payloads_raise_payload_error_naming_the_item():
    with pytest.raises(pim.PayloadError, match="event e1: no VEVENT"):
        pim.render_event(PimItem(ItemKind.EVENT, "e1", "BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n"), [])
    with pytest.raises(pim.PayloadError, match="task t1: not iCalendar"):
        pim.render_task(PimItem(ItemKind.TASK, "t1", "garbage"), [])
