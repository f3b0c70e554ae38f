"""transcripts.tap: the engine's connections recorded as they crossed the socket, after TLS."""

from __future__ import annotations

import base64
import re
import time
import socket
from datetime import datetime, timezone

import pytest

from migrator import imapconn
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from transcripts import format as tf
from transcripts.tap import Recorder, SessionTap, TappedSocket

PASSWORD = "Tap-S3cret-Heron-77"
# Latin-1 in a header and a bare 8-bit body: the transcript must keep bytes that are not UTF-8.
MESSAGE = b"From: a@example.org\r\nSubject: caf\xe9\r\nMessage-ID: <t1@x>\r\n\r\nline one\r\n\xff\xfe binary\r\n"


@pytest.fixture(scope="module")
def world():
    store = Store()
    account = store.add_account("alice", PASSWORD)
    account.append(("INBOX",), MESSAGE, flags={"\\Seen"})
    account.create_folder(("Archive",))
    with SimulatorWorld(store, load_profile("generic")) as w:
        yield w, w.start_imap(), w.start_imap(implicit_tls=True)


def _endpoint(world, handle, recorder: Recorder, label: str) -> Endpoint:
    w = world[0]
    return Endpoint(ServerURL.parse(handle.url("alice")), Secret(PASSWORD), cafile=w.cafile,
                    recorder=recorder.labelled(label))


def _session(endpoint: Endpoint) -> None:
    client, _tls = imapconn.connect(endpoint, role="source")
    client.select_folder("INBOX", readonly=True)
    imapconn.uid_fetch(client, "1:*", ["UID", "BODY.PEEK[]"])
    client.logout()


def test_fetch_literal_is_the_stored_message_and_starttls_is_marked_in_place(world, tmp_path):
    recorder = Recorder(tmp_path)
    _session(_endpoint(world, world[1], recorder, "source"))
    recorder.close()
    (path,) = recorder.paths
    transcript = tf.read(path)
    header = transcript.header
    assert (header.protocol, header.tls, header.label, header.redacted) == (tf.Protocol.IMAP, "starttls", "source", 1)
    assert header.server == f"127.0.0.1:{world[1].port}"
    served = transcript.sent_by(tf.Sender.SERVER)
    literal = re.search(rb"BODY\[\] \{(\d+)\}\r\n", served)
    assert int(literal.group(1)) == len(MESSAGE)
    assert served[literal.end():literal.end() + len(MESSAGE)] == MESSAGE
    assert served.startswith(b"* OK ")
    # the mark sits between STARTTLS's tagged OK and the first byte sent under TLS
    kinds = [(e.kind if isinstance(e, tf.Mark) else e.sender.value, getattr(e, "data", b"")) for e in transcript.events]
    at = [k for k, _ in kinds].index("starttls")
    assert re.match(rb"\w+ OK ", kinds[at - 1][1]) and kinds[at - 2][1].endswith(b" STARTTLS\r\n")
    assert kinds[at + 1][0] == "client"
    assert kinds[-1][0] == "close" and transcript.events[-1].detail == "client"
    sent = transcript.sent_by(tf.Sender.CLIENT)
    assert b" LOGIN alice \"" + b"*" * len(PASSWORD) + b"\"\r\n" in sent
    assert PASSWORD.encode() not in path.read_bytes()


def test_one_file_per_connection_in_connect_order_with_labels(world, tmp_path):
    recorder = Recorder(tmp_path)
    _session(_endpoint(world, world[1], recorder, "source"))
    _session(_endpoint(world, world[1], recorder, "destination"))
    _session(_endpoint(world, world[2], recorder, "source"))
    recorder.close()
    plain, implicit = world[1].port, world[2].port
    assert [p.name for p in recorder.paths] == sorted(p.name for p in tmp_path.iterdir()) == [
        f"001-source-imap-127.0.0.1_{plain}.jsonl",
        f"002-destination-imap-127.0.0.1_{plain}.jsonl",
        f"003-source-imap-127.0.0.1_{implicit}.jsonl",
    ]
    third = tf.read(recorder.paths[2])
    assert third.header.tls == "implicit"
    assert not any(isinstance(e, tf.Mark) and e.kind == "starttls" for e in third.events)
    assert third.sent_by(tf.Sender.SERVER).startswith(b"* OK "), "recorded after TLS: plaintext"


