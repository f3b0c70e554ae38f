"""SMTP quirks: each one's reply bytes on the wire, and when it lets mail through again."""

from __future__ import annotations

import base64

import pytest

from simulators.quirks import QuirkError, QuirkSpec, build_all
from simulators.xoauth2 import xoauth2_response
from tests.test_smtp_server import FakeClock, Wire, inbox, profile_with, serving, store  # noqa: F401

MSG = b"Subject: x\r\n\r\nbody\r\n"


def session(server, *commands: bytes) -> tuple[Wire, list[bytes]]:
    wire = Wire(server.port)
    wire.reply()
    wire.send(b"EHLO client.test")
    return wire, [wire.send(c) for c in commands]


def send_message(wire: Wire, rcpt: bytes = b"alice", body: bytes = MSG) -> list[bytes]:
    replies = [wire.send(b"MAIL FROM:<b@example.org>"), wire.send(b"RCPT TO:<" + rcpt + b">")]
    if not replies[-1].startswith(b"250"):
        return replies
    replies.append(wire.send(b"DATA"))
    wire.sock.sendall(body + b".\r\n")
    return [*replies, wire.reply()]


def quirk(name: str, **params) -> QuirkSpec:
    return QuirkSpec(name=name, params=params)


def test_smtp_quirks_are_registered_for_smtp_only():
    names = ["smtp-throttle-421", "smtp-greylist-451", "smtp-size-552", "smtp-auth-disabled-535",
             "smtp-xoauth2-error-continuation"]
    specs = [quirk(n) for n in names] + [quirk("smtp-quota-452", bytes=1)]
    assert [q.name for q in build_all(specs, "smtp")] == names + ["smtp-quota-452"]
    assert build_all(specs, "imap") == []
    with pytest.raises(QuirkError, match="smtp-throttle-421"):
        build_all([quirk("smtp-throttle-421", aftr=3)], "smtp")


def test_throttle_421_closes_after_n_messages(store):
    with serving(store, profile_with([quirk("smtp-throttle-421", after=2)])) as server:
        wire, _ = session(server)
        for _ in range(2):
            assert send_message(wire)[-1].startswith(b"250 2.0.0 Ok: queued as ")
        assert wire.send(b"MAIL FROM:<b@example.org>") == b"421 4.7.0 Try again later, closing connection.\r\n"
        assert wire.closed_by_server()
        wire.close()
        fresh, _ = session(server)  # the count is per connection
        assert send_message(fresh)[-1].startswith(b"250 ")
        fresh.close()
    assert len(inbox(store)) == 3


def test_greylist_451_until_the_delay_has_passed(store):
    store.add_account("carol", "pw")
    clock = FakeClock()
    with serving(store, profile_with([quirk("smtp-greylist-451", delay_seconds=300)]), clock) as server:
        greylist = server.handler.quirks[0]
        wire, _ = session(server)
        deferred = b"451 4.7.1 Greylisting in action, please come back later\r\n"
        assert send_message(wire)[-1] == deferred
        wire.send(b"RSET")
        clock.advance(299)
        assert send_message(wire)[-1] == deferred  # retried too early
        wire.send(b"RSET")
        clock.advance(1)
        assert send_message(wire)[-1].startswith(b"250 2.0.0 Ok: queued as ")
        assert send_message(wire)[-1].startswith(b"250 ")  # the pair stays accepted
        assert send_message(wire, b"carol")[-1] == deferred  # a new pair starts over
        wire.close()
    assert greylist.deferred == 3
    assert len(inbox(store)) == 2


GMAIL_552 = (
    b"552-5.3.4 Your message exceeded Google's message size limits. Please visit\r\n"
    b"552-5.3.4 https://support.google.com/mail/?p=MaxSizeError to view our size\r\n"
    b"552 5.3.4 guidelines. - gsmtp\r\n"
)


def test_size_552_at_mail_from_and_after_data(store):
    with serving(store, profile_with([quirk("smtp-size-552", bytes=100)])) as server:
        wire, replies = session(server, b"MAIL FROM:<b@example.org> SIZE=101")
        assert replies == [GMAIL_552]
        assert send_message(wire, body=b"Subject: big\r\n\r\n" + b"x" * 100 + b"\r\n")[-1] == GMAIL_552
        assert send_message(wire)[-1].startswith(b"250 ")  # small mail still passes
        wire.close()
    assert len(inbox(store)) == 1


GMAIL_452 = (
    b"452-4.2.2 The email account that you tried to reach is over quota. Please direct\r\n"
    b"452-4.2.2 the recipient to\r\n"
    b"452 4.2.2  https://support.google.com/mail/?p=OverQuotaTemp - gsmtp\r\n"
)


def test_quota_452_at_rcpt_when_full_and_after_data_when_it_would_overflow(store):
    store.account("alice").append(("INBOX",), b"x" * 300)
    store.add_account("carol", "pw")
    with serving(store, profile_with([quirk("smtp-quota-452", bytes=300)])) as server:
        wire, _ = session(server)
        assert send_message(wire) == [b"250 2.0.0 Ok\r\n", GMAIL_452]
        wire.send(b"RSET")
        assert send_message(wire, b"carol", b"S: x\r\n\r\n" + b"y" * 300 + b"\r\n")[-1] == GMAIL_452
        assert send_message(wire, b"carol")[-1].startswith(b"250 ")
        wire.close()
    assert len(inbox(store)) == 1 and len(inbox(store, "carol")) == 1


M365_535 = (
    b"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. "
    b"Visit https://aka.ms/smtp_auth_disabled for more information.\r\n"
)


def test_auth_disabled_535_even_for_the_right_password(store):
    plain = base64.b64encode(b"\0alice\0secret")
    token = base64.b64encode(xoauth2_response("alice", "secret"))
    with serving(store, profile_with([quirk("smtp-auth-disabled-535")])) as server:
        wire, replies = session(server, b"AUTH PLAIN " + plain, b"AUTH XOAUTH2 " + token)
        assert replies == [M365_535, M365_535]
        wire.close()


def test_gmail_xoauth2_error_continuation(store):
    bad = base64.b64encode(xoauth2_response("alice", "expired-token"))
    good = base64.b64encode(xoauth2_response("alice", "secret"))
    with serving(store, profile_with([quirk("smtp-xoauth2-error-continuation")])) as server:
        wire, replies = session(server, b"AUTH XOAUTH2 " + bad)
        assert replies == [
            b"334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K\r\n"
        ]
        assert wire.send(b"") == (  # the client's empty line
            b"535-5.7.8 Username and Password not accepted. Learn more at\r\n"
            b"535 5.7.8 https://support.google.com/mail/?p=BadCredentials - gsmtp\r\n"
        )
        assert wire.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong")) == (
            b"535 5.7.8 Error: authentication failed: authentication failure\r\n"  # only XOAUTH2 continues
        )
        assert wire.send(b"AUTH XOAUTH2 " + good) == b"235 2.7.0 Authentication successful\r\n"
        wire.close()


def test_xoauth2_continuation_aborted_with_star(store):
    bad = base64.b64encode(xoauth2_response("alice", "expired-token"))
    with serving(store, profile_with([quirk("smtp-xoauth2-error-continuation")])) as server:
        wire, replies = session(server, b"AUTH XOAUTH2 " + bad)
        assert replies[0].startswith(b"334 ")
        assert wire.send(b"*") == b"501 5.7.0 Auth aborted\r\n"
        assert wire.send(b"NOOP") == b"250 OK\r\n"  # one reply only: nothing left queued
        wire.close()
