"""POP3 quirks: the bytes each one puts on the wire (engine level, no sockets)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from simulators.pop3.engine import Pop3Session
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec, build_all
from simulators.store import INBOX, Store

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
LOGIN = b"USER alice\r\nPASS secret\r\n"


@pytest.fixture
def store() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for i in range(1, 4):
        account.append(INBOX, f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(), internaldate=WHEN)
    return store


def quirks(*specs: str):
    return build_all([QuirkSpec.parse(s) for s in specs], "pop3")


def talk(store, script: bytes, qs, clock=None) -> bytes:
    session = Pop3Session(store, load_profile("generic"), qs, **({"clock": clock} if clock else {}))
    out = session.start() + session.receive_data(script)
    return b"".join(o if isinstance(o, bytes) else f"<{o.value}>".encode() for o in out)


def after_login(out: bytes) -> bytes:
    return out.split(b"+OK Logged in.\r\n", 1)[1]


def test_uidl_missing(store):
    out = talk(store, b"CAPA\r\n" + LOGIN + b"CAPA\r\nUIDL\r\n", quirks("pop3-uidl-missing"))
    assert b"UIDL" not in out.split(b"-ERR")[0]
    assert out.endswith(b"AUTH-RESP-CODE\r\n.\r\n-ERR Unknown command: UIDL\r\n")


def test_uidl_duplicated(store):
    v = store.account("alice").folder(INBOX).uidvalidity
    out = after_login(talk(store, LOGIN + b"UIDL\r\nUIDL 3\r\n", quirks("pop3-uidl-duplicated:messages=1|3")))
    first = f"00000001{v:08x}"
    assert out == f"+OK\r\n1 {first}\r\n2 00000002{v:08x}\r\n3 {first}\r\n.\r\n+OK 3 {first}\r\n".encode()


def test_top_unsupported(store):
    out = talk(store, b"CAPA\r\n" + LOGIN + b"TOP 1 0\r\nCAPA\r\n", quirks("pop3-top-unsupported"))
    assert b"\r\nTOP\r\n" not in out
    assert after_login(out).startswith(b"-ERR Unknown command: TOP\r\n+OK\r\nCAPA\r\nUIDL\r\n")


def test_app_password_required_gmail_reply(store):
    out = talk(store, b"USER alice\r\nPASS normal-password\r\n" + LOGIN, quirks("app-password-required"))
    assert out == (
        b"+OK Dovecot ready.\r\n+OK\r\n"
        b"-ERR [AUTH] Application-specific password required: https://support.google.com/accounts/answer/185833\r\n"
        b"+OK\r\n+OK Logged in.\r\n"
    )


def test_oauth_only_microsoft_replies_and_xoauth2_works(store):
    plain = base64.b64encode(b"\0alice\0secret")
    token = base64.b64encode(b"user=alice\x01auth=Bearer secret\x01\x01")
    out = talk(
        store, b"CAPA\r\n" + LOGIN + b"AUTH PLAIN " + plain + b"\r\nAUTH XOAUTH2\r\n" + token + b"\r\n",
        quirks("oauth-only"),
    )
    assert b"SASL PLAIN LOGIN XOAUTH2\r\n" in out
    assert out.endswith(
        b"+OK\r\n-ERR Logon failure: unknown user name or bad password.\r\n"
        b"-ERR Authentication failure: unknown user name or bad password.\r\n+ \r\n+OK Logged in.\r\n"
    )


def test_delete_on_retrieve(store):
    out = talk(store, LOGIN + b"RETR 2\r\nTOP 3 0\r\nQUIT\r\n", quirks("pop3-delete-on-retrieve"))
    assert out.endswith(b"+OK Logging out, messages deleted.\r\n<close>")
    assert [m.raw for m in store.account("alice").folder(INBOX).messages] == [
        b"Subject: 1\r\n\r\nbody 1\r\n", b"Subject: 3\r\n\r\nbody 3\r\n"
    ]


def test_delete_on_retrieve_without_quit_deletes_nothing(store):
    session = Pop3Session(store, load_profile("generic"), quirks("pop3-delete-on-retrieve"))
    session.receive_data(LOGIN + b"RETR 1\r\n")
    session.connection_lost()
    assert len(store.account("alice").folder(INBOX).messages) == 3


def test_login_delay_with_injected_clock(store):
    now = [1000.0]
    qs = quirks("pop3-login-delay:seconds=60")
    first = talk(store, b"CAPA\r\n" + LOGIN, qs, clock=lambda: now[0])
    assert b"LOGIN-DELAY 60\r\n.\r\n" in first and first.endswith(b"+OK Logged in.\r\n")
    now[0] += 59
    wrong = talk(store, b"USER alice\r\nPASS bad\r\n" + LOGIN, qs, clock=lambda: now[0])
    assert wrong.endswith(
        b"-ERR [AUTH] Authentication failed.\r\n+OK\r\n"
        b"-ERR [LOGIN-DELAY] Attempt to log in within the minimum login delay interval\r\n"
    )
    now[0] += 1
    assert talk(store, LOGIN, qs, clock=lambda: now[0]).endswith(b"+OK Logged in.\r\n")


def test_drop_mid_retr_by_count(store):
    qs = quirks("pop3-drop-mid-retr:after_bytes=20,message=2,times=1")
    out = after_login(talk(store, LOGIN + b"RETR 1\r\nDELE 1\r\nRETR 2\r\nQUIT\r\n", qs))
    full1 = b"+OK 22 octets\r\nSubject: 1\r\n\r\nbody 1\r\n.\r\n"
    assert out == full1 + b"+OK Marked to be deleted.\r\n" + b"+OK 22 octets\r\nSubje<close>"  # 20 bytes
    assert len(store.account("alice").folder(INBOX).messages) == 3  # no QUIT, no UPDATE
    again = after_login(talk(store, LOGIN + b"RETR 2\r\n", qs))
    assert again == b"+OK 22 octets\r\nSubject: 2\r\n\r\nbody 2\r\n.\r\n"  # times=1 is spent


def test_session_lock_in_use_until_the_holder_ends(store):
    qs = quirks("pop3-session-lock")
    profile = load_profile("generic")
    first = Pop3Session(store, profile, qs)
    assert first.receive_data(LOGIN)[-1] == b"+OK Logged in.\r\n"
    second = Pop3Session(store, profile, qs)
    assert second.receive_data(LOGIN)[-1] == b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    first.connection_lost()
    assert second.receive_data(LOGIN)[-1] == b"+OK Logged in.\r\n"
    assert Pop3Session(store, profile, qs).receive_data(b"USER alice\r\nPASS bad\r\n")[-1] == (
        b"-ERR [AUTH] Authentication failed.\r\n"
    )


def test_exchange_profile_with_oauth_only_is_microsofts_pop3(store):
    profile = load_profile("exchange").with_quirks([QuirkSpec.parse("oauth-only")])
    session = Pop3Session(store, profile, build_all(profile.quirks, "pop3"))
    token = base64.b64encode(b"user=alice\x01auth=Bearer secret\x01\x01")
    out = b"".join(session.start() + session.receive_data(b"CAPA\r\n" + LOGIN + b"AUTH XOAUTH2\r\n" + token + b"\r\n"))
    assert out == (
        b"+OK The Microsoft Exchange POP3 service is ready.\r\n"
        b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN XOAUTH2\r\nUSER\r\nSTLS\r\n.\r\n"
        b"+OK\r\n-ERR Logon failure: unknown user name or bad password.\r\n"
        b"+ \r\n+OK User successfully logged on.\r\n"
    )
