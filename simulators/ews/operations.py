"""The EWS operations: each takes (context, request element) and returns the m:*Response element.

Per-folder / per-item problems become error response messages (ResponseClass="Error") in the
order of the request, like Exchange; only malformed requests raise SoapFault.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timezone

from lxml import etree

from simulators.ews import calendar_view, folders, ids, items, mapi, occurrences, paging, pim, restriction, sync
from simulators.ews.folders import FolderView
from simulators.ews.soap import MNS, NSMAP, SoapFault, m, sub, t, xs_bool, xs_int
from simulators.store import ItemKind, MailItem, NoSuchFolder, PimItem, FolderExists

# Exchange's wording for the per-message errors used here.
TEXTS = {
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorItemNotFound": "The specified object was not found in the store.",
    "ErrorInvalidIdMalformed": "Id is malformed.",
    "ErrorFolderExists": "A folder with the specified name already exists.",
    "ErrorInvalidRequest": "The request is invalid.",
    "ErrorMimeContentConversionFailed": "Content conversion failed.",
    "ErrorCorruptData": "The item is corrupt.",
}


class OpError(Exception):
    def __init__(self, code: str, text: str | None = None):
        super().__init__(code)
        self.code = code
        self.text = text or TEXTS.get(code, code)


def _response(name: str) -> tuple[etree._Element, etree._Element]:
    root = etree.Element(m(f"{name}Response"), nsmap={"m": MNS, "t": NSMAP["t"]})
    return root, sub(root, m("ResponseMessages"))


def _message(msgs: etree._Element, name: str, error: OpError | None = None) -> etree._Element:
    msg = sub(msgs, m(f"{name}ResponseMessage"), ResponseClass="Error" if error else "Success")
    if error:
        sub(msg, m("MessageText"), error.text)
        sub(msg, m("ResponseCode"), error.code)
        sub(msg, m("DescriptiveLinkKey"), "0")
    else:
        sub(msg, m("ResponseCode"), "NoError")
    return msg


# Folder resolution -------------------------------------------------------------------------------


def resolve_folder(ctx, el: etree._Element) -> FolderView:
    name = etree.QName(el).localname
    account = ctx.account
    if name == "DistinguishedFolderId":
        path = folders.distinguished_path(account, ctx.profile, el.get("Id", ""))
        if path is None:
            raise OpError("ErrorFolderNotFound")
    elif name == "FolderId":
        try:
            user, path = ids.parse_folder_id(el.get("Id", ""))
        except ids.BadId:
            raise OpError("ErrorInvalidIdMalformed") from None
        if user != account.username:
            raise OpError("ErrorFolderNotFound")
    else:
        raise SoapFault("ErrorSchemaValidation", f"The request failed schema validation: unexpected element {name}.")
    try:
        return folders.view_of(account, path)
    except NoSuchFolder:
        raise OpError("ErrorFolderNotFound") from None


def _each_folder(ctx, op, container: str, msgs, name: str):
    """The folders a request names, in order; those that name nothing get their error message."""
    for el in _folder_ids(op, container):
        try:
            yield resolve_folder(ctx, el)
        except OpError as err:
            _message(msgs, name, err)


def _folder_ids(op: etree._Element, container: str) -> list[etree._Element]:
    box = op.find(m(container))
    if box is None or len(box) == 0:
        raise SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {container} is missing.")
    return list(box)


def shown_items(ctx, view: FolderView) -> list[MailItem | PimItem]:
    """The items a folder shows (mail and PIM items of the folder's kind; quirks may widen it)."""
    folder = view.folder
    if folder is None:
        return []
    kinds = folders.KINDS_OF_CLASS.get(folder.folder_class, (ItemKind.MAIL,))
    with ctx.store.lock:
        shown: list = list(folder.messages) if ItemKind.MAIL in kinds else []
        shown += [i for i in folder.items if i.kind in kinds]
    for quirk in ctx.quirks:
        override = quirk.ews_folder_items(ctx, folder, shown)
        if override is not None:
            shown = override
    return shown


def _render_folder(ctx, view: FolderView) -> etree._Element:
    shown = shown_items(ctx, view)
    unread = sum(1 for i in shown if isinstance(i, MailItem) and "\\Seen" not in i.flags)
    return folders.render(ctx.account, view, len(shown), unread)


# Folder operations -----------------------------------------------------------------------------


def get_folder(ctx, op):
    root, msgs = _response("GetFolder")
    for view in _each_folder(ctx, op, "FolderIds", msgs, "GetFolder"):
        sub(_message(msgs, "GetFolder"), m("Folders")).append(_render_folder(ctx, view))
    return root


def find_folder(ctx, op):
    root, msgs = _response("FindFolder")
    deep = op.get("Traversal", "Shallow") == "Deep"
    for parent in _each_folder(ctx, op, "ParentFolderIds", msgs, "FindFolder"):
        walk = folders.descendants if deep else folders.children
        paths = walk(ctx.account, parent.path)
        page = paging.page(op.find(m("IndexedPageFolderView")), len(paths), None)
        msg = _message(msgs, "FindFolder")
        box = sub(sub(msg, m("RootFolder"), **page.attrs()), t("Folders"))
        for path in paths[page.start : page.stop]:
            box.append(_render_folder(ctx, folders.view_of(ctx.account, path)))
    return root


def sync_folder_hierarchy(ctx, op):
    root, msgs = _response("SyncFolderHierarchy")
    sync_el = op.find(m("SyncFolderId"))
    try:
        given = sync_el is not None and len(sync_el)
        base = resolve_folder(ctx, sync_el[0]) if given else FolderView(ids.MSGFOLDERROOT, None)
    except OpError as err:
        _message(msgs, "SyncFolderHierarchy", err)
        return root
    old = sync.decode(op.findtext(m("SyncState")))
    views = {ids.folder_id(ctx.account.username, p): folders.view_of(ctx.account, p)
             for p in folders.descendants(ctx.account, base.path)}
    now = {fid: folders.folder_change_key(v) + str(len(shown_items(ctx, v))) for fid, v in views.items()}
    msg = _message(msgs, "SyncFolderHierarchy")
    sub(msg, m("SyncState"), sync.encode(now))
    sub(msg, m("IncludesLastFolderInRange"), "true")
    changes = sub(msg, m("Changes"))
    for kind, fid in sync.diff(old, now):
        change = sub(changes, t(kind))
        if kind == "Delete":
            sub(change, t("FolderId"), Id=fid)
        else:
            change.append(_render_folder(ctx, views[fid]))
    return root


def create_folder(ctx, op):
    root, msgs = _response("CreateFolder")
    parent_el = op.find(m("ParentFolderId"))
    try:
        parent = resolve_folder(ctx, parent_el[0]) if parent_el is not None and len(parent_el) else None
    except OpError as err:
        parent, error = None, err
    else:
        error = None if parent is not None else OpError("ErrorInvalidRequest")
    for el in op.find(m("Folders")) if op.find(m("Folders")) is not None else []:
        if error is not None:
            _message(msgs, "CreateFolder", error)
            continue
        name = el.findtext(t("DisplayName"))
        if not name:
            _message(msgs, "CreateFolder", OpError("ErrorInvalidRequest", "The DisplayName of a folder is missing."))
            continue
        base = () if parent.path in (ids.ROOT, ids.MSGFOLDERROOT) else parent.path
        default_class = {"CalendarFolder": "IPF.Appointment", "ContactsFolder": "IPF.Contact",
                         "TasksFolder": "IPF.Task"}.get(etree.QName(el).localname, "IPF.Note")
        try:
            folder_class = el.findtext(t("FolderClass")) or default_class
            folder = ctx.account.create_folder(base + (name,), folder_class=folder_class)
        except FolderExists:
            _message(msgs, "CreateFolder", OpError("ErrorFolderExists"))
            continue
        view = FolderView(folder.path, folder)
        out = sub(sub(_message(msgs, "CreateFolder"), m("Folders")), t(view.element))
        sub(out, t("FolderId"), Id=ids.folder_id(ctx.account.username, folder.path),
            ChangeKey=folders.folder_change_key(view))
    return root


# Item resolution -----------------------------------------------------------------------------------


def resolve_item(ctx, item_id: str):
    """(folder, item, occurrence key or None) for an ItemId; OpError when it names nothing."""
    try:
        ref = ids.parse_item_id(item_id)
    except ids.BadId:
        raise OpError("ErrorInvalidIdMalformed") from None
    if ref.account != ctx.account.username:
        raise OpError("ErrorItemNotFound")
    try:
        folder = ctx.account.folder(ref.path)
    except NoSuchFolder:
        raise OpError("ErrorItemNotFound") from None
    kind, _, rest = ref.key.partition(":")
    with ctx.store.lock:
        if kind == "m":
            uidvalidity, _, uid = rest.partition(":")
            item = folder.by_uid(int(uid)) if uidvalidity == str(folder.uidvalidity) and uid.isdigit() else None
            occurrence = None
        else:
            pim_id, _, occurrence = rest.partition("\x1e") if kind == "o" else (rest, "", "")
            item = next((i for i in folder.items if i.item_id == pim_id), None)
            occurrence = occurrence or None
    if item is None:
        raise OpError("ErrorItemNotFound")
    if occurrence is not None and not calendar_view.is_instance(item, occurrence):
        raise OpError("ErrorItemNotFound")
    return folder, item, occurrence


def resolve_item_element(ctx, el: etree._Element):
    """resolve_item for a t:ItemId or a t:OccurrenceItemId (RecurringMasterId + 1-based InstanceIndex)."""
    if etree.QName(el).localname != "OccurrenceItemId":
        return resolve_item(ctx, el.get("Id", ""))
    folder, item, occurrence = resolve_item(ctx, el.get("RecurringMasterId", ""))
    if occurrence is not None or not isinstance(item, PimItem) or item.kind is not ItemKind.EVENT:
        raise OpError("ErrorItemNotFound")
    try:
        return folder, item, occurrences.key_of_index(item, int(el.get("InstanceIndex", "0")))
    except ValueError as exc:  # OccurrenceError, or an InstanceIndex that is no number
        raise OpError(getattr(exc, "code", "ErrorInvalidRequest"), str(exc)) from None


def _target_element(change: etree._Element) -> etree._Element:
    found = next((c for c in change if etree.QName(c).localname in ("ItemId", "OccurrenceItemId")), None)
    if found is None:
        raise SoapFault("ErrorSchemaValidation", "The request failed schema validation: ItemChange has no ItemId.")
    return found


def _render_item(ctx, folder, item, shape, occurrence=None):
    if occurrence is not None:
        head = items.head(ctx.account.username, folder, item)
        head[0] = items.occurrence_id(ctx.account.username, folder, item, occurrence)
        return items.trim(pim.render_event(item, head, occurrence=occurrence), shape)
    return items.render(ctx.account.username, folder, item, shape)


# Item operations -----------------------------------------------------------------------------------


def find_item(ctx, op):
    root, msgs = _response("FindItem")
    shape = items.shape_from(op.find(m("ItemShape")))
    if op.find(m("CalendarView")) is not None:
        return _calendar_view(ctx, op, root, msgs, shape)
    for view in _each_folder(ctx, op, "ParentFolderIds", msgs, "FindItem"):
        try:
            shown = _restricted(shown_items(ctx, view), op.find(m("Restriction")))
            shown = items.sort(shown, op.find(m("SortOrder")))
        except (items.UnsupportedSort, restriction.UnsupportedRestriction) as exc:
            _message(msgs, "FindItem", OpError("ErrorInvalidRequest", str(exc)))
            continue
        page = paging.page(op.find(m("IndexedPageItemView")), len(shown), ctx.settings.max_page_size)
        for quirk in ctx.quirks:
            page = quirk.ews_page(ctx, view.folder, page) or page
        box = sub(sub(_message(msgs, "FindItem"), m("RootFolder"), **page.attrs()), t("Items"))
        for item in shown[page.start : page.stop]:
            try:
                box.append(items.render(ctx.account.username, view.folder, item, shape))
            except pim.PayloadError:
                box.append(items.render(ctx.account.username, view.folder, item, items.Shape("IdOnly")))
    return root


def _calendar_view(ctx, op, root, msgs, shape):
    """FindItem with CalendarView: singles, occurrences and exceptions starting in the window."""
    cv = op.find(m("CalendarView"))
    window = calendar_view.parse_window(cv.get("StartDate"), cv.get("EndDate"))
    limit = xs_int(cv.get("MaxEntriesReturned"), "MaxEntriesReturned") if cv.get("MaxEntriesReturned") else None
    for view in _each_folder(ctx, op, "ParentFolderIds", msgs, "FindItem"):
        found = []
        for item in shown_items(ctx, view):
            if isinstance(item, PimItem) and item.kind is ItemKind.EVENT:
                try:
                    found += [(inst, item) for inst in calendar_view.instances(item, *window)]
                except pim.PayloadError:
                    continue  # a corrupt series shows no instances, as Exchange skips it
        found.sort(key=lambda pair: pair[0].start)
        shown = found if limit is None else found[:limit]
        attrs = {"TotalItemsInView": str(len(shown)),
                 "IncludesLastItemInRange": "true" if len(shown) == len(found) else "false"}
        box = sub(sub(_message(msgs, "FindItem"), m("RootFolder"), **attrs), t("Items"))
        for inst, item in shown:
            box.append(_render_item(ctx, view.folder, item, shape, inst.key))
    return root


def _restricted(shown: list, el) -> list:
    if el is None:
        return shown
    if any(not isinstance(i, MailItem) for i in shown):
        raise restriction.UnsupportedRestriction("restrictions on contacts, events, tasks and notes")
    keep = restriction.compile_restriction(el)
    return [i for i in shown if keep(i)]


def get_item(ctx, op):
    root, msgs = _response("GetItem")
    shape = items.shape_from(op.find(m("ItemShape")), listing=False)
    for el in _folder_ids(op, "ItemIds"):
        try:
            folder, item, occurrence = resolve_item_element(ctx, el)
            for quirk in ctx.quirks:
                refused = quirk.ews_item_error(ctx, "GetItem", folder, item, shape)
                if refused is not None:
                    raise OpError(*refused)
            rendered = _render_item(ctx, folder, item, shape, occurrence)
        except pim.PayloadError as exc:
            _message(msgs, "GetItem", OpError("ErrorCorruptData", f"The item is corrupt: {exc}"))
            continue
        except OpError as err:
            _message(msgs, "GetItem", err)
            continue
        sub(_message(msgs, "GetItem"), m("Items")).append(rendered)
    return root


def sync_folder_items(ctx, op):
    root, msgs = _response("SyncFolderItems")
    shape = items.shape_from(op.find(m("ItemShape")))
    sync_el = op.find(m("SyncFolderId"))
    try:
        view = resolve_folder(ctx, sync_el[0]) if sync_el is not None and len(sync_el) else None
        if view is None or view.folder is None:
            raise OpError("ErrorFolderNotFound")
    except OpError as err:
        _message(msgs, "SyncFolderItems", err)
        return root
    try:
        limit = int(op.findtext(m("MaxChangesReturned")) or "512")
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "The request failed schema validation: MaxChangesReturned.") from None
    old = sync.decode(op.findtext(m("SyncState")))
    user = ctx.account.username
    by_id = {}
    for item in shown_items(ctx, view):
        by_id[items.id_element(user, view.folder, item).get("Id")] = item
    now = {i: sync.item_state(item) for i, item in by_id.items()}
    changes = sync.diff(old, now)
    sent, rest = changes[:limit], changes[limit:]
    given = dict(old)
    for kind, i in sent:
        if kind == "Delete":
            given.pop(i, None)
        else:
            given[i] = now[i]
    msg = _message(msgs, "SyncFolderItems")
    sub(msg, m("SyncState"), sync.encode(given))
    sub(msg, m("IncludesLastItemInRange"), "false" if rest else "true")
    box = sub(msg, m("Changes"))
    for kind, i in sent:
        change = sub(box, t(kind))
        if kind == "Delete":
            sub(change, t("ItemId"), Id=i)
        elif kind == "ReadFlagChange":
            change.append(items.id_element(user, view.folder, by_id[i]))
            sub(change, t("IsRead"), "true" if "\\Seen" in by_id[i].flags else "false")
        else:
            change.append(items.render(user, view.folder, by_id[i], shape))
    return root


