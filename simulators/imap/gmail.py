"""Gmail's label model over IMAP, as quirks of the ``gmail`` profiles (QUIRKS.md, Gmail section).

Design: the store keeps **one MailItem per label folder**, and one more in ``[Gmail]/All Mail``
(the profile's ``all`` special folder); the copies of one Gmail message share
``extra["gm_msgid"]`` (and ``extra["gm_thrid"]``). So every folder keeps ordinary per-folder UIDs
and the IMAP engine needs no view logic, while X-GM-LABELS is derived from where the copies are:

- a message in INBOX and ``Work`` exists three times: INBOX, ``Work`` and All Mail;
- an archive-only message exists once, in All Mail (``gmail_layout`` / the fixture's
  ``gmail_labels`` option make some);
- X-GM-LABELS lists the folders (other than All Mail) holding a copy: INBOX as ``\\Inbox``,
  special folders as Gmail's system labels (``\\Sent``, ``\\Draft``, ``\\Trash``, ``\\Spam``,
  ``\\Starred``), user folders by their wire name.

Quirks registered here:

- ``gmail-labels`` — X-GM-EXT-1: FETCH X-GM-MSGID / X-GM-THRID / X-GM-LABELS; APPEND to a label
  folder also files the message in All Mail; APPEND to All Mail makes an archive-only message;
  ``SEARCH X-GM-RAW "<Gmail query>"`` (the query language: ``simulators.imap.gmail_search``),
  ``X-GM-LABELS`` / ``X-GM-MSGID`` / ``X-GM-THRID`` search keys; ``STORE +X-GM-LABELS`` (a copy in
  that label's folder, created when new, as Gmail creates the label), ``-X-GM-LABELS`` (the copy
  leaves that folder: removing ``\\Inbox`` archives), ``X-GM-LABELS`` (exactly these).
- ``gmail-append-dedup`` — APPEND of a message whose Message-ID is already in All Mail answers
  with a fresh APPENDUID but stores nothing new (into another label folder it only adds that
  label, as Gmail does).
- ``gmail-delete-semantics`` — EXPUNGE in a label folder only removes that label (the All Mail
  copy stays); EXPUNGE in All Mail or Trash removes the message from every folder.

Flags are kept per copy (Gmail shares \\Seen across labels; the simulator does not). Labels
with no folder here (``\\Important``) are accepted by STORE and dropped, and so is All Mail's
own name (every message is in All Mail anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from imapclient import imap_utf7

from simulators.imap import gmail_search
from simulators.imap.names import MailboxNameError
from simulators.imap.search import SearchKey, SearchSyntaxError
from simulators.quirks import Quirk, register
from simulators.store import INBOX, Account, Folder, MailItem

# RFC 6154 use → Gmail's system label (as X-GM-LABELS shows it).
SYSTEM_LABELS = {
    "\\Sent": "\\Sent",
    "\\Drafts": "\\Draft",
    "\\Trash": "\\Trash",
    "\\Junk": "\\Spam",
    "\\Flagged": "\\Starred",
}
# Gmail's one answer to a command it cannot parse (gmvault#156, node-imap#739, imapflow#128).
GMAIL_BAD = "BAD Could not parse command"
# First X-GM-MSGID handed out in an account: 64-bit values like Gmail's, deterministic by order.
FIRST_MSGID = 1_700_000_000_000_000_000


def all_mail(account: Account, profile) -> Folder | None:
    """The account's ``[Gmail]/All Mail`` (the profile's ``all`` folder, else any \\All folder)."""
    parts = profile.special_folders.get("all")
    if parts and tuple(parts) in account.folders:
        return account.folders[tuple(parts)]
    return account.find_special("\\All")


def message_id(raw: bytes) -> str | None:
    value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    return value.strip() if value else None


def gmail_layout(account: Account, profile) -> None:
    """Create the profile's special folders with ``[Gmail]`` (or any parent) as \\Noselect."""
    from simulators.profiles import SPECIAL_USE

    for key, parts in profile.special_folders.items():
        if key not in SPECIAL_USE:
            continue
        path = tuple(parts)
        for i in range(1, len(path)):
            if path[:i] not in account.folders:
                account.create_folder(path[:i], selectable=False)
        account.create_folder(path, special_use=SPECIAL_USE[key], exist_ok=True)


