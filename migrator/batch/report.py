"""The batch's results: one ``AccountResult`` per line, the ``BatchReport`` over all, and the
summary table printed in the single run's style.

The batch's exit code is the highest account exit code (``migrator.errors.ExitCode``: 0 all ok,
1 items skipped or failed, 2 bad input for an account, 3 connection/TLS, 4 login refused,
5 aborted — resumable); an account's *outcome* is that code's name.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from rich.table import Table

from migrator.errors import ExitCode

OUTCOMES = {
    ExitCode.OK: "ok",
    ExitCode.ITEMS_SKIPPED: "items-skipped",
    ExitCode.USAGE: "bad-input",
    ExitCode.CONNECTION: "connection",
    ExitCode.AUTHENTICATION: "authentication",
    ExitCode.ABORTED: "aborted",
}
FINISHED = (ExitCode.OK, ExitCode.ITEMS_SKIPPED)  # not redone by a resumed batch


def outcome(code: int) -> str:
    return OUTCOMES[ExitCode(code)]


class AccountResult(BaseModel):
    id: str
    line: int
    source: str  # URLs without secrets
    destination: str
    pim_destination: str | None = None  # an EWS source's contacts/calendars/tasks/notes (the line's pim column)
    exit_code: int
    outcome: str  # "ok", "items-skipped", "bad-input", "connection", "authentication", "aborted"
    error: str | None = None  # why the account did not finish: "AuthenticationFailed: …"
    copied: int = 0
    already_present: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    tls_unverified: list[str] = []  # "source imaps://…": servers whose certificate was not verified (--insecure)
    seconds: float = 0.0
    attempts: int = 1  # runs of this account over the resumed batches
    reused: bool = False  # finished in an earlier run of the batch: not run again this time
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.exit_code in FINISHED


class BatchReport(BaseModel):
    batch_file: str
    started: datetime
    seconds: float = 0.0
    per_host: int
    per_dest_host: int | None = None  # None: destination servers not capped
    accounts_parallel: int
    connections: int  # per account
    accounts: list[AccountResult] = []
    not_started: list[str] = []  # ids never started (the batch was interrupted)
    peak_per_host: dict[str, int] = {}  # most accounts of each source server that ran together
    peak_per_dest_host: dict[str, int] = {}  # most accounts of each destination server (mail or PIM) together
    peak_running: int = 0
    stopped: str | None = None  # why the batch stopped early (Ctrl-C)

    @property
    def exit_code(self) -> int:
        codes = [a.exit_code for a in self.accounts]
        if self.not_started:
            codes.append(int(ExitCode.ABORTED))
        return max(codes, default=int(ExitCode.OK))

    def totals(self) -> dict[str, int]:
        fields = ("copied", "already_present", "skipped", "failed", "bytes")
        out = {f: sum(getattr(a, f) for a in self.accounts) for f in fields}
        for name in OUTCOMES.values():
            out[name] = sum(1 for a in self.accounts if a.outcome == name)
        return out


def summary_table(report: BatchReport) -> Table:
    """One row per account (the single run's figures; source and destination URLs are in the
    JSON), totals and every account's failure in the caption."""
    table = Table(title=f"batch {report.batch_file}: {len(report.accounts)} account(s)")
    table.add_column("account", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for col in ("copied", "present", "skipped", "failed", "MB", "s"):
        table.add_column(col, justify="right")
    for a in report.accounts:
        table.add_row(a.id, a.outcome + ("*" if a.reused else ""), str(a.copied), str(a.already_present),
                      str(a.skipped), str(a.failed), f"{a.bytes / 1e6:.1f}", f"{a.seconds:.1f}")
    t = report.totals()
    this_run = sum(a.copied for a in report.accounts if not a.reused)
    rate = this_run / report.seconds if report.seconds else 0.0
    outcomes = ", ".join(f"{t[name]} {name}" for name in OUTCOMES.values() if t[name])
    table.caption = (
        f"{outcomes or 'no accounts'}; {t['copied']} copied, {t['already_present']} already present, "
        f"{t['skipped']} skipped, {t['failed']} failed; this run {this_run} in {report.seconds:.1f} s "
        f"({rate:.0f} msg/s), at most {report.per_host} account(s) per source server, "
        + (f"{report.per_dest_host} per destination server, " if report.per_dest_host else "")
        + f"{report.accounts_parallel} in parallel"
    )
    if any(a.reused for a in report.accounts):
        table.caption += "\n* finished in an earlier run of this batch, not run again (--again runs them)"
    if report.stopped:
        table.caption += f"\nSTOPPED: {report.stopped}; {len(report.not_started)} account(s) not started (re-run to resume)"
    unverified = [a.id for a in report.accounts if a.tls_unverified]
    if unverified:
        table.caption += f"\nWARNING: TLS certificate verification was OFF for {', '.join(unverified)} (--insecure)"
    for a in report.accounts:
        if a.error:
            table.caption += f"\n{a.id} (line {a.line}): {a.outcome}: {a.error}"
    return table