def create_item(ctx, op):
    root, msgs = _response("CreateItem")
    disposition = op.get("MessageDisposition", "SaveOnly")
    saved = op.find(m("SavedItemFolderId"))
    try:
        target = resolve_folder(ctx, saved[0]) if saved is not None and len(saved) else None
    except OpError as err:
        target, target_error = None, err
    else:
        target_error = None
    box = op.find(m("Items"))
    for el in box if box is not None else []:
        try:
            if target_error is not None:
                raise target_error
            if disposition != "SaveOnly" and etree.QName(el).localname == "Message":
                raise OpError("ErrorInvalidRequest", f"MessageDisposition {disposition} (sending) is not simulated.")
            folder, item = _create_one(ctx, el, target)
        except pim.PayloadError as exc:
            _message(msgs, "CreateItem", OpError("ErrorInvalidRequest", str(exc)))
            continue
        except OpError as err:
            _message(msgs, "CreateItem", err)
            continue
        out = sub(sub(_message(msgs, "CreateItem"), m("Items")), el.tag)
        out.append(items.id_element(ctx.account.username, folder, item))
    return root


_DEFAULT_TARGET = {"Message": "drafts", "Contact": "contacts", "CalendarItem": "calendar", "Task": "tasks"}


def _create_one(ctx, el, target: FolderView | None):
    name = etree.QName(el).localname
    note = name == "Message" and el.findtext(t("ItemClass")) == "IPM.StickyNote"
    if target is None:
        default = "notes" if note else _DEFAULT_TARGET.get(name)
        if default is None:
            raise OpError("ErrorInvalidRequest", f"Items of type {name} are not simulated.")
        path = folders.distinguished_path(ctx.account, ctx.profile, default)
        target = FolderView(path, ctx.account.folder(path))
    if target.folder is None:
        raise OpError("ErrorInvalidRequest", "Items cannot be created in the root folders.")
    # exchangelib cannot send ItemClass: a Message without MIME in a notes folder is a note.
    note = note or (name == "Message" and el.find(t("MimeContent")) is None
                    and target.folder.folder_class == "IPF.StickyNote")
    if name == "Message" and not note:
        return target.folder, _create_mail(ctx, el, target)
    if note:
        item = pim.parse_note(el)
    elif name in pim.PARSE:
        item = pim.PARSE[name](el)
    else:
        raise OpError("ErrorInvalidRequest", f"Items of type {name} are not simulated.")
    with ctx.store.lock:
        taken = {i.item_id for i in target.folder.items}
        base, n = item.item_id, 1
        while item.item_id in taken:
            n += 1
            item.item_id = f"{base}-{n}"
    ctx.account.add_item(target.path, item)
    return target.folder, item


