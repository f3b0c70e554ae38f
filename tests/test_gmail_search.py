"""Gmail's X-GM-RAW search and STORE X-GM-LABELS: the pure query parser, then imapclient's
``gmail_search`` / ``add_gmail_labels`` / ``remove_gmail_labels`` against the gmail profile."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import imapclient
import pytest

from simulators.imap import gmail_search as gs
from simulators.imap.engine import ImapSession
from simulators.imap.gmail import file_message, gmail_layout
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import build_all
from simulators.store import INBOX, MailItem, Store

UTC = timezone.utc
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def mail(n: int, sender: str, to: str, subject: str, body: str = "hello", attachment: bool = False) -> bytes:
    head = f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <m{n}@example.org>\r\n"
    if not attachment:
        return (head + f"\r\n{body}\r\n").encode()
    return (
        head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        '--b\r\nContent-Type: application/pdf; name="q.pdf"\r\nContent-Disposition: attachment; filename="q.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n"
    ).encode()


# --- the pure parser --------------------------------------------------------------------------


def test_parse_builds_the_tree():
    assert gs.parse_query('from:bob subject:"two words" -in:inbox') == gs.AllOf((
        gs.HeaderHas("From", "bob"), gs.HeaderHas("Subject", "two words"), gs.Negated(gs.HasLabel("\\inbox")),
    ))
    assert gs.parse_query("a OR b c") == gs.AllOf((gs.AnyOf((gs.TextHas("a"), gs.TextHas("b"))), gs.TextHas("c")))
    assert gs.parse_query("{a b} -(c d)") == gs.AllOf((
        gs.AnyOf((gs.TextHas("a"), gs.TextHas("b"))), gs.Negated(gs.AllOf((gs.TextHas("c"), gs.TextHas("d")))),
    ))
    assert gs.parse_query("label:My-Work larger:10K older_than:2m") == gs.AllOf((
        gs.HasLabel("my-work"), gs.SizeBound(10240, larger=True), gs.AgeBound(timedelta(days=60), older=True),
    ))
    assert gs.parse_query("after:2024/1/2") == gs.DayBound(datetime(2024, 1, 2).date(), before=False)
    assert gs.parse_query("foo:bar") == gs.TextHas("foo:bar")  # not an operator: a word, as Gmail
    assert gs.label_key("Parent/Child Label") == gs.label_key("parent-child-label") == "parent-child-label"


@pytest.mark.parametrize("query, cause", [
    ('"open', "unbalanced quote"),
    ("a)", "unbalanced ')'"),
    ("(a", "missing ')'"),
    ("{}", "empty {}"),
    ("from:", "from: has no value"),
    ("is:bogus", "is:bogus is not one of unread, read, starred"),
    ("has:drive", "has:drive is not supported (only has:attachment)"),
    ("after:2024/13/01", "'2024/13/01' is not a real date"),
    ("before:yesterday", "'yesterday' is not a date like 2024/03/01"),
    ("older_than:3w", "'3w' is not an age like 3d, 2m or 1y"),
    ("OR a", "OR without a term before it"),
    ("a OR", "OR without a term after it"),
    ("- a", "'-' without a term after it"),
    ("", "empty query"),
])
def test_parse_errors_name_the_query_and_the_cause(query: str, cause: str):
    with pytest.raises(gs.GmailSearchError) as err:
        gs.parse_query(query)
    assert str(err.value) == f"X-GM-RAW {query!r}: {cause}"


def test_terms_test_one_message():
    item = MailItem(raw=mail(1, "Bob <bob@example.org>", "Ann <ann@example.net>", "Quarterly report",
                             body="the figures", attachment=True),
                    internaldate=datetime(2024, 5, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5))), uid=1)
    facts = gs.Facts(lambda: ["\\Inbox", "Parent/Child"], NOW)

    def hit(query: str) -> bool:
        return gs.parse_query(query).test(item, facts)

    assert hit("from:bob@example.org to:ann subject:quarterly has:attachment")
    assert hit('"the figures"') and not hit('"figures the"')
    assert hit("in:inbox label:parent-child -in:sent")
    assert hit("after:2024/05/20 before:2024/05/21")  # INBOX date in its own zone: 20 May
    assert not hit("after:2024/05/21")
    assert hit("newer_than:12d older_than:11d")
    assert hit("nomatch OR figures") and not hit("{nomatch nothing}")
    assert hit("is:unread") and not hit("is:starred")
    assert hit("smaller:1M") and not hit("larger:1M")


def test_facts_ask_for_labels_only_when_a_term_needs_them():
    asked = []
    facts = gs.Facts(lambda: asked.append(1) or ["\\Inbox"], NOW)
    item = MailItem(raw=mail(1, "a@x", "b@y", "s"), internaldate=NOW, uid=1)
    assert gs.parse_query("from:a").test(item, facts) and asked == []
    assert gs.parse_query("in:inbox label:inbox").test(item, facts) and asked == [1]


# --- over IMAP ---------------------------------------------------------------------------------


def gmail_store() -> Store:
    """Four Gmail messages: 1 and 2 in INBOX, 2 also labelled Work, 3 sent, 4 archived."""
    store = Store()
    account = store.add_account("alice", "pw")
    profile = load_profile("gmail")
    gmail_layout(account, profile)
    work = account.create_folder(("Work",))
    inbox, sent = account.folders[INBOX], account.find_special("\\Sent")
    file_message(account, profile, inbox, mail(1, "bob@example.org", "alice@example.net", "Lunch"), {"\\Seen"},
                 datetime(2024, 1, 5, 9, tzinfo=UTC))
    second = file_message(account, profile, inbox, mail(2, "carol@example.org", "alice@example.net", "Quarterly report",
                                                        attachment=True), set(), datetime(2024, 3, 1, 9, tzinfo=UTC))
    account.append(work.path, second.raw, internaldate=second.internaldate, extra=second.extra)
    file_message(account, profile, sent, mail(3, "alice@example.net", "bob@example.org", "Re: Lunch"), {"\\Seen"},
                 datetime(2024, 1, 6, 9, tzinfo=UTC))
    file_message(account, profile, account.find_special("\\All"),
                 mail(4, "news@example.com", "alice@example.net", "Weekly digest"), set(),
                 datetime(2023, 12, 1, 9, tzinfo=UTC))
    return store


@pytest.fixture
def gmail():
    store = gmail_store()
    with SimulatorWorld(store, load_profile("gmail")) as world:
        handle = world.start_imap()
        with imapclient.IMAPClient(handle.host, handle.port, ssl=False, timeout=10) as client:
            client.login("alice", "pw")
            client.select_folder("[Gmail]/All Mail")
            yield client, store


@pytest.mark.parametrize("query, uids", [
    ("in:inbox", [1, 2]),
    ("-in:inbox", [3, 4]),
    ("label:work", [2]),
    ("in:sent", [3]),
    ("from:bob", [1]),
    ("to:bob@example.org", [3]),
    ("subject:lunch", [1, 3]),
    ('subject:"quarterly report" has:attachment', [2]),
    ("after:2024/01/01 before:2024/01/06", [1]),
    ("older:2024/01/01", [4]),
    ("is:unread -in:sent", [2, 4]),
    ("lunch OR digest", [1, 3, 4]),
    ("-{lunch digest}", [2]),
    ("in:anywhere", [1, 2, 3, 4]),
])
def test_gmail_search_through_imapclient(gmail, query: str, uids: list[int]):
    client, _store = gmail
    assert client.gmail_search(query) == uids


def session_on(profile_name: str):
    """A logged-in ImapSession with INBOX selected, and a function: command bytes → reply bytes."""
    profile = load_profile(profile_name)
    session = ImapSession(gmail_store(), profile, build_all(profile.quirks, "imap"))
    session.start()

    def send(line: bytes) -> bytes:
        return b"".join(o for o in session.receive_data(line + b"\r\n") if isinstance(o, bytes))

    send(b"a LOGIN alice pw")
    send(b"b SELECT INBOX")
    return send


def test_unparseable_query_and_label_get_gmails_bad():
    send = session_on("gmail")
    assert send(b'c UID SEARCH X-GM-RAW "from:"') == b"c BAD Could not parse command\r\n"
    assert send(b"d SEARCH X-GM-MSGID 1700000000000000001").startswith(b"* SEARCH 2\r\nd OK ")
    assert send(b"e SEARCH X-GM-THRID twelve") == b"e BAD Could not parse command\r\n"
    assert send(b'f STORE 1 +X-GM-LABELS ("a//b")') == b"f BAD Could not parse command\r\n"
    assert send(b"g STORE 1 +X-GM-LABELS.SILENT (Work)").startswith(b"g OK ")  # no FETCH line
    assert send(b"h SEARCH X-GM-LABELS work") == b"* SEARCH 1 2\r\nh OK Search completed (0.001 + 0.000 secs).\r\n"
    send(b"i EXAMINE INBOX")
    assert send(b"j STORE 1 -X-GM-LABELS (Work)") == b"j OK Store ignored with read-only mailbox (0.001 + 0.000 secs).\r\n"
    assert send(b"k SEARCH X-GM-LABELS work") == b"* SEARCH 1 2\r\nk OK Search completed (0.001 + 0.000 secs).\r\n"


def test_other_profiles_know_neither_extension():
    send = session_on("generic")
    assert send(b'c SEARCH X-GM-RAW "in:inbox"') == (
        b"c BAD Error in IMAP command SEARCH: unknown search key 'X-GM-RAW' (0.001 + 0.000 secs).\r\n"
    )
    assert send(b"d STORE 1 +X-GM-LABELS (Work)") == (
        b"d BAD Error in IMAP command STORE: Invalid arguments (0.001 + 0.000 secs).\r\n"
    )


def test_label_store_files_and_unfiles_the_message(gmail):
    client, store = gmail
    account = store.account("alice")
    assert client.add_gmail_labels([1], ["Projects/2024", "Work"]) == {1: ["\\Inbox", "Work", "Projects/2024"]}
    assert [m.raw for m in account.folders[("Projects", "2024")].messages] == [account.folders[INBOX].messages[0].raw]
    assert client.gmail_search("label:projects-2024") == [1]
    # Removing \Inbox archives: the message leaves INBOX and stays in All Mail and its labels.
    assert client.remove_gmail_labels([1, 2], ["\\Inbox"]) == {1: ["Work", "Projects/2024"], 2: ["Work"]}
    client.select_folder("INBOX")
    assert client.search() == []
    client.select_folder("Work")
    assert len(client.search()) == 2
    # Setting replaces: back to INBOX only (Work and Projects/2024 copies gone).
    client.select_folder("[Gmail]/All Mail")
    assert client.set_gmail_labels([1], ["\\Inbox"]) == {1: ["\\Inbox"]}
    assert client.gmail_search("label:work") == [2]
    assert account.folders[("Projects", "2024")].messages == []
    assert len(account.folders[("[Gmail]", "All Mail")].messages) == 4  # All Mail never loses one


def test_non_ascii_label_round_trip(gmail):
    client, store = gmail
    assert client.add_gmail_labels([4], ["Réunions"]) == {4: ["Réunions"]}  # an archived message
    assert [m.uid for m in store.account("alice").folders[("Réunions",)].messages] == [1]
    assert client.gmail_search("label:réunions") == [4]
    assert client.gmail_search("-in:inbox label:RÉUNIONS") == [4]
