"""Limit quirks (simulators.imap.quirks_limits) on the wire: bytes and instants, clock faked."""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet import task
from twisted.internet.testing import StringTransport

from simulators.imap.server import ImapServerFactory
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

WHEN = datetime(2024, 3, 1, tzinfo=timezone.utc)
BODY = b"Subject: s\r\n\r\n" + b"x" * 984 + b"\r\n"  # 1000 bytes
LOGIN = b"a LOGIN alice pw\r\n"
BYE = b"* BYE Session expired, please login again\r\n"
REFUSED = b"NO [OVERQUOTA] Account exceeded command or bandwidth limits.\r\n"


def world(*quirks: str, messages: int = 3) -> tuple[ImapServerFactory, task.Clock, Store]:
    store = Store()
    acc = store.add_account("alice", "pw")
    for _ in range(messages):
        acc.append(("INBOX",), BODY, internaldate=WHEN)
    clock = task.Clock()
    profile = load_profile("generic").with_quirks([QuirkSpec.parse(q) for q in quirks])
    return ImapServerFactory(store, profile, clock=clock), clock, store


def connect(factory: ImapServerFactory):
    proto, wire = factory.buildProtocol(None), StringTransport()
    proto.makeConnection(wire)
    return proto, wire


def pull(wire: StringTransport) -> bytes:
    """Drive a streamed FETCH as a transport would, then return everything written."""
    while wire.producer is not None and not wire.disconnecting and not wire.producer.waiting:
        wire.producer.resumeProducing()
    return wire.value()


def test_bandwidth_cap_ends_every_session_of_the_account_with_bye_and_refuses_logins():
    factory, clock, _ = world("gmail-bandwidth-cap:down_bytes=2500,reset_after_seconds=60")
    first, w1 = connect(factory)
    second, w2 = connect(factory)
    first.dataReceived(LOGIN + b"b EXAMINE INBOX\r\nc UID FETCH 1:2 BODY.PEEK[]\r\n")
    second.dataReceived(LOGIN + b"b EXAMINE INBOX\r\n")
    assert pull(w1).count(b"BODY[] {1000}") == 2  # 2000+ bytes: under budget
    second.dataReceived(b"c UID FETCH 3 BODY.PEEK[]\r\n")  # the other connection crosses it
    assert b"c OK Fetch completed" in w2.value()
    first.dataReceived(b"d NOOP\r\n")
    assert w1.value().endswith(b"c OK Fetch completed (0.001 + 0.000 secs).\r\n" + BYE) and w1.disconnecting
    third, w3 = connect(factory)
    third.dataReceived(LOGIN)
    assert w3.value().endswith(b"a " + REFUSED)
    clock.advance(60)  # the window passes on the server's clock
    third.dataReceived(b"a2 LOGIN alice pw\r\nb EXAMINE INBOX\r\nc UID FETCH 1 BODY.PEEK[]\r\n")
    assert b"a2 OK" in w3.value() and b"c OK Fetch completed" in w3.value()


def test_bandwidth_cap_counts_appended_bytes_against_the_upload_budget():
    factory, _, _ = world("gmail-bandwidth-cap:up_bytes=1500")
    proto, wire = connect(factory)
    proto.dataReceived(LOGIN + b"p APPEND INBOX {1000+}\r\n" + BODY + b"\r\n")
    assert b"p OK" in wire.value() and not wire.disconnecting
    proto.dataReceived(b"q APPEND INBOX {1000+}\r\n" + BODY + b"\r\nr NOOP\r\n")
    assert wire.value().endswith(b"] Append completed (0.001 + 0.000 secs).\r\n" + BYE) and wire.disconnecting


def test_bandwidth_cap_resets_on_a_new_visit_only_when_asked():
    factory, _, _ = world("gmail-bandwidth-cap:down_bytes=500,reset_on_new_visit=true")
    ctl, wc = connect(factory)
    ctl.dataReceived(LOGIN)
    worker, ww = connect(factory)
    worker.dataReceived(LOGIN + b"b EXAMINE INBOX\r\nc UID FETCH 1 BODY.PEEK[]\r\nd NOOP\r\n")
    assert ww.value().endswith(BYE)
    worker.connectionLost(None)
    again, wa = connect(factory)
    again.dataReceived(LOGIN)  # the control session is still open: the same visit, still capped
    assert wa.value().endswith(b"a " + REFUSED)
    for proto in (again, ctl):
        proto.connectionLost(None)
    later, wl = connect(factory)
    later.dataReceived(LOGIN)  # nothing open any more: the next run
    assert b"a OK" in wl.value()


