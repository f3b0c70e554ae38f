"""migrate(): plan folders, match what the destination already has, copy the rest, report.

Flow: a control connection pair lists both sides and maps folders (``folders.plan_folders``).
Each folder is then analysed by a worker (UIDVALIDITY, sizes, checkpoint, replace deletions,
merge matching by identity, APPENDLIMIT) and copied in UID-ordered batches: a fetch-ahead thread
reads batch n+1 (one UID FETCH) while the worker writes batch n (one MULTIAPPEND or pipelined
APPEND round trip, ``sinks.imap``) and checkpoints what the destination confirmed. Folders run in
parallel (``options.connections`` workers); one folder's batches run in order, so destination UIDs
follow source order. Memory: batches are bounded by count and bytes, and all workers share one
byte budget for fetched mail (``migrator.budget``): read-ahead happens only when it fits.

Failures are isolated per item: a refused APPEND or FETCH is reported with its folder and UID and
the run continues. A lost connection is retried once on a fresh connection (after re-matching the
batch by identity, so an APPEND confirmed just before the loss is not copied twice); a second
loss, an over-quota destination, a progress-sink error or Ctrl-C stops the run: the report says
``aborted`` (exit code 5) and a re-run resumes from the checkpoint. A fresh connection whose
login is refused (an expired OAuth token: the secret is re-read at every connect) stops the run
too, with exit code 4 (``login_refused``): no retry loop. The provider's bandwidth cap (a re-login
refused after `* BYE Session expired`: ``CapReached``) and the run's own ``byte_budget_mb`` stop it
as aborted (exit 5, resumable). Source commands wait as long as their folder's size asks (``timeouts``).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from migrator import dates
from migrator.backoff import retry_delay
from migrator.budget import ByteBudget, size_batches
from migrator.error_budget import DEFAULT_MAX_ITEM_ERRORS, ErrorBudget
from migrator.collab.kinds import MAIL_ONLY, not_offered
from migrator.content import describe, refused_content, repaired
from migrator.errors import (
    AuthenticationFailed,
    CapReached,
    ConnectionFailed,
    MigratorError,
    ProtocolError,
    TooManyConnections,
    UsageError,
)
from migrator.folders import FolderPlan, ListEntry, Namespace, alternative_names, destination_name, plan_folders
from migrator.gmail import ARCHIVE_NAME, GmailLabels, LabelFolder, plan_labels
from migrator.identity import Identity, IdentityIndex, identity_of, message_id_of
from migrator.longlines import EXCHANGE_LINE_LIMIT, longest_line, rewrap
from migrator.mitigations import Mitigations, check_names
from migrator.pool import ConnectionPool, run_workers
from migrator.progress import NullProgress, ProgressSink
from migrator.receipts import MDN_SENT, asks_receipt
from migrator.report import (
    ConnectionReport,
    DateFallback,
    DroppedFlags,
    FolderReport,
    ItemError,
    MigrationReport,
    RepairedItem,
    SkippedFolder,
    SkippedItem,
)
from migrator.sinks.imap import AppendInterrupted, AppendItem, AppendResult, ImapSink, filter_flags, refusal_reason
from migrator.sources.imap import ImapSource, SourceMessage
from migrator.state import Confirmed, State, default_state_path
from migrator.timeline import FAILED, RESUMED, Timeline
from migrator.timeouts import DEFAULT_BASE, DEFAULT_PER_1000, FolderTimeouts
from migrator.urls import Endpoint

# CREATE refusals that are about the name itself, so another name will do.
# An APPEND refused for its flags (imapsync FAQ.Flags: "NO APPEND Invalid flag list").
_FLAG_REFUSAL = re.compile(r"invalid flag", re.IGNORECASE)
_NAME_REFUSED = re.compile(r"reserved|\[CANNOT\]|whitespace|forbidden|invalid (mailbox|folder) name", re.IGNORECASE)
# Fetched bytes held at once by all workers together: 4 workers x (a batch + one read ahead) of
# budget.MAX_BATCH_BYTES; a larger message waits until it can be held alone (migrator.budget).
MAX_HELD_BYTES = 64 * 1024 * 1024
NONMAIL_PROBE = 3  # items fetched to tell a non-mail folder (exchange-nonmail-folders-over-imap)
NONMAIL_PROBE_BYTES = 1024 * 1024  # ... of at most this size (else only the smallest)
GMAIL_FOLDER_CAP = 1000  # gmail-1000-per-folder: Gmail's "limit IMAP folders to 1000 messages" setting

__all__ = [
    "MigrationOptions",
    "MigrationReport",
    "ConnectionReport",
    "FolderReport",
    "migrate",
    "test_connection",
]


class MigrationOptions(BaseModel):
    mode: Literal["merge", "replace"] = "merge"  # replace = delete existing destination items first
    target_root: list[str] = []  # transfer as subfolders of this folder ([] = root level)
    include: list[str] = []  # fnmatch globs on source folder paths joined with "/"
    exclude: list[str] = []
    map_special_use: bool = True  # source \Sent → destination \Sent, whatever the names
    dry_run: bool = False
    connections: int = 4  # parallel folder workers
    batch_size: int = 200  # messages per FETCH / pipelined APPEND batch
    state_path: Path | None = None  # None = per (source, dest) under ~/.local/state/quirkmail
    # POP3 sources (migrator.pop3_flow): the inbox goes into one folder, or is delivered (lmtp://, smtp://)
    pop3_folder: str = "INBOX"  # destination folder path, "/"-separated
    pop3_delete: bool = False  # delete from the source what the destination confirmed (default: leave on server)
    uidl_map_path: Path | None = None  # write the source-UIDL map here (JSON, or CSV for *.csv)
    source_total_messages: int | None = None  # the whole source mailbox, when known: the report says
    source_total_folders: int | None = None  # how much a POP3 (inbox-only) run leaves behind
    # Collaboration data (EWS sources, migrator.collab.flow); [] = every kind the source offers
    items: list[Literal["mail", "contacts", "calendars", "tasks", "notes"]] = []
    deleted_items: Literal["by-kind", "mail-only"] = "by-kind"  # mail-only: the destination's Trash takes mail only
    # Gmail sources (X-GM-EXT-1): each X-GM-MSGID copied once, or once per label (migrator.gmail)
    gmail_labels: GmailLabels = "once"
    # Mitigations switched off by name (migrator.mitigations.MITIGATIONS); default: all on
    disable: list[str] = []
    # Limits (gmail-bandwidth-cap, slow-large-folder): stop the run cleanly after this many MB
    # downloaded from the source (None: no budget; Gmail allows 2500 MB a day); seconds to wait
    # for a reply, plus per 1000 messages of the folder a command is about (migrator.timeouts)
    byte_budget_mb: float | None = Field(None, gt=0)
    read_timeout: float = Field(DEFAULT_BASE, gt=0)
    timeout_per_1000: float = Field(DEFAULT_PER_1000, ge=0)
    # Extensions never used although advertised, on both sides (broken-move: ["MOVE"]). The engine
    # itself never MOVEs (it copies with APPEND and leaves the source as it was).
    ignore_capabilities: list[str] = []
    # exchange-append-limits: a message with a longer line is skipped ("line-too-long") or, with
    # "rewrap", its over-long body parts re-encoded quoted-printable and reported as repaired.
    # None = Exchange's limit on a Microsoft destination (by its greeting), no limit elsewhere.
    max_line_length: int | None = None
    long_lines: Literal["skip", "rewrap"] = "skip"
    # Stop the run after this many item errors (migrator.error_budget; 0 = never): exit code 5, resumable
    max_item_errors: int = DEFAULT_MAX_ITEM_ERRORS

    @field_validator("disable")
    @classmethod
    def _known_mitigations(cls, value: list[str]) -> list[str]:
        return check_names(value)


def test_connection(endpoint: Endpoint, *, role: str) -> ConnectionReport:
    """Log in, read capabilities and namespace, SELECT INBOX (a login alone proves little:
    authenticated-but-not-connected)."""
    if endpoint.url.scheme in ("ews", "ews+http", "dav", "dav+http"):
        from migrator.collab.probe import test_collab_connection

        return test_collab_connection(endpoint, role=role)
    if endpoint.url.scheme not in ("imap", "imaps"):
        from migrator.pop3_flow import test_pop3_or_delivery

        return test_pop3_or_delivery(endpoint, role=role)
    t0 = time.monotonic()
    conn = ImapSource(endpoint) if role == "source" else ImapSink(endpoint)
    try:
        entries, ns = conn.folders()
        if isinstance(conn, ImapSource):
            conn.examine("INBOX", fresh=True)
            inbox = conn.exists
        else:
            inbox = conn.select("INBOX")[1]
        caps = sorted(c.decode() if isinstance(c, bytes) else c for c in conn.client.capabilities())
    finally:
        conn.close()
    return ConnectionReport(
        role=role,
        endpoint=endpoint.url.display(),
        tls=conn.tls,
        capabilities=caps,
        namespace_prefix=ns.prefix,
        delimiter=ns.delimiter,
        folders=len(entries),
        inbox_messages=inbox,
        seconds=round(time.monotonic() - t0, 3),
    )


@dataclass
class FolderJob:
    plan: FolderPlan
    report: FolderReport
    uidvalidity: int = 0
    permanent: list[str] = field(default_factory=list)
    sizes: dict[int, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)
    collapsed: dict[int, str] = field(default_factory=dict)  # UID → why not copied (Gmail label copies)
    renumbered: str = ""  # "old → new" UIDVALIDITY when the checkpoint's was stale (uidvalidity-change)


class _Unfinished(ConnectionFailed):
    """A batch cut short by a lost connection: the messages still to do and the bytes done."""

    def __init__(self, message: str, left: list[SourceMessage], nbytes: int,
                 flagged: list[tuple[SourceMessage, int | None]] | None = None):
        super().__init__(message)
        self.left, self.nbytes = left, nbytes
        self.flagged = flagged or []  # copied with \\Flagged, not yet STOREd again (flag-after-append)


class _Run:
    """The mutable state of one migrate() call, shared by its workers."""

    def __init__(self, source: Endpoint, dest: Endpoint, options: MigrationOptions, progress: ProgressSink):
        self.source, self.dest, self.options, self.progress = source, dest, options, progress
        self.mitigations = Mitigations(options.disable)
        self.error_budget = ErrorBudget(options.max_item_errors)
        self.report = MigrationReport.begin(source, dest, options)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        # slow-large-folder: a folder's commands wait as long as its size asks; off, every reply
        # gets the same fixed timeout (and a big folder's SELECT times out)
        per_1000 = options.timeout_per_1000 if self.mitigations.on("adaptive-timeout") else 0.0
        self.timeouts = FolderTimeouts(options.read_timeout, per_1000)
        self.timeline = Timeline()  # backoffs, BYEs, reconnects with their instants (report.events)
        self.conns = ConnectionPool(source, dest, timeouts=self.timeouts, timeline=self.timeline)
        self.downloaded = 0  # message bytes fetched from the source in this run (byte_budget_mb)
        self.fetchers: ThreadPoolExecutor | None = None  # fetch-ahead threads, set by migrate()
        self.budget = ByteBudget(MAX_HELD_BYTES)  # fetched bytes held at once, over all workers
        self.state: State | None = None
        self.append_limit: int | None = None
        self.dest_delimiter: str | None = "/"

    # Recording (thread-safe) --------------------------------------------------------------------

    def abort(self, reason: str) -> None:
        with self.lock:
            if not self.report.aborted:
                self.report.aborted = reason
        self.stop.set()

    def where(self, role: str, job: FolderJob) -> str:
        if role == "source":
            return f"source {self.source.url.display()} folder {job.plan.source!r}"
        return f"destination {self.dest.url.display()} folder {job.plan.destination!r}"

    def lost(self, role: str, job: FolderJob) -> None:
        """Drop this thread's ``role`` connection after a loss; a BYE it heard goes on the timeline."""
        bye = self.conns.renew("sink" if role == "destination" else "source")
        if bye is not None:
            self.timeline.bye(bye, where=self.where(role, job))

    def reconnected(self, role: str, job: FolderJob, exc: Exception) -> None:
        """Say in the report that a lost connection was survived, and why it was lost."""
        cause = str(exc).rpartition(": ")[2]
        self.timeline.reconnect(cause, where=self.where(role, job), outcome=RESUMED)
        self.note(f"{role} connection lost in folder {job.plan.source!r} ({cause}): reconnected and resumed")

    def reconnect_failed(self, role: str, job: FolderJob, exc: Exception) -> None:
        self.timeline.reconnect(str(exc).rpartition(": ")[2], where=self.where(role, job), outcome=FAILED)

    def pause(self, why: str) -> None:
        """Stop the run cleanly for a limit that a later run will not meet: state saved, exit 5."""
        self.note(why)
        self.abort(why)

    def capped(self, exc: CapReached) -> None:
        """gmail-bandwidth-cap: after `* BYE Session expired, please login again` the re-login is
        refused (`Account exceeded command or bandwidth limits`): every connection of the account
        is done for the day, so the run stops as resumable instead of failing folder after folder."""
        if not self.mitigations.on("bandwidth-pause"):
            raise exc
        with self.lock:
            spent = self.downloaded if exc.role == "source" else sum(f.bytes for f in self.report.folders)
        self.pause(f"bandwidth cap reached after {spent} bytes ({exc.role}); re-run later resumes")

    def job_failed(self, job: FolderJob, exc: Exception) -> None:
        """A folder job that ended with an error (run_workers' ``fail``); a re-login refused for
        the account's spent budget (CapReached, from any connection) pauses the whole run."""
        if isinstance(exc, CapReached):
            try:
                return self.capped(exc)
            except CapReached:
                pass
        self.fail(job, None, exc)

    def within_budget(self, job: FolderJob, uids: list[int]) -> bool:
        """May this batch be fetched under the run's byte budget? False: the budget is spent (the
        run is paused). The run's first batch always goes, so every run progresses; parallel
        fetches may pass the budget by a batch each."""
        budget = self.options.byte_budget_mb
        need = sum(job.sizes.get(u, 0) for u in uids)
        with self.lock:
            spent = self.downloaded
        if budget is None or not spent or spent + need <= budget * 1024 * 1024:
            return True
        self.pause(f"byte budget of {budget:g} MB reached after {spent} bytes; re-run later resumes")
        return False

    def fetched(self, messages: list[SourceMessage]) -> list[SourceMessage]:
        with self.lock:
            self.downloaded += sum(m.size for m in messages)
        return messages

    def retire(self, exc: Exception, last: bool) -> None:
        """A worker could not get connections (a per-account limit): go on with fewer."""
        if last:
            self.abort(f"no connection could be opened for the folder workers: {exc}")
        else:
            self.note(f"continuing with fewer connections: {exc}")

    def note(self, text: str) -> None:
        with self.lock:
            if text not in self.report.notes:
                self.report.notes.append(text)

    def skip(self, job: FolderJob, uid: int | None, reason: str, detail: str = "", message_id: str | None = None):
        with self.lock:
            job.report.skipped += 1
            self.report.skipped.append(
                SkippedItem(folder=job.plan.source, uid=uid, message_id=message_id, reason=reason, detail=detail)
            )
        self._spend(self.error_budget.charge_skip(reason))

    def fail(self, job: FolderJob, uid: int | None, exc: BaseException) -> None:
        if isinstance(exc, AuthenticationFailed):
            # A reconnect's login was refused (oauth-token-expiry: the token file holds no fresh
            # token): every later connection would be too, so the run stops; no retry loop.
            with self.lock:
                self.report.login_refused = self.report.login_refused or str(exc)
            self.abort(f"stopped at a refused reconnect: {exc}")
            return
        with self.lock:
            job.report.failed += 1
            self.report.errors.append(
                ItemError(folder=job.plan.source, uid=uid, error=type(exc).__name__, message=str(exc))
            )
        self._spend(self.error_budget.charge())

    def _spend(self, exhausted: str | None) -> None:
        if exhausted:
            self.abort(exhausted)

    def _failed(self, job: FolderJob, uid: int) -> bool:
        with self.lock:
            return any(e.uid == uid and e.folder == job.plan.source for e in self.report.errors)

    def tell(self, folder: str, messages: int, nbytes: int) -> None:
        try:
            self.progress.advance(folder, messages, nbytes)
        except Exception as exc:  # a sink may stop the run (Ctrl-C handlers, tests simulating a crash)
            self.abort(f"stopped by progress sink: {exc}")

    # Phases ------------------------------------------------------------------------------------

    def analyse(self, job: FolderJob, dest_names: set[str]) -> None:
        """Everything before copying: which UIDs still need to go."""
        src, sink = self.conns.source(), self.conns.sink()
        plan, opts, rep = job.plan, self.options, job.report
        job.uidvalidity = src.examine(plan.source, fresh=True)
        job.sizes = src.sizes(plan.source)
        rep.source_count = len(job.sizes)
        if rep.source_count == GMAIL_FOLDER_CAP and self.mitigations.on("gmail-1000-warning"):
            rep.notes.append(f"shows exactly {GMAIL_FOLDER_CAP} messages: the source may cap IMAP folders "
                             "(Gmail's folder size limit); check the provider's setting")
        exists = 0
        if plan.destination not in dest_names and self._holds_no_mail(job, src):
            return
        with self.lock:  # two source folders may share a destination: create it once
            missing = plan.destination not in dest_names
            if missing and not opts.dry_run:
                self._create(job, sink, dest_names)
        if missing and opts.dry_run:
            rep.notes.append(f"would create {plan.destination!r}")
        else:
            job.permanent, exists = sink.select(plan.destination)
        done = self._checkpoint(job)
        if opts.mode == "replace":  # emptied by _empty_destinations (or would be, in a dry run)
            exists, done = 0, {}
        kept = [u for u in sorted(job.sizes) if u not in job.collapsed]  # Gmail label copies go elsewhere
        rep.collapsed = len(job.sizes) - len(kept)
        pending = [u for u in kept if u not in done]
        rep.already_present += len(kept) - len(pending)
        if opts.mode == "merge" and exists and pending and self.mitigations.on("identity-dedup"):
            pending = self._match_existing(job, src, sink, exists, done, pending)
        if job.renumbered:  # the stale checkpoint was dropped: what is present was found by identity
            rep.notes.append(f"UIDVALIDITY changed for {plan.source} ({job.renumbered}): re-matched "
                             f"{rep.already_present} by identity")
        limit = self.append_limit if self.mitigations.on("appendlimit-skip") else None
        for uid in [u for u in pending if limit is not None and job.sizes[u] > limit]:
            self.skip(job, uid, "too-large", f"{job.sizes[uid]} bytes > destination APPENDLIMIT {limit}")
        job.pending = [u for u in pending if limit is None or job.sizes[u] <= limit]
        if opts.dry_run:
            rep.copied = len(job.pending)

    def _holds_no_mail(self, job: FolderJob, src: ImapSource) -> bool:
        """exchange-nonmail-folders-over-imap: Exchange lists Calendar, Contacts, Tasks, Notes ... as
        IMAP folders whose items come back without a body (BODY[] would give a made-up message).
        Before a destination folder is created for it, its smallest few items are fetched: when none
        has a body and they still exist, the folder holds no mail and is skipped and reported."""
        probe = sorted(sorted(job.sizes, key=job.sizes.__getitem__)[:NONMAIL_PROBE])  # cheapest to fetch twice
        probe = [u for u in probe if job.sizes[u] <= NONMAIL_PROBE_BYTES] or probe[:1]  # huge mail: one is enough
        if not probe or not self.mitigations.on("nonmail-folder-skip"):
            return False
        held = sum(job.sizes[u] for u in probe)
        self.budget.take(held)  # four workers probing 50 MB messages at once would hold 200 MB
        try:
            if any(m.raw is not None for m in src.fetch(job.plan.source, probe)):
                return False
        finally:
            self.budget.give(held)
        if not src.existing(job.plan.source, probe):
            return False  # deleted meanwhile: nothing to conclude
        job.pending = []
        with self.lock:
            self.report.folders.remove(job.report)
            self.report.skipped_folders.append(SkippedFolder(
                folder=job.plan.source,
                reason=f"no message bodies ({job.report.source_count} items listed; a non-mail folder shown "
                "over IMAP, e.g. Exchange's Calendar or Contacts: migrate it over EWS)",
            ))
        return True

    def _create(self, job: FolderJob, sink: ImapSink, dest_names: set[str]) -> None:
        """Create the destination folder under another name when the destination refuses it
        (m365-reserved-folders, folder-name-restrictions) or has a twin differing only by case
        (case-insensitive-folders): never merge two folders silently, never drop one."""
        plan = job.plan
        alternatives = alternative_names(plan.destination, self.dest_delimiter)
        for _ in range(20):
            name = plan.destination
            try:
                created = sink.create(name)
            except ProtocolError as exc:
                if not _NAME_REFUSED.search(str(exc)) or not self.mitigations.on("folder-rename"):
                    raise
                why = f"{name!r} refused ({str(exc).rpartition(': ')[2]})"
            else:
                twin = next((n for n in dest_names if n != name and n.casefold() == name.casefold()), None)
                if twin is not None and not self.mitigations.on("case-collision-rename"):
                    twin = None  # merged into the twin: the damage this mitigation prevents
                if created or twin is None:
                    dest_names.add(name)
                    return
                why = f"{name!r} collides with {twin!r} (the destination ignores case)"
            plan.destination = job.report.destination = next(alternatives)
            job.report.notes.append(f"{why}: renamed {plan.destination!r}")
        raise ProtocolError(f"{sink.where(plan.destination)}: no acceptable name for {plan.source!r}")

    def _checkpoint(self, job: FolderJob) -> dict[int, str]:
        if self.state is None:
            return {}
        stale = self.state.stale_uidvalidities(job.plan.source, job.uidvalidity)
        if stale:  # uidvalidity-change: the old UIDs mean nothing now; _match_existing re-matches
            job.renumbered = f"{', '.join(map(str, stale))} → {job.uidvalidity}"
            if not self.options.dry_run:
                for v in stale:
                    self.state.forget(job.plan.source, v)
        done = self.state.done(job.plan.source, job.uidvalidity)
        return {u: i for u, i in done.items() if u in job.sizes}

    def _match_existing(self, job, src, sink, exists, done, pending) -> list[int]:
        """Merge: source messages the destination already has (any tool's copy) are not copied."""
        index = sink.identities(job.plan.destination, exists)
        for ident in done.values():  # the checkpointed copies are not candidates for others
            index.take(Identity.parse(ident))
        if not len(index):
            return pending
        headers = src.headers(job.plan.source, pending)
        found = []
        for uid in pending:
            ident = identity_of(headers.get(uid, b""), job.sizes[uid])
            if uid in headers and index.take(ident):
                found.append(Confirmed(uid, str(ident), job.plan.destination, None))
        job.report.already_present += len(found)
        if self.state and not self.options.dry_run:
            self.state.record(job.plan.source, job.uidvalidity, found)
        matched = {c.uid for c in found}
        return [u for u in pending if u not in matched]

    def migrate_folder(self, job: FolderJob, dest_names: set[str]) -> None:
        self.analyse(job, dest_names)
        if self.options.dry_run:
            return
        settled = job.report.source_count - len(job.pending)  # present or skipped already
        if settled:
            self.tell(job.plan.display_path, settled, 0)
        self.copy_folder(job)

    def copy_folder(self, job: FolderJob) -> None:
        """Copy the folder's pending UIDs in order, fetching the next batch while storing this one
        when the run's byte budget has room for it (``migrator.budget``)."""
        batches = self._batches(job)
        if not batches:
            return
        assert self.fetchers is not None
        fetchers: ThreadPoolExecutor | None = self.fetchers
        ahead = self._read_ahead(fetchers, job, batches[0])
        try:
            for i, uids in enumerate(batches):
                held = sum(job.sizes[u] for u in uids)
                future, ahead = ahead, None  # its bytes are this batch's from here on
                if future is None:  # no room to read it ahead: read it now, once there is room
                    self.budget.take(held)
                try:
                    try:
                        messages = future.result() if future is not None else self._fetch(job, uids)
                    except TooManyConnections as exc:
                        # No connection for the fetch-ahead thread: read on this worker's own connection.
                        self.note(f"fetching without read-ahead: {exc}")
                        fetchers = None
                        messages = self._fetch(job, uids)
                    except ConnectionFailed as exc:
                        again = "twice" if self.mitigations.on("reconnect-resume") else "(reconnect-resume off)"
                        self.abort(f"source connection lost {again} in folder {job.plan.source!r}: {exc}")
                        return
                    if self.stop.is_set():
                        return
                    if i + 1 < len(batches):
                        ahead = self._read_ahead(fetchers, job, batches[i + 1])
                    self._store(job, uids, messages)
                finally:
                    # Drop this batch before the next is read: a finished Future keeps its result,
                    # and a local would keep it too, so the bytes would outlive their budget.
                    future = messages = None
                    self.budget.give(held)
        finally:
            if ahead is not None:  # left early: a read-ahead nobody will store gives its room back
                self.budget.give(sum(job.sizes[u] for u in batches[i + 1]))

    def _read_ahead(self, fetchers: ThreadPoolExecutor | None, job: FolderJob, uids: list[int]) -> Future | None:
        """Start fetching ``uids`` on a fetch-ahead thread if the byte budget has room; else None."""
        if fetchers is None or not self.budget.try_take(sum(job.sizes[u] for u in uids)):
            return None
        return fetchers.submit(self._fetch, job, uids)

    def _batches(self, job: FolderJob) -> list[list[int]]:
        """UID batches bounded by count and bytes (a batch is held in memory and sent in one write)."""
        return size_batches(job.pending, job.sizes.__getitem__, self.options.batch_size)

    def _fetch(self, job: FolderJob, uids: list[int]) -> list[SourceMessage]:
        """Runs on a fetch-ahead thread; reading is idempotent, so a lost connection is simply retried."""
        if self.stop.is_set() or not self.within_budget(job, uids):
            return []
        try:
            return self.fetched(self._fetch_isolating(job, uids))
        except ConnectionFailed as exc:
            if not self.mitigations.on("reconnect-resume"):
                raise
            self.lost("source", job)
            try:
                messages = self.fetched(self._fetch_isolating(job, uids))
            except MigratorError as again:
                self.reconnect_failed("source", job, again)
                raise
            self.reconnected("source", job, exc)
            return messages

    def _fetch_isolating(self, job: FolderJob, uids: list[int]) -> list[SourceMessage]:
        """A batch the server refuses (NO/BAD) is fetched again message by message, so only the
        message that really fails is reported and the rest of the batch still goes."""
        source = self.conns.source()
        try:
            return source.fetch(job.plan.source, uids)
        except ProtocolError as exc:
            if len(uids) == 1:
                self.fail(job, uids[0], exc)
                return []
        out: list[SourceMessage] = []
        for uid in uids:
            try:
                out += source.fetch(job.plan.source, [uid])
            except ProtocolError as exc:
                self.fail(job, uid, exc)
        return out

    def _store(self, job: FolderJob, uids: list[int], messages: list[SourceMessage]) -> None:
        got = {m.uid for m in messages}
        missing = [u for u in uids if u not in got and not self._failed(job, u)]
        if missing:  # deleted meanwhile, or a listed item the server cannot give as a message
            still = self.conns.source().existing(job.plan.source, missing)
            for uid in missing:
                if uid in still:
                    self.skip(job, uid, "no-body", "listed, but FETCH BODY[] returned nothing (a non-mail item?)")
                else:
                    self.skip(job, uid, "vanished", "deleted from the source during the migration")
        for m in messages:
            if m.raw is None:
                self.skip(job, m.uid, "no-body", "the source answered FETCH BODY[] without a body (a non-mail item?)")
        messages = [m for m in messages if m.raw is not None]
        try:
            nbytes = self._append(job, messages, rematch=False)
        except ConnectionFailed as first:
            # Only the messages whose fate is unknown go again, after matching what landed.
            left, nbytes = (first.left, first.nbytes) if isinstance(first, _Unfinished) else (messages, 0)
            flagged = first.flagged if isinstance(first, _Unfinished) else []
            if not self.mitigations.on("reconnect-resume"):
                self.abort(f"destination connection lost in folder {job.plan.source!r}: {first}")
                return
            try:
                self.lost("destination", job)
                nbytes += self._append(job, left, rematch=True, flagged=flagged)
                self.reconnected("destination", job, first)
            except ConnectionFailed as second:
                self.reconnect_failed("destination", job, second)
                self.abort(f"destination connection lost twice in folder {job.plan.source!r}: {first}; then: {second}")
                return
        self.tell(job.plan.display_path, len(uids), nbytes)

    def _append(self, job: FolderJob, messages: list[SourceMessage], *, rematch: bool,
                flagged: list[tuple[SourceMessage, int | None]] | None = None) -> int:
        """APPEND one batch and checkpoint what the destination confirmed; returns bytes copied.
        ``flagged``: copies confirmed before a lost connection that still need \\Flagged."""
        sink, plan = self.conns.sink(), job.plan
        index: IdentityIndex | None = None
        if rematch:  # an APPEND may have landed before the connection died: match, don't recopy
            _, exists = sink.select(plan.destination)
            index = sink.identities(plan.destination, exists)
        items, sources = [], []
        for m in messages:
            try:
                ident = identity_of(m.raw, m.size)
                if index is not None and index.take(ident):
                    with self.lock:
                        job.report.already_present += 1
                    continue
                item = self._fit_lines(job, m, self._prepare(job, m))
                if item is not None:
                    items.append(item)
                    sources.append((m, ident))
            except Exception as exc:  # one broken message never stops the folder
                self.fail(job, m.uid, exc)
        todo = list(zip(sources, items))
        nbytes = 0
        confirm = self.mitigations.on("gmail-append-confirm") and sink.gmail
        for attempt in itertools.count():
            lost: AppendInterrupted | None = None
            mids = [message_id_of(m.raw) for (m, _), _ in todo] if confirm else []
            before = sink.message_id_counts(plan.destination, sorted(set(filter(None, mids)))) if confirm else {}
            try:
                results = sink.append_batch(plan.destination, [item for _, item in todo])
            except AppendInterrupted as exc:
                results, lost = exc.results, exc
            if confirm:
                results = self._confirm_stored(job, sink, mids, before, results)
            confirmed, retry, delay, cause, added = [], [], 0.0, "", 0
            flagged = list(flagged or [])
            backoff = self.mitigations.on("throttle-backoff")
            for ((m, ident), item), res in zip(todo, results):
                wait = None if res.ok or not backoff else retry_delay(res.text, attempt)
                if res.ok:
                    confirmed.append(Confirmed(m.uid, str(ident), plan.destination, res.uid))
                    added += m.size
                    if "\\Flagged" in item.flags:
                        flagged.append((m, res.uid))
                elif wait is not None:  # throttled: the same message again after the wait
                    retry.append(((m, ident), item))
                    if wait >= delay:
                        delay, cause = wait, res.text
                elif (plain := self._without_keywords(job, m, item, res.text)) is not None:
                    retry.append(((m, ident), plain))
                elif (fixed := self._repair(job, m.uid, item, res.text)) is not None:
                    retry.append(((m, ident), fixed))  # bare LF: once more, with CRLF
                else:
                    problem = refused_content(res.text, item.raw)
                    reason = res.reason or problem or refusal_reason(res.text)
                    detail = f"{res.text} ({describe(problem, item.raw)})" if problem else res.text
                    self.skip(job, m.uid, reason, detail, message_id_of(m.raw))
                    if reason == "over-quota":
                        self.abort(f"destination over quota in {plan.destination!r}: {res.text}")
            if self.state:
                self.state.record(plan.source, job.uidvalidity, confirmed)
            nbytes += added
            with self.lock:
                job.report.copied += len(confirmed)
                job.report.bytes += added
            if lost is not None:
                unknown = [m for (m, _), _ in todo[len(results):]] + [m for (m, _), _ in retry]
                raise _Unfinished(str(lost), unknown, nbytes, flagged)  # STOREd on the next connection
            self._restore_flagged(job, sink, flagged)
            flagged = []
            if not retry or self.stop.is_set():
                return nbytes
            if cause:  # throttled (not a keyword or content retry, which go again at once)
                self.timeline.backoff(delay, cause, where=sink.where(plan.destination), attempt=attempt + 1)
            todo = retry
        return nbytes

    def _repair(self, job: FolderJob, uid: int, item: AppendItem, text: str) -> AppendItem | None:
        """bare-lf: a message refused for bare LF line endings goes again with CRLF (once: the
        repaired bytes have none left), reported as repaired (``migrator.content``)."""
        reason = refused_content(text, item.raw)
        fixed = repaired(reason, item.raw) if reason and self.mitigations.on("content-repair") else None
        if fixed is None:
            return None
        with self.lock:
            self.report.repaired.append(RepairedItem(
                folder=job.plan.source, uid=uid, message_id=message_id_of(item.raw), repair="crlf",
                detail=f"refused ({text}): sent again with CRLF line endings ({describe(reason, item.raw)})",
            ))
        return AppendItem(fixed, item.flags, item.internaldate)

    def _confirm_stored(self, job: FolderJob, sink: ImapSink, mids: list[str | None], before: dict[str, int],
                        results: list[AppendResult]) -> list[AppendResult]:
        """gmail-append-dedup: an OK with an APPENDUID is no proof at Gmail. Per Message-ID, the
        folder must hold as many more messages as APPENDs were answered OK; the ones beyond what
        landed are "not-stored". Messages without a Message-ID cannot be checked and are trusted."""
        after = sink.message_id_counts(job.plan.destination, sorted(before))
        landed = {mid: after[mid] - before[mid] for mid in before}
        out = []
        for mid, res in zip(mids, results):
            if res.ok and mid in landed:
                if landed[mid] > 0:
                    landed[mid] -= 1
                else:
                    uid = f" (APPENDUID {res.uid})" if res.uid else ""
                    res = AppendResult(False, None, f"APPEND answered OK{uid} but no new message with Message-ID "
                                       f"{mid} is in {job.plan.destination!r} (gmail-append-dedup)", "not-stored")
            out.append(res)
        return out

    def _without_keywords(self, job: FolderJob, m: SourceMessage, item: AppendItem, text: str) -> AppendItem | None:
        """invalid-flags-on-append: a destination whose PERMANENTFLAGS list \\* may still refuse a
        message for its keywords (more than it takes on one message). Once: the message again with
        its system flags only, the keywords reported as dropped."""
        keywords = [f for f in item.flags if not f.startswith("\\")]
        if not keywords or not _FLAG_REFUSAL.search(text) or not self.mitigations.on("permanentflags-filter"):
            return None
        with self.lock:
            self.report.dropped_flags.append(DroppedFlags(folder=job.plan.source, uid=m.uid, flags=keywords))
        return AppendItem(item.raw, [f for f in item.flags if f.startswith("\\")], item.internaldate)

    def _restore_flagged(self, job: FolderJob, sink: ImapSink, copied: list[tuple[SourceMessage, int | None]]) -> None:
        """exchange-flagged-on-append-lost: Exchange stores an APPENDed message without the \\Flagged
        the APPEND gave, and answers OK. UID STORE sets it again, on the APPENDUID, else on the one
        destination message with the same Message-ID (two or none: left as it is, and said so)."""
        if not copied or not self.mitigations.on("flag-after-append"):
            return
        uids, unsure = [], []  # destination UIDs; source UIDs of copies not found for sure
        for m, uid in copied:
            if uid is None:
                mid = message_id_of(m.raw)
                found = sink.uids_with_message_id(job.plan.destination, mid) if mid else []
                uid = found[0] if len(found) == 1 else None
            if uid is None:
                unsure.append(m.uid)
            else:
                uids.append(uid)
        try:
            sink.add_flags(job.plan.destination, uids, ["\\Flagged"])
        except ProtocolError as exc:
            self.note(f"\\Flagged could not be set again after APPEND in {job.plan.destination!r}: {exc}")
            return
        with self.lock:
            self.report.flags_restored += len(uids)
        if unsure:
            job.report.notes.append(f"\\Flagged not set again on source UID(s) {unsure}: no APPENDUID and no "
                                    "single Message-ID match at the destination")

    def _fit_lines(self, job: FolderJob, m: SourceMessage, item: AppendItem) -> AppendItem | None:
        """exchange-append-limits: a line over the destination's limit gets the APPEND refused with
        `BAD Command Argument Error. 11` (one more error towards Exchange's BYE). Such a message is
        skipped and reported up front, or re-wrapped (``long_lines: rewrap``) and reported as repaired."""
        limit = self.options.max_line_length
        if limit is None and self.conns.sink().microsoft:
            limit = EXCHANGE_LINE_LIMIT
        if limit is None or not self.mitigations.on("line-length-check"):
            return item
        longest = longest_line(item.raw)
        if longest <= limit:
            return item
        fixed = rewrap(item.raw, limit) if self.options.long_lines == "rewrap" else None
        if fixed is None:
            why = " (cannot be re-wrapped: a header line, or an encoded part)" if self.options.long_lines == "rewrap" else ""
            self.skip(job, m.uid, "line-too-long", f"a line of {longest} characters > the destination's {limit}{why}",
                      message_id_of(m.raw))
            return None
        with self.lock:
            self.report.repaired.append(RepairedItem(
                folder=job.plan.source, uid=m.uid, message_id=message_id_of(m.raw), repair="rewrapped",
                detail=f"a line of {longest} characters: body part(s) re-encoded quoted-printable "
                       f"({len(m.raw)} → {len(fixed)} bytes)",
            ))
        return AppendItem(fixed, item.flags, item.internaldate)

    def _prepare(self, job: FolderJob, m: SourceMessage) -> AppendItem:
        resolved = dates.resolve(m.internaldate, m.raw)
        flags = list(m.flags)
        if self.mitigations.on("mdn-neutralise") and asks_receipt(m.raw, flags):
            # mdn-resend: the receipt was sent when the source message was read; Exchange would
            # send it again for the copy unless $MDNSent says it went.
            flags.append(MDN_SENT)
            with self.lock:
                self.report.mdn_neutralised += 1
        permanent = job.permanent if self.mitigations.on("permanentflags-filter") else []
        kept, dropped = filter_flags(flags, permanent or flags)
        with self.lock:
            if resolved.used != "internaldate":
                self.report.date_fallbacks.append(
                    DateFallback(folder=job.plan.source, uid=m.uid, used=resolved.used, detail=resolved.detail)
                )
            if dropped:
                self.report.dropped_flags.append(DroppedFlags(folder=job.plan.source, uid=m.uid, flags=dropped))
        # Without a date the destination stamps the migration time: the damage bad-date-headers does.
        return AppendItem(m.raw, kept, resolved.instant if self.mitigations.on("internaldate") else None)


