"""Fuzzing the IMAP simulator's command side: the reader/tokenizer and a whole ImapSession.

Properties: the reader turns any bytes into events (a malformed command is a BadCommand, never an
exception); the item parsers raise only ``ImapSyntaxError``; a session fed any mix of valid and
broken lines answers each with well-formed responses, never hits the engine's internal-error path
(``NO [SERVERBUG]``) and still serves a valid command afterwards.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from hypothesis import strategies as st

from simulators.imap.engine import ImapSession, State
from simulators.imap.syntax import (
    BadCommand,
    Command,
    CommandReader,
    ContinuationLine,
    ImapSyntaxError,
    NeedContinuation,
    RefusedCommand,
    parse_fetch_atts,
    parse_sequence_set,
    tokenize,
)
from simulators.quirks import build_all
from simulators.store import Store
from tests.fuzz_profiles import fuzz, profile_named
from tests.fuzz_strategies import garbage, lines, mutated

WHEN = datetime(2024, 1, 1, 10, 0, tzinfo=timezone.utc)
MESSAGES = [
    b"From: A <a@example.org>\r\nTo: b@example.org\r\nSubject: s\r\nMessage-ID: <1@x>\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b--\r\n",
    b"Subject: bare lf\nFrom: x\n\nline\n",
]
SEEDS = [
    b"a CAPABILITY", b"a NOOP", b"a ID (\"name\" \"fuzz\")", b"a LOGIN alice pw", b'a LOGIN "alice" {2}\r\npw',
    b"a AUTHENTICATE PLAIN AGFsaWNlAHB3", b"a AUTHENTICATE LOGIN", b"a SELECT INBOX", b"a EXAMINE \"Work/2024\"",
    b"a CREATE New", b"a DELETE New", b"a RENAME Work Play", b"a SUBSCRIBE Sent", b"a UNSUBSCRIBE Sent",
    b'a LIST "" "*"', b'a LIST "" %', b'a LSUB "" "*"', b"a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)",
    b"a APPEND INBOX (\\Seen) \"01-Jan-2024 10:00:00 +0000\" {12}\r\nSubject: x\r\n",
    b"a APPEND INBOX {5+}\r\nhello", b"a APPEND INBOX (\\Flagged) {3}\r\nabc (\\Seen) {2}\r\nxy",
    b"a NAMESPACE", b"a ENABLE CONDSTORE", b"a IDLE", b"DONE", b"a CHECK", b"a CLOSE", b"a UNSELECT",
    b"a EXPUNGE", b"a UID EXPUNGE 1:2", b"a SEARCH ALL", b"a UID SEARCH SINCE 1-Jan-2024 NOT SEEN",
    b'a SEARCH OR FROM "a" (SUBJECT s BODY "x") LARGER 10 UID 1:*',
    b"a SEARCH CHARSET UTF-8 TEXT {2}\r\n\xc3\xa4", b"a FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)",
    b"a FETCH 1 (ENVELOPE BODYSTRUCTURE BODY)", b"a UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])",
    b"a FETCH 2 (BODY[1] BODY[2.HEADER] BODY[2.1.MIME] BINARY.PEEK[1]<0.10>)", b"a FETCH 1 BODY[]<5.3>",
    b"a FETCH 1,2:3 ALL", b"a FETCH * (RFC822.HEADER RFC822.TEXT X-GM-MSGID X-GM-LABELS)",
    b"a STORE 1 +FLAGS (\\Deleted $Junk)", b"a UID STORE 1:* -FLAGS.SILENT (\\Seen)", b"a STORE 2 FLAGS ()",
    b"a COPY 1:2 Sent", b"a UID COPY 1 Work/2024", b"a MOVE 1 Sent", b"a UID MOVE 2:* Sent", b"a LOGOUT",
    b"a STARTTLS", b"a X-UNKNOWN arg", b"* NOOP", b"a UID",
]
SEEDS = [s + b"\r\n" for s in SEEDS]
PROFILES = ["generic", "gmail", "exchange", "courier"]
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


def make_session(profile: str) -> ImapSession:
    store = Store()
    account = store.add_account("alice", "pw")
    account.create_folder(("Sent",), special_use="\\Sent")
    account.create_folder(("Work", "2024"))
    for raw in MESSAGES:
        account.append(("INBOX",), raw, internaldate=WHEN)
    p = profile_named(profile)
    session = ImapSession(store, p, build_all(p.quirks, "imap"))
    session.start()
    return session


def response_lines(chunk: bytes) -> list[bytes]:
    """A chunk of server output split into response lines, each literal shown as ``{}``."""
    out, line, start, pos = [], b"", 0, 0
    while pos < len(chunk):
        m = _LITERAL.match(chunk, pos) if chunk[pos : pos + 1] == b"{" else None
        if m:
            assert m.end() + int(m.group(1)) <= len(chunk), f"literal cut short: {chunk[-80:]!r}"
            line += chunk[start:pos] + b"{}"
            start = pos = m.end() + int(m.group(1))
        elif chunk.startswith(b"\r\n", pos):
            out.append(line + chunk[start : pos + 2])
            line, start = b"", pos + 2
            pos = start
        else:
            pos += 1
    assert start == len(chunk), f"output does not end with CRLF: {chunk[-80:]!r}"
    return out


def assert_well_formed(outputs: list, tags: set[bytes]) -> None:
    for chunk in outputs:
        if not isinstance(chunk, bytes):
            continue  # a Signal (CLOSE, START_TLS)
        assert b"[SERVERBUG]" not in chunk, chunk
        for line in response_lines(chunk):
            assert b"\r" not in line[:-2] and b"\n" not in line[:-2], f"a reply line holds a line break: {line!r}"
            if line.startswith((b"* ", b"+ ")) or line == b"+\r\n":
                continue
            tag, _, rest = line.partition(b" ")
            assert tag in tags and rest.startswith((b"OK", b"NO", b"BAD")), f"malformed response: {line!r}"


@fuzz("imap-reader", 150, data=garbage(SEEDS, 4), split=st.integers(0, 400))
def test_reader_turns_any_bytes_into_events(data, split):
    reader = CommandReader(max_line=2048)
    reader.receive_data(data[:split])
    events = []
    while (event := reader.next_event()) is not None:
        events.append(event)
    reader.receive_data(data[split:])
    while (event := reader.next_event()) is not None:
        events.append(event)
    for event in events:
        assert isinstance(event, Command | BadCommand | NeedContinuation | ContinuationLine | RefusedCommand)
        if isinstance(event, Command):
            assert event.name == event.name.upper() and event.name


@fuzz("imap-items", 150, data=garbage(SEEDS + [b"(BODY[1.2.HEADER.FIELDS (A B)]<0.9> FLAGS)", b"1:3,5,*"], 4))
def test_item_parsers_raise_only_syntax_errors(data):
    try:
        tokens = tokenize(data.rstrip(b"\r\n"))
    except ImapSyntaxError:
        return
    for token in tokens:
        try:
            parse_fetch_atts(token)
        except ImapSyntaxError:
            pass
        if isinstance(token, str):  # the engine refuses a non-atom sequence set before parsing it
            try:
                parse_sequence_set(token, 7)
            except ImapSyntaxError:
                pass


@fuzz("imap-session", 100, profile=st.sampled_from(PROFILES), setup=st.sampled_from([b"", b"l LOGIN alice pw\r\n",
      b"l LOGIN alice pw\r\ns SELECT INBOX\r\n"]), script=st.lists(lines(SEEDS), min_size=1, max_size=6))
def test_session_answers_every_line_and_keeps_serving(profile, setup, script):
    session = make_session(profile)
    tags = {b"l", b"s", b"a", b"zz", b"*"}
    assert_well_formed(session.receive_data(setup), tags)
    for line in script:
        tags.update(piece.split(b" ", 1)[0].rstrip(b"\r") for piece in line.split(b"\n"))
        before = session.between_commands
        outputs = session.receive_data(line)
        assert_well_formed(outputs, tags)
        if before and session.between_commands and b"{" not in line:
            assert outputs, f"no reply to {line!r}"
    if session.between_commands:
        outputs = session.receive_data(b"zz NOOP\r\n")
        assert_well_formed(outputs, tags)
        replies = b"".join(o for o in outputs if isinstance(o, bytes))
        assert re.search(rb"(^|\n)zz (OK|BAD Error in IMAP command received by server)", replies) or \
            session.state is State.LOGOUT, replies
