"""The throwaway real Dovecot: start, users, loading a store account, reading it back over IMAP."""

from __future__ import annotations

import os
import poplib
import smtplib
import socket
from datetime import datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from scenarios.peers import dovecot as dovecot_module
from scenarios.peers.dovecot import DovecotError, DovecotServer
from simulators.fixtures import FixtureSpec, load_maildir, populate
from simulators.profiles import load_profile
from simulators.store import Store

PASSWORD = "s3cret-pw"
TOKYO = timezone(timedelta(hours=9))
NEW_YORK = timezone(timedelta(hours=-5))

MESSAGES = [
    # folder, raw, flags, INTERNALDATE (with zones other than the server's)
    (
        ("INBOX",),
        b"From: a@example.org\r\nSubject: first\r\nMessage-ID: <1@x>\r\n\r\nbody one\r\n",
        {"\\Seen", "$Forwarded"},
        datetime(2021, 3, 4, 5, 6, 7, tzinfo=TOKYO),
    ),
    (
        ("INBOX",),
        b"From: b@example.org\r\nSubject: second\r\n\r\nbody two\r\nno final newline",
        {"\\Flagged", "\\Answered"},
        datetime(1999, 12, 31, 23, 59, 59, tzinfo=NEW_YORK),
    ),
    (
        ("Projekte", "Ärger"),
        "From: c@example.org\r\nSubject: =?utf-8?q?=C3=84rger?=\r\n\r\n8-bit: Grüße\r\n".encode(),
        set(),
        datetime(2024, 2, 29, 12, 0, 0, tzinfo=timezone.utc),
    ),
]


def require_dovecot() -> None:
    reason = DovecotServer.availability()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def dovecot():
    # One server for the module (stopping one takes Dovecot about a second); tests use their own users.
    require_dovecot()
    with DovecotServer() as server:
        yield server


def sample_account(user: str = "alice"):
    account = Store().add_account(user, PASSWORD)
    for path, raw, flags, when in MESSAGES:
        account.create_folder(path, exist_ok=True)
        account.append(path, raw, flags=flags, internaldate=when)
    return account


def read_folder(client: IMAPClient, name: str) -> list[tuple[bytes, set[str], datetime]]:
    client.select_folder(name, readonly=True)
    fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
    return [
        (
            data[b"BODY[]"],
            {f.decode() for f in data[b"FLAGS"]} - {"\\Recent"},
            data[b"INTERNALDATE"],
        )
        for _, data in sorted(fetched.items())
    ]


@pytest.mark.peer
def test_load_account_round_trips_bytes_flags_and_internaldate(dovecot):
    dovecot.load_account(sample_account())

    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as client:
        client.normalise_times = False  # keep the server's zone: we compare aware instants
        client.login("alice", PASSWORD)
        names = {name for _, _, name in client.list_folders()}
        assert {"INBOX", "Projekte", "Projekte/Ärger"} <= names
        got = read_folder(client, "INBOX") + read_folder(client, "Projekte/Ärger")

    expected = [(raw, flags, when) for _, raw, flags, when in MESSAGES]
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert [g[1] for g in got] == [e[1] for e in expected]
    for (_, _, got_when), (_, _, want_when) in zip(got, expected):
        assert got_when.tzinfo is not None
        assert got_when == want_when  # aware datetimes compare as instants


@pytest.mark.peer
def test_doveadm_and_mail_dir_see_the_loaded_mail(dovecot):
    dovecot.load_account(sample_account("erin"))
    out = dovecot.doveadm("search", "-u", "erin", "mailbox", "INBOX", "all").stdout
    assert len(out.splitlines()) == 2
    maildir = dovecot.mail_dir("erin")
    assert len(list((maildir / "cur").iterdir())) + len(list((maildir / "new").iterdir())) == 2
    with pytest.raises(DovecotError, match="doveadm"):
        dovecot.doveadm("no-such-command")


@pytest.mark.peer
def test_special_use_folders_and_user_management(dovecot):
    dovecot.add_user("bob", "first")
    dovecot.add_user("bob", "second")  # re-password: Dovecot re-reads the users file
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as client:
        with pytest.raises(LoginError):
            client.login("bob", "first")
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as client:
        client.login("bob", "second")
        client.create_folder("Sent")
        flags = {name: fl for fl, _, name in client.list_folders()}
        assert b"\\Sent" in flags["Sent"]
    assert dovecot.url("bob") == f"imap://bob@127.0.0.1:{dovecot.imap_port}"
    assert dovecot.url("a@b.example") == f"imap://a%40b.example@127.0.0.1:{dovecot.imap_port}"
    with pytest.raises(ValueError, match="password"):
        dovecot.add_user("eve", "pass:word")
    with pytest.raises(ValueError, match="user name"):
        dovecot.add_user("../users/bob", "pw")  # the name is a file name under users/
    dovecot.add_user("eve", "pass/word")


