"""Gmail label semantics (simulators.imap.gmail): X-GM-EXT-1, All Mail, dedup, delete, \\Noselect."""

from __future__ import annotations

from datetime import datetime, timezone

import imapclient

from simulators.fixtures.generator import populate
from simulators.fixtures.spec import FixtureSpec
from simulators.imap.engine import ImapSession
from simulators.imap.gmail import gmail_layout
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import build_all
from simulators.store import Store

WHEN = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
MSG = b"Message-ID: <one@example.net>\r\nSubject: hello\r\n\r\nbody\r\n"
ALL = ("[Gmail]", "All Mail")


def gmail_session(profile: str = "gmail") -> tuple[ImapSession, Store]:
    store = Store()
    account = store.add_account("alice", "pw")
    p = load_profile(profile)
    gmail_layout(account, p)
    account.create_folder(("Work",))
    s = ImapSession(store, p, build_all(p.quirks, "imap"))
    s.start()
    run(s, b"a LOGIN alice pw\r\n")
    return s, store


def run(s: ImapSession, data: bytes) -> bytes:
    return b"".join(o for o in s.receive_data(data) if isinstance(o, bytes))


def append(s: ImapSession, folder: bytes, raw: bytes, tag: bytes = b"p") -> bytes:
    return run(s, tag + b' APPEND "' + folder + b'" {%d+}\r\n' % len(raw) + raw + b"\r\n")


def test_append_files_in_all_mail_with_one_msgid_and_labels():
    s, store = gmail_session()
    assert b"p OK [APPENDUID" in append(s, b"INBOX", MSG)
    account = store.account("alice")
    assert len(account.folders[ALL].messages) == 1
    assert account.folders[ALL].messages[0].extra["gm_msgid"] == account.folders[("INBOX",)].messages[0].extra["gm_msgid"]
    run(s, b"s SELECT INBOX\r\n")
    assert b"c OK" in run(s, b"c COPY 1 Work\r\n")
    out = run(s, b"f FETCH 1 (X-GM-MSGID X-GM-THRID X-GM-LABELS)\r\n")
    assert b'* 1 FETCH (X-GM-MSGID 1700000000000000000 X-GM-THRID 1700000000000000000 X-GM-LABELS (\\Inbox Work))' in out
    run(s, b'e SELECT "[Gmail]/All Mail"\r\n')
    out = run(s, b"f UID FETCH 1:* (X-GM-MSGID)\r\n")
    assert out.count(b"X-GM-MSGID 1700000000000000000") == 1  # one message in All Mail


def test_gmail_items_refused_without_x_gm_ext_1():
    store = Store()
    store.add_account("alice", "pw").append(("INBOX",), MSG, internaldate=WHEN)
    p = load_profile("generic")
    s = ImapSession(store, p, [])
    s.start()
    run(s, b"a LOGIN alice pw\r\nb SELECT INBOX\r\n")
    assert b"f BAD Error in IMAP command FETCH: Unknown parameter: X-GM-MSGID" in run(s, b"f FETCH 1 (X-GM-MSGID)\r\n")


def test_append_dedup_returns_new_uid_and_stores_nothing():
    s, store = gmail_session()
    first = append(s, b"INBOX", MSG, b"p1")
    second = append(s, b"INBOX", MSG, b"p2")
    account = store.account("alice")
    assert first.startswith(b"p1 OK [APPENDUID") and second.startswith(b"p2 OK [APPENDUID")
    uid1, uid2 = (int(r.split(b"]")[0].split()[-1]) for r in (first, second))
    assert uid2 == uid1 + 1
    assert len(account.folders[("INBOX",)].messages) == 1 and len(account.folders[ALL].messages) == 1
    # Into another label folder the same message only gains that label.
    append(s, b"Work", MSG, b"p3")
    assert len(account.folders[("Work",)].messages) == 1 and len(account.folders[ALL].messages) == 1


def test_expunge_in_label_folder_removes_only_the_label():
    s, store = gmail_session()
    append(s, b"INBOX", MSG)
    run(s, b"s SELECT INBOX\r\nt STORE 1 +FLAGS (\\Deleted)\r\n")
    assert b"x OK Expunge completed" in run(s, b"x EXPUNGE\r\n")
    account = store.account("alice")
    assert account.folders[("INBOX",)].messages == [] and len(account.folders[ALL].messages) == 1


def test_expunge_in_trash_removes_every_copy():
    s, store = gmail_session()
    append(s, b"INBOX", MSG)
    run(s, b"s SELECT INBOX\r\nc COPY 1 \"[Gmail]/Trash\"\r\n")
    run(s, b's2 SELECT "[Gmail]/Trash"\r\nt STORE 1 +FLAGS (\\Deleted)\r\nx EXPUNGE\r\n')
    account = store.account("alice")
    assert all(not f.messages for f in account.folders.values())


def test_noselect_gmail_parent_reply_is_exact():
    s, _ = gmail_session("gmail-de")
    out = run(s, b"s SELECT [Gmail]\r\n")
    assert out == b"s NO [NONEXISTENT] Unknown Mailbox: [Gmail] (now in authenticated state) (Failure)\r\n"


def test_fixture_gmail_labels_over_imapclient():
    store = Store()
    account = store.add_account("alice", "pw")
    profile = load_profile("gmail")
    populate(account, FixtureSpec(seed=3, messages=40, folders=8, gmail_labels=True), profile)
    all_mail = account.folders[ALL].messages
    others = [m for p, f in account.folders.items() if p != ALL for m in f.messages]
    ids_elsewhere = {m.extra["gm_msgid"] for m in others}
    archive_only = [m for m in all_mail if m.extra["gm_msgid"] not in ids_elsewhere]
    assert len(all_mail) == len({m.extra["gm_msgid"] for m in all_mail}) >= 40
    assert archive_only, "the fixture must hold archive-only messages"
    assert len(others) > len(ids_elsewhere), "some messages must carry two labels"
    with SimulatorWorld(store, profile) as world:
        h = world.start_imap()
        with imapclient.IMAPClient(h.host, h.port, ssl=False, timeout=10) as c:
            c.login("alice", "pw")
            c.select_folder("[Gmail]/All Mail", readonly=True)
            data = c.fetch(c.search("ALL"), ["X-GM-MSGID", "X-GM-LABELS"])
    assert {d[b"X-GM-MSGID"] for d in data.values()} == {m.extra["gm_msgid"] for m in all_mail}
    assert sum(1 for d in data.values() if not d[b"X-GM-LABELS"]) == len(archive_only)
