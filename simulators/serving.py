"""What the Twisted adapters of the IMAP and POP3 fronts share.

One factory per listening server holds the store, the profile, the TLS options and the server's
quirk objects (built once, so counting quirks count per server as a provider does, not per
connection). Each connection registers with its factory, runs the profile's autologout timer,
and can be awaited until closed, so ``SimulatorWorld.stop()`` can drop every live connection and
know when they are gone.
"""

from __future__ import annotations

from typing import ClassVar

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IDelayedCall

from simulators.faults import FaultPlan, FaultyTransport
from simulators.profiles import Profile
from simulators.quirks import build_all
from simulators.reactor import reactor
from simulators.session import CLOSE, START_TLS, Signal
from simulators.store import Store


class FrontFactory(protocol.Factory):
    """One listening server of a front; subclasses name the ``protocol_name`` ("imap", "pop3")."""

    protocol_name: ClassVar[str]

    def __init__(
        self, store: Store, profile: Profile, *, tls_options=None, implicit_tls: bool = False, clock=None
    ):
        self.store = store
        self.profile = profile
        self.clock = clock or reactor  # tests pass twisted.internet.task.Clock
        self.tls_options = tls_options  # None = no STARTTLS / STLS offered
        self.implicit_tls = implicit_tls
        self.connections: set[FrontProtocol] = set()
        self.quirks = build_all(profile.quirks, self.protocol_name)
        self.faults = FaultPlan(profile.faults, self.clock)  # FaultError (a ValueError) when bad

    @property
    def autologout_seconds(self) -> float:
        return getattr(self.profile, self.protocol_name).autologout_seconds

    def close_connections(self) -> defer.Deferred:
        waits = [c.when_closed() for c in list(self.connections)]
        for c in list(self.connections):
            c.transport.abortConnection()
        return defer.DeferredList(waits)


class FrontProtocol(protocol.Protocol):
    """Connection bookkeeping: call ``_register`` when made, ``_touch`` on data, ``_release`` when lost;
    ``_signal`` carries out the engine's START_TLS and CLOSE."""

    def __init__(self, factory: FrontFactory):
        self.factory = factory
        self._timer: IDelayedCall | None = None
        self._waiters: list[defer.Deferred] = []
        self._closing = False

    def dataReceived(self, data: bytes) -> None:
        # Subclasses own ``session`` (their sans-I/O engine) and ``_emit`` (writing its outputs).
        if not self._inbound(data):
            return
        self._touch()
        self._emit(self.session.receive_data(data))

    def _register(self) -> None:
        if self.factory.faults:  # writes and closes of this connection go through its faults
            self.transport = self.factory.faults.wrap(self.transport)
        self.factory.connections.add(self)
        self._timer = self.factory.clock.callLater(self.factory.autologout_seconds, self._autologout)

    def _inbound(self, data: bytes) -> bool:
        """Received bytes pass the faults (False: drop them, the connection is being cut)."""
        return not isinstance(self.transport, FaultyTransport) or self.transport.received(data)

    def _touch(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.autologout_seconds)

    def _release(self) -> None:
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

    def _autologout(self) -> None:
        self._emit(self.session.timeout())

    def _signal(self, out: Signal) -> None:
        """Carry out START_TLS or CLOSE, the outputs both engines give besides bytes."""
        if out is START_TLS:
            self.transport.startTLS(self.factory.tls_options)
            self.session.tls_started()
        elif out is CLOSE:
            self._closing = True
            self.transport.loseConnection()
