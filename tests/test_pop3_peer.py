"""POP3 against real peers: the generic profile beside Dovecot's POP3 on one raw script, and
fetchmail / getmail6 retrieving everything from the simulator with the store's bytes."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from scenarios.peers.dovecot import DovecotServer, availability
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

pytestmark = pytest.mark.peer

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
ODD = [
    b"Subject: dots\r\nMessage-ID: <dots@x>\r\n\r\n.starts with a dot\r\n..two\r\n.\r\nend\r\n",
    b"Subject: bare lf\nMessage-ID: <lf@x>\n\nbody\nline 2\n",
    b"Subject: no final newline\r\n\r\nlast line",
    b"Subject: nul\r\n\r\na \x00 b\r\n",
    b"Subject: odd bytes\r\n\r\nlone\rCR\r\n\xe9t\xe9 8-bit\r\n.\rdot then CR\r\n",
]
# Multi-line replies: what follows "+OK" up to ".\r\n" belongs to the reply.
MULTILINE = re.compile(r"^(CAPA|AUTH|LIST|UIDL|RETR \S+|TOP \S+ \S+)$", re.IGNORECASE)
SCRIPT = [
    "CAPA", "APOP alice 0123456789abcdef", "AUTH", "AUTH PLAIN", "*", "AUTH XOAUTH2", "STAT",
    "PASS secret", "USER alice", "PASS wrong", "USER alice", "PASS secret",
    "CAPA", "STAT", "LIST", "LIST 2", "LIST 99", "LIST x", "LIST 1 2", "UIDL", "UIDL 1", "UIDL 0",
    *[f"RETR {n}" for n in range(1, 14)], "TOP 1 0", "TOP 2 1", "TOP 3 100", "TOP 1", "TOP 1 x", "TOP 1 -1",
    "DELE 1", "DELE 1", "RETR 1", "LIST 1", "STAT", "RSET", "STAT", "NOOP", "FOO", "", "RSET x",
    "DELE 2", "DELE 5", "QUIT",
]
AFTER = ["USER alice", "PASS secret", "STAT", "LIST", "QUIT"]
# Scripts that end with the server closing the connection.
LIMITS = [
    ["QUIT"],
    ["FOO", "CAPA", "BAR", "USER x", "BAZ", "QUX", "QUUX"],
    ["USER alice", "PASS secret", *["RETR 99"] * 15, "NOOP", *["TOP 1"] * 20, "LIST x"],
    ["A" * 1032, "B" * 1033],
    ["USER alice", "PASS secret", "A" * 2046, "B" * 2047],
]


SAMPLES = Path(__file__).parent.parent / "scenarios/library/imap/messages/odd-content"


def mailbox() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for raw in ODD + [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]:
        account.append(INBOX, raw, internaldate=WHEN)
    populate(account, FixtureSpec(seed=7, messages=12, folders=1, attachments=0.3), load_profile("generic"))
    return store


def transcript(port: int, script: list[str]) -> str:
    """Send one command at a time and read its whole reply; the greeting first."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        out = [reader.readline()]
        for command in script:
            sock.sendall(command.encode() + b"\r\n")
            line = reader.readline()
            out.append(b"C: " + command.encode() + b"\r\n" + line)
            if line.startswith(b"+OK") and MULTILINE.match(command):
                while (line := reader.readline()) not in (b".\r\n", b""):
                    out.append(line)
                out.append(line)
        try:
            out.append(reader.read())  # up to EOF: every script ends with the server closing
        except ConnectionResetError:
            pass  # Dovecot closes with our unread bytes in its buffer: the kernel sends RST
    return b"".join(out).decode("utf-8", "replace")


def normalise(text: str) -> str:
    text = re.sub(r"\A\+OK [^\r]*", "+OK <greeting>", text)
    text = re.sub(r"(?m)^(\+OK )?(\d+) [0-9a-f]{16}\r$", r"\1\2 <uidl>\r", text)
    return text.replace("STLS\r\n", "")  # the simulator has TLS, the throwaway Dovecot has not


@pytest.fixture(scope="module")
def dovecot():
    reason = availability()
    if reason:
        pytest.skip(reason)
    with DovecotServer() as server:
        yield server


