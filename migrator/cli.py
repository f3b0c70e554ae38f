"""``quirkmail migrate``: argument definitions and the command, wired in by ``scenarios.cli``.

    quirkmail migrate --from imap://alice@old.example:143 --to imaps://alice@new.example \\
        --from-password-env OLD_PW --to-password-file ~/.new-pw [--mode replace] [--dry-run]

Passwords come from an environment variable, a file, or an interactive prompt (only when stdin
is a terminal) — never from argv. Exit codes are ``migrator.errors.ExitCode``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from migrator.error_budget import DEFAULT_MAX_ITEM_ERRORS
from migrator.errors import ExitCode, MigratorError, UsageError
from migrator.timeouts import DEFAULT_BASE, DEFAULT_PER_1000
from migrator.urls import Endpoint, Secret, ServerURL, resolve_secret


def add_endpoint_arguments(parser: argparse.ArgumentParser, role: str, flag: str, *, label: str | None = None,
                           required: bool = True) -> None:
    """``--FLAG URL``, ``--FLAG-password-env VAR``, ``--FLAG-password-file F``, ``--FLAG-cafile PEM``."""
    label = label or role
    parser.add_argument(f"--{flag}", required=required, metavar="URL", dest=f"{role}_url",
                        help=f"{label} mailbox: imap://user@host[:port][?starttls=required|no&ca=PEM&verify=no&auth=xoauth2] "
                        "or imaps://… (auth=xoauth2: the secret is an OAuth access token)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(f"--{flag}-password-env", metavar="VAR", dest=f"{role}_password_env",
                        help=f"environment variable holding the {label} password or token (read again at every connect)")
    secret.add_argument(f"--{flag}-password-file", type=Path, metavar="FILE", dest=f"{role}_password_file",
                        help=f"file holding the {label} password or token (trailing newline ignored; read again at "
                        "every connect, so a refreshed token file is picked up)")
    parser.add_argument(f"--{flag}-cafile", f"--{flag}-ca-file", type=Path, metavar="PEM", dest=f"{role}_cafile",
                        help=f"extra CA certificate to trust for the {label} (overrides --ca-file)")


def endpoint_from_args(args: argparse.Namespace, role: str, *, interactive: bool | None = None) -> Endpoint:
    """The Endpoint for ``role``; prompts for the password only when stdin is a terminal."""
    url = ServerURL.parse(getattr(args, f"{role}_url"))
    if getattr(args, "insecure", False):
        url = dataclasses.replace(url, tls_verify=False)
    env, file = getattr(args, f"{role}_password_env", None), getattr(args, f"{role}_password_file", None)
    cafile = getattr(args, f"{role}_cafile", None) or getattr(args, "cafile", None)
    if url.scheme == "lmtp" and not env and not file:
        return Endpoint(url, Secret(""), cafile=cafile)  # LMTP delivers without a login
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not env and not file and not interactive:
        raise UsageError(f"no password for {role} {url.display()}: give --…-password-env or --…-password-file")
    prompt = f"{role} password for {url.display()}: " if interactive else None
    password = resolve_secret(env=env, file=file, prompt=prompt)
    return Endpoint(url, password, cafile=cafile)


def add_migrate_arguments(parser: argparse.ArgumentParser) -> None:
    # --from/--to are required unless --batch names a file of account pairs (run_migrate checks).
    add_endpoint_arguments(parser, "source", "from", label="source", required=False)
    add_endpoint_arguments(parser, "dest", "to", label="destination", required=False)
    parser.add_argument("--ca-file", "--cafile", type=Path, metavar="PEM", dest="cafile",
                        help="extra CA certificate to trust for both servers (certificates are always verified)")
    parser.add_argument("--insecure", action="store_true",
                        help="skip TLS certificate verification for every server (said in the report; "
                        "per server: ?verify=no)")
    parser.add_argument("--mode", choices=("merge", "replace"), default="merge",
                        help="merge (default): never overwrite or duplicate; replace: delete existing "
                        "destination messages in the mapped folders first")
    parser.add_argument("--target-root", default="", metavar="A/B", help="copy everything below this destination folder")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="only source folders matching (path joined with '/'; repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip source folders matching (repeatable)")
    parser.add_argument("--no-special-use", action="store_true", help="keep special folders' names instead of mapping by role")
    parser.add_argument("--dry-run", action="store_true", help="plan only: show what would be copied, write nothing")
    parser.add_argument("--connections", type=int, metavar="N",
                        help="parallel folder workers (default 4; with --batch: per account, default 2)")
    parser.add_argument("--batch-size", type=int, default=200, metavar="N", help="messages per FETCH/APPEND batch")
    parser.add_argument("--state", type=Path, metavar="PATH", help="checkpoint file (default: under ~/.local/state/quirkmail)")
    parser.add_argument("--report", type=Path, metavar="FILE.json", help="write the migration report as JSON")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="write every protocol session as a transcript into DIR (passwords masked)")
    parser.add_argument("--max-item-errors", type=int, default=DEFAULT_MAX_ITEM_ERRORS, metavar="N",
                        help=f"stop after N item errors (default {DEFAULT_MAX_ITEM_ERRORS}; 0 = never): exit code 5, "
                        "a re-run resumes")
    parser.add_argument("--pop3-folder", default="INBOX", metavar="A/B",
                        help="POP3 source (pop3://, pop3s://): destination folder for the inbox (default INBOX); "
                        "with --to lmtp://user@host:port or smtp://… the messages are delivered instead")
    parser.add_argument("--pop3-delete", action="store_true",
                        help="POP3 source: delete from the server what the destination confirmed (default: leave on server)")
    parser.add_argument("--uidl-map", type=Path, metavar="FILE", dest="uidl_map",
                        help="POP3 source: write the source-UIDL map (JSON, or CSV when FILE ends .csv; "
                        "format: migrator.pop3_flow.write_uidl_map)")
    parser.add_argument("--test-connection", action="store_true", help="only log in to both servers and show what they offer")
    # Collaboration data (EWS sources: ews://user@host, ews+http://… for simulators)
    add_endpoint_arguments(parser, "pim", "pim-to", label="contacts/calendars/tasks/notes destination "
                           "(dav://user@host[:port][/home/], dav+http://…)", required=False)
    parser.add_argument("--items", default="", metavar="KINDS",
                        help="what to import, comma-separated: mail,contacts,calendars,tasks,notes "
                        "(default: everything the source offers; IMAP and POP3 offer mail only)")
    parser.add_argument("--gmail-labels", choices=("once", "per-label"), default="once",
                        help="Gmail sources: copy each message once (into its first label's folder, default) "
                        "or into every label's folder; archive-only mail goes to Archive either way")
    parser.add_argument("--disable", action="append", default=[], metavar="MITIGATION",
                        help="switch a quirk mitigation off (repeatable; names in migrator.mitigations), "
                        "to reproduce what a naive tool does")
    parser.add_argument("--byte-budget", type=float, default=None, metavar="MB", dest="byte_budget_mb",
                        help="stop cleanly (exit 5, resumable) after about this many MB downloaded from the "
                        "source, below a provider's daily cap (Gmail: 2500 MB a day)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_BASE, metavar="SECONDS", dest="read_timeout",
                        help=f"seconds to wait for any reply (default {DEFAULT_BASE:g})")
    parser.add_argument("--timeout-per-1000", type=float, default=DEFAULT_PER_1000, metavar="SECONDS",
                        dest="timeout_per_1000",
                        help="seconds more per 1000 messages of the folder a command is about: big folders answer "
                        f"slowly (default {DEFAULT_PER_1000:g})")
    parser.add_argument("--deleted-items", choices=("by-kind", "mail-only"), default="by-kind",
                        help="non-mail items found in Deleted Items: migrate them to their kind's collection "
                        "(by-kind, default) or report them as unmigratable (mail-only destinations)")
    parser.add_argument("--ignore-capability", action="append", default=[], metavar="CAP", dest="ignore_capabilities",
                        help="never use this advertised extension on either side (repeatable; e.g. MOVE on "
                        "Exchange 2013, whose MOVE does not move)")
    parser.add_argument("--long-lines", choices=("skip", "rewrap"), default="skip",
                        help="messages with a line over the destination's limit (Exchange: ~9900 characters): "
                        "skip and report them (default) or re-encode the long parts quoted-printable (reported)")
    parser.add_argument("--max-line-length", type=int, metavar="N",
                        help="longest line the destination takes (default: 9900 on Exchange/M365, else no limit)")
    from migrator.batch.cli import add_batch_arguments

    add_batch_arguments(parser)


def run_migrate(args: argparse.Namespace, *, console: Console | None = None) -> int:
    from migrator.engine import migrate, test_connection
    from migrator.progress import NullProgress, RichProgress
    from migrator.recording import recorded

    console = console or Console(stderr=False)
    err = Console(stderr=True)
    if getattr(args, "batch", None):
        from migrator.batch.cli import run_batch_command

        if getattr(args, "record", None):
            err.print("quirkmail migrate: --record records one migration; it cannot be combined with --batch",
                      markup=False, highlight=False, soft_wrap=True)
            return int(ExitCode.USAGE)
        return run_batch_command(args, console=console, err=err)
    recorder = None
    try:
        if not args.source_url or not args.dest_url:
            raise UsageError("--from and --to are required (or --batch FILE for many accounts)")
        recorder = _recorder(args.record) if getattr(args, "record", None) else None
        source = recorded(endpoint_from_args(args, "source"), recorder, "source")
        dest = recorded(endpoint_from_args(args, "dest"), recorder, "destination")
        pim = endpoint_from_args(args, "pim") if getattr(args, "pim_url", None) else None
        pim = recorded(pim, recorder, "pim") if pim is not None else None
        if args.test_connection:
            reports = [test_connection(source, role="source"), test_connection(dest, role="destination")]
            if pim is not None:
                reports.append(test_connection(pim, role="pim destination"))
            console.print(connection_table(reports))
            return int(ExitCode.OK)
        options = options_from_args(args)
        for line in collab_preamble(source, options, pim):
            err.print(line, markup=False, highlight=False)
        progress = RichProgress(err) if err.is_terminal else NullProgress()
        report = migrate(source, dest, options, progress, pim_dest=pim)
    except MigratorError as exc:
        err.print(f"quirkmail migrate: {exc}", markup=False, highlight=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err.print("quirkmail migrate: interrupted")
        return int(ExitCode.ABORTED)
    finally:
        if recorder is not None:
            recorder.close()
            err.print(f"transcripts: {len(recorder.paths)} session(s) in {recorder.directory}",
                      markup=False, highlight=False)
            for failure in recorder.failures:
                err.print(f"WARNING: {failure}", markup=False, highlight=False, soft_wrap=True)
    console.print(summary_table(report))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    return report.exit_code


def _recorder(directory: Path):
    from transcripts.tap import Recorder

    try:
        return Recorder(directory)
    except OSError as exc:
        raise UsageError(f"--record {directory}: cannot create the folder: {exc.strerror or exc}") from None


def options_from_args(args: argparse.Namespace, *, default_connections: int = 4):
    """The engine's MigrationOptions from the shared ``migrate`` arguments (single run and batch)."""
    from migrator.engine import MigrationOptions
    from migrator.mitigations import UnknownMitigation, check_names

    connections = args.connections if args.connections is not None else default_connections
    if connections < 1 or args.batch_size < 1:
        raise UsageError("--connections and --batch-size must be at least 1")
    if getattr(args, "max_item_errors", 0) < 0:
        raise UsageError("--max-item-errors must be 0 (no limit) or more")
    disabled = getattr(args, "disable", [])
    try:
        check_names(disabled)
    except UnknownMitigation as exc:
        raise UsageError(f"--disable: {exc}") from None
    budget = getattr(args, "byte_budget_mb", None)
    timeout = getattr(args, "read_timeout", DEFAULT_BASE)
    per_1000 = getattr(args, "timeout_per_1000", DEFAULT_PER_1000)
    if (budget is not None and budget <= 0) or timeout <= 0 or per_1000 < 0:
        raise UsageError("--byte-budget and --timeout must be positive, --timeout-per-1000 at least 0")
    return MigrationOptions(
        mode=args.mode,
        target_root=[p for p in args.target_root.split("/") if p],
        include=args.include,
        exclude=args.exclude,
        map_special_use=not args.no_special_use,
        dry_run=args.dry_run,
        connections=connections,
        batch_size=args.batch_size,
        state_path=args.state,
        pop3_folder=getattr(args, "pop3_folder", "INBOX"),
        pop3_delete=getattr(args, "pop3_delete", False),
        uidl_map_path=getattr(args, "uidl_map", None),
        items=parse_items(getattr(args, "items", "")),
        deleted_items=getattr(args, "deleted_items", "by-kind"),
        gmail_labels=getattr(args, "gmail_labels", "once"),
        disable=disabled,
        byte_budget_mb=budget,
        read_timeout=timeout,
        timeout_per_1000=per_1000,
        ignore_capabilities=getattr(args, "ignore_capabilities", []),
        long_lines=getattr(args, "long_lines", "skip"),
        max_line_length=getattr(args, "max_line_length", None),
        max_item_errors=getattr(args, "max_item_errors", DEFAULT_MAX_ITEM_ERRORS),
    )


