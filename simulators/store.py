"""The mailbox store every simulator front (IMAP, POP3, SMTP, EWS) serves.

Store → Account → Folder → items. A folder is named by its path of parts, ``("Work", "2024")``,
never by a delimited string: each front joins the parts with its profile's delimiter and prefix,
so one store can be shown Dovecot-style (``Work/2024``) or Courier-style (``INBOX.Work.2024``).

Mail items keep the raw RFC 5322 bytes exactly as given (bare LF, NUL and 8-bit bytes included),
their flags (system flags with the backslash, keywords without), and INTERNALDATE as an aware
datetime that keeps its original zone. Non-mail items (contact, event, task, note) carry their
vCard / iCalendar text.

The store is shared between the reactor thread and test code, so every mutation holds the store's
lock; listeners are called (outside no lock guarantees) after a change so IMAP sessions can push
untagged EXISTS/EXPUNGE to idling clients.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from simulators.bodies import BlobFile, Body

INBOX = ("INBOX",)
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


class StoreError(Exception):
    """Base of the store's own errors; fronts translate them into protocol replies."""


class NoSuchAccount(StoreError):
    pass


class NoSuchFolder(StoreError):
    pass


class FolderExists(StoreError):
    pass


class ItemKind(str, enum.Enum):
    MAIL = "mail"
    CONTACT = "contact"
    EVENT = "event"
    TASK = "task"
    NOTE = "note"