def migrate(
    source: Endpoint,
    dest: Endpoint,
    options: MigrationOptions,
    progress: ProgressSink | None = None,
    *,
    pim_dest: Endpoint | None = None,
) -> MigrationReport:
    """Copy the source mailbox into the destination. Connection/TLS/auth failures before the run
    starts raise (``ConnectionFailed``, ``TlsFailure``, ``AuthenticationFailed``); everything after
    is in the returned report (a reconnect whose login is refused, e.g. an expired OAuth token,
    stops the run: ``report.login_refused``, exit 4), including any server whose
    TLS certificate was not verified."""
    report = _migrate(source, dest, options, progress, pim_dest=pim_dest)
    sides = (("source", source), ("destination", dest), ("PIM destination", pim_dest))
    report.tls_unverified = [f"{role} {ep.url.display()}" for role, ep in sides if ep is not None and ep.tls_unverified]
    if report.tls_unverified:
        report.notes.append(f"TLS certificate verification was OFF for {', '.join(report.tls_unverified)} "
                            "(--insecure / verify=no): the server's identity was not checked")
    return report


def _migrate(source: Endpoint, dest: Endpoint, options: MigrationOptions, progress: ProgressSink | None, *,
             pim_dest: Endpoint | None) -> MigrationReport:
    if source.url.scheme in ("pop3", "pop3s"):
        from migrator.pop3_flow import migrate_pop3

        return migrate_pop3(source, dest, options, progress)
    if source.url.scheme in ("ews", "ews+http"):
        from migrator.collab.flow import migrate_ews

        return migrate_ews(source, dest, options, progress, pim_dest=pim_dest)
    if source.url.scheme not in ("imap", "imaps") or dest.url.scheme not in ("imap", "imaps"):
        raise UsageError(f"cannot migrate {source.url.scheme}:// to {dest.url.scheme}://: mail goes IMAP → IMAP, "
                         "or POP3 → IMAP/LMTP/SMTP")
    if options.ignore_capabilities:
        ignored = frozenset(c.upper() for c in options.ignore_capabilities)
        source, dest = (dataclasses.replace(e, ignore_capabilities=ignored) for e in (source, dest))
    t0 = time.monotonic()
    run = _Run(source, dest, options, progress or NullProgress())
    run.report.items = list(options.items)
    run.report.not_offered = not_offered(options.items, MAIL_ONLY)  # an IMAP source: mail only
    try:
        _plan_and_copy(run)
    except KeyboardInterrupt:
        run.abort("interrupted")
    finally:
        run.conns.close_all()
        if run.state:
            run.state.close()
    run.report.total()
    run.report.seconds = round(time.monotonic() - t0, 3)
    run.report.events = run.timeline.events()
    return run.report


