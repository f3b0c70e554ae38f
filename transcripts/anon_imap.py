"""IMAP session anonymiser: each side's joined stream in, the same number of bytes out.

The stream is read as IMAP is framed (lines, quoted strings, ``{N}`` literals, parenthesised
lists), and each value is rewritten by what it is where it stands: a mailbox argument or a LIST
reply's name is a folder (modified UTF-7 or raw UTF-8), a LOGIN user a login, SEARCH FROM's
argument an address, an APPEND literal or a FETCH BODY[] a message, an ENVELOPE's fields addresses
and a subject, BODYSTRUCTURE's ``name``/``filename`` attachment names. Tags, commands, flags, UIDs,
sizes, dates, response codes and the server's prose (bar names it mentions) stay. A literal's
bytes keep their count, so ``{N}`` stays true; a literal cut short (``bye-mid-fetch``) is
rewritten as far as it goes.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from imapclient import imap_utf7

from transcripts import anon_message, anon_text
from transcripts.pseudonyms import Pseudonyms

_ATOM_END = frozenset(b' ()"{\r\n')
_LITERAL = re.compile(rb"~?\{(\d+)\+?\}\r?\n")
_STATUS = frozenset((b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"))
_MAILBOX_FIRST = frozenset(
    b"SELECT EXAMINE CREATE DELETE SUBSCRIBE UNSUBSCRIBE STATUS APPEND GETQUOTAROOT MYRIGHTS GETACL "
    b"SETACL DELETEACL LISTRIGHTS GETMETADATA SETMETADATA".split()
)
_MAILBOX_LAST = frozenset(b"COPY MOVE".split())
_SEARCH_TEXT = frozenset(b"FROM TO CC BCC SUBJECT BODY TEXT".split())
_SEARCH_WHO = frozenset(b"FROM TO CC BCC".split())


@dataclass
class Tok:
    kind: str  # atom | str | lit | list
    start: int  # content span (for a list: the parentheses included)
    end: int
    items: list[Tok] = field(default_factory=list)

    def value(self, data: bytes) -> bytes:
        return data[self.start:self.end]

    def is_string(self) -> bool:
        return self.kind in ("str", "lit")


class _Stream:
    """One side's bytes and the output being written over them (same length, same places)."""

    def __init__(self, p: Pseudonyms, data: bytes) -> None:
        self.p, self.data, self.out = p, data, bytearray(data)

    def put(self, tok: Tok, new: bytes) -> None:
        old = self.data[tok.start:tok.end]
        self.out[tok.start:tok.end] = anon_text.same_length(old, new, f"IMAP value at byte {tok.start}")

    def rewrite(self, tok: Tok | None, how) -> None:
        if tok is None or tok.kind == "list" or (tok.kind == "atom" and tok.value(self.data).upper() == b"NIL"):
            return
        self.put(tok, how(tok.value(self.data)))

    # framing -------------------------------------------------------------------------------------

    def line_end(self, pos: int) -> int:
        end = self.data.find(b"\n", pos)
        return len(self.data) if end < 0 else end + 1

    def tokens(self, pos: int) -> tuple[list[Tok], int]:
        """The tokens up to the end of this line (literals included), and where the next line starts."""
        stack: list[list[Tok]] = [[]]
        opens: list[int] = []
        data, n = self.data, len(self.data)
        while pos < n:
            c = data[pos]
            if c == 0x20:
                pos += 1
            elif c in (0x0D, 0x0A):
                pos = self.line_end(pos)
                break
            elif c == 0x28:  # (
                stack.append([])
                opens.append(pos)
                pos += 1
            elif c == 0x29:  # )
                pos += 1
                if len(stack) > 1:
                    items = stack.pop()
                    stack[-1].append(Tok("list", opens.pop(), pos, items))
            elif c == 0x22:  # "
                start = pos + 1
                pos = start
                while pos < n and data[pos] not in (0x22, 0x0D, 0x0A):
                    pos += 2 if data[pos] == 0x5C else 1
                stack[-1].append(Tok("str", start, min(pos, n)))
                pos += 1 if pos < n and data[pos] == 0x22 else 0
            elif (lit := _LITERAL.match(data, pos)) is not None:
                start = lit.end()
                end = min(n, start + int(lit[1]))
                stack[-1].append(Tok("lit", start, end))
                pos = end
            else:
                start = pos
                depth = 0
                while pos < n and (depth or data[pos] not in _ATOM_END):
                    if data[pos] == 0x5B:  # [ ... ] with spaces and lists inside: one atom
                        depth += 1
                    elif data[pos] == 0x5D and depth:
                        depth -= 1
                    elif data[pos] in (0x0D, 0x0A):
                        break
                    pos += 1
                if pos == start:  # a lone { that is not a literal
                    pos += 1
                stack[-1].append(Tok("atom", start, pos))
        while len(stack) > 1:  # an unclosed list (a cut-off reply): keep what it had
            items = stack.pop()
            stack[-1].append(Tok("list", opens.pop(), pos, items))
        return stack[0], pos

    def first_atom(self, pos: int) -> tuple[bytes, int]:
        end = pos
        while end < len(self.data) and self.data[end] not in (0x20, 0x0D, 0x0A):
            end += 1
        return self.data[pos:end], end + (1 if end < len(self.data) and self.data[end] == 0x20 else 0)


