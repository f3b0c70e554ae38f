"""What an IMAP server derives from a message's bytes: ENVELOPE, BODYSTRUCTURE, BODY[section].

Pure functions, bytes in and bytes out, shaped to match Dovecot 2.3 byte for byte (checked by
tests/test_imap_message_peer.py against a real Dovecot):

- ``envelope(raw)`` and ``bodystructure(raw)`` return the serialised IMAP list, without the
  FETCH item name: ``b'("date" "subject" ...)'``.
- ``body_section(raw, part, text, fields)`` returns a slice of the ORIGINAL bytes (never a
  re-serialisation), so BODY[] and RFC822.SIZE agree with what was appended.

The MIME structure is located by our own scanner over the raw bytes (header/body split at the
first empty line, RFC 2046 boundary lines, nested message/rfc822), so every offset is exact and
bare-LF messages work. The ``email`` package is used only to decode RFC 2047 words for SEARCH.

Deliberate difference from Dovecot: Dovecot stores bare-LF mail with CRLF on the wire and
reports sizes of the CRLF form; we serve the bytes as stored, so sizes and line counts here are
those of the raw bytes (identical for CRLF mail, which is what real servers receive).
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.header
import email.utils
import quopri
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

__all__ = [
    "SectionError",
    "envelope",
    "bodystructure",
    "body_section",
    "header_values",
    "body_text",
    "full_text",
    "sent_date",
]

_CACHE_SIZE = 128  # parsed messages kept; a FETCH over a folder touches each message a few times
_TEXT_CACHE_SIZE = 16  # decoded SEARCH text can be as large as the message: keep few
# Dovecot's message parser nests at most 100 levels (max_nested_mime_parts): an entity that would
# open level 100 is shown as an application/octet-stream leaf. It also keeps us off the
# interpreter's recursion limit for hostile mail.
_MAX_DEPTH = 99


class SectionError(ValueError):
    """A BODY[section] that is not valid IMAP (e.g. MIME on the whole message)."""


# ------------------------------------------------------------------------------------------------
# IMAP string output (imap-quote.c in Dovecot 2.3)
# ------------------------------------------------------------------------------------------------


def _literal(value: bytes) -> bytes:
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """NIL, a quoted string, or a literal when quoting is unsafe.

    Dovecot 2.3.19 switches to a literal for CR, LF, 8-bit bytes and also for any ``"`` or ``\\``
    (it does not escape them), so we do the same.
    """
    if value is None:
        return b"NIL"
    if _UNSAFE_IN_QUOTED.search(value):
        return _literal(value)
    return b'"' + value + b'"'


_UNSAFE_IN_QUOTED = re.compile(rb'["\\\r\n\x00\x80-\xff]')


def nstring_nolf(value: bytes | None) -> bytes:
    """nstring with CR/LF removed (a space is kept between lines that had no whitespace)."""
    if value is None or (b"\r" not in value and b"\n" not in value):
        return nstring(value)
    out = bytearray()
    for i, c in enumerate(value):
        if c not in (13, 10):
            out.append(c)
        elif i + 1 < len(value) and value[i + 1] not in b" \t\r\n":
            out.append(32)
    return nstring(bytes(out))


def string_for_humans(value: bytes) -> bytes:
    """Dovecot's form for subjects and display names: whitespace runs collapsed to one space,
    leading/trailing whitespace dropped, NUL shown as 0x80; a literal whenever anything changed
    or a quote, backslash or 8-bit byte is present."""
    modify = False
    for c in value:
        if c in (0, 13, 10, 9, 34, 92) or c >= 0x80:
            modify = True
            break
    collapsed = re.sub(rb"[ \t\r\n]+", b" ", value.replace(b"\x00", b"\x80")).strip(b" ")
    if not modify and collapsed == value:
        return b'"' + value + b'"'
    if not collapsed:
        return b'""'
    return _literal(collapsed)


# ------------------------------------------------------------------------------------------------
# Header fields
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderField:
    name: bytes  # as written
    raw: bytes  # the whole field, folding and line ending included (original bytes)
    value: bytes  # Dovecot's "full value": initial blanks skipped, CRs dropped, lines joined by LF


_LINES = re.compile(rb"[^\n]*\n|[^\n]+")


def _parse_fields(block: bytes) -> list[HeaderField]:
    fields: list[HeaderField] = []
    # only LF ends a line (a lone CR is data, as for Dovecot; bytes.splitlines would split there)
    lines = _LINES.findall(block)
    current: list[bytes] = []

    def flush() -> None:
        if not current:
            return
        first = current[0]
        name, colon, rest = first.partition(b":")
        if colon and name.strip():
            parts = [rest.rstrip(b"\r\n").lstrip(b" \t")]
            for cont in current[1:]:
                parts.append(cont.rstrip(b"\r\n"))
            value = b""
            for p in parts:
                # Dovecot joins continuation lines with LF, except after an empty first line.
                value = value + b"\n" + p if value else p
            fields.append(HeaderField(name.rstrip(b" \t"), b"".join(current), value.replace(b"\r", b"")))
        current.clear()

    for line in lines:
        if line[:1] in (b" ", b"\t") and current:
            current.append(line)
        else:
            flush()
            current.append(line)
    flush()
    return fields


def _first(fields: list[HeaderField], name: bytes) -> HeaderField | None:
    lname = name.lower()
    for f in fields:
        if f.name.lower() == lname:
            return f
    return None


def _strdup(value: bytes) -> bytes:
    # message_header_strdup: NULs become U+FFFD so C strings stay whole.
    return value.replace(b"\x00", "\ufffd".encode())


# ------------------------------------------------------------------------------------------------
# RFC 822 tokens (rfc822-parser.c subset): Content-Type, parameters, addresses
# ------------------------------------------------------------------------------------------------

_SPECIALS = b'()<>@,;:\\".[]'
_TSPECIALS = b'()<>@,;:\\"/[]?='


class _Reader:
    """A cursor over a header value that skips blanks and (nested) comments like rfc822-parser."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.last_comment: bytes | None = None

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def skip_lwsp(self) -> None:
        d = self.data
        while self.pos < len(d):
            c = d[self.pos]
            if c in b" \t\r\n":
                self.pos += 1
            elif c == 0x28:  # "(" comment
                self.last_comment = self._comment()
            else:
                break

    def _comment(self) -> bytes:
        depth, out = 0, bytearray()
        d = self.data
        while self.pos < len(d):
            c = d[self.pos]
            self.pos += 1
            if c == 0x5C and self.pos < len(d):  # backslash
                out.append(d[self.pos])
                self.pos += 1
                continue
            if c == 0x28:
                depth += 1
                if depth == 1:
                    continue
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    break
            out.append(c)
        return bytes(out)

    def token(self, specials: bytes) -> bytes:
        d, start = self.data, self.pos
        while self.pos < len(d) and d[self.pos] > 32 and d[self.pos] < 127 and d[self.pos] not in specials:
            self.pos += 1
        return d[start : self.pos]

    def atom_8bit(self, specials: bytes) -> bytes:
        # like token but allowing 8-bit bytes (raw UTF-8 in display names)
        d, start = self.data, self.pos
        while self.pos < len(d) and d[self.pos] > 32 and d[self.pos] != 127 and d[self.pos] not in specials:
            self.pos += 1
        return d[start : self.pos]

    def quoted(self) -> bytes:
        """The unescaped content of a quoted-string; the cursor is on the opening quote."""
        d = self.data
        self.pos += 1
        out = bytearray()
        while self.pos < len(d):
            c = d[self.pos]
            self.pos += 1
            if c == 0x22:
                break
            if c == 0x5C and self.pos < len(d):
                c = d[self.pos]
                self.pos += 1
            elif c in (13, 10):
                continue  # folding inside a quoted string
            out.append(c)
        return bytes(out)


