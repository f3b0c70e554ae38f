"""Items as a client sees them: mail (t:Message from the raw RFC 5322 bytes) and PIM items
(simulators.ews.pim), trimmed to the requested shape (IdOnly / Default / AllProperties plus
AdditionalProperties).
"""

from __future__ import annotations

import base64
import email.header
import email.message
import email.policy
import email.utils
from dataclasses import dataclass
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from lxml import etree

from simulators.ews import ids, mapi, pim
from simulators.ews.soap import sub, t, xs_bool
from simulators.store import Folder, ItemKind, MailItem, PimItem

_HEADERS = BytesHeaderParser(policy=email.policy.compat32)

# Fields an IdOnly shape keeps; Default adds everything but MimeContent, and in listings
# (FindItem, SyncFolderItems) also but Body, as Exchange does.
ID_FIELDS = {"ItemId"}


@dataclass(frozen=True)
class Shape:
    base: str = "Default"  # IdOnly | Default | AllProperties
    additional: frozenset[str] = frozenset()  # element names asked for ("Subject", "EmailAddresses" ...)
    mime: bool = False
    listing: bool = True  # FindItem / SyncFolderItems; GetItem's Default shape includes Body
    extended: frozenset[int] = frozenset()  # PropertyTags asked for with ExtendedFieldURI

    @property
    def body(self) -> bool:
        return (self.base == "AllProperties" or "Body" in self.additional
                or (self.base == "Default" and not self.listing))


def shape_from(el: etree._Element | None, *, listing: bool = True) -> Shape:
    if el is None:
        return Shape(listing=listing)
    base = el.findtext(t("BaseShape")) or "Default"
    names, tags = set(), set()
    props = el.find(t("AdditionalProperties"))
    for p in props if props is not None else []:
        if p.get("PropertyTag"):
            tags.add(mapi.parse_tag(p.get("PropertyTag")))
            continue
        uri = p.get("FieldURI") or ""
        name = uri.split(":")[1] if ":" in uri else uri
        # Indexed fields (contacts:EmailAddress + FieldIndex) live in the plural container.
        name = {"EmailAddress": "EmailAddresses", "PhoneNumber": "PhoneNumbers", "ImAddress": "ImAddresses",
                "PhysicalAddress": "PhysicalAddresses"}.get(name, name)
        names.add(name)
    mime = xs_bool(el.findtext(t("IncludeMimeContent"))) or "MimeContent" in names
    return Shape(base, frozenset(names), mime, listing, frozenset(tags))


def trim(el: etree._Element, shape: Shape) -> etree._Element:
    for child in list(el):
        name = etree.QName(child).localname
        if name in ID_FIELDS or name in shape.additional or name == "ExtendedProperty":
            continue  # extended properties are only ever rendered when asked for
        if name == "MimeContent" and shape.mime:
            continue
        if shape.base == "IdOnly" or name == "MimeContent" or (name == "Body" and not shape.body):
            el.remove(child)
    return el


# SortOrder FieldURIs the simulator sorts by (mail only; PIM items keep store order after mail).
_SORT_KEYS = {
    "item:DateTimeReceived": lambda i: i.internaldate,
    "item:Size": lambda i: i.size,
    "item:Subject": lambda i: subject_of(i).casefold(),
}


def sort(shown: list, order: etree._Element | None) -> list:
    """``shown`` (store order: ascending UID, then PIM items) sorted by a FindItem SortOrder.

    Orders are applied last to first so the first FieldOrder decides, as in Exchange. Unknown
    fields raise UnsupportedSort naming the field.
    """
    if order is None:
        return shown
    mail = [i for i in shown if isinstance(i, MailItem)]
    rest = [i for i in shown if not isinstance(i, MailItem)]
    for field_order in reversed(order.findall(t("FieldOrder"))):
        uri = field_order.find(t("FieldURI"))
        name = uri.get("FieldURI") if uri is not None else None
        if name not in _SORT_KEYS:
            raise UnsupportedSort(f"SortOrder on {name!r} is not simulated (supported: {', '.join(_SORT_KEYS)})")
        mail.sort(key=_SORT_KEYS[name], reverse=field_order.get("Order") == "Descending")
    return mail + rest


class UnsupportedSort(ValueError):
    """A SortOrder field the simulator does not sort by."""


def mail_key(folder: Folder, item: MailItem) -> str:
    return f"m:{folder.uidvalidity}:{item.uid}"


def pim_key(item: PimItem) -> str:
    return f"p:{item.item_id}"


def item_change_key(item: MailItem | PimItem) -> str:
    if isinstance(item, MailItem):
        return ids.change_key(item.uid, sorted(item.flags))
    return ids.change_key(item.item_id, item.payload)


def id_element(account: str, folder: Folder, item: MailItem | PimItem) -> etree._Element:
    key = mail_key(folder, item) if isinstance(item, MailItem) else pim_key(item)
    el = etree.Element(t("ItemId"))
    el.set("Id", ids.item_id(account, folder.path, key))
    el.set("ChangeKey", item_change_key(item))
    return el


def head(account: str, folder: Folder, item: MailItem | PimItem) -> list[etree._Element]:
    parent = etree.Element(t("ParentFolderId"))
    parent.set("Id", ids.folder_id(account, folder.path))
    parent.set("ChangeKey", ids.change_key(folder.path, folder.uidvalidity))
    return [id_element(account, folder, item), parent]


