"""The batch's output folder, which is also what lets a batch resume.

    <outdir>/summary.json                 the BatchReport of the last run
    <outdir>/accounts/<id>.jsonl          the account's importing log (appended by every attempt)
    <outdir>/accounts/<id>.result.json    its last AccountResult: a finished one is not redone
    <outdir>/accounts/<id>.report.json    its last full MigrationReport
    <outdir>/state/<id>.sqlite            its checkpoint (migrator.state): a half-done account
                                          continues where the destination last confirmed
    <outdir>/.lock                        held while a batch runs: two at once would share checkpoints

Result files are written whole and renamed into place, so a crash never leaves half a result.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from migrator.batch.report import AccountResult
from migrator.errors import UsageError


class Ledger:
    def __init__(self, outdir: Path):
        self.outdir = Path(outdir)
        try:
            (self.outdir / "accounts").mkdir(parents=True, exist_ok=True)
            (self.outdir / "state").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot use the output folder {self.outdir}: {exc.strerror}") from None

    def lock(self) -> None:
        """Hold the folder's lock until the process ends or ``unlock``; UsageError when taken."""
        self._lock_file = (self.outdir / ".lock").open("w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise UsageError(f"another batch is running with the output folder {self.outdir}") from None

    def unlock(self) -> None:
        self._lock_file.close()  # closing the file releases the lock

    def journal_path(self, account_id: str) -> Path:
        return self.outdir / "accounts" / f"{account_id}.jsonl"

    def state_path(self, account_id: str) -> Path:
        return self.outdir / "state" / f"{account_id}.sqlite"

    def result_path(self, account_id: str) -> Path:
        return self.outdir / "accounts" / f"{account_id}.result.json"

    def report_path(self, account_id: str) -> Path:
        return self.outdir / "accounts" / f"{account_id}.report.json"

    @property
    def summary_path(self) -> Path:
        return self.outdir / "summary.json"

    def previous(self, account_id: str) -> AccountResult | None:
        """The account's last recorded result (None when never run, or the file is unreadable)."""
        path = self.result_path(account_id)
        try:
            return AccountResult.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError):
            return None  # a damaged result only means the account is run again: the checkpoint prevents duplicates

    def save(self, account_id: str, result: AccountResult, report: BaseModel | None) -> None:
        if report is not None:
            write_atomically(self.report_path(account_id), report.model_dump_json(indent=2))
        write_atomically(self.result_path(account_id), result.model_dump_json(indent=2))


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)
