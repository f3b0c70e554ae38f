"""The SMTP simulator records its side of each connection (simulators.smtp.recording): the same
bytes the client saw, the STARTTLS mark, AUTH's secret masked."""

from __future__ import annotations

import base64
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from transcripts import format as tf
from transcripts.tap import Recorder, tapped

PASSWORD = "Smtp-Rec-S3cret-Osprey-41"
# 8-bit and a dot-stuffed line: DATA's bytes must reach the file as sent.
MESSAGE = b"From: a@example.org\r\nSubject: caf\xe9\r\n\r\n.leading dot\r\n\xff binary\r\n"


def _world(store: Store) -> SimulatorWorld:
    profile = load_profile("generic")
    profile = profile.model_copy(update={"smtp": profile.smtp.model_copy(update={"auth_require_tls": True})})
    return SimulatorWorld(store, profile)


def _closed(path) -> bool:
    return any(isinstance(e, tf.Mark) and e.kind == "close" for e in tf.read(path).events)


def _wait_closed(recorder: Recorder) -> None:
    deadline = time.monotonic() + 5
    while not (recorder.paths and _closed(recorder.paths[0])) and time.monotonic() < deadline:
        time.sleep(0.01)  # the server's asyncio thread finishes its side


def test_starttls_auth_plain_data_recorded_as_the_client_saw_it(tmp_path):
    store = Store()
    store.add_account("alice", PASSWORD)
    client_rec, server_rec = Recorder(tmp_path / "client"), Recorder(tmp_path / "server")
    with _world(store) as world:
        world.record(server_rec.labelled("simulator"))
        handle = world.start_smtp()
        client_class = tapped(smtplib.SMTP, client_rec.session_opener(
            label="client", protocol="smtp", host=handle.host, port=handle.port))
        with client_class(handle.host, handle.port, timeout=10) as client:
            client.ehlo()
            client.starttls(context=ssl.create_default_context(cafile=str(world.cafile)))
            client.ehlo()
            client.login("alice", PASSWORD)  # AUTH PLAIN, the initial response inline
            client.sendmail("a@example.org", ["alice"], MESSAGE)
        _wait_closed(server_rec)
    client_rec.close(), server_rec.close()
    [path] = server_rec.paths
    assert path.name == f"001-simulator-smtp-127.0.0.1_{handle.port}.jsonl"
    ours, theirs = tf.read(client_rec.paths[0]), tf.read(path)
    for sender in tf.Sender:
        assert theirs.sent_by(sender) == ours.sent_by(sender), sender
    sent = theirs.sent_by(tf.Sender.CLIENT)
    secret = base64.b64encode(f"\0alice\0{PASSWORD}".encode())
    assert b"AUTH PLAIN " + b"*" * len(secret) + b"\r\n" in sent
    assert b"\r\n..leading dot\r\n\xff binary\r\n.\r\n" in sent, "DATA as sent, dot-stuffed"
    assert theirs.sent_by(tf.Sender.SERVER).startswith(b"220 ")
    assert (theirs.header.protocol, theirs.header.tls, theirs.header.redacted) == (tf.Protocol.SMTP, "starttls", 1)
    marks = [(e.kind, e.detail) for e in theirs.events if isinstance(e, tf.Mark)]
    assert marks == [("starttls", ""), ("close", "server")], "the server closes after QUIT's 221"
    before_tls = theirs.events[:next(i for i, e in enumerate(theirs.events) if isinstance(e, tf.Mark))]
    assert b"".join(e.data for e in before_tls if e.sender is tf.Sender.SERVER).endswith(b"220 Ready to start TLS\r\n")
    assert PASSWORD.encode() not in path.read_bytes() and secret not in path.read_bytes()
    assert len(store.account("alice").folder(("INBOX",)).messages) == 1


def test_a_client_that_drops_is_the_close_mark_and_record_none_stops(tmp_path):
    store = Store()
    recorder = Recorder(tmp_path)
    with _world(store) as world:
        world.record(recorder.labelled("simulator"))
        handle = world.start_smtp()
        client = smtplib.SMTP(handle.host, handle.port, timeout=10)
        client.ehlo()
        client.close()  # no QUIT
        _wait_closed(recorder)
        world.record(None)
        with smtplib.SMTP(handle.host, handle.port, timeout=10) as unrecorded:
            unrecorded.noop()
    recorder.close()
    [path] = recorder.paths
    transcript = tf.read(path)
    assert transcript.header.tls == "none"
    assert transcript.sent_by(tf.Sender.CLIENT).startswith(b"ehlo ")
    assert [(e.kind, e.detail) for e in transcript.events if isinstance(e, tf.Mark)] == [("close", "client")]


@pytest.mark.peer
def test_swaks_auth_login_over_starttls_recorded_the_password_masked(tmp_path):
    """A real client (swaks): AUTH LOGIN's user name is kept, its password masked, length kept."""
    swaks = shutil.which("swaks")
    if swaks is None or subprocess.run(["perl", "-MNet::SSLeay", "-e1"], capture_output=True).returncode:
        pytest.skip("swaks with Net::SSLeay is not installed (apt-get install swaks libnet-ssleay-perl)")
    store = Store()
    store.add_account("alice", PASSWORD)
    recorder = Recorder(tmp_path)
    with _world(store) as world:
        world.record(recorder.labelled("simulator"))
        handle = world.start_smtp()
        result = subprocess.run(
            [swaks, "--server", f"{handle.host}:{handle.port}", "--from", "a@example.org", "--to", "alice",
             "--tls", "--tls-verify", "--tls-ca-path", str(world.cafile),
             "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", PASSWORD],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr
        _wait_closed(recorder)
    recorder.close()
    [path] = recorder.paths
    transcript = tf.read(path)
    sent = transcript.sent_by(tf.Sender.CLIENT)
    secret = base64.b64encode(PASSWORD.encode())
    assert b"AUTH LOGIN\r\n" + base64.b64encode(b"alice") + b"\r\n" + b"*" * len(secret) + b"\r\n" in sent
    assert b"\r\n.\r\n" in sent and b"250 " in transcript.sent_by(tf.Sender.SERVER)
    assert transcript.header.tls == "starttls" and transcript.header.redacted == 1
    assert [e.kind for e in transcript.events if isinstance(e, tf.Mark)] == ["starttls", "close"]
    assert PASSWORD.encode() not in path.read_bytes() and secret not in path.read_bytes()
    assert len(store.account("alice").folder(("INBOX",)).messages) == 1
