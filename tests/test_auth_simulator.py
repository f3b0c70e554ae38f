"""Authentication quirks of the simulators, byte for byte over real TCP (raw sockets), and
imapclient's own ``oauth2_login`` as a real client of AUTHENTICATE XOAUTH2."""

from __future__ import annotations

import base64
import json
import socket
from contextlib import contextmanager
from datetime import datetime, timezone

import imapclient
import pytest

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkError, QuirkSpec, build
from simulators.store import INBOX, Store
from simulators.xoauth2 import xoauth2_response

PASSWORD = "tok-Secret-1"
WHEN = datetime(2024, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
GMAIL_NO = b"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def bearer(token: str, user: str = "alice") -> bytes:
    return b64(xoauth2_response(user, token))


@contextmanager
def served(*quirks: str, profile: str = "generic"):
    store = Store()
    account = store.add_account("alice", PASSWORD)
    account.append(INBOX, b"Subject: hi\r\n\r\nbody\r\n", internaldate=WHEN)
    p = load_profile(profile).with_quirks([QuirkSpec.parse(q) for q in quirks])
    with SimulatorWorld(store, p) as world:
        yield world


class Raw:
    """A line-oriented raw socket client: what it sends and receives are plain bytes."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.greeting = self.line()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first starting with ``prefix``."""
        lines = [self.line()]
        while not lines[-1].startswith(prefix):
            lines.append(self.line())
        return lines

    def close(self) -> None:
        self.sock.close()


def imap(world) -> Raw:
    return Raw(world.start_imap().port)


# IMAP AUTHENTICATE XOAUTH2 ----------------------------------------------------------------------


def test_xoauth2_with_sasl_ir_and_in_two_steps():
    with served("oauth-only") as world:
        handle = world.start_imap()
        c = Raw(handle.port)
        c.send(b"a AUTHENTICATE XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        ok = c.line()
        assert ok.startswith(b"a OK [CAPABILITY IMAP4rev1 ") and ok.endswith(b"] Logged in")
        c.send(b"b SELECT INBOX\r\n")
        assert c.until(b"b ")[-1].startswith(b"b OK [READ-WRITE]")
        c = Raw(handle.port)
        c.send(b"a AUTHENTICATE XOAUTH2\r\n")
        assert c.line() == b"+ "
        c.send(bearer(PASSWORD) + b"\r\n")
        assert c.line().endswith(b"] Logged in")


def test_oauth_only_refuses_basic_auth_and_a_wrong_token_with_microsofts_words():
    with served("oauth-only") as world:
        c = imap(world)
        assert b"AUTH=XOAUTH2" in c.greeting
        c.send(b"a LOGIN alice " + PASSWORD.encode() + b"\r\n")
        assert c.line() == b"a NO LOGIN failed."
        c.send(b"b AUTHENTICATE PLAIN " + b64(b"\0alice\0" + PASSWORD.encode()) + b"\r\n")
        assert c.line() == b"b NO AUTHENTICATE failed."
        c.send(b"c AUTHENTICATE XOAUTH2 " + bearer("not-it") + b"\r\n")
        assert c.line() == b"c NO AUTHENTICATE failed."


def test_oauth_only_with_its_own_token():
    with served("oauth-only:token=ya29.given") as world:
        c = imap(world)
        c.send(b"a AUTHENTICATE XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"a NO AUTHENTICATE failed."
        c.send(b"b AUTHENTICATE XOAUTH2 " + bearer("ya29.given") + b"\r\n")
        assert c.line().endswith(b"] Logged in")


def test_xoauth2_not_advertised_is_an_unsupported_mechanism():
    with served() as world:  # generic: AUTH=PLAIN AUTH=LOGIN only
        c = imap(world)
        c.send(b"a AUTHENTICATE XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"a NO Unsupported authentication mechanism."


def test_malformed_xoauth2_response_is_refused():
    with served("oauth-only") as world:
        c = imap(world)
        c.send(b"a AUTHENTICATE XOAUTH2 " + b64(b"user=alice\x01auth=Basic x\x01\x01") + b"\r\n")
        assert c.line() == b"a NO AUTHENTICATE failed."


def test_imapclient_oauth2_login_against_the_simulator():
    with served("oauth-only") as world:
        handle = world.start_imap()
        with imapclient.IMAPClient(handle.host, port=handle.port, ssl=False, timeout=10) as client:
            client.oauth2_login("alice", PASSWORD)
            assert client.select_folder("INBOX")[b"EXISTS"] == 1
            assert b"MOVE" in client.capabilities()  # the post-login list
        with imapclient.IMAPClient(handle.host, port=handle.port, ssl=False, timeout=10) as client:
            with pytest.raises(imapclient.exceptions.LoginError, match="AUTHENTICATE failed"):
                client.oauth2_login("alice", "wrong")


# xoauth2-error-continuation ----------------------------------------------------------------------

GMAIL_JSON = b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}\n'


def test_error_continuation_holds_the_no_until_the_empty_line():
    with served("xoauth2-error-continuation", profile="gmail") as world:
        c = imap(world)
        c.send(b"a AUTHENTICATE XOAUTH2 " + bearer("expired") + b"\r\n")
        assert c.line() == b"+ " + b64(GMAIL_JSON)
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):  # nothing more until the client answers
            c.line()
        c.sock.settimeout(10)
        c.send(b"\r\n")
        assert c.line() == b"a " + GMAIL_NO
        c.send(b"b AUTHENTICATE XOAUTH2\r\n")  # the two-step form gets the same
        assert c.line() == b"+ "
        c.send(bearer("expired") + b"\r\n")
        assert json.loads(base64.b64decode(c.line()[2:])) == {
            "status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
        c.send(b"*\r\n")  # an abort is still an abort
        assert c.line() == b"b BAD Authentication aborted by client."
        c.send(b"c AUTHENTICATE XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line().endswith(b"] Logged in")


def test_error_continuation_leaves_login_and_plain_alone():
    with served("xoauth2-error-continuation") as world:
        c = imap(world)
        c.send(b"a LOGIN alice wrong\r\n")
        assert c.line() == b"a NO [AUTHENTICATIONFAILED] Authentication failed."
        c.send(b"b AUTHENTICATE PLAIN " + b64(b"\0alice\0wrong") + b"\r\n")
        assert c.line() == b"b NO [AUTHENTICATIONFAILED] Authentication failed."


def test_imapclient_survives_the_error_continuation():
    with served("xoauth2-error-continuation") as world:
        handle = world.start_imap()
        with imapclient.IMAPClient(handle.host, port=handle.port, ssl=False, timeout=10) as client:
            with pytest.raises(imapclient.exceptions.LoginError, match=r"Invalid credentials \(Failure\)"):
                client.oauth2_login("alice", "expired")


# oauth-token-expiry --------------------------------------------------------------------------------


def login_xoauth2(world_port: int, token: str) -> bytes:
    c = Raw(world_port)
    c.send(b"a AUTHENTICATE XOAUTH2 " + bearer(token) + b"\r\n")
    reply = c.line()
    c.close()
    return reply


def test_token_expires_after_n_logins_and_an_issued_token_works():
    with served("oauth-token-expiry:after_logins=2") as world:
        port = world.start_imap().port
        [quirk] = world.quirks("oauth-token-expiry")
        told: list[tuple[str, int | None]] = []
        quirk.watch(lambda user, left: told.append((user, left)))
        assert login_xoauth2(port, PASSWORD).endswith(b"] Logged in")
        assert login_xoauth2(port, PASSWORD).endswith(b"] Logged in")
        assert login_xoauth2(port, PASSWORD) == b"a " + GMAIL_NO
        fresh = quirk.issue("alice")
        assert fresh != PASSWORD
        assert login_xoauth2(port, fresh).endswith(b"] Logged in")
        assert login_xoauth2(port, "ya29.made-up") == b"a " + GMAIL_NO
        assert told == [("alice", 1), ("alice", 0), ("alice", 1)]


def test_token_expires_after_seconds_on_the_quirks_clock():
    quirk = build(QuirkSpec.parse("oauth-token-expiry:after_seconds=3600"))
    now = [1000.0]
    quirk.clock = lambda: now[0]
    account = Store().add_account("alice", PASSWORD)
    assert quirk.oauth_check("imap", "alice", PASSWORD, account) is True
    quirk.oauth_logged_in("imap", "alice", PASSWORD)
    now[0] += 3599
    assert quirk.oauth_check("imap", "alice", PASSWORD, account) is True
    now[0] += 1
    assert quirk.oauth_check("imap", "alice", PASSWORD, account) == GMAIL_NO.decode()
    assert quirk.oauth_check("pop3", "alice", PASSWORD, account) == (
        "-ERR Authentication failure: unknown user name or bad password.")
    other = quirk.issue("bob")
    assert quirk.oauth_check("imap", "alice", other, account) == GMAIL_NO.decode()  # bob's token


def test_expiry_with_the_error_continuation_is_gmails_whole_exchange():
    with served("oauth-token-expiry:after_logins=1", "xoauth2-error-continuation") as world:
        port = world.start_imap().port
        assert login_xoauth2(port, PASSWORD).endswith(b"] Logged in")
        c = Raw(port)
        c.send(b"a AUTHENTICATE XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"+ " + b64(GMAIL_JSON)
        c.send(b"\r\n")
        assert c.line() == b"a " + GMAIL_NO


# capabilities-change-after-auth -------------------------------------------------------------------


def capability_lists(world, login: bytes) -> tuple[set[bytes], set[bytes]]:
    c = imap(world)
    c.send(b"a CAPABILITY\r\n")
    before = set(c.until(b"a OK")[0].split()[2:])
    c.send(login)
    c.until(b"b OK")
    c.send(b"c CAPABILITY\r\n")
    after = set(c.until(b"c OK")[0].split()[2:])
    return before, after


def test_capabilities_change_after_auth_adds_and_removes():
    spec = "capabilities-change-after-auth:appear=XLIST|APPENDLIMIT=5000,disappear=MOVE|IDLE"
    with served(spec) as world:
        before, after = capability_lists(world, b"b LOGIN alice " + PASSWORD.encode() + b"\r\n")
    assert {b"IDLE"} <= before and not {b"XLIST", b"APPENDLIMIT=5000"} & before
    assert {b"XLIST", b"APPENDLIMIT=5000", b"UIDPLUS"} <= after and not {b"MOVE", b"IDLE"} & after


def test_m365_move_appears_after_login_through_the_quirk():
    profile = load_profile("m365")
    assert "MOVE" not in profile.imap.capabilities_after_auth
    assert any(q.name == "capabilities-change-after-auth" for q in profile.quirks)
    with served(profile="m365") as world:
        before, after = capability_lists(world, b"b LOGIN alice " + PASSWORD.encode() + b"\r\n")
    assert b"MOVE" not in before and b"MOVE" in after


def test_capabilities_change_after_auth_on_pop3_capa():
    with served("capabilities-change-after-auth:appear=UIDL|X-EXTRA,disappear=TOP") as world:
        c = Raw(world.start_pop3().port)
        c.send(b"CAPA\r\n")
        before = c.until(b".")
        c.send(b"USER alice\r\nPASS " + PASSWORD.encode() + b"\r\nCAPA\r\n")
        c.until(b"+OK Logged in.")
        after = c.until(b".")
    assert b"TOP" in before and b"X-EXTRA" not in before
    assert b"TOP" not in after and b"X-EXTRA" in after
    assert after.count(b"UIDL") == 1  # already there: not added twice


def test_capability_quirk_parameters_are_checked():
    with pytest.raises(QuirkError, match="capabilities-change-after-auth"):
        build(QuirkSpec.parse("capabilities-change-after-auth:appears=MOVE"))


# POP3 XOAUTH2 ------------------------------------------------------------------------------------


def test_pop3_two_step_xoauth2_and_the_refused_initial_response():
    with served("xoauth2-two-step-pop3", profile="m365") as world:
        c = Raw(world.start_pop3().port)
        c.send(b"CAPA\r\n")
        assert b"SASL PLAIN XOAUTH2" in c.until(b".")
        c.send(b"AUTH XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"-ERR [AUTH] XOAUTH2 takes no initial response: send AUTH XOAUTH2, then the token."
        c.send(b"AUTH XOAUTH2\r\n")
        assert c.line() == b"+ "
        c.send(bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"+OK User successfully logged on."


def test_pop3_two_step_quirk_may_allow_the_initial_response():
    with served("xoauth2-two-step-pop3:initial_response=true") as world:
        c = Raw(world.start_pop3().port)
        c.send(b"AUTH XOAUTH2 " + bearer(PASSWORD) + b"\r\n")
        assert c.line() == b"+OK Logged in."


def test_pop3_token_expiry_uses_microsofts_words():
    with served("oauth-token-expiry:after_logins=1") as world:
        port = world.start_pop3().port
        replies = []
        for _ in range(2):
            c = Raw(port)
            c.send(b"AUTH XOAUTH2\r\n")
            c.line()
            c.send(bearer(PASSWORD) + b"\r\nQUIT\r\n")
            replies.append(c.line())
            c.close()
    assert replies == [b"+OK Logged in.", b"-ERR Authentication failure: unknown user name or bad password."]


def test_oauth_only_and_token_expiry_compose():
    """M365 without basic auth and an expiring token: the expired token gets the words given to
    the expiry quirk, an issued token still logs in although it is not the password."""
    with served("oauth-only", "oauth-token-expiry:after_logins=1,reply=NO AUTHENTICATE failed.", profile="m365") as world:
        port = world.start_imap().port
        assert login_xoauth2(port, PASSWORD) == b"a OK AUTHENTICATE completed."  # Exchange's words
        assert login_xoauth2(port, PASSWORD) == b"a NO AUTHENTICATE failed."
        [quirk] = world.quirks("oauth-token-expiry")
        assert login_xoauth2(port, quirk.issue("alice")) == b"a OK AUTHENTICATE completed."
