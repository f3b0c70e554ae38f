"""Compare two sets of contacts, events, tasks and notes as parsed objects, never as bytes.

Servers re-serialise what they store (Radicale reorders properties, refolds lines, rewrites
VTIMEZONEs), so equality is judged on what a user would notice: an event's start and end as
instants with their zone (TZID), all-day dates, the recurrence rule (normalised), cancelled
occurrences (EXDATE instants), moved occurrences (overrides by RECURRENCE-ID), attendees and
reminders; a contact's names, e-mails, phones, addresses and birthday; a task's dates, status and
progress; a note's text.

    source = read_store(account)                      # a simulators.store.Account
    dest = read_dav(radicale.url("alice"), "secret")   # CardDAV/CalDAV: PROPFIND Depth 1 + GET
    report = compare(source, dest, folder_map={"Calendar": "calendar"})
    assert report.ok, report.summary()

The top is pure (text in, records out; records in, differences out); the readers at the bottom do
the I/O (``requests``) and nothing else.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import icalendar
import requests
import vobject

KINDS = ("contact", "event", "task", "note")
COMPONENT_KIND = {"VEVENT": "event", "VTODO": "task", "VJOURNAL": "note"}
HTTP_TIMEOUT = 30.0


class PimParseError(ValueError):
    """A payload that is not a readable vCard / iCalendar; names the item and the cause."""


# Comparable values --------------------------------------------------------------------------


@dataclass(frozen=True)
class When:
    """A DTSTART-like value: an instant (UTC) with its zone, an all-day date, or floating time."""

    value: datetime | date  # UTC datetime for zoned times; the date itself for all-day values
    tzid: str | None  # "Europe/Berlin", "UTC", or None (all-day date or floating time)

    def __str__(self) -> str:
        return f"{self.value.isoformat()} [{self.tzid}]" if self.tzid else self.value.isoformat()


@dataclass(frozen=True)
class PimRecord:
    kind: str  # "contact" | "event" | "task" | "note"
    uid: str
    folder: str  # store folder path joined with "/", or a DAV collection's name
    fields: Mapping[str, Any]


def parse_record(kind: str, text: str, folder: str, *, where: str = "") -> PimRecord:
    """One store item / DAV resource as a record; ``where`` names it in errors."""
    try:
        return _parse_record(kind, text, folder)
    except PimParseError as exc:
        raise PimParseError(f"{where or folder}: {exc}") from None
    except Exception as exc:  # both parsers raise assorted errors on bad input
        raise PimParseError(f"{where or folder}: not a readable {kind}: {exc}") from None


def _parse_record(kind: str, text: str, folder: str) -> PimRecord:
    if kind == "contact":
        card = vobject.readOne(text)
        return PimRecord(kind, _text(card, "uid"), folder, contact_fields(card))
    components = [c for c in icalendar.Calendar.from_ical(text).walk() if c.name in COMPONENT_KIND]
    if not components:
        raise PimParseError("no VEVENT/VTODO/VJOURNAL in the calendar object")
    uid = str(components[0].get("uid", ""))
    if kind == "event":
        return PimRecord(kind, uid, folder, event_fields(components))
    if kind == "task":
        return PimRecord(kind, uid, folder, task_fields(components[0]))
    return PimRecord(kind, uid, folder, note_fields(components[0]))


def calendar_kind(text: str) -> str:
    """event / task / note by the first component a calendar object holds."""
    for line in text.splitlines():
        name = line.strip().upper().removeprefix("BEGIN:")
        if name in COMPONENT_KIND:
            return COMPONENT_KIND[name]
    return "event"


def event_fields(components: list[icalendar.Component]) -> dict[str, Any]:
    master = next((c for c in components if "recurrence-id" not in c), components[0])
    fields = _event_core(master)
    fields["rrule"] = normalise_rrule(master.get("rrule"))
    fields["exdates"] = frozenset(_exdates(master))
    fields["overrides"] = {
        str(when(c, "recurrence-id")): _event_core(c) for c in components if "recurrence-id" in c
    }
    return fields


def _event_core(event: icalendar.Component) -> dict[str, Any]:
    return {
        "start": when(event, "dtstart"),
        "end": _end(event),
        "summary": _ical_text(event, "summary"),
        "organizer": _ical_text(event, "organizer").lower().removeprefix("mailto:"),
        "location": _ical_text(event, "location"),
        "description": _ical_text(event, "description"),
        "attendees": frozenset(_attendees(event)),
        "alarms": frozenset(_alarms(event)),
    }


def task_fields(todo: icalendar.Component) -> dict[str, Any]:
    return {
        "start": when(todo, "dtstart"),
        "due": when(todo, "due"),
        "completed": when(todo, "completed"),
        "status": _ical_text(todo, "status").upper(),
        "percent": int(todo.get("percent-complete", 0)),
        "priority": int(todo.get("priority", 0)),
        "summary": _ical_text(todo, "summary"),
        "description": _ical_text(todo, "description"),
    }


def note_fields(journal: icalendar.Component) -> dict[str, Any]:
    return {
        "start": when(journal, "dtstart"),
        "summary": _ical_text(journal, "summary"),
        "description": _ical_text(journal, "description"),
    }


def contact_fields(card: Any) -> dict[str, Any]:
    n = card.n.value if hasattr(card, "n") else None
    photo = getattr(card, "photo", None)
    emails, phones = card.contents.get("email", []), card.contents.get("tel", [])
    return {
        "name": (n.family, n.given, n.additional, n.prefix, n.suffix) if n else None,
        "formatted_name": _text(card, "fn"),
        # Addresses and numbers apart from their TYPEs, so a destination without types (EWS keeps
        # EmailAddress1..3) can ignore just "email_types" / "phone_types".
        "emails": frozenset(e.value.strip().lower() for e in emails),
        "email_types": frozenset((e.value.strip().lower(), _types(e)) for e in emails),
        "phones": frozenset(t.value.strip() for t in phones),
        "phone_types": frozenset((t.value.strip(), _types(t)) for t in phones),
        "addresses": frozenset(_address(a) for a in card.contents.get("adr", [])),
        "organisation": tuple(card.org.value) if hasattr(card, "org") else None,
        "title": _text(card, "title"),
        "birthday": _birthday(_text(card, "bday")),
        "note": _text(card, "note"),
        "photo": hashlib.sha256(_photo_bytes(photo.value)).hexdigest()[:16] if photo else None,
    }


def when(component: icalendar.Component, name: str) -> When | None:
    if name not in component:
        return None
    prop = component[name]
    return _when(prop.dt, prop.params.get("TZID"))


def _when(value: datetime | date, tzid: str | None) -> When:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return When(value, None)  # floating time: no instant to convert
        # Without a TZID parameter an aware value was written in UTC ("...Z").
        return When(value.astimezone(timezone.utc), tzid or "UTC")
    return When(value, None)


def _end(event: icalendar.Component) -> When | None:
    """DTEND, or DTSTART + DURATION: the same end written either way compares equal."""
    if "dtend" in event or "duration" not in event or "dtstart" not in event:
        return when(event, "dtend")
    start = event["dtstart"]
    return _when(start.dt + event.decoded("duration"), start.params.get("TZID"))


def normalise_rrule(rrule: Any) -> str | None:
    """An RRULE as "KEY=V1,V2;..." with keys sorted and UNTIL as a UTC instant (or a date)."""
    if rrule is None:
        return None
    parts = []
    for key in sorted(rrule):
        values = rrule[key] if isinstance(rrule[key], list) else [rrule[key]]
        rendered = []
        for v in values:
            if isinstance(v, datetime):
                v = v.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ") if v.tzinfo else v.isoformat()
            elif isinstance(v, date):
                v = v.isoformat()
            rendered.append(str(v).upper())
        parts.append(f"{key.upper()}={','.join(rendered)}")
    return ";".join(parts)


def _exdates(event: icalendar.Component) -> Iterable[When]:
    props = event.get("exdate", [])
    for prop in props if isinstance(props, list) else [props]:
        tzid = prop.params.get("TZID")
        for item in prop.dts:
            yield _when(item.dt, tzid)


def _attendees(event: icalendar.Component) -> Iterable[tuple[str, str]]:
    props = event.get("attendee", [])
    for prop in props if isinstance(props, list) else [props]:
        address = str(prop).lower().removeprefix("mailto:")
        yield address, str(prop.params.get("PARTSTAT", "NEEDS-ACTION")).upper()


def _alarms(event: icalendar.Component) -> Iterable[tuple[str, str]]:
    for alarm in event.walk("VALARM"):
        trigger = alarm.decoded("trigger") if "trigger" in alarm else None
        yield str(alarm.get("action", "")).upper(), str(trigger)


def _ical_text(component: icalendar.Component, name: str) -> str:
    value = component.get(name)
    return str(value).replace("\r\n", "\n") if value is not None else ""


def _text(card: Any, name: str) -> str | None:
    prop = getattr(card, name, None)
    return str(prop.value).replace("\r\n", "\n") if prop is not None else None


def _types(prop: Any) -> tuple[str, ...]:
    return tuple(sorted(t.upper() for t in prop.params.get("TYPE", [])))


def _address(prop: Any) -> tuple[str, ...]:
    a = prop.value
    return tuple(str(x) for x in (a.box, a.extended, a.street, a.city, a.region, a.code, a.country))


def _birthday(text: str | None) -> date | str | None:
    """1980-05-17 and 19800517 alike; forms without a year ("--0517") stay text."""
    if not text:
        return None
    digits = text.replace("-", "")[:8]
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return text.strip()


def _photo_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


# Comparison -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    kind: str
    uid: str | None  # None for a count per folder
    folder: str | None
    field: str  # "count", "presence", "duplicate-uid", or a field name ("start", "overrides" ...)
    source: Any
    dest: Any

    def __str__(self) -> str:
        who = f"{self.kind} {self.uid}" if self.uid else f"{self.kind}s in {self.folder!r}"
        return f"{who}: {self.field}: source {_show(self.source)} / destination {_show(self.dest)}"


@dataclass
class PimReport:
    source_counts: dict[tuple[str, str], int]  # (kind, folder) → items
    dest_counts: dict[tuple[str, str], int]
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        return "\n".join(str(d) for d in self.differences) or "no differences"


def compare(
    source: Iterable[PimRecord],
    dest: Iterable[PimRecord],
    *,
    folder_map: Mapping[str, str] | None = None,
    ignore: Collection[str] = (),
) -> PimReport:
    """Differences between two item sets. A source folder is expected under
    ``folder_map.get(folder, folder)`` in the destination; items are matched by kind and UID.

    ``ignore`` names fields a destination cannot keep, as "field" (every kind) or "kind.field"
    ("contact.photo", "event.alarms"); they are left out of the comparison.
    """
    folder_map = folder_map or {}
    source, dest = list(source), list(dest)
    src_counts = Counter((r.kind, folder_map.get(r.folder, r.folder)) for r in source)
    dst_counts = Counter((r.kind, r.folder) for r in dest)
    report = PimReport(dict(src_counts), dict(dst_counts))
    diffs = report.differences
    for kind, folder in sorted(set(src_counts) | set(dst_counts)):
        if src_counts[kind, folder] != dst_counts[kind, folder]:
            diffs.append(Difference(kind, None, folder, "count", src_counts[kind, folder], dst_counts[kind, folder]))
    src_items, dst_items = _by_uid(source, diffs, "source"), _by_uid(dest, diffs, "destination")
    for key in sorted(set(src_items) | set(dst_items)):
        kind, uid = key
        a, b = src_items.get(key), dst_items.get(key)
        if a is None or b is None:
            present = (a or b).folder
            diffs.append(Difference(kind, uid, present, "presence", a and "present", b and "present"))
            continue
        diffs.extend(_field_differences(a, b, frozenset(ignore)))
    return report


def _by_uid(records: list[PimRecord], diffs: list[Difference], side: str) -> dict[tuple[str, str], PimRecord]:
    out: dict[tuple[str, str], PimRecord] = {}
    for r in records:
        if (r.kind, r.uid) in out:
            diffs.append(Difference(r.kind, r.uid, r.folder, "duplicate-uid", side, out[r.kind, r.uid].folder))
        out.setdefault((r.kind, r.uid), r)
    return out


def _field_differences(a: PimRecord, b: PimRecord, ignore: frozenset[str]) -> Iterable[Difference]:
    for name in sorted(set(a.fields) | set(b.fields)):
        if name in ignore or f"{a.kind}.{name}" in ignore:
            continue
        x, y = a.fields.get(name), b.fields.get(name)
        if name == "overrides" and x != y:
            yield from _override_differences(a, x or {}, y or {})
        elif x != y:
            yield Difference(a.kind, a.uid, a.folder, name, x, y)


def _override_differences(a: PimRecord, x: dict, y: dict) -> Iterable[Difference]:
    for rid in sorted(set(x) | set(y)):
        if rid not in x or rid not in y:
            yield Difference(a.kind, a.uid, a.folder, f"overrides[{rid}]", rid in x or None, rid in y or None)
            continue
        for name in sorted(set(x[rid]) | set(y[rid])):
            if x[rid].get(name) != y[rid].get(name):
                field_name = f"overrides[{rid}].{name}"
                yield Difference(a.kind, a.uid, a.folder, field_name, x[rid].get(name), y[rid].get(name))


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(sorted(_show(v) for v in value)) + "}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value) if isinstance(value, When) else repr(value)


# Readers (I/O) --------------------------------------------------------------------------------


def read_store(account: Any) -> list[PimRecord]:
    """Every non-mail item of a ``simulators.store.Account``; folder = path joined with "/"."""
    records = []
    for path, folder in account.folders.items():
        name = "/".join(path)
        for item in folder.items:
            records.append(parse_record(item.kind.value, item.payload, name, where=f"{name}/{item.item_id}"))
    return records


@dataclass(frozen=True)
class DavCollection:
    url: str  # absolute http(s) URL ending in "/"
    name: str  # the last path segment
    kind: str  # "addressbook" | "calendar"
    displayname: str | None
    components: tuple[str, ...]  # VEVENT, VTODO, VJOURNAL a calendar accepts; () for address books


DAV = "{DAV:}"
CARDDAV = "{urn:ietf:params:xml:ns:carddav}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
PROPFIND_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
 <D:prop><D:resourcetype/><D:displayname/><D:getcontenttype/><C:supported-calendar-component-set/></D:prop>
</D:propfind>
"""


