"""Store PIM payloads (vCard 3.0, iCalendar) ↔ EWS item XML (t:Contact, t:CalendarItem, t:Task,
notes as t:Message with ItemClass IPM.StickyNote).

``render_*`` build the item element with every field in schema order after ``head`` (ItemId,
ParentFolderId); ``parse_*`` turn a CreateItem element into the payload text the store keeps.
A payload that cannot be read raises PayloadError naming the item id and the cause.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import vobject
from lxml import etree

from simulators.ews import recurrence, timezones
from simulators.ews.soap import sub, t, xs_bool, xs_int
from simulators.store import ItemKind, PimItem

ITEM_CLASS = {ItemKind.CONTACT: "IPM.Contact", ItemKind.EVENT: "IPM.Appointment", ItemKind.TASK: "IPM.Task",
              ItemKind.NOTE: "IPM.StickyNote"}
ELEMENT = {ItemKind.CONTACT: "Contact", ItemKind.EVENT: "CalendarItem", ItemKind.TASK: "Task",
           ItemKind.NOTE: "Message"}


class PayloadError(ValueError):
    """A stored vCard/iCalendar payload (or a CreateItem element) that cannot be converted."""


def utc(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item_head(el: etree._Element, head: list[etree._Element], kind: ItemKind, subject: str | None,
               body: str | None) -> None:
    el.extend(head)
    sub(el, t("ItemClass"), ITEM_CLASS[kind])
    sub(el, t("Subject"), subject or "")
    sub(el, t("Sensitivity"), "Normal")
    if body:
        sub(el, t("Body"), body, BodyType="Text")


# Contacts ------------------------------------------------------------------------------------------

_PHONE_KEYS = [({"WORK", "FAX"}, "BusinessFax"), ({"HOME", "FAX"}, "HomeFax"), ({"CELL"}, "MobilePhone"),
               ({"PAGER"}, "Pager"), ({"WORK"}, "BusinessPhone"), ({"HOME"}, "HomePhone")]
_SECOND = {"BusinessPhone": "BusinessPhone2", "HomePhone": "HomePhone2"}
_ADDRESS_KEYS = {"WORK": "Business", "HOME": "Home"}


def _types(prop) -> set[str]:
    return {v.upper() for v in prop.params.get("TYPE", []) for v in v.split(",")}


def render_contact(item: PimItem, head: list[etree._Element]) -> etree._Element:
    try:
        card = vobject.readOne(item.payload)
    except Exception as exc:  # vobject raises a zoo of exceptions for bad input
        raise PayloadError(f"contact {item.item_id}: not a vCard: {exc}") from None
    n = card.n.value if hasattr(card, "n") else vobject.vcard.Name()
    fn = card.fn.value if hasattr(card, "fn") else " ".join(filter(None, [n.given, n.family]))
    note = card.note.value if hasattr(card, "note") else None
    el = etree.Element(t("Contact"))
    _item_head(el, head, ItemKind.CONTACT, fn, note)
    sub(el, t("FileAs"), ", ".join(filter(None, [n.family, n.given])) or fn)
    sub(el, t("DisplayName"), fn)
    if n.given:
        sub(el, t("GivenName"), n.given)
    if n.additional:
        sub(el, t("MiddleName"), n.additional if isinstance(n.additional, str) else " ".join(n.additional))
    if hasattr(card, "nickname"):
        sub(el, t("Nickname"), card.nickname.value)
    if hasattr(card, "org"):
        org = card.org.value
        sub(el, t("CompanyName"), org[0] if isinstance(org, list) else org)
    emails = card.contents.get("email", [])[:3]
    if emails:
        box = sub(el, t("EmailAddresses"))
        for i, e in enumerate(emails, 1):
            sub(box, t("Entry"), e.value, Key=f"EmailAddress{i}")
    addresses = {}
    for adr in card.contents.get("adr", []):
        key = next((v for k, v in _ADDRESS_KEYS.items() if k in _types(adr)), "Other")
        addresses.setdefault(key, adr.value)
    if addresses:
        box = sub(el, t("PhysicalAddresses"))
        for key, a in addresses.items():
            entry = sub(box, t("Entry"), Key=key)
            for tag, value in (("Street", a.street), ("City", a.city), ("State", a.region),
                               ("CountryOrRegion", a.country), ("PostalCode", a.code)):
                value = " ".join(value) if isinstance(value, list) else value
                if value:
                    sub(entry, t(tag), value)
    phones: dict[str, str] = {}
    for tel in card.contents.get("tel", []):
        types = _types(tel)
        key = next((k for need, k in _PHONE_KEYS if need <= types), "OtherTelephone")
        if key in phones and key in _SECOND:
            key = _SECOND[key]
        phones.setdefault(key, tel.value)
    if phones:
        box = sub(el, t("PhoneNumbers"))
        for key, value in phones.items():
            sub(box, t("Entry"), value, Key=key)
    if hasattr(card, "bday"):
        try:
            day = date.fromisoformat(str(card.bday.value)[:10])
        except ValueError:
            raise PayloadError(f"contact {item.item_id}: BDAY {card.bday.value!r} is not a date") from None
        # Exchange keeps birthdays as 11:59 UTC of the day so that they show on the right day everywhere.
        sub(el, t("Birthday"), f"{day.isoformat()}T11:59:00Z")
    if hasattr(card, "title"):
        sub(el, t("JobTitle"), card.title.value)
    if n.family:
        sub(el, t("Surname"), n.family)
    return el


def parse_contact(el: etree._Element) -> PimItem:
    card = vobject.vCard()
    given, family = el.findtext(t("GivenName")) or "", el.findtext(t("Surname")) or ""
    middle = el.findtext(t("MiddleName")) or ""
    card.add("n").value = vobject.vcard.Name(family=family, given=given, additional=middle)
    card.add("fn").value = el.findtext(t("DisplayName")) or " ".join(filter(None, [given, family])) or "(no name)"
    for tag, prop in (("Nickname", "nickname"), ("JobTitle", "title")):
        if el.findtext(t(tag)):
            card.add(prop).value = el.findtext(t(tag))
    if el.findtext(t("CompanyName")):
        card.add("org").value = [el.findtext(t("CompanyName"))]
    for entry in el.iterfind(f"{t('EmailAddresses')}/{t('Entry')}"):
        card.add("email").value = entry.text or ""
        card.contents["email"][-1].type_param = "INTERNET"
    reverse_phone = {k: need for need, k in _PHONE_KEYS} | {"BusinessPhone2": {"WORK"}, "HomePhone2": {"HOME"}}
    for entry in el.iterfind(f"{t('PhoneNumbers')}/{t('Entry')}"):
        tel = card.add("tel")
        tel.value = entry.text or ""
        tel.params["TYPE"] = sorted(reverse_phone.get(entry.get("Key"), {"VOICE"}))
    for entry in el.iterfind(f"{t('PhysicalAddresses')}/{t('Entry')}"):
        adr = card.add("adr")
        adr.value = vobject.vcard.Address(
            street=entry.findtext(t("Street")) or "", city=entry.findtext(t("City")) or "",
            region=entry.findtext(t("State")) or "", code=entry.findtext(t("PostalCode")) or "",
            country=entry.findtext(t("CountryOrRegion")) or "")
        adr.params["TYPE"] = [{"Business": "WORK", "Home": "HOME"}.get(entry.get("Key"), "OTHER")]
    if el.findtext(t("Birthday")):
        card.add("bday").value = el.findtext(t("Birthday"))[:10]
    body = el.findtext(t("Body"))
    if body:
        card.add("note").value = body
    uid = _new_uid(etree.tostring(el))
    card.add("uid").value = uid
    return PimItem(ItemKind.CONTACT, uid, card.serialize())


def _new_uid(seed: bytes) -> str:
    return hashlib.sha1(seed).hexdigest()[:32].upper()


def _component(kind, uid: str, el: etree._Element):
    """An event, task or note parsed from EWS starts alike: its UID, a fixed DTSTAMP (the same
    request gives the same bytes), SUMMARY from Subject."""
    component = kind()
    component.add("UID", uid)
    component.add("DTSTAMP", datetime(2000, 1, 1, tzinfo=timezone.utc))
    component.add("SUMMARY", el.findtext(t("Subject")) or "")
    return component


def _describe(component, el: etree._Element) -> None:
    if el.findtext(t("Body")):
        component.add("DESCRIPTION", el.findtext(t("Body")))


# Calendar --------------------------------------------------------------------------------------

_RESPONSE = {"ACCEPTED": "Accept", "DECLINED": "Decline", "TENTATIVE": "Tentative",
             "NEEDS-ACTION": "NoResponseReceived"}
_PARTSTAT = {v: k for k, v in _RESPONSE.items()}


def read_calendar(item: PimItem, component: str) -> tuple[icalendar.Calendar, list]:
    try:
        cal = icalendar.Calendar.from_ical(item.payload)
    except Exception as exc:  # icalendar raises ValueError and friends
        raise PayloadError(f"{item.kind.value} {item.item_id}: not iCalendar: {exc}") from None
    comps = [c for c in cal.walk(component)]
    if not comps:
        raise PayloadError(f"{item.kind.value} {item.item_id}: no {component} in the payload")
    return cal, comps


def split_event(item: PimItem):
    """(master VEVENT, {recurrence-id as UTC text: override VEVENT})."""
    _, events = read_calendar(item, "VEVENT")
    master = next((e for e in events if "RECURRENCE-ID" not in e), events[0])
    overrides = {instant_key(e.decoded("RECURRENCE-ID")): e for e in events if "RECURRENCE-ID" in e}
    return master, overrides


def instant_key(value) -> str:
    """The key of a RECURRENCE-ID / instance: UTC "YYYY-MM-DDTHH:MM:SSZ", or the date of all-day ones."""
    if isinstance(value, datetime):
        return utc(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return value.isoformat()


def key_instant(key: str) -> datetime:
    return as_utc(datetime.fromisoformat(key.replace("Z", "+00:00")) if "T" in key else date.fromisoformat(key))


def event_times(ev, item: PimItem) -> tuple[datetime, datetime]:
    """(start, end) of a VEVENT in UTC; all-day dates count from UTC midnight."""
    start_prop, end_prop = ev.get("DTSTART"), ev.get("DTEND")
    if start_prop is None:
        raise PayloadError(f"event {item.item_id}: no DTSTART")
    all_day = not isinstance(start_prop.dt, datetime)
    start = as_utc(start_prop.dt)
    if end_prop is not None:
        return start, as_utc(end_prop.dt)
    if "DURATION" in ev:
        return start, start + ev.decoded("DURATION")
    return start, start + (timedelta(days=1) if all_day else timedelta())


def as_utc(value) -> datetime:
    return _as_datetime(value).astimezone(timezone.utc)


def _as_datetime(value) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def _tzid(prop) -> str:
    dt = prop.dt if prop is not None else None
    if isinstance(dt, datetime) and dt.tzinfo is not None:
        key = getattr(dt.tzinfo, "key", None) or getattr(dt.tzinfo, "zone", None) or prop.params.get("TZID")
        return timezones.windows_id(key)
    return "UTC"


def as_list(value) -> list:
    """icalendar gives one property as itself and several as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _mailbox(parent: etree._Element, address, name: str | None = None) -> None:
    box = sub(parent, t("Mailbox"))
    email = str(address)
    email = email[7:] if email.lower().startswith("mailto:") else email
    sub(box, t("Name"), name or email)
    sub(box, t("EmailAddress"), email)
    sub(box, t("RoutingType"), "SMTP")


