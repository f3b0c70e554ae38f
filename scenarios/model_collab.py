"""Scenario blocks for collaboration data (contacts, events, tasks, notes) and EWS sources.

Kept apart from ``scenarios.model`` so the mail schema stays small; ``model`` refers to these as
``Scenario.pim_destination`` and ``Expectations.collab``::

    source: {server: simulator, protocol: ews, profile: exchange,
             fixture: {seed: 5, messages: 20, contacts: 6, events: 6, deleted_items_mixed: 2}}
    destination: {server: dovecot}            # the mail
    pim_destination: {server: radicale}       # contacts, calendars, tasks, notes
    migration:
      options: {items: [contacts, calendars], deleted_items: mail-only}
    expect:
      collab:
        kinds: {contact: {source: 8, copied: 6, unmigratable: 2}}
        unmigratable: [{kind: contact, count: 2, folder: Deleted Items, reason: only mail}]
        item_errors: [{error: ErrorMimeContentConversionFailed, count: 5}]
        notes: ["4 task item(s) left out (--items contacts,calendars)"]
        throttle: {waits: 2, at_least: 0.3}
        pim: {identical: true, ignore: [task.priority], folders: {contacts: {contact: 6}}}

Every block forbids unknown keys, like the rest of the scenario schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

KIND_NAMES = ("mail", "contact", "event", "task", "note")
Kind = Literal["mail", "contact", "event", "task", "note"]
PimKind = Literal["contact", "event", "task", "note"]
# Source cases a scenario can require, so it exercises what its name says (see verify_pim.CASES).
Case = Literal["recurring-across-dst", "non-ascii-contact-name", "recurrence-exceptions", "all-day"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PimDestinationSpec(_Block):
    """Where contacts, calendars, tasks and notes go: a real Radicale (CardDAV/CalDAV, a fresh
    user per scenario) or the EWS-like simulator (an empty mailbox of ``profile``)."""

    server: Literal["radicale", "simulator"]
    profile: str = "exchange"  # simulator only


class KindCounts(_Block):
    """The engine report's totals for one item kind over the last run; unset = not checked."""

    source: int | None = Field(None, ge=0)
    copied: int | None = Field(None, ge=0)
    already_present: int | None = Field(None, ge=0)
    failed: int | None = Field(None, ge=0)
    unmigratable: int | None = Field(None, ge=0)


class UnmigratableExpectation(_Block):
    """Items the engine found and said it would not migrate (never dropped silently)."""

    kind: Kind
    count: int = Field(ge=0)
    folder: str | None = None  # source folder path joined with "/"; None = any
    reason: str | None = None  # a phrase the engine's reason must contain


class ItemErrorExpectation(_Block):
    """Per-item failures of the last run; each must name the item by its EWS ItemId."""

    error: str  # the error class, e.g. ErrorMimeContentConversionFailed
    count: int = Field(ge=0)
    folder: str | None = None


class ThrottleExpectation(_Block):
    """The server throttled and the engine obeyed: ``waits`` pauses, none shorter than asked."""

    waits: int | None = Field(None, ge=0)  # exactly this many (None: at least one)
    at_least: float = Field(0.0, ge=0)  # seconds: every wait, e.g. the BackOffMilliseconds sent


class PimCheck(_Block):
    """Destination contacts/events/tasks/notes compared with the source's as parsed objects."""

    # Every source item the options select is at the destination once, field for field.
    identical: bool = True
    # Fields a destination cannot keep: "field" (every kind) or "kind.field"; say why in a comment.
    ignore: list[str] = []
    # Compared as the date of their UTC instant (EWS keeps task dates without a time or zone).
    as_dates: list[str] = []
    # Destination items per collection (or folder) and kind: {contacts: {contact: 6}}.
    folders: dict[str, dict[PimKind, int]] | None = None
    # The source holds at least this many items of each case (the scenario tests what it says).
    cases: dict[Case, int] = {}


class CollabExpectations(_Block):
    kinds: dict[Kind, KindCounts] = {}
    # Each listed, and nothing else reported unmigratable (None: not checked).
    unmigratable: list[UnmigratableExpectation] | None = None
    item_errors: list[ItemErrorExpectation] | None = None  # None: not checked
    skipped_folders: list[str] | None = None  # exactly these source folders skipped (and reported)
    # Phrases the engine's notes (run-wide or per folder) must contain, one note per phrase.
    notes: list[str] = []
    throttle: ThrottleExpectation | None = None
    pim: PimCheck | None = None
