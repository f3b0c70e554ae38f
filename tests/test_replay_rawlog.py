"""Dovecot rawlogs into transcripts, and replayed to imapclient as Dovecot answered it.

tests/replay_data/dovecot-2.3.19/ holds real rawlogs written by Dovecot 2.3.19 (``imap-login
-R`` and ``rawlog_dir``) for one imapclient session (CAPABILITY, LOGIN, APPEND, SELECT, FETCH,
LOGOUT) plus the two port probes of the test harness; the peer test makes fresh ones.
"""

from __future__ import annotations

import time
from pathlib import Path

import imapclient
import pytest

from scenarios.cli_replay import load_scripts
from simulators.replay.server import ReplayServer
from transcripts import format as fmt
from transcripts.rawlog import RawlogError, import_dovecot, load

DATA = Path(__file__).parent / "replay_data" / "dovecot-2.3.19"


def imapclient_session(host: str, port: int) -> list:
    """What imapclient makes of one short session: every value it returns."""
    client = imapclient.IMAPClient(host, port, ssl=False, timeout=10)
    seen = [client.welcome, client.capabilities(), client.login("alice", "secret")]
    seen.append(client.append("INBOX", b"Subject: hi\r\n\r\nbody\r\n"))
    seen.append(client.select_folder("INBOX"))
    seen.append(client.fetch([1], ["FLAGS", "BODY.PEEK[]"]))
    seen.append(client.logout())
    return seen


def replayed(paths: list[Path]) -> tuple[list, object]:
    scripts, _ = load_scripts(paths)
    with ReplayServer(scripts) as server:
        [endpoint] = server.start()
        seen = imapclient_session(endpoint.host, endpoint.port)
        time.sleep(0.05)  # the server sees the close
        return seen, server.summary()


def test_login_and_post_login_halves_join_into_one_masked_session():
    imported = import_dovecot([DATA])
    [(name, transcript)] = imported.sessions
    assert name == "20261122-194809.2411.1+20261122-194809.2413.1"
    assert sum("client sent nothing" in n for n in imported.notes) == 2
    header = transcript.header
    assert (header.protocol, header.recorded_by, header.redacted) == (fmt.Protocol.IMAP, "dovecot-rawlog", 1)
    client = transcript.sent_by(fmt.Sender.CLIENT)
    assert b'LOGIN alice "******"\r\n' in client and b"secret" not in client
    assert b"Subject: hi\r\n\r\nbody\r\n\r\n" in client  # the APPEND literal is not a secret
    assert transcript.sent_by(fmt.Sender.SERVER).startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert transcript.events[0].at == 0.0 and transcript.events[-1].at < 1.0


def test_a_real_dovecot_rawlog_replays_to_imapclient():
    seen, summary = replayed([DATA])
    assert summary.divergences == [] and summary.matched == 7 and summary.sessions == 1
    assert seen[2] == b"Logged in"
    assert seen[5] == {1: {b"SEQ": 1, b"FLAGS": (b"\\Recent",), b"BODY[]": b"Subject: hi\r\n\r\nbody\r\n"}}


def test_untimed_rawlogs_are_imported_and_paired_by_the_protocol(tmp_path):
    for f in sorted(DATA.glob("*2411*")) + sorted(DATA.glob("*2413*")):  # strip the -t timestamps
        lines = f.read_bytes().splitlines(keepends=True)
        (tmp_path / f.name).write_bytes(b"".join(line.split(b" ", 1)[1] for line in lines))
    imported = import_dovecot([tmp_path])
    [(_, transcript)] = imported.sessions
    assert transcript.header.extra["interleaved"] is False
    seen, summary = replayed([tmp_path])
    assert summary.divergences == [] and seen[2] == b"Logged in"


def test_unreadable_logs_name_the_file_and_line(tmp_path):
    (tmp_path / "a.in").write_bytes(b"1795376889.298084 a LOGIN x y\r\n")
    with pytest.raises(RawlogError, match=r"a.in: a Dovecot rawlog comes in pairs: a.out is missing"):
        import_dovecot([tmp_path / "a.in"])
    (tmp_path / "a.out").write_bytes(b"1795376889.298084 * OK hi\r\nno stamp here\r\n")
    with pytest.raises(RawlogError, match=r"a.out, line 2: no '<seconds>.<microseconds> ' timestamp"):
        import_dovecot([tmp_path])
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(RawlogError, match=r"notes.txt: not a transcript, a Dovecot rawlog"):
        load([tmp_path / "notes.txt"])


@pytest.mark.peer
def test_imapclient_sees_the_same_replies_from_the_replay_as_from_dovecot():
    from scenarios.peers.dovecot import availability
    from tests.replay_support import RawlogDovecot

    if (reason := availability()) is not None:
        pytest.skip(reason)
    with RawlogDovecot() as dovecot:
        dovecot.add_user("alice", "secret")
        live = imapclient_session(dovecot.host, dovecot.imap_port)
        time.sleep(0.3)  # Dovecot's processes finish their rawlogs as the connection ends
        seen, summary = replayed(dovecot.rawlog_dirs)
    assert summary.divergences == []
    assert seen == live


def _poplib_session(host: str, port: int) -> list:
    import poplib

    client = poplib.POP3(host, port, timeout=10)
    seen = [client.getwelcome(), client.capa(), client.user("alice"), client.pass_("secret")]
    seen += [client.stat(), client.uidl(), client.retr(1), client.quit()]
    return seen


@pytest.mark.peer
def test_poplib_sees_the_same_replies_from_a_replayed_pop3_rawlog():
    from scenarios.peers.dovecot import availability
    from simulators.store import Account, Store
    from tests.replay_support import RawlogDovecot

    if (reason := availability()) is not None:
        pytest.skip(reason)
    account: Account = Store().add_account("alice", "secret")
    account.append(("INBOX",), b"Subject: pop\r\n\r\n.leading dot\r\nbody\r\n")
    with RawlogDovecot() as dovecot:
        dovecot.add_user("alice", "secret")
        dovecot.load_account(account)
        live = _poplib_session(dovecot.host, dovecot.pop3_port)
        time.sleep(0.3)
        scripts, notes = load_scripts(dovecot.rawlog_dirs)
    [script] = [s for s in scripts if s.protocol is fmt.Protocol.POP3]
    assert any("joined to the login rawlog" in n for n in notes) and script.redacted
    with ReplayServer([script]) as server:
        [endpoint] = server.start()
        seen = _poplib_session(endpoint.host, endpoint.port)
        time.sleep(0.05)
        assert server.summary().divergences == []
    assert seen == live and live[6][1][-1] == b"body"