def render_event(item: PimItem, head: list[etree._Element], *, occurrence: str | None = None,
                 occurrence_ids=None) -> etree._Element:
    """A master (or single) event; with ``occurrence`` (a recurrence-id key) that override as an
    Exception item. ``occurrence_ids(key)`` gives the ItemId element of an override."""
    master, overrides = split_event(item)
    # An occurrence without an override is the master moved to the instance's start.
    regular = occurrence is not None and occurrence not in overrides
    ev = overrides[occurrence] if occurrence is not None and not regular else master
    start_prop, end_prop = ev.get("DTSTART"), ev.get("DTEND")
    start, end = event_times(ev, item)
    all_day = not isinstance(start_prop.dt, datetime)
    if regular:
        start, end = key_instant(occurrence), key_instant(occurrence) + (end - start)
    el = etree.Element(t("CalendarItem"))
    description = str(ev["DESCRIPTION"]) if "DESCRIPTION" in ev else None
    _item_head(el, head, ItemKind.EVENT, str(ev.get("SUMMARY", "")), description)
    alarm = next((a for a in ev.walk("VALARM")), None)
    minutes = 0
    if alarm is not None and "TRIGGER" in alarm:
        trigger = alarm.decoded("TRIGGER")
        minutes = int(-trigger.total_seconds() // 60) if isinstance(trigger, timedelta) else 15
    sub(el, t("ReminderIsSet"), "true" if alarm is not None else "false")
    sub(el, t("ReminderMinutesBeforeStart"), str(max(minutes, 0)))
    sub(el, t("UID"), str(ev.get("UID", item.item_id)))
    if occurrence is not None:
        sub(el, t("RecurrenceId"), occurrence if "T" in occurrence else occurrence + "T00:00:00Z")
    sub(el, t("Start"), utc(start))
    sub(el, t("End"), utc(end))
    sub(el, t("IsAllDayEvent"), "true" if all_day else "false")
    sub(el, t("LegacyFreeBusyStatus"), "Free" if str(ev.get("TRANSP", "")) == "TRANSPARENT" else "Busy")
    if "LOCATION" in ev:
        sub(el, t("Location"), str(ev["LOCATION"]))
    attendees = as_list(ev.get("ATTENDEE"))
    recurring = "RRULE" in master
    sub(el, t("IsMeeting"), "true" if attendees else "false")
    sub(el, t("IsCancelled"), "true" if str(ev.get("STATUS", "")) == "CANCELLED" else "false")
    sub(el, t("IsRecurring"), "true" if recurring and occurrence is None else "false")
    kind = ("Occurrence" if regular else "Exception") if occurrence is not None else (
        "RecurringMaster" if recurring else "Single")
    sub(el, t("CalendarItemType"), kind)
    if "ORGANIZER" in ev:
        org = sub(el, t("Organizer"))
        _mailbox(org, ev["ORGANIZER"], ev["ORGANIZER"].params.get("CN"))
    for role, tag in (("REQ", "RequiredAttendees"), ("OPT", "OptionalAttendees")):
        chosen = [a for a in attendees if str(a.params.get("ROLE", "REQ-PARTICIPANT")).startswith(role)]
        if chosen:
            box = sub(el, t(tag))
            for a in chosen:
                att = sub(box, t("Attendee"))
                _mailbox(att, a, a.params.get("CN"))
                sub(att, t("ResponseType"), _RESPONSE.get(str(a.params.get("PARTSTAT", "NEEDS-ACTION")), "Unknown"))
    if recurring and occurrence is None:
        rrule = master["RRULE"]
        try:
            el.append(recurrence.to_ews(rrule, start.astimezone(start_prop.dt.tzinfo or timezone.utc).date()
                                        if not all_day else start_prop.dt))
        except recurrence.UnsupportedRecurrence as exc:
            raise PayloadError(f"event {item.item_id}: {exc}") from None
        if overrides:
            box = sub(el, t("ModifiedOccurrences"))
            for key, ov in sorted(overrides.items()):
                occ = sub(box, t("Occurrence"))
                if occurrence_ids is not None:
                    occ.append(occurrence_ids(key))
                o_start = _as_datetime(ov["DTSTART"].dt)
                o_end = _as_datetime(ov["DTEND"].dt) if "DTEND" in ov else o_start + (end - start)
                sub(occ, t("Start"), utc(o_start))
                sub(occ, t("End"), utc(o_end))
                sub(occ, t("OriginalStart"), key)
        exdates = [d.dt for ex in as_list(master.get("EXDATE")) for d in ex.dts]
        if exdates:
            box = sub(el, t("DeletedOccurrences"))
            for d in sorted(_as_datetime(x) for x in exdates):
                sub(sub(box, t("DeletedOccurrence")), t("Start"), utc(d))
    sub(el, t("StartTimeZone"), Id=_tzid(start_prop), Name=_tzid(start_prop))
    sub(el, t("EndTimeZone"), Id=_tzid(end_prop or start_prop), Name=_tzid(end_prop or start_prop))
    return el


def parse_event(el: etree._Element) -> PimItem:
    uid = el.findtext(t("UID")) or _new_uid(etree.tostring(el))
    ev = _component(icalendar.Event, uid, el)
    tz = None
    tz_el = el.find(t("StartTimeZone"))
    if tz_el is not None and tz_el.get("Id"):
        tz = ZoneInfo(timezones.iana_id(tz_el.get("Id")))
    start = parse_dt(el.findtext(t("Start")), "Start")
    end = parse_dt(el.findtext(t("End")), "End")
    all_day = xs_bool(el.findtext(t("IsAllDayEvent")))
    if all_day:
        ev.add("DTSTART", (start.astimezone(tz) if tz else start).date())
        ev.add("DTEND", (end.astimezone(tz) if tz else end).date())
    else:
        ev.add("DTSTART", start.astimezone(tz) if tz else start)
        ev.add("DTEND", end.astimezone(tz) if tz else end)
    _describe(ev, el)
    if el.findtext(t("Location")):
        ev.add("LOCATION", el.findtext(t("Location")))
    organizer = el.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('EmailAddress')}")
    if organizer:  # exchangelib never sends it (the server's); other clients may
        prop = icalendar.vCalAddress(f"mailto:{organizer}")
        name = el.findtext(f"{t('Organizer')}/{t('Mailbox')}/{t('Name')}")
        if name and name != organizer:
            prop.params["CN"] = name
        ev.add("ORGANIZER", prop, encode=0)
    for tag, role in ATTENDEE_ROLES.items():
        for prop in parse_attendees(el, tag, role):
            ev.add("ATTENDEE", prop, encode=0)
    rec = el.find(t("Recurrence"))
    if rec is not None and len(rec):
        try:
            rule, _ = recurrence.from_ews(rec)
        except recurrence.UnsupportedRecurrence as exc:
            raise PayloadError(f"CreateItem CalendarItem {uid}: {exc}") from None
        ev.add("RRULE", recurrence.plain_rule(rule, ev.decoded("DTSTART")))
    if xs_bool(el.findtext(t("ReminderIsSet"))):
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", "Reminder")
        minutes = xs_int(el.findtext(t("ReminderMinutesBeforeStart")), "ReminderMinutesBeforeStart", 15)
        alarm.add("TRIGGER", -timedelta(minutes=minutes))
        ev.add_component(alarm)
    cal = _calendar()
    cal.add_component(ev)
    if tz is not None:
        cal.add_missing_timezones()  # the contract: one VCALENDAR with the VTIMEZONEs it uses
    return PimItem(ItemKind.EVENT, uid, cal.to_ical().decode("utf-8"))


