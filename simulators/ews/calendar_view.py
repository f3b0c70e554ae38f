"""FindItem ``m:CalendarView``: a series expanded into its instances within a time window.

Masters are expanded with dateutil's RRULE engine in the event's own zone (so 09:00 stays 09:00
across DST), EXDATEs are left out and RECURRENCE-ID overrides replace the instance they name —
also when the override moved the instance into or out of the window, as in Exchange.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

import icalendar
from dateutil.rrule import rrulestr

from simulators.ews import pim
from simulators.store import PimItem


@dataclass(frozen=True)
class Instance:
    key: str | None  # recurrence-id key (None for a single event)
    kind: str  # Single | Occurrence | Exception
    start: datetime  # UTC


def instances(item: PimItem, window_start: datetime, window_end: datetime) -> list[Instance]:
    master, overrides = pim.split_event(item)
    start, end = pim.event_times(master, item)
    if "RRULE" not in master:
        return [Instance(None, "Single", start)] if start < window_end and end > window_start else []
    duration = end - start
    out = []
    for key, ov in overrides.items():
        o_start, o_end = pim.event_times(ov, item)
        if o_start < window_end and o_end > window_start:
            out.append(Instance(key, "Exception", o_start))
    skip = set(overrides) | {pim.instant_key(d.dt) for ex in pim.as_list(master.get("EXDATE")) for d in ex.dts}
    for when in _expand(master, window_start - duration, window_end):
        key = pim.instant_key(when)
        begin = pim.as_utc(when)
        if key not in skip and begin < window_end and begin + duration > window_start:
            out.append(Instance(key, "Occurrence", begin))
    return sorted(out, key=lambda i: i.start)


def is_instance(item: PimItem, key: str) -> bool:
    """Whether ``key`` names an instance of the series (for GetItem on an occurrence id)."""
    master, overrides = pim.split_event(item)
    if key in overrides:
        return True
    if "RRULE" not in master:
        return False
    when = pim.key_instant(key)
    return any(pim.instant_key(w) == key for w in _expand(master, when - timedelta(days=1), when + timedelta(days=1)))


def _expand(master, lo: datetime, hi: datetime) -> list:
    series, all_day = _series(master)
    if all_day:
        return [d.date() for d in series.between(lo.replace(tzinfo=None), hi.replace(tzinfo=None), inc=True)]
    return series.between(lo, hi, inc=True)


def nth_start(item: PimItem, index: int):
    """The original start (DTSTART's type and zone) of the series' ``index``-th occurrence, 1-based,
    counting every start the RRULE gives — deleted and moved ones keep their number, as EWS's
    InstanceIndex does. None when the series has fewer occurrences (or is no series)."""
    master, _ = pim.split_event(item)
    if "RRULE" not in master or index < 1:
        return None
    series, all_day = _series(master)
    for n, when in enumerate(series, 1):
        if n == index:
            return when.date() if all_day else when
    return None


def _series(master):
    """dateutil's rule for the master, expanded in the series' own zone; (rule, all-day)."""
    dt = master.decoded("DTSTART")
    all_day = not isinstance(dt, datetime)
    rule = dict(master["RRULE"])
    if "UNTIL" in rule:
        until = rule["UNTIL"][0]
        if all_day:
            until = datetime.combine(until if not isinstance(until, datetime) else until.date(), time(23, 59, 59))
        elif not isinstance(until, datetime):
            until = datetime.combine(until, time(23, 59, 59), tzinfo=timezone.utc)
        elif until.tzinfo is None:
            until = until.replace(tzinfo=dt.tzinfo or timezone.utc).astimezone(timezone.utc)
        rule["UNTIL"] = [until]
    text = icalendar.vRecur(rule).to_ical().decode("ascii")
    if all_day:
        return rrulestr(text, dtstart=datetime.combine(dt, time())), True
    return rrulestr(text, dtstart=dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)), False


def parse_window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    return pim.parse_dt(start, "CalendarView StartDate"), pim.parse_dt(end, "CalendarView EndDate")

