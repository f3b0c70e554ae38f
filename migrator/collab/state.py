"""Checkpoint of EWS items the destination confirmed, keyed by ItemId (EWS has no UIDs).

Kept in the migrator's checkpoint file (its own table), written only after the destination
confirmed the item: an APPEND's OK, a PUT's 201/204, or a 412 (it was there already).
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from migrator.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS ews_copied (
    source_account TEXT NOT NULL,
    dest_account   TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    dest           TEXT NOT NULL,
    confirmed_at   TEXT NOT NULL,
    PRIMARY KEY (source_account, dest_account, item_id)
);
"""


class EwsState:
    def __init__(self, path: Path, source_account: str, dest_account: str):
        self._src, self._dst = source_account, dest_account
        self._lock = threading.Lock()
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open state file {path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def done(self) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT item_id FROM ews_copied WHERE source_account=? AND dest_account=?", (self._src, self._dst)
            ).fetchall()
        return {r[0] for r in rows}

    def record(self, rows: list[tuple[str, str, str]]) -> None:
        """(item_id, kind, destination) of confirmed items."""
        if not rows:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO ews_copied VALUES (?,?,?,?,?,?)",
                [(self._src, self._dst, i, k, d, now) for i, k, d in rows],
            )
            self._db.execute("COMMIT")

    def forget_all(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM ews_copied WHERE source_account=? AND dest_account=?", (self._src, self._dst))