def _leading_token(value: bytes) -> tuple[bytes, _Reader]:
    """The MIME token a header value starts with, and the reader positioned after it."""
    r = _Reader(value)
    r.skip_lwsp()
    return r.token(_TSPECIALS), r


def _parse_params(r: _Reader) -> list[tuple[bytes, bytes]]:
    """``; name=value`` pairs, RFC 2231 continuations merged as Dovecot's rfc2231_parse does."""
    plain: list[tuple[bytes, bytes]] = []
    continued: dict[bytes, dict[int, tuple[bytes, bool]]] = {}
    order: list[bytes] = []
    while True:
        r.skip_lwsp()
        if r.peek() != 0x3B:  # ";"
            break
        r.pos += 1
        r.skip_lwsp()
        key = r.token(_TSPECIALS)
        r.skip_lwsp()
        if not key or r.peek() != 0x3D:  # "="
            break
        r.pos += 1
        r.skip_lwsp()
        if r.peek() == 0x22:
            value = r.quoted()
        else:
            value = r.token(_TSPECIALS)
        m = re.fullmatch(rb"(.+?)\*(\d+)(\*?)", key)
        if m:
            base = m.group(1)
            if base not in continued:
                continued[base] = {}
                order.append(base)
            continued[base][int(m.group(2))] = (value, bool(m.group(3)))
        else:
            plain.append((key, value))
    for base in order:
        pieces = continued[base]
        extended = pieces.get(0, (b"", False))[1]
        joined = b""
        i = 0
        while i in pieces:
            joined += pieces[i][0]
            i += 1
        plain.append((base + b"*" if extended else base, joined))
    return plain


