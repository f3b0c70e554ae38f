"""exchangelib items → vCard 3.0 and iCalendar text. Pure: objects in, text out, no I/O.

EWS keeps start/end as UTC instants plus the zone they were created in (StartTimeZone); the
iCalendar form states them in that zone with its VTIMEZONE, so a client shows the same wall clock
on both sides of a DST change and the instants stay equal. A recurring series is one VCALENDAR:
the master with RRULE, the deleted occurrences as EXDATE, each modified occurrence as its own
VEVENT with RECURRENCE-ID = the original start (RFC 5545 §3.8.4.4).

Contacts and tasks have no UID in EWS; their UID is derived from the ItemId (``stable_uid``), so a
re-run names the same DAV resource and If-None-Match finds it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Mapping

import icalendar
import vobject

PRODID = "-//quirkmail//migrator//EN"
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_WEEK_NUMBERS = {"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}
# EWS PhoneNumber keys → vCard 3.0 TEL types.
_PHONE_TYPES = {
    "BusinessPhone": "WORK,VOICE", "BusinessPhone2": "WORK,VOICE", "HomePhone": "HOME,VOICE",
    "HomePhone2": "HOME,VOICE", "MobilePhone": "CELL", "BusinessFax": "WORK,FAX", "HomeFax": "HOME,FAX",
    "OtherFax": "FAX", "Pager": "PAGER", "CarPhone": "CAR", "PrimaryPhone": "PREF,VOICE",
}
# EWS keeps e-mail addresses in three numbered slots; Outlook shows them as work, home, other.
_EMAIL_TYPES = {"EmailAddress1": ["WORK", "PREF"], "EmailAddress2": ["HOME"], "EmailAddress3": ["OTHER"]}
_PARTSTAT = {"Accept": "ACCEPTED", "Decline": "DECLINED", "Tentative": "TENTATIVE", "Organizer": "ACCEPTED"}
_PRIORITY = {"High": 1, "Normal": 5, "Low": 9}
_ADDRESS_TYPES = {"Business": "WORK", "Home": "HOME", "Other": "POSTAL"}
_TASK_STATUS = {"NotStarted": "NEEDS-ACTION", "InProgress": "IN-PROCESS", "Completed": "COMPLETED",
                "WaitingOnOthers": "IN-PROCESS", "Deferred": "CANCELLED"}


class ConversionError(ValueError):
    """An item that cannot be expressed as vCard/iCalendar (missing start, unknown pattern ...)."""


def stable_uid(item_id: str) -> str:
    """A UID for items EWS gives none (contacts, tasks, notes): same ItemId → same UID."""
    return "ews-" + hashlib.sha1(item_id.encode()).hexdigest()


def _text(value) -> str:
    return "" if value is None else str(value)


def _enum_index(value, names: tuple[str, ...]) -> int:
    """exchangelib gives enum values as 1-based ints or as their names, depending on the path."""
    if isinstance(value, int):
        return value
    return names.index(str(value)) + 1


# vCard --------------------------------------------------------------------------------------------


def contact_to_vcard(item, uid: str | None = None) -> str:
    """A Contact as one vCard 3.0 (names, e-mails, phones, addresses, birthday, photo, note)."""
    card = vobject.vCard()
    card.add("version").value = "3.0"
    card.add("uid").value = uid or stable_uid(item.id)
    display = _text(item.display_name) or " ".join(p for p in (_text(item.given_name), _text(item.surname)) if p)
    card.add("fn").value = display or _text(item.company_name) or "(no name)"
    card.add("n").value = vobject.vcard.Name(
        family=_text(item.surname), given=_text(item.given_name), additional=_text(item.middle_name),
        suffix=_text(item.generation),
    )
    if item.nickname:
        card.add("nickname").value = item.nickname
    if item.company_name or item.department:
        card.add("org").value = [_text(item.company_name)] + ([item.department] if item.department else [])
    if item.job_title:
        card.add("title").value = item.job_title
    for email in item.email_addresses or ():
        line = card.add("email")
        line.value = email.email
        line.type_param = ["INTERNET"] + _EMAIL_TYPES.get(email.label, [])
    for phone in item.phone_numbers or ():
        if not phone.phone_number:
            continue
        line = card.add("tel")
        line.value = phone.phone_number
        line.type_param = _PHONE_TYPES.get(phone.label, "VOICE").split(",")
    for addr in item.physical_addresses or ():
        line = card.add("adr")
        line.value = vobject.vcard.Address(
            street=_text(addr.street), city=_text(addr.city), region=_text(addr.state),
            code=_text(addr.zipcode), country=_text(addr.country),
        )
        line.type_param = [_ADDRESS_TYPES.get(addr.label, "POSTAL")]
    if item.birthday:
        card.add("bday").value = item.birthday.isoformat()[:10]
    body = _text(item.body) or _text(getattr(item, "notes", None))
    if body:
        card.add("note").value = body
    if getattr(item, "photo", None):
        line = card.add("photo")
        line.value = item.photo if isinstance(item.photo, bytes) else base64.b64decode(item.photo)
        line.encoding_param = "b"
        line.type_param = "JPEG"
    return card.serialize()


# iCalendar ----------------------------------------------------------------------------------------


def _zone(item, attr: str) -> dt.tzinfo:
    tz = getattr(item, attr, None)
    key = getattr(tz, "key", None)
    if key:
        try:
            return zoneinfo.ZoneInfo(key)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return dt.timezone.utc


def _local(value, tz: dt.tzinfo, all_day: bool):
    """An EWS start/end in the item's own zone (a date for all-day events)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        local = utc(value).astimezone(tz)  # a ZoneInfo, not exchangelib's subclass, for VTIMEZONE
        return local.date() if all_day else local
    return value if all_day else dt.datetime.combine(value, dt.time(), tz)


