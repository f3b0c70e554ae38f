"""IMAP wire syntax, with no sockets: command framing, tokenizing, FETCH attributes, quoting.

``CommandReader.receive_data(bytes)`` returns events as whole commands become available (the h11
model). Framing and tokenizing are separate steps: the reader only finds where a command ends
(a line, plus ``{n}``/``{n+}`` literals and the lines after them); ``tokenize`` then turns the
complete command bytes into arguments:

* an atom is ``str`` (``"FLAGS"``, ``"1:*"``, ``"\\Seen"``); a bracketed section is part of its
  atom, spaces and parentheses included: ``"BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.100>"``;
* a quoted string or a literal is ``bytes``, except an APPEND message of ``LARGE_LITERAL`` bytes
  or more: that is the ``bytearray`` it was received into, so a 50 MB APPEND is held once, not
  copied from the read buffer into the command and again into its token;
* a parenthesised list is a ``list``; NIL is the atom ``"NIL"``.

A synchronising literal ``{n}`` makes the reader emit ``NeedContinuation`` so the engine can send
``+ Ready for literal data`` before the client sends the literal bytes. AUTHENTICATE and IDLE read
bare continuation lines: the engine switches the reader with ``expect_line()``.
Bad syntax never raises out of the reader: it becomes a ``BadCommand`` event naming the cause,
which the engine answers with ``tag BAD ...`` and keeps serving.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_LINE = 65536  # like Dovecot's imap_max_line_length
MAX_LITERAL = 256 * 1024 * 1024
# Parenthesised lists nest at most this deep: a line of "(((((" must be a BAD, not a RecursionError
# that takes the connection down. Real commands nest a few levels (SEARCH OR (...)).
MAX_LIST_DEPTH = 100
# A literal this large is received straight into a buffer of its own size instead of the reader's
# buffer (which grows by doubling and is copied to frame the command): peak memory for a big APPEND
# is then the message once. Smaller literals stay inline (MULTIAPPEND batches of small messages).
LARGE_LITERAL = 256 * 1024

_LITERAL_AT_END = re.compile(rb"\{(\d{1,12})(\+?)\}$")


class ImapSyntaxError(ValueError):
    """A command that cannot be parsed; ``str()`` is the text after ``BAD``."""


# Reader events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    tag: str
    name: str  # upper-cased; "UID FETCH" etc. for UID commands
    args: list


@dataclass(frozen=True)
class BadCommand:
    tag: str  # "*" when the tag itself could not be read
    message: str


@dataclass(frozen=True)
class NeedContinuation:
    """The client waits for ``+`` before sending a synchronising literal of ``size`` bytes."""

    size: int
    prefix: bytes  # the command so far (up to the literal marker), for early refusal (APPENDLIMIT)


@dataclass(frozen=True)
class ContinuationLine:
    """A bare line read in ``expect_line`` mode (AUTHENTICATE response, IDLE's DONE)."""

    line: bytes


@dataclass(frozen=True)
class RefusedCommand:
    """A command refused when its literal was announced (``literal_policy`` said no)."""

    tag: str
    reply: str  # "NO [TOOBIG] ..." — the tagged reply without the tag


Event = Command | BadCommand | NeedContinuation | ContinuationLine | RefusedCommand

# Given the command's first line (up to its first literal marker: command name, mailbox, flags)
# and a literal's size, a reply text to refuse the command before that literal is read, or None
# to accept it. Asked once per literal; only the first line is passed so that a MULTIAPPEND of k
# messages is not copied and re-read k times (quadratic in the batch).
LiteralPolicy = Callable[[bytes, int], "str | None"]


class CommandReader:
    """Frames commands out of a byte stream (h11 style).

    ``receive_data`` buffers; ``next_event`` returns one event at a time, or None when more bytes
    are needed, so the engine can switch to ``expect_line`` mode (IDLE, AUTHENTICATE) before the
    next pipelined bytes are read.
    """

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_literal: int = MAX_LITERAL,
        literal_policy: LiteralPolicy | None = None,
    ):
        self.max_line = max_line
        self.max_literal = max_literal
        self.literal_policy = literal_policy
        self._buf = bytearray()
        self._scan = 0  # where the current line starts; the command starts at 0
        self._line_mode = False
        self._checked: set[int] = set()  # literal line ends already announced/checked
        self._discarding = False  # dropping the rest of a refused or overlong command
        self._skip = 0  # literal bytes still to drop for a refused LITERAL+ command
        # Large literals of the command being framed, by where their bytes would start in _buf;
        # the one still arriving is _filling (received bytes go there first, _filled of them so far).
        self._large: dict[int, bytearray] = {}
        self._filling: bytearray | None = None
        self._filled = 0

    def expect_line(self) -> None:
        """The next line is a continuation (AUTHENTICATE data, DONE), not a command."""
        self._line_mode = True

    def receive_data(self, data: bytes) -> None:
        if self._filling is not None:
            data = self._fill(data)
        self._buf += data

    def _fill(self, data: bytes) -> bytes:
        """Put the next bytes into the large literal still arriving; what is left after it."""
        n = min(len(data), len(self._filling) - self._filled)
        self._filling[self._filled : self._filled + n] = memoryview(data)[:n]
        self._filled += n
        if self._filled == len(self._filling):
            self._filling = None
        return data[n:]

    @property
    def idle(self) -> bool:
        """Nothing of a command is buffered or pending (no partial line, literal or skip)."""
        return not self._buf and not self._line_mode and not self._skip and not self._discarding and not self._large

    def next_event(self) -> Event | None:
        while True:
            progressed, event = self._step()
            if event is not None or not progressed:
                return event

    def _step(self) -> tuple[bool, Event | None]:
        if self._skip:
            n = min(self._skip, len(self._buf))
            del self._buf[:n]
            self._skip -= n
            if self._skip:
                return False, None
        end = self._buf.find(b"\n", self._scan)
        if end < 0:
            event = None
            if not self._discarding and len(self._buf) - self._scan > self.max_line:
                event = BadCommand(_tag_of(self._buf), "Error in IMAP command: Too long argument.")
                self._discarding = True
            if self._discarding:
                self._consume(len(self._buf))
            return False, event
        line = bytes(self._buf[self._scan : end + 1]).rstrip(b"\r\n")
        marker = _LITERAL_AT_END.search(line)
        if self._discarding:
            # A LITERAL+ literal of the dropped command arrives anyway; a synchronising one never
            # does (the client got its tagged reply instead of "+").
            self._consume(end + 1)
            if marker and marker.group(2):
                self._skip = int(marker.group(1))
            else:
                self._discarding = False
            return True, None
        if self._line_mode:
            self._line_mode = False
            self._consume(end + 1)
            return True, ContinuationLine(line)
        if marker is None:
            whole, large = bytes(self._buf[: end + 1]), self._large
            self._consume(end + 1)
            return True, _parse_command(whole, large)
        size, non_sync = int(marker.group(1)), bool(marker.group(2))
        if end not in self._checked:
            self._checked.add(end)
            refusal = None
            if size > self.max_literal:
                refusal = BadCommand(_tag_of(self._buf), f"Literal too large ({size} bytes).")
            elif self.literal_policy is not None:
                first_line = self._buf.find(b"\n") + 1
                reply = self.literal_policy(bytes(self._buf[:first_line]), size)
                if reply is not None:
                    refusal = RefusedCommand(_tag_of(self._buf), reply)
            if refusal is not None:
                self._consume(end + 1)
                self._skip = size if non_sync else 0
                self._discarding = non_sync
                return True, refusal
            if not non_sync:
                return True, NeedContinuation(size, bytes(self._buf[: end + 1]))
        if size >= LARGE_LITERAL:
            return self._large_literal(end + 1, size)
        if len(self._buf) < end + 1 + size:
            return False, None  # the literal is still on its way
        self._scan = end + 1 + size
        return True, None

    def _large_literal(self, start: int, size: int) -> tuple[bool, Event | None]:
        """Receive a large literal into its own buffer; the command's bytes go on at ``start``."""
        if start not in self._large:
            self._large[start] = self._filling = bytearray(size)
            self._filled = 0
            arrived = self._buf[start:]  # what came with the marker line
            del self._buf[start:]
            self._buf += self._fill(arrived)
        if self._filling is not None:
            return False, None  # still on its way
        self._scan = start
        return True, None

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._scan = 0
        self._checked.clear()
        self._large = {}
        self._filling = None


