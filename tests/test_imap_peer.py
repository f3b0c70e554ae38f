"""Real peers against the IMAP simulator.

* The SAME raw client script runs against a real Dovecot 2.3 and against the ``generic`` profile,
  both loaded with the same messages; after normalising what is volatile (UIDVALIDITY, timing
  suffixes, greeting, capability lists, LIST order, INTERNALDATE zone) the replies must match.
* mbsync (isync) pulls a simulated account into a Maildir; every file must hold the store's bytes.
"""

from __future__ import annotations

import base64
import re
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from imapclient import imap_utf7

from scenarios.peers.dovecot import DovecotServer
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.clients_support import MBSYNC

UTC = timezone.utc


def message(i: int, *, eol: bytes = b"\r\n") -> bytes:
    lines = [
        b"From: Sender %d <s%d@example.org>" % (i, i), b"To: alice@example.org", b"Subject: Message %d" % i,
        b"Message-ID: <m%d@example.org>" % i, b"Date: Mon, %d Jan 2024 10:00:00 +0000" % (i + 1), b"",
        b"Body of message %d" % i, b"",
    ]
    return eol.join(lines)


def build_store(eol: bytes = b"\r\n") -> Store:
    store = Store()
    acc = store.add_account("alice", "secret")
    acc.create_folder(("Sent",), special_use="\\Sent")
    acc.create_folder(("Trash",), special_use="\\Trash")
    acc.create_folder(("Work",))
    acc.create_folder(("Work", "Reports"))
    acc.create_folder(("Entwürfe",))
    for folder in acc.folders.values():
        folder.subscribed = False  # as the Dovecot side, loaded over IMAP, has them
    for i in range(4):
        flags = {"\\Seen"} if i == 0 else ({"\\Answered", "$Label1"} if i == 1 else set())
        acc.append(("INBOX",), message(i, eol=eol), flags=flags,
                   internaldate=datetime(2024, 1, 1 + i, 12, 0, tzinfo=timezone(timedelta(hours=i))))
    acc.append(("Sent",), message(10, eol=eol), flags={"\\Seen"}, internaldate=datetime(2023, 12, 1, 9, 0, tzinfo=UTC))
    acc.append(("Work", "Reports"), message(20, eol=eol), internaldate=datetime(2023, 11, 5, 9, 0, tzinfo=UTC))
    return store


APPENDED = message(30)
SCRIPT = [
    b"a01 LOGIN alice secret",
    b'a02 LIST "" "*"',
    b'a03 LIST "" "%"',
    b"a04 STATUS Work/Reports (MESSAGES RECENT UIDNEXT UNSEEN)",
    b"a05 SELECT INBOX",
    b"a06 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
    b"a07 FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] ENVELOPE BODYSTRUCTURE)",
    b"a08 FETCH 1:2 (BODY.PEEK[TEXT]<0.7> RFC822.SIZE)",
    b"a09 UID STORE 3 +FLAGS (\\Flagged)",
    b"a10 STORE 4 FLAGS.SILENT (\\Draft)",
    b"a11 UID SEARCH SINCE 2-Jan-2024",
    b"a12 SEARCH UNSEEN",
    b'a13 UID SEARCH SUBJECT "message 2"',
    b"a14 UID COPY 1:2 Work",
    b"a15 UID MOVE 3 Work",
    b"a16 STORE 1 +FLAGS.SILENT (\\Deleted)",
    b"a17 EXPUNGE",
    b"a18 FETCH 1:* (UID FLAGS)",
    b'a19 APPEND Work (\\Seen) "05-Mar-2023 08:09:10 -0500" {%d+}\r\n%s' % (len(APPENDED), APPENDED),
    b"a20 APPEND Nope {5}",
    b"a21 CREATE Projects/2024",
    b'a22 LIST "" "Projects*"',
    b"a23 CREATE Projects",
    b"a24 RENAME Projects Archive2",
    b"a25 DELETE Archive2/2024",
    b"a26 DELETE INBOX",
    b"a27 SELECT Nope",
    b"a28 EXAMINE Work",
    b"a29 UID FETCH 1:* (FLAGS INTERNALDATE)",
    b"a30 STORE 1 +FLAGS (\\Seen)",
    b"a31 FETCH 99 FLAGS",
    b"a32 FOO",
    b"a33 UNSELECT",
    b"a34 NAMESPACE",
    b"a35 FETCH 1 FLAGS",
    b"b01 ID NIL",
    b"b02 ENABLE IDLE",
    b"b03 SUBSCRIBE Work",
    b'b04 LSUB "" "*"',
    b"b05 UNSUBSCRIBE Work",
    b'b06 LIST "" "Work/%"',
    b'b07 LIST "Work/" "*"',
    b"b08 CREATE Sent",
    b"b09 SELECT Work",
    b"b10 STATUS Work (MESSAGES UNSEEN)",
    b"b11 FETCH 1 (FLAGS BODY[]<0.20>)",
    b"b12 FETCH 1:2 RFC822.HEADER",
    b"b13 FETCH 2 FAST",
    b"b14 FETCH 2 ALL",
    b"b15 FETCH 2 FULL",
    b"b16 SEARCH OR FLAGGED ANSWERED",
    b"b17 UID SEARCH NOT SEEN",
    b"b18 SEARCH RECENT",
    b"b19 UID STORE 1:* -FLAGS (\\Seen)",
    b"b20 FETCH 1 RFC822",
    b"b21 STORE 2 +FLAGS (\\Deleted)",
    b"b22 UID EXPUNGE 1",
    b"b23 CHECK",
    b"b24 APPEND Work {%d}\r\n%s" % (len(APPENDED), APPENDED),
    b"b25 NOOP",
    b"b26 CLOSE",
    b"b27 STATUS Work (MESSAGES RECENT UIDNEXT UNSEEN)",
    b"b28 LOGOUT",
]

