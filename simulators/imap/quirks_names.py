"""IMAP quirks of folder names, namespaces, malformed replies and message content (QUIRKS.md).

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.

- naming: ``inbox-namespace-prefix``, ``hierarchy-delimiter`` (the session's delimiter and
  personal-namespace prefix, hook ``imap_names``), ``modified-utf7-names`` (raw UTF-8 in LIST);
- ``malformed-responses``: one chosen malformation of LIST, STATUS or FETCH replies;
- content refusals of APPEND: ``bare-lf``, ``nul-bytes``, ``8bit-headers`` (Cyrus' words, hook
  ``imap_message_refused``); long lines are Exchange's, in ``quirks_microsoft``
  (exchange-append-limits).

Replies are reproduced byte for byte as the servers' sources or users' reports give them.
"""

from __future__ import annotations

import re
from typing import Literal

from imapclient import imap_utf7
from pydantic import BaseModel, ConfigDict

from simulators.imap.names import mailbox_atom
from simulators.quirks import Quirk, register


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Naming -----------------------------------------------------------------------------------------


@register
class InboxNamespacePrefix(Quirk):
    """Every folder but INBOX lives under `INBOX.`; other names get Dovecot's namespace refusal.

    A server configured like Courier (Maildir++): personal namespace prefix ``INBOX.`` and ``.``
    as the delimiter, whatever the profile says. A name outside the prefix (``CREATE Archive``)
    gets `NO Client tried to access nonexistent namespace. (Mailbox name should probably be
    prefixed with: INBOX.)` — Dovecot's words (src/imap/imap-commands-util.c,
    client_find_namespace), as users of such servers quote them (e.g. himalaya against an
    INBOX.-prefixed server). NAMESPACE answers ``(("INBOX." "."))``.
    """

    name = "inbox-namespace-prefix"
    protocols = frozenset({"imap"})

    class Params(_Params):
        prefix: str = "INBOX."
        delimiter: str = "."

    def imap_names(self, delimiter, prefix):
        return self.params.delimiter, self.params.prefix


@register
class HierarchyDelimiter(Quirk):
    """A server whose hierarchy delimiter is not the profile's: Domino's `\\`, Courier's `.`.

    Lotus Domino lists ``* LIST () "\\\\" Projects\\\\2024``; a part holding another server's
    delimiter (``a/b`` here) is one folder, not two.
    """

    name = "hierarchy-delimiter"
    protocols = frozenset({"imap"})

    class Params(_Params):
        delimiter: str = "\\"

    def imap_names(self, delimiter, prefix):
        return self.params.delimiter, prefix


@register
class ModifiedUtf7Names(Quirk):
    """Non-ASCII folder names sent as raw UTF-8 in LIST/LSUB/STATUS instead of modified UTF-7.

    Some servers (and Dovecot's imapc peers of them) list ``"Entwürfe"`` where RFC 3501 wants
    ``Entw&APw-rfe``; they take either spelling back in commands (the front always did).
    """

    name = "modified-utf7-names"
    protocols = frozenset({"imap"})

    def imap_untagged(self, session, command, line, item=None):
        if command not in ("LIST", "LSUB", "STATUS") or item is None:
            return None
        wire = session.names.to_wire(item.path)
        if b"&" not in wire:
            return None
        utf8 = _quoted(imap_utf7.decode(wire).encode("utf-8"))
        atom = mailbox_atom(wire.decode("ascii"))
        if command == "STATUS":
            head = b"* STATUS " + atom
            return utf8.join([b"* STATUS ", line[len(head):]]) if line.startswith(head) else None
        return line[: -len(atom)] + utf8 if line.endswith(atom) else None


def _quoted(raw: bytes) -> bytes:
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# Malformed replies ------------------------------------------------------------------------------

Malformation = Literal["list-missing-quote", "nil-string", "empty-status", "fetch-extra-item"]
_INTERNALDATE = re.compile(rb'INTERNALDATE "[^"]*"')
_SPAM_REPORT = b"score=7.5 (spam?)"
EXTRA_ITEM = b"X-SPAM-REPORT {%d}\r\n%s" % (len(_SPAM_REPORT), _SPAM_REPORT)


