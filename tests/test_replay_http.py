"""HTTP replay: EWS recorded from exchangelib against the EWS simulator, replayed to exchangelib."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, FailFast, Version
from exchangelib.version import EXCHANGE_2016

from scenarios.cli_replay import load_scripts
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.replay.script import build
from simulators.replay.server import ReplayServer
from simulators.replay.session import ReplaySession, Send
from simulators.store import Store
from tests.replay_support import RecordingRelay
from transcripts.format import Chunk, Header, Protocol, Sender, Transcript


def _inbox(port: int) -> list:
    config = Configuration(service_endpoint=f"http://127.0.0.1:{port}/EWS/Exchange.asmx",
                           credentials=Credentials("alice", "secret"), auth_type=BASIC,
                           version=Version(build=EXCHANGE_2016), retry_policy=FailFast(), max_connections=1)
    account = Account("alice@example.com", config=config, autodiscover=False, access_type=DELEGATE)
    return sorted((m.subject, m.size) for m in account.inbox.all().only("subject", "size"))


def test_exchangelib_gets_the_same_items_from_a_replayed_ews_session(tmp_path):
    store = Store()
    profile = load_profile("exchange")
    populate(store.add_account("alice", "secret"), FixtureSpec(seed=3, messages=8, folders=3), profile)
    with SimulatorWorld(store, profile) as world:
        ews = world.start_ews()
        relay = RecordingRelay((ews.host, ews.port), tmp_path, protocol="http", label="ews")
        live = _inbox(relay.port)
        time.sleep(0.1)
        relay.close()
    scripts, _ = load_scripts([tmp_path])
    assert [scripts[0].dialect.describe(s.unit) for s in scripts[0].steps][-1] == "POST /EWS/Exchange.asmx FindItem"
    with ReplayServer(scripts) as replay:
        [endpoint] = replay.start()
        assert endpoint.url() == f"http://127.0.0.1:{endpoint.port}"
        assert _inbox(endpoint.port) == live and live
        time.sleep(0.05)
        assert replay.summary().divergences == []


def test_chunked_bodies_interim_responses_and_a_divergence():
    request = b"POST /dav/ HTTP/1.1\r\nHost: a:1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n"
    reply = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 207 Multi-Status\r\nContent-Length: 3\r\n\r\nok!"
    script = build(Transcript(Header(Protocol.HTTP, "a:1", datetime(2026, 1, 1, tzinfo=timezone.utc)), [
        Chunk(0.1, Sender.CLIENT, request), Chunk(0.2, Sender.SERVER, reply)]), "dav")
    assert script.greeting.data == b"" and script.steps[0].reply.data == reply
    session = ReplaySession([script])
    assert session.start() == []
    # another Host header (another port) is no divergence: only the request line and body count
    live = request.replace(b"Host: a:1", b"Host: 127.0.0.1:5555")
    assert session.receive_data(live[:30]) == []
    assert session.receive_data(live[30:]) == [Send(0.1, reply)]
    session = ReplaySession([script])
    [out] = session.receive_data(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert out.data.endswith(b"\r\n\r\nreplay diverged: expected POST /dav/, got GET /x")
