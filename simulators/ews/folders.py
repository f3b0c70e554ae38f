"""The folder tree an EWS client sees: the virtual ``root`` and ``msgfolderroot`` above the
store's folders, distinguished folder ids, folder classes and counts.

Distinguished folders are looked up in the profile's ``special_folders`` (keys ``sent``,
``drafts``, ``deleted``/``trash``, ``junk``, ``calendar``, ``contacts``, ``tasks``, ``notes``),
then by special-use or folder class in the store, then by Exchange's English default name.
Exchange always has them, so ``ensure_distinguished`` creates the missing ones in the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from simulators.ews import ids
from simulators.ews.soap import sub, t
from simulators.profiles import Profile
from simulators.store import INBOX, Account, Folder, ItemKind

# distinguished id → (profile special_folders keys, special-use, folder class, default path)
DISTINGUISHED: dict[str, tuple[tuple[str, ...], str | None, str, tuple[str, ...]]] = {
    "inbox": ((), None, "IPF.Note", INBOX),
    "sentitems": (("sent",), "\\Sent", "IPF.Note", ("Sent Items",)),
    "drafts": (("drafts",), "\\Drafts", "IPF.Note", ("Drafts",)),
    "deleteditems": (("deleted", "trash"), "\\Trash", "IPF.Note", ("Deleted Items",)),
    "junkemail": (("junk",), "\\Junk", "IPF.Note", ("Junk Email",)),
    "calendar": (("calendar",), None, "IPF.Appointment", ("Calendar",)),
    "contacts": (("contacts",), None, "IPF.Contact", ("Contacts",)),
    "tasks": (("tasks",), None, "IPF.Task", ("Tasks",)),
    "notes": (("notes",), None, "IPF.StickyNote", ("Notes",)),
}
VIRTUAL = {"root": ids.ROOT, "msgfolderroot": ids.MSGFOLDERROOT}

# Folder class → the element Exchange uses for the folder.
_ELEMENT = {"IPF.Appointment": "CalendarFolder", "IPF.Contact": "ContactsFolder", "IPF.Task": "TasksFolder"}
# Folder class → the item kinds it shows without quirks.
KINDS_OF_CLASS = {
    "IPF.Note": (ItemKind.MAIL,),
    "IPF.Appointment": (ItemKind.EVENT,),
    "IPF.Contact": (ItemKind.CONTACT,),
    "IPF.Task": (ItemKind.TASK,),
    "IPF.StickyNote": (ItemKind.NOTE,),
}


class FolderNotFound(LookupError):
    """A folder id or distinguished id that names no folder of this account."""


def distinguished_path(account: Account, profile: Profile, name: str) -> tuple[str, ...] | None:
    if name in VIRTUAL:
        return VIRTUAL[name]
    if name not in DISTINGUISHED:
        return None
    keys, special_use, folder_class, default = DISTINGUISHED[name]
    for key in keys:
        if key in profile.special_folders:
            return tuple(profile.special_folders[key])
    for folder in account.folders.values():
        if special_use is not None and folder.special_use == special_use:
            return folder.path
    if special_use is None and folder_class != "IPF.Note":
        for folder in account.folders.values():
            if folder.folder_class == folder_class and len(folder.path) == 1:
                return folder.path
    return default


def ensure_distinguished(account: Account, profile: Profile) -> None:
    """Create the well-known folders Exchange always has (Calendar, Contacts ...) when missing."""
    for name, (_, special_use, folder_class, _) in DISTINGUISHED.items():
        path = distinguished_path(account, profile, name)
        if path is not None and not account.has_folder(path):
            account.create_folder(path, special_use=special_use, folder_class=folder_class, exist_ok=True)


def distinguished_name_of(account: Account, profile: Profile, path: tuple[str, ...]) -> str | None:
    for name in DISTINGUISHED:
        if distinguished_path(account, profile, name) == path:
            return name
    return None


def display_name(path: tuple[str, ...]) -> str:
    if path == ids.ROOT:
        return "Root"
    if path == ids.MSGFOLDERROOT:
        return "Top of Information Store"
    return "Inbox" if path == INBOX else path[-1]


def parent_path(path: tuple[str, ...]) -> tuple[str, ...] | None:
    if path == ids.ROOT:
        return None
    if path == ids.MSGFOLDERROOT:
        return ids.ROOT
    return path[:-1] if len(path) > 1 else ids.MSGFOLDERROOT


def children(account: Account, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    if path == ids.ROOT:
        return [ids.MSGFOLDERROOT]
    if path == ids.MSGFOLDERROOT:
        return sorted(p for p in account.folders if len(p) == 1)
    return sorted(f.path for f in account.children(path))


def descendants(account: Account, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for child in children(account, path):
        out.append(child)
        out.extend(descendants(account, child))
    return out


@dataclass(frozen=True)
class FolderView:
    """What a client is shown of one folder (store folder or virtual one)."""

    path: tuple[str, ...]
    folder: Folder | None

    @property
    def folder_class(self) -> str:
        return self.folder.folder_class if self.folder is not None else "IPF.Note"

    @property
    def element(self) -> str:
        return _ELEMENT.get(self.folder_class, "Folder")


def view_of(account: Account, path: tuple[str, ...]) -> FolderView:
    if path in (ids.ROOT, ids.MSGFOLDERROOT):
        return FolderView(path, None)
    return FolderView(path, account.folder(path))


def render(account: Account, view: FolderView, shown_count: int, unread: int) -> etree._Element:
    el = etree.Element(t(view.element))
    sub(el, t("FolderId"), Id=ids.folder_id(account.username, view.path), ChangeKey=folder_change_key(view))
    parent = parent_path(view.path)
    if parent is not None:
        sub(el, t("ParentFolderId"), Id=ids.folder_id(account.username, parent),
            ChangeKey=folder_change_key(view_of(account, parent)))
    if view.folder is not None:
        sub(el, t("FolderClass"), view.folder_class)
    sub(el, t("DisplayName"), display_name(view.path))
    sub(el, t("TotalCount"), shown_count)
    sub(el, t("ChildFolderCount"), len(children(account, view.path)))
    if view.element == "Folder":
        sub(el, t("UnreadCount"), unread)
    return el


def folder_change_key(view: FolderView) -> str:
    f = view.folder
    return ids.change_key(view.path, f.uidvalidity if f else 0)
