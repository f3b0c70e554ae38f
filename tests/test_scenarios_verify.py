"""The verifier: pure comparison of snapshots, and the real thing against Dovecot with tampering."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scenarios.snapshot import (
    FolderSnapshot,
    MailboxSnapshot,
    message_identity,
    record_of,
    snapshot_account,
    split_name,
)
from scenarios.verify import VerifyScope, compare

UTC = timezone.utc
T0 = datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))


def msg(i: int, body: str = "") -> bytes:
    return f"Message-ID: <m{i}@example.org>\r\nSubject: s{i}\r\n\r\nbody {i}{body}\r\n".encode()


def snap(label: str, folders: dict[str, list], special: dict[str, str] | None = None) -> MailboxSnapshot:
    special = special or {}
    out = MailboxSnapshot(label=label)
    for key, items in folders.items():
        records = [record_of(uid, raw, flags, date) for uid, (raw, flags, date) in enumerate(items, 1)]
        out.folders[key] = FolderSnapshot(
            path=tuple(key.split("/")), name=key, special_use=special.get(key), messages=records
        )
    return out


def base(n: int = 3) -> list:
    return [(msg(i), {"\\Seen"} if i % 2 else set(), T0 + timedelta(days=i)) for i in range(n)]


# Pure -------------------------------------------------------------------------------------------


def test_identical_mailboxes_compare_identical_even_when_zones_differ():
    src = snap("src", {"INBOX": base()})
    # Same instants written in another zone, as Maildir gives them back.
    dst = snap("dst", {"INBOX": [(r, f, d.astimezone(UTC)) for r, f, d in base()]})
    report = compare(src, dst)
    assert report.identical
    assert [(f.source, f.destination, f.source_count, f.dest_count) for f in report.folders] == [
        ("INBOX", "INBOX", 3, 3)
    ]
    assert "IDENTICAL" in report.summary()


def test_each_kind_of_damage_is_reported_where_it_happened():
    items = base(6)
    damaged = [
        items[0],  # intact
        (items[1][0], set(), items[1][2]),  # lost \Seen
        (items[2][0], items[2][1], items[2][2] + timedelta(hours=1)),  # date moved
        (msg(3, " rewritten"), items[3][1], items[3][2]),  # bytes changed, same Message-ID
        items[5],
        items[5],  # duplicated; items[4] missing
        (msg(99), set(), T0),  # unexpected stranger
    ]
    report = compare(snap("src", {"INBOX": items}), snap("dst", {"INBOX": damaged}))
    f = report.folders[0]
    assert not report.identical
    assert [r.uid for r in f.missing] == [5]
    assert [r.identity for r in f.duplicated] == ["<m5@example.org>"]
    assert [r.identity for r in f.unexpected] == ["<m99@example.org>"]
    assert [r.uid for r in f.flag_mismatches] == [2] and "lost \\Seen" in f.flag_mismatches[0].detail
    assert [r.uid for r in f.date_mismatches] == [3]
    assert [r.uid for r in f.byte_mismatches] == [4]
    text = report.summary()
    assert "missing: 1" in text and "NOT IDENTICAL" in text


def test_unexpected_mail_alone_keeps_the_copy_identical():
    # Merging into a mailbox with mail of its own: every source message is there once.
    src = snap("src", {"INBOX": base(2)})
    dst = snap("dst", {"INBOX": base(2) + [(msg(50), set(), T0)]})
    report = compare(src, dst)
    assert report.identical
    assert report.total("unexpected") == 1


def test_bare_lf_returned_as_crlf_is_noted_not_failed():
    bare = b"Message-ID: <lf@x>\nSubject: unix\n\nline\n"
    crlf = bare.replace(b"\n", b"\r\n")
    report = compare(snap("src", {"INBOX": [(bare, set(), T0)]}), snap("dst", {"INBOX": [(crlf, set(), T0)]}))
    assert report.identical
    assert [r.detail for r in report.folders[0].crlf_normalised] == ["came back as IMAP shows it: bare LF as CRLF, NUL as 0x80"]
    assert "note INBOX → INBOX" in report.summary() and "crlf normalised 1" in report.summary()
    # Any other change of bytes is still a mismatch.
    other = compare(snap("src", {"INBOX": [(bare, set(), T0)]}), snap("dst", {"INBOX": [(crlf + b"x", set(), T0)]}))
    assert len(other.folders[0].byte_mismatches) == 1 and not other.identical


def test_missing_destination_folder_counts_every_message_missing():
    report = compare(snap("src", {"INBOX": [], "Work": base(2)}), snap("dst", {"INBOX": []}))
    work = next(f for f in report.folders if f.source == "Work")
    assert not work.destination_exists and len(work.missing) == 2
    assert "(does not exist)" in report.summary()


def test_special_use_target_root_include_and_exclude_shape_the_mapping():
    src = snap("src", {"INBOX": base(1), "Sent Items": base(1), "Work": [], "Junk": []}, {"Sent Items": "\\Sent"})
    dst = snap("dst", {"INBOX": base(1), "Sent": base(1)}, {"Sent": "\\Sent"})
    mapped = {f.source: f.destination for f in compare(src, dst, VerifyScope(exclude=["Junk"])).folders}
    assert mapped == {"INBOX": "INBOX", "Sent Items": "Sent", "Work": "Work"}
    rooted = compare(src, dst, VerifyScope(target_root=["Old"], include=["INBOX", "Work"]))
    assert {f.source: f.destination for f in rooted.folders} == {"INBOX": "Old/INBOX", "Work": "Old/Work"}


def test_identity_falls_back_to_a_header_hash_without_message_id():
    a = b"From: a@x\r\nSubject: one\r\n\r\nbody"
    b = b"From: a@x\r\nSubject: two\r\n\r\nbody"
    assert message_identity(a).startswith("no-message-id:")
    assert message_identity(a) != message_identity(b)
    assert message_identity(a + b" changed") == message_identity(a)
    assert message_identity(b"Message-ID: <x@y>\n\nbare LF") == "<x@y>"


@pytest.mark.parametrize(
    ("name", "delimiter", "prefix", "parts"),
    [
        ("INBOX", ".", "INBOX.", ("INBOX",)),
        ("INBOX.Work.2024", ".", "INBOX.", ("Work", "2024")),
        ("Work/2024", "/", "", ("Work", "2024")),
        ("inbox/Sub", "/", "", ("INBOX", "Sub")),
        ("Flat", None, "", ("Flat",)),
    ],
)
def test_split_name(name, delimiter, prefix, parts):
    assert split_name(name, delimiter, prefix) == parts


def test_snapshot_account_reads_the_store_truth():
    from simulators.store import Store

    account = Store().add_account("u", "p")
    account.create_folder(("Sent",), special_use="\\Sent")
    account.append(("Sent",), msg(1), flags={"\\Seen", "\\Recent"}, internaldate=T0)
    s = snapshot_account(account)
    assert set(s.folders) == {"INBOX", "Sent"}
    rec = s.folders["Sent"].messages[0]
    assert rec.flags == {"\\Seen"} and rec.internaldate == T0 and rec.size == len(msg(1))
    assert s.by_special_use("\\Sent").path == ("Sent",)


# Against a real Dovecot -------------------------------------------------------------------------


@pytest.fixture
def dovecot():
    """The runner's per-process Dovecot (users are unique per test, so it is shared safely)."""
    from scenarios.peers.dovecot import availability
    from scenarios.runner import shared_dovecot

    if availability():
        pytest.skip(availability())
    return shared_dovecot()


