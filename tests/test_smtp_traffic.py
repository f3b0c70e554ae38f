"""LiveTraffic: deterministic live mail over SMTP, seen by an IMAP client of the same account."""

from __future__ import annotations

import time

import pytest
from imapclient import IMAPClient

from simulators.launcher import ServerHandle, SimulatorWorld
from simulators.quirks import QuirkSpec
from simulators.smtp import SmtpServer
from simulators.traffic import LiveTraffic, TrafficSpec, compose_live, message_id_of
from tests.test_smtp_server import FakeClock, inbox, profile_with, store  # noqa: F401


def test_compose_live_is_deterministic_and_realistic():
    spec = TrafficSpec(seed=7, messages=12, attachments=0.5)
    first, again = compose_live(spec, "alice@example.net"), compose_live(spec, "alice@example.net")
    assert [m.raw for m in first] == [m.raw for m in again]
    assert [m.raw for m in first] != [m.raw for m in compose_live(spec.model_copy(update={"seed": 8}), "alice@example.net")]
    assert len({m.message_id for m in first}) == 12
    for m in first:
        assert message_id_of(m.raw) == m.message_id
        assert b"\r\nTo: " in m.raw and b"@" in m.sender.encode()
        assert not m.raw.startswith(b"Received:") and b"\r\nReceived:" not in m.raw.split(b"\r\n\r\n")[0]
    assert b"Date: Sat, 01 Jun 2024 " in first[0].raw  # from LIVE_EPOCH, not the wall clock
    assert any(b"multipart/mixed" in m.raw for m in first)  # some carry attachments


def test_live_traffic_while_an_imap_client_idles(store):
    spec = TrafficSpec(seed=3, messages=8, interval=0.02)
    with SimulatorWorld(store, profile_with()) as world:
        imap, smtp = world.start_imap(), world.start_smtp()
        client = IMAPClient(imap.host, imap.port, ssl=False, timeout=10)
        client.login("alice", "secret")
        client.select_folder("INBOX")
        client.idle()
        traffic = LiveTraffic(smtp, "alice@example.net", spec).start()
        seen, deadline = 0, time.monotonic() + 10
        while seen < spec.messages and time.monotonic() < deadline:
            for response in client.idle_check(timeout=1):
                if response[1:] == (b"EXISTS",):
                    seen = max(seen, response[0])
        client.idle_done()
        assert traffic.join(timeout=10)
        raws = [d[b"BODY[]"] for d in client.fetch(client.search(), ["BODY.PEEK[]"]).values()]
        client.logout()
    assert seen == spec.messages  # the IMAP front saw the new mail arrive: EXISTS 8
    assert [r.accepted for r in traffic.records] == [True] * spec.messages
    assert [r.message_id for r in traffic.records] == [m.message_id for m in traffic.messages]
    result = traffic.check(raws)
    assert result.ok and (result.expected, result.found) == (8, 8)


def test_check_finds_lost_duplicated_and_altered(store):
    with SimulatorWorld(store, profile_with()) as world:
        traffic = LiveTraffic(world.start_smtp(), "alice", TrafficSpec(messages=4))
        traffic.start().join(timeout=10)
    raws = [m.raw for m in inbox(store)]
    unrelated = b"Message-ID: <other@x>\r\n\r\nx\r\n"
    assert traffic.check(raws + [unrelated]).ok
    ids = [r.message_id for r in traffic.records]
    result = traffic.check([raws[0], raws[0], raws[1].replace(b"\r\n\r\n", b"\r\nX-Changed: 1\r\n\r\n", 1), unrelated])
    assert result.lost == ids[2:]
    assert result.duplicates == {ids[0]: 2}
    assert result.altered == [ids[1]]
    assert (result.expected, result.found, result.ok) == (4, 3, False)


def test_refused_messages_are_recorded_not_expected(store):
    with SimulatorWorld(store, profile_with()) as world:
        traffic = LiveTraffic(world.start_smtp(), "nobody@example.net", TrafficSpec(messages=2))
        traffic.start().join(timeout=10)
    assert [r.accepted for r in traffic.records] == [False, False]
    assert traffic.records[0].reply.startswith("550 5.1.1 <nobody@example.net>: Recipient address rejected")
    assert traffic.check([]).ok and traffic.check([]).expected == 0


def test_stop_ends_the_traffic_early(store):
    with SimulatorWorld(store, profile_with()) as world:
        traffic = LiveTraffic(world.start_smtp(), "alice", TrafficSpec(messages=5, interval=30)).start()
        started = time.monotonic()
        traffic.stop()  # interrupts the 30 s pause
        assert time.monotonic() - started < 5
    assert len(traffic.records) <= 1
    assert len(inbox(store)) == len(traffic.accepted)


def test_traffic_over_starttls_with_auth(store):
    with SimulatorWorld(store, profile_with(require_auth=True, auth_require_tls=True)) as world:
        traffic = LiveTraffic(world.start_smtp(), "alice", TrafficSpec(messages=2, starttls=True),
                              cafile=world.cafile, credentials=("alice", "secret"))
        traffic.start().join(timeout=10)
    assert [r.accepted for r in traffic.records] == [True, True]
    assert all(b" with ESMTPSA id " in m.raw for m in inbox(store))


def test_start_twice_is_refused(store):
    with SimulatorWorld(store, profile_with()) as world:
        traffic = LiveTraffic(world.start_smtp(), "alice", TrafficSpec(messages=0)).start()
        with pytest.raises(RuntimeError, match="already started"):
            traffic.start()
        traffic.join()


def test_temporary_refusals_are_retried_as_an_mta_would(store):
    # Greylisting for 60 s on a clock that moves 61 s each time it is read: a pair's first RCPT is
    # deferred, its retry accepted; a pair seen before passes at once. Nobody sleeps.
    clock = FakeClock()

    def ticking():
        clock.advance(61)
        return clock.now

    profile = profile_with([QuirkSpec(name="smtp-greylist-451", params={"delay_seconds": 60})])
    with SmtpServer(store, profile, clock=ticking) as server:
        handle = ServerHandle("smtp", server.host, server.port, False)
        traffic = LiveTraffic(handle, "alice", TrafficSpec(messages=6, retries=2))
        traffic.start().join(timeout=10)
        deferred = server.handler.quirks[0].deferred
    senders = [m.sender.lower() for m in traffic.messages]
    assert [r.accepted for r in traffic.records] == [True] * 6
    assert [r.attempts for r in traffic.records] == [1 + (s not in senders[:i]) for i, s in enumerate(senders)]
    assert deferred == len(set(senders))
    assert traffic.check(m.raw for m in inbox(store)).ok


def test_permanent_refusals_are_not_retried(store):
    with SimulatorWorld(store, profile_with()) as world:
        traffic = LiveTraffic(world.start_smtp(), "nobody", TrafficSpec(messages=1, retries=3))
        traffic.start().join(timeout=10)
    assert [(r.accepted, r.attempts) for r in traffic.records] == [(False, 1)]
