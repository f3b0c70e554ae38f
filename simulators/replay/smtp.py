"""SMTP for the replay core (RFC 5321, RFC 3030 BDAT, RFC 4954 AUTH, RFC 2920 pipelining).

A command line is one unit; after ``354`` the message up to its ``.`` line is one unit; a BDAT
command is one unit with its chunk. A reply is every ``ddd-`` line and the ``ddd `` line that
ends it, so pipelined commands get one reply each. After a ``334`` challenge the next line is
the client's SASL response. ``221`` and ``421`` replies end the session.
"""

from __future__ import annotations

import re

from simulators.replay.dialect import Dialect, Framer, Unit, first_word, line_at, printable

_BDAT = re.compile(rb"BDAT\s+(\d{1,12})", re.IGNORECASE)
_END_OF_DATA = b"\r\n.\r\n"


class SmtpFramer(Framer):
    def __init__(self) -> None:
        self.mode = "command"  # command | data (after 354) | sasl (after 334)
        self.verb = ""

    def next_unit(self, buf: bytes | bytearray) -> Unit | None:
        if self.mode == "data":
            if buf.startswith(b".\r\n"):
                return Unit(bytes(buf[:3]), "continuation", verb="DATA")
            end = buf.find(_END_OF_DATA)
            return None if end < 0 else Unit(bytes(buf[: end + len(_END_OF_DATA)]), "continuation", verb="DATA")
        end = line_at(buf, 0)
        if end is None:
            return None
        if self.mode == "sasl":
            return Unit(bytes(buf[:end]), "continuation", verb=self.verb)
        self.verb = first_word(buf[:end])
        if self.verb == "BDAT" and (chunk := _BDAT.match(bytes(buf[:end]))):
            end += int(chunk.group(1))
            if len(buf) < end:
                return None
        return Unit(bytes(buf[:end]), "command", verb=self.verb)

    def replied(self, unit: Unit, reply: bytes) -> None:
        code = _last_line(reply)[:3]
        self.mode = {b"354": "data", b"334": "sasl"}.get(code, "command")


def _last_line(reply: bytes) -> bytes:
    lines = reply.rstrip(b"\r\n").rsplit(b"\n", 1)
    return lines[-1]


class SmtpDialect(Dialect):
    name = "smtp"

    def framer(self) -> SmtpFramer:
        return SmtpFramer()

    def reply_end(self, server: bytes, start: int, unit: Unit) -> int | None:
        pos = start
        while (end := line_at(server, pos)) is not None:
            if server[pos + 3: pos + 4] != b"-":  # "250 ok", or a bare "250"
                return end
            pos = end
        return None

    def greeting_end(self, server: bytes) -> int | None:
        return self.reply_end(server, 0, Unit(b""))

    def closes(self, unit: Unit, reply: bytes) -> bool:
        return _last_line(reply)[:3] in (b"221", b"421")

    def starts_tls(self, unit: Unit, reply: bytes) -> bool:
        return unit.verb == "STARTTLS" and reply.startswith(b"220")

    def error_reply(self, unit: Unit, message: str) -> bytes:
        return f"500 {message}\r\n".encode()

    def describe(self, unit: Unit) -> str:
        if unit.verb == "AUTH":
            if unit.kind == "continuation":
                return "(AUTH response hidden)"
            return " ".join(w.decode("ascii", "replace") for w in unit.data.split()[:2]) + " ..."
        if unit.kind == "continuation" and unit.verb == "DATA":
            return f"a message of {len(unit.data)} bytes"
        if unit.verb == "BDAT":
            return printable(unit.data.split(b"\n", 1)[0]) + " + chunk"
        return printable(unit.data)