def recurrence_rule(recurrence, dtstart: dt.date | dt.datetime) -> dict:
    """An EWS Recurrence (pattern + boundary) as RRULE parts for ``icalendar.vRecur``, without
    the parts that only restate DTSTART (a weekly BYDAY on its weekday, a yearly BYMONTH +
    BYMONTHDAY on its date, WKST=MO): EWS always spells them out, iCalendar writers usually do
    not. A monthly BYMONTHDAY stays (it is how writers say "monthly on day n")."""
    pattern, boundary = recurrence.pattern, recurrence.boundary
    kind = type(pattern).__name__
    rule: dict = {}
    if kind == "DailyPattern":
        rule = {"FREQ": "DAILY", "INTERVAL": pattern.interval}
    elif kind == "WeeklyPattern":
        days = pattern.weekdays if isinstance(pattern.weekdays, (list, tuple)) else [pattern.weekdays]
        rule = {"FREQ": "WEEKLY", "INTERVAL": pattern.interval,
                "BYDAY": [_WEEKDAYS[_enum_index(d, _WEEKDAY_NAMES) - 1] for d in days]}
        if pattern.first_day_of_week:
            rule["WKST"] = _WEEKDAYS[_enum_index(pattern.first_day_of_week, _WEEKDAY_NAMES) - 1]
    elif kind == "AbsoluteMonthlyPattern":
        rule = {"FREQ": "MONTHLY", "INTERVAL": pattern.interval, "BYMONTHDAY": pattern.day_of_month}
    elif kind == "RelativeMonthlyPattern":
        rule = {"FREQ": "MONTHLY", "INTERVAL": pattern.interval, "BYDAY": [_relative_day(pattern)]}
    elif kind == "AbsoluteYearlyPattern":
        rule = {"FREQ": "YEARLY", "BYMONTH": _enum_index(pattern.month, _MONTHS), "BYMONTHDAY": pattern.day_of_month}
    elif kind == "RelativeYearlyPattern":
        rule = {"FREQ": "YEARLY", "BYMONTH": _enum_index(pattern.month, _MONTHS), "BYDAY": [_relative_day(pattern)]}
    else:
        raise ConversionError(f"recurrence pattern {kind} has no RRULE form")
    _drop_restated(rule, dtstart)
    bkind = type(boundary).__name__
    if bkind == "NumberedPattern":
        rule["COUNT"] = boundary.number
    elif bkind == "EndDatePattern":
        end = dt.date(boundary.end.year, boundary.end.month, boundary.end.day)
        if isinstance(dtstart, dt.datetime):  # UNTIL has DTSTART's type: the last start, in UTC
            end = utc(dt.datetime.combine(end, dtstart.timetz()).replace(tzinfo=dtstart.tzinfo))
        rule["UNTIL"] = end
    return rule


