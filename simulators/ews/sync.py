"""Opaque SyncState blobs: what the client has been given so far (id → change key), zlib'd JSON."""

from __future__ import annotations

import base64
import binascii
import json
import zlib

from simulators.ews.soap import SoapFault


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


def diff(old: dict[str, str], now: dict[str, str]) -> list[tuple[str, str]]:
    """[(kind, id)] in order: creates and updates in ``now`` order, then deletes."""
    out = [("Create" if i not in old else "Update", i) for i, ck in now.items() if old.get(i) != ck]
    out += [("Delete", i) for i in old if i not in now]
    return out