def _create_mail(ctx, el, target: FolderView) -> MailItem:
    mime = el.findtext(t("MimeContent"))
    if mime:
        try:
            raw = base64.b64decode(mime, validate=True)
        except binascii.Error:
            text = "The MIME content is not a valid Base64 string."
            raise OpError("ErrorMimeContentInvalidBase64String", text) from None
    else:
        raw = items.compose_mime(el)
    props = mapi.read(el)
    flags_value = props.get(mapi.PR_MESSAGE_FLAGS)
    # Exchange keeps MIME-created items as unsent drafts unless PR_MESSAGE_FLAGS says otherwise.
    flags = mapi.flags_from(props, el.findtext(f"{t('Flag')}/{t('FlagStatus')}"))
    bits = None if flags_value is None else xs_int(flags_value, "PR_MESSAGE_FLAGS")
    if bits is None or bits & mapi.MSGFLAG_UNSENT:
        flags.add("\\Draft")
    if (bits is not None and bits & mapi.MSGFLAG_READ) or xs_bool(el.findtext(t("IsRead"))):
        flags.add("\\Seen")
    when = None
    if mapi.PR_MESSAGE_DELIVERY_TIME in props:
        when = datetime.fromisoformat(props[mapi.PR_MESSAGE_DELIVERY_TIME].replace("Z", "+00:00"))
    when = when or datetime.now(timezone.utc).replace(microsecond=0)
    return ctx.account.append(target.path, raw, flags=flags, internaldate=when)


