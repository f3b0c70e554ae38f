"""The replay core for one connection: client bytes in, recorded server bytes (or a divergence) out.

    session = ReplaySession([script])            # or pool.open(): the unused recorded sessions
    out = session.start()                        # [Send(delay, greeting)]
    out = session.receive_data(b"a1 LOGIN alice secret\\r\\n")
    # out: Send(delay, bytes) with the delay after the unit arrived (--pace recorded waits it out),
    #      START_TLS, CLOSE — in order

Matching: each complete client unit is compared with the next recorded unit (``Dialect.key``:
IMAP without its tag; a redacted transcript's ``*`` runs match any bytes of the same length).
Strict (default): a unit that does not match is answered with the protocol's error — IMAP
``tag BAD``, POP3 ``-ERR``, SMTP ``500`` — saying "replay diverged: expected …, got …", recorded
as a ``Divergence``, and the next unit is compared with the same recorded one. Lenient: the
replay skips ahead to the next recorded unit that matches and notes what it skipped.

Several recorded sessions can be candidates for one connection (parallel connections whose
order differs between runs): the session follows every candidate whose units and replies agree
with what happened so far, answers from the first (file order), and drops those that disagree;
a ``Pool`` hands each recorded session to one connection only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from simulators.replay.dialect import Unit
from simulators.replay.script import Reply, Script, Step


class Signal(enum.Enum):
    START_TLS = "start-tls"
    CLOSE = "close"


START_TLS, CLOSE = Signal.START_TLS, Signal.CLOSE


@dataclass(frozen=True)
class Send:
    delay: float  # seconds after the unit arrived (the connection was made, for the greeting)
    data: bytes


Output = Send | Signal


@dataclass(frozen=True)
class Divergence:
    script: str  # the recorded session's name ("" when none was left)
    step: int  # the recorded step that was expected (len(steps) + 1: the end of the recording)
    expected: str
    got: str

    def __str__(self) -> str:
        where = f"{self.script}, step {self.step}" if self.script else "no recorded session"
        return f"{where}: expected {self.expected}, got {self.got}"


@dataclass(frozen=True)
class Skip:
    script: str
    steps: tuple[str, ...]  # the recorded units skipped over, described


class Pool:
    """Who may play which recorded session; the default lets one session play its own script."""

    def available(self, script: Script, session: ReplaySession) -> bool:
        return True

    def claim(self, script: Script, session: ReplaySession) -> None:
        pass


@dataclass
class _Candidate:
    script: Script
    cursor: int = 0  # index of the next recorded step
    tags: dict[str, str] = field(default_factory=dict)  # recorded tag → live tag (IMAP)


def wildcard_equal(recorded: bytes, live: bytes, wildcard: bool) -> bool:
    """Equal bytes, or — in a redacted recording — equal but where the recording holds ``*``
    (a masked secret of the same length), which matches any byte but CR and LF."""
    if recorded == live:
        return True
    if not wildcard or len(recorded) != len(live) or b"*" not in recorded:
        return False
    return all(r == l or (r == 0x2A and l not in (0x0D, 0x0A)) for r, l in zip(recorded, live))


def apply_edits(reply: Reply, edits: list[tuple[int, int, bytes]]) -> list[tuple[float, bytes]]:
    """The reply's pieces with ``edits`` applied; the pieces stay cut where they were recorded."""
    if not edits:
        return [(p.delay, p.data) for p in reply.pieces]
    data, parts, pos = reply.data, [], 0
    for a, b, new in edits:
        parts += [data[pos:a], new]
        pos = b
    edited = b"".join(parts) + data[pos:]

    def moved(x: int) -> int:  # an original offset in the edited bytes (inside an edit: its start)
        shift = 0
        for a, b, new in edits:
            if b <= x:
                shift += len(new) - (b - a)
            elif a < x:
                return a + shift
        return x + shift

    out, start = [], 0
    for piece in reply.pieces:
        end = start + len(piece.data)
        out.append((piece.delay, edited[moved(start):moved(end)]))
        start = end
    return out


