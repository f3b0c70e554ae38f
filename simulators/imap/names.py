"""Folder names on the IMAP wire ↔ store paths, and LIST pattern matching.

The store names folders by tuples of parts; the wire name is
``namespace_prefix + delimiter.join(parts)`` (INBOX never takes the prefix), in modified UTF-7.
"""

from __future__ import annotations

import re
from functools import lru_cache

from imapclient import imap_utf7

from simulators.imap.syntax import astring
from simulators.store import INBOX


class MailboxNameError(ValueError):
    """A wire name that cannot name a folder here; ``str()`` is the reply text after ``NO``."""


class Names:
    """One profile's naming rules (delimiter, personal namespace prefix)."""

    def __init__(self, delimiter: str, prefix: str = ""):
        self.delimiter = delimiter
        self.prefix = prefix

    def to_wire(self, path: tuple[str, ...]) -> bytes:
        if path == INBOX:
            return b"INBOX"
        text = self.delimiter.join(path)
        if path[0] == "INBOX":
            return imap_utf7.encode(text)
        return imap_utf7.encode(self.prefix + text)

    def from_wire(self, name: bytes | str) -> tuple[str, ...]:
        raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
        try:
            text = imap_utf7.decode(raw) if raw.isascii() else raw.decode("utf-8")
        except (UnicodeError, ValueError):
            raise MailboxNameError("Mailbox name is not valid mUTF-7") from None
        if text.upper() == "INBOX":
            return INBOX
        if self.prefix:
            if text.upper().startswith(self.prefix.upper()):
                text = text[len(self.prefix) :]
            else:
                # Dovecot's words for a name outside every namespace (src/imap/imap-commands-util.c,
                # client_find_namespace), as users of INBOX.-prefixed servers quote them.
                raise MailboxNameError(
                    "Client tried to access nonexistent namespace. "
                    f"(Mailbox name should probably be prefixed with: {self.prefix})"
                )
        d = self.delimiter
        if text.endswith(d):  # "Work/" names "Work" (CREATE's trailing delimiter)
            text = text[: -len(d)]
        parts = tuple(text.split(d)) if d else (text,)
        if not text or any(p == "" for p in parts):
            raise MailboxNameError("Invalid mailbox name: Empty hierarchy level")
        if parts[0].upper() == "INBOX":
            parts = INBOX + parts[1:]
        return parts

    def matcher(self, reference: str, pattern: str):
        """A predicate over decoded wire names for LIST ``reference pattern``."""
        return _compile(reference + pattern, self.delimiter).fullmatch


def names_for(imap, quirks) -> Names:
    """A session's naming rules: the profile's ``imap`` block, unless a quirk says otherwise
    (``imap_names``: inbox-namespace-prefix, hierarchy-delimiter). Verifiers use it too."""
    naming = (imap.delimiter, imap.namespace_prefix)
    for q in quirks:
        changed = q.imap_names(*naming)
        if changed is not None:
            return Names(*changed)
    return Names(*naming)


@lru_cache(maxsize=256)
def _compile(pattern: str, delimiter: str) -> re.Pattern:
    out = []
    for c in pattern:
        if c == "*":
            out.append(".*")
        elif c == "%":
            out.append(f"[^{re.escape(delimiter)}]*" if delimiter else ".*")
        else:
            out.append(re.escape(c))
    # INBOX is case-insensitive (RFC 3501 §5.1); everything else matches exactly.
    text = "".join(out)
    if pattern[:5].upper() == "INBOX":
        text = "(?i:INBOX)" + "".join(out[5:])
    return re.compile(text, re.DOTALL)


def mailbox_atom(name: str) -> bytes:
    """A mailbox name as Dovecot writes it: an atom when it can be one, else quoted/literal."""
    if name and all(c.isalnum() or c in "!#$&'+,-./:;<=>?@[]^_`|}~" for c in name) and name.isascii():
        return name.encode()
    return astring(name)
