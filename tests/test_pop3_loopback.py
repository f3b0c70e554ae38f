"""The POP3 simulator over loopback with Python's poplib: every command, STLS, POP3S, APOP, AUTH."""

from __future__ import annotations

import base64
import poplib
import ssl
from datetime import datetime, timezone

import pytest

from simulators.launcher import SimulatorWorld
from simulators.pop3.maildrop import wire_form
from simulators.profiles import load_profile
from simulators.store import INBOX, Store

WHEN = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
MESSAGES = [
    b"Subject: one\r\nMessage-ID: <1@x>\r\n\r\nhello\r\n.dot line\r\n",
    b"Subject: two\nMessage-ID: <2@x>\n\nbare lf\n",
    b"Subject: three\r\n\r\n" + b"line\r\n" * 2000,
]


@pytest.fixture
def store() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for raw in MESSAGES:
        account.append(INBOX, raw, internaldate=WHEN)
    return store


def world(store, **pop3):
    profile = load_profile("generic")
    if pop3:
        profile = profile.model_copy(update={"pop3": profile.pop3.model_copy(update=pop3)})
    return SimulatorWorld(store, profile)


def joined(lines: list[bytes]) -> bytes:
    # poplib strips CRLF and undoes the byte-stuffing.
    return b"\r\n".join(lines) + b"\r\n"


def test_every_command_with_stls(store):
    with world(store) as w:
        handle = w.start_pop3()
        assert handle.url("alice") == f"pop3://alice@127.0.0.1:{handle.port}"
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        assert pop.getwelcome() == b"+OK Dovecot ready."
        assert "STLS" in pop.capa()
        pop.stls(ssl.create_default_context(cafile=str(w.cafile)))
        assert "STLS" not in pop.capa()
        pop.user("alice")
        pop.pass_("secret")
        assert pop.stat() == (3, sum(len(wire_form(m)) for m in MESSAGES))
        assert [line.split()[0] for line in pop.list()[1]] == [b"1", b"2", b"3"]
        assert len(pop.uidl()[1]) == 3
        assert joined(pop.retr(1)[1]) == MESSAGES[0]
        assert joined(pop.retr(2)[1]) == MESSAGES[1].replace(b"\n", b"\r\n")
        assert joined(pop.retr(3)[1]) == MESSAGES[2]
        assert pop.top(3, 2)[1] == [b"Subject: three", b"", b"line", b"line"]
        assert pop.noop() == b"+OK"
        pop.dele(1)
        assert pop.rset() == b"+OK"
        pop.dele(2)
        assert pop.quit() == b"+OK Logging out, messages deleted."
    assert [m.raw for m in store.account("alice").folder(INBOX).messages] == [MESSAGES[0], MESSAGES[2]]


def test_implicit_tls(store):
    with world(store) as w:
        handle = w.start_pop3(implicit_tls=True)
        assert handle.url("alice").startswith("pop3s://alice@")
        pop = poplib.POP3_SSL(handle.host, handle.port, context=ssl.create_default_context(cafile=str(w.cafile)), timeout=10)
        assert "STLS" not in pop.capa()
        pop.user("alice")
        pop.pass_("secret")
        assert pop.stat()[0] == 3
        assert pop.quit() == b"+OK Logging out."


def test_apop(store):
    with world(store, apop=True) as w:
        handle = w.start_pop3()
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        assert pop.getwelcome().startswith(b"+OK Dovecot ready. <")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Authentication failed"):
            pop.apop("alice", "wrong")
        assert pop.apop("alice", "secret") == b"+OK Logged in."
        assert pop.stat()[0] == 3
        pop.quit()


def test_auth_plain_both_forms(store):
    with world(store) as w:
        handle = w.start_pop3()
        plain = base64.b64encode(b"\0alice\0secret").decode()
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        assert pop._shortcmd("AUTH PLAIN " + plain) == b"+OK Logged in."
        pop.quit()
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        assert pop._shortcmd("AUTH PLAIN") == b"+ "
        assert pop._shortcmd(plain) == b"+OK Logged in."
        assert pop.stat()[0] == 3
        pop.quit()


def test_xoauth2_two_step_microsoft_form(store):
    with world(store, capabilities_before_auth=["TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER"]) as w:
        handle = w.start_pop3()
        token = base64.b64encode(b"user=alice\x01auth=Bearer secret\x01\x01").decode()
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        assert pop.capa()["SASL"] == ["PLAIN", "XOAUTH2"]
        assert pop._shortcmd("AUTH XOAUTH2") == b"+ "
        assert pop._shortcmd(token) == b"+OK Logged in."
        assert pop.stat()[0] == 3
        pop.quit()


def test_dropped_connection_deletes_nothing(store):
    with world(store) as w:
        handle = w.start_pop3()
        pop = poplib.POP3(handle.host, handle.port, timeout=10)
        pop.user("alice")
        pop.pass_("secret")
        pop.dele(1)
        pop.sock.close()
        second = poplib.POP3(handle.host, handle.port, timeout=10)  # no lock, as Dovecot
        second.user("alice")
        second.pass_("secret")
        assert second.stat()[0] == 3
        second.quit()
    assert len(store.account("alice").folder(INBOX).messages) == 3
