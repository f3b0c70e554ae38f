"""Pure parts of the SMTP front: recipient → account, the Received header, XOAUTH2 parsing."""

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from simulators.xoauth2 import XOAuth2Error, error_challenge, parse_xoauth2, xoauth2_response
from simulators.smtp.delivery import Trace, resolve_recipient, strip_received, with_protocol
from simulators.store import Store


@pytest.fixture
def store():
    s = Store()
    s.add_account("alice", "pw")
    s.add_account("bob@example.org", "pw")
    return s


@pytest.mark.parametrize(
    ("address", "user"),
    [
        ("alice", "alice"),
        ("alice@example.net", "alice"),  # local part names the account
        ("alice@anything.test", "alice"),
        ("bob@example.org", "bob@example.org"),  # the whole address first
        ("bob@example.com", None),  # "bob" is no account
        ("carol@example.net", None),
        ("@example.net", None),
    ],
)
def test_resolve_recipient(store, address, user):
    account = resolve_recipient(store, address)
    assert (account.username if account else None) == user


def test_received_header_bytes():
    when = datetime(2024, 6, 1, 14, 5, 9, tzinfo=timezone(timedelta(hours=2)))
    trace = Trace("client.example", "127.0.0.1", "mx.quirkmail.test", "ESMTPSA", "0000000007", "alice@example.net", when)
    assert trace.header() == (
        b"Received: from client.example ([127.0.0.1])\r\n"
        b"\tby mx.quirkmail.test (quirkmail) with ESMTPSA id 0000000007\r\n"
        b"\tfor <alice@example.net>; Sat, 01 Jun 2024 12:05:09 +0000\r\n"  # the instant, in UTC
    )


def test_received_header_keeps_utf8_recipient():
    trace = Trace("c", "::1", "mx", "UTF8SMTP", "1", "jörg@example.de", datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert "for <jörg@example.de>;".encode() in trace.header()


@pytest.mark.parametrize(
    ("flags", "keyword"),
    [
        ({"extended": False, "tls": False, "authenticated": False, "utf8": False}, "SMTP"),
        ({"extended": True, "tls": False, "authenticated": False, "utf8": False}, "ESMTP"),
        ({"extended": True, "tls": True, "authenticated": False, "utf8": False}, "ESMTPS"),
        ({"extended": True, "tls": False, "authenticated": True, "utf8": False}, "ESMTPA"),
        ({"extended": True, "tls": True, "authenticated": True, "utf8": False}, "ESMTPSA"),
        ({"extended": True, "tls": True, "authenticated": True, "utf8": True}, "UTF8SMTPSA"),
    ],
)
def test_with_protocol(flags, keyword):
    assert with_protocol(**flags) == keyword


def test_strip_received_removes_only_the_first():
    trace = Trace("c", "127.0.0.1", "mx", "ESMTP", "1", "a@b", datetime(2024, 1, 1, tzinfo=timezone.utc))
    original = b"Received: from older\r\n\tby hop; Mon, 1 Jan 2024 00:00:00 +0000\r\nSubject: x\r\n\r\nbody\n\x00\xff"
    assert strip_received(trace.header() + original) == original


def test_xoauth2_round_trip():
    assert parse_xoauth2(xoauth2_response("alice@example.net", "ya29.token")) == ("alice@example.net", "ya29.token")


@pytest.mark.parametrize(
    "blob",
    [b"", b"user=a\x01\x01", b"user=a\x01auth=Basic x\x01\x01", b"auth=Bearer t\x01\x01", b"user\x01auth=Bearer t\x01\x01"],
)
def test_xoauth2_malformed(blob):
    with pytest.raises(XOAuth2Error):
        parse_xoauth2(blob)


def test_error_challenge_is_googles_documented_json():
    challenge = error_challenge()
    # The exact string Google's XOAUTH2 protocol page shows.
    assert challenge == "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K"
    assert json.loads(base64.b64decode(error_challenge("400"))) == {
        "status": "400", "schemes": "bearer mac", "scope": "https://mail.google.com/"
    }


def test_strip_received_finds_ours_below_a_later_hops_lines():
    trace = Trace("c", "127.0.0.1", "mx", "ESMTP", "1", "a@b", datetime(2024, 1, 1, tzinfo=timezone.utc))
    original = b"Subject: x\r\n\r\nbody\r\n"
    later = b"Return-Path: <b@x>\r\nDelivered-To: a@b\r\n"
    assert strip_received(later + trace.header() + original) == later + original
    assert strip_received(original + trace.header()) == original + trace.header()  # not in the body
    foreign = b"Received: from a\r\n\tby b with ESMTP id 1\r\n\tfor <c>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    assert strip_received(foreign + original) == foreign + original  # not ours
