"""The message anonymiser: RFC 5322 / MIME bytes in, the same number of bytes out, same tree.

Works on the raw bytes, never through a parser that re-serialises, so every quirk a migration
trips over stays in place: CRLF or bare LF line ends, NUL bytes, over-long lines, raw 8-bit header
fields, broken base64, a missing blank line, a truncated message (a partial FETCH, a BYE mid-
literal, a POP3 TOP). Kept: header names, dates (Date, Received's date: the evidence of date bugs),
MIME structure, boundaries, Content-Type and Content-Transfer-Encoding values, charset and other
parameters; rewritten: addresses, display names, subjects (not their ``Re:``), Message-IDs
(consistently, so threads and duplicate Message-IDs stay what they were), bodies, attachment names
(not their extension) and contents (random bytes of the same size, same base64 line layout).
"""

from __future__ import annotations

import re

from transcripts import anon_markup, anon_text
from transcripts.pseudonyms import Pseudonyms

_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)([ \t]*:)")
_BOUNDARY_LINE = re.compile(rb"^--([^\s]{1,200}?)(--)?[ \t]*\r?$", re.M)
_B64_BODY = re.compile(rb"[A-Za-z0-9+/=\r\n]+")
_REPLY_PREFIX = re.compile(rb"(?:[ \t]*(?:re|fwd?|aw|wg|sv|vs|tr|antw|rif|r)(?:\[\d+\])?[ \t]*:)+", re.I)
_PARAM = re.compile(rb"""(;\s*)([\w*.-]+)(\s*=\s*)("(?:[^"\\]|\\.)*"|[^;\s]*)""")
_EXTENSION = re.compile(rb"\.[A-Za-z0-9]{1,5}$")

KEEP_FIELDS = frozenset(
    b"date resent-date delivery-date expires mime-version content-transfer-encoding content-length lines "
    b"status x-status x-keywords x-uid x-mailer user-agent x-priority priority importance precedence "
    b"auto-submitted x-gm-thrid x-gm-msgid x-gm-labels content-language x-ms-has-attach "
    b"x-ms-tnef-correlator x-auto-response-suppress".split()
)
ADDRESS_FIELDS = frozenset(
    b"from to cc bcc reply-to sender return-path delivered-to x-original-to envelope-to resent-from resent-to "
    b"resent-cc resent-bcc resent-sender disposition-notification-to return-receipt-to errors-to "
    b"x-envelope-from x-envelope-to".split()
)
# Words of a Received clause that say how, not who.
_RECEIVED_KEEP = frozenset("from by with id for via esmtp esmtps esmtpsa esmtpa smtp lmtp lmtps http https "
                           "local utf8smtp utf8smtps tls ssl cipher version bits".split())
# Content-Type / Content-Disposition parameters whose value is structure, not content.
NAME_PARAMS = re.compile(rb"(file)?name\*?(\d+\*?)?$", re.I)
_TEXT_TYPES = (b"text/",)


class Entity:
    """Where one MIME entity's header and body lie in the bytes, and what the header says."""

    def __init__(self, data: bytes, *, headerless: bool = False) -> None:
        self.data = data
        self.fields: list[tuple[int, int, bytes]] = []  # start, end, lower-case name
        self.body_at = 0 if headerless else self._scan()

    def _scan(self) -> int:
        at = 0
        for m in _LINE.finditer(self.data):
            line = m[0]
            if line in (b"\n", b"\r\n") or line == b"\r":
                return m.end()
            if line[:1] in (b" ", b"\t") and self.fields:
                start, _, name = self.fields[-1]
                self.fields[-1] = (start, m.end(), name)
            else:
                field = _FIELD.match(line)
                if not field and self.fields:
                    return at  # not a header line: the body starts without a blank line
                name = field[1].lower() if field else b""
                self.fields.append((m.start(), m.end(), name))
            at = m.end()
        return len(self.data)  # headers only (BODY[HEADER], a truncated message)

    def get(self, name: bytes) -> bytes:
        for start, end, field in self.fields:
            if field == name:
                return self.data[start:end].split(b":", 1)[1]
        return b""

    def content_type(self) -> tuple[bytes, dict[bytes, bytes]]:
        value = self.get(b"content-type")
        main = value.split(b";", 1)[0].strip().lower() or b"text/plain"
        params = {m[2].lower(): m[4].strip(b'"') for m in _PARAM.finditer(value)}
        return main, params

    def encoding(self) -> bytes:
        return self.get(b"content-transfer-encoding").strip().lower()