def parse_multistatus(body: bytes) -> list[tuple[str, ET.Element]]:
    """(href, merged <prop> of the 200 propstats) per <response> of a 207 Multi-Status body."""
    out = []
    for response in ET.fromstring(body).iter(f"{DAV}response"):
        href = unquote(response.findtext(f"{DAV}href", "").strip())
        merged = ET.Element(f"{DAV}prop")
        for propstat in response.iter(f"{DAV}propstat"):
            if " 200 " in f" {propstat.findtext(f'{DAV}status', '')} ":
                for prop in propstat.iter(f"{DAV}prop"):
                    merged.extend(list(prop))
        out.append((href, merged))
    return out


def dav_collections(session: requests.Session, home_url: str) -> list[DavCollection]:
    """The address books and calendars directly below ``home_url`` (PROPFIND Depth 1)."""
    out = []
    for href, prop in _propfind(session, home_url):
        url = urljoin(home_url, href)
        types = prop.find(f"{DAV}resourcetype")
        if types is None or url.rstrip("/") == home_url.rstrip("/"):
            continue
        kind = "addressbook" if types.find(f"{CARDDAV}addressbook") is not None else None
        kind = kind or ("calendar" if types.find(f"{CALDAV}calendar") is not None else None)
        if kind is None:
            continue
        comps = tuple(c.get("name", "") for c in prop.iter(f"{CALDAV}comp"))
        name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
        out.append(DavCollection(url, name, kind, prop.findtext(f"{DAV}displayname"), comps))
    return sorted(out, key=lambda c: c.url)