def assign_ids(account: Account, item: MailItem, thread_of: str | None = None) -> None:
    """Give ``item`` a new X-GM-MSGID (and thread id: its own, or ``thread_of``'s thread)."""
    n = account.extra.get("gm_next", FIRST_MSGID)
    account.extra["gm_next"] = n + 1
    item.extra["gm_msgid"] = n
    threads = account.extra.setdefault("gm_threads", {})  # Message-ID → thread id
    mid = message_id(item.raw)
    item.extra["gm_thrid"] = threads.get(thread_of, n) if thread_of else n
    if mid:
        threads.setdefault(mid, item.extra["gm_thrid"])


def _thread_parent(raw: bytes) -> str | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    refs = (headers.get("References") or headers.get("In-Reply-To") or "").split()
    return refs[0] if refs else None


def file_message(account: Account, profile, folder: Folder, raw: bytes, flags, when) -> MailItem:
    """Store a new Gmail message in ``folder`` and (unless that is All Mail) in All Mail too."""
    archive = all_mail(account, profile)
    item = account.append(folder.path, raw, flags=flags, internaldate=when)
    assign_ids(account, item, _thread_parent(raw))
    if archive is not None and archive is not folder:  # the same bytes held once (raw may be a bytearray)
        account.append(archive.path, item.raw if item.in_memory else raw, flags=flags, internaldate=when,
                       extra=item.extra)
    return item


def labels_of(session, msgid: int) -> list[str]:
    """X-GM-LABELS of one message: every folder but All Mail that holds a copy."""
    return label_index(session, {msgid}).get(msgid, [])


def label_index(session, msgids: set[int] | None = None) -> dict[int, list[str]]:
    """X-GM-MSGID → X-GM-LABELS for ``msgids`` (None: every message), in one pass over the folders."""
    archive = all_mail(session.account, session.profile)
    index: dict[int, list[str]] = {}
    for path, folder in session.account.folders.items():
        if folder is archive:
            continue
        held = {m.extra["gm_msgid"] for m in folder.messages if "gm_msgid" in m.extra}
        for msgid in held if msgids is None else held & msgids:
            index.setdefault(msgid, []).append(_folder_label(session, path, folder))
    return index


def _folder_label(session, path: tuple[str, ...], folder: Folder) -> str:
    use = folder.special_use or session.profile.special_use_of(path)
    if path == INBOX:
        return "\\Inbox"
    if use in SYSTEM_LABELS:
        return SYSTEM_LABELS[use]
    return session.names.to_wire(path).decode("ascii")


def ensure_ids(session, item: MailItem) -> int:
    """The item's X-GM-MSGID, given now when it was stored before the quirk saw it."""
    if "gm_msgid" not in item.extra:
        assign_ids(session.account, item)
    return item.extra["gm_msgid"]


def drop_copies(session, msgids: set[int], folders=None) -> None:
    """Remove the copies of these messages from ``folders`` (default: every folder)."""
    account = session.account
    for other in list(folders if folders is not None else account.folders.values()):
        keep = [m for m in other.messages if m.extra.get("gm_msgid") not in msgids]
        if len(keep) != len(other.messages):
            with session.store.lock:
                other.messages = keep
            session.store.notify(account, other)


def label_folder(session, label: str, *, create: bool) -> Folder | None:
    """The folder that holds a label's copies: INBOX for \\Inbox, the special folder for a
    system label, else the folder of that wire name (created when ``create``, as Gmail creates
    a label on first use). None: a label without a folder here (\\Important, All Mail's)."""
    account, profile = session.account, session.profile
    if label.lower() == "\\inbox":
        return account.folders[INBOX]
    if label.startswith("\\"):
        use = next((u for u, name in SYSTEM_LABELS.items() if name.lower() == label.lower()), None)
        return account.find_special(use) if use else None
    path = session.names.from_wire(label)  # MailboxNameError: the STORE's BAD
    folder = account.folders.get(path)
    if folder is None and create:
        folder = account.create_folder(path)
    if folder is None or folder is all_mail(account, profile) or not folder.selectable:
        return None
    return folder