def test_generic_profile_answers_like_dovecot(dovecot):
    store = mailbox()
    dovecot.add_user("alice", "secret")
    dovecot.load_account(store.account("alice"))
    scripts = [SCRIPT, AFTER, *LIMITS]
    theirs = "".join(normalise(transcript(dovecot.pop3_port, script)) for script in scripts)
    with SimulatorWorld(store, load_profile("generic")) as world:
        port = world.start_pop3().port
        ours = "".join(normalise(transcript(port, script)) for script in scripts)
    assert "Logging out, messages deleted." in ours and "<uidl>" in ours
    assert ours.splitlines() == theirs.splitlines()


# Clients -----------------------------------------------------------------------------------------


def clients_mailbox() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for raw in ODD[:2]:
        account.append(INBOX, raw, internaldate=WHEN)
    populate(account, FixtureSpec(seed=11, messages=25, folders=1, attachments=0.3), load_profile("generic"))
    return store


def as_lf(raw: bytes) -> bytes:
    """What a Unix delivery holds: LF line ends (both clients turn CRLF into LF)."""
    return raw.replace(b"\r\n", b"\n")


def unfolded(message: bytes) -> bytes:
    head, sep, body = message.partition(b"\n\n")
    return re.sub(rb"\n[ \t]+", b" ", head) + sep + body


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt-get install fetchmail getmail6)")


# fetchmail's own trace header, inserted among the first headers.
FETCHMAIL_RECEIVED = re.compile(rb"(?m)^Received: from 127\.0\.0\.1 [^\n]*\n(?:[ \t][^\n]*\n)*")


def test_fetchmail_retrieves_everything(tmp_path: Path):
    _need("fetchmail")
    store = clients_mailbox()
    inbox = [m.raw for m in store.account("alice").folder(INBOX).messages]
    out = tmp_path / "out"
    out.mkdir()
    deliver = tmp_path / "deliver.sh"
    deliver.write_text(f'#!/bin/sh\ncat > "$(mktemp {out}/m.XXXXXX)"\n')
    deliver.chmod(0o755)
    with SimulatorWorld(store, load_profile("generic")) as world:
        port = world.start_pop3().port
        rc = tmp_path / "fetchmailrc"
        rc.write_text(
            f'poll 127.0.0.1 protocol pop3 port {port} uidl user "alice" password "secret" '
            f'keep fetchall no rewrite no sslcertck mda "{deliver}"\n'
        )
        rc.chmod(0o600)
        env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
        run = subprocess.run(
            ["fetchmail", "-v", "-f", str(rc), "--nodetach", "--nosyslog", "--pidfile", str(tmp_path / "fetchmail.pid")],
            env=env, capture_output=True, text=True, timeout=60,
        )
    assert run.returncode == 0, run.stderr
    # It upgraded with STLS (the certificate names "quirkmail simulator", so no name check).
    assert "POP3> STLS" in run.stdout + run.stderr
    got = sorted(FETCHMAIL_RECEIVED.sub(b"", p.read_bytes(), count=1) for p in out.iterdir())
    # fetchmail prepends its own Received header and hands the MDA LF line ends.
    assert got == sorted(as_lf(raw) for raw in inbox)
    assert len(store.account("alice").folder(INBOX).messages) == len(inbox)  # keep


# getmail6 runs through tests/getmail_reaper.py: its own child reaper loses a delivery child that
# ends before the parent installed its SIGCHLD handler, and then waits 180 s (see that file).
GETMAIL_REAPER = Path(__file__).parent / "getmail_reaper.py"


def getmail_argv(*args: str) -> list[str]:
    """getmail through the reaper, with the interpreter of getmail's own #! line."""
    getmail = Path(shutil.which("getmail"))
    interpreter = getmail.read_text().split("\n", 1)[0].removeprefix("#!").split()
    return [*interpreter, str(GETMAIL_REAPER), *args]


