"""The migration report (pydantic, JSON-able): what was copied, found, skipped, dropped, and why."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel

from migrator.errors import ExitCode
from migrator.mitigations import Mitigations


class KindCount(BaseModel):
    """One item kind (mail, contact, event, task, note) in one folder, or over the run."""

    kind: str
    source: int = 0
    copied: int = 0
    already_present: int = 0
    failed: int = 0
    unmigratable: int = 0


class Unmigratable(BaseModel):
    """Items found but not migrated on purpose, by kind (e.g. contacts in Deleted Items for a
    destination that allows only mail there)."""

    kind: str
    count: int
    folder: str
    reason: str


class FolderReport(BaseModel):
    source: str
    destination: str
    source_count: int = 0
    copied: int = 0  # in a dry run: would be copied
    already_present: int = 0  # confirmed by an earlier run, or found at the destination by identity
    collapsed: int = 0  # Gmail: label copies of a message copied from another folder (migrator.gmail)
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    notes: list[str] = []  # renames, special-use mapping, UIDVALIDITY changes, replace deletions
    folder_class: str | None = None  # EWS sources: IPF.Note, IPF.Contact ...
    kinds: list[KindCount] = []  # EWS sources: per item kind


class SkippedItem(BaseModel):
    folder: str
    uid: int | None
    message_id: str | None = None
    reason: str  # stable code: "too-large", "refused", "vanished", "folder-not-created"
    detail: str = ""


class DroppedFlags(BaseModel):
    folder: str
    uid: int
    flags: list[str]


class RepairedItem(BaseModel):
    """A message the engine changed on purpose, to get it accepted (never silently)."""

    folder: str
    uid: int
    message_id: str | None = None
    repair: str  # stable code: "rewrapped" (long lines re-encoded quoted-printable), "crlf" (bare LF)
    detail: str = ""


class DateFallback(BaseModel):
    folder: str
    uid: int
    used: str  # "received" | "date" | "none" (the server then stamps it)
    detail: str = ""


class ItemError(BaseModel):
    folder: str
    uid: int | None
    item_id: str | None = None  # EWS ItemId (sources without UIDs)
    error: str  # error class name
    message: str


class SkippedFolder(BaseModel):
    folder: str
    reason: str


class ConnectionReport(BaseModel):
    role: str
    endpoint: str
    tls: str  # "implicit" | "starttls" | "none"
    capabilities: list[str]
    namespace_prefix: str
    delimiter: str | None
    folders: int
    inbox_messages: int
    seconds: float


class Pop3Report(BaseModel):
    """What a POP3 source run did beyond the per-folder rows, and what POP3 cannot carry."""

    delivery: str  # "imap" (APPEND into a folder) | "lmtp" | "smtp" (delivered like fetchmail)
    folder: str  # destination folder (imap), or the recipient (lmtp/smtp)
    login: str = ""  # "user" | "apop" | "plain" | "xoauth2"
    tls: str = "none"  # "implicit" | "starttls" | "none"
    uidl: str = "unique"  # "unique" | "missing" | "duplicated" (identity then rests on the content hash)
    top: bool = True  # False: every message's headers came from a full RETR
    capabilities_before: list[str] = []
    capabilities_after: list[str] = []
    reconnects: int = 0
    destination_reconnects: int = 0  # new delivery connections after a 421 (the server closed the channel)
    deferred: int = 0  # temporarily refused (SMTP 4xx, throttling) and still refused at the end: kept on the source
    possible_duplicates: int = 0  # LMTP/SMTP deliveries an earlier run died during: delivered again, maybe twice
    deleted: int = 0  # removed from the source (only after the destination confirmed them)
    kept: int = 0  # left on the server
    delete_failed: str | None = None  # why deletion did not happen (QUIT refused, connection lost ...)
    uidl_map: str | None = None  # path of the source-UIDL map written
    losses: list[str] = []  # what this path cannot carry (folders, flags, INTERNALDATE ...)
    left_behind_messages: int | None = None  # in other folders of the source mailbox, when known
    left_behind_folders: int | None = None


class RunEvent(BaseModel):
    """A timestamped moment of a run (``migrator.timeline``): a backoff wait, a BYE, a reconnect."""

    kind: str  # "backoff" | "bye" | "reconnect"
    at: float  # seconds since the run started (monotonic clock)
    seconds: float = 0.0  # backoff: how long it waited
    role: str = ""  # "source" | "destination"
    where: str = ""  # endpoint and folder, as in error messages
    cause: str = ""  # the reply that asked for the wait, the BYE text, why the connection was lost
    attempt: int = 0  # backoff: retry number of that command (from 1); reconnect: per role (from 1)
    outcome: str = ""  # reconnect: "resumed" | "failed"


class MigrationReport(BaseModel):
    source: str
    destination: str
    started: datetime
    seconds: float = 0.0
    mode: str = "merge"
    dry_run: bool = False
    folders: list[FolderReport] = []
    skipped_folders: list[SkippedFolder] = []
    skipped: list[SkippedItem] = []
    dropped_flags: list[DroppedFlags] = []
    date_fallbacks: list[DateFallback] = []
    errors: list[ItemError] = []
    copied: int = 0
    already_present: int = 0
    skipped_count: int = 0
    failed: int = 0
    bytes: int = 0
    notes: list[str] = []  # run-wide remarks (fewer connections than asked, read-ahead off ...)
    aborted: str | None = None  # why the run stopped early; the state is saved, a re-run resumes
    # A reconnect's login was refused mid-run (an expired OAuth token): the run stopped (exit 4).
    login_refused: str | None = None
    pop3: Pop3Report | None = None  # set when the source was POP3
    pim_destination: str | None = None  # CardDAV/CalDAV (or EWS) destination of non-mail items
    items: list[str] = []  # kinds asked for ("mail", "contacts", "calendars", "tasks", "notes")
    not_offered: list[str] = []  # kinds asked for that the source cannot offer (POP3/IMAP: all but mail)
    kinds: list[KindCount] = []  # per-kind totals over all folders
    unmigratable: list[Unmigratable] = []
    gmail_labels: str | None = None  # "once" | "per-label" when the source was Gmail (X-GM-EXT-1)
    collapsed: int = 0  # Gmail label copies not copied again, over all folders
    mitigations_off: list[str] = []  # MigrationOptions.disable: what this run did NOT protect against
    repaired: list[RepairedItem] = []  # messages changed to be accepted (MigrationOptions.long_lines: rewrap)
    flags_restored: int = 0  # \\Flagged set again by STORE after APPEND (flag-after-append)
    mdn_neutralised: int = 0  # read messages asking for a receipt given $MDNSent (mdn-neutralise)
    tls_unverified: list[str] = []  # "source imaps://…": servers whose certificate was not verified (verify=no)
    events: list[RunEvent] = []  # backoff waits, BYEs and reconnects with their instants (migrator.timeline)

    @classmethod
    def begin(cls, source, dest, options, **fields) -> MigrationReport:
        """The report every flow (IMAP, POP3, EWS) starts from: who to whom (no secrets), when, and
        the options a reader must know to trust it: mode, dry run, the mitigations switched off.
        ``source``/``dest`` are Endpoints (``dest`` None: no mail destination); ``options`` a
        MigrationOptions."""
        return cls(
            source=source.url.display(),
            destination=dest.url.display() if dest is not None else "",
            started=datetime.now(timezone.utc),
            mode=options.mode,
            dry_run=options.dry_run,
            mitigations_off=sorted(Mitigations(options.disable).disabled),
            **fields,
        )

    @property
    def exit_code(self) -> int:
        if self.login_refused:
            return int(ExitCode.AUTHENTICATION)
        if self.aborted:
            return int(ExitCode.ABORTED)
        if self.skipped_count or self.failed or self.unmigratable:
            return int(ExitCode.ITEMS_SKIPPED)
        return int(ExitCode.OK)

    def total(self) -> None:
        """Recompute the run totals from the per-folder rows."""
        self.copied = sum(f.copied for f in self.folders)
        self.already_present = sum(f.already_present for f in self.folders)
        self.collapsed = sum(f.collapsed for f in self.folders)
        self.bytes = sum(f.bytes for f in self.folders)
        self.skipped_count = len(self.skipped)
        self.failed = len(self.errors)
