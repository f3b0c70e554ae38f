"""The recorded sessions one replay listener serves, and who played which.

Every new connection gets the recorded sessions nobody has claimed yet as candidates (in file
order); the first connection whose commands single one out — or that closes while following
it — claims it, so two connections never play the same recording. With one recording per
connection in the order they were made this is simply "each connection takes the next one";
with parallel connections whose order differs between runs it still pairs each with its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulators.replay.script import Script
from simulators.replay.session import Divergence, Pool, ReplaySession, Skip


@dataclass
class PoolSummary:
    sessions: int = 0  # connections that played a recorded session
    matched: int = 0  # client units answered from the recording
    divergences: list[Divergence] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    unplayed: dict[str, int] = field(default_factory=dict)  # recorded session → steps never reached
    unused: list[str] = field(default_factory=list)  # recorded sessions no connection played


class SessionPool(Pool):
    def __init__(self, scripts: list[Script], *, lenient: bool = False) -> None:
        self.scripts = list(scripts)
        self.lenient = lenient
        self.sessions: list[ReplaySession] = []
        self._owner: dict[int, ReplaySession] = {}

    def open(self) -> ReplaySession:
        free = [s for s in self.scripts if id(s) not in self._owner]
        session = ReplaySession(free, lenient=self.lenient, pool=self)
        self.sessions.append(session)
        return session

    def available(self, script: Script, session: ReplaySession) -> bool:
        owner = self._owner.get(id(script))
        return owner is None or owner is session

    def claim(self, script: Script, session: ReplaySession) -> None:
        self._owner.setdefault(id(script), session)

    @property
    def finished(self) -> bool:
        """Every recorded session was played and its connection is closed."""
        return len(self._owner) == len(self.scripts) and all(s.done for s in self.sessions)

    def summary(self) -> PoolSummary:
        out = PoolSummary()
        for session in self.sessions:
            played = session.script is not None and self._owner.get(id(session.script)) is session
            out.sessions += played
            out.matched += session.matched
            out.divergences += session.divergences
            out.skipped += session.skipped
            if played and session.remaining:
                out.unplayed[session.script.name] = session.remaining
        out.unused = [s.name for s in self.scripts if id(s) not in self._owner]
        return out