def test_bandwidth_cap_trickle_paces_fetch_responses_on_the_clock():
    factory, clock, _ = world("gmail-bandwidth-cap:down_bytes=1000,mode=trickle,trickle_bps=2000")
    proto, wire = connect(factory)
    proto.dataReceived(LOGIN + b"b EXAMINE INBOX\r\nc UID FETCH 1 BODY.PEEK[]\r\n")
    proto.dataReceived(b"d UID FETCH 2:3 BODY.PEEK[]\r\n")  # capped now: 2 responses at 2000 B/s
    out = pull(wire)
    assert out.count(b"BODY[] {1000}") == 1 and b"d OK" not in out and not wire.disconnecting
    clock.advance(0.5)  # each response (~1050 bytes) waits its share: ~0.52 s
    assert pull(wire).count(b"BODY[] {1000}") == 1
    clock.advance(0.1)
    assert pull(wire).count(b"BODY[] {1000}") == 2
    clock.advance(0.6)
    out = pull(wire)
    assert out.count(b"BODY[] {1000}") == 3 and b"d OK Fetch completed" in out


def test_slow_large_folder_holds_select_search_and_header_fetch_back_by_size():
    factory, clock, _ = world("slow-large-folder:ms_per_1000=1000,threshold=20", messages=40)
    proto, wire = connect(factory)
    proto.dataReceived(LOGIN + b"b EXAMINE INBOX\r\n")
    assert b"EXISTS" not in wire.value()
    clock.advance(0.039)
    assert b"EXISTS" not in wire.value()
    clock.advance(0.001)  # 40 messages at 1 s per 1000
    assert b"* 40 EXISTS" in wire.value() and b"b OK [READ-ONLY]" in wire.value()
    proto.dataReceived(b"c UID FETCH 1:* (RFC822.SIZE)\r\n")
    assert b"c OK Fetch completed" in pull(wire)  # sizes answer at once
    proto.dataReceived(b"d UID FETCH 1:10 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\n")
    assert b"d OK" not in pull(wire)
    clock.advance(0.010)  # 10 header fetches
    assert b"d OK Fetch completed" in pull(wire)
    proto.dataReceived(b"e UID SEARCH ALL\r\n")
    clock.advance(0.039)
    assert b"e OK" not in wire.value()
    clock.advance(0.001)
    assert b"e OK Search completed" in wire.value()


def test_slow_large_folder_leaves_small_folders_alone():
    factory, _, _ = world("slow-large-folder:ms_per_1000=1000,threshold=20", messages=19)
    proto, wire = connect(factory)
    proto.dataReceived(LOGIN + b"b EXAMINE INBOX\r\n")
    assert b"b OK [READ-ONLY]" in wire.value()


def test_uidvalidity_change_renumbers_on_the_named_visit():
    factory, _, store = world("uidvalidity-change:on_visit=2", messages=3)
    folder = store.accounts["alice"].folders[("INBOX",)]
    folder.messages.pop(0)  # UIDs 2, 3: a gap, as after an expunge
    before = folder.uidvalidity
    first, w1 = connect(factory)
    first.dataReceived(LOGIN + b"b UID SEARCH ALL\r\n")
    extra, _ = connect(factory)
    extra.dataReceived(LOGIN)  # the same visit: nothing changes
    assert folder.uidvalidity == before and folder.uids() == [2, 3]
    for proto in (first, extra):
        proto.connectionLost(None)
    second, w2 = connect(factory)
    second.dataReceived(LOGIN + b"b EXAMINE INBOX\r\nc UID SEARCH ALL\r\n")
    assert folder.uidvalidity > before and folder.uids() == [1, 2] and folder.uidnext == 3
    assert b"* OK [UIDVALIDITY %d]" % folder.uidvalidity in w2.value() and b"* SEARCH 1 2\r\n" in w2.value()
    second.connectionLost(None)
    third, _ = connect(factory)
    third.dataReceived(LOGIN)
    assert folder.uids() == [1, 2]  # once


def test_a_fault_aimed_at_one_connection_by_first_leaves_the_others_alone():
    from simulators.faults import FaultSpec

    clock = task.Clock()
    profile = load_profile("generic").with_faults([FaultSpec.parse("stall:command=1,first=2,times=1")])
    factory = ImapServerFactory(world()[2], profile, clock=clock)
    answered = []
    for _ in range(3):
        proto, wire = connect(factory)
        proto.dataReceived(b"a NOOP\r\n")
        clock.advance(1)
        answered.append(b"a OK NOOP completed" in wire.value())
    assert answered == [True, False, True]  # only the read-ahead-like second connection stalls
