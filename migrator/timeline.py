"""When a run waited, lost a connection and got it back: timestamped events for the report.

The report's counts say *that* a run was throttled or reconnected; the events say *when*, so
report.html can draw them on one timeline with the run's length (and a reader can see a backoff
storm, or a BYE followed by a slow re-login). Instants are seconds since the run started on the
monotonic clock, so a wall-clock step during a run cannot reorder them.

Kinds (``RunEvent.kind``):
    backoff    a wait before sending a refused command again; ``seconds`` long, ``cause`` the
               reply that asked for it (``Suggested Backoff Time``, ``[THROTTLED]``, SMTP 421)
    bye        the server said ``* BYE`` before the connection went (``cause`` its text)
    reconnect  a lost connection opened again: ``attempt`` (per role, from 1), ``outcome``
               ("resumed" or "failed"), ``cause`` why the old one was lost

Thread-safe: the engine's folder workers and fetch-ahead threads record into one timeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from migrator.report import RunEvent

BACKOFF, BYE, RECONNECT = "backoff", "bye", "reconnect"
RESUMED, FAILED = "resumed", "failed"


class Timeline:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock, self._sleep = clock, sleep
        self._t0 = clock()
        self._lock = threading.Lock()
        self._events: list[RunEvent] = []
        self._attempts: dict[str, int] = {}

    def now(self) -> float:
        return round(self._clock() - self._t0, 3)

    def _add(self, event: RunEvent) -> RunEvent:
        with self._lock:
            self._events.append(event)
        return event

    def backoff(self, seconds: float, cause: str, *, where: str, attempt: int) -> None:
        """Record a wait that begins now, then wait it out."""
        self._add(RunEvent(kind=BACKOFF, at=self.now(), seconds=round(seconds, 3), role=_role(where),
                           where=where, cause=cause, attempt=attempt))
        self._sleep(seconds)

    def bye(self, text: str, *, where: str) -> None:
        self._add(RunEvent(kind=BYE, at=self.now(), role=_role(where), where=where, cause=text))

    def reconnect(self, cause: str, *, where: str, outcome: str) -> None:
        """A lost connection was opened again (``RESUMED``) or could not be (``FAILED``)."""
        role = _role(where)
        with self._lock:
            attempt = self._attempts[role] = self._attempts.get(role, 0) + 1
        self._add(RunEvent(kind=RECONNECT, at=self.now(), role=role, where=where, cause=cause, attempt=attempt,
                           outcome=outcome))

    def events(self) -> list[RunEvent]:
        """Everything recorded, in time order (threads may append slightly out of order)."""
        with self._lock:
            return sorted(self._events, key=lambda e: e.at)


def _role(where: str) -> str:
    """``where`` texts start with the side: "source imap://…", "destination lmtp://…"."""
    first = where.split(" ", 1)[0]
    return first if first in ("source", "destination") else ""