# Exchange folder classes, used by the EWS front and by the Exchange-over-IMAP view.
FOLDER_CLASS_FOR_KIND = {
    ItemKind.MAIL: "IPF.Note",
    ItemKind.CONTACT: "IPF.Contact",
    ItemKind.EVENT: "IPF.Appointment",
    ItemKind.TASK: "IPF.Task",
    ItemKind.NOTE: "IPF.StickyNote",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(eq=False, repr=False)
class MailItem:
    """One message. ``uid`` is assigned by the folder when the item is added.

    ``raw`` is either held as bytes or given as a ``simulators.bodies.Body`` that is read on each
    access (a disk-backed or generated body): ``size`` never reads it, and ``derived`` keeps what
    FETCH computes from it (ENVELOPE, BODYSTRUCTURE) so a body on disk is read once for those.
    Items compare by identity (two copies of one message in a folder are two items).
    """

    raw: bytes  # a property (below): the dataclass __init__ and replace() go through it
    internaldate: datetime
    flags: set[str] = field(default_factory=set)
    uid: int = 0
    # Free-form per-item data for provider behaviours (e.g. Gmail's X-GM-MSGID, labels).
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.internaldate.tzinfo is None:
            raise ValueError("INTERNALDATE must be timezone-aware")

    @property
    def size(self) -> int:
        body = self._body
        return len(body) if isinstance(body, bytes) else body.size

    @property
    def in_memory(self) -> bool:
        return isinstance(self._body, bytes)

    def derived(self, key: str, make: Callable[[bytes], bytes]) -> bytes:
        """``make(raw)``, kept per item when the body is not in memory (re-reading it costs I/O)."""
        if self.in_memory:
            return make(self._body)
        if self._derived is None:
            self._derived = {}
        if key not in self._derived:
            self._derived[key] = make(self.raw)
        return self._derived[key]

    def __repr__(self) -> str:
        return f"MailItem(uid={self.uid}, size={self.size}, flags={sorted(self.flags)!r}, internaldate={self.internaldate!r})"


def _read_raw(item: MailItem) -> bytes:
    body = item._body
    return body if isinstance(body, bytes) else body.read()


def _set_raw(item: MailItem, value: bytes | Body) -> None:
    item._body = value
    item._derived = None


MailItem.raw = property(_read_raw, _set_raw)  # type: ignore[assignment,method-assign]


@dataclass
class PimItem:
    """A contact (vCard), event or task (iCalendar VEVENT/VTODO) or note (VJOURNAL or text)."""

    kind: ItemKind
    item_id: str
    payload: str
    extra: dict = field(default_factory=dict)


def _uid_of(item: MailItem) -> int:
    return item.uid


@dataclass
class Folder:
    path: tuple[str, ...]
    uidvalidity: int
    special_use: str | None = None  # "\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive", "\\All", "\\Flagged"
    folder_class: str = "IPF.Note"
    selectable: bool = True
    subscribed: bool = True
    uidnext: int = 1
    messages: list[MailItem] = field(default_factory=list)  # ascending UID
    items: list[PimItem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path[-1]

    def uids(self) -> list[int]:
        return [m.uid for m in self.messages]

    def by_uid(self, uid: int) -> MailItem | None:
        # messages are in ascending UID order (100,000-message folders are served: no linear scan)
        i = bisect.bisect_left(self.messages, uid, key=_uid_of)
        if i < len(self.messages) and self.messages[i].uid == uid:
            return self.messages[i]
        return None


class Account:
    def __init__(self, username: str, password: str, store: Store):
        self.username = username
        self.password = password
        self._store = store
        self.folders: dict[tuple[str, ...], Folder] = {}
        self.extra: dict = {}

    # Reads -----------------------------------------------------------------------------------

    def folder(self, path: Iterable[str]) -> Folder:
        path = normalise_path(path)
        try:
            return self.folders[path]
        except KeyError:
            raise NoSuchFolder("/".join(path)) from None

    def has_folder(self, path: Iterable[str]) -> bool:
        return normalise_path(path) in self.folders

    def find_special(self, special_use: str) -> Folder | None:
        for f in self.folders.values():
            if f.special_use == special_use:
                return f
        return None

    def children(self, path: tuple[str, ...]) -> list[Folder]:
        n = len(path)
        return [f for p, f in self.folders.items() if len(p) == n + 1 and p[:n] == path]

    def iter_messages(self) -> Iterator[tuple[Folder, MailItem]]:
        for f in self.folders.values():
            for m in f.messages:
                yield f, m

    # Writes (all under the store lock) ---------------------------------------------------------

    def create_folder(
        self,
        path: Iterable[str],
        *,
        special_use: str | None = None,
        folder_class: str = "IPF.Note",
        selectable: bool = True,
        subscribed: bool = True,
        exist_ok: bool = False,
    ) -> Folder:
        path = normalise_path(path)
        with self._store.lock:
            if path in self.folders:
                if exist_ok:
                    return self.folders[path]
                raise FolderExists("/".join(path))
            # Parents spring into existence as \Noselect-free plain folders, as Dovecot does.
            for i in range(1, len(path)):
                parent = path[:i]
                if parent not in self.folders:
                    self.folders[parent] = Folder(parent, self._store.next_uidvalidity())
            folder = Folder(
                path,
                self._store.next_uidvalidity(),
                special_use=special_use,
                folder_class=folder_class,
                selectable=selectable,
                subscribed=subscribed,
            )
            self.folders[path] = folder
        self._store.notify(self, folder)
        return folder

    def delete_folder(self, path: Iterable[str]) -> None:
        path = normalise_path(path)
        with self._store.lock:
            if path not in self.folders:
                raise NoSuchFolder("/".join(path))
            del self.folders[path]
        self._store.notify(self, None)

    def rename_folder(self, old: Iterable[str], new: Iterable[str]) -> None:
        old, new = normalise_path(old), normalise_path(new)
        with self._store.lock:
            if old not in self.folders:
                raise NoSuchFolder("/".join(old))
            if new in self.folders:
                raise FolderExists("/".join(new))
            moved = {p: f for p, f in self.folders.items() if p[: len(old)] == old}
            for p, f in moved.items():
                del self.folders[p]
                f.path = new + p[len(old) :]
                f.uidvalidity = self._store.next_uidvalidity()
                self.folders[f.path] = f
            if old == INBOX:
                # RFC 3501: renaming INBOX moves its messages and leaves an empty INBOX behind.
                self.folders[INBOX] = Folder(INBOX, self._store.next_uidvalidity(), special_use=None)
        self._store.notify(self, None)

    def append(
        self,
        path: Iterable[str],
        raw: bytes | Body,
        *,
        flags: Iterable[str] = (),
        internaldate: datetime | None = None,
        extra: dict | None = None,
    ) -> MailItem:
        folder = self.folder(path)
        body = self._store.keep(raw)  # outside the lock: a disk write of a large body takes time
        with self._store.lock:
            item = MailItem(
                raw=body,
                internaldate=internaldate or utcnow(),
                flags=set(flags),
                uid=folder.uidnext,
                extra=dict(extra or {}),
            )
            folder.uidnext += 1
            folder.messages.append(item)
        self._store.notify(self, folder)
        return item

    def expunge(self, path: Iterable[str], uids: Iterable[int] | None = None) -> list[int]:
        """Remove \\Deleted messages (only those in ``uids`` when given); returns removed UIDs."""
        folder = self.folder(path)
        wanted = None if uids is None else set(uids)
        with self._store.lock:
            gone = [
                m.uid
                for m in folder.messages
                if "\\Deleted" in m.flags and (wanted is None or m.uid in wanted)
            ]
            if gone:
                drop = set(gone)
                folder.messages = [m for m in folder.messages if m.uid not in drop]
        if gone:
            self._store.notify(self, folder)
        return gone

    def add_item(self, path: Iterable[str], item: PimItem) -> PimItem:
        folder = self.folder(path)
        with self._store.lock:
            folder.items.append(item)
        self._store.notify(self, folder)
        return item


Listener = Callable[[Account, Folder | None], None]


class Store:
    """All accounts of one simulated provider world."""

    def __init__(self, *, body_dir: Path | None = None, first_uidvalidity: int | None = None) -> None:
        """``body_dir``: keep message bodies in a blob file there instead of in memory.
        ``first_uidvalidity``: start UIDVALIDITY there instead of at the clock (byte-stable tests)."""
        self.lock = threading.RLock()
        self.blobs = BlobFile(body_dir) if body_dir is not None else None
        self.accounts: dict[str, Account] = {}
        self._listeners: list[Listener] = []
        # UIDVALIDITY values must differ between folders and between incarnations of a name;
        # seeded from the clock like Dovecot, then strictly increasing.
        self._uidvalidity = itertools.count(first_uidvalidity or int(time.time()))

    def keep(self, raw: bytes | Body) -> bytes | Body:
        """How an appended message's bytes are held: a generated body as is; bytes in the blob
        file when the store has one, else as an immutable copy."""
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            return raw
        if self.blobs is not None:
            return self.blobs.write(raw)
        return bytes(raw)

    def close(self) -> None:
        """Release the blob file (a disk-backed store); the store is unusable afterwards."""
        if self.blobs is not None:
            self.blobs.close()

    def next_uidvalidity(self) -> int:
        with self.lock:
            return next(self._uidvalidity)

    def add_account(self, username: str, password: str, *, with_inbox: bool = True) -> Account:
        with self.lock:
            if username in self.accounts:
                raise StoreError(f"account {username!r} exists")
            account = Account(username, password, self)
            self.accounts[username] = account
            if with_inbox:
                account.create_folder(INBOX)
        return account

    def account(self, username: str) -> Account:
        try:
            return self.accounts[username]
        except KeyError:
            raise NoSuchAccount(username) from None

    # Change notification ------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        with self.lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def notify(self, account: Account, folder: Folder | None) -> None:
        with self.lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(account, folder)


def normalise_path(path: Iterable[str]) -> tuple[str, ...]:
    """A folder path as a tuple; INBOX is case-insensitive (RFC 3501 §5.1) and always "INBOX"."""
    parts = tuple(path) if not isinstance(path, str) else (path,)
    if not parts or any(p == "" for p in parts):
        raise ValueError(f"bad folder path {parts!r}")
    if parts[0].upper() == "INBOX":
        parts = ("INBOX",) + parts[1:]
    return parts