def _tag_of(buf: bytes | bytearray) -> str:
    tag = bytes(buf).split(b" ", 1)[0].strip()
    return tag.decode("ascii", "replace") if tag and _is_tag(tag) else "*"


def _is_tag(tag: bytes) -> bool:
    return all(0x21 <= c <= 0x7E and c not in b'(){%*"\\+' for c in tag)


def _parse_command(whole: bytes, large: dict[int, bytearray] | None = None) -> Command | BadCommand:
    line = whole[:-2] if whole.endswith(b"\r\n") else whole[:-1]
    tag_b, sp, rest = line.partition(b" ")
    if not tag_b or not _is_tag(tag_b):
        return BadCommand("*", "Error in IMAP command received by server.")
    tag = tag_b.decode("ascii")
    if not sp or not rest:
        return BadCommand(tag, "Error in IMAP command: Invalid command name")
    try:
        # Large literals are keyed by their place in ``whole``; ``rest`` starts after the tag.
        shift = len(tag_b) + 1
        tokens = tokenize(rest, {at - shift: lit for at, lit in (large or {}).items()})
    except ImapSyntaxError as exc:
        word = rest.split(b" ", 1)[0].upper().decode("ascii", "replace")
        name = f" {word}" if word.isalpha() else ""
        return BadCommand(tag, f"Error in IMAP command{name}: {exc}")
    name = tokens[0] if tokens and isinstance(tokens[0], str) else None
    if name is None:
        return BadCommand(tag, "Error in IMAP command: Missing command name")
    name = name.upper()
    args = tokens[1:]
    if large and name != "APPEND":  # only an APPEND's messages may stay bytearray (see the docstring)
        args = _immutable(args)
    if name == "UID":
        if not args or not isinstance(args[0], str):
            return BadCommand(tag, "Error in IMAP command UID: Missing UID command name")
        name = "UID " + args[0].upper()
        args = args[1:]
    return Command(tag, name, args)


