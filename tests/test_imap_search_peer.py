"""Peer check: our evaluate() selects the same messages as Dovecot's SEARCH.

The same messages (flags, INTERNALDATE) are loaded into a throwaway Dovecot; each search
program is sent as ``UID SEARCH`` and evaluated by us over the store's view, and the UID sets
must be equal. INTERNALDATEs are at noon UTC and Dovecot runs in UTC here, so Dovecot's
server-zone date and our own-zone date agree (see simulators.imap.search for the difference).
"""

from __future__ import annotations

import dataclasses
import imaplib
from datetime import datetime, timezone

import pytest

from simulators.imap.search import evaluate, parse_search
from simulators.store import MailItem
from tests.test_imap_message_peer import dovecot_inbox
from tests.test_imap_message_samples import SAMPLES

pytestmark = pytest.mark.peer


def noon(y: int, mo: int, d: int) -> datetime:
    return datetime(y, mo, d, 12, tzinfo=timezone.utc)


LOADED = [
    MailItem(SAMPLES["simple"], noon(1994, 2, 1), {"\\Seen", "\\Answered"}),
    MailItem(SAMPLES["alternative"], noon(2011, 3, 2), {"\\Flagged", "$Important"}),
    MailItem(SAMPLES["mixed_attachment"], noon(2021, 6, 10), {"\\Deleted"}),
    MailItem(SAMPLES["nested_rfc822"], noon(2021, 6, 11), {"\\Seen", "$Forwarded"}),
    MailItem(SAMPLES["encoded_words"], noon(2021, 6, 12), {"\\Seen"}),
    MailItem(SAMPLES["groups"], noon(2021, 6, 13), {"\\Draft"}),
    MailItem(SAMPLES["missing_headers"], noon(2021, 6, 14), set()),
    MailItem(SAMPLES["eight_bit_header"], noon(2021, 6, 15), {"\\Seen", "\\Flagged"}),
    MailItem(SAMPLES["awkward_quoting"], noon(2021, 6, 16), set()),
    MailItem(SAMPLES["folded_and_long"], noon(2021, 6, 18), {"\\Answered"}),
    MailItem(SAMPLES["top_level_rfc822"], noon(2021, 6, 17), {"\\Seen"}),
    MailItem(b"Date: not a date at all\r\nSubject: bad date\r\n\r\nx\r\n", noon(2021, 6, 19), set()),
]
# Messages without a usable Date header: Dovecot dates them 1 Jan 1970 for SENT* keys, so they
# match every SENTBEFORE; we follow RFC 3501's reading that there is no sent date to compare.
UNDATED_UIDS = {7, 12}

PROGRAMS = [
    ["ALL"],
    ["SEEN"],
    ["UNSEEN"],
    ["ANSWERED"],
    ["UNANSWERED", "UNDELETED"],
    ["FLAGGED"],
    ["DELETED"],
    ["DRAFT"],
    ["UNDRAFT", "UNFLAGGED"],
    ["KEYWORD", "$Important"],
    ["UNKEYWORD", "$Forwarded"],
    ["RECENT"],
    ["NEW"],
    ["OLD"],
    ["2:4,7"],
    ["9:*"],
    ["UID", "3:5"],
    ["UID", "*"],
    ["LARGER", "500"],
    ["SMALLER", "300"],
    ["NOT", "SEEN"],
    ["OR", "DRAFT", "FLAGGED"],
    ["OR", ["SEEN", "ANSWERED"], "DELETED"],
    ["BEFORE", "10-Jun-2021"],
    ["ON", "12-jun-2021"],
    ["SINCE", "15-JUN-2021"],
    ["SENTON", "1-Feb-1994"],
    ["SENTSINCE", "13-Jun-2021"],
    ["SUBJECT", b"hello"],
    ["SUBJECT", b"THERE"],
    ["SUBJECT", b"that is folded"],
    ["SUBJECT", b"quoted"],
    ["FROM", b"alice"],
    ["FROM", b"Shop"],
    ["TO", b"bob@example.org"],
    ["CC", b"ben"],
    ["BCC", b"eve"],
    ["HEADER", b"In-Reply-To", b"parent"],
    ["HEADER", b"X-Note", b""],
    ["HEADER", b"Message-ID", b"example.com"],
    ["BODY", b"plain message"],
    ["BODY", b"see attachment"],
    ["BODY", b"inner html"],
    ["BODY", b"Hello there"],
    ["TEXT", b"Hello there"],
    ["TEXT", b"group body"],
    ["TEXT", b"inner subject"],
    ["BODY", b"no final newline"],
    [["SEEN"], "NOT", ["UID", "1"]],
    ["TEXT", b"quoted-printable"],
    ["TEXT", b"JVBERi0"],
    ["BODY", b"JVBERi0"],
    ["TEXT", b"The report"],
    ["BODY", b"inner plain"],
    ["TEXT", b"layer"],
    ["HEADER", b"Content-Type", b"multipart"],
    ["SUBJECT", b""],
    ["FROM", b"MISSING"],
    ["FROM", b"Doe, \"Johnny\""],
]
# Non-ASCII strings go as a literal with CHARSET UTF-8 (imaplib sends one literal, last).
UTF8_PROGRAMS = [
    ("SUBJECT", "grüße"),
    ("FROM", "jürgen"),
    ("BODY", "münchen"),
    ("BODY", "— it ships"),
    ("SUBJECT", "ohne kodierung"),
]