# Authentication, errors and IDLE, in a second session of their own.
ERRORS_SCRIPT = [
    b"x01 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0wrong"),
    b"x02 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0secret"),
    b"x03 FETCH 1 FLAGS",
    b"x04 SELECT INBOX",
    b"x05 FETCH 1 (FLAGS",
    b"x06 FETCH 1 BODY[HEADER.FIELDS]",
    b"x07 FETCH 1 (FLAGS BOGUS)",
    b"x08 STORE 1 +FLAGS (\\Bogus)",
    b"x09 STORE 1 BOGUS (\\Seen)",
    b"x10 COPY 1 Nope",
    b"x11 UID FETCH 9:* (UID)",
    b"x12 UID FETCH 100:200 (UID)",
    b"x13 SEARCH 2:* UID 1:2",
    b"x14 IDLE",
    b"x15 STATUS Nope (MESSAGES)",
    b"x16 RENAME Nope Other",
    b"x17 SELECT",
    b"x18 SELECT Trash",
    b"x19 FETCH 1:* FLAGS",
    b"x20 UID FETCH 1:* FLAGS",
    b"x21 SEARCH ALL",
    b"x22 STORE 1:* +FLAGS (\\Seen)",
    b"x23 EXAMINE INBOX",
    b"x24 FETCH *:2 UID",
    b"x25 UID FETCH 3:1 UID",
    b"x26 EXPUNGE",
    b"x27 DELETE Nope",
    b"x28 LOGOUT",
]

_CAPS = re.compile(rb"\[CAPABILITY ([^\]]*)\]")
_TIMING = re.compile(rb" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)\.")
_UIDVALIDITY = re.compile(rb"(UIDVALIDITY|APPENDUID|COPYUID) \d+")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


def _instant(m: re.Match) -> bytes:
    when = datetime.strptime(m.group(1).decode(), "%d-%b-%Y %H:%M:%S %z")
    return b'INTERNALDATE "%s"' % when.astimezone(UTC).isoformat().encode()


def normalise(reply: list[bytes]) -> list[bytes]:
    out = []
    for line in reply:
        if line.startswith(b"* CAPABILITY "):
            continue  # compared separately: ours must be a subset of Dovecot's
        if line.startswith(b"+ "):
            line = b"+ <continuation text>"
        line = _CAPS.sub(b"[CAPABILITY <caps>]", line)
        line = _TIMING.sub(b".", line)
        line = _UIDVALIDITY.sub(rb"\1 <uv>", line)
        line = _INTERNALDATE.sub(_instant, line)
        out.append(line)
    if any(line.startswith(b"* LIST ") for line in out):
        out = sorted(line for line in out if line.startswith(b"* LIST ")) + [
            line for line in out if not line.startswith(b"* LIST ")
        ]
    return out