def run_getmail(
    store: Store, tmp_path: Path, *options: str, timeout: int = 0
) -> tuple[subprocess.CompletedProcess, list[bytes]]:
    """getmail over POP3S from the simulator into a fresh Maildir: its run and the files delivered.

    ``options`` go before getmail's arguments (tests/getmail_reaper.py's); ``timeout`` > 0 is
    getmail's own network and child-wait timeout."""
    # getmail delivers as vmail, who must be able to reach the Maildir: not under pytest's 0700 tmp.
    base = Path(tempfile.mkdtemp(prefix="quirkmail-getmail-"))
    base.chmod(0o755)
    maildir = base / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    as_root = os.geteuid() == 0
    if as_root:  # getmail refuses to deliver as root; PEERS.md: user = vmail
        vmail = pwd.getpwnam("vmail")
        for path in [tmp_path, maildir, *maildir.iterdir()]:
            os.chown(path, vmail.pw_uid, vmail.pw_gid)
    try:
        with SimulatorWorld(store, load_profile("generic")) as world:
            port = world.start_pop3(implicit_tls=True).port
            rc = tmp_path / "getmailrc"
            rc.write_text(
                "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = 127.0.0.1\n"
                f"port = {port}\nusername = alice\npassword = secret\nca_certs = {world.cafile}\n"
                + (f"timeout = {timeout}\n" if timeout else "")
                + f"[destination]\ntype = Maildir\npath = {maildir}/\n" + ("user = vmail\n" if as_root else "")
                + "[options]\nread_all = true\ndelete = false\nreceived = false\ndelivered_to = false\n"
            )
            argv = getmail_argv(*options, f"--rcfile={rc}", f"--getmaildir={tmp_path}")
            try:
                run = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired as exc:  # name what it was doing and what it had delivered
                delivered = len(list((maildir / "new").iterdir()))
                pytest.fail(f"getmail still running after 60 s, {delivered} delivered; its output:\n{exc.stdout}{exc.stderr}")
        return run, sorted(p.read_bytes() for p in (maildir / "new").iterdir())
    finally:
        shutil.rmtree(base)


def test_getmail_retrieves_everything_over_pop3s(tmp_path: Path):
    _need("getmail")
    store = clients_mailbox()
    inbox = [m.raw for m in store.account("alice").folder(INBOX).messages]
    run, got = run_getmail(store, tmp_path)
    assert run.returncode == 0, run.stderr
    # getmail adds nothing with received/delivered_to off; it stores LF line ends, and Python's
    # email generator refolds long header lines (so headers are compared unfolded).
    # A message without Return-Path gets "Return-Path: <unknown>" (getmail's Maildir delivery).
    want = [raw if raw.startswith(b"Return-Path:") else b"Return-Path: <unknown>\n" + raw for raw in inbox]
    assert sorted(map(unfolded, got)) == sorted(unfolded(as_lf(raw)) for raw in want)
    assert len(store.account("alice").folder(INBOX).messages) == len(inbox)


def small_mailbox() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for n in range(3):
        account.append(INBOX, f"Subject: {n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody {n}\r\n".encode(), internaldate=WHEN)
    return store


def test_getmail_reaper_survives_a_parent_preempted_after_fork(tmp_path: Path):
    # The stall seen in loaded full runs, on demand: each delivery child ends before the parent
    # goes on. With getmail's own reaper this waits out the timeout (next test); here it may not.
    _need("getmail")
    run, got = run_getmail(small_mailbox(), tmp_path, "--fork-delay", "0.2", timeout=10)
    assert run.returncode == 0, run.stdout + run.stderr
    assert [m.split(b"\n")[1] for m in got] == [b"Subject: 0", b"Subject: 1", b"Subject: 2"]


def test_getmail_own_reaper_still_loses_the_child(tmp_path: Path):
    # Pins the getmail6 race that tests/getmail_reaper.py works around: when this fails, getmail
    # no longer loses its child and the reaper can go.
    _need("getmail")
    run, got = run_getmail(small_mailbox(), tmp_path, "--as-is", "--fork-delay", "0.2", timeout=2)
    assert run.returncode != 0
    assert re.search(r"waiting child pid \d+ timed out", run.stderr), run.stderr
    assert len(got) == 1  # the first child delivered, then its parent waited for nothing