def summary_table(report) -> Table:
    verb = "would copy" if report.dry_run else "copied"
    table = Table(title=f"{report.source} → {report.destination} ({report.mode}{', dry run' if report.dry_run else ''})")
    for col in ("source folder", "destination", "messages", verb, "present", "skipped", "failed", "MB"):
        table.add_column(col, justify="right" if col not in ("source folder", "destination") else "left")
    for f in report.folders:
        table.add_row(f.source, f.destination, str(f.source_count), str(f.copied), str(f.already_present),
                      str(f.skipped), str(f.failed), f"{f.bytes / 1e6:.1f}")
    rate = report.copied / report.seconds if report.seconds else 0.0
    table.caption = (
        f"{report.copied} {verb}, {report.already_present} already present, {report.skipped_count} skipped, "
        f"{report.failed} failed in {report.seconds:.1f} s ({rate:.0f} msg/s)"
        + (f" — ABORTED: {report.aborted} (re-run to resume)" if report.aborted else "")
    )
    pop3 = getattr(report, "pop3", None)
    if pop3 is not None:  # what the POP3 path cannot carry, said plainly
        table.caption += f"\nPOP3 ({pop3.login}, TLS {pop3.tls}, UIDL {pop3.uidl}) → {pop3.delivery} {pop3.folder!r}: " \
            f"{pop3.deleted} deleted from the source, {pop3.kept} left there"
        for note in report.notes:
            table.caption += f"\nnote: {note}"
        for loss in pop3.losses:
            table.caption += f"\nloses {loss}"
        if pop3.delete_failed:
            table.caption += f"\nnot deleted: {pop3.delete_failed}"
    if getattr(report, "collapsed", 0):
        table.caption += f"\n{report.collapsed} Gmail label copies not copied again (--gmail-labels {report.gmail_labels})"
    if getattr(report, "tls_unverified", None):  # never let an unverified run pass for a verified one
        table.caption += f"\nWARNING: TLS certificate NOT verified for {', '.join(report.tls_unverified)}"
    if getattr(report, "mitigations_off", None):  # never let a naive run pass for a careful one
        table.caption += f"\nmitigations OFF: {', '.join(report.mitigations_off)}"
    for s in report.skipped[:20]:
        table.caption += f"\nskipped {s.folder} UID {s.uid}: {s.reason} {s.detail}"
    for r in getattr(report, "repaired", [])[:20]:
        table.caption += f"\nrepaired {r.folder} UID {r.uid}: {r.repair} {r.detail}"
    if getattr(report, "flags_restored", 0):
        table.caption += f"\n\\Flagged set again after APPEND on {report.flags_restored} message(s)"
    if getattr(report, "mdn_neutralised", 0):
        table.caption += f"\n$MDNSent added to {report.mdn_neutralised} read message(s) asking for a receipt"
    for k in getattr(report, "kinds", []):
        table.caption += (f"\n{k.kind}: {k.source} found, {k.copied} {verb}, {k.already_present} present, "
                          f"{k.failed} failed, {k.unmigratable} not migrated")
    for u in getattr(report, "unmigratable", [])[:20]:
        table.caption += f"\nnot migrated: {u.count} {u.kind} in {u.folder}: {u.reason}"
    for kind in getattr(report, "not_offered", []):
        table.caption += f"\nnot offered by the source: {kind}"
    for e in report.errors[:20]:
        which = f"UID {e.uid}" if e.uid is not None or not getattr(e, "item_id", None) else f"ItemId {e.item_id}"
        table.caption += f"\nfailed {e.folder} {which}: {e.error}: {e.message}"
    return table


