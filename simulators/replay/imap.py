"""IMAP for the replay core: commands with literals, continuations, tags (RFC 3501, RFC 7888).

A command is one unit unless it carries a synchronising literal ``{n}``: then the unit ends
there (the client waits for ``+``) and the literal, with the rest of the command, is the next
unit. LITERAL+ literals ``{n+}`` stay inside their unit. After a ``+`` reply that is not for a
literal, the next unit is one bare line (AUTHENTICATE's response, IDLE's DONE).

Tags are chosen by the client, so they differ between runs: units are compared without the tag
and recorded tagged replies are rewritten to the live tag. Server replies are scanned line by
line, skipping the contents of their literals, so a message body that holds a line looking like
a tagged reply is never mistaken for one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from simulators.replay.dialect import Dialect, Framer, Unit, line_at, printable

_LITERAL_AT_END = re.compile(rb"\{(\d{1,12})(\+?)\}\r?\n$")
_SECRET_VERBS = ("LOGIN", "AUTHENTICATE")


class ImapFramer(Framer):
    def __init__(self) -> None:
        self.mode = "command"  # command | literal (the client sends a literal) | line (a bare line)
        self.tag = ""
        self.verb = ""
        self._pending = 0  # bytes of the synchronising literal the last unit announced

    def next_unit(self, buf: bytes | bytearray) -> Unit | None:
        if self.mode == "line":
            end = line_at(buf, 0)
            return None if end is None else Unit(bytes(buf[:end]), "continuation", self.tag, self.verb)
        pos = self._pending if self.mode == "literal" else 0
        if len(buf) < pos:
            return None
        while True:
            end = line_at(buf, pos)
            if end is None:
                return None
            literal = _LITERAL_AT_END.search(bytes(buf[pos:end]))
            if literal and literal.group(2):  # LITERAL+: the bytes follow at once
                pos = end + int(literal.group(1))
                if len(buf) < pos:
                    return None
                continue
            self._pending = int(literal.group(1)) if literal else 0
            data = bytes(buf[:end])
            break
        if self.mode == "literal":
            return Unit(data, "continuation", self.tag, self.verb)
        self.tag, self.verb = _tag_and_verb(data)
        return Unit(data, "command", self.tag, self.verb)

    def replied(self, unit: Unit, reply: bytes) -> None:
        ending = reply_kind(reply, unit.tag)
        if ending == "continuation":
            self.mode = "literal" if self._pending else "line"
        else:
            self.mode, self._pending = "command", 0


def _tag_and_verb(command: bytes) -> tuple[str, str]:
    parts = command.split(None, 3)
    tag = parts[0].decode("ascii", "replace") if parts else ""
    verb = parts[1].decode("ascii", "replace").upper() if len(parts) > 1 else ""
    if verb == "UID" and len(parts) > 2:
        verb = "UID " + parts[2].decode("ascii", "replace").upper()
    return tag, verb


def response_lines(data: bytes, start: int = 0) -> Iterator[tuple[int, int]]:
    """(start, end) of each complete server response line, a line's literals included."""
    pos = start
    while pos < len(data):
        end = line_at(data, pos)
        if end is None:
            return
        while (literal := _LITERAL_AT_END.search(data, max(pos, end - 24), end)) is not None:
            after = end + int(literal.group(1))
            end = line_at(data, after) if after <= len(data) else None
            if end is None:
                return  # cut off inside a literal (a BYE mid-FETCH): not a complete line
        yield pos, end
        pos = end


def reply_kind(reply: bytes, tag: str) -> str:
    """"tagged" when the reply holds the command's tagged line, "continuation" when it asks for
    more (a ``+`` line), else "" (only untagged data, or nothing)."""
    tagged = (tag + " ").encode()
    kind = ""
    for start, end in response_lines(reply):
        if reply.startswith(tagged, start):
            return "tagged"
        if reply.startswith(b"+", start):
            kind = "continuation"
    return kind


class ImapDialect(Dialect):
    name = "imap"

    def framer(self) -> ImapFramer:
        return ImapFramer()

    def reply_end(self, server: bytes, start: int, unit: Unit) -> int | None:
        tagged = (unit.tag + " ").encode()
        for begin, end in response_lines(server, start):
            if server.startswith(b"+", begin) or server.startswith(tagged, begin):
                return end
        return None

    def key(self, unit: Unit) -> bytes:
        return unit.data[len(unit.tag):] if unit.kind == "command" else unit.data

    def edits(self, reply: bytes, tags: dict[str, str]) -> list[tuple[int, int, bytes]]:
        out = []
        for begin, end in response_lines(reply) if tags else ():
            space = reply.find(b" ", begin, end)
            live = tags.get(reply[begin:space].decode("ascii", "replace")) if space > begin else None
            if live is not None:
                out.append((begin, space, live.encode()))
        return out

    def closes(self, unit: Unit, reply: bytes) -> bool:
        return any(reply.startswith(b"* BYE", begin) for begin, _ in response_lines(reply))

    def starts_tls(self, unit: Unit, reply: bytes) -> bool:
        return unit.verb == "STARTTLS" and f"\n{unit.tag} OK".encode() in b"\n" + reply

    def error_reply(self, unit: Unit, message: str) -> bytes:
        return f"{unit.tag or '*'} BAD {message}\r\n".encode()

    def describe(self, unit: Unit) -> str:
        if unit.verb in _SECRET_VERBS:
            if unit.kind == "continuation":
                return f"({unit.verb} response hidden)"
            words = self.key(unit).split()
            return " ".join(w.decode("ascii", "replace") for w in words[:2]) + " ..."
        return printable(self.key(unit).lstrip())