def _plan_and_copy(run: _Run) -> None:
    options = run.options
    ctl_src, ctl_sink = run.conns.source(), run.conns.sink()  # log in now: fail fast, typed
    lenient = run.mitigations.on("lenient-list")
    src_entries, src_ns = ctl_src.folders(lenient=lenient)
    dst_entries, dst_ns = ctl_sink.folders(lenient=lenient)
    if not run.mitigations.on("namespace-prefix"):  # a naive tool: names as if there were no prefix
        src_ns, dst_ns = Namespace("", src_ns.delimiter), Namespace("", dst_ns.delimiter)
    for problem in ctl_src.list_problems + ctl_sink.list_problems:  # malformed-responses: said, not fatal
        run.note(problem)
    run.append_limit = ctl_sink.append_limit
    run.dest_delimiter = dst_ns.delimiter
    mapping = plan_folders(
        src_entries,
        src_ns,
        dst_entries,
        dst_ns,
        target_root=options.target_root,
        include=options.include,
        exclude=options.exclude,
        map_special_use=options.map_special_use,
        keep_parts_whole=run.mitigations.on("delimiter-rename"),
    )
    run.report.skipped_folders = [SkippedFolder(folder=n, reason=r) for n, r in mapping.skipped]
    state_path = options.state_path or default_state_path(run.report.source, run.report.destination)
    if not options.dry_run or Path(state_path).exists():
        run.state = State(state_path, run.report.source, run.report.destination)
    jobs = [FolderJob(p, FolderReport(source=p.source, destination=p.destination, notes=list(p.notes))) for p in mapping.plans]
    run.report.folders = [j.report for j in jobs]
    # \Noselect / \NonExistent names (a parent Dovecot only implies) must still be created.
    dest_names = {e.name for e in dst_entries if e.selectable}
    if options.target_root and not options.dry_run:
        root = destination_name(tuple(options.target_root), dst_ns)
        if root not in dest_names:  # else Dovecot shows it as \NonExistent, a hole in the tree
            ctl_sink.create(root)
            dest_names.add(root)
    if ctl_src.gmail and run.mitigations.on("gmail-msgid"):
        _plan_gmail(run, ctl_src, jobs, dst_entries, dst_ns)
    if options.mode == "replace":
        _empty_destinations(run, jobs, ctl_sink, dest_names)
    # Largest folders first (STATUS MESSAGES), each analysed and copied by one worker as soon as
    # one is free: no barrier between planning and copying.
    counts = ctl_src.message_counts([j.plan.source for j in jobs])
    run.timeouts.hint(counts)  # a big folder's SELECT may take minutes: its commands wait longer
    jobs.sort(key=lambda j: (j.plan.special_use == "\\All", -counts.get(j.plan.source, 0)))  # Gmail's All Mail last
    workers = max(1, min(options.connections, len(jobs)))
    if not options.dry_run:
        run.progress.start([(j.plan.display_path, counts.get(j.plan.source, 0)) for j in jobs])
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="fetch-ahead") as run.fetchers:
            run_workers(
                jobs,
                workers,
                lambda j: run.migrate_folder(j, dest_names),
                connections=run.conns,
                stop=run.stop,
                fail=run.job_failed,
                retire=run.retire,
                interrupted=lambda: run.abort("interrupted"),
            )
    finally:
        if not options.dry_run:
            run.progress.finish()


