"""POP3 for the replay core (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH): one line is one unit.

A ``+OK`` to RETR, TOP, CAPA, and to LIST, UIDL or AUTH without an argument is multi-line: the
reply ends at the ``.`` line. After a ``+ `` SASL challenge the next line is the client's
response, not a command. The server closes after QUIT's reply.
"""

from __future__ import annotations

from simulators.replay.dialect import Dialect, Framer, Unit, first_word, line_at, printable

_MULTILINE = {"RETR", "TOP", "CAPA"}
_MULTILINE_WITHOUT_ARGUMENT = {"LIST", "UIDL", "AUTH"}
_SECRET_VERBS = {"PASS", "AUTH", "APOP"}


class Pop3Framer(Framer):
    def __init__(self) -> None:
        self.sasl = False  # the last reply was a "+ " challenge: the next line answers it
        self.verb = ""

    def next_unit(self, buf: bytes | bytearray) -> Unit | None:
        end = line_at(buf, 0)
        if end is None:
            return None
        data = bytes(buf[:end])
        if self.sasl:
            return Unit(data, "continuation", verb=self.verb)
        self.verb = first_word(data)
        return Unit(data, "command", verb=self.verb)

    def replied(self, unit: Unit, reply: bytes) -> None:
        self.sasl = reply.startswith(b"+ ") or reply.rstrip(b"\r\n") == b"+"


def _multiline(unit: Unit) -> bool:
    if unit.kind != "command":
        return False
    if unit.verb in _MULTILINE:
        return True
    return unit.verb in _MULTILINE_WITHOUT_ARGUMENT and len(unit.data.split()) == 1


class Pop3Dialect(Dialect):
    name = "pop3"

    def framer(self) -> Pop3Framer:
        return Pop3Framer()

    def reply_end(self, server: bytes, start: int, unit: Unit) -> int | None:
        end = line_at(server, start)
        if end is None or not (server.startswith(b"+OK", start) and _multiline(unit)):
            return end
        while (line_end := line_at(server, end)) is not None:
            if server[end:line_end].rstrip(b"\r\n") == b".":
                return line_end
            end = line_end
        return None

    def closes(self, unit: Unit, reply: bytes) -> bool:
        return unit.verb == "QUIT" and unit.kind == "command"

    def starts_tls(self, unit: Unit, reply: bytes) -> bool:
        return unit.verb == "STLS" and reply.startswith(b"+OK")

    def error_reply(self, unit: Unit, message: str) -> bytes:
        return f"-ERR {message}\r\n".encode()

    def describe(self, unit: Unit) -> str:
        if unit.verb in _SECRET_VERBS:
            if unit.kind == "continuation":
                return f"({unit.verb} response hidden)"
            words = unit.data.split()
            shown = words[:1] if unit.verb == "PASS" else words[:2]
            return " ".join(w.decode("ascii", "replace") for w in shown) + " ..."
        return printable(unit.data)