@dataclass(frozen=True)
class Address:
    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None


_MISSING = Address(None, None, b"MISSING_MAILBOX", b"MISSING_DOMAIN")


def _parse_addresses(value: bytes) -> list[Address]:
    """RFC 5322 address-list in IMAP form: groups become (NIL NIL name NIL) ... (NIL NIL NIL NIL);
    missing parts are filled like Dovecot's MESSAGE_ADDRESS_PARSE_FLAG_FILL_MISSING."""
    r = _Reader(value)
    out: list[Address] = []
    in_group = False
    expect = True  # at the start or after a comma: an empty element here counts, as in Dovecot
    while True:
        r.skip_lwsp()
        c = r.peek()
        if c is None:
            break
        if c == 0x2C:  # ","
            if expect:
                out.append(_MISSING)
            r.pos += 1
            expect = True
            continue
        expect = False
        if c == 0x3B and in_group:  # ";" ends a group
            r.pos += 1
            out.append(Address(None, None, None, None))
            in_group = False
            continue
        start = r.pos
        r.last_comment = None
        phrase = _phrase(r)
        r.skip_lwsp()
        c = r.peek()
        if c == 0x3A and not in_group:  # group "name:"
            r.pos += 1
            out.append(Address(None, None, phrase or b"", None))
            in_group = True
            expect = True
            continue
        if c == 0x3C:  # "<" angle-addr, phrase is the display name
            r.pos += 1
            route, mailbox, domain = _angle_addr(r)
            out.append(Address(phrase or None, route, mailbox, domain))
            continue
        # a bare addr-spec: re-read it from the start
        r.pos = start
        r.last_comment = None
        mailbox, domain = _addr_spec(r)
        if mailbox is None and domain is None:
            # garbage we cannot read: skip a byte so we always advance
            r.pos = max(r.pos, start + 1)
            continue
        r.skip_lwsp()
        name = r.last_comment or None
        if domain is None and name is None and mailbox is not None:
            # "just some words": a lone word is a mailbox, more words are a display name
            rest = _phrase(r)
            if rest:
                name, mailbox = mailbox + b" " + rest, None
        out.append(Address(name, None, mailbox or _MISSING.mailbox, domain or _MISSING.domain))
    if in_group:
        out.append(Address(None, None, None, None))
    return out


def _phrase(r: _Reader) -> bytes:
    words: list[bytes] = []
    while True:
        r.skip_lwsp()
        c = r.peek()
        if c is None:
            break
        if c == 0x22:
            words.append(r.quoted())
        elif c == 0x2E:  # obsolete "." in phrases (J. Doe)
            r.pos += 1
            words.append(b".")
        else:
            w = r.atom_8bit(_SPECIALS)
            if not w:
                break
            words.append(w)
    return b" ".join(words).replace(b" . ", b". ")