def _drop_restated(rule: dict, dtstart: dt.date) -> None:
    if rule.get("INTERVAL") == 1:
        del rule["INTERVAL"]
    if rule.get("WKST") == "MO":
        del rule["WKST"]
    if rule.get("BYDAY") == [_WEEKDAYS[dtstart.weekday()]] and rule["FREQ"] == "WEEKLY":
        del rule["BYDAY"]
    if rule["FREQ"] == "YEARLY" and (rule.get("BYMONTH"), rule.get("BYMONTHDAY")) == (dtstart.month, dtstart.day):
        del rule["BYMONTH"], rule["BYMONTHDAY"]


def _relative_day(pattern) -> str:
    week = pattern.week_number
    n = _WEEK_NUMBERS[week] if isinstance(week, str) else (-1 if week == 5 else week)
    return f"{n}{_WEEKDAYS[_enum_index(pattern.weekday, _WEEKDAY_NAMES) - 1]}"


def _vevent(item, tz: dt.tzinfo, uid: str) -> icalendar.Event:
    all_day = bool(item.is_all_day)
    if item.start is None:
        raise ConversionError("calendar item without a start")
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("dtstamp", _stamp(item))
    ev.add("summary", _text(item.subject))
    ev.add("dtstart", _local(item.start, tz, all_day))
    end_tz = tz if all_day else _zone(item, "_end_timezone") if getattr(item, "_end_timezone", None) else tz
    end = _local(item.end or item.start, end_tz, all_day)
    if all_day and not isinstance(item.end, dt.datetime):
        end += dt.timedelta(days=1)  # exchangelib makes an all-day End inclusive; DTEND is exclusive
    ev.add("dtend", end)
    if item.location:
        ev.add("location", item.location)
    if _text(item.body):
        ev.add("description", _text(item.body))
    if item.organizer and item.organizer.email_address:
        ev.add("organizer", f"mailto:{item.organizer.email_address}", parameters={"CN": _text(item.organizer.name)})
    for role, attendees in (("REQ-PARTICIPANT", item.required_attendees), ("OPT-PARTICIPANT", item.optional_attendees)):
        for a in attendees or ():
            if a.mailbox and a.mailbox.email_address:
                params = {"ROLE": role, "PARTSTAT": _PARTSTAT.get(str(a.response_type), "NEEDS-ACTION")}
                if a.mailbox.name:
                    params["CN"] = a.mailbox.name
                ev.add("attendee", f"mailto:{a.mailbox.email_address}", parameters=params)
    if getattr(item, "reminder_is_set", False) and item.reminder_minutes_before_start is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", _text(item.subject) or "Reminder")
        alarm.add("trigger", dt.timedelta(minutes=-int(item.reminder_minutes_before_start)))
        ev.add_component(alarm)
    return ev


def _alone(component: icalendar.Component, item) -> str:
    """A VCALENDAR holding just this component (with the item's body as DESCRIPTION)."""
    if _text(item.body):
        component.add("description", _text(item.body))
    cal = _calendar()
    cal.add_component(component)
    return _finish(cal)


def _finish(cal: icalendar.Calendar) -> str:
    cal.add_missing_timezones()
    return cal.to_ical().decode("utf-8")


def _calendar() -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    return cal