def dav_members(session: requests.Session, collection_url: str) -> list[str]:
    """Absolute URLs of the items (non-collections) in a collection."""
    members = []
    for href, prop in _propfind(session, collection_url):
        types = prop.find(f"{DAV}resourcetype")
        if types is not None and types.find(f"{DAV}collection") is not None:
            continue
        members.append(urljoin(collection_url, href))
    return sorted(members)


def read_dav(url: str, password: str, *, verify: bool | str = True) -> list[PimRecord]:
    """Every contact, event, task and note of a CardDAV/CalDAV account.

    ``url`` is ``dav+http://user@host:port/`` (or ``dav://`` for HTTPS) whose path is the user's
    home; a bare "/" means Radicale's layout, ``/<user>/``. ``folder`` of each record is the
    collection's name.
    """
    home, user = dav_home(url)
    records = []
    with requests.Session() as session:
        session.auth = (user, password)
        session.verify = verify
        for collection in dav_collections(session, home):
            for member in dav_members(session, collection.url):
                response = session.get(member, timeout=HTTP_TIMEOUT)
                response.raise_for_status()
                text = response.content.decode("utf-8")
                kind = "contact" if collection.kind == "addressbook" else calendar_kind(text)
                records.append(parse_record(kind, text, collection.name, where=member))
    return records


def dav_home(url: str) -> tuple[str, str]:
    """(http(s) home URL, user) from a ``dav+http://user@host:port/path`` URL."""
    parts = urlsplit(url)
    scheme = {"dav": "https", "dav+http": "http", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.username:
        raise ValueError(f"not a dav://user@host URL: {url!r}")
    user = unquote(parts.username)
    path = parts.path if parts.path not in ("", "/") else f"/{parts.username}/"
    port = f":{parts.port}" if parts.port else ""
    return f"{scheme}://{parts.hostname}{port}{path.rstrip('/')}/", user


def _propfind(session: requests.Session, url: str) -> list[tuple[str, ET.Element]]:
    response = session.request(
        "PROPFIND",
        url,
        data=PROPFIND_BODY,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code != 207:
        raise requests.HTTPError(f"PROPFIND {url}: {response.status_code} {response.reason}", response=response)
    return parse_multistatus(response.content)
