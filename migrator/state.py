"""The checkpoint: which source messages the destination has confirmed, in SQLite (WAL).

A row is written only after the destination confirmed the item (APPENDUID or a tagged OK), so a
crash can lose at most the confirmation of items in flight; those are found again by identity on
the next run (merge matching), never copied twice. Keyed by source (account, folder,
UIDVALIDITY, UID) per destination account; the identity and destination folder/UID are kept to
re-match after a UIDVALIDITY change and for audits.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from migrator.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS copied (
    source_account TEXT NOT NULL,
    dest_account   TEXT NOT NULL,
    source_folder  TEXT NOT NULL,
    uidvalidity    INTEGER NOT NULL,
    uid            INTEGER NOT NULL,
    identity       TEXT NOT NULL,
    dest_folder    TEXT NOT NULL,
    dest_uid       INTEGER,
    confirmed_at   TEXT NOT NULL,
    PRIMARY KEY (source_account, dest_account, source_folder, uidvalidity, uid)
);
-- POP3 sources: message numbers last one session, so a row is named by UIDL ('' when the server
-- has none) plus identity; identical messages are separate rows (a multiset, no primary key).
CREATE TABLE IF NOT EXISTS pop3_copied (
    source_account TEXT NOT NULL,
    dest_account   TEXT NOT NULL,
    uidl           TEXT NOT NULL,
    identity       TEXT NOT NULL,
    dest_folder    TEXT NOT NULL,
    dest_uid       INTEGER,
    via            TEXT NOT NULL,
    confirmed_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pop3_copied_accounts ON pop3_copied (source_account, dest_account);
-- POP3 → LMTP/SMTP: a message being delivered (committed before the delivery starts, removed with
-- its confirmation). A row left over means a run died in between: the message may be there twice.
CREATE TABLE IF NOT EXISTS pop3_in_flight (
    source_account TEXT NOT NULL,
    dest_account   TEXT NOT NULL,
    uidl           TEXT NOT NULL,
    identity       TEXT NOT NULL,
    started_at     TEXT NOT NULL
);
"""


# Confirmed (or refused): that delivery is no longer in doubt; one row per answer.
_END_FLIGHT = ("DELETE FROM pop3_in_flight WHERE rowid IN (SELECT rowid FROM pop3_in_flight WHERE source_account=? "
               "AND dest_account=? AND uidl=? AND identity=? LIMIT 1)")


def default_state_path(source: str, dest: str) -> Path:
    digest = hashlib.sha256(f"{source}\0{dest}".encode()).hexdigest()[:16]
    return Path.home() / ".local" / "state" / "quirkmail" / f"migrate-{digest}.sqlite"


@dataclass(frozen=True)
class Confirmed:
    uid: int
    identity: str
    dest_folder: str
    dest_uid: int | None


@dataclass(frozen=True)
class Pop3Confirmed:
    uidl: str  # "" when the server has no UIDL
    identity: str
    dest_folder: str  # destination folder, or the LMTP/SMTP recipient
    dest_uid: int | None
    via: str  # "appended" | "delivered" (we copied it) | "matched" (found at the destination)


class State:
    """Thread-safe: folder workers share one connection behind a lock (writes are tiny)."""

    def __init__(self, path: Path, source_account: str, dest_account: str):
        self.path = Path(path)
        self._src, self._dst = source_account, dest_account
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise UsageError(f"cannot open state file {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def done(self, folder: str, uidvalidity: int) -> dict[int, str]:
        """UID → identity of every confirmed message of this folder incarnation."""
        with self._lock:
            rows = self._db.execute(
                "SELECT uid, identity FROM copied WHERE source_account=? AND dest_account=? "
                "AND source_folder=? AND uidvalidity=?",
                (self._src, self._dst, folder, uidvalidity),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def stale_uidvalidities(self, folder: str, uidvalidity: int) -> list[int]:
        """Other UIDVALIDITY values recorded for this folder: the server renumbered it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT uidvalidity FROM copied WHERE source_account=? AND dest_account=? "
                "AND source_folder=? AND uidvalidity<>?",
                (self._src, self._dst, folder, uidvalidity),
            ).fetchall()
        return [r[0] for r in rows]

    def record(self, folder: str, uidvalidity: int, items: Iterable[Confirmed]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [
            (self._src, self._dst, folder, uidvalidity, c.uid, c.identity, c.dest_folder, c.dest_uid, now)
            for c in items
        ]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO copied VALUES (?,?,?,?,?,?,?,?,?)", rows)
            self._db.execute("COMMIT")

    def forget(self, folder: str, uidvalidity: int | None = None) -> None:
        """Drop a folder's rows (replace mode), or only those of one stale UIDVALIDITY."""
        sql = "DELETE FROM copied WHERE source_account=? AND dest_account=? AND source_folder=?"
        args: tuple = (self._src, self._dst, folder)
        if uidvalidity is not None:
            sql += " AND uidvalidity=?"
            args += (uidvalidity,)
        with self._lock:
            self._db.execute(sql, args)

    # POP3 sources ---------------------------------------------------------------------------

    def pop3_done(self) -> list[Pop3Confirmed]:
        """Every POP3 message the destination confirmed, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT uidl, identity, dest_folder, dest_uid, via FROM pop3_copied "
                "WHERE source_account=? AND dest_account=? ORDER BY rowid",
                (self._src, self._dst),
            ).fetchall()
        return [Pop3Confirmed(*r) for r in rows]

    def pop3_record(self, items: Iterable[Pop3Confirmed]) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [(self._src, self._dst, c.uidl, c.identity, c.dest_folder, c.dest_uid, c.via, now) for c in items]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO pop3_copied VALUES (?,?,?,?,?,?,?,?)", rows)
            self._db.executemany(_END_FLIGHT, [(self._src, self._dst, c.uidl, c.identity) for c in items if c.via == "delivered"])
            self._db.execute("COMMIT")

    def pop3_end(self, uidl: str, identity: str) -> None:
        """A delivery was answered without being confirmed (refused): no longer in doubt."""
        with self._lock:
            self._db.execute(_END_FLIGHT, (self._src, self._dst, uidl, identity))

    def pop3_begin(self, uidl: str, identity: str) -> None:
        """A delivery is about to start (committed first, so a crash leaves it on record)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("INSERT INTO pop3_in_flight VALUES (?,?,?,?,?)", (self._src, self._dst, uidl, identity, now))

    def pop3_in_doubt(self) -> list[tuple[str, str]]:
        """(UIDL, identity) of deliveries an earlier run started and never saw confirmed."""
        with self._lock:
            return self._db.execute("SELECT uidl, identity FROM pop3_in_flight WHERE source_account=? AND dest_account=?",
                                    (self._src, self._dst)).fetchall()

    def pop3_forget_doubts(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pop3_in_flight WHERE source_account=? AND dest_account=?", (self._src, self._dst))

    def pop3_forget(self) -> None:
        """Replace mode: the destination folder was emptied, so nothing is confirmed any more."""
        with self._lock:
            self._db.execute("DELETE FROM pop3_copied WHERE source_account=? AND dest_account=?", (self._src, self._dst))