@register
class MalformedResponses(Quirk):
    """Replies that break strict parsers: a LIST name without its closing quote, NIL for a string,
    an empty STATUS list, an unknown extra FETCH item.

    ``kind`` picks the malformation; ``folder`` (path joined with "/") and ``uid`` narrow it to one
    folder or message (default: every LIST/STATUS line of a non-INBOX folder, every message):

    - ``list-missing-quote``: ``* LIST (\\HasNoChildren) "/" "Old Mail`` — the line ends inside
      the quoted name;
    - ``nil-string``: ``INTERNALDATE NIL`` in FETCH, where RFC 3501 requires a quoted date-time;
    - ``empty-status``: ``* STATUS Work ()`` whatever was asked;
    - ``fetch-extra-item``: an item nobody asked for, with a literal, before the closing paren
      (``X-SPAM-REPORT {17}``).
    """

    name = "malformed-responses"
    protocols = frozenset({"imap"})

    class Params(_Params):
        kind: Malformation
        folder: str | None = None
        uid: int | None = None

    def _folder_hit(self, folder) -> bool:
        if self.params.folder is not None:
            return "/".join(folder.path) == self.params.folder
        return folder.path != ("INBOX",)

    def imap_untagged(self, session, command, line, item=None):
        kind = self.params.kind
        if kind == "list-missing-quote" and command in ("LIST", "LSUB") and item is not None and self._folder_hit(item):
            atom = mailbox_atom(session.names.to_wire(item.path).decode("ascii"))
            name = atom[1:-1] if atom.startswith(b'"') else atom
            return line[: -len(atom)] + b'"' + name
        if kind == "empty-status" and command == "STATUS" and item is not None and self._folder_hit(item):
            return line[: line.rindex(b" (")] + b" ()"
        if command != "FETCH" or item is None or (self.params.uid is not None and item.uid != self.params.uid):
            return None
        if self.params.folder is not None and not self._folder_hit(session.view.folder):
            return None
        if kind == "nil-string":
            return _INTERNALDATE.sub(b"INTERNALDATE NIL", line, count=1)
        if kind == "fetch-extra-item" and line.endswith(b")"):
            return line[:-1] + b" " + EXTRA_ITEM + b")"
        return None


# Content refused by APPEND ----------------------------------------------------------------------


class _ContentCheck(Quirk):
    """An APPEND refused for what the message holds (asked with the whole literal)."""

    protocols = frozenset({"imap"})

    def refuses(self, raw: bytes) -> bool:
        raise NotImplementedError

    def imap_message_refused(self, session, raw):
        return self.params.reply if self.refuses(raw) else None


_BARE_LF = re.compile(rb"(?<!\r)\n")


@register
class BareLf(_ContentCheck):
    """Cyrus: an APPEND with a line ending in LF alone gets `NO Message contains bare newlines`.

    Cyrus IMAP's IMAP_MESSAGE_CONTAINSNL (imap/imap_err.et); Kolab and roundcube work around it
    by converting to CRLF before APPEND.
    """

    name = "bare-lf"

    class Params(_Params):
        reply: str = "NO Message contains bare newlines"

    def refuses(self, raw):
        return _BARE_LF.search(raw) is not None


@register
class NulBytes(_ContentCheck):
    """Cyrus: an APPEND holding a NUL byte gets `NO Message contains NUL characters`.

    Cyrus IMAP's IMAP_MESSAGE_CONTAINSNULL; RFC 3501 forbids NUL in a literal (only RFC 3516's
    literal8 may carry it).
    """

    name = "nul-bytes"

    class Params(_Params):
        reply: str = "NO Message contains NUL characters"

    def refuses(self, raw):
        return b"\0" in raw


@register
class EightBitHeaders(_ContentCheck):
    """Cyrus: raw 8-bit bytes in the header get `NO Message contains non-ASCII characters in headers`.

    Cyrus IMAP's IMAP_MESSAGE_CONTAINS8BIT (with ``reject8bit: yes``); RFC 5322 headers are ASCII
    unless RFC 2047-encoded.
    """

    name = "8bit-headers"

    class Params(_Params):
        reply: str = "NO Message contains non-ASCII characters in headers"

    def refuses(self, raw):
        end = raw.find(b"\r\n\r\n")
        header = raw if end < 0 else raw[:end]
        return not header.isascii()
