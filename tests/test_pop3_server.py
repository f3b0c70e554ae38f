"""The POP3 Twisted adapter in memory (StringTransport + task.Clock): timer, TLS hand-over, drops."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from simulators.pop3.server import Pop3ServerFactory
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import INBOX, Store


class _Transport(StringTransport):
    def __init__(self):
        super().__init__()
        self.tls = None

    def startTLS(self, options):
        self.tls = options


def _factory(quirks=(), **settings):
    store = Store()
    account = store.add_account("alice", "pw")
    account.append(INBOX, b"Subject: x\r\n\r\nbody\r\n", internaldate=datetime(2024, 1, 1, tzinfo=timezone.utc))
    profile = load_profile("generic").with_quirks([QuirkSpec.parse(q) for q in quirks])
    profile = profile.model_copy(update={"pop3": profile.pop3.model_copy(update=settings)})
    clock = Clock()
    return Pop3ServerFactory(store, profile, tls_options="tls-options", clock=clock), clock, store


def _connect(factory):
    proto = factory.buildProtocol(None)
    transport = _Transport()
    proto.makeConnection(transport)
    return proto, transport


def test_autologout_after_the_profiles_idle_time_and_activity_resets_it():
    factory, clock, _store = _factory(autologout_seconds=600)
    proto, transport = _connect(factory)
    assert transport.value() == b"+OK Dovecot ready.\r\n"
    clock.advance(500)
    proto.dataReceived(b"NOOP\r\n")  # unknown before login, but activity all the same
    clock.advance(500)
    assert not transport.disconnecting
    transport.clear()
    clock.advance(101)
    assert transport.value() == b"-ERR Disconnected for inactivity.\r\n"
    assert transport.disconnecting


def test_stls_hands_the_transport_to_tls_and_later_bytes_go_on():
    factory, _clock, _store = _factory()
    proto, transport = _connect(factory)
    transport.clear()
    proto.dataReceived(b"STLS\r\n")
    assert transport.value() == b"+OK Begin TLS negotiation now.\r\n"
    assert transport.tls == "tls-options"
    transport.clear()
    proto.dataReceived(b"CAPA\r\n")
    assert b"STLS" not in transport.value()


def test_lost_connection_deletes_nothing_and_stops_the_timer():
    factory, clock, store = _factory()
    proto, transport = _connect(factory)
    proto.dataReceived(b"USER alice\r\nPASS pw\r\nDELE 1\r\n")
    proto.connectionLost(Failure(ConnectionError("peer gone")))
    assert len(store.account("alice").folder(INBOX).messages) == 1
    assert factory.connections == set()
    assert clock.getDelayedCalls() == []


def test_quirk_cut_closes_and_writes_nothing_more():
    factory, _clock, store = _factory(quirks=["pop3-drop-mid-retr:after_bytes=10"])
    proto, transport = _connect(factory)
    proto.dataReceived(b"USER alice\r\nPASS pw\r\n")
    transport.clear()
    proto.dataReceived(b"RETR 1\r\nQUIT\r\n")
    assert transport.value() == b"+OK 20 oct"
    assert transport.disconnecting
