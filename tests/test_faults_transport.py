"""Transport faults (simulators.faults): in memory with task.Clock, and over loopback with imapclient."""

from __future__ import annotations

import imaplib
import ssl
import socket
from datetime import datetime, timezone

import imapclient
import pytest
from twisted.internet import task
from twisted.internet.testing import StringTransport

from simulators.faults import FaultError, FaultPlan, FaultSpec
from simulators.imap.server import ImapServerFactory
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store

WHEN = datetime(2024, 3, 1, tzinfo=timezone.utc)
BODY = b"Subject: s\r\n\r\n" + b"x" * 2000 + b"\r\n"


def store() -> Store:
    s = Store()
    acc = s.add_account("alice", "pw")
    for _ in range(3):
        acc.append(("INBOX",), BODY, internaldate=WHEN)
    return s


def connect(*faults: str):
    clock = task.Clock()
    profile = load_profile("generic").with_faults([FaultSpec.parse(f) for f in faults])
    factory = ImapServerFactory(store(), profile, clock=clock)
    proto = factory.buildProtocol(None)
    wire = StringTransport()
    proto.makeConnection(wire)
    return proto, wire, clock


def test_unknown_fault_and_bad_parameters_are_refused():
    with pytest.raises(FaultError, match="unknown fault 'nope'"):
        FaultPlan([FaultSpec.parse("nope")], task.Clock())
    with pytest.raises(FaultError, match="bytes"):
        FaultPlan([FaultSpec.parse("drop-after-bytes:bytes=lots")], task.Clock())


def test_latency_delays_each_reply_by_the_clock():
    proto, wire, clock = connect("latency:ms=250")
    assert wire.value() == b""
    clock.advance(0.249)
    assert wire.value() == b""
    clock.advance(0.001)
    assert wire.value().startswith(b"* OK ")
    proto.dataReceived(b"a NOOP\r\n")
    clock.advance(0.2)
    assert b"a OK" not in wire.value()
    clock.advance(0.05)
    assert b"a OK NOOP completed" in wire.value() or b"a OK" in wire.value()


def test_bandwidth_paces_bytes_per_second():
    proto, wire, clock = connect("bandwidth:bytes_per_second=1000,chunk=100")
    clock.advance(0)
    greeting = len(b"* OK ") + 1  # at least something pending
    assert len(wire.value()) == 0
    clock.advance(0.1)
    assert 0 < len(wire.value()) <= 100
    clock.advance(10)
    assert wire.value().endswith(b"\r\n") and len(wire.value()) > greeting


def test_drop_after_bytes_writes_exactly_that_many():
    proto, wire, clock = connect("drop-after-bytes:bytes=500")
    proto.dataReceived(b"a LOGIN alice pw\r\nb SELECT INBOX\r\nc FETCH 1:* BODY.PEEK[]\r\n")
    assert len(wire.value()) == 500


def test_drop_at_command_answers_nothing_from_that_line():
    proto, wire, clock = connect("drop-at-command:command=2")
    proto.dataReceived(b"a NOOP\r\n")
    proto.dataReceived(b"b NOOP\r\n")
    assert b"a OK" in wire.value() and b"b OK" not in wire.value() and wire.disconnecting


