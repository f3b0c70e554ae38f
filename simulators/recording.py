"""The simulator's side of a connection as a transcript (``serve --record DIR``, ``SimulatorWorld.record``).

Useful where the engine records nothing: an external client (mbsync, fetchmail, exchangelib, a
customer's tool) talking to a simulator. Every listening front (IMAP, POP3, EWS) is served through
a ``RecordingFactory``: a Twisted ``WrappingFactory`` whose protocol sits between the real
transport and the front's own protocol, so the fronts know nothing of it. That is above TLS
(plaintext) and below the faults, which wrap the transport the front sees: what is recorded is
what went on the wire. The client's secrets are masked as in the engine's transcripts.
SMTP runs on asyncio, not Twisted: ``simulators.smtp.recording`` records it the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.protocols import policies

from transcripts.tap import LabelledRecorder, SessionTap


class _RecordingProtocol(policies.ProtocolWrapper):
    """One connection of a wrapped factory: what arrives and what the protocol writes, recorded."""

    tap: SessionTap | None = None

    def makeConnection(self, transport) -> None:
        recorder = self.factory.recorder_of()
        if recorder is not None:
            address = transport.getHost()
            self.tap = recorder.opener(self.factory.protocol_name, address.host, address.port)(transport)
            if self.tap is not None and self.factory.implicit_tls:
                self.tap.tls_started()
        super().makeConnection(transport)

    def dataReceived(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap.client(data)
        super().dataReceived(data)

    def write(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap.server(data)
        super().write(data)

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))

    def startTLS(self, context_factory) -> None:
        if self.tap is not None:
            self.tap.tls_started()
        self.transport.startTLS(context_factory)

    def loseConnection(self) -> None:
        if self.tap is not None:
            self.tap.closed_by("server")
        super().loseConnection()

    def abortConnection(self) -> None:
        if self.tap is not None:
            self.tap.closed_by("server")
        self.transport.abortConnection()

    def connectionLost(self, reason) -> None:
        self.connected = 0  # as the real transport is by now: the fronts ask transport.connected
        if self.tap is not None:
            self.tap.closed_by("client")
            self.tap.finish()
        super().connectionLost(reason)


class RecordingFactory(policies.WrappingFactory):
    """Wraps a front's Twisted factory: each new connection is recorded when ``recorder_of()``
    gives a recorder at that moment, else passed through untouched."""

    protocol = _RecordingProtocol

    def __init__(self, wrapped, recorder_of: Callable[[], LabelledRecorder | None], protocol_name: str,
                 implicit_tls: bool) -> None:
        super().__init__(wrapped)
        self.recorder_of, self.protocol_name, self.implicit_tls = recorder_of, protocol_name, implicit_tls