def _addr_spec(r: _Reader) -> tuple[bytes | None, bytes | None]:
    r.skip_lwsp()
    local = _dot_words(r)
    r.skip_lwsp()
    domain = None
    if r.peek() == 0x40:  # "@"
        r.pos += 1
        r.skip_lwsp()
        if r.peek() == 0x5B:  # domain literal
            end = r.data.find(b"]", r.pos)
            end = len(r.data) if end < 0 else end + 1
            domain = r.data[r.pos : end]
            r.pos = end
        else:
            domain = _dot_words(r)
    return (local or None), (domain or None)


def _dot_words(r: _Reader) -> bytes:
    out = bytearray()
    while True:
        r.skip_lwsp()
        c = r.peek()
        if c == 0x22:
            out += r.quoted()
        else:
            w = r.atom_8bit(_SPECIALS)
            if not w:
                break
            out += w
        r.skip_lwsp()
        if r.peek() == 0x2E:
            r.pos += 1
            out += b"."
        else:
            break
    return bytes(out)


def _angle_addr(r: _Reader) -> tuple[bytes | None, bytes | None, bytes | None]:
    r.skip_lwsp()
    route = None
    if r.peek() == 0x40:  # obsolete route "@a,@b:"
        colon = r.data.find(b":", r.pos)
        close = r.data.find(b">", r.pos)
        if colon >= 0 and (close < 0 or colon < close):
            route = re.sub(rb"\s+", b"", r.data[r.pos : colon])
            r.pos = colon + 1
    mailbox, domain = _addr_spec(r)
    r.skip_lwsp()
    if r.peek() == 0x3E:
        r.pos += 1
    else:  # skip to the closing ">" of a broken address
        close = r.data.find(b">", r.pos)
        r.pos = len(r.data) if close < 0 else close + 1
    return route, mailbox or _MISSING.mailbox, domain or _MISSING.domain


def _address_list(values: list[bytes]) -> bytes:
    """The IMAP address list of every instance of one header (Dovecot appends repeated ones)."""
    addrs = [a for v in values for a in _parse_addresses(v)]
    if not addrs:
        return b"NIL"
    out = [b"("]
    for a in addrs:
        name = b"NIL" if a.name is None else string_for_humans(a.name)
        out.append(b"(" + b" ".join((name, nstring(a.route), nstring(a.mailbox), nstring(a.domain))) + b")")
    out.append(b")")
    return b"".join(out)


# ------------------------------------------------------------------------------------------------
# The MIME tree over the raw bytes
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Part:
    """One MIME entity; all offsets index the message's raw bytes."""

    start: int  # first byte of the entity's header
    body_start: int  # first byte after the empty line that ends the header
    end: int  # end of the body (exclusive): before the line break preceding a boundary
    fields: list[HeaderField]
    # End of the header as BODY[n.MIME] shows it: body_start, except when a boundary follows the
    # empty line at once; then Dovecot gives that line break to the boundary, not the header.
    header_end: int = -1
    ctype: bytes | None = None  # type as written ("TEXT"), None when there is no Content-Type
    subtype: bytes = b""
    params: list[tuple[bytes, bytes]] = field(default_factory=list)
    multipart: bool = False
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the embedded message of a message/rfc822 part
    is_rfc822: bool = False
    mime: bool = False  # Content-* headers count (MIME-Version or Content-Type seen, or in a multipart)

    def content(self, name: bytes) -> HeaderField | None:
        return _first(self.fields, name) if self.mime else None


# "--" at the start of a line: the only places a boundary can be, found at C speed so a 20 MB
# base64 attachment costs one regex pass, not a Python loop over its lines.
_LINE_DASHES = re.compile(rb"^--", re.MULTILINE)


