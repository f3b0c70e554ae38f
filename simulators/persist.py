"""A simulator store kept on disk (``quirkmail serve --store-dir DIR``), so a killed simulator comes
back with the same mailboxes: UIDs, UIDVALIDITY, UIDNEXT, INTERNALDATE, flags, PIM items.

One SQLite file (WAL, ``synchronous=FULL``) written by a store listener: each change the store
announces is written in one transaction, so a process killed at any instant leaves the last
committed state — a message APPENDed half way (its literal still arriving) was never in the store
and is absent after a restart, never partial. A change to one folder writes only that folder's
new messages (the bytes once), removes the expunged ones and rewrites the flags; a change without
a folder (create, rename, delete) rewrites the account's folder list.

    store = Store()
    persisted = StorePersistence(store, Path("DIR"))   # loads DIR/store.sqlite when it exists
    ... serve; every change is on disk when ``notify`` returns ...
    persisted.close()

``extra`` dictionaries (Gmail labels, X-GM-MSGID ...) are pickled: this file is the simulator's
own, in a directory the user named, never read from elsewhere.
"""

from __future__ import annotations

import itertools
import json
import pickle
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from simulators.store import Account, Folder, MailItem, PimItem, ItemKind, Store, StoreError

FILE_NAME = "store.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY, password TEXT NOT NULL, extra BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS folders (
    username TEXT NOT NULL, path TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL,
    special_use TEXT, folder_class TEXT NOT NULL, selectable INTEGER NOT NULL, subscribed INTEGER NOT NULL,
    position INTEGER NOT NULL, items BLOB NOT NULL,
    PRIMARY KEY (username, path)
);
CREATE TABLE IF NOT EXISTS messages (
    username TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    raw BLOB NOT NULL, internaldate TEXT NOT NULL, flags TEXT NOT NULL, extra BLOB NOT NULL,
    PRIMARY KEY (username, uidvalidity, uid)
);
"""


class PersistenceError(StoreError):
    """The store directory cannot be opened, read or written; names the file and the cause."""


class StorePersistence:
    def __init__(self, store: Store, directory: Path):
        self.store = store
        self.path = Path(directory) / FILE_NAME
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch(mode=0o600)  # it holds the simulated accounts' passwords (-wal/-shm inherit the mode)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # committed = on disk, even if the machine dies
            self._db.executescript(SCHEMA)
            self._load()
        except (OSError, sqlite3.Error, pickle.UnpicklingError) as exc:
            raise PersistenceError(f"store directory {self.path.parent}: {exc}") from None
        store.subscribe(self._changed)
        for account in list(store.accounts.values()):  # accounts made before attaching (a fixture)
            self._changed(account, None)

    def close(self) -> None:
        self.store.unsubscribe(self._changed)
        with self._lock:
            self._db.close()

    # Loading --------------------------------------------------------------------------------

    def _load(self) -> None:
        db, store = self._db, self.store
        highest = 0
        for username, password, extra in db.execute("SELECT username, password, extra FROM accounts"):
            account = store.accounts.get(username) or store.add_account(username, password, with_inbox=False)
            account.extra = pickle.loads(extra)
            account.folders.clear()
            rows = db.execute("SELECT path, uidvalidity, uidnext, special_use, folder_class, selectable, subscribed, "
                              "items FROM folders WHERE username=? ORDER BY position", (username,))
            for path, uidvalidity, uidnext, special, cls, selectable, subscribed, items in rows.fetchall():
                folder = Folder(tuple(json.loads(path)), uidvalidity, special_use=special, folder_class=cls,
                                selectable=bool(selectable), subscribed=bool(subscribed), uidnext=uidnext)
                folder.items = [PimItem(ItemKind(k), i, p, e) for k, i, p, e in pickle.loads(items)]
                folder.messages = [
                    MailItem(raw, datetime.fromisoformat(when), set(json.loads(flags)), uid, pickle.loads(ex))
                    for uid, raw, when, flags, ex in db.execute(
                        "SELECT uid, raw, internaldate, flags, extra FROM messages WHERE username=? AND uidvalidity=? "
                        "ORDER BY uid", (username, uidvalidity))
                ]
                account.folders[folder.path] = folder
                highest = max(highest, uidvalidity)
        # New folders must never reuse a UIDVALIDITY, persisted or already given out in this store.
        store._uidvalidity = itertools.count(max(store.next_uidvalidity(), highest + 1))

    # Writing --------------------------------------------------------------------------------

    @staticmethod
    def exists(directory: Path) -> bool:
        return (Path(directory) / FILE_NAME).exists()

    def save(self, account: Account) -> None:
        """Write the whole account now (e.g. after changing what the store does not announce)."""
        self._changed(account, None)

    def _changed(self, account: Account, folder: Folder | None) -> None:
        with self.store.lock:  # a consistent picture: no front mutates while it is copied
            rows = self._account_rows(account)
            folders = [folder] if folder is not None else list(account.folders.values())
            messages = [self._folder_rows(f) for f in folders]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._write_account(account.username, rows)
                if folder is None:  # folders created, renamed or deleted: every folder's messages again
                    self._db.execute("DELETE FROM messages WHERE username=?", (account.username,))
                for uidvalidity, items in messages:
                    self._write_folder(account.username, uidvalidity, items)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise PersistenceError(f"{self.path}: cannot save account {account.username!r}: {exc}") from None

    @staticmethod
    def _account_rows(account: Account) -> tuple:
        folders = [
            (json.dumps(list(f.path)), f.uidvalidity, f.uidnext, f.special_use, f.folder_class, int(f.selectable),
             int(f.subscribed), pos, pickle.dumps([(i.kind.value, i.item_id, i.payload, i.extra) for i in f.items]))
            for pos, f in enumerate(account.folders.values())
        ]
        return account.password, pickle.dumps(account.extra), folders

    @staticmethod
    def _folder_rows(folder: Folder) -> tuple[int, list[tuple]]:
        return folder.uidvalidity, [
            (m.uid, m.raw, m.internaldate.isoformat(), json.dumps(sorted(m.flags)), pickle.dumps(m.extra))
            for m in folder.messages
        ]

    def _write_account(self, username: str, rows: tuple) -> None:
        password, extra, folders = rows
        db = self._db
        db.execute("INSERT OR REPLACE INTO accounts VALUES (?,?,?)", (username, password, extra))
        db.execute("DELETE FROM folders WHERE username=?", (username,))
        db.executemany("INSERT INTO folders VALUES (?,?,?,?,?,?,?,?,?,?)", [(username, *f) for f in folders])

    def _write_folder(self, username: str, uidvalidity: int, messages: list[tuple]) -> None:
        """New messages in (their bytes once), expunged ones out, changed flags rewritten."""
        db = self._db
        stored = dict(db.execute("SELECT uid, flags FROM messages WHERE username=? AND uidvalidity=?",
                                 (username, uidvalidity)).fetchall())
        present = {m[0] for m in messages}
        db.executemany("DELETE FROM messages WHERE username=? AND uidvalidity=? AND uid=?",
                       [(username, uidvalidity, uid) for uid in stored.keys() - present])
        db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?)",
                       [(username, uidvalidity, *m) for m in messages if m[0] not in stored])
        db.executemany("UPDATE messages SET flags=?, extra=? WHERE username=? AND uidvalidity=? AND uid=?",
                       [(m[3], m[4], username, uidvalidity, m[0]) for m in messages
                        if m[0] in stored and stored[m[0]] != m[3]])