def _decoded(label: str) -> str:
    """A label as search compares it: user labels decoded from modified UTF-7."""
    if label.startswith("\\") or not label.isascii():  # system labels; raw UTF-8 as some clients send
        return label
    return imap_utf7.decode(label.encode("ascii"))


class GmailRaw(SearchKey):
    """A parsed Gmail query bound to the session whose folders say where each message is. One
    key serves one SEARCH: the labels of every message are gathered once, when a term first
    asks (each message's own lookup would scan every folder)."""

    def __init__(self, term: gmail_search.Term, session):
        self.term = term
        self.session = session

    @cached_property
    def _labels(self) -> dict[int, list[str]]:
        return {msgid: [_decoded(lb) for lb in labels] for msgid, labels in label_index(self.session).items()}

    def matches(self, item, ctx):
        msgid = ensure_ids(self.session, item)
        facts = gmail_search.Facts(lambda: self._labels.get(msgid, []), ctx.now)
        return self.term.test(item, facts)


@dataclass(frozen=True, eq=False)
class GmailId(SearchKey):
    """SEARCH X-GM-MSGID n / X-GM-THRID n."""

    key: str  # "gm_msgid" | "gm_thrid"
    value: int
    session: Any

    def matches(self, item, ctx):
        ensure_ids(self.session, item)
        return item.extra.get(self.key) == self.value


def _raw_query(session, text: str) -> SearchKey:
    try:
        return GmailRaw(gmail_search.parse_query(text), session)
    except gmail_search.GmailSearchError as exc:
        raise SearchSyntaxError(str(exc), reply=GMAIL_BAD) from None


def _id_key(session, key: str, text: str) -> SearchKey:
    if not text.isdigit():
        raise SearchSyntaxError(f"{key}: {text!r} is not a number", reply=GMAIL_BAD)
    return GmailId(key, int(text), session)


_ATOM = re.compile(r"^\\?[A-Za-z0-9_.\-/\[\]]+$")


def _labels_value(session, item: MailItem) -> bytes:
    return b"(" + b" ".join(_label_bytes(lb) for lb in labels_of(session, ensure_ids(session, item))) + b")"


def _label_bytes(label: str) -> bytes:
    """System labels as flag-like atoms (``\\Inbox``), others as atoms or quoted strings, as Gmail."""
    if _ATOM.match(label):
        return label.encode()
    return b'"' + label.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


