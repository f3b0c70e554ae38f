"""A transcript turned into what a replay serves: a greeting, then one step per client unit.

Each step is a recorded client unit and the server bytes that answered it. The reply to a unit
runs from where the previous reply ended to the dialect's end of reply (an IMAP tagged line or
``+`` continuation, a POP3 status line or its ``.`` line, an SMTP final line) — and further, to
everything the server sent before the client began its next unit: data a server sends on its
own (IDLE's ``* 3 EXISTS``) goes out when it went out in the recording, not one command late.
The last unit gets whatever the server sent after it. Pipelined units each keep their own reply.

Every reply piece keeps its delay after the unit that caused it (``--pace recorded`` waits it
out). STARTTLS and a server-side close are attached to the step after which they happened: from
the transcript's marks, or, for imported logs without marks, from the protocol (a STARTTLS OK,
an IMAP ``* BYE``, POP3 QUIT, SMTP 221/421).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from functools import cached_property

from transcripts.format import Chunk, Mark, Protocol, Sender, Transcript

from simulators.replay.dialect import Dialect, Unit
from simulators.replay.http import HttpDialect
from simulators.replay.imap import ImapDialect
from simulators.replay.pop3 import Pop3Dialect
from simulators.replay.smtp import SmtpDialect

DIALECTS: dict[Protocol, type[Dialect]] = {
    Protocol.IMAP: ImapDialect,
    Protocol.POP3: Pop3Dialect,
    Protocol.SMTP: SmtpDialect,
    Protocol.HTTP: HttpDialect,
}


class ReplayError(ValueError):
    """A transcript that cannot be replayed: names it and says why."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(f"{name}: {cause}")
        self.name, self.cause = name, cause


@dataclass(frozen=True)
class Piece:
    delay: float  # seconds after the unit arrived (after the connection, for the greeting)
    data: bytes


@dataclass(frozen=True)
class Reply:
    pieces: tuple[Piece, ...] = ()
    then_tls: bool = False
    then_close: bool = False

    @cached_property  # asked at every match; replies can be megabytes of FETCH
    def data(self) -> bytes:
        return b"".join(p.data for p in self.pieces)


@dataclass(frozen=True)
class Step:
    number: int  # 1-based position among the script's units
    unit: Unit
    reply: Reply


@dataclass
class Script:
    name: str  # the transcript's file name, for messages
    label: str
    protocol: Protocol
    tls: str  # none | implicit | starttls (from the header)
    dialect: Dialect
    greeting: Reply
    steps: list[Step] = field(default_factory=list)
    unframed: bytes = b""  # client bytes after the last whole unit (a session cut off mid-command)
    redacted: bool = False  # secrets were masked: ``*`` runs match any bytes of their length


class _Timeline:
    """Where each side's stream stood at each event, for mapping offsets to times and back."""

    def __init__(self, transcript: Transcript) -> None:
        self.server = bytearray()
        self.client_starts: list[int] = []  # client offset at which each client chunk starts
        self.client_server_at: list[int] = []  # server offset when that client chunk was sent
        self.server_starts: list[int] = []
        self.server_times: list[float] = []
        self.marks: list[tuple[Mark, int]] = []  # each mark with the client offset it came after
        client = 0
        for event in transcript.events:
            if isinstance(event, Mark):
                self.marks.append((event, client))
            elif event.sender is Sender.SERVER:
                self.server_starts.append(len(self.server))
                self.server_times.append(event.at)
                self.server += event.data
            elif event.data:
                self.client_starts.append(client)
                self.client_server_at.append(len(self.server))
                client += len(event.data)
        self.client_total = client

    def server_offset_when_client_sent(self, client_offset: int) -> int:
        """Server bytes already sent when the client sent the byte at ``client_offset``."""
        index = bisect.bisect_right(self.client_starts, client_offset) - 1
        return self.client_server_at[index]

    def pieces(self, start: int, end: int, since: float) -> tuple[Piece, ...]:
        """Server bytes [start, end) cut where the recorded chunks were, with delays after ``since``."""
        out = []
        index = max(0, bisect.bisect_right(self.server_starts, start) - 1)
        while start < end and index < len(self.server_starts):
            chunk_end = self.server_starts[index + 1] if index + 1 < len(self.server_starts) else len(self.server)
            if chunk_end > start:
                stop = min(end, chunk_end)
                out.append(Piece(max(0.0, self.server_times[index] - since), bytes(self.server[start:stop])))
                start = stop
            index += 1
        return tuple(out)


