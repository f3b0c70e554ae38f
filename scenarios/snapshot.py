"""What a mailbox holds, as plain data the verifier can compare: folders → message records.

A ``MailboxSnapshot`` is read either over IMAP (``snapshot_imap``: any server, so the verifier
can judge any engine) or straight from a simulator store account (``snapshot_account``: the
ground truth of a simulated source, unaffected by the quirks its IMAP front plays). Both give the
same records: the raw bytes are hashed and dropped at once, so a 20 MB message costs no memory.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # only for annotations: the verifier must not need the engine to run
    from migrator.urls import Endpoint
    from simulators.store import Account

# Flags that describe the session, not the message: never compared.
SESSION_FLAGS = frozenset({"\\Recent"})
FETCH_BATCH = 50  # UIDs per FETCH: bounds memory when a folder holds large messages


class SnapshotError(Exception):
    """A mailbox that could not be read; the message names the server, folder and cause."""


class SnapshotLoginError(SnapshotError):
    """The server refused the credentials."""


class MessageRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    uid: int
    identity: str  # Message-ID, else a hash of From/Date/Subject/To (see message_identity)
    sha256: str
    # Of ``wire_form(raw)``: IMAP requires CRLF and a literal cannot carry NUL, so servers (Dovecot
    # among them) hand a bare-LF message back with CRLF and show NUL as 0x80. Pairing uses this;
    # ``sha256`` tells them apart.
    sha256_crlf: str
    size: int
    flags: frozenset[str]
    internaldate: datetime  # aware; compared as an instant
    # Read and asking for a read receipt (Disposition-Notification-To): a copy may gain $MDNSent.
    mdn_requested: bool = False


class FolderSnapshot(BaseModel):
    path: tuple[str, ...]
    name: str  # as the server shows it (decoded from modified UTF-7)
    special_use: str | None = None
    messages: list[MessageRecord] = []
    # PERMANENTFLAGS of a read-write SELECT (destinations): a flag outside them cannot be stored.
    permanent_flags: list[str] | None = None


class MailboxSnapshot(BaseModel):
    label: str  # where it was read from, without secrets (URL or "store:user")
    folders: dict[str, FolderSnapshot] = {}  # key: "/".join(path)
    # The side's hierarchy delimiter on the wire, when known: a folder name part holding it cannot
    # be kept as one folder there (the verifier expects the engine's documented rename).
    delimiter: str | None = None

    def folder(self, path: Iterable[str]) -> FolderSnapshot | None:
        return self.folders.get("/".join(path))

    def by_special_use(self, special_use: str) -> FolderSnapshot | None:
        for f in self.folders.values():
            if f.special_use == special_use:
                return f
        return None


# Pure pieces ------------------------------------------------------------------------------------


_BARE_LF = re.compile(rb"(?<!\r)\n")


def wire_form(raw: bytes) -> bytes:
    """The bytes as a non-binary FETCH BODY[] can show them: bare LF as CRLF (IMAP requires CRLF)
    and NUL as 0x80 (a literal cannot carry NUL; Dovecot stores the NUL and gives it back only
    through BINARY[], RFC 3516)."""
    return _BARE_LF.sub(b"\r\n", raw).replace(b"\0", b"\x80")


def _header_block(raw: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(sep)
        if end >= 0:
            return raw[: end + len(sep)]
    return raw


def message_identity(raw: bytes) -> str:
    """A key that pairs a message with a (possibly altered) copy of itself.

    The Message-ID when there is one; otherwise a hash of the headers a server never rewrites.
    Only used to tell "changed bytes" from "missing + unexpected": exact copies pair by hash.
    """
    return _identity(_headers(raw))


def _headers(raw: bytes):
    return BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw))


def _identity(headers) -> str:
    msgid = (headers.get("Message-ID") or "").strip()
    if msgid:
        return msgid
    digest = hashlib.sha256()
    for name in ("From", "Date", "Subject", "To"):
        digest.update(f"{name}:{headers.get(name, '')}\n".encode("utf-8", "surrogateescape"))
    return "no-message-id:" + digest.hexdigest()[:16]


def record_of(uid: int, raw: bytes, flags: Iterable[str], internaldate: datetime) -> MessageRecord:
    headers = _headers(raw)
    flags = frozenset(f for f in flags if f not in SESSION_FLAGS)
    sha256 = hashlib.sha256(raw).hexdigest()
    # The wire form is a second copy of the message: made only when it differs (a bare LF, a NUL).
    plain = _BARE_LF.search(raw) is None and b"\0" not in raw
    wire = sha256 if plain else hashlib.sha256(wire_form(raw)).hexdigest()
    return MessageRecord(
        uid=uid,
        identity=_identity(headers),
        mdn_requested="\\Seen" in flags and headers.get("Disposition-Notification-To") is not None,
        sha256=sha256,
        sha256_crlf=wire,
        size=len(raw),
        flags=flags,
        internaldate=internaldate,
    )


def split_name(name: str, delimiter: str | None, prefix: str) -> tuple[str, ...]:
    """A wire folder name → store-style path parts (personal-namespace prefix removed)."""
    if name.upper() == "INBOX":
        return ("INBOX",)
    if prefix and name.startswith(prefix) and name != prefix.rstrip(delimiter or ""):
        name = name[len(prefix) :]
    parts = tuple(name.split(delimiter)) if delimiter else (name,)
    if parts[0].upper() == "INBOX":
        parts = ("INBOX",) + parts[1:]
    return parts


# Adapters ---------------------------------------------------------------------------------------


# Seen bytes → bytes to compare: ("folder/key", raw) in. Lets a side drop the trace headers its
# delivery adds, or note each message as it passes (scenarios.sides_pop3).
Rewrite = Callable[[str, bytes], bytes]


def snapshot_account(account: Account, label: str | None = None, *, rewrite: Rewrite | None = None,
                     delimiter: str | None = None) -> MailboxSnapshot:
    """The truth of a simulator store account (selectable folders only, like IMAP shows)."""
    snap = MailboxSnapshot(label=label or f"store:{account.username}", delimiter=delimiter)
    for path, folder in sorted(account.folders.items()):
        if not folder.selectable:
            continue
        key = "/".join(path)
        records = [
            record_of(m.uid, rewrite(key, m.raw) if rewrite else m.raw, m.flags, m.internaldate)
            for m in folder.messages
        ]
        snap.folders[key] = FolderSnapshot(
            path=path, name=key, special_use=folder.special_use, messages=records
        )
    return snap


def snapshot_imap(
    endpoint: Endpoint, *, timeout: float = 60.0, rewrite: Rewrite | None = None, permanent_flags: bool = False
) -> MailboxSnapshot:
    """Read every selectable folder of a mailbox over IMAP, read-only (EXAMINE, BODY.PEEK).

    ``permanent_flags``: also SELECT each folder read-write first, for the flags it can store
    (EXAMINE may list none: examine-empty-permanentflags). The EXAMINE that follows deselects it
    without an expunge (RFC 3501 6.3.1), so nothing changes.
    """
    import imapclient

    url = endpoint.url
    label = f"{url.scheme}://{url.user}@{url.host}:{url.port}"
    try:
        client = _connect(endpoint, timeout)
    except imapclient.exceptions.LoginError as exc:
        raise SnapshotLoginError(f"{label}: login refused: {exc}") from None
    except (OSError, imapclient.exceptions.IMAPClientError) as exc:
        raise SnapshotError(f"{label}: cannot log in: {exc}") from None
    try:
        folders = dict(_read_folders(client, label, rewrite, permanent_flags))
        return MailboxSnapshot(label=label, folders=folders, delimiter=_delimiter(client))
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the snapshot is complete; a failed LOGOUT changes nothing
            pass


def _connect(endpoint: Endpoint, timeout: float):
    import imapclient

    from migrator.imapconn import quiet_protocol_log

    url = endpoint.url
    context = ssl.create_default_context(cafile=str(endpoint.cafile) if endpoint.cafile else None)
    if not getattr(url, "tls_verify", True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    implicit = url.scheme == "imaps"
    client = imapclient.IMAPClient(
        url.host, port=url.port, ssl=implicit, ssl_context=context, timeout=timeout
    )
    quiet_protocol_log(client)  # else imaplib formats repr() of every body it reads
    starttls = getattr(url, "starttls", "no")
    if not implicit and starttls != "no":
        if starttls == "required" or client.has_capability("STARTTLS"):
            client.starttls(context)
    if getattr(url, "auth", "auto") == "xoauth2":  # an OAuth-only simulator side
        client.oauth2_login(url.user, endpoint.password.reveal())
    else:
        client.login(url.user, endpoint.password.reveal())
    client.normalise_times = False  # keep INTERNALDATE aware: we compare instants
    return client


def _delimiter(client) -> str | None:
    listed = client.list_folders("", "INBOX")
    delim = listed[0][1] if listed else None
    return delim.decode() if isinstance(delim, bytes) else delim


def _read_folders(
    client, label: str, rewrite: Rewrite | None = None, permanent_flags: bool = False
) -> Iterator[tuple[str, FolderSnapshot]]:
    prefix = ""
    if client.has_capability("NAMESPACE"):
        personal = client.namespace().personal
        if personal:
            prefix = personal[0][0] or ""
    from migrator.imapconn import list_raw
    from migrator.list_reply import parse_list

    # Line by line, names in raw UTF-8 or modified UTF-7 (imapclient reads raw UTF-8 as Latin-1).
    entries, _problems = parse_list(list_raw(client))
    for entry in entries:
        name, flag_set = entry.name, set(entry.flags)
        if {"\\Noselect", "\\NonExistent"} & {f.title() for f in flag_set}:
            continue
        path = split_name(name, entry.delimiter, prefix)
        special = next((f for f in flag_set if f in _SPECIAL_USE_FLAGS), None)
        key = "/".join(path)
        try:
            permanent = _permanent_flags(client, name) if permanent_flags else None
            messages = list(_read_messages(client, name, (lambda raw: rewrite(key, raw)) if rewrite else None))
        except Exception as exc:  # imapclient raises several unrelated types here
            raise SnapshotError(f"{label}: folder {name!r}: {exc}") from None
        yield key, FolderSnapshot(path=path, name=name, special_use=special, messages=messages,
                                  permanent_flags=permanent)


def _permanent_flags(client, name: str) -> list[str] | None:
    info = client.select_folder(name, readonly=False)
    if b"PERMANENTFLAGS" not in info:
        return None  # RFC 3501: none given means every flag can be stored
    return [f.decode() if isinstance(f, bytes) else f for f in info[b"PERMANENTFLAGS"]]


_SPECIAL_USE_FLAGS = frozenset(
    {"\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All", "\\Flagged"}
)


def _read_messages(client, name: str, rewrite: Callable[[bytes], bytes] | None = None) -> Iterator[MessageRecord]:
    client.select_folder(name, readonly=True)
    uids = sorted(client.search("ALL"))
    for start in range(0, len(uids), FETCH_BATCH):
        batch = uids[start : start + FETCH_BATCH]
        fetched = client.fetch(batch, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
        for uid in batch:
            data = fetched.get(uid)
            if data is None:  # expunged meanwhile
                continue
            flags = [f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"]]
            raw = data[b"BODY[]"]
            yield record_of(uid, rewrite(raw) if rewrite else raw, flags, data[b"INTERNALDATE"])
    client.unselect_folder() if client.has_capability("UNSELECT") else client.close_folder()
