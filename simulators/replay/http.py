"""HTTP/1.1 for the replay core (EWS, CalDAV, CardDAV recordings): one request is one unit.

A request ends after its headers and its body (``Content-Length``, or chunked up to the last
chunk); a response the same way, with ``1xx`` interim responses kept in front of the final one.
Requests are compared by request line and body only: headers differ between runs (``Host``
carries the port, clients name their versions, credentials are masked) while what an EWS or DAV
server answers depends on the method, the path and the XML. A ``Connection: close`` response
ends the session. A divergence is a ``500`` whose text body says what was expected.
"""

from __future__ import annotations

import re

from simulators.replay.dialect import Dialect, Framer, Unit, printable

_HEAD_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"^content-length:\s*(\d{1,15})\s*$", re.IGNORECASE | re.MULTILINE)
_CHUNKED = re.compile(rb"^transfer-encoding:[^\r\n]*chunked", re.IGNORECASE | re.MULTILINE)
_CLOSE = re.compile(rb"^connection:\s*close\s*$", re.IGNORECASE | re.MULTILINE)
_SOAP_OPERATION = re.compile(rb"Body[^>]*>\s*<(?:\w+:)?(\w+)")


def message_end(data: bytes | bytearray, start: int = 0, *, body_allowed: bool = True) -> int | None:
    """The end of the HTTP message at ``data[start:]`` (headers + body), or None if incomplete."""
    head_end = data.find(_HEAD_END, start)
    if head_end < 0:
        return None
    head = bytes(data[start:head_end])
    end = head_end + len(_HEAD_END)
    if not body_allowed:
        return end
    if _CHUNKED.search(head):
        return _chunked_end(data, end)
    length = _LENGTH.search(head)
    end += int(length.group(1)) if length else 0
    return end if len(data) >= end else None


def _chunked_end(data: bytes | bytearray, pos: int) -> int | None:
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        try:
            size = int(bytes(data[pos:line_end]).split(b";", 1)[0], 16)
        except ValueError:
            return None
        if size == 0:  # the last chunk, then optional trailers and an empty line
            trailers = data.find(b"\r\n\r\n", line_end)
            return None if trailers < 0 else trailers + 4
        pos = line_end + 2 + size + 2
        if len(data) < pos:
            return None


class HttpFramer(Framer):
    def next_unit(self, buf: bytes | bytearray) -> Unit | None:
        end = message_end(buf)
        if end is None:
            return None
        data = bytes(buf[:end])
        return Unit(data, "command", verb=data.split(b" ", 1)[0].decode("ascii", "replace").upper())


class HttpDialect(Dialect):
    name = "http"

    def framer(self) -> HttpFramer:
        return HttpFramer()

    def greeting_end(self, server: bytes) -> int | None:
        return 0  # the client speaks first

    def reply_end(self, server: bytes, start: int, unit: Unit) -> int | None:
        pos = start
        while True:
            status = server[pos + 9: pos + 12]
            no_body = unit.verb == "HEAD" or status in (b"204", b"304") or status.startswith(b"1")
            end = message_end(server, pos, body_allowed=not no_body)
            if end is None or not status.startswith(b"1"):
                return end
            pos = end  # 100 Continue and the like: the final response follows

    def key(self, unit: Unit) -> bytes:
        head_end = unit.data.find(_HEAD_END)
        request_line = unit.data.split(b"\r\n", 1)[0]
        return request_line + b"\r\n" + unit.data[head_end + len(_HEAD_END):]

    def closes(self, unit: Unit, reply: bytes) -> bool:
        head = reply[: reply.find(_HEAD_END)] if _HEAD_END in reply else reply
        return bool(_CLOSE.search(head)) or head.startswith(b"HTTP/1.0")

    def error_reply(self, unit: Unit, message: str) -> bytes:
        body = message.encode()
        return (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def describe(self, unit: Unit) -> str:
        request_line = unit.data.split(b"\r\n", 1)[0].rsplit(b" ", 1)[0]  # without "HTTP/1.1"
        operation = _SOAP_OPERATION.search(unit.data)
        return printable(request_line + (b" " + operation.group(1) if operation else b""))