def message(p: Pseudonyms, data: bytes) -> bytes:
    """A whole message (or entity), headers and body."""
    return anon_text.same_length(data, _entity(p, Entity(data)), "message")


def header_block(p: Pseudonyms, data: bytes) -> bytes:
    """A header block alone (BODY[HEADER], BODY[HEADER.FIELDS (...)], RFC822.HEADER, n.MIME)."""
    entity = Entity(data)
    return anon_text.same_length(data, _headers(p, entity) + _text_rest(p, data[entity.body_at:]), "header block")


def body_only(p: Pseudonyms, data: bytes) -> bytes:
    """A body without its header (BODY[TEXT], RFC822.TEXT, BODY[1], a part fetched alone).

    Its type is unknown here, so it is guessed: delimiter lines that repeat make it a multipart
    body with that boundary; base64 lines an attachment; anything else text.
    """
    boundaries = [m[1] for m in _BOUNDARY_LINE.finditer(data)]
    for boundary in boundaries:
        if boundaries.count(boundary) >= 2 or data.find(b"--" + boundary + b"--") >= 0:
            return anon_text.same_length(data, _multipart(p, data, boundary), "body")
    if len(data) >= 64 and _B64_BODY.fullmatch(data) and b"\n" in data:
        return anon_text.binary_base64(p, data)
    return anon_text.text(p, data)


def part_content(p: Pseudonyms, data: bytes) -> bytes:
    """A part's content decoded (BINARY[n]): text rewritten, anything else random bytes."""
    if b"\x00" in data or sum(b >= 0x80 for b in data) > len(data) // 4:
        return p.random_bytes(len(data), data)
    return body_only(p, data)


# Headers ------------------------------------------------------------------------------------------


def _entity(p: Pseudonyms, entity: Entity) -> bytes:
    head = _headers(p, entity)
    body = entity.data[entity.body_at:]
    main, params = entity.content_type()
    return head + _body(p, body, main, params, entity.encoding())


def _headers(p: Pseudonyms, entity: Entity) -> bytes:
    out, last = bytearray(), 0
    for start, end, name in entity.fields:
        out += entity.data[last:start] + field(p, entity.data[start:end], name)
        last = end
    return bytes(out) + entity.data[last:entity.body_at]


def field(p: Pseudonyms, raw: bytes, name: bytes) -> bytes:
    """One header field, name and line ends included."""
    m = _FIELD.match(raw)
    if not m:
        return anon_text.text(p, raw, keep8bit=True)
    head, value = raw[:m.end()], raw[m.end():]
    if name in KEEP_FIELDS:
        new = value
    elif name in ADDRESS_FIELDS:
        new = anon_text.header_text(p, value, identity=True)
    elif name in (b"content-type", b"content-disposition"):
        new = parameters(p, value)
    elif name == b"received":
        clause, semi, when = value.rpartition(b";")
        new = anon_text.header_text(p, clause, keep=_RECEIVED_KEEP) + semi + when if semi else \
            anon_text.header_text(p, value, keep=_RECEIVED_KEEP)
    elif name in (b"subject", b"thread-topic"):
        new = subject(p, value)
    else:
        new = anon_text.header_text(p, value)
        if name in (b"message-id", b"in-reply-to", b"references") and new != value:
            p.remember("message_ids", value.strip(), new.strip())
    return head + new