class ReplaySession:
    def __init__(self, candidates: list[Script], *, lenient: bool = False, pool: Pool | None = None) -> None:
        self._candidates = [_Candidate(s) for s in candidates]
        self.lenient = lenient
        self._pool = pool or Pool()
        first = candidates[0] if candidates else None
        self.dialect = first.dialect if first else None
        self._framer = self.dialect.framer() if self.dialect else None
        self._buf = bytearray()
        self.done = False
        self.matched = 0
        self.divergences: list[Divergence] = []
        self.skipped: list[Skip] = []
        self.script: Script | None = first  # the recorded session being played (first candidate)

    # the adapter's calls ----------------------------------------------------------------------

    def start(self) -> list[Output]:
        if not self._candidates:
            self.divergences.append(Divergence("", 0, "a recorded session", "one connection more than recorded"))
            self.done = True
            return [CLOSE]
        greeting = self._candidates[0].script.greeting
        self._candidates = [c for c in self._candidates if c.script.greeting.data == greeting.data]
        self._narrowed()
        return self._outputs([(p.delay, p.data) for p in greeting.pieces], greeting)

    def receive_data(self, data: bytes) -> list[Output]:
        if self.done or self._framer is None:
            return []
        self._buf += data
        out: list[Output] = []
        while not self.done and (unit := self._framer.next_unit(self._buf)) is not None:
            del self._buf[: len(unit.data)]
            out += self._answer(unit)
        return out

    def closed(self) -> None:
        """The connection is gone: the session keeps the recorded session it played."""
        self.done = True
        if self._candidates:
            self._pool.claim(self._candidates[0].script, self)

    @property
    def remaining(self) -> int:
        """Recorded steps not played (of the session being played)."""
        first = self._candidates[0] if self._candidates else None
        return len(first.script.steps) - first.cursor if first else 0

    # matching ---------------------------------------------------------------------------------

    def _answer(self, unit: Unit) -> list[Output]:
        self._candidates = [c for c in self._candidates if self._pool.available(c.script, self)] or self._candidates
        found = [(c, j) for c in self._candidates if (j := self._find(c, unit)) is not None]
        if not found:
            return self._diverged(unit)
        skip = min(j - c.cursor for c, j in found)
        found = [(c, j) for c, j in found if j - c.cursor == skip]
        replies = []
        for c, j in found:
            step = c.script.steps[j]
            if unit.kind == "command" and step.unit.tag:
                c.tags[step.unit.tag] = unit.tag
            replies.append(apply_edits(step.reply, self.dialect.edits(step.reply.data, c.tags)))
        first, j = found[0]
        if skip:
            self.skipped.append(Skip(first.script.name, tuple(self.dialect.describe(s.unit)
                                                               for s in first.script.steps[first.cursor:j])))
        self._candidates = [c for (c, _), r in zip(found, replies) if r == replies[0]]
        for c in self._candidates:
            c.cursor += skip + 1
        self._narrowed()
        self.matched += 1
        step: Step = first.script.steps[j]
        self._framer.replied(unit, b"".join(data for _, data in replies[0]))
        return self._outputs(replies[0], step.reply)

    def _find(self, c: _Candidate, unit: Unit) -> int | None:
        steps = c.script.steps
        last = len(steps) if self.lenient else min(len(steps), c.cursor + 1)
        wildcard = c.script.redacted
        key = self.dialect.key(unit)
        for j in range(c.cursor, last):
            recorded = steps[j].unit
            if recorded.kind == unit.kind and wildcard_equal(self.dialect.key(recorded), key, wildcard):
                return j
        return None

    def _diverged(self, unit: Unit) -> list[Output]:
        c = self._candidates[0]
        steps = c.script.steps
        expected = self.dialect.describe(steps[c.cursor].unit) if c.cursor < len(steps) else "the end of the recorded session"
        got = self.dialect.describe(unit)
        if got == expected:
            got += " (a hidden secret differs, or its length)"
        self.divergences.append(Divergence(c.script.name, c.cursor + 1, expected, got))
        reply = self.dialect.error_reply(unit, f"replay diverged: expected {expected}, got {got}")
        self._framer.replied(unit, reply)
        return [Send(0.0, reply)]

    def _narrowed(self) -> None:
        self.script = self._candidates[0].script
        if len(self._candidates) == 1:
            self._pool.claim(self.script, self)

    def _outputs(self, pieces: list[tuple[float, bytes]], reply: Reply) -> list[Output]:
        out: list[Output] = [Send(delay, data) for delay, data in pieces if data]
        if reply.then_tls:
            out.append(START_TLS)
        if reply.then_close:
            out.append(CLOSE)
            self.done = True
        return out
