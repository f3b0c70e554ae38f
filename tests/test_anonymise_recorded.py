"""Transcripts written by the engine's recorder (``--record``), anonymised as a support engineer would."""

from __future__ import annotations

import email
import re

from migrator.engine import MigrationOptions, migrate
from migrator.recording import recorded
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios.cli import main
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from transcripts import format as tf
from transcripts.tap import Recorder

PW = "Anon-Rec-9931"
WORD = re.compile(rb"[A-Za-z]{6,}")


def test_a_recorded_migration_directory_anonymised_keeps_every_chunk_and_loses_every_name(tmp_path):
    source_store, dest_store = Store(), Store()
    account = source_store.add_account("ingeborg", PW)
    populate(account, FixtureSpec(seed=41, messages=10, folders=4, attachments=0.5), load_profile("generic"))
    dest_store.add_account("ingeborg", PW)
    raws = [m.raw for f in account.folders.values() for m in f.messages]
    recorder = Recorder(tmp_path / "rec")
    with SimulatorWorld(source_store, load_profile("generic")) as src, \
            SimulatorWorld(dest_store, load_profile("generic")) as dst:
        s, d = src.start_imap(), dst.start_imap()
        source = recorded(Endpoint(ServerURL.parse(s.url("ingeborg")), Secret(PW), cafile=src.cafile), recorder, "source")
        dest = recorded(Endpoint(ServerURL.parse(d.url("ingeborg")), Secret(PW), cafile=dst.cafile), recorder, "destination")
        report = migrate(source, dest, MigrationOptions(state_path=tmp_path / "state.sqlite", connections=1))
        recorder.close()
    assert report.exit_code == 0 and report.copied == len(raws)
    assert main(["anonymise", str(tmp_path / "rec"), "-o", str(tmp_path / "out"), "--seed", "1"]) == 0
    originals = sorted((tmp_path / "rec").glob("*.jsonl"))
    copies = sorted((tmp_path / "out" / "rec").glob("*.jsonl"))
    assert len(copies) == len(originals) >= 2
    vocab = set()
    for raw in raws:
        msg = email.message_from_bytes(raw)
        vocab |= {w.lower() for h in ("From", "To", "Subject") for w in WORD.findall(str(msg.get(h, "")).encode())}
        vocab |= {w.lower() for part in msg.walk() if part.get_content_type() == "text/plain"
                  for w in WORD.findall(part.get_payload(decode=True) or b"")}
    vocab |= {b"ingeborg"}
    for original, copy in zip(originals, copies):
        a, b = tf.read(original), tf.read(copy)
        assert [len(e.data) if isinstance(e, tf.Chunk) else e.kind for e in a.events] == \
               [len(e.data) if isinstance(e, tf.Chunk) else e.kind for e in b.events]
        assert b.header.anonymised and b.header.redacted == a.header.redacted
        text = (b.sent_by(tf.Sender.CLIENT) + b.sent_by(tf.Sender.SERVER)).lower()
        protocol = {w.lower() for line in a.sent_by(tf.Sender.SERVER).split(b"\n")  # the server's prose
                    if re.match(rb"\S+ (OK|NO|BAD|CAPABILITY)", line) for w in WORD.findall(line)}
        protocol |= {w.lower() for line in a.sent_by(tf.Sender.CLIENT).split(b"\n")  # FETCH items, SEARCH keys
                     if re.match(rb"\S+ (UID )?[A-Z]+ ", line) and b"{" not in line for w in WORD.findall(line)}
        protocol |= {w.lower() for name in re.findall(rb"(?m)^[A-Za-z-]+(?=:)", a.sent_by(tf.Sender.SERVER) + a.sent_by(tf.Sender.CLIENT))
                     for w in WORD.findall(name)}  # header field names
        protocol |= {b"example"}  # example.net: a kept provider domain
        leaked = (vocab - protocol) & {w for w in WORD.findall(text)}
        assert not leaked, (copy.name, sorted(leaked))
    assert "ingeborg" not in " ".join(p.name for p in (tmp_path / "out").rglob("*"))