def event_to_ical(item, uid: str | None = None, occurrences: Mapping[str, object] = {}) -> str:
    """A CalendarItem (a series master or a single event) as one VCALENDAR with VTIMEZONE(s).

    ``occurrences``: the modified occurrences fetched by their ItemId, keyed by ItemId; an
    override states what the occurrence itself has (Exchange keeps the rest on the master).
    Without it, the master's copy at the occurrence's new start/end.
    """
    tz = _zone(item, "_start_timezone")
    uid = uid or _text(item.uid) or stable_uid(item.id)
    all_day = bool(item.is_all_day)
    cal = _calendar()
    master = _vevent(item, tz, uid)
    if item.recurrence is not None:
        master.add("rrule", recurrence_rule(item.recurrence, _local(item.start, tz, all_day)))
        for gone in item.deleted_occurrences or ():
            master.add("exdate", _local(gone.start, tz, all_day))
    cal.add_component(master)
    for occ in item.modified_occurrences or ():
        full = occurrences.get(occ.id)
        override = _vevent(full, tz, uid) if full is not None else _vevent(item, tz, uid)
        if full is None:  # only times known: move the master's copy
            override["dtstart"] = icalendar.vDDDTypes(_local(occ.start, tz, all_day))
            override["dtend"] = icalendar.vDDDTypes(_local(occ.end, tz, all_day))
        override.add("recurrence-id", _local(occ.original_start, tz, all_day))
        cal.add_component(override)
    return _finish(cal)


def occurrence_index(item, original_start) -> int:
    """EWS's InstanceIndex of the occurrence of series ``item`` that originally started at
    ``original_start``: its 1-based number among the starts the pattern gives, counted in the
    series' own zone (deleted and moved occurrences keep theirs). ConversionError when the
    pattern never starts there."""
    from dateutil.rrule import rrulestr  # only series need it

    tz = _zone(item, "_start_timezone")
    all_day = bool(item.is_all_day)
    first = _local(item.start, tz, all_day)
    target = _local(original_start, tz, all_day)
    if all_day:
        first, target = dt.datetime.combine(first, dt.time()), dt.datetime.combine(target, dt.time())
    rule = icalendar.vRecur(recurrence_rule(item.recurrence, first)).to_ical().decode("ascii")
    for n, when in enumerate(rrulestr(rule, dtstart=first), 1):
        if when == target:
            return n
        if when > target:
            break
    raise ConversionError(f"event {item.uid or item.id}: no occurrence of the series starts at {original_start}")


def task_to_ical(item, uid: str | None = None) -> str:
    """A Task as one VCALENDAR with one VTODO (dates, status, percent complete)."""
    todo = icalendar.Todo()
    todo.add("uid", uid or stable_uid(item.id))
    todo.add("dtstamp", _stamp(item))
    todo.add("summary", _text(item.subject))
    if item.start_date:
        todo.add("dtstart", _as_date(item.start_date))
    if item.due_date:
        todo.add("due", _as_date(item.due_date))
    if item.complete_date:
        todo.add("completed", utc(item.complete_date))
    if item.status:
        todo.add("status", _TASK_STATUS.get(str(item.status), "NEEDS-ACTION"))
    if getattr(item, "importance", None) in _PRIORITY:
        todo.add("priority", _PRIORITY[item.importance])
    if item.percent_complete is not None:
        todo.add("percent-complete", int(item.percent_complete))
    return _alone(todo, item)


def note_to_ical(item, uid: str | None = None) -> str:
    """A sticky note (IPM.StickyNote message) as one VCALENDAR with one VJOURNAL."""
    journal = icalendar.Journal()
    journal.add("uid", uid or stable_uid(item.id))
    stamp = _stamp(item)
    journal.add("dtstamp", stamp)
    journal.add("dtstart", stamp.date())  # a journal entry belongs to a day
    journal.add("summary", _text(item.subject))
    return _alone(journal, item)


def utc(value: dt.datetime) -> dt.datetime:
    """A plain aware UTC datetime (exchangelib's EWSDateTime refuses non-EWSTimeZone zones)."""
    if value.tzinfo is None:
        return dt.datetime(*value.timetuple()[:6], value.microsecond, tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(value.timestamp(), dt.timezone.utc)


def _stamp(item) -> dt.datetime:
    """DTSTAMP from the item's own times, so the same item always converts to the same text."""
    for attr in ("last_modified_time", "datetime_created", "datetime_received"):
        value = getattr(item, attr, None)
        if isinstance(value, dt.datetime):
            return utc(value).replace(microsecond=0)
    return dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value