def test_bye_mid_fetch_cuts_the_literal():
    proto, wire, clock = connect("bye-mid-fetch:message=2,cut=0.5")
    proto.dataReceived(b"a LOGIN alice pw\r\nb SELECT INBOX\r\nc FETCH 1:3 BODY.PEEK[]\r\n")
    while wire.producer is not None and not wire.disconnecting:
        wire.producer.resumeProducing()  # the bulk FETCH is streamed as the transport pulls
    out = wire.value()
    assert out.count(b"FETCH (BODY[] {%d}" % len(BODY)) == 2
    second = out.rindex(b"{%d}\r\n" % len(BODY)) + len(b"{%d}\r\n" % len(BODY))
    assert out[second:] == BODY[: len(BODY) // 2] + b"\r\n* BYE Session expired, please login again\r\n"
    assert wire.disconnecting


def test_bye_mid_fetch_cuts_a_large_literal_written_in_slices():
    # A literal of 256 KB or more leaves the server apart from its FETCH line, a slice at a time.
    big = b"Subject: big\r\n\r\n" + b"y" * 700_000 + b"\r\n"
    s = Store()
    s.add_account("alice", "pw").append(("INBOX",), big, internaldate=WHEN)
    profile = load_profile("generic").with_faults([FaultSpec.parse("bye-mid-fetch:message=1,cut=0.6")])
    proto = ImapServerFactory(s, profile, clock=task.Clock()).buildProtocol(None)
    wire = StringTransport()
    proto.makeConnection(wire)
    proto.dataReceived(b"a LOGIN alice pw\r\nb SELECT INBOX\r\nc FETCH 1 BODY.PEEK[]\r\n")
    while wire.producer is not None and not wire.disconnecting:
        wire.producer.resumeProducing()
    out = wire.value()
    start = out.index(b"{%d}\r\n" % len(big)) + len(b"{%d}\r\n" % len(big))
    assert out[start:] == big[: int(len(big) * 0.6)] + b"\r\n* BYE Session expired, please login again\r\n"
    assert wire.disconnecting


def test_slow_close_waits_on_the_clock():
    proto, wire, clock = connect("slow-close:ms=3000")
    proto.dataReceived(b"a LOGOUT\r\n")
    assert b"a OK" in wire.value() and not wire.disconnecting
    clock.advance(3)
    assert wire.disconnecting


def test_stall_swallows_replies_and_keeps_the_connection():
    proto, wire, clock = connect("stall:command=2")
    proto.dataReceived(b"a NOOP\r\n")
    before = wire.value()
    proto.dataReceived(b"b NOOP\r\n")
    clock.advance(60)
    assert wire.value() == before and not wire.disconnecting


def test_faults_hit_only_the_first_connections():
    clock = task.Clock()
    profile = load_profile("generic").with_faults([FaultSpec.parse("drop-at-command:command=1,times=1")])
    factory = ImapServerFactory(store(), profile, clock=clock)
    outs = []
    for _ in range(2):
        proto, wire = factory.buildProtocol(None), StringTransport()
        proto.makeConnection(wire)
        proto.dataReceived(b"a NOOP\r\n")
        outs.append(wire.value())
    assert b"a OK" not in outs[0] and b"a OK" in outs[1]


# Loopback, one per fault, with imapclient ---------------------------------------------------------


def served(*faults: str):
    profile = load_profile("generic").with_faults([FaultSpec.parse(f) for f in faults])
    return SimulatorWorld(store(), profile)


def client(handle):
    return imapclient.IMAPClient(handle.host, handle.port, ssl=False, timeout=5)


def test_loopback_latency_and_bandwidth_still_deliver():
    with served("latency:ms=20", "bandwidth:bytes_per_second=200000") as world:
        with client(world.start_imap()) as c:
            c.login("alice", "pw")
            c.select_folder("INBOX")
            assert [d[b"BODY[]"] for d in c.fetch([1, 2, 3], ["BODY.PEEK[]"]).values()] == [BODY] * 3


@pytest.mark.parametrize("faults", [("latency:ms=30",), ("bandwidth:bytes_per_second=2000",)])
def test_loopback_starttls_works_behind_delayed_replies(faults):
    # The tagged OK that announces TLS is held back; the handshake must start only after it.
    with served(*faults) as world:
        with client(world.start_imap()) as c:
            c.starttls(ssl.create_default_context(cafile=str(world.cafile)))
            c.login("alice", "pw")
            c.select_folder("INBOX")
            assert [d[b"BODY[]"] for d in c.fetch([1], ["BODY.PEEK[]"]).values()] == [BODY]


@pytest.mark.parametrize("fault", [
    "drop-after-bytes:bytes=3000", "drop-at-command:command=4", "reset:command=4", "bye-mid-fetch",
])
def test_loopback_cut_faults_break_the_fetch(fault):
    with served(fault) as world:
        c = client(world.start_imap())
        c.login("alice", "pw")
        c.select_folder("INBOX")
        with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError)):
            c.fetch([1, 2, 3], ["BODY.PEEK[]"])


def test_loopback_stall_times_out_and_slow_close_closes():
    with served("stall:command=3", "slow-close:ms=100") as world:
        h = world.start_imap()
        c = imapclient.IMAPClient(h.host, h.port, ssl=False, timeout=1)
        c.login("alice", "pw")
        with pytest.raises((socket.timeout, TimeoutError, imaplib.IMAP4.abort, OSError)):
            c.select_folder("INBOX")