def _plan_gmail(run: _Run, src: ImapSource, jobs: list[FolderJob], dst_entries: list[ListEntry], dst_ns: Namespace) -> None:
    """gmail-labels-as-folders: one copy per X-GM-MSGID (or per label), archive-only mail from
    All Mail into the destination's Archive (``migrator.gmail``)."""
    folders = [LabelFolder(j.plan.source, j.plan.special_use, src.gmail_msgids(j.plan.source)) for j in jobs]
    plan = plan_labels(folders, run.options.gmail_labels)
    archive = next((e.name for e in dst_entries if e.selectable and e.special_use == "\\Archive"), None)
    for job in jobs:
        job.collapsed = plan.skip.get(job.plan.source, {})
        if job.plan.special_use == "\\All":
            name = archive or destination_name(tuple(run.options.target_root) + (ARCHIVE_NAME,), dst_ns)
            job.report.notes.append(f"Gmail All Mail: only its archive-only messages, into {name!r}")
            job.plan.destination = job.report.destination = name
    run.report.gmail_labels = run.options.gmail_labels
    run.report.notes.append(plan.summary())


def _empty_destinations(run: _Run, jobs: list[FolderJob], sink: ImapSink, dest_names: set[str]) -> None:
    """Replace mode, before any copying: delete what the mapped destination folders hold and
    forget their checkpoints (several source folders may share one destination folder)."""
    emptied: set[str] = set()
    for job in jobs:
        dest = job.plan.destination
        if run.state and not run.options.dry_run:
            run.state.forget(job.plan.source)
        if dest in emptied or dest not in dest_names:
            continue
        emptied.add(dest)
        _, exists = sink.select(dest)
        if exists:
            job.report.notes.append(f"{'would delete' if run.options.dry_run else 'deleted'} {exists} destination message(s)")
            if not run.options.dry_run:
                sink.delete_all(dest, exists)
            if sink.gmail and job.plan.special_use not in ("\\All", "\\Trash", "\\Junk"):
                # gmail-delete-semantics: EXPUNGE in a label folder only takes the label away
                job.report.notes.append("Gmail destination: deleting here only removed the label; "
                                        "those messages stay in All Mail")