def update_item(ctx, op):
    """UpdateItem for mail state: IsRead, Flag and the flag-carrying MAPI properties (mapi.py); and
    for one occurrence of a series (its override: occurrences.FIELDS). Other fields are refused
    per item, naming the field (the store keeps mail as raw bytes)."""
    root, msgs = _response("UpdateItem")
    box = op.find(m("ItemChanges"))
    for change in box if box is not None else []:
        try:
            folder, item, occurrence = resolve_item_element(ctx, _target_element(change))
            if occurrence is not None:
                _update_occurrence(ctx, folder, item, occurrence, change.find(t("Updates")))
                msg = _message(msgs, "UpdateItem")
                sub(sub(msg, m("Items")), t("CalendarItem")).append(
                    items.occurrence_id(ctx.account.username, folder, item, occurrence))
                sub(sub(msg, m("ConflictResults")), t("Count"), "0")
                continue
            if not isinstance(item, MailItem):
                raise OpError("ErrorInvalidRequest", "UpdateItem is simulated for messages only.")
            flags = set(item.flags)
            for update in change.find(t("Updates")) if change.find(t("Updates")) is not None else []:
                flags = _apply_update(flags, update)
        except OpError as err:
            _message(msgs, "UpdateItem", err)
            continue
        with ctx.store.lock:
            item.flags = flags
        ctx.store.notify(ctx.account, folder)
        msg = _message(msgs, "UpdateItem")
        sub(sub(msg, m("Items")), t("Message")).append(items.id_element(ctx.account.username, folder, item))
        sub(sub(msg, m("ConflictResults")), t("Count"), "0")
    return root


