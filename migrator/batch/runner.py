"""run_batch(): the single-account engine (``migrator.engine.migrate``) run for every line of a
batch file, on worker threads, under the caps of ``migrator.batch.schedule``.

Each account is isolated: whatever it raises (wrong password, unreachable host, a bug) becomes
its ``AccountResult`` with the error's class, and the other accounts go on. An account refused
for the moment (its user's connection limit is held by another client, a POP3 login delay) is
put back once and tried again ``retry_after`` seconds later (the server's delay when it said
one). Each account has its own checkpoint, importing log and result file
(``migrator.batch.ledger``), so running the batch again skips the accounts that finished and
continues the others from their checkpoints. Stopping (the ``stop`` event, set on Ctrl-C) starts
no new account and ends the running ones at their next batch of messages, checkpoints kept.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from migrator.batch.accounts import AccountLine, BatchFile, SecretRef
from migrator.batch.journal import Journal, report_events
from migrator.batch.ledger import Ledger, write_atomically
from migrator.batch.progress import AccountSink, BatchProgress, BatchStopped, NullBatchProgress
from migrator.batch.report import AccountResult, BatchReport, outcome
from migrator.batch.schedule import DEFAULT_CONNECTIONS, DEFAULT_PARALLEL, DEFAULT_PER_HOST, DEFAULT_RETRY_AFTER, Slots
from migrator.engine import MigrationOptions, migrate
from migrator.errors import ExitCode, LoginDeferred, MigratorError, TooManyConnections
from migrator.mitigations import Mitigations
from migrator.report import MigrationReport
from migrator.urls import Endpoint, Secret, ServerURL, resolve_secret

log = logging.getLogger(__name__)


class BatchOptions(BaseModel):
    outdir: Path
    per_host: int = DEFAULT_PER_HOST
    per_dest_host: int | None = Field(None, ge=1)  # accounts of one destination server at once; None = no cap (as before)
    accounts_parallel: int = DEFAULT_PARALLEL
    again: bool = False  # run finished accounts too (a delta pass: their checkpoints copy only what is new)
    retry_after: float = DEFAULT_RETRY_AFTER  # seconds before an account refused for its connection limit runs again
    migration: MigrationOptions = MigrationOptions(connections=DEFAULT_CONNECTIONS)
    source_cafile: Path | None = None
    dest_cafile: Path | None = None
    insecure: bool = False  # --insecure: no certificate verification for any account's servers (reported per account)


Migrate = Callable[..., MigrationReport]


def run_batch(batch: BatchFile, options: BatchOptions, *, name: str = "batch", progress: BatchProgress | None = None,
              stop: threading.Event | None = None, migrate_fn: Migrate = migrate) -> BatchReport:
    ledger = Ledger(options.outdir)
    ledger.lock()
    try:
        return _run(batch, options, ledger, name, progress or NullBatchProgress(), stop or threading.Event(), migrate_fn)
    finally:
        ledger.unlock()


def _run(batch: BatchFile, options: BatchOptions, ledger: Ledger, name: str, progress: BatchProgress,
         stop: threading.Event, migrate_fn: Migrate) -> BatchReport:
    t0 = time.monotonic()
    report = BatchReport(batch_file=name, started=datetime.now(timezone.utc), per_host=options.per_host,
                         per_dest_host=options.per_dest_host,
                         accounts_parallel=options.accounts_parallel, connections=options.migration.connections)
    results: dict[str, AccountResult] = {}
    dry_run = options.migration.dry_run  # plans only: neither reuses nor records finished accounts
    todo: list[AccountLine] = []
    for account in batch.accounts:
        earlier = ledger.previous(account.id)
        if earlier and earlier.finished and not (options.again or dry_run) and _same_pair(earlier, account):
            results[account.id] = earlier.model_copy(update={"reused": True})
        else:
            todo.append(account)
    slots = Slots(todo, per_host=options.per_host, per_dest_host=options.per_dest_host, stop=stop)
    lock = threading.Lock()

    retried: set[str] = set()  # accounts already given their one retry in this run

    def worker() -> None:
        while (account := slots.take()) is not None:
            retry_in = None
            try:
                result, retry_in = _run_account(account, options, ledger, progress, stop, migrate_fn,
                                                may_retry=account.id not in retried)
            finally:
                slots.release(account, retry_in=retry_in)
            if retry_in is not None:
                retried.add(account.id)
                progress.account_deferred(result, retry_in)
                continue
            with lock:
                results[account.id] = result
            progress.account_done(result)

    progress.begin(len(batch.accounts), len(results))
    threads = [threading.Thread(target=worker, name=f"batch-{i}", daemon=True)
               for i in range(max(1, min(options.accounts_parallel, len(todo))))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a timed join keeps Ctrl-C deliverable to this thread
    except KeyboardInterrupt:
        report.stopped = "interrupted"
        stop.set()
        for t in threads:
            t.join()
    finally:
        progress.end()
    if stop.is_set() and not report.stopped:
        report.stopped = "stopped"
    report.accounts = [results[a.id] for a in batch.accounts if a.id in results]
    report.not_started = [a.id for a in slots.left()]
    report.peak_per_host = dict(slots.peak_per_host)
    report.peak_per_dest_host = dict(slots.peak_per_dest_host)
    report.peak_running = slots.peak_running
    report.seconds = round(time.monotonic() - t0, 3)
    write_atomically(ledger.summary_path, report.model_dump_json(indent=2))
    return report


def _same_pair(earlier: AccountResult, account: AccountLine) -> bool:
    """A finished result counts only for the same source and destinations (the file may have
    changed: a pim column added later runs the account again; its checkpoint skips the mail)."""
    pim = account.pim.display() if account.pim else None
    return (earlier.source, earlier.destination, earlier.pim_destination) == (
        account.source.display(), account.dest.display(), pim)


def _run_account(account: AccountLine, options: BatchOptions, ledger: Ledger, progress: BatchProgress,
                 stop: threading.Event, migrate_fn: Migrate, *, may_retry: bool) -> tuple[AccountResult, float | None]:
    """Run one account; its result, and when to try it again (None: don't) — once, after a
    refusal that is about the moment, not the account: its connection limit, a login delay."""
    earlier = ledger.previous(account.id)
    attempts = (earlier.attempts + 1) if earlier and _same_pair(earlier, account) else 1
    journal = Journal(ledger.journal_path(account.id))
    journal.event("start", account=account.id, line=account.line, source=account.source.display(),
                  destination=account.dest.display(), pim_destination=account.pim.display() if account.pim else None,
                  attempt=attempts,
                  resumed=ledger.state_path(account.id).exists())
    progress.account_started(account.id)
    result = AccountResult(id=account.id, line=account.line, source=account.source.display(),
                           destination=account.dest.display(), exit_code=int(ExitCode.OK), outcome="ok",
                           attempts=attempts, pim_destination=account.pim.display() if account.pim else None)
    report: MigrationReport | None = None
    retry_in: float | None = None
    t0 = time.monotonic()
    try:
        source = Endpoint(_tls(account.source, options), _reveal(account.source_secret, "source"),
                          cafile=options.source_cafile)
        dest = Endpoint(_tls(account.dest, options), _reveal(account.dest_secret, "dest"), cafile=options.dest_cafile)
        run_options = options.migration.model_copy(update={"state_path": ledger.state_path(account.id)})
        extra = {}
        if account.pim is not None:  # an EWS source's contacts/calendars/tasks/notes (the single run's --pim-to)
            extra["pim_dest"] = Endpoint(_tls(account.pim, options), _reveal(account.pim_secret, "pim"),
                                         cafile=options.dest_cafile)
        report = migrate_fn(source, dest, run_options, AccountSink(account.id, progress, journal, stop), **extra)
    except MigratorError as exc:
        _classify(result, int(exc.exit_code), f"{type(exc).__name__}: {exc}")
        if may_retry and not stop.is_set() and isinstance(exc, (TooManyConnections, LoginDeferred)) \
                and Mitigations(options.migration.disable).on("batch-connection-retry"):
            retry_in = getattr(exc, "wait", None) or options.retry_after
    except BatchStopped as exc:  # raised through a flow that does not catch its sink's errors
        _classify(result, int(ExitCode.ABORTED), f"stopped: {exc}")
    except Exception as exc:  # a bug in one account must not stop the others
        log.exception("account %s (line %d) failed with an unexpected error", account.id, account.line)
        _classify(result, int(ExitCode.ABORTED), f"internal error: {type(exc).__name__}: {exc}")
    if report is not None:
        _fill(result, report)
        for kind, fields in report_events(report):
            journal.event(kind, **fields)
    result.seconds = round(time.monotonic() - t0, 3)
    result.finished_at = datetime.now(timezone.utc)
    journal.event("end", outcome=result.outcome, exit_code=result.exit_code, error=result.error,
                  copied=result.copied, already_present=result.already_present, skipped=result.skipped,
                  failed=result.failed, bytes=result.bytes, seconds=result.seconds, retry_in=retry_in)
    journal.close()
    if not options.migration.dry_run:
        ledger.save(account.id, result, report)
    return result, retry_in


def _tls(url: ServerURL, options: BatchOptions) -> ServerURL:
    """The account's URL under the command line's ``--insecure`` (as a single run's ``endpoint_from_args``)."""
    return dataclasses.replace(url, tls_verify=False) if options.insecure else url


def _reveal(ref: SecretRef, role: str) -> Secret:
    """The account's secret, read now (a variable or file that changed since parsing counts)."""
    if ref.kind == "plain":
        assert ref.plain is not None
        return ref.plain
    if ref.kind == "none":
        return Secret("")
    try:
        return resolve_secret(env=ref.ref if ref.kind == "env" else None, file=Path(ref.ref) if ref.kind == "file" else None)
    except MigratorError as exc:
        raise type(exc)(f"{role} secret {ref}: {exc}") from None


def _classify(result: AccountResult, code: int, error: str | None) -> None:
    result.exit_code, result.outcome, result.error = code, outcome(code), error


def _fill(result: AccountResult, report: MigrationReport) -> None:
    result.copied, result.already_present = report.copied, report.already_present
    result.skipped, result.failed, result.bytes = report.skipped_count, report.failed, report.bytes
    result.tls_unverified = list(report.tls_unverified)
    _classify(result, report.exit_code, f"aborted: {report.aborted}" if report.aborted else None)