def subject(p: Pseudonyms, value: bytes) -> bytes:
    """``Re: AW: ...``: the reply and forward prefixes stay (threading evidence), the rest goes."""
    lead = len(value) - len(value.lstrip(b" \t"))
    prefix = _REPLY_PREFIX.match(value, lead)
    cut = prefix.end() if prefix else lead
    new = value[:cut] + anon_text.header_text(p, value[cut:])
    p.remember("subjects", value.strip(), new.strip())
    return new


def parameters(p: Pseudonyms, value: bytes) -> bytes:
    """Content-Type / Content-Disposition: the type and every parameter kept but (file)name."""
    return _PARAM.sub(lambda m: m[1] + m[2] + m[3] + (filename(p, m[4]) if NAME_PARAMS.match(m[2]) else m[4]),
                      value)


def filename(p: Pseudonyms, value: bytes) -> bytes:
    """An attachment name in any of its spellings (quoted, RFC 2047, RFC 2231 ``utf-8''%C3%9C...``);
    the extension stays, as the name's type is evidence."""
    quoted = value[:1] == b'"' and value[-1:] == b'"' and len(value) >= 2
    inner = value[1:-1] if quoted else value
    charset, sep, rest = inner.partition(b"''") if b"''" in inner[:40] else (b"", b"", inner)
    ext = _EXTENSION.search(rest)
    stem, tail = (rest[:ext.start()], rest[ext.start():]) if ext else (rest, b"")
    if sep:
        stem = anon_text.through_units(stem, anon_text.PCT_ESCAPE, lambda b: anon_text.text(p, b))
    else:
        stem = anon_text.header_text(p, stem)
    new = charset + sep + stem + tail
    p.remember("files", inner, new)
    return b'"' + new + b'"' if quoted else new


# Bodies -------------------------------------------------------------------------------------------


def _body(p: Pseudonyms, body: bytes, main: bytes, params: dict[bytes, bytes], cte: bytes) -> bytes:
    if main.startswith(b"multipart/") and params.get(b"boundary"):
        return _multipart(p, body, params[b"boundary"])
    if main in (b"message/rfc822", b"message/global"):
        inner = lambda d: message(p, d)  # noqa: E731
    elif main == b"text/html":
        inner = lambda d: anon_markup.html(p, d)  # noqa: E731
    elif main in (b"text/calendar", b"text/vcard", b"text/x-vcard", b"text/directory", b"application/ics"):
        inner = lambda d: anon_markup.pim(p, d)  # noqa: E731
    elif main.startswith(_TEXT_TYPES) or main.startswith(b"message/"):
        inner = lambda d: anon_text.text(p, d)  # noqa: E731
    else:
        if cte == b"base64":
            return anon_text.binary_base64(p, body)
        inner = lambda d: anon_text.text(p, d)  # noqa: E731  (binary sent as 7bit/8bit: letters only)
    if cte == b"base64":
        return anon_text.through_base64(body, inner) or anon_text.scramble_base64(p, body)
    if cte == b"quoted-printable":
        return anon_text.through_units(body, anon_text.QP_ESCAPE, inner)
    return inner(body)


def _multipart(p: Pseudonyms, body: bytes, boundary: bytes) -> bytes:
    """Delimiter lines kept; preamble and epilogue as text; each part an entity of its own."""
    delimiter = re.compile(rb"(?:^|(?<=\n))--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|$)")
    out, last, closed = bytearray(), 0, False
    for m in delimiter.finditer(body):
        chunk = body[last:m.start()]
        out += anon_text.text(p, chunk) if last == 0 or closed else _entity(p, Entity(chunk))
        out += m[0]
        last, closed = m.end(), closed or bool(m[1])
    tail = body[last:]
    out += anon_text.text(p, tail) if last == 0 or closed else _entity(p, Entity(tail))
    return bytes(out)


def _text_rest(p: Pseudonyms, data: bytes) -> bytes:
    return anon_text.text(p, data) if data else data
