"""Name, namespace, malformed-reply and content quirks: their reply bytes through the engine."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from simulators.imap.engine import ImapSession
from simulators.profiles import load_profile
from simulators.quirks import QuirkError, QuirkSpec, build_all
from simulators.store import Store

T = b" (0.001 + 0.000 secs)."
LOGIN = b"a LOGIN alice pw\r\n"
WHEN = datetime(2024, 1, 5, 9, 30, tzinfo=timezone.utc)


def session(*quirks: str) -> ImapSession:
    store = Store()
    acc = store.add_account("alice", "pw")
    for path in [("Entwürfe",), ("Old Mail",), ("Work",), ("Work", "2024"), ("a/b",)]:
        acc.create_folder(path)
    acc.append(("INBOX",), b"Subject: x\r\n\r\nbody\r\n", internaldate=WHEN)
    acc.append(("INBOX",), b"Subject: y\r\n\r\nbody 2\r\n", internaldate=WHEN)
    p = load_profile("generic").with_quirks([QuirkSpec.parse(q) for q in quirks])
    s = ImapSession(store, p, build_all(p.quirks, "imap"))
    s.start()
    s.receive_data(LOGIN)
    return s


def run(s: ImapSession, data: bytes) -> bytes:
    return b"".join(o for o in s.receive_data(data) if isinstance(o, bytes))


def test_inbox_namespace_prefix_lists_under_inbox_and_refuses_other_names_in_dovecots_words():
    s = session("inbox-namespace-prefix")
    out = run(s, b'n NAMESPACE\r\nl LIST "" *\r\nc1 CREATE Archive\r\nc2 CREATE INBOX.Archive.2023\r\n')
    assert b'* NAMESPACE (("INBOX." ".")) NIL NIL\r\n' in out
    assert b'* LIST (\\HasNoChildren) "." INBOX.Work.2024\r\n' in out
    assert b'* LIST (\\HasNoChildren) "." "INBOX.Old Mail"\r\n' in out
    assert (b"c1 NO Client tried to access nonexistent namespace. "
            b"(Mailbox name should probably be prefixed with: INBOX.)\r\n") in out
    assert b"c2 OK Create completed" + T in out
    assert ("Archive", "2023") in s.account.folders  # stored without the prefix


def test_hierarchy_delimiter_backslash_is_quoted_and_a_slash_is_just_a_character():
    s = session("hierarchy-delimiter")
    out = run(s, b'l LIST "" *\r\nn NAMESPACE\r\nc CREATE "Work\\\\2025"\r\ns STATUS a/b (MESSAGES)\r\n')
    assert b'* LIST (\\HasNoChildren) "\\\\" "Work\\\\2024"\r\n' in out
    assert b'* LIST (\\HasNoChildren) "\\\\" a/b\r\n' in out
    assert b'* NAMESPACE (("" "\\\\")) NIL NIL\r\n' in out
    assert b"c OK Create completed" + T in out and ("Work", "2025") in s.account.folders
    assert b"* STATUS a/b (MESSAGES 0)\r\n" in out


def test_modified_utf7_names_quirk_lists_raw_utf8_and_takes_both_spellings_back():
    s = session("modified-utf7-names")
    out = run(s, b'l LIST "" *\r\ns1 STATUS Entw&APw-rfe (MESSAGES)\r\ns2 SELECT "Entw\xc3\xbcrfe"\r\n')
    assert b'* LIST (\\HasNoChildren) "/" "Entw\xc3\xbcrfe"\r\n' in out
    assert b'* STATUS "Entw\xc3\xbcrfe" (MESSAGES 0)\r\n' in out
    assert b"s2 OK [READ-WRITE] Select completed" + T in out
    plain = run(session(), b'l LIST "" Entw*\r\n')
    assert b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n' in plain


@pytest.mark.parametrize("kind, command, expected", [
    ("list-missing-quote", b'l LIST "" *\r\n', b'* LIST (\\HasNoChildren) "/" "Old Mail\r\n'),
    ("list-missing-quote", b'l LIST "" *\r\n', b'* LIST (\\HasChildren) "/" "Work\r\n'),
    ("empty-status", b"s STATUS Work (MESSAGES UIDNEXT)\r\n", b"* STATUS Work ()\r\ns OK Status completed"),
    ("nil-string", b"e EXAMINE INBOX\r\nf UID FETCH 2 (UID INTERNALDATE)\r\n",
     b"* 2 FETCH (UID 2 INTERNALDATE NIL)\r\nf OK Fetch completed"),
    ("fetch-extra-item", b"e EXAMINE INBOX\r\nf UID FETCH 1 (UID FLAGS)\r\n",
     b"* 1 FETCH (UID 1 FLAGS (\\Recent) X-SPAM-REPORT {17}\r\nscore=7.5 (spam?))\r\nf OK"),
])
def test_malformed_responses_garble_exactly_the_chosen_reply(kind, command, expected):
    out = run(session(f"malformed-responses:kind={kind}"), command)
    assert expected in out, out


def test_malformed_responses_can_be_narrowed_to_one_folder_or_message():
    out = run(session("malformed-responses:kind=list-missing-quote,folder=Old Mail"), b'l LIST "" *\r\n')
    assert b'"Old Mail\r\n' in out and b'* LIST (\\HasChildren) "/" Work\r\n' in out
    out = run(session("malformed-responses:kind=nil-string,uid=2"), b"e EXAMINE INBOX\r\nf UID FETCH 1:2 INTERNALDATE\r\n")
    assert b'* 1 FETCH (UID 1 INTERNALDATE "05-Jan-2024 09:30:00 +0000")\r\n' in out
    assert b"* 2 FETCH (UID 2 INTERNALDATE NIL)\r\n" in out
    with pytest.raises(QuirkError, match="malformed-responses"):
        session("malformed-responses:kind=garbled")


@pytest.mark.parametrize("quirk, message, reply", [
    ("bare-lf", b"Subject: a\n\nbody\n", b"NO Message contains bare newlines"),
    ("nul-bytes", b"Subject: a\r\n\r\nbo\0dy\r\n", b"NO Message contains NUL characters"),
    ("8bit-headers", "Subject: Grüße\r\n\r\nbody\r\n".encode(), b"NO Message contains non-ASCII characters in headers"),
])
def test_content_quirks_refuse_what_they_name_and_take_the_rest(quirk, message, reply):
    s = session(quirk)
    out = run(s, b"p APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
    assert out == b"p " + reply + b"\r\n"
    fine = b"Subject: fine\r\n\r\n8-bit body \xc3\xbc, short lines\r\n"
    assert run(s, b"q APPEND INBOX {%d+}\r\n%s\r\n" % (len(fine), fine)).startswith(b"q OK [APPENDUID ")
    assert [m.raw for m in s.account.folders[("INBOX",)].messages][-1] == fine
