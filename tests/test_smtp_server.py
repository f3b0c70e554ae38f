"""The SMTP front over loopback: smtplib and raw bytes against SmtpServer / SimulatorWorld.start_smtp."""

from __future__ import annotations

import smtplib
import socket
import ssl
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.smtp import SmtpServer, SmtpServerError, strip_received
from simulators.xoauth2 import xoauth2_response
from simulators.store import INBOX, Store

T0 = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """The handler's clock, moved by hand: no test sleeps."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Wire:
    """A raw SMTP client: lines out, reply bytes (all lines of a multi-line reply) in."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")

    def reply(self) -> bytes:
        out = b""
        while True:
            line = self.file.readline()
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return out

    def send(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def closed_by_server(self) -> bool:
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def profile_with(quirks=(), **smtp):
    profile = load_profile("generic")
    profile = profile.model_copy(update={"smtp": profile.smtp.model_copy(update=smtp)})
    return profile.with_quirks(list(quirks))


@pytest.fixture
def store():
    s = Store()
    s.add_account("alice", "secret")
    s.add_account("jörg", "geheim")
    return s


@contextmanager
def serving(store, profile=None, clock=None):
    server = SmtpServer(store, profile or profile_with(), clock=clock or FakeClock())
    with server:
        yield server


def inbox(store, user="alice"):
    return store.account(user).folder(INBOX).messages


# Greeting and EHLO ---------------------------------------------------------------------------------


def test_greeting_and_ehlo_bytes(store):
    with serving(store) as server:
        wire = Wire(server.port)
        assert wire.reply() == b"220 mx.quirkmail.test ESMTP quirkmail\r\n"
        assert wire.send(b"EHLO client.test") == (
            b"250-mx.quirkmail.test\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
            b"250 AUTH LOGIN PLAIN XOAUTH2\r\n"
        )
        wire.close()


def test_ehlo_follows_the_profile(store):
    profile = profile_with(hostname="smtp.example.com", banner="ESMTP ready", max_message_size=35882577,
                           auth_mechanisms=["PLAIN"])
    with serving(store, profile) as server, smtplib.SMTP(server.host, server.port) as client:
        code, text = client.ehlo("client.test")
        assert (code, text) == (250, b"smtp.example.com\nSIZE 35882577\n8BITMIME\nSMTPUTF8\nAUTH PLAIN")
        assert client.docmd("AUTH", "LOGIN") == (504, b"5.5.4 Unrecognized authentication type")
    with serving(store, profile_with(auth_mechanisms=[])) as server, smtplib.SMTP(server.host, server.port) as client:
        assert client.ehlo("client.test") == (250, b"mx.quirkmail.test\nSIZE 10240000\n8BITMIME\nSMTPUTF8")


# Delivery --------------------------------------------------------------------------------------------


def test_delivery_received_header_and_internaldate_from_the_clock(store):
    clock = FakeClock(datetime(2024, 6, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))))
    raw = b"From: b@example.org\r\nSubject: hello\r\n\r\nbody\r\n"
    with serving(store, clock=clock) as server, smtplib.SMTP(server.host, server.port,
                                                               local_hostname="client.test") as client:
        assert client.sendmail("b@example.org", ["alice@example.net"], raw) == {}
    [item] = inbox(store)
    assert item.raw == (
        b"Received: from client.test ([127.0.0.1])\r\n"
        b"\tby mx.quirkmail.test (quirkmail) with ESMTP id 0000000001\r\n"
        b"\tfor <alice@example.net>; Sat, 01 Jun 2024 12:00:00 +0000\r\n" + raw
    )
    assert item.internaldate == clock.now
    assert item.flags == set()


def test_8bit_bytes_arrive_exactly(store):
    raw = (
        b"From: b@example.org\r\nSubject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe \xe2\x82\xac\r\n..leading dot stuffed\r\n"
        b"bare\nlf and \xff raw byte\r\n"
    )
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.sendmail("b@example.org", ["alice"], raw, mail_options=["BODY=8BITMIME"])
    assert strip_received(inbox(store)[0].raw) == raw


def test_smtputf8_addresses_and_headers(store):
    raw = "From: Jörg <jörg@example.de>\r\nTo: jörg@example.de\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        client.sendmail("jörg@example.de", ["jörg@example.de"], raw, mail_options=["SMTPUTF8"])
    [item] = inbox(store, "jörg")
    assert strip_received(item.raw) == raw
    assert " with UTF8SMTP id ".encode() in item.raw
    assert "for <jörg@example.de>;".encode() in item.raw


def test_unknown_recipient_gets_550(store):
    with serving(store) as server:
        wire = Wire(server.port)
        wire.reply()
        wire.send(b"EHLO c")
        assert wire.send(b"MAIL FROM:<b@example.org>") == b"250 2.0.0 Ok\r\n"
        assert wire.send(b"RCPT TO:<nobody@example.net>") == (
            b"550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown in local recipient table\r\n"
        )
        assert wire.send(b"DATA") == b"503 Error: need RCPT command\r\n"
        wire.close()
        with smtplib.SMTP(server.host, server.port) as client:
            refused = client.sendmail("b@example.org", ["nobody@example.net", "alice@example.net"], b"S: x\r\n\r\nx\r\n")
    assert refused == {"nobody@example.net": (550, b"5.1.1 <nobody@example.net>: Recipient address rejected: "
                                                    b"User unknown in local recipient table")}
    assert len(inbox(store)) == 1


def test_two_addresses_of_one_mailbox_deliver_one_copy(store):
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.sendmail("b@example.org", ["alice", "alice@example.net", "alice@other.test"], b"S: x\r\n\r\nx\r\n")
    [item] = inbox(store)
    assert b"for <alice>;" in item.raw