# Tokenizer ------------------------------------------------------------------------------------

_ATOM_STOP = frozenset(b' ()"\r\n')


def tokenize(data: bytes, large: dict[int, bytearray] | None = None) -> list:
    """The arguments of one complete command (literals inline, as sent on the wire; a large
    literal received apart is in ``large``, by where its bytes would have started in ``data``)."""
    tokens, pos = _parse_list(data, 0, top=True, large=large or {})
    return tokens


def _immutable(args: list) -> list:
    return [_immutable(a) if isinstance(a, list) else bytes(a) if isinstance(a, bytearray) else a for a in args]


def _parse_list(data: bytes, pos: int, *, top: bool, depth: int = 0, large: dict | None = None) -> tuple[list, int]:
    if depth > MAX_LIST_DEPTH:
        raise ImapSyntaxError("Too deeply nested list")
    out: list = []
    n = len(data)
    while True:
        while pos < n and data[pos] == 0x20:
            pos += 1
        if pos >= n:
            if top:
                return out, pos
            raise ImapSyntaxError("Missing ')'")
        c = data[pos]
        if c == 0x29:  # )
            if top:
                raise ImapSyntaxError("Unexpected ')'")
            return out, pos + 1
        if c == 0x28:  # (
            sub, pos = _parse_list(data, pos + 1, top=False, depth=depth + 1, large=large)
            out.append(sub)
        elif c == 0x22:  # "
            s, pos = _parse_quoted(data, pos + 1)
            out.append(s)
        elif c == 0x7B:  # {
            lit, pos = _parse_literal(data, pos, large)
            out.append(lit)
        elif c in (0x0D, 0x0A):
            raise ImapSyntaxError("Unexpected line break")
        else:
            atom, pos = _parse_atom(data, pos)
            out.append(atom)