def test_server_eof_is_the_close_mark_and_later_bytes_still_recorded(tmp_path):
    header = tf.Header(protocol=tf.Protocol.POP3, server="peer:110", started=datetime.now(timezone.utc))
    tap = SessionTap(tmp_path / "s.jsonl", header)
    ours, theirs = socket.socketpair()
    try:
        tapped = TappedSocket(ours, tap)
        reader = tapped.makefile("rb")
        theirs.sendall(b"+OK hi\r\n")
        assert reader.readline() == b"+OK hi\r\n"
        theirs.shutdown(socket.SHUT_WR)  # the server's FIN; our side may still send
        assert reader.readline() == b""
        tapped.sendall(b"QUIT\r\n")
        tapped.close()
    finally:
        theirs.close()
    events = tf.read(tmp_path / "s.jsonl").events
    assert [(type(e).__name__, getattr(e, "data", None) or getattr(e, "detail", None)) for e in events] == [
        ("Chunk", b"+OK hi\r\n"), ("Mark", "server"), ("Chunk", b"QUIT\r\n")]


def test_header_is_rewritten_in_place_while_events_are_appended(tmp_path):
    header = tf.Header(protocol=tf.Protocol.IMAP, server="h:143", started=datetime.now(timezone.utc))
    writer = tf.TranscriptWriter(tmp_path / "h.jsonl", header, header_room=20)
    writer.add(tf.Chunk(0.0, tf.Sender.SERVER, b"* OK\r\n"))
    header.redacted, header.tls = 3, "starttls"
    assert writer.rewrite_header(header)
    writer.add(tf.Chunk(0.1, tf.Sender.CLIENT, b"a1 NOOP\r\n"))
    header.label = "x" * 100
    assert not writer.rewrite_header(header), "no room: the old header stays"
    writer.close()
    back = tf.read(tmp_path / "h.jsonl")
    assert (back.header.redacted, back.header.tls, back.header.label) == (3, "starttls", "")
    assert [e.data for e in back.events] == [b"* OK\r\n", b"a1 NOOP\r\n"]


def test_the_simulators_own_view_of_a_connection_equals_the_engines(world, tmp_path):
    """Both ends of one STARTTLS connection recorded: the same bytes each way, the same marks."""
    w, handle, _ = world
    engine, simulator = Recorder(tmp_path / "engine"), Recorder(tmp_path / "simulator")
    w.record(simulator.labelled("simulator"))
    try:
        _session(_endpoint(world, handle, engine, "source"))
    finally:
        w.record(None)
    deadline = time.monotonic() + 5
    while simulator.paths and not _closed(simulator.paths[0]) and time.monotonic() < deadline:
        time.sleep(0.01)  # the reactor thread finishes its side
    engine.close(), simulator.close()
    ours, theirs = tf.read(engine.paths[0]), tf.read(simulator.paths[0])
    assert simulator.paths[0].name == f"001-simulator-imap-127.0.0.1_{handle.port}.jsonl"
    for sender in tf.Sender:
        assert ours.sent_by(sender) == theirs.sent_by(sender), sender
    assert (theirs.header.tls, theirs.header.redacted) == ("starttls", 1)
    marks = [(e.kind, e.detail) for e in theirs.events if isinstance(e, tf.Mark)]
    assert marks[0] == ("starttls", "") and marks[-1][0] == "close"
    assert PASSWORD.encode() not in simulator.paths[0].read_bytes()


def _closed(path) -> bool:
    return any(isinstance(e, tf.Mark) and e.kind == "close" for e in tf.read(path).events)


VCARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:rec-1\r\nFN:J\u00fcrgen Tap\r\nN:Tap;J\u00fcrgen;;;\r\nEND:VCARD\r\n"