# values --------------------------------------------------------------------------------------------


def folder(p: Pseudonyms, raw: bytes) -> bytes:
    """A wire mailbox name: modified UTF-7 when it is ASCII with ``&``, raw UTF-8 otherwise."""
    if raw.isascii() and b"&" in raw:
        try:
            new = imap_utf7.encode(p.folder_text(imap_utf7.decode(raw)))
            if len(new) == len(raw):
                return new
        except (ValueError, UnicodeError):
            pass
    return p.folder_text(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def sasl(p: Pseudonyms, mech: bytes, raw: bytes, step: int) -> bytes:
    """A SASL client response (base64): the user rewritten, the password or token masked."""
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw  # already masked by the recorder, or "*" (cancel), or "=" (empty)
    mech = mech.upper()
    if mech == b"PLAIN":
        parts = decoded.split(b"\x00")
        new = b"\x00".join(p.login(x) if i < len(parts) - 1 and x else p.mask(x) for i, x in enumerate(parts))
    elif mech == b"LOGIN":
        new = p.login(decoded) if step == 0 else p.mask(decoded)
    elif mech in (b"XOAUTH2", b"OAUTHBEARER"):
        new = re.sub(rb"(user=|a=)([^\x01,]*)", lambda m: m[1] + p.login(m[2]), decoded)
        new = re.sub(rb"(auth=\w+ )([^\x01]*)", lambda m: m[1] + p.mask(m[2]), new)
    else:
        new = p.mask(decoded)
    out = base64.b64encode(new)
    return out if len(out) == len(raw) else raw


def response_text(s: _Stream, start: int, end: int) -> None:
    """``[CODE args] prose``: the code stays, the prose loses known names and addresses."""
    data = s.data
    at = start
    if data[at:at + 1] == b"[":
        close = data.find(b"]", at, end)
        at = end if close < 0 else close + 1
    s.out[at:end] = anon_text.known(s.p, data[at:end])


# the client ----------------------------------------------------------------------------------------


def client(p: Pseudonyms, data: bytes) -> bytes:
    s = _Stream(p, data)
    pos, sasl_mech, sasl_step = 0, b"", 0
    while pos < len(data):
        end = s.line_end(pos)
        line = data[pos:end].rstrip(b"\r\n")
        if sasl_mech and line and b" " not in line and line.upper() != b"DONE":
            s.out[pos:pos + len(line)] = sasl(p, sasl_mech, line, sasl_step)
            sasl_step += 1
            pos = end
            continue
        tag, at = s.first_atom(pos)
        command, at2 = s.first_atom(at)
        cmd = command.upper()
        if cmd == b"UID":
            command, at2 = s.first_atom(at2)
            cmd = command.upper()
        args, pos = s.tokens(at2)
        sasl_mech = b""
        if cmd == b"AUTHENTICATE" and args:
            sasl_mech, sasl_step = args[0].value(data), 0
            if len(args) > 1:
                s.put(args[1], sasl(p, sasl_mech, args[1].value(data), 0))
                sasl_step = 1
        else:
            _command(s, cmd, args)
    return bytes(s.out)


def _command(s: _Stream, cmd: bytes, args: list[Tok]) -> None:
    p, data = s.p, s.data
    if cmd == b"LOGIN" and args:
        s.rewrite(args[0], p.login)
        if len(args) > 1:
            s.rewrite(args[1], p.mask)
    elif cmd == b"RENAME":
        for tok in args[:2]:
            s.rewrite(tok, lambda v: folder(p, v))
    elif cmd in (b"LIST", b"LSUB", b"XLIST"):
        for tok in args:
            if tok.kind != "list" and tok.value(data).upper() != b"RETURN":
                s.rewrite(tok, lambda v: folder(p, v))
    elif cmd in _MAILBOX_FIRST and args:
        s.rewrite(args[0], lambda v: folder(p, v))
        if cmd == b"APPEND":
            for tok in args[1:]:
                if tok.kind == "lit":
                    s.rewrite(tok, lambda v: anon_message.message(p, v))
        elif cmd == b"SETACL" and len(args) > 1:
            s.rewrite(args[1], p.login)
        elif cmd == b"SETMETADATA":
            _strings(s, args[1:])
    elif cmd in _MAILBOX_LAST and args:
        s.rewrite(args[-1], lambda v: folder(p, v))
    elif cmd in (b"SEARCH", b"SORT", b"THREAD"):
        _search(s, args)
    elif cmd == b"STORE":
        for i, tok in enumerate(args):
            if tok.kind != "list" and b"X-GM-LABELS" in tok.value(data).upper() and i + 1 < len(args):
                _labels(s, args[i + 1])
    elif cmd not in (b"ID", b"FETCH", b"ENABLE", b"CAPABILITY"):
        _strings(s, args)


def _search(s: _Stream, args: list[Tok]) -> None:
    p, data = s.p, s.data
    flat = _flatten(args)
    for i, tok in enumerate(flat):
        key = tok.value(data).upper() if tok.kind == "atom" else b""
        nxt = flat[i + 1] if i + 1 < len(flat) else None
        if key in _SEARCH_TEXT:
            s.rewrite(nxt, lambda v, who=key in _SEARCH_WHO: anon_text.text(p, v, keep8bit=True, identity=who))
        elif key == b"HEADER" and i + 2 < len(flat):
            s.rewrite(flat[i + 2], lambda v: anon_text.header_text(p, v))
        elif key == b"X-GM-RAW":
            s.rewrite(nxt, lambda v: re.sub(rb"[^\s:()]+(?=[\s)]|$)", lambda m: anon_text.text(p, m[0]), v))


def _flatten(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    for tok in toks:
        out.extend(_flatten(tok.items) if tok.kind == "list" else [tok])
    return out


def _strings(s: _Stream, toks: list[Tok]) -> None:
    for tok in _flatten(toks):
        if tok.is_string():
            s.rewrite(tok, lambda v: anon_text.text(s.p, v, keep8bit=True))


def _labels(s: _Stream, tok: Tok) -> None:
    for label in tok.items if tok.kind == "list" else [tok]:
        if not label.value(s.data).startswith(b"\\"):
            s.rewrite(label, lambda v: folder(s.p, v))


# the server ----------------------------------------------------------------------------------------


def server(p: Pseudonyms, data: bytes) -> bytes:
    s = _Stream(p, data)
    pos = 0
    while pos < len(data):
        pos = _server_line(s, pos)
    return bytes(s.out)


def _server_line(s: _Stream, pos: int) -> int:
    data = s.data
    tag, at = s.first_atom(pos)
    if tag == b"+":
        end = s.line_end(pos)
        body = data[at:end].rstrip(b"\r\n")
        if b" " in body:  # prose ("Ready for literal data"), not a base64 challenge
            response_text(s, at, at + len(body))
        return end
    word, at2 = s.first_atom(at)
    if tag == b"*" and word.isdigit():
        word, at2 = s.first_atom(at2)
    kind = word.upper()
    if kind in _STATUS:
        end = s.line_end(pos)
        response_text(s, at2, at2 + len(data[at2:end].rstrip(b"\r\n")))
        return end
    toks, nxt = s.tokens(at2)
    if tag != b"*":
        return nxt  # a tagged reply without a status word: nothing to read in it
    if kind == b"FETCH" and toks and toks[0].kind == "list":
        _fetch(s, toks[0].items)
    elif kind in (b"LIST", b"LSUB", b"XLIST") and len(toks) >= 3:
        s.rewrite(toks[2], lambda v: folder(s.p, v))
        for ext in toks[3:]:
            _old_names(s, ext)
    elif kind in (b"STATUS", b"QUOTAROOT", b"MYRIGHTS", b"ACL", b"LISTRIGHTS", b"METADATA") and toks:
        s.rewrite(toks[0], lambda v: folder(s.p, v))
        if kind == b"ACL":
            for tok in toks[1::2]:
                s.rewrite(tok, s.p.login)
        elif kind == b"METADATA":
            _strings(s, toks[1:])
    elif kind == b"NAMESPACE":
        for tok in _flatten(toks):
            if tok.is_string() and len(tok.value(data)) > 1:
                s.rewrite(tok, lambda v: folder(s.p, v))
    elif kind not in (b"CAPABILITY", b"FLAGS", b"SEARCH", b"ESEARCH", b"ENABLED", b"ID", b"EXISTS", b"RECENT",
                      b"EXPUNGE", b"VANISHED", b"QUOTA", b"SORT", b"THREAD"):
        _strings(s, toks)
    return nxt


def _old_names(s: _Stream, tok: Tok) -> None:
    """LIST-EXTENDED ``("OLDNAME" ("old/name"))``: the old name is a folder too."""
    items = tok.items
    for i, item in enumerate(items[:-1]):
        if item.is_string() and item.value(s.data).upper() == b"OLDNAME":
            for name in _flatten([items[i + 1]]):
                s.rewrite(name, lambda v: folder(s.p, v))


def _fetch(s: _Stream, items: list[Tok]) -> None:
    p, data = s.p, s.data
    for name_tok, value in zip(items[0::2], items[1::2]):
        name = name_tok.value(data).upper()
        if name == b"ENVELOPE" and value.kind == "list":
            _envelope(s, value.items)
        elif name in (b"BODYSTRUCTURE", b"BODY") and value.kind == "list":
            _bodystructure(s, value.items)
        elif name == b"X-GM-LABELS":
            _labels(s, value)
        elif value.is_string() and name.startswith((b"BODY[", b"BODY.PEEK[", b"BINARY[", b"BINARY.PEEK[", b"RFC822")):
            s.rewrite(value, lambda v, n=name: _section(p, n, v))


def _section(p: Pseudonyms, name: bytes, content: bytes) -> bytes:
    if name.startswith(b"RFC822"):
        kind = {b"RFC822": b"", b"RFC822.HEADER": b"HEADER", b"RFC822.TEXT": b"TEXT"}.get(name, b"")
        origin = b""
    else:
        kind = name[name.index(b"[") + 1:name.rindex(b"]")] if b"]" in name else b""
        origin = name[name.rindex(b"]") + 1:] if b"]" in name else b""
    last = kind.split(b" ")[0].split(b".")[-1] if kind else b""
    if name.startswith(b"BINARY"):
        return anon_message.part_content(p, content)
    if not kind and origin in (b"", b"<0>"):
        return anon_message.message(p, content)
    if last.startswith(b"HEADER") or last == b"MIME" or b"HEADER" in kind.split(b" ")[0]:
        return anon_message.header_block(p, content)
    return anon_message.body_only(p, content)


def _envelope(s: _Stream, items: list[Tok]) -> None:
    p = s.p
    if len(items) < 10:
        _strings(s, items[1:])
        return
    s.rewrite(items[1], lambda v: anon_message.subject(p, v))
    for address_list in items[2:8]:
        for address in address_list.items if address_list.kind == "list" else []:
            _address(s, address)
    for tok in items[8:10]:
        s.rewrite(tok, lambda v: anon_text.header_text(p, v))


def _address(s: _Stream, address: Tok) -> None:
    """``(name adl mailbox host)``: the same pseudonyms as the header's ``name <mailbox@host>``."""
    p, fields = s.p, address.items
    if address.kind != "list" or len(fields) != 4:
        _strings(s, [address])
        return
    s.rewrite(fields[0], lambda v: anon_text.header_text(p, v, identity=True))
    s.rewrite(fields[1], lambda v: anon_text.text(p, v))
    s.rewrite(fields[2], p.local)
    s.rewrite(fields[3], p.domain)


_MIME_WORDS = frozenset(
    b"text plain html multipart mixed alternative related signed encrypted report digest parallel message rfc822 "
    b"global delivery-status application image audio video octet-stream pdf charset boundary utf-8 us-ascii "
    b"iso-8859-1 iso-8859-15 windows-1252 base64 quoted-printable 7bit 8bit binary attachment inline format "
    b"flowed delsp yes no name filename".split()
)


def _bodystructure(s: _Stream, items: list[Tok]) -> None:
    """A body: ``(part part ... "subtype" ext)`` or ``("type" "subtype" (params) id desc enc size ...)``."""
    p, data = s.p, s.data
    if items and items[0].kind == "list":
        at = 0
        while at < len(items) and items[at].kind == "list":
            _bodystructure(s, items[at].items)
            at += 1
        rest = items[at + 1:]  # after the subtype: params, disposition, language, location
        if rest:
            _params(s, rest[0])
        if len(rest) > 1:
            _disposition(s, rest[1])
        return
    if len(items) < 7:
        _fallback(s, items)
        return
    _params(s, items[2])
    s.rewrite(items[3], lambda v: anon_text.header_text(p, v))  # Content-ID (consistent with the header)
    s.rewrite(items[4], lambda v: anon_text.header_text(p, v))  # Content-Description
    kind = (items[0].value(data) + b"/" + items[1].value(data)).lower()
    ext = 7
    if kind.startswith(b"text/"):
        ext = 8
    elif kind in (b"message/rfc822", b"message/global") and len(items) >= 10:
        if items[7].kind == "list":
            _envelope(s, items[7].items)
        if items[8].kind == "list":
            _bodystructure(s, items[8].items)
        ext = 10
    rest = items[ext:]  # md5, disposition, language, location
    if len(rest) > 1:
        _disposition(s, rest[1])
    if len(rest) > 3:
        s.rewrite(rest[3], lambda v: anon_text.text(p, v))


def _params(s: _Stream, tok: Tok) -> None:
    if tok.kind != "list":
        return
    for name, value in zip(tok.items[0::2], tok.items[1::2]):
        if anon_message.NAME_PARAMS.match(name.value(s.data)):
            s.rewrite(value, lambda v: anon_message.filename(s.p, v))


def _disposition(s: _Stream, tok: Tok) -> None:
    if tok.kind == "list" and len(tok.items) >= 2:
        _params(s, tok.items[1])


def _fallback(s: _Stream, items: list[Tok]) -> None:
    """A BODYSTRUCTURE that is not shaped as RFC 3501 says (malformed-responses): MIME words stay."""
    for tok in _flatten(items):
        if tok.is_string() and tok.value(s.data).lower() not in _MIME_WORDS:
            s.rewrite(tok, lambda v: anon_text.text(s.p, v))


def session(p: Pseudonyms, client_data: bytes, server_data: bytes) -> tuple[bytes, bytes]:
    """Both sides of one IMAP session (each side's framing says all it needs)."""
    return client(p, client_data), server(p, server_data)
