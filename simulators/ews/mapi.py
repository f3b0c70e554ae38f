"""The MAPI properties behind mail flags, read and written as EWS extended properties.

IMAP flags live in MAPI properties Exchange exposes through ``t:ExtendedProperty`` (and, for the
follow-up flag, ``t:Flag`` since Exchange 2013): PR_MESSAGE_FLAGS (read, unsent = draft),
PR_FLAG_STATUS (2 = flagged), PR_LAST_VERB_EXECUTED (102 reply, 103 reply all, 104 forward),
PR_MESSAGE_DELIVERY_TIME (the received time). Clients such as exchangelib reach them by
registering ExtendedProperty classes with these tags.
"""

from __future__ import annotations

import re

from lxml import etree

from simulators.ews.pim import utc
from simulators.ews.soap import SoapFault, sub, t, xs_int
from simulators.store import MailItem

PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_MESSAGE_FLAGS = 0x0E07
PR_LAST_VERB_EXECUTED = 0x1081
PR_FLAG_STATUS = 0x1090
MSGFLAG_READ, MSGFLAG_UNSENT = 0x1, 0x8
VERB_REPLY, VERB_REPLY_ALL, VERB_FORWARD = 102, 103, 104
FLAG_FLAGGED = 2


_HEX_TAG = re.compile(r"0[xX][0-9a-fA-F]{1,8}")


def parse_tag(text: str) -> int:
    """A PropertyTag attribute: "0x0E07" or decimal."""
    if text[:2].lower() == "0x":
        if _HEX_TAG.fullmatch(text) is None:
            raise SoapFault("ErrorSchemaValidation",
                            f"The request failed schema validation: PropertyTag '{text[:40]}' is not a property tag.")
        return int(text, 16)
    return xs_int(text, "PropertyTag")


def values(item: MailItem) -> dict[int, tuple[str, str]]:
    """tag → (PropertyType, value text) for the properties this message has (unset ones absent)."""
    out = {
        PR_MESSAGE_FLAGS: ("Integer", str((MSGFLAG_READ if "\\Seen" in item.flags else 0)
                                          | (MSGFLAG_UNSENT if "\\Draft" in item.flags else 0))),
        PR_MESSAGE_DELIVERY_TIME: ("SystemTime", utc(item.internaldate)),
    }
    if "\\Flagged" in item.flags:
        out[PR_FLAG_STATUS] = ("Integer", str(FLAG_FLAGGED))
    # Exchange keeps only the last verb; a message both answered and forwarded shows the forward.
    if "$Forwarded" in item.flags:
        out[PR_LAST_VERB_EXECUTED] = ("Integer", str(VERB_FORWARD))
    elif "\\Answered" in item.flags:
        out[PR_LAST_VERB_EXECUTED] = ("Integer", str(VERB_REPLY))
    return out


def render(el: etree._Element, item: MailItem, tags: frozenset[int]) -> None:
    have = values(item)
    for tag in sorted(tags & have.keys()):
        prop_type, value = have[tag]
        prop = sub(el, t("ExtendedProperty"))
        sub(prop, t("ExtendedFieldURI"), PropertyTag=f"0x{tag:x}", PropertyType=prop_type)
        sub(prop, t("Value"), value)


def read(el: etree._Element) -> dict[int, str]:
    """The ExtendedProperty values of a CreateItem element, by tag."""
    out = {}
    for prop in el.iterfind(t("ExtendedProperty")):
        uri = prop.find(t("ExtendedFieldURI"))
        tag = uri.get("PropertyTag") if uri is not None else None
        if tag:
            out[parse_tag(tag)] = prop.findtext(t("Value")) or ""
    return out


def flags_from(props: dict[int, str], flag_status: str | None) -> set[str]:
    """IMAP flags a created message gets from its properties (``flag_status``: t:Flag/FlagStatus)."""
    flags = set()
    if props.get(PR_FLAG_STATUS) == str(FLAG_FLAGGED) or flag_status == "Flagged":
        flags.add("\\Flagged")
    verb = props.get(PR_LAST_VERB_EXECUTED)
    if verb in (str(VERB_REPLY), str(VERB_REPLY_ALL)):
        flags.add("\\Answered")
    elif verb == str(VERB_FORWARD):
        flags.add("$Forwarded")
    return flags


def apply_update(flags: set[str], field: str | int, value: str | None) -> set[str]:
    """``flags`` after SetItemField (``value``) or DeleteItemField (None) of one field: a FieldURI
    name ("message:IsRead", "item:Flag") or a PropertyTag. KeyError for fields kept elsewhere."""
    out = set(flags)

    def put(flag: str, on: bool) -> None:
        (out.add if on else out.discard)(flag)

    if field == "message:IsRead":
        put("\\Seen", value is not None and value.strip() in ("true", "1"))
    elif field == "item:Flag":
        put("\\Flagged", value == "Flagged")
    elif field == PR_FLAG_STATUS:
        put("\\Flagged", value == str(FLAG_FLAGGED))
    elif field == PR_LAST_VERB_EXECUTED:
        put("\\Answered", value in (str(VERB_REPLY), str(VERB_REPLY_ALL)))
        put("$Forwarded", value == str(VERB_FORWARD))
    elif field == PR_MESSAGE_FLAGS:
        bits = xs_int(value, "PR_MESSAGE_FLAGS", 0)
        put("\\Seen", bool(bits & MSGFLAG_READ))
        put("\\Draft", bool(bits & MSGFLAG_UNSENT))
    else:
        raise KeyError(field)
    return out
