"""``quirkmail anonymise`` on mailbox files: the same kind out, loadable, same shape when served."""

from __future__ import annotations

import json
import mailbox
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from imapclient import IMAPClient

from scenarios.cli import main
from simulators.fixtures import loaders
from simulators.fixtures.generator import generate
from simulators.fixtures.spec import FixtureSpec
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store

PROFILE = load_profile("generic")


@pytest.fixture(scope="module")
def messages():
    return generate(FixtureSpec(seed=31, messages=20, attachments=0.6, bad_dates=2), PROFILE)


def _mbox(path: Path, messages) -> Path:
    with path.open("wb") as f:
        for m in messages:
            stamp = m.internaldate.astimezone(timezone.utc).strftime("%a %b %d %H:%M:%S %Y")
            f.write(b"From anna.kraemer@kunde-gmbh.de " + stamp.encode() + b"\n")
            f.write(m.raw.replace(b"\r\n", b"\n") + b"\n")
    return path


def _shape(structure) -> object:
    """A BODYSTRUCTURE with names taken out: types, encodings, sizes, line counts, nesting."""
    if isinstance(structure, tuple | list):
        return tuple(_shape(x) for x in structure)
    if isinstance(structure, bytes) and structure.lower() not in (b"attachment", b"inline"):
        return structure.lower() if len(structure) < 40 and b"." not in structure else b"*"
    return structure


def _served(path: Path) -> list[tuple]:
    store = Store()
    account = store.add_account("alice", "pw")
    loaders.load_mbox(account, path, ("INBOX",))
    with SimulatorWorld(store, PROFILE) as world:
        with IMAPClient("127.0.0.1", port=world.start_imap().port, ssl=False, timeout=10) as client:
            client.login("alice", "pw")
            client.select_folder("INBOX", readonly=True)
            data = client.fetch(client.search(["ALL"]), ["BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE"])
    return [(d[b"RFC822.SIZE"], d[b"INTERNALDATE"], _shape(d[b"BODYSTRUCTURE"])) for _, d in sorted(data.items())]


def test_an_anonymised_mbox_loads_and_serves_with_the_same_sizes_dates_and_structure(tmp_path, messages):
    source = _mbox(tmp_path / "anna.mbox", messages)
    assert main(["anonymise", str(source), "-o", str(tmp_path / "out"), "--seed", "3"]) == 0
    (out,) = (tmp_path / "out").iterdir()
    assert out.suffix == ".mbox" and "anna" not in out.name, "a file name naming the customer is rewritten"
    data = out.read_bytes()
    assert len(data) == source.stat().st_size
    assert b"kunde" not in data and b"anna" not in data.lower()
    assert _served(out) == _served(source)
    assert [m.get_from()[-24:] for m in mailbox.mbox(out)] == [m.get_from()[-24:] for m in mailbox.mbox(source)]


def test_a_maildir_keeps_folders_flags_and_mtimes_and_leaves_dovecot_indexes_out(tmp_path, messages):
    root = tmp_path / "Maildir"
    for folder, sub in (("", "cur"), (".Projekte.&AMQ-rger", "cur"), (".Sent", "new")):
        for d in ("cur", "new", "tmp"):
            (root / folder / d).mkdir(parents=True, exist_ok=True)
        for i, m in enumerate(messages[:3]):
            f = root / folder / sub / f"170000000{i}.M1P2.laptop-anna,S={len(m.raw)}:2,FS"
            f.write_bytes(m.raw)
            os.utime(f, (1_650_000_000 + i, 1_650_000_000 + i))
    (root / "dovecot.index.cache").write_bytes(b"Subject: Falkenstein secret")
    (root / "subscriptions").write_bytes(b"Projekte/&AMQ-rger\nSent\n")
    assert main(["anonymise", str(root), "-o", str(tmp_path / "out"), "--seed", "3"]) == 0
    out = tmp_path / "out" / "Maildir"
    assert not (out / "dovecot.index.cache").exists()
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name.startswith("."))
    assert ".Sent" in folders and len(folders) == 2
    other = next(f for f in folders if f != ".Sent")
    assert other != ".Projekte.&AMQ-rger" and len(other) == len(".Projekte.&AMQ-rger") and "&" in other
    assert (out / "subscriptions").read_bytes().split(b"\n")[0] == other[1:].replace(".", "/").encode()
    originals, copies = Store().add_account("a", "p"), Store().add_account("b", "p")
    loaders.load_maildir(originals, root)
    loaders.load_maildir(copies, out)
    for (path_a, folder_a), (path_b, folder_b) in zip(sorted(originals.folders.items()), sorted(copies.folders.items())):
        assert [(m.flags, m.internaldate, len(m.raw)) for m in folder_a.messages] == \
               [(m.flags, m.internaldate, len(m.raw)) for m in folder_b.messages]
    names = [p.name for p in (out / "cur").iterdir()]
    assert all(",S=" in n and n.endswith(":2,FS") and "laptop" not in n for n in names)


