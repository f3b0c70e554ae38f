"""Transport faults: a registry like the quirks', applied below the protocol cores.

A fault is data (``FaultSpec``: ``{name, params}``, on the command line
``drop-after-bytes:bytes=50000``) in a profile's ``faults:`` list. Where a quirk changes what a
server *says*, a fault changes how the bytes *travel*: late, slow, cut, reset, never. Faults are
deterministic — triggered by byte and line counts, timed only by the reactor clock (tests pass
``twisted.internet.task.Clock``), random only from a ``seed`` — so a failing run replays.

The IMAP and POP3 adapters wrap each connection's transport in a ``FaultyTransport`` (writes and
closes go through the faults) and tell it about every received chunk (``received``; False = drop
it: the connection is being cut). ``times`` says how many connections of a server get the fault
(from its ``first``-th connection on, default its first; 0 = every one), so a client that
reconnects can finish, and ``first`` aims a fault at one connection (a fetch-ahead thread's).

Registered faults: latency, bandwidth, drop-after-bytes, drop-at-command, bye-mid-fetch, reset,
slow-close, stall (see each class).
"""

from __future__ import annotations

import random
import re
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulators.quirks import QuirkError, QuirkSpec

FaultSpec = QuirkSpec  # same shape and command-line syntax: "name:key=value,key=value"


class FaultError(QuirkError):
    """An unknown fault name, or parameters that do not fit the fault."""


class Fault:
    """One fault on one connection. Subclasses set ``name`` and ``Params`` and override hooks."""

    name: ClassVar[str] = ""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        times: int = 1  # connections affected, from the ``first`` on; 0 = all from it
        first: int = Field(1, ge=1)  # the server's first affected connection (1 = its first)

    def __init__(self, params: BaseModel):
        self.params = params
        self.wire: FaultyTransport | None = None

    def received(self, data: bytes, lines: int) -> bool:
        """Told of each received chunk (``lines`` = lines received so far); False drops it."""
        return True

    def write(self, data: bytes) -> bytes | None:
        """The bytes to pass on now (``None``: this fault took them over and will send them)."""
        return data

    def lose(self) -> bool:
        """The server closes: True when this fault took the close over."""
        return False

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0]


FAULTS: dict[str, type[Fault]] = {}


def register_fault(cls: type[Fault]) -> type[Fault]:
    if not cls.name or FAULTS.get(cls.name, cls) is not cls:
        raise TypeError(f"fault {cls.__qualname__}: no name, or {cls.name!r} registered twice")
    FAULTS[cls.name] = cls
    return cls


def _params(spec: FaultSpec) -> BaseModel:
    try:
        cls = FAULTS[spec.name]
    except KeyError:
        raise FaultError(f"unknown fault {spec.name!r} (known: {', '.join(sorted(FAULTS))})") from None
    try:
        return cls.Params(**spec.params)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise FaultError(f"fault {spec.name!r}: {err['msg']} ({err['loc']})") from None


class FaultPlan:
    """A server's faults: validated once, instantiated per connection (first ``times`` ones)."""

    def __init__(self, specs: list[FaultSpec], clock: Any):
        self.specs = [(FAULTS[s.name], p) for s in specs for p in [_params(s)]]  # _params names a bad one
        self.clock = clock
        self.connections = 0

    def __bool__(self) -> bool:
        return bool(self.specs)

    def wrap(self, transport) -> FaultyTransport | Any:
        self.connections += 1
        n = self.connections
        faults = [cls(p) for cls, p in self.specs if p.first <= n and (p.times == 0 or n < p.first + p.times)]
        return FaultyTransport(transport, faults, self.clock) if faults else transport