ATTENDEE_ROLES = {"RequiredAttendees": "REQ-PARTICIPANT", "OptionalAttendees": "OPT-PARTICIPANT"}


def parse_attendees(el: etree._Element, tag: str, role: str) -> list[icalendar.vCalAddress]:
    """The ``tag`` (RequiredAttendees / OptionalAttendees) attendees of an item element as ATTENDEEs."""
    out = []
    for att in el.iterfind(f"{t(tag)}/{t('Attendee')}"):
        addr = att.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") or ""
        prop = icalendar.vCalAddress(f"mailto:{addr}")
        prop.params["ROLE"] = role
        name = att.findtext(f"{t('Mailbox')}/{t('Name')}")
        if name:
            prop.params["CN"] = name
        prop.params["PARTSTAT"] = _PARTSTAT.get(att.findtext(t("ResponseType")) or "", "NEEDS-ACTION")
        out.append(prop)
    return out


def _calendar() -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("PRODID", "-//quirkmail//EWS simulator//EN")
    cal.add("VERSION", "2.0")
    return cal


def parse_dt(text: str | None, field: str) -> datetime:
    if not text:
        raise PayloadError(f"CreateItem: {field} is missing")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"CreateItem: {field} {text!r} is not a dateTime") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# Tasks and notes -----------------------------------------------------------------------------------

