"""imapclient against a SimulatorWorld over loopback: the real client library, real sockets, TLS."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store

TZ = timezone(timedelta(hours=-5))


def message(i: int) -> bytes:
    return (
        b"From: Sender <s@example.org>\r\nTo: alice@example.org\r\nSubject: Message %d\r\n"
        b"Message-ID: <m%d@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nBody %d\r\n" % (i, i, i)
    )


@pytest.fixture
def world():
    store = Store()
    acc = store.add_account("alice", "secret")
    acc.create_folder(("Sent",), special_use="\\Sent")
    acc.create_folder(("Trash",), special_use="\\Trash")
    acc.create_folder(("Work", "Reports"))
    for i in range(5):
        acc.append(("INBOX",), message(i), flags={"\\Seen"} if i < 2 else (),
                   internaldate=datetime(2024, 1, 1 + i, 12, 0, tzinfo=TZ))
    with SimulatorWorld(store, load_profile("generic")) as w:
        yield w, w.start_imap(), store


def connect(handle, **kw) -> IMAPClient:
    client = IMAPClient(handle.host, handle.port, ssl=False, timeout=10, **kw)
    client.login("alice", "secret")
    return client


def test_login_list_select_fetch(world):
    w, handle, store = world
    assert handle.url("alice") == f"imap://alice@127.0.0.1:{handle.port}"
    c = connect(handle)
    folders = {name: flags for flags, _delim, name in c.list_folders()}
    assert set(folders) == {"INBOX", "Sent", "Trash", "Work", "Work/Reports"}
    assert b"\\Sent" in folders["Sent"] and b"\\HasChildren" in folders["Work"]
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 5 and info[b"UIDNEXT"] == 6
    data = c.fetch([1, 2, 3, 4, 5], ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"])
    assert data[3][b"BODY[]"] == message(2)
    assert data[3][b"RFC822.SIZE"] == len(message(2))
    assert data[3][b"INTERNALDATE"] == datetime(2024, 1, 3, 12, 0, tzinfo=TZ).astimezone().replace(tzinfo=None)
    assert b"\\Seen" not in data[3][b"FLAGS"]
    env = c.fetch([1], ["ENVELOPE"])[1][b"ENVELOPE"]
    assert env.subject == b"Message 0" and env.from_[0].mailbox == b"s"
    c.logout()


def test_wrong_password_is_a_login_error(world):
    _w, handle, _store = world
    c = IMAPClient(handle.host, handle.port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        c.login("alice", "wrong")
    c.login("alice", "secret")
    c.logout()


def test_append_with_flags_and_date_then_search_by_date(world):
    _w, handle, store = world
    c = connect(handle)
    when = datetime(2023, 6, 15, 9, 30, tzinfo=timezone(timedelta(hours=3)))
    c.append("Sent", message(99), flags=[b"\\Seen", b"$Label1"], msg_time=when)
    item = store.account("alice").folder(("Sent",)).messages[-1]
    assert item.raw == message(99) and item.flags == {"\\Seen", "$Label1"} and item.internaldate == when
    c.select_folder("INBOX")
    assert c.search(["SINCE", date(2024, 1, 4)]) == [4, 5]  # UIDs, equal to sequence numbers here
    assert c.search(["BEFORE", date(2024, 1, 2)]) == [1]
    assert c.search(["UNSEEN"]) == [3, 4, 5]
    c.logout()


def test_store_copy_move_expunge(world):
    _w, handle, store = world
    c = connect(handle)
    c.select_folder("INBOX")
    assert set(c.add_flags([1], [b"\\Flagged"])[1]) == {b"\\Flagged", b"\\Seen", b"\\Recent"}
    assert "\\Flagged" in store.account("alice").folder(("INBOX",)).messages[0].flags
    c.copy([1, 2], "Trash")
    assert [m.raw for m in store.account("alice").folder(("Trash",)).messages] == [message(0), message(1)]
    c.move([3], "Work/Reports")
    assert [m.raw for m in store.account("alice").folder(("Work", "Reports")).messages] == [message(2)]
    c.delete_messages([1])
    c.expunge()
    assert [m.raw for m in store.account("alice").folder(("INBOX",)).messages] == [message(1), message(3), message(4)]
    assert c.search(["ALL"]) == [2, 4, 5]  # imapclient speaks UIDs
    c.logout()


def test_starttls_with_the_world_cafile_and_implicit_tls(world):
    w, handle, _store = world
    ctx = ssl.create_default_context(cafile=str(w.cafile))
    c = IMAPClient(handle.host, handle.port, ssl=False, timeout=10)
    assert b"STARTTLS" in c.capabilities()
    c.starttls(ctx)
    c.login("alice", "secret")
    assert c.select_folder("INBOX")[b"EXISTS"] == 5
    c.logout()
    tls = w.start_imap(implicit_tls=True)
    assert tls.url("alice").startswith("imaps://")
    c = IMAPClient(tls.host, tls.port, ssl=True, ssl_context=ctx, timeout=10)
    c.login("alice", "secret")
    assert b"STARTTLS" not in c.capabilities()
    c.logout()


def test_idle_sees_mail_delivered_meanwhile(world):
    _w, handle, store = world
    c = connect(handle)
    c.select_folder("INBOX")
    c.idle()
    store.account("alice").append(("INBOX",), message(7), internaldate=datetime(2024, 2, 1, tzinfo=TZ))
    responses = c.idle_check(timeout=5)
    c.idle_done()
    assert (6, b"EXISTS") in responses
    c.logout()


def test_connection_limit_per_user(world):
    _w, handle, _store = world
    clients = [connect(handle) for _ in range(10)]
    extra = IMAPClient(handle.host, handle.port, ssl=False, timeout=10)
    with pytest.raises(LoginError, match=r"mail_max_userip_connections=10"):
        extra.login("alice", "secret")
    clients.pop().logout()
    time.sleep(0.2)  # the server notices the closed connection
    extra.login("alice", "secret")
    for c in clients + [extra]:
        c.logout()


def test_stop_closes_live_connections_and_listeners():
    store = Store()
    store.add_account("alice", "secret")
    w = SimulatorWorld(store, load_profile("generic"))
    handle = w.start_imap()
    sock = socket.create_connection((handle.host, handle.port), timeout=5)
    assert _read_until(sock, b"\r\n").startswith(b"* OK ")
    w.stop()
    try:
        assert sock.recv(100) == b""  # closed by the server ...
    except ConnectionResetError:
        pass  # ... or reset: stop() aborts connections rather than wait for slow readers
    with pytest.raises(OSError):
        socket.create_connection((handle.host, handle.port), timeout=2)


@pytest.mark.slow
def test_bulk_uid_fetch_throughput():
    """The benchmark's command, measured on a raw socket (the client's parsing is not ours)."""
    store = Store()
    acc = store.add_account("alice", "secret")
    body = b"x" * 4000 + b"\r\n"
    for i in range(2000):
        acc.append(("INBOX",), message(i) + body, internaldate=datetime(2024, 1, 1, tzinfo=TZ))
    with SimulatorWorld(store, load_profile("generic")) as w:
        handle = w.start_imap()
        sock = socket.create_connection((handle.host, handle.port), timeout=10)
        _read_until(sock, b"\r\n")
        sock.sendall(b"a LOGIN alice secret\r\nb SELECT INBOX\r\n")
        _read_until(sock, b"b OK")
        start = time.perf_counter()
        sock.sendall(b"c UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])\r\n")
        data = _read_until(sock, b"c OK Fetch completed")
        rate = 2000 / (time.perf_counter() - start)
        assert data.count(b" FETCH (UID ") == 2000
        print(f"UID FETCH of 2000 messages: {rate:.0f} msg/s")
        assert rate > 3000, f"{rate:.0f} msg/s"


def _read_until(sock, marker: bytes) -> bytes:
    buf = bytearray()
    while marker not in buf:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError(bytes(buf[-200:]))
        buf += chunk
    return bytes(buf)


@pytest.mark.parametrize(
    "profile,delimiter,sent,created",
    [("courier", ".", "INBOX.Sent", "INBOX.Projekte.Ärger"), ("exchange", "/", "Sent Items", "Projekte/Ärger")],
)
def test_other_profiles_through_imapclient(profile, delimiter, sent, created):
    store = Store()
    acc = store.add_account("alice", "secret")
    p = load_profile(profile)
    for key, parts in p.special_folders.items():
        acc.create_folder(tuple(parts))
    acc.append(("INBOX",), message(1), internaldate=datetime(2024, 1, 1, tzinfo=TZ))
    with SimulatorWorld(store, p) as w:
        c = connect(w.start_imap())
        assert c.namespace().personal[0][1] == delimiter
        c.create_folder(created)
        names = {name for _flags, delim, name in c.list_folders()}
        assert sent in names and created in names and "INBOX" in names
        assert ("Projekte", "Ärger") in acc.folders
        c.append(sent, message(2), flags=[b"\\Seen"])
        assert c.select_folder(sent)[b"EXISTS"] == 1
        c.logout()


def test_many_worlds_start_and_stop_in_one_process():
    ports = set()
    for _ in range(15):
        store = Store()
        store.add_account("alice", "secret")
        with SimulatorWorld(store, load_profile("generic")) as w:
            handle = w.start_imap()
            tls = w.start_imap(implicit_tls=True)
            ports.update({handle.port, tls.port})
            c = connect(handle)
            c.noop()  # left connected: stop() must close it
    assert len(ports) >= 2