def _update_occurrence(ctx, folder, item: PimItem, key: str, updates) -> None:
    """The override of occurrence ``key`` with the fields set (or deleted) by ``updates``."""
    with ctx.store.lock:
        item.payload = _occurrence_edit(occurrences.apply_updates, item, key, updates)
    ctx.store.notify(ctx.account, folder)


def _occurrence_edit(edit, item: PimItem, key: str, *args) -> str:
    try:
        return edit(item, key, *args)
    except occurrences.OccurrenceError as exc:
        raise OpError(exc.code, str(exc)) from None
    except pim.PayloadError as exc:  # a bad Start/End in the request, or a corrupt stored series
        raise OpError("ErrorInvalidRequest", str(exc)) from None


def _apply_update(flags: set[str], update) -> set[str]:
    uri = update.find(t("FieldURI"))
    ext = update.find(t("ExtendedFieldURI"))
    field = None
    if uri is not None:
        field = uri.get("FieldURI")
    elif ext is not None:
        field = mapi.parse_tag(ext.get("PropertyTag", "0"))
    value = None
    if etree.QName(update).localname == "SetItemField":
        holder = update.find(t("Message"))
        if holder is None:
            raise OpError("ErrorInvalidRequest", "SetItemField without a t:Message.")
        if ext is not None:
            value = holder.findtext(f"{t('ExtendedProperty')}/{t('Value')}")
        elif field == "item:Flag":
            value = holder.findtext(f"{t('Flag')}/{t('FlagStatus')}")
        elif field:
            value = holder.findtext(t(field.split(":")[-1]))
    try:
        return mapi.apply_update(flags, field, value)
    except KeyError:
        raise OpError("ErrorInvalidRequest", f"UpdateItem of {field!r} is not simulated.") from None


