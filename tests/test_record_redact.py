"""transcripts.redact: every secret form masked, length kept, whole or split anywhere."""

from __future__ import annotations

import base64
import random
from datetime import datetime, timezone

import pytest

from transcripts import format as tf
from transcripts.redact import Redactor, redact_transcript

C, S = tf.Sender.CLIENT, tf.Sender.SERVER


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def stars(secret: bytes) -> bytes:
    return b"*" * len(secret)


def _feed(protocol: str, conversation, split) -> tuple[list[bytes], int]:
    redactor = Redactor(protocol)
    out = []
    for sender, data in conversation:
        out.append(b"".join(redactor.feed(sender, piece) for piece in split(data)))
    return out, redactor.count


def _check(protocol: str, conversation, expected: list[bytes], count: int) -> None:
    """Whole chunks, byte by byte and at random cuts: the same masked bytes and count."""
    rng = random.Random(7)

    def random_cuts(data: bytes):
        cuts = sorted(rng.sample(range(1, len(data)), min(3, len(data) - 1))) if len(data) > 1 else []
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]

    for split in (lambda d: [d], lambda d: [d[i:i + 1] for i in range(len(d))], random_cuts):
        got, counted = _feed(protocol, conversation, split)
        assert got == expected
        assert counted == count
        assert [len(x) for x in got] == [len(d) for _, d in conversation], "length-preserving"


# IMAP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("login, masked", [
    (b"a1 LOGIN alice s3cret!\r\n", b"a1 LOGIN alice *******\r\n"),
    (b"a1 LOGIN alice =s3cret\r\n", b"a1 LOGIN alice *******\r\n"),
    (b'a1 LOGIN "alice" "pa\\"ss w"\r\n', b'a1 LOGIN "alice" "********"\r\n'),
    (b"a1 login {5+}\r\nalice {6+}\r\nsecret\r\n", b"a1 login {5+}\r\nalice {6+}\r\n******\r\n"),
])
def test_imap_login_atom_quoted_literal_plus(login, masked):
    _check("imap", [(C, login), (S, b"a1 OK LOGIN completed\r\n")], [masked, b"a1 OK LOGIN completed\r\n"], 1)


def test_imap_login_password_literal_arrives_after_the_continuation():
    conversation = [
        (C, b"a1 LOGIN {5}\r\n"), (S, b"+ Ready\r\n"),
        (C, b"alice {6}\r\n"), (S, b"+ Ready\r\n"),
        (C, b"secret"), (C, b"\r\n"), (S, b"a1 OK done\r\n"),
        (C, b"a2 SELECT secret\r\n"),
    ]
    expected = [d for _, d in conversation]
    expected[4] = b"******"
    _check("imap", conversation, expected, 1)


def test_imap_authenticate_plain_inline_and_in_a_continuation():
    ir = b64("\0alice\0s3cret")
    _check("imap", [(C, b"a1 AUTHENTICATE PLAIN " + ir + b"\r\n"), (S, b"a1 OK\r\n"), (C, b"a2 NOOP\r\n")],
           [b"a1 AUTHENTICATE PLAIN " + stars(ir) + b"\r\n", b"a1 OK\r\n", b"a2 NOOP\r\n"], 1)
    _check("imap", [(C, b"a1 AUTHENTICATE PLAIN\r\n"), (S, b"+ \r\n"), (C, ir + b"\r\n"), (S, b"a1 OK\r\n"),
                    (C, b"a2 LIST \"\" *\r\n")],
           [b"a1 AUTHENTICATE PLAIN\r\n", b"+ \r\n", stars(ir) + b"\r\n", b"a1 OK\r\n", b"a2 LIST \"\" *\r\n"], 1)


def test_imap_authenticate_login_keeps_the_user_masks_the_password():
    user, password = b64("alice"), b64("s3cret")
    conversation = [(C, b"a1 AUTHENTICATE LOGIN\r\n"), (S, b"+ VXNlcm5hbWU6\r\n"), (C, user + b"\r\n"),
                    (S, b"+ UGFzc3dvcmQ6\r\n"), (C, password + b"\r\n"), (S, b"a1 OK\r\n")]
    expected = [d for _, d in conversation]
    expected[4] = stars(password) + b"\r\n"
    _check("imap", conversation, expected, 1)


