"""Faults set by ``@pytest.mark.quirkmail(faults=...)``, seen by real clients on the socket: the
exact bytes before the cut, the exception imapclient or poplib raises, and the next connection
(``times``/``first`` choose which of the server's connections get the fault) that then works."""

from __future__ import annotations

from tests.test_pytest_plugin import run

pytest_plugins = ["pytester"]

ON_THE_WIRE = r'''
import poplib
import socket

import imapclient
import pytest


def raw_until_closed(sock) -> bytes:
    """Everything the server sends until it closes (FIN) or resets (RST) the connection."""
    got = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def session(server, script: bytes) -> bytes:
    """Read the greeting, send ``script`` in one write, return every byte until the server closes."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        wire = b""
        while not wire.endswith(b"\r\n"):
            wire += sock.recv(1)
        sock.sendall(script)
        return wire + raw_until_closed(sock)


def login(server, timeout=10):
    client = imapclient.IMAPClient(server.host, server.port, ssl=False, timeout=timeout)
    client.login(server.user, server.password)
    return client


@pytest.mark.quirkmail(fixture={"seed": 6, "messages": 3, "folders": 1}, faults=["drop-after-bytes:bytes=2000"])
def test_drop_after_bytes_cuts_the_first_connection_at_that_byte(imap_server):
    # The cut lands in the FETCH (after the greeting: a reset during the handshake races connect()).
    script = (f"a LOGIN {imap_server.user} {imap_server.password}\r\nb EXAMINE INBOX\r\n"
              "c UID FETCH 1:* (BODY.PEEK[])\r\nd LOGOUT\r\n").encode()
    cut = session(imap_server, script)
    whole = session(imap_server, script)  # connection 2: times=1, untouched
    assert b"d OK" in whole and len(whole) > 2000
    assert cut == whole[:2000]


FIXTURE = {"seed": 6, "messages": 3, "folders": 1}


@pytest.mark.quirkmail(fixture=FIXTURE, faults=["bye-mid-fetch:message=1,cut=0.5,text=Server shutting down"])
def test_bye_mid_fetch_then_a_reconnect_reads_the_message_whole(imap_server):
    item = imap_server.account.folder(("INBOX",)).messages[0]
    raw = item.raw
    with socket.create_connection((imap_server.host, imap_server.port), timeout=10) as sock:
        sock.sendall(f"a LOGIN {imap_server.user} {imap_server.password}\r\n".encode()
                     + b"b EXAMINE INBOX\r\n" + f"c UID FETCH {item.uid} (BODY.PEEK[])\r\n".encode())
        wire = raw_until_closed(sock)
    head = f"* 1 FETCH (UID {item.uid} BODY[] {{{len(raw)}}}\r\n".encode()
    assert head in wire
    after = wire.split(head, 1)[1]
    assert after == raw[: int(len(raw) * 0.5)] + b"\r\n* BYE Server shutting down\r\n"  # and then the close
    assert b"c OK" not in wire

    client = login(imap_server)  # connection 2 (times=1): the fault is spent
    client.select_folder("INBOX", readonly=True)
    assert client.fetch([item.uid], ["BODY.PEEK[]"])[item.uid][b"BODY[]"] == raw
    client.logout()


@pytest.mark.quirkmail(fixture=FIXTURE, faults=["bye-mid-fetch:message=1,cut=0.25"])
def test_imapclient_raises_abort_on_the_cut_fetch(imap_server):
    item = imap_server.account.folder(("INBOX",)).messages[0]
    client = login(imap_server)
    client.select_folder("INBOX", readonly=True)
    with pytest.raises(imapclient.exceptions.IMAPClientAbortError) as lost:
        client.fetch([item.uid], ["BODY.PEEK[]"])
    assert "EOF" in str(lost.value)
    again = login(imap_server)
    again.select_folder("INBOX", readonly=True)
    assert again.fetch([item.uid], ["BODY.PEEK[]"])[item.uid][b"BODY[]"] == item.raw
    again.logout()


@pytest.mark.quirkmail(fixture=FIXTURE, faults=["stall:command=2,first=2"])
def test_stall_hits_only_the_connection_first_names(imap_server):
    one = login(imap_server)  # connection 1: before first=2, untouched
    one.noop()
    with socket.create_connection((imap_server.host, imap_server.port), timeout=10) as sock:  # connection 2
        sock.sendall(f"a LOGIN {imap_server.user} {imap_server.password}\r\n".encode())  # line 1: answered
        said = b""
        while b"a OK" not in said:
            said += sock.recv(4096)
        sock.sendall(b"b NOOP\r\n")  # line 2: the stall begins; nothing more is written
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(4096)  # no reply, and no close either (that would read b"")
    three = login(imap_server)  # connection 3: times=1 from first=2, untouched
    assert three.select_folder("INBOX")[b"EXISTS"] == 3
    three.logout()
    one.logout()


@pytest.mark.quirkmail(fixture=FIXTURE, faults=["drop-at-command:command=3"])
def test_pop3_closed_at_the_third_command(pop3_server):
    pop = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    pop.user(pop3_server.user)
    pop.pass_(pop3_server.password)
    with pytest.raises(poplib.error_proto) as closed:
        pop.stat()  # line 3: the server closes without a reply
    assert closed.value.args == ("-ERR EOF",)  # poplib: the server closed without a reply
    again = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    again.user(pop3_server.user)
    again.pass_(pop3_server.password)
    assert again.stat()[0] == len(pop3_server.account.folder(("INBOX",)).messages)
    again.quit()
'''


def test_marker_faults_seen_by_real_clients(pytester):
    result = run(pytester, ON_THE_WIRE)
    result.assert_outcomes(passed=5)
