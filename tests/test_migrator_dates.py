"""migrator.dates: INTERNALDATE, else newest trustworthy Received, else Date — never 'now'."""

from datetime import datetime, timedelta, timezone

import pytest

from migrator.dates import header_values, parse_rfc5322_date, resolve

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
UTC = timezone.utc


def msg(*headers: str, body: str = "body\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def test_internaldate_wins():
    idate = datetime(2020, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    r = resolve(idate, msg("Date: Mon, 3 Jan 2005 10:00:00 +0000"), now=NOW)
    assert (r.instant, r.used, r.detail) == (idate, "internaldate", "")


def test_newest_trustworthy_received_is_used():
    raw = msg(
        "Received: from c by d; Tue, 4 Jan 2005 10:00:00 +0100",
        "Received: from a by b; Tue, 4 Jan 2005 09:59:00 +0100",
        "Date: Mon, 3 Jan 2005 10:00:00 +0000",
    )
    r = resolve(None, raw, now=NOW)
    assert r.used == "received"
    assert r.instant == datetime(2005, 1, 4, 9, 0, tzinfo=UTC)
    assert "no INTERNALDATE" in r.detail


def test_date_after_the_last_semicolon_counts():
    raw = msg("Received: from x (comment; with semicolon) by y; Wed, 5 Jan 2005 10:00:00 -0500")
    assert resolve(None, raw, now=NOW).instant == datetime(2005, 1, 5, 15, 0, tzinfo=UTC)


def test_future_and_ancient_received_are_rejected():
    raw = msg(
        "Received: from a; Tue, 4 Jan 2099 10:00:00 +0000",
        "Received: from b; Tue, 4 Jan 1980 10:00:00 +0000",
        "Received: from c; garbage",
        "Date: Mon, 3 Jan 2005 10:00:00 +0000",
    )
    r = resolve(None, raw, now=NOW)
    assert r.used == "date"
    assert r.instant == datetime(2005, 1, 3, 10, 0, tzinfo=UTC)
    for why in ("in the future", "before 1990", "unparseable"):
        assert why in r.detail


def test_folded_received_and_bare_lf():
    raw = b"Received: from a\n\tby b;\n Thu, 6 Jan 2005 10:00:00 +0000\nSubject: x\n\nbody"
    r = resolve(None, raw, now=NOW)
    assert r.used == "received" and r.instant == datetime(2005, 1, 6, 10, 0, tzinfo=UTC)


def test_future_internaldate_falls_back():
    r = resolve(datetime(2099, 1, 1, tzinfo=UTC), msg("Date: Mon, 3 Jan 2005 10:00:00 +0000"), now=NOW)
    assert r.used == "date" and "INTERNALDATE in the future" in r.detail


@pytest.mark.parametrize(
    "headers, why",
    [
        ((), "no Date header"),
        (("Date: next tuesday",), "unparseable"),
        (("Date: Mon, 3 Jan 2099 10:00:00 +0000",), "in the future"),
        (("Date: Mon, 31 Feb 2005 10:00:00 +0000",), "impossible"),
    ],
)
def test_nothing_usable_gives_none_never_now(headers, why):
    r = resolve(None, msg("Subject: x", *headers), now=NOW)
    assert r.instant is None and r.used == "none"
    assert why in r.detail


def test_two_digit_year_and_missing_zone_are_read_and_noted():
    r = resolve(None, msg("Date: Mon, 3 Jan 05 10:00:00"), now=NOW)
    assert r.used == "date" and r.instant == datetime(2005, 1, 3, 10, 0, tzinfo=UTC)
    assert "two-digit year" in r.detail and "no zone" in r.detail
    assert parse_rfc5322_date("3 Jan 99 10:00 GMT")[0] == datetime(1999, 1, 3, 10, 0, tzinfo=UTC)


def test_zone_offset_is_kept():
    instant, note = parse_rfc5322_date("Mon, 3 Jan 2005 10:00:00 +0530 (IST)")
    assert instant.utcoffset() == timedelta(hours=5, minutes=30) and note == ""


def test_only_headers_are_read():
    raw = msg("Subject: x", body="Date: Mon, 3 Jan 2005 10:00:00 +0000\r\n")
    assert resolve(None, raw, now=NOW).used == "none"
    assert header_values(b"date: a\r\nX-Date: b\r\nDATE: c\r\n", "Date") == ["a", "c"]