class _Parser:
    """Recursive descent over the raw bytes, like Dovecot's message parser: every boundary of
    every enclosing multipart is live (innermost first), so a part ends at whichever comes."""

    def __init__(self, raw: bytes):
        self.raw = raw

    def _line_end(self, pos: int) -> int:
        end = self.raw.find(b"\n", pos)
        return len(self.raw) if end < 0 else end + 1

    def _boundary_at(self, pos: int, boundaries: list[bytes]) -> tuple[bytes, bool] | None:
        """(boundary, is_close_delimiter) when the line at ``pos`` is a boundary line."""
        raw = self.raw
        if not raw.startswith(b"--", pos):
            return None
        for b in boundaries:  # innermost first, prefix match, like Dovecot's boundary_find
            if raw.startswith(b, pos + 2):
                return b, raw[pos + 2 + len(b) : pos + 4 + len(b)] == b"--"
        return None

    def _scan(self, pos: int, boundaries: list[bytes]) -> int | None:
        """Start of the first boundary line at or after line start ``pos``, else None."""
        if not boundaries:
            return None
        for m in _LINE_DASHES.finditer(self.raw, pos):
            if self._boundary_at(m.start(), boundaries):
                return m.start()
        return None

    def _end_before(self, hit: int | None, floor: int) -> int:
        if hit is None:
            return len(self.raw)
        pos = hit
        # the line break before a boundary belongs to the boundary (RFC 2046 §5.1.1)
        if self.raw[pos - 2 : pos] == b"\r\n":
            pos -= 2
        elif self.raw[pos - 1 : pos] == b"\n":
            pos -= 1
        return max(pos, floor)

    def parse(
        self, pos: int, boundaries: list[bytes], *, digest_child: bool, root: bool, depth: int = 0
    ) -> tuple[Part, int | None]:
        """Parse the entity starting at ``pos``; returns it and the boundary line that ended it."""
        raw = self.raw
        stop = None  # a boundary line met inside the header
        blank = None  # start of the empty line ending the header
        line = pos
        while line < len(raw):
            end = self._line_end(line)
            if end - line <= 2 and raw[line:end] in (b"\r\n", b"\n"):
                blank = line
                break
            if boundaries and self._boundary_at(line, boundaries):
                stop = line
                break
            line = end
        if blank is not None:
            body_start = self._line_end(blank)
            fields = _parse_fields(raw[pos:blank])
        else:
            body_start = len(raw) if stop is None else stop
            fields = _parse_fields(raw[pos:body_start])
        part = Part(start=pos, body_start=body_start, end=body_start, fields=fields, header_end=body_start)
        ct = _first(fields, b"Content-Type")
        part.mime = not root or ct is not None or _first(fields, b"MIME-Version") is not None
        if ct is not None and part.mime:
            part.ctype, r = _leading_token(ct.value)
            r.skip_lwsp()
            if r.peek() == 0x2F:  # "/"
                r.pos += 1
                r.skip_lwsp()
                part.subtype = r.token(_TSPECIALS)
                part.params = _parse_params(r)
        elif digest_child:
            part.is_rfc822 = True  # RFC 2046 §5.1.5: the default in a digest
        if part.ctype is not None:
            kind = part.ctype.lower()
            part.multipart = kind == b"multipart"
            part.is_rfc822 = kind == b"message" and part.subtype.lower() == b"rfc822"
        if depth >= _MAX_DEPTH and (part.multipart or part.is_rfc822):
            part.ctype, part.subtype = b"application", b"octet-stream"
            part.multipart = part.is_rfc822 = False

        if stop is not None:  # the header ran into a boundary: no body
            return part, stop
        own = [v for k, v in part.params if k.lower() == b"boundary"][:1] if part.multipart else []
        if blank is not None and body_start < len(raw):
            first = self._boundary_at(body_start, own + boundaries)
            if first is not None and first[0] not in own:
                part.header_end = blank
        if part.multipart:
            if not own:
                hit = self._scan(body_start, boundaries)
                part.end = self._end_before(hit, body_start)
                return part, hit
            boundary = own[0]
            inner = own + boundaries
            digest = part.subtype.lower() == b"digest"
            hit = self._scan(body_start, inner)
            floor = body_start
            while hit is not None:
                which, closing = self._boundary_at(hit, inner)
                if which != boundary:
                    break  # an outer boundary ends this multipart
                after = self._line_end(hit)
                if closing:
                    # The epilogue runs to an outer boundary. The close-delimiter line keeps its
                    # own line break: an outer boundary right after it has none to take (Dovecot).
                    floor = after
                    hit = self._scan(after, boundaries)
                    break
                child, hit = self.parse(after, inner, digest_child=digest, root=False, depth=depth + 1)
                part.children.append(child)
            part.end = self._end_before(hit, floor)
            return part, hit
        if part.is_rfc822:
            embedded, hit = self.parse(body_start, boundaries, digest_child=False, root=True, depth=depth + 1)
            part.message = embedded
            part.end = self._end_before(hit, body_start)
            return part, hit
        hit = self._scan(body_start, boundaries)
        part.end = self._end_before(hit, body_start)
        return part, hit


