"""Reading a source mailbox over IMAP (imapclient): folders, UID lists, headers, message batches.

Everything is read with EXAMINE and BODY.PEEK so the source is never changed (no \\Seen set).
Bodies come in UID-range batches: memory stays bounded by the batch, not the folder. Headers for
merge matching come in batches of ``HEADER_BATCH`` UIDs with only the identity fields, and every
command on a folder waits as long as its size asks (``migrator.timeouts``: slow-large-folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import imapclient
from imapclient import exceptions as imap_exc

from migrator.folders import ListEntry, Namespace
from migrator.identity import IDENTITY_FIELDS
from migrator.imapconn import Commands, close_quietly, connect, expect_ok, list_raw, translated, uid_fetch, uid_fetch_binary
from migrator.list_reply import parse_list
from migrator.timeline import Timeline
from migrator.timeouts import FolderTimeouts
from migrator.urls import Endpoint

HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(IDENTITY_FIELDS) + ")]"
HEADER_BATCH = 500  # UIDs per header FETCH: a slow large folder answers each within its timeout


@dataclass
class SourceMessage:
    uid: int
    flags: list[str]
    internaldate: datetime | None
    size: int
    raw: bytes | None = field(repr=False)  # None: the server answered without a body


def uid_set(uids: Iterable[int]) -> str:
    """Sorted UIDs as a compact IMAP sequence set: [1, 2, 3, 7] → "1:3,7"."""
    out: list[str] = []
    start = prev = None
    for u in sorted(uids):
        if prev is not None and u == prev + 1:
            prev = u
            continue
        if start is not None:
            out.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = u
    if start is not None:
        out.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(out)


def decode_flags(flags: Iterable) -> list[str]:
    return [f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in flags]


def list_entries(client: imapclient.IMAPClient, where: str, lenient: bool = True) -> tuple[list[ListEntry], list[str]]:
    """Every LIST entry, and a sentence per line that was malformed (read leniently or left out).
    Not ``lenient`` (mitigation lenient-list off): imapclient's strict parser, as naive tools read."""
    if lenient:
        entries, problems = parse_list(expect_ok(where, list_raw, client))
        return entries, [f"{where}: {p}" for p in problems]
    entries = []
    for flags, delim, name in expect_ok(where, client.list_folders):
        d = delim.decode() if isinstance(delim, bytes) else delim
        entries.append(ListEntry(name if isinstance(name, str) else name.decode(), frozenset(decode_flags(flags)), d))
    return entries, []


def personal_namespace(client: imapclient.IMAPClient, where: str, entries: list[ListEntry]) -> Namespace:
    """NAMESPACE's personal prefix and delimiter; without NAMESPACE, the delimiter LIST showed."""
    delim = next((e.delimiter for e in entries if e.delimiter), "/")
    if client.has_capability("NAMESPACE"):
        ns = expect_ok(where, client.namespace)
        if ns.personal:
            prefix, d = ns.personal[0]
            prefix = prefix.decode() if isinstance(prefix, bytes) else prefix
            d = d.decode() if isinstance(d, bytes) else d
            return Namespace(prefix or "", d or delim)
    return Namespace("", delim)


