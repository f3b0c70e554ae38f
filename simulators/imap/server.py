"""Twisted adapter for the IMAP engine: sockets, TLS, timers, per-user connection limits.

Everything protocol-related happens in ``ImapSession``; this module only moves bytes, starts TLS
when the engine says so, closes when told, pushes untagged updates to idling clients when the
store changes, and enforces ``profile.imap.max_connections_per_user`` at login.
"""

from __future__ import annotations

from collections import Counter, deque

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IDelayedCall, IPullProducer
from zope.interface import implementer

from simulators.imap.engine import CLOSE, START_TLS, ImapSession, Output, Stream
from simulators.profiles import Profile
from simulators.quirks import build_all
from simulators.reactor import reactor
from simulators.store import Account, Folder, Store


class ImapServerProtocol(protocol.Protocol):
    def __init__(self, factory: ImapServerFactory):
        self.factory = factory
        self.session: ImapSession | None = None
        self.user: str | None = None  # counted against the per-user limit once logged in
        self._timer: IDelayedCall | None = None
        self._waiters: list[defer.Deferred] = []
        self._queue: deque[Output] = deque()  # outputs waiting behind a stream
        self._stream: _StreamProducer | None = None
        self._closing = False

    def connectionMade(self) -> None:
        f = self.factory
        self.session = ImapSession(
            f.store, f.profile, f.quirks,
            tls_active=f.implicit_tls, tls_available=f.tls_options is not None, login_gate=self._login_gate,
            streaming=True,
        )
        f.connections.add(self)
        f.store.subscribe(self._store_changed)
        self._timer = f.clock.callLater(f.profile.imap.autologout_seconds, self._autologout)
        self._emit(self.session.start())

    def dataReceived(self, data: bytes) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self.factory.profile.imap.autologout_seconds)
        self._emit(self.session.receive_data(data))

    def connectionLost(self, reason=None) -> None:
        f = self.factory
        self._stream = None
        self._queue.clear()
        f.store.unsubscribe(self._store_changed)
        f.connections.discard(self)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self.user is not None:
            f.users[self.user] -= 1
            self.user = None
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def when_closed(self) -> defer.Deferred:
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def _emit(self, outputs: list[Output]) -> None:
        self._queue.extend(outputs)
        while self._queue and self._stream is None and not self._closing:
            out = self._queue.popleft()
            if isinstance(out, Stream):
                self._stream = _StreamProducer(self, out.chunks)
                self.transport.registerProducer(self._stream, False)
            elif out is START_TLS:
                self.transport.startTLS(self.factory.tls_options)
                self.session.tls_started()
            elif out is CLOSE:
                self._closing = True
                self.transport.loseConnection()
            else:
                self.transport.write(out)

    def _stream_done(self) -> None:
        self._stream = None
        self.transport.unregisterProducer()
        self._emit([])  # what queued up behind the stream (its tagged reply first)
        if self._stream is None and not self._queue and not self._closing:
            self._emit(self.session.resume())  # commands that arrived while streaming

    def _login_gate(self, user: str) -> str | None:
        limit = self.factory.profile.imap.max_connections_per_user
        reply = (
            "NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded "
            f"(mail_max_userip_connections={limit})"
        )
        for quirk in self.session.quirks:
            override = quirk.imap_connection_limit()
            if override is not None:
                limit, reply = override
        users = self.factory.users
        if limit is not None and users[user] >= limit:
            return reply
        users[user] += 1
        self.user = user
        return None

    def _store_changed(self, account: Account, folder: Folder | None) -> None:
        # Called from whichever thread changed the store; the session lives in the reactor.
        if self.session is not None and self.session.idling:
            reactor.callFromThread(self._push)

    def _push(self) -> None:
        if self.session is not None and self.transport is not None and self.transport.connected:
            self._emit(self.session.pending())

    def _autologout(self) -> None:
        self._emit(self.session.timeout())


@implementer(IPullProducer)
class _StreamProducer:
    """Writes a Stream's chunks whenever the transport wants more, about 256 KB at a time."""

    CHUNK = 256 * 1024

    def __init__(self, proto: ImapServerProtocol, chunks):
        self.proto = proto
        self.chunks = chunks
        self.stopped = False

    def resumeProducing(self) -> None:
        if self.stopped:
            return
        batch, size = [], 0
        for data in self.chunks:
            batch.append(data)
            size += len(data)
            if size >= self.CHUNK:
                break
        else:
            self.stopped = True
        self.proto.transport.write(b"".join(batch))
        if self.stopped:
            self.proto._stream_done()

    def stopProducing(self) -> None:
        self.stopped = True


class ImapServerFactory(protocol.Factory):
    """One listening IMAP server: a store, a profile, and TLS options (None = no STARTTLS)."""

    def __init__(
        self, store: Store, profile: Profile, *, tls_options=None, implicit_tls: bool = False, clock=None
    ):
        self.store = store
        self.clock = clock or reactor  # tests pass twisted.internet.task.Clock
        self.profile = profile
        self.tls_options = tls_options
        self.implicit_tls = implicit_tls
        self.connections: set[ImapServerProtocol] = set()
        self.users: Counter[str] = Counter()
        # One set of quirk objects per server, shared by its connections: counting quirks
        # (throttling, rate limits) count per server like the provider does, not per connection.
        self.quirks = build_all(profile.quirks, "imap")

    def buildProtocol(self, addr) -> ImapServerProtocol:
        return ImapServerProtocol(self)

    def close_connections(self) -> defer.Deferred:
        waits = [c.when_closed() for c in list(self.connections)]
        for c in list(self.connections):
            c.transport.abortConnection()
        return defer.DeferredList(waits)
