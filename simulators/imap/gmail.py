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
  folder also files the message in All Mail; APPEND to All Mail makes an archive-only message.
- ``gmail-append-dedup`` — APPEND of a message whose Message-ID is already in All Mail answers
  with a fresh APPENDUID but stores nothing new (into another label folder it only adds that
  label, as Gmail does).
- ``gmail-delete-semantics`` — EXPUNGE in a label folder only removes that label (the All Mail
  copy stays); EXPUNGE in All Mail or Trash removes the message from every folder.

Flags are kept per copy (Gmail shares \\Seen across labels; the simulator does not), and
X-GM-RAW search and STORE X-GM-LABELS are not implemented.
"""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

import re

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
    if archive is not None and archive is not folder:
        account.append(archive.path, raw, flags=flags, internaldate=when, extra=item.extra)
    return item


def labels_of(session, msgid: int) -> list[str]:
    """X-GM-LABELS of one message: every folder but All Mail that holds a copy."""
    archive = all_mail(session.account, session.profile)
    labels = []
    for path, folder in session.account.folders.items():
        if folder is archive or not any(m.extra.get("gm_msgid") == msgid for m in folder.messages):
            continue
        use = folder.special_use or session.profile.special_use_of(path)
        if path == INBOX:
            labels.append("\\Inbox")
        elif use in SYSTEM_LABELS:
            labels.append(SYSTEM_LABELS[use])
        else:
            labels.append(session.names.to_wire(path).decode("ascii"))
    return labels


_ATOM = re.compile(r"^\\?[A-Za-z0-9_.\-/\[\]]+$")


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
        if "gm_msgid" not in item.extra:  # mail stored before the quirk saw it (plain fixtures)
            assign_ids(session.account, item)
        labels = b" ".join(_label_bytes(label) for label in labels_of(session, item.extra["gm_msgid"]))
        return {
            "X-GM-MSGID": b"%d" % item.extra["gm_msgid"],
            "X-GM-THRID": b"%d" % item.extra["gm_thrid"],
            "X-GM-LABELS": b"(" + labels + b")",
        }

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
        for other in list(account.folders.values()):
            copies = [m for m in other.messages if m.extra.get("gm_msgid") in msgids]
            if copies:
                drop = {id(m) for m in copies}
                with session.store.lock:
                    other.messages = [m for m in other.messages if id(m) not in drop]
                session.store.notify(account, other)
        return gone
