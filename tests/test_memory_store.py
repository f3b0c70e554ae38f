"""Memory and scale, simulator side: bodies on disk or generated, served byte-exact over IMAP."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from imapclient import IMAPClient

from simulators.bodies import BLOB_NAME, BlobFile, BodyError
from simulators.fixtures.bulk import add_bulk, bulk_message, huge_message
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

WHEN = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
PASSWORD = "pw-memory"


def fetch_bodies(port: int, user: str) -> dict[int, bytes]:
    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as client:
        client.login(user, PASSWORD)
        client.select_folder("INBOX", readonly=True)
        return {uid: v[b"BODY[]"] for uid, v in client.fetch(client.search("ALL"), ["BODY.PEEK[]"]).items()}


def test_disk_store_serves_fetch_body_byte_exact_after_the_server_restarts(tmp_path):
    store = Store(body_dir=tmp_path)
    account = store.add_account("alice", PASSWORD)
    raws = [huge_message(300_000, attachments=2, seed=3), b"Subject: bare LF\n\nline\x00\xff\n", bulk_message(1, 7)]
    for raw in raws:
        account.append(INBOX, raw, internaldate=WHEN)
    items = account.folder(INBOX).messages
    assert not any(item.in_memory for item in items)
    assert [item.size for item in items] == [len(r) for r in raws]
    assert (tmp_path / BLOB_NAME).stat().st_size == sum(map(len, raws))
    profile = load_profile("generic")
    with SimulatorWorld(store, profile) as world:
        first = fetch_bodies(world.start_imap().port, "alice")
    with SimulatorWorld(store, profile) as world:  # a new server object over the same store
        again = fetch_bodies(world.start_imap().port, "alice")
    assert first == again == dict(zip((1, 2, 3), raws))
    # The bytes are in the file: a second handle on it reads them at the recorded offsets.
    reopened = BlobFile(tmp_path)
    try:
        assert [reopened.body(i._body.offset, i.size).read() for i in items] == raws
        with pytest.raises(BodyError, match="no body at offset"):
            reopened.body(sum(map(len, raws)), 1)
    finally:
        reopened.close()
        store.close()


def test_disk_store_caches_envelope_and_bodystructure_per_message(tmp_path):
    store = Store(body_dir=tmp_path)
    account = store.add_account("alice", PASSWORD)
    item = account.append(INBOX, bulk_message(1, 0), internaldate=WHEN)
    reads = []
    real = item._body.read
    item._body = type("Counting", (), {"size": item.size, "read": lambda self: reads.append(1) or real()})()
    with SimulatorWorld(store, load_profile("generic")) as world:
        port = world.start_imap().port
        with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as client:
            client.login("alice", PASSWORD)
            client.select_folder("INBOX", readonly=True)
            for _ in range(3):
                data = client.fetch([1], ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "INTERNALDATE"])
    assert data[1][b"RFC822.SIZE"] == len(bulk_message(1, 0))
    assert data[1][b"ENVELOPE"].message_id == b"<bulk.1.0@quirkmail.test>"
    assert len(reads) == 2  # once for ENVELOPE, once for BODYSTRUCTURE; never again, never for the size
    store.close()


def test_bulk_folder_is_generated_on_demand_and_deterministic():
    store = Store()
    account = store.add_account("bob", PASSWORD)
    add_bulk(account, 5000, seed=9)
    folder = account.folder(INBOX)
    assert len(folder.messages) == 5000 and not any(m.in_memory for m in folder.messages)
    assert folder.by_uid(4321).raw == bulk_message(9, 4320) != bulk_message(8, 4320)
    assert folder.by_uid(5001) is None
    assert b"Message-ID: <bulk.9.4320@quirkmail.test>\r\n" in folder.by_uid(4321).raw
    with SimulatorWorld(store, load_profile("generic")) as world:
        port = world.start_imap().port
        with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=10) as client:
            client.login("bob", PASSWORD)
            client.select_folder("INBOX", readonly=True)
            got = client.fetch(list(range(4990, 5001)), ["BODY.PEEK[]", "RFC822.SIZE"])
    assert sorted(got) == list(range(4990, 5001))
    assert all(v[b"BODY[]"] == bulk_message(9, uid - 1) and v[b"RFC822.SIZE"] == len(v[b"BODY[]"])
               for uid, v in got.items())


@pytest.mark.parametrize("attachments", [0, 1, 8])
def test_huge_message_has_exactly_the_size_asked_for(attachments):
    raw = huge_message(2_000_003, attachments=attachments, seed=2)
    assert len(raw) == 2_000_003
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 line limit
    assert raw.count(b"Content-Disposition: attachment") == attachments
    assert hashlib.sha256(raw).digest() == hashlib.sha256(huge_message(2_000_003, attachments=attachments, seed=2)).digest()
