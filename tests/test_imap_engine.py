"""ImapSession bytes in → bytes out: transcripts fed whole and byte by byte, state, quirks."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from simulators.imap.engine import CLOSE, START_TLS, ImapSession, State
from simulators.profiles import load_profile
from simulators.quirks import build_all
from simulators.store import Store

TZ = timezone(timedelta(hours=2))
MSG = b"From: a@example.org\r\nSubject: s%d\r\nMessage-ID: <%d@x>\r\n\r\nbody %d\r\n"
T = " (0.001 + 0.000 secs)."


def make_store() -> Store:
    # A fixed UIDVALIDITY: both() compares two stores' replies, and COPYUID/APPENDUID carry it.
    store = Store(first_uidvalidity=1_700_000_000)
    acc = store.add_account("alice", "pw")
    acc.create_folder(("Sent",), special_use="\\Sent")
    acc.create_folder(("Work", "2024"))
    for i in range(3):
        acc.append(
            ("INBOX",), MSG % (i, i, i), flags={"\\Seen"} if i == 0 else set(),
            internaldate=datetime(2024, 1, 1 + i, 10, 0, 0, tzinfo=TZ),
        )
    return store


def session(profile: str = "generic", store: Store | None = None, **kw) -> ImapSession:
    p = load_profile(profile)
    s = ImapSession(store or make_store(), p, build_all(p.quirks, "imap"), **kw)
    s.start()
    return s


def run(s: ImapSession, data: bytes, *, bytewise: bool = False) -> bytes:
    chunks = [data[i : i + 1] for i in range(len(data))] if bytewise else [data]
    out = []
    for c in chunks:
        out += s.receive_data(c)
    return b"".join(o for o in out if isinstance(o, bytes))


def both(data: bytes, setup: bytes = b"", profile: str = "generic") -> bytes:
    """The reply to ``data`` fed whole, after asserting byte-by-byte feeding gives the same."""
    replies = []
    for bytewise in (False, True):
        s = session(profile)
        run(s, setup)
        replies.append(run(s, data, bytewise=bytewise))
    assert replies[0] == replies[1]
    return replies[0]


LOGIN = b"a LOGIN alice pw\r\n"
SELECT = LOGIN + b"s SELECT INBOX\r\n"


def test_greeting_and_capabilities_before_and_after_login():
    s = ImapSession(make_store(), load_profile("generic"))
    assert s.start() == [
        b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN "
        b"AUTH=LOGIN] Dovecot ready.\r\n"
    ]
    out = run(s, LOGIN)
    assert out.startswith(b"a OK [CAPABILITY IMAP4rev1 SASL-IR") and b" MOVE " in out and b"STARTTLS" not in out
    assert out.endswith(b"] Logged in\r\n")
    assert s.state is State.AUTHENTICATED
    # Dovecot: a client that asked CAPABILITY before login reads the new list untagged
    s = session()
    out = run(s, b"c CAPABILITY\r\n" + LOGIN)
    assert b"c OK Pre-login capabilities listed, post-login capabilities have more.\r\n* CAPABILITY IMAP4rev1 " in out
    assert out.endswith(b"\r\na OK Logged in\r\n")


def test_wrong_password_then_right_one():
    out = both(b"a LOGIN alice nope\r\nb LOGIN alice pw\r\n")
    assert out.startswith(b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    assert out.endswith(b"b OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE MULTIAPPEND UNSELECT CHILDREN "
                        b"NAMESPACE UIDPLUS MOVE LITERAL+ SPECIAL-USE] Logged in\r\n")


def test_commands_not_allowed_before_login_and_unknown_commands():
    out = both(b"a SELECT INBOX\r\nb FOO\r\n" + LOGIN + b"c FOO\r\nd FETCH 1 FLAGS\r\ne LOGIN x y\r\n")
    lines = out.split(b"\r\n")
    assert lines[0] == b"a BAD Error in IMAP command received by server."
    assert lines[1] == b"b BAD Error in IMAP command received by server."
    assert b"c BAD Error in IMAP command FOO: Unknown command" + T.encode() in lines
    assert b"d BAD No mailbox selected" + T.encode() in lines
    assert b"e BAD Error in IMAP command LOGIN: Unknown command" + T.encode() in lines


def test_bad_syntax_gets_bad_and_the_session_keeps_serving():
    out = both(SELECT + b'x1 FETCH 1 (FLAGS\r\nx2 FETCH 9 FLAGS\r\nx3 FETCH 1:x FLAGS\r\nx4 NOOP\r\n')
    assert b"x1 BAD Error in IMAP command FETCH: Missing ')'" + T.encode() + b"\r\n" in out
    assert b"x2 BAD Error in IMAP command FETCH: Invalid messageset" + T.encode() + b"\r\n" in out
    assert b"x3 BAD Error in IMAP command FETCH: Invalid messageset: 1:x" + T.encode() + b"\r\n" in out
    assert out.endswith(b"x4 OK NOOP completed" + T.encode() + b"\r\n")


def test_select_transcript():
    store = make_store()
    uv = store.account("alice").folder(("INBOX",)).uidvalidity
    s = session(store=store)
    run(s, LOGIN)
    assert run(s, b"s SELECT INBOX\r\n") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n"
        b"* 3 EXISTS\r\n* 3 RECENT\r\n* OK [UNSEEN 2] First unseen.\r\n"
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n* OK [UIDNEXT 4] Predicted next UID\r\n"
        b"s OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r\n" % uv
    )
    # a second session sees no \Recent (the first one claimed it), and EXAMINE is read-only
    other = session(store=store)
    run(other, LOGIN)
    out = run(other, b"e EXAMINE INBOX\r\n")
    assert b"* 0 RECENT\r\n" in out and b"[PERMANENTFLAGS ()] Read-only mailbox." in out
    assert out.endswith(b"e OK [READ-ONLY] Examine completed" + T.encode() + b"\r\n")


def test_fetch_simple_items_and_body_sets_seen_unless_peek_or_read_only():
    out = both(b"f1 FETCH 2 (UID FLAGS INTERNALDATE RFC822.SIZE)\r\nf2 UID FETCH 2 (BODY.PEEK[]<0.4>)\r\n"
               b"f3 FETCH 2 BODY[]\r\nf4 FETCH 2 FLAGS\r\n", setup=SELECT)
    size = len(MSG % (1, 1, 1))
    assert out.startswith(
        b'* 2 FETCH (UID 2 FLAGS (\\Recent) INTERNALDATE "02-Jan-2024 10:00:00 +0200" RFC822.SIZE %d)\r\n' % size
    )
    assert b"* 2 FETCH (UID 2 BODY[]<0> {4}\r\nFrom)\r\n" in out
    assert b"* 2 FETCH (FLAGS (\\Seen \\Recent) BODY[] {%d}\r\n%s)\r\n" % (size, MSG % (1, 1, 1)) in out
    assert b"* 2 FETCH (FLAGS (\\Seen \\Recent))\r\nf4 OK" in out
    ro = both(b"f1 FETCH 2 BODY[]\r\nf2 FETCH 2 FLAGS\r\n", setup=LOGIN + b"e EXAMINE INBOX\r\n")
    assert b"* 2 FETCH (FLAGS (\\Recent))" in ro


def test_uid_ranges_resolve_by_uid_and_star_includes_the_highest():
    out = both(b"u1 UID FETCH 2:* UID\r\nu2 UID FETCH 10:* UID\r\nu3 UID FETCH 5:7 UID\r\n", setup=SELECT)
    assert out.split(b"\r\n")[:3] == [b"* 2 FETCH (UID 2)", b"* 3 FETCH (UID 3)", b"u1 OK Fetch completed" + T.encode()]
    assert b"* 3 FETCH (UID 3)\r\nu2 OK" in out
    assert b"u2 OK Fetch completed" + T.encode() + b"\r\nu3 OK" in out


def test_store_flags_and_keywords_then_expunge():
    out = both(
        b"t1 STORE 1 +FLAGS (\\Deleted)\r\nt2 UID STORE 2 +FLAGS.SILENT (\\Flagged)\r\n"
        b"t3 STORE 3 FLAGS ($Work)\r\nt4 STORE 1 +FLAGS (\\Recent)\r\nt5 EXPUNGE\r\nt6 FETCH 1:* FLAGS\r\n",
        setup=SELECT,
    )
    assert b"* 1 FETCH (FLAGS (\\Deleted \\Seen \\Recent))\r\nt1 OK Store completed" in out
    assert b"t1 OK Store completed" + T.encode() + b"\r\nt2 OK Store completed" in out
    assert b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n" in out
    assert b"* 3 FETCH (FLAGS (\\Recent $Work))\r\n" in out
    assert b"t4 BAD Error in IMAP command STORE: Invalid system flag \\RECENT" + T.encode() in out
    assert b"* 1 EXPUNGE\r\n* 2 RECENT\r\nt5 OK Expunge completed" in out
    assert out.endswith(
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n* 2 FETCH (FLAGS (\\Recent $Work))\r\nt6 OK Fetch completed"
        + T.encode() + b"\r\n"
    )


def test_append_with_flags_and_date_keeps_the_zone_and_answers_appenduid():
    store = make_store()
    s = session(store=store)
    run(s, LOGIN)
    out = run(s, b'p1 APPEND Sent (\\Seen $Done) "05-Mar-2023 08:09:10 -0500" {5}\r\n', bytewise=True)
    assert out == b"+ Ready for literal data\r\n"
    out = run(s, b"hello\r\n")
    sent = store.account("alice").folder(("Sent",))
    assert out == b"p1 OK [APPENDUID %d 1] Append completed" % sent.uidvalidity + T.encode() + b"\r\n"
    item = sent.messages[0]
    assert item.raw == b"hello" and item.flags == {"\\Seen", "$Done"}
    assert item.internaldate == datetime(2023, 3, 5, 8, 9, 10, tzinfo=timezone(timedelta(hours=-5)))
    out = run(s, b"p2 EXAMINE Sent\r\np3 FETCH 1 INTERNALDATE\r\n")
    assert b'* 1 FETCH (INTERNALDATE "05-Mar-2023 08:09:10 -0500")' in out


def test_append_to_a_missing_mailbox_is_refused_before_the_literal():
    out = both(b"p1 APPEND Nope {5}\r\np2 NOOP\r\n", setup=LOGIN)
    assert out == (
        b"p1 NO [TRYCREATE] Mailbox doesn't exist: Nope" + T.encode() + b"\r\n"
        b"p2 OK NOOP completed" + T.encode() + b"\r\n"
    )


def test_multiappend_with_literal_plus_in_one_command():
    out = both(b"p1 APPEND INBOX (\\Seen) {3+}\r\none {3+}\r\ntwo\r\n", setup=SELECT)
    assert b"* 5 EXISTS\r\n* 5 RECENT\r\n" in out
    assert b"[APPENDUID " in out and b" 4:5] Append completed" in out


def test_copy_and_move_answer_copyuid_and_expunge():
    out = both(b"c1 COPY 1:2 Sent\r\nc2 UID MOVE 3 Sent\r\nc3 MOVE 9 Sent\r\nc4 COPY 1 Nope\r\n", setup=SELECT)
    assert b" 1:2 1:2] Copy completed" in out
    assert b" 3 3] Moved UIDs.\r\n* 3 EXPUNGE\r\n* 2 RECENT\r\nc2 OK Move completed" in out
    assert b"c3 BAD Error in IMAP command MOVE: Invalid messageset" in out
    assert b"c4 NO [TRYCREATE] Mailbox doesn't exist: Nope" in out


def test_changes_by_another_session_arrive_as_exists_and_expunge():
    store = make_store()
    s = session(store=store)
    run(s, SELECT)
    acc = store.account("alice")
    acc.append(("INBOX",), b"new", internaldate=datetime(2024, 2, 1, tzinfo=timezone.utc))
    acc.folder(("INBOX",)).messages[0].flags.add("\\Deleted")
    acc.expunge(("INBOX",))
    assert run(s, b"n1 NOOP\r\n") == (
        b"* 1 EXPUNGE\r\n* 3 EXISTS\r\n* 3 RECENT\r\nn1 OK NOOP completed" + T.encode() + b"\r\n"
    )
    # FETCH may not report expunges (RFC 3501 §7.4.1): only EXISTS goes out during it
    acc.folder(("INBOX",)).messages[0].flags.add("\\Deleted")
    acc.expunge(("INBOX",))
    acc.append(("INBOX",), b"newer", internaldate=datetime(2024, 2, 1, tzinfo=timezone.utc))
    out = run(s, b"n2 FETCH 1 UID\r\nn3 NOOP\r\n")
    assert out.split(b"\r\n")[:3] == [b"* 1 FETCH (UID 2)", b"* 4 EXISTS", b"* 4 RECENT"]
    assert b"* 1 EXPUNGE\r\n* 3 RECENT\r\nn3 OK" in out


def test_idle_pushes_new_mail_and_ends_with_done():
    store = make_store()
    s = session(store=store)
    run(s, SELECT)
    assert run(s, b"i1 IDLE\r\n") == b"+ idling\r\n"
    assert s.pending() == []
    store.account("alice").append(("INBOX",), b"x", internaldate=datetime(2024, 2, 1, tzinfo=timezone.utc))
    assert s.pending() == [b"* 4 EXISTS\r\n", b"* 4 RECENT\r\n"]
    assert run(s, b"DONE\r\n") == b"i1 OK Idle completed" + T.encode() + b"\r\n"


def test_authenticate_plain_with_initial_response_and_with_a_continuation():
    token = base64.b64encode(b"\0alice\0pw")
    out = both(b"a1 AUTHENTICATE PLAIN " + token + b"\r\n")
    assert out.endswith(b"] Logged in\r\n")
    out = both(b"a1 AUTHENTICATE PLAIN\r\n" + token + b"\r\n")
    assert out.startswith(b"+ \r\na1 OK [CAPABILITY ") and out.endswith(b"] Logged in\r\n")
    out = both(b"a1 AUTHENTICATE PLAIN\r\n*\r\na2 AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0no") + b"\r\n")
    assert out == (
        b"+ \r\na1 BAD Authentication aborted by client.\r\n"
        b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    )
    out = both(b"a1 AUTHENTICATE LOGIN\r\n" + base64.b64encode(b"alice") + b"\r\n" + base64.b64encode(b"pw") + b"\r\n")
    assert out.startswith(b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na1 OK [CAPABILITY ") and out.endswith(b"] Logged in\r\n")


def test_starttls_signal_and_capabilities_afterwards():
    s = session()
    out = s.receive_data(b"t1 STARTTLS\r\n")
    assert out == [b"t1 OK Begin TLS negotiation now.\r\n", START_TLS]
    s.tls_started()
    assert b"STARTTLS" not in run(s, b"t2 CAPABILITY\r\n")
    assert run(s, b"t3 STARTTLS\r\n") == b"t3 BAD Error in IMAP command received by server.\r\n"


def test_logout_and_too_many_bad_commands_close():
    s = session()
    assert s.receive_data(b"l1 LOGOUT\r\n") == [
        b"* BYE Logging out\r\n", b"l1 OK Logout completed" + T.encode() + b"\r\n", CLOSE,
    ]
    s = session()
    out = s.receive_data(b"x FOO\r\n" * 25)
    assert out[-2:] == [b"* BYE Too many invalid IMAP commands.\r\n", CLOSE]
    assert sum(1 for o in out if isinstance(o, bytes) and o.startswith(b"x BAD")) == 20


def test_list_patterns_children_and_special_use():
    out = both(b'l1 LIST "" *\r\nl2 LIST "" %\r\nl3 LIST "" ""\r\nl4 LIST Work/ %\r\n', setup=LOGIN)
    lines = out.split(b"\r\n")
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent' in lines
    assert b'* LIST (\\HasChildren) "/" Work' in lines
    assert lines.count(b'* LIST (\\HasNoChildren) "/" Work/2024') == 2  # from l1 and l4, not l2
    assert b'* LIST (\\Noselect) "/" ""' in lines


def test_create_rename_delete_and_modified_utf7_names():
    store = make_store()
    s = session(store=store)
    run(s, LOGIN)
    out = run(s, b"c1 CREATE Entw&APw-rfe\r\nc2 CREATE Sent\r\nc3 RENAME Entw&APw-rfe Done\r\nc4 DELETE INBOX\r\n"
                 b"c5 DELETE Work\r\nc6 LIST \"\" *\r\n")
    assert b"c1 OK Create completed" in out
    assert b"c2 NO [ALREADYEXISTS] Mailbox already exists" in out
    assert b"c3 OK Rename completed" in out and ("Done",) in store.account("alice").folders
    assert b"c4 NO INBOX can't be deleted" in out
    assert b'* LIST (\\Noselect \\HasChildren) "/" Work\r\n' in out


def test_status_items():
    store = make_store()
    uv = store.account("alice").folder(("INBOX",)).uidvalidity
    out = both(b"s1 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)\r\ns2 STATUS INBOX (FOO)\r\n", setup=LOGIN)
    assert b"* STATUS INBOX (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY " in out and b" UNSEEN 2)\r\n" in out
    assert b"s2 BAD Error in IMAP command STATUS: Invalid status item FOO" in out
    assert uv


def test_search_by_date_and_flags():
    out = both(b"q1 UID SEARCH SINCE 2-Jan-2024\r\nq2 SEARCH UNSEEN\r\nq3 SEARCH CHARSET KOI8-R ALL\r\n", setup=SELECT)
    assert b"* SEARCH 2 3\r\nq1 OK Search completed" in out
    assert b"* SEARCH 2 3\r\nq2 OK" in out
    assert b"q3 NO [BADCHARSET (US-ASCII UTF-8)]" in out


def test_courier_names_live_under_the_inbox_prefix():
    out = both(b'l1 LIST "" *\r\nl2 NAMESPACE\r\nl3 SELECT INBOX.Sent\r\nl4 CREATE Other\r\n', setup=LOGIN,
               profile="courier")
    assert b'* LIST (\\HasChildren) "." INBOX\r\n' in out
    assert b'* LIST (\\HasNoChildren) "." INBOX.Work.2024\r\n' in out
    assert b'* NAMESPACE (("INBOX." ".")) NIL NIL\r\n' in out
    assert b"l3 OK [READ-WRITE] Select completed" in out
    assert (b"l4 NO Client tried to access nonexistent namespace. "
            b"(Mailbox name should probably be prefixed with: INBOX.)\r\n") in out


def test_exchange_quirks_case_reserved_names_appendlimit_no_move():
    s = session("exchange")
    assert s.start() == [b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n"]
    assert run(s, LOGIN) == b"a OK LOGIN completed.\r\n"  # no capabilities with it, as Exchange
    assert b" APPENDLIMIT=10485760" in run(s, b"c CAPABILITY\r\n")
    out = run(s, b"c1 CREATE sent\r\nc2 CREATE Files\r\nc3 SELECT sent\r\nc4 MOVE 1 Sent\r\n"
                 b"c5 APPEND INBOX {10485761}\r\nc6 NOOP\r\n")
    assert b"c1 NO Mailbox already exists\r\n" in out
    assert b"c2 NO Folder name is reserved\r\n" in out
    assert b"c3 OK [READ-WRITE] SELECT completed.\r\n" in out
    assert b"c4 BAD Error in IMAP command MOVE: Unknown command" in out
    assert b"c5 NO Maximum size of appendable message has been exceeded\r\nc6 OK" in out


def test_connection_limit_gate_refuses_login():
    s = session(login_gate=lambda user: "NO [UNAVAILABLE] too many")
    assert run(s, LOGIN) == b"a NO [UNAVAILABLE] too many\r\n"
    assert s.state is State.NOT_AUTHENTICATED


@pytest.mark.parametrize("cmd", [b"FETCH 1 ENVELOPE", b"FETCH 1 BODYSTRUCTURE", b"FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]"])
def test_mime_aware_items_come_from_the_message_module(cmd):
    out = both(b"m1 " + cmd + b"\r\n", setup=SELECT)
    assert out.startswith(b"* 1 FETCH (") and b"m1 OK Fetch completed" in out
    if b"HEADER.FIELDS" in cmd:
        assert b"BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: s0\r\n\r\n)" in out


def test_an_internal_error_costs_one_command_not_the_session(monkeypatch):
    s = session()
    run(s, SELECT)
    monkeypatch.setattr("simulators.imap.fetch.render_pieces", lambda *a, **k: 1 / 0)
    out = run(s, b"f1 FETCH 1 FLAGS\r\nf2 NOOP\r\n")
    assert out == (
        b"f1 NO [SERVERBUG] Internal error occurred. Refer to server log for more information.\r\n"
        b"f2 OK NOOP completed" + T.encode() + b"\r\n"
    )


def test_logindisabled_until_tls():
    p = load_profile("generic")
    imap = p.imap.model_copy(update={"capabilities_before_auth": ["IMAP4rev1", "STARTTLS", "LOGINDISABLED"]})
    s = ImapSession(make_store(), p.model_copy(update={"imap": imap}))
    s.start()
    assert run(s, LOGIN) == (
        b"a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
    )
    assert s.receive_data(b"t STARTTLS\r\n")[-1] is START_TLS
    assert run(s, LOGIN).endswith(b"] Logged in\r\n")


def test_flag_changes_by_another_session_arrive_as_untagged_fetch():
    store = make_store()
    one, two = session(store=store), session(store=store)
    run(one, SELECT)
    run(two, SELECT)
    assert b"* 2 FETCH (FLAGS (\\Flagged \\Recent))\r\n" in run(one, b"s STORE 2 +FLAGS (\\Flagged)\r\n")
    run(one, b"f FETCH 3 BODY[]\r\n")
    assert run(one, b"n NOOP\r\n") == b"n OK NOOP completed" + T.encode() + b"\r\n"  # its own changes: told already
    assert run(two, b"n NOOP\r\n") == (
        b"* 2 FETCH (FLAGS (\\Flagged))\r\n* 3 FETCH (FLAGS (\\Seen))\r\nn OK NOOP completed" + T.encode() + b"\r\n"
    )
    run(two, b"i IDLE\r\n")
    run(one, b"s STORE 1 -FLAGS (\\Seen)\r\n")
    assert two.pending() == [b"* 1 FETCH (FLAGS ())\r\n"]
