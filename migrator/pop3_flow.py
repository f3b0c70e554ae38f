"""migrate() for a POP3 source: the inbox into one IMAP folder, or delivered over LMTP/SMTP.

A pass (one POP3 session): LIST + UIDL, headers by ``TOP n 0`` (pipelined), then every message is
*settled* — already confirmed by the checkpoint (same UIDL and identity), found in the destination
folder by identity (merge), or pending. Pending messages are RETRieved in pipelined batches, dated
(``migrator.dates``: POP3 has no INTERNALDATE), stored, and checkpointed as the destination
confirms each one. Without TOP, a message's identity is learnt from its RETR and settled then.

Identity across runs is UIDL plus identity (``migrator.identity``: Message-ID, header hash, size),
kept as a multiset: a server without UIDL (pop3-uidl-missing) or with one UIDL for several
messages (pop3-uidl-duplicated) still gets each message copied exactly once.

A lost source connection (e.g. dropped mid-RETR) ends the pass; a fresh session starts a new pass,
which finds everything confirmed so far in the checkpoint: no duplicates, nothing lost. Messages
are deleted from the source only when asked (``pop3_delete``), only those the destination
confirmed, only in a pass that completed, and only by a QUIT the server answered +OK: POP3 removes
DELE-marked messages in its UPDATE state, so a session that dies before QUIT deletes nothing.

Refusals are classified by the target (``migrator.replies``): a temporary one (SMTP 4xx such as
greylisting, IMAP throttling) puts the message aside and it is sent again after a pause, in a few
bounded rounds at the end of the pass (RETRieved again: bodies are not held in memory meanwhile);
still refused, it is reported ``deferred`` and kept on the source. A full mailbox stops the run (exit 5). A login refused for now (POP3 [LOGIN-DELAY],
[IN-USE]) is waited out when the wait is short (``replies.login_retry_delay``), else the run ends
with ``LoginDeferred`` (exit 5), not as a wrong password.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from migrator import dates
from migrator.backoff import defer_delay
from migrator.budget import size_batches
from migrator.error_budget import ErrorBudget
from migrator.errors import AuthenticationFailed, ConnectionFailed, LoginDeferred, MigratorError, UsageError
from migrator.identity import Identity, IdentityIndex, identity_of, message_id_of
from migrator.pop3_targets import DeliveryTarget, ImapTarget, open_target
from migrator.progress import NullProgress, ProgressSink
from migrator.replies import RETRY_LATER, STOP_RUN, login_retry_delay
from migrator.report import ConnectionReport, DateFallback, FolderReport, ItemError, MigrationReport, Pop3Report, SkippedItem
from migrator.sinks.imap import AppendInterrupted
from migrator.sources.pop3 import Pop3Listing, Pop3Source
from migrator.state import Pop3Confirmed, State, default_state_path
from migrator.timeline import FAILED, RESUMED, Timeline
from migrator.urls import Endpoint

MAX_RECONNECTS = 3  # fresh POP3 sessions after lost connections before the run is aborted
UIDL_MAP_FORMAT = "quirkmail-pop3-uidl-map/1"
SOURCE_FOLDER = "INBOX"


@dataclass
class Pop3Message:
    number: int  # valid in this session only
    uidl: str  # "" when the server has no UIDL
    size: int  # LIST octets
    identity: Identity | None = None


def state_key(uidl: str, identity: Identity) -> Identity:
    """The checkpoint's name for a message: UIDL and identity together."""
    return Identity(f"{uidl}|{identity.key}", identity.size)


def uidl_kind(listing: Pop3Listing) -> str:
    if listing.uidls is None:
        return "missing"
    values = list(listing.uidls.values())
    return "duplicated" if len(set(values)) != len(values) else "unique"


def batches(messages: list[Pop3Message], count: int) -> list[list[Pop3Message]]:
    return size_batches(messages, lambda m: m.size, count)


