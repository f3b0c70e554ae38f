"""The batch's output folder, which is also what lets a batch resume.

    <outdir>/summary.json                 the BatchReport of the last run
    <outdir>/accounts/<id>.jsonl          the account's importing log (appended by every attempt)
    <outdir>/accounts/<id>.result.json    its last AccountResult: a finished one is not redone
    <outdir>/accounts/<id>.report.json    its last full MigrationReport
    <outdir>/state/<id>.sqlite            its checkpoint (migrator.state): a half-done account
                                          continues where the destination last confirmed

Result files are written whole and renamed into place, so a crash never leaves half a result.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from migrator.batch.report import AccountResult


class Ledger:
    def __init__(self, outdir: Path):
        self.outdir = Path(outdir)
        (self.outdir / "accounts").mkdir(parents=True, exist_ok=True)
        (self.outdir / "state").mkdir(parents=True, exist_ok=True)

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