def _loaded(dovecot, user: str):
    """A Dovecot user holding the reference mailbox, and its endpoint."""
    from migrator.urls import Endpoint, Secret, ServerURL
    from scenarios.runner import add_dovecot_user
    from simulators.store import Store

    account = Store().add_account(user, "pw-" + user)
    account.create_folder(("Sent",), special_use="\\Sent")
    account.create_folder(("Wörk", "2024"))
    for i in range(4):
        account.append(("INBOX",), msg(i), flags={"\\Seen"} if i % 2 else set(), internaldate=T0 + timedelta(days=i))
    account.append(("Wörk", "2024"), b"Subject: no id\r\n\r\nx\r\n", flags={"$Forwarded"}, internaldate=T0)
    account.append(("Sent",), msg(10), flags={"\\Seen"}, internaldate=T0)
    add_dovecot_user(dovecot, user, account.password)
    dovecot.load_account(account)
    return account, Endpoint(ServerURL.parse(dovecot.url(user)), Secret(account.password))


@pytest.mark.peer
def test_verify_over_imap_finds_identical_then_every_tampering(dovecot):
    import imapclient

    from scenarios.verify import verify

    account, source = _loaded(dovecot, "vsource")
    _, dest = _loaded(dovecot, "vdest")
    report = verify(source, dest)
    assert report.identical, report.summary()
    assert {f.source: f.dest_count for f in report.folders} == {"INBOX": 4, "Sent": 1, "Wörk": 0, "Wörk/2024": 1}
    assert compare(snapshot_account(account), snapshot_imap_of(dest)).identical

    with imapclient.IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as c:
        c.login(dest.url.user, dest.password.reveal())
        c.select_folder("INBOX")
        uids = sorted(c.search("ALL"))
        c.delete_messages([uids[0]])  # missing
        c.expunge()
        c.remove_flags([uids[1]], ["\\Seen"])  # flag lost
        c.append("INBOX", msg(3), flags=[], msg_time=T0 + timedelta(days=3))  # duplicate of uid 4
        c.select_folder("Wörk/2024")
        (old,) = c.search("ALL")
        c.delete_messages([old])
        c.expunge()
        # Same bytes, another INTERNALDATE instant.
        c.append("Wörk/2024", b"Subject: no id\r\n\r\nx\r\n", flags=["$Forwarded"], msg_time=T0 + timedelta(minutes=1))
        c.append("Sent", msg(10, " altered"), flags=["\\Seen"], msg_time=T0)  # a changed copy

    report = verify(source, dest)
    assert not report.identical
    by = {f.source: f for f in report.folders}
    assert [r.identity for r in by["INBOX"].missing] == ["<m0@example.org>"]
    assert [r.identity for r in by["INBOX"].flag_mismatches] == ["<m1@example.org>"]
    assert [r.identity for r in by["INBOX"].duplicated] == ["<m3@example.org>"]
    assert len(by["Wörk/2024"].date_mismatches) == 1 and "became" in by["Wörk/2024"].date_mismatches[0].detail
    # The original Sent message is intact; the altered copy is a stranger, not a mismatch.
    assert by["Sent"].identical and len(by["Sent"].unexpected) == 1


def snapshot_imap_of(endpoint):
    from scenarios.snapshot import snapshot_imap

    return snapshot_imap(endpoint)


def test_snapshot_over_imap_of_a_courier_simulator_matches_its_store():
    """INBOX. prefix, "." delimiter and modified UTF-7 names come back as the store's paths."""
    from migrator.urls import Endpoint, Secret, ServerURL
    from scenarios.snapshot import snapshot_imap
    from simulators.fixtures import FixtureSpec, populate
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import Store

    profile = load_profile("courier")
    store = Store()
    account = store.add_account("carol", "pw")
    populate(account, FixtureSpec(seed=9, messages=20, folders=8), profile)
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        over_imap = snapshot_imap(Endpoint(ServerURL.parse(handle.url("carol")), Secret("pw"), cafile=world.cafile))
    truth = snapshot_account(account)
    assert set(over_imap.folders) == set(truth.folders)
    assert any(not k.isascii() for k in truth.folders)
    report = compare(truth, over_imap)
    assert report.exact, report.summary()
