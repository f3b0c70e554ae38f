"""A fast reader for the FETCH replies the migrator asks for: imaplib's data in, values out.

imapclient's general response lexer walks every byte in Python and was most of the engine's CPU
time. The migrator only ever asks for UID, FLAGS, INTERNALDATE, RFC822.SIZE and at most one
BODY[...] literal, so a reply is: ``<seq> (<items> BODY[...] {n}`` + literal + ``<items>)``. This
module reads exactly that shape with a few regular expressions and returns None for anything else
(a second literal, a quoted INTERNALDATE sent as a literal, odd syntax), so the caller can fall
back to imapclient's complete parser. The output has imapclient's shape:
``{uid: {b"UID": int, b"FLAGS": (bytes, ...), b"INTERNALDATE": datetime, b"RFC822.SIZE": int,
b"BODY[...]": bytes}}``.
"""

from __future__ import annotations

import re

from imapclient.datetime_util import parse_to_datetime

_START = re.compile(rb"^\d+ \(")
_LITERAL_AT_END = re.compile(rb"(BODY\[[^\]]*\])(?:<\d+>)? \{(\d+)\}$")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]*)"')
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_GM_MSGID = re.compile(rb"\bX-GM-MSGID (\d+)")  # Gmail (X-GM-EXT-1): the message's id across labels
_BODY_NIL = re.compile(rb"\bBODY\[[^\]]*\] NIL")


def parse_fetch(data: list) -> dict[int, dict] | None:
    """Parse imaplib's untagged FETCH data (bytes lines and (line, literal) tuples), or None."""
    try:
        return _parse(data)
    except (ValueError, OverflowError):
        # A number past int()'s 4300-digit limit, an INTERNALDATE year past datetime's range:
        # not the shape this reader knows, so the complete parser gets it (and its verdict).
        return None


def _parse(data: list) -> dict[int, dict] | None:
    messages: list[list] = []  # [text outside the literal, (item name, literal) | None]
    for element in data:
        if element is None:
            continue
        head, literal = (element[0], element[1]) if isinstance(element, tuple) else (element, None)
        if _START.match(head):
            messages.append([b"", None])
        elif not messages:
            return None
        current = messages[-1]
        if literal is not None:
            m = _LITERAL_AT_END.search(head)
            if current[1] is not None or m is None or int(m.group(2)) != len(literal):
                return None  # a second literal, or one we did not ask for
            current[1] = (m.group(1), literal)
            head = head[: m.start()]
        current[0] += head
    out: dict[int, dict] = {}
    for text, literal in messages:
        item = _items(text)
        if item is None:
            return None
        if literal is not None:
            item[literal[0]] = literal[1]
        out[item[b"UID"]] = item
    return out


def _items(text: bytes) -> dict | None:
    item = fetch_items(text)
    return item if b"UID" in item else None


def fetch_items(text: bytes) -> dict:
    """The items of one FETCH response's text outside its literal, keyed like imapclient's
    (b"UID", b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"X-GM-MSGID"); absent ones are absent.
    Raises ValueError for an INTERNALDATE that is no date."""
    item: dict = {}
    flags = _FLAGS.search(text)
    if flags is not None:  # keywords are free text ("$UID 7"): read the rest without them
        text = text[: flags.start()] + text[flags.end() :]
    if (uid := _UID.search(text)) is not None:
        item[b"UID"] = int(uid.group(1))
    if flags is not None:
        item[b"FLAGS"] = tuple(flags.group(1).split())
    if (m := _INTERNALDATE.search(text)) is not None:
        item[b"INTERNALDATE"] = parse_to_datetime(m.group(1), normalise=False)
    if (m := _SIZE.search(text)) is not None:
        item[b"RFC822.SIZE"] = int(m.group(1))
    if (m := _GM_MSGID.search(text)) is not None:
        item[b"X-GM-MSGID"] = int(m.group(1))
    if _BODY_NIL.search(text):
        item[b"BODY[]"] = None
    return item
