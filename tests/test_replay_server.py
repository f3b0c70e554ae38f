"""The replay's Twisted adapter: recorded pacing on a fake clock, implicit TLS and STARTTLS."""

from __future__ import annotations

import ssl
from datetime import datetime, timezone

import imapclient
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from simulators.replay.pool import SessionPool
from simulators.replay.script import build
from simulators.replay.server import ReplayFactory, ReplayServer
from transcripts.format import Chunk, Header, Mark, Protocol, Sender, Transcript

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _imap(*events, tls: str = "none") -> Transcript:
    return Transcript(Header(Protocol.IMAP, "x:1", START, tls=tls, redacted=1), list(events))


THROTTLED = _imap(
    Chunk(0.5, Sender.SERVER, b"* OK ready\r\n"),
    Chunk(0.6, Sender.CLIENT, b"a1 NOOP\r\n"),
    Chunk(0.7, Sender.SERVER, b"* 1 EXISTS\r\n"),
    Chunk(30.6, Sender.SERVER, b"a1 NO Request is throttled. Suggested Backoff Time: 299609 milliseconds\r\n"),
)


def _connect(pace: str):
    clock = Clock()
    factory = ReplayFactory(SessionPool([build(THROTTLED, "t")]), pace=pace, tls_options=None, clock=clock)
    proto = factory.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    return clock, proto, transport


def test_recorded_pace_waits_the_recorded_delays_on_the_clock():
    clock, proto, transport = _connect("recorded")
    assert transport.value() == b""
    clock.advance(0.5)
    assert transport.value() == b"* OK ready\r\n"
    transport.clear()
    proto.dataReceived(b"z NOOP\r\n")
    clock.advance(0.1)
    assert transport.value() == b"* 1 EXISTS\r\n"
    clock.advance(29.8)
    assert transport.value() == b"* 1 EXISTS\r\n"  # the throttled reply is still 0.1 s away
    clock.advance(0.1)
    assert transport.value().endswith(b"z NO Request is throttled. Suggested Backoff Time: 299609 milliseconds\r\n")


def test_fast_pace_sends_at_once():
    clock, proto, transport = _connect("fast")
    proto.dataReceived(b"z NOOP\r\n")
    assert transport.value() == (b"* OK ready\r\n* 1 EXISTS\r\n"
                                 b"z NO Request is throttled. Suggested Backoff Time: 299609 milliseconds\r\n")


SESSION = [
    Chunk(0.0, Sender.CLIENT, b"a0 CAPABILITY\r\n"),
    Chunk(0.0, Sender.SERVER, b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na0 OK done\r\n"),
    Chunk(0.0, Sender.CLIENT, b'a1 LOGIN alice "******"\r\n'),
    Chunk(0.0, Sender.SERVER, b"a1 OK Logged in\r\n"),
    Chunk(0.0, Sender.CLIENT, b"a2 LOGOUT\r\n"),
    Chunk(0.0, Sender.SERVER, b"* BYE bye\r\na2 OK done\r\n"),
]


def test_implicit_tls_recordings_are_served_over_tls_with_a_ca_to_trust():
    recording = _imap(Chunk(0.0, Sender.SERVER, b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"), *SESSION,
                      tls="implicit")
    with ReplayServer([build(recording, "tls")]) as server:
        [endpoint] = server.start()
        assert endpoint.implicit_tls and endpoint.url("alice").startswith("imaps://alice@127.0.0.1:")
        context = ssl.create_default_context(cafile=str(server.cafile))
        client = imapclient.IMAPClient(endpoint.host, endpoint.port, ssl=True, ssl_context=context, timeout=10)
        assert client.login("alice", "secret") == b"Logged in"
        client.logout()
        assert server.summary().divergences == []


def test_starttls_starts_where_the_recording_says():
    recording = _imap(
        Chunk(0.0, Sender.SERVER, b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
        Chunk(0.0, Sender.CLIENT, b"s0 CAPABILITY\r\n"),
        Chunk(0.0, Sender.SERVER, b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\ns0 OK done\r\n"),
        Chunk(0.0, Sender.CLIENT, b"s1 STARTTLS\r\n"),
        Chunk(0.0, Sender.SERVER, b"s1 OK Begin TLS negotiation now.\r\n"),
        Mark(0.0, "starttls"),
        *SESSION,
        tls="starttls",
    )
    with ReplayServer([build(recording, "starttls")]) as server:
        [endpoint] = server.start()
        assert not endpoint.implicit_tls
        client = imapclient.IMAPClient(endpoint.host, endpoint.port, ssl=False, timeout=10)
        client.starttls(ssl.create_default_context(cafile=str(server.cafile)))
        assert client.login("alice", "secret") == b"Logged in"
        client.logout()
        assert server.summary().divergences == []
