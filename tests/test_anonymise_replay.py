"""Anonymised recordings still replay: ``quirkmail replay`` serves them, a client gets the same replies.

Also a customer's raw logs (Dovecot rawlogs, imapsync ``--debugimap``: the replay tests' samples)
through ``quirkmail anonymise`` into transcripts that replay.
"""

from __future__ import annotations

import socket
from pathlib import Path

from imapclient import IMAPClient

from scenarios.cli import main
from simulators.fixtures.generator import populate
from simulators.fixtures.spec import FixtureSpec
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.replay.script import build
from simulators.replay.server import ReplayServer
from simulators.store import Store
from tests.anonymise_support import RecordingProxy
from transcripts import format as tf, rawlog
from transcripts.anonymise import Anonymiser

SAMPLES = Path(__file__).parent / "replay_data"


def _play(transcript: tf.Transcript, port: int) -> bytes:
    """The recorded client's bytes sent as it sent them; the server's bytes read as many as recorded."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for event in transcript.events:
            if not isinstance(event, tf.Chunk):
                continue
            if event.sender is tf.Sender.CLIENT:
                sock.sendall(event.data)
                continue
            want = len(got) + len(event.data)
            while len(got) < want:
                data = sock.recv(65536)
                if not data:
                    return bytes(got)
                got += data
    return bytes(got)


def test_an_anonymised_imap_session_replays_with_the_same_replies(tmp_path):
    store = Store()
    populate(store.add_account("alice", "pw-Replay-1"), FixtureSpec(seed=51, messages=6, folders=4, attachments=0.5),
             load_profile("generic"))
    with SimulatorWorld(store, load_profile("generic")) as world:
        proxy = RecordingProxy(world.start_imap().port, tf.Protocol.IMAP)
        with IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=10) as client:
            client.login("alice", "pw-Replay-1")
            for _, _, name in client.list_folders():
                client.select_folder(name, readonly=True)
                uids = client.search(["ALL"])
                if uids:
                    client.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[]", "FLAGS"])
        original = proxy.transcript()
    anonymised = Anonymiser(seed=6).transcript(original)
    with ReplayServer([build(anonymised, "anonymised")]) as replay:
        [endpoint] = replay.start()
        served = _play(anonymised, endpoint.port)
        summary = replay.summary()
    assert served == anonymised.sent_by(tf.Sender.SERVER), "every reply, byte for byte"
    assert summary.divergences == [] and summary.matched > 10


def test_customer_rawlogs_and_imapsync_logs_come_out_as_replayable_transcripts(tmp_path):
    out = tmp_path / "out"
    inputs = [SAMPLES / "dovecot-2.3.19", SAMPLES / "imapsync-debugimap.log"]
    assert main(["anonymise", *map(str, inputs), "-o", str(out), "--seed", "5"]) == 0
    written = sorted(out.rglob("*.jsonl"))
    assert {p.parent.name for p in written} == {"dovecot-2.3.19", "imapsync-debugimap.log"}
    originals = {name: t for path in inputs for name, t in rawlog.load([path]).sessions}
    assert len(written) == len(originals)
    for path in written:
        anonymised = tf.read(path)
        assert anonymised.header.anonymised and b" LOGIN alice " not in anonymised.sent_by(tf.Sender.CLIENT)
        assert anonymised.header.extra["source_files"], "the importer's fields kept (known names rewritten)"
        build(anonymised, path.stem)  # the replay takes it (a ReplayError would name the cause)
    sizes = sorted(len(t.sent_by(tf.Sender.SERVER)) for t in originals.values())
    assert sizes == sorted(len(tf.read(p).sent_by(tf.Sender.SERVER)) for p in written)
