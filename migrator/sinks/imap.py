"""Writing a destination mailbox over IMAP: folders, existing identities, pipelined APPEND.

APPEND keeps the resolved INTERNALDATE and the flags the destination accepts (PERMANENTFLAGS of a
read-write SELECT: EXAMINE may show an empty list, examine-empty-permanentflags).

Why a hand-written appender over the imapclient connection's socket: imaplib (under imapclient)
sends one APPEND at a time and waits for each "+" continuation, ~2 round trips per message, and
imapclient's ``multiappend`` writes every literal with its own small send(). With LITERAL+
(RFC 7888) literals need no continuation, so a whole batch goes out in one write (small
messages gathered, a large literal written from the fetched bytes without a copy, ``send_pieces``):
- MULTIAPPEND (RFC 3502) when advertised: one command, one server transaction per batch — on
  Dovecot each APPEND transaction costs a lock + index update + fsync, so this is ~4x faster
  than separate APPENDs. It is atomic: if the server refuses it, nothing was stored and the batch
  is retried as
- pipelined APPENDs: independent commands, each with its own tag, read back in order: still one
  round trip, and a per-message OK/NO with its APPENDUID, so one bad message is isolated.
Without LITERAL+ we fall back to imapclient's one-by-one ``append``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from imapclient import exceptions as imap_exc
from imapclient.datetime_util import datetime_to_INTERNALDATE
from imapclient.imapclient import seq_to_parenstr

from migrator.errors import ConnectionFailed, ProtocolError
from migrator.folders import ListEntry, Namespace
from migrator.identity import IdentityIndex, identity_of
from migrator.imapconn import Commands, capability_set, capability_value, close_quietly, connect, server_text, translated, uid_fetch
from migrator.sources.imap import HEADER_ITEM, _header_value, decode_flags, list_entries, personal_namespace
from migrator.timeline import Timeline
from migrator.urls import Endpoint

APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d{1,10})\]", re.IGNORECASE)  # a UID is 32-bit; int() of more can raise
APPENDUID_SET = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]", re.IGNORECASE)
SEND_DIRECT_BYTES = 256 * 1024  # a literal this large is written as is, not copied into a gathered send
GATHER_BYTES = 4 * 1024 * 1024  # pieces gathered into one send up to this size
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
    reason: str | None = None  # a stable code when the engine, not the server, judged it (else from text)


class AppendInterrupted(ConnectionFailed):
    """The connection died in the middle of a pipelined batch: ``results`` holds the replies of
    the first ``len(results)`` messages; the fate of the others is unknown."""

    def __init__(self, message: str, results: list[AppendResult]):
        super().__init__(message)
        self.results = results


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


# How destinations say "too big" without APPENDLIMIT: RFC 7889's [TOOBIG], Exchange's wording.
_TOO_LARGE = re.compile(r"\[TOOBIG\]|maximum size|too large|message size exceeds", re.IGNORECASE)


def refusal_reason(text: str) -> str:
    """A stable reason code for a refused APPEND: "too-large", "over-quota" or "refused"."""
    if _TOO_LARGE.search(text):
        return "too-large"
    if "[OVERQUOTA]" in text.upper():
        return "over-quota"
    return "refused"


def parse_tagged(typ: str, data: list) -> AppendResult:
    text = TIMING.sub(b"", b" ".join(d for d in data if isinstance(d, bytes)))
    m = APPENDUID.search(text)
    return AppendResult(typ == "OK", int(m.group(2)) if m else None, text.decode("utf-8", "replace"))


def _append_arguments(item: AppendItem) -> list[bytes]:
    """``(flags) "date" {n+}CRLF`` and the message itself — a non-synchronising literal (LITERAL+).

    Two pieces, so the message bytes are written as they are, never copied into a joined command.
    """
    out = seq_to_parenstr(item.flags).encode("utf-8")
    if item.internaldate is not None:
        out += b' "' + datetime_to_INTERNALDATE(item.internaldate).encode("ascii") + b'"'
    return [out + b" {%d+}\r\n" % len(item.raw), item.raw]


def send_pieces(send: Callable[[bytes], object], pieces: list[bytes]) -> None:
    """Write ``pieces`` in order with few sends and no copy of a large one.

    Small pieces (command words, literal headers, small messages) are gathered into sends of up to
    ``GATHER_BYTES``, so a batch of small messages still leaves in one or two writes; a piece of
    ``SEND_DIRECT_BYTES`` or more goes out as it is (a 50 MB literal is not copied a second time).
    """
    gathered = bytearray()
    for piece in pieces:
        if len(piece) >= SEND_DIRECT_BYTES:
            if gathered:
                send(bytes(gathered))
                gathered.clear()
            send(piece)
            continue
        gathered += piece
        if len(gathered) >= GATHER_BYTES:
            send(bytes(gathered))
            gathered.clear()
    if gathered:
        send(bytes(gathered))


_UID_RANGE = re.compile(r"(\d{1,10})(?::(\d{1,10}))?")


def expand_uid_set(text: str, count: int) -> list[int] | None:
    """``"5:7,9"`` → [5, 6, 7, 9] (APPENDUID of a MULTIAPPEND, RFC 4315), or None unless the set
    is well formed and holds exactly ``count`` UIDs. Counted before expanding: a server's
    "1:4294967295" must not become a four-billion-element list."""
    ranges = []
    for part in text.split(","):
        m = _UID_RANGE.fullmatch(part)
        if m is None:
            return None
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        ranges.append((min(a, b), max(a, b)))
    if sum(hi - lo + 1 for lo, hi in ranges) != count:
        return None
    return [uid for lo, hi in ranges for uid in range(lo, hi + 1)]


class ImapSink(Commands):
    """One destination connection. Not thread-safe: each folder worker opens its own."""

    def __init__(self, endpoint: Endpoint, *, timeline: Timeline | None = None):
        self.endpoint, self.timeline = endpoint, timeline
        self.client, self.tls = connect(endpoint, role="destination")
        self.caps = capability_set(self.client)
        self.append_limit = capability_value(self.caps, "APPENDLIMIT")
        self.literal_plus = "LITERAL+" in self.caps
        self.multiappend = "MULTIAPPEND" in self.caps
        self.gmail = "X-GM-EXT-1" in self.caps  # gmail-append-dedup: APPENDUID proves nothing
        self.list_problems: list[str] = []  # malformed LIST lines of the last folders()
        # Exchange/M365 (by their greeting): lines over ~9900 characters are refused (exchange-append-limits).
        self.microsoft = b"Microsoft Exchange" in (self.client.welcome or b"")

    def where(self, folder: str | None = None) -> str:
        out = f"destination {self.endpoint.url.display()}"
        return out + (f" folder {folder!r}" if folder is not None else "")

    def close(self) -> None:
        close_quietly(self.client)

    def folders(self, *, lenient: bool = True) -> tuple[list[ListEntry], Namespace]:
        entries, self.list_problems = list_entries(self.client, self.where(), lenient)
        return entries, personal_namespace(self.client, self.where(), entries)

    def create(self, folder: str) -> bool:
        """CREATE (and SUBSCRIBE); False when the server says it already exists."""
        try:
            self.ok(folder, self.client.create_folder, folder)
        except ProtocolError as exc:
            # LIST may not show a folder the server still has (Dovecot's configured special-use
            # mailboxes, another client racing us), or the name may collide by case: the caller
            # decides which.
            if "ALREADYEXISTS" not in str(exc).upper() and "ALREADY EXISTS" not in str(exc).upper():
                raise
            return False
        try:
            self.client.subscribe_folder(folder)
        except imap_exc.IMAPClientError:
            pass  # subscription is cosmetic
        return True

    def select(self, folder: str) -> tuple[list[str], int]:
        """Read-write SELECT: (PERMANENTFLAGS, EXISTS)."""
        info = self.ok(folder, self.client.select_folder, folder, readonly=False)
        permanent = decode_flags(info.get(b"PERMANENTFLAGS", ())) or list(DEFAULT_PERMANENT)
        return permanent, int(info.get(b"EXISTS", 0))

    def identities(self, folder: str, exists: int) -> IdentityIndex:
        """Identities of the messages already in ``folder`` (selected by ``select``)."""
        index = IdentityIndex()
        if exists:
            data = self.ok(folder, uid_fetch, self.client, "1:*", ["RFC822.SIZE", HEADER_ITEM])
            for v in data.values():
                index.add(identity_of(_header_value(v), int(v.get(b"RFC822.SIZE", 0))))
        return index

    def message_id_counts(self, folder: str, message_ids: list[str]) -> dict[str, int]:
        """How many messages of the selected folder carry each Message-ID (UID SEARCH HEADER):
        Gmail answers a deduplicated APPEND with an APPENDUID of a message it never stored
        (gmail-append-dedup), so only counting before and after proves a copy landed."""
        return {mid: len(self.uids_with_message_id(folder, mid)) for mid in message_ids}

    def add_flags(self, folder: str, uids: list[int], flags: list[str]) -> None:
        """UID STORE +FLAGS.SILENT on messages of the selected ``folder``."""
        if uids:
            self.ok(folder, self.client.add_flags, uids, flags, silent=True)

    def uids_with_message_id(self, folder: str, message_id: str) -> list[int]:
        """UIDs of the selected ``folder`` whose Message-ID is ``message_id`` (no APPENDUID)."""
        return list(self.ok(folder, self.client.search, ["HEADER", "Message-ID", message_id]))

    def delete_all(self, folder: str, exists: int) -> int:
        """Replace mode: flag everything \\Deleted and EXPUNGE (folder selected read-write)."""
        if not exists:
            return 0
        self.ok(folder, self.client.add_flags, "1:*", ["\\Deleted"], silent=True)
        self.ok(folder, self.client.expunge)
        return exists

    def append_batch(self, folder: str, items: list[AppendItem]) -> list[AppendResult]:
        """Append in as few round trips and server transactions as the destination allows."""
        if not items:
            return []
        if not self.literal_plus:
            return [self._append_one(folder, item) for item in items]
        if self.multiappend and len(items) > 1:
            results = self._multiappend(folder, items)
            if results is not None:
                return results
            # Refused as a whole (RFC 3502: nothing was stored): find the culprit message by message.
        return self._pipelined(folder, items)

    def _multiappend(self, folder: str, items: list[AppendItem]) -> list[AppendResult] | None:
        """One MULTIAPPEND command: one server transaction (Dovecot: ~4x fewer ms per message on disk)."""
        imap = self.client._imap  # imaplib connection: tags, raw send, tagged-reply reader
        tag = imap._new_tag()
        pieces = [b" ".join([tag, b"APPEND", self.client._normalise_folder(folder)])]
        for item in items:
            head, raw = _append_arguments(item)
            pieces += [b" " + head, raw]
        pieces.append(b"\r\n")
        with translated(self.where(folder)):
            send_pieces(imap.send, pieces)
            try:
                typ, data = imap._command_complete("APPEND", tag)
            except imap_exc.IMAPClientAbortError:
                raise
            except imap_exc.IMAPClientError:
                return None
        if typ != "OK":
            return None
        text = TIMING.sub(b"", b" ".join(d for d in data if isinstance(d, bytes)))
        m = APPENDUID_SET.search(text)
        uids = (expand_uid_set(m.group(2).decode(), len(items)) if m else None) or [None] * len(items)
        return [AppendResult(True, uid, text.decode("utf-8", "replace")) for uid in uids]

    def _pipelined(self, folder: str, items: list[AppendItem]) -> list[AppendResult]:
        """Independent APPENDs written in one send: one round trip, a tagged reply per message."""
        imap = self.client._imap
        mailbox = self.client._normalise_folder(folder)
        tags, pieces = [], []
        for item in items:
            tag = imap._new_tag()
            tags.append(tag)
            head, raw = _append_arguments(item)
            pieces += [b" ".join([tag, b"APPEND", mailbox, head]), raw, b"\r\n"]
        results: list[AppendResult] = []
        with translated(self.where(folder)):
            send_pieces(imap.send, pieces)
        for tag in tags:
            try:
                with translated(self.where(folder)):
                    try:
                        typ, data = imap._command_complete("APPEND", tag)
                        results.append(parse_tagged(typ, data))
                    except imap_exc.IMAPClientAbortError:
                        raise
                    except imap_exc.IMAPClientError as exc:  # BAD for this one message
                        results.append(AppendResult(False, None, server_text(exc)))
            except ConnectionFailed as exc:  # e.g. exchange-bye-after-errors: keep what we know
                raise AppendInterrupted(str(exc), results) from None
        return results

    def _append_one(self, folder: str, item: AppendItem) -> AppendResult:
        try:
            with translated(self.where(folder)):
                reply = self.client.append(folder, item.raw, flags=item.flags, msg_time=item.internaldate)
        except ConnectionFailed:
            raise
        except imap_exc.IMAPClientError as exc:
            return AppendResult(False, None, server_text(exc))
        text = reply if isinstance(reply, bytes) else str(reply).encode()
        return parse_tagged("OK", [text])