class _Checkpoint:
    """Which messages the destination already has: rows from earlier runs, rows of this run
    (copied here, so neither "already present" nor copied again), and the destination folder's
    own identities (merge matching), each consumed once per match."""

    def __init__(self, old: list[Pop3Confirmed], new: list[Pop3Confirmed], dest: IdentityIndex | None):
        self.old, self.new = IdentityIndex(), IdentityIndex()
        self.old_via: dict[str, list[str]] = {}
        for row in old:
            ident = Identity.parse(row.identity)
            self.old.add(state_key(row.uidl, ident))
            self.old_via.setdefault(state_key(row.uidl, ident).key, []).append(row.via)
        for row in new:
            self.new.add(state_key(row.uidl, Identity.parse(row.identity)))
        self.dest = dest
        if dest is not None:  # our copies are not candidates for other source messages
            for row in old + new:
                if row.via != "delivered":
                    dest.take(Identity.parse(row.identity))

    def settle(self, m: Pop3Message) -> str | None:
        """"new" (copied earlier in this run), "copied" (by an earlier run), "matched" (found
        at the destination), or None (still to copy)."""
        assert m.identity is not None
        key = state_key(m.uidl, m.identity)
        if self.new.take(key):
            return "new"
        if self.old.take(key):
            vias = self.old_via.get(key.key) or ["matched"]
            return "copied" if vias.pop(0) != "matched" else "matched"
        if self.dest is not None and self.dest.take(m.identity):
            return "found"
        return None


@dataclass
class Deferred:
    message: Pop3Message
    text: str  # the server's last temporary refusal
    delay: float | None  # the wait it asked for, when it said


