"""Single occurrences of a stored series: EWS's OccurrenceItemId and the payload edits that
DeleteItem / UpdateItem on an occurrence make.

Exchange numbers a series' occurrences from 1 in the order the pattern gives them, in the series'
own zone (InstanceIndex); a deleted or moved occurrence keeps its number. Deleting one adds an
EXDATE to the master; updating one creates (or changes) its RECURRENCE-ID override. Pure: payload
text in, payload text out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import icalendar
from lxml import etree

from simulators.ews import calendar_view, pim
from simulators.ews.soap import t, xs_bool, xs_int
from simulators.store import PimItem


class OccurrenceError(ValueError):
    """An occurrence that cannot be named or changed; ``code`` is Exchange's ResponseCode."""

    def __init__(self, code: str, text: str):
        super().__init__(text)
        self.code = code


# The CalendarItem fields UpdateItem may change on an occurrence → the override's property.
# Attendee fields map to their ROLE: each replaces the override's ATTENDEEs of that role only.
# The reminder pair maps to VALARM: minutes before the start, or None for no reminder.
FIELDS = {"Subject": "SUMMARY", "Location": "LOCATION", "Body": "DESCRIPTION", "Start": "DTSTART", "End": "DTEND",
          "ReminderIsSet": "VALARM", "ReminderMinutesBeforeStart": "VALARM", **pim.ATTENDEE_ROLES}