class FaultyTransport:
    """A transport whose writes and closes pass through faults; anything else is delegated."""

    def __init__(self, transport, faults: list[Fault], clock):
        self._t = transport
        self.faults = faults
        self.clock = clock
        self.lines = 0
        self.sent = 0  # bytes handed to the real transport
        self._ready_at = 0.0  # when the last delayed write goes out
        # Delayed output in the order it was produced: (due, action, args). One timer drains it, so
        # a TLS start or a close queued behind a reply can never overtake it (two reactor timers
        # due at the same instant have no guaranteed order).
        self._due: deque[tuple[float, Callable, tuple]] = deque()
        self._armed = False
        self.cut = False
        for f in faults:
            f.wire = self

    def __getattr__(self, name):
        return getattr(self._t, name)

    # Inbound ---------------------------------------------------------------------------------

    def received(self, data: bytes) -> bool:
        if self.cut:
            return False
        self.lines += data.count(b"\n")
        return all(f.received(data, self.lines) for f in self.faults) and not self.cut

    # Outbound --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.pass_on(data, 0)

    def pass_on(self, data: bytes | None, start: int) -> None:
        """Run ``data`` through the faults from index ``start`` on, then to the wire."""
        for f in self.faults[start:]:
            if data is None or self.cut:
                return
            data = f.write(data)
            start += 1
        if data and not self.cut:
            self.sent += len(data)
            self._t.write(data)

    def later(self, delay: float, fault: Fault, data: bytes) -> None:
        """Send ``data`` on from after ``fault`` in ``delay`` seconds, behind earlier delayed data."""
        self._ready_at = max(self._ready_at, self.clock.seconds()) + delay
        self._queue(self._ready_at, self.pass_on, data, self.faults.index(fault) + 1)

    def _queue(self, due: float, action: Callable, *args) -> None:
        self._due.append((due, action, args))
        self._arm()

    def _arm(self) -> None:
        if self._due and not self._armed:
            self._armed = True
            self.clock.callLater(max(0.0, self._due[0][0] - self.clock.seconds()), self._drain)

    def _drain(self) -> None:
        self._armed = False
        while self._due and self._due[0][0] <= self.clock.seconds():
            _, action, args = self._due.popleft()
            action(*args)
        self._arm()

    def loseConnection(self) -> None:
        if not any(f.lose() for f in self.faults):
            self._when_sent(self._t.loseConnection)

    def startTLS(self, context_factory) -> None:
        # The reply announcing TLS may still be held back (latency, bandwidth): it must reach the
        # client in the clear, so the handshake starts only behind it.
        self._when_sent(self._t.startTLS, context_factory)

    def _when_sent(self, action: Callable, *args) -> None:
        if self._due:  # delayed data still to go: act behind it
            self._queue(self._ready_at, action, *args)
        else:
            action(*args)

    def abort(self) -> None:
        self.cut = True
        self._t.abortConnection()

    def abort_after_written(self) -> None:
        """Cut the connection once what was written has left: Twisted's ``abortConnection`` drops
        its unsent buffer, so bytes written just before it would never reach the client. Here the
        close waits for the buffer and, with SO_LINGER (1, 0), still ends in a RST (after Twisted's
        shutdown, so the client reads the bytes, then EOF, then a reset on its next read or write)."""
        self.cut = True
        sock = _tcp_socket(self._t)
        if sock is None:  # an in-memory transport (tests): nothing is buffered
            self._t.abortConnection()
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already closed by the peer: the close below is all there is to do
        self._t.loseConnection()


def _tcp_socket(transport) -> socket.socket | None:
    """The TCP socket under a Twisted transport (TLS wrappers keep theirs in ``.transport``)."""
    for t in (transport, getattr(transport, "transport", None)):
        handle = t.getHandle() if hasattr(t, "getHandle") else None
        if isinstance(handle, socket.socket):
            return handle
    return None


# The faults -----------------------------------------------------------------------------------


@register_fault
class Latency(Fault):
    """Every reply written ``ms`` milliseconds late (plus seeded jitter up to ``jitter_ms``)."""

    name = "latency"

    class Params(Fault.Params):
        ms: float = 100
        jitter_ms: float = 0
        seed: int = 1
        times: int = 0

    def __init__(self, params):
        super().__init__(params)
        self._random = random.Random(params.seed)

    def write(self, data):
        jitter = self._random.uniform(0, self.params.jitter_ms) if self.params.jitter_ms else 0
        self.wire.later((self.params.ms + jitter) / 1000, self, data)
        return None