def run_script(host: str, port: int, script: list[bytes] = SCRIPT) -> tuple[bytes, list[list[bytes]]]:
    sock = socket.create_connection((host, port), timeout=10)
    reader = _Reader(sock)
    greeting = reader.line()
    replies = []
    for command in script:
        tag = command.split(b" ", 1)[0]
        lines = []
        sync = re.search(rb"\{\d+\}\r\n", command)  # a synchronising literal waits for "+"
        if sync:
            sock.sendall(command[: sync.end()])
            lines.append(reader.line())
            assert lines[-1].startswith(b"+ "), lines
            command = command[sync.end() :]
        sock.sendall(command + b"\r\n")
        if command.split(b" ")[1:] == [b"IDLE"]:
            lines.append(reader.line())
            assert lines[-1].startswith(b"+ "), lines
            sock.sendall(b"DONE\r\n")
        while True:
            line = reader.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                break
        replies.append(lines)
    sock.close()
    return greeting, replies


class _Reader:
    """Lines of a server's replies; a literal stays inside its line (``{n}\\r\\n`` + n bytes)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed; buffered: {self.buf[-200:]!r}")
        self.buf += chunk

    def line(self) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if m is None:
                return out
            size = int(m.group(1))
            while len(self.buf) < size:
                self._fill()
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]


@pytest.mark.peer
def test_generic_profile_answers_like_dovecot():
    reason = DovecotServer.availability()
    if reason:
        pytest.skip(reason)
    scripts = (SCRIPT, ERRORS_SCRIPT)
    with DovecotServer() as dovecot:
        dovecot.load_account(build_store().account("alice"))
        dv = [run_script(dovecot.host, dovecot.imap_port, script) for script in scripts]
    with SimulatorWorld(build_store(), load_profile("generic")) as world:
        handle = world.start_imap()
        sim = [run_script(handle.host, handle.port, script) for script in scripts]
    for script, (dv_greeting, dv_replies), (sim_greeting, sim_replies) in zip(scripts, dv, sim):
        assert dv_greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        assert sim_greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        assert _capabilities([sim_greeting]) - {b"STARTTLS"} <= _capabilities([dv_greeting])  # Dovecot: ssl=no
        assert len(dv_replies) == len(sim_replies) == len(script)
        for command, dv_reply, sim_reply in zip(script, dv_replies, sim_replies):
            extra = _capabilities(sim_reply) - _capabilities(dv_reply)
            assert not extra, f"{command!r}: we advertise what Dovecot does not: {extra}"
            assert normalise(sim_reply) == normalise(dv_reply), command


def _capabilities(lines: list[bytes]) -> set[bytes]:
    caps = set()
    for line in lines:
        if line.startswith(b"* CAPABILITY "):
            caps.update(line.split()[2:])
        for m in _CAPS.finditer(line):
            caps.update(m.group(1).split())
    return caps


def _mbsync_pull(store: Store, tmp_path: Path) -> Path:
    """Run mbsync against the store served with the generic profile; the Maildir root."""
    with SimulatorWorld(store, load_profile("generic")) as world:
        run = MBSYNC.run(world.start_imap(), world.cafile, tmp_path)
    assert run.returncode == 0, run.output
    return run.root


def _assert_maildir_matches(store: Store, maildir: Path) -> int:
    account = store.account("alice")
    compared = 0
    for path, folder in account.folders.items():
        box = maildir.joinpath(*(imap_utf7.encode(part).decode() for part in path))  # mbsync 1.4 keeps mUTF-7
        files = sorted((box / "cur").iterdir()) + sorted((box / "new").iterdir())
        got = sorted(MBSYNC.undo(f.read_bytes()) for f in files)
        assert got == sorted(m.raw.replace(b"\r\n", b"\n") for m in folder.messages), path
        compared += len(files)
    return compared


@pytest.mark.peer
def test_mbsync_pulls_every_message_byte_for_byte(tmp_path: Path):
    store = build_store()
    assert _assert_maildir_matches(store, _mbsync_pull(store, tmp_path)) == 6


@pytest.mark.peer
def test_mbsync_pulls_a_generated_fixture(tmp_path: Path):
    from simulators.fixtures import FixtureSpec, populate

    store = Store()
    account = store.add_account("alice", "secret")
    spec = FixtureSpec(seed=7, messages=80, folders=7, attachments=0.3, no_message_id=2,
                       duplicate_message_id=1, bad_dates=3)
    populate(account, spec, load_profile("generic"))
    total = sum(len(f.messages) for f in account.folders.values())
    assert total >= 80
    assert _assert_maildir_matches(store, _mbsync_pull(store, tmp_path)) == total
