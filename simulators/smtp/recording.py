"""The SMTP simulator's side of a connection as a transcript (``SimulatorWorld.record``, ``serve --record``).

The Twisted fronts are recorded by ``simulators.recording``'s wrapping factory; aiosmtpd runs on
asyncio, so here the protocol itself is subclassed. What the client sent is what reaches
``data_received`` — plaintext before STARTTLS, and after it too: aiosmtpd's STARTTLS hands the
socket to an ``SSLProtocol`` that feeds this protocol the decrypted bytes. What the server sent
goes through the transport it writes to, which is wrapped: the socket's transport until
STARTTLS, then the TLS layer's application transport. aiosmtpd's ``set_protocol`` on the socket's
transport is the STARTTLS moment: from then on that transport carries ciphertext, unrecorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiosmtpd.smtp import SMTP

from transcripts.tap import LabelledRecorder, SessionTap


class _TappedTransport:
    """An asyncio transport whose writes (and server-side close) are told to a tap while it
    carries plaintext; anything not overridden is the real transport's."""

    def __init__(self, transport: asyncio.Transport, tap: SessionTap, app: asyncio.Protocol) -> None:
        self._transport, self._tap, self._app = transport, tap, app
        self._plain = True  # False once the TLS layer took this transport over

    def write(self, data) -> None:
        if self._plain:
            self._tap.server(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks) -> None:
        self.write(b"".join(chunks))

    def set_protocol(self, protocol) -> None:
        if self._plain and protocol is not self._app:  # aiosmtpd's STARTTLS: TLS from here on
            self._plain = False
            self._tap.tls_started()
        self._transport.set_protocol(protocol)

    def close(self) -> None:
        if self._plain:
            self._tap.closed_by("server")
        self._transport.close()

    def abort(self) -> None:
        if self._plain:
            self._tap.closed_by("server")
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class RecordingSMTP(SMTP):
    """aiosmtpd's SMTP protocol with its connection recorded when ``recorder_of()`` gives a
    recorder as the connection is made (else exactly aiosmtpd's)."""

    def __init__(self, *args, recorder_of: Callable[[], LabelledRecorder | None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._recorder_of = recorder_of
        self._tap: SessionTap | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._tap is None and self._original_transport is None:  # a new connection, not its TLS layer
            recorder = self._recorder_of()
            if recorder is not None:
                host, port = transport.get_extra_info("sockname")[:2]
                self._tap = recorder.opener("smtp", host, port)(transport)
        if self._tap is not None:
            transport = _TappedTransport(transport, self._tap, self)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._tap is not None:
            self._tap.client(data)
        super().data_received(data)

    def eof_received(self) -> bool | None:
        if self._tap is not None:  # the client closed first: aiosmtpd's close that follows answers it
            self._tap.closed_by("client")
        return super().eof_received()

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._tap is not None:
                self._tap.closed_by("client")
                self._tap.finish()