class Pop3Run:
    def __init__(self, source: Endpoint, dest: Endpoint, options, progress: ProgressSink, *, sleep=time.sleep):
        self.source, self.dest, self.options, self.progress = source, dest, options, progress
        self.sleep = sleep  # injectable: tests do not wait out LOGIN-DELAY, lock or greylisting pauses
        self.timeline = Timeline(sleep=sleep)  # every pause and reconnect, timestamped (report.events)
        self.report = MigrationReport.begin(source, dest, options)
        self.error_budget = ErrorBudget(options.max_item_errors)
        self.state: State | None = None
        self.target: ImapTarget | DeliveryTarget | None = None
        self.session: Pop3Source | None = None
        self.started_rows = 0
        self.deletable: set[int] = set()  # message numbers of this session the destination confirmed
        self.refused: set[str] = set()  # state keys refused in an earlier pass: reported once, not resent
        self.deferred: list[Deferred] = []  # temporarily refused in this pass: sent again after a pause
        self.folder = FolderReport(source=SOURCE_FOLDER, destination="")

    # Recording ------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"source {self.source.url.display()}"

    def skip(self, m: Pop3Message, reason: str, detail: str, raw: bytes | None = None) -> None:
        self.folder.skipped += 1
        self.report.skipped.append(
            SkippedItem(folder=SOURCE_FOLDER, uid=m.number, message_id=message_id_of(raw) if raw else None,
                        reason=reason, detail=f"{detail} (UIDL {m.uidl or 'none'})")
        )
        self._spend(self.error_budget.charge_skip(reason))

    def fail(self, m: Pop3Message, exc: BaseException) -> None:
        self.folder.failed += 1
        self.report.errors.append(ItemError(folder=SOURCE_FOLDER, uid=m.number, error=type(exc).__name__,
                                            message=f"UIDL {m.uidl or 'none'}: {exc}"))
        self._spend(self.error_budget.charge())

    def _spend(self, exhausted: str | None) -> None:
        if exhausted and not self.report.aborted:
            self.report.aborted = exhausted

    def note(self, text: str) -> None:
        if text not in self.report.notes:
            self.report.notes.append(text)

    # The run --------------------------------------------------------------------------------

    def open_session(self) -> Pop3Source:
        """Log in; a login refused for now is tried again after the wait the server allows,
        when that is short (``replies.login_retry_delay``), else ``LoginDeferred`` is raised."""
        attempt = 0
        while True:
            try:
                return Pop3Source(self.source)
            except LoginDeferred as exc:
                wait = login_retry_delay(exc.code, exc.wait, attempt)
                if wait is None:
                    raise
                self.note(f"source login deferred ({exc.code}), tried again after {wait:g} s")
                self.timeline.backoff(wait, str(exc).rpartition(": ")[2], where=self._where, attempt=attempt + 1)
                attempt += 1

    def execute(self) -> None:
        opts = self.options
        self.session = self.open_session()  # log in first: typed failures before anything is written
        self.target = open_target(self.dest, opts.pop3_folder, dry_run=opts.dry_run, timeline=self.timeline)
        self.folder.destination = self.target.folder
        self.report.folders = [self.folder]
        self.report.pop3 = Pop3Report(delivery=self.target.kind, folder=self.target.folder,
                                      losses=list(self.target.losses))
        state_path = opts.state_path or default_state_path(self.report.source, self.report.destination)
        if not opts.dry_run or Path(state_path).exists():
            self.state = State(state_path, self.report.source, self.report.destination)
        if opts.mode == "replace":
            self._replace()
        if self.state is not None:
            self.started_rows = len(self.state.pop3_done())
            self._report_doubts()
        self.note("POP3 shows the inbox only: only the source INBOX is migrated (no other folders, no flags)")
        while True:
            try:
                self.one_pass()
                break
            except ConnectionFailed as exc:
                if self.report.aborted:
                    break
                self.session.abandon()  # no QUIT: nothing this session marked is deleted
                self.report.pop3.reconnects += 1
                if self.report.pop3.reconnects > MAX_RECONNECTS:
                    self.report.aborted = f"source connection lost {MAX_RECONNECTS + 1} times: {exc}"
                    break
                self.note(f"source connection lost, resumed in a new session: {exc}")
                try:
                    self.session = self.open_session()
                except MigratorError as again:
                    self.timeline.reconnect(str(again), where=self._where, outcome=FAILED)
                    if isinstance(again, AuthenticationFailed):  # an expired token: exit 4, not 5
                        self.report.login_refused = str(again)
                    self.report.aborted = f"source connection lost and could not be reopened: {again}"
                    break
                self.timeline.reconnect(str(exc).rpartition(": ")[2], where=self._where, outcome=RESUMED)
        self.report.pop3.destination_reconnects = self.target.reconnects
        self.finish_session()

    def _report_doubts(self) -> None:
        """Deliveries an earlier run started but died before seeing confirmed: LMTP/SMTP cannot
        look into the mailbox, so they are delivered again and may be there twice. Said plainly."""
        doubts = self.state.pop3_in_doubt() if self.state else []
        if doubts and not self.options.dry_run:
            self.report.pop3.possible_duplicates = len(doubts)
            self.note(f"{len(doubts)} message(s) were being delivered when an earlier run stopped (UIDL "
                      f"{', '.join(u or 'none' for u, _ in doubts[:10])}): delivery cannot be checked, so they are "
                      "delivered again and may be at the destination twice")
            self.state.pop3_forget_doubts()

    def _replace(self) -> None:
        """Replace mode: empty the destination folder and forget the checkpoint first."""
        if not isinstance(self.target, ImapTarget):
            raise UsageError("replace mode needs an IMAP destination: delivery cannot delete what is there")
        deleted = self.target.exists
        self.folder.notes.append(f"{'would delete' if self.options.dry_run else 'deleted'} {deleted} destination message(s)")
        if self.options.dry_run:
            return
        if deleted:
            self.target.sink.delete_all(self.target.folder, deleted)
            self.target.exists = 0
        if self.state is not None:
            self.state.pop3_forget()

    def one_pass(self) -> None:
        session, rep, opts = self.session, self.report.pop3, self.options
        assert session is not None and rep is not None and self.target is not None
        rep.login, rep.tls, rep.top = session.auth_method, session.tls, session.has_top
        rep.capabilities_before = sorted(session.caps_before)
        rep.capabilities_after = sorted(session.caps)
        listing = session.listing()
        rep.uidl = uidl_kind(listing)
        uidls = listing.uidls or {}
        messages = [Pop3Message(n, uidls.get(n, ""), size) for n, size in sorted(listing.sizes.items())]
        self.folder.source_count = len(messages)
        self.folder.already_present = 0
        self.deletable = set()
        self.deferred = []
        checkpoint = self._checkpoint()
        if session.has_top:  # a message whose TOP fails is settled after its RETR
            by_number = {m.number: m for m in messages}
            for chunk in batches(messages, opts.batch_size):
                for n, head in session.headers([m.number for m in chunk]).items():
                    by_number[n].identity = identity_of(head, by_number[n].size)
        pending = [m for m in messages if m.identity is None or not self._present(checkpoint, m)]
        if opts.dry_run:
            self.folder.copied = len(pending)
            return
        self.progress.start([(SOURCE_FOLDER, len(messages))])
        try:
            settled = len(messages) - len(pending)
            if settled:
                self.progress.advance(SOURCE_FOLDER, settled, 0)
            for chunk in batches(pending, opts.batch_size):
                self._copy(chunk, checkpoint)
                if self.report.aborted:
                    return
            self._retry_deferred(checkpoint)
        finally:
            self.progress.finish()

    def _retry_deferred(self, checkpoint: _Checkpoint) -> None:
        """Send the temporarily refused messages again after a pause, in bounded rounds (a
        sending MTA's queue, squeezed into one run); what is still refused is reported
        ``deferred`` and stays on the source for a later run."""
        waited, rounds, first = 0.0, 0, len(self.deferred)
        while self.deferred and not self.report.aborted:
            stated = [d.delay for d in self.deferred if d.delay is not None]
            wait = defer_delay(rounds, max(stated) if stated else None)
            if wait is None:
                break
            self.timeline.backoff(wait, self.deferred[-1].text, where=f"destination {self.dest.url.display()}",
                                  attempt=rounds + 1)
            waited, rounds = waited + wait, rounds + 1
            todo, self.deferred = self.deferred, []
            for chunk in batches([d.message for d in todo], self.options.batch_size):
                self._copy(chunk, checkpoint, retry=True)  # ConnectionFailed → new pass
                if self.report.aborted:
                    return
        for d in self.deferred:
            self.report.pop3.deferred += 1
            self.skip(d.message, "deferred", f"temporarily refused, still after {rounds} retries over {waited:g} s "
                      f"(kept on the source for a later run): {d.text}")
        if first:
            self.note(f"{first} message(s) temporarily refused by the destination (greylisting, throttling), sent again "
                      f"over {waited:g} s; {len(self.deferred)} still deferred: kept on the source, run again later")

    def _checkpoint(self) -> _Checkpoint:
        rows = self.state.pop3_done() if self.state else []
        dest = self.target.identities() if self.options.mode == "merge" else None
        old, new = rows[: self.started_rows], rows[self.started_rows :]
        # Matched earlier in this run (another pass) is still "found", never "copied by us".
        old += [r for r in new if r.via == "matched"]
        return _Checkpoint(old, [r for r in new if r.via != "matched"], dest)

    def _present(self, checkpoint: _Checkpoint, m: Pop3Message) -> bool:
        how = checkpoint.settle(m)
        if how is None:
            return False
        if how in ("new", "copied"):
            self.deletable.add(m.number)
        if how != "new":
            self.folder.already_present += 1
        if how == "found" and self.state and not self.options.dry_run:
            self.state.pop3_record([Pop3Confirmed(m.uidl, str(m.identity), self.target.folder, None, "matched")])
        return True

    def _copy(self, chunk: list[Pop3Message], checkpoint: _Checkpoint, *, retry: bool = False) -> None:
        """RETR and store one batch. ``retry``: deferred messages again (already dated and counted
        in the progress once)."""
        assert self.session is not None and self.target is not None
        bodies = self.session.retrieve([m.number for m in chunk])  # ConnectionFailed → new pass
        todo: list[tuple[Pop3Message, bytes]] = []
        for m in chunk:
            raw = bodies.get(m.number)
            if raw is None:
                self.skip(m, "source-refused", "the server answered RETR with -ERR")
                continue
            if m.identity is None:  # no TOP: settle now that the headers are known
                m.identity = identity_of(raw, m.size)
                if self._present(checkpoint, m):
                    continue
            if str(state_key(m.uidl, m.identity)) in self.refused:
                continue
            todo.append((m, raw))
        items = []
        for m, raw in todo:
            resolved = dates.resolve(None, raw)
            if not retry:
                self.report.date_fallbacks.append(
                    DateFallback(folder=SOURCE_FOLDER, uid=m.number, used=resolved.used,
                                 detail=f"POP3 (UIDL {m.uidl or 'none'}): {resolved.detail}")
                )
            items.append((raw, resolved.instant))
        # Delivery has no UID to match on later: each message is checkpointed as soon as it is
        # delivered, so a crash can leave at most one delivered message unrecorded (a duplicate
        # on the re-run). An IMAP folder is matched by identity, so a batch is checkpointed at once.
        step, nbytes = 1 if self.target.via == "delivered" else max(1, len(todo)), 0
        for start in range(0, len(todo), step):
            nbytes += self._store(todo[start:start + step], items[start:start + step])
            if self.report.aborted:
                break
        self.progress.advance(SOURCE_FOLDER, 0 if retry else len(chunk), nbytes)

    def _store(self, todo: list[tuple[Pop3Message, bytes]], items: list[tuple[bytes, datetime | None]]) -> int:
        """Store, then checkpoint what the destination confirmed; returns the bytes stored."""
        assert self.target is not None
        lost: AppendInterrupted | None = None
        if self.state and self.target.via == "delivered":
            for m, _ in todo:
                self.state.pop3_begin(m.uidl, str(m.identity))
        try:
            results = self.target.store(items)
        except AppendInterrupted as exc:
            results, lost = exc.results, exc
        confirmed, nbytes = [], 0
        for (m, raw), res in zip(todo, results):
            if res.ok:
                confirmed.append(Pop3Confirmed(m.uidl, str(m.identity), self.target.folder, res.uid, self.target.via))
                self.deletable.add(m.number)
                nbytes += m.size
            else:
                if self.state and self.target.via == "delivered":
                    self.state.pop3_end(m.uidl, str(m.identity))
                verdict = self.target.verdict(res.text)
                if verdict.action == RETRY_LATER:
                    self.deferred.append(Deferred(m, res.text, verdict.delay))
                    continue
                self.skip(m, verdict.reason, res.text, raw)
                self.refused.add(str(state_key(m.uidl, m.identity)))
                if verdict.action == STOP_RUN:
                    self.report.aborted = f"destination over quota (nothing more can be delivered): {res.text}"
        if self.state:
            self.state.pop3_record(confirmed)
        self.folder.copied += len(confirmed)
        self.folder.bytes += nbytes
        if lost is not None:
            # The fate of the rest is unknown: stop; a re-run matches what landed (IMAP) by identity.
            self.report.aborted = f"destination connection lost: {lost}"
        return nbytes

    def finish_session(self) -> None:
        """Delete what was asked and confirmed, then QUIT (which is what makes DELE take effect)."""
        session, rep = self.session, self.report.pop3
        assert session is not None and rep is not None
        if self.report.aborted:
            session.abandon()
            rep.kept = self.folder.source_count
            if self.options.pop3_delete:
                rep.delete_failed = "run aborted: nothing deleted from the source"
            return
        marked: list[int] = []
        try:
            session.reset()  # a server that deletes on RETR by itself must not get its way at QUIT
            if self.options.pop3_delete and not self.options.dry_run:
                marked = session.delete(sorted(self.deletable))
            session.quit()
        except MigratorError as exc:
            session.abandon()
            if self.options.pop3_delete:
                rep.delete_failed = f"session not ended by a confirmed QUIT, the server deleted nothing: {exc}"
            marked = []
        rep.deleted = len(marked)
        rep.kept = self.folder.source_count - rep.deleted
        if self.options.pop3_delete and len(marked) < self.folder.source_count and not rep.delete_failed:
            self.note(f"{self.folder.source_count - len(marked)} message(s) kept on the source: not confirmed by the destination")

    def close(self) -> None:
        if self.session is not None:
            self.session.abandon()
        if self.target is not None:
            self.target.close()
        if self.state is not None:
            self.state.close()


