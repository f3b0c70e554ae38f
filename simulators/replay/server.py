"""Serving recorded sessions on 127.0.0.1: the Twisted adapter of ``ReplaySession``.

    server = ReplayServer(scripts, lenient=False, pace="fast")
    endpoints = server.start()          # one listener per (label, protocol) group, port 0
    ...                                  # clients connect; each connection plays a recording
    server.finished                      # every recording played and closed (--once)
    summary = server.summary()           # sessions, matched units, divergences, skips
    server.stop()

Recordings are grouped by their header's label and protocol ("source" and "destination" of a
recorded migration get a port each), in file order within a group. The adapter only moves
bytes: it writes the session's outputs in order — at once with ``pace="fast"``, or each piece at
its recorded delay after the unit that caused it with ``pace="recorded"`` (a throttling server
stays slow) — starts TLS and closes when told. A group recorded over implicit TLS listens with
TLS; STARTTLS recordings offer it where it was recorded. The certificate is a fresh self-signed
one like the simulators' (``cafile``: a client must trust it).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import defer, protocol

from simulators import reactor as bg
from simulators.replay.pool import PoolSummary, SessionPool
from simulators.replay.script import Script
from simulators.replay.session import CLOSE, START_TLS, Output, Send

PACES = ("fast", "recorded")


class ReplayServerError(RuntimeError):
    """A replay listener that could not start (a port in use ...): says which and why."""


@dataclass(frozen=True)
class ReplayEndpoint:
    label: str
    protocol: str
    host: str
    port: int
    implicit_tls: bool
    sessions: int  # recordings in this group

    def url(self, user: str = "user") -> str:
        if self.protocol == "http":
            return f"http{'s' if self.implicit_tls else ''}://{self.host}:{self.port}"
        return f"{self.protocol}{'s' if self.implicit_tls else ''}://{user}@{self.host}:{self.port}"


class ReplayProtocol(protocol.Protocol):
    def __init__(self, factory: ReplayFactory) -> None:
        self.factory = factory
        self.session = None
        self._queue: deque[tuple[float, Output]] = deque()
        self._timer = None
        self._closing = False

    def connectionMade(self) -> None:
        self.factory.connections.add(self)
        self.session = self.factory.pool.open()
        self._emit(self.session.start())

    def dataReceived(self, data: bytes) -> None:
        if not self._closing:
            self._emit(self.session.receive_data(data))

    def connectionLost(self, reason=None) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._queue.clear()
        self.session.closed()
        self.factory.connections.discard(self)
        for d in self.factory.waiters.pop(self, []):
            d.callback(None)

    def _emit(self, outputs: list[Output]) -> None:
        now = self.factory.clock.seconds()
        paced = self.factory.pace == "recorded"
        for out in outputs:
            due = now + out.delay if paced and isinstance(out, Send) else now
            self._queue.append((due, out))
        self._drain()

    def _drain(self) -> None:
        self._timer = None
        while self._queue and not self._closing:
            due, out = self._queue[0]
            wait = due - self.factory.clock.seconds()
            if wait > 0.0005:
                self._timer = self.factory.clock.callLater(wait, self._drain)
                return
            self._queue.popleft()
            if isinstance(out, Send):
                self.transport.write(out.data)
            elif out is START_TLS:
                self.transport.startTLS(self.factory.tls_options())
            elif out is CLOSE:
                self._closing = True
                self.transport.loseConnection()


class ReplayFactory(protocol.Factory):
    def __init__(self, pool: SessionPool, *, pace: str, tls_options, clock=None) -> None:
        self.pool = pool
        self.pace = pace
        self.tls_options = tls_options  # a callable: the server's TLS context factory, made on demand
        self.clock = clock or bg.reactor
        self.connections: set[ReplayProtocol] = set()
        self.waiters: dict[ReplayProtocol, list[defer.Deferred]] = {}

    def buildProtocol(self, addr) -> ReplayProtocol:
        return ReplayProtocol(self)

    def close_connections(self) -> defer.Deferred:
        waits = []
        for c in list(self.connections):
            d = defer.Deferred()
            self.waiters.setdefault(c, []).append(d)
            waits.append(d)
            c.transport.abortConnection()
        return defer.DeferredList(waits)


def group(scripts: list[Script]) -> list[list[Script]]:
    """Recordings by (label, protocol), groups and members in file order."""
    groups: dict[tuple[str, str], list[Script]] = {}
    for script in scripts:
        groups.setdefault((script.label, script.protocol.value), []).append(script)
    return list(groups.values())


class ReplayServer:
    def __init__(self, scripts: list[Script], *, lenient: bool = False, pace: str = "fast",
                 host: str = "127.0.0.1") -> None:
        if pace not in PACES:
            raise ValueError(f"pace must be one of {', '.join(PACES)}, not {pace!r}")
        self.host = host
        self.pace = pace
        self.pools = [SessionPool(g, lenient=lenient) for g in group(scripts)]
        self._ports: list = []
        self._factories: list[ReplayFactory] = []
        self._dir: Path | None = None
        self._tls = None
        self.cafile: Path | None = None
        self.endpoints: list[ReplayEndpoint] = []

    def __enter__(self) -> ReplayServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, port: int = 0) -> list[ReplayEndpoint]:
        """Listen for every group (the first on ``port``, the others on free ports)."""
        if any(s.tls != "none" for pool in self.pools for s in pool.scripts):
            self._tls_options()  # the CA file exists before anyone is told where to connect
        for i, pool in enumerate(self.pools):
            first = pool.scripts[0]
            implicit = first.tls == "implicit"
            factory = ReplayFactory(pool, pace=self.pace, tls_options=self._tls_options)

            def listen(factory=factory, implicit=implicit, port=port if i == 0 else 0):
                if implicit:
                    return bg.reactor.listenSSL(port, factory, self._tls_options(), interface=self.host)
                return bg.reactor.listenTCP(port, factory, interface=self.host)

            try:
                listening = bg.call(listen)
            except Exception as exc:  # CannotListenError and the like, re-raised by the reactor call
                self.stop()
                raise ReplayServerError(f"cannot listen for {first.protocol.value.upper()} recordings "
                                        f"({first.label or 'no label'}) on {self.host}:{port if i == 0 else 0}: "
                                        f"{exc}") from exc
            self._ports.append(listening)
            self._factories.append(factory)
            self.endpoints.append(ReplayEndpoint(first.label, first.protocol.value, self.host,
                                                 listening.getHost().port, implicit, len(pool.scripts)))
        return self.endpoints

    def _tls_options(self):
        if self._tls is None:
            from simulators.launcher import ServerTLS, self_signed_certificate  # only when TLS is recorded
            from cryptography.hazmat.primitives import serialization

            key, cert = self_signed_certificate(self.host)
            self._dir = Path(tempfile.mkdtemp(prefix="quirkmail-replay-"))
            self.cafile = self._dir / "ca.pem"
            self.cafile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            self._tls = ServerTLS(key, cert)
        return self._tls

    @property
    def finished(self) -> bool:
        """Every recording of every group was played and its connection closed (``--once``)."""
        return bg.call(lambda: all(pool.finished for pool in self.pools))

    def summary(self) -> PoolSummary:
        return bg.call(lambda: _merge([pool.summary() for pool in self.pools]))

    def stop(self) -> None:
        ports, self._ports = self._ports, []
        factories, self._factories = self._factories, []
        bg.close_listeners(ports, factories)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _merge(summaries: list[PoolSummary]) -> PoolSummary:
    out = PoolSummary()
    for s in summaries:
        out.sessions += s.sessions
        out.matched += s.matched
        out.divergences += s.divergences
        out.skipped += s.skipped
        out.unplayed.update(s.unplayed)
        out.unused += s.unused
    return out
