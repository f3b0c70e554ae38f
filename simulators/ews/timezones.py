"""IANA ↔ Windows time zone ids (EWS names zones the Windows way, iCalendar the IANA way).

The table is CLDR's windowsZones as shipped by icalendar; zones it does not list are shown
as "UTC" (documented gap: rare aliases such as Europe/Amsterdam are not mapped).
"""

from __future__ import annotations

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

IANA_TO_WINDOWS = {iana: win for win, iana in WINDOWS_TO_OLSON.items()}
IANA_TO_WINDOWS.setdefault("UTC", "UTC")
IANA_TO_WINDOWS.setdefault("Etc/UTC", "UTC")


def windows_id(iana: str | None) -> str:
    return IANA_TO_WINDOWS.get(iana or "UTC", "UTC")


def iana_id(windows: str | None) -> str:
    if not windows or windows == "UTC":
        return "UTC"
    return WINDOWS_TO_OLSON.get(windows, "UTC")