@pytest.mark.peer
@pytest.mark.slow
def test_dav_requests_recorded_at_the_socket_credentials_masked(tmp_path):
    from migrator.sinks.dav import DavSink
    from scenarios.peers.radicale import RadicaleServer

    if RadicaleServer.availability():
        pytest.skip(RadicaleServer.availability())
    recorder = Recorder(tmp_path)
    with RadicaleServer() as radicale:
        radicale.add_user("dora", PASSWORD)
        endpoint = Endpoint(ServerURL.parse(radicale.url("dora")), Secret(PASSWORD), recorder=recorder.labelled("pim"))
        sink = DavSink(endpoint)
        collection = sink.ensure_collection("contacts", "contact", "Contacts")
        assert sink.put(collection, "rec-1", "contact", VCARD).created
        sink.close()
    recorder.close()
    transcripts = [tf.read(p) for p in recorder.paths]
    assert transcripts and all(t.header.protocol is tf.Protocol.HTTP and t.header.label == "pim" for t in transcripts)
    sent = b"".join(t.sent_by(tf.Sender.CLIENT) for t in transcripts)
    assert re.search(rb"PUT /dora/contacts/[^ ]+ HTTP/1\.1\r\n", sent)
    assert VCARD.encode() in sent, "the body as it was sent"
    assert b"Authorization: Basic " + b"*" * len(base64.b64encode(f"dora:{PASSWORD}".encode())) in sent
    assert b" 201 Created\r\n" in b"".join(t.sent_by(tf.Sender.SERVER) for t in transcripts)
    assert not any(PASSWORD.encode() in p.read_bytes() for p in recorder.paths)


class _FullDisk:
    closed = False

    def write(self, text):
        raise OSError(28, "No space left on device")

    def close(self):
        self.closed = True


def test_a_failing_transcript_never_fails_the_session(world, tmp_path):
    """A full disk mid-session: the migration's connection carries on, the recorder says which
    file stopped and why, and nothing unredacted was written."""
    recorder = Recorder(tmp_path)
    endpoint = _endpoint(world, world[1], recorder, "source")
    client, _tls = imapconn.connect(endpoint, role="source")
    (path,) = recorder.paths
    recorder._taps[0]._writer._fp = _FullDisk()  # the disk fills up after the login
    client.select_folder("INBOX", readonly=True)
    assert imapconn.uid_fetch(client, "1:*", ["BODY.PEEK[]"])[1][b"BODY[]"] == MESSAGE
    client.logout()
    recorder.close()
    assert recorder.failures == [f"{path.name}: recording stopped: OSError: [Errno 28] No space left on device"]
    assert tf.read(path).sent_by(tf.Sender.CLIENT).count(b"LOGIN") == 1


def test_an_unwritable_folder_leaves_connections_unrecorded_and_says_so(world, tmp_path):
    recorder = Recorder(tmp_path / "rec")
    (tmp_path / "rec").rmdir()
    (tmp_path / "rec").write_text("a file where the folder was")
    _session(_endpoint(world, world[1], recorder, "source"))
    assert recorder.paths == []
    [failure] = recorder.failures
    assert failure.startswith(f"a source imap connection to 127.0.0.1:{world[1].port}: not recorded: ")


def test_ews_both_ends_recorded_alike(tmp_path):
    """HTTP: the engine's exchangelib requests (tapped at the socket) and the EWS simulator's
    view of them (its twisted.web site wrapped) hold the same bytes; Basic credentials masked."""
    from migrator.sources.ews import EwsSource

    store = Store()
    store.add_account("eve", PASSWORD).append(("INBOX",), MESSAGE)
    engine, simulator = Recorder(tmp_path / "engine"), Recorder(tmp_path / "simulator")
    with SimulatorWorld(store, load_profile("exchange")) as w:
        w.record(simulator.labelled("simulator"))
        endpoint = Endpoint(ServerURL.parse(w.start_ews().url("eve")), Secret(PASSWORD),
                            recorder=engine.labelled("source"))
        source = EwsSource(endpoint, connections=1)
        assert "inbox" in source.distinguished()
        source.close()
    engine.close(), simulator.close()
    ours = [tf.read(p) for p in engine.paths]
    theirs = [tf.read(p) for p in simulator.paths]
    assert ours and len(ours) == len(theirs)
    assert all(t.header.protocol is tf.Protocol.HTTP for t in ours + theirs)
    for sender in tf.Sender:
        assert b"".join(t.sent_by(sender) for t in ours) == b"".join(t.sent_by(sender) for t in theirs)
    requests_sent = b"".join(t.sent_by(tf.Sender.CLIENT) for t in theirs)
    assert b"POST /EWS/Exchange.asmx HTTP/1.1\r\n" in requests_sent and b"Authorization: Basic ****" in requests_sent
    assert not any(PASSWORD.encode() in p.read_bytes() for p in engine.paths + simulator.paths)