def _parse_quoted(data: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    n = len(data)
    while pos < n:
        c = data[pos]
        if c == 0x22:
            return bytes(out), pos + 1
        if c == 0x5C:
            pos += 1
            if pos >= n or data[pos] not in b'"\\':
                raise ImapSyntaxError("Invalid escape in quoted string")
            c = data[pos]
        elif c in (0x0D, 0x0A):
            break
        out.append(c)
        pos += 1
    raise ImapSyntaxError("Missing '\"'")


def _parse_literal(data: bytes, pos: int, large: dict | None = None) -> tuple[bytes | bytearray, int]:
    m = re.compile(rb"\{(\d{1,12})\+?\}\r?\n").match(data, pos)
    if m is None:
        raise ImapSyntaxError("Invalid literal size")
    size = int(m.group(1))
    start = m.end()
    if large and start in large:  # received apart: none of its bytes are in ``data``
        return large[start], start
    if start + size > len(data):
        raise ImapSyntaxError("Literal shorter than announced")
    return data[start : start + size], start + size


def _parse_atom(data: bytes, pos: int) -> tuple[str, int]:
    start = pos
    n = len(data)
    depth = 0
    while pos < n:
        c = data[pos]
        if c == 0x5B:  # [
            depth += 1
        elif c == 0x5D and depth:  # ]
            depth -= 1
        elif c in _ATOM_STOP and not (depth and c in b' ()"'):
            break
        pos += 1
    if depth:
        raise ImapSyntaxError("Missing ']'")
    if pos == start:
        raise ImapSyntaxError(f"Unexpected character {chr(data[pos])!r}")
    return data[start:pos].decode("utf-8", "surrogateescape"), pos


# FETCH attributes -----------------------------------------------------------------------------

_SECTION = re.compile(
    r"^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$", re.IGNORECASE
)
_SIMPLE_ATTS = frozenset(
    "ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID".split()
)
# Gmail's X-GM-EXT-1 items: parsed always, answered only when the profile advertises X-GM-EXT-1.
EXTENSION_ATTS = frozenset({"X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"})
MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


@dataclass(frozen=True)
class FetchAtt:
    """One FETCH data item. ``name`` is upper-cased; section fields only for BODY[...]."""

    name: str  # "FLAGS", "BODY[]" family → "BODY" / "BODY.PEEK"
    section: bool = False
    part: tuple[int, ...] = ()
    text: str | None = None  # None, HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()
    partial: tuple[int, int | None] | None = None  # (origin, length)
    spec: str = ""  # the section text as the client wrote it (echoed back upper-cased)

    @property
    def peek(self) -> bool:
        return self.name.endswith(".PEEK")

    def reply_name(self) -> str:
        """How the item is named in the FETCH response: PEEK dropped, partial shown by origin."""
        if not self.section:
            return self.name
        base = self.name.replace(".PEEK", "")
        origin = f"<{self.partial[0]}>" if self.partial else ""
        return f"{base}[{self.spec}]{origin}"


def parse_fetch_atts(arg: str | list) -> list[FetchAtt]:
    """A FETCH item list: a macro, one attribute, or a parenthesised list of them."""
    if isinstance(arg, str) and arg.upper() in MACROS:
        return [FetchAtt(n) for n in MACROS[arg.upper()]]
    items = arg if isinstance(arg, list) else [arg]
    if not items:
        raise ImapSyntaxError("Empty FETCH attribute list")
    return [parse_fetch_att(i) for i in items]


def parse_fetch_att(item) -> FetchAtt:
    if not isinstance(item, str):
        raise ImapSyntaxError("Invalid arguments")
    upper = item.upper()
    if upper in _SIMPLE_ATTS or upper in EXTENSION_ATTS:
        return FetchAtt(upper)
    m = _SECTION.match(item)
    if m is None:
        raise ImapSyntaxError(f"Unknown parameter: {item}")
    name, spec, origin, length = m.groups()
    part, text, fields = _parse_section(spec)
    partial = None
    if origin is not None:
        if length is None or not (_number32(origin) and _number32(length)):
            raise ImapSyntaxError(f"Invalid partial: {item}")
        partial = (int(origin), int(length))
    canonical = spec.upper()
    if fields:
        head = canonical.split("(", 1)[0].rstrip()
        canonical = f"{head} ({' '.join(fields)})"
    return FetchAtt(name.upper(), True, part, text, fields, partial, canonical)


def _parse_section(spec: str) -> tuple[tuple[int, ...], str | None, tuple[str, ...]]:
    head, paren, rest = spec.partition("(")
    head = head.strip()
    fields: tuple[str, ...] = ()
    if paren:
        if not rest.endswith(")"):
            raise ImapSyntaxError("Invalid BODY[..] section")
        try:
            names = tokenize(rest[:-1].encode("utf-8", "surrogateescape"))  # atoms keep 8-bit that way
        except ImapSyntaxError:
            raise ImapSyntaxError("Invalid BODY[..] section") from None
        fields = tuple((n.decode("utf-8", "surrogateescape") if isinstance(n, bytes) else n).upper() for n in names)
        if not fields:
            raise ImapSyntaxError("Invalid BODY[..] section")
    parts: list[int] = []
    text: str | None = None
    for piece in filter(None, head.split(".")) if head else ():
        if text is not None:
            text += "." + piece.upper()
        elif _number32(piece) and int(piece) > 0:
            parts.append(int(piece))
        else:
            text = piece.upper()
    if text not in (None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"):
        raise ImapSyntaxError("Invalid BODY[..] section")
    if (text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT")) != bool(fields):
        raise ImapSyntaxError("Invalid BODY[..] section")
    if text == "MIME" and not parts:
        raise ImapSyntaxError("Invalid BODY[..] section")
    return tuple(parts), text, fields


# Sequence sets --------------------------------------------------------------------------------


def parse_sequence_set(text: str, largest: int) -> list[tuple[int, int]]:
    """``"1:3,5,7:*"`` → inclusive ranges, ``*`` meaning ``largest`` (0 when empty)."""
    ranges = []
    if not text:
        raise ImapSyntaxError("Invalid messageset")
    for piece in text.split(","):
        lo, colon, hi = piece.partition(":")
        a = _seq_number(lo, largest, text)
        b = _seq_number(hi, largest, text) if colon else a
        ranges.append((min(a, b), max(a, b)))
    return ranges


def _number32(s: str) -> bool:
    """RFC 3501's number: ASCII digits ("²".isdigit() is true too) below 2^32. Checked before
    int(), which raises ValueError past 4300 digits instead of our syntax error."""
    return s.isascii() and s.isdigit() and len(s) <= 10 and int(s) < 2**32


def _seq_number(s: str, largest: int, whole: str) -> int:
    if s == "*":
        return largest
    if not _number32(s) or int(s) == 0:
        raise ImapSyntaxError(f"Invalid messageset: {whole}")
    return int(s)


def format_sequence_set(uids: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1:3,5"``."""
    out, start, prev = [], None, None
    for u in uids:
        if start is None:
            start = prev = u
        elif u == prev + 1:
            prev = u
        else:
            out.append(f"{start}:{prev}" if prev != start else f"{start}")
            start = prev = u
    if start is not None:
        out.append(f"{start}:{prev}" if prev != start else f"{start}")
    return ",".join(out)


# Output ---------------------------------------------------------------------------------------


def astring(value: str | bytes) -> bytes:
    """A string as a quoted string when it can be one, else as a literal."""
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if len(raw) < 1024 and all(0x20 <= c < 0x7F for c in raw):
        return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return literal(raw)


def nstring(value: bytes | None) -> bytes:
    return b"NIL" if value is None else astring(value)


def literal(raw: bytes) -> bytes:
    return b"".join(literal_pieces(raw))


def literal_pieces(raw: bytes) -> list[bytes]:
    """A literal as its marker and its bytes, uncopied."""
    return [b"{%d}\r\n" % len(raw), raw]