def imap_text(tokens: list) -> str:
    out = []
    for t in tokens:
        if isinstance(t, list):
            out.append("(" + imap_text(t) + ")")
        elif isinstance(t, bytes):
            out.append('"' + t.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            out.append(t)
    return " ".join(out)


def uids(data: list) -> list[int]:
    return sorted(int(u) for u in data[0].split())


@pytest.fixture(scope="module")
def peer():
    with dovecot_inbox(LOADED) as conn:
        yield conn


@pytest.fixture(scope="module")
def view():
    # Dovecot numbers the loaded messages 1..n
    return [dataclasses.replace(it, uid=i) for i, it in enumerate(LOADED, 1)]


def run(program: list, view: list[MailItem], charset: str | None = None) -> list[int]:
    # Our Dovecot session is the first to see the messages, so all of them are \Recent there.
    hits = evaluate(parse_search(program, charset=charset), view, recent={m.uid for m in view})
    return [view[i].uid for i in hits]


@pytest.mark.parametrize("program", PROGRAMS, ids=imap_text)
def test_search_matches_dovecot(peer: imaplib.IMAP4, view, program):
    typ, data = peer.uid("SEARCH", imap_text(program))
    assert typ == "OK", data
    assert run(program, view) == uids(data)


def test_sentbefore_differs_only_for_undated_messages(peer: imaplib.IMAP4, view):
    typ, data = peer.uid("SEARCH", "SENTBEFORE 12-Jun-2021")
    assert typ == "OK", data
    ours = set(run(["SENTBEFORE", "12-Jun-2021"], view))
    assert ours == {1, 2, 3, 4}
    assert set(uids(data)) == ours | UNDATED_UIDS


@pytest.mark.parametrize("key, text", UTF8_PROGRAMS)
def test_utf8_search_matches_dovecot(peer: imaplib.IMAP4, view, key, text):
    peer.literal = text.encode()
    typ, data = peer.uid("SEARCH", "CHARSET", "UTF-8", key)
    assert typ == "OK", data
    assert run([key, text.encode()], view, charset="UTF-8") == uids(data)


def test_bad_charset_is_refused_by_both(peer: imaplib.IMAP4):
    typ, data = peer.uid("SEARCH", "CHARSET", "X-UNKNOWN", "SUBJECT", '"x"')
    assert typ == "NO" and b"BADCHARSET" in data[0]
    with pytest.raises(ValueError) as info:
        parse_search(["SUBJECT", b"x"], charset="X-UNKNOWN")
    assert info.value.badcharset


def test_simulator_search_equals_dovecot_search(peer: imaplib.IMAP4, view):
    """The same programs through the generic simulator's wire (tokenizer + engine + this module)."""
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import INBOX, Store

    store = Store()
    account = store.add_account("peer", "peer-pw-1")
    for it in LOADED:
        account.append(INBOX, it.raw, flags=it.flags, internaldate=it.internaldate)
    differences = []
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()
        sim = imaplib.IMAP4(handle.host, handle.port)
        try:
            sim.login("peer", "peer-pw-1")
            sim.select("INBOX")
            for program in PROGRAMS:
                text = imap_text(program)
                (_, theirs), (_, ours) = peer.uid("SEARCH", text), sim.uid("SEARCH", text)
                if uids(ours) != uids(theirs):
                    differences.append((text, uids(theirs), uids(ours)))
        finally:
            sim.logout()
    assert not differences