def delete_item(ctx, op):
    root, msgs = _response("DeleteItem")
    delete_type = op.get("DeleteType", "MoveToDeletedItems")
    for el in _folder_ids(op, "ItemIds"):
        try:
            folder, item, occurrence = resolve_item_element(ctx, el)
            if occurrence is not None:
                # A deleted occurrence is an EXDATE on the master (never a Deleted Items copy).
                with ctx.store.lock:
                    item.payload = _occurrence_edit(occurrences.delete, item, occurrence)
                ctx.store.notify(ctx.account, folder)
            else:
                _delete(ctx, folder, item, delete_type)
        except OpError as err:
            _message(msgs, "DeleteItem", err)
            continue
        _message(msgs, "DeleteItem")
    return root


def _delete(ctx, folder, item, delete_type: str) -> None:
    account = ctx.account
    trash = folders.distinguished_path(account, ctx.profile, "deleteditems")
    move = delete_type == "MoveToDeletedItems" and folder.path != trash
    if isinstance(item, MailItem):
        if move:
            account.append(trash, item.raw, flags=item.flags - {"\\Deleted"}, internaldate=item.internaldate,
                           extra=item.extra)
        with ctx.store.lock:
            item.flags.add("\\Deleted")
        account.expunge(folder.path, [item.uid])
        return
    with ctx.store.lock:
        folder.items.remove(item)
    ctx.store.notify(account, folder)
    if move:
        account.add_item(trash, item)


OPERATIONS = {
    "GetFolder": get_folder,
    "FindFolder": find_folder,
    "SyncFolderHierarchy": sync_folder_hierarchy,
    "CreateFolder": create_folder,
    "FindItem": find_item,
    "GetItem": get_item,
    "SyncFolderItems": sync_folder_items,
    "CreateItem": create_item,
    "UpdateItem": update_item,
    "DeleteItem": delete_item,
}
