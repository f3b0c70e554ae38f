"""Twisted adapter for the POP3 engine: sockets, TLS, the autologout timer. Nothing else.

Everything protocol-related happens in ``Pop3Session``; this module writes its bytes, starts TLS
when it says so (STLS), closes when told, and tells it when the peer went away (so nothing is
deleted) or stayed silent for ``profile.pop3.autologout_seconds``.
"""

from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IDelayedCall

from simulators.pop3.engine import CLOSE, START_TLS, Output, Pop3Session
from simulators.profiles import Profile
from simulators.quirks import build_all
from simulators.reactor import reactor
from simulators.store import Store


class Pop3ServerProtocol(protocol.Protocol):
    def __init__(self, factory: Pop3ServerFactory):
        self.factory = factory
        self.session: Pop3Session | None = None
        self._timer: IDelayedCall | None = None
        self._waiters: list[defer.Deferred] = []
        self._closing = False

    def connectionMade(self) -> None:
        f = self.factory
        self.session = Pop3Session(
            f.store, f.profile, f.quirks,
            tls_active=f.implicit_tls, tls_available=f.tls_options is not None, clock=f.clock.seconds,
        )
        f.connections.add(self)
        self._timer = f.clock.callLater(f.profile.pop3.autologout_seconds, self._autologout)
        self._emit(self.session.start())

    def dataReceived(self, data: bytes) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.profile.pop3.autologout_seconds)
        self._emit(self.session.receive_data(data))

    def connectionLost(self, reason=None) -> None:
        self.session.connection_lost()
        self.factory.connections.discard(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def when_closed(self) -> defer.Deferred:
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def _emit(self, outputs: list[Output]) -> None:
        for out in outputs:
            if self._closing:
                return
            if out is START_TLS:
                self.transport.startTLS(self.factory.tls_options)
                self.session.tls_started()
            elif out is CLOSE:
                self._closing = True
                self.transport.loseConnection()
            else:
                self.transport.write(out)

    def _autologout(self) -> None:
        self._emit(self.session.timeout())


class Pop3ServerFactory(protocol.Factory):
    """One listening POP3 server: a store, a profile, and TLS options (None = no STLS)."""

    def __init__(
        self, store: Store, profile: Profile, *, tls_options=None, implicit_tls: bool = False, clock=None
    ):
        self.store = store
        self.profile = profile
        self.clock = clock or reactor  # tests pass twisted.internet.task.Clock
        self.tls_options = tls_options
        self.implicit_tls = implicit_tls
        self.connections: set[Pop3ServerProtocol] = set()
        # One set of quirk objects per server, shared by its connections (counting quirks count
        # per server, LOGIN-DELAY remembers logins across connections).
        self.quirks = build_all(profile.quirks, "pop3")

    def buildProtocol(self, addr) -> Pop3ServerProtocol:
        return Pop3ServerProtocol(self)

    def close_connections(self) -> defer.Deferred:
        waits = [c.when_closed() for c in list(self.connections)]
        for c in list(self.connections):
            c.transport.abortConnection()
        return defer.DeferredList(waits)