def key_of_index(item: PimItem, index: int) -> str:
    """The recurrence-id key of the ``index``-th occurrence (OccurrenceItemId's InstanceIndex)."""
    when = calendar_view.nth_start(item, index)
    if when is None:
        raise OccurrenceError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                              f"event {item.item_id}: occurrence index {index} is out of the recurrence range.")
    key = pim.instant_key(when)
    master, _ = pim.split_event(item)
    if key in _exdate_keys(master):
        raise OccurrenceError("ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                              f"event {item.item_id}: occurrence {index} ({key}) was deleted from the series.")
    return key


def delete(item: PimItem, key: str) -> str:
    """The payload with the occurrence ``key`` cancelled: an EXDATE (in the master's zone) and no override."""
    cal, master, original = _locate(item, key)
    master.add("EXDATE", original)
    _drop_override(cal, key)
    return cal.to_ical().decode("utf-8")


def apply_updates(item: PimItem, key: str, updates: etree._Element | None) -> str:
    """The payload after UpdateItem's ``t:Updates`` (SetItemField / DeleteItemField with a
    t:CalendarItem) on occurrence ``key``."""
    return update(item, key, changes_from(item, key, updates))


def changes_from(item: PimItem, key: str, updates: etree._Element | None) -> dict[str, object]:
    """``t:Updates`` as update()'s changes; Start/End in the series' zone (the override keeps it)."""
    master, _ = pim.split_event(item)
    zone = getattr(master.decoded("DTSTART"), "tzinfo", None) or timezone.utc
    changes: dict[str, object] = {}
    reminder: dict[str, str | None] = {}
    for change in updates if updates is not None else []:
        uri = change.find(t("FieldURI"))
        field = (uri.get("FieldURI", "") if uri is not None else "").split(":")[-1]
        if field in ("StartTimeZone", "EndTimeZone", "MeetingTimeZone"):
            continue  # exchangelib sends them with Start/End; the override keeps the series' zone
        if field not in FIELDS:
            raise OccurrenceError("ErrorInvalidRequest", f"event {item.item_id}: UpdateItem of "
                                  f"{field or 'an extended property'!r} on an occurrence is not simulated.")
        value = None
        holder = change.find(t("CalendarItem"))
        if etree.QName(change).localname == "SetItemField":
            if holder is None:
                raise OccurrenceError("ErrorInvalidRequest", f"SetItemField {field} without a t:CalendarItem.")
            if field in pim.ATTENDEE_ROLES:
                value = pim.parse_attendees(holder, field, pim.ATTENDEE_ROLES[field])
            elif field in ("Start", "End"):
                value = pim.parse_dt(holder.findtext(t(field)), field).astimezone(zone)
            else:
                value = holder.findtext(t(field)) or ""
        if field.startswith("Reminder"):
            reminder[field] = value
        else:
            changes[FIELDS[field]] = value
    if reminder:  # ReminderIsSet and ReminderMinutesBeforeStart make one VALARM (or none)
        current = pim.render_event(item, [], occurrence=key)
        is_set = xs_bool(reminder.get("ReminderIsSet", current.findtext(t("ReminderIsSet"))))
        minutes = reminder.get("ReminderMinutesBeforeStart") or current.findtext(t("ReminderMinutesBeforeStart"))
        changes["VALARM"] = xs_int(minutes, "ReminderMinutesBeforeStart", 15) if is_set else None
    return changes


def update(item: PimItem, key: str, changes: dict[str, object]) -> str:
    """The payload with the override of occurrence ``key`` holding ``changes`` (iCalendar property
    name → value, None to remove); a new override starts as a copy of the master at that instance."""
    cal, master, original = _locate(item, key)
    override = next((c for c in cal.walk("VEVENT") if "RECURRENCE-ID" in c
                     and pim.instant_key(c.decoded("RECURRENCE-ID")) == key), None)
    if override is None:
        override = _copy_at(master, original)
        cal.add_component(override)
    for name, value in changes.items():
        if name in pim.ATTENDEE_ROLES.values():
            _set_attendees(override, name, value or [])
            continue
        if name == "VALARM":
            _set_reminder(override, value)
            continue
        override.pop(name, None)
        if value is not None:
            override.add(name, value)
    override["SEQUENCE"] = int(override.get("SEQUENCE", 0)) + 1
    return cal.to_ical().decode("utf-8")


def _set_attendees(override, role: str, new: list) -> None:
    kept = [a for a in pim.as_list(override.get("ATTENDEE"))
            if str(a.params.get("ROLE", "REQ-PARTICIPANT")) != role]
    override.pop("ATTENDEE", None)
    for prop in kept + new:
        override.add("ATTENDEE", prop, encode=0)


def _set_reminder(override, minutes: int | None) -> None:
    override.subcomponents = [c for c in override.subcomponents if c.name != "VALARM"]
    if minutes is not None:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", "Reminder")
        alarm.add("TRIGGER", -timedelta(minutes=minutes))
        override.add_component(alarm)


def _locate(item: PimItem, key: str):
    """(calendar, master VEVENT, the occurrence's original start in DTSTART's type and zone)."""
    cal, events = pim.read_calendar(item, "VEVENT")
    master = next((e for e in events if "RECURRENCE-ID" not in e), None)
    if master is None or "RRULE" not in master:
        raise OccurrenceError("ErrorItemNotFound", f"event {item.item_id}: not a recurring series.")
    start = master.decoded("DTSTART")
    original = pim.key_instant(key)
    if isinstance(start, datetime):
        original = original.astimezone(start.tzinfo) if start.tzinfo else original.replace(tzinfo=None)
    else:
        original = original.date()
    return cal, master, original


def _copy_at(master, original) -> icalendar.Event:
    """The master's copy at the instance ``original``: same length, no RRULE / EXDATE."""
    start, end = master.decoded("DTSTART"), master.decoded("DTEND") if "DTEND" in master else None
    copy = icalendar.Event()
    for name, value in master.property_items(recursive=False):
        if name not in ("BEGIN", "END", "RRULE", "EXDATE", "RDATE", "DTSTART", "DTEND", "DURATION", "SEQUENCE"):
            copy.add(name, value, encode=0)
    copy.add("RECURRENCE-ID", original)
    copy.add("DTSTART", original)
    if end is not None:
        copy.add("DTEND", original + (end - start))
    for alarm in master.walk("VALARM"):
        copy.add_component(alarm)
    return copy


def _drop_override(cal, key: str) -> None:
    cal.subcomponents = [c for c in cal.subcomponents if not (
        c.name == "VEVENT" and "RECURRENCE-ID" in c and pim.instant_key(c.decoded("RECURRENCE-ID")) == key)]


def _exdate_keys(master) -> set[str]:
    return {pim.instant_key(d.dt) for ex in pim.as_list(master.get("EXDATE")) for d in ex.dts}