def test_eml_directory_one_run_maps_everyone_consistently_and_mapping_only_when_asked(tmp_path, messages):
    src = tmp_path / "emls"
    src.mkdir()
    for i, m in enumerate(messages[:5]):
        (src / f"{i}.eml").write_bytes(m.raw)
    single = tmp_path / "one.eml"
    single.write_bytes(messages[0].raw)
    assert main(["anonymise", str(src), str(single), "-o", str(tmp_path / "out"), "--seed", "8"]) == 0
    assert not list(tmp_path.glob("**/*.json")), "no mapping unless asked"
    assert (tmp_path / "out" / "emls" / "0.eml").read_bytes() == (tmp_path / "out" / "one.eml").read_bytes()
    mapping = tmp_path / "map.json"
    assert main(["anonymise", str(single), "-o", str(tmp_path / "x.eml"), "--seed", "8", "--mapping", str(mapping)]) == 0
    assert (tmp_path / "x.eml").read_bytes() == (tmp_path / "out" / "one.eml").read_bytes(), "same seed, same bytes"
    table = json.loads(mapping.read_text())
    assert table["addresses"] and table["subjects"] and table["names"]


def test_bad_input_is_named_and_nothing_is_written(tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"\x00\x01 not mail")
    assert main(["anonymise", str(junk), "-o", str(tmp_path / "out")]) == 2
    assert f"{junk}: not a transcript" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    broken = tmp_path / "t.jsonl"
    broken.write_text('{"quirkmail_transcript": 1, "protocol": "imap", "server": "x", "started": "2026-01-01T00:00:00+00:00"}\n{"t": -1}\n')
    assert main(["anonymise", str(broken), "-o", str(tmp_path / "out")]) == 2
    assert "'t' must be seconds" in capsys.readouterr().err


def test_a_recorded_directory_of_transcripts_comes_out_as_the_same_tree(tmp_path):
    from transcripts.format import Chunk, Header, Protocol, Sender, Transcript, read, write

    started = datetime(2026, 11, 22, tzinfo=timezone.utc)
    session = Transcript(Header(Protocol.POP3, "pop.kunde-gmbh.de:110", started, label="source"), [
        Chunk(0.0, Sender.SERVER, b"+OK ready\r\n"), Chunk(0.1, Sender.CLIENT, b"USER annakraemer\r\n"),
        Chunk(0.2, Sender.SERVER, b"+OK annakraemer welcome\r\n")])
    write(session, tmp_path / "rec" / "quirks" / "annakraemer" / "source-1.jsonl")
    assert main(["anonymise", str(tmp_path / "rec"), "-o", str(tmp_path / "out"), "--seed", "2"]) == 0
    (out,) = (tmp_path / "out").rglob("*.jsonl")
    assert out.relative_to(tmp_path / "out").parts[:2] == ("rec", "quirks") and "annakraemer" not in str(out)
    back = read(out)
    assert back.header.anonymised and "kunde" not in back.header.server and back.header.server.endswith(".de:110")
    assert b"annakraemer" not in back.sent_by(Sender.CLIENT) + back.sent_by(Sender.SERVER)
