"""The simulator's side of a connection as a transcript (``serve --record DIR``, ``SimulatorWorld.record``).

Useful where the engine records nothing: an external client (mbsync, fetchmail, exchangelib, a
customer's tool) talking to a simulator. The IMAP and POP3 fronts wrap each connection's Twisted
transport in a ``RecordingTransport`` — below the faults, so what is recorded is what went on the
wire — and hand it what they receive; the EWS front (twisted.web) is wrapped whole by a
``RecordingFactory``. Twisted gives and takes plaintext on either side of TLS, so the transcript
is plaintext too; the client's secrets are masked as in the engine's transcripts.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.protocols import policies

from transcripts.tap import LabelledRecorder, SessionTap


class RecordingTransport:
    """A transport whose writes, TLS start and close are recorded; anything else is delegated."""

    def __init__(self, transport, tap: SessionTap) -> None:
        self._t = transport
        self.tap = tap

    def __getattr__(self, name):
        return getattr(self._t, name)

    def write(self, data: bytes) -> None:
        self.tap.server(data)
        self._t.write(data)

    def writeSequence(self, seq) -> None:
        self.write(b"".join(seq))

    def startTLS(self, context_factory) -> None:
        self.tap.tls_started()
        self._t.startTLS(context_factory)

    def loseConnection(self) -> None:
        self.tap.closed_by("server")
        self._t.loseConnection()

    def abortConnection(self) -> None:
        self.tap.closed_by("server")
        self._t.abortConnection()

    def received(self, data: bytes) -> None:
        self.tap.client(data)

    def lost(self) -> None:
        """The connection is gone: whoever did not close it first, the client did."""
        self.tap.closed_by("client")
        self.tap.finish()


def recording_transport(transport, recorder: LabelledRecorder, protocol: str,
                        implicit_tls: bool) -> RecordingTransport | None:
    """The transport recorded, or None when its transcript cannot be opened (the recorder says why)."""
    address = transport.getHost()  # the simulator's own listening address: what the client dialled
    tap = recorder.opener(protocol, address.host, address.port)(transport)
    if tap is None:
        return None
    if implicit_tls:
        tap.tls_started()
    return RecordingTransport(transport, tap)


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

    def loseConnection(self) -> None:
        if self.tap is not None:
            self.tap.closed_by("server")
        super().loseConnection()

    def connectionLost(self, reason) -> None:
        if self.tap is not None:
            self.tap.closed_by("client")
            self.tap.finish()
        super().connectionLost(reason)


class RecordingFactory(policies.WrappingFactory):
    """Wraps a whole Twisted factory (the EWS site): each new connection is recorded when
    ``recorder_of()`` gives a recorder at that moment, else passed through untouched."""

    protocol = _RecordingProtocol

    def __init__(self, wrapped, recorder_of: Callable[[], LabelledRecorder | None], protocol_name: str,
                 implicit_tls: bool) -> None:
        super().__init__(wrapped)
        self.recorder_of, self.protocol_name, self.implicit_tls = recorder_of, protocol_name, implicit_tls

    def __getattr__(self, name: str):
        # the world treats it as the site it wraps (close_connections, quirks)
        if name == "wrappedFactory":
            raise AttributeError(name)
        return getattr(self.wrappedFactory, name)