def render(account: str, folder: Folder, item: MailItem | PimItem, shape: Shape) -> etree._Element:
    if isinstance(item, MailItem):
        el = render_mail(account, folder, item, shape)
    else:
        if shape.base == "IdOnly" and not shape.additional:
            # No need to read the payload for ids only (and a bad payload must not break FindItem).
            el = etree.Element(t(pim.ELEMENT[item.kind]))
            el.extend(head(account, folder, item))
        elif item.kind is ItemKind.EVENT:
            el = pim.render_event(item, head(account, folder, item),
                                  occurrence_ids=lambda key: occurrence_id(account, folder, item, key))
        else:
            el = pim.RENDER[item.kind](item, head(account, folder, item))
    return trim(el, shape)


def occurrence_id(account: str, folder: Folder, item: PimItem, key: str) -> etree._Element:
    el = etree.Element(t("ItemId"))
    el.set("Id", ids.item_id(account, folder.path, f"o:{item.item_id}\x1e{key}"))
    el.set("ChangeKey", item_change_key(item))
    return el


def render_mail(account: str, folder: Folder, item: MailItem, shape: Shape) -> etree._Element:
    el = etree.Element(t("Message"))
    if shape.mime:
        sub(el, t("MimeContent"), base64.b64encode(item.raw).decode("ascii"), CharacterSet="UTF-8")
    el.extend(head(account, folder, item))
    if shape.base == "IdOnly" and not (shape.additional - {"MimeContent"}) and not shape.extended:
        return el
    msg = _HEADERS.parsebytes(item.raw, headersonly=True)
    sub(el, t("ItemClass"), "IPM.Note")
    sub(el, t("Subject"), _header(msg, "Subject"))
    sub(el, t("Sensitivity"), "Normal")
    if shape.body:
        body_type, text = _body(item.raw)
        sub(el, t("Body"), text, BodyType=body_type)
    sub(el, t("DateTimeReceived"), pim.utc(item.internaldate))
    sub(el, t("Size"), item.size)
    sub(el, t("Importance"), "Normal")
    sub(el, t("IsSubmitted"), "false")
    sub(el, t("IsDraft"), "true" if "\\Draft" in item.flags else "false")
    sent = _date(msg)
    if sent is not None:
        sub(el, t("DateTimeSent"), pim.utc(sent))
    sub(el, t("DateTimeCreated"), pim.utc(item.internaldate))
    sub(el, t("HasAttachments"), "true" if b"content-disposition: attachment" in item.raw.lower() else "false")
    mapi.render(el, item, shape.extended)
    if shape.base == "AllProperties" or "Flag" in shape.additional:
        flag = sub(el, t("Flag"))
        sub(flag, t("FlagStatus"), "Flagged" if "\\Flagged" in item.flags else "NotFlagged")
    # Exchange fills Sender from From when the message has no Sender header.
    sender = "Sender" if _header(msg, "Sender") else "From"
    for tag, header in (("Sender", sender), ("ToRecipients", "To"), ("CcRecipients", "Cc"), ("From", "From")):
        if shape.base == "IdOnly" and tag not in shape.additional:
            continue  # address parsing is the costly part of a listing: skip what trim() would drop
        people = [(n, a) for n, a in getaddresses([_header(msg, header)]) if a] if _header(msg, header) else []
        if not people:
            continue
        box = sub(el, t(tag))
        for name, addr in (people[:1] if tag in ("From", "Sender") else people):
            mb = sub(box, t("Mailbox"))
            sub(mb, t("Name"), name or addr)
            sub(mb, t("EmailAddress"), addr)
            sub(mb, t("RoutingType"), "SMTP")
    if _header(msg, "Message-ID"):
        sub(el, t("InternetMessageId"), _header(msg, "Message-ID").strip())
    sub(el, t("IsRead"), "true" if "\\Seen" in item.flags else "false")
    return el


def subject_of(item: MailItem) -> str:
    """The decoded Subject, as Exchange shows it (and restrictions and sorting compare it)."""
    return _header(_HEADERS.parsebytes(item.raw, headersonly=True), "Subject")


def compose_mime(el: etree._Element) -> bytes:
    """The RFC 5322 bytes Exchange makes for a Message created from properties (no MimeContent)."""
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    for tag, header in (("From", "From"), ("ToRecipients", "To"), ("CcRecipients", "Cc")):
        boxes = el.findall(f"{t(tag)}/{t('Mailbox')}")
        if boxes:
            msg[header] = ", ".join(
                email.utils.formataddr((b.findtext(t("Name")) or "", b.findtext(t("EmailAddress")) or "")) for b in boxes)
    msg["Subject"] = el.findtext(t("Subject")) or ""
    body = el.find(t("Body"))
    text = body.text or "" if body is not None else ""
    msg.set_content(text, subtype="html" if body is not None and body.get("BodyType") == "HTML" else "plain")
    return msg.as_bytes()


def _header(msg, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # undecodable encoded-words: show them raw, as Exchange does
        return str(value)


def _date(msg):
    try:
        dt = parsedate_to_datetime(msg.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return None
    return dt if dt.tzinfo else None


def _body(raw: bytes) -> tuple[str, str]:
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        if part is not None:
            return ("HTML" if part.get_content_subtype() == "html" else "Text"), part.get_content()
    except (LookupError, KeyError, ValueError):
        pass
    return "Text", ""

