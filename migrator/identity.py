"""Message identity that survives missing and duplicate Message-IDs.

An identity is computed from what both sides can cheaply give: the fields in ``IDENTITY_FIELDS``
(``BODY.PEEK[HEADER.FIELDS (…)]``, or the same fields cut out of a full message) and
``RFC822.SIZE``.

    key  = normalised Message-ID (or "-" when absent) + "/" + sha256 over the unfolded,
           whitespace-collapsed Date, From, To, Subject and first (topmost) Received values
    size = RFC822.SIZE

Two identities are the same message when their keys are equal and their sizes are within
``SIZE_TOLERANCE``: servers may report a size a little different from the source's (Dovecot counts
bare LF as CRLF), so a hard size bucket would split one message at the bucket's edge.

Why this choice:
- Distinct messages sharing a Message-ID (mailing-list copies, broken generators) differ in Date,
  To, Subject, the first Received or their size, so their keys or sizes differ.
- Messages without a Message-ID (Sent, Drafts) are still told apart by the header hash and size.
- The same message copied by another tool keeps these headers byte for byte, so merge mode finds it.
Limits: two messages with identical identity headers whose sizes differ by less than the tolerance
are taken as one (bodies are not compared: fetching them from the destination would cost a full
download). A tool that rewrites headers (adds a Received, re-encodes Subject) defeats matching;
the migrator then copies again rather than lose mail.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from migrator.dates import header_block, header_values, parse_headers

IDENTITY_FIELDS = ("MESSAGE-ID", "DATE", "FROM", "TO", "SUBJECT", "RECEIVED")
HASHED_FIELDS = ("Date", "From", "To", "Subject")
IDENTITY_NAMES = ("Message-ID", "Received") + HASHED_FIELDS


def size_tolerance(size: int) -> int:
    # ~1 byte per line for CRLF normalisation: 2% with a floor for tiny messages
    return max(64, size // 50)


@dataclass(frozen=True)
class Identity:
    key: str
    size: int

    def same_message(self, other: Identity) -> bool:
        return self.key == other.key and abs(self.size - other.size) <= size_tolerance(max(self.size, other.size))

    def __str__(self) -> str:
        return f"{self.key}#{self.size}"  # as kept in the checkpoint

    @classmethod
    def parse(cls, text: str) -> Identity:
        key, _, size = text.rpartition("#")
        return cls(key, int(size or 0))


def normalise_message_id(value: str) -> str:
    """``<Local@Domain>`` → ``local@domain``; case-folded because servers and tools vary it."""
    value = value.strip()
    m = re.search(r"<([^<>]*)>", value)
    if m:
        value = m.group(1)
    return re.sub(r"\s+", "", value).lower()


def _collapse(value: str) -> str:
    return " ".join(value.split())


def identity_of(headers: bytes, size: int) -> Identity:
    """Identity from a header section (or a whole message) and its RFC822.SIZE."""
    fields = parse_headers(header_block(headers), IDENTITY_NAMES)
    mids = fields.get("message-id", [])
    mid = normalise_message_id(mids[0]) if mids and mids[0].strip() else "-"
    h = hashlib.sha256()
    for name in HASHED_FIELDS:
        values = fields.get(name.lower(), [])
        h.update(name.encode() + b"\0" + _collapse(values[0] if values else "").encode("latin-1") + b"\0")
    received = fields.get("received", [])
    h.update(b"Received\0" + _collapse(received[0] if received else "").encode("latin-1"))
    return Identity(f"{mid}/{h.hexdigest()[:24]}", size)


def message_id_of(headers: bytes) -> str | None:
    mids = header_values(header_block(headers), "Message-ID")
    return mids[0].strip() if mids and mids[0].strip() else None


class IdentityIndex:
    """A multiset of identities (e.g. a destination folder's messages) consumed by matching.

    ``take`` removes and returns one matching entry, so two identical source copies need two
    destination copies before both count as present.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self._count = 0

    def add(self, identity: Identity) -> None:
        self._by_key[identity.key].append(identity.size)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def discount(self, identities: Iterable[Identity]) -> IdentityIndex:
        """Take each of ``identities`` out (copies already on record); returns self."""
        for ident in identities:
            self.take(ident)
        return self

    def take(self, identity: Identity) -> bool:
        sizes = self._by_key.get(identity.key)
        if not sizes:
            return False
        best = min(range(len(sizes)), key=lambda i: abs(sizes[i] - identity.size))
        if not identity.same_message(Identity(identity.key, sizes[best])):
            return False
        sizes.pop(best)
        self._count -= 1
        return True


T = TypeVar("T")


class LazyIdentityIndex(Generic[T]):
    """An ``IdentityIndex`` of a destination read one Message-ID at a time, when first asked.

    ``candidates`` maps a normalised Message-ID ("-" for none) to the destination items listed
    with it (cheap: a listing's InternetMessageId); ``load(items)`` reads their identities (the
    costly part: their content). ``discount`` are identities of copies already on record: taken
    out of a Message-ID's entries once they are loaded, as ``IdentityIndex`` users do up front.
    A resumed run thus reads only the destination items that share a Message-ID with a source
    message still to copy — the few a killed run left unrecorded — not the whole folder.
    """

    def __init__(self, candidates: dict[str, list[T]], load: Callable[[list[T]], Iterable[Identity]],
                 discount: Iterable[Identity] = ()):
        self._candidates = candidates
        self._load = load
        self._discount: dict[str, list[Identity]] = defaultdict(list)
        for ident in discount:
            self._discount[message_id_part(ident)].append(ident)
        self._loaded: set[str] = set()
        self._index = IdentityIndex()

    def take(self, identity: Identity) -> bool:
        mid = message_id_part(identity)
        if mid not in self._loaded:
            self._loaded.add(mid)
            items = self._candidates.get(mid, [])
            for ident in self._load(items) if items else ():
                self._index.add(ident)
            for ident in self._discount.pop(mid, []):
                self._index.take(ident)
        return self._index.take(identity)


def message_id_part(identity: Identity) -> str:
    """The normalised Message-ID an identity's key starts with ("-" for none)."""
    return identity.key.rpartition("/")[0]
