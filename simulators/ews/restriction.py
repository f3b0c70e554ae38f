"""FindItem ``m:Restriction`` for mail: a predicate compiled from the restriction's XML.

Fields: item:DateTimeReceived, item:Subject, item:Size, message:IsRead; operators IsEqualTo,
IsNotEqualTo, IsGreaterThan(OrEqualTo), IsLessThan(OrEqualTo), Contains (Substring / Prefixed /
FullString, IgnoreCase or Exact), Exists, And, Or, Not — what incremental migrators send
(``filter(datetime_received__gt=...)``, ``subject__contains``). Anything else raises
UnsupportedRestriction naming it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timezone

from lxml import etree

from simulators.ews.items import subject_of
from simulators.ews.soap import t, xs_bool
from simulators.store import MailItem

Predicate = Callable[[MailItem], bool]


class UnsupportedRestriction(ValueError):
    """A restriction element or field the simulator does not evaluate."""


# FieldURI → (value of an item, parser of a Constant's Value)
FIELDS: dict[str, tuple[Callable[[MailItem], object], Callable[[str], object]]] = {
    "item:DateTimeReceived": (lambda i: i.internaldate,
                              lambda v: _aware(datetime.fromisoformat(v.replace("Z", "+00:00")))),
    "item:Subject": (subject_of, str),
    "item:Size": (lambda i: i.size, int),
    "message:IsRead": (lambda i: "\\Seen" in i.flags, xs_bool),
}
_COMPARE = {"IsEqualTo": operator.eq, "IsNotEqualTo": operator.ne, "IsGreaterThan": operator.gt,
            "IsGreaterThanOrEqualTo": operator.ge, "IsLessThan": operator.lt, "IsLessThanOrEqualTo": operator.le}


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


MAX_DEPTH = 50  # nested And/Or/Not: deeper is refused before Python's recursion limit is


def compile_restriction(el: etree._Element, depth: int = 0) -> Predicate:
    """``el`` is m:Restriction (one child) or any search expression inside it."""
    if depth > MAX_DEPTH:
        raise UnsupportedRestriction(f"search expressions nested deeper than {MAX_DEPTH}")
    name = etree.QName(el).localname
    kids = [c for c in el if isinstance(c.tag, str)]
    if name in ("Restriction", "Not") and len(kids) != 1:
        raise UnsupportedRestriction(f"a {name} holds exactly one search expression")
    if name == "Restriction":
        return compile_restriction(kids[0], depth + 1)
    if name in ("And", "Or"):
        parts = [compile_restriction(k, depth + 1) for k in kids]
        combine = all if name == "And" else any
        return lambda item: combine(p(item) for p in parts)
    if name == "Not":
        inner = compile_restriction(kids[0], depth + 1)
        return lambda item: not inner(item)
    get, parse = _field(el)
    if name == "Exists":
        return lambda item: get(item) not in (None, "")
    if name in _COMPARE:
        constant = el.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
        if constant is None:
            raise UnsupportedRestriction(f"{name} without a Constant (field-to-field comparison)")
        value, compare = _constant(parse, constant), _COMPARE[name]
        return lambda item: compare(get(item), value)
    if name == "Contains":
        constant = el.find(t("Constant"))
        if constant is None:
            raise UnsupportedRestriction("Contains without a Constant")
        wanted = constant.get("Value", "")
        mode = el.get("ContainmentMode", "Substring")
        fold = el.get("ContainmentComparison", "Exact") != "Exact"
        norm = (lambda s: s.casefold()) if fold else (lambda s: s)
        test = {"Substring": lambda have: norm(wanted) in norm(have),
                "Prefixed": lambda have: norm(have).startswith(norm(wanted)),
                "FullString": lambda have: norm(have) == norm(wanted)}.get(mode)
        if test is None:
            raise UnsupportedRestriction(f"Contains with ContainmentMode {mode}")
        return lambda item: test(str(get(item)))
    raise UnsupportedRestriction(f"search expression {name}")


def _constant(parse: Callable[[str], object], constant: etree._Element) -> object:
    value = constant.get("Value", "")
    try:
        return parse(value)
    except (ValueError, OverflowError):  # int() past 4300 digits, a date past the calendar
        raise UnsupportedRestriction(f"Constant value {value[:40]!r} is not valid for the field") from None


def _field(el: etree._Element):
    uri = el.find(t("FieldURI"))
    name = uri.get("FieldURI") if uri is not None else None
    if name not in FIELDS:
        raise UnsupportedRestriction(f"restriction on field {name!r} (supported: {', '.join(FIELDS)})")
    return FIELDS[name]
