"""Writing to an EWS destination (CreateItem): mail from its MIME, contacts/events/tasks/notes as
copies of the items read from the source.

Mail: CreateItem with MimeContent, and the two MAPI properties that make it a received message
rather than a draft — PR_MESSAGE_FLAGS (read; unsent only for drafts) and PR_MESSAGE_DELIVERY_TIME
(the INTERNALDATE instant), registered by ``collab.mapi``.

PIM items: a new item of the same class with every writable field the source item has set, the
event UID included. Read-only ones are the server's and cannot be carried: ids, timestamps, an
event's organizer (Exchange makes the mailbox owner the organizer), a note's DateTimeCreated (its
start) and a task's CompleteDate (Exchange sets it to the moment the task is saved completed).
A series is created with its recurrence, then, as Exchange wants it, each deleted occurrence is
removed (DeleteItem on an OccurrenceItemId: the master id + the occurrence's InstanceIndex) and
each modified one updated (GetItem of that OccurrenceItemId, then UpdateItem of its times, subject,
location, body, attendees and reminder, read from the source occurrence: what it lacks is deleted, as an
occurrence starts as a copy of the master).

There is no If-None-Match here. A re-run is kept from copying twice by the checkpoint and, for
mail, by identity: ``identities`` lists a destination folder with InternetMessageId and reads the
MimeContent (in size-bounded batches) only of items sharing a Message-ID with a source message
still to copy (``migrator.identity.LazyIdentityIndex``), so a message created by a run killed
before its checkpoint commit is matched, not created again (``collab.flow._EwsRun._destination_index``)
— and resuming a large folder does not download it.
Exchange re-renders MIME it stores; the identity's headers (Message-ID, Date, From, To, Subject,
the first Received) survive that, its size tolerance absorbs small re-encodings.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime

from exchangelib import UTC, EWSDateTime, Folder, Message

from migrator.budget import size_batches
from migrator.collab import convert, mapi
from migrator.identity import Identity, LazyIdentityIndex, identity_of
from migrator.sources.ews import LARGE_MAIL, EwsConnection, EwsFolder, ListedItem

IDENTITY_BATCH = 50  # destination messages per GetItem when reading identities



# Fields a copy never takes: the server's own, or read back in another form.
# What an occurrence's UpdateItem carries over from the source's modified occurrence.
OCCURRENCE_FIELDS = ("start", "end", "subject", "location", "body", "required_attendees", "optional_attendees",
                     "reminder_is_set", "reminder_minutes_before_start")
_NOT_COPIED = {"mime_content", "parent_folder_id", "conversation_id", "recurrence_id", "photo", "notes",
               "reminder_due_by", "is_draft"}


def copy_fields(item) -> dict:
    """The writable fields the item has set, for a new item of its class."""
    out = {}
    for f in item.FIELDS:
        if f.is_read_only or f.is_attribute or f.name in _NOT_COPIED or f.name.startswith("_"):
            continue
        value = getattr(item, f.name, None)
        if value is None or (isinstance(value, list) and not value) or f.name == "attachments":
            continue
        out[f.name] = value
    for name in ("_start_timezone", "_end_timezone"):
        if getattr(item, name, None) is not None:
            out[name] = getattr(item, name)
    return out


class EwsSink(EwsConnection):
    role = "destination"

    def __init__(self, endpoint, *, connections: int = 2, throttle=None):
        super().__init__(endpoint, connections=connections, throttle=throttle)
        mapi.register()
        self._lock = threading.Lock()
        self._special = self.distinguished()
        self._folders: dict[tuple[str, ...], object] = {}
        self._created: set[tuple[str, ...]] = set()  # folders this run made: empty but for its own copies

    def folder(self, path: tuple[str, ...], folder_class: str, distinguished: str | None) -> object:
        """The destination folder for a source folder: the same distinguished folder, else the same
        path below the message folder root (created with the source's class when missing)."""
        if distinguished in self._special:
            return self._special[distinguished]
        with self._lock:
            if path in self._folders:
                return self._folders[path]
            parent = self.call("GetFolder msgfolderroot", lambda: self.account.msg_folder_root)
            for i, name in enumerate(path):
                known = self._folders.get(path[: i + 1])
                if known is None:
                    children = self.call(f"FindFolder {'/'.join(path[:i])}", lambda p=parent: list(p.children))
                    known = next((c for c in children if c.name == name), None)
                    if known is None:
                        cls = folder_class if i == len(path) - 1 else "IPF.Note"
                        known = Folder(parent=parent, name=name, folder_class=cls)
                        self.call(f"CreateFolder {'/'.join(path[: i + 1])}", known.save)
                        self._created.add(path[: i + 1])
                    self._folders[path[: i + 1]] = known
                parent = known
            return parent

    def identities(self, folder, path: tuple[str, ...], recorded: list[Identity]) -> LazyIdentityIndex:
        """The mail ``folder`` (at ``path``) holds, as an index read per Message-ID on demand: one
        FindItem listing with InternetMessageId, then GetItem MimeContent only for the items whose
        Message-ID a source message still to copy has. ``recorded``: identities of our copies on
        record (the checkpoint), discounted. An item whose MIME cannot be read is left out: it can
        only make the run copy again, never skip a message."""
        candidates: dict[str, list[ListedItem]] = {}
        if path not in self._created:  # a folder this run made holds only this run's copies
            listed = self.list_items(EwsFolder(folder.id, path, folder.folder_class or "IPF.Note", None,
                                               int(folder.total_count or 0), folder), message_ids=True)
            for item in listed.items:
                if item.kind == "mail":
                    candidates.setdefault(item.message_id or "-", []).append(item)
        return LazyIdentityIndex(candidates, self._read_identities, recorded)

    def _read_identities(self, items: list[ListedItem]) -> list[Identity]:
        out = []
        for batch in size_batches(items, lambda i: i.size, IDENTITY_BATCH, alone_over=LARGE_MAIL):
            for got in self.fetch("identity", batch):
                raw = None if isinstance(got, Exception) else got.mime_content
                if raw:
                    raw = raw if isinstance(raw, bytes) else raw.encode()
                    out.append(identity_of(raw, len(raw)))
        return out

    def create_mail(self, folder, raw: bytes, flags: list[str], when: datetime | None) -> str:
        """A received message (or a draft, when ``\\Draft`` is among the flags) from its MIME, with
        its read, replied/forwarded and flagged state."""
        msg = Message(account=self.account, folder=folder, mime_content=raw, **mapi.properties(flags))
        if when is not None:
            msg.qm_delivery_time = EWSDateTime.from_datetime(when).astimezone(UTC)
        self.call("CreateItem message", msg.save)
        return msg.id

    def create_copy(self, folder, item, occurrences: Mapping[str, object] | None = None) -> str:
        """A new item like ``item`` (a contact, event, task or note read from the source).
        ``occurrences``: a series' modified occurrences as read from the source, by ItemId (with
        OCCURRENCE_FIELDS); when not given they are read through the source item's own account."""
        fields = copy_fields(item)
        timezones = {k: fields.pop(k) for k in ("_start_timezone", "_end_timezone") if k in fields}
        new = type(item)(account=self.account, folder=folder, **fields)
        for k, v in timezones.items():
            setattr(new, k, v)
        self.call(f"CreateItem {type(item).__name__}", new.save)
        if getattr(item, "recurrence", None) is not None:
            self._copy_exceptions(new, item, occurrences)
        return new.id

    def _copy_exceptions(self, new, item, occurrences: Mapping[str, object] | None) -> None:
        """The source series' deleted and modified occurrences, on the new master ``new``."""
        name = item.uid or item.id
        for gone in item.deleted_occurrences or ():
            index = convert.occurrence_index(item, gone.start)
            self.call(f"DeleteItem occurrence {index} of {name}", new.occurrence(index).delete)
        modified = [o for o in item.modified_occurrences or () if o.id]
        if not modified:
            return
        # The source occurrences themselves: EWS lists only their times on the master.
        if occurrences is None:
            fetched = item.account.fetch([(o.id, o.changekey) for o in modified], only_fields=list(OCCURRENCE_FIELDS))
            occurrences = {o.id: got for o, got in zip(modified, fetched)}
        for occ in modified:
            got = occurrences.get(occ.id)
            index = convert.occurrence_index(item, occ.original_start)
            target = new.occurrence(index)
            self.call(f"GetItem occurrence {index} of {name}", target.refresh)
            if got is None or isinstance(got, Exception):  # unreadable: its new times (from the master's list)
                target.start, target.end = occ.start, occ.end
                fields = ["start", "end"]
            else:
                fields = list(OCCURRENCE_FIELDS)
                for field in fields:
                    setattr(target, field, getattr(got, field, None))
            self.call(f"UpdateItem occurrence {index} of {name}",
                      lambda t=target, f=fields: t.save(update_fields=f))
