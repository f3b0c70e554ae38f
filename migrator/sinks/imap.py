"""Writing a destination mailbox over IMAP: folders, existing identities, pipelined APPEND.

APPEND keeps the resolved INTERNALDATE and the flags the destination accepts (PERMANENTFLAGS of a
read-write SELECT: EXAMINE may show an empty list, examine-empty-permanentflags).

Why a hand-written pipelined appender: imaplib (under imapclient) sends one APPEND at a time and
waits for each "+" continuation, ~2 round trips per message; imapclient's ``multiappend`` fixes
the round trips but is atomic (RFC 3502: one refused message fails the whole batch) and writes
every literal with its own small send(). With LITERAL+ (RFC 7888) the literals need no
continuation, so we write a whole batch of independent APPEND commands, each with its own tag, in
one send, then read the tagged replies in order: one round trip per batch and a per-message
OK/NO with its APPENDUID. Without LITERAL+ we fall back to imapclient's one-by-one ``append``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from imapclient import exceptions as imap_exc
from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.imapclient import seq_to_parenstr

from migrator.errors import ConnectionFailed, ProtocolError
from migrator.folders import ListEntry, Namespace
from migrator.identity import IdentityIndex, identity_of
from migrator.imapconn import capability_set, capability_value, close_quietly, connect, expect_ok, translated, uid_fetch
from migrator.sources.imap import HEADER_ITEM, _header_value, decode_flags, list_entries, personal_namespace
from migrator.urls import Endpoint

APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
DEFAULT_PERMANENT = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


@dataclass
class AppendItem:
    raw: bytes
    flags: list[str]
    internaldate: datetime | None


@dataclass
class AppendResult:
    ok: bool
    uid: int | None = None  # from APPENDUID when the server has UIDPLUS
    text: str = ""  # the server's text (the reason on NO/BAD)


def filter_flags(flags: list[str], permanent: list[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped) — keywords pass when PERMANENTFLAGS has \\*; \\Recent never is settable."""
    allowed = {f.lower() for f in permanent}
    any_keyword = "\\*" in allowed
    kept, dropped = [], []
    for f in flags:
        if f.lower() == "\\recent":
            continue  # session flag, set by the server itself; not worth reporting
        if f.lower() in allowed or (any_keyword and not f.startswith("\\")):
            kept.append(f)
        else:
            dropped.append(f)
    return kept, dropped


# Dovecot appends its timings, "(0.001 + 0.000 secs).": noise that would make reports differ per run.
TIMING = re.compile(rb"\s*\(\d+\.\d+( \+ \d+\.\d+)* secs\)")


def parse_tagged(typ: str, data: list) -> AppendResult:
    text = TIMING.sub(b"", b" ".join(d for d in data if isinstance(d, bytes)))
    m = APPENDUID.search(text)
    return AppendResult(typ == "OK", int(m.group(2)) if m else None, text.decode("utf-8", "replace"))


class ImapSink:
    """One destination connection. Not thread-safe: each folder worker opens its own."""

    def __init__(self, endpoint: Endpoint):
        self.endpoint = endpoint
        self.client, self.tls = connect(endpoint, role="destination")
        self.caps = capability_set(self.client)
        self.append_limit = capability_value(self.caps, "APPENDLIMIT")
        self.literal_plus = "LITERAL+" in self.caps

    def where(self, folder: str | None = None) -> str:
        out = f"destination {self.endpoint.url.display()}"
        return out + (f" folder {folder!r}" if folder is not None else "")

    def close(self) -> None:
        close_quietly(self.client)

    def folders(self) -> tuple[list[ListEntry], Namespace]:
        entries = list_entries(self.client, self.where())
        return entries, personal_namespace(self.client, self.where(), entries)

    def create(self, folder: str) -> None:
        try:
            expect_ok(self.where(folder), self.client.create_folder, folder)
        except ProtocolError as exc:
            # LIST may not show a folder the server still has (Dovecot's configured special-use
            # mailboxes, another client racing us): existing is what we wanted.
            if "ALREADYEXISTS" not in str(exc).upper() and "ALREADY EXISTS" not in str(exc).upper():
                raise
        try:
            self.client.subscribe_folder(folder)
        except imap_exc.IMAPClientError:
            pass  # subscription is cosmetic

    def select(self, folder: str) -> tuple[list[str], int]:
        """Read-write SELECT: (PERMANENTFLAGS, EXISTS)."""
        info = expect_ok(self.where(folder), self.client.select_folder, folder, readonly=False)
        permanent = decode_flags(info.get(b"PERMANENTFLAGS", ())) or list(DEFAULT_PERMANENT)
        return permanent, int(info.get(b"EXISTS", 0))

    def identities(self, folder: str, exists: int) -> IdentityIndex:
        """Identities of the messages already in ``folder`` (selected by ``select``)."""
        index = IdentityIndex()
        if exists:
            data = expect_ok(self.where(folder), uid_fetch, self.client, "1:*", ["RFC822.SIZE", HEADER_ITEM])
            for v in data.values():
                index.add(identity_of(_header_value(v), int(v.get(b"RFC822.SIZE", 0))))
        return index

    def delete_all(self, folder: str, exists: int) -> int:
        """Replace mode: flag everything \\Deleted and EXPUNGE (folder selected read-write)."""
        if not exists:
            return 0
        expect_ok(self.where(folder), self.client.add_flags, "1:*", ["\\Deleted"], silent=True)
        expect_ok(self.where(folder), self.client.expunge)
        return exists

    def append_batch(self, folder: str, items: list[AppendItem]) -> list[AppendResult]:
        if not items:
            return []
        if not self.literal_plus:
            return [self._append_one(folder, item) for item in items]
        imap = self.client._imap  # imaplib connection: tags, raw send, tagged-reply reader
        mailbox = self.client._normalise_folder(folder)
        tags, chunks = [], []
        for item in items:
            tag = imap._new_tag()
            tags.append(tag)
            head = [tag, b"APPEND", mailbox, seq_to_parenstr(item.flags).encode("utf-8")]
            if item.internaldate is not None:
                head.append(b'"' + datetime_to_INTERNALDATE(item.internaldate).encode("ascii") + b'"')
            chunks.append(b" ".join(head) + b" {%d+}\r\n" % len(item.raw) + item.raw + b"\r\n")
        results = []
        with translated(self.where(folder)):
            imap.send(b"".join(chunks))
            for tag in tags:
                try:
                    typ, data = imap._command_complete("APPEND", tag)
                    results.append(parse_tagged(typ, data))
                except imap_exc.IMAPClientAbortError:
                    raise
                except imap_exc.IMAPClientError as exc:  # BAD for this one message
                    results.append(AppendResult(False, None, str(exc)))
        return results

    def _append_one(self, folder: str, item: AppendItem) -> AppendResult:
        try:
            with translated(self.where(folder)):
                reply = self.client.append(folder, item.raw, flags=item.flags, msg_time=item.internaldate)
        except ConnectionFailed:
            raise
        except imap_exc.IMAPClientError as exc:
            return AppendResult(False, None, str(exc))
        text = reply if isinstance(reply, bytes) else str(reply).encode()
        return parse_tagged("OK", [text])

