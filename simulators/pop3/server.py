"""Twisted adapter for the POP3 engine: sockets, TLS, the autologout timer. Nothing else.

Everything protocol-related happens in ``Pop3Session``; this module writes its bytes, starts TLS
when it says so (STLS), closes when told, and tells it when the peer went away (so nothing is
deleted) or stayed silent for ``profile.pop3.autologout_seconds``.
"""

from __future__ import annotations

from simulators.pop3.engine import Output, Pop3Session
from simulators.session import Signal
from simulators.serving import FrontFactory, FrontProtocol


class Pop3ServerProtocol(FrontProtocol):
    def __init__(self, factory: Pop3ServerFactory):
        super().__init__(factory)
        self.session: Pop3Session | None = None

    def connectionMade(self) -> None:
        f = self.factory
        self.session = Pop3Session(
            f.store, f.profile, f.quirks,
            tls_active=f.implicit_tls, tls_available=f.tls_options is not None, clock=f.clock.seconds,
        )
        self._register()
        self._emit(self.session.start())

    def connectionLost(self, reason=None) -> None:
        self.session.connection_lost()
        self._release()

    def _emit(self, outputs: list[Output]) -> None:
        for out in outputs:
            if self._closing:
                return
            if isinstance(out, Signal):
                self._signal(out)
            else:
                self.transport.write(out)


class Pop3ServerFactory(FrontFactory):
    """One listening POP3 server: a store, a profile, and TLS options (None = no STLS).

    Its quirk objects are shared by its connections, so LOGIN-DELAY remembers logins across them.
    """

    protocol_name = "pop3"

    def buildProtocol(self, addr) -> Pop3ServerProtocol:
        return Pop3ServerProtocol(self)