@lru_cache(maxsize=_CACHE_SIZE)
def parse(raw: bytes) -> Part:
    """The MIME tree of a message (cached per bytes object; bytes cache their hash)."""
    root, _ = _Parser(raw).parse(0, [], digest_child=False, root=True)
    return root


# ------------------------------------------------------------------------------------------------
# ENVELOPE and BODYSTRUCTURE
# ------------------------------------------------------------------------------------------------


def _envelope_of(part: Part) -> bytes:
    # A repeated header: the last Date/Subject/Message-ID/In-Reply-To wins, address headers add
    # up (From: a + From: b gives both), as Dovecot's envelope parser does.
    def value(name: bytes) -> bytes | None:
        found = [f for f in part.fields if f.name.lower() == name.lower()]
        return _strdup(found[-1].value) if found else None

    def addresses(name: bytes) -> list[bytes]:
        return [f.value for f in part.fields if f.name.lower() == name.lower()]

    subject = value(b"Subject")
    frm = _address_list(addresses(b"From"))
    sender = _address_list(addresses(b"Sender"))
    reply_to = _address_list(addresses(b"Reply-To"))
    items = [
        nstring_nolf(value(b"Date")),
        b"NIL" if subject is None else string_for_humans(subject),
        frm,
        frm if sender == b"NIL" else sender,  # RFC 3501: default to From
        frm if reply_to == b"NIL" else reply_to,
        _address_list(addresses(b"To")),
        _address_list(addresses(b"Cc")),
        _address_list(addresses(b"Bcc")),
        nstring_nolf(value(b"In-Reply-To")),
        nstring_nolf(value(b"Message-ID")),
    ]
    return b"(" + b" ".join(items) + b")"


def envelope(raw: bytes) -> bytes:
    """The ENVELOPE of a message, serialised: ``b'("date" "subject" ((from)) ...)'``."""
    return _envelope_of(parse(raw))


_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'


def _params(params: list[tuple[bytes, bytes]], *, default_charset: bool) -> bytes:
    if not params and not default_charset:
        return b"NIL"
    items = [nstring(k) + b" " + nstring(v) for k, v in params]
    if default_charset and not any(k.lower() == b"charset" for k, _ in params):
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")"


def _extension_common(part: Part) -> bytes:
    disp = part.content(b"Content-Disposition")
    disposition = b"NIL"
    if disp is not None:
        token, r = _leading_token(disp.value)
        if token:
            disposition = b"(" + nstring(token) + b" " + _params(_parse_params(r), default_charset=False) + b")"
    lang = part.content(b"Content-Language")
    language = b"NIL"
    if lang is not None:
        r = _Reader(lang.value)
        tags = []
        r.skip_lwsp()
        while True:
            tag = r.token(_SPECIALS)
            if not tag:
                break
            tags.append(nstring(tag))
            r.skip_lwsp()
            if r.peek() != 0x2C:
                break
            r.pos += 1
            r.skip_lwsp()
        if tags:
            language = b"(" + b" ".join(tags) + b")"
    loc = part.content(b"Content-Location")
    location = nstring_nolf(None if loc is None else _strdup(loc.value))
    return b" " + disposition + b" " + language + b" " + location