class ImapSource(Commands):
    """One source connection. Not thread-safe: each folder worker opens its own."""

    def __init__(self, endpoint: Endpoint, timeouts: FolderTimeouts | None = None, *, timeline: Timeline | None = None):
        self.endpoint, self.timeline = endpoint, timeline
        self.timeouts = timeouts or FolderTimeouts()
        self.client, self.tls = connect(endpoint, role="source", timeout=self.timeouts.base)
        self._selected: str | None = None
        self.list_problems: list[str] = []  # malformed LIST lines of the last folders()
        self.uidvalidity: int | None = None
        self.exists = 0

    def where(self, folder: str | None = None, uid: int | None = None) -> str:
        out = f"source {self.endpoint.url.display()}"
        if folder is not None:
            out += f" folder {folder!r}"
        if uid is not None:
            out += f" UID {uid}"
        return out

    def close(self) -> None:
        close_quietly(self.client)

    def folders(self, *, lenient: bool = True) -> tuple[list[ListEntry], Namespace]:
        entries, self.list_problems = list_entries(self.client, self.where(), lenient)
        return entries, personal_namespace(self.client, self.where(), entries)

    def message_counts(self, folders: list[str]) -> dict[str, int]:
        """STATUS (MESSAGES) per folder, for ordering work and progress totals (0 when refused)."""
        out = {}
        for folder in folders:
            try:
                with translated(self.where(folder)):
                    status = self.client.folder_status(folder, ["MESSAGES"])
                out[folder] = int(status.get(b"MESSAGES", 0))
            except imap_exc.IMAPClientError:
                out[folder] = 0
        return out

    def examine(self, folder: str, *, fresh: bool = False) -> int:
        """Select read-only (again only when ``fresh``); returns UIDVALIDITY."""
        if fresh or self._selected != folder:
            self._timeout(self.timeouts.for_folder(folder))  # the size STATUS gave: SELECT may be slow
            info = self.ok(folder, self.client.select_folder, folder, readonly=True)
            self.uidvalidity = int(info.get(b"UIDVALIDITY", 0))
            self.exists = int(info.get(b"EXISTS", 0))
            self._selected = folder
            self._timeout(self.timeouts.for_folder(folder, self.exists))
        return self.uidvalidity

    def _timeout(self, seconds: float) -> None:
        sock = self.client.socket()
        if sock is not None:
            sock.settimeout(seconds)

    def sizes(self, folder: str) -> dict[int, int]:
        """UID → RFC822.SIZE of every message in the folder (one cheap FETCH); call ``examine``
        with ``fresh=True`` first when the folder may have changed since it was selected."""
        self.examine(folder)
        if not self.exists:
            return {}
        data = self.ok(folder, uid_fetch, self.client, "1:*", ["RFC822.SIZE"])
        return {int(uid): int(v.get(b"RFC822.SIZE", 0)) for uid, v in data.items()}

    def headers(self, folder: str, uids: list[int]) -> dict[int, bytes]:
        """UID → the identity header fields, for merge matching without downloading bodies."""
        self.examine(folder)
        ordered = sorted(uids)
        out: dict[int, bytes] = {}
        for start in range(0, len(ordered), HEADER_BATCH):
            chunk = uid_set(ordered[start : start + HEADER_BATCH])
            data = self.ok(folder, uid_fetch, self.client, chunk, [HEADER_ITEM])
            out.update((int(uid), _header_value(v)) for uid, v in data.items())
        return out

    @property
    def gmail(self) -> bool:
        """Gmail's IMAP extensions (X-GM-MSGID, X-GM-LABELS), advertised after login."""
        return self.client.has_capability("X-GM-EXT-1")

    def gmail_msgids(self, folder: str) -> dict[int, int]:
        """UID → X-GM-MSGID of every message in the folder (gmail-labels-as-folders)."""
        self.examine(folder, fresh=True)
        if not self.exists:
            return {}
        data = self.ok(folder, uid_fetch, self.client, "1:*", ["X-GM-MSGID"])
        return {int(uid): int(v[b"X-GM-MSGID"]) for uid, v in data.items() if b"X-GM-MSGID" in v}

    def existing(self, folder: str, uids: list[int]) -> set[int]:
        """Which of ``uids`` the folder still holds (UID SEARCH, after a fresh EXAMINE)."""
        self.examine(folder, fresh=True)
        found = self.ok(folder, self.client.search, ["UID", uid_set(uids)])
        return {int(u) for u in found}

    def fetch(self, folder: str, uids: list[int]) -> list[SourceMessage]:
        self.examine(folder)
        data = self.ok(
            folder,
            uid_fetch,
            self.client,
            uid_set(uids),
            ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"],
        )
        out = []
        for uid, v in sorted(data.items()):
            raw = v.get(b"BODY[]")  # None: exchange-nonmail-folders-over-imap (OK without a body)
            internaldate = v.get(b"INTERNALDATE")
            out.append(
                SourceMessage(
                    uid=int(uid),
                    flags=decode_flags(v.get(b"FLAGS", ())),
                    internaldate=internaldate if isinstance(internaldate, datetime) else None,
                    size=int(v.get(b"RFC822.SIZE", len(raw or b""))),
                    raw=bytes(raw) if raw is not None else None,
                )
            )
        self._restore_nul(folder, out)
        return out

    def _restore_nul(self, folder: str, messages: list[SourceMessage]) -> None:
        """nul-bytes: BODY[] cannot carry NUL, so Dovecot sends 0x80 in its place. Where the server
        offers BINARY (RFC 3516), a message showing 0x80 is read again with BINARY.PEEK[], and the
        result kept only when it differs by NUL → 0x80 alone (a decoded Content-Transfer-Encoding,
        which BINARY[] may give, never slips in)."""
        suspects = {m.uid: m for m in messages if m.raw and b"\x80" in m.raw}
        if not suspects or not self.client.has_capability("BINARY"):
            return
        data = self.ok(folder, uid_fetch_binary, self.client, uid_set(suspects))
        for uid, binary in data.items():
            m = suspects.get(uid)
            if m is not None and binary != m.raw and binary.replace(b"\0", b"\x80") == m.raw:
                m.raw = binary


def _header_value(item: dict) -> bytes:
    for key, value in item.items():
        if key.startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""
