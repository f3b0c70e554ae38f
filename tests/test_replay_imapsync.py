"""imapsync --debugimap logs: host1 and host2 split apart, passwords masked, replayable.

tests/replay_data/imapsync-debugimap.log is CONSTRUCTED from Mail::IMAPClient's documented debug
output ("Sending: ", "Sending literal: ...\\tthen: ", "Read: ", CRLF shown as a newline and two
blanks) and imapsync's "Host1:"/"Host2:" lines — not captured from a real run: imapsync is not
installed here. It copies two messages; the destination refuses the second (OVERQUOTA).
"""

from __future__ import annotations

import socket
from pathlib import Path

from scenarios.cli_replay import load_scripts
from simulators.replay.server import ReplayServer
from transcripts import format as fmt
from transcripts.imapsync import import_log, looks_like_log

LOG = Path(__file__).parent / "replay_data" / "imapsync-debugimap.log"


def test_the_log_splits_into_host1_and_host2_sessions_with_masked_passwords():
    assert looks_like_log(LOG)
    imported = import_log(LOG)
    assert [(name, t.header.label) for name, t in imported.sessions] == [
        ("imapsync-debugimap.log#1-host1", "host1"), ("imapsync-debugimap.log#2-host2", "host2")]
    host1, host2 = (t for _, t in imported.sessions)
    assert b'2 LOGIN alice "********"\r\n' in host1.sent_by(fmt.Sender.CLIENT)
    assert b"sekr1t" not in host1.sent_by(fmt.Sender.CLIENT) and b"0ther" not in host2.sent_by(fmt.Sender.CLIENT)
    assert host1.sent_by(fmt.Sender.SERVER).startswith(b"* OK [CAPABILITY IMAP4rev1 LITERAL+")
    assert host2.sent_by(fmt.Sender.SERVER).startswith(b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n")
    assert b"6 NO [OVERQUOTA] The mailbox is full.\r\n" in host2.sent_by(fmt.Sender.SERVER)


def _exchange(sock: socket.socket, data: bytes, until: bytes) -> bytes:
    sock.sendall(data)
    got = b""
    while until not in got:
        chunk = sock.recv(65536)
        assert chunk, f"closed early; got {got!r}"
        got += chunk
    return got


def test_the_destination_side_replays_its_refusal_to_another_client():
    scripts, _ = load_scripts([LOG])
    host2 = next(s for s in scripts if s.label == "host2")
    message = host2.steps[7].unit.data  # the big message as imapsync sent it
    with ReplayServer(scripts) as server:
        port = {e.label: e.port for e in server.start()}["host2"]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            assert _exchange(sock, b"", b"\r\n").startswith(b"* OK The Microsoft Exchange")
            _exchange(sock, b"x1 CAPABILITY\r\n", b"x1 OK")
            assert _exchange(sock, b'x2 LOGIN alice "abcdefgh"\r\n', b"\r\n") == b"x2 OK LOGIN completed.\r\n"
            _exchange(sock, b'x3 LIST "" "*"\r\n', b"x3 OK")
            _exchange(sock, b"x4 SELECT INBOX\r\n", b"x4 OK")
            first = host2.steps[4].unit.data.split(b" ", 1)[1]
            assert _exchange(sock, b"x5 " + first, b"\r\n").startswith(b"+ ")
            _exchange(sock, host2.steps[5].unit.data, b"x5 OK")
            assert _exchange(sock, b"x6 " + host2.steps[6].unit.data.split(b" ", 1)[1], b"\r\n").startswith(b"+ ")
            assert _exchange(sock, message, b"\r\n") == b"x6 NO [OVERQUOTA] The mailbox is full.\r\n"
        summary = server.summary()
    assert summary.divergences == [] and summary.matched == 8
