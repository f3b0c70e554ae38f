"""Opaque SyncState blobs: what the client has been given so far (id → change key), zlib'd JSON."""

from __future__ import annotations

import base64
import binascii
import json
import zlib

from simulators.ews.ids import change_key
from simulators.ews.soap import SoapFault
from simulators.store import MailItem


def encode(state: dict[str, str]) -> str:
    return base64.b64encode(zlib.compress(json.dumps(state, sort_keys=True).encode("utf-8"))).decode("ascii")


def decode(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        return json.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (binascii.Error, zlib.error, ValueError):
        text = "Synchronization state data is corrupt or otherwise invalid."
        raise SoapFault("ErrorInvalidSyncStateData", text) from None


SEEN = "\\Seen"


def item_state(item) -> str:
    """What a sync state remembers of an item: its content key and, apart, its read state, so a
    change of \\Seen alone is reported as t:ReadFlagChange (as Exchange does), not t:Update."""
    if isinstance(item, MailItem):
        seen = SEEN in item.flags
        return f"{change_key(item.uid, sorted(item.flags - {SEEN}))}|{int(seen)}"  # "|" is not base64
    return change_key(item.item_id, item.payload)


def diff(old: dict[str, str], now: dict[str, str]) -> list[tuple[str, str]]:
    """[(kind, id)] in order: creates, updates and read-flag changes in ``now`` order, then deletes."""
    out = []
    for i, state in now.items():
        before = old.get(i)
        if before is None:
            out.append(("Create", i))
        elif before != state:
            read_only = "|" in state and before.partition("|")[0] == state.partition("|")[0]
            out.append(("ReadFlagChange" if read_only else "Update", i))
    out += [("Delete", i) for i in old if i not in now]
    return out
