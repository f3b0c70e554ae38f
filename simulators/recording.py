"""The simulator's side of a connection as a transcript (``serve --record DIR``, ``SimulatorWorld.record``).

Useful where the engine records nothing: an external client (mbsync, fetchmail, a customer's
tool) talking to a simulator. The IMAP and POP3 fronts wrap each connection's Twisted transport
in a ``RecordingTransport`` — below the faults, so what is recorded is what went on the wire —
and hand it what they receive. Twisted gives and takes plaintext on either side of TLS, so the
transcript is plaintext too; the client's secrets are masked as in the engine's transcripts.
"""

from __future__ import annotations

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