@register_fault
class Bandwidth(Fault):
    """Replies trickle at ``bytes_per_second`` (chunks of ``chunk`` bytes, paced by the clock)."""

    name = "bandwidth"

    class Params(Fault.Params):
        bytes_per_second: int = 65536
        chunk: int = 4096
        times: int = 0

    def write(self, data):
        step = self.params.chunk
        for i in range(0, len(data), step):
            piece = data[i : i + step]
            self.wire.later(len(piece) / self.params.bytes_per_second, self, piece)
        return None


@register_fault
class DropAfterBytes(Fault):
    """The connection is cut (RST) once ``bytes`` bytes of replies were written (the client gets exactly those)."""

    name = "drop-after-bytes"

    class Params(Fault.Params):
        bytes: int = 50000

    def write(self, data):
        room = self.params.bytes - self.wire.sent
        if len(data) < room:
            return data
        self.wire.sent += max(room, 0)
        if room > 0:
            self.wire._t.write(data[:room])
        self.wire.abort_after_written()
        return None


class _AtCommand(Fault):
    """Triggered once, when the ``command``-th line arrives; ``trigger`` says whether it is dropped."""

    class Params(Fault.Params):
        command: int = 3

    def received(self, data, lines):
        return lines < self.params.command or self.trigger()

    def trigger(self) -> bool:
        raise NotImplementedError


@register_fault
class DropAtCommand(_AtCommand):
    """The connection is closed (FIN, no reply) when the ``command``-th line arrives."""

    name = "drop-at-command"

    def trigger(self):
        self.wire.cut = True
        self.wire._t.loseConnection()
        return False


@register_fault
class Reset(_AtCommand):
    """The connection is reset (RST, abortConnection) when the ``command``-th line arrives."""

    name = "reset"

    def trigger(self):
        self.wire.abort()
        return False


_LITERAL = re.compile(rb"\* \d+ FETCH \([^\r\n]*\{(\d+)\}\r\n")


@register_fault
class ByeMidFetch(Fault):
    """Untagged ``* BYE`` inside the ``message``-th FETCH literal (after ``cut`` of its bytes), then close."""

    name = "bye-mid-fetch"

    class Params(Fault.Params):
        message: int = 1
        cut: float = 0.5  # share of the literal written before the BYE
        text: str = "Session expired, please login again"

    def __init__(self, params):
        super().__init__(params)
        self.literals = 0
        self.done = False
        self.left: int | None = None  # bytes of the chosen literal still to pass before the BYE

    def write(self, data):
        if self.done:
            return None
        if self.left is not None:  # a large literal comes in later writes than its FETCH line
            return self._cut(data, 0)
        for m in _LITERAL.finditer(data):
            self.literals += 1
            if self.literals == self.params.message:
                self.left = int(int(m.group(1)) * self.params.cut)
                return self._cut(data, m.end())
        return data

    def _cut(self, data, start: int):
        """Pass ``data`` on, or up to the cut point followed by the BYE (then close)."""
        if len(data) - start < self.left:
            self.left -= len(data) - start
            return data
        end = start + self.left
        self.done = True
        self.wire.pass_on(data[:end] + b"\r\n* BYE " + self.params.text.encode() + b"\r\n",
                          self.wire.faults.index(self) + 1)
        self.wire.cut = True
        self.wire._when_sent(self.wire._t.loseConnection)
        return None


@register_fault
class SlowClose(Fault):
    """The server's close (after LOGOUT/BYE) happens ``ms`` milliseconds late."""

    name = "slow-close"

    class Params(Fault.Params):
        ms: float = 5000
        times: int = 0

    def lose(self):
        self.wire.clock.callLater(self.params.ms / 1000, self.wire._when_sent, self.wire._t.loseConnection)
        return True


@register_fault
class Stall(_AtCommand):
    """From the ``command``-th line on, nothing more is written; the connection stays open."""

    name = "stall"
    stalled = False

    def trigger(self):
        self.stalled = True
        return True  # the command still runs; its reply is swallowed

    def write(self, data):
        return None if self.stalled else data
