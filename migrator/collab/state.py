"""Checkpoint of EWS items the destination confirmed, keyed by ItemId (EWS has no UIDs).

Kept in the migrator's checkpoint file (its own table), written only after the destination
confirmed the item: an APPEND's OK, a PUT's 201/204, or a 412 (it was there already).

Mail (to IMAP or to EWS) also keeps its identity (``ews_identity``, committed with the row): a re-run
after a crash matches the destination folder by identity (an APPEND confirmed but not yet
recorded is found, not copied twice), and the identities of our recorded copies are taken out of
that match first, so identical source messages are not mistaken for each other's copies.
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
CREATE TABLE IF NOT EXISTS ews_identity (
    source_account TEXT NOT NULL,
    dest_account   TEXT NOT NULL,
    item_id        TEXT NOT NULL,
    identity       TEXT NOT NULL,
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

    def record(self, rows: list[tuple[str, str, str]], identities: dict[str, str] | None = None) -> None:
        """(item_id, kind, destination) of confirmed items; ``identities``: item_id → identity of
        the mail among them, in the same transaction."""
        if not rows:
            return
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO ews_copied VALUES (?,?,?,?,?,?)",
                [(self._src, self._dst, i, k, d, now) for i, k, d in rows],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO ews_identity VALUES (?,?,?,?)",
                [(self._src, self._dst, i, ident) for i, ident in (identities or {}).items()],
            )
            self._db.execute("COMMIT")

    def identities_in(self, dest: str) -> list[str]:
        """Identities of the mail recorded as copied into destination folder ``dest``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT i.identity FROM ews_identity i JOIN ews_copied c USING (source_account, dest_account, item_id) "
                "WHERE c.source_account=? AND c.dest_account=? AND c.dest=?", (self._src, self._dst, dest)
            ).fetchall()
        return [r[0] for r in rows]

    def forget_all(self) -> None:
        with self._lock:
            for table in ("ews_copied", "ews_identity"):
                self._db.execute(f"DELETE FROM {table} WHERE source_account=? AND dest_account=?", (self._src, self._dst))