def build(transcript: Transcript, name: str) -> Script:
    """The replayable steps of one recorded session (ReplayError when it cannot be replayed)."""
    dialect_class = DIALECTS.get(transcript.header.protocol)
    if dialect_class is None:
        raise ReplayError(name, f"{transcript.header.protocol.value} sessions cannot be replayed yet "
                                f"(replayable: {', '.join(p.value for p in DIALECTS)})")
    dialect = dialect_class()
    line = _Timeline(transcript)
    server = bytes(line.server)
    framer = dialect.framer()
    # A log without timing ("interleaved": false) holds each side whole: the protocol alone pairs them.
    interleaved = transcript.header.extra.get("interleaved", True) is not False
    if interleaved:
        first_client = line.client_server_at[0] if line.client_server_at else len(server)
    else:
        first_client = dialect.greeting_end(server) or len(server)
    spans: list[list] = []  # unit, when it was complete, client offset after it, reply start, end
    s, buf, consumed = first_client, bytearray(), 0
    for event in transcript.events:
        if not (isinstance(event, Chunk) and event.sender is Sender.CLIENT and event.data):
            continue
        buf += event.data
        while (unit := framer.next_unit(buf)) is not None:
            del buf[: len(unit.data)]
            consumed += len(unit.data)
            end = dialect.reply_end(server, s, unit)
            if not interleaved:
                end = end if end is not None else s
            elif consumed < line.client_total:  # what the server sent before the next unit began is ours
                end = max(end if end is not None else s, line.server_offset_when_client_sent(consumed))
            else:
                end = len(server)
            spans.append([unit, event.at, consumed, s, end])
            framer.replied(unit, server[s:end])
            s = end
    if spans:  # a cut-off last unit: the server's last words follow the last whole one
        spans[-1][4] = len(server)
    greeting = Reply(line.pieces(0, first_client if spans else len(server), 0.0))
    steps = [Step(i, unit, Reply(line.pieces(start, end, at))) for i, (unit, at, _, start, end) in enumerate(spans, 1)]
    greeting, steps = _then(line, dialect, greeting, steps, [span[2] for span in spans])
    header = transcript.header
    return Script(name, header.label, header.protocol, header.tls, dialect, greeting, steps, bytes(buf),
                  redacted=header.redacted > 0)


def _then(line: _Timeline, dialect: Dialect, greeting: Reply, steps: list[Step], ends: list[int]):
    """Attach STARTTLS and the server's close to the reply after which they happened."""
    tls, close = set(), set()  # step numbers; 0 = the greeting
    if line.marks:
        for mark, client_at in line.marks:
            after = bisect.bisect_right(ends, client_at)  # units complete before the mark
            if mark.kind == "starttls":
                tls.add(after)
            elif mark.kind == "close" and "server" in mark.detail:
                close.add(after)
    else:  # an imported log without marks: the protocol says what happened
        tls = {step.number for step in steps if dialect.starts_tls(step.unit, step.reply.data)}
        last = steps[-1] if steps else None
        if dialect.closes(last.unit if last else Unit(b"", "greeting"), (last.reply if last else greeting).data):
            close.add(len(steps))
    greeting = replace(greeting, then_tls=0 in tls, then_close=0 in close)
    steps = [replace(step, reply=replace(step.reply, then_tls=step.number in tls, then_close=step.number in close))
             for step in steps]
    return greeting, steps
