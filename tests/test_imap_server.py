"""The Twisted adapter in memory (StringTransport + task.Clock): timers, limits, TLS hand-over."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from simulators.imap.server import ImapServerFactory
from simulators.profiles import load_profile
from simulators.store import Store


class _Transport(StringTransport):
    def __init__(self):
        super().__init__()
        self.tls = None

    def startTLS(self, options):
        self.tls = options


def _connect(factory):
    proto = factory.buildProtocol(None)
    transport = _Transport()
    proto.makeConnection(transport)
    return proto, transport


def _factory(**settings):
    store = Store()
    store.add_account("alice", "pw")
    profile = load_profile("generic")
    profile = profile.model_copy(update={"imap": profile.imap.model_copy(update=settings)})
    clock = Clock()
    return ImapServerFactory(store, profile, tls_options=object(), clock=clock), clock


def test_autologout_after_the_profiles_idle_time_and_activity_resets_it():
    factory, clock = _factory(autologout_seconds=60)
    proto, transport = _connect(factory)
    assert transport.value().startswith(b"* OK [CAPABILITY ")
    clock.advance(50)
    proto.dataReceived(b"a NOOP\r\n")
    clock.advance(50)
    assert not transport.disconnecting
    transport.clear()
    clock.advance(11)
    assert transport.value() == b"* BYE Disconnected for inactivity.\r\n"
    assert transport.disconnecting


def test_per_user_connection_limit_counts_logged_in_connections_only():
    factory, _clock = _factory(max_connections_per_user=2)
    conns = [_connect(factory) for _ in range(3)]
    for proto, transport in conns:
        transport.clear()
        proto.dataReceived(b"a LOGIN alice pw\r\n")
    assert [t.value().split(b" ")[1] for _p, t in conns] == [b"OK", b"OK", b"NO"]
    assert conns[2][1].value() == (
        b"a NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded "
        b"(mail_max_userip_connections=2)\r\n"
    )
    conns[0][0].connectionLost(None)
    proto, transport = conns[2]
    transport.clear()
    proto.dataReceived(b"b LOGIN alice pw\r\n")
    assert transport.value().startswith(b"b OK ")


def test_starttls_hands_the_transport_over_after_the_ok():
    factory, _clock = _factory()
    proto, transport = _connect(factory)
    transport.clear()
    proto.dataReceived(b"t STARTTLS\r\n")
    assert transport.value() == b"t OK Begin TLS negotiation now.\r\n"
    assert transport.tls is factory.tls_options
    transport.clear()
    proto.dataReceived(b"c CAPABILITY\r\n")
    assert b"STARTTLS" not in transport.value()


def test_logout_closes_and_unsubscribes_from_the_store():
    factory, clock = _factory()
    proto, transport = _connect(factory)
    assert len(factory.store._listeners) == 1
    proto.dataReceived(b"a LOGOUT\r\n")
    assert transport.disconnecting
    proto.connectionLost(None)
    assert factory.store._listeners == [] and factory.connections == set()
    assert clock.getDelayedCalls() == []


def test_bulk_fetch_streams_as_the_transport_pulls_and_later_commands_wait():
    from datetime import datetime, timezone

    factory, _clock = _factory()
    acc = factory.store.account("alice")
    for i in range(40):
        acc.append(("INBOX",), b"Subject: %d\r\n\r\n" % i + b"x" * 20000, internaldate=datetime(2024, 1, 1, tzinfo=timezone.utc))
    proto, transport = _connect(factory)
    proto.dataReceived(b"a LOGIN alice pw\r\nb SELECT INBOX\r\n")
    transport.clear()
    proto.dataReceived(b"f UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\ns STORE 1 +FLAGS (\\Flagged)\r\n")
    assert transport.value() == b"" and transport.producer is not None  # nothing until pulled
    assert "\\Flagged" not in acc.folder(("INBOX",)).messages[0].flags  # STORE waits for the stream
    pulls = 0
    while transport.producer is not None:
        transport.producer.resumeProducing()
        pulls += 1
    out = transport.value()
    assert pulls > 1  # written in pieces, not all at once
    assert out.count(b" FETCH (UID ") == 40
    fetch_end = out.index(b"f OK Fetch completed")
    assert out.index(b"* 40 FETCH (UID 40 FLAGS (\\Recent) BODY[] {20015}\r\n") < fetch_end
    assert out.index(b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\ns OK Store completed") > fetch_end
    assert "\\Flagged" in acc.folder(("INBOX",)).messages[0].flags