def test_imap_xoauth2_error_continuation_and_the_empty_answer():
    token = b64("user=alice\x01auth=Bearer ya29.tok\x01\x01")
    challenge = b"+ " + b64('{"status":"401","schemes":"Bearer"}') + b"\r\n"
    conversation = [(C, b"a1 AUTHENTICATE XOAUTH2 " + token + b"\r\n"), (S, challenge), (C, b"\r\n"),
                    (S, b"a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"), (C, b"a2 LOGOUT\r\n")]
    expected = [d for _, d in conversation]
    expected[0] = b"a1 AUTHENTICATE XOAUTH2 " + stars(token) + b"\r\n"
    _check("imap", conversation, expected, 1)


def test_imap_append_literal_is_skipped_not_read_as_commands():
    message = b"Subject: x\r\n\r\nx LOGIN bob hunter2\r\n"
    command = b"a5 APPEND INBOX (\\Seen) {%d}\r\n" % len(message)
    conversation = [(C, command), (S, b"+ OK\r\n"), (C, message + b"\r\n"), (C, b"a6 LOGIN u pw\r\n")]
    expected = [command, b"+ OK\r\n", message + b"\r\n", b"a6 LOGIN u **\r\n"]
    _check("imap", conversation, expected, 1)


def test_imap_server_bytes_pass_untouched():
    fetch = b"* 1 FETCH (UID 4 BODY[] {21}\r\nLOGIN alice password\r\n)\r\n"
    _check("imap", [(S, fetch)], [fetch], 0)


# POP3 -------------------------------------------------------------------------------------------


