"""iCalendar RRULE ↔ EWS ``t:Recurrence`` (pattern + range).

EWS knows six patterns (Daily, Weekly, AbsoluteMonthly, RelativeMonthly, AbsoluteYearly,
RelativeYearly) and three ranges (NoEnd, EndDate, Numbered); RRULEs outside them (BYHOUR,
several BYMONTHDAY ...) raise UnsupportedRecurrence naming the rule.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from lxml import etree

from simulators.ews.soap import sub, t, xs_int

DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday",
        "SU": "Sunday"}
DAY_CODES = {v: k for k, v in DAYS.items()}
INDEX = {1: "First", 2: "Second", 3: "Third", 4: "Fourth", -1: "Last"}
INDEX_NUM = {v: k for k, v in INDEX.items()}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


class UnsupportedRecurrence(ValueError):
    """An RRULE (or EWS pattern) with no counterpart on the other side."""


def _split_byday(value: str) -> tuple[int | None, str]:
    num, code = value[:-2], value[-2:]
    return (int(num) if num not in ("", "+") else None), code


def to_ews(rrule: dict, start: date) -> etree._Element:
    """``rrule`` as icalendar's vRecur (lists per key); ``start`` the series' first day."""
    freq = rrule["FREQ"][0]
    interval = str(rrule.get("INTERVAL", [1])[0])
    byday = [str(d) for d in rrule.get("BYDAY", [])]
    setpos = rrule.get("BYSETPOS", [None])[0]
    rec = etree.Element(t("Recurrence"))
    weekday = list(DAYS)[start.weekday()]
    if freq == "DAILY" and not byday:
        p = sub(rec, t("DailyRecurrence"))
        sub(p, t("Interval"), interval)
    elif freq == "WEEKLY" or (freq == "DAILY" and byday):
        p = sub(rec, t("WeeklyRecurrence"))
        sub(p, t("Interval"), interval)
        codes = [_split_byday(d)[1] for d in byday] or [weekday]
        sub(p, t("DaysOfWeek"), " ".join(DAYS[c] for c in codes))
        sub(p, t("FirstDayOfWeek"), DAYS[str(rrule.get("WKST", ["MO"])[0])])
    elif freq in ("MONTHLY", "YEARLY"):
        yearly = freq == "YEARLY"
        if byday:
            if len(byday) != 1 and setpos is None:
                raise UnsupportedRecurrence(f"RRULE {rrule.to_ical().decode()}: several BYDAY in a relative pattern")
            num, _ = _split_byday(byday[0])
            num = int(setpos) if setpos is not None else num
            if num not in INDEX:
                raise UnsupportedRecurrence(f"RRULE {rrule.to_ical().decode()}: week index {num}")
            p = sub(rec, t("RelativeYearlyRecurrence" if yearly else "RelativeMonthlyRecurrence"))
            if not yearly:
                sub(p, t("Interval"), interval)
            sub(p, t("DaysOfWeek"), " ".join(DAYS[_split_byday(d)[1]] for d in byday))
            sub(p, t("DayOfWeekIndex"), INDEX[num])
        else:
            p = sub(rec, t("AbsoluteYearlyRecurrence" if yearly else "AbsoluteMonthlyRecurrence"))
            if not yearly:
                sub(p, t("Interval"), interval)
            sub(p, t("DayOfMonth"), str(rrule.get("BYMONTHDAY", [start.day])[0]))
        if yearly:
            sub(p, t("Month"), MONTHS[int(rrule.get("BYMONTH", [start.month])[0]) - 1])
    else:
        raise UnsupportedRecurrence(f"RRULE FREQ={freq} has no EWS pattern")
    if "COUNT" in rrule:
        r = sub(rec, t("NumberedRecurrence"))
        sub(r, t("StartDate"), start.isoformat())
        sub(r, t("NumberOfOccurrences"), str(rrule["COUNT"][0]))
    elif "UNTIL" in rrule:
        r = sub(rec, t("EndDateRecurrence"))
        sub(r, t("StartDate"), start.isoformat())
        until = rrule["UNTIL"][0]
        sub(r, t("EndDate"), (until.date() if hasattr(until, "date") else until).isoformat())
    else:
        r = sub(rec, t("NoEndRecurrence"))
        sub(r, t("StartDate"), start.isoformat())
    return rec


def from_ews(rec: etree._Element) -> tuple[dict, date | None]:
    """``t:Recurrence`` → (RRULE parts for icalendar.vRecur, the range's StartDate)."""
    rule: dict = {}
    pattern = rec[0]
    name = etree.QName(pattern).localname
    get = lambda tag: pattern.findtext(t(tag))  # noqa: E731
    freq = {"DailyRecurrence": "DAILY", "WeeklyRecurrence": "WEEKLY", "AbsoluteMonthlyRecurrence": "MONTHLY",
            "RelativeMonthlyRecurrence": "MONTHLY", "AbsoluteYearlyRecurrence": "YEARLY",
            "RelativeYearlyRecurrence": "YEARLY"}.get(name)
    if freq is None:
        raise UnsupportedRecurrence(f"EWS pattern {name} is not supported")
    rule["FREQ"] = freq
    if get("Interval") and get("Interval") != "1":
        rule["INTERVAL"] = xs_int(get("Interval"), "Interval")
    days = [DAY_CODES[d] for d in (get("DaysOfWeek") or "").split() if d in DAY_CODES]
    if name == "WeeklyRecurrence":
        rule["BYDAY"] = days
    elif name.startswith("Relative"):
        rule["BYDAY"] = [f"{INDEX_NUM[get('DayOfWeekIndex')]}{d}" for d in days]
    else:
        if get("DayOfMonth"):
            rule["BYMONTHDAY"] = xs_int(get("DayOfMonth"), "DayOfMonth")
    if name.endswith("YearlyRecurrence") and get("Month"):
        rule["BYMONTH"] = MONTHS.index(get("Month")) + 1
    rng = rec[1] if len(rec) > 1 else None
    start = None
    if rng is not None:
        start_text = rng.findtext(t("StartDate"))
        start = date.fromisoformat(start_text[:10]) if start_text else None
        if rng.findtext(t("NumberOfOccurrences")):
            rule["COUNT"] = xs_int(rng.findtext(t("NumberOfOccurrences")), "NumberOfOccurrences")
        if rng.findtext(t("EndDate")):
            rule["UNTIL"] = date.fromisoformat(rng.findtext(t("EndDate"))[:10])
    return rule, start


def plain_rule(rule: dict, dtstart: date | datetime) -> dict:
    """``rule`` (from_ews) without what only restates DTSTART — a weekly BYDAY of its weekday, a
    yearly BYMONTH of its month — and with UNTIL as the last start's instant for timed series
    (EWS's EndDate is a day; RFC 5545 wants UNTIL of DTSTART's type)."""
    rule = dict(rule)
    if rule.get("FREQ") == "WEEKLY" and rule.get("BYDAY") == [list(DAYS)[dtstart.weekday()]]:
        del rule["BYDAY"]
    if rule.get("FREQ") == "YEARLY" and rule.get("BYMONTH") == dtstart.month and "BYDAY" not in rule:
        del rule["BYMONTH"]
        if rule.get("BYMONTHDAY") == dtstart.day:
            del rule["BYMONTHDAY"]
    until = rule.get("UNTIL")
    if isinstance(dtstart, datetime) and isinstance(until, date) and not isinstance(until, datetime):
        last = datetime.combine(until, dtstart.timetz()).replace(tzinfo=dtstart.tzinfo or timezone.utc)
        rule["UNTIL"] = last.astimezone(timezone.utc)
    return rule
