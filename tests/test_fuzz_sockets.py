"""Garbage over real sockets: the running IMAP and POP3 simulators (127.0.0.1, port 0) answer broken
lines with BAD / -ERR, keep serving the next valid command on the same connection, and accept new
connections afterwards. The inputs are fixed (the fuzzers' shapes), so this stays a fast test."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

GARBAGE = [
    b"\x00\x00\x00", b"\xff\xfe\x80 8-bit", b"(((((((((((((((((((((", b'"unbalanced', b"x" * 10_000, b"[", b"{99999999999}",
]


@pytest.fixture
def world():
    store = Store()
    account = store.add_account("alice", "pw")
    account.append(INBOX, b"Subject: x\r\n\r\nbody\r\n", internaldate=datetime(2024, 1, 1, tzinfo=timezone.utc))
    with SimulatorWorld(store, load_profile("generic")) as w:
        yield w


class Line:
    """A line-reading client socket with a timeout (a hung server fails the test, not CI)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> bytes:
        return self.file.readline()

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_imap_garbage_gets_bad_and_the_connection_keeps_serving(world):
    port = world.start_imap().port
    client = Line(port)
    assert client.read().startswith(b"* OK")
    client.send(b"a LOGIN alice pw\r\n")
    assert client.read().startswith(b"a OK")
    for i, junk in enumerate(GARBAGE):
        client.send(b"g%d " % i + junk + b"\r\n")
        reply = client.read()
        assert reply.startswith((b"g%d BAD " % i, b"* BAD ")), (junk[:20], reply)
    client.send(b"n NOOP\r\n")
    assert client.read().startswith(b"n OK NOOP completed")
    client.close()
    again = Line(port)
    assert again.read().startswith(b"* OK")
    again.send(b"c CAPABILITY\r\n")
    assert again.read().startswith(b"* CAPABILITY IMAP4rev1")
    again.close()


def test_pop3_garbage_gets_err_and_the_connection_keeps_serving(world):
    port = world.start_pop3().port
    client = Line(port)
    assert client.read().startswith(b"+OK")
    client.send(b"USER alice\r\nPASS pw\r\n")
    assert client.read() == b"+OK\r\n" and client.read().startswith(b"+OK")
    short = [g for g in GARBAGE if len(g) < 100]
    for junk in short + [b"RETR " + b"9" * 1000, b"TOP 1 \xff", b"LIST -1"]:
        client.send(junk + b"\r\n")
        reply = client.read()
        assert reply.startswith(b"-ERR "), (junk[:20], reply)
    client.send(b"STAT\r\n")
    assert client.read() == b"+OK 1 20\r\n"
    # Past Dovecot's 2048-byte line limit the session ends, as Dovecot's does; the server does not.
    client.send(b"x" * 10_000 + b"\r\n")
    assert client.read() == b"-ERR Input line too long.\r\n" and client.read() == b""
    client.close()
    again = Line(port)
    assert again.read().startswith(b"+OK")
    again.send(b"CAPA\r\n")
    assert again.read() == b"+OK\r\n"
    again.close()