_TASK_STATUS = {"NEEDS-ACTION": "NotStarted", "IN-PROCESS": "InProgress", "COMPLETED": "Completed",
                "CANCELLED": "Deferred"}
_VTODO_STATUS = {v: k for k, v in _TASK_STATUS.items()} | {"WaitingOnOthers": "IN-PROCESS"}


def render_task(item: PimItem, head: list[etree._Element]) -> etree._Element:
    _, (todo, *_) = read_calendar(item, "VTODO")
    el = etree.Element(t("Task"))
    _item_head(el, head, ItemKind.TASK, str(todo.get("SUMMARY", "")),
               str(todo["DESCRIPTION"]) if "DESCRIPTION" in todo else None)
    status = _TASK_STATUS.get(str(todo.get("STATUS", "NEEDS-ACTION")), "NotStarted")
    percent = int(todo.get("PERCENT-COMPLETE", 100 if status == "Completed" else 0))
    if "COMPLETED" in todo:
        sub(el, t("CompleteDate"), utc(_as_datetime(todo.decoded("COMPLETED"))))
    if "DUE" in todo:
        sub(el, t("DueDate"), utc(_as_datetime(todo.decoded("DUE"))))
    sub(el, t("IsComplete"), "true" if status == "Completed" else "false")
    sub(el, t("IsRecurring"), "false")
    sub(el, t("PercentComplete"), str(percent))
    if "DTSTART" in todo:
        sub(el, t("StartDate"), utc(_as_datetime(todo.decoded("DTSTART"))))
    sub(el, t("Status"), status)
    return el


