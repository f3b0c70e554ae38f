"""Fuzzing malformed messages: the simulator's MIME reader (ENVELOPE, BODYSTRUCTURE, BODY[section],
SEARCH text) and the engine's identity and date code, on bare LF, NUL bytes, 8-bit headers,
10,000-character lines and broken MIME (unterminated multiparts, bad base64, missing boundaries).

Properties: the IMAP views never raise (a section that cannot exist is ``SectionError``, part of
the contract) and ENVELOPE/BODYSTRUCTURE come out as one balanced IMAP list; identity and date
resolution give a value for any header bytes (``resolve`` reports "none" instead of guessing).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from migrator import dates
from migrator.identity import Identity, identity_of, message_id_of
from simulators.imap import message
from simulators.imap.syntax import tokenize
from tests.fuzz_profiles import fuzz
from tests.fuzz_strategies import garbage

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
MESSAGES = [
    b"From: \"A, B\" <a@example.org>\r\nTo: undisclosed-recipients:;\r\nCc: g: x@y, z@w;\r\n"
    b"Subject: =?utf-8?b?w6TDtg==?= =?iso-8859-1?q?=E4?=\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <1@x>\r\nReceived: from a by b; Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nbody\r\n",
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npre\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nw6Q=\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\n\r\nx\r\n--b2--\r\n"
    b"--b1\r\nContent-Type: application/octet-stream; name*=utf-8''%C3%A4.bin\r\n"
    b"Content-Disposition: attachment; filename=\"a.bin\"\r\nContent-Language: en, de\r\n\r\nAAAA\r\n--b1--\r\nepi\r\n",
    b"Subject: bare lf\nDate: 1 Jan 99 10:00\nReceived: x; 31 Dec 2099 00:00:00 +0000\n\nline\n",
    b"Content-Type: multipart/mixed; boundary=unterminated\r\n\r\n--unterminated\r\nContent-Type: text/plain\r\n\r\nno end",
    b"Content-Type: multipart/related\r\nSubject: \xe4\xf6 8-bit\r\nX-Nul: a\x00b\r\n\r\n--missing-boundary\r\n\r\nx\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n",
    b"Subject: " + b"x" * 10_000 + b"\r\nFrom: " + b"<" * 50 + b"\r\n\r\n" + b"y" * 10_000 + b"\r\n",
]
SECTIONS = [
    ((), None), ((), "HEADER"), ((), "TEXT"), ((1,), None), ((1,), "MIME"), ((2,), "HEADER"), ((2, 1), None),
    ((2, 1), "MIME"), ((3,), "TEXT"), ((1, 1, 1), None), ((4294967295,), None),
]


def assert_one_list(serialised: bytes) -> None:
    """ENVELOPE/BODYSTRUCTURE: one parenthesised list, as a client's parser would read it."""
    tokens = tokenize(serialised)
    assert len(tokens) == 1 and isinstance(tokens[0], list), serialised[:200]


@fuzz("message-views", 100, raw=garbage(MESSAGES, 4), section=st.sampled_from(SECTIONS),
      fields=st.sampled_from([(), ("SUBJECT", "FROM"), ("X-NUL",)]))
def test_message_views_never_raise(raw, section, fields):
    assert_one_list(message.envelope(raw))
    assert_one_list(message.bodystructure(raw))
    assert_one_list(message.bodystructure(raw, extended=False))
    part, text = section
    try:
        data = message.body_section(raw, part, text)
    except message.SectionError:
        assert text == "MIME" and not part
    else:
        assert isinstance(data, bytes) and len(data) <= len(raw)
    for spec in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        if fields:
            assert isinstance(message.body_section(raw, part[:1], spec, fields), bytes)
    assert isinstance(message.full_text(raw), str) and isinstance(message.body_text(raw), str)
    sent = message.sent_date(raw)
    assert sent is None or sent.tzinfo is not None


@fuzz("engine-identity-dates", 100, raw=garbage(MESSAGES, 4), size=st.integers(0, 2**40),
      internaldate=st.sampled_from([None, NOW - timedelta(days=3), NOW + timedelta(days=30), datetime(1980, 1, 1)]))
def test_identity_and_dates_give_values_for_any_header_bytes(raw, size, internaldate):
    identity = identity_of(raw, size)
    assert Identity.parse(str(identity)) == identity
    mid = message_id_of(raw)
    assert mid is None or mid == mid.strip()
    resolved = dates.resolve(internaldate, raw, now=NOW)
    assert resolved.used in ("internaldate", "received", "date", "none")
    assert (resolved.instant is None) == (resolved.used == "none")
    if resolved.instant is not None:
        assert resolved.instant.tzinfo is not None and resolved.instant <= NOW + dates.FUTURE_SLACK


DATES = [
    b"Mon, 1 Jan 2024 10:00:00 +0100", b"1 Jan 99 10:00", b"Tue, 31 Dec 2099 23:59:59 -0000 (UTC)",
    b"Wed, 29 Feb 2023 10:00:00 +0000", b"Thu, 1 Jan 1970 00:00:00 GMT", b"Fri, 01 Jan 2021 25:61:61 +9999",
]


@fuzz("engine-date-texts", 150, text=garbage(DATES, 4))
def test_date_texts_give_an_instant_or_a_reason(text):
    instant, note = dates.parse_rfc5322_date(text.decode("latin-1"))
    assert isinstance(note, str)
    assert instant is None or instant.tzinfo is not None
    best, rejected = dates.newest_received(["from x; " + text.decode("latin-1")], NOW)
    assert best is None or best <= NOW + dates.FUTURE_SLACK
