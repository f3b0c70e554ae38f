"""Microsoft-over-IMAP and flag quirks (simulators.imap.quirks_microsoft): their reply bytes and
what they store, through the engine (bytes in, bytes out) and over a real socket."""

from __future__ import annotations

import socket
from datetime import datetime, timezone

import pytest

from simulators.imap.engine import ImapSession
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store
from tests.test_imap_quirks import run, session

WHEN = datetime(2024, 1, 5, tzinfo=timezone.utc)
MSG = b"Subject: x\r\nMessage-ID: <m1@x>\r\n\r\nbody\r\n"
RECEIPT_ASKED = b"From: bob@x\r\nSubject: hi\r\nMessage-ID: <r1@x>\r\nDisposition-Notification-To: bob@x\r\n\r\nbody\r\n"


def setup(*quirks: str, profile: str = "generic") -> tuple[ImapSession, Store]:
    store = Store()
    acc = store.add_account("alice", "pw")
    acc.create_folder(("Sent",), special_use="\\Sent")
    acc.create_folder(("Archive",))
    acc.append(("INBOX",), MSG, internaldate=WHEN)
    s = session(*quirks, store=store, profile=profile)
    run(s, b"a LOGIN alice pw\r\n")
    return s, store


def append(flags: bytes, raw: bytes) -> bytes:
    return b"p APPEND INBOX (" + flags + b") {%d+}\r\n" % len(raw) + raw + b"\r\n"


def test_flagged_is_dropped_from_append_but_store_sets_it():
    s, store = setup("exchange-flagged-on-append-lost")
    out = run(s, append(b"\\Seen \\Flagged $Forwarded", MSG))
    assert b"p OK [APPENDUID " in out
    item = store.account("alice").folder(("INBOX",)).messages[-1]
    assert item.flags == {"\\Seen", "$Forwarded"}
    out = run(s, b"s SELECT INBOX\r\nt UID STORE %d +FLAGS.SILENT (\\Flagged)\r\n" % item.uid)
    assert b"t OK Store completed" in out and "\\Flagged" in item.flags


@pytest.mark.parametrize("length, refused", [(9900, False), (9901, True)])
def test_a_line_over_the_limit_gets_exchanges_bad(length, refused):
    s, store = setup("exchange-append-limits")
    raw = b"Subject: long\r\n\r\n" + b"x" * length + b"\r\n"
    out = run(s, append(b"\\Seen", raw))
    assert (b"p BAD Command Argument Error. 11\r\n" in out) is refused
    assert len(store.account("alice").folder(("INBOX",)).messages) == (1 if refused else 2)


def test_oversize_form_is_refused_before_the_literal():
    s, _ = setup("exchange-append-limits:bytes=100")
    out = run(s, b"p APPEND INBOX {200}\r\n")  # synchronising literal: refused before the bytes come
    assert out == b"p BAD Command Argument Error. 11\r\n"


def test_examine_shows_no_permanent_flags_select_does():
    s, _ = setup("examine-empty-permanentflags", profile="m365")
    examined = run(s, b"e EXAMINE INBOX\r\n")
    selected = run(s, b"s SELECT INBOX\r\n")
    assert b"* OK [PERMANENTFLAGS ()] Permanent flags\r\n" in examined
    assert b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Permanent flags\r\n" in selected


def test_invalid_flags_refuse_the_whole_append_and_store():
    s, store = setup("invalid-flags-on-append:permanent=\\Seen|$Forwarded,max_keywords=1")
    out = run(s, append(b"\\Seen $NotJunk", MSG) + append(b"\\Seen \\Indexed", MSG) + append(b"\\Seen $Forwarded", MSG))
    assert out.count(b"p NO APPEND Invalid flag list\r\n") == 2 and b"p OK [APPENDUID" in out
    assert len(store.account("alice").folder(("INBOX",)).messages) == 2
    selected = run(s, b"s SELECT INBOX\r\nt STORE 1 +FLAGS (NonJunk)\r\n")
    assert b"* OK [PERMANENTFLAGS (\\Seen $Forwarded)] Flags permitted.\r\n" in selected
    assert b"t NO STORE Invalid flag list\r\n" in selected


def test_too_many_keywords_are_refused():
    s, _ = setup("invalid-flags-on-append:max_keywords=2")
    out = run(s, append(b"$a $b", MSG) + append(b"$a $b $c", MSG))
    assert b"p OK [APPENDUID" in out and out.endswith(b"p NO APPEND Invalid flag list\r\n")


def test_exchange_profile_refuses_unknown_system_flags_in_its_words():
    s, _ = setup(profile="exchange")
    assert run(s, append(b"\\Seen \\Indexed", MSG)) == b"p BAD Command Argument Error. 11\r\n"


def test_mdn_resend_files_a_receipt_only_for_read_unmarked_requests():
    s, store = setup("mdn-resend")
    run(s, append(b"\\Seen", RECEIPT_ASKED) + append(b"", RECEIPT_ASKED)
        + append(b"\\Seen $MDNSent", RECEIPT_ASKED) + append(b"\\Seen", MSG))
    sent = store.account("alice").folder(("Sent",)).messages
    assert len(sent) == 1
    receipt = sent[0].raw
    assert b"To: bob@x\r\n" in receipt and b"Subject: Read: hi\r\n" in receipt
    assert b"report-type=disposition-notification" in receipt and b"Original-Message-ID: <r1@x>\r\n" in receipt


def test_broken_move_answers_ok_and_moves_nothing():
    s, store = setup("broken-move")
    out = run(s, b"c CAPABILITY\r\ns SELECT INBOX\r\nm UID MOVE 1 Archive\r\n")
    assert b" MOVE" in out.split(b"\r\n")[0] and b"m OK MOVE completed.\r\n" in out
    acc = store.account("alice")
    assert len(acc.folder(("INBOX",)).messages) == 1 and not acc.folder(("Archive",)).messages


def _read_until(sock, marker: bytes) -> bytes:
    buf = bytearray()
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(bytes(buf[-200:]))
        buf += chunk
    return bytes(buf)


def test_broken_move_copies_without_expunge_over_a_socket():
    """Exchange 2013's other failure: the target gets a copy, the original stays (raw socket)."""
    store = Store()
    acc = store.add_account("alice", "secret")
    acc.create_folder(("Archive",))
    acc.append(("INBOX",), MSG, internaldate=WHEN)
    profile = load_profile("exchange").with_quirks([QuirkSpec.parse("broken-move:mode=copy-without-expunge")])
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        with socket.create_connection((handle.host, handle.port), timeout=5) as sock:
            assert _read_until(sock, b"\r\n") == b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n"
            sock.sendall(b"a LOGIN alice secret\r\nb CAPABILITY\r\n")
            assert b" MOVE" in _read_until(sock, b"b OK CAPABILITY completed.\r\n")
            sock.sendall(b"c SELECT INBOX\r\nd UID MOVE 1 Archive\r\ne UID SEARCH ALL\r\n")
            out = _read_until(sock, b"e OK SEARCH completed.\r\n")
    assert b"d OK MOVE completed.\r\n" in out and b"* 1 EXPUNGE" not in out
    assert b"* SEARCH 1\r\n" in out  # still in INBOX
    assert [m.raw for m in acc.folder(("Archive",)).messages] == [MSG]