def parse_task(el: etree._Element) -> PimItem:
    uid = _new_uid(etree.tostring(el))
    todo = _component(icalendar.Todo, uid, el)
    _describe(todo, el)
    for tag, prop in (("StartDate", "DTSTART"), ("DueDate", "DUE"), ("CompleteDate", "COMPLETED")):
        if el.findtext(t(tag)):
            todo.add(prop, parse_dt(el.findtext(t(tag)), tag))
    todo.add("STATUS", _VTODO_STATUS.get(el.findtext(t("Status")) or "NotStarted", "NEEDS-ACTION"))
    if el.findtext(t("PercentComplete")):
        todo.add("PERCENT-COMPLETE", xs_int(el.findtext(t("PercentComplete")).split(".")[0], "PercentComplete", 0))
    cal = _calendar()
    cal.add_component(todo)
    return PimItem(ItemKind.TASK, uid, cal.to_ical().decode("utf-8"))


def render_note(item: PimItem, head: list[etree._Element]) -> etree._Element:
    _, (journal, *_) = read_calendar(item, "VJOURNAL")
    el = etree.Element(t("Message"))
    _item_head(el, head, ItemKind.NOTE, str(journal.get("SUMMARY", "")),
               str(journal["DESCRIPTION"]) if "DESCRIPTION" in journal else None)
    if "DTSTART" in journal:
        sub(el, t("DateTimeCreated"), utc(_as_datetime(journal.decoded("DTSTART"))))
    sub(el, t("IsRead"), "true")
    return el


def parse_note(el: etree._Element) -> PimItem:
    uid = _new_uid(etree.tostring(el))
    journal = _component(icalendar.Journal, uid, el)
    _describe(journal, el)
    if el.findtext(t("DateTimeCreated")):  # read-only for exchangelib; kept when a client sends it
        journal.add("DTSTART", parse_dt(el.findtext(t("DateTimeCreated")), "DateTimeCreated").date())
    cal = _calendar()
    cal.add_component(journal)
    return PimItem(ItemKind.NOTE, uid, cal.to_ical().decode("utf-8"))


RENDER = {ItemKind.CONTACT: render_contact, ItemKind.EVENT: render_event, ItemKind.TASK: render_task,
          ItemKind.NOTE: render_note}
PARSE = {"Contact": parse_contact, "CalendarItem": parse_event, "Task": parse_task}
