"""Fuzzing the migrator's pure reply readers: FETCH data, tagged APPEND replies, throttle and
refusal texts, EWS failures (exchangelib's exceptions with what a server put in them). Each gives a value (or None where its contract says "not mine, fall back") and
never raises anything but the engine's typed ``ProtocolError``."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from exchangelib import errors as ews_errors
from hypothesis import strategies as st

from migrator import backoff, replies
from migrator.collab import throttle
from migrator.fetch_parser import parse_fetch
from migrator.imapconn import capability_value
from migrator.sinks.imap import APPENDUID_SET, expand_uid_set, parse_tagged
from tests.fuzz_profiles import fuzz
from tests.fuzz_strategies import garbage, text

BODY = b"Subject: s\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"
FETCH_HEADS = [
    b'1 (UID 7 FLAGS (\\Seen $Forwarded) INTERNALDATE "01-Jan-2024 10:00:00 +0100" RFC822.SIZE 42 BODY[] {%d}'
    % len(BODY),
    b"2 (UID 8 RFC822.SIZE 42 X-GM-MSGID 1278455344230334865 BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}" % len(BODY),
    b'3 (UID 9 FLAGS () INTERNALDATE "31-Dec-1999 23:59:59 -0000" BODY[] NIL)',
]


@st.composite
def fetch_data(draw) -> list:
    """imaplib's FETCH data: (head, literal) tuples, bare lines and closing ")" elements, mutated."""
    out: list = []
    for _ in range(draw(st.integers(1, 3))):
        head = draw(garbage(FETCH_HEADS, 3))
        if head.rstrip().endswith(b"}") or draw(st.booleans()):
            out.append((head, draw(garbage([BODY], 2))))
            out.append(draw(st.sampled_from([b")", b" UID 7)", b"", b" FLAGS (\\Seen))"])))
        else:
            out.append(head)
    return out


@fuzz("migrator-fetch-parser", 150, data=fetch_data())
def test_fetch_parser_gives_messages_or_none(data):
    parsed = parse_fetch(data)
    if parsed is None:
        return  # the caller falls back to imapclient's complete parser
    for uid, item in parsed.items():
        assert isinstance(uid, int) and item[b"UID"] == uid
        assert item.get(b"INTERNALDATE") is None or isinstance(item[b"INTERNALDATE"], datetime)
        assert isinstance(item.get(b"RFC822.SIZE", 0), int)


TAGGED = [
    b"[APPENDUID 1700000000 5] Append completed.", b"[APPENDUID 1700000000 5:7,9] Append completed.",
    b"[APPENDUID 38505 3955] APPEND completed (0.001 + 0.000 secs).", b"[TRYCREATE] Mailbox doesn't exist: X",
]


@fuzz("migrator-append-replies", 100, data=garbage(TAGGED, 4), expected=st.integers(1, 50))
def test_append_replies_give_results(data, expected):
    result = parse_tagged("OK", [data])
    assert result.uid is None or result.uid >= 0
    m = APPENDUID_SET.search(data)
    if m is not None:
        uids = expand_uid_set(m.group(2).decode(), expected)
        assert uids is None or len(uids) == expected


REFUSALS = [
    b"NO Request is throttled. Suggested Backoff Time: 299609 milliseconds",
    b"NO [ALERT] Too many simultaneous connections. (Failure) [THROTTLED]", b"NO [LIMIT] UID FETCH Rate limit hit.",
    b"421 4.7.0 Try again later, closing connection. please retry in 60 seconds",
    b"552-5.3.4 Your message exceeded Google's message size limits\r\n552 5.3.4 more", b"452 4.2.2 over quota",
    b"-ERR [LOGIN-DELAY] wait 900", b"NO [ALERT] Application-specific password required: x (Failure)",
    b"APPENDLIMIT=35651584", b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled",
]


@fuzz("migrator-refusal-texts", 150, value=text(REFUSALS, 4), attempt=st.integers(0, 10))
def test_refusal_texts_give_verdicts_and_bounded_delays(value, attempt):
    delay = backoff.retry_delay(value, attempt)
    assert delay is None or 0 <= delay <= backoff.MAX_SUGGESTED
    verdict = replies.classify_smtp(value)
    assert verdict.action in (replies.RECONNECT, replies.RETRY_LATER, replies.STOP_RUN, replies.SKIP)
    assert verdict.delay is None or verdict.delay >= 0
    assert backoff.defer_delay(attempt % 4, verdict.delay) is None or verdict.delay is None or verdict.delay <= 30
    assert isinstance(replies.auth_hint(value), str)
    assert replies.temporary_login_code(value) in (None, *replies.TEMPORARY_LOGIN_CODES)
    caps = {value.upper()}
    limit = capability_value(caps, value.upper().partition("=")[0])
    assert limit is None or limit >= 0
    wait = replies.login_delay_of({"LOGIN-DELAY": value.split()})
    assert wait is None or wait >= 0
    uids = expand_uid_set(value, 3)
    assert uids is None or len(uids) == 3


EWS_FAILURES = [ews_errors.ErrorServerBusy, ews_errors.ErrorTimeoutExpired, ews_errors.UnauthorizedError,
                ews_errors.RedirectError, ews_errors.TransportError, ews_errors.ErrorItemNotFound]


@fuzz("migrator-ews-throttle", 150, kind=st.sampled_from(EWS_FAILURES), message=text([b"503 closed connection"], 2),
      back_off=st.none() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True),
      attempt=st.integers(0, 10), before=st.booleans())
def test_ews_failures_give_bounded_non_negative_delays(kind, message, back_off, attempt, before):
    if kind is ews_errors.ErrorServerBusy:
        exc = kind(message, back_off=back_off)
    elif kind is ews_errors.RedirectError:
        exc = kind(url="https://mail.example/" + quote(message))
    else:
        exc = kind(message)
    delay = throttle.retry_delay(exc, attempt, authenticated_before=before)
    assert delay is None or 0 <= delay <= max(throttle.MAX_SUGGESTED, throttle.MAX_DELAY)
