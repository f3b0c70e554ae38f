"""Stable EWS ids: base64 of the account, the folder path and the item's key in that folder.

Exchange ids are opaque base64 blobs; ours decode back to where the object lives, so no table
has to be kept and the same store state always gives the same ids (also across restarts).
ChangeKeys are a short hash of what a client could see change (flags, payload).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

_SEP = "\x00"
_PATH_SEP = "\x1f"
# Virtual folders above the store's top-level folders (the store has no node for them).
ROOT = ("\x01root",)
MSGFOLDERROOT = ("\x01msgfolderroot",)


class BadId(ValueError):
    """An id that is not one of ours (malformed or from another account)."""


@dataclass(frozen=True)
class ItemRef:
    account: str
    path: tuple[str, ...]
    key: str  # "m:<uidvalidity>:<uid>" for mail, "p:<item_id>" for PIM items, "o:<item_id>\x1e<recurrence-id>"


def _encode(*parts: str) -> str:
    return base64.b64encode(_SEP.join(parts).encode("utf-8")).decode("ascii")


def _decode(value: str, n: int) -> list[str]:
    try:
        parts = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8").split(_SEP)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadId(value) from None
    if len(parts) != n + 1:
        raise BadId(value)
    return parts


def folder_id(account: str, path: tuple[str, ...]) -> str:
    return _encode("F", account, _PATH_SEP.join(path))


def parse_folder_id(value: str) -> tuple[str, tuple[str, ...]]:
    kind, account, path = _decode(value, 2)
    if kind != "F" or not path:
        raise BadId(value)
    return account, tuple(path.split(_PATH_SEP))


def item_id(account: str, path: tuple[str, ...], key: str) -> str:
    return _encode("I", account, _PATH_SEP.join(path), key)


def parse_item_id(value: str) -> ItemRef:
    kind, account, path, key = _decode(value, 3)
    if kind != "I" or not path:
        raise BadId(value)
    return ItemRef(account, tuple(path.split(_PATH_SEP)), key)


def change_key(*parts: object) -> str:
    digest = hashlib.sha1(repr(parts).encode("utf-8")).digest()[:12]
    # Exchange change keys start with the same 4 bytes of type information; clients never look.
    return base64.b64encode(b"\x10\x00\x00\x00" + digest).decode("ascii")