def test_queue_ids_count_up(store):
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        replies = []
        for _ in range(3):
            client.mail("b@example.org")
            client.rcpt("alice")
            replies.append(client.data(b"S: x\r\n\r\nx\r\n"))
    assert replies == [(250, f"2.0.0 Ok: queued as {n:010X}".encode()) for n in (1, 2, 3)]


# SIZE ---------------------------------------------------------------------------------------------


def test_size_refused_at_mail_from_and_after_data(store):
    with serving(store, profile_with(max_message_size=1000)) as server:
        wire = Wire(server.port)
        wire.reply()
        assert b"250-SIZE 1000\r\n" in wire.send(b"EHLO c")
        assert wire.send(b"MAIL FROM:<b@example.org> SIZE=1001") == b"552 5.3.4 Message size exceeds fixed limit\r\n"
        assert wire.send(b"MAIL FROM:<b@example.org> SIZE=1000") == b"250 2.0.0 Ok\r\n"
        assert wire.send(b"RCPT TO:<alice>") == b"250 2.0.0 Ok\r\n"
        assert wire.send(b"DATA").startswith(b"354 ")
        wire.sock.sendall(b"x" * 998 + b"\r\n" + b"y" * 10 + b"\r\n.\r\n")  # 1010 bytes: SIZE lied
        assert wire.reply() == b"552 5.3.4 Message size exceeds fixed limit\r\n"
        wire.close()
    assert inbox(store) == []


# AUTH --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
def test_auth_mechanisms(store, mechanism):
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        client.user, client.password = "alice", "secret"
        if mechanism == "XOAUTH2":
            code, text = client.auth("XOAUTH2", lambda challenge=None: xoauth2_response("alice", "secret").decode())
        else:
            code, text = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        client.sendmail("alice@example.net", ["alice"], b"S: x\r\n\r\nx\r\n")
    assert b" with ESMTPA id " in inbox(store)[0].raw


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "XOAUTH2"])
def test_auth_wrong_secret(store, mechanism):
    with serving(store) as server, smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        client.user, client.password = "alice", "wrong"
        if mechanism == "XOAUTH2":
            obj = lambda challenge=None: xoauth2_response("alice", "wrong").decode()  # noqa: E731
        else:
            obj = getattr(client, f"auth_{mechanism.lower()}")
        with pytest.raises(smtplib.SMTPAuthenticationError) as err:
            client.auth(mechanism, obj)
        assert (err.value.smtp_code, err.value.smtp_error) == (
            535, b"5.7.8 Error: authentication failed: authentication failure"
        )


def test_xoauth2_malformed_response(store):
    import base64

    with serving(store) as server:
        wire = Wire(server.port)
        wire.reply()
        wire.send(b"EHLO c")
        blob = base64.b64encode(b"user=alice\x01auth=Basic x\x01\x01")
        assert wire.send(b"AUTH XOAUTH2 " + blob) == (
            b"501 5.5.2 Invalid XOAUTH2 initial response: XOAUTH2 response needs user=... and auth=Bearer <token>\r\n"
        )
        wire.close()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_require_auth(store):
    with serving(store, profile_with(require_auth=True)) as server, smtplib.SMTP(server.host, server.port) as client:
        client.ehlo()
        assert client.mail("b@example.org") == (530, b"5.7.0 Authentication required")
        client.login("alice", "secret")
        assert client.mail("b@example.org") == (250, b"2.0.0 Ok")


# STARTTLS and the world ------------------------------------------------------------------------


def test_world_starttls_with_the_cafile(store):
    with SimulatorWorld(store, profile_with(auth_require_tls=True)) as world:
        handle = world.start_smtp()
        assert (handle.protocol, handle.url("alice")) == ("smtp", f"smtp://alice@127.0.0.1:{handle.port}")
        with smtplib.SMTP(handle.host, handle.port) as client:
            client.ehlo()
            assert client.has_extn("starttls") and not client.has_extn("auth")  # AUTH only after TLS
            client.starttls(context=ssl.create_default_context(cafile=str(world.cafile)))
            client.ehlo()
            assert client.has_extn("auth") and not client.has_extn("starttls")
            client.login("alice", "secret")
            client.sendmail("b@example.org", ["alice"], b"S: x\r\n\r\nx\r\n")
    assert b" with ESMTPSA id " in inbox(store)[0].raw


def test_world_stop_closes_listener_and_connections(store):
    world = SimulatorWorld(store, profile_with())
    handle = world.start_smtp()
    wire = Wire(handle.port)
    assert wire.reply().startswith(b"220 ")
    world.stop()
    assert wire.closed_by_server()
    with pytest.raises(OSError):
        socket.create_connection((handle.host, handle.port), timeout=2)


def test_start_error_is_raised_in_the_caller(store):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SmtpServerError, match=f"cannot listen for SMTP on 127.0.0.1:{port}") as err:
            SmtpServer(store, profile_with(), port=port).start()
        assert isinstance(err.value.__cause__, OSError)


def test_parallel_servers_get_their_own_ports(store):
    with serving(store) as one, serving(store) as two:
        assert one.port != two.port and 0 not in (one.port, two.port)


def test_world_names_the_profile_when_a_quirk_does_not_fit(store):
    from simulators.launcher import LauncherError
    from simulators.quirks import QuirkSpec

    with SimulatorWorld(store, profile_with([QuirkSpec(name="smtp-throttle-421", params={"aftr": 1})])) as world:
        with pytest.raises(LauncherError, match="SMTP server for profile 'generic': quirk 'smtp-throttle-421'"):
            world.start_smtp()
