"""SmtpHandler's hooks called directly (no sockets): replies as values, the store as the effect."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiosmtpd.smtp import Envelope, Session

from simulators.quirks import QuirkSpec
from simulators.smtp.handler import QUEUED, TOO_BIG, UNKNOWN_USER, SmtpHandler
from simulators.store import INBOX
from tests.test_smtp_server import T0, FakeClock, profile_with, store  # noqa: F401


class StubLoop:
    def __init__(self):
        self.soon = []

    def call_soon(self, fn, *args):
        self.soon.append(fn)


class StubServer:
    """What the handler uses of aiosmtpd's SMTP protocol object (hashable and weak-referenceable
    by identity, as it is)."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


def client(helo="client.test"):
    session = Session(loop=None)
    session.peer, session.host_name, session.extended_smtp = ("192.0.2.7", 40000), helo, True
    transport = SimpleNamespace(closed=False)
    transport.close = lambda: setattr(transport, "closed", True)
    return StubServer(session=session, transport=transport, loop=StubLoop()), session, Envelope()


def run(coro):
    return asyncio.run(coro)


def test_rcpt_unknown_leaves_the_envelope_alone(store):
    handler = SmtpHandler(store, profile_with())
    server, session, envelope = client()
    assert run(handler.handle_RCPT(server, session, envelope, "nobody@x", [])) == UNKNOWN_USER.format(address="nobody@x")
    assert envelope.rcpt_tos == []
    assert run(handler.handle_RCPT(server, session, envelope, "alice@x", [])) == "250 2.0.0 Ok"
    assert envelope.rcpt_tos == ["alice@x"]


def test_data_delivers_one_copy_per_mailbox_with_one_queue_id(store):
    handler = SmtpHandler(store, profile_with(), clock=FakeClock())
    server, session, envelope = client()
    envelope.mail_from, envelope.rcpt_tos = "b@example.org", ["alice@x", "jörg@y", "alice"]
    envelope.original_content = b"Subject: x\r\n\r\nbody\r\n"
    assert run(handler.handle_DATA(server, session, envelope)) == QUEUED.format(queue_id="0000000001")
    [a] = store.account("alice").folder(INBOX).messages
    [j] = store.account("jörg").folder(INBOX).messages
    assert a.raw.startswith(b"Received: from client.test ([192.0.2.7])\r\n\tby mx.quirkmail.test (quirkmail) with "
                            b"ESMTP id 0000000001\r\n\tfor <alice@x>; Sat, 01 Jun 2024 12:00:00 +0000\r\n")
    assert "for <jörg@y>;".encode() in j.raw and b" id 0000000001\r\n" in j.raw
    assert a.internaldate == j.internaldate == T0
    assert handler.connection(server).messages == 1


def test_size_option_over_the_limit(store):
    handler = SmtpHandler(store, profile_with(max_message_size=10))
    server, session, envelope = client()
    assert run(handler.handle_MAIL(server, session, envelope, "b@x", ["SIZE=11"])) == TOO_BIG
    assert envelope.mail_from is None
    assert run(handler.handle_MAIL(server, session, envelope, "b@x", ["BODY=8BITMIME", "SIZE=10"])) == "250 2.0.0 Ok"
    assert (envelope.mail_from, envelope.mail_options) == ("b@x", ["BODY=8BITMIME", "SIZE=10"])


def test_first_quirk_that_answers_wins_and_421_closes(store):
    quirks = [QuirkSpec(name="smtp-throttle-421", params={"after": 0, "reply": "421 4.7.0 first"}),
              QuirkSpec(name="smtp-size-552", params={"bytes": 1})]
    handler = SmtpHandler(store, profile_with(quirks))
    server, session, envelope = client()
    assert run(handler.handle_MAIL(server, session, envelope, "b@x", ["SIZE=5"])) == "421 4.7.0 first"
    assert len(server.loop.soon) == 1 and not server.transport.closed  # closed after the reply is written
    server.loop.soon[0]()
    assert server.transport.closed


def test_non_421_refusals_keep_the_connection(store):
    handler = SmtpHandler(store, profile_with([QuirkSpec(name="smtp-size-552", params={"bytes": 1})]))
    server, session, envelope = client()
    assert run(handler.handle_MAIL(server, session, envelope, "b@x", ["SIZE=5"])).startswith("552-5.3.4 ")
    assert server.loop.soon == []