def _structure(raw: bytes, part: Part, extended: bool) -> bytes:
    if part.multipart:
        if part.children:
            kids = b"".join(_structure(raw, c, extended) for c in part.children)
        else:  # a multipart without parts is not allowed: Dovecot shows one empty text/plain
            kids = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        out = kids + b" " + nstring(part.subtype)
        if extended:
            out += b" " + _params(part.params, default_charset=False) + _extension_common(part)
        return b"(" + out + b")"

    if part.is_rfc822:
        head = b'"message" "rfc822"'
        text = False
    elif part.ctype is None:
        head, text = b'"text" "plain"', True
    else:
        head = nstring(part.ctype) + b" " + nstring(part.subtype)
        text = part.ctype.lower() == b"text"

    def opt(name: bytes) -> bytes | None:
        f = part.content(name)
        return None if f is None else _strdup(f.value)

    cte = part.content(b"Content-Transfer-Encoding")
    encoding = b'"7bit"'
    if cte is not None:
        token, r = _leading_token(cte.value)
        r.skip_lwsp()
        if token and r.peek() is None:
            encoding = nstring(token)
    size = str(part.end - part.body_start).encode()
    lines = str(raw.count(b"\n", part.body_start, part.end)).encode()
    items = [
        head,
        _params(part.params, default_charset=text),
        nstring_nolf(opt(b"Content-ID")),
        nstring_nolf(opt(b"Content-Description")),
        encoding,
        size,
    ]
    if text:
        items.append(lines)
    elif part.is_rfc822 and part.message is not None:
        items.append(_envelope_of(part.message))
        items.append(_structure(raw, part.message, extended))
        items.append(lines)
    out = b" ".join(items)
    if extended:
        out += b" " + nstring_nolf(opt(b"Content-MD5")) + _extension_common(part)
    return b"(" + out + b")"


def bodystructure(raw: bytes, *, extended: bool = True) -> bytes:
    """BODYSTRUCTURE (``extended=True``) or BODY (``False``) of a message, serialised."""
    return _structure(raw, parse(raw), extended)


# ------------------------------------------------------------------------------------------------
# BODY[section]
# ------------------------------------------------------------------------------------------------

_TEXT_SPECIFIERS = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


def locate(root: Part, path: tuple[int, ...]) -> Part | None:
    """The part at a section path like (1, 2), or None when it does not exist.

    Dovecot's rules (checked against 2.3.19): in a multipart, n picks the n-th child; a
    non-multipart entity only has part 1, which is the entity itself, and a path may continue
    past it only into a message/rfc822 part, whose further numbers address the embedded message.
    So BODY[1] of a single-part message is its body, BODY[1.1] of it does not exist, and
    BODY[2.1] of a forwarded message/rfc822 part 2 is the first part of the forwarded message.
    """
    part: Part | None = root
    for i, n in enumerate(path):
        more = i + 1 < len(path)
        if part.multipart:
            part = part.children[n - 1] if 1 <= n <= len(part.children) else None
        elif n != 1 or (more and not part.is_rfc822):
            part = None
        if part is None:
            return None
        if more and part.is_rfc822 and part.message is not None:
            part = part.message
    return part


def _header_end_eol(raw: bytes, part: Part) -> bytes:
    """The empty line that ends a header, as written; b"" when the header has none."""
    header = raw[part.start : part.body_start]
    for eol in (b"\r\n", b"\n"):
        if header == eol or header.endswith(b"\n" + eol):
            return eol
    return b""


