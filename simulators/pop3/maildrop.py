"""A POP3 session's maildrop: the INBOX as it was at login, numbered 1..n for the whole session.

POP3 sees the account's INBOX only. Message numbers are fixed when the session logs in (RFC 1939
§4): mail arriving later is not shown, and a message expunged meanwhile by another session (IMAP,
a second POP3 client) is still served from the snapshot. DELE only marks; the marks are applied
by ``commit()`` in the UPDATE state (QUIT), never when the connection just drops.

Wire form of a message (``wire_form``): the store's bytes exactly, except that a bare LF becomes
CRLF, because RFC 1939 §3 makes CRLF the only line ending of a multi-line reply. Lone CR, NUL and
8-bit bytes pass untouched, as Dovecot's POP3 sends them (tests/test_pop3_peer.py compares).
Sizes (STAT, LIST, "+OK n octets") count the wire form, as Dovecot's do (its sizes are the CRLF
"virtual" sizes). On the wire (``multiline``) each line starting with "." gets one more "."
(byte-stuffing), a message not ending in CRLF gets one (not counted in the size), and ".\\r\\n"
ends the reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulators.store import INBOX, Account, MailItem, Store

_BARE_LF = re.compile(rb"(?<!\r)\n")


def wire_form(raw: bytes) -> bytes:
    """The message as POP3 counts and sends it: bare LF → CRLF, nothing else changed."""
    return _BARE_LF.sub(b"\r\n", raw)


def wire_size(raw: bytes) -> int:
    """``len(wire_form(raw))`` without building the copy: one more byte per bare LF."""
    return len(raw) + raw.count(b"\n") - raw.count(b"\r\n")


def multiline(body: bytes) -> bytes:
    """A multi-line reply body: byte-stuffed, CRLF-terminated, then the ".\\r\\n" terminator."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    # Lines start after CRLF only: a lone CR is not a line break on the POP3 wire.
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def top(wire: bytes, lines: int) -> bytes:
    """The header, the blank line and the first ``lines`` body lines (RFC 1939 TOP)."""
    head, sep, body = wire.partition(b"\r\n\r\n")
    if not sep:
        return wire
    if lines == 0:
        return head + sep
    parts = body.split(b"\r\n")
    if len(parts) <= lines or (len(parts) == lines + 1 and parts[-1] == b""):
        return wire
    return head + sep + b"\r\n".join(parts[:lines]) + b"\r\n"


def dovecot_uidl(uid: int, uidvalidity: int) -> str:
    """Dovecot's default ``pop3_uidl_format = %08Xu%08Xv`` (it prints the hex in lower case)."""
    return f"{uid:08x}{uidvalidity:08x}"


@dataclass
class Entry:
    item: MailItem
    size: int  # of the wire form; the wire form itself is built only when sent (RETR, TOP)
    uidl: str

    @property
    def wire(self) -> bytes:
        return wire_form(self.item.raw)


@dataclass
class Maildrop:
    store: Store
    account: Account
    entries: list[Entry]
    deleted: set[int] = field(default_factory=set)  # message numbers marked by DELE
    retrieved: set[int] = field(default_factory=set)  # sent whole by RETR: \Seen at QUIT, as Dovecot

    @classmethod
    def snapshot(cls, store: Store, account: Account) -> Maildrop:
        with store.lock:
            inbox = account.folder(INBOX)
            entries = [Entry(m, wire_size(m.raw), dovecot_uidl(m.uid, inbox.uidvalidity)) for m in inbox.messages]
        return cls(store, account, entries)

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, number: int) -> Entry:
        return self.entries[number - 1]

    def live(self) -> list[tuple[int, Entry]]:
        return [(n, e) for n, e in enumerate(self.entries, 1) if n not in self.deleted]

    def stat(self) -> tuple[int, int]:
        live = self.live()
        return len(live), sum(e.size for _n, e in live)

    def commit(self) -> int:
        """The UPDATE state: expunge what was marked, flag what was retrieved; returns the count
        actually removed (a message another session expunged first is not counted)."""
        store = self.store
        with store.lock:
            uids = set()
            for n in self.retrieved - self.deleted:
                self.entry(n).item.flags.add("\\Seen")
            for n in self.deleted:
                item = self.entry(n).item
                item.flags.add("\\Deleted")
                uids.add(item.uid)
        if self.retrieved or uids:
            store.notify(self.account, self.account.folder(INBOX))
        return len(self.account.expunge(INBOX, uids)) if uids else 0
