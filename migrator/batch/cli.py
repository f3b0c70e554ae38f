"""``quirkmail migrate --batch accounts.csv``: the batch's arguments and the command.

    quirkmail migrate --batch accounts.csv [--outdir DIR] [--per-host 4] [--per-dest-host N] [--accounts-parallel 8]
                      [--connections 2] [--again] [any single-run option: --mode, --include, …]

The other ``migrate`` options apply to every account. Progress bars only on a terminal; the
summary table always; ``<outdir>/summary.json`` (or ``--report``) and the per-account files of
``migrator.batch.ledger``. Exit code: the worst (highest) account exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from migrator.batch.schedule import DEFAULT_CONNECTIONS, DEFAULT_PARALLEL, DEFAULT_PER_HOST, DEFAULT_RETRY_AFTER
from migrator.errors import MigratorError, UsageError

# Single-run options that name one account's files or servers: meaningless for a whole batch.
SINGLE_ONLY = {"source_url": "--from", "dest_url": "--to", "state": "--state", "uidl_map": "--uidl-map",
               "pim_url": "--pim-to", "test_connection": "--test-connection",
               "source_password_env": "--from-password-env", "source_password_file": "--from-password-file",
               "dest_password_env": "--to-password-env", "dest_password_file": "--to-password-file"}


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("batch migrations (many accounts from one file)")
    group.add_argument("--batch", type=Path, metavar="FILE",
                       help="one account pair a line: a CSV with a header (source,source_user,source_secret,"
                       "dest,dest_user,dest_secret[,id][,pim,pim_user,pim_secret]; secrets as env:NAME or file:PATH; "
                       "pim: an EWS source's contacts/calendars/tasks/notes, dav:// or ews://) or imapsync's "
                       "host1;user1;password1;host2;user2;password2; lines (migrator.batch.accounts)")
    group.add_argument("--outdir", type=Path, metavar="DIR",
                       help="logs, checkpoints, results and summary.json (default: FILE's name + '-batch' "
                       "beside it); run again with the same DIR to resume")
    group.add_argument("--per-host", type=int, default=DEFAULT_PER_HOST, metavar="N",
                       help=f"accounts of one source server (host:port) migrated at once (default {DEFAULT_PER_HOST})")
    group.add_argument("--per-dest-host", type=int, default=None, metavar="N",
                       help="accounts of one destination server (mail or PIM; host:port) migrated at once "
                       "(default: not capped; each holds up to 1 + --connections destination connections)")
    group.add_argument("--accounts-parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
                       help=f"accounts migrated at once over all servers (default {DEFAULT_PARALLEL})")
    group.add_argument("--retry-after", type=float, default=DEFAULT_RETRY_AFTER, metavar="SECONDS",
                       help="an account refused for its connection limit (another client holds them) or a login "
                       f"delay is tried once more this much later (default {DEFAULT_RETRY_AFTER:.0f})")
    group.add_argument("--again", action="store_true",
                       help="run accounts that finished in an earlier run too (a delta pass copies only new mail)")


def run_batch_command(args: argparse.Namespace, *, console: Console, err: Console) -> int:
    from migrator.batch.accounts import load_batch
    from migrator.batch.progress import NullBatchProgress, RichBatchProgress
    from migrator.batch.report import summary_table
    from migrator.batch.runner import BatchOptions, run_batch
    from migrator.cli import options_from_args

    try:
        given = [flag for attr, flag in SINGLE_ONLY.items() if getattr(args, attr, None)]
        if given:
            raise UsageError(f"{', '.join(given)}: not with --batch (the batch file names the accounts)")
        dest_cap = 1 if args.per_dest_host is None else args.per_dest_host  # None: not capped
        if min(args.per_host, args.accounts_parallel, dest_cap) < 1:
            raise UsageError("--per-host, --per-dest-host and --accounts-parallel must be at least 1")
        batch = load_batch(args.batch)
        outdir = args.outdir or args.batch.with_name(f"{args.batch.stem}-batch")
        options = BatchOptions(
            outdir=outdir,
            per_host=args.per_host,
            per_dest_host=args.per_dest_host,
            accounts_parallel=args.accounts_parallel,
            again=args.again,
            retry_after=args.retry_after,
            migration=options_from_args(args, default_connections=DEFAULT_CONNECTIONS),
            source_cafile=args.source_cafile or args.cafile,
            dest_cafile=args.dest_cafile or args.cafile,
            insecure=args.insecure,
        )
    except MigratorError as exc:
        err.print(f"quirkmail migrate: {exc}", markup=False, highlight=False)
        return int(exc.exit_code)
    for warning in batch.warnings:
        err.print(f"quirkmail migrate: warning: {warning}", markup=False, highlight=False)
    progress = RichBatchProgress(err) if err.is_terminal else NullBatchProgress()
    try:
        report = run_batch(batch, options, name=str(args.batch), progress=progress)
    except MigratorError as exc:  # the output folder is in use, or cannot be made
        err.print(f"quirkmail migrate: {exc}", markup=False, highlight=False)
        return int(exc.exit_code)
    console.print(summary_table(report))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    err.print(f"logs and results: {outdir}", markup=False, highlight=False)
    return report.exit_code
