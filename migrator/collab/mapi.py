"""MAPI properties read and written as EWS extended properties, and what they mean as IMAP flags.

exchangelib only sends and parses extended properties registered on an item class — process-wide
state. ``register()`` does it once, idempotently, under names of our own (``qm_…``) that no other
code uses, so registering cannot change what other exchangelib users of the process see.

    PR_MESSAGE_DELIVERY_TIME 0x0E06  the received instant (our INTERNALDATE) — written
    PR_MESSAGE_FLAGS         0x0E07  1 = read, 8 = unsent (a draft) — written
    PR_LAST_VERB_EXECUTED    0x1081  102/103 replied (\\Answered), 104 forwarded ($Forwarded)
    PR_FLAG_STATUS           0x1090  2 = flagged (\\Flagged) (exchangelib has no Flag field)

Exchange keeps only the last verb: a message both answered and forwarded reads as forwarded.
"""

from __future__ import annotations

import threading

from exchangelib import Message
from exchangelib.extended_properties import ExtendedProperty

MSGFLAG_READ, MSGFLAG_UNSENT = 0x1, 0x8
FLAG_FLAGGED = 2
VERB_REPLY, VERB_REPLY_ALL, VERB_FORWARD = 102, 103, 104


def _property(tag: int, kind: str) -> type[ExtendedProperty]:
    return type(f"Prop{tag:04X}", (ExtendedProperty,), {"property_tag": tag, "property_type": kind})


PROPERTIES = {
    "qm_delivery_time": _property(0x0E06, "SystemTime"),
    "qm_message_flags": _property(0x0E07, "Integer"),
    "qm_last_verb": _property(0x1081, "Integer"),
    "qm_flag_status": _property(0x1090, "Integer"),
}
READ_FIELDS = ["qm_last_verb", "qm_flag_status"]
_lock = threading.Lock()


def register() -> None:
    with _lock:
        names = {f.name for f in Message.FIELDS}
        for name, cls in PROPERTIES.items():
            if name not in names:
                Message.register(name, cls)


def imap_flags(last_verb: int | None, flag_status: int | None) -> list[str]:
    """\\Answered / $Forwarded / \\Flagged from the MAPI properties (absent → nothing)."""
    out = []
    if last_verb in (VERB_REPLY, VERB_REPLY_ALL):
        out.append("\\Answered")
    elif last_verb == VERB_FORWARD:
        out.append("$Forwarded")
    if flag_status == FLAG_FLAGGED:
        out.append("\\Flagged")
    return out


def properties(flags: list[str]) -> dict[str, int]:
    """The ``qm_…`` properties saying what the IMAP flags say (for CreateItem)."""
    out = {"qm_message_flags": (MSGFLAG_READ if "\\Seen" in flags else 0) | (MSGFLAG_UNSENT if "\\Draft" in flags else 0)}
    if "$Forwarded" in flags:
        out["qm_last_verb"] = VERB_FORWARD
    elif "\\Answered" in flags:
        out["qm_last_verb"] = VERB_REPLY
    if "\\Flagged" in flags:
        out["qm_flag_status"] = FLAG_FLAGGED
    return out
