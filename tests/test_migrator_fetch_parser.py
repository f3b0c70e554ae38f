"""migrator.fetch_parser: the fast FETCH reader agrees with imapclient's parser, or declines."""

from datetime import datetime, timedelta, timezone

import pytest
from imapclient.response_parser import parse_fetch_response

from migrator.fetch_parser import parse_fetch

BODY = b"Subject: x\r\n\r\n(not) {3} a ) literal\r\n"
CASES = {
    "body last": [(b'1 (UID 5 FLAGS (\\Seen $UID) INTERNALDATE "03-Jan-2022 10:00:00 -0700" RFC822.SIZE %d BODY[] {%d}' % (len(BODY), len(BODY)), BODY), b")"],
    "body first, items after": [(b"3 (UID 7 BODY[] {%d}" % len(BODY), BODY), b" FLAGS (\\Flagged) RFC822.SIZE 9)"],
    "no literal (sizes)": [b"1 (UID 1 RFC822.SIZE 10)", b"2 (UID 4 RFC822.SIZE 2000)"],
    "body NIL (Exchange non-mail)": [b'2 (UID 6 FLAGS () INTERNALDATE "03-Jan-2022 10:00:00 +0000" BODY[] NIL)'],
    "header fields": [(b"4 (UID 9 RFC822.SIZE 77 BODY[HEADER.FIELDS (MESSAGE-ID DATE)] {8}", b"Date: x\n"), b")"],
}


def comparable(parsed: dict) -> dict:
    return {uid: {k: v for k, v in item.items() if k not in (b"SEQ", b"UID")} for uid, item in parsed.items()}


@pytest.mark.parametrize("name", CASES)
def test_agrees_with_imapclient(name):
    data = CASES[name]
    fast = parse_fetch(data)
    assert fast is not None
    assert comparable(fast) == comparable(parse_fetch_response(data, False, True))


def test_values():
    item = parse_fetch(CASES["body last"])[5]
    assert item[b"BODY[]"] == BODY and item[b"RFC822.SIZE"] == len(BODY)
    assert item[b"FLAGS"] == (b"\\Seen", b"$UID")
    assert item[b"INTERNALDATE"] == datetime(2022, 1, 3, 17, 0, tzinfo=timezone.utc)
    assert item[b"INTERNALDATE"].utcoffset() == timedelta(hours=-7)


@pytest.mark.parametrize(
    "data",
    [
        [(b"1 (UID 5 BODY[] {3}", b"abc"), (b" BODY[TEXT] {1}", b"c"), b")"],  # two literals
        [(b"1 (UID 5 BODY[] {4}", b"abc"), b")"],  # length disagrees
        [(b"1 (UID 5 X-CUSTOM {3}", b"abc"), b")"],  # a literal we did not ask for
        [b" FLAGS (\\Seen))"],  # continuation without a start
        [b"1 (FLAGS (\\Seen))"],  # no UID
        [b'1 (UID 3 INTERNALDATE "yesterday")'],
    ],
)
def test_declines_other_shapes(data):
    assert parse_fetch(data) is None