def test_pop3_or_delivery(endpoint: Endpoint, *, role: str) -> ConnectionReport:
    """``--test-connection`` for a POP3 source (log in, CAPA, LIST) or an LMTP/SMTP destination
    (greeting, LHLO/EHLO, login when a password is given): no message is read or sent."""
    t0 = time.monotonic()
    if endpoint.url.scheme in ("pop3", "pop3s"):
        session = Pop3Source(endpoint)
        try:
            count, caps, tls = len(session.listing().sizes), sorted(session.caps), session.tls
        finally:
            session.abandon()  # no QUIT: nothing can be deleted by a connection test
    else:
        target = open_target(endpoint, "INBOX", dry_run=True)
        caps = sorted(k.upper() for k in target.sink.client.esmtp_features)
        count, tls = 0, target.sink.tls
        target.close()
    return ConnectionReport(role=role, endpoint=endpoint.url.display(), tls=tls, capabilities=caps,
                            namespace_prefix="", delimiter=None, folders=1, inbox_messages=count,
                            seconds=round(time.monotonic() - t0, 3))


def left_behind(report: MigrationReport, options) -> None:
    """Say what POP3 could not see, when the caller knows the whole source mailbox."""
    rep = report.pop3
    if rep is None:
        return
    inbox = report.folders[0].source_count if report.folders else 0
    if options.source_total_messages is not None:
        rep.left_behind_messages = max(0, options.source_total_messages - inbox)
    if options.source_total_folders is not None:
        rep.left_behind_folders = max(0, options.source_total_folders - 1)
    if rep.left_behind_messages is not None or rep.left_behind_folders is not None:
        report.notes.append(
            f"left behind by POP3: {rep.left_behind_messages if rep.left_behind_messages is not None else '?'} message(s) "
            f"in {rep.left_behind_folders if rep.left_behind_folders is not None else '?'} other folder(s) of the source mailbox"
        )


