"""IMAP quirks: each registered behaviour's reply bytes, through the engine (bytes in, bytes out)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from simulators.imap.engine import CLOSE, ImapSession
from simulators.profiles import load_profile
from simulators.quirks import QuirkError, QuirkSpec, build_all
from simulators.store import Store


def session(*quirks: str, store: Store | None = None, profile: str = "generic", shared=None) -> ImapSession:
    if store is None:
        store = Store()
        acc = store.add_account("alice", "pw")
        acc.create_folder(("Trash",))
        acc.append(("INBOX",), b"Subject: x\r\n\r\nbody\r\n", internaldate=datetime(2024, 1, 5, tzinfo=timezone.utc))
    p = load_profile(profile).with_quirks([QuirkSpec.parse(q) for q in quirks])
    s = ImapSession(store, p, shared if shared is not None else build_all(p.quirks, "imap"))
    s.start()
    return s


def run(s: ImapSession, data: bytes) -> bytes:
    return b"".join(o for o in s.receive_data(data) if isinstance(o, bytes))


LOGIN = b"a LOGIN alice pw\r\n"
T = b" (0.001 + 0.000 secs)."


# (quirk as on the command line, what the client sends after LOGIN, lines the reply must contain)
CASES = [
    ("case-insensitive-folders", b"c1 CREATE trash\r\nc2 CREATE TRASH/sub\r\nc3 STATUS tRaSh (MESSAGES)\r\n",
     [b"c1 NO Mailbox already exists", b"c2 OK Create completed" + T, b"* STATUS tRaSh (MESSAGES 0)"]),
    ("m365-reserved-folders:names=Files|Inbox", b"c1 CREATE files\r\nc2 CREATE Work/Files\r\nc3 RENAME Trash Files\r\n",
     [b"c1 NO Folder name is reserved", b"c2 OK Create completed" + T, b"c3 NO Folder name is reserved"]),
    ("quota-exceeded:bytes=30", b"p1 APPEND INBOX {5+}\r\nhello\r\np2 APPEND INBOX {9+}\r\nhello you\r\n",
     [b"p2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"]),
    ("authenticated-but-not-connected", b"b SELECT INBOX\r\nc LOGOUT\r\n",
     [b"b BAD User is authenticated but not connected.", b"c OK Logout completed" + T]),
    ("id-required", b"b SELECT INBOX\r\nc ID NIL\r\nd SELECT INBOX\r\n",
     [b"b NO SELECT Unsafe Login. Please contact kefu@188.com for help", b"d OK [READ-WRITE] Select completed" + T]),
    ("folder-name-restrictions", b'c1 CREATE " Lead"\r\nc2 CREATE "a  b"\r\nc3 CREATE "x^y"\r\nc4 CREATE "ok name"\r\n',
     [b"c1 NO [CANNOT] Folder contains excess whitespace (Failure)",
      b"c2 NO [CANNOT] Folder contains excess whitespace (Failure)",
      b"c3 NO [CANNOT] Folder name contains a forbidden character (Failure)", b"c4 OK Create completed" + T]),
    ("search-unreliable",
     b"s SELECT INBOX\r\nq1 UID SEARCH SINCE 1-Jan-2024\r\nq2 UID SEARCH ALL\r\nq3 SEARCH NOT (ON 5-Jan-2024)\r\n",
     [b"* SEARCH\r\nq1 OK SEARCH completed.", b"* SEARCH 1\r\nq2 OK Search completed" + T,
      b"* SEARCH\r\nq3 OK SEARCH completed."]),
    ("yahoo-rate-limit:after=1",
     b"s SELECT INBOX\r\nf1 UID FETCH 1 UID\r\nn NOOP\r\nf2 UID FETCH 1 UID\r\nf3 UID FETCH 1 UID\r\n",
     [b"f1 OK Fetch completed" + T, b"f2 NO [LIMIT] UID FETCH Rate limit hit.", b"f3 OK Fetch completed" + T]),
]


@pytest.mark.parametrize("quirk,commands,expected", CASES, ids=[c[0] for c in CASES])
def test_quirk_replies(quirk, commands, expected):
    out = run(session(quirk), LOGIN + commands)
    for line in expected:
        assert b"\r\n" + line + b"\r\n" in out, line


def test_appendlimit_is_advertised_and_refuses_before_the_literal():
    s = session("appendlimit:bytes=100")
    out = run(s, LOGIN)
    assert b" APPENDLIMIT=100]" in out
    out = run(s, b"p1 APPEND INBOX {101}\r\np2 APPEND INBOX {100}\r\n")
    assert out == (
        b"p1 NO [TOOBIG] Mail size is larger than the maximum size allowed by server configuration\r\n"
        b"+ Ready for literal data\r\n"
    )


def test_profile_append_limit_refuses_a_literal_plus_and_skips_its_bytes():
    p = load_profile("generic")
    p = p.model_copy(update={"imap": p.imap.model_copy(update={"append_limit": 10})})
    store = Store()
    store.add_account("alice", "pw")
    s = ImapSession(store, p)
    s.start()
    out = run(s, LOGIN + b"p1 APPEND INBOX {11+}\r\nhello world\r\np2 NOOP\r\n")
    assert b"p1 NO [TOOBIG] " in out and b"p2 OK NOOP" in out
    assert store.account("alice").folder(("INBOX",)).messages == []


def test_gmail_throttled_suffix_is_appended_to_the_reply_text():
    s = session("gmail-throttled-suffix:after=1,times=2")
    out = run(s, LOGIN + b"n1 NOOP\r\nn2 NOOP\r\nn3 SELECT Nope\r\nn4 NOOP\r\n")
    lines = out.split(b"\r\n")
    assert lines[1:5] == [
        b"n1 OK NOOP completed" + T,
        b"n2 OK NOOP completed" + T + b" [THROTTLED]",
        b"n3 NO Mailbox doesn't exist: Nope" + T + b" [THROTTLED]",
        b"n4 OK NOOP completed" + T,
    ]


def test_exchange_bye_after_errors_counts_no_and_bad():
    s = session("exchange-bye-after-errors:errors=3")
    out = s.receive_data(LOGIN + b"e1 SELECT Nope\r\ne2 FOO\r\nn NOOP\r\ne3 SELECT Nope\r\nz NOOP\r\n")
    assert out[-3:] == [b"e3 NO Mailbox doesn't exist: Nope" + T + b"\r\n", b"* BYE Connection closed.\r\n", CLOSE]


def test_exchange_reply_text():
    s = session("exchange-reply-text")
    out = run(s, LOGIN + b"s SELECT INBOX\r\nf FETCH 1 UID\r\nx SELECT Nope\r\n")
    assert out.startswith(b"a OK LOGIN completed.\r\n")
    assert b"\r\ns OK [READ-WRITE] SELECT completed.\r\n" in out
    assert b"\r\nf OK FETCH completed.\r\n" in out
    assert out.endswith(b"x NO Mailbox doesn't exist: Nope" + T + b"\r\n")


def test_exchange_nonmail_folders_over_imap():
    from simulators.store import ItemKind, PimItem

    store = Store()
    acc = store.add_account("alice", "pw")
    acc.create_folder(("Calendar",), folder_class="IPF.Appointment")
    for n in range(2):
        acc.add_item(("Calendar",), PimItem(ItemKind.EVENT, f"ev{n}", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
    s = session("exchange-nonmail-folders-over-imap", store=store)
    out = run(s, LOGIN + b"st STATUS Calendar (MESSAGES)\r\ns SELECT Calendar\r\n"
                 b"p UID FETCH 1:* (UID BODY.PEEK[])\r\nf UID FETCH 2 (BODY[])\r\n")
    assert b"* STATUS Calendar (MESSAGES 2)\r\n" in out and b"* 2 EXISTS\r\n" in out
    assert b"\r\np OK Fetch completed" in out and b"* 1 FETCH (UID 1 BODY[]" not in out
    assert b"* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) BODY[] {" in out
    assert b"Subject: Retrieval using the IMAP4 protocol failed for the following message: 2\r\n" in out


def test_app_password_required_instead_of_authentication_failed():
    s = session("app-password-required")
    out = run(s, b"a LOGIN alice normal-password\r\nb LOGIN alice pw\r\n")
    assert out.startswith(
        b"a NO [ALERT] Application-specific password required: "
        b"https://support.google.com/accounts/answer/185833 (Failure)\r\n"
    )
    assert b"b OK [CAPABILITY " in out


def test_oauth_only_refuses_basic_auth_with_the_command_name():
    s = session("oauth-only")
    assert b"AUTH=XOAUTH2" in run(s, b"c CAPABILITY\r\n")
    out = run(s, b"a LOGIN alice pw\r\nb AUTHENTICATE PLAIN AGFsaWNlAHB3\r\n")
    assert out == b"a NO LOGIN failed.\r\nb NO AUTHENTICATE failed.\r\n"


def test_m365_throttling_counts_commands_per_user_across_sessions():
    p = load_profile("generic").with_quirks([QuirkSpec.parse("m365-throttled-backoff:after=3,times=2,backoff_ms=1500")])
    shared = build_all(p.quirks, "imap")  # one server: its connections share the quirk objects
    store = Store()
    store.add_account("alice", "pw")
    one, two = (session(store=store, shared=shared) for _ in range(2))
    run(one, LOGIN + b"n1 NOOP\r\nn2 NOOP\r\n")
    run(two, LOGIN)
    out = run(two, b"n3 NOOP\r\nn4 NOOP\r\nn5 NOOP\r\nn6 NOOP\r\n")
    assert out.split(b"\r\n")[:4] == [
        b"n3 OK NOOP completed (0.001 + 0.000 secs).",
        b"n4 NO Request is throttled. Suggested Backoff Time: 1500 milliseconds",
        b"n5 NO Request is throttled. Suggested Backoff Time: 1500 milliseconds",
        b"n6 OK NOOP completed (0.001 + 0.000 secs).",
    ]


def test_gmail_special_folders_noselect():
    store = Store()
    acc = store.add_account("alice", "pw")
    acc.create_folder(("[Gmail]", "All Mail"))
    acc.folders[("[Gmail]",)].selectable = False
    s = session("gmail-special-folders", store=store)
    out = run(s, LOGIN + b"s SELECT [Gmail]\r\n")
    assert out.endswith(b"s NO [NONEXISTENT] Unknown Mailbox: [Gmail] (now in authenticated state) (Failure)\r\n")


def test_unknown_quirk_parameters_are_refused():
    with pytest.raises(QuirkError):
        build_all([QuirkSpec.parse("appendlimit:size=3")], "imap")
