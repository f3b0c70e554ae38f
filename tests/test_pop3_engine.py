"""Pop3Session: bytes in, bytes out — every case fed whole and byte by byte."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

import pytest

from simulators.pop3.engine import CLOSE, START_TLS, Pop3Session
from simulators.pop3.maildrop import multiline, top, wire_form, wire_size
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
MSG1 = b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n.dot line\r\n..two\r\n"
MSG2 = b"Subject: two\nMessage-ID: <2@x>\n\nbare lf body\nline2\n"
MSG3 = b"Subject: three\r\n\r\nno final newline"


@pytest.fixture
def store() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for raw in (MSG1, MSG2, MSG3):
        account.append(INBOX, raw, internaldate=WHEN)
    return store


def render(outputs) -> bytes:
    return b"".join(o if isinstance(o, bytes) else f"<{o.value}>".encode() for o in outputs)


def run(session: Pop3Session, script: bytes, *, bytewise: bool) -> bytes:
    if not bytewise:
        return render(session.receive_data(script))
    return b"".join(render(session.receive_data(script[i : i + 1])) for i in range(len(script)))


@pytest.fixture(params=["whole", "bytewise"])
def talk(request, store):
    def talk(script: bytes, profile=None, quirks=(), **kw) -> tuple[Pop3Session, bytes]:
        session = Pop3Session(store, profile or load_profile("generic"), quirks, **kw)
        greeting = render(session.start())
        return session, greeting + run(session, script, bytewise=request.param == "bytewise")

    return talk


LOGIN = b"USER alice\r\nPASS secret\r\n"


def test_greeting_capa_before_and_after_login(talk):
    _, out = talk(b"CAPA\r\n" + LOGIN + b"CAPA\r\n")
    assert out == (
        b"+OK Dovecot ready.\r\n"
        b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
        b"+OK\r\n+OK Logged in.\r\n"
        b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n.\r\n"
    )


def test_stat_list_uidl_sizes_count_crlf(talk, store):
    session, out = talk(LOGIN + b"STAT\r\nLIST\r\nLIST 2\r\nUIDL 1\r\n")
    v = store.account("alice").folder(INBOX).uidvalidity
    assert out.split(b"+OK Logged in.\r\n")[1] == (
        b"+OK 3 150\r\n+OK 3 messages:\r\n1 60\r\n2 56\r\n3 34\r\n.\r\n+OK 2 56\r\n"
        + f"+OK 1 00000001{v:08x}\r\n".encode()
    )


def test_retr_byte_stuffs_and_normalises_bare_lf(talk):
    _, out = talk(LOGIN + b"RETR 1\r\nRETR 2\r\nRETR 3\r\n")
    assert out.split(b"+OK Logged in.\r\n")[1] == (
        b"+OK 60 octets\r\nSubject: one\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n..dot line\r\n...two\r\n.\r\n"
        b"+OK 56 octets\r\nSubject: two\r\nMessage-ID: <2@x>\r\n\r\nbare lf body\r\nline2\r\n.\r\n"
        b"+OK 34 octets\r\nSubject: three\r\n\r\nno final newline\r\n.\r\n"
    )


def test_top(talk):
    _, out = talk(LOGIN + b"TOP 1 0\r\nTOP 2 1\r\nTOP 1 100\r\nTOP 1\r\nTOP 1 x\r\n")
    assert out.split(b"+OK Logged in.\r\n")[1] == (
        b"+OK\r\nSubject: one\r\nMessage-ID: <1@x>\r\n\r\n.\r\n"
        b"+OK\r\nSubject: two\r\nMessage-ID: <2@x>\r\n\r\nbare lf body\r\n.\r\n"
        b"+OK\r\nSubject: one\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n..dot line\r\n...two\r\n.\r\n"
        b"-ERR Noise after message number: \r\n-ERR Invalid size: x\r\n"
    )


def test_argument_errors_in_dovecot_words(talk):
    _, out = talk(LOGIN + b"LIST 9\r\nLIST x\r\nLIST 1 2\r\nRETR\r\nRETR 0\r\nFOO\r\n\r\n")
    assert out.split(b"+OK Logged in.\r\n")[1] == (
        b"-ERR There's no message 9.\r\n-ERR Invalid message number: x\r\n"
        b"-ERR Noise after message number:  2\r\n-ERR Invalid message number: \r\n"
        b"-ERR There's no message 0.\r\n-ERR Unknown command: FOO\r\n-ERR Unknown command.\r\n"
    )


def test_dele_rset_and_quit_update_state(talk, store):
    session, out = talk(LOGIN + b"DELE 1\r\nDELE 1\r\nRETR 1\r\nSTAT\r\nRSET\r\nSTAT\r\nDELE 2\r\nQUIT\r\nNOOP\r\n")
    assert out.split(b"+OK Logged in.\r\n")[1] == (
        b"+OK Marked to be deleted.\r\n-ERR Message is deleted.\r\n-ERR Message is deleted.\r\n"
        b"+OK 2 90\r\n+OK\r\n+OK 3 150\r\n+OK Marked to be deleted.\r\n"
        b"+OK Logging out, messages deleted.\r\n<close>"
    )
    assert [m.raw for m in store.account("alice").folder(INBOX).messages] == [MSG1, MSG3]


def test_retrieved_messages_are_seen_after_quit(talk, store):
    talk(LOGIN + b"RETR 2\r\nTOP 3 0\r\nQUIT\r\n")
    assert [("\\Seen" in m.flags) for m in store.account("alice").folder(INBOX).messages] == [False, True, False]


def test_dropped_connection_deletes_nothing(talk, store):
    session, out = talk(LOGIN + b"DELE 1\r\nDELE 2\r\n")
    session.connection_lost()
    assert out.endswith(b"+OK Marked to be deleted.\r\n+OK Marked to be deleted.\r\n")
    assert len(store.account("alice").folder(INBOX).messages) == 3


def test_message_numbers_fixed_for_the_session(talk, store):
    session, _ = talk(LOGIN)
    account = store.account("alice")
    account.append(INBOX, b"Subject: late\r\n\r\nx\r\n", internaldate=WHEN)
    first = account.folder(INBOX).messages[0]
    first.flags.add("\\Deleted")
    account.expunge(INBOX, [first.uid])
    out = render(session.receive_data(b"STAT\r\nRETR 1\r\n"))
    assert out.startswith(b"+OK 3 150\r\n+OK 60 octets\r\n")


def test_login_failures_and_order(talk):
    _, out = talk(b"PASS x\r\nUSER alice\r\nPASS wrong\r\nUSER nobody\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
    assert out == (
        b"+OK Dovecot ready.\r\n-ERR No username given.\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n"
        b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR Unknown command.\r\n+OK Logging out\r\n<close>"
    )


def test_three_unknown_commands_before_login_disconnect(talk):
    _, out = talk(b"FOO\r\nBAR\r\nBAZ\r\nCAPA\r\n")
    assert out == (
        b"+OK Dovecot ready.\r\n-ERR Unknown command.\r\n-ERR Unknown command.\r\n-ERR Unknown command.\r\n"
        b"-ERR Too many invalid bad commands.\r\n<close>"
    )


def test_twenty_errors_in_a_row_after_login_are_tolerated_not_twenty_one(talk):
    _, out = talk(LOGIN + b"RETR 99\r\n" * 20 + b"NOOP\r\n" + b"RETR 99\r\n" * 21)
    assert out.count(b"-ERR There's no message 99.\r\n") == 41
    assert out.endswith(b"+OK\r\n" + b"-ERR There's no message 99.\r\n" * 21 + b"-ERR Too many bad commands.\r\n<close>")


def test_known_commands_reset_the_unknown_count_before_login(talk):
    _, out = talk(b"FOO\r\nBAR\r\nUSER x\r\nBAZ\r\nQUX\r\nCAPA\r\n")
    unknown = b"-ERR Unknown command.\r\n"
    assert out.startswith(b"+OK Dovecot ready.\r\n" + unknown * 2 + b"+OK\r\n" + unknown * 2 + b"+OK\r\nCAPA\r\n")
    assert out.endswith(b"SASL PLAIN LOGIN\r\n.\r\n")  # still connected after four unknown commands


def test_auth_plain_initial_response_and_continuation(talk):
    good = base64.b64encode(b"\0alice\0secret")
    _, out = talk(b"AUTH\r\nAUTH PLAIN " + good + b"\r\nSTAT\r\n")
    assert out == b"+OK Dovecot ready.\r\n+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n+OK Logged in.\r\n+OK 3 150\r\n"
    _, out = talk(b"AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n" + good + b"\r\n")
    assert out == b"+OK Dovecot ready.\r\n+ \r\n-ERR Authentication aborted by client.\r\n+ \r\n+OK Logged in.\r\n"


def test_auth_login_and_unsupported_mechanism(talk):
    _, out = talk(b"AUTH XOAUTH2\r\nAUTH LOGIN\r\n" + base64.b64encode(b"alice") + b"\r\n" + base64.b64encode(b"secret") + b"\r\n")
    assert out == (
        b"+OK Dovecot ready.\r\n-ERR [AUTH] Unsupported authentication mechanism.\r\n"
        b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK Logged in.\r\n"
    )


def xoauth2(user: str, token: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def test_xoauth2_one_and_two_step(talk):
    profile = load_profile("generic")
    profile = profile.model_copy(
        update={"pop3": profile.pop3.model_copy(update={"capabilities_before_auth": ["USER", "SASL PLAIN XOAUTH2"]})}
    )
    _, out = talk(b"AUTH XOAUTH2\r\n" + xoauth2("alice", "secret") + b"\r\nSTAT\r\n", profile)
    assert out == b"+OK Dovecot ready.\r\n+ \r\n+OK Logged in.\r\n+OK 3 150\r\n"
    _, out = talk(b"AUTH XOAUTH2 " + xoauth2("alice", "stale") + b"\r\nAUTH XOAUTH2 " + xoauth2("alice", "secret") + b"\r\n", profile)
    assert out == b"+OK Dovecot ready.\r\n-ERR [AUTH] Authentication failed.\r\n+OK Logged in.\r\n"


def test_apop(talk):
    profile = load_profile("generic")
    profile = profile.model_copy(update={"pop3": profile.pop3.model_copy(update={"apop": True})})
    session, greeting = talk(b"", profile, hostname="sim.test")
    challenge = session.apop_challenge
    assert greeting == f"+OK Dovecot ready. {challenge}\r\n".encode()
    assert challenge.startswith("<") and challenge.endswith("@sim.test>")
    digest = hashlib.md5((challenge + "secret").encode()).hexdigest()
    out = render(session.receive_data(b"APOP alice 0123\r\nAPOP alice " + digest.encode() + b"\r\n"))
    assert out == b"-ERR [AUTH] Authentication failed.\r\n+OK Logged in.\r\n"
    _, out = talk(b"APOP alice x\r\n")
    assert out.endswith(b"-ERR APOP not enabled.\r\n")


def test_stls_signal_drops_pipelined_bytes_and_hides_stls(talk, store):
    # Whole only: bytes arriving after the signal belong to the TLS layer, not to the engine.
    session = Pop3Session(store, load_profile("generic"))
    out = render(session.receive_data(b"STLS\r\nUSER injected\r\n"))
    assert out == b"+OK Begin TLS negotiation now.\r\n<start-tls>"
    session.tls_started()
    out = render(session.receive_data(b"STLS\r\nCAPA\r\n"))
    assert out.startswith(b"-ERR TLS is already active.\r\n+OK\r\n")
    assert b"STLS" not in out.split(b"\r\n", 1)[1]
    assert session.user is None
    _, out = talk(b"STLS\r\n", tls_available=False)
    assert out.endswith(b"-ERR TLS support isn't enabled.\r\n")


def test_timeout_says_why_and_closes(store):
    session = Pop3Session(store, load_profile("generic"))
    assert session.timeout() == [b"-ERR Disconnected for inactivity.\r\n", CLOSE]


@pytest.mark.parametrize(
    "raw, wire",
    [
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\rb\0\xff\n", b"a\rb\0\xff\r\n"),
        (b"\n\r\n\r\r\n\n", b"\r\n\r\n\r\r\n\r\n"),
    ],
)
def test_wire_form_only_fixes_bare_lf(raw, wire):
    assert wire_form(raw) == wire
    assert wire_size(raw) == len(wire)


def test_multiline_stuffing_and_terminator():
    assert multiline(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n.\r\n"
    assert multiline(b"x") == b"x\r\n.\r\n"
    assert multiline(b"") == b".\r\n"
    assert multiline(b"a\r.b\r\n") == b"a\r.b\r\n.\r\n"  # a lone CR starts no line


def test_top_without_body_separator_sends_everything():
    assert top(b"Subject: x\r\n", 0) == b"Subject: x\r\n"
    assert top(b"H: 1\r\n\r\nl1\r\nl2\r\nl3", 2) == b"H: 1\r\n\r\nl1\r\nl2\r\n"


def test_signals_are_distinct():
    assert START_TLS is not CLOSE


def test_line_length_limits_before_and_after_login(talk):
    _, out = talk(b"A" * 1032 + b"\r\n" + b"B" * 1033 + b"\r\nCAPA\r\n")
    assert out == b"+OK Dovecot ready.\r\n-ERR Unknown command.\r\n-ERR Input buffer full, aborting\r\n<close>"
    _, out = talk(LOGIN + b"A" * 2046 + b"\r\n" + b"B" * 2047 + b"\r\nSTAT\r\n")
    assert after_login(out) == (
        b"-ERR Unknown command: " + b"A" * 2046 + b"\r\n-ERR Input line too long.\r\n<close>"
    )


def test_long_auth_lines_are_allowed(talk):
    plain = base64.b64encode(b"\0alice\0secret" + b"\0" * 3000)  # too many parts: refused, not cut
    _, out = talk(b"AUTH PLAIN " + plain + b"\r\nAUTH PLAIN\r\n" + plain + b"\r\n")
    assert out == b"+OK Dovecot ready.\r\n-ERR [AUTH] Authentication failed.\r\n+ \r\n-ERR [AUTH] Authentication failed.\r\n"


def after_login(out: bytes) -> bytes:
    return out.split(b"+OK Logged in.\r\n", 1)[1]
