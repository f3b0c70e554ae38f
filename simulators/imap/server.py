"""Twisted adapter for the IMAP engine: sockets, TLS, timers, per-user connection limits.

Everything protocol-related happens in ``ImapSession``; this module only moves bytes, starts TLS
when the engine says so, closes when told, pushes untagged updates to idling clients when the
store changes, and enforces ``profile.imap.max_connections_per_user`` at login.
"""

from __future__ import annotations

from collections import Counter, deque

from twisted.internet.interfaces import IPullProducer
from zope.interface import implementer

from simulators.imap.engine import Delay, ImapSession, Output, Stream
from simulators.reactor import reactor
from simulators.serving import FrontFactory, FrontProtocol
from simulators.session import Signal
from simulators.store import Account, Folder


class ImapServerProtocol(FrontProtocol):
    def __init__(self, factory: ImapServerFactory):
        super().__init__(factory)
        self.session: ImapSession | None = None
        self.user: str | None = None  # counted against the per-user limit once logged in
        self._queue: deque[Output] = deque()  # outputs waiting behind a stream
        self._stream: _StreamProducer | None = None
        self._held = False  # a Delay is being waited out: outputs queue behind it

    def connectionMade(self) -> None:
        f = self.factory
        self.session = ImapSession(
            f.store, f.profile, f.quirks,
            tls_active=f.implicit_tls, tls_available=f.tls_options is not None, login_gate=self._login_gate,
            streaming=True, clock=f.clock,
        )
        f.store.subscribe(self._store_changed)
        self._register()
        self._emit(self.session.start())

    def connectionLost(self, reason=None) -> None:
        f = self.factory
        self._stream = None
        self._queue.clear()
        f.store.unsubscribe(self._store_changed)
        if self.session is not None:
            self.session.closed()
        if self.user is not None:
            f.users[self.user] -= 1
            self.user = None
        self._release()

    def _emit(self, outputs: list[Output]) -> None:
        self._queue.extend(outputs)
        while self._queue and self._stream is None and not self._held and not self._closing:
            out = self._queue.popleft()
            if isinstance(out, Delay):
                self._held = True
                self.factory.clock.callLater(out.seconds, self._delay_over)
            elif isinstance(out, Stream):
                self._stream = _StreamProducer(self, out.chunks)
                self.transport.registerProducer(self._stream, False)
            elif isinstance(out, Signal):
                self._signal(out)
            elif len(out) > _StreamProducer.CHUNK:  # a large literal: written as the socket drains
                self._stream = _StreamProducer(self, iter([out]))
                self.transport.registerProducer(self._stream, False)
            else:
                self.transport.write(out)

    def _delay_over(self) -> None:
        self._held = False
        if self.transport is not None and self.transport.connected:
            self._emit([])
            if self._stream is None and not self._queue and not self._held and not self._closing:
                self._emit(self.session.resume())  # commands that arrived meanwhile (a paused session)

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


@implementer(IPullProducer)
class _StreamProducer:
    """Writes a Stream's chunks whenever the transport wants more, about 256 KB at a time; a Delay
    among the chunks pauses it on the clock (a trickling server). A chunk larger than that (a big
    literal) goes out a slice at a time: the transport never joins it with what it holds (a copy)."""

    CHUNK = 256 * 1024

    def __init__(self, proto: ImapServerProtocol, chunks):
        self.proto = proto
        self.chunks = chunks
        self.stopped = False
        self.waiting = False  # a Delay's timer, not the transport, calls the next resumeProducing
        self.exhausted = False  # every chunk was taken (the last large one may still be in ``rest``)
        self.rest: memoryview | None = None  # what is left to write of a large chunk

    def resumeProducing(self) -> None:
        if self.stopped or self.waiting:
            return
        if self.rest is None:
            self._take()
        if self.rest is not None:
            piece, rest = self.rest[: self.CHUNK], self.rest[self.CHUNK :]
            self.rest = rest if rest else None
            self.proto.transport.write(bytes(piece))
        if self.exhausted and self.rest is None and not self.stopped:
            self.stopped = True
            self.proto._stream_done()

    def _take(self) -> None:
        """Write the next small chunks, up to CHUNK bytes, and hold a large one in ``rest``."""
        batch, size = [], 0
        for data in self.chunks:
            if isinstance(data, Delay):
                self.waiting = True
                self.proto.factory.clock.callLater(data.seconds, self._delay_over)
                break
            if len(data) > self.CHUNK:
                self.rest = memoryview(data)
                break
            batch.append(data)
            size += len(data)
            if size >= self.CHUNK:
                break
        else:
            self.exhausted = True
        if batch:
            self.proto.transport.write(b"".join(batch))

    def _delay_over(self) -> None:
        self.waiting = False
        if self.proto.transport is not None and self.proto.transport.connected:
            self.resumeProducing()

    def stopProducing(self) -> None:
        self.stopped = True


class ImapServerFactory(FrontFactory):
    """One listening IMAP server: a store, a profile, and TLS options (None = no STARTTLS)."""

    protocol_name = "imap"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.users: Counter[str] = Counter()  # logged-in connections per user, for the per-user limit

    def buildProtocol(self, addr) -> ImapServerProtocol:
        return ImapServerProtocol(self)