def body_section(
    raw: bytes, part: tuple[int, ...], text: str | None, fields: tuple[str | bytes, ...] = ()
) -> bytes:
    """The bytes of ``BODY[<part>.<text>]`` (partial ``<o.n>`` slicing is the caller's job).

    ``part`` () is the whole message; ``text`` None means the part's content. A nonexistent part
    gives b"" (as Dovecot does). HEADER/TEXT on a part address the message inside a
    message/rfc822 part; on other parts they are empty, like Dovecot.
    """
    spec = None if text is None else text.upper()
    if spec is not None and spec not in _TEXT_SPECIFIERS:
        raise SectionError(f"unknown section text {text!r}")
    if spec == "MIME" and not part:
        raise SectionError("MIME needs a part number (BODY[1.MIME], not BODY[MIME])")
    if spec not in ("HEADER.FIELDS", "HEADER.FIELDS.NOT") and fields:
        raise SectionError(f"header field list given with {text!r}")
    root = parse(raw)
    target = locate(root, part) if part else root
    if target is None:
        return b""
    if spec is None:
        return raw if not part else raw[target.body_start : target.end]
    if spec == "MIME":
        return raw[target.start : target.header_end]
    if part:  # HEADER/TEXT of a part: the embedded message of a message/rfc822 part
        if not target.is_rfc822 or target.message is None:
            return b""
        target = target.message
    if spec == "TEXT":
        return raw[target.body_start : target.end]
    if spec == "HEADER":
        return raw[target.start : target.body_start]
    wanted = {(f.encode("ascii", "replace") if isinstance(f, str) else bytes(f)).lower() for f in fields}
    keep = spec == "HEADER.FIELDS"
    chosen = [f.raw for f in target.fields if (f.name.lower() in wanted) == keep]
    # Dovecot ends HEADER.FIELDS with an empty line even when the header had none, but
    # HEADER.FIELDS.NOT only when it had one.
    eol = _header_end_eol(raw, target) or (b"\r\n" if keep else b"")
    return b"".join(chosen) + eol


# ------------------------------------------------------------------------------------------------
# Decoded views for SEARCH
# ------------------------------------------------------------------------------------------------


def _decode_words(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text.replace("\n", ""))))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        # a broken encoded word (bad charset name, stray bytes): search the text as written
        return text


def header_values(raw: bytes, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), unfolded and RFC 2047-decoded."""
    lname = name.lower().encode("ascii", "replace")
    return [_decode_words(f.value) for f in parse(raw).fields if f.name.lower() == lname]


def _charset_of(part: Part) -> str:
    for k, v in part.params:
        if k.lower() == b"charset":
            return v.decode("ascii", "replace").strip() or "us-ascii"
    return "us-ascii"


def _decoded_content(raw: bytes, part: Part) -> str:
    body = raw[part.body_start : part.end]
    cte = part.content(b"Content-Transfer-Encoding")
    encoding = cte.value.strip().lower() if cte is not None else b""
    if encoding == b"base64":
        try:
            body = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body) + b"==", validate=False)
        except (binascii.Error, ValueError):
            pass
    elif encoding == b"quoted-printable":
        body = quopri.decodestring(body)
    try:
        return body.decode(_charset_of(part), "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def body_text(raw: bytes) -> str:
    """SEARCH BODY's haystack: the decoded text/* (and untyped) leaf parts, those of embedded
    messages included; no header at all (Dovecot skips embedded messages' headers too)."""
    return _search_text(raw, False)


def full_text(raw: bytes) -> str:
    """SEARCH TEXT's haystack: body_text plus every header, MIME part headers included."""
    return _search_text(raw, True)


def _fields_text(part: Part) -> str:
    return "\n".join(f"{f.name.decode('latin-1')}: {_decode_words(f.value)}" for f in part.fields)


@lru_cache(maxsize=_TEXT_CACHE_SIZE)
def _search_text(raw: bytes, with_headers: bool) -> str:
    out: list[str] = []

    def walk(part: Part) -> None:
        if with_headers:
            out.append(_fields_text(part))
        if part.multipart:
            for c in part.children:
                walk(c)
        elif part.is_rfc822 and part.message is not None:
            walk(part.message)
        elif part.ctype is None or part.ctype.lower() == b"text":
            out.append(_decoded_content(raw, part))

    walk(parse(raw))
    return "\n".join(out)


def sent_date(raw: bytes) -> datetime | None:
    """The Date header as an aware datetime, or None when missing or unparseable."""
    for value in header_values(raw, "Date"):
        try:
            parsed = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):  # Overflow: day 4294967295
            return None
        # No zone (or "-0000") parses naive: RFC 5322 says no zone information, read as UTC.
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    return None
