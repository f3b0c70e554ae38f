"""HTTP session anonymiser (EWS SOAP, CardDAV, CalDAV): both streams in, the same bytes count out.

Each stream is a run of HTTP messages: a start line, header fields, a body framed by
Content-Length or chunked transfer coding (chunk-size lines are layout between the pieces of one
body). Credentials (Authorization, Cookie) are masked; Host and URL paths lose host names and
known names; bodies are rewritten by their Content-Type: XML through ``anon_markup.xml`` (EWS
MimeContent through ``anon_message``), vCard / iCalendar, messages, HTML, text; any other body
(including a compressed one, which cannot keep its length through a rewrite) becomes random bytes
of its length.
"""

from __future__ import annotations

import re

from transcripts import anon_markup, anon_message, anon_text
from transcripts.pseudonyms import Pseudonyms

_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[^\r\n]*\r?\n")
_SECRET_FIELDS = frozenset((b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"))
# Fields that are framing or software, never a person: kept; any other loses known names.
_KEEP_FIELDS = frozenset(
    b"content-type content-length transfer-encoding content-encoding connection keep-alive accept accept-encoding "
    b"accept-language user-agent server date cache-control expect te trailer vary etag if-match if-none-match "
    b"depth soapaction".split()
)


def session(p: Pseudonyms, client: bytes, server: bytes) -> tuple[bytes, bytes]:
    return stream(p, client), stream(p, server)


def stream(p: Pseudonyms, data: bytes) -> bytes:
    out = bytearray(data)
    pos = 0
    while pos < len(data):
        pos = _one(p, data, pos, out)
    return anon_text.same_length(data, bytes(out), "HTTP stream")


def _one(p: Pseudonyms, data: bytes, pos: int, out: bytearray) -> int:
    end_head = data.find(b"\r\n\r\n", pos)
    end_head = len(data) if end_head < 0 else end_head + 4
    head = data[pos:end_head]
    lines = head.split(b"\r\n")
    fields: dict[bytes, bytes] = {}
    new_lines = [_start_line(p, lines[0])]
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        fields[key] = value.strip()
        if key in _SECRET_FIELDS:
            scheme, space, secret = value.strip().partition(b" ")
            lead = value[:len(value) - len(value.lstrip())]
            value = lead + (scheme + space + p.mask(secret) if space and key.endswith(b"authorization")
                            else p.mask(value.strip())) + value[len(lead) + len(value.strip()):]
        elif key == b"host":
            host, sep, port = value.strip().partition(b":")
            value = value.replace(host, p.domain(host), 1) if host and not host.replace(b".", b"").isdigit() else value
        elif key not in _KEEP_FIELDS:
            value = anon_text.known(p, value)
        new_lines.append(name + colon + value)
    out[pos:end_head] = anon_text.same_length(head, b"\r\n".join(new_lines), "HTTP header")
    if end_head >= len(data):
        return len(data)
    if b"chunked" in fields.get(b"transfer-encoding", b"").lower():
        return _chunked(p, data, end_head, out, fields)
    length = fields.get(b"content-length", b"")
    if not length.isdigit():
        return end_head  # no body (a GET, a 204), or one we cannot frame: the next message starts here
    end = min(len(data), end_head + int(length))
    out[end_head:end] = body(p, data[end_head:end], fields)
    return end


def _start_line(p: Pseudonyms, line: bytes) -> bytes:
    if line.startswith(b"HTTP/"):
        return line  # status line: code and reason stay
    return anon_text.known(p, line)  # request line: a DAV path may hold the user's name


def _chunked(p: Pseudonyms, data: bytes, pos: int, out: bytearray, fields: dict[bytes, bytes]) -> int:
    pieces: list[tuple[int, int]] = []
    while pos < len(data):
        size = _CHUNK_SIZE.match(data, pos)
        if not size:
            break
        n = int(size[1], 16)
        start = size.end()
        pieces.append((start, min(len(data), start + n)))
        pos = min(len(data), start + n + 2)  # the CRLF after the chunk's data
        if n == 0:
            end = data.find(b"\r\n\r\n", start - 2)  # trailers end with an empty line
            pos = len(data) if end < 0 else end + 4
            break
    joined = b"".join(data[s:e] for s, e in pieces)
    new = body(p, joined, fields)
    at = 0
    for s, e in pieces:
        out[s:e] = new[at:at + e - s]
        at += e - s
    return pos


def body(p: Pseudonyms, data: bytes, fields: dict[bytes, bytes]) -> bytes:
    ctype = fields.get(b"content-type", b"").split(b";")[0].strip().lower()
    if fields.get(b"content-encoding", b"identity").lower() not in (b"identity", b""):
        return p.random_bytes(len(data), data)
    if ctype.endswith(b"xml"):
        return anon_markup.xml(p, data, lambda m: anon_message.message(p, m))
    if ctype in (b"text/calendar", b"text/vcard", b"text/x-vcard"):
        return anon_markup.pim(p, data)
    if ctype == b"message/rfc822":
        return anon_message.message(p, data)
    if ctype == b"text/html":
        return anon_markup.html(p, data)
    if ctype.startswith(b"text/") or ctype in (b"application/json", b""):
        return anon_text.text(p, data)
    return p.random_bytes(len(data), data)