def write_uidl_map(path: Path, state: State | None, report: MigrationReport, uidvalidity: int | None) -> None:
    """The source-UIDL map (format in docs: ``UIDL_MAP_FORMAT``): every message the destination
    holds for this source, with its source UIDL, so the destination can present the old UIDLs to
    POP3 clients (Dovecot's pop3_migration idea) and they do not download everything again.

    JSON: {"format", "source", "destination", "destination_uidvalidity", "messages": [
             {"uidl", "destination_folder", "destination_uid", "identity", "via"} ...]}
    CSV (a path ending .csv): the same message fields, one row each, with a header row.
    """
    rows = state.pop3_done() if state else []
    messages = [
        {"uidl": r.uidl or None, "destination_folder": r.dest_folder, "destination_uid": r.dest_uid,
         "identity": r.identity, "via": r.via}
        for r in rows
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["uidl", "destination_folder", "destination_uid", "identity", "via"])
            writer.writeheader()
            writer.writerows(messages)
    else:
        doc = {"format": UIDL_MAP_FORMAT, "source": report.source, "destination": report.destination,
               "destination_uidvalidity": uidvalidity, "messages": messages}
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if report.pop3 is not None:
        report.pop3.uidl_map = str(path)


def migrate_pop3(source: Endpoint, dest: Endpoint, options, progress: ProgressSink | None = None,
                 *, sleep=time.sleep) -> MigrationReport:
    """Copy a POP3 inbox (see the module docstring). Login failures raise before anything is
    written (``AuthenticationFailed``, ``LoginDeferred``, ``ConnectionFailed``, ``TlsFailure``);
    the rest is reported. ``sleep``: how pauses are waited (tests pass a fake)."""
    t0 = time.monotonic()
    run = Pop3Run(source, dest, options, progress or NullProgress(), sleep=sleep)
    try:
        run.execute()
    except KeyboardInterrupt:
        run.report.aborted = "interrupted"
    finally:
        try:
            if options.uidl_map_path and not options.dry_run and run.report.pop3 is not None:
                uidvalidity = run.target.uidvalidity if run.target else None
                write_uidl_map(Path(options.uidl_map_path), run.state, run.report, uidvalidity)
        finally:
            run.close()
    left_behind(run.report, options)
    run.report.total()
    run.report.seconds = round(time.monotonic() - t0, 3)
    run.report.events = run.timeline.events()
    return run.report