@pytest.mark.peer
def test_lmtp_delivers_and_pop3_retrieves(dovecot):
    dovecot.add_user("frank", PASSWORD)
    raw = b"From: x@example.org\r\nSubject: via LMTP\r\n\r\nhello\r\n"
    lmtp = smtplib.LMTP(dovecot.host, dovecot.lmtp_port)
    try:
        assert lmtp.sendmail("x@example.org", ["frank"], raw) == {}
    finally:
        lmtp.quit()
    pop = poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=5)
    try:
        pop.user("frank")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == 1
        lines = pop.retr(1)[1]
    finally:
        pop.quit()
    # poplib strips the line ends; Dovecot put Return-Path, Delivered-To and Received before it.
    assert lines[-4:] == raw.split(b"\r\n")[:-1]
    assert lines[:2] == [b"Return-Path: <x@example.org>", b"Delivered-To: frank"]


@pytest.mark.peer
def test_two_instances_run_at_once_and_stop_cleanly():
    require_dovecot()
    with DovecotServer() as one, DovecotServer() as two:
        ports = {one.imap_port, one.pop3_port, one.lmtp_port, two.imap_port, two.pop3_port, two.lmtp_port}
        assert len(ports) == 6
        for server in (one, two):
            for port, greeting in ((server.imap_port, b"* OK"), (server.pop3_port, b"+OK"), (server.lmtp_port, b"220")):
                with socket.create_connection((server.host, port), timeout=5) as conn:
                    assert conn.recv(100).startswith(greeting)
        pid, directory = one.pid, one.directory
    assert not one.running
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.peer
def test_a_generated_fixture_round_trips_through_dovecot(dovecot):
    account = Store().add_account("carol", PASSWORD)
    spec = FixtureSpec(
        seed=3, messages=80, folders=12, large=[3_000_000], no_message_id=1, duplicate_message_id=1, bad_dates=5
    )
    populate(account, spec, load_profile("generic"))
    dovecot.load_account(account)

    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False) as client:
        client.normalise_times = False
        client.login("carol", PASSWORD)
        listed = {name: flags for flags, _, name in client.list_folders()}
        assert set(listed) == {"/".join(path) for path in account.folders}
        for path, folder in account.folders.items():
            name = "/".join(path)
            if folder.special_use:
                assert folder.special_use.encode() in listed[name]
            got = read_folder(client, name)
            assert [g[0] for g in got] == [m.raw for m in folder.messages], name
            assert [g[1] for g in got] == [m.flags for m in folder.messages], name
            assert [g[2] for g in got] == [m.internaldate for m in folder.messages], name


@pytest.mark.peer
def test_dovecot_maildir_loads_back_with_the_maildir_loader(dovecot):
    # Dovecot's own Maildir++ (LF line ends, mUTF-7 folder names, dovecot-keywords, mtime =
    # INTERNALDATE) is the real-world input of load_maildir.
    source = Store().add_account("gina", PASSWORD)
    populate(source, FixtureSpec(seed=4, messages=40, folders=9), load_profile("generic"))
    dovecot.load_account(source)
    copy = Store().add_account("gina", PASSWORD)
    load_maildir(copy, dovecot.mail_dir("gina"))
    assert set(copy.folders) == set(source.folders)
    for path, folder in source.folders.items():
        loaded = copy.folder(path).messages
        assert [m.raw for m in loaded] == [m.raw for m in folder.messages], path
        assert [m.flags for m in loaded] == [m.flags for m in folder.messages], path
        assert [m.internaldate for m in loaded] == [m.internaldate for m in folder.messages], path


@pytest.mark.peer
def test_a_20_mb_message_loads(dovecot):
    account = Store().add_account("hank", PASSWORD)
    populate(account, FixtureSpec(seed=9, messages=0, folders=1, large=[20_000_000]), load_profile("generic"))
    (message,) = account.folder(["INBOX"]).messages
    dovecot.load_account(account)
    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=60) as client:
        client.login("hank", PASSWORD)
        client.select_folder("INBOX", readonly=True)
        (data,) = client.fetch(client.search("ALL"), ["RFC822.SIZE", "BODY.PEEK[]"]).values()
    assert data[b"RFC822.SIZE"] == 20_000_000
    assert data[b"BODY[]"] == message.raw


@pytest.mark.peer
def test_a_refused_message_is_named(dovecot):
    account = Store().add_account("dave", PASSWORD)
    account.append(("INBOX",), b"Subject: fine\r\n\r\nok\r\n")
    account.append(("INBOX",), b"Subject: odd flag\r\n\r\nok\r\n", flags={"\\Bogus"})
    with pytest.raises(DovecotError, match=r"dave's message UID 2 in 'INBOX'"):
        dovecot.load_account(account)


def test_availability_names_a_missing_binary(monkeypatch):
    monkeypatch.setattr(dovecot_module.shutil, "which", lambda name: None)
    assert "dovecot is not installed" in DovecotServer.availability()
    with pytest.raises(DovecotError, match="dovecot is not installed"):
        DovecotServer().start()