@register
class GmailLabels(Quirk):
    """Gmail X-GM-EXT-1: FETCH X-GM-MSGID/X-GM-THRID/X-GM-LABELS; every message also in All Mail.

    One message (same X-GM-MSGID) shows in each of its label folders and in `[Gmail]/All Mail`;
    APPEND to a label folder files a copy in All Mail, APPEND to All Mail makes an archive-only
    message. See ``simulators.imap.gmail`` for the store layout.
    """

    name = "gmail-labels"
    protocols = frozenset({"imap"})

    def imap_capabilities(self, caps, authenticated):
        return None if "X-GM-EXT-1" in caps else caps + ["X-GM-EXT-1"]

    def imap_fetch_items(self, session, folder, item):
        return {
            "X-GM-MSGID": b"%d" % ensure_ids(session, item),
            "X-GM-THRID": b"%d" % item.extra["gm_thrid"],
            "X-GM-LABELS": _labels_value(session, item),
        }

    def imap_search_keys(self, session):
        return {
            "X-GM-RAW": lambda text: _raw_query(session, text),
            "X-GM-LABELS": lambda text: GmailRaw(gmail_search.HasLabel(gmail_search.label_key(_decoded(text))), session),
            "X-GM-MSGID": lambda text: _id_key(session, "gm_msgid", text),
            "X-GM-THRID": lambda text: _id_key(session, "gm_thrid", text),
        }

    def imap_store_items(self, session, folder, items, mode, values):
        if mode.lstrip("+-") != "X-GM-LABELS":
            return None
        try:
            found = [label_folder(session, v, create=mode[0] != "-") for v in values]
        except MailboxNameError:
            return GMAIL_BAD
        account = session.account
        wanted = {f.path for f in found if f is not None}
        archive = all_mail(account, session.profile)
        for item in items:
            msgid = ensure_ids(session, item)
            holding = {p for p, f in account.folders.items() if any(m.extra.get("gm_msgid") == msgid for m in f.messages)}
            if mode[0] == "+":
                add, remove = wanted - holding, set()
            elif mode[0] == "-":
                add, remove = set(), wanted & holding
            else:  # X-GM-LABELS (…): exactly these labels (the All Mail copy stays)
                add, remove = wanted - holding, holding - wanted - {archive.path if archive else None}
            for path in sorted(add):
                account.append(path, item.raw, flags=item.flags - {"\\Recent"}, internaldate=item.internaldate,
                               extra=item.extra)
            drop_copies(session, {msgid}, [account.folders[p] for p in remove])
        return [b"X-GM-LABELS " + _labels_value(session, item) for item in items]

    def imap_append(self, session, folder, raw, flags, when):
        for q in session.quirks:  # dedup first, whatever the order of the profile's quirks
            if isinstance(q, GmailAppendDedup):
                uid = q.imap_append(session, folder, raw, flags, when)
                if uid is not None:
                    return uid
        return file_message(session.account, session.profile, folder, raw, flags, when).uid


@register
class GmailAppendDedup(Quirk):
    """Gmail: APPEND of a message it already has returns a new APPENDUID but stores nothing.

    Gmail: APPEND of a message whose Message-ID is already in `[Gmail]/All Mail` (or, without
    one, in the target folder) answers `OK [APPENDUID v n]` with a fresh UID ``n`` that names
    nothing; into another label folder it only adds that label (a copy sharing X-GM-MSGID).
    """

    name = "gmail-append-dedup"
    protocols = frozenset({"imap"})

    def imap_append(self, session, folder, raw, flags, when):
        mid = message_id(raw)
        if mid is None:
            return None
        account = session.account
        archive = all_mail(account, session.profile) or folder
        known = next((m for m in archive.messages if message_id(m.raw) == mid), None)
        if known is None:
            return None
        msgid = known.extra.get("gm_msgid")
        if folder is archive or (msgid is not None and any(m.extra.get("gm_msgid") == msgid for m in folder.messages)):
            with session.store.lock:
                uid = folder.uidnext  # handed out and never used, as Gmail does
                folder.uidnext += 1
            return uid
        return account.append(folder.path, known.raw, flags=flags, internaldate=known.internaldate,
                               extra=known.extra).uid


@register
class GmailDeleteSemantics(Quirk):
    """Gmail: EXPUNGE in a label folder only removes the label; in All Mail or Trash, the message.

    Gmail: EXPUNGE in a label folder removes only that label (the message stays in
    `[Gmail]/All Mail` and its other labels); EXPUNGE in All Mail or Trash (``everywhere_from``)
    removes every copy of the message.
    """

    name = "gmail-delete-semantics"
    protocols = frozenset({"imap"})

    class Params(Quirk.Params):
        everywhere_from: list[str] = ["all", "trash"]  # profile special-folder keys

    def imap_expunge(self, session, folder, uids):
        account, profile = session.account, session.profile
        roots = {tuple(profile.special_folders[k]) for k in self.params.everywhere_from if k in profile.special_folders}
        if folder.path not in roots:
            return None  # a label folder: the normal expunge removes the label only
        wanted = None if uids is None else set(uids)
        msgids = {
            m.extra["gm_msgid"] for m in folder.messages
            if "\\Deleted" in m.flags and "gm_msgid" in m.extra and (wanted is None or m.uid in wanted)
        }
        gone = account.expunge(folder.path, uids)
        drop_copies(session, msgids)
        return gone
