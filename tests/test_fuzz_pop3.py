"""Fuzzing POP3 on both sides: the simulator's Pop3Session and the migrator's reply parsers.

Session property: any mix of valid and broken lines gets one well-formed reply per line (+OK,
-ERR or a SASL "+ " challenge; multi-line replies end with "."), the session never raises, and a
valid command still works afterwards unless the session closed itself (QUIT, error limits).
Parser property: CAPA/LIST/UIDL/greeting bytes give values or ``ProtocolError``, nothing else.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import strategies as st

from migrator.errors import ProtocolError
from migrator.replies import login_delay_of, pop3_response_code, temporary_login_code
from migrator.sources.pop3 import apop_stamp, parse_capa, parse_listing, parse_sizes
from simulators.pop3.engine import Pop3Session, State
from simulators.quirks import build_all
from simulators.store import INBOX, Store
from tests.fuzz_profiles import fuzz, profile_named
from tests.fuzz_strategies import garbage, lines

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SEEDS = [
    b"CAPA", b"USER alice", b"PASS secret", b"APOP alice 0123456789abcdef0123456789abcdef", b"AUTH",
    b"AUTH PLAIN AGFsaWNlAHNlY3JldA==", b"AUTH LOGIN", b"YWxpY2U=", b"c2VjcmV0", b"AUTH XOAUTH2", b"*", b"=",
    b"STLS", b"STAT", b"LIST", b"LIST 1", b"UIDL", b"UIDL 2", b"RETR 1", b"TOP 2 0", b"TOP 1 10", b"DELE 3",
    b"RSET", b"NOOP", b"QUIT", b"XTND", b"",
]
SEEDS = [s + b"\r\n" for s in SEEDS]
PROFILES = ["generic", "gmail", "m365", "yahoo"]
LOGIN = b"USER alice\r\nPASS secret\r\n"


def make_session(profile: str) -> Pop3Session:
    store = Store()
    account = store.add_account("alice", "secret")
    for raw in (b"Subject: one\r\n\r\nhello\r\n.dot\r\n", b"Subject: two\n\nbare lf\n", b"\x00\xff\r\n\r\n"):
        account.append(INBOX, raw, internaldate=WHEN)
    p = profile_named(profile)
    session = Pop3Session(store, p, build_all(p.quirks, "pop3"), clock=lambda: 1_700_000_000.0)
    session.start()
    return session


def replies_of(outputs: list) -> bytes:
    return b"".join(o for o in outputs if isinstance(o, bytes))


def assert_one_reply_each(out: bytes, line: bytes) -> None:
    assert out.startswith((b"+OK", b"-ERR", b"+ ")) and out.endswith(b"\r\n"), (line, out[:200])
    first, _, rest = out.partition(b"\r\n")
    if rest:  # a multi-line reply (or a reply followed by the closing -ERR)
        assert rest.endswith(b".\r\n") or rest.startswith(b"-ERR"), (line, out[-200:])


@fuzz("pop3-session", 100, profile=st.sampled_from(PROFILES), setup=st.sampled_from([b"", LOGIN]),
      script=st.lists(lines(SEEDS), min_size=1, max_size=8))
def test_session_answers_every_line_and_keeps_serving(profile, setup, script):
    session = make_session(profile)
    session.receive_data(setup)
    for line in script:
        for piece in line.split(b"\n")[:-1]:
            if session.state is State.CLOSED:
                return
            out = replies_of(session.receive_data(piece + b"\n"))
            if session.state is not State.CLOSED or out:
                assert_one_reply_each(out, piece)
    if session.state is not State.CLOSED and not session.in_sasl:
        out = replies_of(session.receive_data(b"CAPA\r\n"))
        assert out.startswith(b"+OK\r\n") and out.endswith(b"\r\n.\r\n"), out


CAPA = b"TOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nLOGIN-DELAY 900\r\nPIPELINING\r\nIMPLEMENTATION x y\r\n"
LISTING = b"1 120\r\n2 4096\r\n3 7\r\n"
UIDL = b"1 000001a2\r\n2 whqtswO00WBw418f9t5JxYwZ\r\n"
GREETINGS = b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n-ERR [LOGIN-DELAY] wait\r\n-ERR [IN-USE] locked\r\n"


def split_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


@fuzz("pop3-reply-parsers", 150, data=garbage([CAPA, LISTING, UIDL, GREETINGS], 4))
def test_reply_parsers_give_values_or_protocol_errors(data):
    caps = parse_capa(split_lines(data))
    assert all(isinstance(k, str) and isinstance(v, list) for k, v in caps.items())
    delay = login_delay_of(caps)
    assert delay is None or delay >= 0
    listing = parse_listing(split_lines(data))
    assert all(isinstance(n, int) and isinstance(v, str) for n, v in listing.items())
    try:
        sizes = parse_sizes(split_lines(data))
    except ProtocolError:
        pass
    else:
        assert all(isinstance(n, int) and isinstance(s, int) and s >= 0 for n, s in sizes.items())
    stamp = apop_stamp(data)
    assert stamp is None or (stamp.startswith(b"<") and stamp.endswith(b">"))
    for line in split_lines(data):
        code = pop3_response_code(line)
        assert code is None or code == code.upper()
        assert temporary_login_code(line) in (None, "LOGIN-DELAY", "IN-USE", "SYS/TEMP")
