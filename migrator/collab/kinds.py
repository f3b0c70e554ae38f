"""Item kinds a migration may be asked for (``--items``) and which a source can offer. Pure."""

from __future__ import annotations

# --items names → the item kinds of reports and sinks
ITEM_KINDS = {"mail": "mail", "contacts": "contact", "calendars": "event", "tasks": "task", "notes": "note"}
MAIL_ONLY = frozenset({"mail"})  # what IMAP and POP3 sources offer


def not_offered(items: list[str], offered: frozenset[str] | set[str]) -> list[str]:
    """The kinds asked for that a source cannot offer."""
    return [i for i in items if ITEM_KINDS.get(i, i) not in offered]
