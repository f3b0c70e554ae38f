"""What the replay core must know of a protocol, and nothing more (pure: bytes in, values out).

A *unit* is what a client sends before it waits for the server: an IMAP command up to its end or
up to a synchronising literal, a literal with the rest of its command, an AUTHENTICATE or IDLE
continuation line, a POP3 or SMTP command line, an SMTP message after ``354``. Each side of a
replay — the recorded client stream and the live one — is cut into units by a ``Framer`` of the
same dialect; the recorded server reply that answered a unit is what the replay sends back.

A dialect says where a unit ends (``Framer.next_unit``), where the recorded reply to it ends
(``reply_end``), what of a unit is compared (``key``: IMAP drops the tag, which differs between
runs), how replies are adapted to the live session (``edits``: IMAP tags), which replies end
the session (``closes``) or start TLS (``starts_tls``), and how a divergence is answered (``error_reply``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Unit:
    """One client unit: its bytes and what the framer knew of it."""

    data: bytes
    kind: str = "command"  # command | continuation (literal data, SASL response, IDLE's DONE, SMTP data)
    tag: str = ""  # IMAP: the tag of the command the unit belongs to
    verb: str = ""  # upper-cased command name ("UID FETCH", "RETR", "MAIL"); a continuation keeps its command's


class Framer:
    """Cuts one client stream into units; ``replied`` tells it the reply that answered a unit.

    The state a framer keeps (inside a literal, after a ``+`` continuation, after SMTP's 354) is
    set only from the units it cut and the replies it was told, so the recorded and the live
    stream are framed alike.
    """

    def next_unit(self, buf: bytes | bytearray) -> Unit | None:
        """The unit at the start of ``buf`` (``len(unit.data)`` bytes), or None when incomplete."""
        raise NotImplementedError

    def replied(self, unit: Unit, reply: bytes) -> None:
        """The server answered ``unit`` with ``reply`` (recorded, or what the replay sent)."""


class Dialect:
    name: ClassVar[str]

    def framer(self) -> Framer:
        raise NotImplementedError

    def reply_end(self, server: bytes, start: int, unit: Unit) -> int | None:
        """Where the reply to ``unit`` that begins at ``server[start:]`` ends, or None if it does not."""
        raise NotImplementedError

    def greeting_end(self, server: bytes) -> int | None:
        """Where the greeting ends (for recordings without timing, where order must be inferred)."""
        return line_at(server, 0)

    def key(self, unit: Unit) -> bytes:
        """The part of a unit that must match (the same for a recorded and a live unit)."""
        return unit.data

    def edits(self, reply: bytes, tags: dict[str, str]) -> list[tuple[int, int, bytes]]:
        """How a recorded reply is adapted to the live session (``tags``: recorded tag → live
        tag): (start, end, replacement) byte ranges, in order."""
        return []

    def closes(self, unit: Unit, reply: bytes) -> bool:
        """True when a server that sent ``reply`` to ``unit`` then closes the connection."""
        return False

    def starts_tls(self, unit: Unit, reply: bytes) -> bool:
        """True when ``reply`` accepted the unit's STARTTLS (STLS): TLS follows."""
        return False

    def error_reply(self, unit: Unit, message: str) -> bytes:
        """The protocol's error reply to a unit that diverged from the recording."""
        raise NotImplementedError

    def describe(self, unit: Unit) -> str:
        """A short, printable, secret-free description of a unit for messages and summaries."""
        return printable(unit.data)


# helpers shared by the dialects ------------------------------------------------------------------

MAX_SHOWN = 60


def printable(data: bytes, limit: int = MAX_SHOWN) -> str:
    """Bytes as one ASCII line (it may go into a protocol reply): other bytes escaped, cut at ``limit``."""
    data = data.rstrip(b"\r\n")
    text = "".join(chr(b) if 32 <= b < 127 else _ESCAPES.get(b, f"\\x{b:02x}") for b in data[: limit * 2])
    return text if len(text) <= limit else text[: limit - 3] + "..."


_ESCAPES = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"}


def line_at(buf: bytes | bytearray, start: int) -> int | None:
    """The end (after CRLF, or a bare LF) of the line starting at ``start``; None if incomplete."""
    nl = buf.find(b"\n", start)
    return None if nl < 0 else nl + 1


def first_word(data: bytes) -> str:
    return data.split(None, 1)[0].decode("ascii", "replace").upper() if data.strip() else ""