def test_pop3_user_kept_pass_masked_apop_digest_masked():
    conversation = [(C, b"USER alice\r\n"), (S, b"+OK\r\n"), (C, b"PASS pass with spaces\r\n"), (S, b"+OK\r\n"),
                    (C, b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"), (C, b"STAT\r\n")]
    expected = [b"USER alice\r\n", b"+OK\r\n", b"PASS ****************\r\n", b"+OK\r\n",
                b"APOP alice " + b"*" * 32 + b"\r\n", b"STAT\r\n"]
    _check("pop3", conversation, expected, 2)


def test_pop3_auth_inline_and_two_step_xoauth2():
    token = b64("user=alice\x01auth=Bearer tok\x01\x01")
    conversation = [(C, b"AUTH PLAIN " + b64("\0alice\0pw") + b"\r\n"), (S, b"-ERR [AUTH] no\r\n"),
                    (C, b"AUTH XOAUTH2\r\n"), (S, b"+ \r\n"), (C, token + b"\r\n"), (S, b"+OK welcome\r\n"),
                    (C, b"STAT\r\n"), (C, b"UIDL\r\n")]
    expected = [d for _, d in conversation]
    expected[0] = b"AUTH PLAIN " + stars(b64("\0alice\0pw")) + b"\r\n"
    expected[4] = stars(token) + b"\r\n"
    _check("pop3", conversation, expected, 2)


# SMTP / LMTP ------------------------------------------------------------------------------------


def test_smtp_auth_plain_login_xoauth2():
    plain, user, password = b64("\0alice\0pw"), b64("alice"), b64("pw")
    token = b64("user=alice\x01auth=Bearer tok\x01\x01")
    conversation = [
        (C, b"EHLO me\r\n"), (S, b"250-x\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n"),
        (C, b"AUTH PLAIN " + plain + b"\r\n"), (S, b"535 5.7.8 no\r\n"),
        (C, b"AUTH LOGIN\r\n"), (S, b"334 VXNlcm5hbWU6\r\n"), (C, user + b"\r\n"), (S, b"334 UGFzc3dvcmQ6\r\n"),
        (C, password + b"\r\n"), (S, b"535 no\r\n"),
        (C, b"AUTH XOAUTH2 " + token + b"\r\n"), (S, b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"), (C, b"\r\n"),
        (S, b"535 5.7.139 no\r\n"), (C, b"QUIT\r\n"),
    ]
    expected = [d for _, d in conversation]
    expected[2] = b"AUTH PLAIN " + stars(plain) + b"\r\n"
    expected[8] = stars(password) + b"\r\n"
    expected[10] = b"AUTH XOAUTH2 " + stars(token) + b"\r\n"
    _check("smtp", conversation, expected, 3)


def test_lmtp_data_content_is_not_read_as_commands():
    body = b"Subject: t\r\n\r\nAUTH PLAIN c2VjcmV0\r\n..dot\r\n"
    conversation = [(C, b"LHLO x\r\n"), (S, b"250 ok\r\n"), (C, b"DATA\r\n"), (S, b"354 go\r\n"),
                    (C, body + b".\r\n"), (S, b"250 ok\r\n"), (C, b"AUTH PLAIN " + b64("\0a\0b") + b"\r\n")]
    expected = [d for _, d in conversation]
    expected[6] = b"AUTH PLAIN " + stars(b64("\0a\0b")) + b"\r\n"
    _check("lmtp", conversation, expected, 1)


def test_smtp_refused_data_leaves_command_mode():
    conversation = [(C, b"DATA\r\n"), (S, b"554 no valid recipients\r\n"), (C, b"AUTH PLAIN " + b64("x") + b"\r\n")]
    expected = [b"DATA\r\n", b"554 no valid recipients\r\n", b"AUTH PLAIN " + stars(b64("x")) + b"\r\n"]
    _check("smtp", conversation, expected, 1)


# HTTP -------------------------------------------------------------------------------------------


def test_http_authorization_schemes_and_cookies_bodies_skipped():
    soap = b"<x>Authorization: Basic notaheader</x>"
    basic = b64("alice:s3cret")
    request1 = (b"POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: h\r\nAuthorization: Basic " + basic +
                b"\r\nCookie: X-BackEndCookie=abc; s=1\r\nContent-Length: %d\r\n\r\n" % len(soap) + soap)
    response1 = (b"HTTP/1.1 200 OK\r\nSet-Cookie: exchangecookie=0123; path=/\r\nContent-Length: 11\r\n\r\n"
                 b"Cookie: abc")
    request2 = b"HEAD / HTTP/1.1\r\nauthorization: Bearer eyJ0eXAi.abc\r\n\r\n"
    response2 = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n"  # HEAD: no body follows
    request3 = (b"PUT /a HTTP/1.1\r\nProxy-Authorization: NTLM TlRMTVNTUAAB\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nCooki\r\n0\r\n\r\n")
    response3 = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"4\r\nSet-\r\n0\r\n\r\n")
    conversation = [(C, request1), (S, response1), (C, request2), (S, response2), (C, request3), (S, response3)]
    expected = [
        request1.replace(basic, stars(basic)).replace(b"X-BackEndCookie=abc; s=1", b"*" * 24),
        response1.replace(b"exchangecookie=0123; path=/", b"*" * 27),
        request2.replace(b"eyJ0eXAi.abc", b"*" * 12),
        response2,
        request3.replace(b"TlRMTVNTUAAB", b"*" * 12),
        response3,
    ]
    _check("http", conversation, expected, 5)


# whole transcripts ------------------------------------------------------------------------------


def test_redact_transcript_keeps_events_and_counts_into_the_header():
    header = tf.Header(protocol=tf.Protocol.POP3, server="h:110", started=datetime(2026, 1, 1, tzinfo=timezone.utc),
                       recorded_by="dovecot-rawlog", redacted=1)
    events = [tf.Chunk(0.0, S, b"+OK\r\n"), tf.Chunk(0.1, C, b"USER a\r\n"), tf.Mark(0.15, "starttls"),
              tf.Chunk(0.2, C, b"PASS b\r\n")]
    out = redact_transcript(tf.Transcript(header, events))
    assert out.header.redacted == 2
    assert out.events[2] == events[2]
    assert out.sent_by(C) == b"USER a\r\nPASS *\r\n"
    assert events[3].data == b"PASS b\r\n", "the input is not changed"


def test_unknown_protocol_is_a_clear_error():
    with pytest.raises(ValueError, match="no redaction rules for protocol 'gopher'"):
        Redactor("gopher")


# properties ---------------------------------------------------------------------------------------

from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = [b"a1 ", b"LOGIN ", b"AUTHENTICATE ", b"PLAIN ", b"PASS ", b"USER ", b"AUTH ", b"APOP ", b"DATA\r\n",
          b"354 go\r\n", b"+ \r\n", b"+OK\r\n", b"a1 OK\r\n", b"{5}\r\n", b"{3+}\r\n", b"\"", b"\\", b" ", b"\r\n",
          b".\r\n", b"Authorization: Basic ", b"Cookie: ", b"Content-Length: 4\r\n", b"\r\n\r\n", b"HTTP/1.1 200 OK\r\n",
          b"GET / HTTP/1.1\r\n", b"Transfer-Encoding: chunked\r\n", b"3\r\n", b"0\r\n", b"xyz", b"\x00\xff"]
_stream = st.lists(st.tuples(st.sampled_from(list(tf.Sender)), st.lists(st.sampled_from(_WORDS), max_size=12)
                             .map(b"".join)), max_size=12)


@settings(max_examples=80, deadline=None)
@given(protocol=st.sampled_from(["imap", "pop3", "smtp", "http"]), conversation=_stream, cuts=st.randoms())
def test_any_bytes_any_cuts_same_output_same_length(protocol, conversation, cuts):
    whole = Redactor(protocol)
    expected = [whole.feed(sender, data) for sender, data in conversation]
    split = Redactor(protocol)
    for (sender, data), want in zip(conversation, expected):
        points = sorted(cuts.sample(range(len(data) + 1), min(3, len(data) + 1)))
        pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
        assert b"".join(split.feed(sender, p) for p in pieces) == want
        assert len(want) == len(data)
    assert split.count == whole.count


_password = st.text(st.characters(min_codepoint=33, max_codepoint=0x24F), min_size=6, max_size=24)


@settings(max_examples=150, deadline=None)
@given(password=_password, form=st.sampled_from(["quoted", "literal", "literal+", "atom"]), cuts=st.randoms())
def test_imap_login_password_never_survives(password, form, cuts):
    secret = password.encode("utf-8")
    if form == "atom":
        arg = b"".join(bytes([c]) for c in secret if c not in b'(){ %*"\\]') or b"x"
        secret = arg
    elif form == "quoted":
        arg = b'"' + secret.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    else:
        arg = b"{%d%s}\r\n" % (len(secret), b"+" if form == "literal+" else b"") + secret
    command = b"t1 LOGIN alice " + arg + b"\r\n"
    points = sorted(cuts.sample(range(len(command) + 1), 4))
    redactor = Redactor("imap")
    out = b"".join(redactor.feed(C, command[a:b]) for a, b in zip([0, *points], [*points, len(command)]))
    masked = (b'"' + b"*" * (len(arg) - 2) + b'"' if form == "quoted"
              else arg[:len(arg) - len(secret)] + b"*" * len(secret))
    assert out == b"t1 LOGIN alice " + masked + b"\r\n"
    assert redactor.count == 1


def _forms(token: bytes, text: bytes) -> list[tuple[str, list[tuple[tf.Sender, bytes]]]]:
    """Every place a secret goes, per protocol: (protocol, conversation)."""
    return [
        ("imap", [(C, b"a AUTHENTICATE PLAIN " + token + b"\r\n")]),
        ("imap", [(C, b"a AUTHENTICATE XOAUTH2\r\n"), (S, b"+ \r\n"), (C, token + b"\r\n")]),
        ("pop3", [(C, b"PASS " + text + b"\r\n")]),
        ("pop3", [(C, b"APOP alice " + text + b"\r\n")]),
        ("pop3", [(C, b"AUTH PLAIN\r\n"), (S, b"+ \r\n"), (C, token + b"\r\n")]),
        ("smtp", [(C, b"AUTH XOAUTH2 " + token + b"\r\n")]),
        ("smtp", [(C, b"AUTH LOGIN dXNlcg==\r\n"), (S, b"334 UGFzc3dvcmQ6\r\n"), (C, token + b"\r\n")]),
        ("http", [(C, b"GET / HTTP/1.1\r\nAuthorization: Bearer " + text + b"\r\n\r\n")]),
        ("http", [(C, b"GET / HTTP/1.1\r\nCookie: " + text + b"\r\n\r\n")]),
        ("http", [(C, b"GET / HTTP/1.1\r\n\r\n"), (S, b"HTTP/1.1 204 No Content\r\nSet-Cookie: " + text + b"\r\n\r\n")]),
    ]


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=6, max_size=40),
       text=st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="*"), min_size=6,
                    max_size=30), cuts=st.randoms())
def test_every_secret_form_masked_whatever_the_cuts(raw, text, cuts):
    token, secret_text = base64.b64encode(raw), text.encode()
    scaffold = b"".join(data for _, conversation in _forms(b"", b"") for _, data in conversation)
    assume(token not in scaffold and secret_text not in scaffold)  # a "secret" that is the protocol's own text
    for protocol, conversation in _forms(token, secret_text):
        redactor = Redactor(protocol)
        out = b""
        for sender, data in conversation:
            points = sorted(cuts.sample(range(len(data) + 1), 3))
            out += b"".join(redactor.feed(sender, data[a:b]) for a, b in zip([0, *points], [*points, len(data)]))
        assert token not in out and secret_text not in out, (protocol, out)
        assert redactor.count == 1, (protocol, out)
