"""migrate_ews(): an EWS mailbox → mail to IMAP, contacts/events/tasks/notes to CardDAV/CalDAV.

Flow: list the folder tree with classes; plan the mail folders (IPF.Note) like any IMAP source
(``folders.plan_folders`` on a synthetic listing: Inbox → INBOX, Sent Items → \\Sent, Deleted
Items → \\Trash ...); give each contact/calendar/task/note folder a DAV collection. Then each
folder, in parallel (``options.connections``, shrinking under throttling): list its item ids
(paging that trusts no attribute), group them by kind — Deleted Items holds every kind — and copy:
- mail: GetItem MimeContent in batches (large items alone), APPEND with flags from IsRead/Flag/
  IsDraft and INTERNALDATE = DateTimeReceived (the instant);
- other kinds: converted (``collab.convert``) and PUT with If-None-Match into the collection of
  the folder, or — for items in a mail folder (Deleted Items) — of their kind's own folder; with
  ``deleted_items="mail-only"`` they are reported as unmigratable by kind and count instead.
Per-item failures (ErrorMimeContentConversionFailed, a malformed item) are reported with the
ItemId and the batch goes on. The checkpoint (``collab.state``) holds every confirmed ItemId, so a
re-run copies nothing twice; for DAV, If-None-Match guards even without it. Mail, to IMAP or to
EWS, is also matched by identity in merge mode (``_destination_index``, mitigation identity-dedup):
a message the destination confirmed just before the process died, unrecorded, is found, not
copied again.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from migrator.collab import convert, mapi
from migrator.collab.kinds import ITEM_KINDS
from migrator.budget import size_batches
from migrator.error_budget import ErrorBudget
from migrator.collab.state import EwsState
from migrator.folders import FolderPlan, ListEntry, Namespace, plan_folders
from migrator.identity import Identity, IdentityIndex, LazyIdentityIndex, identity_of
from migrator.mitigations import Mitigations
from migrator.progress import NullProgress, ProgressSink
from migrator.report import FolderReport, ItemError, KindCount, MigrationReport, SkippedFolder, Unmigratable
from migrator.sinks.dav import DavSink, collection_name
from migrator.sinks.imap import AppendItem, ImapSink, filter_flags
from migrator.sources.ews import LARGE_MAIL, EwsFolder, EwsSource, ListedItem, Throttle
from migrator.state import default_state_path
from migrator.timeline import Timeline
from migrator.urls import Endpoint

# folder class → the kind a folder of that class holds (mail folders may hold every kind)
CLASS_KINDS = {"IPF.Contact": "contact", "IPF.Appointment": "event", "IPF.Task": "task", "IPF.StickyNote": "note"}
KIND_FOLDERS = {"contact": "contacts", "event": "calendar", "task": "tasks", "note": "notes"}  # distinguished ids
SPECIAL = {"sentitems": "\\Sent", "drafts": "\\Drafts", "deleteditems": "\\Trash", "junkemail": "\\Junk"}
PIM_BATCH = 50
Matcher = IdentityIndex | LazyIdentityIndex  # a destination folder's identities, as _match asks them


def kind_of_folder(folder: EwsFolder) -> str | None:
    """mail | contact | event | task | note, or None for folders we do not migrate (IPF.Journal ...)."""
    cls = folder.folder_class or "IPF.Note"
    if cls == "IPF.Note" or cls.startswith("IPF.Note."):
        return "mail"
    for prefix, kind in CLASS_KINDS.items():
        if cls == prefix or cls.startswith(prefix + "."):
            return kind
    return None


@dataclass
class _Job:
    folder: EwsFolder
    kind: str
    report: FolderReport
    plan: FolderPlan | None = None  # mail folders: where their mail goes
    counts: dict[str, KindCount] = field(default_factory=dict)

    def count(self, kind: str) -> KindCount:
        if kind not in self.counts:
            self.counts[kind] = KindCount(kind=kind)
        return self.counts[kind]

    @property
    def shown(self) -> str:
        return "/".join(self.folder.path)


class _EwsRun:
    def __init__(self, source: Endpoint, dest: Endpoint | None, pim_dest: Endpoint | None, options, progress,
                 throttle: Throttle):
        self.source, self.dest, self.pim_dest, self.options = source, dest, pim_dest, options
        self.progress = progress
        self.wanted = {ITEM_KINDS[i] for i in (options.items or list(ITEM_KINDS))}
        self.report = MigrationReport.begin(
            source, dest, options,
            pim_destination=pim_dest.url.display() if pim_dest else None,
            items=list(options.items or ITEM_KINDS),
        )
        self.src = EwsSource(source, connections=options.connections, throttle=throttle)
        self.lock = threading.Lock()
        self.local = threading.local()
        self.sinks: list = []
        self.error_budget = ErrorBudget(options.max_item_errors)
        self.mitigations = Mitigations(options.disable)
        self.state: EwsState | None = None
        self.done: set[str] = set()
        self.collections: dict[str, tuple[tuple[str, ...], str]] = {}  # kind → (folder path, display name)
        self.ensured: dict[str, str] = {}  # collection name → URL, once made or found
        self.ews_sink = None
        self.folders_by_path: dict[tuple[str, ...], EwsFolder] = {}

    # Per-thread destination connections ---------------------------------------------------------

    def imap(self) -> ImapSink:
        if getattr(self.local, "imap", None) is None:
            self.local.imap = ImapSink(self.dest, timeline=self.src.throttle.timeline)
            with self.lock:
                self.sinks.append(self.local.imap)
        return self.local.imap

    def dav(self) -> DavSink:
        if getattr(self.local, "dav", None) is None:
            self.local.dav = DavSink(self.pim_dest)
            with self.lock:
                self.sinks.append(self.local.dav)
        return self.local.dav

    def ews(self):
        """The EWS destination (one, thread-safe), for mail and/or the other kinds."""
        from migrator.sinks.ews import EwsSink

        with self.lock:
            if self.ews_sink is None:
                ews = self.dest if _is_ews(self.dest) else self.pim_dest
                self.ews_sink = EwsSink(ews, connections=self.options.connections, throttle=self.src.throttle)
                self.sinks.append(self.ews_sink)
        return self.ews_sink

    def close(self) -> None:
        for s in self.sinks:
            s.close()
        self.src.close()
        if self.state:
            self.state.close()

    # Recording ----------------------------------------------------------------------------------

    def fail(self, job: _Job, kind: str, item_id: str, exc: BaseException) -> None:
        with self.lock:
            job.report.failed += 1
            job.count(kind).failed += 1
            self.report.errors.append(ItemError(folder=job.shown, uid=None, item_id=item_id,
                                                error=type(exc).__name__, message=str(exc)))
            exhausted = self.error_budget.charge()
            if exhausted and not self.report.aborted:
                self.report.aborted = exhausted

    def unmigratable(self, job: _Job, kind: str, count: int, reason: str) -> None:
        with self.lock:
            job.count(kind).unmigratable += count
            self.report.unmigratable.append(Unmigratable(kind=kind, count=count, folder=job.shown, reason=reason))

    def confirmed(self, job: _Job, kind: str, rows: list[tuple[str, str]], present: int, nbytes: int = 0,
                  identities: dict[str, str] | None = None) -> None:
        """``rows`` (item_id, destination) were copied (or found present: the last ``present``);
        ``identities``: item_id → message identity, for mail (re-matched after a crash)."""
        if self.state:
            self.state.record([(i, kind, d) for i, d in rows if d], identities)
        with self.lock:
            c = job.count(kind)
            c.copied += len(rows) - present
            c.already_present += present
            job.report.copied += len(rows) - present
            job.report.already_present += present
            job.report.bytes += nbytes
        try:
            self.progress.advance(job.shown, len(rows), nbytes)
        except Exception as exc:
            self.report.aborted = f"stopped by progress sink: {exc}"

    # Planning -----------------------------------------------------------------------------------

    def plan(self, folders: list[EwsFolder]) -> list[_Job]:
        jobs = []
        mail_folders = [f for f in folders if kind_of_folder(f) == "mail"]
        self.folders_by_path = {f.path: f for f in folders}
        if self.dest is None or "mail" not in self.wanted:
            plans = {}
        elif _is_ews(self.dest):  # the same tree: distinguished folders by id, the rest by path
            plans = {f.id: FolderPlan(source="/".join(f.path), path=f.path, destination="/".join(f.path))
                     for f in mail_folders}
        else:
            plans = self._plan_mail(mail_folders)
        for f in folders:
            kind = kind_of_folder(f)
            shown = "/".join(f.path)
            if kind is None:
                self.report.skipped_folders.append(SkippedFolder(folder=shown, reason=f"folder class {f.folder_class}"))
                continue
            if kind != "mail" and f.distinguished == KIND_FOLDERS[kind]:
                self.collections[kind] = (f.path, f.path[-1])
            plan = plans.get(f.id)
            dest = plan.destination if plan else "" if kind == "mail" else collection_name(f.path, kind)
            jobs.append(_Job(f, kind, FolderReport(source=shown, destination=dest, folder_class=f.folder_class,
                                                   notes=list(plan.notes) if plan else []), plan))
        for kind in ("contact", "event", "task", "note"):  # a kind's home when its folder is missing
            self.collections.setdefault(kind, ((KIND_FOLDERS[kind].capitalize(),), KIND_FOLDERS[kind].capitalize()))
        return jobs

    def _plan_mail(self, folders: list[EwsFolder]) -> dict[str, FolderPlan]:
        """Plan mail folders as if the source were IMAP with "/" as delimiter."""
        names = {}
        entries = []
        for f in folders:
            name = "INBOX" if f.distinguished == "inbox" else "/".join(f.path)
            if f.distinguished != "inbox" and f.path[0] == self._inbox_name(folders):
                name = "INBOX/" + "/".join(f.path[1:])
            names[name] = f.id
            flags = frozenset({SPECIAL[f.distinguished]}) if f.distinguished in SPECIAL else frozenset()
            entries.append(ListEntry(name=name, flags=flags, delimiter="/"))
        sink = self.imap()
        dst_entries, dst_ns = sink.folders()
        self.dest_names = {e.name for e in dst_entries if e.selectable}
        opts = self.options
        mapping = plan_folders(entries, Namespace("", "/"), dst_entries, dst_ns, target_root=opts.target_root,
                               include=opts.include, exclude=opts.exclude, map_special_use=opts.map_special_use)
        self.report.skipped_folders += [SkippedFolder(folder=n, reason=r) for n, r in mapping.skipped]
        return {names[p.source]: p for p in mapping.plans}

    @staticmethod
    def _inbox_name(folders: list[EwsFolder]) -> str | None:
        return next((f.path[-1] for f in folders if f.distinguished == "inbox"), None)

    # Copying ------------------------------------------------------------------------------------

    def run_folder(self, job: _Job) -> None:
        if self.report.aborted:
            return
        listing = self.src.list_items(job.folder)
        job.report.notes += listing.notes
        job.report.source_count = len(listing.items)
        by_kind: dict[str, list[ListedItem]] = defaultdict(list)
        for item in listing.items:
            by_kind[item.kind].append(item)
        for kind, items in by_kind.items():
            job.count(kind).source += len(items)
            todo = [i for i in items if i.id not in self.done]
            if len(todo) < len(items):  # confirmed by an earlier run
                self.confirmed(job, kind, [(i.id, "") for i in items if i.id in self.done], len(items) - len(todo))
            if not todo or self._refused(job, kind, len(todo)):
                continue
            if self.options.dry_run:
                with self.lock:
                    job.report.copied += len(todo)
                    job.count(kind).copied += len(todo)
            elif kind == "mail":
                (self._copy_mail_ews if _is_ews(self.dest) else self._copy_mail)(job, todo)
            else:
                (self._copy_pim_ews if _is_ews(self.pim_dest) else self._copy_pim)(job, kind, todo)

    def _refused(self, job: _Job, kind: str, n: int) -> bool:
        """Items of this kind that will not be migrated, and why (reported, never dropped silently):
        left out on request (--items, --include/--exclude) is a folder note; anything else is
        unmigratable and makes the exit code 1."""
        left_out = reason = None
        if kind not in self.wanted:
            left_out = f"--items {','.join(self.report.items)}"
        elif kind == "mail" and self.dest is not None and job.plan is None:
            left_out = "folder not selected"
        elif kind == "distribution-list":
            reason = "distribution lists have no vCard 3.0 form"
        elif kind == "mail" and self.dest is None:
            reason = "no mail destination"
        elif kind != "mail" and self.pim_dest is None:
            reason = "no destination for contacts/calendars/tasks/notes (--pim-to)"
        elif kind != "mail" and job.kind == "mail" and self.options.deleted_items == "mail-only":
            reason = f"destination allows only mail in {job.shown!r} (deleted_items: mail-only)"
        if left_out:
            with self.lock:
                job.report.notes.append(f"{n} {kind} item(s) left out ({left_out})")
        if reason:
            self.unmigratable(job, kind, n, reason)
        return bool(left_out or reason)

    def _mail_batches(self, items: list[ListedItem]) -> list[list[ListedItem]]:
        size = max(1, min(self.options.batch_size, 50))
        return size_batches(items, lambda item: item.size, size, alone_over=LARGE_MAIL)

    def _copy_mail(self, job: _Job, items: list[ListedItem]) -> None:
        plan = job.plan
        sink = self.imap()
        with self.lock:
            if plan.destination not in self.dest_names:
                sink.create(plan.destination)
                self.dest_names.add(plan.destination)
        permanent, exists = sink.select(plan.destination)
        index = self._destination_index(lambda recorded: sink.identities(plan.destination, exists).discount(recorded),
                                        plan.destination, bool(exists))
        for batch in self._mail_batches(items):
            if self.report.aborted:
                return
            todo, present, idents = self._match(job, batch, permanent, index, plan.destination)
            results = sink.append_batch(plan.destination, [a for _, a in todo])
            rows, nbytes = [], 0
            for (li, a), res in zip(todo, results):
                if res.ok:
                    rows.append((li.id, plan.destination))
                    nbytes += len(a.raw)
                else:
                    self.fail(job, "mail", li.id, RuntimeError(f"APPEND refused: {res.text}"))
            done = rows + present
            self.confirmed(job, "mail", done, len(present), nbytes, {i: idents[i] for i, _ in done})

    def _match(self, job: _Job, batch: list[ListedItem], permanent: list[str], index: Matcher | None,
               dest: str) -> tuple[list[tuple[ListedItem, AppendItem]], list[tuple[str, str]], dict[str, str]]:
        """A batch of source mail read and split: what to copy, what the destination holds already
        (matched by identity: landed before a crash, or another tool's copy), and each identity."""
        todo, present, idents = [], [], {}
        for li, got in zip(batch, self.src.fetch("mail", batch)):
            try:
                a = self._append_item(got, permanent)
            except Exception as exc:  # one broken item never stops the batch
                self.fail(job, "mail", li.id, exc)
                continue
            ident = identity_of(a.raw, len(a.raw))
            idents[li.id] = str(ident)
            if index is not None and index.take(ident):
                present.append((li.id, dest))
            else:
                todo.append((li, a))
        return todo, present, idents

    def _destination_index(self, read: Callable[[list[Identity]], Matcher], folder: str,
                           exists: bool) -> Matcher | None:
        """Merge: what the destination folder holds (``read(recorded)``), less ``recorded``, our
        own copies on record, so a message copied by a run killed before its checkpoint commit is
        matched, not copied again (mitigation identity-dedup; ``folder``: the destination as the
        checkpoint names it)."""
        if self.options.mode != "merge" or not exists or not self.mitigations.on("identity-dedup"):
            return None
        recorded = [Identity.parse(i) for i in self.state.identities_in(folder)] if self.state else []
        return read(recorded)

    @staticmethod
    def _append_item(item, permanent: list[str]) -> AppendItem:
        if isinstance(item, Exception):
            raise item
        raw = item.mime_content
        if not raw:
            raise ValueError("no MimeContent")
        flags = []
        if item.is_read:
            flags.append("\\Seen")
        if getattr(item, "is_draft", False):
            flags.append("\\Draft")
        flags += mapi.imap_flags(getattr(item, "qm_last_verb", None), getattr(item, "qm_flag_status", None))
        kept, _ = filter_flags(flags, permanent or flags)
        when = convert.utc(item.datetime_received) if item.datetime_received else None
        return AppendItem(raw if isinstance(raw, bytes) else raw.encode(), kept, when)

    def _collection(self, job: _Job, kind: str) -> tuple[tuple[str, ...], str]:
        """The folder whose collection takes this job's items of ``kind``."""
        if job.kind == kind:
            return job.folder.path, job.folder.path[-1]
        return self.collections[kind]

    def _copy_pim(self, job: _Job, kind: str, items: list[ListedItem]) -> None:
        sink = self.dav()
        path, display = self._collection(job, kind)
        name = collection_name(path, kind)
        with self.lock:  # two folders (two workers, two sinks) may share a collection: create it once
            if name not in self.ensured:
                self.ensured[name] = sink.ensure_collection(name, kind, display)
            url = self.ensured[name]
        if job.kind != kind:
            job.report.notes.append(f"{kind} items go to collection {collection_name(path, kind)!r}")
        for start in range(0, len(items), PIM_BATCH):
            if self.report.aborted:
                return
            batch = items[start:start + PIM_BATCH]
            fetched = self.src.fetch(kind, batch)
            rows, present = [], []
            for li, got in zip(batch, fetched):
                try:
                    uid, text = self._convert(kind, got)
                    put = sink.put(url, uid, kind, text)
                except Exception as exc:  # malformed item, conversion or PUT refusal: this item only
                    self.fail(job, kind, li.id, exc)
                    continue
                (rows if put.created else present).append((li.id, put.href))
            self.confirmed(job, kind, rows + present, len(present))

    def _copy_mail_ews(self, job: _Job, items: list[ListedItem]) -> None:
        sink = self.ews()
        folder = sink.folder(job.folder.path, job.folder.folder_class, job.folder.distinguished)
        index = self._destination_index(lambda recorded: sink.identities(folder, job.folder.path, recorded),
                                        job.shown, True)
        for batch in self._mail_batches(items):
            if self.report.aborted:
                return
            todo, present, idents = self._match(job, batch, [], index, job.shown)
            rows, nbytes = [], 0
            for li, a in todo:
                try:
                    sink.create_mail(folder, a.raw, a.flags, a.internaldate)
                except Exception as exc:  # this item only
                    self.fail(job, "mail", li.id, exc)
                    continue
                rows.append((li.id, job.shown))
                nbytes += len(a.raw)
            done = rows + present
            self.confirmed(job, "mail", done, len(present), nbytes, {i: idents[i] for i, _ in done})

    def _copy_pim_ews(self, job: _Job, kind: str, items: list[ListedItem]) -> None:
        sink = self.ews()
        path, _ = self._collection(job, kind)
        home = self.folders_by_path.get(path)
        folder = sink.folder(path, home.folder_class if home else _KIND_CLASS[kind], home.distinguished if home else None)
        for start in range(0, len(items), PIM_BATCH):
            if self.report.aborted:
                return
            batch = items[start:start + PIM_BATCH]
            rows = []
            for li, got in zip(batch, self.src.fetch(kind, batch)):
                try:
                    if isinstance(got, Exception):
                        raise got
                    sink.create_copy(folder, got)
                except Exception as exc:  # this item only
                    self.fail(job, kind, li.id, exc)
                    continue
                rows.append((li.id, "/".join(path)))  # a series with its deleted and moved occurrences
            self.confirmed(job, kind, rows, 0)

    def _convert(self, kind: str, item) -> tuple[str, str]:
        if isinstance(item, Exception):
            raise item
        if kind == "contact":
            uid = convert.stable_uid(item.id)
            return uid, convert.contact_to_vcard(item, uid)
        if kind == "event":
            uid = str(item.uid or convert.stable_uid(item.id))
            occ_ids = [(o.id, o.changekey) for o in item.modified_occurrences or () if o.id]
            fetched = self.src.fetch_occurrences(occ_ids)  # in the order asked
            occurrences = {i: o for (i, _), o in zip(occ_ids, fetched) if not isinstance(o, Exception)}
            return uid, convert.event_to_ical(item, uid, occurrences)
        uid = convert.stable_uid(item.id)
        if kind == "task":
            return uid, convert.task_to_ical(item, uid)
        return uid, convert.note_to_ical(item, uid)


_KIND_CLASS = {v: k for k, v in CLASS_KINDS.items()}


def _is_ews(endpoint: Endpoint | None) -> bool:
    return endpoint is not None and endpoint.url.scheme in ("ews", "ews+http")


def migrate_ews(source: Endpoint, dest: Endpoint | None, options, progress: ProgressSink | None = None, *,
                pim_dest: Endpoint | None = None, sleep=time.sleep) -> MigrationReport:
    """Copy an EWS mailbox: mail to ``dest`` (IMAP), everything else to ``pim_dest`` (CardDAV/
    CalDAV). ``sleep`` is injectable so tests can assert the backoff waits without waiting."""
    t0 = time.monotonic()
    progress = progress or NullProgress()
    timeline = Timeline(sleep=sleep)  # its waits, timestamped, become report.events
    throttle = Throttle(options.connections, timeline=timeline)
    run = _EwsRun(source, dest, pim_dest, options, progress, throttle)
    try:
        _run(run)
    except KeyboardInterrupt:
        run.report.aborted = "interrupted"
    finally:
        run.close()
    rep = run.report
    if throttle.waits:
        rep.notes.append(f"throttled {len(throttle.waits)} time(s), waited {sum(throttle.waits):.1f} s; "
                         f"parallelism down to {throttle.limit}")
    totals: dict[str, KindCount] = {}
    for f in rep.folders:
        for k in f.kinds:
            t = totals.setdefault(k.kind, KindCount(kind=k.kind))
            for attr in ("source", "copied", "already_present", "failed", "unmigratable"):
                setattr(t, attr, getattr(t, attr) + getattr(k, attr))
    rep.kinds = sorted(totals.values(), key=lambda k: k.kind)
    rep.total()
    rep.seconds = round(time.monotonic() - t0, 3)
    rep.events = timeline.events()
    return rep


def _run(run: _EwsRun) -> None:
    options = run.options
    folders = run.src.folders()
    jobs = run.plan(folders)
    run.report.folders = [j.report for j in jobs]
    dest_key = f"{run.report.destination} {run.report.pim_destination or ''}"
    state_path = options.state_path or default_state_path(run.report.source, dest_key)
    if not options.dry_run or Path(state_path).exists():
        run.state = EwsState(state_path, run.report.source, dest_key)
        if options.mode == "replace" and not options.dry_run:
            run.state.forget_all()
        run.done = run.state.done()
    jobs.sort(key=lambda j: -j.folder.total)
    if not options.dry_run:
        run.progress.start([(j.shown, j.folder.total) for j in jobs])

    def work(job: _Job) -> None:
        try:
            run.run_folder(job)
        except Exception as exc:  # the folder fails, the run goes on
            run.fail(job, job.kind, job.folder.id, exc)
        finally:
            job.report.kinds = sorted(job.counts.values(), key=lambda k: k.kind)

    try:
        with ThreadPoolExecutor(max(1, min(options.connections, len(jobs) or 1)), thread_name_prefix="ews") as pool:
            list(pool.map(work, jobs))
    finally:
        if not options.dry_run:
            run.progress.finish()
