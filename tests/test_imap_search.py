"""simulators.imap.search: search programs parsed from engine tokens and evaluated over a view."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from simulators.imap.search import SearchSyntaxError, evaluate, parse_search
from simulators.store import MailItem
from tests.test_imap_message_samples import SAMPLES

MINUS5 = timezone(timedelta(hours=-5))
PLUS9 = timezone(timedelta(hours=9))


def item(raw: bytes, uid: int, when: datetime, *flags: str) -> MailItem:
    return MailItem(raw=raw, internaldate=when, flags=set(flags), uid=uid)


VIEW = [
    # index 0
    item(SAMPLES["simple"], 10, datetime(1994, 2, 1, 10, 0, tzinfo=timezone.utc), "\\Seen", "\\Answered"),
    # index 1: 23:30 at -05:00 is already the next day in UTC; the search uses its own date
    item(SAMPLES["alternative"], 11, datetime(2011, 3, 2, 23, 30, tzinfo=MINUS5), "\\Flagged", "$Important"),
    # index 2
    item(SAMPLES["mixed_attachment"], 15, datetime(2021, 6, 10, 0, 30, tzinfo=PLUS9), "\\Deleted", "\\Recent"),
    # index 3
    item(SAMPLES["encoded_words"], 16, datetime(2021, 6, 12, tzinfo=timezone.utc), "\\Recent", "\\Seen"),
    # index 4
    item(SAMPLES["groups"], 20, datetime(2021, 6, 13, tzinfo=timezone.utc), "\\Draft"),
    # index 5: no Date header at all
    item(SAMPLES["missing_headers"], 21, datetime(2021, 6, 14, tzinfo=timezone.utc)),
    # index 6
    item(SAMPLES["folded_and_long"], 30, datetime(2021, 6, 18, tzinfo=timezone.utc), "\\Seen"),
]


def search(*args, charset=None, now=None):
    return evaluate(parse_search(list(args), charset=charset), VIEW, now=now)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["ALL"], [0, 1, 2, 3, 4, 5, 6]),
        (["SEEN"], [0, 3, 6]),
        (["UNSEEN"], [1, 2, 4, 5]),
        (["ANSWERED"], [0]),
        (["UNANSWERED"], [1, 2, 3, 4, 5, 6]),
        (["FLAGGED"], [1]),
        (["unflagged", "undeleted", "undraft"], [0, 3, 5, 6]),
        (["DELETED"], [2]),
        (["DRAFT"], [4]),
        (["KEYWORD", "$important"], [1]),
        (["UNKEYWORD", "$Important"], [0, 2, 3, 4, 5, 6]),
        (["RECENT"], [2, 3]),
        (["NEW"], [2]),
        (["OLD"], [0, 1, 4, 5, 6]),
        (["1:2,5"], [0, 1, 4]),
        (["6:*"], [5, 6]),
        (["*:6"], [5, 6]),
        (["*"], [6]),
        (["UID", "11:16"], [1, 2, 3]),
        (["UID", "*"], [6]),
        (["UID", "25:*"], [6]),
        (["UID", "1:9"], []),
        (["LARGER", "603"], [2]),  # sizes: 367 603 980 369 248 47 275
        (["LARGER", "602"], [1, 2]),
        (["SMALLER", "250"], [4, 5]),
        (["NOT", "SEEN"], [1, 2, 4, 5]),
        (["OR", "DRAFT", "FLAGGED"], [1, 4]),
        (["OR", ["SEEN", "ANSWERED"], "DELETED"], [0, 2]),
        ([["SEEN"], "NOT", ["UID", "30"]], [0, 3]),
    ],
)
def test_flags_sets_sizes_and_logic(args, expected):
    assert search(*args) == expected


def test_sizes_are_raw_byte_counts():
    sizes = [m.size for m in VIEW]
    assert search("LARGER", str(sizes[2] - 1)) == [i for i, s in enumerate(sizes) if s > sizes[2] - 1]
    assert search("SMALLER", str(sizes[4])) == [i for i, s in enumerate(sizes) if s < sizes[4]]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["ON", "2-Mar-2011"], [1]),  # its own zone's date, not UTC's 3-Mar
        (["ON", "3-mar-2011"], []),
        (["SINCE", "10-JUN-2021"], [2, 3, 4, 5, 6]),  # 00:30 +09:00 on the 10th counts as the 10th
        (["BEFORE", "10-Jun-2021"], [0, 1]),
        (["BEFORE", b"1-Feb-1994"], []),
        (["SENTON", "1-Feb-1994"], [0]),
        (["SENTSINCE", "12-Jun-2021"], [3, 4, 6]),  # no Date header → no match
        (["SENTBEFORE", "12-Jun-2021"], [0, 1, 2]),
        (["NOT", "SENTBEFORE", "12-Jun-2021"], [3, 4, 5, 6]),
    ],
)
def test_dates(args, expected):
    assert search(*args) == expected


@pytest.mark.parametrize(
    "args, expected",
    [
        (["SUBJECT", b"hello"], [0]),
        (["SUBJECT", "HELLO"], [0]),
        (["SUBJECT", "grüße".encode()], [3]),  # RFC 2047-decoded
        (["SUBJECT", b"that is folded"], [6]),  # unfolded
        (["FROM", "müller".encode()], [3]),
        (["FROM", b"shop.example"], [1]),
        (["FROM", b"Shop, Inc."], [1]),
        (["TO", b"bob@example.org"], [0]),
        (["CC", b"ben@example.com"], [4]),
        (["BCC", b"eve@"], [0]),
        (["HEADER", b"In-Reply-To", b"parent"], [0]),
        (["HEADER", b"X-Note", b""], [5]),  # empty string: has the header
        (["HEADER", b"message-id", b""], [0, 1, 2, 3, 4, 6]),
        (["BODY", b"plain message"], [0]),
        (["BODY", "— it ships".encode()], [1]),  # quoted-printable decoded
        (["BODY", b"JVBERi0"], []),  # attachments are not text
        (["BODY", b"Hello there"], []),  # the header is not the body
        (["TEXT", b"Hello there"], [0]),
        (["TEXT", b"group body"], [4]),
        (["BODY", "münchen".encode()], [3]),
    ],
)
def test_strings(args, expected):
    assert search(*args, charset="UTF-8") == expected


def test_charset_inside_args_and_us_ascii():
    assert search("CHARSET", "utf-8", "SUBJECT", "grüße".encode()) == [3]
    assert search("SUBJECT", b"hello", charset="us-ascii") == [0]


def test_bad_charset_names_the_supported_ones():
    with pytest.raises(SearchSyntaxError) as info:
        parse_search(["SUBJECT", b"x"], charset="ISO-8859-1")
    assert info.value.badcharset == ("US-ASCII", "UTF-8")
    assert "ISO-8859-1" in str(info.value)


def test_older_younger():
    now = datetime(2021, 6, 18, 12, tzinfo=timezone.utc)
    assert search("YOUNGER", str(13 * 3600), now=now) == [6]
    assert search("OLDER", str(13 * 3600), now=now) == [0, 1, 2, 3, 4, 5]


def test_recent_from_the_sessions_uids():
    # the session knows which UIDs are recent; the items' own flags are then ignored
    assert evaluate(parse_search(["RECENT"]), VIEW, recent={10, 11}) == [0, 1]
    assert evaluate(parse_search(["NEW"]), VIEW, recent={10, 11}) == [1]
    assert evaluate(parse_search(["OLD"]), VIEW, recent=set()) == list(range(len(VIEW)))


def test_uid_star_on_empty_view():
    assert evaluate(parse_search(["UID", "*"]), []) == []


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no search criteria"),
        (["FOO"], "unknown search key 'FOO'"),
        (["SINCE", "31-Feb-2021"], "not a real date"),
        (["SINCE", "2021-06-01"], "not a date like"),
        (["BEFORE"], "BEFORE: missing argument"),
        (["LARGER", "-1"], "not a number"),
        (["UID", "1:x"], "not a sequence set"),
        (["0:3"], "contains 0"),
        (["OR", "SEEN"], "search key: missing argument"),
        ([[]], "empty parenthesised"),
        (["SUBJECT", ["x"]], "expected a string"),
        ([b"loose string"], "unexpected string"),
        (["HEADER", b"Bad:Name", b"x"], "not a header field name"),
        (["CHARSET"], "missing charset"),
    ],
)
def test_syntax_errors_say_what_is_wrong(args, message):
    with pytest.raises(SearchSyntaxError, match=message) as info:
        parse_search(args)
    assert info.value.badcharset is None
