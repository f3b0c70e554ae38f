"""Timestamp resolution: which instant a copied message should carry as its INTERNALDATE.

Order: the source's INTERNALDATE; else the newest trustworthy ``Received:`` (the date after the
last ";", not in the future, not before 1990); else ``Date:``; never the migration time. Pure:
header bytes and values in, a ``ResolvedDate`` out, saying which source was used and why the
better ones were rejected, so the engine can report every fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz

_FIELDS_PATTERNS: dict[tuple[str, ...], re.Pattern[bytes]] = {}
_DAY_MONTH_YEAR = re.compile(r"\b\d{1,2}\s+[A-Za-z]{3,}\s+(\d{2,4})\b")
_ZONE = re.compile(r"(?:[+-]\d{4}|\b(?:UT|UTC|GMT|Z|[ECMP][SD]T)\b)\s*(?:\(.*\))?\s*$", re.IGNORECASE)
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
# Clocks drift; a Received stamp a little ahead of ours is still plausible.
FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class ResolvedDate:
    instant: datetime | None  # aware; None only when nothing usable was found
    used: str  # "internaldate" | "received" | "date" | "none"
    detail: str = ""  # why the better sources were not used


def header_block(raw: bytes) -> bytes:
    """The header section of a message (up to the first empty line, bare LF tolerated)."""
    crlf = raw.find(b"\r\n\r\n")
    # A bare-LF blank line counts only before the CRLF one: not a second scan of a 50 MB body.
    lf = raw.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else len(raw))
    ends = [i for i in (crlf + 2 if crlf >= 0 else -1, lf + 1 if lf >= 0 else -1) if i >= 0]
    return raw[: min(ends)] if ends else raw


def parse_headers(headers: bytes, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Lower-cased field name → unfolded values in message order (latin-1: lossless).

    One regex pass that only looks at the wanted fields (the header blocks of real mail are long
    Received chains; a line-by-line Python loop was the engine's hottest spot).
    """
    pattern = _FIELDS_PATTERNS.get(names)
    if pattern is None:
        alternatives = b"|".join(re.escape(n.encode("ascii")) for n in names)
        pattern = re.compile(rb"^(" + alternatives + rb")[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
        _FIELDS_PATTERNS[names] = pattern
    out: dict[str, list[str]] = {}
    for m in pattern.finditer(headers):
        # Unfold: a line break before white space is just white space (RFC 5322 §2.2.3).
        value = m.group(2).replace(b"\r\n", b" ").replace(b"\n", b" ").strip()
        out.setdefault(m.group(1).decode("ascii").lower(), []).append(value.decode("latin-1"))
    return out


def header_values(headers: bytes, name: str) -> list[str]:
    """Unfolded values of every ``name:`` field, in message order."""
    return parse_headers(headers, (name,)).get(name.lower(), [])


def parse_rfc5322_date(text: str) -> tuple[datetime | None, str]:
    """An aware datetime from a Date/Received date, or None and why not.

    Two-digit years follow RFC 5322 §4.3 (00–49 → 20xx, 50–99 → 19xx); a missing zone is read
    as UTC (RFC 5322 "-0000": no zone information) and noted.
    """
    text = text.strip()
    if not text:
        return None, "empty"
    parsed = parsedate_tz(text)
    if parsed is None:
        return None, f"unparseable {text[:60]!r}"
    notes = []
    # parsedate_tz already widens two-digit years (RFC 5322 §4.3); we only note it.
    m = _DAY_MONTH_YEAR.search(text)
    if m and len(m.group(1)) == 2:
        notes.append("two-digit year")
    # parsedate_tz gives offset 0 for a missing or unknown zone too: look for one ourselves.
    if not _ZONE.search(text):
        notes.append("no zone, read as UTC")
    offset = parsed[9] or 0
    try:
        naive = datetime(*parsed[:6])
        zone = timezone(timedelta(seconds=offset))
    except (ValueError, OverflowError):
        # day 4294967295 overflows a C int; a zone like +9999 is beyond datetime's ±24 h
        return None, f"impossible date {text[:60]!r}"
    return naive.replace(tzinfo=zone), ", ".join(notes)


def _trustworthy(instant: datetime, now: datetime) -> str:
    if instant > now + FUTURE_SLACK:
        return "in the future"
    if instant < EARLIEST:
        return "before 1990"
    return ""


def newest_received(values: list[str], now: datetime) -> tuple[datetime | None, str]:
    """The newest plausible stamp among ``Received:`` values and a note on those rejected."""
    best: datetime | None = None
    rejected: list[str] = []
    for value in values:
        _, sep, date_text = value.rpartition(";")
        if not sep:
            rejected.append("Received without ';'")
            continue
        instant, why = parse_rfc5322_date(date_text)
        if instant is None:
            rejected.append(f"Received date {why}")
            continue
        bad = _trustworthy(instant, now)
        if bad:
            rejected.append(f"Received date {bad}")
            continue
        if best is None or instant > best:
            best = instant
    return best, "; ".join(rejected)


def resolve(internaldate: datetime | None, headers: bytes, *, now: datetime | None = None) -> ResolvedDate:
    """The instant to give the copy. ``headers`` may be the whole message (only headers are read)."""
    now = now or datetime.now(timezone.utc)
    reasons: list[str] = []
    if internaldate is not None and internaldate.tzinfo is not None:
        bad = _trustworthy(internaldate, now)
        if not bad:
            return ResolvedDate(internaldate, "internaldate")
        reasons.append(f"INTERNALDATE {bad}")
    else:
        reasons.append("no INTERNALDATE")
    fields = parse_headers(header_block(headers), ("Received", "Date"))
    received, rejected = newest_received(fields.get("received", []), now)
    if rejected:
        reasons.append(rejected)
    if received is not None:
        return ResolvedDate(received, "received", "; ".join(reasons))
    reasons.append("no usable Received")
    dates = fields.get("date", [])
    if not dates:
        reasons.append("no Date header")
        return ResolvedDate(None, "none", "; ".join(reasons))
    instant, note = parse_rfc5322_date(dates[0])
    if instant is None:
        reasons.append(f"Date {note}")
        return ResolvedDate(None, "none", "; ".join(reasons))
    bad = _trustworthy(instant, now)
    if bad:
        reasons.append(f"Date {bad}")
        return ResolvedDate(None, "none", "; ".join(reasons))
    if note:
        reasons.append(f"Date {note}")
    return ResolvedDate(instant, "date", "; ".join(reasons))