def parse_items(text: str) -> list[str]:
    """``--items mail,contacts`` → ["mail", "contacts"]; unknown kinds are a usage error."""
    from migrator.collab.kinds import ITEM_KINDS

    items = [i.strip().lower() for i in text.split(",") if i.strip()]
    unknown = [i for i in items if i not in ITEM_KINDS]
    if unknown:
        raise UsageError(f"--items: unknown kind(s) {', '.join(unknown)}; choose from {','.join(ITEM_KINDS)}")
    return items


def collab_preamble(source: Endpoint, options, pim: Endpoint | None) -> list[str]:
    """What will not happen, said before the run: kinds the source cannot offer, PIM without --pim-to."""
    from migrator.collab.kinds import ITEM_KINDS, MAIL_ONLY, not_offered

    if source.url.scheme in ("ews", "ews+http"):
        wanted = [i for i in (options.items or ITEM_KINDS) if i != "mail"]
        return [f"no --pim-to: {', '.join(wanted)} will not be migrated (reported per folder)"] if wanted and not pim else []
    missing = not_offered(options.items, MAIL_ONLY)
    if missing:
        return [f"{source.url.scheme}:// offers mail only: {', '.join(missing)} cannot be migrated from it"]
    return []


def connection_table(reports) -> Table:
    table = Table(title="connection test")
    for col in ("role", "endpoint", "TLS", "namespace", "folders", "INBOX", "seconds", "capabilities"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.role, r.endpoint, r.tls, f"{r.namespace_prefix!r} {r.delimiter!r}", str(r.folders),
                      str(r.inbox_messages), f"{r.seconds:.2f}", " ".join(r.capabilities))
    return table
